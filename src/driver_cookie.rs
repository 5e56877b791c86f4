//! The cookie driver for JS: one shared `NativeCookieCodec` per manager, and one
//! `NativeCookieRequest` per request built from that request's cookie value, so no request state
//! sits on a shared handler.

use crate::errors::OrThrow;
use crate::handlers::{shared, test_clock, NativeHandler};
use napi::bindgen_prelude::*;
use napi_derive::napi;
use ostro_session_core::clock::ManualClock;
use ostro_session_core::handlers::cookie::{CookieCodec, CookieOut, CookieSessionHandler};
use ostro_session_core::SessionHandler;
use std::sync::Arc;

/// Seals and opens session cookies for one cookie name.
#[napi]
pub struct NativeCookieCodec {
    inner: Arc<CookieCodec>,
    clock: Option<ManualClock>,
}

#[napi]
impl NativeCookieCodec {
    /// A codec for cookie `name`, sealing under `keys[0]` and opening with every key; values
    /// expire `minutes` after they were sealed. `maxBytes` bounds `name=value` (4096).
    #[napi(constructor)]
    pub fn new(
        env: Env,
        name: String,
        keys: Vec<String>,
        minutes: f64,
        max_bytes: Option<u32>,
        test_clock_on: Option<bool>,
    ) -> Result<Self> {
        let clock = test_clock(test_clock_on);
        let cipher = crate::crypto::cipher_for(keys).or_throw(&env)?;
        let mut codec = CookieCodec::new(&name, cipher, minutes, shared(&clock)).or_throw(&env)?;
        if let Some(max) = max_bytes {
            codec = codec.with_max_bytes(max as usize);
        }
        Ok(Self {
            inner: Arc::new(codec),
            clock,
        })
    }

    /// Sets the test clock (ms since the epoch); ignored without one.
    #[napi]
    pub fn set_now(&self, ms: f64) {
        if let Some(c) = &self.clock {
            #[allow(clippy::cast_possible_truncation)]
            c.set(ms as i64);
        }
    }
}

/// The cookie driver for one request.
#[napi]
pub struct NativeCookieRequest {
    inner: Arc<CookieSessionHandler>,
}

#[napi]
impl NativeCookieRequest {
    /// A request whose session cookie value (URL-decoded) is `cookie`.
    #[napi(constructor)]
    pub fn new(codec: &NativeCookieCodec, cookie: Option<String>) -> Self {
        Self {
            inner: Arc::new(CookieSessionHandler::new(
                Arc::clone(&codec.inner),
                cookie.as_deref(),
            )),
        }
    }

    /// The session id sealed in the request's cookie, or `null` when it did not open or expired.
    #[napi]
    pub fn incoming_id(&self) -> Option<String> {
        self.inner.incoming_id().map(str::to_owned)
    }

    /// This request's handler, for a Store.
    #[napi]
    pub fn handler(&self) -> NativeHandler {
        NativeHandler::new(Arc::clone(&self.inner) as Arc<dyn SessionHandler>, None)
    }

    /// The cookie value to send after a save: a string to set, `''` to expire the cookie, or
    /// `null` to leave it alone.
    #[napi]
    pub fn outgoing(&self) -> Option<String> {
        match self.inner.outgoing() {
            CookieOut::Unchanged => None,
            CookieOut::Set(v) => Some(v),
            CookieOut::Clear => Some(String::new()),
        }
    }
}
