//! A user's sessions: linking a session to a user, listing that user's live sessions, and ending
//! them ("log out other devices").
//!
//! - The link lives in the payload, under the reserved key [`USER`] (hidden from `all()`, refused
//!   by `put`, cleared by `flush`, so `invalidate()` at logout unlinks). `Session::set_user` logs
//!   it as an operation, so a concurrent save replays it instead of losing it (see
//!   [`crate::ops`]). Every write hands the link to the driver as `WriteMeta::user_id`, and the
//!   driver keeps an index per user (a sorted set, a column, a directory, a map).
//! - The payload is the truth, the index a hint: listing reads each indexed session's payload and
//!   keeps it only when it is live and still linked to that user. Entries that fail (destroyed,
//!   expired, linked to someone else since) are pruned from the index as they are met.
//! - Callers never see ids: each session is shown by its handle
//!   ([`crate::handle::session_handle`], keyed with the app key), and ended by handle.

use crate::crypto::Cipher;
use crate::error::{Result, SessionError};
use crate::handle::session_handle;
use crate::handler::{SessionHandler, UserRecord};
use crate::lifecycle::{self, CREATED};
use crate::payload::Reader;
use serde_json::Value;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// The reserved payload key holding the linked user's id (a string).
pub const USER: &str = "_user";

/// Longest user id accepted, in bytes (the `user_id varchar(255)` column of the migration).
pub const MAX_USER_ID_BYTES: usize = 255;

/// Checks a user id: 1 to [`MAX_USER_ID_BYTES`] bytes, no control characters.
///
/// # Errors
/// [`SessionError::Value`] saying what is wrong.
pub fn check_user_id(user: &str) -> Result<()> {
    if user.is_empty() || user.len() > MAX_USER_ID_BYTES {
        return Err(SessionError::Value(format!(
            "a user id must be 1 to {MAX_USER_ID_BYTES} bytes long, got {} bytes",
            user.len()
        )));
    }
    if user.chars().any(char::is_control) {
        return Err(SessionError::Value(
            "a user id must not contain control characters".into(),
        ));
    }
    Ok(())
}

/// A user id taken from a session attribute (`user_attribute`): a non-empty string or a number;
/// anything else (absent, null, an object, an invalid id) links no user.
pub fn user_of_value(v: Option<&Value>) -> Option<String> {
    let s = match v? {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    check_user_id(&s).is_ok().then_some(s)
}

/// The driver's name for messages, from its type: `MemcachedSessionHandler` → `memcached`.
pub fn driver_name<T: ?Sized>() -> String {
    let full = std::any::type_name::<T>();
    let last = full.rsplit("::").next().unwrap_or(full);
    let base = last.strip_suffix("SessionHandler").unwrap_or(last);
    base.to_ascii_lowercase()
}

/// The error of a driver that cannot enumerate its records.
pub fn unsupported(driver: impl std::fmt::Display) -> SessionError {
    SessionError::Unsupported(format!(
        "the {driver} session driver cannot list or end a user's sessions: it cannot enumerate \
         its records. Drivers that can: array, file, sqlite, database, redis, and custom drivers \
         that implement sessionsOf()"
    ))
}

/// How to read the indexed payloads and make handles.
#[derive(Clone, Default)]
pub struct ListOptions {
    /// The app key that handles are made with.
    pub key: String,
    /// Largest payload read, in bytes.
    pub max_payload_bytes: usize,
    /// The cipher, when payloads are sealed at rest.
    pub cipher: Option<Arc<Cipher>>,
    /// With a cipher: read unsealed payloads too.
    pub accept_plaintext: bool,
    /// The caller's own session id: its entry is marked `current`.
    pub current: Option<String>,
    /// The time to judge expiry at (ms since the epoch); `None`: no expiry checks here (the
    /// driver's own reads already leave out what it knows has expired).
    pub now_ms: Option<i64>,
    /// The idle lifetime in seconds: an entry idle for longer is expired even if its record is
    /// still there (not loaded or collected since). Entries with no known activity (`0`) are
    /// not judged by it.
    pub lifetime_secs: Option<i64>,
    /// The absolute lifetime (`absolute_lifetime`) in seconds: a session created longer ago
    /// is expired whatever its activity, as its next load would find
    /// ([`lifecycle::check_absolute`]).
    pub absolute_lifetime_secs: Option<u64>,
}

impl ListOptions {
    /// Whether a session last active at `last_activity_ms` and created at `created_secs` has
    /// expired by either rule at [`ListOptions::now_ms`].
    fn expired(&self, last_activity_ms: i64, created_secs: Option<i64>) -> bool {
        let Some(now_ms) = self.now_ms else {
            return false;
        };
        let now = lifecycle::secs(now_ms);
        // Whole seconds on both sides, as the SQL drivers keep `last_activity`.
        let idle = self.lifetime_secs.is_some_and(|life| {
            last_activity_ms > 0 && now.saturating_sub(lifecycle::secs(last_activity_ms)) > life
        });
        idle || lifecycle::check_absolute(created_secs, now, self.absolute_lifetime_secs).is_some()
    }
}

/// One live session of a user, as callers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSession {
    /// The session's handle (never the id).
    pub handle: String,
    /// When the session was created (unix seconds), when known.
    pub created_at: Option<i64>,
    /// Last write or touch, in ms since the Unix epoch.
    pub last_activity_ms: i64,
    /// The client IP address, when a request recorded one.
    pub ip: Option<String>,
    /// The `User-Agent`, when a request recorded one.
    pub user_agent: Option<String>,
    /// Whether this is the caller's own session ([`ListOptions::current`]).
    pub current: bool,
    id: String,
}

impl UserSession {
    /// The session id, for callers that end sessions through a driver themselves (the JS
    /// bridge of custom drivers); never to be shown.
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// Checks index entries against their payloads: the live sessions still linked to `user`
/// (newest activity first), and the ids of stale entries to prune.
pub fn describe(
    user: &str,
    records: Vec<UserRecord>,
    opts: &ListOptions,
) -> (Vec<UserSession>, Vec<String>) {
    let mut live: Vec<UserSession> = Vec::with_capacity(records.len());
    let mut stale = Vec::new();
    for r in records {
        if r.payload.is_empty() || live.iter().any(|s| s.id == r.id) {
            stale.push(r.id);
            continue;
        }
        let reader = Reader {
            max_bytes: opts.max_payload_bytes.max(1),
            cipher: opts.cipher.clone(),
            ad: r.id.clone(),
            accept_plaintext: opts.accept_plaintext,
        };
        let decoded = reader.decode(&r.payload);
        let linked = decoded.attributes.get(USER).and_then(Value::as_str) == Some(user);
        let created_at = lifecycle::stamp(decoded.attributes.get(CREATED));
        // An expired session is no longer the user's, even before a load or gc removed it: its
        // next load starts over (and destroys it).
        if decoded.missing || !linked || opts.expired(r.last_activity_ms, created_at) {
            stale.push(r.id);
            continue;
        }
        live.push(UserSession {
            handle: session_handle(&opts.key, &r.id),
            created_at,
            last_activity_ms: r.last_activity_ms,
            ip: r.ip,
            user_agent: r.user_agent,
            current: opts.current.as_deref() == Some(r.id.as_str()),
            id: r.id,
        });
    }
    live.sort_by_key(|s| std::cmp::Reverse(s.last_activity_ms));
    (live, stale)
}

/// The live sessions of `user` through `handler`, newest activity first; stale index entries
/// met on the way are pruned.
///
/// # Errors
/// [`SessionError::Value`] for a bad user id, [`SessionError::Unsupported`] from a driver that
/// cannot enumerate, and the driver's I/O errors.
pub async fn sessions_of(
    handler: &dyn SessionHandler,
    user: &str,
    opts: &ListOptions,
) -> Result<Vec<UserSession>> {
    check_user_id(user)?;
    let records = handler.user_sessions(user).await?;
    let (live, stale) = describe(user, records, opts);
    if !stale.is_empty() {
        handler.unlink_user(user, &stale).await?;
    }
    Ok(live)
}

/// Checks a handle's shape: [`crate::handle::HANDLE_LEN`] lowercase hex digits.
///
/// # Errors
/// [`SessionError::InvalidOption`] saying what a handle looks like.
pub fn check_handle(handle: &str) -> Result<()> {
    let ok = handle.len() == crate::handle::HANDLE_LEN
        && handle
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if ok {
        Ok(())
    } else {
        Err(SessionError::InvalidOption(format!(
            "a session handle is {} lowercase hex digits, as sessionsOf() lists them",
            crate::handle::HANDLE_LEN
        )))
    }
}

/// Ends the session of `user` shown as `handle` (its record gets the tombstone a destroy
/// leaves). Resolves to `false` when no live session of that user has that handle: a handle
/// made under another app key, or of a session already gone.
///
/// # Errors
/// As [`sessions_of`], and [`SessionError::InvalidOption`] for a malformed handle.
pub async fn destroy_session(
    handler: &dyn SessionHandler,
    user: &str,
    handle: &str,
    opts: &ListOptions,
) -> Result<bool> {
    check_handle(handle)?;
    let live = sessions_of(handler, user, opts).await?;
    let Some(s) = live
        .into_iter()
        .find(|s| bool::from(s.handle.as_bytes().ct_eq(handle.as_bytes())))
    else {
        return Ok(false);
    };
    handler.destroy(&s.id).await?;
    handler.unlink_user(user, &[s.id]).await?;
    Ok(true)
}

/// Ends every live session of `user` except the one with id `except` (the caller's own: "log
/// out other devices"); resolves to the handles of the sessions ended (for their `destroyed`
/// events), newest activity first.
///
/// # Errors
/// As [`sessions_of`].
pub async fn destroy_user_sessions(
    handler: &dyn SessionHandler,
    user: &str,
    except: Option<&str>,
    opts: &ListOptions,
) -> Result<Vec<String>> {
    let live = sessions_of(handler, user, opts).await?;
    let mut ended = Vec::new();
    let mut handles = Vec::new();
    for s in live {
        if except == Some(s.id.as_str()) {
            continue;
        }
        handler.destroy(&s.id).await?;
        ended.push(s.id);
        handles.push(s.handle);
    }
    if !ended.is_empty() {
        handler.unlink_user(user, &ended).await?;
    }
    Ok(handles)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids_are_checked() {
        assert!(check_user_id("42").is_ok());
        assert!(check_user_id(&"x".repeat(255)).is_ok());
        for bad in ["", "a\nb", "\0"] {
            assert!(
                matches!(check_user_id(bad), Err(SessionError::Value(_))),
                "{bad:?}"
            );
        }
        assert!(check_user_id(&"x".repeat(256)).is_err());
        assert_eq!(user_of_value(Some(&serde_json::json!(7))), Some("7".into()));
        assert_eq!(
            user_of_value(Some(&serde_json::json!("ada"))),
            Some("ada".into())
        );
        assert_eq!(user_of_value(Some(&serde_json::json!(""))), None);
        assert_eq!(user_of_value(Some(&serde_json::json!(null))), None);
        assert_eq!(user_of_value(Some(&serde_json::json!({"id": 1}))), None);
        assert_eq!(user_of_value(None), None);
    }

    #[test]
    fn driver_names_come_from_the_type() {
        struct MemcachedSessionHandler;
        struct JsHandler;
        assert_eq!(driver_name::<MemcachedSessionHandler>(), "memcached");
        assert_eq!(driver_name::<JsHandler>(), "jshandler");
        assert!(unsupported("memcached").to_string().contains("memcached"));
        assert_eq!(unsupported("x").code(), "ERR_SESSION_UNSUPPORTED");
    }

    #[test]
    fn stale_and_foreign_entries_are_pruned() {
        let opts = ListOptions {
            key: "k".into(),
            max_payload_bytes: 1 << 20,
            current: Some("B".repeat(40)),
            ..ListOptions::default()
        };
        let rec = |id: &str, payload: &str, at: i64| UserRecord {
            id: id.repeat(40),
            payload: payload.into(),
            last_activity_ms: at,
            ..UserRecord::default()
        };
        let (live, stale) = describe(
            "7",
            vec![
                rec("A", r#"{"_user":"7","_created":5}"#, 1),
                rec("B", r#"{"_user":"7"}"#, 2),
                rec("C", "", 3),
                rec("D", r#"{"_user":"8"}"#, 4),
                rec("E", "not json", 5),
            ],
            &opts,
        );
        assert_eq!(live.len(), 2);
        assert!(live[0].current && !live[1].current, "newest first");
        assert_eq!(live[1].created_at, Some(5));
        assert_eq!(live[1].handle, session_handle("k", &"A".repeat(40)));
        assert_eq!(stale, vec!["C".repeat(40), "D".repeat(40), "E".repeat(40)]);
        assert!(check_handle(&live[0].handle).is_ok());
        assert!(check_handle("xyz").is_err());
        assert!(check_handle(&"A".repeat(32)).is_err());
    }

    #[test]
    fn expired_entries_are_not_listed_and_are_pruned() {
        let now_ms = 1_000_000_000;
        let opts = ListOptions {
            key: "k".into(),
            max_payload_bytes: 1 << 20,
            now_ms: Some(now_ms),
            lifetime_secs: Some(600),
            absolute_lifetime_secs: Some(3600),
            ..ListOptions::default()
        };
        let now = now_ms / 1000;
        let rec = |id: &str, created: i64, at_secs: i64| UserRecord {
            id: id.repeat(40),
            payload: format!(r#"{{"_user":"7","_created":{created}}}"#),
            last_activity_ms: at_secs * 1000,
            ..UserRecord::default()
        };
        let (live, stale) = describe(
            "7",
            vec![
                // Young and active.
                rec("A", now - 60, now - 1),
                // Exactly at both limits: still alive.
                rec("B", now - 3600, now - 600),
                // Active a second ago, but past the absolute cap.
                rec("C", now - 3601, now - 1),
                // Young, but idle past the lifetime.
                rec("D", now - 700, now - 601),
                // No known activity: only the absolute rule applies.
                UserRecord {
                    last_activity_ms: 0,
                    ..rec("E", now - 10, 0)
                },
            ],
            &opts,
        );
        let ids: Vec<&str> = live.iter().map(UserSession::id).collect();
        assert_eq!(ids.len(), 3);
        for id in ["A", "B", "E"] {
            assert!(ids.contains(&id.repeat(40).as_str()), "{id}");
        }
        assert_eq!(stale, vec!["C".repeat(40), "D".repeat(40)]);
        // Without a time, nothing is judged here.
        let (live, _) = describe(
            "7",
            vec![rec("C", now - 3601, now - 1)],
            &ListOptions {
                now_ms: None,
                ..opts
            },
        );
        assert_eq!(live.len(), 1);
    }
}
