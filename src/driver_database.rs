//! The factory of the database driver (`lib/drivers/database.js`).

use crate::errors::OrThrow;
use crate::handlers::{shared, test_clock, tombstone_secs, NativeHandler};
use napi::bindgen_prelude::*;
use napi_derive::napi;
use ostro_session_core::handlers::database::DatabaseOptions;
use ostro_session_core::{DatabaseSessionHandler, SessionError};
use std::sync::Arc;

/// Options of `createDatabaseHandler`.
#[napi(object)]
#[derive(Default)]
pub struct DatabaseHandlerOptions {
    /// Table name, a plain SQL identifier (default `sessions`).
    pub table: Option<String>,
    /// Lifetime in minutes after the last write or touch (default 120).
    pub minutes: Option<f64>,
    /// Connections kept open at most (default 4 for Postgres, 8 for MySQL/MariaDB; at most 64).
    pub pool: Option<f64>,
    /// Time allowed to open a connection, in ms (default 2000).
    pub connect_timeout_ms: Option<f64>,
    /// Time allowed for one operation, connecting included, in ms (default 2000).
    pub command_timeout_ms: Option<f64>,
    /// How long a tombstone lives, in seconds (1 to the lifetime; default: the lifetime).
    pub tombstone_seconds: Option<f64>,
}

/// A whole non-negative number from JS, at most `max`.
fn whole(name: &str, v: f64, max: f64) -> std::result::Result<u64, SessionError> {
    if v.is_finite() && v >= 0.0 && v <= max && v.fract() == 0.0 {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Ok(v as u64)
    } else {
        Err(SessionError::InvalidOption(format!(
            "{name} must be a whole number from 0 to {max}, got {v}"
        )))
    }
}

fn options_of(o: DatabaseHandlerOptions) -> std::result::Result<DatabaseOptions, SessionError> {
    let d = DatabaseOptions::default();
    let ms = |name, v: Option<f64>, default| match v {
        Some(ms) => whole(name, ms.round(), 600_000.0),
        None => Ok(default),
    };
    Ok(DatabaseOptions {
        table: o.table.unwrap_or(d.table),
        minutes: o.minutes.unwrap_or(d.minutes),
        pool: match o.pool {
            Some(p) => Some(usize::try_from(whole("pool", p, 64.0)?).unwrap_or(0)),
            None => d.pool,
        },
        connect_timeout_ms: ms(
            "connectTimeoutMs",
            o.connect_timeout_ms,
            d.connect_timeout_ms,
        )?,
        command_timeout_ms: ms(
            "commandTimeoutMs",
            o.command_timeout_ms,
            d.command_timeout_ms,
        )?,
        tombstone_secs: tombstone_secs(o.tombstone_seconds)?,
    })
}

/// A database handler for a `postgres://`, `postgresql://`, `mysql://` or `mariadb://` URL.
/// Nothing is connected until the first operation.
#[napi]
pub fn create_database_handler(
    env: Env,
    url: String,
    options: Option<DatabaseHandlerOptions>,
    test_clock_on: Option<bool>,
) -> Result<NativeHandler> {
    let clock = test_clock(test_clock_on);
    let h = options_of(options.unwrap_or_default())
        .and_then(|o| DatabaseSessionHandler::new(&url, o, shared(&clock)))
        .or_throw(&env)?;
    Ok(NativeHandler::new(Arc::new(h), clock))
}
