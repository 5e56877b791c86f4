//! The PostgreSQL backend of [`crate::handlers::database`], on `tokio-postgres`.
//!
//! `pool` clients, each connected on first use and shared: operations take the next client in
//! turn and pipeline on it (a `tokio_postgres::Client` sends requests while earlier ones are in
//! flight), so 64 concurrent requests need no 64 connections and never wait for a checkout.
//! Each client's statements are prepared once, right after it connects.
//!
//! Postgres `text` cannot hold U+0000. Session payloads are JSON, which escapes it, so real
//! payloads never carry one; a payload that does (or that starts with [`ESCAPE`]) is stored as
//! [`ESCAPE`] + base64 and decoded on read, so the driver still round-trips any string.

use super::database::{coalesce, same_error, unique_rounds, Cas, Row, Settings};
use crate::error::{Result, SessionError};
use crate::handler::UserRecord;
use base64::Engine as _;
use std::future::Future;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::Mutex;
use tokio::task::AbortHandle;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Config, NoTls, Statement};

/// Marks a payload stored base64-encoded (U+FFFF is a Unicode noncharacter: no JSON text starts
/// with it).
const ESCAPE: &str = "\u{FFFF}ostro-b64:";

/// The statements, built once from the validated table name.
struct Sql {
    read: String,
    write: String,
    /// Many rows in one statement (one commit), `user_id` following the rows.
    batch: String,
    /// The same for rows written with no request in sight: `user_id` is kept.
    batch_keep: String,
    touch: String,
    destroy: String,
    gc: String,
    /// Compare-and-set over the payload the request loaded (never '': a tombstone).
    cas_update: String,
    /// Compare-and-set for a request that loaded nothing: inserts, or replaces an expired row.
    cas_insert: String,
    /// The same two for many rows in one statement (one commit), returning the ids written.
    cas_update_many: String,
    cas_insert_many: String,
    /// A user's live rows (see crate::users); rare, so prepared per call.
    user_sessions: String,
    /// Whether a live tombstone ('' payload) is there (see `SessionHandler::is_tombstone`);
    /// rare, so prepared per call.
    tombstone: String,
    /// Opt-in blocking (see the database driver's module docs): the lock table, its creation,
    /// taking a lock that is absent or expired, the holder's release, and gc of expired ones.
    locks_create: String,
    lock: String,
    unlock: String,
    locks_gc: String,
}

impl Sql {
    fn for_table(table: &str) -> Self {
        // `table` is a checked identifier; quoting keeps its case and lets keywords be names.
        // Times are cast to bigint: a migration's `integer` column takes them by assignment,
        // and the comparisons still use the `last_activity` index.
        let t = format!("\"{table}\"");
        let l = format!("\"{table}_locks\"");
        Self {
            read: format!(
                "SELECT payload FROM {t} WHERE sid = $1 \
                 AND (last_activity >= $2::bigint OR last_activity IS NULL)"
            ),
            write: format!(
                "INSERT INTO {t} AS s (sid, payload, last_activity, ip_address, user_agent, user_id) \
                 VALUES ($1, $2, $3::bigint, $4, $5, $6) \
                 ON CONFLICT (sid) DO UPDATE SET payload = EXCLUDED.payload, \
                 last_activity = EXCLUDED.last_activity, \
                 ip_address = COALESCE(EXCLUDED.ip_address, s.ip_address), \
                 user_agent = COALESCE(EXCLUDED.user_agent, s.user_agent), \
                 user_id = CASE WHEN $7::boolean THEN EXCLUDED.user_id ELSE s.user_id END"
            ),
            batch: batch(&t, "EXCLUDED.user_id"),
            batch_keep: batch(&t, "s.user_id"),
            // A tombstone ('' payload) is never refreshed.
            touch: format!(
                "UPDATE {t} SET last_activity = $3::bigint WHERE sid = $1 \
                 AND (last_activity >= $2::bigint OR last_activity IS NULL) AND payload <> ''"
            ),
            // A tombstone (see the module docs of the database driver), not a delete.
            destroy: format!(
                "UPDATE {t} SET payload = '', last_activity = $2::bigint, user_id = NULL \
                 WHERE sid = $1"
            ),
            gc: format!("DELETE FROM {t} WHERE last_activity < $1::bigint"),
            // text `=` compares bytes (deterministic collations), so no other payload matches.
            cas_update: format!(
                "UPDATE {t} SET payload = $2, last_activity = $3::bigint, \
                 ip_address = COALESCE($4, ip_address), user_agent = COALESCE($5, user_agent), \
                 user_id = CASE WHEN $7::boolean THEN $6 ELSE user_id END \
                 WHERE sid = $1 AND payload = $8 \
                 AND (last_activity >= $9::bigint OR last_activity IS NULL)"
            ),
            // An expired row (tombstones included) is no record: replaced whole. A live one,
            // or a NULL last_activity (alive), is left alone and counts 0 rows. ($7: the
            // lifetime in seconds.)
            cas_insert: format!(
                "INSERT INTO {t} AS s (sid, payload, last_activity, ip_address, user_agent, user_id) \
                 VALUES ($1, $2, $3::bigint, $4, $5, $6) {REVIVE}"
            ),
            cas_update_many: format!(
                "UPDATE {t} AS s SET payload = v.payload, last_activity = v.now, \
                 ip_address = COALESCE(v.ip, s.ip_address), user_agent = COALESCE(v.ua, s.user_agent), \
                 user_id = CASE WHEN v.req THEN v.uid ELSE s.user_id END \
                 FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], \
                 $6::text[], $7::boolean[], $8::text[], $9::bigint[]) \
                 AS v(sid, payload, now, ip, ua, uid, req, prev, cutoff) \
                 WHERE s.sid = v.sid AND s.payload = v.prev \
                 AND (s.last_activity >= v.cutoff OR s.last_activity IS NULL) RETURNING s.sid"
            ),
            cas_insert_many: format!(
                "INSERT INTO {t} AS s (sid, payload, last_activity, ip_address, user_agent, user_id) \
                 SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], \
                 $6::text[]) {REVIVE} RETURNING s.sid"
            ),
            user_sessions: format!(
                "SELECT sid, payload, last_activity::bigint, ip_address, user_agent FROM {t} \
                 WHERE user_id = $1 AND (last_activity >= $2::bigint OR last_activity IS NULL)"
            ),
            tombstone: format!(
                "SELECT 1 FROM {t} WHERE sid = $1 AND payload = '' \
                 AND (last_activity >= $2::bigint OR last_activity IS NULL)"
            ),
            locks_create: format!(
                "CREATE TABLE IF NOT EXISTS {l} (sid varchar(255) NOT NULL PRIMARY KEY, \
                 token varchar(64) NOT NULL, expires_at bigint NOT NULL)"
            ),
            // One statement: inserted (no lock), taken over (expired) or already ours counts 1;
            // another holder's live lock 0.
            lock: format!(
                "INSERT INTO {l} AS l (sid, token, expires_at) VALUES ($1, $2, $3::bigint) \
                 ON CONFLICT (sid) DO UPDATE SET token = EXCLUDED.token, \
                 expires_at = EXCLUDED.expires_at \
                 WHERE l.expires_at <= $4::bigint OR l.token = EXCLUDED.token"
            ),
            unlock: format!("DELETE FROM {l} WHERE sid = $1 AND token = $2"),
            locks_gc: format!("DELETE FROM {l} WHERE expires_at <= $1::bigint"),
        }
    }
}

/// The conflict clause of a compare-and-set insert: only an expired row is replaced, whole.
const REVIVE: &str = "ON CONFLICT (sid) DO UPDATE SET payload = EXCLUDED.payload, \
     last_activity = EXCLUDED.last_activity, ip_address = EXCLUDED.ip_address, \
     user_agent = EXCLUDED.user_agent, user_id = EXCLUDED.user_id \
     WHERE s.last_activity < EXCLUDED.last_activity - $7::bigint";

/// A multi-row upsert from arrays: one prepared statement for every batch size.
fn batch(t: &str, user_id: &str) -> String {
    format!(
        "INSERT INTO {t} AS s (sid, payload, last_activity, ip_address, user_agent, user_id) \
         SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], \
         $6::text[]) \
         ON CONFLICT (sid) DO UPDATE SET payload = EXCLUDED.payload, \
         last_activity = EXCLUDED.last_activity, \
         ip_address = COALESCE(EXCLUDED.ip_address, s.ip_address), \
         user_agent = COALESCE(EXCLUDED.user_agent, s.user_agent), \
         user_id = {user_id}"
    )
}

struct Prepared {
    read: Statement,
    write: Statement,
    batch: Statement,
    batch_keep: Statement,
    touch: Statement,
    destroy: Statement,
    gc: Statement,
    cas_update: Statement,
    cas_insert: Statement,
    cas_update_many: Statement,
    cas_insert_many: Statement,
}

/// Aborts the task driving a connection when the last user of its client is gone: against a
/// frozen server that task would otherwise wait forever.
struct Driver(AbortHandle);

impl Drop for Driver {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[derive(Clone)]
struct Conn {
    client: Arc<Client>,
    st: Arc<Prepared>,
    _driver: Arc<Driver>,
}

pub(crate) struct Postgres {
    config: Config,
    s: Settings,
    sql: Sql,
    slots: Vec<Mutex<Option<Conn>>>,
    next: AtomicUsize,
    // Whether the table has been created or adopted by this handler.
    ready: Mutex<bool>,
    // Whether the lock table is known to exist (created on the first lock, as sqlite does).
    locks_ready: std::sync::atomic::AtomicBool,
}

fn invalid(msg: impl Into<String>) -> SessionError {
    SessionError::InvalidOption(msg.into())
}

impl Postgres {
    pub fn new(url: &str, s: &Settings) -> Result<Self> {
        // The parser's messages name the bad option, never the URL or its password.
        let mut config = Config::from_str(url)
            .map_err(|e| invalid(format!("the postgres URL cannot be used: {e}")))?;
        if config.get_hosts().is_empty() {
            return Err(invalid("the postgres URL needs a host"));
        }
        config.connect_timeout(s.connect_timeout);
        if config.get_application_name().is_none() {
            config.application_name("ostro-session");
        }
        Ok(Self {
            config,
            sql: Sql::for_table(&s.table),
            slots: (0..s.pool).map(|_| Mutex::new(None)).collect(),
            next: AtomicUsize::new(0),
            ready: Mutex::new(false),
            locks_ready: std::sync::atomic::AtomicBool::new(false),
            s: s.clone(),
        })
    }

    fn unavailable(&self, op: &str, e: &tokio_postgres::Error) -> SessionError {
        SessionError::Unavailable(format!(
            "postgres session {op} failed: the server at {} is unavailable ({})",
            self.s.addr,
            describe(e)
        ))
    }

    /// Maps a failed operation. Messages name the server and the SQLSTATE, never the session id
    /// or the URL.
    fn map_error(&self, op: &str, e: &tokio_postgres::Error) -> SessionError {
        if is_unavailable(e) {
            return self.unavailable(op, e);
        }
        match e.code() {
            Some(c) if *c == SqlState::STRING_DATA_RIGHT_TRUNCATION => SessionError::TooLarge(
                format!("postgres session {op} failed: a value is longer than its column allows"),
            ),
            _ => SessionError::Io(format!(
                "postgres session {op} on {} failed: {}",
                self.s.addr,
                describe(e)
            )),
        }
    }

    /// The client of slot `i`, connecting it (and preparing the table and statements) when it
    /// has none or its connection has closed.
    async fn conn(&self, i: usize, op: &str) -> Result<Conn> {
        let mut slot = self.slots[i].lock().await;
        if let Some(c) = slot.as_ref() {
            if !c.client.is_closed() {
                return Ok(c.clone());
            }
        }
        *slot = None;
        let (client, connection) = self
            .config
            .connect(NoTls)
            .await
            .map_err(|e| self.unavailable(op, &e))?;
        let driver = Arc::new(Driver(tokio::spawn(connection).abort_handle()));
        self.ensure_table(&client, op).await?;
        let prepare = |sql: &str| {
            let client = &client;
            let sql = sql.to_owned();
            async move { client.prepare(&sql).await }
        };
        let st = async {
            Ok::<_, tokio_postgres::Error>(Prepared {
                read: prepare(&self.sql.read).await?,
                write: prepare(&self.sql.write).await?,
                batch: prepare(&self.sql.batch).await?,
                batch_keep: prepare(&self.sql.batch_keep).await?,
                touch: prepare(&self.sql.touch).await?,
                destroy: prepare(&self.sql.destroy).await?,
                gc: prepare(&self.sql.gc).await?,
                cas_update: prepare(&self.sql.cas_update).await?,
                cas_insert: prepare(&self.sql.cas_insert).await?,
                cas_update_many: prepare(&self.sql.cas_update_many).await?,
                cas_insert_many: prepare(&self.sql.cas_insert_many).await?,
            })
        }
        .await
        .map_err(|e| self.map_error(op, &e))?;
        let c = Conn {
            client: Arc::new(client),
            st: Arc::new(st),
            _driver: driver,
        };
        *slot = Some(c.clone());
        Ok(c)
    }

    /// Drops slot `i`'s client if it is still `c` (another operation may have replaced it).
    async fn discard(&self, i: usize, c: Option<&Conn>) {
        let mut slot = self.slots[i].lock().await;
        let same = match (slot.as_ref(), c) {
            (Some(now), Some(c)) => Arc::ptr_eq(&now.client, &c.client),
            (_, None) => true,
            (None, _) => false,
        };
        if same {
            *slot = None;
        }
    }

    /// Runs `f` on the next client, once more on a fresh connection when the first failed on a
    /// broken one, all within the command timeout.
    async fn run<T, F, Fut>(&self, op: &'static str, f: F) -> Result<T>
    where
        F: Fn(Conn) -> Fut + Send + Sync,
        Fut: Future<Output = std::result::Result<T, tokio_postgres::Error>> + Send,
        T: Send,
    {
        self.run_with(op, true, f).await
    }

    /// `run`, retrying on a broken connection only when `idempotent`: a compare-and-set that
    /// may have been applied must not run twice.
    async fn run_with<T, F, Fut>(&self, op: &'static str, idempotent: bool, f: F) -> Result<T>
    where
        F: Fn(Conn) -> Fut + Send + Sync,
        Fut: Future<Output = std::result::Result<T, tokio_postgres::Error>> + Send,
        T: Send,
    {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        let attempt = async {
            let mut retried = false;
            loop {
                let c = self.conn(i, op).await?;
                match f(c.clone()).await {
                    Ok(v) => return Ok(v),
                    Err(e) if is_unavailable(&e) => {
                        self.discard(i, Some(&c)).await;
                        if retried || !idempotent {
                            return Err(self.map_error(op, &e));
                        }
                        retried = true;
                    }
                    Err(e) => return Err(self.map_error(op, &e)),
                }
            }
        };
        match tokio::time::timeout(self.s.command_timeout, attempt).await {
            Ok(r) => r,
            Err(_) => {
                // The server may be frozen with our requests on the wire: start over next time.
                // The slot lock may be held by a connect that is stuck too, so do not wait on it.
                if let Ok(mut slot) = self.slots[i].try_lock() {
                    *slot = None;
                }
                Err(self.s.timed_out("postgres", op))
            }
        }
    }

    /// Creates the table, or adopts one made by the `session:table` migration, under an
    /// advisory lock so that processes starting together do not race.
    async fn ensure_table(&self, client: &Client, op: &str) -> Result<()> {
        let mut ready = self.ready.lock().await;
        if *ready {
            return Ok(());
        }
        self.prepare_table(client).await.map_err(|e| match e {
            Prep::Pg(e) => self.map_error(op, &e),
            Prep::Bad(msg) => SessionError::Io(msg),
        })?;
        *ready = true;
        Ok(())
    }

    async fn prepare_table(&self, client: &Client) -> std::result::Result<(), Prep> {
        let table = &self.s.table;
        let t = format!("\"{table}\"");
        client.batch_execute("BEGIN").await?;
        let r = async {
            client
                .execute(
                    "SELECT pg_advisory_xact_lock(hashtext($1))",
                    &[&format!("ostro_session:{table}")],
                )
                .await?;
            let columns: Vec<String> = client
                .query(
                    "SELECT lower(column_name::text) FROM information_schema.columns \
                     WHERE table_schema = current_schema() AND table_name = $1",
                    &[table],
                )
                .await?
                .iter()
                .filter_map(|r| r.try_get::<_, String>(0).ok())
                .collect();
            if columns.is_empty() {
                client
                    .batch_execute(&format!(
                        "CREATE TABLE {t} (\
                           sid varchar(255) NOT NULL PRIMARY KEY, \
                           user_id varchar(255) NULL, \
                           ip_address varchar(45) NULL, \
                           user_agent text NULL, \
                           payload text NULL, \
                           last_activity bigint NOT NULL)"
                    ))
                    .await?;
            } else {
                let has = |c: &str| columns.iter().any(|x| x == c);
                for required in ["sid", "payload", "last_activity"] {
                    if !has(required) {
                        return Err(Prep::Bad(format!(
                            "the postgres session table {t} exists but has no {required} column; \
                             it is not a session table (see the session:table migration)"
                        )));
                    }
                }
                let sid_unique: bool = client
                    .query_one(
                        "SELECT EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a \
                         ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] \
                         WHERE i.indrelid = to_regclass($1) AND i.indisunique \
                         AND i.indnkeyatts = 1 AND a.attname = 'sid')",
                        &[&t],
                    )
                    .await?
                    .try_get(0)?;
                if !sid_unique {
                    return Err(Prep::Bad(format!(
                        "the postgres session table {t} has no PRIMARY KEY or UNIQUE constraint \
                         on sid"
                    )));
                }
                // The migration of 1.x had no user_id; hand-made tables may lack more.
                for (col, ty) in [
                    ("user_id", "varchar(255)"),
                    ("ip_address", "varchar(45)"),
                    ("user_agent", "text"),
                ] {
                    if !has(col) {
                        client
                            .batch_execute(&format!("ALTER TABLE {t} ADD COLUMN {col} {ty} NULL"))
                            .await?;
                    }
                }
            }
            // gc deletes by last_activity, and a user's sessions are listed by user_id
            // (sessionsOf, "log out other devices"): make sure an index leads with each, on a
            // new table and on an adopted one alike (the migration made its indexes under
            // whatever names its schema builder chose; 1.x's table has no user_id at all).
            for col in ["last_activity", "user_id"] {
                let indexed: bool = client
                    .query_one(
                        "SELECT EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a \
                         ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] \
                         WHERE i.indrelid = to_regclass($1) AND a.attname = $2)",
                        &[&t, &col],
                    )
                    .await?
                    .try_get(0)?;
                if !indexed {
                    // IF NOT EXISTS: index names are per schema, and one taken by another
                    // relation should cost speed, not refuse every start.
                    client
                        .batch_execute(&format!(
                            "CREATE INDEX IF NOT EXISTS \"{table}_{col}_index\" ON {t} ({col})"
                        ))
                        .await?;
                }
            }
            Ok(())
        }
        .await;
        match r {
            Ok(()) => {
                client.batch_execute("COMMIT").await?;
                Ok(())
            }
            Err(e) => {
                let _ = client.batch_execute("ROLLBACK").await;
                Err(e)
            }
        }
    }

    pub async fn open(&self) -> Result<()> {
        self.run("open", |_| async { Ok(()) }).await
    }

    pub async fn close(&self) -> Result<()> {
        for slot in &self.slots {
            slot.lock().await.take();
        }
        Ok(())
    }

    pub async fn read(&self, id: &str, cutoff: i64) -> Result<String> {
        let row = self
            .run("read", |c| async move {
                c.client.query_opt(&c.st.read, &[&id, &cutoff]).await
            })
            .await?;
        // A NULL or non-text payload reads as no session, as a corrupt one does.
        let payload = row
            .and_then(|r| r.try_get::<_, Option<String>>(0).ok().flatten())
            .unwrap_or_default();
        Ok(decode(payload))
    }

    pub async fn write(&self, row: &Row) -> Result<()> {
        let payload = encode(&row.payload);
        let payload: &str = &payload;
        self.run("write", |c| async move {
            c.client
                .execute(
                    &c.st.write,
                    &[
                        &row.id,
                        &payload,
                        &row.now,
                        &row.ip,
                        &row.user_agent,
                        &row.user_id,
                        &row.for_request,
                    ],
                )
                .await
        })
        .await?;
        Ok(())
    }

    /// Writes `rows` with one statement per kind of row (one commit each); when that fails for
    /// another reason than the server, one by one, so that only the bad row fails.
    pub async fn write_batch(&self, rows: Vec<Row>) -> Vec<Result<()>> {
        if let [row] = rows.as_slice() {
            return vec![self.write(row).await];
        }
        let merged = coalesce(rows.clone());
        let (follow, keep): (Vec<Row>, Vec<Row>) = merged.into_iter().partition(|r| r.for_request);
        let mut outcome = Ok(());
        for (rows, keep_user) in [(follow, false), (keep, true)] {
            if !rows.is_empty() {
                outcome = outcome.and(self.write_many(&rows, keep_user).await);
            }
        }
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

    async fn write_many(&self, rows: &[Row], keep_user: bool) -> Result<()> {
        let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
        let payloads: Vec<String> = rows
            .iter()
            .map(|r| encode(&r.payload).into_owned())
            .collect();
        let nows: Vec<i64> = rows.iter().map(|r| r.now).collect();
        let ips: Vec<Option<&str>> = rows.iter().map(|r| r.ip.as_deref()).collect();
        let agents: Vec<Option<&str>> = rows.iter().map(|r| r.user_agent.as_deref()).collect();
        let users: Vec<Option<&str>> = rows.iter().map(|r| r.user_id.as_deref()).collect();
        let (ids, payloads, nows, ips, agents, users) =
            (&ids, &payloads, &nows, &ips, &agents, &users);
        self.run("write", |c| async move {
            let st = if keep_user {
                &c.st.batch_keep
            } else {
                &c.st.batch
            };
            c.client
                .execute(st, &[ids, payloads, nows, ips, agents, users])
                .await
        })
        .await?;
        Ok(())
    }

    /// Writes `row` if the stored payload is still `previous` (`""`: no live record); `false`
    /// when it is not, nothing written.
    pub async fn write_if_unchanged(&self, row: &Row, previous: &str) -> Result<bool> {
        let payload = encode(&row.payload);
        let payload: &str = &payload;
        let lifetime = self.s.lifetime_secs;
        let cutoff = row.now - lifetime;
        let n = if previous.is_empty() {
            self.run_with("write", false, |c| async move {
                c.client
                    .execute(
                        &c.st.cas_insert,
                        &[
                            &row.id,
                            &payload,
                            &row.now,
                            &row.ip,
                            &row.user_agent,
                            &row.user_id,
                            &lifetime,
                        ],
                    )
                    .await
            })
            .await?
        } else {
            // Stored payloads are encoded; the comparison is with what is stored.
            let previous = encode(previous);
            let previous: &str = &previous;
            self.run_with("write", false, |c| async move {
                c.client
                    .execute(
                        &c.st.cas_update,
                        &[
                            &row.id,
                            &payload,
                            &row.now,
                            &row.ip,
                            &row.user_agent,
                            &row.user_id,
                            &row.for_request,
                            &previous,
                            &cutoff,
                        ],
                    )
                    .await
            })
            .await?
        };
        Ok(n > 0)
    }

    /// Many compare-and-sets, one statement (one commit) per kind and round of distinct ids;
    /// when a statement fails for another reason than the server, its rows one by one.
    pub async fn cas_batch(&self, items: Vec<Cas>) -> Vec<Result<bool>> {
        if let [c] = items.as_slice() {
            return vec![self.write_if_unchanged(&c.row, &c.previous).await];
        }
        let mut out: Vec<Option<Result<bool>>> = items.iter().map(|_| None).collect();
        for round in unique_rounds(&items) {
            let (inserts, updates): (Vec<usize>, Vec<usize>) = round
                .into_iter()
                .partition(|&i| items[i].previous.is_empty());
            for (idx, insert) in [(inserts, true), (updates, false)] {
                if idx.is_empty() {
                    continue;
                }
                match self.cas_many(&items, &idx, insert).await {
                    Ok(written) => {
                        for i in idx {
                            out[i] = Some(Ok(written.contains(&items[i].row.id)));
                        }
                    }
                    Err(e @ SessionError::Unavailable(_)) => {
                        for i in idx {
                            out[i] = Some(Err(same_error(&e)));
                        }
                    }
                    Err(_) => {
                        for i in idx {
                            let c = &items[i];
                            out[i] = Some(self.write_if_unchanged(&c.row, &c.previous).await);
                        }
                    }
                }
            }
        }
        out.into_iter()
            .map(|r| r.unwrap_or_else(|| Err(SessionError::Io("a batched write was lost".into()))))
            .collect()
    }

    /// The rows `idx` of `items` (distinct ids) as one statement; the ids it wrote.
    async fn cas_many(
        &self,
        items: &[Cas],
        idx: &[usize],
        insert: bool,
    ) -> Result<std::collections::HashSet<String>> {
        let rows: Vec<&Cas> = idx.iter().map(|&i| &items[i]).collect();
        let ids: Vec<&str> = rows.iter().map(|c| c.row.id.as_str()).collect();
        let payloads: Vec<String> = rows
            .iter()
            .map(|c| encode(&c.row.payload).into_owned())
            .collect();
        let nows: Vec<i64> = rows.iter().map(|c| c.row.now).collect();
        let ips: Vec<Option<&str>> = rows.iter().map(|c| c.row.ip.as_deref()).collect();
        let agents: Vec<Option<&str>> = rows.iter().map(|c| c.row.user_agent.as_deref()).collect();
        let users: Vec<Option<&str>> = rows.iter().map(|c| c.row.user_id.as_deref()).collect();
        let reqs: Vec<bool> = rows.iter().map(|c| c.row.for_request).collect();
        let prevs: Vec<String> = rows
            .iter()
            .map(|c| encode(&c.previous).into_owned())
            .collect();
        let cutoffs: Vec<i64> = rows
            .iter()
            .map(|c| c.row.now - self.s.lifetime_secs)
            .collect();
        let lifetime = self.s.lifetime_secs;
        let (ids, payloads, nows, ips, agents, users, reqs, prevs, cutoffs) = (
            &ids, &payloads, &nows, &ips, &agents, &users, &reqs, &prevs, &cutoffs,
        );
        let written = self
            .run_with("write", false, |c| async move {
                if insert {
                    c.client
                        .query(
                            &c.st.cas_insert_many,
                            &[ids, payloads, nows, ips, agents, users, &lifetime],
                        )
                        .await
                } else {
                    c.client
                        .query(
                            &c.st.cas_update_many,
                            &[
                                ids, payloads, nows, ips, agents, users, reqs, prevs, cutoffs,
                            ],
                        )
                        .await
                }
            })
            .await?;
        Ok(written
            .iter()
            .filter_map(|r| r.try_get::<_, String>(0).ok())
            .collect())
    }

    pub async fn destroy(&self, id: &str, now: i64) -> Result<()> {
        self.run("destroy", |c| async move {
            c.client.execute(&c.st.destroy, &[&id, &now]).await
        })
        .await?;
        Ok(())
    }

    /// Whether `id` holds a tombstone alive at `cutoff`.
    pub async fn is_tombstone(&self, id: &str, cutoff: i64) -> Result<bool> {
        let sql = self.sql.tombstone.as_str();
        let row = self
            .run("read", |c| async move {
                c.client.query_opt(sql, &[&id, &cutoff]).await
            })
            .await?;
        Ok(row.is_some())
    }

    pub async fn gc(&self, cutoff: i64) -> Result<u64> {
        self.run("gc", |c| async move {
            c.client.execute(&c.st.gc, &[&cutoff]).await
        })
        .await
    }

    pub async fn user_sessions(
        &self,
        user: &str,
        cutoff: i64,
        now: i64,
    ) -> Result<Vec<UserRecord>> {
        let sql = self.sql.user_sessions.as_str();
        let rows = self
            .run("user sessions", |c| async move {
                c.client.query(sql, &[&user, &cutoff]).await
            })
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| UserRecord {
                id: r.try_get::<_, String>(0).unwrap_or_default(),
                payload: decode(
                    r.try_get::<_, Option<String>>(1)
                        .ok()
                        .flatten()
                        .unwrap_or_default(),
                ),
                last_activity_ms: r
                    .try_get::<_, Option<i64>>(2)
                    .ok()
                    .flatten()
                    .unwrap_or(now)
                    .saturating_mul(1000),
                ip: r.try_get::<_, Option<String>>(3).ok().flatten(),
                user_agent: r.try_get::<_, Option<String>>(4).ok().flatten(),
            })
            .collect())
    }

    pub async fn touch(&self, id: &str, cutoff: i64, now: i64) -> Result<bool> {
        let n = self
            .run("touch", |c| async move {
                c.client.execute(&c.st.touch, &[&id, &cutoff, &now]).await
            })
            .await?;
        Ok(n > 0)
    }

    /// Creates the lock table once per handler. Two processes creating it at once may both
    /// pass `IF NOT EXISTS` and one then fails on the catalog's unique index: it exists then.
    async fn ensure_locks(&self) -> Result<()> {
        if self.locks_ready.load(Ordering::Acquire) {
            return Ok(());
        }
        let sql = self.sql.locks_create.as_str();
        let r = self
            .run("lock", |c| async move {
                match c.client.batch_execute(sql).await {
                    Err(e)
                        if e.code() == Some(&SqlState::UNIQUE_VIOLATION)
                            || e.code() == Some(&SqlState::DUPLICATE_TABLE) =>
                    {
                        Ok(())
                    }
                    r => r,
                }
            })
            .await;
        r?;
        self.locks_ready.store(true, Ordering::Release);
        Ok(())
    }

    /// Takes the blocking lock of `id` with `token` until `until` (ms) if it is absent or
    /// expired at `now` (ms): whether it was taken.
    pub async fn lock(&self, id: &str, token: &str, until: i64, now: i64) -> Result<bool> {
        self.ensure_locks().await?;
        let sql = self.sql.lock.as_str();
        // Retrying after a broken connection is safe: a first try that was applied left our
        // own token, which the statement takes again.
        let n = self
            .run("lock", |c| async move {
                c.client.execute(sql, &[&id, &token, &until, &now]).await
            })
            .await?;
        Ok(n == 1)
    }

    /// Releases the lock of `id` if `token` still holds it.
    pub async fn unlock(&self, id: &str, token: &str) -> Result<()> {
        let sql = self.sql.unlock.as_str();
        self.run("unlock", |c| async move {
            match c.client.execute(sql, &[&id, &token]).await {
                // No lock table: nothing was ever locked here.
                Err(e) if e.code() == Some(&SqlState::UNDEFINED_TABLE) => Ok(0),
                r => r,
            }
        })
        .await?;
        Ok(())
    }

    /// Deletes locks expired at `now` (ms): a holder that crashed never released its lock.
    pub async fn gc_locks(&self, now: i64) -> Result<()> {
        let sql = self.sql.locks_gc.as_str();
        self.run("gc", |c| async move {
            match c.client.execute(sql, &[&now]).await {
                Err(e) if e.code() == Some(&SqlState::UNDEFINED_TABLE) => Ok(0),
                r => r,
            }
        })
        .await?;
        Ok(())
    }
}

enum Prep {
    Pg(tokio_postgres::Error),
    Bad(String),
}

impl From<tokio_postgres::Error> for Prep {
    fn from(e: tokio_postgres::Error) -> Self {
        Self::Pg(e)
    }
}

/// Whether `e` means the server or the connection is gone, refusing, or not ready.
fn is_unavailable(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.code() {
        Some(c) => {
            let class = c.code().get(..2);
            // 08: connection exception; 57P0x: shutdown, crash shutdown, cannot connect now;
            // 53300: too many connections; 28: authentication (the server refuses us).
            matches!(class, Some("08" | "28"))
                || *c == SqlState::ADMIN_SHUTDOWN
                || *c == SqlState::CRASH_SHUTDOWN
                || *c == SqlState::CANNOT_CONNECT_NOW
                || *c == SqlState::TOO_MANY_CONNECTIONS
        }
        // No SQLSTATE: an I/O error, a timeout or a protocol failure on the socket.
        None => std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>()),
    }
}

/// The server's message and SQLSTATE, or the client's description; never a parameter value.
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => match std::error::Error::source(e) {
            Some(s) => format!("{e}: {s}"),
            None => e.to_string(),
        },
    }
}

fn encode(payload: &str) -> std::borrow::Cow<'_, str> {
    if payload.contains('\0') || payload.starts_with(ESCAPE) {
        let b64 = base64::engine::general_purpose::STANDARD.encode(payload);
        std::borrow::Cow::Owned(format!("{ESCAPE}{b64}"))
    } else {
        std::borrow::Cow::Borrowed(payload)
    }
}

fn decode(stored: String) -> String {
    match stored.strip_prefix(ESCAPE) {
        Some(b64) => base64::engine::general_purpose::STANDARD
            .decode(b64)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .unwrap_or_default(),
        None => stored,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_escape_round_trips() {
        for s in ["", "{}", "a\0b", "\0", ESCAPE, &format!("{ESCAPE}x")] {
            assert_eq!(decode(encode(s).into_owned()), s);
        }
        assert!(!encode("a\0b").contains('\0'));
        assert_eq!(encode("{\"a\":1}"), "{\"a\":1}");
    }
}
