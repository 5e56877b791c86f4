//! A user's sessions (`manager.sessionsOf`, `destroySession`, `destroyUserSessions`): thin
//! calls into `ostro_session_core::users`. Ids never cross to JS: sessions go out by handle.

use crate::errors;
use crate::handlers::NativeHandler;
use crate::runtime::promise;
use napi::bindgen_prelude::*;
use napi_derive::napi;
use ostro_session_core::users::{self, ListOptions, UserSession};
use ostro_session_core::{SessionError, UserRecord};
use std::sync::Arc;

/// How to read the indexed payloads and make handles.
#[napi(object)]
pub struct UserListOptions {
    /// The app key that handles are made with.
    pub key: String,
    /// Largest payload read, in bytes.
    pub max_payload_bytes: Option<f64>,
    /// When payloads are sealed: the app key, then previous keys.
    pub encrypt_keys: Option<Vec<String>>,
    /// With `encryptKeys`: read unsealed payloads too.
    pub encrypt_migrate: Option<bool>,
    /// The caller's own session id: its entry is `current`.
    pub current: Option<String>,
    /// The time to judge expiry at, in ms since the epoch (the manager's clock).
    pub now_ms: Option<f64>,
    /// The idle lifetime (`lifetime`) in seconds: entries idle longer are not listed.
    pub lifetime_secs: Option<f64>,
    /// The absolute lifetime (`absolute_lifetime`) in seconds: sessions older are not listed.
    pub absolute_lifetime_secs: Option<f64>,
}

/// One live session of a user.
#[napi(object)]
pub struct UserSessionInfo {
    /// A keyed hash of the id, never the id.
    pub handle: String,
    /// When the session was created, in ms since the epoch (null when unknown).
    pub created_at: Option<f64>,
    /// Last write or touch, in ms since the epoch.
    pub last_activity: f64,
    /// The client IP address, when recorded.
    pub ip_address: Option<String>,
    /// The `User-Agent`, when recorded.
    pub user_agent: Option<String>,
    /// Whether this is the caller's own session.
    pub current: bool,
}

/// One entry a custom driver's `sessionsOf(userId)` returned.
#[napi(object)]
pub struct UserRecordJs {
    /// The session id.
    pub id: String,
    /// The stored payload (`''` or absent when gone).
    pub payload: Option<String>,
    /// Last activity, in ms since the epoch.
    pub last_activity: Option<f64>,
    /// The client IP address.
    pub ip_address: Option<String>,
    /// The `User-Agent`.
    pub user_agent: Option<String>,
}

/// What `describeUserSessions` found in a custom driver's entries.
#[napi(object)]
pub struct Described {
    /// The live sessions, newest activity first.
    pub sessions: Vec<UserSessionInfo>,
    /// Their ids, in the same order (for the manager to destroy through the driver).
    pub ids: Vec<String>,
    /// Ids of stale entries to prune.
    pub stale: Vec<String>,
}

#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn options(o: UserListOptions) -> std::result::Result<ListOptions, SessionError> {
    let cipher = match o.encrypt_keys {
        Some(keys) => Some(crate::crypto::cipher_for(keys)?),
        None => None,
    };
    let max = o.max_payload_bytes.map_or(1_048_576, |m| m as usize);
    Ok(ListOptions {
        key: o.key,
        max_payload_bytes: max,
        cipher,
        accept_plaintext: o.encrypt_migrate.unwrap_or(false),
        current: o.current,
        now_ms: o.now_ms.filter(|v| v.is_finite()).map(|v| v as i64),
        lifetime_secs: o
            .lifetime_secs
            .filter(|v| v.is_finite() && *v > 0.0)
            .map(|v| v as i64),
        absolute_lifetime_secs: o
            .absolute_lifetime_secs
            .filter(|v| v.is_finite() && *v > 0.0)
            .map(|v| v as u64),
    })
}

#[allow(clippy::cast_precision_loss)]
fn info(s: UserSession) -> UserSessionInfo {
    UserSessionInfo {
        created_at: s.created_at.map(|c| c as f64 * 1000.0),
        last_activity: s.last_activity_ms as f64,
        handle: s.handle,
        ip_address: s.ip,
        user_agent: s.user_agent,
        current: s.current,
    }
}

/// The live sessions of `user` through a built-in driver, newest first; stale index entries are
/// pruned. Rejects with `ERR_SESSION_UNSUPPORTED` for drivers that cannot enumerate.
#[napi(catch_unwind, ts_return_type = "Promise<UserSessionInfo[]>")]
pub fn user_sessions_of<'env>(
    env: &'env Env,
    handler: &NativeHandler,
    user: String,
    opts: UserListOptions,
) -> Result<PromiseRaw<'env, Vec<UserSessionInfo>>> {
    let opts = match options(opts) {
        Ok(o) => o,
        Err(e) => return PromiseRaw::reject(env, errors::reject(&e)),
    };
    let h = Arc::clone(&handler.inner);
    promise(
        env,
        h.is_inline(),
        async move { users::sessions_of(&*h, &user, &opts).await },
        |list| Ok(list.into_iter().map(info).collect()),
    )
}

/// Ends the session of `user` shown as `handle`; resolves to whether one was found.
#[napi(catch_unwind, ts_return_type = "Promise<boolean>")]
pub fn destroy_user_session<'env>(
    env: &'env Env,
    handler: &NativeHandler,
    user: String,
    handle: String,
    opts: UserListOptions,
) -> Result<PromiseRaw<'env, bool>> {
    let opts = match options(opts) {
        Ok(o) => o,
        Err(e) => return PromiseRaw::reject(env, errors::reject(&e)),
    };
    let h = Arc::clone(&handler.inner);
    promise(
        env,
        h.is_inline(),
        async move { users::destroy_session(&*h, &user, &handle, &opts).await },
        Ok,
    )
}

/// Ends every session of `user` except the one with id `except`; resolves to the handles of
/// the sessions ended (never their ids).
#[napi(catch_unwind, ts_return_type = "Promise<string[]>")]
pub fn destroy_user_sessions<'env>(
    env: &'env Env,
    handler: &NativeHandler,
    user: String,
    except: Option<String>,
    opts: UserListOptions,
) -> Result<PromiseRaw<'env, Vec<String>>> {
    let opts = match options(opts) {
        Ok(o) => o,
        Err(e) => return PromiseRaw::reject(env, errors::reject(&e)),
    };
    let h = Arc::clone(&handler.inner);
    promise(
        env,
        h.is_inline(),
        async move { users::destroy_user_sessions(&*h, &user, except.as_deref(), &opts).await },
        Ok,
    )
}

/// Checks a custom driver's `sessionsOf` entries as the built-in drivers' are checked.
#[napi(catch_unwind)]
pub fn describe_user_sessions(
    env: Env,
    records: Vec<UserRecordJs>,
    user: String,
    opts: UserListOptions,
) -> Result<Described> {
    use crate::errors::OrThrow;
    users::check_user_id(&user).or_throw(&env)?;
    let opts = options(opts).or_throw(&env)?;
    let records = records
        .into_iter()
        .map(|r| UserRecord {
            id: r.id,
            payload: r.payload.unwrap_or_default(),
            #[allow(clippy::cast_possible_truncation)]
            last_activity_ms: r
                .last_activity
                .filter(|v| v.is_finite())
                .map_or(0, |v| v as i64),
            ip: r.ip_address,
            user_agent: r.user_agent,
        })
        .collect();
    let (live, stale) = users::describe(&user, records, &opts);
    let ids = live.iter().map(|s| s.id().to_owned()).collect();
    Ok(Described {
        sessions: live.into_iter().map(info).collect(),
        ids,
        stale,
    })
}

/// Whether `handle` has the shape of a session handle.
#[napi]
pub fn check_session_handle(env: Env, handle: String) -> Result<()> {
    use crate::errors::OrThrow;
    users::check_handle(&handle).or_throw(&env)
}

/// Throws `ERR_SESSION_UNSUPPORTED` naming `driver` (a custom driver without `sessionsOf`, or
/// the cookie driver): the same message the built-in drivers give.
#[napi]
pub fn unsupported_user_sessions(env: Env, driver: String) -> Result<()> {
    Err(errors::throw(&env, &users::unsupported(driver)))
}
