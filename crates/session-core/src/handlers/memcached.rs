//! `MemcachedSessionHandler`: sessions as memcached items that the server expires itself.
//!
//! The client is the `memcache` crate's async meta-protocol client (`memcache::exp`): tokio,
//! a connection pool per server, a deadline on every exchange, and rendezvous hashing (a
//! consistent hash: adding or removing a server only moves that server's keys) across several
//! servers. It is built on first use, so constructing a handler never blocks or fails because a
//! server is down; a dead pooled connection is redialed, so a restarted server is picked up
//! without restarting the app.
//!
//! An operation that timed out has an unknown outcome: a frozen server that resumes still
//! applies the write it had received, even after a newer write sent on another connection.
//!
//! The meta protocol is memcached's text protocol, which has no authentication: configured
//! credentials are refused rather than silently ignored.
//!
//! Compare-and-set (issue 12): [`SessionHandler::write_if_unchanged`] is `gets`/`cas` in meta
//! commands. The CAS token travels with the payload `read` already fetched (`mg` with `c`): the
//! handler keeps, per id, the SHA-1 of the value it last read or wrote and that item's token,
//! so a save of the payload its request loaded is one `ms` with `C<token>` (and a new session's
//! one `ms` in add mode), with no read first. The server refuses it when anything wrote in
//! between; only then is the item read again (`mg` with the token), compared here and written
//! with that token.
//! `destroy` leaves a tombstone, [`TOMBSTONE`] with the lifetime's expiry or the shorter
//! [`MemcachedOptions::tombstone_secs`] (in replace mode: only over an item that exists), which
//! reads as no session and never matches. `touch` asks for the item size with the touch and
//! answers `false` for a tombstone. The touch refreshes the tombstone's expiry too (memcached
//! cannot touch conditionally), which only keeps a logged-out id refused for longer; with a
//! shorter tombstone time, a touch that found a tombstone sets its expiry back to that time
//! (one more `ms`, under the CAS token the touch saw, so nothing written since is changed).

use crate::clock::{self, Clock, SystemClock};
use crate::error::{Result, SessionError};
use crate::handler::{CasOutcome, SessionHandler, WriteMeta, TOMBSTONE};
use crate::id;
use async_trait::async_trait;
use memcache::exp::{AsyncMetaClient, Error as McError, Meta};
use sha1::{Digest, Sha1};
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// The key prefix used when none is given.
pub const DEFAULT_PREFIX: &str = "ostro_session:";
/// The default time allowed for one operation, in ms.
pub const DEFAULT_TIMEOUT_MS: u64 = 2000;
/// memcached's key length limit, in bytes.
pub const MAX_KEY_LENGTH: usize = 250;
/// Relative expiry times above this many seconds (30 days) are read by memcached as absolute
/// unix times, so longer lifetimes must be sent as absolute times.
pub const MAX_RELATIVE_EXPIRY: u64 = 30 * 24 * 3600;
const MAX_TIMEOUT_MS: u64 = 600_000;
// Connections per server: enough for many concurrent requests, bounded so that a stalled
// server cannot make every waiting request dial one more connection.
const MAX_CONNECTIONS: usize = 64;
// CAS tokens remembered (see the module docs); past this the memory is dropped, and the next
// save of each id reads its token again.
const MAX_TOKENS: usize = 16_384;

/// The SHA-1 of a value: what a remembered CAS token is matched against.
type Digest20 = [u8; 20];

fn digest(v: &[u8]) -> Digest20 {
    Sha1::digest(v).into()
}

/// Options of a [`MemcachedSessionHandler`].
#[derive(Clone)]
pub struct MemcachedOptions {
    /// Prepended to every session id to form the key: printable ASCII without spaces.
    pub prefix: String,
    /// Session lifetime in (possibly fractional) minutes; the expiry is rounded up to whole seconds.
    pub minutes: f64,
    /// Time allowed for one operation (connecting included), in ms.
    pub timeout_ms: u64,
    /// SASL user name: not supported, so setting it is an error.
    pub username: Option<String>,
    /// SASL password: not supported, so setting it is an error.
    pub password: Option<String>,
    /// The expiry of a tombstone, in seconds, from 1 to the lifetime (`None`, the default: the
    /// lifetime). See [`crate::handler::tombstone_ms`].
    pub tombstone_secs: Option<u64>,
}

impl std::fmt::Debug for MemcachedOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemcachedOptions")
            .field("prefix", &self.prefix)
            .field("minutes", &self.minutes)
            .field("timeout_ms", &self.timeout_ms)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("tombstone_secs", &self.tombstone_secs)
            .finish()
    }
}

impl Default for MemcachedOptions {
    fn default() -> Self {
        Self {
            prefix: DEFAULT_PREFIX.into(),
            minutes: 120.0,
            timeout_ms: DEFAULT_TIMEOUT_MS,
            username: None,
            password: None,
            tombstone_secs: None,
        }
    }
}

/// Sessions in memcached: `ms` with an expiry, `mg`, `md`, and `mg` with `T` to touch.
pub struct MemcachedSessionHandler {
    servers: Vec<String>,
    // Built on first use (address lookup is async); emptied by `close`.
    client: Mutex<Option<AsyncMetaClient>>,
    prefix: String,
    ttl_secs: u64,
    // The tombstone's expiry; `None` when it is the lifetime's (`ttl_secs`).
    tombstone_ttl_secs: Option<u64>,
    timeout: Duration,
    // id -> (SHA-1 of the value last read or written, that item's CAS token).
    tokens: Mutex<HashMap<String, (Digest20, u64)>>,
}

fn invalid(msg: impl Into<String>) -> SessionError {
    SessionError::InvalidOption(msg.into())
}

/// Checks one `host:port` (or `[v6]:port`, or `host` for port 11211) and returns it in the form
/// the client resolves.
pub fn parse_server(s: &str) -> Result<String> {
    let s = s.trim();
    let s = s.strip_prefix("memcached://").unwrap_or(s);
    if s.contains('@') {
        return Err(invalid(
            "memcached credentials (SASL) are not supported over the text protocol; \
             remove user:password@ from the server address",
        ));
    }
    if s.is_empty()
        || s.chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '/')
    {
        return Err(invalid(
            "a memcached server must be given as 'host:port', e.g. '127.0.0.1:11211'",
        ));
    }
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest
            .split_once(']')
            .ok_or_else(|| invalid("a memcached IPv6 server must look like '[::1]:11211'"))?;
        let port =
            match after {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or_else(|| {
                    invalid("a memcached IPv6 server must look like '[::1]:11211'")
                })?),
            };
        (format!("[{h}]"), port)
    } else {
        match s.rsplit_once(':') {
            Some((h, _)) if h.contains(':') => {
                return Err(invalid(
                    "a memcached IPv6 server must be written in brackets: '[::1]:11211'",
                ))
            }
            Some((h, p)) => (h.to_owned(), Some(p)),
            None => (s.to_owned(), None),
        }
    };
    let port: u16 = match port {
        None => 11211,
        Some(p) => p
            .parse()
            .ok()
            .filter(|&n| n != 0)
            .ok_or_else(|| invalid("a memcached port must be a number between 1 and 65535"))?,
    };
    if host.is_empty() || host == "[]" {
        return Err(invalid("a memcached server needs a host"));
    }
    Ok(format!("{host}:{port}"))
}

/// Checks a key prefix: printable ASCII, no whitespace or control characters, and short enough
/// that prefix + a 40-character id fits memcached's 250-byte key limit.
pub fn check_prefix(prefix: &str) -> Result<()> {
    if let Some(c) = prefix.chars().find(|c| !c.is_ascii_graphic()) {
        return Err(invalid(format!(
            "the memcached prefix must be printable ASCII without whitespace or control \
             characters, found {c:?}"
        )));
    }
    let max = MAX_KEY_LENGTH - id::ID_LENGTH;
    if prefix.len() > max {
        return Err(invalid(format!(
            "the memcached prefix is {} bytes; with a {}-character id it must fit memcached's \
             {MAX_KEY_LENGTH}-byte key limit, so at most {max} bytes",
            prefix.len(),
            id::ID_LENGTH
        )));
    }
    Ok(())
}

/// The expiry to send for a TTL of `ttl_secs` at unix time `now_secs`: relative up to 30 days,
/// absolute beyond (the protocol reads larger numbers as unix times). `None` when the absolute
/// time does not fit the protocol's 32 bits.
pub fn wire_expiry(ttl_secs: u64, now_secs: u64) -> Option<u32> {
    if ttl_secs <= MAX_RELATIVE_EXPIRY {
        u32::try_from(ttl_secs).ok()
    } else {
        u32::try_from(now_secs.checked_add(ttl_secs)?).ok()
    }
}

fn now_secs() -> u64 {
    u64::try_from(SystemClock.now_ms() / 1000).unwrap_or(0)
}

impl MemcachedSessionHandler {
    /// A handler for `servers` (`'host:port'` each; keys are spread over them by consistent
    /// hashing). Nothing is connected yet: the first operation connects.
    pub fn new(servers: &[String], opts: MemcachedOptions) -> Result<Self> {
        if opts.username.is_some() || opts.password.is_some() {
            return Err(invalid(
                "memcached credentials (SASL) are not supported over the text protocol; \
                 remove username/password, or secure the server by network instead",
            ));
        }
        if servers.is_empty() {
            return Err(invalid("at least one memcached server is required"));
        }
        let servers = servers
            .iter()
            .map(|s| parse_server(s))
            .collect::<Result<Vec<_>>>()?;
        check_prefix(&opts.prefix)?;
        let lifetime_ms = clock::lifetime_ms(opts.minutes)?;
        let ttl_secs = clock::ttl_seconds(lifetime_ms);
        let tombstone_ttl_secs = opts
            .tombstone_secs
            .map(|secs| crate::handler::tombstone_ms(lifetime_ms, Some(secs)))
            .transpose()?
            .map(clock::ttl_seconds)
            .filter(|&t| t < ttl_secs);
        if wire_expiry(ttl_secs, now_secs()).is_none() {
            return Err(invalid(format!(
                "minutes is too large for memcached, whose expiry times end in 2106: {}",
                opts.minutes
            )));
        }
        if opts.timeout_ms == 0 || opts.timeout_ms > MAX_TIMEOUT_MS {
            return Err(invalid(format!(
                "timeoutMs must be between 1 and {MAX_TIMEOUT_MS} ms, got {}",
                opts.timeout_ms
            )));
        }
        Ok(Self {
            servers,
            client: Mutex::new(None),
            prefix: opts.prefix,
            ttl_secs,
            tombstone_ttl_secs,
            timeout: Duration::from_millis(opts.timeout_ms),
            tokens: Mutex::new(HashMap::new()),
        })
    }

    /// The servers, as `host:port`.
    pub fn servers(&self) -> &[String] {
        &self.servers
    }

    /// The TTL of every write and touch, in seconds.
    pub fn ttl_seconds(&self) -> u64 {
        self.ttl_secs
    }

    fn key(&self, id: &str) -> Result<String> {
        id::check_storage_id(id)?;
        Ok(format!("{}{id}", self.prefix))
    }

    fn expiry(&self) -> Result<u32> {
        Self::expiry_of(self.ttl_secs)
    }

    /// The expiry a destroy gives its tombstone: the lifetime's, or the shorter tombstone time.
    fn tombstone_expiry(&self) -> Result<u32> {
        Self::expiry_of(self.tombstone_ttl_secs.unwrap_or(self.ttl_secs))
    }

    fn expiry_of(ttl_secs: u64) -> Result<u32> {
        wire_expiry(ttl_secs, now_secs())
            .ok_or_else(|| SessionError::Io("memcached expiry time is out of range".into()))
    }

    /// After a touch that refreshed a tombstone to the lifetime's expiry: sets it back to the
    /// shorter tombstone time, only if the item is still that tombstone (CAS `token`).
    async fn shorten_tombstone(&self, key: &str, token: u64) -> Result<()> {
        let exp = self.tombstone_expiry()?;
        self.run_cas("touch", 0, |c| async move {
            c.set(key, TOMBSTONE.as_bytes())
                .ttl_raw(exp)
                .compare_cas(token)
                .send()
                .await
        })
        .await
        .map(|_| ())
    }

    async fn client(&self) -> Result<AsyncMetaClient> {
        if let Some(c) = self.lock().as_ref() {
            return Ok(c.clone());
        }
        let built = AsyncMetaClient::builder()
            .connect_timeout(Some(self.timeout))
            .io_timeout(Some(self.timeout))
            .max_connections(Some(MAX_CONNECTIONS))
            .max_idle(MAX_CONNECTIONS)
            .connect_multiple_async(self.servers.iter().cloned())
            .await
            .map_err(|e| map_error(&self.where_(), "connect", &e, 0))?;
        // Two first requests may both build a client; the first one stored wins.
        Ok(self.lock().get_or_insert(built).clone())
    }

    /// The server(s) for messages: "the server at host:port" or "the servers at a:1, b:2".
    fn where_(&self) -> String {
        match self.servers.as_slice() {
            [one] => format!("the server at {one}"),
            many => format!("the servers at {}", many.join(", ")),
        }
    }

    /// Remembers `token` as the CAS of `id`'s item holding `value`.
    fn remember(&self, id: &str, value: &[u8], token: Option<u64>) {
        let mut tokens = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        match token {
            Some(t) => {
                if tokens.len() >= MAX_TOKENS && !tokens.contains_key(id) {
                    tokens.clear();
                }
                tokens.insert(id.to_owned(), (digest(value), t));
            }
            None => {
                tokens.remove(id);
            }
        }
    }

    /// The CAS token of `id`'s item when it was last seen holding `value`.
    fn token_for(&self, id: &str, value: &str) -> Option<u64> {
        let tokens = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        let (d, t) = tokens.get(id)?;
        (*d == digest(value.as_bytes())).then_some(*t)
    }

    /// One `ms`: with `C<token>`, or in add mode without one. `Some(new token)` when stored.
    async fn store_if(
        &self,
        key: &str,
        data: &str,
        exp: u32,
        token: Option<u64>,
    ) -> Result<Option<u64>> {
        let stored = self
            .run_cas("write", data.len(), |c| async move {
                let set = c.set(key, data.as_bytes()).ttl_raw(exp).return_cas();
                match token {
                    Some(t) => set.compare_cas(t).send().await,
                    None => set.add().send().await,
                }
            })
            .await?;
        // A server that does not return the new token still stored; the next save reads it.
        Ok(stored.applied().then_some(stored.cas.unwrap_or(0)))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<AsyncMetaClient>> {
        self.client.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f`, bounded by the timeout; tried once more when it failed on a connection that
    /// broke (a restarted server). Every operation here is idempotent.
    async fn run<T, F, Fut>(&self, op: &'static str, size: usize, f: F) -> Result<T>
    where
        F: Fn(AsyncMetaClient) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<T, McError>>,
    {
        self.run_retrying(op, size, is_broken_connection, f).await
    }

    /// [`Self::run`] for a compare-and-set store: tried again only when the first try surely
    /// never reached the server. One that may have been applied is not repeated: the repeat
    /// would be refused by its own write, and the save would replay its operations twice.
    async fn run_cas<T, F, Fut>(&self, op: &'static str, size: usize, f: F) -> Result<T>
    where
        F: Fn(AsyncMetaClient) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<T, McError>>,
    {
        let unsent =
            |e: &McError| !matches!(e, McError::Ambiguous { .. }) && is_broken_connection(e);
        self.run_retrying(op, size, unsent, f).await
    }

    async fn run_retrying<T, F, Fut>(
        &self,
        op: &'static str,
        size: usize,
        retry: impl Fn(&McError) -> bool,
        f: F,
    ) -> Result<T>
    where
        F: Fn(AsyncMetaClient) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<T, McError>>,
    {
        let attempt = async {
            let client = self.client().await?;
            match f(client.clone()).await {
                Ok(v) => Ok(v),
                Err(e) if retry(&e) => f(client)
                    .await
                    .map_err(|e| map_error(&self.where_(), op, &e, size)),
                Err(e) => Err(map_error(&self.where_(), op, &e, size)),
            }
        };
        match tokio::time::timeout(self.timeout, attempt).await {
            Ok(r) => r,
            Err(_) => Err(SessionError::Unavailable(format!(
                "memcached {op} failed: {} did not answer within {} ms (timeout)",
                self.where_(),
                self.timeout.as_millis()
            ))),
        }
    }
}

/// The metadata to ask for with a get (the crate's `Meta` is non-exhaustive).
fn meta_with(set: impl FnOnce(&mut Meta)) -> Meta {
    let mut m = Meta::NONE;
    set(&mut m);
    m
}

fn is_broken_connection(e: &McError) -> bool {
    match e {
        McError::Io(io) => io.kind() != std::io::ErrorKind::TimedOut,
        McError::Ambiguous { source, .. } => is_broken_connection(source),
        _ => false,
    }
}

/// Maps a client error. The crate's own messages can name the key (which holds the session
/// id), so every message is built here from the kind of failure.
/// Why a server cannot be reached, in words a user can act on: refused, DNS or timeout.
fn io_cause(io: &std::io::Error) -> String {
    let text = io.to_string();
    let lower = text.to_ascii_lowercase();
    match io.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused: nothing listens there".into(),
        std::io::ErrorKind::TimedOut => "timeout: the server did not answer in time".into(),
        _ if lower.contains("lookup")
            || lower.contains("name or service not known")
            || lower.contains("name resolution") =>
        {
            format!("DNS: the host name does not resolve ({text})")
        }
        kind => format!("{kind}: {text}"),
    }
}

fn map_error(server: &str, op: &str, e: &McError, size: usize) -> SessionError {
    match e {
        McError::Io(io) => SessionError::Unavailable(format!(
            "memcached {op} failed: {server} is unavailable ({})",
            io_cause(io)
        )),
        McError::Timeout { .. } => SessionError::Unavailable(format!(
            "memcached {op} failed: {server} did not answer in time (timeout)"
        )),
        McError::Ambiguous { source, .. } => map_error(server, op, source, size),
        McError::Server(msg) if msg.contains("too large") => SessionError::TooLarge(format!(
            "the session payload ({size} bytes) is larger than the memcached server's item size \
             limit (raise it with memcached -I)"
        )),
        McError::Server(msg) => SessionError::Io(format!(
            "memcached {op} failed: SERVER_ERROR {}",
            msg.trim()
        )),
        McError::Rejected(_) => SessionError::Io(format!(
            "memcached {op} failed: the server rejected the command"
        )),
        McError::Usage(why) => SessionError::Io(format!("memcached {op} failed: {why}")),
        _ => SessionError::Io(format!(
            "memcached {op} failed: unexpected reply from the server"
        )),
    }
}

#[async_trait]
impl SessionHandler for MemcachedSessionHandler {
    async fn close(&self) -> Result<()> {
        // Dropping the client closes its pooled connections.
        self.lock().take();
        Ok(())
    }

    async fn read(&self, id: &str) -> Result<String> {
        let key = self.key(id)?;
        let r = self
            .run("read", 0, |c| {
                let key = key.clone();
                async move { c.get(&key).meta(meta_with(|m| m.cas = true)).send().await }
            })
            .await?;
        Ok(match (r.hit(), r.value) {
            (true, Some(v)) if v != TOMBSTONE.as_bytes() => {
                let text = String::from_utf8_lossy(&v).into_owned();
                // The token this read saw, for a save of this payload (see the module docs).
                self.remember(id, text.as_bytes(), r.item.cas);
                text
            }
            _ => String::new(),
        })
    }

    async fn write(&self, id: &str, data: &str, _meta: &WriteMeta) -> Result<()> {
        let key = self.key(id)?;
        let exp = self.expiry()?;
        let r = self
            .run("write", data.len(), |c| {
                let key = key.clone();
                async move { c.set(&key, data.as_bytes()).ttl_raw(exp).send().await }
            })
            .await?;
        if r.applied() {
            Ok(())
        } else {
            Err(SessionError::Io(
                "memcached write failed: the server did not store the item".into(),
            ))
        }
    }

    async fn destroy(&self, id: &str) -> Result<()> {
        // A tombstone for its time, only over an item that exists (see the module docs).
        let key = self.key(id)?;
        let exp = self.tombstone_expiry()?;
        self.run("destroy", 0, |c| {
            let key = key.clone();
            async move {
                c.set(&key, TOMBSTONE.as_bytes())
                    .ttl_raw(exp)
                    .replace()
                    .send()
                    .await
            }
        })
        .await
        .map(|_| ())
    }

    async fn write_if_unchanged(
        &self,
        id: &str,
        data: &str,
        previous: &str,
        _meta: &WriteMeta,
    ) -> Result<CasOutcome> {
        let key = self.key(id)?;
        let exp = self.expiry()?;
        // The token read with `previous` (or add mode for no record): one round trip.
        let fast = if previous.is_empty() {
            Some(None)
        } else {
            self.token_for(id, previous).map(Some)
        };
        if let Some(token) = fast {
            if let Some(new) = self.store_if(&key, data, exp, token).await? {
                self.remember(id, data.as_bytes(), (new != 0).then_some(new));
                return Ok(CasOutcome::Written);
            }
        }
        // Refused, or no token known: read the item with its token, compare, store with it.
        let got = self
            .run("write", 0, |c| {
                let key = key.clone();
                async move { c.get(&key).meta(meta_with(|m| m.cas = true)).send().await }
            })
            .await?;
        let (current, token) = match (got.hit(), got.value, got.item.cas) {
            (true, v, token) => (v.unwrap_or_default(), token),
            _ => (Vec::new(), None),
        };
        if current == TOMBSTONE.as_bytes() {
            return Ok(CasOutcome::Conflict(String::new()));
        }
        let current = String::from_utf8_lossy(&current).into_owned();
        // A record equal to this payload is another request's identical write (two requests
        // incrementing one counter), never this one's: it is replayed onto, not taken as written.
        if current != previous {
            self.remember(id, current.as_bytes(), token);
            return Ok(CasOutcome::Conflict(current));
        }
        if let Some(new) = self.store_if(&key, data, exp, token).await? {
            self.remember(id, data.as_bytes(), (new != 0).then_some(new));
            return Ok(CasOutcome::Written);
        }
        // Refused: another request wrote (or destroyed) in between.
        Ok(CasOutcome::Conflict(self.read(id).await?))
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

    async fn gc(&self, _max_lifetime_secs: u64) -> Result<u64> {
        // memcached expires items itself.
        Ok(0)
    }

    async fn touch(&self, id: &str) -> Result<bool> {
        let key = self.key(id)?;
        let exp = self.expiry()?;
        // The CAS token too when a tombstone's shorter time may have to be set back.
        let shorter = self.tombstone_ttl_secs.is_some();
        let r = self
            .run("touch", 0, |c| {
                let key = key.clone();
                async move {
                    c.get(&key)
                        .touch_raw(exp)
                        .without_value()
                        .meta(meta_with(|m| {
                            m.size = true;
                            m.cas = shorter;
                        }))
                        .send()
                        .await
                }
            })
            .await?;
        // A payload is at least `{}`: an item of the tombstone's size is the tombstone.
        let tombstone = r.item.size == Some(TOMBSTONE.len() as u64);
        if r.hit() && tombstone {
            if let (true, Some(token)) = (shorter, r.item.cas) {
                self.shorten_tombstone(&key, token).await?;
            }
        }
        Ok(r.hit() && !tombstone)
    }

    async fn is_tombstone(&self, id: &str) -> Result<bool> {
        let key = self.key(id)?;
        let r = self
            .run("read", 0, |c| {
                let key = key.clone();
                async move { c.get(&key).send().await }
            })
            .await?;
        Ok(r.hit() && r.value.as_deref() == Some(TOMBSTONE.as_bytes()))
    }
}

// Opt-in blocking (see `crate::blocking`): the lock of a session is the item `<key>:lock`,
// stored in add mode (only when absent) with the lock's expiry, holding a random token; released
// by a delete that carries the CAS token of the item read holding our token, so a lock that
// expired and was taken by another request is never removed.
impl MemcachedSessionHandler {
    fn lock_key(&self, id: &str) -> Result<String> {
        let key = format!("{}:lock", self.key(id)?);
        if key.len() > MAX_KEY_LENGTH {
            return Err(invalid(format!(
                "the memcached prefix is too long for session blocking: the lock key would pass \
                 memcached's {MAX_KEY_LENGTH}-byte limit (keep the prefix under {} bytes)",
                MAX_KEY_LENGTH - id::ID_LENGTH - 5
            )));
        }
        Ok(key)
    }

    async fn try_lock(&self, id: &str, ttl_ms: u64) -> Result<Option<String>> {
        let key = self.lock_key(id)?;
        let token = crate::blocking::new_token()?;
        // memcached expires in whole seconds: a lock lasts its ttl rounded up.
        let exp = wire_expiry(ttl_ms.div_ceil(1000).max(1), now_secs())
            .ok_or_else(|| invalid("the lock time is out of memcached's range"))?;
        let r = self
            .run("lock", token.len(), |c| {
                let (key, token) = (key.clone(), token.clone());
                async move {
                    c.set(&key, token.as_bytes())
                        .ttl_raw(exp)
                        .add()
                        .send()
                        .await
                }
            })
            .await?;
        Ok(r.applied().then_some(token))
    }

    async fn release_lock(&self, id: &str, token: &str) -> Result<()> {
        let key = self.lock_key(id)?;
        let got = self
            .run("unlock", 0, |c| {
                let key = key.clone();
                async move { c.get(&key).meta(meta_with(|m| m.cas = true)).send().await }
            })
            .await?;
        let (true, Some(v), Some(cas)) = (got.hit(), got.value, got.item.cas) else {
            return Ok(());
        };
        if v != token.as_bytes() {
            return Ok(());
        }
        self.run("unlock", 0, |c| {
            let key = key.clone();
            async move { c.delete(&key).compare_cas(cas).send().await }
        })
        .await
        .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> MemcachedOptions {
        MemcachedOptions::default()
    }

    fn err(servers: &[&str], o: MemcachedOptions) -> SessionError {
        let servers: Vec<String> = servers.iter().map(|s| (*s).to_owned()).collect();
        match MemcachedSessionHandler::new(&servers, o) {
            Ok(_) => panic!("expected an error"),
            Err(e) => e,
        }
    }

    #[test]
    fn servers_are_parsed() {
        assert_eq!(parse_server("127.0.0.1:11311").unwrap(), "127.0.0.1:11311");
        assert_eq!(parse_server("cache.local").unwrap(), "cache.local:11211");
        assert_eq!(parse_server("[::1]:11212").unwrap(), "[::1]:11212");
        assert_eq!(parse_server("[::1]").unwrap(), "[::1]:11211");
        assert_eq!(parse_server("memcached://h:1").unwrap(), "h:1");
        for bad in [
            "",
            "h:0",
            "h:70000",
            "h:x",
            "::1:11211",
            "[::1",
            "h :1",
            ":11211",
            "a/b:1",
        ] {
            assert!(
                matches!(parse_server(bad), Err(SessionError::InvalidOption(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn credentials_are_refused_without_echo() {
        let e = err(&["user:hunter2pw@127.0.0.1:11211"], opts());
        assert!(matches!(e, SessionError::InvalidOption(_)));
        assert!(e.to_string().contains("SASL") && !e.to_string().contains("hunter2pw"));
        for o in [
            MemcachedOptions {
                username: Some("u".into()),
                ..opts()
            },
            MemcachedOptions {
                password: Some("hunter2pw".into()),
                ..opts()
            },
        ] {
            let e = err(&["127.0.0.1:11211"], o.clone());
            assert!(e.to_string().contains("SASL") && !e.to_string().contains("hunter2pw"));
            assert!(!format!("{o:?}").contains("hunter2pw"));
        }
    }

    #[test]
    fn prefixes_are_checked() {
        assert!(check_prefix("").is_ok());
        assert!(check_prefix("ostro_session:").is_ok());
        assert!(check_prefix(&"p".repeat(210)).is_ok());
        for bad in ["has space", "tab\t", "nl\n", "nul\0", "é", "\u{7f}"] {
            assert!(check_prefix(bad).is_err(), "{bad:?}");
        }
        let e = check_prefix(&"p".repeat(211)).unwrap_err();
        assert!(e.to_string().contains("250"), "{e}");
        let e = err(
            &["127.0.0.1:1"],
            MemcachedOptions {
                prefix: "a b".into(),
                ..opts()
            },
        );
        assert!(matches!(e, SessionError::InvalidOption(_)));
    }

    #[test]
    fn other_options_are_checked() {
        assert!(matches!(err(&[], opts()), SessionError::InvalidOption(_)));
        for o in [
            MemcachedOptions {
                minutes: -1.0,
                ..opts()
            },
            MemcachedOptions {
                timeout_ms: 0,
                ..opts()
            },
            MemcachedOptions {
                minutes: 1e12,
                ..opts()
            },
        ] {
            assert!(matches!(
                err(&["127.0.0.1:1"], o),
                SessionError::InvalidOption(_)
            ));
        }
    }

    #[test]
    fn long_lifetimes_are_sent_as_absolute_times() {
        let now = 1_800_000_000;
        assert_eq!(wire_expiry(1, now), Some(1));
        assert_eq!(wire_expiry(7200, now), Some(7200));
        assert_eq!(wire_expiry(MAX_RELATIVE_EXPIRY, now), Some(2_592_000));
        assert_eq!(
            wire_expiry(MAX_RELATIVE_EXPIRY + 1, now),
            Some(1_800_000_000 + 2_592_001)
        );
        assert_eq!(wire_expiry(u64::from(u32::MAX), now), None);
        let h = MemcachedSessionHandler::new(
            &["127.0.0.1:1".to_owned()],
            MemcachedOptions {
                minutes: 60.0 * 24.0 * 31.0,
                ..opts()
            },
        )
        .unwrap();
        let exp = u64::from(h.expiry().unwrap());
        assert!(exp > now_secs() + MAX_RELATIVE_EXPIRY, "{exp}");
        assert!(exp <= now_secs() + 31 * 86400, "{exp}");
    }

    #[tokio::test]
    async fn a_dead_server_rejects_as_unavailable_within_the_timeout() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let h = MemcachedSessionHandler::new(
            &[format!("127.0.0.1:{port}")],
            MemcachedOptions {
                timeout_ms: 500,
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
