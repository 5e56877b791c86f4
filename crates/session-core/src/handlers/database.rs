//! `DatabaseSessionHandler`: sessions as rows of a PostgreSQL or MySQL/MariaDB table, the
//! central store that several processes or machines share.
//!
//! The table and its rules are the sqlite driver's (see [`crate::handlers::sqlite`]): the columns
//! of OstroJS's `session:table` migration (`sid`, `user_id`, `ip_address`, `user_agent`,
//! `payload`, `last_activity`), `last_activity` in unix seconds from the handler's clock, a row
//! alive while `now - last_activity <= lifetime`, a `NULL` `last_activity` counting as fresh.
//! So an app can switch between this driver and the OstroJS query-builder handler
//! (`lib/ostro/databaseHandler.js`) on the same table. The table (and its `last_activity` and
//! `user_id` indexes) is created on first use when missing; a migration's or 1.x's table is
//! adopted, with a missing `user_id` column or index added.
//!
//! Each backend keeps a small pool of connections (`pool`, default 4 for Postgres, 8 for
//! MySQL/MariaDB), connected on first use,
//! with its statements prepared once per connection. Every operation, connecting included, is
//! bounded by `command_timeout`: while the server is down, unreachable or frozen it rejects with
//! [`SessionError::Unavailable`] naming `host:port`, and the connections it used are dropped so
//! that the next operation connects afresh (recovery needs no restart). Such an operation has an
//! unknown outcome: a frozen server that resumes may still apply a write it had received.
//!
//! Compare-and-set (issue 12): [`SessionHandler::write_if_unchanged`] is one conditional statement,
//! so concurrent requests of one session lose nothing, across processes too: an `UPDATE … WHERE sid
//! = ? AND payload = <the payload the request loaded> AND <alive>` (the payload itself is the
//! version: no column is added, and rows written by any other writer of the table, the
//! query-builder handler or 1.x, compare the same way), or for a request that loaded nothing an
//! insert that only replaces an expired row. Only on a refusal is the row read again (a second
//! round trip), to hand the engine what is there now. `destroy` leaves a tombstone, as the sqlite
//! driver does: the row stays with an empty payload, a fresh `last_activity` and no `user_id`; it
//! reads as no session, a touch answers `false`, a compare-and-set never matches it (so a save
//! racing a logout cannot bring the session back), and gc deletes it after the lifetime like any
//! idle row. With [`DatabaseOptions::tombstone_secs`] its `last_activity` is set that much less
//! than a lifetime before now, so the same lifetime rule (of every reader of the table, the
//! query-builder handler and 1.x included) ends it that long after the destroy. A compare-and-set
//! whose connection breaks is not retried: it may have been applied, and a replay on top of it
//! would apply the request twice.
//!
//! Opt-in blocking (see [`crate::blocking`]): locks are rows of a second table,
//! `<table>_locks` (`sid`, `token`, `expires_at` in ms of the handler's clock), created on the
//! first lock, as the sqlite driver does. One atomic statement takes a lock that is absent,
//! expired or already the caller's; the holder's delete names its token; gc deletes expired
//! locks.
//!
//! No TLS: connect over loopback, a private network or a tunnel.

use crate::clock::{self, SharedClock};
use crate::error::{Result, SessionError};
use crate::handler::{self, CasOutcome, SessionHandler, UserRecord, WriteMeta};
use crate::id;
use async_trait::async_trait;
use std::sync::{Arc, PoisonError};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// The table name used when none is configured (the `session:table` migration's).
pub const DEFAULT_TABLE: &str = "sessions";
/// Connections per Postgres handler when none is configured (they pipeline).
pub const DEFAULT_POOL: usize = 4;
/// Connections per MySQL/MariaDB handler when none is configured: the protocol does not
/// pipeline, so connections are the parallelism (8 measured ~30 % more cycles/s than 4 at
/// concurrency 64 on the bench machine).
pub const DEFAULT_MYSQL_POOL: usize = 8;
/// The default time allowed to open a connection, in ms.
pub const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 2000;
/// The default time allowed for one operation (connecting included), in ms.
pub const DEFAULT_COMMAND_TIMEOUT_MS: u64 = 2000;
/// Largest pool accepted: sessions need few connections, and servers limit them (100 by default).
pub const MAX_POOL: usize = 64;
/// Longest timeout accepted (10 minutes): anything longer is a typo, not a wish.
const MAX_TIMEOUT_MS: u64 = 600_000;
/// Longest accepted table name (MySQL's limit; Postgres allows 63 bytes, checked too).
const MAX_TABLE_LEN: usize = 64;
/// `ip_address` is `varchar(45)` in the migration: the longest textual IPv6 address.
pub(crate) const MAX_IP_CHARS: usize = 45;
/// Laravel truncates user agents to 500 characters; the header is client-controlled.
pub(crate) const MAX_USER_AGENT_CHARS: usize = 500;

/// Options of a [`DatabaseSessionHandler`].
#[derive(Debug, Clone)]
pub struct DatabaseOptions {
    /// Table name, a plain SQL identifier.
    pub table: String,
    /// Session lifetime in (possibly fractional) minutes after the last write or touch.
    pub minutes: f64,
    /// Connections kept open at most (1 to [`MAX_POOL`]); `None`: [`DEFAULT_POOL`] for
    /// Postgres, [`DEFAULT_MYSQL_POOL`] for MySQL/MariaDB.
    pub pool: Option<usize>,
    /// Time allowed to open a connection, in ms.
    pub connect_timeout_ms: u64,
    /// Time allowed for one operation (connecting included), in ms.
    pub command_timeout_ms: u64,
    /// How long a tombstone lives, in seconds, from 1 to the lifetime (`None`, the default: the
    /// lifetime). See [`handler::tombstone_ms`].
    pub tombstone_secs: Option<u64>,
}

impl Default for DatabaseOptions {
    fn default() -> Self {
        Self {
            table: DEFAULT_TABLE.into(),
            minutes: 120.0,
            pool: None,
            connect_timeout_ms: DEFAULT_CONNECT_TIMEOUT_MS,
            command_timeout_ms: DEFAULT_COMMAND_TIMEOUT_MS,
            tombstone_secs: None,
        }
    }
}

/// What a backend needs, built once from the validated options.
#[derive(Clone)]
pub(crate) struct Settings {
    pub table: String,
    /// `host:port` for messages (never the user or password).
    pub addr: String,
    pub lifetime_secs: i64,
    /// How much earlier than the destroy a tombstone's `last_activity` is set (see
    /// `handler::tombstone_backdate_ms`): 0 keeps it for the lifetime.
    pub tombstone_backdate_secs: i64,
    pub pool: usize,
    pub connect_timeout: Duration,
    pub command_timeout: Duration,
    pub clock: SharedClock,
}

impl Settings {
    pub fn now_secs(&self) -> i64 {
        self.clock.now_ms().div_euclid(1000)
    }

    /// The `last_activity` a live row has at least.
    pub fn cutoff(&self) -> i64 {
        self.now_secs() - self.lifetime_secs
    }

    /// The error of an operation that did not finish within the command timeout.
    pub fn timed_out(&self, backend: &str, op: &str) -> SessionError {
        SessionError::Unavailable(format!(
            "{backend} session {op} on {} did not complete within {} ms",
            self.addr,
            self.command_timeout.as_millis()
        ))
    }
}

/// One write, as the backends bind it.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub id: String,
    pub payload: String,
    pub now: i64,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub user_id: Option<String>,
    /// Whether the write was made for a request: only then does `user_id` follow it (a logout
    /// clears it), as in the sqlite driver.
    pub for_request: bool,
}

impl Row {
    /// `later` applied on top of `self`, as the upsert would apply the two one after the other.
    fn then(self, later: Row) -> Row {
        let (user_id, for_request) = if later.for_request {
            (later.user_id, true)
        } else {
            (self.user_id, self.for_request)
        };
        Row {
            id: later.id,
            payload: later.payload,
            now: later.now,
            ip: later.ip.or(self.ip),
            user_agent: later.user_agent.or(self.user_agent),
            user_id,
            for_request,
        }
    }
}

/// Writes to the same id in one batch merged into one (in order), the batch sorted by id: one
/// statement may not update a row twice, and batches running at once then lock rows in the same
/// order, so they cannot deadlock each other.
pub(crate) fn coalesce(rows: Vec<Row>) -> Vec<Row> {
    let mut merged: std::collections::BTreeMap<String, Row> = std::collections::BTreeMap::new();
    for r in rows {
        let r = match merged.remove(&r.id) {
            Some(earlier) => earlier.then(r),
            None => r,
        };
        merged.insert(r.id.clone(), r);
    }
    merged.into_values().collect()
}

/// The same error again, for every write of a batch that failed as a whole.
pub(crate) fn same_error(e: &SessionError) -> SessionError {
    match e {
        SessionError::Unavailable(m) => SessionError::Unavailable(m.clone()),
        SessionError::TooLarge(m) => SessionError::TooLarge(m.clone()),
        other => SessionError::Io(other.to_string()),
    }
}

/// Most writes one batch carries.
const MAX_BATCH: usize = 64;

/// A write the workers batch: plain (last writer wins), or compare-and-set over `previous`.
pub(crate) struct Cas {
    pub row: Row,
    /// The payload the request loaded (`""`: no record).
    pub previous: String,
}

enum Op {
    Write(Row),
    Cas(Cas),
}

struct Job {
    op: Op,
    /// `Ok(true)` when written; `Ok(false)` when a compare-and-set was refused.
    done: oneshot::Sender<Result<bool>>,
}

/// Group commit in the client: concurrent writes and compare-and-sets are queued and run by up to
/// `pool` workers, each taking everything queued (up to [`MAX_BATCH`]) as one batch that costs
/// the server one commit (one log flush) instead of one per write: with durable commits the
/// flush, not the statement, is what a save costs. A lone write is a batch of one, so nothing
/// waits for company. The workers start with the first write (they need the runtime) and end
/// when the handler is dropped.
struct Writer {
    tx: std::sync::Mutex<Option<mpsc::UnboundedSender<Job>>>,
}

impl Writer {
    fn sender(&self, backend: &Backend, workers: usize) -> mpsc::UnboundedSender<Job> {
        let mut slot = self.tx.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(tx) = slot.as_ref() {
            if !tx.is_closed() {
                return tx.clone();
            }
        }
        let (tx, rx) = mpsc::unbounded_channel::<Job>();
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        for _ in 0..workers {
            let (rx, backend) = (Arc::clone(&rx), backend.clone());
            tokio::spawn(async move {
                while let Some(batch) = next_batch(&rx).await {
                    let (mut rows, mut row_dones, mut cas, mut cas_dones) =
                        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
                    for j in batch {
                        match j.op {
                            Op::Write(r) => {
                                rows.push(r);
                                row_dones.push(j.done);
                            }
                            Op::Cas(c) => {
                                cas.push(c);
                                cas_dones.push(j.done);
                            }
                        }
                    }
                    if !rows.is_empty() {
                        let results = backend.write_batch(rows).await;
                        for (done, r) in row_dones.into_iter().zip(results) {
                            let _ = done.send(r.map(|()| true));
                        }
                    }
                    if !cas.is_empty() {
                        let results = backend.cas_batch(cas).await;
                        for (done, r) in cas_dones.into_iter().zip(results) {
                            let _ = done.send(r);
                        }
                    }
                }
            });
        }
        *slot = Some(tx.clone());
        tx
    }
}

/// Waits for one queued write, then takes whatever else is queued, up to [`MAX_BATCH`]; writes
/// whose caller has given up (timed out) are left out. `None` once the handler is gone.
async fn next_batch(rx: &tokio::sync::Mutex<mpsc::UnboundedReceiver<Job>>) -> Option<Vec<Job>> {
    let mut rx = rx.lock().await;
    loop {
        let first = rx.recv().await?;
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        batch.retain(|j| !j.done.is_closed());
        if !batch.is_empty() {
            return Some(batch);
        }
    }
}

#[derive(Clone)]
enum Backend {
    #[cfg(feature = "postgres")]
    Postgres(Arc<super::postgres::Postgres>),
    #[cfg(feature = "mysql")]
    Mysql(Arc<super::mysql::Mysql>),
}

impl Backend {
    /// One result per row, in order.
    async fn write_batch(&self, rows: Vec<Row>) -> Vec<Result<()>> {
        match self {
            #[cfg(feature = "postgres")]
            Backend::Postgres(b) => b.write_batch(rows).await,
            #[cfg(feature = "mysql")]
            Backend::Mysql(b) => b.write_batch(rows).await,
        }
    }

    /// One result per compare-and-set, in order: whether it wrote.
    async fn cas_batch(&self, items: Vec<Cas>) -> Vec<Result<bool>> {
        match self {
            #[cfg(feature = "postgres")]
            Backend::Postgres(b) => b.cas_batch(items).await,
            #[cfg(feature = "mysql")]
            Backend::Mysql(b) => b.cas_batch(items).await,
        }
    }
}

/// Splits `items` into rounds in which every id appears once (one statement may not change a
/// row twice), keeping each id's order; returns the rounds as indices into `items`.
pub(crate) fn unique_rounds(items: &[Cas]) -> Vec<Vec<usize>> {
    let mut rounds: Vec<(std::collections::HashSet<&str>, Vec<usize>)> = Vec::new();
    let mut last_round: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for (i, c) in items.iter().enumerate() {
        let id = c.row.id.as_str();
        let r = last_round.get(id).map_or(0, |r| r + 1);
        if rounds.len() <= r {
            rounds.push((std::collections::HashSet::new(), Vec::new()));
        }
        rounds[r].0.insert(id);
        rounds[r].1.push(i);
        last_round.insert(id, r);
    }
    rounds.into_iter().map(|(_, idx)| idx).collect()
}

/// Sessions in a PostgreSQL or MySQL/MariaDB table.
pub struct DatabaseSessionHandler {
    backend: Backend,
    settings: Settings,
    writer: Writer,
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

/// A table name must be a plain identifier, so that config can never inject SQL.
fn check_table_name(table: &str) -> Result<()> {
    let mut bytes = table.bytes();
    let plain = matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && table.len() <= MAX_TABLE_LEN;
    if !plain {
        return Err(invalid(format!(
            "the database table name must be a plain SQL identifier ([A-Za-z_][A-Za-z0-9_]*, at \
             most {MAX_TABLE_LEN} characters), got {:?}",
            crate::error::redact(table)
        )));
    }
    Ok(())
}

#[allow(dead_code)] // Used only when one backend is left out.
fn not_compiled(feature: &str) -> SessionError {
    invalid(format!(
        "the {feature} backend of the database driver was not compiled in (core feature \"{feature}\")"
    ))
}

/// The URL's scheme, lower-cased, and the rest.
fn scheme_of(url: &str) -> Option<(String, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    Some((scheme.to_ascii_lowercase(), rest))
}

/// `host:port` of a `scheme://[user[:pass]@]host[:port][/db][?…]` URL, for messages only.
pub(crate) fn address_of(rest: &str, default_port: u16) -> String {
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    // The password may contain '@' only percent-encoded, so the last '@' ends the user info.
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let has_port = match host_port.rfind(']') {
        Some(i) => host_port[i..].contains(':'),
        None => host_port.contains(':'),
    };
    let host_port = if host_port.is_empty() {
        "localhost"
    } else {
        host_port
    };
    if has_port {
        host_port.to_owned()
    } else {
        format!("{host_port}:{default_port}")
    }
}

impl DatabaseSessionHandler {
    /// A handler for the database at `url`: `postgres://` or `postgresql://` for PostgreSQL,
    /// `mysql://` or `mariadb://` for MySQL/MariaDB, as `scheme://user[:password]@host[:port]/db`.
    ///
    /// Nothing is connected here: the first operation connects and creates or adopts the
    /// table, so a server that is down is reported by that operation.
    ///
    /// # Errors
    /// [`SessionError::InvalidOption`] for an unknown scheme, a URL the client rejects, a table
    /// name that is not a plain identifier, a pool outside 1..=64 or a timeout outside
    /// 1..=600000 ms. Messages never include the URL (it may hold a password).
    pub fn new(url: &str, opts: DatabaseOptions, clock: Option<SharedClock>) -> Result<Self> {
        check_table_name(&opts.table)?;
        let lifetime_ms = clock::lifetime_ms(opts.minutes)?;
        let tombstone_ms = handler::tombstone_ms(lifetime_ms, opts.tombstone_secs)?;
        if let Some(pool) = opts.pool.filter(|&p| p == 0 || p > MAX_POOL) {
            return Err(invalid(format!(
                "pool must be a whole number from 1 to {MAX_POOL}, got {pool}"
            )));
        }
        let connect_timeout = check_timeout("connectTimeoutMs", opts.connect_timeout_ms)?;
        let command_timeout = check_timeout("commandTimeoutMs", opts.command_timeout_ms)?;
        let Some((scheme, rest)) = scheme_of(url) else {
            return Err(invalid(
                "the database connection must be a postgres://, postgresql://, mysql:// or \
                 mariadb:// URL",
            ));
        };
        let mut settings = Settings {
            table: opts.table,
            addr: String::new(),
            // `last_activity` holds whole seconds; a row is readable while
            // now - last_activity <= lifetime, which for integers means <= floor(lifetime).
            lifetime_secs: lifetime_ms.div_euclid(1000),
            // Whole seconds from 1 to the lifetime, so from 0 to lifetime_secs - 1.
            tombstone_backdate_secs: lifetime_ms.div_euclid(1000) - tombstone_ms.div_euclid(1000),
            pool: opts.pool.unwrap_or(DEFAULT_POOL),
            connect_timeout,
            command_timeout,
            clock: clock.unwrap_or_else(clock::system),
        };
        let backend = match scheme.as_str() {
            #[cfg(feature = "postgres")]
            "postgres" | "postgresql" => {
                settings.addr = address_of(rest, 5432);
                Backend::Postgres(Arc::new(super::postgres::Postgres::new(url, &settings)?))
            }
            #[cfg(feature = "mysql")]
            "mysql" | "mariadb" => {
                settings.addr = address_of(rest, 3306);
                settings.pool = opts.pool.unwrap_or(DEFAULT_MYSQL_POOL);
                // mysql_async knows only the mysql:// scheme; the rest of the URL is the same.
                let url = format!("mysql://{rest}");
                Backend::Mysql(Arc::new(super::mysql::Mysql::new(&url, &settings)?))
            }
            #[cfg(not(feature = "postgres"))]
            "postgres" | "postgresql" => return Err(not_compiled("postgres")),
            #[cfg(not(feature = "mysql"))]
            "mysql" | "mariadb" => return Err(not_compiled("mysql")),
            _ => {
                return Err(invalid(format!(
                    "the database connection must be a postgres://, postgresql://, mysql:// or \
                     mariadb:// URL, got a {scheme}:// URL"
                )))
            }
        };
        Ok(Self {
            backend,
            settings,
            writer: Writer {
                tx: std::sync::Mutex::new(None),
            },
        })
    }

    /// `"postgres"` or `"mysql"`.
    pub fn backend(&self) -> &'static str {
        match &self.backend {
            #[cfg(feature = "postgres")]
            Backend::Postgres(_) => "postgres",
            #[cfg(feature = "mysql")]
            Backend::Mysql(_) => "mysql",
        }
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.settings.table
    }

    /// `host:port` of the server, as error messages name it.
    pub fn address(&self) -> &str {
        &self.settings.addr
    }
}

impl DatabaseSessionHandler {
    /// Hands `op` to the batching workers (see [`Writer`]) and waits for its result.
    async fn queue(&self, op: Op) -> Result<bool> {
        let (done, result) = oneshot::channel();
        let tx = self.writer.sender(&self.backend, self.settings.pool);
        tx.send(Job { op, done })
            .map_err(|_| SessionError::Io("the database session writer stopped".into()))?;
        // The batch is bounded by the command timeout too; this bounds the wait in the queue.
        match tokio::time::timeout(self.settings.command_timeout, result).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(SessionError::Io(
                "the database session writer stopped".into(),
            )),
            Err(_) => Err(self.settings.timed_out(self.backend(), "write")),
        }
    }

    fn row(&self, id: &str, data: &str, meta: &WriteMeta) -> Row {
        Row {
            id: id.to_owned(),
            payload: data.to_owned(),
            now: self.settings.now_secs(),
            ip: clip(meta.ip.as_deref(), MAX_IP_CHARS).map(Into::into),
            user_agent: clip(meta.user_agent.as_deref(), MAX_USER_AGENT_CHARS).map(Into::into),
            user_id: meta.user_id.clone(),
            for_request: *meta != WriteMeta::default(),
        }
    }
}

/// Truncates `s` to at most `max` characters.
fn clip(s: Option<&str>, max: usize) -> Option<&str> {
    s.map(|s| match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    })
}

/// Calls the same method on whichever backend this is.
macro_rules! dispatch {
    ($self:ident, $b:ident => $e:expr) => {
        match &$self.backend {
            #[cfg(feature = "postgres")]
            Backend::Postgres($b) => $e,
            #[cfg(feature = "mysql")]
            Backend::Mysql($b) => $e,
        }
    };
}

#[async_trait]
impl SessionHandler for DatabaseSessionHandler {
    /// Connects one connection (creating or adopting the table) now rather than at the first read.
    async fn open(&self) -> Result<()> {
        dispatch!(self, b => b.open().await)
    }

    /// Closes every connection; a later operation connects again.
    async fn close(&self) -> Result<()> {
        dispatch!(self, b => b.close().await)
    }

    async fn read(&self, id: &str) -> Result<String> {
        id::check_storage_id(id)?;
        let cutoff = self.settings.cutoff();
        dispatch!(self, b => b.read(id, cutoff).await)
    }

    async fn write(&self, id: &str, data: &str, meta: &WriteMeta) -> Result<()> {
        id::check_storage_id(id)?;
        let row = self.row(id, data, meta);
        self.queue(Op::Write(row)).await.map(|_| ())
    }

    async fn write_if_unchanged(
        &self,
        id: &str,
        data: &str,
        previous: &str,
        meta: &WriteMeta,
    ) -> Result<CasOutcome> {
        id::check_storage_id(id)?;
        let row = self.row(id, data, meta);
        let cutoff = row.now - self.settings.lifetime_secs;
        let previous = previous.to_owned();
        if self.queue(Op::Cas(Cas { row, previous })).await? {
            return Ok(CasOutcome::Written);
        }
        // Refused: what is there now (a tombstone or an expired row reads as "").
        let current = dispatch!(self, b => b.read(id, cutoff).await)?;
        Ok(CasOutcome::Conflict(current))
    }

    fn supports_cas(&self) -> bool {
        true
    }

    async fn destroy(&self, id: &str) -> Result<()> {
        id::check_storage_id(id)?;
        // Stamped early by the back-dating, so the lifetime rule ends it in time.
        let stamp = self.settings.now_secs() - self.settings.tombstone_backdate_secs;
        dispatch!(self, b => b.destroy(id, stamp).await)
    }

    async fn gc(&self, max_lifetime_secs: u64) -> Result<u64> {
        let secs = i64::try_from(max_lifetime_secs).unwrap_or(i64::MAX);
        let cutoff = self.settings.now_secs().saturating_sub(secs);
        let n = dispatch!(self, b => b.gc(cutoff).await)?;
        // Expired blocking locks go too (a holder that crashed never released its lock).
        let now_ms = self.settings.clock.now_ms();
        dispatch!(self, b => b.gc_locks(now_ms).await)?;
        Ok(n)
    }

    async fn lock(&self, id: &str, ttl_ms: u64) -> Result<Option<String>> {
        id::check_storage_id(id)?;
        let token = crate::blocking::new_token()?;
        let now = self.settings.clock.now_ms();
        let until = now.saturating_add(i64::try_from(ttl_ms).unwrap_or(i64::MAX));
        let taken = dispatch!(self, b => b.lock(id, &token, until, now).await)?;
        Ok(taken.then_some(token))
    }

    async fn unlock(&self, id: &str, token: &str) -> Result<()> {
        id::check_storage_id(id)?;
        dispatch!(self, b => b.unlock(id, token).await)
    }

    fn supports_lock(&self) -> bool {
        true
    }

    async fn touch(&self, id: &str) -> Result<bool> {
        id::check_storage_id(id)?;
        let now = self.settings.now_secs();
        dispatch!(self, b => b.touch(id, now - self.settings.lifetime_secs, now).await)
    }

    async fn is_tombstone(&self, id: &str) -> Result<bool> {
        id::check_storage_id(id)?;
        let cutoff = self.settings.cutoff();
        dispatch!(self, b => b.is_tombstone(id, cutoff).await)
    }

    async fn user_sessions(&self, user: &str) -> Result<Vec<UserRecord>> {
        let now = self.settings.now_secs();
        dispatch!(self, b => b.user_sessions(user, now - self.settings.lifetime_secs, now).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names() {
        for ok in ["sessions", "_s", "Sessions_2", "t"] {
            assert!(check_table_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "1sessions",
            "sessions; DROP TABLE users",
            "s\"x",
            "s`x",
            "public.sessions",
            "séssions",
            &"a".repeat(65),
        ] {
            assert!(
                matches!(check_table_name(bad), Err(SessionError::InvalidOption(_))),
                "{bad}"
            );
        }
    }

    fn row(id: &str, payload: &str, ip: Option<&str>, user: Option<&str>, req: bool) -> Row {
        Row {
            id: id.into(),
            payload: payload.into(),
            now: 1,
            ip: ip.map(Into::into),
            user_agent: None,
            user_id: user.map(Into::into),
            for_request: req,
        }
    }

    #[test]
    fn coalesce_applies_writes_to_one_id_in_order_and_sorts_by_id() {
        let out = coalesce(vec![
            row("b", "1", Some("::1"), Some("7"), true),
            row("a", "x", None, None, false),
            row("b", "2", None, None, false),
            row("b", "3", Some("10.0.0.1"), None, true),
        ]);
        let ids: Vec<&str> = out.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["a", "b"]);
        let b = &out[1];
        assert_eq!(b.payload, "3");
        assert_eq!(b.ip.as_deref(), Some("10.0.0.1"));
        // The last write for a request had no user (a logout): user_id is cleared.
        assert_eq!((b.user_id.as_deref(), b.for_request), (None, true));
        // A write without a request keeps what the earlier one set.
        let kept = coalesce(vec![
            row("c", "1", Some("::1"), Some("7"), true),
            row("c", "2", None, None, false),
        ]);
        assert_eq!(kept[0].payload, "2");
        assert_eq!(kept[0].ip.as_deref(), Some("::1"));
        assert_eq!(
            (kept[0].user_id.as_deref(), kept[0].for_request),
            (Some("7"), true)
        );
    }

    #[test]
    fn addresses_never_name_the_user_or_password() {
        assert_eq!(address_of("u:p@db.example:6543/x", 5432), "db.example:6543");
        assert_eq!(
            address_of("u:p%40x@127.0.0.1/test?a=b", 3306),
            "127.0.0.1:3306"
        );
        assert_eq!(address_of("[::1]:5433/db", 5432), "[::1]:5433");
        assert_eq!(address_of("[::1]/db", 5432), "[::1]:5432");
        assert_eq!(address_of("/db", 5432), "localhost:5432");
    }

    #[test]
    fn options_are_checked() {
        let bad = |o: DatabaseOptions, url: &str| {
            matches!(
                DatabaseSessionHandler::new(url, o, None),
                Err(SessionError::InvalidOption(_))
            )
        };
        let pg = "postgres://postgres@127.0.0.1/test";
        let d = DatabaseOptions::default;
        assert!(bad(
            DatabaseOptions {
                pool: Some(0),
                ..d()
            },
            pg
        ));
        assert!(bad(
            DatabaseOptions {
                pool: Some(MAX_POOL + 1),
                ..d()
            },
            pg
        ));
        assert!(bad(
            DatabaseOptions {
                command_timeout_ms: 0,
                ..d()
            },
            pg
        ));
        assert!(bad(
            DatabaseOptions {
                minutes: -1.0,
                ..d()
            },
            pg
        ));
        assert!(bad(
            DatabaseOptions {
                table: "x;y".into(),
                ..d()
            },
            pg
        ));
        assert!(bad(d(), "redis://127.0.0.1"));
        assert!(bad(d(), "127.0.0.1:5432"));
        let e = DatabaseSessionHandler::new("sqlserver://sa:hunter2@h/db", d(), None)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(!e.contains("hunter2"), "{e}");
    }
}
