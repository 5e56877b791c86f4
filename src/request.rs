//! The request path's crossing into the core when a session is opened: the raw `Cookie` header
//! goes in, the verified session id comes out. Finding the cookie, verifying its signature and
//! telling a current id from a 1.x one are the core's (`cookie_header::signed_session_id`), so
//! the JS layer keeps no cookie parser, HMAC check or id rule of its own on this path.
//!
//! The cookie name and the keys are registered once per manager and named by a small handle:
//! converting a JS array of key strings on every request cost about as much as the HMAC.

use napi_derive::napi;
use ostro_session_core::cookie_header;
use std::sync::{Mutex, PoisonError};

/// Registered (cookie name, keys), by handle. Append-only: a manager lives as long as the app,
/// and registering the same name and keys again reuses their slot, so the list stays as short
/// as the number of distinct cookie configurations in the process.
static COOKIES: Mutex<Vec<(String, Vec<String>)>> = Mutex::new(Vec::new());

/// A session id read from a verified session cookie.
#[napi(object)]
pub struct SignedSessionId {
    /// 40 characters of `[A-Za-z0-9]`, or of `[A-Za-z0-9_-]` when `legacy`.
    pub id: String,
    /// A 1.x id (base64url): load it once, then move the session to a fresh id.
    pub legacy: bool,
}

/// Registers the session cookie `name` and the keys that verify it (the app key first, then
/// previous keys); returns the handle `signedSessionId` takes.
#[napi]
pub fn register_session_cookie(name: String, keys: Vec<String>) -> u32 {
    let mut all = COOKIES.lock().unwrap_or_else(PoisonError::into_inner);
    let slot = match all.iter().position(|(n, k)| *n == name && *k == keys) {
        Some(i) => i,
        None => {
            all.push((name, keys));
            all.len() - 1
        }
    };
    u32::try_from(slot).unwrap_or(u32::MAX)
}

/// The session id carried by the registered cookie `cookie` in a raw `Cookie` header, verified
/// under its keys; `null` when the cookie is absent, present more than once, badly encoded,
/// unsigned, signed under none of the keys, or not an id (or for an unknown handle). Whether
/// the driver knows the id is the caller's check (strict mode).
#[napi]
pub fn signed_session_id(header: String, cookie: u32) -> Option<SignedSessionId> {
    let all = COOKIES.lock().unwrap_or_else(PoisonError::into_inner);
    let (name, keys) = all.get(usize::try_from(cookie).ok()?)?;
    cookie_header::signed_session_id(&header, name, keys).map(|s| SignedSessionId {
        id: s.id,
        legacy: s.legacy,
    })
}
