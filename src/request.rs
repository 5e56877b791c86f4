//! The request path's crossing into the core when a session is opened: the raw `Cookie` header
//! goes in, the verified session id comes out. Finding the cookie, verifying its signature and
//! telling a current id from a 1.x one are the core's (`cookie_header::signed_session_id`), so
//! the JS layer keeps no cookie parser, HMAC check or id rule of its own on this path.
//!
//! When the request ends, the `Set-Cookie` line is the core's too (`set_cookie::SetCookie`):
//! `NativeSession::commitNative` builds it in the crossing that saves, and
//! `sessionCookieLine` builds it for the drivers written in JS.
//!
//! The cookie name and the keys, and the cookie's attributes, are registered once per manager
//! and named by a small handle: converting a JS array of key strings on every request cost
//! about as much as the HMAC.

use napi_derive::napi;
use ostro_session_core::cookie_header;
use ostro_session_core::set_cookie::{CookieAttributes, SetCookie};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

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

/// The session cookie's `Set-Cookie` attributes and signing key, registered once per manager.
#[napi(object)]
pub struct SetCookieOptions {
    /// The cookie name.
    pub name: String,
    /// The app key that signs the session id.
    pub key: String,
    /// Lifetime in minutes.
    pub lifetime: f64,
    /// No Max-Age/Expires: the cookie ends with the browser.
    pub expire_on_close: bool,
    /// `Path`.
    pub path: String,
    /// `Domain`.
    pub domain: Option<String>,
    /// `HttpOnly`.
    pub http_only: bool,
    /// `SameSite`: `'lax'`, `'strict'` or `'none'`; null for no attribute.
    pub same_site: Option<String>,
}

/// A registered `Set-Cookie` builder and the key it signs ids with.
pub(crate) struct CommitCookieConfig {
    pub(crate) line: SetCookie,
    pub(crate) key: String,
}

/// Registered `Set-Cookie` builders, by handle; append-only and deduplicated as `COOKIES`.
static SET_COOKIES: Mutex<Vec<Arc<CommitCookieConfig>>> = Mutex::new(Vec::new());

/// Registers the session cookie's `Set-Cookie` attributes and signing key; returns the handle
/// that `commitNative` and `sessionCookieLine` take.
#[napi]
pub fn register_set_cookie(options: SetCookieOptions) -> u32 {
    let line = SetCookie::new(
        &options.name,
        &CookieAttributes {
            lifetime_minutes: options.lifetime,
            expire_on_close: options.expire_on_close,
            path: options.path,
            domain: options.domain,
            http_only: options.http_only,
            same_site: options.same_site,
        },
    );
    let mut all = SET_COOKIES.lock().unwrap_or_else(PoisonError::into_inner);
    let slot = match all
        .iter()
        .position(|c| c.line == line && c.key == options.key)
    {
        Some(i) => i,
        None => {
            all.push(Arc::new(CommitCookieConfig {
                line,
                key: options.key,
            }));
            all.len() - 1
        }
    };
    u32::try_from(slot).unwrap_or(u32::MAX)
}

/// The registered `Set-Cookie` builder `handle`, or `None` for an unknown handle.
pub(crate) fn set_cookie(handle: u32) -> Option<Arc<CommitCookieConfig>> {
    let all = SET_COOKIES.lock().unwrap_or_else(PoisonError::into_inner);
    all.get(usize::try_from(handle).ok()?).cloned()
}

/// Milliseconds since the Unix epoch, as `Date.now()`.
pub(crate) fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_millis() as f64)
}

impl CommitCookieConfig {
    /// The line carrying `id` signed, or clearing the cookie when `id` is `None`.
    pub(crate) fn line_for(&self, id: Option<&str>, secure: bool) -> String {
        match id {
            Some(id) => self.line.signed_line(id, &self.key, secure, now_ms()),
            None => self.line.line(None, secure, now_ms()),
        }
    }
}

/// The `Set-Cookie` line of the registered cookie `handle` carrying session `id` signed (or
/// clearing the cookie when `id` is null); `null` for an unknown handle.
#[napi]
pub fn session_cookie_line(handle: u32, id: Option<String>, secure: bool) -> Option<String> {
    set_cookie(handle).map(|c| c.line_for(id.as_deref(), secure))
}

/// One session's own cookie attributes (express-session's `req.session.cookie`), where they
/// differ from the registered ones.
#[napi(object)]
pub struct SessionCookieAttributes {
    /// Milliseconds until the cookie expires; null: no Max-Age/Expires (it ends with the
    /// browser); 0 or less: a line that clears the cookie.
    pub max_age_ms: Option<f64>,
    /// `Path`.
    pub path: String,
    /// `Domain`.
    pub domain: Option<String>,
    /// `HttpOnly`.
    pub http_only: bool,
    /// `SameSite`: `'lax'`, `'strict'` or `'none'`; null for no attribute.
    pub same_site: Option<String>,
}

/// As `sessionCookieLine`, under `attributes` instead of the registered ones (the registered
/// cookie gives the name and the signing key). `null` for an unknown handle.
#[napi]
pub fn session_cookie_line_with(
    handle: u32,
    id: String,
    secure: bool,
    attributes: SessionCookieAttributes,
) -> Option<String> {
    let registered = set_cookie(handle)?;
    let max_age_ms = attributes.max_age_ms;
    let line = SetCookie::new(
        registered.line.name(),
        &CookieAttributes {
            lifetime_minutes: max_age_ms.unwrap_or(0.0) / 60000.0,
            expire_on_close: max_age_ms.is_none(),
            path: attributes.path,
            domain: attributes.domain,
            http_only: attributes.http_only,
            same_site: attributes.same_site,
        },
    );
    // An expiry already past (or NaN) makes the browser drop the cookie.
    let expired = max_age_ms.is_some_and(|ms| ms.is_nan() || ms <= 0.0);
    Some(if expired {
        line.line(None, secure, now_ms())
    } else {
        line.signed_line(&id, &registered.key, secure, now_ms())
    })
}
