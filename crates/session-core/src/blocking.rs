//! Opt-in session blocking (Laravel's `block()`): a per-session lock held around a whole request,
//! from before the load until the save settles, for code that reads a value, changes it in JS
//! and puts it back (which replay cannot merge; see [`crate::ops`]).
//!
//! Each driver takes and releases the lock atomically ([`SessionHandler::lock`] /
//! [`SessionHandler::unlock`]); this module owns the waiting: [`acquire`] polls with a growing
//! pause until the wait is over, then fails with [`SessionError::Locked`]. A lock expires after
//! its time-to-live, so a holder that crashed or hung delays others by at most that long.

use crate::error::{Result, SessionError};
use crate::handler::SessionHandler;
use std::time::{Duration, Instant};

/// The lock's time-to-live when none is given (Laravel's `block(10)`), in ms.
pub const DEFAULT_LOCK_MS: u64 = 10_000;
/// How long a request waits for the lock when nothing is given, in ms.
pub const DEFAULT_WAIT_MS: u64 = 10_000;
/// Longest time-to-live or wait accepted (10 minutes): anything longer is a typo.
pub const MAX_MS: u64 = 600_000;

/// The first pause between two tries, and the longest: the pause doubles from the first to the
/// longest, so a lock released soon is seen soon while a long wait costs few round trips.
const FIRST_PAUSE_MS: u64 = 2;
const MAX_PAUSE_MS: u64 = 100;

/// The error of a driver that cannot lock.
pub fn unsupported() -> SessionError {
    SessionError::Locked(
        "this session driver cannot lock sessions, so blocking is not available with it \
         (drivers that can: array, file, sqlite, database, redis, memcached, and custom \
         drivers that implement lock() and unlock())"
            .into(),
    )
}

/// The error of a request that waited `wait_ms` for the lock in vain.
pub fn locked_error(id: &str, wait_ms: u64) -> SessionError {
    SessionError::Locked(format!(
        "the session {}… is locked by another request; its lock was not released within the \
         wait of {wait_ms} ms",
        crate::error::redact(id)
    ))
}

/// Checks a lock's time-to-live or wait (in ms): a whole number from 1 to [`MAX_MS`] (a wait
/// may be 0: one try only).
///
/// # Errors
/// [`SessionError::InvalidOption`] naming `what`.
pub fn check_ms(what: &str, ms: f64, allow_zero: bool) -> Result<u64> {
    let min = if allow_zero { 0.0 } else { 1.0 };
    #[allow(clippy::cast_precision_loss)]
    let max = MAX_MS as f64;
    if !ms.is_finite() || ms < min || ms > max {
        return Err(SessionError::InvalidOption(format!(
            "{what} must be from {min} to {max} ms, got {ms}"
        )));
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Ok(ms.ceil() as u64)
}

/// How long to pause after the `attempt`-th refused try (0-based), `elapsed_ms` into a wait of
/// `wait_ms`: half of a pause that doubles from 2 ms to 100 ms, plus a random part of the other
/// half (so waiters do not move in step), never past the end of the wait. The one rule of
/// waiting, for [`acquire`] and for callers that try a JS driver's `lock()` themselves.
///
/// # Errors
/// [`SessionError::Locked`] when the wait is over.
pub fn retry_pause(id: &str, attempt: u32, elapsed_ms: u64, wait_ms: u64) -> Result<u64> {
    if elapsed_ms >= wait_ms {
        return Err(locked_error(id, wait_ms));
    }
    let pause = FIRST_PAUSE_MS
        .saturating_mul(1u64 << attempt.min(16))
        .min(MAX_PAUSE_MS);
    let jitter = getrandom::u64().unwrap_or(0) % (pause / 2 + 1);
    Ok((pause / 2 + jitter).clamp(1, wait_ms - elapsed_ms))
}

/// Takes the lock of `id` for `lock_ms`, trying again after each [`retry_pause`] for up to
/// `wait_ms`. Resolves to the token that [`release`] needs.
///
/// # Errors
/// [`SessionError::Locked`] when the lock was not had within `wait_ms` (or the driver cannot
/// lock), and the driver's errors.
pub async fn acquire(
    handler: &dyn SessionHandler,
    id: &str,
    lock_ms: u64,
    wait_ms: u64,
) -> Result<String> {
    if !handler.supports_lock() {
        return Err(unsupported());
    }
    let started = Instant::now();
    let mut attempt = 0;
    loop {
        if let Some(token) = handler.lock(id, lock_ms).await? {
            return Ok(token);
        }
        let elapsed = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let pause = retry_pause(id, attempt, elapsed, wait_ms)?;
        tokio::time::sleep(Duration::from_millis(pause)).await;
        attempt = attempt.saturating_add(1);
    }
}

/// Releases a lock [`acquire`] took. A lock that expired meanwhile and was taken by another
/// request is not touched.
///
/// # Errors
/// The driver's errors.
pub async fn release(handler: &dyn SessionHandler, id: &str, token: &str) -> Result<()> {
    handler.unlock(id, token).await
}

/// A random lock token: 32 alphanumerics, so a holder's release can never match another's lock.
///
/// # Errors
/// [`SessionError::Io`] when the OS has no randomness to give.
pub fn new_token() -> Result<String> {
    crate::id::random_alnum(32)
}
