//! The tombstone time (`tombstone_seconds`, the drivers' `tombstone_secs`): a logout's tombstone
//! refuses late saves for that shorter time instead of the lifetime, and is gone after it.
//!
//! On every driver that keeps tombstones: array, file, sqlite, PostgreSQL and MySQL/MariaDB on a
//! manual clock (exactly at the tombstone time and one second past it), redis and memcached on
//! servers started for the test (their own clock: a 2 s tombstone, polled). The shared database
//! servers are the ones `tests/database.rs` uses (`OSTRO_TEST_POSTGRES_URL`,
//! `OSTRO_TEST_MYSQL_URL`); a server that is not there fails the test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use ostro_session_core::clock::{ManualClock, SharedClock};
use ostro_session_core::handler::{tombstone_backdate_ms, tombstone_ms};
use ostro_session_core::handlers::file::FileOptions;
use ostro_session_core::{
    ArraySessionHandler, FileSessionHandler, SaveOutcome, Session, SessionError, SessionHandler,
    SessionOptions, SqliteSessionHandler, WriteMeta,
};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

const T0: i64 = 1_700_000_000_000;
const MIN: i64 = 60_000;
/// The lifetime of the clocked cases, in minutes, and their tombstone time, in seconds.
const LIFETIME: f64 = 10.0;
const TOMB: u64 = 60;

type Handler = Arc<dyn SessionHandler>;

fn is_invalid<T>(r: Result<T, SessionError>) -> bool {
    matches!(r, Err(SessionError::InvalidOption(m)) if m.contains("tombstoneSeconds"))
}

#[test]
fn the_rule_whole_seconds_from_one_to_the_lifetime() {
    // 10 minutes.
    let life = 600_000;
    assert_eq!(
        tombstone_ms(life, None).unwrap(),
        life,
        "default: the lifetime"
    );
    assert_eq!(tombstone_ms(life, Some(1)).unwrap(), 1000);
    assert_eq!(
        tombstone_ms(life, Some(600)).unwrap(),
        life,
        "the lifetime itself"
    );
    assert_eq!(tombstone_backdate_ms(life, None).unwrap(), 0);
    assert_eq!(tombstone_backdate_ms(life, Some(60)).unwrap(), 540_000);
    for bad in [0, 601, u64::MAX] {
        let e = tombstone_ms(life, Some(bad)).unwrap_err();
        let m = e.to_string();
        assert!(matches!(e, SessionError::InvalidOption(_)), "{bad}: {m}");
        assert!(
            m.contains("tombstoneSeconds") && m.contains("(600 s)") && m.contains(&bad.to_string()),
            "{m}"
        );
    }
    // A lifetime that is not a whole number of seconds is shown as it is.
    let m = tombstone_ms(1500, Some(2)).unwrap_err().to_string();
    assert!(m.contains("(1.5 s)"), "{m}");
}

#[tokio::test]
async fn every_constructor_refuses_a_bad_tombstone_time() {
    let dir = tempfile::tempdir().unwrap();
    for bad in [Some(0), Some(601)] {
        assert!(is_invalid(
            ArraySessionHandler::new(LIFETIME, None).and_then(|h| h.with_tombstone_secs(bad))
        ));
        assert!(is_invalid(FileSessionHandler::with_options(
            dir.path().join("s"),
            LIFETIME,
            None,
            FileOptions {
                tombstone_secs: bad,
                ..FileOptions::default()
            },
        )));
        assert!(is_invalid(
            SqliteSessionHandler::new(
                dir.path().join("s.db").to_str().unwrap(),
                "sessions",
                LIFETIME,
                5000,
                None
            )
            .and_then(|h| h.with_tombstone_secs(bad))
        ));
        use ostro_session_core::handlers::database::DatabaseOptions;
        use ostro_session_core::handlers::memcached::MemcachedOptions;
        use ostro_session_core::handlers::redis::{RedisConnection, RedisOptions};
        assert!(is_invalid(ostro_session_core::DatabaseSessionHandler::new(
            "postgres://u@127.0.0.1:1/db",
            DatabaseOptions {
                minutes: LIFETIME,
                tombstone_secs: bad,
                ..DatabaseOptions::default()
            },
            None,
        )));
        assert!(is_invalid(ostro_session_core::RedisSessionHandler::new(
            &RedisConnection::Url("redis://127.0.0.1:1".into()),
            RedisOptions {
                minutes: LIFETIME,
                tombstone_secs: bad,
                ..RedisOptions::default()
            },
        )));
        assert!(is_invalid(
            ostro_session_core::MemcachedSessionHandler::new(
                &["127.0.0.1:1".to_owned()],
                MemcachedOptions {
                    minutes: LIFETIME,
                    tombstone_secs: bad,
                    ..MemcachedOptions::default()
                },
            )
        ));
    }
}

fn opts(clock: Option<&ManualClock>) -> SessionOptions {
    match clock {
        Some(c) => SessionOptions {
            clock: Arc::new(c.clone()),
            ..SessionOptions::default()
        },
        None => SessionOptions::default(),
    }
}

async fn open(h: &Handler, id: Option<&str>, o: &SessionOptions) -> Session {
    let mut s = Session::new("ostro_session", id, o.clone()).unwrap();
    s.start(h.as_ref()).await.unwrap();
    s
}

async fn save(s: &mut Session, h: &Handler) -> SaveOutcome {
    s.save(h.as_ref(), &WriteMeta::default()).await.unwrap()
}

/// A logged-in session, two requests that loaded it before the logout (one that changes it, one
/// that does not: a compare-and-set write and a touch), and the logout (`invalidate`), which
/// moves the client to a new id. Returns (old id, new id, the late requests).
async fn logout_with_late_requests(
    h: &Handler,
    o: &SessionOptions,
) -> (String, String, Vec<Session>) {
    let mut s = open(h, None, o).await;
    s.put("user", json!("ada")).unwrap();
    assert_eq!(save(&mut s, h).await, SaveOutcome::Written);
    let old = s.id().to_owned();
    let mut late = Vec::new();
    for _ in 0..4 {
        let r = open(h, Some(&old), o).await;
        assert!(r.record_exists());
        late.push(r);
    }
    late[0].put("cart", json!([1])).unwrap();
    late[2].put("cart", json!([2])).unwrap();
    let mut logout = open(h, Some(&old), o).await;
    logout.invalidate(h.as_ref()).await.unwrap();
    logout.put("flash", json!("bye")).unwrap();
    assert_eq!(save(&mut logout, h).await, SaveOutcome::Written);
    let new = logout.id().to_owned();
    assert_ne!(new, old);
    (old, new, late)
}

/// Inside the window: the tombstone is there and both late saves are dropped.
async fn inside_the_window(h: &Handler, old: &str, late: &mut [Session]) {
    assert!(
        h.is_tombstone(old).await.unwrap(),
        "the logout left a tombstone"
    );
    assert_eq!(
        save(&mut late[0], h).await,
        SaveOutcome::Dropped,
        "a late write"
    );
    assert_eq!(
        save(&mut late[1], h).await,
        SaveOutcome::Dropped,
        "a late touch"
    );
    assert_eq!(h.read(old).await.unwrap(), "", "nothing came back");
    assert!(h.is_tombstone(old).await.unwrap(), "the tombstone stays");
}

/// After the window: no tombstone, the old id loads as no session and a late save still cannot
/// bring it back; the logout's new session and a brand-new one are unaffected.
async fn after_the_window(
    h: &Handler,
    o: &SessionOptions,
    old: &str,
    new: &str,
    late: &mut [Session],
) {
    assert!(!h.is_tombstone(old).await.unwrap(), "the tombstone is gone");
    let again = open(h, Some(old), o).await;
    assert!(!again.record_exists(), "the old id loads as no session");
    assert_eq!(again.get("user"), None);
    assert_eq!(
        save(&mut late[2], h).await,
        SaveOutcome::Dropped,
        "a late write"
    );
    assert_eq!(
        save(&mut late[3], h).await,
        SaveOutcome::Dropped,
        "a late touch"
    );
    assert_eq!(h.read(old).await.unwrap(), "");
    let kept = open(h, Some(new), o).await;
    assert!(kept.record_exists(), "the new id's session lives on");
    assert_eq!(kept.get("flash"), Some(&json!("bye")));
    let mut fresh = open(h, None, o).await;
    fresh.put("user", json!("bob")).unwrap();
    assert_eq!(save(&mut fresh, h).await, SaveOutcome::Written);
    let fresh_id = fresh.id().to_owned();
    assert_ne!(fresh_id, old);
    assert_eq!(
        open(h, Some(&fresh_id), o).await.get("user"),
        Some(&json!("bob"))
    );
}

/// A driver that keeps a last-activity time, on a manual clock: the tombstone lives exactly
/// `TOMB` seconds, and gc removes it (and only it) one second later.
async fn clocked(h: Handler, clock: &ManualClock) {
    let o = opts(Some(clock));
    clock.advance(MIN);
    let (old, new, mut late) = logout_with_late_requests(&h, &o).await;
    clock.advance(i64::try_from(TOMB).unwrap() * 1000);
    inside_the_window(&h, &old, &mut late).await;
    let lifetime_secs = (LIFETIME * 60.0) as u64;
    assert_eq!(
        h.gc(lifetime_secs).await.unwrap(),
        0,
        "kept exactly at its time"
    );
    clock.advance(1000);
    assert_eq!(
        h.gc(lifetime_secs).await.unwrap(),
        1,
        "the tombstone, and only it, is collected"
    );
    after_the_window(&h, &o, &old, &new, &mut late).await;
}

fn manual() -> (ManualClock, SharedClock) {
    let c = ManualClock::new(T0);
    (c.clone(), Arc::new(c) as SharedClock)
}

#[tokio::test]
async fn array() {
    let (clock, shared) = manual();
    let h = ArraySessionHandler::new(LIFETIME, Some(shared))
        .unwrap()
        .with_tombstone_secs(Some(TOMB))
        .unwrap();
    clocked(Arc::new(h), &clock).await;
}

#[tokio::test]
async fn array_without_the_option_keeps_tombstones_for_the_lifetime() {
    let (clock, shared) = manual();
    let h: Handler = Arc::new(ArraySessionHandler::new(LIFETIME, Some(shared)).unwrap());
    let o = opts(Some(&clock));
    let (old, new, _) = logout_with_late_requests(&h, &o).await;
    clock.advance(5 * MIN);
    assert!(h.touch(&new).await.unwrap(), "the new session stays in use");
    clock.advance(5 * MIN);
    assert!(h.is_tombstone(&old).await.unwrap(), "alive at the lifetime");
    assert_eq!(h.gc(600).await.unwrap(), 0);
    clock.advance(1000);
    assert!(!h.is_tombstone(&old).await.unwrap());
    assert_eq!(h.gc(600).await.unwrap(), 1);
}

#[tokio::test]
async fn file() {
    let dir = tempfile::tempdir().unwrap();
    let (clock, shared) = manual();
    let h = FileSessionHandler::with_options(
        dir.path().join("s"),
        LIFETIME,
        Some(shared),
        FileOptions {
            tombstone_secs: Some(TOMB),
            ..FileOptions::default()
        },
    )
    .unwrap();
    clocked(Arc::new(h), &clock).await;
}

#[tokio::test]
async fn file_on_the_system_clock_stamps_the_tombstone_early() {
    // Without a test clock the OS stamps mtimes; a tombstone's is set explicitly.
    let dir = tempfile::tempdir().unwrap();
    let h: Handler = Arc::new(
        FileSessionHandler::with_options(
            dir.path().join("s"),
            LIFETIME,
            None,
            FileOptions {
                tombstone_secs: Some(TOMB),
                ..FileOptions::default()
            },
        )
        .unwrap(),
    );
    let o = opts(None);
    let (old, _, _) = logout_with_late_requests(&h, &o).await;
    let mtime = std::fs::metadata(dir.path().join("s").join(&old))
        .unwrap()
        .modified()
        .unwrap();
    let age = std::time::SystemTime::now().duration_since(mtime).unwrap();
    let early = Duration::from_secs((LIFETIME * 60.0) as u64 - TOMB);
    assert!(
        age >= early && age < early + Duration::from_secs(5),
        "{age:?}"
    );
    assert!(h.is_tombstone(&old).await.unwrap());
}

#[tokio::test]
async fn sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let (clock, shared) = manual();
    let h = SqliteSessionHandler::new(
        dir.path().join("s.db").to_str().unwrap(),
        "sessions",
        LIFETIME,
        5000,
        Some(shared),
    )
    .unwrap()
    .with_tombstone_secs(Some(TOMB))
    .unwrap();
    clocked(Arc::new(h), &clock).await;
}

#[cfg(any(feature = "postgres", feature = "mysql"))]
mod database {
    use super::*;
    use ostro_session_core::handlers::database::DatabaseOptions;
    use ostro_session_core::DatabaseSessionHandler;
    use std::process::Command;

    /// Drops the test's table when the test ends, also when it panics.
    struct Table {
        url: String,
        name: String,
    }

    impl Table {
        fn new(var: &str, default: &str) -> Self {
            let url = std::env::var(var).unwrap_or_else(|_| default.to_owned());
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos();
            Self {
                url,
                name: format!("ostro_tomb{}_{nanos}", std::process::id()),
            }
        }
    }

    impl Drop for Table {
        fn drop(&mut self) {
            let sql = format!("DROP TABLE IF EXISTS {}", self.name);
            let _ = if self.url.starts_with("postgres") {
                Command::new("psql")
                    .args([self.url.as_str(), "-X", "-q", "-c", &sql])
                    .output()
            } else {
                let rest = self.url.split_once("://").map_or("", |(_, r)| r);
                let (auth, db) = rest.split_once('/').unwrap_or((rest, "test"));
                let (user, hp) = auth.rsplit_once('@').unwrap_or(("root", auth));
                let (host, port) = hp.split_once(':').unwrap_or((hp, "3306"));
                Command::new("mariadb")
                    .args(["-h", host, "-P", port, "-u", user, "-D", db, "-e", &sql])
                    .output()
            };
        }
    }

    async fn run(var: &str, default: &str) {
        let table = Table::new(var, default);
        let (clock, shared) = manual();
        let h = DatabaseSessionHandler::new(
            &table.url,
            DatabaseOptions {
                table: table.name.clone(),
                minutes: LIFETIME,
                tombstone_secs: Some(TOMB),
                ..DatabaseOptions::default()
            },
            Some(shared),
        )
        .unwrap();
        clocked(Arc::new(h), &clock).await;
    }

    #[cfg(feature = "postgres")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        run(
            "OSTRO_TEST_POSTGRES_URL",
            "postgres://postgres@127.0.0.1:5432/test",
        )
        .await;
    }

    #[cfg(feature = "mysql")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn mysql() {
        run("OSTRO_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test").await;
    }
}

/// A server that expires keys itself: a 2 s tombstone under a 10 minute lifetime is there at
/// once, and gone within its time plus a second (never before 1 s: memcached's whole-second
/// clock), whatever the late touch did to its expiry.
async fn on_a_server(h: Handler) {
    let o = opts(None);
    let (old, new, mut late) = logout_with_late_requests(&h, &o).await;
    let t0 = Instant::now();
    inside_the_window(&h, &old, &mut late).await;
    let deadline = t0 + Duration::from_millis(3500);
    while h.is_tombstone(&old).await.unwrap() {
        assert!(
            Instant::now() < deadline,
            "the 2 s tombstone outlived 3.5 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        t0.elapsed() >= Duration::from_millis(900),
        "gone after {:?}",
        t0.elapsed()
    );
    after_the_window(&h, &o, &old, &new, &mut late).await;
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn redis() {
    use ostro_session_core::handlers::redis::{RedisConnection, RedisOptions};
    let server = support::servers::RedisServer::start();
    let h = ostro_session_core::RedisSessionHandler::new(
        &RedisConnection::Url(server.url()),
        RedisOptions {
            minutes: LIFETIME,
            tombstone_secs: Some(2),
            ..RedisOptions::default()
        },
    )
    .unwrap();
    assert_eq!(h.tombstone_ttl_seconds(), 2);
    on_a_server(Arc::new(h)).await;
}

#[cfg(feature = "memcached")]
#[tokio::test]
async fn memcached() {
    use ostro_session_core::handlers::memcached::MemcachedOptions;
    let server = support::servers::MemcachedServer::start();
    let h = ostro_session_core::MemcachedSessionHandler::new(
        &[server.addr()],
        MemcachedOptions {
            minutes: LIFETIME,
            tombstone_secs: Some(2),
            ..MemcachedOptions::default()
        },
    )
    .unwrap();
    on_a_server(Arc::new(h)).await;
}
