//! `NativeHandler`: one JS handle type for every built-in driver, so the Store takes a single
//! native type. Each driver has a factory function; the thin JS classes in `lib/handlers.js`
//! hold the handle.

use crate::errors::OrThrow;
use crate::runtime::promise;
use napi::bindgen_prelude::*;
use napi_derive::napi;
use ostro_session_core::blocking;
use ostro_session_core::clock::{ManualClock, SharedClock};
use ostro_session_core::handlers::file::{FileOptions, MAX_TIMEOUT_MS};
use ostro_session_core::{
    ArraySessionHandler, CasOutcome, FileSessionHandler, SessionError, SessionHandler, WriteMeta,
};
use std::sync::Arc;

/// Request metadata passed to `write`.
#[napi(object)]
#[derive(Default)]
pub struct WriteMetaJs {
    /// Client IP address.
    pub ip: Option<String>,
    /// `User-Agent` header.
    pub user_agent: Option<String>,
    /// Authenticated user id.
    pub user_id: Option<String>,
}

/// Converts optional JS metadata for the core.
pub fn meta_of(m: Option<WriteMetaJs>) -> WriteMeta {
    let m = m.unwrap_or_default();
    WriteMeta {
        ip: m.ip,
        user_agent: m.user_agent,
        user_id: m.user_id,
    }
}

/// A built-in storage driver.
#[napi]
pub struct NativeHandler {
    pub(crate) inner: Arc<dyn SessionHandler>,
    clock: Option<ManualClock>,
}

impl NativeHandler {
    /// Wraps a core handler; `clock` is the manual clock it was built with, if any.
    pub fn new(inner: Arc<dyn SessionHandler>, clock: Option<ManualClock>) -> Self {
        Self { inner, clock }
    }
}

/// A manual clock when the JS caller passed a `now()` option; `lib/handlers.js` feeds it.
pub fn test_clock(enabled: Option<bool>) -> Option<ManualClock> {
    enabled.unwrap_or(false).then(|| ManualClock::new(0))
}

/// The shared clock to hand to a core handler.
pub fn shared(clock: &Option<ManualClock>) -> Option<SharedClock> {
    clock.clone().map(|c| Arc::new(c) as SharedClock)
}

#[napi]
impl NativeHandler {
    /// Sets the test clock (ms since the epoch); ignored without one.
    #[napi(catch_unwind)]
    pub fn set_now(&self, ms: f64) {
        if let Some(c) = &self.clock {
            #[allow(clippy::cast_possible_truncation)]
            c.set(ms as i64);
        }
    }

    /// The stored payload, or `''`.
    #[napi(catch_unwind, ts_return_type = "Promise<string>")]
    pub fn read<'env>(&self, env: &'env Env, id: String) -> Result<PromiseRaw<'env, String>> {
        let h = Arc::clone(&self.inner);
        promise(env, h.is_inline(), async move { h.read(&id).await }, Ok)
    }

    /// Stores a payload.
    #[napi(catch_unwind, ts_return_type = "Promise<void>")]
    pub fn write<'env>(
        &self,
        env: &'env Env,
        id: String,
        data: String,
        meta: Option<WriteMetaJs>,
    ) -> Result<PromiseRaw<'env, ()>> {
        let h = Arc::clone(&self.inner);
        let meta = meta_of(meta);
        promise(
            env,
            h.is_inline(),
            async move { h.write(&id, &data, &meta).await },
            Ok,
        )
    }

    /// Removes a record.
    #[napi(catch_unwind, ts_return_type = "Promise<void>")]
    pub fn destroy<'env>(&self, env: &'env Env, id: String) -> Result<PromiseRaw<'env, ()>> {
        let h = Arc::clone(&self.inner);
        promise(env, h.is_inline(), async move { h.destroy(&id).await }, Ok)
    }

    /// Removes records idle for more than `seconds`; resolves to the count.
    #[napi(catch_unwind, ts_return_type = "Promise<number>")]
    pub fn gc<'env>(&self, env: &'env Env, seconds: f64) -> Result<PromiseRaw<'env, f64>> {
        let h = Arc::clone(&self.inner);
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let secs = seconds.max(0.0) as u64;
        #[allow(clippy::cast_precision_loss)]
        promise(env, h.is_inline(), async move { h.gc(secs).await }, |n| {
            Ok(n as f64)
        })
    }

    /// Refreshes expiry; resolves to `false` when there is no record.
    #[napi(catch_unwind, ts_return_type = "Promise<boolean>")]
    pub fn touch<'env>(&self, env: &'env Env, id: String) -> Result<PromiseRaw<'env, bool>> {
        let h = Arc::clone(&self.inner);
        promise(env, h.is_inline(), async move { h.touch(&id).await }, Ok)
    }

    /// Writes `data` only if the record still holds `previous` (`''`: no record), in one
    /// atomic step; resolves to `true` when written, `false` when the record changed (a
    /// tombstone never matches). Without compare-and-set in the driver it writes and resolves
    /// `true` (last writer wins): see `supportsCas()`.
    #[napi(catch_unwind, ts_return_type = "Promise<boolean>")]
    pub fn write_if_unchanged<'env>(
        &self,
        env: &'env Env,
        id: String,
        data: String,
        previous: String,
    ) -> Result<PromiseRaw<'env, bool>> {
        let h = Arc::clone(&self.inner);
        promise(
            env,
            h.is_inline(),
            async move {
                h.write_if_unchanged(&id, &data, &previous, &WriteMeta::default())
                    .await
            },
            |o| Ok(o == CasOutcome::Written),
        )
    }

    /// Whether this driver's saves compare-and-set (issue 12), or keep last-writer-wins.
    #[napi(catch_unwind)]
    pub fn supports_cas(&self) -> bool {
        self.inner.supports_cas()
    }

    /// One try at the blocking lock of `id` for `ttlMs`: resolves to a token, or `null` when it
    /// is held elsewhere (`SessionHandlerInterface#lock`).
    #[napi(catch_unwind, ts_return_type = "Promise<string | null>")]
    pub fn lock<'env>(
        &self,
        env: &'env Env,
        id: String,
        ttl_ms: f64,
    ) -> Result<PromiseRaw<'env, Option<String>>> {
        let h = Arc::clone(&self.inner);
        let ttl = blocking::check_ms("the lock time", ttl_ms, false);
        promise(
            env,
            h.is_inline(),
            async move { h.lock(&id, ttl?).await },
            Ok,
        )
    }

    /// Releases the blocking lock of `id` if `token` still holds it.
    #[napi(catch_unwind, ts_return_type = "Promise<void>")]
    pub fn unlock<'env>(
        &self,
        env: &'env Env,
        id: String,
        token: String,
    ) -> Result<PromiseRaw<'env, ()>> {
        let h = Arc::clone(&self.inner);
        promise(
            env,
            h.is_inline(),
            async move { h.unlock(&id, &token).await },
            Ok,
        )
    }

    /// Takes the blocking lock of `id` for `lockMs`, waiting up to `waitMs` off the JS thread
    /// (the core's `blocking::acquire`); resolves to the token, rejects `ERR_SESSION_LOCKED`.
    #[napi(catch_unwind, ts_return_type = "Promise<string>")]
    pub fn acquire_lock<'env>(
        &self,
        env: &'env Env,
        id: String,
        lock_ms: f64,
        wait_ms: f64,
    ) -> Result<PromiseRaw<'env, String>> {
        let h = Arc::clone(&self.inner);
        let times = blocking::check_ms("the lock time", lock_ms, false)
            .and_then(|l| Ok((l, blocking::check_ms("the wait", wait_ms, true)?)));
        // Never in place: waiting sleeps on the runtime's timer, even for in-memory handlers.
        promise(
            env,
            false,
            async move {
                let (lock, wait) = times?;
                blocking::acquire(h.as_ref(), &id, lock, wait).await
            },
            Ok,
        )
    }

    /// Whether this driver can lock sessions (opt-in blocking).
    #[napi(catch_unwind)]
    pub fn supports_lock(&self) -> bool {
        self.inner.supports_lock()
    }

    /// Closes connections and threads.
    #[napi(catch_unwind, ts_return_type = "Promise<void>")]
    pub fn close<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, ()>> {
        let h = Arc::clone(&self.inner);
        promise(env, h.is_inline(), async move { h.close().await }, Ok)
    }
}

/// `tombstoneSeconds` from JS: a whole number of seconds, at least 1 (the core checks it
/// against the lifetime, see `handler::tombstone_ms`); `None` keeps tombstones for the lifetime.
pub fn tombstone_secs(v: Option<f64>) -> std::result::Result<Option<u64>, SessionError> {
    match v {
        None => Ok(None),
        Some(s) if (1.0..=9_007_199_254_740_991.0).contains(&s) && s.fract() == 0.0 =>
        {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            Ok(Some(s as u64))
        }
        Some(s) => Err(SessionError::InvalidOption(format!(
            "tombstoneSeconds must be a whole number of seconds from 1 to the lifetime, got {s}"
        ))),
    }
}

/// An in-memory handler; `tombstone_seconds` keeps tombstones that long instead of the lifetime.
#[napi]
pub fn create_array_handler(
    env: Env,
    minutes: f64,
    test_clock_on: Option<bool>,
    tombstone_seconds: Option<f64>,
) -> Result<NativeHandler> {
    let clock = test_clock(test_clock_on);
    let h = ArraySessionHandler::new(minutes, shared(&clock))
        .and_then(|h| h.with_tombstone_secs(tombstone_secs(tombstone_seconds)?))
        .or_throw(&env)?;
    Ok(NativeHandler::new(Arc::new(h), clock))
}

/// Options of `createFileHandler`.
#[napi(object)]
#[derive(Default)]
pub struct FileHandlerOptions {
    /// Deadline of one operation in ms (default 30 000); past it the operation rejects with
    /// `ERR_SESSION_TIMEOUT`.
    pub timeout_ms: Option<f64>,
    /// fsync the session file and the directory on every write and destroy.
    pub durable: Option<bool>,
    /// Largest session file read, in bytes (default 4 MiB); a larger one reads as no session.
    pub max_file_bytes: Option<f64>,
    /// How long a tombstone lives, in seconds (1 to the lifetime; default: the lifetime).
    pub tombstone_seconds: Option<f64>,
}

fn file_options(o: FileHandlerOptions) -> std::result::Result<FileOptions, SessionError> {
    let d = FileOptions::default();
    let whole = |name: &str, v: f64, max: f64| {
        if v.is_finite() && v >= 1.0 && v <= max && v.fract() == 0.0 {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            Ok(v as u64)
        } else {
            Err(SessionError::InvalidOption(format!(
                "{name} must be a whole number from 1 to {max}, got {v}"
            )))
        }
    };
    #[allow(clippy::cast_precision_loss)]
    let max_timeout = MAX_TIMEOUT_MS as f64;
    Ok(FileOptions {
        timeout_ms: match o.timeout_ms {
            Some(ms) => whole("timeoutMs", ms, max_timeout)?,
            None => d.timeout_ms,
        },
        durable: o.durable.unwrap_or(d.durable),
        max_file_bytes: match o.max_file_bytes {
            Some(n) => whole("maxFileBytes", n, 9_007_199_254_740_991.0)?,
            None => d.max_file_bytes,
        },
        tombstone_secs: tombstone_secs(o.tombstone_seconds)?,
    })
}

/// A file handler storing sessions in `path`.
#[napi]
pub fn create_file_handler(
    env: Env,
    path: String,
    minutes: f64,
    test_clock_on: Option<bool>,
    options: Option<FileHandlerOptions>,
) -> Result<NativeHandler> {
    let clock = test_clock(test_clock_on);
    let h = file_options(options.unwrap_or_default())
        .and_then(|o| FileSessionHandler::with_options(path, minutes, shared(&clock), o))
        .or_throw(&env)?;
    Ok(NativeHandler::new(Arc::new(h), clock))
}

/// How long to pause before the next try at a JS driver's lock (the core's
/// `blocking::retry_pause`): `attempt` tries refused so far minus one, `elapsedMs` into a wait of
/// `waitMs`. Throws `ERR_SESSION_LOCKED` when the wait is over.
#[napi]
pub fn lock_retry_pause(
    env: Env,
    id: String,
    attempt: u32,
    elapsed_ms: f64,
    wait_ms: f64,
) -> Result<f64> {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let elapsed = elapsed_ms.max(0.0) as u64;
    let pause = blocking::check_ms("the wait", wait_ms, true)
        .and_then(|wait| blocking::retry_pause(&id, attempt, elapsed, wait))
        .or_throw(&env)?;
    #[allow(clippy::cast_precision_loss)]
    Ok(pause as f64)
}
