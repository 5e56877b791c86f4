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
//! the same step. `destroy` leaves a tombstone, [`TOMBSTONE`] with the TTL (`SET … XX`: only over
//! a record that exists), which reads as no session and never matches; `touch` is a script too,
//! so a tombstone is never refreshed and answers `false`. Every command touches one key, so the
//! driver works unchanged on a cluster.

use crate::clock;
use crate::error::{Result, SessionError};
use crate::handler::{CasOutcome, SessionHandler, WriteMeta, TOMBSTONE};
use crate::id;
use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{
    Client, ConnectionAddr, ConnectionInfo, IntoConnectionInfo, RedisConnectionInfo, RedisError,
    TlsCertificates,
};
use sha1::{Digest, Sha1};
use std::fmt;
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};
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
}

/// Where the Redis server is.
#[derive(Clone)]
pub enum RedisConnection {
    /// `redis://[user:pass@]host:port/db`, `rediss://…` (TLS) or `redis+unix:///path`.
    Url(String),
    /// The same, as separate fields.
    Parts(RedisParts),
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
}

impl Default for RedisOptions {
    fn default() -> Self {
        Self {
            prefix: DEFAULT_PREFIX.into(),
            minutes: 120.0,
            connect_timeout_ms: DEFAULT_CONNECT_TIMEOUT_MS,
            command_timeout_ms: DEFAULT_COMMAND_TIMEOUT_MS,
            ca_file: None,
        }
    }
}

/// Sessions in Redis: `SET key payload EX ttl`, `GET`, `DEL`, `EXPIRE`.
pub struct RedisSessionHandler {
    client: Client,
    config: ConnectionManagerConfig,
    // Created on first use (it needs a tokio runtime); taken out again by `close`.
    manager: Mutex<Option<ConnectionManager>>,
    prefix: String,
    lifetime_ms: i64,
    command_timeout: Duration,
    cas: Script,
    touch: Script,
    // `host:port` or the socket path, for messages (never the credentials).
    server: String,
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
    }
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
    /// A handler for the server at `conn`. Nothing is connected yet: the first operation
    /// connects, so a server that is down is reported by that operation, not here.
    pub fn new(conn: &RedisConnection, opts: RedisOptions) -> Result<Self> {
        let lifetime_ms = clock::lifetime_ms(opts.minutes)?;
        let connect_timeout = check_timeout("connectTimeoutMs", opts.connect_timeout_ms)?;
        let command_timeout = check_timeout("commandTimeoutMs", opts.command_timeout_ms)?;
        if opts.prefix.len() > 1024 {
            return Err(invalid("redis prefix must be at most 1024 bytes"));
        }
        let info = connection_info(conn)?;
        let server = server_of(&info);
        let client = if is_tls(&info) {
            // ring is the one provider compiled in; installing it is a no-op when the process
            // already chose one.
            let _ = rustls::crypto::ring::default_provider().install_default();
            match &opts.ca_file {
                Some(path) => {
                    let pem = read_ca_file(path)?;
                    let certs = TlsCertificates {
                        client_tls: None,
                        root_cert: Some(pem),
                    };
                    Client::build_with_tls(info, certs)
                        .map_err(|e| config_error("tls.caFile cannot be used", &e))?
                }
                None => Client::open(info).map_err(|e| config_error("invalid Redis URL", &e))?,
            }
        } else {
            if opts.ca_file.is_some() {
                return Err(invalid(
                    "tls.caFile needs a TLS connection: use a rediss:// URL or tls: true",
                ));
            }
            Client::open(info).map_err(|e| config_error("invalid Redis URL", &e))?
        };
        // Bounded reconnects: 3 attempts ~100 ms and ~200 ms apart, instead of the crate's
        // defaults that give up only after about 10 s against a dead server.
        let config = ConnectionManagerConfig::new()
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(100))
            .set_max_delay(Duration::from_millis(1000))
            .set_exponent_base(2.0)
            .set_connection_timeout(Some(connect_timeout))
            .set_response_timeout(Some(command_timeout));
        Ok(Self {
            client,
            config,
            manager: Mutex::new(None),
            prefix: opts.prefix,
            lifetime_ms,
            command_timeout,
            server,
            cas: Script::new(CAS_SCRIPT),
            touch: Script::new(TOUCH_SCRIPT),
        })
    }

    /// The TTL sent with every write and touch, in seconds.
    pub fn ttl_seconds(&self) -> u64 {
        clock::ttl_seconds(self.lifetime_ms)
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn key(&self, id: &str) -> Result<String> {
        id::check_storage_id(id)?;
        Ok(format!("{}{id}", self.prefix))
    }

    fn manager(&self) -> Result<ConnectionManager> {
        let mut slot = self.manager.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(m) = slot.as_ref() {
            return Ok(m.clone());
        }
        let m = ConnectionManager::new_lazy_with_config(self.client.clone(), self.config.clone())
            .map_err(|e| unavailable(&self.server, "connect", &e))?;
        *slot = Some(m.clone());
        Ok(m)
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
        let attempt = async {
            let mut conn = self.manager()?;
            let r = match cmd.query_async::<T>(&mut conn).await {
                Err(e) if is_broken_connection(&e) => cmd.query_async::<T>(&mut conn).await,
                r => r,
            };
            let r = match (r, &noscript) {
                (Err(e), Some(eval)) if e.code() == Some("NOSCRIPT") => {
                    eval().query_async::<T>(&mut conn).await
                }
                (r, _) => r,
            };
            r.map_err(|e| map_error(&self.server, op, &e))
        };
        match tokio::time::timeout(self.command_timeout, attempt).await {
            Ok(r) => r,
            Err(_) => Err(SessionError::Unavailable(format!(
                "redis {op} failed: the server at {} did not answer within {} ms (timeout)",
                self.server,
                self.command_timeout.as_millis()
            ))),
        }
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
        _ => match e.code() {
            Some(code @ ("NOAUTH" | "WRONGPASS" | "NOPERM")) => SessionError::Unavailable(format!(
                "redis {op} failed: the server at {server} refused access ({code})"
            )),
            Some(code) => SessionError::Io(format!("redis {op} failed: the server replied {code}")),
            None => SessionError::Io(format!("redis {op} failed: {}", e.category())),
        },
    }
}

#[async_trait]
impl SessionHandler for RedisSessionHandler {
    async fn close(&self) -> Result<()> {
        // Dropping the last clone of the manager closes its connection.
        self.manager
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
            Some(b) if b != TOMBSTONE.as_bytes() => String::from_utf8_lossy(&b).into_owned(),
            _ => String::new(),
        })
    }

    async fn write(&self, id: &str, data: &str, _meta: &WriteMeta) -> Result<()> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key(id)?)
            .arg(data)
            .arg("EX")
            .arg(self.ttl_seconds());
        self.query::<()>("write", cmd).await
    }

    async fn destroy(&self, id: &str) -> Result<()> {
        // A tombstone for the lifetime, only where a record exists (see the module docs).
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key(id)?)
            .arg(TOMBSTONE)
            .arg("EX")
            .arg(self.ttl_seconds())
            .arg("XX");
        self.query::<redis::Value>("destroy", cmd).await.map(|_| ())
    }

    async fn gc(&self, _max_lifetime_secs: u64) -> Result<u64> {
        // Redis expires keys itself.
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

    async fn write_if_unchanged(
        &self,
        id: &str,
        data: &str,
        previous: &str,
        _meta: &WriteMeta,
    ) -> Result<CasOutcome> {
        let expected = if previous.is_empty() {
            String::new()
        } else {
            sha1_hex(previous)
        };
        let ttl = self.ttl_seconds().to_string();
        let key = self.key(id)?;
        let args: [&[u8]; 4] = [
            expected.as_bytes(),
            data.as_bytes(),
            ttl.as_bytes(),
            TOMBSTONE.as_bytes(),
        ];
        // Not retried on a broken connection (see `query_once_or`).
        let v: redis::Value = self
            .query_once_or("write", self.cas.cmd(true, &key, &args), || {
                self.cas.cmd(false, &key, &args)
            })
            .await?;
        let current = match v {
            redis::Value::Int(1) => return Ok(CasOutcome::Written),
            redis::Value::Array(mut items) if items.len() == 1 => match items.pop() {
                Some(redis::Value::BulkString(b)) => String::from_utf8_lossy(&b).into_owned(),
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
        // incrementing one counter), never this one's: it must be replayed onto, not taken as
        // written.
        Ok(CasOutcome::Conflict(current))
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
}

/// Releases a blocking lock only while it still holds the releaser's token (compare and
/// delete). KEYS[1]: the lock key. ARGV[1]: the token.
const UNLOCK_SCRIPT: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then
return redis.call('DEL', KEYS[1]) end
return 0";

static UNLOCK: std::sync::LazyLock<Script> =
    std::sync::LazyLock::new(|| Script::new(UNLOCK_SCRIPT));

// Opt-in blocking (see `crate::blocking`): the lock of a session is its own key, `<key>:lock`,
// set with `SET NX PX` (taken only when absent, expiring by itself) holding a random token.
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

    /// [`Self::query_or`] without the retry on a broken connection, for the compare-and-set:
    /// its first try may have been applied, and a second would then find the record changed
    /// by itself and replay this request's operations twice (an increment counted twice). Its
    /// outcome is unknown, and reported so.
    async fn query_once_or<T: redis::FromRedisValue, F: Fn() -> redis::Cmd + Send + Sync>(
        &self,
        op: &'static str,
        cmd: redis::Cmd,
        noscript: F,
    ) -> Result<T> {
        let attempt = async {
            let mut conn = self.manager()?;
            let r = match cmd.query_async::<T>(&mut conn).await {
                Err(e) if e.code() == Some("NOSCRIPT") => {
                    noscript().query_async::<T>(&mut conn).await
                }
                r => r,
            };
            r.map_err(|e| {
                if is_broken_connection(&e) {
                    SessionError::Unavailable(format!(
                        "redis {op} failed: the connection to {} broke during the write, whose \
                         outcome is unknown ({})",
                        self.server,
                        cause(&e)
                    ))
                } else {
                    map_error(&self.server, op, &e)
                }
            })
        };
        match tokio::time::timeout(self.command_timeout, attempt).await {
            Ok(r) => r,
            Err(_) => Err(SessionError::Unavailable(format!(
                "redis {op} failed: the server at {} did not answer within {} ms (timeout)",
                self.server,
                self.command_timeout.as_millis()
            ))),
        }
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

#[cfg(test)]
mod tests {
    use super::*;

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
