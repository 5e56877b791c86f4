//! The factory of the sqlite driver (`lib/drivers/sqlite.js`).

use crate::errors::OrThrow;
use crate::handlers::{shared, test_clock, tombstone_secs, NativeHandler};
use napi::bindgen_prelude::*;
use napi_derive::napi;
use ostro_session_core::handlers::sqlite::{DEFAULT_BUSY_TIMEOUT_MS, DEFAULT_TABLE};
use ostro_session_core::{SessionError, SqliteSessionHandler};
use std::sync::Arc;

/// Options of `createSqliteHandler`.
#[napi(object)]
#[derive(Default)]
pub struct SqliteHandlerOptions {
    /// Table name, a plain SQL identifier (default `sessions`).
    pub table: Option<String>,
    /// Lifetime in minutes after the last write or touch (default 120).
    pub minutes: Option<f64>,
    /// How long to wait for another connection's lock before `ERR_SESSION_BUSY` (default 5000).
    pub busy_timeout_ms: Option<f64>,
    /// Deadline of one operation in ms (default 30 000); past it `ERR_SESSION_TIMEOUT`.
    pub timeout_ms: Option<f64>,
    /// How long a tombstone lives, in seconds (1 to the lifetime; default: the lifetime).
    pub tombstone_seconds: Option<f64>,
}

/// Whole milliseconds from a JS number: finite and not negative.
fn busy_timeout(ms: Option<f64>) -> std::result::Result<u64, SessionError> {
    match ms {
        None => Ok(DEFAULT_BUSY_TIMEOUT_MS),
        Some(ms) if ms.is_finite() && ms >= 0.0 && ms <= f64::from(i32::MAX) =>
        {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            Ok(ms.round() as u64)
        }
        Some(ms) => Err(SessionError::InvalidOption(format!(
            "busyTimeoutMs must be a number of milliseconds from 0 to {}, got {ms}",
            i32::MAX
        ))),
    }
}

/// A sqlite handler on the database at `path` (`':memory:'` for a private in-memory one).
/// Nothing is opened until the first operation.
#[napi]
pub fn create_sqlite_handler(
    env: Env,
    path: String,
    options: Option<SqliteHandlerOptions>,
    test_clock_on: Option<bool>,
) -> Result<NativeHandler> {
    let o = options.unwrap_or_default();
    let clock = test_clock(test_clock_on);
    let h = busy_timeout(o.busy_timeout_ms)
        .and_then(|ms| {
            SqliteSessionHandler::new(
                path,
                o.table.as_deref().unwrap_or(DEFAULT_TABLE),
                o.minutes.unwrap_or(120.0),
                ms,
                shared(&clock),
            )
        })
        .and_then(|h| match o.timeout_ms {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            Some(ms) if ms.is_finite() && ms >= 1.0 => h.with_timeout_ms(ms.round() as u64),
            Some(ms) => Err(SessionError::InvalidOption(format!(
                "timeoutMs must be a number of milliseconds from 1 to 600000, got {ms}"
            ))),
            None => Ok(h),
        })
        .and_then(|h| h.with_tombstone_secs(tombstone_secs(o.tombstone_seconds)?))
        .or_throw(&env)?;
    Ok(NativeHandler::new(Arc::new(h), clock))
}
