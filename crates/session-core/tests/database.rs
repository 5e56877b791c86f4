//! The database driver against real servers: the shared conformance suite on PostgreSQL and on
//! MySQL/MariaDB (the machine's servers, each test in its own table, dropped afterwards), plus
//! what only a SQL table can get wrong (adopting a migration's table, metadata columns, gc
//! through the `last_activity` index) and servers that go away: a port where nothing listens, a
//! peer that accepts and never answers, and throwaway servers of our own, killed, frozen with
//! SIGSTOP and restarted on the same port. The shared servers are never stopped.
//!
//! `OSTRO_TEST_POSTGRES_URL` / `OSTRO_TEST_MYSQL_URL` override the servers' URLs. A server that
//! is not there fails the test, naming it.
#![cfg(any(feature = "postgres", feature = "mysql"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{sid, Fixture};
use ostro_session_core::clock::{ManualClock, SharedClock};
use ostro_session_core::handlers::database::DatabaseOptions;
use ostro_session_core::{DatabaseSessionHandler, SessionError, SessionHandler, WriteMeta};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The bound the issue sets for a failing operation: its timeout plus half a second.
const SLACK: Duration = Duration::from_millis(500);
const T0: i64 = common::T0;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Db {
    Postgres,
    Mysql,
}

impl Db {
    fn url(self) -> String {
        let (var, default) = match self {
            Db::Postgres => (
                "OSTRO_TEST_POSTGRES_URL",
                "postgres://postgres@127.0.0.1:5432/test",
            ),
            Db::Mysql => ("OSTRO_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test"),
        };
        std::env::var(var).unwrap_or_else(|_| default.to_owned())
    }

    fn name(self) -> &'static str {
        match self {
            Db::Postgres => "PostgreSQL",
            Db::Mysql => "MariaDB/MySQL",
        }
    }

    /// Fails the test (never skips it) when the server is not reachable.
    fn require(self) -> String {
        let url = self.url();
        let rest = url.split_once("://").unwrap().1;
        let auth = rest.split(['/', '?']).next().unwrap();
        let hp = auth.rsplit_once('@').map_or(auth, |(_, h)| h);
        let addr: std::net::SocketAddr = std::net::ToSocketAddrs::to_socket_addrs(hp)
            .unwrap_or_else(|e| panic!("{} address {hp}: {e}", self.name()))
            .next()
            .unwrap();
        if let Err(e) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
            panic!(
                "the {} server at {hp} is not reachable ({e}): these tests need it running \
                 (see .ci/run)",
                self.name()
            );
        }
        url
    }

    /// Runs SQL with the server's command-line client, for set-up and clean-up outside the
    /// driver under test.
    fn sql(self, url: &str, sql: &str) -> String {
        let out = match self {
            Db::Postgres => Command::new("psql")
                .args([
                    url,
                    "-X",
                    "-q",
                    "-t",
                    "-A",
                    "-v",
                    "ON_ERROR_STOP=1",
                    "-c",
                    sql,
                ])
                .output(),
            Db::Mysql => {
                let rest = url.split_once("://").unwrap().1;
                let (auth, db) = rest.split_once('/').unwrap();
                let (user, hp) = auth.rsplit_once('@').unwrap();
                let (host, port) = hp.split_once(':').unwrap_or((hp, "3306"));
                Command::new("mariadb")
                    .args([
                        "-h", host, "-P", port, "-u", user, "-N", "-B", "-D", db, "-e", sql,
                    ])
                    .output()
            }
        }
        .unwrap_or_else(|e| panic!("cannot run the {} client: {e}", self.name()));
        assert!(
            out.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    fn quote(self, table: &str) -> String {
        match self {
            Db::Postgres => format!("\"{table}\""),
            Db::Mysql => format!("`{table}`"),
        }
    }
}

/// A table name no other test (or test run) uses.
fn unique_table() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "ostro_t{}_{}_{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Drops its table when the test ends, also when it panics.
struct Table {
    db: Db,
    url: String,
    name: String,
}

impl Table {
    fn new(db: Db) -> Self {
        Self {
            db,
            url: db.require(),
            name: unique_table(),
        }
    }

    fn sql(&self, sql: &str) -> String {
        self.db.sql(&self.url, sql)
    }

    fn q(&self) -> String {
        self.db.quote(&self.name)
    }

    fn handler(&self, minutes: f64, clock: Option<SharedClock>) -> DatabaseSessionHandler {
        DatabaseSessionHandler::new(
            &self.url,
            DatabaseOptions {
                table: self.name.clone(),
                minutes,
                ..DatabaseOptions::default()
            },
            clock,
        )
        .unwrap()
    }
}

impl Drop for Table {
    fn drop(&mut self) {
        // The lock table of opt-in blocking goes too.
        for name in [self.name.clone(), format!("{}_locks", self.name)] {
            let drop_it = || {
                self.db.sql(
                    &self.url,
                    &format!("DROP TABLE IF EXISTS {}", self.db.quote(&name)),
                )
            };
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(drop_it));
        }
    }
}

fn fixture(db: Db) -> Fixture {
    let table = Table::new(db);
    let (url, name) = (table.url.clone(), table.name.clone());
    Fixture::clocked(move |minutes, clock| {
        Arc::new(
            DatabaseSessionHandler::new(
                &url,
                DatabaseOptions {
                    table: name.clone(),
                    minutes,
                    ..DatabaseOptions::default()
                },
                Some(clock),
            )
            .unwrap(),
        ) as Arc<dyn SessionHandler>
    })
    .keeping(table)
}

#[cfg(feature = "postgres")]
handler_conformance!(postgres, crate::fixture(crate::Db::Postgres));
#[cfg(feature = "mysql")]
handler_conformance!(mysql, crate::fixture(crate::Db::Mysql));

fn clock() -> (ManualClock, Option<SharedClock>) {
    let c = ManualClock::new(T0);
    (c.clone(), Some(Arc::new(c) as SharedClock))
}

fn meta(ip: Option<&str>, ua: Option<&str>, user: Option<&str>) -> WriteMeta {
    WriteMeta {
        ip: ip.map(Into::into),
        user_agent: ua.map(Into::into),
        user_id: user.map(Into::into),
    }
}

/// Both backends, one after the other, in one test: a failure names the backend.
macro_rules! both {
    ($name:ident, $body:ident) => {
        mod $name {
            #[cfg(feature = "postgres")]
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$body(super::Db::Postgres).await;
            }
            #[cfg(feature = "mysql")]
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn mysql() {
                super::$body(super::Db::Mysql).await;
            }
        }
    };
}

both!(
    creates_the_table_with_the_migration_columns_and_indexes,
    creates_table
);
async fn creates_table(db: Db) {
    let t = Table::new(db);
    let h = t.handler(120.0, None);
    h.open().await.unwrap();
    let cols = match db {
        Db::Postgres => t.sql(&format!(
            "SELECT string_agg(column_name, ',' ORDER BY column_name) FROM \
             information_schema.columns WHERE table_schema = current_schema() \
             AND table_name = '{}'",
            t.name
        )),
        Db::Mysql => t.sql(&format!(
            "SELECT GROUP_CONCAT(column_name ORDER BY column_name) FROM \
             information_schema.columns WHERE table_schema = DATABASE() AND table_name = '{}'",
            t.name
        )),
    };
    assert_eq!(
        cols.to_lowercase(),
        "ip_address,last_activity,payload,sid,user_agent,user_id"
    );
    assert_eq!(indexes_on(&t, "last_activity"), "1");
    assert_eq!(indexes_on(&t, "user_id"), "1");
    // A second handler (another process) adopts the table it finds, adding no index.
    let h2 = t.handler(120.0, None);
    h2.open().await.unwrap();
    assert_eq!(indexes_on(&t, "last_activity"), "1");
    assert_eq!(indexes_on(&t, "user_id"), "1");
    h.close().await.unwrap();
    h2.close().await.unwrap();
}

/// How many indexes of the table have `col` as their only column, as the server reports them
/// (pg_indexes / information_schema.statistics, not the driver's own check).
fn indexes_on(t: &Table, col: &str) -> String {
    match t.db {
        Db::Postgres => t.sql(&format!(
            "SELECT count(*) FROM pg_indexes WHERE schemaname = current_schema() \
             AND tablename = '{}' AND indexdef LIKE '%({col})'",
            t.name
        )),
        Db::Mysql => t.sql(&format!(
            "SELECT COUNT(*) FROM information_schema.statistics s \
             WHERE s.table_schema = DATABASE() AND s.table_name = '{}' \
             AND LOWER(s.column_name) = '{col}' AND s.seq_in_index = 1 \
             AND (SELECT COUNT(*) FROM information_schema.statistics s2 \
                  WHERE s2.table_schema = s.table_schema AND s2.table_name = s.table_name \
                  AND s2.index_name = s.index_name) = 1",
            t.name
        )),
    }
}

/// The migration's table as OstroJS's schema builder makes it on this server, minus `user_id`
/// (as 1.x made it), with an `integer` last_activity and a row already in it.
fn migration_ddl(t: &Table) -> String {
    let (q, n) = (t.q(), &t.name);
    match t.db {
        Db::Postgres => format!(
            "CREATE TABLE {q} (sid varchar(255) NOT NULL PRIMARY KEY, ip_address varchar(45) NULL, \
             user_agent text NULL, payload text NULL, last_activity integer NOT NULL); \
             CREATE INDEX \"{n}_la\" ON {q} (last_activity);"
        ),
        Db::Mysql => format!(
            "CREATE TABLE {q} (sid varchar(255) NOT NULL, ip_address varchar(45) NULL, \
             user_agent text NULL, payload text NULL, last_activity int NOT NULL, \
             PRIMARY KEY (sid), INDEX `{n}_la` (last_activity)) DEFAULT CHARSET=utf8mb4"
        ),
    }
}

both!(adopts_a_migration_table_without_user_id, adopts_migration);
async fn adopts_migration(db: Db) {
    let t = Table::new(db);
    t.sql(&migration_ddl(&t));
    t.sql(&format!(
        "INSERT INTO {} (sid, payload, last_activity) VALUES ('{}', '{{\"a\":1}}', {})",
        t.q(),
        sid("adopt", 1),
        T0 / 1000 - 10
    ));
    let (_, clk) = clock();
    let h = t.handler(1.0, clk);
    assert_eq!(h.read(&sid("adopt", 1)).await.unwrap(), "{\"a\":1}");
    h.write(&sid("adopt", 2), "{}", &meta(None, None, Some("42")))
        .await
        .unwrap();
    let uid = t.sql(&format!(
        "SELECT user_id FROM {} WHERE sid = '{}'",
        t.q(),
        sid("adopt", 2)
    ));
    assert_eq!(uid, "42");
    // The migration's index (under its own name) is reused, not duplicated.
    assert_eq!(indexes_on(&t, "last_activity"), "1");
    h.close().await.unwrap();
}

both!(
    adopting_a_table_without_user_id_indexes_it_once,
    adopts_and_indexes_user_id
);
async fn adopts_and_indexes_user_id(db: Db) {
    let t = Table::new(db);
    t.sql(&migration_ddl(&t));
    assert_eq!(indexes_on(&t, "user_id"), "0");
    let h = t.handler(120.0, None);
    h.open().await.unwrap();
    // sessionsOf and "log out other devices" look rows up by user_id: the column the adoption
    // added gets its index, as a table the driver creates does.
    assert_eq!(indexes_on(&t, "user_id"), "1");
    let name = match db {
        Db::Postgres => t.sql(&format!(
            "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() \
             AND tablename = '{}' AND indexdef LIKE '%(user_id)'",
            t.name
        )),
        Db::Mysql => t.sql(&format!(
            "SELECT index_name FROM information_schema.statistics WHERE \
             table_schema = DATABASE() AND table_name = '{}' AND column_name = 'user_id'",
            t.name
        )),
    };
    assert_eq!(name, format!("{}_user_id_index", t.name));
    // Another process adopting the same table later adds nothing.
    let h2 = t.handler(120.0, None);
    h2.open().await.unwrap();
    assert_eq!(indexes_on(&t, "user_id"), "1");
    assert_eq!(indexes_on(&t, "last_activity"), "1");
    h.close().await.unwrap();
    h2.close().await.unwrap();
}

both!(
    refuses_a_table_that_is_not_a_session_table,
    refuses_foreign_table
);
async fn refuses_foreign_table(db: Db) {
    let t = Table::new(db);
    t.sql(&format!(
        "CREATE TABLE {} (sid varchar(255) NOT NULL, payload text NULL, last_activity int NULL)",
        t.q()
    ));
    let e = t.handler(120.0, None).read(&sid("foreign", 1)).await;
    match e {
        Err(SessionError::Io(msg)) => {
            assert!(msg.contains("sid"), "{msg}");
            assert!(msg.contains(&t.name), "{msg}");
        }
        other => panic!("{other:?}"),
    }
}

both!(metadata_columns_follow_the_sqlite_rules, metadata);
async fn metadata(db: Db) {
    let t = Table::new(db);
    let h = t.handler(120.0, None);
    let id = sid("meta", 1);
    let row = || {
        t.sql(&format!(
            "SELECT concat(coalesce(ip_address, '-'), '|', coalesce(user_agent, '-'), '|', \
             coalesce(user_id, '-')) FROM {} WHERE sid = '{id}'",
            t.q()
        ))
    };
    let long_ua = "u".repeat(600);
    h.write(&id, "{}", &meta(Some("::1"), Some(&long_ua), Some("7")))
        .await
        .unwrap();
    assert_eq!(row(), format!("::1|{}|7", "u".repeat(500)));
    // A write with no metadata (no request in sight) keeps everything.
    h.write(&id, "{}", &WriteMeta::default()).await.unwrap();
    assert_eq!(row(), format!("::1|{}|7", "u".repeat(500)));
    // A request without a user (a logout) clears user_id; ip and agent keep their last value.
    h.write(&id, "{}", &meta(Some("10.0.0.1"), None, None))
        .await
        .unwrap();
    assert_eq!(row(), format!("10.0.0.1|{}|-", "u".repeat(500)));
}

both!(
    blocking_locks_hold_across_handlers_expire_and_go_at_gc,
    blocking_locks
);
async fn blocking_locks(db: Db) {
    let t = Table::new(db);
    let (c, clk) = clock();
    // Two handlers on one table, as two processes would have.
    let (a, b) = (t.handler(120.0, clk.clone()), t.handler(120.0, clk));
    assert!(a.supports_lock());
    let id = sid("lock", 1);
    // The lock table is created by the first lock, not before.
    let t1 = a
        .lock(&id, 10_000)
        .await
        .unwrap()
        .expect("a free lock is taken");
    assert_eq!(t1.len(), 32);
    assert_eq!(b.lock(&id, 10_000).await.unwrap(), None, "held elsewhere");
    assert_eq!(
        a.lock(&id, 10_000).await.unwrap(),
        None,
        "held by itself too"
    );
    assert!(
        b.lock(&sid("lock", 2), 10_000).await.unwrap().is_some(),
        "another session's"
    );
    // Only the holder's token releases it.
    b.unlock(&id, "not-the-token").await.unwrap();
    assert_eq!(b.lock(&id, 10_000).await.unwrap(), None);
    a.unlock(&id, &t1).await.unwrap();
    let t2 = b
        .lock(&id, 10_000)
        .await
        .unwrap()
        .expect("released, so free");
    // Past its time-to-live (the handlers' clock), the lock is free; the late release of the
    // first holder frees nothing of the next one's.
    c.advance(10_001);
    let t3 = a
        .lock(&id, 10_000)
        .await
        .unwrap()
        .expect("an expired lock is free");
    b.unlock(&id, &t2).await.unwrap();
    assert_eq!(b.lock(&id, 10_000).await.unwrap(), None);
    // The waiting rule over it: Locked after the wait, then had once released.
    let e = ostro_session_core::blocking::acquire(&b, &id, 10_000, 200)
        .await
        .unwrap_err();
    assert_eq!(e.code(), "ERR_SESSION_LOCKED");
    a.unlock(&id, &t3).await.unwrap();
    let t4 = ostro_session_core::blocking::acquire(&b, &id, 10_000, 2000)
        .await
        .unwrap();
    // gc deletes expired locks only.
    let count = || {
        t.sql(&format!(
            "SELECT count(*) FROM {}",
            t.db.quote(&format!("{}_locks", t.name))
        ))
    };
    assert_eq!(count(), "2");
    c.advance(10_001);
    b.lock(&sid("lock", 3), 60_000).await.unwrap().unwrap();
    a.gc(7200).await.unwrap();
    assert_eq!(count(), "1", "gc left an expired lock, or took a live one");
    b.unlock(&id, &t4).await.unwrap();
    // A handler that never locked releases and collects without a lock table.
    let fresh = Table::new(db);
    let h = fresh.handler(120.0, None);
    h.unlock(&id, "x").await.unwrap();
    h.write(&id, "{}", &WriteMeta::default()).await.unwrap();
    h.gc(7200).await.unwrap();
}

both!(gc_deletes_through_the_last_activity_index, gc_index);
async fn gc_index(db: Db) {
    let t = Table::new(db);
    let (c, clk) = clock();
    let h = Arc::new(t.handler(2.0, clk));
    let mut set = tokio::task::JoinSet::new();
    for i in 0..400 {
        let h = Arc::clone(&h);
        set.spawn(async move { h.write(&sid("gcidx", i), "{}", &WriteMeta::default()).await });
    }
    while let Some(r) = set.join_next().await {
        r.unwrap().unwrap();
    }
    c.advance(121_000);
    h.write(&sid("gcidx", 9999), "{}", &WriteMeta::default())
        .await
        .unwrap();
    // The plan of the driver's own gc statement uses the index (sequential scans disabled on
    // Postgres so that a tiny table does not make the planner prefer one anyway).
    let plan = match db {
        Db::Postgres => t.sql(&format!(
            "SET enable_seqscan = off; EXPLAIN DELETE FROM {} WHERE last_activity < {}::bigint",
            t.q(),
            T0 / 1000
        )),
        Db::Mysql => t.sql(&format!(
            "EXPLAIN DELETE FROM {} WHERE last_activity < {}",
            t.q(),
            T0 / 1000
        )),
    };
    let index = format!("{}_last_activity_index", t.name);
    assert!(plan.contains(&index), "gc does not use {index}:\n{plan}");
    assert_eq!(h.gc(120).await.unwrap(), 400);
    assert_eq!(h.gc(120).await.unwrap(), 0);
    assert_eq!(h.read(&sid("gcidx", 9999)).await.unwrap(), "{}");
}

both!(
    two_handlers_write_different_sessions_and_lose_nothing,
    two_writers
);
async fn two_writers(db: Db) {
    let t = Table::new(db);
    let (a, b) = (
        Arc::new(t.handler(120.0, None)),
        Arc::new(t.handler(120.0, None)),
    );
    let mut set = tokio::task::JoinSet::new();
    for i in 0..200 {
        let h = if i % 2 == 0 {
            Arc::clone(&a)
        } else {
            Arc::clone(&b)
        };
        set.spawn(async move {
            let id = sid("twow", i);
            h.write(&id, &format!("{{\"n\":{i}}}"), &WriteMeta::default())
                .await
        });
    }
    while let Some(r) = set.join_next().await {
        r.unwrap().unwrap();
    }
    for i in 0..200 {
        assert_eq!(
            a.read(&sid("twow", i)).await.unwrap(),
            format!("{{\"n\":{i}}}")
        );
    }
}

// ---- servers that go away ----------------------------------------------------------------

fn opts(table: &str, timeout_ms: u64) -> DatabaseOptions {
    DatabaseOptions {
        table: table.to_owned(),
        connect_timeout_ms: timeout_ms,
        command_timeout_ms: timeout_ms,
        ..DatabaseOptions::default()
    }
}

fn scheme(db: Db) -> &'static str {
    match db {
        Db::Postgres => "postgres://postgres@",
        Db::Mysql => "mysql://root@",
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn assert_unavailable<T: std::fmt::Debug>(
    r: Result<T, SessionError>,
    took: Duration,
    bound: Duration,
    addr: &str,
) {
    match r {
        Err(SessionError::Unavailable(msg)) => {
            assert!(msg.contains(addr), "the message must name {addr}: {msg}")
        }
        other => panic!("expected ERR_SESSION_UNAVAILABLE, got {other:?}"),
    }
    assert!(
        took <= bound + SLACK,
        "took {took:?} (bound {bound:?} + 0.5 s)"
    );
}

both!(a_port_where_nothing_listens_is_unavailable, nothing_listens);
async fn nothing_listens(db: Db) {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let h = DatabaseSessionHandler::new(
        &format!("{}{addr}/test", scheme(db)),
        opts("sessions", 1000),
        None,
    )
    .unwrap();
    for _ in 0..2 {
        let t = Instant::now();
        let r = h.read(&sid("down", 1)).await;
        assert_unavailable(r, t.elapsed(), Duration::from_millis(1000), &addr);
    }
}

/// Accepts connections and never answers: a server frozen before its greeting.
fn silent_peer() -> (TcpListener, u16) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    (l, port)
}

both!(
    a_peer_that_never_answers_is_unavailable_within_the_timeout,
    silent
);
async fn silent(db: Db) {
    let (listener, port) = silent_peer();
    // Keep accepted sockets open (and unanswered) for the whole test.
    let held = std::thread::spawn(move || {
        let mut socks = Vec::new();
        listener.set_nonblocking(true).unwrap();
        let end = Instant::now() + Duration::from_secs(8);
        while Instant::now() < end {
            if let Ok((s, _)) = listener.accept() {
                socks.push(s);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        socks.len()
    });
    let addr = format!("127.0.0.1:{port}");
    let h = DatabaseSessionHandler::new(
        &format!("{}{addr}/test", scheme(db)),
        DatabaseOptions {
            connect_timeout_ms: 5000,
            command_timeout_ms: 800,
            ..DatabaseOptions::default()
        },
        None,
    )
    .unwrap();
    for op in 0..3 {
        let t = Instant::now();
        let r = match op {
            0 => h.read(&sid("silent", 1)).await.map(|_| ()),
            1 => {
                h.write(&sid("silent", 1), "{}", &WriteMeta::default())
                    .await
            }
            _ => h.gc(10).await.map(|_| ()),
        };
        // The command timeout (800 ms) bounds the whole operation, connecting included.
        assert_unavailable(r, t.elapsed(), Duration::from_millis(800), &addr);
    }
    assert!(held.join().unwrap() >= 1);
}

// Throwaway servers of our own: a process group we may kill, freeze and restart.

struct Server {
    db: Db,
    program: String,
    args: Vec<String>,
    uid: Option<(u32, u32)>,
    port: u16,
    child: Option<Child>,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

fn postgres_bin(name: &str) -> String {
    for v in ["17", "16", "15", "14", "13"] {
        let p = format!("/usr/lib/postgresql/{v}/bin/{name}");
        if Path::new(&p).exists() {
            return p;
        }
    }
    name.to_owned()
}

fn uid_of(user: &str) -> Option<(u32, u32)> {
    let out = Command::new("id").args(["-u", user]).output().ok()?;
    let uid = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
    let out = Command::new("id").args(["-g", user]).output().ok()?;
    let gid = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
    Some((uid, gid))
}

fn run_ok(cmd: &mut Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what} cannot be run: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Server {
    fn start(db: Db) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("ostro-db-")
            .tempdir()
            .unwrap();
        let data = dir.path().join("data");
        let log = dir.path().join("server.log");
        let port = free_port();
        // Postgres refuses to run as root: run it as the postgres user when we are root.
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        let (program, args, uid) = match db {
            Db::Postgres => {
                let uid = if root { uid_of("postgres") } else { None };
                if let Some((u, g)) = uid {
                    std::os::unix::fs::chown(dir.path(), Some(u), Some(g)).unwrap();
                }
                let mut init = Command::new(postgres_bin("initdb"));
                init.args([
                    "-D",
                    data.to_str().unwrap(),
                    "-U",
                    "postgres",
                    "-A",
                    "trust",
                ])
                .arg("--no-sync");
                if let Some((u, g)) = uid {
                    init.uid(u).gid(g);
                }
                run_ok(&mut init, "initdb (PostgreSQL)");
                (
                    postgres_bin("postgres"),
                    vec![
                        "-D".into(),
                        data.to_str().unwrap().into(),
                        "-p".into(),
                        port.to_string(),
                        "-c".into(),
                        "listen_addresses=127.0.0.1".into(),
                        "-k".into(),
                        dir.path().to_str().unwrap().into(),
                        "-c".into(),
                        "fsync=off".into(),
                    ],
                    uid,
                )
            }
            Db::Mysql => {
                run_ok(
                    Command::new("mariadb-install-db")
                        .arg("--no-defaults")
                        .arg(format!("--datadir={}", data.display()))
                        .args(["--user=root", "--skip-test-db"])
                        .arg("--auth-root-authentication-method=normal"),
                    "mariadb-install-db",
                );
                (
                    "mariadbd".to_owned(),
                    vec![
                        "--no-defaults".into(),
                        format!("--datadir={}", data.display()),
                        format!("--port={port}"),
                        "--bind-address=127.0.0.1".into(),
                        format!("--socket={}", dir.path().join("sock").display()),
                        format!("--pid-file={}", dir.path().join("pid").display()),
                        "--user=root".into(),
                        "--skip-grant-tables".into(),
                        "--skip-log-bin".into(),
                        "--innodb-buffer-pool-size=16M".into(),
                    ],
                    None,
                )
            }
        };
        let mut s = Self {
            db,
            program,
            args,
            uid,
            port,
            child: None,
            log,
            _dir: dir,
        };
        s.spawn();
        // --skip-grant-tables (MariaDB) and trust (Postgres) let us in; the database is ours.
        let admin = match db {
            Db::Postgres => format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            Db::Mysql => format!("mysql://root@127.0.0.1:{port}/mysql"),
        };
        s.db.sql(&admin, "CREATE DATABASE test");
        s
    }

    fn url(&self) -> String {
        format!("{}127.0.0.1:{}/test", scheme(self.db), self.port)
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        let log = std::fs::File::options()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0);
        if let Some((u, g)) = self.uid {
            cmd.uid(u).gid(g);
        }
        // SAFETY: prctl is async-signal-safe; the server dies with the test thread that made it.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        self.child = Some(
            cmd.spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.program)),
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if self.answers() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not start:\n{}",
                self.program,
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn answers(&self) -> bool {
        let probe = match self.db {
            Db::Postgres => Command::new("psql")
                .args([
                    &format!("postgres://postgres@127.0.0.1:{}/postgres", self.port),
                    "-X",
                    "-c",
                    "SELECT 1",
                ])
                .output(),
            Db::Mysql => Command::new("mariadb")
                .args([
                    "-h",
                    "127.0.0.1",
                    "-P",
                    &self.port.to_string(),
                    "-u",
                    "root",
                ])
                .args(["-e", "SELECT 1"])
                .output(),
        };
        probe.is_ok_and(|o| o.status.success())
    }

    fn pgid(&self) -> i32 {
        i32::try_from(self.child.as_ref().unwrap().id()).unwrap()
    }

    /// The server and its children: Postgres backends call setsid(), so a process-group
    /// signal would miss them.
    fn pids(&self) -> Vec<i32> {
        let main = self.pgid();
        let mut pids = vec![main];
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
            // The parent pid is the second field after the parenthesised command name.
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<i32>().ok());
            if ppid == Some(main) {
                pids.push(pid);
            }
        }
        pids
    }

    fn signal_group(&self, sig: libc::c_int) {
        for pid in self.pids() {
            // SAFETY: kill(2) on our own child and its children.
            unsafe { libc::kill(pid, sig) };
        }
    }

    fn kill(&mut self) {
        if self.child.is_some() {
            let pids = self.pids();
            for &pid in &pids {
                // SAFETY: kill(2) on our own child and its children.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            let _ = self.child.take().unwrap().wait();
            // Backends outlive the postmaster for a moment and hold its shared memory: a restart
            // on the same data directory before they are gone fails ("pre-existing shared memory
            // block is still in use"). Wait until each has exited (a zombie holds nothing).
            let deadline = Instant::now() + Duration::from_secs(15);
            for pid in pids {
                while Instant::now() < deadline {
                    let stat =
                        std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                    let state = stat
                        .rsplit_once(')')
                        .and_then(|(_, rest)| rest.split_whitespace().next());
                    if matches!(state, None | Some("Z" | "X")) {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
    }

    fn freeze(&self) {
        self.signal_group(libc::SIGSTOP);
        std::thread::sleep(Duration::from_millis(100));
    }

    fn thaw(&self) {
        self.signal_group(libc::SIGCONT);
    }

    fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.signal_group(libc::SIGCONT);
            self.signal_group(libc::SIGKILL);
            let _ = self.child.take().unwrap().wait();
        }
    }
}

both!(
    a_server_that_goes_away_is_unavailable_and_recovers,
    goes_away
);
async fn goes_away(db: Db) {
    let mut srv = tokio::task::spawn_blocking(move || Server::start(db))
        .await
        .unwrap();
    let timeout = Duration::from_millis(1000);
    let h =
        Arc::new(DatabaseSessionHandler::new(&srv.url(), opts("sessions", 1000), None).unwrap());
    let id = sid("away", 1);
    h.write(&id, "{\"v\":1}", &WriteMeta::default())
        .await
        .unwrap();
    let addr = srv.addr();

    // Frozen (SIGSTOP): every operation, including several in flight, rejects in time.
    srv.freeze();
    let mut set = tokio::task::JoinSet::new();
    for i in 0..8 {
        let h = Arc::clone(&h);
        set.spawn(async move {
            let t = Instant::now();
            (h.read(&sid("away", i)).await, t.elapsed())
        });
    }
    while let Some(r) = set.join_next().await {
        let (r, took) = r.unwrap();
        assert_unavailable(r, took, timeout, &addr);
    }
    // Thawed: it answers again without a new handler.
    srv.thaw();
    assert_eq!(h.read(&id).await.unwrap(), "{\"v\":1}");

    // Killed: unavailable, fast or within the timeout.
    srv.kill();
    for _ in 0..2 {
        let t = Instant::now();
        let r = h.write(&id, "{\"v\":2}", &WriteMeta::default()).await;
        assert_unavailable(r, t.elapsed(), timeout, &addr);
    }
    // Restarted on the same port: the same handler recovers by itself.
    let srv = tokio::task::spawn_blocking(move || {
        srv.restart();
        srv
    })
    .await
    .unwrap();
    h.write(&id, "{\"v\":3}", &WriteMeta::default())
        .await
        .unwrap();
    assert_eq!(h.read(&id).await.unwrap(), "{\"v\":3}");
    h.close().await.unwrap();
    drop(srv);
}

both!(
    a_bad_write_fails_alone_among_concurrent_writes,
    bad_row_alone
);
/// Concurrent writes are committed in batches: one write the table refuses (a user id longer
/// than its varchar(255)) must fail on its own, and every other write of its batch succeed.
async fn bad_row_alone(db: Db) {
    let t = Table::new(db);
    let h = Arc::new(t.handler(120.0, None));
    h.open().await.unwrap();
    let mut set = tokio::task::JoinSet::new();
    for i in 0..64 {
        let h = Arc::clone(&h);
        set.spawn(async move {
            let user = if i == 17 {
                "u".repeat(300)
            } else {
                i.to_string()
            };
            let r = h
                .write(
                    &sid("batch", i % 48),
                    &format!("{{\"i\":{i}}}"),
                    &meta(None, None, Some(&user)),
                )
                .await;
            (i, r)
        });
    }
    let mut failed = Vec::new();
    while let Some(r) = set.join_next().await {
        let (i, r) = r.unwrap();
        match r {
            Ok(()) => {}
            Err(SessionError::TooLarge(_)) if i == 17 => failed.push(i),
            Err(e) => panic!("write {i} failed: {e:?}"),
        }
    }
    assert_eq!(failed, [17]);
    // Every session holds one whole payload from one of its writers.
    for k in 0..48 {
        let got = h.read(&sid("batch", k)).await.unwrap();
        if k == 17 {
            assert_eq!(got, "", "its only write failed");
            continue;
        }
        let i: usize = serde_json::from_str::<serde_json::Value>(&got).unwrap()["i"]
            .as_u64()
            .unwrap() as usize;
        assert_eq!(i % 48, k, "{got}");
    }
}

both!(batched_compare_and_sets_decide_each_row_alone, cas_batches);
/// Concurrent compare-and-sets are committed in batches (one statement or transaction): on one
/// id exactly one of many racing sets from the same base wins and the others see its payload;
/// on distinct ids every set wins; and one the table refuses (a user id longer than its
/// varchar(255)) fails on its own.
async fn cas_batches(db: Db) {
    use ostro_session_core::CasOutcome;
    let t = Table::new(db);
    let h = Arc::new(t.handler(120.0, None));
    let none = WriteMeta::default();
    let one = sid("race", 0);
    h.write(&one, "{\"v\":0}", &none).await.unwrap();
    let mut set = tokio::task::JoinSet::new();
    for i in 0..64usize {
        let h = Arc::clone(&h);
        let one = one.clone();
        set.spawn(async move {
            let none = WriteMeta::default();
            // 32 racing on one id, 31 on ids of their own (fresh: previous ""), one too large.
            let r = if i < 32 {
                h.write_if_unchanged(&one, &format!("{{\"v\":{}}}", i + 1), "{\"v\":0}", &none)
                    .await
            } else if i == 40 {
                let big = meta(None, None, Some(&"u".repeat(300)));
                h.write_if_unchanged(&sid("own", i), "{\"big\":1}", "", &big)
                    .await
            } else {
                h.write_if_unchanged(&sid("own", i), &format!("{{\"i\":{i}}}"), "", &none)
                    .await
            };
            (i, r)
        });
    }
    let mut winners = Vec::new();
    let mut losers = Vec::new();
    while let Some(r) = set.join_next().await {
        let (i, r) = r.unwrap();
        match (i, r) {
            (i, Ok(CasOutcome::Written)) if i < 32 => winners.push(i),
            (i, Ok(CasOutcome::Conflict(now))) if i < 32 => losers.push(now),
            (40, Err(SessionError::TooLarge(_))) => {}
            (i, Ok(CasOutcome::Written)) if i >= 32 && i != 40 => {}
            (i, r) => panic!("set {i}: {r:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one racing set wins: {winners:?}");
    let stored = h.read(&one).await.unwrap();
    assert_eq!(stored, format!("{{\"v\":{}}}", winners[0] + 1));
    assert_eq!(losers.len(), 31);
    assert!(losers.iter().all(|l| *l == stored), "{losers:?}");
    for i in 32..64usize {
        let got = h.read(&sid("own", i)).await.unwrap();
        if i == 40 {
            assert_eq!(got, "", "the refused set wrote nothing");
        } else {
            assert_eq!(got, format!("{{\"i\":{i}}}"));
        }
    }
}

both!(concurrent_reads_each_get_their_own_row, read_batches);
/// Many concurrent reads (on MySQL answered together by one statement per batch): each gets its
/// own row, by its exact id, and only while that row is alive: live rows, ids read twice in one
/// batch, expired rows, tombstones and ids never written each read as on their own.
async fn read_batches(db: Db) {
    let t = Table::new(db);
    let (c, clock) = clock();
    let h = Arc::new(t.handler(1.0, clock));
    let none = WriteMeta::default();
    // Expired by the time of the reads: written 61 s before them, with a 60 s lifetime.
    for i in 0..32usize {
        h.write(&sid("old", i), "{\"old\":1}", &none).await.unwrap();
    }
    c.advance(61_000);
    for i in 0..96usize {
        h.write(
            &sid("live", i),
            &format!("{{\"i\":{i},\"s\":\"Zoë\"}}"),
            &none,
        )
        .await
        .unwrap();
    }
    for i in 0..16usize {
        h.destroy(&sid("live", i)).await.unwrap();
    }
    let want = |tag: &str, i: usize| match tag {
        "live" if i >= 16 => format!("{{\"i\":{i},\"s\":\"Zoë\"}}"),
        _ => String::new(),
    };
    let mut set = tokio::task::JoinSet::new();
    for round in 0..2 {
        for (tag, n) in [("live", 96usize), ("old", 32), ("never", 32)] {
            for i in 0..n {
                let h = Arc::clone(&h);
                set.spawn(async move { (tag, i, round, h.read(&sid(tag, i)).await) });
            }
        }
    }
    let mut answered = 0;
    while let Some(r) = set.join_next().await {
        let (tag, i, round, got) = r.unwrap();
        assert_eq!(
            got.unwrap(),
            want(tag, i),
            "read of {tag} {i} (round {round})"
        );
        answered += 1;
    }
    assert_eq!(answered, 320);
}
