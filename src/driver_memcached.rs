//! The factory of the memcached driver (`lib/drivers/memcached.js`).

use crate::errors::OrThrow;
use crate::handlers::{tombstone_secs, NativeHandler};
use napi::bindgen_prelude::*;
use napi_derive::napi;
use ostro_session_core::handlers::memcached::MemcachedOptions;
use ostro_session_core::{MemcachedSessionHandler, SessionError};
use std::sync::Arc;

/// Options of `createMemcachedHandler`.
#[napi(object)]
#[derive(Default)]
pub struct MemcachedHandlerOptions {
    /// Key prefix: printable ASCII without spaces (default `ostro_session:`).
    pub prefix: Option<String>,
    /// Lifetime in minutes (default 120).
    pub minutes: Option<f64>,
    /// Time allowed for one operation, in ms (default 2000).
    pub timeout_ms: Option<f64>,
    /// SASL user name: refused (the text protocol has no authentication).
    pub username: Option<String>,
    /// SASL password: refused.
    pub password: Option<String>,
    /// The expiry of a tombstone, in seconds (1 to the lifetime; default: the lifetime).
    pub tombstone_seconds: Option<f64>,
}

fn options_of(o: MemcachedHandlerOptions) -> std::result::Result<MemcachedOptions, SessionError> {
    let d = MemcachedOptions::default();
    let timeout_ms = match o.timeout_ms {
        Some(ms) if ms.is_finite() && (0.0..=600_000.0).contains(&ms) =>
        {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            Ok(ms.round() as u64)
        }
        Some(ms) => Err(SessionError::InvalidOption(format!(
            "timeoutMs must be a number of milliseconds from 1 to 600000, got {ms}"
        ))),
        None => Ok(d.timeout_ms),
    }?;
    Ok(MemcachedOptions {
        prefix: o.prefix.unwrap_or(d.prefix),
        minutes: o.minutes.unwrap_or(d.minutes),
        timeout_ms,
        username: o.username,
        password: o.password,
        tombstone_secs: tombstone_secs(o.tombstone_seconds)?,
    })
}

/// A memcached handler for one `'host:port'` or several (keys spread by consistent hashing).
/// Nothing is connected until the first operation.
#[napi]
pub fn create_memcached_handler(
    env: Env,
    servers: Either<String, Vec<String>>,
    options: Option<MemcachedHandlerOptions>,
) -> Result<NativeHandler> {
    let servers = match servers {
        Either::A(s) => vec![s],
        Either::B(v) => v,
    };
    let h = options_of(options.unwrap_or_default())
        .and_then(|o| MemcachedSessionHandler::new(&servers, o))
        .or_throw(&env)?;
    Ok(NativeHandler::new(Arc::new(h), None))
}
