//! The one storage interface every driver implements.

use crate::error::Result;
use async_trait::async_trait;

/// Request metadata a driver may store beside the payload (the sqlite driver does).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteMeta {
    /// The client IP address.
    pub ip: Option<String>,
    /// The `User-Agent` header.
    pub user_agent: Option<String>,
    /// The authenticated user's id.
    pub user_id: Option<String>,
}

/// What a driver that keeps tombstones as values (redis, memcached) stores for a destroyed session,
/// for the lifetime or the shorter [`tombstone_ms`]: one byte that no payload can be, since a
/// payload is a JSON object or sealed base64url text. It reads back as no session (`""`), a touch
/// of it answers `false`, and [`SessionHandler::write_if_unchanged`] never matches it, so a save
/// racing a logout is dropped instead of bringing the session back. Defined once here so every
/// driver (and a process of another version sharing the store) agrees on it.
pub const TOMBSTONE: &str = "!";

/// How long a tombstone lives, in ms: `tombstone_secs` (`tombstone_seconds` in the session
/// config, `tombstoneSeconds` as a driver option) when given, else the lifetime. The one rule
/// for the option: a whole number of seconds from 1 to the lifetime. Longer is refused rather
/// than clamped: a tombstone only has to outlast the requests that loaded the session before it
/// ended, a session left alone would have expired a lifetime after its last use anyway, and a
/// driver that keeps a last-activity time could only make a tombstone outlive the lifetime by
/// stamping it in the future.
///
/// Drivers that expire records on a server keep a tombstone for this TTL (redis, memcached).
/// Drivers that keep a last-activity time (array, file, sqlite, the database driver) stamp a
/// tombstone `lifetime - tombstone` earlier than the destroy, so the lifetime rule every reader
/// and gc already apply (and every process of another version sharing the store) ends it this
/// long after the destroy: see [`tombstone_backdate_ms`].
///
/// # Errors
/// [`crate::SessionError::InvalidOption`] for 0 or a time longer than the lifetime.
pub fn tombstone_ms(lifetime_ms: i64, tombstone_secs: Option<u64>) -> Result<i64> {
    let Some(secs) = tombstone_secs else {
        return Ok(lifetime_ms);
    };
    let ms = i64::try_from(secs).ok().and_then(|s| s.checked_mul(1000));
    match ms {
        Some(ms) if secs >= 1 && ms <= lifetime_ms => Ok(ms),
        _ => Err(crate::SessionError::InvalidOption(format!(
            "tombstoneSeconds must be a whole number of seconds from 1 to the lifetime ({}), got \
             {secs}",
            seconds_text(lifetime_ms)
        ))),
    }
}

/// How much earlier than the destroy a driver with a last-activity time stamps a tombstone
/// (`lifetime - tombstone`, 0 by default), so that it expires [`tombstone_ms`] after the destroy.
///
/// # Errors
/// As [`tombstone_ms`].
pub fn tombstone_backdate_ms(lifetime_ms: i64, tombstone_secs: Option<u64>) -> Result<i64> {
    Ok(lifetime_ms - tombstone_ms(lifetime_ms, tombstone_secs)?)
}

/// `7200 s`, or `1.5 s` for a lifetime that is not a whole number of seconds.
fn seconds_text(ms: i64) -> String {
    if ms % 1000 == 0 {
        format!("{} s", ms / 1000)
    } else {
        let frac = format!("{:03}", ms % 1000);
        format!("{}.{} s", ms / 1000, frac.trim_end_matches('0'))
    }
}

/// One entry of a driver's index of a user's sessions (see [`crate::users`]), as the driver
/// holds it: the engine decodes `payload` to check the link and read the creation time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserRecord {
    /// The session id (never shown to callers: the engine turns it into a handle).
    pub id: String,
    /// The stored payload; `""` when the session is gone (destroyed, expired, a tombstone).
    pub payload: String,
    /// Last write or touch, in ms since the Unix epoch.
    pub last_activity_ms: i64,
    /// The client IP address of the last write that had one.
    pub ip: Option<String>,
    /// The `User-Agent` of the last write that had one.
    pub user_agent: Option<String>,
}

/// How a conditional write ([`SessionHandler::write_if_unchanged`]) ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CasOutcome {
    /// The record was still the one the request loaded, and now holds the new payload.
    Written,
    /// Another request changed the record first: this is what it holds now (`""` when it is
    /// gone: destroyed, a tombstone, or expired). Nothing was written.
    Conflict(String),
}

/// Stores session payloads as strings, keyed by session id. The engine does all the
/// (de)serialisation; a handler never looks inside a payload.
///
/// Ids reaching a handler have been checked by the engine, but a handler that builds paths or
/// keys from them must check them again with [`crate::id::check_storage_id`].
#[async_trait]
pub trait SessionHandler: Send + Sync + 'static {
    /// Prepares the handler; called once before the first read.
    async fn open(&self) -> Result<()> {
        Ok(())
    }
    /// Releases connections and threads.
    async fn close(&self) -> Result<()> {
        Ok(())
    }
    /// The stored payload, or `""` when there is none or it has expired.
    async fn read(&self, id: &str) -> Result<String>;
    /// Stores `data` under `id`, refreshing its expiry.
    async fn write(&self, id: &str, data: &str, meta: &WriteMeta) -> Result<()>;
    /// Removes the record of `id`; removing an unknown id is not an error.
    async fn destroy(&self, id: &str) -> Result<()>;
    /// Removes records idle for strictly more than `max_lifetime_secs`; returns how many.
    async fn gc(&self, max_lifetime_secs: u64) -> Result<u64>;
    /// Refreshes the expiry of `id` without rewriting it: `Ok(false)` when there is no record.
    async fn touch(&self, id: &str) -> Result<bool>;
    /// Whether `id` holds a live tombstone (left by [`SessionHandler::destroy`] less than a
    /// lifetime, or the shorter [`tombstone_ms`], ago): the session was ended (a logout, a revoke),
    /// it did not expire. Asked only after a load found no session under an id a client presented,
    /// and only when someone listens for `expired` events (see [`crate::load::missing_reason`]), so
    /// it costs nothing on the request path. The default answers `false`: a driver that keeps no
    /// tombstones cannot tell a destroyed session from an expired one.
    async fn is_tombstone(&self, id: &str) -> Result<bool> {
        let _ = id;
        Ok(false)
    }
    /// Writes `data` only if the record of `id` still holds `previous` (`""`: no record), in
    /// one atomic step. A record that is a tombstone (left by [`SessionHandler::destroy`] on
    /// drivers that keep them) never matches, so a save racing a logout cannot bring the
    /// session back. The default writes unconditionally (last writer wins) for handlers that
    /// cannot compare; they say so with [`SessionHandler::supports_cas`].
    async fn write_if_unchanged(
        &self,
        id: &str,
        data: &str,
        previous: &str,
        meta: &WriteMeta,
    ) -> Result<CasOutcome> {
        let _ = previous;
        self.write(id, data, meta).await?;
        Ok(CasOutcome::Written)
    }
    /// Whether [`SessionHandler::write_if_unchanged`] really compares. Without it, concurrent
    /// requests on one session keep last-writer-wins.
    fn supports_cas(&self) -> bool {
        false
    }
    /// Whether records live in a store that other requests read by id. The cookie driver
    /// answers `false`: each request carries its own record, so an id renewal leaves no
    /// forward marker behind (there is nowhere to put it) and simply reissues the cookie.
    fn keeps_records(&self) -> bool {
        true
    }
    /// Takes the blocking lock of `id` (opt-in blocking, as Laravel's `block()`) for `ttl_ms`,
    /// in one atomic step that also holds across processes sharing the store: `Some(token)`
    /// when taken, `None` when another holder's unexpired lock is there. A lock whose holder
    /// never releases it expires after `ttl_ms`. Waiting is the caller's (see
    /// [`crate::blocking`]). The default refuses: the driver cannot lock.
    async fn lock(&self, id: &str, ttl_ms: u64) -> Result<Option<String>> {
        let _ = (id, ttl_ms);
        Err(crate::blocking::unsupported())
    }
    /// Releases the lock of `id` taken with `token`; a lock that expired and was taken by
    /// another holder since is left alone (only the holder's token releases it).
    async fn unlock(&self, id: &str, token: &str) -> Result<()> {
        let _ = (id, token);
        Err(crate::blocking::unsupported())
    }
    /// Whether [`SessionHandler::lock`] is implemented.
    fn supports_lock(&self) -> bool {
        false
    }
    /// True when every future this handler returns is ready on its first poll (in-memory
    /// handlers): callers may then run it in place instead of hopping to another thread.
    fn is_inline(&self) -> bool {
        false
    }

    // ----- a user's sessions (see crate::users) ------------------------------------------------

    /// [`SessionHandler::touch`] for a save that knows the request's metadata (`meta.user_id`
    /// is the session's linked user): a driver whose user index records activity refreshes it
    /// too. The default is a plain touch.
    async fn touch_with_meta(&self, id: &str, meta: &WriteMeta) -> Result<bool> {
        let _ = meta;
        self.touch(id).await
    }
    /// The entries of `user`'s index, stale ones included (the engine checks each against its
    /// payload and prunes through [`SessionHandler::unlink_user`]). A driver indexes a session
    /// under `meta.user_id` at every write. The default: [`crate::SessionError::Unsupported`], naming
    /// the driver.
    async fn user_sessions(&self, user: &str) -> Result<Vec<UserRecord>> {
        let _ = user;
        Err(crate::users::unsupported(
            crate::users::driver_name::<Self>(),
        ))
    }
    /// Removes `ids` from `user`'s index (stale entries); the records themselves are untouched.
    /// Drivers whose index is a column of the record itself have nothing to do.
    async fn unlink_user(&self, user: &str, ids: &[String]) -> Result<()> {
        let _ = (user, ids);
        Ok(())
    }
}
