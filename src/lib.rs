//! The napi binding of `@ostro/session`: thin classes over `ostro-session-core`. No session
//! semantics live here: each method converts its arguments, calls the core and maps the error.
#![deny(clippy::all)]

mod crypto;
mod driver_cookie;
mod driver_memcached;
mod driver_redis;
mod driver_sqlite;
mod errors;
mod handlers;
mod js_handler;
mod runtime;
mod session;
mod values;
