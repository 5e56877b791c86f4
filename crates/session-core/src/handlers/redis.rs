//! `RedisSessionHandler`: sessions as Redis keys that Redis expires itself.
//!
//! One [`ConnectionManager`] per handler: a single multiplexed connection that every concurrent
//! request pipelines on, and that reconnects by itself after a drop (a plain multiplexed
//! connection never recovers). It is created on first use, inside the runtime that runs the
//! operation, so constructing a handler never blocks and never fails because the server is down.
//!
//! Every operation is bounded by `command_timeout`: while Redis is down, unreachable or frozen,
//! it rejects with [`SessionError::Unavailable`] instead of hanging. Such an operation has an
//! unknown outcome: a frozen server that resumes still applies a write it had received.
//!
//! Compare-and-set (issue 12): [`SessionHandler::write_if_unchanged`] is one Lua script, run by
//! its SHA (`EVALSHA`, then `EVAL` once when the server answers `NOSCRIPT`: after a restart or a
//! `SCRIPT FLUSH`), that compares the SHA-1 of the stored value with the SHA-1 of the payload the
//! request loaded (computed here, so the old payload never travels) and `SET`s with the TTL in
//! the same step. `destroy` leaves a tombstone, [`TOMBSTONE`] with the TTL, or the shorter
//! [`RedisOptions::tombstone_secs`] (`SET … XX`: only over a record that exists), which reads as
//! no session and never matches; `touch` is a script too,
//! so a tombstone is never refreshed and answers `false`. Every command touches one key (one
//! slot), so the same commands and scripts run on a Redis Cluster.
//!
//! Topologies ([`RedisConnection`]): one server; a Redis Cluster ([`super::redis_cluster`]: each
//! command goes to its slot's master and follows `MOVED`/`ASK`); or a master found through
//! Sentinel. The crate's Sentinel client resolves the master once and never again, so
//! this driver resolves it again after a connection error or a `READONLY` reply (a demoted
//! master), and retries the operation once on the master found. Sentinel disconnects every
//! client when it reconfigures a node, so a failover always shows up as such an error.
//!
//! `min_replicas` sends `WAIT n timeout` in the same pipeline as every write and destroy: the
//! operation resolves only once that many replicas acknowledged it.

use super::redis_cluster::{ClusterConn, ClusterSpec};
use crate::clock;
use crate::error::{Result, SessionError};
use crate::handler::{self, CasOutcome, SessionHandler, UserRecord, WriteMeta, TOMBSTONE};
use crate::id;
use async_trait::async_trait;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{
    Client, ConnectionAddr, ConnectionInfo, IntoConnectionInfo, RedisConnectionInfo, RedisError,
    RedisFuture, TlsCertificates, TlsMode, Value,
};
use sha1::{Digest, Sha1};
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

/// The key prefix used when none is given.
pub const DEFAULT_PREFIX: &str = "ostro_session:";
/// The default time allowed to open a connection, in ms.
pub const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 2000;
/// The default time allowed for one operation, in ms.
pub const DEFAULT_COMMAND_TIMEOUT_MS: u64 = 2000;
/// Longest timeout accepted (10 minutes): anything longer is a typo, not a wish.
const MAX_TIMEOUT_MS: u64 = 600_000;

/// Compare-and-set. KEYS[1]: the key. ARGV: the SHA-1 (hex) of the payload the request loaded
/// (`""` for no record), the new payload, the TTL in seconds, the tombstone. Replies 1 when it
/// wrote, else `{current}` (`""` for no record or a tombstone).
const CAS_SCRIPT: &str = "local cur = redis.call('GET', KEYS[1])
if cur == ARGV[4] then return {''} end
local h = ''
if cur then h = redis.sha1hex(cur) end
if h ~= ARGV[1] then return {cur or ''} end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1";

/// Touch. KEYS[1]: the key. ARGV: the TTL in seconds, the tombstone. Replies 1 when a live
/// record was refreshed. STRLEN first: a payload is never read into the script.
const TOUCH_SCRIPT: &str = "local n = redis.call('STRLEN', KEYS[1])
if n == 0 then return 0 end
if n == #ARGV[2] and redis.call('GET', KEYS[1]) == ARGV[2] then return 0 end
return redis.call('EXPIRE', KEYS[1], ARGV[1])";

/// A write of a session linked to a user (see [`crate::users`]): the write (compare-and-set, or
/// plain when ARGV[1] is `*`) and the user's index in one step. KEYS: the session, the user's
/// sorted set (id scored by last activity in ms), the user's hash (id -> `[ip, user agent]`).
/// ARGV: expected SHA-1 or `*`, payload, TTL in seconds, tombstone, now (ms), id, the client
/// JSON (`""`: keep), the score below which entries are expired, the index's TTL in seconds.
/// Replies as [`CAS_SCRIPT`].
///
/// The index keeps last activity to [`INDEX_RESOLUTION_MS`]: an entry refreshed less than that
/// ago is left alone (one `ZSCORE`), so a busy session costs the index almost nothing; the
/// index's TTL is the lifetime plus that resolution, so it never expires before its sessions.
const INDEXED_WRITE_SCRIPT: &str = "if ARGV[1] ~= '*' then
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[4] then return {''} end
local h = ''
if cur then h = redis.sha1hex(cur) end
if h ~= ARGV[1] then return {cur or ''} end
end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
local at = redis.call('ZSCORE', KEYS[2], ARGV[6])
if at and tonumber(at) > tonumber(ARGV[5]) - 60000 then return 1 end
local old = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[8])
if #old > 0 then
redis.call('ZREM', KEYS[2], unpack(old))
redis.call('HDEL', KEYS[3], unpack(old))
end
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[6])
if ARGV[7] ~= '' then redis.call('HSET', KEYS[3], ARGV[6], ARGV[7]) end
redis.call('EXPIRE', KEYS[2], ARGV[9])
redis.call('EXPIRE', KEYS[3], ARGV[9])
return 1";

/// The index half of [`INDEXED_WRITE_SCRIPT`], for a cluster, where the session's key is in
/// another slot. KEYS: the user's sorted set and hash. ARGV: now (ms), id, client JSON (`""`:
/// keep), the score below which entries are expired, the index's TTL in seconds.
const INDEX_ONLY_SCRIPT: &str = "local at = redis.call('ZSCORE', KEYS[1], ARGV[2])
if at and tonumber(at) > tonumber(ARGV[1]) - 60000 then return 1 end
local old = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[4])
if #old > 0 then
redis.call('ZREM', KEYS[1], unpack(old))
redis.call('HDEL', KEYS[2], unpack(old))
end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
if ARGV[3] ~= '' then redis.call('HSET', KEYS[2], ARGV[2], ARGV[3]) end
redis.call('EXPIRE', KEYS[1], ARGV[5])
redis.call('EXPIRE', KEYS[2], ARGV[5])
return 1";

/// How precisely the user index tracks last activity, in ms (see [`INDEXED_WRITE_SCRIPT`]).
pub const INDEX_RESOLUTION_MS: i64 = 60_000;

/// A touch of a session linked to a user: [`TOUCH_SCRIPT`], then the index as in
/// [`INDEXED_WRITE_SCRIPT`] (with its resolution). KEYS: the same three. ARGV: TTL, tombstone,
/// now (ms), id, client JSON (`""`: keep), the index's TTL.
const INDEXED_TOUCH_SCRIPT: &str = "local n = redis.call('STRLEN', KEYS[1])
if n == 0 then return 0 end
if n == #ARGV[2] and redis.call('GET', KEYS[1]) == ARGV[2] then return 0 end
redis.call('EXPIRE', KEYS[1], ARGV[1])
local at = redis.call('ZSCORE', KEYS[2], ARGV[4])
if at and tonumber(at) > tonumber(ARGV[3]) - 60000 then return 1 end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
if ARGV[5] ~= '' then redis.call('HSET', KEYS[3], ARGV[4], ARGV[5]) end
redis.call('EXPIRE', KEYS[2], ARGV[6])
redis.call('EXPIRE', KEYS[3], ARGV[6])
return 1";

/// The SHA-1 of `text`, as lowercase hex (what `EVALSHA` and `redis.sha1hex` use).
fn sha1_hex(text: &str) -> String {
    use std::fmt::Write as _;
    let digest = Sha1::digest(text.as_bytes());
    let mut hex = String::with_capacity(40);
    for b in digest {
        let _ = write!(hex, "{b:02x}");
    }
    hex
}

/// A script and its SHA.
struct Script {
    code: &'static str,
    sha: String,
}

impl Script {
    fn new(code: &'static str) -> Self {
        Self {
            code,
            sha: sha1_hex(code),
        }
    }

    /// `EVALSHA` or, for a server that does not have the script yet, `EVAL`.
    fn cmd(&self, by_sha: bool, key: &str, args: &[&[u8]]) -> redis::Cmd {
        let mut c = if by_sha {
            let mut c = redis::cmd("EVALSHA");
            c.arg(&self.sha);
            c
        } else {
            let mut c = redis::cmd("EVAL");
            c.arg(self.code);
            c
        };
        c.arg(1).arg(key);
        for a in args {
            c.arg(*a);
        }
        c
    }

    /// [`Script::cmd`] with several keys.
    fn cmd_keys(&self, by_sha: bool, keys: &[&str], args: &[&[u8]]) -> redis::Cmd {
        let mut c = if by_sha {
            let mut c = redis::cmd("EVALSHA");
            c.arg(&self.sha);
            c
        } else {
            let mut c = redis::cmd("EVAL");
            c.arg(self.code);
            c
        };
        c.arg(keys.len()).arg(keys);
        for a in args {
            c.arg(*a);
        }
        c
    }
}

/// Where the Redis server is.
#[derive(Clone)]
pub enum RedisConnection {
    /// `redis://[user:pass@]host:port/db`, `rediss://…` (TLS) or `redis+unix:///path`.
    Url(String),
    /// The same, as separate fields.
    Parts(RedisParts),
    /// A Redis Cluster, found from some of its nodes.
    Cluster(RedisCluster),
    /// A master found through Redis Sentinel.
    Sentinel(RedisSentinel),
}

/// A Redis Cluster: the nodes to discover it from and how to log in to every node.
#[derive(Clone, Default)]
pub struct RedisCluster {
    /// `redis://[user:pass@]host:port` or `rediss://…` URLs of some of the nodes (one is enough;
    /// the others are discovered).
    pub nodes: Vec<String>,
    /// ACL user name for every node (else the one in the first URL).
    pub username: Option<String>,
    /// Password for every node (else the one in the first URL).
    pub password: Option<String>,
    /// TLS to every node, also for `redis://` URLs.
    pub tls: bool,
}

/// A master found through Sentinel.
#[derive(Clone, Default)]
pub struct RedisSentinel {
    /// The name the sentinels monitor the master under.
    pub master_name: String,
    /// `redis://[user:pass@]host:port` or `rediss://…` URLs of the sentinels. Credentials in
    /// them are the sentinels' own (the same for all).
    pub nodes: Vec<String>,
    /// ACL user name for the master.
    pub username: Option<String>,
    /// Password for the master.
    pub password: Option<String>,
    /// Database number on the master (default 0).
    pub db: Option<i64>,
    /// TLS to the master.
    pub tls: bool,
}

fn redacted(v: &Option<String>) -> Option<&'static str> {
    v.as_ref().map(|_| "<redacted>")
}

impl fmt::Debug for RedisCluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisCluster")
            .field("nodes", &self.nodes.len())
            .field("username", &self.username)
            .field("password", &redacted(&self.password))
            .field("tls", &self.tls)
            .finish()
    }
}

impl fmt::Debug for RedisSentinel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisSentinel")
            .field("master_name", &self.master_name)
            .field("nodes", &self.nodes.len())
            .field("username", &self.username)
            .field("password", &redacted(&self.password))
            .field("db", &self.db)
            .field("tls", &self.tls)
            .finish()
    }
}

/// A Redis address given field by field.
#[derive(Clone, Default)]
pub struct RedisParts {
    /// Host name or IP address (default `127.0.0.1`).
    pub host: Option<String>,
    /// TCP port (default 6379).
    pub port: Option<u16>,
    /// ACL user name.
    pub username: Option<String>,
    /// Password.
    pub password: Option<String>,
    /// Database number (default 0).
    pub db: Option<i64>,
    /// Connect over TLS, verifying the server certificate.
    pub tls: bool,
}

impl fmt::Debug for RedisParts {
    // Hand-written so that a password never reaches a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisParts")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("db", &self.db)
            .field("tls", &self.tls)
            .finish()
    }
}

impl fmt::Debug for RedisConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Url(_) => f.write_str("RedisConnection::Url(<redacted>)"),
            Self::Parts(p) => f.debug_tuple("RedisConnection::Parts").field(p).finish(),
            Self::Cluster(c) => f.debug_tuple("RedisConnection::Cluster").field(c).finish(),
            Self::Sentinel(c) => f.debug_tuple("RedisConnection::Sentinel").field(c).finish(),
        }
    }
}

/// Options of a [`RedisSessionHandler`].
#[derive(Debug, Clone)]
pub struct RedisOptions {
    /// Prepended to every session id to form the key.
    pub prefix: String,
    /// Session lifetime in (possibly fractional) minutes; the TTL is rounded up to whole seconds.
    pub minutes: f64,
    /// Time allowed to open a connection, in ms.
    pub connect_timeout_ms: u64,
    /// Time allowed for one operation (connecting included), in ms.
    pub command_timeout_ms: u64,
    /// A PEM file of CA certificates to verify the server with, instead of the system roots.
    pub ca_file: Option<PathBuf>,
    /// When above 0, a write or destroy resolves only once this many replicas acknowledged it
    /// (`WAIT`); otherwise it rejects with [`SessionError::Unavailable`].
    pub min_replicas: u32,
    /// The TTL of a tombstone, in seconds, from 1 to the lifetime (`None`, the default: the
    /// lifetime). See [`handler::tombstone_ms`].
    pub tombstone_secs: Option<u64>,
}

impl Default for RedisOptions {
    fn default() -> Self {
        Self {
            prefix: DEFAULT_PREFIX.into(),
            minutes: 120.0,
            connect_timeout_ms: DEFAULT_CONNECT_TIMEOUT_MS,
            command_timeout_ms: DEFAULT_COMMAND_TIMEOUT_MS,
            ca_file: None,
            min_replicas: 0,
            tombstone_secs: None,
        }
    }
}

/// Sessions in Redis: `SET key payload EX ttl`, `GET`, `DEL`, `EXPIRE`.
pub struct RedisSessionHandler {
    target: Target,
    // Created on first use (it needs a tokio runtime); taken out again by `close`, and after a
    // failover for a sentinel target.
    conn: Mutex<Option<Conn>>,
    // The single server's address and login, when it is a plain TCP or unix-socket one.
    endpoint: Option<RedisEndpoint>,
    // The embedder's connection, preferred wherever it is available (see `ExternalRedis`).
    external: OnceLock<Arc<dyn ExternalRedis>>,
    // Counts the connections made, so that a failed operation drops only the one it used.
    generation: AtomicU64,
    prefix: String,
    lifetime_ms: i64,
    tombstone_ms: i64,
    command_timeout: Duration,
    min_replicas: u32,
    cas: Script,
    touch: Script,
    indexed_write: Script,
    indexed_touch: Script,
    index_only: Script,
    // `host:port` or the socket path, for messages (never the credentials).
    server: String,
}

/// How to connect.
enum Target {
    Single {
        client: Client,
        config: ConnectionManagerConfig,
    },
    Cluster(ClusterConn),
    Sentinel {
        // Locked while the master is being resolved: concurrent operations wait for one answer.
        client: tokio::sync::Mutex<SentinelClient>,
        config: ConnectionManagerConfig,
        master_name: String,
    },
}

/// Whether a command is sent again after its first try found a broken connection.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Retry {
    /// Idempotent commands (reads, touches, plain writes, deletes).
    OnBrokenConnection,
    /// The compare-and-set: its first try may have been applied, and a second would then find
    /// the record changed by itself and replay the request's operations twice (an increment
    /// counted twice). Its outcome is reported as unknown instead.
    Never,
}

/// One connection to the server(s): every concurrent operation pipelines on a clone.
#[derive(Clone)]
enum Conn {
    Single(ConnectionManager, u64),
    Cluster(ClusterConn, u64),
    /// The embedder's connection to a single server (see [`ExternalRedis`]).
    External(Arc<dyn ExternalRedis>),
}

impl Conn {
    fn generation(&self) -> u64 {
        match self {
            Conn::Single(_, g) | Conn::Cluster(_, g) => *g,
            Conn::External(_) => 0,
        }
    }
}

/// A connection to a single server that the embedder drives itself. The Node binding supplies
/// one that runs its socket from libuv's loop on the JS thread, so that no reply needs a
/// wake-up across threads. The handler keeps every rule (scripts, compare-and-set, tombstones,
/// retries, timeouts, error mapping); this only carries packed commands and raw replies.
pub trait ExternalRedis: Send + Sync {
    /// Whether it can serve the calling thread now; otherwise the handler uses its own
    /// connection (tokio), e.g. on another thread than the one the connection belongs to.
    fn available(&self) -> bool;
    /// Sends one packed command; resolves to its raw reply (a server error is a
    /// [`Value::ServerError`], as the crate's connections return it).
    fn request<'a>(&'a self, cmd: &'a redis::Cmd) -> RedisFuture<'a, Value>;
    /// Sends a pipeline's packed commands; resolves to the last `count` of the
    /// `offset + count` replies (the crate's `req_packed_commands` contract).
    fn request_pipeline<'a>(
        &'a self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>>;
    /// Closes the connection (operations after this may open a new one).
    fn close(&self);
}

/// Where a single server is and how to log in: what an [`ExternalRedis`] needs.
#[derive(Clone)]
pub struct RedisEndpoint {
    /// The address.
    pub addr: RedisAddr,
    /// ACL user name.
    pub username: Option<String>,
    /// Password.
    pub password: Option<String>,
    /// Database number (`SELECT` when not 0).
    pub db: i64,
    /// Time allowed to open a connection.
    pub connect_timeout: Duration,
}

impl fmt::Debug for RedisEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisEndpoint")
            .field("addr", &self.addr)
            .field("username", &self.username)
            .field("password", &redacted(&self.password))
            .field("db", &self.db)
            .finish()
    }
}

/// A plain (non-TLS) address of a single server.
#[derive(Clone, Debug)]
pub enum RedisAddr {
    /// Host name or IP address, and port.
    Tcp(String, u16),
    /// A unix socket path.
    Unix(PathBuf),
}

/// The endpoint of a plain TCP or unix-socket target (TLS has none: it keeps the crate's path).
fn endpoint_of(info: &ConnectionInfo, connect_timeout: Duration) -> Option<RedisEndpoint> {
    let addr = match info.addr() {
        ConnectionAddr::Tcp(host, port) => RedisAddr::Tcp(host.clone(), *port),
        ConnectionAddr::Unix(path) => RedisAddr::Unix(path.clone()),
        _ => return None,
    };
    let r = info.redis_settings();
    Some(RedisEndpoint {
        addr,
        username: r.username().map(str::to_owned),
        password: r.password().map(str::to_owned),
        db: r.db(),
        connect_timeout,
    })
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a redis::Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c, _) => c.req_packed_command(cmd),
            Conn::Cluster(c, _) => c.req_packed_command(cmd),
            Conn::External(c) => c.request(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c, _) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c, _) => c.req_packed_commands(pipeline, offset, count),
            Conn::External(c) => c.request_pipeline(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c, _) => c.get_db(),
            Conn::Cluster(c, _) => c.get_db(),
            Conn::External(_) => 0,
        }
    }
}

/// Where the server is, for messages: `host:port` (with TLS noted) or the unix socket path.
fn server_of(info: &ConnectionInfo) -> String {
    match info.addr() {
        ConnectionAddr::Tcp(host, port) => format!("{host}:{port}"),
        ConnectionAddr::TcpTls { host, port, .. } => format!("{host}:{port} (TLS)"),
        ConnectionAddr::Unix(path) => format!("unix:{}", path.display()),
        other => format!("{other:?}"),
    }
}

fn invalid(msg: impl Into<String>) -> SessionError {
    SessionError::InvalidOption(msg.into())
}

fn check_timeout(name: &str, ms: u64) -> Result<Duration> {
    if ms == 0 || ms > MAX_TIMEOUT_MS {
        return Err(invalid(format!(
            "{name} must be between 1 and {MAX_TIMEOUT_MS} ms, got {ms}"
        )));
    }
    Ok(Duration::from_millis(ms))
}

/// Describes a client-side configuration error from the redis crate. Its messages name the
/// problem ("Invalid database number") and never the URL, so no password can leak through.
fn config_error(context: &str, e: &RedisError) -> SessionError {
    let what = match e.detail() {
        Some(d) => format!("{}: {d}", e.category()),
        // "Invalid database number - InvalidClientConfig": keep the sentence, drop the kind.
        None => {
            let full = e.to_string();
            full.split(" - ")
                .next()
                .unwrap_or_default()
                .trim()
                .to_owned()
        }
    };
    invalid(format!("{context}: {what}"))
}

fn connection_info(conn: &RedisConnection) -> Result<ConnectionInfo> {
    match conn {
        RedisConnection::Url(url) => url_info(url),
        RedisConnection::Parts(p) => parts_info(p),
        RedisConnection::Cluster(_) | RedisConnection::Sentinel(_) => Err(invalid(
            "a cluster or sentinel topology has no single address",
        )),
    }
}

/// The node URLs of a cluster or the sentinels, parsed; `what` names them in messages.
fn node_infos(what: &str, nodes: &[String]) -> Result<Vec<ConnectionInfo>> {
    if nodes.is_empty() {
        return Err(invalid(format!(
            "{what}: the node list is empty; give at least one redis:// or rediss:// URL"
        )));
    }
    nodes
        .iter()
        .enumerate()
        .map(|(i, url)| {
            let info = url_info(url).map_err(|e| invalid(format!("{what}: node {i}: {e}")))?;
            if matches!(info.addr(), ConnectionAddr::Unix(_)) {
                return Err(invalid(format!(
                    "{what}: node {i} is a unix socket; nodes are host:port addresses"
                )));
            }
            Ok(info)
        })
        .collect()
}

/// `host:port` of the first nodes, for messages.
fn nodes_of(infos: &[ConnectionInfo]) -> String {
    let mut list: Vec<String> = infos.iter().take(3).map(server_of).collect();
    if infos.len() > 3 {
        list.push(format!("and {} more", infos.len() - 3));
    }
    list.join(", ")
}

fn tls_certs(opts: &RedisOptions) -> Result<Option<TlsCertificates>> {
    Ok(match &opts.ca_file {
        Some(path) => Some(TlsCertificates {
            client_tls: None,
            root_cert: Some(read_ca_file(path)?),
        }),
        None => None,
    })
}

fn install_tls_provider() {
    // ring is the one provider compiled in; installing it is a no-op when the process already
    // chose one.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn cluster_target(
    c: &RedisCluster,
    opts: &RedisOptions,
    config: ConnectionManagerConfig,
    connect_timeout: Duration,
) -> Result<(Target, String)> {
    let infos = node_infos("cluster", &c.nodes)?;
    if infos.iter().any(|i| i.redis_settings().db() != 0) {
        return Err(invalid(
            "cluster: a Redis Cluster has only database 0; remove the /db from the node URLs",
        ));
    }
    let tls = c.tls || infos.iter().any(is_tls);
    if tls && !c.tls && !infos.iter().all(is_tls) {
        return Err(invalid(
            "cluster: mix of redis:// and rediss:// node URLs; use one scheme for all nodes",
        ));
    }
    // One login for every node: the fields, else the first URL's.
    let first = infos[0].redis_settings();
    let mut redis = RedisConnectionInfo::default();
    if let Some(u) = c
        .username
        .as_deref()
        .filter(|u| !u.is_empty())
        .or(first.username())
    {
        redis = redis.set_username(u);
    }
    if let Some(p) = c
        .password
        .as_deref()
        .filter(|p| !p.is_empty())
        .or(first.password())
    {
        redis = redis.set_password(p);
    }
    let certs = tls_certs(opts)?;
    if tls {
        install_tls_provider();
    } else if certs.is_some() {
        return Err(invalid(
            "tls.caFile needs a TLS connection: use rediss:// node URLs or tls: true",
        ));
    }
    let server = format!("cluster {}", nodes_of(&infos));
    let spec = ClusterSpec {
        seeds: infos,
        redis,
        tls,
        certs,
        config,
        connect_timeout,
    };
    Ok((Target::Cluster(ClusterConn::new(spec)), server))
}

fn sentinel_target(
    c: &RedisSentinel,
    opts: &RedisOptions,
    config: ConnectionManagerConfig,
) -> Result<(Target, String)> {
    if c.master_name.trim().is_empty() {
        return Err(invalid(
            "sentinel: masterName is empty; give the name the sentinels monitor the master under",
        ));
    }
    let infos = node_infos("sentinel", &c.nodes)?;
    let server = format!(
        "master \"{}\" via sentinels {}",
        c.master_name,
        nodes_of(&infos)
    );
    // The sentinels' own credentials come from their URLs, one set for all.
    let creds = |i: &ConnectionInfo| {
        (
            i.redis_settings().username().map(str::to_owned),
            i.redis_settings().password().map(str::to_owned),
        )
    };
    let first = creds(&infos[0]);
    if infos.iter().any(|i| creds(i) != first) {
        return Err(invalid(
            "sentinel: the node URLs carry different credentials; sentinels share one user",
        ));
    }
    let sentinel_tls = infos.iter().any(is_tls);
    if sentinel_tls && !infos.iter().all(is_tls) {
        return Err(invalid(
            "sentinel: mix of redis:// and rediss:// node URLs; use one scheme for all sentinels",
        ));
    }
    let certs = tls_certs(opts)?;
    if certs.is_some() && !c.tls && !sentinel_tls {
        return Err(invalid(
            "tls.caFile needs a TLS connection: use rediss:// sentinel URLs or sentinel tls: true",
        ));
    }
    if c.tls || sentinel_tls {
        install_tls_provider();
    }
    let addrs = infos.iter().map(|i| i.addr().clone());
    let mut b = SentinelClientBuilder::new(addrs, &c.master_name, SentinelServerType::Master)
        .map_err(|e| config_error("sentinel", &e))?;
    if let Some(u) = first.0.as_deref() {
        b = b.set_client_to_sentinel_username(u);
    }
    if let Some(p) = first.1.as_deref() {
        b = b.set_client_to_sentinel_password(p);
    }
    if sentinel_tls {
        b = b.set_client_to_sentinel_tls_mode(TlsMode::Secure);
        if let Some(certs) = &certs {
            b = b.set_client_to_sentinel_certificates(certs.clone());
        }
    }
    if let Some(u) = c.username.as_deref().filter(|u| !u.is_empty()) {
        b = b.set_client_to_redis_username(u);
    }
    if let Some(p) = c.password.as_deref().filter(|p| !p.is_empty()) {
        b = b.set_client_to_redis_password(p);
    }
    if let Some(db) = c.db {
        if db < 0 {
            return Err(invalid(format!("sentinel: db must be 0 or more, got {db}")));
        }
        b = b.set_client_to_redis_db(db);
    }
    if c.tls {
        b = b.set_client_to_redis_tls_mode(TlsMode::Secure);
        if let Some(certs) = certs {
            b = b.set_client_to_redis_certificates(certs);
        }
    }
    let client = b.build().map_err(|e| config_error("sentinel", &e))?;
    Ok((
        Target::Sentinel {
            client: tokio::sync::Mutex::new(client),
            config,
            master_name: c.master_name.clone(),
        },
        server,
    ))
}

fn url_info(url: &str) -> Result<ConnectionInfo> {
    let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    match scheme.as_deref() {
        Some("redis" | "rediss" | "redis+unix" | "unix") => {}
        _ => {
            return Err(invalid(
                "the Redis URL must start with redis://, rediss:// or redis+unix://",
            ))
        }
    }
    let parsed =
        redis::parse_redis_url(url).ok_or_else(|| invalid("the Redis URL is not a valid URL"))?;
    if parsed.fragment().is_some() {
        // `#insecure` would turn off certificate checks; a CA file is the safe way.
        return Err(invalid(
            "the Redis URL must not have a #fragment; certificate checks cannot be disabled, \
             pass tls.caFile to trust a private CA",
        ));
    }
    let info = parsed
        .into_connection_info()
        .map_err(|e| config_error("invalid Redis URL", &e))?;
    check_addr(info.addr())?;
    Ok(info)
}

fn parts_info(p: &RedisParts) -> Result<ConnectionInfo> {
    let host = p.host.clone().unwrap_or_else(|| "127.0.0.1".into());
    if host.is_empty()
        || host
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '/')
    {
        return Err(invalid("redis host must be a host name or IP address"));
    }
    let port = p.port.unwrap_or(6379);
    let addr = if p.tls {
        ConnectionAddr::TcpTls {
            host,
            port,
            insecure: false,
            tls_params: None,
        }
    } else {
        ConnectionAddr::Tcp(host, port)
    };
    check_addr(&addr)?;
    let mut settings = RedisConnectionInfo::default();
    if let Some(db) = p.db {
        if db < 0 {
            return Err(invalid(format!("redis db must be 0 or more, got {db}")));
        }
        settings = settings.set_db(db);
    }
    if let Some(u) = p.username.as_deref().filter(|u| !u.is_empty()) {
        settings = settings.set_username(u);
    }
    if let Some(pw) = p.password.as_deref().filter(|p| !p.is_empty()) {
        settings = settings.set_password(pw);
    }
    let info = addr
        .into_connection_info()
        .map_err(|e| config_error("invalid Redis address", &e))?;
    Ok(info.set_redis_settings(settings))
}

fn check_addr(addr: &ConnectionAddr) -> Result<()> {
    match addr {
        ConnectionAddr::Tcp(host, port) | ConnectionAddr::TcpTls { host, port, .. } => {
            if *port == 0 {
                return Err(invalid("redis port must be between 1 and 65535"));
            }
            if host == "0.0.0.0" || host == "::" {
                return Err(invalid(
                    "redis host cannot be a wildcard address (0.0.0.0 or ::)",
                ));
            }
            Ok(())
        }
        ConnectionAddr::Unix(path) if path.as_os_str().is_empty() => {
            Err(invalid("the redis+unix:// URL needs a socket path"))
        }
        _ => Ok(()),
    }
}

fn is_tls(info: &ConnectionInfo) -> bool {
    matches!(info.addr(), ConnectionAddr::TcpTls { .. })
}

impl RedisSessionHandler {
    /// A handler for the server, cluster or sentinel-watched master at `conn`. Nothing is
    /// connected yet: the first operation connects, so a server that is down is reported by
    /// that operation, not here.
    pub fn new(conn: &RedisConnection, opts: RedisOptions) -> Result<Self> {
        let lifetime_ms = clock::lifetime_ms(opts.minutes)?;
        let tombstone_ms = handler::tombstone_ms(lifetime_ms, opts.tombstone_secs)?;
        let connect_timeout = check_timeout("connectTimeoutMs", opts.connect_timeout_ms)?;
        let command_timeout = check_timeout("commandTimeoutMs", opts.command_timeout_ms)?;
        if opts.prefix.len() > 1024 {
            return Err(invalid("redis prefix must be at most 1024 bytes"));
        }
        if opts.min_replicas > 100 {
            return Err(invalid(format!(
                "minReplicas must be from 0 to 100, got {}",
                opts.min_replicas
            )));
        }
        // Bounded reconnects: 3 attempts ~100 ms and ~200 ms apart, instead of the crate's
        // defaults that give up only after about 10 s against a dead server.
        let config = ConnectionManagerConfig::new()
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(100))
            .set_max_delay(Duration::from_millis(1000))
            .set_exponent_base(2.0)
            .set_connection_timeout(Some(connect_timeout))
            .set_response_timeout(Some(command_timeout));
        let mut endpoint = None;
        let (target, server) = match conn {
            RedisConnection::Cluster(c) => cluster_target(c, &opts, config, connect_timeout)?,
            RedisConnection::Sentinel(c) => sentinel_target(c, &opts, config)?,
            single => {
                let info = connection_info(single)?;
                let server = server_of(&info);
                endpoint = endpoint_of(&info, connect_timeout);
                (
                    Target::Single {
                        client: single_client(info, &opts)?,
                        config,
                    },
                    server,
                )
            }
        };
        Ok(Self {
            target,
            conn: Mutex::new(None),
            endpoint,
            external: OnceLock::new(),
            generation: AtomicU64::new(0),
            prefix: opts.prefix,
            lifetime_ms,
            tombstone_ms,
            command_timeout,
            min_replicas: opts.min_replicas,
            server,
            cas: Script::new(CAS_SCRIPT),
            touch: Script::new(TOUCH_SCRIPT),
            indexed_write: Script::new(INDEXED_WRITE_SCRIPT),
            indexed_touch: Script::new(INDEXED_TOUCH_SCRIPT),
            index_only: Script::new(INDEX_ONLY_SCRIPT),
        })
    }

    /// The TTL sent with every write and touch, in seconds.
    pub fn ttl_seconds(&self) -> u64 {
        clock::ttl_seconds(self.lifetime_ms)
    }

    /// The TTL a destroy gives its tombstone, in seconds: the lifetime's, or the shorter
    /// [`RedisOptions::tombstone_secs`].
    pub fn tombstone_ttl_seconds(&self) -> u64 {
        clock::ttl_seconds(self.tombstone_ms)
    }

    /// The TTL of a user's index, in seconds: the lifetime plus the index's resolution.
    fn index_ttl(&self) -> u64 {
        clock::ttl_seconds(self.lifetime_ms.saturating_add(INDEX_RESOLUTION_MS))
    }

    /// The address and login of a single plain (TCP or unix-socket) server, for an
    /// [`ExternalRedis`]; `None` for TLS, a cluster or a sentinel target.
    pub fn endpoint(&self) -> Option<&RedisEndpoint> {
        self.endpoint.as_ref()
    }

    /// Hands the handler a connection the embedder drives (see [`ExternalRedis`]); used
    /// wherever it is available. Only for a target with an [`Self::endpoint`]; set once.
    pub fn set_external(&self, conn: Arc<dyn ExternalRedis>) -> Result<()> {
        if self.endpoint.is_none() {
            return Err(invalid(
                "an external connection needs a single plain TCP or unix-socket server",
            ));
        }
        self.external
            .set(conn)
            .map_err(|_| invalid("the handler already has an external connection"))
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Whether this handler talks to a Redis Cluster: a script may then touch only keys of one
    /// slot, so anything spanning two sessions' keys runs as separate commands.
    pub fn is_cluster(&self) -> bool {
        matches!(self.target, Target::Cluster(_))
    }

    fn key(&self, id: &str) -> Result<String> {
        id::check_storage_id(id)?;
        Ok(format!("{}{id}", self.prefix))
    }

    /// The keys of `user`'s index: the sorted set and the hash. The user id is the hash tag, so
    /// on a cluster both sit in one slot.
    fn user_keys(&self, user: &str) -> [String; 2] {
        let set = format!("{}user:{{{user}}}", self.prefix);
        let hash = format!("{set}:client");
        [set, hash]
    }

    /// A write of a session linked to `user`, with its index. `expected` is the SHA-1 to
    /// compare with, or `*` for a plain write. On one server (or a sentinel's master) both go
    /// in one script; on a cluster the index sits in another slot than the session, so the
    /// write goes first and the index is updated right after it (a crash between the two only
    /// leaves the index behind, which listings and the next write mend).
    async fn write_indexed(
        &self,
        id: &str,
        data: &str,
        expected: &str,
        user: &str,
        meta: &WriteMeta,
    ) -> Result<redis::Value> {
        let key = self.key(id)?;
        let [set, hash] = self.user_keys(user);
        let ttl = self.ttl_seconds().to_string();
        let now = now_ms();
        let cutoff = now.saturating_sub(self.lifetime_ms).to_string();
        let now = now.to_string();
        let client = client_json(meta);
        let index_ttl = self.index_ttl().to_string();
        if self.is_cluster() {
            let v: redis::Value = if expected == "*" {
                let mut cmd = redis::cmd("SET");
                cmd.arg(&key).arg(data).arg("EX").arg(self.ttl_seconds());
                self.write_query::<(), _>(
                    "write",
                    cmd,
                    None::<fn() -> redis::Cmd>,
                    Retry::OnBrokenConnection,
                )
                .await?;
                redis::Value::Int(1)
            } else {
                let args: [&[u8]; 4] = [
                    expected.as_bytes(),
                    data.as_bytes(),
                    ttl.as_bytes(),
                    TOMBSTONE.as_bytes(),
                ];
                self.write_query(
                    "write",
                    self.cas.cmd(true, &key, &args),
                    Some(|| self.cas.cmd(false, &key, &args)),
                    Retry::Never,
                )
                .await?
            };
            if matches!(v, redis::Value::Int(1)) {
                self.index_apart(&set, &hash, id, &now, &client, &cutoff, &index_ttl)
                    .await?;
            }
            return Ok(v);
        }
        let keys = [key.as_str(), set.as_str(), hash.as_str()];
        let args: [&[u8]; 9] = [
            expected.as_bytes(),
            data.as_bytes(),
            ttl.as_bytes(),
            TOMBSTONE.as_bytes(),
            now.as_bytes(),
            id.as_bytes(),
            client.as_bytes(),
            cutoff.as_bytes(),
            index_ttl.as_bytes(),
        ];
        let retry = if expected == "*" {
            Retry::OnBrokenConnection
        } else {
            Retry::Never
        };
        self.write_query(
            "write",
            self.indexed_write.cmd_keys(true, &keys, &args),
            Some(|| self.indexed_write.cmd_keys(false, &keys, &args)),
            retry,
        )
        .await
    }

    /// The index half of [`INDEXED_WRITE_SCRIPT`] on its own, for a cluster (both keys share
    /// the user's hash tag, so one slot).
    #[allow(clippy::too_many_arguments)]
    async fn index_apart(
        &self,
        set: &str,
        hash: &str,
        id: &str,
        now: &str,
        client: &str,
        cutoff: &str,
        index_ttl: &str,
    ) -> Result<()> {
        let keys = [set, hash];
        let args: [&[u8]; 5] = [
            now.as_bytes(),
            id.as_bytes(),
            client.as_bytes(),
            cutoff.as_bytes(),
            index_ttl.as_bytes(),
        ];
        self.query_or::<redis::Value, _>(
            "write",
            self.index_only.cmd_keys(true, &keys, &args),
            Some(|| self.index_only.cmd_keys(false, &keys, &args)),
        )
        .await
        .map(|_| ())
    }

    /// Runs a pipeline under the command timeout (the index reads).
    async fn query_pipe<T: redis::FromRedisValue>(
        &self,
        op: &'static str,
        pipe: &redis::Pipeline,
    ) -> Result<T> {
        let attempt = async {
            let mut conn = self.conn().await?;
            let r = match pipe.query_async::<T>(&mut conn).await {
                Err(e) if is_broken_connection(&e) || self.is_stale_master(&e) => {
                    self.forget_if_sentinel(&conn);
                    conn = self.conn().await?;
                    pipe.query_async::<T>(&mut conn).await
                }
                r => r,
            };
            r.map_err(|e| self.failed(&conn, op, &e))
        };
        self.bounded(op, attempt).await
    }

    /// The connection, made on first use (inside the runtime that runs the operation).
    async fn conn(&self) -> Result<Conn> {
        if let Some(x) = self.external.get().filter(|x| x.available()) {
            return Ok(Conn::External(Arc::clone(x)));
        }
        if let Some(c) = self
            .conn
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
        {
            return Ok(c.clone());
        }
        match &self.target {
            Target::Single { client, config } => {
                let m = ConnectionManager::new_lazy_with_config(client.clone(), config.clone())
                    .map_err(|e| unavailable(&self.server, "connect", &e))?;
                Ok(self.install(|g| Conn::Single(m, g)))
            }
            // Connects on its first command, and reads the slot map then.
            Target::Cluster(c) => Ok(self.install(|g| Conn::Cluster(c.clone(), g))),
            Target::Sentinel {
                client,
                config,
                master_name,
            } => {
                // One resolution at a time; whoever waited finds the answer installed.
                let mut sentinel = client.lock().await;
                if let Some(c) = self.current() {
                    return Ok(c);
                }
                let master = sentinel
                    .async_get_client()
                    .await
                    .map_err(|e| self.sentinel_error(master_name, &e))?;
                let m = ConnectionManager::new_lazy_with_config(master, config.clone())
                    .map_err(|e| unavailable(&self.server, "connect", &e))?;
                Ok(self.install(|g| Conn::Single(m, g)))
            }
        }
    }

    fn current(&self) -> Option<Conn> {
        self.conn
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Stores a new connection unless another operation stored one first; returns the one kept.
    fn install(&self, make: impl FnOnce(u64) -> Conn) -> Conn {
        let mut slot = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(c) = slot.as_ref() {
            return c.clone();
        }
        let c = make(self.generation.fetch_add(1, Ordering::Relaxed) + 1);
        *slot = Some(c.clone());
        c
    }

    /// Forgets `used` (not a newer connection), so that the next operation asks the sentinels
    /// for the master again.
    fn forget(&self, used: &Conn) {
        let mut slot = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.as_ref().map(Conn::generation) == Some(used.generation()) {
            *slot = None;
        }
    }

    fn sentinel_error(&self, master_name: &str, e: &RedisError) -> SessionError {
        use redis::ErrorKind as K;
        match e.kind() {
            K::MasterNameNotFoundBySentinel => SessionError::Unavailable(format!(
                "redis connect failed: no sentinel knows a reachable master named \"{master_name}\" \
                 (a wrong masterName, or the master is down and no replica has taken over yet): {}",
                self.server
            )),
            _ => unavailable(&self.server, "connect", e),
        }
    }

    /// Runs `cmd` once, and once more when the first try failed on a broken connection (the
    /// manager has started a reconnect by then). Every command used here is idempotent.
    async fn query<T: redis::FromRedisValue>(
        &self,
        op: &'static str,
        cmd: redis::Cmd,
    ) -> Result<T> {
        self.query_or(op, cmd, None::<fn() -> redis::Cmd>).await
    }

    /// [`Self::query`] with the `EVAL` to send when an `EVALSHA` finds no script (`NOSCRIPT`),
    /// built only then: the payload is not copied twice on every write.
    async fn query_or<T: redis::FromRedisValue, F: Fn() -> redis::Cmd + Send + Sync>(
        &self,
        op: &'static str,
        cmd: redis::Cmd,
        noscript: Option<F>,
    ) -> Result<T> {
        self.query_with(op, cmd, noscript, Retry::OnBrokenConnection)
            .await
    }

    async fn query_with<T: redis::FromRedisValue, F: Fn() -> redis::Cmd + Send + Sync>(
        &self,
        op: &'static str,
        cmd: redis::Cmd,
        noscript: Option<F>,
        retry: Retry,
    ) -> Result<T> {
        let attempt = async {
            let mut conn = self.conn().await?;
            let r = match cmd.query_async::<T>(&mut conn).await {
                Err(e) if is_broken_connection(&e) && retry == Retry::OnBrokenConnection => {
                    self.again(&mut conn, &e, &cmd).await
                }
                // A demoted master refused the command: nothing was applied, so a retry is safe.
                Err(e) if self.is_stale_master(&e) => self.again(&mut conn, &e, &cmd).await,
                r => r,
            };
            let r = match (r, &noscript) {
                (Err(e), Some(eval)) if e.code() == Some("NOSCRIPT") => {
                    eval().query_async::<T>(&mut conn).await
                }
                (r, _) => r,
            };
            r.map_err(|e| self.failed_with(&conn, op, &e, retry))
        };
        self.bounded(op, attempt).await
    }

    /// A write (`cmd`) followed by `WAIT min_replicas` in one pipeline, when `min_replicas` is
    /// set; the reply is the write's. Without `min_replicas` this is [`Self::query_or`].
    async fn write_query<T: redis::FromRedisValue, F: Fn() -> redis::Cmd + Send + Sync>(
        &self,
        op: &'static str,
        cmd: redis::Cmd,
        noscript: Option<F>,
        retry: Retry,
    ) -> Result<T> {
        if self.min_replicas == 0 {
            return self.query_with(op, cmd, noscript, retry).await;
        }
        // WAIT answers before the operation's deadline, so its count can be reported.
        let wait_ms = (self.command_timeout.as_millis() * 3 / 4).max(1);
        let started = std::time::Instant::now();
        // A retry (after NOSCRIPT, whose pipelined WAIT already waited for nothing) waits only
        // what is left of the first WAIT's time, so the count still comes before the deadline.
        // Never 0: `WAIT n 0` blocks forever.
        let piped = |c: redis::Cmd| {
            let left = wait_ms.saturating_sub(started.elapsed().as_millis()).max(1);
            let mut p = redis::pipe();
            p.add_command(c)
                .cmd("WAIT")
                .arg(self.min_replicas)
                .arg(u64::try_from(left).unwrap_or(u64::MAX));
            p
        };
        let attempt = async {
            let mut conn = self.conn().await?;
            let p = piped(cmd.clone());
            let mut r = p.query_async::<(T, u32)>(&mut conn).await;
            if let Err(e) = &r {
                if (is_broken_connection(e) && retry == Retry::OnBrokenConnection)
                    || self.is_stale_master(e)
                {
                    self.forget_if_sentinel(&conn);
                    conn = self.conn().await?;
                    r = p.query_async::<(T, u32)>(&mut conn).await;
                }
            }
            let r = match (r, &noscript) {
                (Err(e), Some(eval)) if e.code() == Some("NOSCRIPT") => {
                    piped(eval()).query_async::<(T, u32)>(&mut conn).await
                }
                (r, _) => r,
            };
            let (value, acked) = r.map_err(|e| self.failed_with(&conn, op, &e, retry))?;
            if acked < self.min_replicas {
                return Err(SessionError::Unavailable(format!(
                    "redis {op}: written on {} but acknowledged by {acked} of the {} replica(s) \
                     minReplicas asks for (WAIT) within {wait_ms} ms; it may be lost in a failover",
                    self.server, self.min_replicas
                )));
            }
            Ok(value)
        };
        self.bounded(op, attempt).await
    }

    /// The second try of a command whose first try found a broken connection or a demoted
    /// master: on a sentinel target, on the master the sentinels name now.
    async fn again<T: redis::FromRedisValue>(
        &self,
        conn: &mut Conn,
        first: &RedisError,
        cmd: &redis::Cmd,
    ) -> redis::RedisResult<T> {
        if matches!(self.target, Target::Sentinel { .. }) {
            self.forget(conn);
            match self.conn().await {
                Ok(c) => *conn = c,
                Err(_) => return Err(first.clone()),
            }
        } else if self.is_stale_master(first) {
            return Err(first.clone());
        }
        cmd.query_async::<T>(conn).await
    }

    fn forget_if_sentinel(&self, conn: &Conn) {
        if matches!(self.target, Target::Sentinel { .. }) {
            self.forget(conn);
        }
    }

    /// A reply showing that a sentinel target's master was demoted.
    fn is_stale_master(&self, e: &RedisError) -> bool {
        matches!(self.target, Target::Sentinel { .. }) && e.code() == Some("READONLY")
    }

    /// Maps a failed operation; on a sentinel target a connection failure also drops the
    /// connection, so that the next operation asks the sentinels again.
    fn failed(&self, conn: &Conn, op: &str, e: &RedisError) -> SessionError {
        self.failed_with(conn, op, e, Retry::OnBrokenConnection)
    }

    /// [`Self::failed`]; a compare-and-set that broke mid-flight (`Retry::Never`) says that its
    /// outcome is unknown.
    fn failed_with(&self, conn: &Conn, op: &str, e: &RedisError, retry: Retry) -> SessionError {
        let mapped = if retry == Retry::Never && is_broken_connection(e) {
            SessionError::Unavailable(format!(
                "redis {op} failed: the connection to {} broke during the write, whose outcome \
                 is unknown ({})",
                self.server,
                cause(e)
            ))
        } else {
            map_error(&self.server, op, e)
        };
        if matches!(mapped, SessionError::Unavailable(_)) || self.is_stale_master(e) {
            self.forget_if_sentinel(conn);
        }
        mapped
    }

    async fn bounded<T>(
        &self,
        op: &'static str,
        attempt: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        match tokio::time::timeout(self.command_timeout, attempt).await {
            Ok(r) => r,
            Err(_) => {
                // A sentinel target's master may be gone: ask the sentinels next time.
                if matches!(self.target, Target::Sentinel { .. }) {
                    self.conn
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .take();
                }
                Err(SessionError::Unavailable(format!(
                    "redis {op} failed: the server at {} did not answer within {} ms (timeout)",
                    self.server,
                    self.command_timeout.as_millis()
                )))
            }
        }
    }
}

/// Now, in ms since the Unix epoch (scores of the user index).
fn now_ms() -> i64 {
    use crate::clock::Clock as _;
    clock::SystemClock.now_ms()
}

/// `[ip, user agent]` as JSON for the user index, or `""` when the write has neither.
fn client_json(meta: &WriteMeta) -> String {
    if meta.ip.is_none() && meta.user_agent.is_none() {
        return String::new();
    }
    serde_json::json!([meta.ip, meta.user_agent]).to_string()
}

/// A stored payload as text: taken over without a copy when it is UTF-8 (always, for what
/// this driver writes), else with the invalid bytes replaced.
fn utf8(b: Vec<u8>) -> String {
    String::from_utf8(b).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// The CAS script's reply: written, or what the record holds now.
fn cas_reply(v: redis::Value) -> Result<CasOutcome> {
    let current = match v {
        redis::Value::Int(1) => return Ok(CasOutcome::Written),
        redis::Value::Array(mut items) if items.len() == 1 => match items.pop() {
            Some(redis::Value::BulkString(b)) => utf8(b),
            Some(redis::Value::SimpleString(s)) => s,
            _ => String::new(),
        },
        _ => {
            return Err(SessionError::Io(
                "redis write failed: unexpected reply to the compare-and-set script".into(),
            ))
        }
    };
    // A record equal to this payload is another request's identical write (two requests
    // incrementing one counter), never taken as this one's: it is replayed onto.
    Ok(CasOutcome::Conflict(current))
}

/// The client of one server, with the CA file when it is a TLS one.
fn single_client(info: ConnectionInfo, opts: &RedisOptions) -> Result<Client> {
    if is_tls(&info) {
        install_tls_provider();
        match tls_certs(opts)? {
            Some(certs) => Client::build_with_tls(info, certs)
                .map_err(|e| config_error("tls.caFile cannot be used", &e)),
            None => Client::open(info).map_err(|e| config_error("invalid Redis URL", &e)),
        }
    } else {
        if opts.ca_file.is_some() {
            return Err(invalid(
                "tls.caFile needs a TLS connection: use a rediss:// URL or tls: true",
            ));
        }
        Client::open(info).map_err(|e| config_error("invalid Redis URL", &e))
    }
}

fn read_ca_file(path: &PathBuf) -> Result<Vec<u8>> {
    // Read once at construction, like any config file: a wrong path is reported at once.
    let pem =
        std::fs::read(path).map_err(|e| invalid(format!("tls.caFile cannot be read: {e}")))?;
    if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
        return Err(invalid("tls.caFile holds no PEM certificate"));
    }
    Ok(pem)
}

fn is_broken_connection(e: &RedisError) -> bool {
    !e.is_timeout() && (e.is_connection_dropped() || e.is_unrecoverable_error())
}

/// Why the server cannot be reached, in words a user can act on: refused, DNS, timeout or TLS.
fn cause(e: &RedisError) -> String {
    let text = e.to_string();
    let lower = text.to_ascii_lowercase();
    if e.is_connection_refusal() || lower.contains("connection refused") {
        "connection refused: nothing listens there".into()
    } else if e.is_timeout() || lower.contains("timed out") {
        "timeout: the server did not answer in time".into()
    } else if lower.contains("lookup")
        || lower.contains("name or service not known")
        || lower.contains("no address")
        || lower.contains("name resolution")
    {
        format!("DNS: the host name does not resolve ({text})")
    } else if lower.contains("tls") || lower.contains("certificate") || lower.contains("handshake")
    {
        format!("TLS: {text}")
    } else {
        format!("{}: {text}", e.category())
    }
}

fn unavailable(server: &str, op: &str, e: &RedisError) -> SessionError {
    SessionError::Unavailable(format!(
        "redis {op} failed: the server at {server} is unavailable ({})",
        cause(e)
    ))
}

/// Maps a failed command. Messages name the kind of failure and the server's error code, never
/// the key (it holds the session id) or the connection settings.
fn map_error(server: &str, op: &str, e: &RedisError) -> SessionError {
    use redis::ErrorKind as K;
    use redis::ServerErrorKind as S;
    if e.is_io_error() || e.is_timeout() || e.is_connection_dropped() || e.is_connection_refusal() {
        return unavailable(server, op, e);
    }
    match e.kind() {
        K::AuthenticationFailed => SessionError::Unavailable(format!(
            "redis {op} failed: the server at {server} rejected the credentials"
        )),
        K::Server(S::BusyLoading | S::MasterDown | S::TryAgain | S::ClusterDown) => {
            unavailable(server, op, e)
        }
        // The cluster client lost every node, or all of them refused it (bad credentials).
        K::ClusterConnectionNotFound => SessionError::Unavailable(format!(
            "redis {op} failed: no node of the {server} gave its slot map ({})",
            e.detail()
                .unwrap_or("check the node addresses and the credentials")
        )),
        _ => match e.code() {
            Some(code @ ("NOAUTH" | "WRONGPASS" | "NOPERM")) => SessionError::Unavailable(format!(
                "redis {op} failed: the server at {server} refused access ({code})"
            )),
            Some(code) => SessionError::Io(format!("redis {op} failed: the server replied {code}")),
            None => SessionError::Io(format!("redis {op} failed: {}", e.category())),
        },
    }
}

/// Releases a blocking lock only while it still holds the releaser's token (compare and
/// delete). KEYS[1]: the lock key. ARGV[1]: the token.
const UNLOCK_SCRIPT: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then
return redis.call('DEL', KEYS[1]) end
return 0";

static UNLOCK: std::sync::LazyLock<Script> =
    std::sync::LazyLock::new(|| Script::new(UNLOCK_SCRIPT));

// Opt-in blocking (see `crate::blocking`): the lock of a session is its own key, `<key>:lock`
// (the same slot as the session on a cluster: it shares the key's hash tag, if any), set with
// `SET NX PX` (taken only when absent, expiring by itself) holding a random token.
impl RedisSessionHandler {
    fn lock_key(&self, id: &str) -> Result<String> {
        Ok(format!("{}:lock", self.key(id)?))
    }

    async fn try_lock(&self, id: &str, ttl_ms: u64) -> Result<Option<String>> {
        let token = crate::blocking::new_token()?;
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.lock_key(id)?)
            .arg(&token)
            .arg("NX")
            .arg("PX")
            .arg(ttl_ms.max(1));
        let v: redis::Value = self.query("lock", cmd).await?;
        Ok(match v {
            redis::Value::Nil => None,
            _ => Some(token),
        })
    }

    async fn release_lock(&self, id: &str, token: &str) -> Result<()> {
        let key = self.lock_key(id)?;
        let args: [&[u8]; 1] = [token.as_bytes()];
        self.query_or::<redis::Value, _>(
            "unlock",
            UNLOCK.cmd(true, &key, &args),
            Some(|| UNLOCK.cmd(false, &key, &args)),
        )
        .await
        .map(|_| ())
    }
}

#[async_trait]
impl SessionHandler for RedisSessionHandler {
    async fn close(&self) -> Result<()> {
        if let Some(x) = self.external.get() {
            x.close();
        }
        // Dropping the last clone of the connection closes it.
        self.conn
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        Ok(())
    }

    async fn read(&self, id: &str) -> Result<String> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(self.key(id)?);
        let v: Option<Vec<u8>> = self.query("read", cmd).await?;
        Ok(match v {
            Some(b) if b != TOMBSTONE.as_bytes() => utf8(b),
            _ => String::new(),
        })
    }

    async fn write(&self, id: &str, data: &str, meta: &WriteMeta) -> Result<()> {
        if let Some(user) = &meta.user_id {
            return self
                .write_indexed(id, data, "*", user, meta)
                .await
                .map(|_| ());
        }
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key(id)?)
            .arg(data)
            .arg("EX")
            .arg(self.ttl_seconds());
        self.write_query::<(), _>(
            "write",
            cmd,
            None::<fn() -> redis::Cmd>,
            Retry::OnBrokenConnection,
        )
        .await
    }

    async fn destroy(&self, id: &str) -> Result<()> {
        // A tombstone for its TTL, only where a record exists (see the module docs).
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key(id)?)
            .arg(TOMBSTONE)
            .arg("EX")
            .arg(self.tombstone_ttl_seconds())
            .arg("XX");
        self.write_query::<Value, _>(
            "destroy",
            cmd,
            None::<fn() -> redis::Cmd>,
            Retry::OnBrokenConnection,
        )
        .await
        .map(|_| ())
    }

    async fn gc(&self, _max_lifetime_secs: u64) -> Result<u64> {
        // Redis expires sessions itself; what is left is the user index's stale entries.
        self.prune_user_indexes().await?;
        Ok(0)
    }

    async fn touch(&self, id: &str) -> Result<bool> {
        let ttl = self.ttl_seconds().to_string();
        let key = self.key(id)?;
        let args: [&[u8]; 2] = [ttl.as_bytes(), TOMBSTONE.as_bytes()];
        let n: i64 = self
            .query_or(
                "touch",
                self.touch.cmd(true, &key, &args),
                Some(|| self.touch.cmd(false, &key, &args)),
            )
            .await?;
        Ok(n == 1)
    }

    async fn is_tombstone(&self, id: &str) -> Result<bool> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(self.key(id)?);
        let v: Option<Vec<u8>> = self.query("read", cmd).await?;
        Ok(v.is_some_and(|b| b == TOMBSTONE.as_bytes()))
    }

    async fn write_if_unchanged(
        &self,
        id: &str,
        data: &str,
        previous: &str,
        meta: &WriteMeta,
    ) -> Result<CasOutcome> {
        let expected = if previous.is_empty() {
            String::new()
        } else {
            sha1_hex(previous)
        };
        if let Some(user) = &meta.user_id {
            let v = self.write_indexed(id, data, &expected, user, meta).await?;
            return cas_reply(v);
        }
        let ttl = self.ttl_seconds().to_string();
        let key = self.key(id)?;
        let args: [&[u8]; 4] = [
            expected.as_bytes(),
            data.as_bytes(),
            ttl.as_bytes(),
            TOMBSTONE.as_bytes(),
        ];
        // Not retried on a broken connection (see `Retry::Never`).
        let v: redis::Value = self
            .write_query(
                "write",
                self.cas.cmd(true, &key, &args),
                Some(|| self.cas.cmd(false, &key, &args)),
                Retry::Never,
            )
            .await?;
        cas_reply(v)
    }

    fn supports_cas(&self) -> bool {
        true
    }

    async fn lock(&self, id: &str, ttl_ms: u64) -> Result<Option<String>> {
        self.try_lock(id, ttl_ms).await
    }

    async fn unlock(&self, id: &str, token: &str) -> Result<()> {
        self.release_lock(id, token).await
    }

    fn supports_lock(&self) -> bool {
        true
    }

    async fn touch_with_meta(&self, id: &str, meta: &WriteMeta) -> Result<bool> {
        let Some(user) = &meta.user_id else {
            return self.touch(id).await;
        };
        if self.is_cluster() {
            // The index is in another slot (see write_indexed): the touch, then the index.
            if !self.touch(id).await? {
                return Ok(false);
            }
            let [set, hash] = self.user_keys(user);
            let now = now_ms();
            let cutoff = now.saturating_sub(self.lifetime_ms).to_string();
            let index_ttl = self.index_ttl().to_string();
            self.index_apart(
                &set,
                &hash,
                id,
                &now.to_string(),
                &client_json(meta),
                &cutoff,
                &index_ttl,
            )
            .await?;
            return Ok(true);
        }
        let key = self.key(id)?;
        let [set, hash] = self.user_keys(user);
        let ttl = self.ttl_seconds().to_string();
        let now = now_ms().to_string();
        let client = client_json(meta);
        let index_ttl = self.index_ttl().to_string();
        let keys = [key.as_str(), set.as_str(), hash.as_str()];
        let args: [&[u8]; 6] = [
            ttl.as_bytes(),
            TOMBSTONE.as_bytes(),
            now.as_bytes(),
            id.as_bytes(),
            client.as_bytes(),
            index_ttl.as_bytes(),
        ];
        let n: i64 = self
            .query_or(
                "touch",
                self.indexed_touch.cmd_keys(true, &keys, &args),
                Some(|| self.indexed_touch.cmd_keys(false, &keys, &args)),
            )
            .await?;
        Ok(n == 1)
    }

    async fn user_sessions(&self, user: &str) -> Result<Vec<UserRecord>> {
        let [set, hash] = self.user_keys(user);
        let mut pipe = redis::pipe();
        pipe.cmd("ZRANGE")
            .arg(&set)
            .arg(0)
            .arg(-1)
            .arg("WITHSCORES")
            .cmd("HGETALL")
            .arg(&hash);
        let (entries, clients): (
            Vec<(String, f64)>,
            std::collections::HashMap<String, String>,
        ) = self.query_pipe("user sessions", &pipe).await?;
        // Ids the index holds are checked before they form keys.
        let entries: Vec<(String, f64)> = entries
            .into_iter()
            .filter(|(id, _)| id::check_storage_id(id).is_ok())
            .collect();
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        // One GET per session. On a cluster the sessions sit in other slots than the index (and
        // than each other), so each GET goes on its own to its slot's master; elsewhere they
        // share one pipeline.
        let payloads: Vec<Option<Vec<u8>>> = if self.is_cluster() {
            let mut out = Vec::with_capacity(entries.len());
            for (id, _) in &entries {
                let mut get = redis::cmd("GET");
                get.arg(self.key(id)?);
                out.push(self.query("user sessions", get).await?);
            }
            out
        } else {
            let mut gets = redis::pipe();
            for (id, _) in &entries {
                gets.cmd("GET").arg(self.key(id)?);
            }
            self.query_pipe("user sessions", &gets).await?
        };
        Ok(entries
            .into_iter()
            .zip(payloads)
            .map(|((id, score), payload)| {
                let payload = match payload {
                    Some(b) if b != TOMBSTONE.as_bytes() => {
                        String::from_utf8_lossy(&b).into_owned()
                    }
                    _ => String::new(),
                };
                let (ip, user_agent) = clients
                    .get(&id)
                    .and_then(|j| serde_json::from_str::<(Option<String>, Option<String>)>(j).ok())
                    .unwrap_or_default();
                #[allow(clippy::cast_possible_truncation)]
                UserRecord {
                    id,
                    payload,
                    last_activity_ms: score as i64,
                    ip,
                    user_agent,
                }
            })
            .collect())
    }

    async fn unlink_user(&self, user: &str, ids: &[String]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let [set, hash] = self.user_keys(user);
        let mut pipe = redis::pipe();
        pipe.cmd("ZREM").arg(&set).arg(ids).ignore();
        pipe.cmd("HDEL").arg(&hash).arg(ids).ignore();
        self.query_pipe::<()>("user sessions", &pipe).await
    }
}

/// Index keys examined per `SCAN` step, and sessions checked per pipeline, by the gc of the
/// user index.
const GC_BATCH: usize = 500;

// gc of the user index (issue 13): entries of sessions that are gone are removed from every
// user's index, not only from the indexes a listing or a write happens to meet.
impl RedisSessionHandler {
    /// Removes, from every user's index, the entries whose session is gone (expired, destroyed:
    /// a tombstone, or never there); returns how many. Sets are found with `SCAN … TYPE zset`
    /// under the prefix, a few hundred keys a step, so a large keyspace never blocks the
    /// server. On a cluster the index is spread over every master and `SCAN` sees one node:
    /// there listings prune what they meet, and each index expires one lifetime after its last
    /// write.
    async fn prune_user_indexes(&self) -> Result<u64> {
        if self.is_cluster() {
            return Ok(0);
        }
        let pattern = format!("{}user:{{*", redis_glob_escape(&self.prefix));
        let mut cursor: u64 = 0;
        let mut pruned = 0u64;
        loop {
            let mut scan = redis::cmd("SCAN");
            scan.arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(GC_BATCH)
                .arg("TYPE")
                .arg("zset");
            let (next, sets): (u64, Vec<String>) = self.query("gc", scan).await?;
            for set in sets {
                pruned += self.prune_user_index(&set).await?;
            }
            if next == 0 {
                return Ok(pruned);
            }
            cursor = next;
        }
    }

    /// [`Self::prune_user_indexes`] for one user's sorted set (and its `:client` hash).
    async fn prune_user_index(&self, set: &str) -> Result<u64> {
        let mut range = redis::cmd("ZRANGE");
        range.arg(set).arg(0).arg(-1);
        let ids: Vec<String> = self.query("gc", range).await?;
        let mut stale: Vec<String> = Vec::new();
        for chunk in ids.chunks(GC_BATCH) {
            let mut pipe = redis::pipe();
            let mut checked = Vec::with_capacity(chunk.len());
            for id in chunk {
                match self.key(id) {
                    Ok(key) => {
                        pipe.cmd("STRLEN").arg(key);
                        checked.push(id);
                    }
                    // An entry that cannot be a session id is stale by nature.
                    Err(_) => stale.push(id.clone()),
                }
            }
            if checked.is_empty() {
                continue;
            }
            let lens: Vec<usize> = self.query_pipe("gc", &pipe).await?;
            for (id, len) in checked.into_iter().zip(lens) {
                // Absent (expired or never written), or the one-byte tombstone of a destroy;
                // no payload is that short.
                if len <= TOMBSTONE.len() {
                    stale.push(id.clone());
                }
            }
        }
        if stale.is_empty() {
            return Ok(0);
        }
        let hash = format!("{set}:client");
        let mut pipe = redis::pipe();
        pipe.cmd("ZREM").arg(set).arg(&stale).ignore();
        pipe.cmd("HDEL").arg(&hash).arg(&stale).ignore();
        self.query_pipe::<()>("gc", &pipe).await?;
        Ok(stale.len() as u64)
    }
}

/// `s` with the glob characters of `SCAN … MATCH` escaped, so a prefix is matched literally.
fn redis_glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_patterns_match_the_prefix_literally() {
        assert_eq!(redis_glob_escape("app:"), "app:");
        assert_eq!(redis_glob_escape("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
    }

    fn opts() -> RedisOptions {
        RedisOptions::default()
    }

    fn err_of(conn: RedisConnection, o: RedisOptions) -> SessionError {
        match RedisSessionHandler::new(&conn, o) {
            Ok(_) => panic!("expected an error"),
            Err(e) => e,
        }
    }

    #[test]
    fn accepts_the_url_forms() {
        for url in [
            "redis://127.0.0.1:6380",
            "redis://user:pw@127.0.0.1:6380/3",
            "redis://:pw@localhost/0",
            "rediss://localhost:6390",
            "redis+unix:///tmp/redis.sock",
            "unix:///tmp/redis.sock?db=2",
        ] {
            let r = RedisSessionHandler::new(&RedisConnection::Url(url.into()), opts());
            assert!(r.is_ok(), "{url}: {:?}", r.err());
        }
    }

    #[test]
    fn bad_urls_are_invalid_options_without_the_password() {
        for url in [
            "http://user:hunter2pw@host:1/0",
            "redis://user:hunter2pw@host:1/notadb",
            "redis://user:hunter2pw@host:99999/0",
            "redis://user:hunter2pw@0.0.0.0:6379",
            "rediss://user:hunter2pw@host:6379/#insecure",
            "redis://user:hunter2pw@[bad/0",
            "hunter2pw",
            "",
        ] {
            let e = err_of(RedisConnection::Url(url.into()), opts());
            assert!(matches!(e, SessionError::InvalidOption(_)), "{url}: {e:?}");
            assert!(!e.to_string().contains("hunter2pw"), "{url}: {e}");
        }
    }

    #[test]
    fn parts_are_checked() {
        let ok = RedisConnection::Parts(RedisParts {
            host: Some("127.0.0.1".into()),
            port: Some(7000),
            username: Some("u".into()),
            password: Some("hunter2pw".into()),
            db: Some(1),
            tls: false,
        });
        assert!(RedisSessionHandler::new(&ok, opts()).is_ok());
        assert!(!format!("{ok:?}").contains("hunter2pw"));
        for bad in [
            RedisParts {
                port: Some(0),
                ..Default::default()
            },
            RedisParts {
                host: Some(String::new()),
                ..Default::default()
            },
            RedisParts {
                host: Some("0.0.0.0".into()),
                ..Default::default()
            },
            RedisParts {
                db: Some(-1),
                ..Default::default()
            },
        ] {
            let e = err_of(RedisConnection::Parts(bad), opts());
            assert!(matches!(e, SessionError::InvalidOption(_)), "{e:?}");
        }
    }

    #[test]
    fn options_are_checked() {
        let url = || RedisConnection::Url("redis://127.0.0.1:6380".into());
        for o in [
            RedisOptions {
                minutes: 0.0,
                ..opts()
            },
            RedisOptions {
                minutes: f64::NAN,
                ..opts()
            },
            RedisOptions {
                connect_timeout_ms: 0,
                ..opts()
            },
            RedisOptions {
                command_timeout_ms: 0,
                ..opts()
            },
            RedisOptions {
                command_timeout_ms: MAX_TIMEOUT_MS + 1,
                ..opts()
            },
            RedisOptions {
                ca_file: Some("/nonexistent/ca.pem".into()),
                ..opts()
            },
        ] {
            let e = err_of(url(), o);
            assert!(matches!(e, SessionError::InvalidOption(_)), "{e:?}");
        }
        let tls = RedisConnection::Url("rediss://localhost:6390".into());
        let e = err_of(
            tls,
            RedisOptions {
                ca_file: Some("/nonexistent/ca.pem".into()),
                ..opts()
            },
        );
        assert!(e.to_string().contains("tls.caFile"), "{e}");
    }

    #[test]
    fn the_index_scripts_use_the_resolution_constant() {
        let lit = format!("- {INDEX_RESOLUTION_MS} then return 1 end");
        assert!(INDEXED_WRITE_SCRIPT.contains(&lit));
        assert!(INDEXED_TOUCH_SCRIPT.contains(&lit));
        assert!(INDEX_ONLY_SCRIPT.contains(&lit));
    }

    #[test]
    fn ttl_rounds_up_to_whole_seconds() {
        let h = |m: f64| {
            RedisSessionHandler::new(
                &RedisConnection::Url("redis://127.0.0.1:6380".into()),
                RedisOptions {
                    minutes: m,
                    ..opts()
                },
            )
            .unwrap()
        };
        assert_eq!(h(120.0).ttl_seconds(), 7200);
        assert_eq!(h(0.001).ttl_seconds(), 1);
        assert_eq!(h(1.0 / 60.0 * 2.5).ttl_seconds(), 3);
    }

    #[tokio::test]
    async fn a_dead_server_rejects_as_unavailable_within_the_timeout() {
        // Bind then drop: nothing listens on this port any more.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let h = RedisSessionHandler::new(
            &RedisConnection::Url(format!("redis://127.0.0.1:{port}")),
            RedisOptions {
                command_timeout_ms: 500,
                ..opts()
            },
        )
        .unwrap();
        let started = std::time::Instant::now();
        let e = h.read(&"a".repeat(40)).await.unwrap_err();
        assert!(matches!(e, SessionError::Unavailable(_)), "{e:?}");
        assert!(started.elapsed() < Duration::from_millis(1000));
    }
}
