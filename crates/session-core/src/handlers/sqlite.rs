//! `SqliteSessionHandler`: sessions as rows of a SQLite table, shareable by several processes.
//!
//! The table is the one OstroJS's `session:table` migration creates (`sid`, `ip_address`,
//! `user_agent`, `payload`, `last_activity`), plus a nullable `user_id`. Payloads are stored as
//! raw JSON text, as `@ostro/session` 1.x stored them.
//!
//! All SQLite work runs on one dedicated thread per handler, fed by a channel and answering
//! each request through a oneshot: the caller's thread (Node's, in the binding) never waits on
//! SQLite, and the one connection needs no lock. Measured against a `Mutex<Connection>` plus
//! `spawn_blocking`, this halved latency under load (see the napi notes). The thread is started
//! and the database opened on the first operation, so a bad file is reported there; the thread
//! ends when the handler is closed or dropped, and never keeps a process alive.
//!
//! Compare-and-set (issue 12): [`SessionHandler::write_if_unchanged`] reads, compares and writes
//! inside one `BEGIN IMMEDIATE` transaction on the worker thread, which takes SQLite's write lock
//! before the read, so it also holds against other processes using the file (they wait up to the
//! busy timeout). `destroy` leaves a tombstone: the row stays with an empty payload and a fresh
//! `last_activity` (and no `user_id`), so the table keeps the migration's schema. With a shorter
//! tombstone time ([`SqliteSessionHandler::with_tombstone_secs`]) its `last_activity` is set that
//! much less than a lifetime before now, so the lifetime rule that every reader and gc apply ends
//! it that long after the destroy. A tombstone reads as no session, a touch of it changes nothing
//! and answers `false`, a compare-and-set never matches it, and gc deletes it once it is older than
//! the lifetime, like any idle row. Laravel and 1.x read an empty payload as an empty session too.
//!
//! Opt-in blocking (see [`crate::blocking`]): locks are rows of a second table,
//! `<table>_locks` (`sid`, `token`, `expires_at` in ms), created on the first lock. One upsert
//! takes a lock that is absent or expired, atomically for every process using the file; the
//! holder's delete names its token; gc deletes expired locks.

use crate::clock::{self, SharedClock};
use crate::error::{Result, SessionError};
use crate::handler::{self, CasOutcome, SessionHandler, UserRecord, WriteMeta};
use crate::id;
use async_trait::async_trait;
use rusqlite::types::ValueRef;
use rusqlite::{
    params, Connection, ErrorCode, OptionalExtension, Transaction, TransactionBehavior,
};
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::oneshot;

/// The table name used when none is configured (the `session:table` migration's).
pub const DEFAULT_TABLE: &str = "sessions";
/// The busy timeout used when none is configured, in milliseconds.
pub const DEFAULT_BUSY_TIMEOUT_MS: u64 = 5000;
/// The path that opens a private in-memory database.
pub const MEMORY: &str = ":memory:";

/// Longest accepted table name; SQLite has no limit, but a config value this long is a mistake.
const MAX_TABLE_LEN: usize = 64;
/// `ip_address` is `varchar(45)` in the migration: the longest textual IPv6 address.
const MAX_IP_CHARS: usize = 45;
/// Laravel truncates user agents to 500 characters; the header is client-controlled.
const MAX_USER_AGENT_CHARS: usize = 500;

/// What the worker thread needs; shared with the handler.
struct Config {
    path: String,
    table: String,
    lifetime_secs: i64,
    // How much earlier than the destroy a tombstone's `last_activity` is set (see
    // `handler::tombstone_backdate_ms`): 0 keeps it for the lifetime.
    tombstone_backdate_secs: i64,
    busy_timeout_ms: u64,
    clock: SharedClock,
    sql: Statements,
}

/// The statements, built once from the validated table name.
struct Statements {
    read: String,
    // The payload and whether the row is live, tombstones and expired rows included.
    read_any: String,
    write: String,
    touch: String,
    destroy: String,
    gc: String,
    // A user's live rows, by the indexed user_id column (see crate::users).
    user_sessions: String,
}

type Job = Box<dyn FnOnce(&mut Worker) + Send>;

enum Msg {
    Run(Job),
    /// Closes the connection (checkpointing the WAL) and acknowledges.
    Close(oneshot::Sender<()>),
}

/// Sessions in a SQLite table.
#[derive(Clone)]
pub struct SqliteSessionHandler(Arc<Shared>);

struct Shared {
    cfg: Arc<Config>,
    // `None` until the first operation, and again after `close`.
    tx: Mutex<Option<mpsc::Sender<Msg>>>,
    // Deadline of one operation, queueing behind others on the worker included: a database on
    // a hung disk or network filesystem fails requests instead of holding them forever.
    timeout: Duration,
}

/// Default deadline of one operation (as the Store's `timeoutMs`).
pub const DEFAULT_TIMEOUT_MS: u64 = 30_000;

impl SqliteSessionHandler {
    /// A handler storing sessions in `table` of the database at `path` (`":memory:"` for a
    /// private in-memory database). Sessions live `minutes` after their last write or touch.
    /// A lock held by another connection is waited for up to `busy_timeout_ms`, after which
    /// the operation fails with [`SessionError::Busy`].
    ///
    /// Nothing is opened here: the database is opened (and the table created or adopted) by
    /// the first operation, which reports a bad file.
    pub fn new(
        path: impl Into<String>,
        table: &str,
        minutes: f64,
        busy_timeout_ms: u64,
        clock: Option<SharedClock>,
    ) -> Result<Self> {
        let path = path.into();
        if path.is_empty() {
            return Err(SessionError::InvalidOption(
                "the sqlite path must be a non-empty string (or ':memory:')".into(),
            ));
        }
        if path.contains('\0') {
            return Err(SessionError::InvalidOption(
                "the sqlite path must not contain a NUL character".into(),
            ));
        }
        check_table_name(table)?;
        // rusqlite panics on busy timeouts that do not fit a C int of milliseconds.
        if busy_timeout_ms > i32::MAX as u64 {
            return Err(SessionError::InvalidOption(format!(
                "busyTimeoutMs must be at most {} ms, got {busy_timeout_ms}",
                i32::MAX
            )));
        }
        let lifetime_ms = clock::lifetime_ms(minutes)?;
        let cfg = Config {
            sql: Statements::for_table(table),
            path,
            table: table.to_owned(),
            // `last_activity` holds whole seconds; a row is readable while
            // now - last_activity <= lifetime, which for integers means <= floor(lifetime).
            lifetime_secs: lifetime_ms.div_euclid(1000),
            tombstone_backdate_secs: 0,
            busy_timeout_ms,
            clock: clock.unwrap_or_else(clock::system),
        };
        Ok(Self(Arc::new(Shared {
            cfg: Arc::new(cfg),
            tx: Mutex::new(None),
            timeout: Duration::from_millis(DEFAULT_TIMEOUT_MS),
        })))
    }

    /// Sets the deadline of one operation (default [`DEFAULT_TIMEOUT_MS`]); past it the
    /// operation fails with [`SessionError::Timeout`]. Call it on a new handler, before cloning.
    ///
    /// # Errors
    /// [`SessionError::InvalidOption`] outside 1..=600 000 ms, or on a handler already cloned.
    pub fn with_timeout_ms(mut self, timeout_ms: u64) -> Result<Self> {
        if !(1..=600_000).contains(&timeout_ms) {
            return Err(SessionError::InvalidOption(format!(
                "timeoutMs must be a number of milliseconds from 1 to 600000, got {timeout_ms}"
            )));
        }
        let shared = Arc::get_mut(&mut self.0).ok_or_else(|| {
            SessionError::InvalidOption("set the sqlite timeout before sharing the handler".into())
        })?;
        shared.timeout = Duration::from_millis(timeout_ms);
        Ok(self)
    }

    /// Keeps tombstones `secs` seconds instead of the lifetime (`None`: the lifetime); gc
    /// removes them once that time has passed. Call it on a new handler, before cloning.
    ///
    /// # Errors
    /// [`SessionError::InvalidOption`] unless `secs` is from 1 to the lifetime (see
    /// [`handler::tombstone_ms`]), or on a handler already cloned or used.
    pub fn with_tombstone_secs(mut self, secs: Option<u64>) -> Result<Self> {
        let cfg = Arc::get_mut(&mut self.0)
            .and_then(|shared| Arc::get_mut(&mut shared.cfg))
            .ok_or_else(|| {
                SessionError::InvalidOption(
                    "set the sqlite tombstone time before sharing the handler".into(),
                )
            })?;
        // `last_activity` holds whole seconds: the lifetime as the rows keep it.
        let lifetime_ms = cfg.lifetime_secs.saturating_mul(1000);
        cfg.tombstone_backdate_secs =
            handler::tombstone_backdate_ms(lifetime_ms, secs)?.div_euclid(1000);
        Ok(self)
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.0.cfg.table
    }

    fn sender(&self) -> MutexGuard<'_, Option<mpsc::Sender<Msg>>> {
        // Nothing panics while holding this lock; a poisoned one still holds a valid sender.
        self.0.tx.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends `msg` to the worker, starting one when there is none (or it has died).
    fn send(&self, msg: Msg) -> Result<()> {
        let mut slot = self.sender();
        let msg = match slot.as_ref() {
            Some(tx) => match tx.send(msg) {
                Ok(()) => return Ok(()),
                // The worker is gone (it only stops when its channel closes, so this is a
                // defensive path): start a new one below.
                Err(mpsc::SendError(msg)) => msg,
            },
            None => msg,
        };
        let tx = spawn_worker(Arc::clone(&self.0.cfg))?;
        let sent = tx.send(msg);
        *slot = Some(tx);
        sent.map_err(|_| SessionError::Io("the sqlite session worker thread stopped".into()))
    }

    /// Runs `f` on the worker thread with an open connection, and awaits its result.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection, &Config) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (done, result) = oneshot::channel();
        let job: Job = Box::new(move |w: &mut Worker| {
            let cfg = Arc::clone(&w.cfg);
            let r = w.connection().and_then(|c| f(c, &cfg));
            let _ = done.send(r);
        });
        self.send(Msg::Run(job))?;
        match tokio::time::timeout(self.0.timeout, result).await {
            Ok(r) => {
                r.map_err(|_| SessionError::Io("the sqlite session worker thread stopped".into()))?
            }
            // The job still runs (a SQLite call cannot be interrupted); its result is dropped.
            Err(_) => Err(SessionError::Timeout(format!(
                "a sqlite session operation did not complete within {} ms",
                self.0.timeout.as_millis()
            ))),
        }
    }
}

/// A table name must be a plain identifier, so that config can never inject SQL.
fn check_table_name(table: &str) -> Result<()> {
    let mut bytes = table.bytes();
    let plain = matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && table.len() <= MAX_TABLE_LEN;
    if !plain {
        return Err(SessionError::InvalidOption(format!(
            "the sqlite table name must be a plain SQL identifier ([A-Za-z_][A-Za-z0-9_]*, at most \
             {MAX_TABLE_LEN} characters), got {:?}",
            crate::error::redact(table)
        )));
    }
    if table.to_ascii_lowercase().starts_with("sqlite_") {
        return Err(SessionError::InvalidOption(
            "the sqlite table name must not start with sqlite_ (reserved by SQLite)".into(),
        ));
    }
    Ok(())
}

impl Statements {
    fn for_table(table: &str) -> Self {
        // `table` is a checked identifier; quoting it also keeps SQL keywords usable as names.
        let t = format!("\"{table}\"");
        Self {
            // A NULL last_activity (a row a 1.x process wrote after we opened) counts as fresh.
            read: format!(
                "SELECT payload FROM {t} WHERE sid = ?1 \
                 AND (last_activity >= ?2 OR last_activity IS NULL)"
            ),
            read_any: format!(
                "SELECT payload, (last_activity >= ?2 OR last_activity IS NULL) \
                 FROM {t} WHERE sid = ?1"
            ),
            // ip and user agent keep their last known value when a write has none. user_id
            // follows a write made for a request (?7), so a logout clears it, but a write with
            // no metadata at all (no request in sight) says nothing about the user.
            write: format!(
                "INSERT INTO {t} (sid, payload, last_activity, ip_address, user_agent, user_id) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                 ON CONFLICT(sid) DO UPDATE SET payload = excluded.payload, \
                 last_activity = excluded.last_activity, \
                 ip_address = COALESCE(excluded.ip_address, ip_address), \
                 user_agent = COALESCE(excluded.user_agent, user_agent), \
                 user_id = CASE WHEN ?7 THEN excluded.user_id ELSE user_id END"
            ),
            touch: format!(
                "UPDATE {t} SET last_activity = ?3 WHERE sid = ?1 \
                 AND (last_activity >= ?2 OR last_activity IS NULL) AND payload <> ''"
            ),
            // A tombstone (see the module docs), not a delete.
            destroy: format!(
                "UPDATE {t} SET payload = '', last_activity = ?2, user_id = NULL WHERE sid = ?1"
            ),
            gc: format!("DELETE FROM {t} WHERE last_activity < ?1"),
            user_sessions: format!(
                "SELECT sid, payload, last_activity, ip_address, user_agent FROM {t} \
                 WHERE user_id = ?1 AND (last_activity >= ?2 OR last_activity IS NULL) \
                 AND payload <> ''"
            ),
        }
    }
}

fn spawn_worker(cfg: Arc<Config>) -> Result<mpsc::Sender<Msg>> {
    let (tx, rx) = mpsc::channel::<Msg>();
    std::thread::Builder::new()
        .name("ostro-sqlite".into())
        .spawn(move || Worker { cfg, conn: None }.serve(&rx))
        .map_err(|e| SessionError::Io(format!("cannot start the sqlite session thread: {e}")))?;
    Ok(tx)
}

/// The state owned by the worker thread.
struct Worker {
    cfg: Arc<Config>,
    conn: Option<Connection>,
}

impl Worker {
    /// Serves requests until every sender is gone (the handler was closed or dropped).
    fn serve(mut self, rx: &mpsc::Receiver<Msg>) {
        while let Ok(msg) = rx.recv() {
            match msg {
                Msg::Run(job) => {
                    // A panic inside SQLite glue must not take the thread (and every later
                    // request) with it; its caller sees its oneshot dropped. The connection may
                    // be mid-statement, so it is reopened.
                    if panic::catch_unwind(AssertUnwindSafe(|| job(&mut self))).is_err() {
                        self.conn = None;
                    }
                }
                Msg::Close(ack) => {
                    self.conn = None;
                    let _ = ack.send(());
                }
            }
        }
    }

    /// The open connection, opening it (and preparing the table) on first use. A failed open
    /// is retried by the next request.
    fn connection(&mut self) -> Result<&Connection> {
        if self.conn.is_none() {
            self.conn = Some(open(&self.cfg)?);
        }
        self.conn
            .as_ref()
            .ok_or_else(|| SessionError::Io("the sqlite session database is not open".into()))
    }
}

/// The upsert of one row, with the request's metadata.
fn write_row(c: &Connection, cfg: &Config, id: &str, data: &str, meta: &WriteMeta) -> Result<()> {
    let err = |e| map_err(cfg, "write", Some(id), e);
    let for_request = *meta != WriteMeta::default();
    let mut stmt = c.prepare_cached(&cfg.sql.write).map_err(err)?;
    stmt.execute(params![
        id,
        data,
        now_secs(cfg),
        clip(meta.ip.as_deref(), MAX_IP_CHARS),
        clip(meta.user_agent.as_deref(), MAX_USER_AGENT_CHARS),
        meta.user_id,
        for_request,
    ])
    .map_err(err)?;
    Ok(())
}

fn now_secs(cfg: &Config) -> i64 {
    cfg.clock.now_ms().div_euclid(1000)
}

/// Maps a SQLite error, never naming the database path or a full session id.
fn map_err(cfg: &Config, op: &str, id: Option<&str>, e: rusqlite::Error) -> SessionError {
    match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => SessionError::Busy(format!(
            "database is locked: the sqlite session {op} waited longer than the busy timeout \
             ({} ms)",
            cfg.busy_timeout_ms
        )),
        Some(ErrorCode::NotADatabase) => SessionError::Io(format!(
            "the sqlite session database cannot be used ({op}): the file is not a SQLite database"
        )),
        _ => {
            // rusqlite names the path in open errors; messages must not.
            let msg = match e {
                rusqlite::Error::InvalidPath(_) => "invalid database path".to_owned(),
                e => e.to_string().replace(&cfg.path, "(the database path)"),
            };
            match id {
                Some(id) => SessionError::io(op, id, format!("sqlite: {msg}")),
                None => SessionError::Io(format!("sqlite session {op} failed: {msg}")),
            }
        }
    }
}

/// Why the database file cannot be opened, naming its directory: the message a user can act on
/// (SQLite itself only says "unable to open database file").
fn open_error(cfg: &Config, e: rusqlite::Error) -> SessionError {
    let path = Path::new(&cfg.path);
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    match std::fs::metadata(dir) {
        Err(io) if io.kind() == std::io::ErrorKind::NotFound => SessionError::Io(format!(
            "sqlite session open failed: the directory {} does not exist; create it, or point \
             the connection at a file in an existing directory",
            dir.display()
        )),
        Ok(m) if !m.is_dir() => SessionError::Io(format!(
            "sqlite session open failed: {} is not a directory",
            dir.display()
        )),
        _ => match e.sqlite_error_code() {
            Some(ErrorCode::CannotOpen) | Some(ErrorCode::PermissionDenied) => {
                SessionError::Io(format!(
                    "sqlite session open failed: the database file cannot be opened or created in \
                     the directory {} (check that it exists and this process may write to it)",
                    dir.display()
                ))
            }
            _ => map_err(cfg, "open", None, e),
        },
    }
}

/// Opens the database with the project's settings and creates or adopts the table.
fn open(cfg: &Config) -> Result<Connection> {
    let err = |e| map_err(cfg, "open", None, e);
    let mut conn = if cfg.path == MEMORY {
        Connection::open_in_memory()
    } else {
        Connection::open(&cfg.path)
    }
    .map_err(|e| open_error(cfg, e))?;
    // First, so that every later step waits for other processes' locks.
    conn.busy_timeout(Duration::from_millis(cfg.busy_timeout_ms))
        .map_err(err)?;
    // When several connections open a new file at the same moment, SQLite can refuse the switch
    // to WAL or the table's write lock at once, without calling the busy handler (seen once in
    // ~10 runs of the two-handler test). Retry within the busy timeout.
    let deadline = std::time::Instant::now() + Duration::from_millis(cfg.busy_timeout_ms);
    loop {
        match prepare(cfg, &mut conn) {
            Err(SessionError::Busy(_)) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            other => return other.map(|()| conn),
        }
    }
}

fn prepare(cfg: &Config, conn: &mut Connection) -> Result<()> {
    let err = |e| map_err(cfg, "open", None, e);
    // In-memory databases answer "memory"; both are fine. This is also the first statement
    // that reads the file, so a file that is not a database fails here.
    conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0))
        .map_err(err)?;
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(err)?;
    prepare_table(cfg, conn)
}

/// Creates the table, or adopts one made by the `session:table` migration, in one write
/// transaction so that processes opening the same file together do not race.
fn prepare_table(cfg: &Config, conn: &mut Connection) -> Result<()> {
    let err = |e| map_err(cfg, "open", None, e);
    let t = format!("\"{}\"", cfg.table);
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(err)?;
    let columns: Vec<String> = {
        let mut stmt = tx
            .prepare("SELECT lower(name) FROM pragma_table_info(?1)")
            .map_err(err)?;
        let rows = stmt
            .query_map([&cfg.table], |r| r.get::<_, String>(0))
            .map_err(err)?;
        rows.collect::<rusqlite::Result<_>>().map_err(err)?
    };
    if columns.is_empty() {
        tx.execute_batch(&format!(
            "CREATE TABLE {t} (\
               sid TEXT NOT NULL PRIMARY KEY, \
               user_id TEXT NULL, \
               ip_address VARCHAR(45) NULL, \
               user_agent TEXT NULL, \
               payload TEXT NULL, \
               last_activity INTEGER NULL)"
        ))
        .map_err(err)?;
    } else {
        let has = |c: &str| columns.iter().any(|x| x == c);
        for required in ["sid", "payload", "last_activity"] {
            if !has(required) {
                return Err(SessionError::Io(format!(
                    "the sqlite session table {t} exists but has no {required} column; \
                     it is not a session table (see the session:table migration)"
                )));
            }
        }
        let sid_unique: bool = tx
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM pragma_index_list(?1) AS il \
                 WHERE il.\"unique\" = 1 \
                 AND (SELECT count(*) FROM pragma_index_info(il.name)) = 1 \
                 AND (SELECT lower(name) FROM pragma_index_info(il.name)) = 'sid')",
                [&cfg.table],
                |r| r.get(0),
            )
            .map_err(err)?;
        if !sid_unique {
            return Err(SessionError::Io(format!(
                "the sqlite session table {t} has no PRIMARY KEY or UNIQUE constraint on sid"
            )));
        }
        // The migration has no user_id; older hand-made tables may lack more.
        for (col, ty) in [
            ("user_id", "TEXT"),
            ("ip_address", "VARCHAR(45)"),
            ("user_agent", "TEXT"),
        ] {
            if !has(col) {
                tx.execute_batch(&format!("ALTER TABLE {t} ADD COLUMN {col} {ty} NULL"))
                    .map_err(err)?;
            }
        }
    }
    // gc deletes by last_activity: make sure an index leads with it (the migration made one,
    // under whatever name its schema builder chose).
    let indexed: bool = tx
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM pragma_index_list(?1) AS il \
             WHERE (SELECT lower(name) FROM pragma_index_info(il.name) WHERE seqno = 0) \
             = 'last_activity')",
            [&cfg.table],
            |r| r.get(0),
        )
        .map_err(err)?;
    if !indexed {
        tx.execute_batch(&format!(
            "CREATE INDEX \"{}_last_activity_index\" ON {t} (last_activity)",
            cfg.table
        ))
        .map_err(err)?;
    }
    // A user's sessions are listed by user_id (sessionsOf, "log out other devices").
    let user_indexed: bool = tx
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM pragma_index_list(?1) AS il \
             WHERE (SELECT lower(name) FROM pragma_index_info(il.name) WHERE seqno = 0) \
             = 'user_id')",
            [&cfg.table],
            |r| r.get(0),
        )
        .map_err(err)?;
    if !user_indexed {
        tx.execute_batch(&format!(
            "CREATE INDEX \"{}_user_id_index\" ON {t} (user_id)",
            cfg.table
        ))
        .map_err(err)?;
    }
    // Rows 1.x left without a time live one more lifetime from now, rather than vanishing or
    // living forever.
    tx.execute(
        &format!("UPDATE {t} SET last_activity = ?1 WHERE last_activity IS NULL"),
        [now_secs(cfg)],
    )
    .map_err(err)?;
    tx.commit().map_err(err)
}

/// Truncates `s` to at most `max` characters.
fn clip(s: Option<&str>, max: usize) -> Option<&str> {
    s.map(|s| match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    })
}

#[async_trait]
impl SessionHandler for SqliteSessionHandler {
    /// Opens the database now rather than at the first read.
    async fn open(&self) -> Result<()> {
        self.run(|_, _| Ok(())).await
    }

    /// Closes the connection and ends the thread; a later operation opens them again.
    async fn close(&self) -> Result<()> {
        let Some(tx) = self.sender().take() else {
            return Ok(());
        };
        let (ack, acked) = oneshot::channel();
        if tx.send(Msg::Close(ack)).is_ok() {
            // The thread is gone already when this fails: nothing left to close.
            let _ = acked.await;
        }
        Ok(())
    }

    async fn read(&self, id: &str) -> Result<String> {
        id::check_storage_id(id)?;
        let id = id.to_owned();
        self.run(move |c, cfg| {
            let err = |e| map_err(cfg, "read", Some(&id), e);
            let cutoff = now_secs(cfg) - cfg.lifetime_secs;
            let mut stmt = c.prepare_cached(&cfg.sql.read).map_err(err)?;
            let payload = stmt
                .query_row(params![id, cutoff], |r| {
                    // Invalid UTF-8 is decoded lossily (U+FFFD), as by every driver: bad bytes
                    // inside a string value cost that string, not the session and its id.
                    Ok(match r.get_ref(0)? {
                        ValueRef::Text(b) | ValueRef::Blob(b) => {
                            String::from_utf8_lossy(b).into_owned()
                        }
                        _ => String::new(),
                    })
                })
                .optional()
                .map_err(err)?;
            Ok(payload.unwrap_or_default())
        })
        .await
    }

    async fn write(&self, id: &str, data: &str, meta: &WriteMeta) -> Result<()> {
        id::check_storage_id(id)?;
        let (id, data, meta) = (id.to_owned(), data.to_owned(), meta.clone());
        self.run(move |c, cfg| write_row(c, cfg, &id, &data, &meta))
            .await
    }

    async fn write_if_unchanged(
        &self,
        id: &str,
        data: &str,
        previous: &str,
        meta: &WriteMeta,
    ) -> Result<CasOutcome> {
        id::check_storage_id(id)?;
        let (id, data, previous, meta) = (
            id.to_owned(),
            data.to_owned(),
            previous.to_owned(),
            meta.clone(),
        );
        self.run(move |c, cfg| {
            let err = |e| map_err(cfg, "write", Some(&id), e);
            // IMMEDIATE: the write lock is taken before the read, so no other connection (in
            // this process or another) can change the row between the compare and the write.
            let tx = Transaction::new_unchecked(c, TransactionBehavior::Immediate).map_err(err)?;
            let cutoff = now_secs(cfg) - cfg.lifetime_secs;
            let row = c
                .prepare_cached(&cfg.sql.read_any)
                .map_err(err)?
                .query_row(params![id, cutoff], |r| {
                    let payload = match r.get_ref(0)? {
                        ValueRef::Text(b) | ValueRef::Blob(b) => {
                            String::from_utf8_lossy(b).into_owned()
                        }
                        _ => String::new(),
                    };
                    Ok((payload, r.get::<_, Option<bool>>(1)?.unwrap_or(true)))
                })
                .optional()
                .map_err(err)?;
            let current = match row {
                // A live tombstone never matches, not even "no record".
                Some((p, true)) if p.is_empty() => return Ok(CasOutcome::Conflict(String::new())),
                Some((p, true)) => p,
                // Expired (tombstones included) or absent: no record.
                Some((_, false)) | None => String::new(),
            };
            if current != previous {
                // Dropping `tx` rolls back the read-only transaction.
                return Ok(CasOutcome::Conflict(current));
            }
            write_row(c, cfg, &id, &data, &meta)?;
            tx.commit().map_err(err)?;
            Ok(CasOutcome::Written)
        })
        .await
    }

    fn supports_cas(&self) -> bool {
        true
    }

    async fn lock(&self, id: &str, ttl_ms: u64) -> Result<Option<String>> {
        id::check_storage_id(id)?;
        let token = crate::blocking::new_token()?;
        let id = id.to_owned();
        self.run(move |c, cfg| {
            let now = cfg.clock.now_ms();
            let until = now.saturating_add(i64::try_from(ttl_ms).unwrap_or(i64::MAX));
            let n = with_locks(c, cfg, "lock", &id, &lock_sql(cfg, LOCK), |stmt| {
                stmt.execute(params![id, token, until, now])
            })?;
            Ok((n == 1).then_some(token))
        })
        .await
    }

    async fn unlock(&self, id: &str, token: &str) -> Result<()> {
        id::check_storage_id(id)?;
        let (id, token) = (id.to_owned(), token.to_owned());
        self.run(move |c, cfg| {
            with_locks(c, cfg, "unlock", &id, &lock_sql(cfg, UNLOCK), |stmt| {
                stmt.execute(params![id, token])
            })
            .map(|_| ())
        })
        .await
    }

    fn supports_lock(&self) -> bool {
        true
    }

    async fn destroy(&self, id: &str) -> Result<()> {
        id::check_storage_id(id)?;
        let id = id.to_owned();
        self.run(move |c, cfg| {
            let err = |e| map_err(cfg, "destroy", Some(&id), e);
            let mut stmt = c.prepare_cached(&cfg.sql.destroy).map_err(err)?;
            let stamp = now_secs(cfg) - cfg.tombstone_backdate_secs;
            stmt.execute(params![id, stamp]).map_err(err)?;
            Ok(())
        })
        .await
    }

    async fn gc(&self, max_lifetime_secs: u64) -> Result<u64> {
        self.run(move |c, cfg| {
            let err = |e| map_err(cfg, "gc", None, e);
            let secs = i64::try_from(max_lifetime_secs).unwrap_or(i64::MAX);
            let cutoff = now_secs(cfg).saturating_sub(secs);
            let mut stmt = c.prepare_cached(&cfg.sql.gc).map_err(err)?;
            let n = stmt.execute([cutoff]).map_err(err)?;
            // Expired blocking locks go too (a holder that crashed never released its lock).
            let locks = format!("DELETE FROM \"{}_locks\" WHERE expires_at <= ?1", cfg.table);
            match c.execute(&locks, [cfg.clock.now_ms()]) {
                Err(e) if is_no_such_table(&e) => {}
                r => {
                    r.map_err(err)?;
                }
            }
            Ok(u64::try_from(n).unwrap_or(u64::MAX))
        })
        .await
    }

    async fn user_sessions(&self, user: &str) -> Result<Vec<UserRecord>> {
        let user = user.to_owned();
        self.run(move |c, cfg| {
            let err = |e| map_err(cfg, "user sessions", None, e);
            let cutoff = now_secs(cfg) - cfg.lifetime_secs;
            let mut stmt = c.prepare_cached(&cfg.sql.user_sessions).map_err(err)?;
            let text = |v: ValueRef<'_>| match v {
                ValueRef::Text(b) | ValueRef::Blob(b) => {
                    Some(String::from_utf8_lossy(b).into_owned())
                }
                _ => None,
            };
            let rows = stmt
                .query_map(params![user, cutoff], |r| {
                    Ok(UserRecord {
                        id: text(r.get_ref(0)?).unwrap_or_default(),
                        payload: text(r.get_ref(1)?).unwrap_or_default(),
                        last_activity_ms: r
                            .get::<_, Option<i64>>(2)?
                            .unwrap_or_else(|| now_secs(cfg))
                            .saturating_mul(1000),
                        ip: text(r.get_ref(3)?),
                        user_agent: text(r.get_ref(4)?),
                    })
                })
                .map_err(err)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(err)
        })
        .await
    }

    async fn touch(&self, id: &str) -> Result<bool> {
        id::check_storage_id(id)?;
        let id = id.to_owned();
        self.run(move |c, cfg| {
            let err = |e| map_err(cfg, "touch", Some(&id), e);
            let now = now_secs(cfg);
            let mut stmt = c.prepare_cached(&cfg.sql.touch).map_err(err)?;
            let n = stmt
                .execute(params![id, now - cfg.lifetime_secs, now])
                .map_err(err)?;
            Ok(n > 0)
        })
        .await
    }

    async fn is_tombstone(&self, id: &str) -> Result<bool> {
        id::check_storage_id(id)?;
        let id = id.to_owned();
        self.run(move |c, cfg| {
            let err = |e| map_err(cfg, "read", Some(&id), e);
            let cutoff = now_secs(cfg) - cfg.lifetime_secs;
            let mut stmt = c.prepare_cached(&cfg.sql.read).map_err(err)?;
            // A live row whose payload is empty text: the tombstone `destroy` leaves.
            let found = stmt
                .query_row(params![id, cutoff], |r| {
                    Ok(matches!(
                        r.get_ref(0)?,
                        ValueRef::Text(b) | ValueRef::Blob(b) if b.is_empty()
                    ))
                })
                .optional()
                .map_err(err)?;
            Ok(found == Some(true))
        })
        .await
    }
}

// ----- opt-in blocking (see the module docs) ------------------------------------------------

/// Takes the lock when it is absent or expired. ?1 sid, ?2 token, ?3 expiry, ?4 now (ms).
const LOCK: &str = "INSERT INTO {t} (sid, token, expires_at) VALUES (?1, ?2, ?3) \
     ON CONFLICT(sid) DO UPDATE SET token = excluded.token, expires_at = excluded.expires_at \
     WHERE expires_at <= ?4";
/// Releases the lock only for its holder. ?1 sid, ?2 token.
const UNLOCK: &str = "DELETE FROM {t} WHERE sid = ?1 AND token = ?2";

fn lock_sql(cfg: &Config, sql: &str) -> String {
    sql.replace("{t}", &format!("\"{}_locks\"", cfg.table))
}

fn is_no_such_table(e: &rusqlite::Error) -> bool {
    e.to_string().contains("no such table")
}

/// Runs a statement on the lock table, creating the table the first time it is missing.
fn with_locks(
    c: &Connection,
    cfg: &Config,
    op: &str,
    id: &str,
    sql: &str,
    run: impl Fn(&mut rusqlite::CachedStatement<'_>) -> rusqlite::Result<usize>,
) -> Result<usize> {
    let err = |e| map_err(cfg, op, Some(id), e);
    let first = c.prepare_cached(sql).and_then(|mut stmt| run(&mut stmt));
    match first {
        Err(e) if is_no_such_table(&e) => {
            c.execute_batch(&format!(
                "CREATE TABLE IF NOT EXISTS \"{}_locks\" (\
                   sid TEXT NOT NULL PRIMARY KEY, token TEXT NOT NULL, \
                   expires_at INTEGER NOT NULL)",
                cfg.table
            ))
            .map_err(err)?;
            let mut stmt = c.prepare_cached(sql).map_err(err)?;
            run(&mut stmt).map_err(err)
        }
        r => r.map_err(err),
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
            "main.sessions",
            "séssions",
            "sqlite_master",
            "SQLITE_x",
            &"a".repeat(65),
        ] {
            assert!(
                matches!(check_table_name(bad), Err(SessionError::InvalidOption(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn clip_counts_characters() {
        assert_eq!(clip(Some("héllo"), 2), Some("hé"));
        assert_eq!(clip(Some("hi"), 5), Some("hi"));
        assert_eq!(clip(None, 5), None);
    }
}
