//! The napi binding of `@ostro/session`: thin classes over `ostro-session-core`. No session
//! semantics live here: each method converts its arguments, calls the core and maps the error.
#![deny(clippy::all)]

pub mod crypto;
pub mod driver_cookie;
pub mod driver_database;
pub mod driver_memcached;
pub mod driver_redis;
pub mod driver_sqlite;
pub mod errors;
pub mod handlers;
pub mod js_handler;
pub mod redis_uv;
pub mod request;
pub mod runtime;
pub mod session;
pub mod users;
pub mod values;

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;
