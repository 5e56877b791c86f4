//! Custom session handlers written in JavaScript, seen from Rust.
//!
//! The request path does not come through this file. `lib/handler-bridge.js` calls a JS handler
//! on the JS thread and hands the string to one sync native call (`load`, `prepareSave`,
//! `saved`), because that measured several times cheaper than Rust calling the handler, whether
//! directly with a Promise continuation (`startDirect`/`saveDirect`) or through threadsafe
//! functions (`jsHandlerAsNative`); both stay for `bench/bridge.js` in `js_handler_dev.rs`,
//! compiled into contributor builds only.
//!
//! Two calls start off the JS thread and need threadsafe functions (tsfns), all of them weak so
//! they never keep Node alive, all called with `call_async_catch` so a JS throw is a `Result`
//! rather than an uncaught exception:
//! - [`JsHandler`] / [`schedule_gc`]: the handler's methods, bound to the handler, called from
//!   napi's tokio runtime; the HTTP layer's garbage-collection lottery runs `gc` this way, off the
//!   request path.
//! - [`DeadlineTimer`]: the Store's `timeoutMs` timer; a tokio sleep that fires off the JS thread
//!   and rejects the overdue handler calls through a tsfn.
//!
//! Lifetime rule: a tsfn holds its bound function, and with it the handler, as a GC root. A
//! handler that keeps a reference back to an object holding a [`JsHandler`] (a manager, a cache)
//! forms a cycle the GC cannot see through; it is freed after [`JsHandler::close`] drops the
//! tsfns. [`schedule_gc`] drops its tsfn as soon as the run ends, so it never leaks.

use crate::handlers::WriteMetaJs;
use crate::session::NativeSession;
use napi::bindgen_prelude::*;
use napi::sys;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;
use ostro_session_core::SessionError;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

// Bench-only and test-only hooks (the `start_direct`/`save_direct` prototypes, the tsfn path as
// a built-in handle, the panic self-test) live there, out of the shipped addon.
#[cfg(feature = "dev-hooks")]
#[path = "js_handler_dev.rs"]
pub mod dev;

// ----- values coming back from JS ---------------------------------------------------------------

/// What a handler method returned: a plain value, or a native Promise of one (awaited in Rust).
/// Non-native thenables count as plain values.
pub enum MaybeAsync<T: FromNapiValue + 'static> {
    /// A plain value.
    Ready(T),
    /// A Promise, settled later on the JS thread.
    Pending(Promise<T>),
}

impl<T: FromNapiValue + Send + 'static> MaybeAsync<T> {
    /// The value, awaiting the Promise if there is one.
    async fn settle(self) -> Result<T> {
        match self {
            Self::Ready(v) => Ok(v),
            Self::Pending(p) => p.await,
        }
    }
}

impl<T: FromNapiValue + 'static> FromNapiValue for MaybeAsync<T> {
    unsafe fn from_napi_value(env: sys::napi_env, v: sys::napi_value) -> Result<Self> {
        let mut is_promise = false;
        // SAFETY: env and v come from napi for this call.
        check_status!(unsafe { sys::napi_is_promise(env, v, &mut is_promise) })?;
        if is_promise {
            Ok(Self::Pending(unsafe { Promise::from_napi_value(env, v) }?))
        } else {
            Ok(Self::Ready(unsafe { T::from_napi_value(env, v) }?))
        }
    }
}

/// A result whose value does not matter (`write`, `destroy`, `open`, `close`).
pub struct Ignored;

impl FromNapiValue for Ignored {
    unsafe fn from_napi_value(_: sys::napi_env, _: sys::napi_value) -> Result<Self> {
        Ok(Ignored)
    }
}

impl TypeName for Ignored {
    fn type_name() -> &'static str {
        "unknown"
    }
    fn value_type() -> ValueType {
        ValueType::Unknown
    }
}

impl ValidateNapiValue for Ignored {}

fn type_of(env: sys::napi_env, v: sys::napi_value) -> Result<sys::napi_valuetype> {
    let mut t = 0;
    // SAFETY: env and v come from napi for this call.
    check_status!(unsafe { sys::napi_typeof(env, v, &mut t) })?;
    Ok(t)
}

fn describe(env: sys::napi_env, v: sys::napi_value) -> Result<&'static str> {
    Ok(match type_of(env, v)? {
        sys::ValueType::napi_string => "a string",
        sys::ValueType::napi_number => "a number",
        sys::ValueType::napi_boolean => "a boolean",
        sys::ValueType::napi_bigint => "a bigint",
        sys::ValueType::napi_symbol => "a symbol",
        sys::ValueType::napi_function => "a function",
        sys::ValueType::napi_object => {
            let mut is_array = false;
            // SAFETY: as above.
            check_status!(unsafe { sys::napi_is_array(env, v, &mut is_array) })?;
            if is_array {
                "an array"
            } else {
                "an object"
            }
        }
        _ => "an unsupported value",
    })
}

/// `read()`'s result: a string, or `''`/`null`/`undefined` for none. Anything else is refused,
/// never coerced.
pub struct ReadValue(pub String);

impl FromNapiValue for ReadValue {
    unsafe fn from_napi_value(env: sys::napi_env, v: sys::napi_value) -> Result<Self> {
        match type_of(env, v)? {
            sys::ValueType::napi_string => Ok(Self(unsafe { String::from_napi_value(env, v) }?)),
            sys::ValueType::napi_undefined | sys::ValueType::napi_null => Ok(Self(String::new())),
            _ => Err(coded(
                &SessionError::Value(format!(
                    "session handler read() must return a string (or null/undefined when there is none), got {}",
                    describe(env, v)?
                )),
            )),
        }
    }
}

/// `gc()`'s result: how many sessions were removed; `undefined`/`null` count as 0.
pub struct GcCount(pub u64);

impl FromNapiValue for GcCount {
    unsafe fn from_napi_value(env: sys::napi_env, v: sys::napi_value) -> Result<Self> {
        match type_of(env, v)? {
            sys::ValueType::napi_undefined | sys::ValueType::napi_null => Ok(Self(0)),
            sys::ValueType::napi_number => {
                let n = unsafe { f64::from_napi_value(env, v) }?;
                if n.is_finite() && n >= 0.0 {
                    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                    Ok(Self(n as u64))
                } else {
                    Err(coded(&SessionError::Handler(format!(
                        "session handler gc() must return a count of removed sessions, got {n}"
                    ))))
                }
            }
            _ => Err(coded(&SessionError::Handler(format!(
                "session handler gc() must return a number or undefined, got {}",
                describe(env, v)?
            )))),
        }
    }
}

/// `touch()`'s result: only `false` means "no record"; anything else means it was refreshed.
pub struct Found(pub bool);

impl FromNapiValue for Found {
    unsafe fn from_napi_value(env: sys::napi_env, v: sys::napi_value) -> Result<Self> {
        if type_of(env, v)? == sys::ValueType::napi_boolean {
            return Ok(Self(unsafe { bool::from_napi_value(env, v) }?));
        }
        Ok(Self(true))
    }
}

/// `writeIfUnchanged()`'s result: `true` (written) or `false` (the record changed); anything
/// else is refused, never coerced (as in `lib/handler-bridge.js`).
pub struct CasAnswer(pub bool);

impl FromNapiValue for CasAnswer {
    unsafe fn from_napi_value(env: sys::napi_env, v: sys::napi_value) -> Result<Self> {
        if type_of(env, v)? == sys::ValueType::napi_boolean {
            return Ok(Self(unsafe { bool::from_napi_value(env, v) }?));
        }
        Err(coded(&SessionError::Value(format!(
            "session handler writeIfUnchanged() must return true or false (or a Promise of one), got {}",
            describe(env, v)?
        ))))
    }
}

/// `lock()`'s result: a token, or `null`/`undefined` when the lock is held elsewhere.
pub struct LockToken(pub Option<String>);

impl FromNapiValue for LockToken {
    unsafe fn from_napi_value(env: sys::napi_env, v: sys::napi_value) -> Result<Self> {
        match type_of(env, v)? {
            sys::ValueType::napi_string => {
                Ok(Self(Some(unsafe { String::from_napi_value(env, v) }?)))
            }
            sys::ValueType::napi_undefined | sys::ValueType::napi_null => Ok(Self(None)),
            _ => Err(coded(&SessionError::Value(format!(
                "session handler lock() must return a token string, or null when the lock is held elsewhere, got {}",
                describe(env, v)?
            )))),
        }
    }
}

// ----- errors -------------------------------------------------------------------------------------

/// A napi error carrying an engine error's code as the `[ERR_SESSION_X] ` prefix.
fn coded(e: &SessionError) -> Error {
    crate::errors::reject(e)
}

/// Runs a future, turning a panic into an `ERR_SESSION_HANDLER` error instead of a bare
/// rejection (napi-rs would reject with `GenericFailure` and the panic text).
struct CatchUnwind<F>(Pin<Box<F>>);

impl<T, F: Future<Output = Result<T>>> Future for CatchUnwind<F> {
    type Output = Result<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let fut = self.0.as_mut();
        match catch_unwind(AssertUnwindSafe(|| fut.poll(cx))) {
            Ok(p) => p,
            Err(payload) => {
                let msg = payload
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".to_owned());
                Poll::Ready(Err(coded(&SessionError::Handler(format!(
                    "the session handler bridge panicked: {msg}"
                )))))
            }
        }
    }
}

fn guarded<T, F: Future<Output = Result<T>>>(f: F) -> CatchUnwind<F> {
    CatchUnwind(Box::pin(f))
}

// ----- the handler's methods as weak threadsafe functions -----------------------------------------

/// A weak, bound, non-callee-handled tsfn whose JS function returns `R` or a Promise of `R`.
type Tsfn<A, R> = ThreadsafeFunction<A, MaybeAsync<R>, A, Status, false, true>;
type WriteArgs = FnArgs<(String, String, Option<WriteMetaJs>)>;
type CasArgs = FnArgs<(String, String, String)>;

struct Methods {
    read: Tsfn<String, ReadValue>,
    write: Tsfn<WriteArgs, Ignored>,
    destroy: Tsfn<String, Ignored>,
    gc: Option<Tsfn<f64, GcCount>>,
    touch: Option<Tsfn<String, Found>>,
    open: Option<Tsfn<FnArgs<(String, String)>, Ignored>>,
    close: Option<Tsfn<(), Ignored>>,
    // The optional compare-and-set and blocking methods (issue 12).
    write_if_unchanged: Option<Tsfn<CasArgs, CasAnswer>>,
    lock: Option<Tsfn<FnArgs<(String, f64)>, LockToken>>,
    unlock: Option<Tsfn<FnArgs<(String, String)>, Ignored>>,
}

/// The handler's method `name`, if it is a function.
fn method<'env, A: JsValuesTupleIntoVec, R>(
    env: &Env,
    handler: &Object<'env>,
    name: &str,
) -> Result<Option<Function<'env, A, R>>> {
    let v: Unknown = handler.get_named_property_unchecked(name)?;
    if v.get_type()? != ValueType::Function {
        return Ok(None);
    }
    // SAFETY: the value is a function of this env.
    Ok(Some(unsafe {
        Function::from_napi_value(env.raw(), v.raw())
    }?))
}

/// Binds `f` to `handler` (a tsfn calls with `this === undefined`) and makes a weak tsfn of it.
fn tsfn<A, R>(handler: &Object, f: Function<A, MaybeAsync<R>>) -> Result<Tsfn<A, R>>
where
    A: JsValuesTupleIntoVec + 'static,
    R: FromNapiValue + 'static,
{
    f.bind(handler)?
        .build_threadsafe_function::<A>()
        .callee_handled::<false>()
        .weak::<true>()
        .build()
}

fn optional<A, R>(env: &Env, handler: &Object, name: &str) -> Result<Option<Tsfn<A, R>>>
where
    A: JsValuesTupleIntoVec + 'static,
    R: FromNapiValue + 'static,
{
    method::<A, MaybeAsync<R>>(env, handler, name)?
        .map(|f| tsfn(handler, f))
        .transpose()
}

/// Options of a [`JsHandler`].
#[napi(object)]
#[derive(Default)]
pub struct JsHandlerOptions {
    /// How long one handler call may take before it fails with `ERR_SESSION_TIMEOUT` (default 30 000).
    pub timeout_ms: Option<f64>,
    /// First argument of `open()`.
    pub save_path: Option<String>,
    /// Second argument of `open()` (the cookie name).
    pub session_name: Option<String>,
    /// Whether `open()` already ran on the JS side; it is then not called again.
    pub opened: Option<bool>,
}

fn timeout_of(ms: Option<f64>) -> Duration {
    let ms = ms.filter(|m| m.is_finite() && *m > 0.0).unwrap_or(30_000.0);
    Duration::from_secs_f64(ms / 1000.0)
}

struct Inner {
    // `None` after close(): the tsfns are released and the handler can be collected.
    methods: RwLock<Option<Arc<Methods>>>,
    timeout: Duration,
    save_path: String,
    session_name: String,
    opened: tokio::sync::Mutex<bool>,
    // Whether the handler has writeIfUnchanged(), and lock() with unlock(): read by the engine's
    // handler trait over this bridge (src/js_handler_dev.rs).
    #[cfg_attr(not(feature = "dev-hooks"), allow(dead_code))]
    cas: bool,
    #[cfg_attr(not(feature = "dev-hooks"), allow(dead_code))]
    locks: bool,
}

impl Inner {
    fn methods(&self) -> Result<Arc<Methods>> {
        self.methods
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
            .ok_or_else(|| {
                coded(&SessionError::Handler(
                    "the session handler bridge is closed".into(),
                ))
            })
    }

    /// Calls a tsfn and awaits its value or Promise, with the deadline of `timeout`. A late
    /// result lands in a dropped channel and is ignored.
    async fn call<A, R>(&self, what: &str, f: &Tsfn<A, R>, arg: A) -> Result<R>
    where
        A: JsValuesTupleIntoVec + Send + 'static,
        R: FromNapiValue + Send + 'static,
    {
        let run = async { f.call_async_catch(arg).await?.settle().await };
        match tokio::time::timeout(self.timeout, run).await {
            Ok(r) => r,
            Err(_) => Err(coded(&SessionError::Timeout(format!(
                "session handler {what}() did not settle within {} ms",
                self.timeout.as_millis()
            )))),
        }
    }

    /// `open()` once, before the first read; a failed open is retried by the next operation.
    async fn ensure_open(&self, m: &Methods) -> Result<()> {
        let Some(open) = &m.open else { return Ok(()) };
        let mut opened = self.opened.lock().await;
        if !*opened {
            let args = (self.save_path.clone(), self.session_name.clone()).into();
            self.call("open", open, args).await?;
            *opened = true;
        }
        Ok(())
    }

    async fn read(&self, id: String) -> Result<String> {
        let m = self.methods()?;
        self.ensure_open(&m).await?;
        Ok(self.call("read", &m.read, id).await?.0)
    }

    async fn write(&self, id: String, data: String, meta: Option<WriteMetaJs>) -> Result<()> {
        let m = self.methods()?;
        self.ensure_open(&m).await?;
        self.call("write", &m.write, (id, data, meta).into())
            .await?;
        Ok(())
    }

    async fn destroy(&self, id: String) -> Result<()> {
        let m = self.methods()?;
        self.ensure_open(&m).await?;
        self.call("destroy", &m.destroy, id).await?;
        Ok(())
    }

    async fn gc(&self, seconds: f64) -> Result<u64> {
        let m = self.methods()?;
        let Some(gc) = &m.gc else { return Ok(0) };
        self.ensure_open(&m).await?;
        Ok(self.call("gc", gc, seconds).await?.0)
    }

    /// `Ok(None)` when the handler has no `touch`: the caller writes instead.
    async fn touch(&self, id: String) -> Result<Option<bool>> {
        let m = self.methods()?;
        let Some(touch) = &m.touch else {
            return Ok(None);
        };
        self.ensure_open(&m).await?;
        Ok(Some(self.call("touch", touch, id).await?.0))
    }

    /// Calls the handler's `close()` if it has one, then drops every tsfn.
    async fn close(&self) -> Result<()> {
        let taken = self
            .methods
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(close) = taken.as_ref().and_then(|m| m.close.as_ref()) {
            self.call("close", close, ()).await?;
        }
        Ok(())
    }
}

fn invalid(env: &Env, msg: String) -> Error {
    crate::errors::throw(env, &SessionError::InvalidOption(msg))
}

/// A JS session handler whose methods Rust calls from napi's tokio runtime through weak, bound
/// threadsafe functions. Every method returns a Promise and may be called from JS; the work
/// starts off the JS thread, so the call itself never runs the handler synchronously.
///
/// Errors: a handler's thrown or rejected value rejects the Promise as the same value;
/// `lib/handler-bridge.js` wraps non-Error values in an `ERR_SESSION_HANDLER` error.
///
/// `close()` calls the handler's `close()` (if any) and drops the tsfns: a handler that refers
/// back to whatever holds this object is freed only after `close()`.
#[napi]
pub struct JsHandler {
    inner: Arc<Inner>,
}

#[napi]
impl JsHandler {
    /// Builds tsfns for `handler`'s methods; refuses a handler without `read`, `write` or `destroy`.
    #[napi(
        constructor,
        ts_args_type = "handler: object, options?: JsHandlerOptions"
    )]
    pub fn new(env: Env, handler: Object, options: Option<JsHandlerOptions>) -> Result<Self> {
        let read = method(&env, &handler, "read")?;
        let write = method(&env, &handler, "write")?;
        let destroy = method(&env, &handler, "destroy")?;
        let (Some(read), Some(write), Some(destroy)) = (read, write, destroy) else {
            let missing: Vec<&str> = ["read", "write", "destroy"]
                .into_iter()
                .filter(|m| {
                    handler
                        .get_named_property_unchecked::<Unknown>(m)
                        .and_then(|v| v.get_type())
                        .map_or(true, |t| t != ValueType::Function)
                })
                .map(|m| match m {
                    "read" => "read()",
                    "write" => "write()",
                    _ => "destroy()",
                })
                .collect();
            return Err(invalid(
                &env,
                format!("the session handler is missing {}", missing.join(", ")),
            ));
        };
        let methods = Methods {
            read: tsfn(&handler, read)?,
            write: tsfn(&handler, write)?,
            destroy: tsfn(&handler, destroy)?,
            gc: optional(&env, &handler, "gc")?,
            touch: optional(&env, &handler, "touch")?,
            open: optional(&env, &handler, "open")?,
            close: optional(&env, &handler, "close")?,
            write_if_unchanged: optional(&env, &handler, "writeIfUnchanged")?,
            lock: optional(&env, &handler, "lock")?,
            unlock: optional(&env, &handler, "unlock")?,
        };
        let supports = (
            methods.write_if_unchanged.is_some(),
            methods.lock.is_some() && methods.unlock.is_some(),
        );
        let o = options.unwrap_or_default();
        Ok(Self {
            inner: Arc::new(Inner {
                methods: RwLock::new(Some(Arc::new(methods))),
                timeout: timeout_of(o.timeout_ms),
                save_path: o.save_path.unwrap_or_default(),
                session_name: o.session_name.unwrap_or_default(),
                opened: tokio::sync::Mutex::new(o.opened.unwrap_or(false)),
                cas: supports.0,
                locks: supports.1,
            }),
        })
    }

    /// Resolves to the stored payload or `''` (`open()` first, once).
    #[napi(ts_return_type = "Promise<string>")]
    pub fn read<'env>(&self, env: &'env Env, id: String) -> Result<PromiseRaw<'env, String>> {
        let h = Arc::clone(&self.inner);
        env.spawn_future(guarded(async move { h.read(id).await }))
    }

    /// Stores a payload.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn write<'env>(
        &self,
        env: &'env Env,
        id: String,
        data: String,
        meta: Option<WriteMetaJs>,
    ) -> Result<PromiseRaw<'env, ()>> {
        let h = Arc::clone(&self.inner);
        env.spawn_future(guarded(async move { h.write(id, data, meta).await }))
    }

    /// Removes a record.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn destroy<'env>(&self, env: &'env Env, id: String) -> Result<PromiseRaw<'env, ()>> {
        let h = Arc::clone(&self.inner);
        env.spawn_future(guarded(async move { h.destroy(id).await }))
    }

    /// Runs the handler's `gc(lifetimeSeconds)` from the tokio runtime; resolves to the count
    /// (0 when it returns `undefined` or has no `gc`).
    #[napi(ts_return_type = "Promise<number>")]
    pub fn gc<'env>(&self, env: &'env Env, lifetime_seconds: f64) -> Result<PromiseRaw<'env, f64>> {
        let h = Arc::clone(&self.inner);
        #[allow(clippy::cast_precision_loss)]
        env.spawn_future(guarded(async move {
            h.gc(lifetime_seconds).await.map(|n| n as f64)
        }))
    }

    /// Resolves to `false` when there was no record, `null` when the handler has no `touch`.
    #[napi(ts_return_type = "Promise<boolean | null>")]
    pub fn touch<'env>(
        &self,
        env: &'env Env,
        id: String,
    ) -> Result<PromiseRaw<'env, Option<bool>>> {
        let h = Arc::clone(&self.inner);
        env.spawn_future(guarded(async move { h.touch(id).await }))
    }

    /// Calls the handler's `close()` if any, then drops the threadsafe functions; later calls
    /// fail with `ERR_SESSION_HANDLER`.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn close<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, ()>> {
        let h = Arc::clone(&self.inner);
        env.spawn_future(guarded(async move { h.close().await }))
    }
}

/// Runs `handler.gc(lifetimeSeconds)` from napi's tokio runtime through a weak tsfn, off the
/// request path; resolves to the count (0 for `undefined` or no `gc`). The tsfn exists only for
/// this run, so nothing outlives it. `open()` is not called here: `lib/handler-bridge.js`
/// opens the handler first, sharing the once-per-handler state of the request path.
#[napi(
    ts_args_type = "handler: object, lifetimeSeconds: number, timeoutMs?: number",
    ts_return_type = "Promise<number>"
)]
pub fn schedule_gc<'env>(
    env: &'env Env,
    handler: Object,
    lifetime_seconds: f64,
    timeout_ms: Option<f64>,
) -> Result<PromiseRaw<'env, f64>> {
    if !lifetime_seconds.is_finite() || lifetime_seconds < 0.0 {
        return Err(invalid(env, "gc() takes a lifetime in seconds".into()));
    }
    let Some(gc) = optional::<f64, GcCount>(env, &handler, "gc")? else {
        return PromiseRaw::resolve(env, 0.0);
    };
    let timeout = timeout_of(timeout_ms);
    #[allow(clippy::cast_precision_loss)]
    env.spawn_future(guarded(async move {
        let run = async { gc.call_async_catch(lifetime_seconds).await?.settle().await };
        match tokio::time::timeout(timeout, run).await {
            Ok(r) => r.map(|n| n.0 as f64),
            Err(_) => Err(coded(&SessionError::Timeout(format!(
                "session handler gc() did not settle within {} ms",
                timeout.as_millis()
            )))),
        }
    }))
}

// ----- the timeoutMs timer ------------------------------------------------------------------------

type FireFn = ThreadsafeFunction<(), Ignored, (), Status, false, true>;

/// A one-shot timer on napi's tokio runtime. When it fires, it calls `onFire` on the JS thread
/// through a weak tsfn; `lib/handler-bridge.js` then rejects every overdue handler call with
/// `ERR_SESSION_TIMEOUT` and re-arms for the next deadline. One timer serves every pending call,
/// so a handler call costs no native call at all while a timer is already armed early enough.
/// Being weak, it never keeps Node alive on its own.
#[napi]
pub struct DeadlineTimer {
    fire: Arc<FireFn>,
    armed: Mutex<Option<tokio::task::AbortHandle>>,
}

#[napi]
impl DeadlineTimer {
    /// A timer calling `onFire()` when it expires.
    #[napi(constructor, ts_args_type = "onFire: () => void")]
    pub fn new(on_fire: Function<(), Ignored>) -> Result<Self> {
        let fire = on_fire
            .build_threadsafe_function::<()>()
            .callee_handled::<false>()
            .weak::<true>()
            .build()?;
        Ok(Self {
            fire: Arc::new(fire),
            armed: Mutex::new(None),
        })
    }

    /// (Re)arms the timer to fire once after `ms` milliseconds, replacing any armed one.
    #[napi(catch_unwind)]
    pub fn arm(&self, ms: f64) {
        let ms = if ms.is_finite() { ms.max(0.0) } else { 0.0 };
        let fire = Arc::clone(&self.fire);
        let task = napi::bindgen_prelude::spawn(async move {
            tokio::time::sleep(Duration::from_secs_f64(ms / 1000.0)).await;
            // Closing (Node exiting) is fine: nothing is left to time out.
            let _ = fire.call((), ThreadsafeFunctionCallMode::NonBlocking);
        });
        let previous = self
            .armed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .replace(task.abort_handle());
        if let Some(p) = previous {
            p.abort();
        }
    }

    /// Cancels the armed timer, if any.
    #[napi]
    pub fn disarm(&self) {
        let previous = self
            .armed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(p) = previous {
            p.abort();
        }
    }
}

// ----- the request path: one native call that calls the handler --------------------------------

/// What a direct handler call returned: a thenable (handed back to JS to await with its
/// deadline), or a plain value.
fn thenable<'env>(env: &Env, v: Unknown<'env>) -> Result<Option<Unknown<'env>>> {
    let raw = v.raw();
    let mut t = 0;
    // SAFETY: raw is a value of this env.
    check_status!(unsafe { sys::napi_typeof(env.raw(), raw, &mut t) })?;
    if t != sys::ValueType::napi_object {
        return Ok(None);
    }
    let mut is_promise = false;
    // SAFETY: as above.
    check_status!(unsafe { sys::napi_is_promise(env.raw(), raw, &mut is_promise) })?;
    if is_promise {
        return Ok(Some(v));
    }
    // SAFETY: raw is an object of this env.
    let obj = unsafe { Object::from_napi_value(env.raw(), raw) }?;
    let then: Unknown = obj.get_c_named_property_unchecked(c"then")?;
    Ok((then.get_type()? == ValueType::Function).then_some(v))
}

/// `start()`'s read on the JS thread, in one native call: Rust calls `handler.read(id)` itself.
/// A plain result is checked and loaded into the session at once and `true` comes back, or the
/// load's next step (`['destroy', id]`, `['read', id]`, `['renew', …]`: see
/// `NativeSession#afterRead`) when the load goes on; a thenable comes back as is, for
/// `lib/handler-bridge.js` to await with the `timeoutMs` deadline and then `load`. What the
/// handler throws propagates unchanged (the same object).
#[napi(
    ts_args_type = "session: NativeSession, handler: object",
    ts_return_type = "true | string[] | PromiseLike<unknown>"
)]
pub fn read_into<'env>(
    env: &'env Env,
    session: &NativeSession,
    handler: Object<'env>,
) -> Result<Either3<bool, Vec<String>, Unknown<'env>>> {
    let read: Function<String, Unknown> = handler.get_c_named_property_unchecked(c"read")?;
    let v = read.apply(handler, session.get_id())?;
    if let Some(p) = thenable(env, v)? {
        return Ok(Either3::C(p));
    }
    // SAFETY: v is a value of this env.
    let raw = match unsafe { ReadValue::from_napi_value(env.raw(), v.raw()) } {
        Ok(r) => r.0,
        Err(_) => {
            let msg = format!(
                "session handler read() must return a string (or null/undefined when there is none), got {}",
                describe(env.raw(), v.raw())?
            );
            return Err(crate::errors::throw(env, &SessionError::Value(msg)));
        }
    };
    Ok(match session.load(*env, raw)? {
        None => Either3::A(true),
        Some(step) => Either3::B(step),
    })
}

/// `save()`'s write on the JS thread, in one native call: ages flash data, then, when the engine
/// asks for a write (changed or new session), calls `handler.write(id, payload, meta)` itself.
/// Returns `true` when the write completed (the session is marked saved), `null` when the engine
/// asks for a touch first (the caller touches and follows `afterTouch`), or the write's thenable
/// for the caller to await with its deadline before `saved()`. What the handler throws
/// propagates unchanged.
#[napi(
    ts_args_type = "session: NativeSession, handler: object, resave: boolean, meta?: object",
    ts_return_type = "true | null | PromiseLike<unknown>"
)]
pub fn write_from<'env>(
    env: &'env Env,
    session: &NativeSession,
    handler: Object<'env>,
    resave: bool,
    meta: Unknown<'env>,
) -> Result<Option<Either<bool, Unknown<'env>>>> {
    let Some(payload) = session.prepare_save(*env, resave, None)? else {
        return Ok(None);
    };
    let write: Function<FnArgs<(String, String, Unknown)>, Unknown> =
        handler.get_c_named_property_unchecked(c"write")?;
    let v = write.apply(handler, (session.get_id(), payload, meta).into())?;
    if let Some(p) = thenable(env, v)? {
        return Ok(Some(Either::B(p)));
    }
    session.saved();
    Ok(Some(Either::A(true)))
}
