//! The sqlite driver: the shared conformance suite, plus what only a SQL table can get wrong
//! (schema adoption, metadata, locks from other connections, bad files).
#![cfg(feature = "sqlite")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::Fixture;
use ostro_session_core::clock::{ManualClock, SharedClock};
use ostro_session_core::handlers::sqlite::{DEFAULT_BUSY_TIMEOUT_MS, DEFAULT_TABLE, MEMORY};
use ostro_session_core::{SessionError, SessionHandler, SqliteSessionHandler, WriteMeta};
use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A file database in a temp dir: the suite checks that two handlers share one storage.
fn sqlite_fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let db = path_str(&db_in(&dir));
    Fixture::clocked(move |minutes, clock| {
        Arc::new(
            SqliteSessionHandler::new(db.clone(), DEFAULT_TABLE, minutes, 5000, Some(clock))
                .unwrap(),
        ) as Arc<dyn SessionHandler>
    })
    .keeping(dir)
}

handler_conformance!(conformance, crate::sqlite_fixture());

/// A fixed start time (ms) for the manual clock: 2023-11-14T22:13:20Z.
const T0: i64 = 1_700_000_000_000;

fn clock() -> (ManualClock, Option<SharedClock>) {
    let c = ManualClock::new(T0);
    (c.clone(), Some(Arc::new(c) as SharedClock))
}

fn sid(n: usize) -> String {
    format!("{n:0>40}")
}

fn db_in(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("sessions.sqlite")
}

fn path_str(p: &Path) -> String {
    p.to_str().unwrap().to_owned()
}

/// The DDL OstroJS's `session:table` migration produces on sqlite (no `user_id`).
const MIGRATION_DDL: &str = "CREATE TABLE sessions (\
    sid varchar(255) NOT NULL, ip_address varchar(45) NULL, user_agent text NULL, \
    payload text NULL, last_activity integer NULL, PRIMARY KEY (sid)); \
    CREATE INDEX sessions_last_activity_index ON sessions (last_activity);";

fn columns(conn: &Connection, table: &str) -> Vec<String> {
    let mut st = conn
        .prepare("SELECT name FROM pragma_table_info(?1)")
        .unwrap();
    st.query_map([table], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

#[tokio::test]
async fn adopts_a_migration_table_without_user_id() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_in(&dir);
    {
        let c = Connection::open(&db).unwrap();
        c.execute_batch(MIGRATION_DDL).unwrap();
        c.execute(
            "INSERT INTO sessions (sid, payload, last_activity) VALUES (?1, '{\"a\":1}', ?2)",
            rusqlite::params![sid(1), T0 / 1000 - 10],
        )
        .unwrap();
        assert!(!columns(&c, "sessions").contains(&"user_id".to_owned()));
    }
    let (_, clk) = clock();
    let h = SqliteSessionHandler::new(path_str(&db), "sessions", 1.0, 1000, clk).unwrap();
    assert_eq!(h.read(&sid(1)).await.unwrap(), "{\"a\":1}");
    h.write(
        &sid(2),
        "{}",
        &WriteMeta {
            user_id: Some("42".into()),
            ..WriteMeta::default()
        },
    )
    .await
    .unwrap();
    h.close().await.unwrap();

    let c = Connection::open(&db).unwrap();
    let cols = columns(&c, "sessions");
    assert!(cols.contains(&"user_id".to_owned()), "{cols:?}");
    let uid: String = c
        .query_row(
            "SELECT user_id FROM sessions WHERE sid = ?1",
            [sid(2)],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(uid, "42");
    // The migration's index is reused, not duplicated.
    let indexes: i64 = c
        .query_row(
            "SELECT count(*) FROM pragma_index_list('sessions') AS il \
             WHERE (SELECT name FROM pragma_index_info(il.name) WHERE seqno = 0) = 'last_activity'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(indexes, 1);
}

#[tokio::test]
async fn creates_the_table_with_the_migration_columns_and_an_index_used_by_gc() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_in(&dir);
    let h = SqliteSessionHandler::new(path_str(&db), "app_sessions", 1.0, 1000, None).unwrap();
    h.open().await.unwrap();
    let c = Connection::open(&db).unwrap();
    let mut cols = columns(&c, "app_sessions");
    cols.sort();
    assert_eq!(
        cols,
        [
            "ip_address",
            "last_activity",
            "payload",
            "sid",
            "user_agent",
            "user_id"
        ]
    );
    let mode: String = c
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    // The gc statement's shape: it must search the index, never scan the table.
    let plan: Vec<String> = {
        let mut st = c
            .prepare("EXPLAIN QUERY PLAN DELETE FROM \"app_sessions\" WHERE last_activity < ?1")
            .unwrap();
        st.query_map([0], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    };
    assert!(
        plan.iter()
            .any(|p| p.contains("USING") && p.contains("INDEX")),
        "{plan:?}"
    );
}

#[tokio::test]
async fn stamps_null_last_activity_with_now_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_in(&dir);
    {
        let c = Connection::open(&db).unwrap();
        c.execute_batch(MIGRATION_DDL).unwrap();
        // What 1.x's database driver left: sid and payload only.
        c.execute(
            "INSERT INTO sessions (sid, payload) VALUES (?1, '{\"old\":true}')",
            [sid(7)],
        )
        .unwrap();
    }
    let (clk, shared) = clock();
    let h = SqliteSessionHandler::new(path_str(&db), "sessions", 1.0, 1000, shared).unwrap();
    h.open().await.unwrap();
    let stamped: Option<i64> = Connection::open(&db)
        .unwrap()
        .query_row(
            "SELECT last_activity FROM sessions WHERE sid = ?1",
            [sid(7)],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(stamped, Some(T0 / 1000));
    // One more lifetime, not forever and not zero.
    clk.advance(60_000);
    assert_eq!(h.read(&sid(7)).await.unwrap(), "{\"old\":true}");
    clk.advance(1000);
    assert_eq!(h.read(&sid(7)).await.unwrap(), "");
    assert_eq!(h.gc(60).await.unwrap(), 1);
}

#[test]
fn refuses_table_names_that_are_not_plain_identifiers() {
    for bad in [
        "sessions; DROP TABLE users",
        "sessions\"--",
        "x' OR '1'='1",
        "main.sessions",
        "",
        "9lives",
        "sqlite_master",
    ] {
        match SqliteSessionHandler::new(MEMORY, bad, 1.0, DEFAULT_BUSY_TIMEOUT_MS, None) {
            Err(SessionError::InvalidOption(m)) => assert!(m.contains("table"), "{m}"),
            Err(e) => panic!("{bad}: wrong error {e:?}"),
            Ok(_) => panic!("{bad}: accepted"),
        }
    }
    assert!(SqliteSessionHandler::new(MEMORY, "order", 1.0, 10, None).is_ok());
}

#[test]
fn refuses_bad_options() {
    let bad = |r: Result<SqliteSessionHandler, SessionError>| {
        assert!(matches!(r, Err(SessionError::InvalidOption(_))));
    };
    bad(SqliteSessionHandler::new("", DEFAULT_TABLE, 1.0, 10, None));
    bad(SqliteSessionHandler::new(
        "a\0b",
        DEFAULT_TABLE,
        1.0,
        10,
        None,
    ));
    bad(SqliteSessionHandler::new(
        MEMORY,
        DEFAULT_TABLE,
        0.0,
        10,
        None,
    ));
    bad(SqliteSessionHandler::new(
        MEMORY,
        DEFAULT_TABLE,
        f64::NAN,
        10,
        None,
    ));
    bad(SqliteSessionHandler::new(
        MEMORY,
        DEFAULT_TABLE,
        1.0,
        u64::MAX,
        None,
    ));
}

#[tokio::test]
async fn a_table_named_after_a_keyword_works() {
    let h = SqliteSessionHandler::new(MEMORY, "order", 1.0, 10, None).unwrap();
    h.write(&sid(1), "x", &WriteMeta::default()).await.unwrap();
    assert_eq!(h.read(&sid(1)).await.unwrap(), "x");
}

fn meta_row(db: &Path, id: &str) -> (Option<String>, Option<String>, Option<String>) {
    Connection::open(db)
        .unwrap()
        .query_row(
            "SELECT ip_address, user_agent, user_id FROM sessions WHERE sid = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap()
}

#[tokio::test]
async fn stores_request_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_in(&dir);
    let h = SqliteSessionHandler::new(path_str(&db), "sessions", 1.0, 1000, None).unwrap();
    let meta = WriteMeta {
        ip: Some("2001:db8::1".into()),
        user_agent: Some("Mozilla/5.0 (X11) ✓".into()),
        user_id: Some("17".into()),
    };
    h.write(&sid(1), "{\"a\":1}", &meta).await.unwrap();
    assert_eq!(
        meta_row(&db, &sid(1)),
        (
            Some("2001:db8::1".into()),
            Some("Mozilla/5.0 (X11) ✓".into()),
            Some("17".into())
        )
    );
    // A write with no metadata at all (no request in sight) keeps every column.
    h.write(&sid(1), "{\"a\":2}", &WriteMeta::default())
        .await
        .unwrap();
    assert_eq!(
        meta_row(&db, &sid(1)),
        (
            Some("2001:db8::1".into()),
            Some("Mozilla/5.0 (X11) ✓".into()),
            Some("17".into())
        )
    );
    // A request without a user (after logout) clears user_id; a missing agent keeps the old one.
    let anonymous = WriteMeta {
        ip: Some("192.0.2.1".into()),
        ..WriteMeta::default()
    };
    h.write(&sid(1), "{\"a\":2}", &anonymous).await.unwrap();
    assert_eq!(
        meta_row(&db, &sid(1)),
        (
            Some("192.0.2.1".into()),
            Some("Mozilla/5.0 (X11) ✓".into()),
            None
        )
    );
    assert_eq!(h.read(&sid(1)).await.unwrap(), "{\"a\":2}");
    // A client-controlled header cannot bloat rows: 500 characters kept, like Laravel.
    let long = WriteMeta {
        ip: Some("1".repeat(60)),
        user_agent: Some("é".repeat(2000)),
        user_id: None,
    };
    h.write(&sid(2), "{}", &long).await.unwrap();
    let (ip, ua, _) = meta_row(&db, &sid(2));
    assert_eq!(ip.unwrap().chars().count(), 45);
    assert_eq!(ua.unwrap().chars().count(), 500);
}

#[tokio::test]
async fn payload_is_raw_json_text() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_in(&dir);
    let h = SqliteSessionHandler::new(path_str(&db), "sessions", 1.0, 1000, None).unwrap();
    let payload = "{\"_token\":\"abc\",\"name\":\"Zoë 🎉\"}";
    h.write(&sid(3), payload, &WriteMeta::default())
        .await
        .unwrap();
    let (ty, text): (String, String) = Connection::open(&db)
        .unwrap()
        .query_row(
            "SELECT typeof(payload), payload FROM sessions WHERE sid = ?1",
            [sid(3)],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((ty.as_str(), text.as_str()), ("text", payload));
}

#[tokio::test]
async fn a_file_that_is_not_a_database_fails_clearly_at_the_first_operation() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("secret-name.sqlite");
    std::fs::write(&db, "this is not a database, just some text. ".repeat(200)).unwrap();
    // Construction never touches the file.
    let h = SqliteSessionHandler::new(path_str(&db), "sessions", 1.0, 100, None).unwrap();
    for _ in 0..2 {
        match h.read(&sid(1)).await {
            Err(SessionError::Io(m)) => {
                assert!(m.contains("not a SQLite database"), "{m}");
                assert!(!m.contains("secret-name"), "path leaked: {m}");
            }
            other => panic!("expected Io, got {other:?}"),
        }
    }
    // The file was left alone.
    assert!(std::fs::read_to_string(&db)
        .unwrap()
        .starts_with("this is not"));
}

#[tokio::test]
async fn an_unopenable_path_fails_at_the_first_operation_naming_the_missing_directory() {
    // Issue 10 changed this test: the message used to hide the path behind "(the database
    // path)", which left the user guessing; it now names the directory to create.
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing-dir");
    let db = missing.join("db.sqlite");
    let h = SqliteSessionHandler::new(path_str(&db), "sessions", 1.0, 100, None).unwrap();
    match h
        .write(&sid(1), "{}", &WriteMeta::default())
        .await
        .unwrap_err()
    {
        SessionError::Io(m) => {
            assert!(m.contains(&missing.display().to_string()), "{m}");
            assert!(m.contains("does not exist"), "{m}");
        }
        e => panic!("{e:?}"),
    }
    // Once the directory exists, the same handler works: a failed open is retried.
    std::fs::create_dir(dir.path().join("missing-dir")).unwrap();
    h.write(&sid(1), "{}", &WriteMeta::default()).await.unwrap();
    assert_eq!(h.read(&sid(1)).await.unwrap(), "{}");
}

#[tokio::test]
async fn adopting_a_table_that_is_not_a_session_table_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_in(&dir);
    Connection::open(&db)
        .unwrap()
        .execute_batch(
            "CREATE TABLE sessions (id TEXT PRIMARY KEY, data TEXT); \
             CREATE TABLE nokey (sid TEXT, payload TEXT, last_activity INTEGER);",
        )
        .unwrap();
    let h = SqliteSessionHandler::new(path_str(&db), "sessions", 1.0, 100, None).unwrap();
    match h.open().await {
        Err(SessionError::Io(m)) => assert!(m.contains("no sid column"), "{m}"),
        other => panic!("{other:?}"),
    }
    let h = SqliteSessionHandler::new(path_str(&db), "nokey", 1.0, 100, None).unwrap();
    match h.open().await {
        Err(SessionError::Io(m)) => assert!(m.contains("PRIMARY KEY"), "{m}"),
        other => panic!("{other:?}"),
    }
}

fn assert_busy(r: Result<(), SessionError>, started: Instant, timeout_ms: u64) {
    let waited = started.elapsed();
    match r {
        Err(SessionError::Busy(m)) => assert!(m.starts_with("database is locked"), "{m}"),
        other => panic!("expected Busy, got {other:?}"),
    }
    // It waited for the lock (the busy timeout) and then gave up, rather than hanging.
    assert!(
        waited >= Duration::from_millis(timeout_ms * 8 / 10),
        "{waited:?}"
    );
    assert!(waited < Duration::from_secs(5), "{waited:?}");
}

#[tokio::test]
async fn an_exclusive_lock_gives_busy_after_the_timeout_then_success_after_release() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_in(&dir);
    let h = SqliteSessionHandler::new(path_str(&db), "sessions", 1.0, 150, None).unwrap();
    h.write(&sid(1), "before", &WriteMeta::default())
        .await
        .unwrap();

    let other = Connection::open(&db).unwrap();
    other
        .execute_batch("BEGIN EXCLUSIVE; DELETE FROM sessions WHERE sid = 'none';")
        .unwrap();
    let t = Instant::now();
    assert_busy(
        h.write(&sid(1), "during", &WriteMeta::default()).await,
        t,
        150,
    );
    let t = Instant::now();
    assert_busy(h.destroy(&sid(1)).await, t, 150);
    // WAL: readers are not blocked by a writer, and see the last committed payload.
    assert_eq!(h.read(&sid(1)).await.unwrap(), "before");

    other.execute_batch("COMMIT").unwrap();
    h.write(&sid(1), "after", &WriteMeta::default())
        .await
        .unwrap();
    assert_eq!(h.read(&sid(1)).await.unwrap(), "after");
}

#[tokio::test]
async fn a_lock_held_at_open_gives_busy_then_the_open_is_retried() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_in(&dir);
    let other = Connection::open(&db).unwrap();
    other
        .execute_batch("PRAGMA journal_mode=WAL; BEGIN EXCLUSIVE; CREATE TABLE t (x);")
        .unwrap();
    let h = SqliteSessionHandler::new(path_str(&db), "sessions", 1.0, 100, None).unwrap();
    let t = Instant::now();
    assert_busy(h.read(&sid(1)).await.map(|_| ()), t, 100);
    other.execute_batch("COMMIT").unwrap();
    assert_eq!(h.read(&sid(1)).await.unwrap(), "");
    h.write(&sid(1), "ok", &WriteMeta::default()).await.unwrap();
    assert_eq!(h.read(&sid(1)).await.unwrap(), "ok");
}

#[tokio::test]
async fn two_handlers_on_one_file_write_concurrently_and_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = path_str(&db_in(&dir));
    let a = SqliteSessionHandler::new(db.clone(), "sessions", 1.0, 5000, None).unwrap();
    let b = SqliteSessionHandler::new(db, "sessions", 1.0, 5000, None).unwrap();
    let write_all = |h: SqliteSessionHandler, from: usize| {
        tokio::spawn(async move {
            let writes = (from..from + 500).map(|n| {
                let h = h.clone();
                async move {
                    h.write(&sid(n), &format!("p{n}"), &WriteMeta::default())
                        .await
                }
            });
            for r in futures_join_all(writes).await {
                r.unwrap();
            }
        })
    };
    let (ra, rb) = tokio::join!(write_all(a.clone(), 0), write_all(b, 500));
    ra.unwrap();
    rb.unwrap();
    for n in 0..1000 {
        assert_eq!(a.read(&sid(n)).await.unwrap(), format!("p{n}"));
    }
}

/// Runs futures concurrently (the crate has no `futures` dependency).
async fn futures_join_all<F: std::future::Future + Send + 'static>(
    fs: impl Iterator<Item = F>,
) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = fs.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

fn wal_exists(db: &Path) -> bool {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    Path::new(&wal).exists()
}

#[tokio::test]
async fn close_ends_the_connection_and_a_later_operation_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_in(&dir);
    let h = SqliteSessionHandler::new(path_str(&db), "sessions", 1.0, 1000, None).unwrap();
    h.write(&sid(1), "x", &WriteMeta::default()).await.unwrap();
    assert!(wal_exists(&db));
    h.close().await.unwrap();
    // The last connection to close checkpoints and removes the WAL file.
    assert!(!wal_exists(&db));
    h.close().await.unwrap();
    assert_eq!(h.read(&sid(1)).await.unwrap(), "x");
}

#[tokio::test]
async fn dropping_the_handler_ends_its_thread_and_connection() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_in(&dir);
    let h = SqliteSessionHandler::new(path_str(&db), "sessions", 1.0, 1000, None).unwrap();
    h.write(&sid(1), "x", &WriteMeta::default()).await.unwrap();
    assert!(wal_exists(&db));
    drop(h);
    // The thread notices the closed channel, drops the connection, and SQLite removes the WAL.
    let deadline = Instant::now() + Duration::from_secs(5);
    while wal_exists(&db) {
        assert!(
            Instant::now() < deadline,
            "the sqlite thread outlived its handler"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn expired_rows_are_no_record_for_touch_and_gc_counts_strictly() {
    let (clk, shared) = clock();
    let h = SqliteSessionHandler::new(MEMORY, "sessions", 2.0, 100, shared).unwrap();
    h.write(&sid(1), "a", &WriteMeta::default()).await.unwrap();
    clk.advance(30_000);
    h.write(&sid(2), "b", &WriteMeta::default()).await.unwrap();
    clk.advance(91_000); // sid 1 idle 121 s, sid 2 idle 91 s
    assert!(!h.touch(&sid(1)).await.unwrap());
    assert!(h.touch(&sid(2)).await.unwrap());
    assert_eq!(h.read(&sid(1)).await.unwrap(), "");
    // Idle exactly 121 s is not strictly more than 121.
    assert_eq!(h.gc(121).await.unwrap(), 0);
    assert_eq!(h.gc(120).await.unwrap(), 1);
    assert_eq!(h.gc(0).await.unwrap(), 0);
    clk.advance(1000);
    assert_eq!(h.gc(0).await.unwrap(), 1);
}

#[tokio::test]
async fn fractional_lifetimes_round_down_to_whole_seconds_of_idleness() {
    let (clk, shared) = clock();
    // 1.5 s: an integer second count of idleness is readable up to 1 s.
    let h = SqliteSessionHandler::new(MEMORY, "sessions", 0.025, 100, shared).unwrap();
    h.write(&sid(1), "a", &WriteMeta::default()).await.unwrap();
    clk.advance(1000);
    assert_eq!(h.read(&sid(1)).await.unwrap(), "a");
    clk.advance(1000);
    assert_eq!(h.read(&sid(1)).await.unwrap(), "");
}

#[tokio::test]
async fn ids_are_checked_before_reaching_sql() {
    let h = SqliteSessionHandler::new(MEMORY, "sessions", 1.0, 100, None).unwrap();
    for bad in ["' OR 1=1 --", "", "short"] {
        assert!(matches!(h.read(bad).await, Err(SessionError::InvalidId(_))));
    }
}

#[tokio::test]
async fn invalid_utf8_in_a_stored_payload_is_decoded_lossily_keeping_the_session() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.sqlite");
    let h = SqliteSessionHandler::new(path_str(&db), "sessions", 120.0, 1000, None).unwrap();
    h.write(&sid(1), "{}", &WriteMeta::default()).await.unwrap();
    let mut bytes = b"{\"_token\":\"t\",\"user\":\"alice\",\"note\":\"caf".to_vec();
    bytes.extend_from_slice(&[0xC3, 0x28, 0xFF]);
    bytes.extend_from_slice(b"\"}");
    let c = Connection::open(&db).unwrap();
    c.execute(
        "UPDATE sessions SET payload = CAST(?1 AS TEXT) WHERE sid = ?2",
        rusqlite::params![bytes, sid(1)],
    )
    .unwrap();
    let mut s = ostro_session_core::Session::new(
        "s",
        Some(&sid(1)),
        ostro_session_core::SessionOptions::default(),
    )
    .unwrap();
    s.start(&h).await.unwrap();
    assert!(s.record_exists(), "kept: no new id");
    assert_eq!(s.get("user"), Some(&serde_json::json!("alice")));
    assert_eq!(
        s.get("note"),
        Some(&serde_json::json!("caf\u{FFFD}(\u{FFFD}"))
    );
}

#[tokio::test]
async fn an_operation_past_its_deadline_fails_with_timeout_and_the_handler_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.sqlite");
    // A long busy timeout: without the deadline the write below would wait 60 s for the lock.
    let h = SqliteSessionHandler::new(path_str(&db), "sessions", 120.0, 60_000, None)
        .unwrap()
        .with_timeout_ms(50)
        .unwrap();
    h.write(&sid(1), "{}", &WriteMeta::default()).await.unwrap();
    let other = Connection::open(&db).unwrap();
    other.execute_batch("BEGIN EXCLUSIVE").unwrap();
    match h.write(&sid(1), "{\"a\":1}", &WriteMeta::default()).await {
        Err(SessionError::Timeout(m)) => assert!(m.contains("within 50 ms"), "{m}"),
        other => panic!("{other:?}"),
    }
    other.execute_batch("COMMIT").unwrap();
    // The stuck write finishes once the lock is gone; later operations work again.
    let mut r = h.read(&sid(1)).await;
    for _ in 0..1000 {
        if !matches!(r, Err(SessionError::Timeout(_))) {
            break;
        }
        r = h.read(&sid(1)).await;
    }
    assert_eq!(r.unwrap(), "{\"a\":1}");
    assert!(matches!(
        SqliteSessionHandler::new(MEMORY, "sessions", 1.0, 10, None)
            .unwrap()
            .with_timeout_ms(0),
        Err(SessionError::InvalidOption(_))
    ));
}
