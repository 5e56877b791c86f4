//! The conformance suite (tests/common) run against the array, file, redis and memcached
//! drivers. Redis and memcached run against real servers that each test starts on a free
//! loopback port and kills when it ends. (The sqlite driver runs it in tests/sqlite.rs.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod support;

use common::Fixture;
use ostro_session_core::{ArraySessionHandler, SessionHandler};
use std::sync::Arc;

fn array() -> Fixture {
    Fixture::clocked(|minutes, clock| {
        Arc::new(ArraySessionHandler::new(minutes, Some(clock)).unwrap()) as Arc<dyn SessionHandler>
    })
    .unshared()
}

handler_conformance!(array, crate::array());

#[cfg(feature = "file")]
fn file() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sessions");
    Fixture::clocked(move |minutes, clock| {
        Arc::new(
            ostro_session_core::FileSessionHandler::new(path.clone(), minutes, Some(clock))
                .unwrap(),
        ) as Arc<dyn SessionHandler>
    })
    .keeping(dir)
}

#[cfg(feature = "file")]
handler_conformance!(file, crate::file());

#[cfg(feature = "redis")]
fn redis() -> Fixture {
    use ostro_session_core::handlers::redis::{RedisConnection, RedisOptions};
    let server = support::servers::RedisServer::start();
    let url = server.url();
    Fixture::server(server, move |minutes| {
        let opts = RedisOptions {
            minutes,
            ..RedisOptions::default()
        };
        Arc::new(
            ostro_session_core::RedisSessionHandler::new(&RedisConnection::Url(url.clone()), opts)
                .unwrap(),
        ) as Arc<dyn SessionHandler>
    })
}

#[cfg(feature = "redis")]
handler_conformance!(redis, crate::redis());

#[cfg(feature = "memcached")]
fn memcached() -> Fixture {
    use ostro_session_core::handlers::memcached::MemcachedOptions;
    let server = support::servers::MemcachedServer::start();
    let addr = server.addr();
    Fixture::server(server, move |minutes| {
        let opts = MemcachedOptions {
            minutes,
            ..MemcachedOptions::default()
        };
        Arc::new(
            ostro_session_core::MemcachedSessionHandler::new(std::slice::from_ref(&addr), opts)
                .unwrap(),
        ) as Arc<dyn SessionHandler>
    })
    // memcached's default 1 MB item limit includes the key and item header.
    .with_max_payload(512 * 1024)
}

#[cfg(feature = "memcached")]
handler_conformance!(memcached, crate::memcached());
