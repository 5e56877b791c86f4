//! The MySQL/MariaDB backend of [`crate::handlers::database`], on `mysql_async` and its pool.
//!
//! The pool holds at most `pool` connections. Statements are prepared by each connection on
//! first use and kept in its statement cache; connections are not reset when they go back to
//! the pool (that would drop the cache and cost a round trip per operation), which is safe here
//! because no operation changes session state. After a failure that means the server is gone,
//! the whole pool is replaced, so that no dead connection is handed out again.
//!
//! Reads that arrive while others are on the wire are answered together by one
//! `SELECT … WHERE sid IN (…)` (see [`Reads`]): the server's cost is per statement (a thread
//! wake-up, a network round, parsing the execute) far more than per row, and with concurrency a
//! read is otherwise the one statement of a cycle that is not batched (writes are, see the
//! database driver's `Writer`). A lone read is sent alone, as before, without any hand-over.
//!
//! The table is created `utf8mb4` with a binary collation: session ids differ by case only, and
//! payloads may hold any character. `payload` is `LONGTEXT` (a migration's `TEXT` holds 64 KB;
//! a longer payload is then refused with [`SessionError::TooLarge`]).

use super::database::{coalesce, same_error, Cas, Row, Settings};
use crate::error::{Result, SessionError};
use crate::handler::UserRecord;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder, Params, Pool, PoolConstraints, PoolOpts, TxOpts};
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::time::Instant;

/// The statements, built once from the validated table name.
struct Sql {
    table: String,
    read: String,
    write: String,
    touch: String,
    destroy: String,
    gc: String,
    /// Compare-and-set over the payload the request loaded (never '': a tombstone).
    cas_update: String,
    /// Compare-and-set for a request that loaded nothing: a plain insert, and when the id
    /// exists, `cas_revive` replaces it only if it expired.
    cas_insert: String,
    cas_revive: String,
    /// A user's live rows (see crate::users).
    user_sessions: String,
    /// Whether a live tombstone ('' payload) is there (see `SessionHandler::is_tombstone`).
    tombstone: String,
    /// Opt-in blocking (see the database driver's module docs): the lock table, a lock taken
    /// when absent (`INSERT IGNORE`), or else when expired or already ours (`UPDATE`), the
    /// holder's release, and gc of expired ones.
    locks_create: String,
    lock_insert: String,
    lock_take: String,
    unlock: String,
    locks_gc: String,
}

impl Sql {
    fn for_table(table: &str) -> Self {
        // `table` is a checked identifier; quoting lets keywords be names.
        let t = format!("`{table}`");
        let l = format!("`{table}_locks`");
        Self {
            table: table.to_owned(),
            read: format!(
                "SELECT payload FROM {t} WHERE sid = ? \
                 AND (last_activity >= ? OR last_activity IS NULL)"
            ),
            // VALUES() rather than MySQL 8's row alias, which MariaDB does not have.
            write: format!(
                "INSERT INTO {t} (sid, payload, last_activity, ip_address, user_agent, user_id) \
                 VALUES (?, ?, ?, ?, ?, ?) \
                 ON DUPLICATE KEY UPDATE payload = VALUES(payload), \
                 last_activity = VALUES(last_activity), \
                 ip_address = COALESCE(VALUES(ip_address), ip_address), \
                 user_agent = COALESCE(VALUES(user_agent), user_agent), \
                 user_id = IF(?, VALUES(user_id), user_id)"
            ),
            // A tombstone ('' payload) is never refreshed.
            touch: format!(
                "UPDATE {t} SET last_activity = ? WHERE sid = ? \
                 AND (last_activity >= ? OR last_activity IS NULL) AND payload <> ''"
            ),
            // A tombstone (see the module docs of the database driver), not a delete.
            destroy: format!(
                "UPDATE {t} SET payload = '', last_activity = ?, user_id = NULL WHERE sid = ?"
            ),
            gc: format!("DELETE FROM {t} WHERE last_activity < ?"),
            // Compared as utf8mb4 bytes: a migration's table has a case-insensitive PAD SPACE
            // collation, under which `payload = ?` would match a payload that differs in case.
            cas_update: format!(
                "UPDATE {t} SET payload = ?, last_activity = ?, \
                 ip_address = COALESCE(?, ip_address), user_agent = COALESCE(?, user_agent), \
                 user_id = IF(?, ?, user_id) \
                 WHERE sid = ? AND CAST(CONVERT(payload USING utf8mb4) AS BINARY) = CAST(? AS BINARY) \
                 AND (last_activity >= ? OR last_activity IS NULL)"
            ),
            cas_insert: format!(
                "INSERT INTO {t} (sid, payload, last_activity, ip_address, user_agent, user_id) \
                 VALUES (?, ?, ?, ?, ?, ?)"
            ),
            // An expired row (tombstones included) is no record: replaced whole.
            cas_revive: format!(
                "UPDATE {t} SET payload = ?, last_activity = ?, ip_address = ?, user_agent = ?, \
                 user_id = ? WHERE sid = ? AND last_activity < ?"
            ),
            user_sessions: format!(
                "SELECT sid, payload, last_activity, ip_address, user_agent FROM {t} \
                 WHERE user_id = ? AND (last_activity >= ? OR last_activity IS NULL)"
            ),
            tombstone: format!(
                "SELECT 1 FROM {t} WHERE sid = ? AND payload = '' \
                 AND (last_activity >= ? OR last_activity IS NULL)"
            ),
            locks_create: format!(
                "CREATE TABLE IF NOT EXISTS {l} (sid VARCHAR(255) NOT NULL, \
                 token VARCHAR(64) NOT NULL, expires_at BIGINT NOT NULL, PRIMARY KEY (sid)) \
                 ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"
            ),
            lock_insert: format!("INSERT IGNORE INTO {l} (sid, token, expires_at) VALUES (?, ?, ?)"),
            lock_take: format!(
                "UPDATE {l} SET token = ?, expires_at = ? WHERE sid = ? \
                 AND (expires_at <= ? OR token = ?)"
            ),
            unlock: format!("DELETE FROM {l} WHERE sid = ? AND token = ?"),
            locks_gc: format!("DELETE FROM {l} WHERE expires_at <= ?"),
        }
    }
}

/// How long an idle connection stays in the pool.
const IDLE_TTL: Duration = Duration::from_secs(300);

pub(crate) struct Mysql {
    opts: Opts,
    s: Settings,
    sql: Sql,
    // Created on first use (inside a runtime), replaced after the server went away.
    pool: Mutex<Option<Pool>>,
    // Whether the table has been created or adopted by this handler.
    ready: tokio::sync::Mutex<bool>,
    reads: Arc<Reads>,
    // Whether the lock table is known to exist (created on the first lock, as sqlite does).
    locks_ready: std::sync::atomic::AtomicBool,
}

fn invalid(msg: impl Into<String>) -> SessionError {
    SessionError::InvalidOption(msg.into())
}

/// Disconnects `pool` in the background, giving up after `limit` (a frozen server never answers).
fn retire(pool: Pool, limit: Duration) {
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        rt.spawn(async move {
            let _ = tokio::time::timeout(limit, pool.disconnect()).await;
        });
    }
}

impl Mysql {
    pub fn new(url: &str, s: &Settings) -> Result<Self> {
        // The URL error names the bad part (a parameter, the scheme), not the password.
        let base = Opts::from_url(url)
            .map_err(|e| invalid(format!("the mysql URL cannot be used: {e}")))?;
        let constraints = PoolConstraints::new(0, s.pool)
            .ok_or_else(|| invalid(format!("pool must be from 1, got {}", s.pool)))?;
        let opts = OptsBuilder::from_opts(base)
            .pool_opts(
                PoolOpts::default()
                    .with_constraints(constraints)
                    // Without an idle TTL the pool keeps only `min` (0) idle connections and
                    // closes every other one as it comes back: a reconnect per operation.
                    .with_inactive_connection_ttl(IDLE_TTL)
                    .with_reset_connection(false),
            )
            // touch must count a row whose last_activity it sets to the value it had.
            .client_found_rows(true)
            // Payloads may hold any character; the default connection charset may be 3-byte utf8.
            .init(vec!["SET NAMES utf8mb4 COLLATE utf8mb4_bin"])
            .prefer_socket(false)
            // 8 single-row statements, 2 × 7 upsert sizes (see `many`), 7 lock sizes (see
            // `cas_locked`) and 6 read sizes (see `read_batch`), with room to spare.
            .stmt_cache_size(48);
        Ok(Self {
            opts: Opts::from(opts),
            sql: Sql::for_table(&s.table),
            pool: Mutex::new(None),
            ready: tokio::sync::Mutex::new(false),
            reads: Arc::new(Reads::new(s.pool)),
            locks_ready: std::sync::atomic::AtomicBool::new(false),
            s: s.clone(),
        })
    }

    fn pool(&self) -> Pool {
        let mut slot = self.pool.lock().unwrap_or_else(PoisonError::into_inner);
        match slot.as_ref() {
            Some(p) => p.clone(),
            None => {
                let p = Pool::new(self.opts.clone());
                *slot = Some(p.clone());
                p
            }
        }
    }

    /// Replaces the pool if it is still `p` (another operation may have replaced it already).
    fn discard(&self, p: &Pool) {
        let mut slot = self.pool.lock().unwrap_or_else(PoisonError::into_inner);
        // Pools share their metrics `Arc`: the same pointer is the same pool.
        let same = slot
            .as_ref()
            .is_some_and(|now| std::sync::Arc::ptr_eq(&now.metrics(), &p.metrics()));
        if same {
            if let Some(old) = slot.take() {
                retire(old, self.s.connect_timeout);
            }
        }
    }

    fn unavailable(&self, op: &str, e: &mysql_async::Error) -> SessionError {
        SessionError::Unavailable(format!(
            "mysql session {op} failed: the server at {} is unavailable ({e})",
            self.s.addr
        ))
    }

    /// Maps a failed operation. Messages name the server and its error code, never a session
    /// id (statements carry values as parameters, so server messages do not quote them).
    fn map_error(&self, op: &str, e: &mysql_async::Error) -> SessionError {
        if is_unavailable(e) {
            return self.unavailable(op, e);
        }
        match e {
            // 1406: data too long for a column; 1153: packet larger than max_allowed_packet.
            mysql_async::Error::Server(se) if se.code == 1406 || se.code == 1153 => {
                SessionError::TooLarge(format!(
                    "mysql session {op} failed: the payload is too large for the server or the \
                     table (ERROR {}: {})",
                    se.code, se.message
                ))
            }
            e => SessionError::Io(format!("mysql session {op} on {} failed: {e}", self.s.addr)),
        }
    }

    /// A connection from the pool, within the connect timeout; the table is created or adopted
    /// by the first one.
    async fn conn(&self, pool: &Pool, op: &str) -> Result<Conn> {
        let mut conn = match tokio::time::timeout(self.s.connect_timeout, pool.get_conn()).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return Err(self.map_error(op, &e)),
            Err(_) => {
                return Err(SessionError::Unavailable(format!(
                    "mysql session {op} failed: no connection to {} within {} ms",
                    self.s.addr,
                    self.s.connect_timeout.as_millis()
                )))
            }
        };
        let mut ready = self.ready.lock().await;
        if !*ready {
            self.prepare_table(&mut conn).await.map_err(|e| match e {
                Prep::My(e) => self.map_error(op, &e),
                Prep::Bad(msg) => SessionError::Io(msg),
            })?;
            *ready = true;
        }
        Ok(conn)
    }

    /// Runs `f` on a pooled connection, once more on a fresh pool when the first try failed
    /// because the server went away, all within the command timeout.
    async fn run<T, F, Fut>(&self, op: &'static str, f: F) -> Result<T>
    where
        F: Fn(Conn) -> Fut + Send + Sync,
        Fut: Future<Output = std::result::Result<T, mysql_async::Error>> + Send,
        T: Send,
    {
        self.run_with(op, true, f).await
    }

    /// `run`, retrying on a broken connection only when `idempotent`: a compare-and-set that
    /// may have been applied must not run twice.
    async fn run_with<T, F, Fut>(&self, op: &'static str, idempotent: bool, f: F) -> Result<T>
    where
        F: Fn(Conn) -> Fut + Send + Sync,
        Fut: Future<Output = std::result::Result<T, mysql_async::Error>> + Send,
        T: Send,
    {
        let mut used = None;
        let attempt = async {
            let mut retried = false;
            loop {
                let pool = self.pool();
                used = Some(pool.clone());
                let conn = match self.conn(&pool, op).await {
                    Ok(c) => c,
                    Err(e) => {
                        if matches!(e, SessionError::Unavailable(_)) {
                            self.discard(&pool);
                        }
                        return Err(e);
                    }
                };
                match f(conn).await {
                    Ok(v) => return Ok(v),
                    Err(e) if is_unavailable(&e) => {
                        self.discard(&pool);
                        if retried || !idempotent {
                            return Err(self.map_error(op, &e));
                        }
                        retried = true;
                    }
                    Err(e) => return Err(self.map_error(op, &e)),
                }
            }
        };
        let r = tokio::time::timeout(self.s.command_timeout, attempt).await;
        match r {
            Ok(r) => r,
            Err(_) => {
                // The server may be frozen with our requests on the wire: start over next time.
                if let Some(p) = used {
                    self.discard(&p);
                }
                Err(self.s.timed_out("mysql", op))
            }
        }
    }

    /// Creates the table, or adopts one made by the `session:table` migration, under a named
    /// lock so that processes starting together do not race.
    async fn prepare_table(&self, conn: &mut Conn) -> std::result::Result<(), Prep> {
        let lock = format!("ostro_session:{}", self.s.table);
        let wait = self.s.command_timeout.as_secs().max(1);
        let got: Option<Option<i64>> = conn
            .exec_first("SELECT GET_LOCK(?, ?)", (&lock, wait))
            .await?;
        if got.flatten() != Some(1) {
            return Err(Prep::Bad(format!(
                "the mysql session table `{}` is being prepared by another process (lock not \
                 granted within {wait} s)",
                self.s.table
            )));
        }
        let r = self.prepare_locked(conn).await;
        let _ = conn.exec_drop("SELECT RELEASE_LOCK(?)", (&lock,)).await;
        r
    }

    async fn prepare_locked(&self, conn: &mut Conn) -> std::result::Result<(), Prep> {
        let table = &self.s.table;
        let t = format!("`{table}`");
        let columns: Vec<String> = conn
            .exec(
                "SELECT LOWER(column_name) FROM information_schema.columns \
                 WHERE table_schema = DATABASE() AND table_name = ?",
                (table,),
            )
            .await?;
        if columns.is_empty() {
            conn.query_drop(format!(
                "CREATE TABLE {t} (\
                   sid VARCHAR(255) NOT NULL, \
                   user_id VARCHAR(255) NULL, \
                   ip_address VARCHAR(45) NULL, \
                   user_agent TEXT NULL, \
                   payload LONGTEXT NULL, \
                   last_activity BIGINT NOT NULL, \
                   PRIMARY KEY (sid), \
                   INDEX `{table}_user_id_index` (user_id), \
                   INDEX `{table}_last_activity_index` (last_activity)\
                 ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"
            ))
            .await?;
            return Ok(());
        }
        let has = |c: &str| columns.iter().any(|x| x == c);
        for required in ["sid", "payload", "last_activity"] {
            if !has(required) {
                return Err(Prep::Bad(format!(
                    "the mysql session table {t} exists but has no {required} column; it is not \
                     a session table (see the session:table migration)"
                )));
            }
        }
        // A unique index of sid alone: without it ON DUPLICATE KEY would insert duplicates.
        let sid_unique: Option<i64> = conn
            .exec_first(
                "SELECT COUNT(*) FROM information_schema.statistics s \
                 WHERE s.table_schema = DATABASE() AND s.table_name = ? AND s.non_unique = 0 \
                 AND LOWER(s.column_name) = 'sid' AND s.seq_in_index = 1 \
                 AND (SELECT COUNT(*) FROM information_schema.statistics s2 \
                      WHERE s2.table_schema = s.table_schema AND s2.table_name = s.table_name \
                      AND s2.index_name = s.index_name) = 1",
                (table,),
            )
            .await?;
        if sid_unique.unwrap_or(0) == 0 {
            return Err(Prep::Bad(format!(
                "the mysql session table {t} has no PRIMARY KEY or UNIQUE index on sid"
            )));
        }
        // The migration of 1.x had no user_id; hand-made tables may lack more.
        for (col, ty) in [
            ("user_id", "VARCHAR(255)"),
            ("ip_address", "VARCHAR(45)"),
            ("user_agent", "TEXT"),
        ] {
            if !has(col) {
                conn.query_drop(format!("ALTER TABLE {t} ADD COLUMN {col} {ty} NULL"))
                    .await?;
            }
        }
        // gc deletes by last_activity, and a user's sessions are listed by user_id
        // (sessionsOf, "log out other devices"): make sure an index leads with each (the
        // migration made its indexes under whatever names its schema builder chose; 1.x's
        // table has no user_id at all). Checked rather than CREATE INDEX IF NOT EXISTS, which
        // MariaDB has and MySQL does not; the named lock keeps check and create together.
        for col in ["last_activity", "user_id"] {
            let indexed: Option<i64> = conn
                .exec_first(
                    "SELECT COUNT(*) FROM information_schema.statistics \
                     WHERE table_schema = DATABASE() AND table_name = ? \
                     AND LOWER(column_name) = ? AND seq_in_index = 1",
                    (table, col),
                )
                .await?;
            if indexed.unwrap_or(0) == 0 {
                conn.query_drop(format!("CREATE INDEX `{table}_{col}_index` ON {t} ({col})"))
                    .await?;
            }
        }
        Ok(())
    }

    pub async fn open(&self) -> Result<()> {
        self.run("open", |_| async { Ok(()) }).await
    }

    pub async fn close(&self) -> Result<()> {
        let old = self
            .pool
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(p) = old {
            let _ = tokio::time::timeout(self.s.command_timeout, p.disconnect()).await;
        }
        Ok(())
    }

    /// The payload of `id` if it is alive at `cutoff`, else `""`: sent alone when fewer than
    /// [`Reads::leaders`] reads are on the wire, otherwise queued and answered with the other
    /// queued reads by one statement (see [`Reads`]).
    pub async fn read(&self, id: &str, cutoff: i64) -> Result<String> {
        let deadline = Instant::now() + self.s.command_timeout;
        let lead = match Reads::join(&self.reads, id, cutoff) {
            Joined::Lead(lead) => lead,
            Joined::Wait(rx) => match tokio::time::timeout_at(deadline, rx).await {
                Ok(Ok(Turn::Done(r))) => return r,
                Ok(Ok(Turn::Lead(lead))) => lead,
                // The read that took this one along was dropped before it answered.
                Ok(Err(_)) | Err(_) => return Err(self.s.timed_out("mysql", "read")),
            },
        };
        // Bounded by this read's own deadline too: it may have waited in the queue first.
        match tokio::time::timeout_at(deadline, self.read_batch(id, cutoff, lead)).await {
            Ok(r) => r,
            Err(_) => Err(self.s.timed_out("mysql", "read")),
        }
    }

    /// Reads `id` and every read `lead` carries, answering those; dropping `lead` at the end
    /// (or on a timeout) hands the next queued reads to one of their callers.
    async fn read_batch(&self, id: &str, cutoff: i64, mut lead: Lead) -> Result<String> {
        let others = std::mem::take(&mut lead.waiters);
        if others.is_empty() {
            return self.read_one(id, cutoff).await;
        }
        let mut ids: Vec<&str> = others.iter().map(|w| w.id.as_str()).collect();
        ids.push(id);
        ids.sort_unstable();
        ids.dedup();
        let oldest = others.iter().map(|w| w.cutoff).fold(cutoff, i64::min);
        // Padded to a power of two (repeating the last id) so that a few texts stay cached.
        let n = ids.len().next_power_of_two();
        let mut stmt = format!(
            "SELECT sid, payload, last_activity FROM `{}` WHERE sid IN (",
            self.sql.table
        );
        let mut values = Vec::with_capacity(n + 1);
        let last = ids.last().copied().unwrap_or_default();
        for k in 0..n {
            stmt.push_str(if k == 0 { "?" } else { ", ?" });
            values.push(mysql_async::Value::from(
                ids.get(k).copied().unwrap_or(last),
            ));
        }
        stmt.push_str(") AND (last_activity >= ? OR last_activity IS NULL)");
        values.push(oldest.into());
        let (stmt, params) = (&stmt, Params::Positional(values));
        let rows: Result<Vec<LockedRow>> = self
            .run("read", |mut c| {
                let params = params.clone();
                async move { c.exec(stmt.as_str(), params).await }
            })
            .await;
        // Each read answers by its own cutoff, and by the exact bytes of its id.
        let rows: Result<HashMap<Vec<u8>, Stored>> =
            rows.map(|rows| rows.into_iter().map(|(id, p, at)| (id, (p, at))).collect());
        let answer = |id: &str, cutoff: i64| -> Result<String> {
            match &rows {
                Ok(rows) => Ok(rows
                    .get(id.as_bytes())
                    .filter(|(_, at)| at.is_none_or(|t| t >= cutoff))
                    .and_then(|(p, _)| p.clone())
                    .and_then(|b| String::from_utf8(b).ok())
                    .unwrap_or_default()),
                Err(e) => Err(same_error(e)),
            }
        };
        for w in others {
            let _ = w.tx.send(Turn::Done(answer(&w.id, w.cutoff)));
        }
        answer(id, cutoff)
    }

    async fn read_one(&self, id: &str, cutoff: i64) -> Result<String> {
        let sql = &self.sql.read;
        let row: Option<(Option<Vec<u8>>,)> = self
            .run("read", |mut c| async move {
                c.exec_first(sql.as_str(), (id, cutoff)).await
            })
            .await?;
        // A NULL or non-UTF-8 payload reads as no session, as a corrupt one does.
        Ok(row
            .and_then(|(p,)| p)
            .and_then(|b| String::from_utf8(b).ok())
            .unwrap_or_default())
    }

    pub async fn write(&self, row: &Row) -> Result<()> {
        let sql = &self.sql.write;
        self.run("write", |mut c| async move {
            c.exec_drop(sql.as_str(), params(row)).await
        })
        .await
    }

    /// Writes `rows` in one transaction (one commit); when that fails for another reason than
    /// the server (a deadlock with another process, a row too large), one by one, so that only
    /// the bad row fails.
    pub async fn write_batch(&self, rows: Vec<Row>) -> Vec<Result<()>> {
        if let [row] = rows.as_slice() {
            return vec![self.write(row).await];
        }
        let merged = coalesce(rows.clone());
        let (follow, keep): (Vec<Row>, Vec<Row>) = merged.into_iter().partition(|r| r.for_request);
        let statements: Vec<(String, Params)> = [(follow, false), (keep, true)]
            .into_iter()
            .filter(|(rows, _)| !rows.is_empty())
            .map(|(rows, keep_user)| many(&self.sql.table, &rows, keep_user))
            .collect();
        let statements = &statements;
        let outcome = self
            .run("write", |mut c| async move {
                if let [(sql, params)] = statements.as_slice() {
                    return c.exec_drop(sql.as_str(), params.clone()).await;
                }
                let mut tx = c.start_transaction(TxOpts::default()).await?;
                for (sql, params) in statements {
                    tx.exec_drop(sql.as_str(), params.clone()).await?;
                }
                // A transaction dropped before its commit is rolled back by the client.
                tx.commit().await
            })
            .await;
        match outcome {
            Ok(()) => rows.iter().map(|_| Ok(())).collect(),
            Err(e @ SessionError::Unavailable(_)) => {
                rows.iter().map(|_| Err(same_error(&e))).collect()
            }
            Err(_) => {
                let mut out = Vec::with_capacity(rows.len());
                for r in &rows {
                    out.push(self.write(r).await);
                }
                out
            }
        }
    }

    /// Writes `row` if the stored payload is still `previous` (`""`: no live record); `false`
    /// when it is not, nothing written.
    pub async fn write_if_unchanged(&self, row: &Row, previous: &str) -> Result<bool> {
        let (sql, lifetime) = (&self.sql, self.s.lifetime_secs);
        self.run_with("write", false, |mut c| async move {
            cas_on(&mut c, sql, row, previous, lifetime).await
        })
        .await
    }

    /// Many compare-and-sets in one transaction (one commit) of four round trips whatever the
    /// batch size: the compared rows are locked and read in one `SELECT … FOR UPDATE` (in index
    /// order, so batches of other processes lock in the same order), compared here byte for
    /// byte, and the matching ones written by one multi-row upsert (they are locked: nobody can
    /// change them in between); sets for ids that had no record insert one by one. When the
    /// transaction fails for another reason than the server (it is then rolled back whole), the
    /// sets run one by one.
    pub async fn cas_batch(&self, items: Vec<Cas>) -> Vec<Result<bool>> {
        if let [c] = items.as_slice() {
            return vec![self.write_if_unchanged(&c.row, &c.previous).await];
        }
        let (sql, s, items_ref) = (&self.sql, &self.s, &items);
        let outcome = self
            .run_with("write", false, |mut c| async move {
                let mut tx = c.start_transaction(TxOpts::default()).await?;
                let written = cas_locked(&mut tx, sql, s, items_ref).await?;
                tx.commit().await?;
                Ok(written)
            })
            .await;
        match outcome {
            Ok(w) => w.into_iter().map(Ok).collect(),
            Err(e @ SessionError::Unavailable(_)) => {
                items.iter().map(|_| Err(same_error(&e))).collect()
            }
            Err(_) => {
                let mut out = Vec::with_capacity(items.len());
                for c in &items {
                    out.push(self.write_if_unchanged(&c.row, &c.previous).await);
                }
                out
            }
        }
    }

    pub async fn destroy(&self, id: &str, now: i64) -> Result<()> {
        let sql = &self.sql.destroy;
        self.run("destroy", |mut c| async move {
            c.exec_drop(sql.as_str(), (now, id)).await
        })
        .await
    }

    /// Whether `id` holds a tombstone alive at `cutoff`.
    pub async fn is_tombstone(&self, id: &str, cutoff: i64) -> Result<bool> {
        let sql = &self.sql.tombstone;
        let row: Option<i64> = self
            .run("read", |mut c| async move {
                c.exec_first(sql.as_str(), (id, cutoff)).await
            })
            .await?;
        Ok(row.is_some())
    }

    pub async fn gc(&self, cutoff: i64) -> Result<u64> {
        let sql = &self.sql.gc;
        self.run("gc", |mut c| async move {
            c.exec_drop(sql.as_str(), (cutoff,)).await?;
            Ok(c.affected_rows())
        })
        .await
    }

    pub async fn user_sessions(
        &self,
        user: &str,
        cutoff: i64,
        now: i64,
    ) -> Result<Vec<UserRecord>> {
        let sql = &self.sql.user_sessions;
        type R = (
            Vec<u8>,
            Option<Vec<u8>>,
            Option<i64>,
            Option<Vec<u8>>,
            Option<Vec<u8>>,
        );
        let rows: Vec<R> = self
            .run("user sessions", |mut c| async move {
                c.exec(sql.as_str(), (user, cutoff)).await
            })
            .await?;
        let text = |b: Option<Vec<u8>>| b.map(|b| String::from_utf8_lossy(&b).into_owned());
        Ok(rows
            .into_iter()
            .map(|(id, payload, at, ip, ua)| UserRecord {
                id: String::from_utf8_lossy(&id).into_owned(),
                payload: payload
                    .and_then(|b| String::from_utf8(b).ok())
                    .unwrap_or_default(),
                last_activity_ms: at.unwrap_or(now).saturating_mul(1000),
                ip: text(ip),
                user_agent: text(ua),
            })
            .collect())
    }

    pub async fn touch(&self, id: &str, cutoff: i64, now: i64) -> Result<bool> {
        let sql = &self.sql.touch;
        let n = self
            .run("touch", |mut c| async move {
                c.exec_drop(sql.as_str(), (now, id, cutoff)).await?;
                Ok(c.affected_rows())
            })
            .await?;
        Ok(n > 0)
    }

    /// Takes the blocking lock of `id` with `token` until `until` (ms) if it is absent, expired
    /// at `now` (ms) or already ours: whether it was taken. Each statement is atomic; the
    /// common case (no lock) is the first one alone. Retrying after a broken connection is
    /// safe: a first try that was applied left our own token, which `lock_take` takes again.
    pub async fn lock(&self, id: &str, token: &str, until: i64, now: i64) -> Result<bool> {
        let sql = &self.sql;
        let ensure = !self.locks_ready.load(std::sync::atomic::Ordering::Acquire);
        let taken = self
            .run("lock", |mut c| async move {
                if ensure {
                    c.query_drop(sql.locks_create.as_str()).await?;
                }
                c.exec_drop(sql.lock_insert.as_str(), (id, token, until))
                    .await?;
                if c.affected_rows() == 1 {
                    return Ok(true);
                }
                c.exec_drop(sql.lock_take.as_str(), (token, until, id, now, token))
                    .await?;
                // Found rows are counted: a match is a lock taken (or retaken) by us.
                Ok(c.affected_rows() == 1)
            })
            .await?;
        self.locks_ready
            .store(true, std::sync::atomic::Ordering::Release);
        Ok(taken)
    }

    /// Releases the lock of `id` if `token` still holds it.
    pub async fn unlock(&self, id: &str, token: &str) -> Result<()> {
        let sql = &self.sql.unlock;
        self.run("unlock", |mut c| async move {
            match c.exec_drop(sql.as_str(), (id, token)).await {
                // 1146: no lock table, so nothing was ever locked here.
                Err(mysql_async::Error::Server(se)) if se.code == 1146 => Ok(()),
                r => r,
            }
        })
        .await
    }

    /// Deletes locks expired at `now` (ms): a holder that crashed never released its lock.
    pub async fn gc_locks(&self, now: i64) -> Result<()> {
        let sql = &self.sql.locks_gc;
        self.run("gc", |mut c| async move {
            match c.exec_drop(sql.as_str(), (now,)).await {
                Err(mysql_async::Error::Server(se)) if se.code == 1146 => Ok(()),
                r => r,
            }
        })
        .await
    }
}

/// Most reads one statement answers.
const MAX_READ_BATCH: usize = 64;

/// Reads in flight, combined: up to `leaders` reads go to the server at once, each one carrying
/// the reads queued behind it when it started (no task or channel hop for a lone read). When a
/// leader is done it hands the reads queued meanwhile to the first of their callers still
/// waiting, which then leads them: the `Lead` token moves, so at most `leaders` statements are
/// in flight and none is left without a leader, even when a caller gives up.
struct Reads {
    leaders: usize,
    state: Mutex<ReadState>,
}

struct ReadState {
    /// Leads held now (at most `leaders`).
    held: usize,
    queued: VecDeque<Waiter>,
}

struct Waiter {
    id: String,
    cutoff: i64,
    tx: oneshot::Sender<Turn>,
}

enum Turn {
    Done(Result<String>),
    Lead(Lead),
}

enum Joined {
    Lead(Lead),
    Wait(oneshot::Receiver<Turn>),
}

/// The right to send one read statement, with the reads it answers besides its own; handed
/// over on drop.
struct Lead {
    reads: Arc<Reads>,
    waiters: Vec<Waiter>,
    /// False once handed on (the drop then does nothing).
    live: bool,
}

impl Drop for Lead {
    fn drop(&mut self) {
        if self.live {
            // Reads not answered (a timeout, a dropped caller) see their sender dropped.
            self.waiters.clear();
            self.reads.hand_over();
        }
    }
}

impl Reads {
    fn new(pool: usize) -> Self {
        Self {
            // Half the pool: the other half stays for the batched writes.
            leaders: pool.div_ceil(2),
            state: Mutex::new(ReadState {
                held: 0,
                queued: VecDeque::new(),
            }),
        }
    }

    fn join(this: &Arc<Self>, id: &str, cutoff: i64) -> Joined {
        let mut st = this.state.lock().unwrap_or_else(PoisonError::into_inner);
        if st.held < this.leaders {
            st.held += 1;
            return Joined::Lead(Lead {
                reads: Arc::clone(this),
                waiters: Vec::new(),
                live: true,
            });
        }
        let (tx, rx) = oneshot::channel();
        st.queued.push_back(Waiter {
            id: id.to_owned(),
            cutoff,
            tx,
        });
        Joined::Wait(rx)
    }

    /// Gives the lead to the first queued read whose caller still waits, with the reads behind
    /// it; frees the lead when none does.
    fn hand_over(self: &Arc<Self>) {
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        while let Some(first) = st.queued.pop_front() {
            if first.tx.is_closed() {
                continue;
            }
            let take = st.queued.len().min(MAX_READ_BATCH - 1);
            let waiters: Vec<Waiter> = st
                .queued
                .drain(..take)
                .filter(|w| !w.tx.is_closed())
                .collect();
            let lead = Lead {
                reads: Arc::clone(self),
                waiters,
                live: true,
            };
            match first.tx.send(Turn::Lead(lead)) {
                Ok(()) => return,
                Err(turn) => {
                    // Its caller left just now: the others go back to the front, in order.
                    if let Turn::Lead(mut lead) = turn {
                        lead.live = false;
                        for w in std::mem::take(&mut lead.waiters).into_iter().rev() {
                            st.queued.push_front(w);
                        }
                    }
                }
            }
        }
        st.held = st.held.saturating_sub(1);
    }
}

/// A multi-row upsert of `rows` (one statement, one commit), `user_id` following the rows or
/// kept. The row count is padded to a power of two by repeating the last row (applying a row
/// twice changes nothing), so that a handful of statement texts serve every batch size and stay
/// in each connection's statement cache.
fn many(table: &str, rows: &[Row], keep_user: bool) -> (String, Params) {
    let n = rows.len().next_power_of_two();
    let mut sql = format!(
        "INSERT INTO `{table}` (sid, payload, last_activity, ip_address, user_agent, user_id) \
         VALUES "
    );
    for i in 0..n {
        sql.push_str(if i == 0 {
            "(?, ?, ?, ?, ?, ?)"
        } else {
            ", (?, ?, ?, ?, ?, ?)"
        });
    }
    sql.push_str(
        " ON DUPLICATE KEY UPDATE payload = VALUES(payload), \
         last_activity = VALUES(last_activity), \
         ip_address = COALESCE(VALUES(ip_address), ip_address), \
         user_agent = COALESCE(VALUES(user_agent), user_agent), ",
    );
    sql.push_str(if keep_user {
        "user_id = user_id"
    } else {
        "user_id = VALUES(user_id)"
    });
    let mut values = Vec::with_capacity(n * 6);
    for i in 0..n {
        let r = &rows[i.min(rows.len() - 1)];
        values.push(mysql_async::Value::from(r.id.as_str()));
        values.push(r.payload.as_str().into());
        values.push(r.now.into());
        values.push(r.ip.as_deref().into());
        values.push(r.user_agent.as_deref().into());
        values.push(r.user_id.as_deref().into());
    }
    (sql, Params::Positional(values))
}

/// `affected_rows` of a connection or a transaction (an inherent method of each).
trait Affected {
    fn affected(&self) -> u64;
}

impl Affected for Conn {
    fn affected(&self) -> u64 {
        self.affected_rows()
    }
}

impl Affected for mysql_async::Transaction<'_> {
    fn affected(&self) -> u64 {
        self.affected_rows()
    }
}

/// `payload` and `last_activity` of a row.
type Stored = (Option<Vec<u8>>, Option<i64>);

/// `sid`, `payload` and `last_activity` of a row locked by [`cas_locked`].
type LockedRow = (Vec<u8>, Option<Vec<u8>>, Option<i64>);

/// The body of [`Mysql::cas_batch`] inside its transaction: whether each set wrote.
async fn cas_locked(
    tx: &mut mysql_async::Transaction<'_>,
    sql: &Sql,
    s: &Settings,
    items: &[Cas],
) -> std::result::Result<Vec<bool>, mysql_async::Error> {
    let mut written = vec![false; items.len()];
    let ids: std::collections::BTreeSet<&str> = items
        .iter()
        .filter(|c| !c.previous.is_empty())
        .map(|c| c.row.id.as_str())
        .collect();
    if !ids.is_empty() {
        // Padded to a power of two (repeating the last id) so that a few texts stay cached.
        let n = ids.len().next_power_of_two();
        let mut lock = format!(
            "SELECT sid, payload, last_activity FROM `{}` WHERE sid IN (",
            sql.table
        );
        let mut params = Vec::with_capacity(n);
        let last = ids.iter().next_back().copied().unwrap_or_default();
        for (k, id) in ids
            .iter()
            .copied()
            .chain(std::iter::repeat(last))
            .take(n)
            .enumerate()
        {
            lock.push_str(if k == 0 { "?" } else { ", ?" });
            params.push(mysql_async::Value::from(id));
        }
        lock.push_str(") FOR UPDATE");
        let rows: Vec<LockedRow> = tx.exec(lock, Params::Positional(params)).await?;
        // What each id holds now, if it is a live record (tombstones hold "": never a match).
        let mut now: std::collections::HashMap<Vec<u8>, Vec<u8>> = rows
            .into_iter()
            .filter(|(_, _, last)| last.is_none_or(|t| t >= s.cutoff()))
            .map(|(id, p, _)| (id, p.unwrap_or_default()))
            .collect();
        let mut wins = Vec::new();
        for (i, c) in items.iter().enumerate() {
            if c.previous.is_empty() {
                continue;
            }
            let key = c.row.id.as_bytes();
            if now
                .get(key)
                .is_some_and(|p| p.as_slice() == c.previous.as_bytes())
            {
                written[i] = true;
                // A later set of the same id in this batch compares with this one's payload.
                now.insert(key.to_vec(), c.row.payload.as_bytes().to_vec());
                wins.push(c.row.clone());
            }
        }
        let (follow, keep): (Vec<Row>, Vec<Row>) =
            coalesce(wins).into_iter().partition(|r| r.for_request);
        for (rows, keep_user) in [(follow, false), (keep, true)] {
            if !rows.is_empty() {
                let (stmt, params) = many(&sql.table, &rows, keep_user);
                tx.exec_drop(stmt, params).await?;
            }
        }
    }
    let mut fresh: Vec<usize> = (0..items.len())
        .filter(|&i| items[i].previous.is_empty())
        .collect();
    fresh.sort_by(|&a, &b| items[a].row.id.cmp(&items[b].row.id));
    for i in fresh {
        written[i] = cas_on(tx, sql, &items[i].row, "", s.lifetime_secs).await?;
    }
    Ok(written)
}

/// One compare-and-set on `q` (see [`Mysql::write_if_unchanged`]): whether it wrote.
async fn cas_on<Q: Queryable + Affected + Send>(
    q: &mut Q,
    sql: &Sql,
    row: &Row,
    previous: &str,
    lifetime: i64,
) -> std::result::Result<bool, mysql_async::Error> {
    let cutoff = row.now - lifetime;
    if previous.is_empty() {
        let fresh = (
            row.id.as_str(),
            row.payload.as_str(),
            row.now,
            row.ip.as_deref(),
            row.user_agent.as_deref(),
            row.user_id.as_deref(),
        );
        match q.exec_drop(sql.cas_insert.as_str(), fresh).await {
            Ok(()) => return Ok(true),
            // 1062: the id exists; it is no record only if it expired. (InnoDB rolls back the
            // statement only, not a transaction around it.)
            Err(mysql_async::Error::Server(se)) if se.code == 1062 => {}
            Err(e) => return Err(e),
        }
        let revive = Params::from(vec![
            mysql_async::Value::from(row.payload.as_str()),
            row.now.into(),
            row.ip.as_deref().into(),
            row.user_agent.as_deref().into(),
            row.user_id.as_deref().into(),
            row.id.as_str().into(),
            cutoff.into(),
        ]);
        q.exec_drop(sql.cas_revive.as_str(), revive).await?;
        return Ok(q.affected() > 0);
    }
    let p = Params::from(vec![
        mysql_async::Value::from(row.payload.as_str()),
        row.now.into(),
        row.ip.as_deref().into(),
        row.user_agent.as_deref().into(),
        row.for_request.into(),
        row.user_id.as_deref().into(),
        row.id.as_str().into(),
        previous.into(),
        cutoff.into(),
    ]);
    q.exec_drop(sql.cas_update.as_str(), p).await?;
    // Found rows are counted (client_found_rows): a match that changed nothing counts too.
    Ok(q.affected() > 0)
}

fn params(r: &Row) -> Params {
    Params::from((
        r.id.as_str(),
        r.payload.as_str(),
        r.now,
        r.ip.as_deref(),
        r.user_agent.as_deref(),
        r.user_id.as_deref(),
        r.for_request,
    ))
}

enum Prep {
    My(mysql_async::Error),
    Bad(String),
}

impl From<mysql_async::Error> for Prep {
    fn from(e: mysql_async::Error) -> Self {
        Self::My(e)
    }
}

/// Whether `e` means the server or the connection is gone, refusing, or not ready.
fn is_unavailable(e: &mysql_async::Error) -> bool {
    use mysql_async::{DriverError as D, Error as E};
    match e {
        E::Io(_) => true,
        E::Driver(d) => matches!(
            d,
            D::ConnectionClosed | D::PoolDisconnected | D::PacketOutOfOrder
        ),
        // 1040 too many connections, 1044/1045 access denied, 1049 unknown database,
        // 1053 server shutdown, 1129/1130 host blocked or not allowed, 2006/2013 server gone.
        E::Server(se) => matches!(
            se.code,
            1040 | 1044 | 1045 | 1049 | 1053 | 1129 | 1130 | 2006 | 2013
        ),
        _ => false,
    }
}
