//! Opt-in session blocking, per driver (issue 12): a lock is had by one holder at a time, only
//! its holder's token releases it, it expires after its time-to-live, and `blocking::acquire`
//! waits for a release or fails with `Locked` after the wait. File and sqlite also lock across
//! two handlers on one directory or file (as two processes would); redis and memcached run on
//! real servers started for the test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use ostro_session_core::blocking;
use ostro_session_core::{ArraySessionHandler, SessionError, SessionHandler};
use std::sync::Arc;
use std::time::{Duration, Instant};

type Handler = Arc<dyn SessionHandler>;

/// Two handlers on one store (the same handler where the store is process memory), plus what
/// must live as long as they do, and the shortest lock the driver keeps (memcached: 1 s).
struct Fixture {
    a: Handler,
    b: Handler,
    min_ttl_ms: u64,
    _keep: Box<dyn std::any::Any + Send>,
}

fn id(n: u8) -> String {
    String::from_utf8(vec![b'a' + n; 40]).unwrap()
}

async fn one_holder_at_a_time(f: &Fixture) {
    let id = id(0);
    let t =
        f.a.lock(&id, 60_000)
            .await
            .unwrap()
            .expect("a free lock is taken");
    assert_eq!(t.len(), 32);
    assert_eq!(
        f.b.lock(&id, 60_000).await.unwrap(),
        None,
        "a held lock is refused"
    );
    assert_eq!(
        f.a.lock(&id, 60_000).await.unwrap(),
        None,
        "also to its own handler"
    );
    // Another session's lock is independent.
    assert!(f.b.lock(&self::id(1), 60_000).await.unwrap().is_some());
    // A wrong token releases nothing.
    f.b.unlock(&id, "not-the-token").await.unwrap();
    assert_eq!(f.b.lock(&id, 60_000).await.unwrap(), None);
    f.a.unlock(&id, &t).await.unwrap();
    let t2 =
        f.b.lock(&id, 60_000)
            .await
            .unwrap()
            .expect("a released lock is free");
    assert_ne!(t, t2);
    // The first holder's late release does not free the second holder's lock.
    f.a.unlock(&id, &t).await.unwrap();
    assert_eq!(f.a.lock(&id, 60_000).await.unwrap(), None);
    f.b.unlock(&id, &t2).await.unwrap();
}

async fn a_lock_expires(f: &Fixture) {
    let id = id(2);
    let ttl = f.min_ttl_ms;
    let t = f.a.lock(&id, ttl).await.unwrap().unwrap();
    assert_eq!(f.b.lock(&id, ttl).await.unwrap(), None);
    tokio::time::sleep(Duration::from_millis(ttl + 1100)).await;
    let t2 =
        f.b.lock(&id, 60_000)
            .await
            .unwrap()
            .expect("an expired lock is free");
    // The holder that overran releases nothing of the new holder's.
    f.a.unlock(&id, &t).await.unwrap();
    assert_eq!(f.a.lock(&id, 60_000).await.unwrap(), None);
    f.b.unlock(&id, &t2).await.unwrap();
}

async fn acquire_waits_then_fails(f: &Fixture) {
    let id = id(3);
    let t = blocking::acquire(f.a.as_ref(), &id, 60_000, 0)
        .await
        .unwrap();
    // Held past the wait: Locked, after about the wait.
    let started = Instant::now();
    let e = blocking::acquire(f.b.as_ref(), &id, 60_000, 300)
        .await
        .unwrap_err();
    assert!(matches!(e, SessionError::Locked(_)), "{e:?}");
    assert_eq!(e.code(), "ERR_SESSION_LOCKED");
    assert!(e.to_string().contains("300 ms"), "{e}");
    assert!(started.elapsed() >= Duration::from_millis(300));
    // Released during the wait: the waiter gets it.
    let (a, idc) = (Arc::clone(&f.a), id.clone());
    let releaser = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        a.unlock(&idc, &t).await.unwrap();
    });
    let got = blocking::acquire(f.b.as_ref(), &id, 60_000, 5000)
        .await
        .unwrap();
    releaser.await.unwrap();
    blocking::release(f.b.as_ref(), &id, &got).await.unwrap();
}

macro_rules! driver {
    ($name:ident, $fixture:expr) => {
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn one_holder_at_a_time() {
                super::one_holder_at_a_time(&$fixture).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_lock_expires() {
                super::a_lock_expires(&$fixture).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn acquire_waits_then_fails() {
                super::acquire_waits_then_fails(&$fixture).await;
            }
        }
    };
}

fn array() -> Fixture {
    let h: Handler = Arc::new(ArraySessionHandler::new(120.0, None).unwrap());
    Fixture {
        a: Arc::clone(&h),
        b: h,
        min_ttl_ms: 100,
        _keep: Box::new(()),
    }
}

fn file() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let make = || -> Handler {
        Arc::new(
            ostro_session_core::FileSessionHandler::new(dir.path().join("s"), 120.0, None).unwrap(),
        )
    };
    Fixture {
        a: make(),
        b: make(),
        min_ttl_ms: 100,
        _keep: Box::new(dir),
    }
}

fn sqlite() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let make = || -> Handler {
        Arc::new(
            ostro_session_core::SqliteSessionHandler::new(
                path.to_str().unwrap(),
                "sessions",
                120.0,
                5000,
                None,
            )
            .unwrap(),
        )
    };
    Fixture {
        a: make(),
        b: make(),
        min_ttl_ms: 100,
        _keep: Box::new(dir),
    }
}

fn redis() -> Fixture {
    use ostro_session_core::handlers::redis::{RedisConnection, RedisOptions};
    let server = support::servers::RedisServer::start();
    let make = || -> Handler {
        Arc::new(
            ostro_session_core::RedisSessionHandler::new(
                &RedisConnection::Url(server.url()),
                RedisOptions::default(),
            )
            .unwrap(),
        )
    };
    Fixture {
        a: make(),
        b: make(),
        min_ttl_ms: 100,
        _keep: Box::new(server),
    }
}

fn memcached() -> Fixture {
    use ostro_session_core::handlers::memcached::MemcachedOptions;
    let server = support::servers::MemcachedServer::start();
    let make = || -> Handler {
        Arc::new(
            ostro_session_core::MemcachedSessionHandler::new(
                &[server.addr()],
                MemcachedOptions::default(),
            )
            .unwrap(),
        )
    };
    Fixture {
        a: make(),
        b: make(),
        // memcached expires in whole seconds.
        min_ttl_ms: 1000,
        _keep: Box::new(server),
    }
}

driver!(array_driver, array());
driver!(file_driver, file());
driver!(sqlite_driver, sqlite());
driver!(redis_driver, redis());
driver!(memcached_driver, memcached());

/// A driver that stores nothing and implements no lock.
struct NoLocks;

#[async_trait::async_trait]
impl SessionHandler for NoLocks {
    async fn read(&self, _: &str) -> ostro_session_core::Result<String> {
        Ok(String::new())
    }
    async fn write(
        &self,
        _: &str,
        _: &str,
        _: &ostro_session_core::WriteMeta,
    ) -> ostro_session_core::Result<()> {
        Ok(())
    }
    async fn destroy(&self, _: &str) -> ostro_session_core::Result<()> {
        Ok(())
    }
    async fn gc(&self, _: u64) -> ostro_session_core::Result<u64> {
        Ok(0)
    }
    async fn touch(&self, _: &str) -> ostro_session_core::Result<bool> {
        Ok(false)
    }
}

#[tokio::test]
async fn a_driver_without_locks_says_so() {
    assert!(!NoLocks.supports_lock());
    let e = blocking::acquire(&NoLocks, &id(4), 1000, 1000)
        .await
        .unwrap_err();
    assert_eq!(e.code(), "ERR_SESSION_LOCKED");
    assert!(e.to_string().contains("cannot lock sessions"), "{e}");
    assert!(NoLocks.unlock(&id(4), "t").await.is_err());
}

#[test]
fn times_are_checked() {
    assert_eq!(
        blocking::check_ms("lockSeconds", 10_000.0, false).unwrap(),
        10_000
    );
    assert_eq!(blocking::check_ms("waitSeconds", 0.0, true).unwrap(), 0);
    for bad in [0.0, -1.0, f64::NAN, f64::INFINITY, 600_001.0] {
        let e = blocking::check_ms("lockSeconds", bad, false).unwrap_err();
        assert!(matches!(e, SessionError::InvalidOption(_)), "{bad}: {e:?}");
        assert!(e.to_string().contains("lockSeconds"), "{e}");
    }
}
