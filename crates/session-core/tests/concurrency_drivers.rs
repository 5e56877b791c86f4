//! Overlapping requests on one session, per driver (issue 12): compare-and-set with replay keeps
//! every concurrent change, and a logout sticks against writers that loaded before it. File and
//! sqlite run on temp files, redis and memcached on real servers started for the test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use ostro_session_core::handler::TOMBSTONE;
use ostro_session_core::session::SaveOutcome;
use ostro_session_core::{
    ArraySessionHandler, CasOutcome, Session, SessionHandler, SessionOptions, WriteMeta,
};
use serde_json::json;
use std::sync::Arc;
use tokio::task::JoinSet;

type Handler = Arc<dyn SessionHandler>;

/// A handler plus whatever must live as long as it (a temp dir, a server).
struct Fixture {
    handler: Handler,
    _keep: Box<dyn std::any::Any + Send>,
}

fn open(id: Option<&str>) -> Session {
    Session::new("ostro_session", id, SessionOptions::default()).unwrap()
}

const N: usize = 200;

async fn seeded(h: &Handler) -> String {
    let mut s = open(None);
    s.start(h.as_ref()).await.unwrap();
    s.put("visits", json!(0)).unwrap();
    s.save(h.as_ref(), &WriteMeta::default()).await.unwrap();
    s.id().to_owned()
}

async fn read_back(h: &Handler, id: &str) -> Session {
    let mut s = open(Some(id));
    s.start(h.as_ref()).await.unwrap();
    s
}

/// N requests at once, each putting its own key and incrementing one counter: all N keys and
/// exactly +N remain.
async fn concurrent_saves_keep_everything(h: Handler) {
    assert!(h.supports_cas());
    let id = seeded(&h).await;
    let mut set = JoinSet::new();
    for n in 0..N {
        let (h, id) = (Arc::clone(&h), id.clone());
        set.spawn(async move {
            let mut s = open(Some(&id));
            s.start(h.as_ref()).await.unwrap();
            // Let the other requests load too before this one changes and saves.
            tokio::task::yield_now().await;
            s.put(&format!("k{n}"), json!(n)).unwrap();
            s.increment("visits", 1.0).unwrap();
            s.save(h.as_ref(), &WriteMeta::default()).await
        });
    }
    while let Some(r) = set.join_next().await {
        assert_eq!(r.unwrap().unwrap(), SaveOutcome::Written);
    }
    let after = read_back(&h, &id).await;
    assert_eq!(after.get("visits"), Some(&json!(N)));
    for n in 0..N {
        assert_eq!(after.get(&format!("k{n}")), Some(&json!(n)), "key k{n}");
    }
}

/// A logout racing 50 writers that loaded before it: whatever the interleaving, the old id
/// never reads back non-empty, and every writer's save is dropped or landed before the logout.
async fn a_logout_sticks(h: Handler) {
    for _trial in 0..5 {
        let id = seeded(&h).await;
        let mut writers = Vec::new();
        for n in 0..50 {
            let mut s = open(Some(&id));
            s.start(h.as_ref()).await.unwrap();
            s.put(&format!("w{n}"), json!(n)).unwrap();
            writers.push(s);
        }
        let mut logout = open(Some(&id));
        logout.start(h.as_ref()).await.unwrap();
        let mut set = JoinSet::new();
        for (n, mut s) in writers.into_iter().enumerate() {
            let hw = Arc::clone(&h);
            set.spawn(async move { s.save(hw.as_ref(), &WriteMeta::default()).await.map(|_| n) });
            if n == 25 {
                let h = Arc::clone(&h);
                let mut l = std::mem::replace(&mut logout, open(None));
                set.spawn(async move {
                    l.invalidate(h.as_ref()).await.unwrap();
                    l.save(h.as_ref(), &WriteMeta::default())
                        .await
                        .map(|_| usize::MAX)
                });
            }
        }
        while let Some(r) = set.join_next().await {
            r.unwrap().unwrap();
        }
        assert_eq!(h.read(&id).await.unwrap(), "", "the old id stays gone");
        // A save that loaded nothing (a fresh session on the old id) is refused too.
        assert_eq!(
            h.write_if_unchanged(&id, r#"{"_token":"x"}"#, "", &WriteMeta::default())
                .await
                .unwrap(),
            CasOutcome::Conflict(String::new())
        );
        // A touch never revives it.
        assert!(!h.touch(&id).await.unwrap());
        assert_eq!(h.read(&id).await.unwrap(), "");
    }
}

/// The compare-and-set contract itself.
async fn cas_semantics(h: Handler) {
    let id = "c".repeat(40);
    let m = WriteMeta::default();
    let w = |s: &str| format!(r#"{{"v":"{s}"}}"#);
    // '' means "no record".
    assert_eq!(
        h.write_if_unchanged(&id, &w("a"), &w("zz"), &m)
            .await
            .unwrap(),
        CasOutcome::Conflict(String::new())
    );
    assert_eq!(
        h.write_if_unchanged(&id, &w("a"), "", &m).await.unwrap(),
        CasOutcome::Written
    );
    assert_eq!(h.read(&id).await.unwrap(), w("a"));
    // Refused when changed, with what is there now; nothing written.
    assert_eq!(
        h.write_if_unchanged(&id, &w("b"), "", &m).await.unwrap(),
        CasOutcome::Conflict(w("a"))
    );
    assert_eq!(
        h.write_if_unchanged(&id, &w("b"), &w("x"), &m)
            .await
            .unwrap(),
        CasOutcome::Conflict(w("a"))
    );
    assert_eq!(h.read(&id).await.unwrap(), w("a"));
    // Written when unchanged.
    assert_eq!(
        h.write_if_unchanged(&id, &w("b"), &w("a"), &m)
            .await
            .unwrap(),
        CasOutcome::Written
    );
    assert_eq!(h.read(&id).await.unwrap(), w("b"));
    // A destroy leaves a tombstone: no session, no match, no touch.
    h.destroy(&id).await.unwrap();
    assert_eq!(h.read(&id).await.unwrap(), "");
    assert!(!h.touch(&id).await.unwrap());
    for prev in ["", &w("b") as &str, TOMBSTONE] {
        assert_eq!(
            h.write_if_unchanged(&id, &w("c"), prev, &m).await.unwrap(),
            CasOutcome::Conflict(String::new()),
            "previous {prev:?}"
        );
    }
    assert_eq!(h.read(&id).await.unwrap(), "");
    // Destroying an unknown id leaves nothing that blocks a new session there.
    let fresh = "d".repeat(40);
    h.destroy(&fresh).await.unwrap();
    assert_eq!(
        h.write_if_unchanged(&fresh, &w("n"), "", &m).await.unwrap(),
        CasOutcome::Written
    );
    // A plain write still writes (last writer wins), over a tombstone too.
    h.write(&id, &w("p"), &m).await.unwrap();
    assert_eq!(h.read(&id).await.unwrap(), w("p"));
}

fn array() -> Fixture {
    Fixture {
        handler: Arc::new(ArraySessionHandler::new(120.0, None).unwrap()),
        _keep: Box::new(()),
    }
}

fn file() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let h = ostro_session_core::FileSessionHandler::new(dir.path().join("s"), 120.0, None).unwrap();
    Fixture {
        handler: Arc::new(h),
        _keep: Box::new(dir),
    }
}

fn sqlite() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let h = ostro_session_core::SqliteSessionHandler::new(
        path.to_str().unwrap(),
        "sessions",
        120.0,
        5000,
        None,
    )
    .unwrap();
    Fixture {
        handler: Arc::new(h),
        _keep: Box::new(dir),
    }
}

fn redis() -> Fixture {
    use ostro_session_core::handlers::redis::{RedisConnection, RedisOptions};
    let server = support::servers::RedisServer::start();
    let h = ostro_session_core::RedisSessionHandler::new(
        &RedisConnection::Url(server.url()),
        RedisOptions::default(),
    )
    .unwrap();
    Fixture {
        handler: Arc::new(h),
        _keep: Box::new(server),
    }
}

fn memcached() -> Fixture {
    use ostro_session_core::handlers::memcached::MemcachedOptions;
    let server = support::servers::MemcachedServer::start();
    let h = ostro_session_core::MemcachedSessionHandler::new(
        &[server.addr()],
        MemcachedOptions::default(),
    )
    .unwrap();
    Fixture {
        handler: Arc::new(h),
        _keep: Box::new(server),
    }
}

/// The machine's PostgreSQL / MariaDB server (`OSTRO_TEST_POSTGRES_URL` / `OSTRO_TEST_MYSQL_URL`
/// override them), in a table of this test's own, dropped with the fixture. A server that is not
/// running fails the test, naming it.
#[cfg(any(feature = "postgres", feature = "mysql"))]
fn database(postgres: bool) -> Fixture {
    use ostro_session_core::handlers::database::DatabaseOptions;
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let url = if postgres {
        std::env::var("OSTRO_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
    } else {
        std::env::var("OSTRO_TEST_MYSQL_URL")
            .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into())
    };
    let table = format!(
        "ostro_cas{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let hp = url.split_once("://").unwrap().1.split('/').next().unwrap();
    let hp = hp.rsplit_once('@').map_or(hp, |(_, h)| h).to_owned();
    if let Err(e) = std::net::TcpStream::connect(&hp) {
        panic!("the database server at {hp} is not reachable ({e}): these tests need it running");
    }
    struct Drop_(bool, String, String);
    impl Drop for Drop_ {
        fn drop(&mut self) {
            let sql = format!("DROP TABLE IF EXISTS {}", self.2);
            let _ = if self.0 {
                std::process::Command::new("psql")
                    .args([self.1.as_str(), "-X", "-q", "-c", &sql])
                    .output()
            } else {
                let rest = self.1.split_once("://").unwrap().1;
                let (auth, db) = rest.split_once('/').unwrap();
                let (user, hp) = auth.rsplit_once('@').unwrap();
                let (host, port) = hp.split_once(':').unwrap_or((hp, "3306"));
                std::process::Command::new("mariadb")
                    .args(["-h", host, "-P", port, "-u", user, "-D", db, "-e", &sql])
                    .output()
            };
        }
    }
    let h = ostro_session_core::DatabaseSessionHandler::new(
        &url,
        DatabaseOptions {
            table: table.clone(),
            ..DatabaseOptions::default()
        },
        None,
    )
    .unwrap();
    Fixture {
        handler: Arc::new(h),
        _keep: Box::new(Drop_(postgres, url, table)),
    }
}

// The in-memory array handler is inline: the binding runs it to completion on the JS thread,
// where its saves interleave only at awaits, as on a current-thread runtime. The shared drivers
// run on four threads.
macro_rules! driver_suite {
    ($name:ident, $make:expr) => {
        driver_suite!($name, $make, flavor = "multi_thread", worker_threads = 4);
    };
    ($name:ident, $make:expr, $($flavor:tt)*) => {
        mod $name {
            use super::*;

            #[tokio::test($($flavor)*)]
            async fn concurrent_saves_keep_every_key_and_every_increment() {
                let f = $make;
                concurrent_saves_keep_everything(Arc::clone(&f.handler)).await;
            }

            #[tokio::test($($flavor)*)]
            async fn a_logout_racing_writers_sticks() {
                let f = $make;
                a_logout_sticks(Arc::clone(&f.handler)).await;
            }

            #[tokio::test($($flavor)*)]
            async fn write_if_unchanged_compares_and_tombstones_never_match() {
                let f = $make;
                cas_semantics(Arc::clone(&f.handler)).await;
            }
        }
    };
}

// The array handler is inline: in Node it runs to completion on the JS thread, never two saves
// at once, so its suite runs on one thread as it is used. (Many threads saving one id through it
// at once can exceed the retry bound: inline handlers take no save turns.)
driver_suite!(array, array(), flavor = "current_thread");
driver_suite!(file, file());
driver_suite!(sqlite, sqlite());
driver_suite!(redis, redis());
driver_suite!(memcached, memcached());
#[cfg(feature = "postgres")]
driver_suite!(postgres, database(true));
#[cfg(feature = "mysql")]
driver_suite!(mysql, database(false));

/// The scripts run by SHA; a server that lost them (restart, `SCRIPT FLUSH`) gets them again.
#[tokio::test]
async fn redis_scripts_are_sent_again_after_script_flush() {
    use ostro_session_core::handlers::redis::{RedisConnection, RedisOptions};
    let server = support::servers::RedisServer::start();
    let h = ostro_session_core::RedisSessionHandler::new(
        &RedisConnection::Url(server.url()),
        RedisOptions::default(),
    )
    .unwrap();
    let m = WriteMeta::default();
    let id = "e".repeat(40);
    let flush = || async {
        let client = ::redis::Client::open(server.url()).unwrap();
        let mut c = client.get_multiplexed_async_connection().await.unwrap();
        let _: () = ::redis::cmd("SCRIPT")
            .arg("FLUSH")
            .query_async(&mut c)
            .await
            .unwrap();
    };
    flush().await;
    assert_eq!(
        h.write_if_unchanged(&id, r#"{"a":1}"#, "", &m)
            .await
            .unwrap(),
        CasOutcome::Written
    );
    flush().await;
    assert!(h.touch(&id).await.unwrap());
    flush().await;
    assert_eq!(
        h.write_if_unchanged(&id, r#"{"a":2}"#, r#"{"a":1}"#, &m)
            .await
            .unwrap(),
        CasOutcome::Written
    );
    assert_eq!(h.read(&id).await.unwrap(), r#"{"a":2}"#);
}
