//! Redis and memcached against real servers and their failures: killed with operations in
//! flight, frozen with SIGSTOP, thawed, restarted on the same port; plus what only these drivers
//! have (TLS with a test CA, unix sockets, passwords, two memcached servers, item size limits).
#![cfg(any(feature = "redis", feature = "memcached"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod support;

use common::sid;
use ostro_session_core::{SessionError, SessionHandler, WriteMeta};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The bound the issue sets for a failing operation: its timeout plus half a second.
const SLACK: Duration = Duration::from_millis(500);

fn meta() -> WriteMeta {
    WriteMeta::default()
}

fn is_unavailable(r: &Result<impl std::fmt::Debug, SessionError>) -> bool {
    matches!(r, Err(SessionError::Unavailable(_)))
}

/// Starts `n` reads of distinct ids at once and waits for all of them, timing each.
async fn reads_in_flight(
    h: &Arc<dyn SessionHandler>,
    n: usize,
) -> Vec<(Result<String, SessionError>, Duration)> {
    let mut set = tokio::task::JoinSet::new();
    for i in 0..n {
        let h = Arc::clone(h);
        set.spawn(async move {
            let t = Instant::now();
            (h.read(&sid("inflight", i)).await, t.elapsed())
        });
    }
    let mut out = Vec::new();
    while let Some(r) = set.join_next().await {
        out.push(r.unwrap());
    }
    out
}

/// Kill while operations are in flight: freezing first guarantees they are in flight (sent,
/// unanswered) when the SIGKILL lands. They must all reject as unavailable, well within the
/// timeout since the connection resets.
async fn check_kill_in_flight(
    h: Arc<dyn SessionHandler>,
    proc: &mut support::servers::Proc,
    timeout: Duration,
) {
    h.write(&sid("inflight", 0), "{}", &meta()).await.unwrap();
    proc.freeze();
    let pending = {
        let h = Arc::clone(&h);
        tokio::spawn(async move { reads_in_flight(&h, 20).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    proc.kill();
    for (r, took) in pending.await.unwrap() {
        assert!(is_unavailable(&r), "{r:?}");
        assert!(took <= timeout + SLACK, "took {took:?}");
    }
    // And while it stays down, new operations reject as well.
    let t = Instant::now();
    let r = h.write(&sid("inflight", 1), "{}", &meta()).await;
    assert!(is_unavailable(&r), "{r:?}");
    assert!(t.elapsed() <= timeout + SLACK, "took {:?}", t.elapsed());
}

/// Under steady load, a kill gives only successes or unavailable errors, never anything else.
async fn check_kill_under_load(h: Arc<dyn SessionHandler>, proc: &mut support::servers::Proc) {
    let mut set = tokio::task::JoinSet::new();
    for w in 0..8 {
        let h = Arc::clone(&h);
        set.spawn(async move {
            let mut outcomes = (0usize, 0usize);
            let end = Instant::now() + Duration::from_millis(1200);
            let mut i = 0;
            while Instant::now() < end {
                let id = sid(&format!("load{w}"), i % 50);
                match h.write(&id, "{\"x\":1}", &WriteMeta::default()).await {
                    Ok(()) => outcomes.0 += 1,
                    Err(SessionError::Unavailable(_)) => outcomes.1 += 1,
                    Err(e) => panic!("unexpected error under a kill: {e:?}"),
                }
                i += 1;
            }
            outcomes
        });
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    proc.kill();
    let (mut ok, mut down) = (0, 0);
    while let Some(r) = set.join_next().await {
        let (a, b) = r.unwrap();
        ok += a;
        down += b;
    }
    assert!(ok > 0 && down > 0, "ok {ok}, unavailable {down}");
}

/// Frozen: every operation rejects within timeout + 0.5 s; thawed: the next one succeeds.
async fn check_freeze_thaw(
    h: Arc<dyn SessionHandler>,
    proc: &support::servers::Proc,
    timeout: Duration,
) {
    let id = sid("freeze", 1);
    h.write(&id, "\"before\"", &meta()).await.unwrap();
    proc.freeze();
    let t = Instant::now();
    let r = h.read(&id).await;
    let took = t.elapsed();
    assert!(is_unavailable(&r), "{r:?}");
    assert!(
        took >= timeout.saturating_sub(Duration::from_millis(50)),
        "gave up early: {took:?}"
    );
    assert!(took <= timeout + SLACK, "took {took:?}");
    for (r, took) in reads_in_flight(&h, 10).await {
        assert!(is_unavailable(&r), "{r:?}");
        assert!(took <= timeout + SLACK, "took {took:?}");
    }
    let t = Instant::now();
    let r = h.write(&id, "\"during\"", &meta()).await;
    assert!(
        is_unavailable(&r) && t.elapsed() <= timeout + SLACK,
        "{r:?} {:?}",
        t.elapsed()
    );
    proc.thaw();
    // A write that timed out has an unknown outcome: the server may still apply it when it
    // resumes (memcached: even after a newer write sent on another connection). So `id` reads
    // as either value, and a fresh id shows that reads and writes work again.
    let v = h.read(&id).await.unwrap();
    assert!(v == "\"before\"" || v == "\"during\"", "{v}");
    let next = sid("freeze", 2);
    h.write(&next, "\"after\"", &meta()).await.unwrap();
    assert_eq!(h.read(&next).await.unwrap(), "\"after\"");
}

/// Killed, then restarted on the same port: the handler recovers without being rebuilt.
async fn check_restart(h: Arc<dyn SessionHandler>, proc: &mut support::servers::Proc) {
    let id = sid("restart", 1);
    h.write(&id, "\"one\"", &meta()).await.unwrap();
    proc.kill();
    assert!(is_unavailable(&h.read(&id).await));
    proc.restart();
    // The data went with the old process (no persistence); the connection comes back.
    assert_eq!(h.read(&id).await.unwrap(), "");
    h.write(&id, "\"two\"", &meta()).await.unwrap();
    assert_eq!(h.read(&id).await.unwrap(), "\"two\"");
    // A second restart behind the handler's back, with no failed operation in between.
    proc.restart();
    h.write(&id, "\"three\"", &meta()).await.unwrap();
    assert_eq!(h.read(&id).await.unwrap(), "\"three\"");
}

#[cfg(feature = "redis")]
mod redis {
    use super::*;
    use ostro_session_core::handlers::redis::{RedisConnection, RedisOptions, RedisParts};
    use ostro_session_core::RedisSessionHandler;
    use support::servers::{RedisServer, TlsFiles};

    const TIMEOUT: Duration = Duration::from_millis(800);

    fn opts() -> RedisOptions {
        RedisOptions {
            command_timeout_ms: 800,
            connect_timeout_ms: 800,
            ..RedisOptions::default()
        }
    }

    fn handler(url: &str, o: RedisOptions) -> Arc<dyn SessionHandler> {
        Arc::new(RedisSessionHandler::new(&RedisConnection::Url(url.into()), o).unwrap())
    }

    /// One RESP command over a plain socket, for looking at what the driver stored.
    fn raw(port: u16, args: &[&str]) -> String {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut req = format!("*{}\r\n", args.len());
        for a in args {
            req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        s.write_all(req.as_bytes()).unwrap();
        let mut buf = [0u8; 512];
        let n = s.read(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).trim_end().to_owned()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn kill_with_operations_in_flight() {
        let mut server = RedisServer::start();
        let h = handler(&server.url(), opts());
        check_kill_in_flight(h, &mut server.proc, TIMEOUT).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn kill_under_load() {
        let mut server = RedisServer::start();
        let h = handler(&server.url(), opts());
        check_kill_under_load(h, &mut server.proc).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn freeze_then_thaw() {
        let server = RedisServer::start();
        let h = handler(&server.url(), opts());
        check_freeze_thaw(h, &server.proc, TIMEOUT).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn restart_on_the_same_port() {
        let mut server = RedisServer::start();
        let h = handler(&server.url(), opts());
        check_restart(h, &mut server.proc).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn built_while_the_server_is_down_then_it_comes_up() {
        let mut server = RedisServer::start();
        server.proc.kill();
        let t = Instant::now();
        let h = handler(&server.url(), opts());
        assert!(
            t.elapsed() < Duration::from_millis(100),
            "construction must not connect"
        );
        let r = h.read(&sid("late", 1)).await;
        assert!(is_unavailable(&r), "{r:?}");
        assert!(t.elapsed() <= TIMEOUT + SLACK);
        server.proc.restart();
        h.write(&sid("late", 1), "{}", &meta()).await.unwrap();
        assert_eq!(h.read(&sid("late", 1)).await.unwrap(), "{}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stores_prefix_plus_id_with_the_ttl_and_touch_renews_it() {
        let server = RedisServer::start();
        let o = RedisOptions {
            prefix: "app:sess:".into(),
            minutes: 30.0,
            ..opts()
        };
        let h = handler(&server.url(), o);
        let id = sid("ttl", 1);
        h.write(&id, "{\"a\":1}", &meta()).await.unwrap();
        let key = format!("app:sess:{id}");
        assert!(raw(server.port, &["GET", &key]).ends_with("{\"a\":1}"));
        assert_eq!(raw(server.port, &["TTL", &key]), ":1800");
        assert_eq!(raw(server.port, &["EXPIRE", &key, "5"]), ":1");
        assert!(h.touch(&id).await.unwrap());
        assert_eq!(raw(server.port, &["TTL", &key]), ":1800");
        h.destroy(&id).await.unwrap();
        // A destroy leaves a tombstone with the lifetime's TTL (issue 12), which reads as none.
        assert!(raw(server.port, &["GET", &key]).ends_with(ostro_session_core::handler::TOMBSTONE));
        assert_eq!(raw(server.port, &["TTL", &key]), ":1800");
        assert_eq!(h.read(&id).await.unwrap(), "");
        // Fractional minutes round up to whole seconds.
        let h = handler(
            &server.url(),
            RedisOptions {
                minutes: 0.5 / 60.0,
                ..opts()
            },
        );
        h.write(&id, "{}", &meta()).await.unwrap();
        assert_eq!(
            raw(server.port, &["TTL", &format!("ostro_session:{id}")]),
            ":1"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn passwords_dbs_and_the_object_form() {
        let server = RedisServer::start_with(&["--requirepass", "s3cret-pw"]);
        let port = server.port;
        let h = handler(&format!("redis://:s3cret-pw@127.0.0.1:{port}/2"), opts());
        h.write(&sid("pw", 1), "\"db2\"", &meta()).await.unwrap();
        let parts = RedisConnection::Parts(RedisParts {
            host: Some("127.0.0.1".into()),
            port: Some(port),
            password: Some("s3cret-pw".into()),
            db: Some(2),
            ..RedisParts::default()
        });
        let h2 = RedisSessionHandler::new(&parts, opts()).unwrap();
        assert_eq!(h2.read(&sid("pw", 1)).await.unwrap(), "\"db2\"");
        let db0 = handler(
            &format!("redis://default:s3cret-pw@127.0.0.1:{port}/0"),
            opts(),
        );
        assert_eq!(
            db0.read(&sid("pw", 1)).await.unwrap(),
            "",
            "db 2 is not db 0"
        );
        for url in [
            format!("redis://:wrong-pw-x@127.0.0.1:{port}"),
            format!("redis://127.0.0.1:{port}"),
        ] {
            let r = handler(&url, opts()).read(&sid("pw", 1)).await;
            assert!(is_unavailable(&r), "{r:?}");
            let msg = r.unwrap_err().to_string();
            assert!(
                !msg.contains("wrong-pw-x") && !msg.contains("s3cret-pw"),
                "{msg}"
            );
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rediss_with_a_test_ca() {
        let server = RedisServer::start_tls();
        let ca = server.tls.as_ref().unwrap().ca_cert.clone();
        let with_ca = || RedisOptions {
            ca_file: Some(ca.clone()),
            ..opts()
        };
        for url in [server.url(), format!("rediss://localhost:{}", server.port)] {
            let h = handler(&url, with_ca());
            h.write(&sid("tls", 1), "{\"tls\":true}", &meta())
                .await
                .unwrap();
            assert_eq!(h.read(&sid("tls", 1)).await.unwrap(), "{\"tls\":true}");
            assert!(h.touch(&sid("tls", 1)).await.unwrap());
        }
        let parts = RedisConnection::Parts(RedisParts {
            port: Some(server.port),
            tls: true,
            ..RedisParts::default()
        });
        let h = RedisSessionHandler::new(&parts, with_ca()).unwrap();
        assert_eq!(h.read(&sid("tls", 1)).await.unwrap(), "{\"tls\":true}");

        // Certificates are verified: the system roots do not know the test CA, nor does
        // another CA; and plain redis:// cannot talk to a TLS port.
        let other = TlsFiles::generate(server.dir.path(), "other");
        for (url, o) in [
            (server.url(), opts()),
            (
                server.url(),
                RedisOptions {
                    ca_file: Some(other.ca_cert.clone()),
                    ..opts()
                },
            ),
            (format!("redis://127.0.0.1:{}", server.port), opts()),
        ] {
            let r = handler(&url, o).read(&sid("tls", 1)).await;
            assert!(is_unavailable(&r), "{url}: {r:?}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redis_unix_socket() {
        let server = RedisServer::start_unix();
        let h = handler(&server.url(), opts());
        let id = sid("unix", 1);
        assert_eq!(h.read(&id).await.unwrap(), "");
        h.write(&id, "{\"unix\":1}", &meta()).await.unwrap();
        assert_eq!(h.read(&id).await.unwrap(), "{\"unix\":1}");
        assert!(h.touch(&id).await.unwrap());
        h.destroy(&id).await.unwrap();
        assert!(!h.touch(&id).await.unwrap());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn close_then_use_again() {
        let server = RedisServer::start();
        let h = handler(&server.url(), opts());
        h.write(&sid("close", 1), "{}", &meta()).await.unwrap();
        h.close().await.unwrap();
        // A closed handler reconnects if used again (the Store never does, but a pool might).
        assert_eq!(h.read(&sid("close", 1)).await.unwrap(), "{}");
    }
}

#[cfg(feature = "memcached")]
mod memcached {
    use super::*;
    use ostro_session_core::handlers::memcached::MemcachedOptions;
    use ostro_session_core::MemcachedSessionHandler;
    use support::servers::MemcachedServer;

    const TIMEOUT: Duration = Duration::from_millis(800);

    fn opts() -> MemcachedOptions {
        MemcachedOptions {
            timeout_ms: 800,
            ..MemcachedOptions::default()
        }
    }

    fn handler(servers: &[String], o: MemcachedOptions) -> Arc<dyn SessionHandler> {
        Arc::new(MemcachedSessionHandler::new(servers, o).unwrap())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn kill_with_operations_in_flight() {
        let mut server = MemcachedServer::start();
        let h = handler(&[server.addr()], opts());
        check_kill_in_flight(h, &mut server.proc, TIMEOUT).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn kill_under_load() {
        let mut server = MemcachedServer::start();
        let h = handler(&[server.addr()], opts());
        check_kill_under_load(h, &mut server.proc).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn freeze_then_thaw() {
        let server = MemcachedServer::start();
        let h = handler(&[server.addr()], opts());
        check_freeze_thaw(h, &server.proc, TIMEOUT).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn restart_on_the_same_port() {
        let mut server = MemcachedServer::start();
        let h = handler(&[server.addr()], opts());
        check_restart(h, &mut server.proc).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn built_while_the_server_is_down_then_it_comes_up() {
        let mut server = MemcachedServer::start();
        server.proc.kill();
        let h = handler(&[server.addr()], opts());
        let t = Instant::now();
        let r = h.read(&sid("late", 1)).await;
        assert!(is_unavailable(&r), "{r:?}");
        assert!(t.elapsed() <= TIMEOUT + SLACK);
        server.proc.restart();
        h.write(&sid("late", 1), "{}", &meta()).await.unwrap();
        assert_eq!(h.read(&sid("late", 1)).await.unwrap(), "{}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_servers_share_the_keys() {
        let (a, b) = (MemcachedServer::start(), MemcachedServer::start());
        let both = handler(&[a.addr(), b.addr()], opts());
        let only_a = handler(&[a.addr()], opts());
        let only_b = handler(&[b.addr()], opts());
        let n = 200;
        for i in 0..n {
            both.write(&sid("two", i), &format!("{i}"), &meta())
                .await
                .unwrap();
        }
        let (mut on_a, mut on_b) = (0, 0);
        for i in 0..n {
            let id = sid("two", i);
            assert_eq!(both.read(&id).await.unwrap(), format!("{i}"));
            let in_a = !only_a.read(&id).await.unwrap().is_empty();
            let in_b = !only_b.read(&id).await.unwrap().is_empty();
            assert!(in_a != in_b, "session {i} must live on exactly one server");
            on_a += usize::from(in_a);
            on_b += usize::from(in_b);
        }
        assert_eq!(on_a + on_b, n);
        assert!(on_a > n / 5 && on_b > n / 5, "keys spread {on_a}/{on_b}");
        // The order servers are listed in does not move keys.
        let swapped = handler(&[b.addr(), a.addr()], opts());
        for i in 0..n {
            assert_eq!(swapped.read(&sid("two", i)).await.unwrap(), format!("{i}"));
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_of_two_servers_down_fails_only_its_keys() {
        let (mut a, b) = (MemcachedServer::start(), MemcachedServer::start());
        let both = handler(&[a.addr(), b.addr()], opts());
        let only_b = handler(&[b.addr()], opts());
        for i in 0..40 {
            both.write(&sid("half", i), "1", &meta()).await.unwrap();
        }
        a.proc.kill();
        let (mut ok, mut down) = (0, 0);
        for i in 0..40 {
            let id = sid("half", i);
            match both.read(&id).await {
                Ok(v) => {
                    assert_eq!(v, "1");
                    assert_eq!(only_b.read(&id).await.unwrap(), "1");
                    ok += 1;
                }
                Err(SessionError::Unavailable(_)) => down += 1,
                Err(e) => panic!("{e:?}"),
            }
        }
        assert!(ok > 0 && down > 0, "{ok} ok, {down} down");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn too_large_follows_the_server_item_limit() {
        let small = MemcachedServer::start();
        let h = handler(&[small.addr()], opts());
        let id = sid("big", 1);
        let big = "x".repeat(1536 * 1024);
        let r = h.write(&id, &big, &meta()).await;
        assert!(matches!(r, Err(SessionError::TooLarge(_))), "{r:?}");
        // The connection is still good afterwards.
        h.write(&id, "{}", &meta()).await.unwrap();
        assert_eq!(h.read(&id).await.unwrap(), "{}");
        // A server started with a larger limit takes the same payload: no limit is hard-coded.
        let large = MemcachedServer::start_with(&["-I", "2m"]);
        let h = handler(&[large.addr()], opts());
        h.write(&id, &big, &meta()).await.unwrap();
        assert!(h.read(&id).await.unwrap() == big);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn lifetimes_over_thirty_days_are_kept() {
        // Sent as a relative 31 days, memcached would read it as a unix time in 1970 and drop
        // the item at once.
        let server = MemcachedServer::start();
        let h = handler(
            &[server.addr()],
            MemcachedOptions {
                minutes: 31.0 * 24.0 * 60.0,
                ..opts()
            },
        );
        let id = sid("long", 1);
        h.write(&id, "{\"long\":1}", &meta()).await.unwrap();
        assert_eq!(h.read(&id).await.unwrap(), "{\"long\":1}");
        assert!(h.touch(&id).await.unwrap());
        assert_eq!(h.read(&id).await.unwrap(), "{\"long\":1}");
    }
}
