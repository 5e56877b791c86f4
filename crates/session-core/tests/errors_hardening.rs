#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Errors a user can act on (issue 10): an unreachable Redis or memcached names host:port and
//! the cause; a SQLite file in a missing directory names that directory.

use ostro_session_core::handlers::memcached::MemcachedOptions;
use ostro_session_core::handlers::redis::{RedisConnection, RedisOptions, RedisParts};
use ostro_session_core::{
    MemcachedSessionHandler, RedisSessionHandler, SessionError, SessionHandler,
    SqliteSessionHandler,
};

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn redis(host: &str, port: u16) -> RedisSessionHandler {
    let conn = RedisConnection::Parts(RedisParts {
        host: Some(host.into()),
        port: Some(port),
        username: None,
        password: Some("hunter2".into()),
        db: None,
        tls: false,
    });
    RedisSessionHandler::new(
        &conn,
        RedisOptions {
            connect_timeout_ms: 500,
            command_timeout_ms: 1500,
            ..RedisOptions::default()
        },
    )
    .unwrap()
}

fn unavailable(e: SessionError) -> String {
    match e {
        SessionError::Unavailable(m) => m,
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn redis_refused_names_host_port_and_the_cause() {
    let port = closed_port();
    let h = redis("127.0.0.1", port);
    let msg = unavailable(h.read(&"a".repeat(40)).await.unwrap_err());
    assert!(msg.contains(&format!("127.0.0.1:{port}")), "{msg}");
    assert!(msg.contains("refused"), "{msg}");
    assert!(!msg.contains("hunter2"), "never the password: {msg}");
}

#[tokio::test]
async fn redis_unknown_host_is_reported_as_dns() {
    let h = redis("no-such-host.invalid", 6379);
    let msg = unavailable(h.read(&"a".repeat(40)).await.unwrap_err());
    assert!(msg.contains("no-such-host.invalid:6379"), "{msg}");
    assert!(msg.contains("DNS"), "{msg}");
}

#[tokio::test]
async fn memcached_refused_names_host_port_and_the_cause() {
    let port = closed_port();
    let server = format!("127.0.0.1:{port}");
    let h = MemcachedSessionHandler::new(
        std::slice::from_ref(&server),
        MemcachedOptions {
            timeout_ms: 1500,
            ..MemcachedOptions::default()
        },
    )
    .unwrap();
    let msg = unavailable(h.read(&"a".repeat(40)).await.unwrap_err());
    assert!(msg.contains(&server), "{msg}");
    assert!(msg.contains("refused"), "{msg}");
}

#[tokio::test]
async fn sqlite_in_a_missing_directory_names_it() {
    let t = tempfile::tempdir().unwrap();
    let missing = t.path().join("no").join("such");
    let db = missing.join("sessions.db");
    let h = SqliteSessionHandler::new(db.to_str().unwrap(), "sessions", 120.0, 1000, None).unwrap();
    let e = h.read(&"a".repeat(40)).await.unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains(&missing.display().to_string()), "{msg}");
    assert!(msg.contains("does not exist"), "{msg}");
    assert!(!msg.contains("(the database path)"), "{msg}");
}
