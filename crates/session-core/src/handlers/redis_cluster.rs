//! The redis driver's Redis Cluster client: the slot map from `CLUSTER SLOTS`, one
//! [`ConnectionManager`] per node, and the cluster's redirections handled per command.
//!
//! - `MOVED`: the command is sent again to the node named, and the slot map is read again.
//! - `ASK` (a slot being migrated): the command is sent to the node named once, in one pipeline
//!   with `ASKING`, so that no other request on the shared connection can take the one-shot flag.
//! - `TRYAGAIN`, `CLUSTERDOWN`, `MASTERDOWN`, `READONLY` and connection failures: the slot map is
//!   read again (at most every [`REFRESH_EVERY`]) and the command retried after a short pause,
//!   until the operation's deadline (the handler's command timeout) ends it. A killed master's
//!   slots thus fail until a replica is promoted, and work again as soon as the map shows it.
//!
//! Why not the crate's async cluster client: during `redis-cli --cluster reshard` under load it
//! stalled every request for the whole response timeout (its slot refresh waited for a lock
//! held by requests it had stopped polling), and it sends `ASKING` as a request of its own on a
//! shared connection. This client also skips that client's extra task hop per command: the
//! operation talks to the node's connection directly, as on a single server.
//!
//! Every command the driver sends names one key, so it goes to the master of that key's slot.

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::{
    Client, Cmd, ConnectionAddr, ConnectionInfo, ErrorKind, IntoConnectionInfo, Pipeline,
    RedisConnectionInfo, RedisError, RedisFuture, RedisResult, ServerErrorKind, TlsCertificates,
    Value,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Hash slots in a Redis Cluster.
const SLOTS: usize = 16384;
/// No node is known for a slot.
const NONE: u16 = u16::MAX;
/// The slot map is read at most this often.
const REFRESH_EVERY: Duration = Duration::from_millis(100);
/// Attempts per command; the command timeout ends them sooner.
const ATTEMPTS: u32 = 64;

/// CRC16/XMODEM, the cluster's key hash.
fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in data {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// The hash slot of `key`: of the part between the first `{` and the next `}` when that is not
/// empty (a hash tag), else of the whole key.
pub fn slot_of(key: &[u8]) -> u16 {
    let tagged = key.iter().position(|&b| b == b'{').and_then(|open| {
        let rest = &key[open + 1..];
        let close = rest.iter().position(|&b| b == b'}')?;
        (close > 0).then(|| &rest[..close])
    });
    #[allow(clippy::cast_possible_truncation)]
    let slots = SLOTS as u16;
    crc16(tagged.unwrap_or(key)) % slots
}

/// The key a command of the driver is routed by: the first key of `EVAL`/`EVALSHA`, else the
/// first argument.
fn key_of(cmd: &Cmd) -> Option<&[u8]> {
    let mut args = cmd.args_iter().filter_map(|a| match a {
        redis::Arg::Simple(b) => Some(b),
        _ => None,
    });
    let name = args.next()?;
    if name.eq_ignore_ascii_case(b"EVAL") || name.eq_ignore_ascii_case(b"EVALSHA") {
        let _script = args.next()?;
        let numkeys = args.next()?;
        if numkeys == b"0" {
            return None;
        }
    }
    args.next()
}

/// A node address as `CLUSTER SLOTS` and redirections give it.
type Addr = Arc<str>;

/// The slot map: for each slot, an index into `masters`.
struct Topology {
    slots: Vec<u16>,
    masters: Vec<Addr>,
}

/// How to reach and log in to the cluster's nodes.
pub struct ClusterSpec {
    /// The nodes to discover the cluster from.
    pub seeds: Vec<ConnectionInfo>,
    /// User and password for every node.
    pub redis: RedisConnectionInfo,
    /// TLS to every node.
    pub tls: bool,
    /// CA certificates for TLS.
    pub certs: Option<TlsCertificates>,
    /// Connection settings of each node's [`ConnectionManager`].
    pub config: ConnectionManagerConfig,
    /// Time allowed to read the slot map from one node.
    pub connect_timeout: Duration,
}

struct Inner {
    spec: ClusterSpec,
    topology: Mutex<Option<Arc<Topology>>>,
    nodes: Mutex<HashMap<Addr, ConnectionManager>>,
    // When the slot map was last read; held while it is read, so that one read serves everyone.
    refreshed: tokio::sync::Mutex<Option<Instant>>,
}

/// A handle on the cluster; clones share the connections and the slot map.
#[derive(Clone)]
pub struct ClusterConn(Arc<Inner>);

/// What one attempt sends.
enum Req<'a> {
    Cmd(&'a Cmd),
    Pipe(&'a Pipeline, usize, usize),
}

enum Out {
    One(Value),
    Many(Vec<Value>),
}

/// What to do after an attempt.
enum Next {
    Done,
    /// To this node (`MOVED`), or to it with `ASKING` (`ASK`).
    Redirect(Addr, bool),
    /// Read the slot map again and retry.
    Refresh,
}

fn server_error_next(kind: Option<ServerErrorKind>, details: Option<&str>) -> Next {
    let target = || {
        details
            .and_then(|d| d.split_ascii_whitespace().nth(1))
            .map(Addr::from)
    };
    match kind {
        Some(ServerErrorKind::Moved) => {
            target().map_or(Next::Refresh, |a| Next::Redirect(a, false))
        }
        Some(ServerErrorKind::Ask) => target().map_or(Next::Refresh, |a| Next::Redirect(a, true)),
        Some(
            ServerErrorKind::TryAgain
            | ServerErrorKind::ClusterDown
            | ServerErrorKind::MasterDown
            | ServerErrorKind::ReadOnly
            | ServerErrorKind::BusyLoading,
        ) => Next::Refresh,
        _ => Next::Done,
    }
}

fn next_of(r: &RedisResult<Out>) -> Next {
    match r {
        Ok(Out::One(Value::ServerError(e))) => server_error_next(e.kind(), e.details()),
        Ok(Out::Many(values)) => match values.iter().find_map(|v| match v {
            Value::ServerError(e) => Some(e),
            _ => None,
        }) {
            Some(e) => server_error_next(e.kind(), e.details()),
            None => Next::Done,
        },
        Ok(Out::One(_)) => Next::Done,
        Err(e) => match e.kind() {
            ErrorKind::Server(kind) => server_error_next(Some(kind), e.detail()),
            _ if e.is_io_error()
                || e.is_connection_dropped()
                || e.is_connection_refusal()
                || e.is_timeout()
                || e.kind() == ErrorKind::ClusterConnectionNotFound =>
            {
                Next::Refresh
            }
            _ => Next::Done,
        },
    }
}

async fn send(conn: &mut ConnectionManager, req: &Req<'_>, asking: bool) -> RedisResult<Out> {
    match (req, asking) {
        (Req::Cmd(c), false) => conn.req_packed_command(c).await.map(Out::One),
        (Req::Pipe(p, offset, count), false) => conn
            .req_packed_commands(p, *offset, *count)
            .await
            .map(Out::Many),
        (Req::Cmd(c), true) => {
            let mut p = redis::pipe();
            p.cmd("ASKING").add_command((*c).clone());
            let mut v = conn.req_packed_commands(&p, 1, 1).await?;
            v.pop()
                .map(Out::One)
                .ok_or_else(|| RedisError::from((ErrorKind::Io, "no reply after ASKING")))
        }
        (Req::Pipe(p, offset, count), true) => {
            let mut q = redis::pipe();
            q.cmd("ASKING");
            for c in p.cmd_iter() {
                q.add_command(c.clone());
            }
            conn.req_packed_commands(&q, offset + 1, *count)
                .await
                .map(Out::Many)
        }
    }
}

fn no_route(what: &str, detail: String) -> RedisError {
    RedisError::from((
        ErrorKind::ClusterConnectionNotFound,
        "no cluster node",
        format!("{what}: {detail}"),
    ))
}

impl ClusterConn {
    /// A cluster handle; nothing is connected until the first command.
    pub fn new(spec: ClusterSpec) -> Self {
        Self(Arc::new(Inner {
            spec,
            topology: Mutex::new(None),
            nodes: Mutex::new(HashMap::new()),
            refreshed: tokio::sync::Mutex::new(None),
        }))
    }

    /// The connection to the node at `addr` (`host:port`), made on first use.
    fn node(&self, addr: &Addr) -> RedisResult<ConnectionManager> {
        let mut nodes = self.0.nodes.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(c) = nodes.get(addr) {
            return Ok(c.clone());
        }
        let (host, port) = addr
            .rsplit_once(':')
            .and_then(|(h, p)| Some((h.trim_matches(['[', ']']), p.parse::<u16>().ok()?)))
            .ok_or_else(|| no_route("a node address cannot be read", addr.to_string()))?;
        let spec = &self.0.spec;
        let conn_addr = if spec.tls {
            ConnectionAddr::TcpTls {
                host: host.to_owned(),
                port,
                insecure: false,
                tls_params: None,
            }
        } else {
            ConnectionAddr::Tcp(host.to_owned(), port)
        };
        let info = conn_addr
            .into_connection_info()?
            .set_redis_settings(spec.redis.clone());
        let client = match &spec.certs {
            Some(certs) => Client::build_with_tls(info, certs.clone())?,
            None => Client::open(info)?,
        };
        let c = ConnectionManager::new_lazy_with_config(client, spec.config.clone())?;
        nodes.insert(addr.clone(), c.clone());
        Ok(c)
    }

    fn topology(&self) -> Option<Arc<Topology>> {
        self.0
            .topology
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The master of `slot`, reading the slot map first when there is none yet.
    async fn master_of(&self, slot: u16) -> RedisResult<Addr> {
        let t = match self.topology() {
            Some(t) => t,
            None => {
                self.refresh(true).await?;
                self.topology()
                    .ok_or_else(|| no_route("the slot map", "not read".into()))?
            }
        };
        match t.slots.get(usize::from(slot)).copied() {
            Some(i) if i != NONE => t
                .masters
                .get(usize::from(i))
                .cloned()
                .ok_or_else(|| no_route("the slot map", "inconsistent".into())),
            _ => Err(RedisError::from((
                ErrorKind::Server(ServerErrorKind::ClusterDown),
                "no node serves the slot",
                format!("slot {slot} has no master in the slot map"),
            ))),
        }
    }

    /// Reads the slot map from the first node that answers (the known masters first, then the
    /// seeds). Unless `now`, skipped when it was read less than [`REFRESH_EVERY`] ago.
    async fn refresh(&self, now: bool) -> RedisResult<()> {
        let mut last = self.0.refreshed.lock().await;
        if let Some(at) = *last {
            if at.elapsed() < REFRESH_EVERY && (!now || self.topology().is_some()) {
                return Ok(());
            }
        }
        let mut candidates: Vec<Addr> = self
            .topology()
            .map(|t| t.masters.clone())
            .unwrap_or_default();
        for s in &self.0.spec.seeds {
            if let ConnectionAddr::Tcp(h, p)
            | ConnectionAddr::TcpTls {
                host: h, port: p, ..
            } = s.addr()
            {
                let a: Addr = format!("{h}:{p}").into();
                if !candidates.contains(&a) {
                    candidates.push(a);
                }
            }
        }
        let mut errors = Vec::new();
        for addr in candidates {
            let mut conn = match self.node(&addr) {
                Ok(c) => c,
                Err(e) => {
                    errors.push(format!("{addr}: {e}"));
                    continue;
                }
            };
            let asked = tokio::time::timeout(
                self.0.spec.connect_timeout,
                redis::cmd("CLUSTER")
                    .arg("SLOTS")
                    .query_async::<Value>(&mut conn),
            )
            .await;
            match asked {
                Ok(Ok(v)) => match parse_slots(&v, &addr) {
                    Some(t) => {
                        *self
                            .0
                            .topology
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(t));
                        *last = Some(Instant::now());
                        return Ok(());
                    }
                    None => errors.push(format!("{addr}: an unreadable CLUSTER SLOTS reply")),
                },
                Ok(Err(e)) => errors.push(format!("{addr}: {}", short(&e))),
                Err(_) => errors.push(format!("{addr}: no answer in time")),
            }
        }
        *last = Some(Instant::now());
        Err(no_route("no node gave the slot map", errors.join("; ")))
    }

    /// Runs one request on the master of `slot`, following redirections.
    async fn route(&self, slot: u16, req: Req<'_>) -> RedisResult<Out> {
        let mut target: Option<(Addr, bool)> = None;
        let mut pause = Duration::from_millis(10);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (addr, asking) = match target.take() {
                Some(t) => t,
                None => match self.master_of(slot).await {
                    Ok(a) => (a, false),
                    Err(e)
                        if attempt < ATTEMPTS
                            && e.kind() != ErrorKind::ClusterConnectionNotFound =>
                    {
                        tokio::time::sleep(pause).await;
                        pause = (pause * 2).min(REFRESH_EVERY);
                        let _ = self.refresh(false).await;
                        continue;
                    }
                    Err(e) => return Err(e),
                },
            };
            let mut conn = self.node(&addr)?;
            let r = send(&mut conn, &req, asking).await;
            match next_of(&r) {
                Next::Done => return r,
                _ if attempt >= ATTEMPTS => return r,
                Next::Redirect(to, ask) => {
                    if !ask {
                        // The map is out of date: read it again, without holding this command.
                        let me = self.clone();
                        tokio::spawn(async move { me.refresh(false).await });
                    }
                    target = Some((to, ask));
                }
                Next::Refresh => {
                    // Until the deadline: a promotion or the end of a migration shows up in
                    // the slot map; a failed read of the map leaves the old one in place.
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(REFRESH_EVERY);
                    let _ = self.refresh(false).await;
                }
            }
        }
    }
}

/// A redis error in a few words, without any argument of the command.
fn short(e: &RedisError) -> String {
    match e.detail() {
        Some(d) => format!("{} {d}", e.code().unwrap_or(e.category())),
        None => e.to_string(),
    }
}

/// The slot map from a `CLUSTER SLOTS` reply; an empty host means the node asked.
fn parse_slots(v: &Value, asked: &Addr) -> Option<Topology> {
    let Value::Array(ranges) = v else { return None };
    let mut slots = vec![NONE; SLOTS];
    let mut masters: Vec<Addr> = Vec::new();
    let asked_host = asked.rsplit_once(':').map_or("", |(h, _)| h);
    for range in ranges {
        let Value::Array(fields) = range else {
            return None;
        };
        let int = |v: &Value| match v {
            Value::Int(n) => usize::try_from(*n).ok(),
            _ => None,
        };
        let from = int(fields.first()?)?;
        let to = int(fields.get(1)?)?;
        let Value::Array(master) = fields.get(2)? else {
            return None;
        };
        let host = match master.first()? {
            Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
            Value::SimpleString(s) => s.clone(),
            _ => return None,
        };
        let host = if host.is_empty() || host == "?" {
            asked_host.to_owned()
        } else {
            host
        };
        let port = int(master.get(1)?)?;
        let addr: Addr = format!("{host}:{port}").into();
        let idx = match masters.iter().position(|a| *a == addr) {
            Some(i) => i,
            None => {
                masters.push(addr);
                masters.len() - 1
            }
        };
        let idx = u16::try_from(idx).ok()?;
        for s in slots.get_mut(from..=to)? {
            *s = idx;
        }
    }
    Some(Topology { slots, masters })
}

impl ConnectionLike for ClusterConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let key = key_of(cmd).ok_or_else(|| {
                RedisError::from((ErrorKind::Client, "a cluster command needs a key"))
            })?;
            match self.route(slot_of(key), Req::Cmd(cmd)).await? {
                Out::One(v) => Ok(v),
                Out::Many(_) => Err(RedisError::from((ErrorKind::Client, "unexpected replies"))),
            }
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let key = pipeline.cmd_iter().find_map(key_of).ok_or_else(|| {
                RedisError::from((ErrorKind::Client, "a cluster pipeline needs a key"))
            })?;
            match self
                .route(slot_of(key), Req::Pipe(pipeline, offset, count))
                .await?
            {
                Out::Many(v) => Ok(v),
                Out::One(_) => Err(RedisError::from((ErrorKind::Client, "unexpected reply"))),
            }
        })
    }

    fn get_db(&self) -> i64 {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_match_the_cluster_spec() {
        // The CRC16 check value from the Redis Cluster specification.
        assert_eq!(crc16(b"123456789"), 0x31c3);
        assert_eq!(slot_of(b"foo"), 12182);
        assert_eq!(slot_of(b"{user1000}.following"), slot_of(b"user1000"));
        assert_eq!(slot_of(b"foo{}{bar}"), slot_of(b"foo{}{bar}"));
        assert_ne!(slot_of(b"foo{}{bar}"), slot_of(b"bar"));
        assert_eq!(slot_of(b"foo{{bar}}zap"), slot_of(b"{bar"));
    }

    #[test]
    fn routing_keys() {
        let mut get = redis::cmd("GET");
        get.arg("k1");
        assert_eq!(key_of(&get), Some(&b"k1"[..]));
        let mut eval = redis::cmd("EVALSHA");
        eval.arg("abc").arg(1).arg("k2").arg("v");
        assert_eq!(key_of(&eval), Some(&b"k2"[..]));
        let mut none = redis::cmd("EVAL");
        none.arg("return 1").arg(0);
        assert_eq!(key_of(&none), None);
    }
}
