//! The seam through which an embedder supplies the connection to a single redis server
//! (`ExternalRedis`; the Node binding drives one from libuv's loop): every rule stays in the
//! handler, the external connection only carries packed commands and raw replies, and the
//! handler falls back to its own connection wherever the external one is not available.
#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod support;

use common::sid;
use ostro_session_core::handlers::redis::{
    ExternalRedis, RedisAddr, RedisConnection, RedisOptions,
};
use ostro_session_core::{CasOutcome, RedisSessionHandler, SessionHandler, WriteMeta};
use redis::aio::MultiplexedConnection;
use redis::{RedisFuture, Value};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use support::servers::RedisServer;

/// An external connection over the crate's own multiplexed connection, counting its use.
struct Counting {
    conn: MultiplexedConnection,
    calls: AtomicUsize,
    on: AtomicBool,
}

impl ExternalRedis for Counting {
    fn available(&self) -> bool {
        self.on.load(Ordering::SeqCst)
    }

    fn request<'a>(&'a self, cmd: &'a redis::Cmd) -> RedisFuture<'a, Value> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let mut c = self.conn.clone();
        Box::pin(async move { c.send_packed_command(cmd).await })
    }

    fn request_pipeline<'a>(
        &'a self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let mut c = self.conn.clone();
        Box::pin(async move { c.send_packed_commands(pipeline, offset, count).await })
    }

    fn close(&self) {}
}

async fn counting(url: &str) -> Arc<Counting> {
    let client = redis::Client::open(url).unwrap();
    Arc::new(Counting {
        conn: client.get_multiplexed_async_connection().await.unwrap(),
        calls: AtomicUsize::new(0),
        on: AtomicBool::new(true),
    })
}

#[tokio::test]
async fn every_rule_runs_over_the_external_connection() {
    let server = RedisServer::start();
    let url = server.url();
    let h = RedisSessionHandler::new(&RedisConnection::Url(url.clone()), RedisOptions::default())
        .unwrap();
    let ext = counting(&url).await;
    h.set_external(ext.clone()).unwrap();
    assert!(
        h.set_external(ext.clone()).is_err(),
        "set once: a second one is refused"
    );
    let meta = WriteMeta::default();
    let id = sid("ext", 1);

    h.write(&id, "\"a\"", &meta).await.unwrap();
    assert_eq!(h.read(&id).await.unwrap(), "\"a\"");
    assert!(h.touch(&id).await.unwrap());
    // A script the server has never seen: EVALSHA answers NOSCRIPT (a raw server error) and
    // the handler sends EVAL.
    redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async::<()>(&mut ext.conn.clone())
        .await
        .unwrap();
    assert!(matches!(
        h.write_if_unchanged(&id, "\"b\"", "\"a\"", &meta)
            .await
            .unwrap(),
        CasOutcome::Written
    ));
    assert!(matches!(
        h.write_if_unchanged(&id, "\"c\"", "\"a\"", &meta)
            .await
            .unwrap(),
        CasOutcome::Conflict(cur) if cur == "\"b\""
    ));
    // A user-linked write and the listing (a pipeline) go the same way.
    let linked = WriteMeta {
        user_id: Some("u1".into()),
        ..WriteMeta::default()
    };
    h.write(&id, "\"d\"", &linked).await.unwrap();
    assert_eq!(h.user_sessions("u1").await.unwrap().len(), 1);
    h.destroy(&id).await.unwrap();
    assert_eq!(h.read(&id).await.unwrap(), "");
    let used = ext.calls.load(Ordering::SeqCst);
    assert!(used >= 9, "the external connection carried {used} requests");

    // Not available (another thread, in the binding): the handler's own connection serves.
    ext.on.store(false, Ordering::SeqCst);
    h.write(&id, "\"e\"", &meta).await.unwrap();
    assert_eq!(h.read(&id).await.unwrap(), "\"e\"");
    assert_eq!(ext.calls.load(Ordering::SeqCst), used);
}

#[test]
fn the_endpoint_is_given_for_plain_single_servers_only() {
    let h = RedisSessionHandler::new(
        &RedisConnection::Url("redis://u:pw@127.0.0.1:6390/3".into()),
        RedisOptions::default(),
    )
    .unwrap();
    let ep = h.endpoint().unwrap();
    assert!(matches!(&ep.addr, RedisAddr::Tcp(host, 6390) if host == "127.0.0.1"));
    assert_eq!(ep.username.as_deref(), Some("u"));
    assert_eq!(ep.password.as_deref(), Some("pw"));
    assert_eq!(ep.db, 3);
    assert!(
        !format!("{ep:?}").contains("pw\""),
        "the password is redacted"
    );

    let unix = RedisSessionHandler::new(
        &RedisConnection::Url("redis+unix:///tmp/r.sock".into()),
        RedisOptions::default(),
    )
    .unwrap();
    assert!(matches!(&unix.endpoint().unwrap().addr, RedisAddr::Unix(p) if p.ends_with("r.sock")));

    let tls = RedisSessionHandler::new(
        &RedisConnection::Url("rediss://127.0.0.1:6390".into()),
        RedisOptions::default(),
    )
    .unwrap();
    assert!(tls.endpoint().is_none());
}
