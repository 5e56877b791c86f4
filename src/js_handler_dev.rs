//! Bench-only and test-only hooks of the JS-handler bridge, compiled into contributor builds
//! only (cargo feature `dev-hooks`, which `npm run build` turns on and the release workflow's
//! `--target` builds leave off), so that the shipped addon carries none of them:
//! - `bench/bridge.js` compares `lib/handler-bridge.js` with two designs it measured slower: Rust
//!   calling the handler directly on the JS thread ([`start_direct`]/[`save_direct`]), and Rust
//!   calling it through the tsfns from tokio ([`js_handler_as_native`]);
//! - `__test__/js-handler.test.js` checks that a panic inside the bridge becomes a rejection
//!   ([`panic_in_bridge`]).

use super::{guarded, invalid, method, Ignored, Inner, JsHandler, ReadValue};
use crate::handlers::{NativeHandler, WriteMetaJs};
use crate::session::NativeSession;
use napi::bindgen_prelude::*;
use napi::sys;
use napi_derive::napi;
use ostro_session_core::{CasOutcome, SessionError, SessionHandler, WriteMeta};
use std::sync::Arc;

/// `handler` as a built-in handle, so the engine's own `startNative`/`saveNative` drive it
/// through the tsfns (the path `bench/bridge.js` measures against the JS one).
#[napi]
pub fn js_handler_as_native(handler: &JsHandler) -> NativeHandler {
    NativeHandler::new(Arc::clone(&handler.inner) as Arc<dyn SessionHandler>, None)
}

/// Recovers the engine error from a napi error, for the pure-Rust `SessionHandler` impl. The
/// JS object of a handler's own error cannot travel in a `SessionError`; the napi-facing methods
/// of [`JsHandler`] therefore keep the napi error, which carries that object.
fn to_session_error(what: &str, e: &Error) -> SessionError {
    let reason = e.reason.as_str();
    if let Some(rest) = reason.strip_prefix('[') {
        if let Some((code, msg)) = rest.split_once("] ") {
            let msg = msg.to_owned();
            match code {
                "ERR_SESSION_TIMEOUT" => return SessionError::Timeout(msg),
                "ERR_SESSION_VALUE" => return SessionError::Value(msg),
                "ERR_SESSION_HANDLER" => return SessionError::Handler(msg),
                "ERR_SESSION_LOCKED" => return SessionError::Locked(msg),
                _ => {}
            }
        }
    }
    SessionError::Handler(format!("session handler {what}() failed: {reason}"))
}

fn meta_js(meta: &WriteMeta) -> Option<WriteMetaJs> {
    if meta.ip.is_none() && meta.user_agent.is_none() && meta.user_id.is_none() {
        return None;
    }
    Some(WriteMetaJs {
        ip: meta.ip.clone(),
        user_agent: meta.user_agent.clone(),
        user_id: meta.user_id.clone(),
    })
}

/// The engine's handler trait over a JS handler, for Rust callers off the JS thread. Errors keep
/// their code; a handler's own Error object becomes an `ERR_SESSION_HANDLER` message here.
#[async_trait::async_trait]
impl SessionHandler for Inner {
    async fn open(&self) -> ostro_session_core::Result<()> {
        let m = self.methods().map_err(|e| to_session_error("open", &e))?;
        self.ensure_open(&m)
            .await
            .map_err(|e| to_session_error("open", &e))
    }
    async fn close(&self) -> ostro_session_core::Result<()> {
        Inner::close(self)
            .await
            .map_err(|e| to_session_error("close", &e))
    }
    async fn read(&self, id: &str) -> ostro_session_core::Result<String> {
        Inner::read(self, id.to_owned())
            .await
            .map_err(|e| to_session_error("read", &e))
    }
    async fn write(
        &self,
        id: &str,
        data: &str,
        meta: &WriteMeta,
    ) -> ostro_session_core::Result<()> {
        Inner::write(self, id.to_owned(), data.to_owned(), meta_js(meta))
            .await
            .map_err(|e| to_session_error("write", &e))
    }
    async fn destroy(&self, id: &str) -> ostro_session_core::Result<()> {
        Inner::destroy(self, id.to_owned())
            .await
            .map_err(|e| to_session_error("destroy", &e))
    }
    async fn gc(&self, max_lifetime_secs: u64) -> ostro_session_core::Result<u64> {
        #[allow(clippy::cast_precision_loss)]
        let secs = max_lifetime_secs as f64;
        Inner::gc(self, secs)
            .await
            .map_err(|e| to_session_error("gc", &e))
    }
    async fn touch(&self, id: &str) -> ostro_session_core::Result<bool> {
        let found = Inner::touch(self, id.to_owned())
            .await
            .map_err(|e| to_session_error("touch", &e))?;
        if let Some(found) = found {
            return Ok(found);
        }
        // No touch(): read, and write the stored text back to refresh its expiry. A record that
        // is gone stays gone (see `Session::after_touch`), as with lib/handler-bridge.js.
        let raw = SessionHandler::read(self, id).await?;
        if raw.is_empty() {
            return Ok(false);
        }
        SessionHandler::write(self, id, &raw, &WriteMeta::default()).await?;
        Ok(true)
    }
    async fn write_if_unchanged(
        &self,
        id: &str,
        data: &str,
        previous: &str,
        meta: &WriteMeta,
    ) -> ostro_session_core::Result<CasOutcome> {
        let fail = |e: Error| to_session_error("writeIfUnchanged", &e);
        let m = self.methods().map_err(fail)?;
        let Some(cas) = &m.write_if_unchanged else {
            SessionHandler::write(self, id, data, meta).await?;
            return Ok(CasOutcome::Written);
        };
        self.ensure_open(&m).await.map_err(fail)?;
        let args = (id.to_owned(), data.to_owned(), previous.to_owned()).into();
        if self
            .call("writeIfUnchanged", cas, args)
            .await
            .map_err(fail)?
            .0
        {
            return Ok(CasOutcome::Written);
        }
        // Refused: what the record holds now, for the engine to replay onto.
        Ok(CasOutcome::Conflict(SessionHandler::read(self, id).await?))
    }
    fn supports_cas(&self) -> bool {
        self.cas
    }
    async fn lock(&self, id: &str, ttl_ms: u64) -> ostro_session_core::Result<Option<String>> {
        let fail = |e: Error| to_session_error("lock", &e);
        let m = self.methods().map_err(fail)?;
        let Some(lock) = &m.lock else {
            return Err(ostro_session_core::blocking::unsupported());
        };
        self.ensure_open(&m).await.map_err(fail)?;
        #[allow(clippy::cast_precision_loss)]
        let args = (id.to_owned(), ttl_ms as f64).into();
        Ok(self.call("lock", lock, args).await.map_err(fail)?.0)
    }
    async fn unlock(&self, id: &str, token: &str) -> ostro_session_core::Result<()> {
        let fail = |e: Error| to_session_error("unlock", &e);
        let m = self.methods().map_err(fail)?;
        let Some(unlock) = &m.unlock else {
            return Err(ostro_session_core::blocking::unsupported());
        };
        self.ensure_open(&m).await.map_err(fail)?;
        let args = (id.to_owned(), token.to_owned()).into();
        self.call("unlock", unlock, args).await.map_err(fail)?;
        Ok(())
    }
    fn supports_lock(&self) -> bool {
        self.locks
    }
}

/// Prototype kept for `bench/bridge.js`: `start()` with Rust calling `handler.read` directly on
/// the JS thread and applying the result in a Promise continuation. Measured slower than
/// `lib/handler-bridge.js` (JS awaits the handler, then one sync `load`), so the Store does not
/// use it. A sync throw from the handler is thrown, not turned into a rejection.
#[napi(
    ts_args_type = "session: NativeSession, handler: object",
    ts_return_type = "Promise<boolean>"
)]
pub fn start_direct<'env>(
    env: &'env Env,
    session: Object<'env>,
    handler: Object<'env>,
) -> Result<PromiseRaw<'env, bool>> {
    let session = session_ref(env, &session)?;
    let Some(read) = method::<String, MaybeRaw<ReadValue>>(env, &handler, "read")? else {
        return Err(invalid(env, "the session handler is missing read()".into()));
    };
    match read.apply(handler, session.get_id())? {
        MaybeRaw::Ready(raw) => {
            session.load(*env, raw.0)?;
            PromiseRaw::resolve(env, true)
        }
        MaybeRaw::Pending(p) => {
            let p: PromiseRaw<'env, ReadValue> = PromiseRaw::new(env.raw(), p);
            p.then(move |ctx| {
                session.load(ctx.env, ctx.value.0)?;
                Ok(true)
            })
        }
    }
}

/// Prototype kept for `bench/bridge.js`: `save()` with Rust calling `handler.write` directly
/// (always a write; no touch) and marking the session saved in a Promise continuation. Not a
/// save path of the Store: it would write an unchanged session back (see `Session::after_touch`).
#[napi(
    ts_args_type = "session: NativeSession, handler: object",
    ts_return_type = "Promise<void>"
)]
pub fn save_direct<'env>(
    env: &'env Env,
    session: Object<'env>,
    handler: Object<'env>,
) -> Result<PromiseRaw<'env, ()>> {
    let session = session_ref(env, &session)?;
    let Some(write) =
        method::<FnArgs<(String, String)>, MaybeRaw<Ignored>>(env, &handler, "write")?
    else {
        return Err(invalid(
            env,
            "the session handler is missing write()".into(),
        ));
    };
    let payload = match session.prepare_save(*env, false, None)? {
        Some(p) => p,
        None => session.payload(*env)?,
    };
    match write.apply(handler, (session.get_id(), payload).into())? {
        MaybeRaw::Ready(_) => {
            session.saved();
            PromiseRaw::resolve(env, ())
        }
        MaybeRaw::Pending(p) => {
            let p: PromiseRaw<'env, Ignored> = PromiseRaw::new(env.raw(), p);
            p.then(move |_| {
                session.saved();
                Ok(())
            })
        }
    }
}

/// A counted reference to the `NativeSession` behind `obj`, so a continuation can keep it.
fn session_ref(env: &Env, obj: &Object) -> Result<Reference<NativeSession>> {
    // SAFETY: env and the value are live for this call; napi checks the type tag.
    unsafe { Reference::<NativeSession>::from_napi_value(env.raw(), obj.raw()) }
}

/// A value or the raw Promise, on the JS thread (no channel, unlike [`MaybeAsync`]).
pub enum MaybeRaw<T> {
    /// A plain value.
    Ready(T),
    /// A native Promise.
    Pending(sys::napi_value),
}

impl<T: FromNapiValue> FromNapiValue for MaybeRaw<T> {
    unsafe fn from_napi_value(env: sys::napi_env, v: sys::napi_value) -> Result<Self> {
        let mut is_promise = false;
        // SAFETY: env and v come from napi for this call.
        check_status!(unsafe { sys::napi_is_promise(env, v, &mut is_promise) })?;
        if is_promise {
            Ok(Self::Pending(v))
        } else {
            Ok(Self::Ready(unsafe { T::from_napi_value(env, v) }?))
        }
    }
}

/// Test hook for `__test__/js-handler.test.js`: a Promise whose work panics inside the bridge's
/// guard, to check that a Rust panic becomes an `ERR_SESSION_HANDLER` rejection and the process
/// lives on.
#[napi(js_name = "__panicInBridge", ts_return_type = "Promise<void>")]
#[allow(clippy::panic)]
pub fn panic_in_bridge(env: &Env) -> Result<PromiseRaw<'_, ()>> {
    env.spawn_future(guarded(async {
        if std::hint::black_box(true) {
            panic!("deliberate panic from the bridge self-test");
        }
        Ok(())
    }))
}
