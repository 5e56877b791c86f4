//! `ArraySessionHandler`: sessions in process memory, for tests and single-process apps.

use crate::clock::{self, SharedClock};
use crate::error::Result;
use crate::handler::{self, CasOutcome, SessionHandler, UserRecord, WriteMeta};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

type Records = HashMap<Box<str>, (Box<str>, i64)>;

/// Sessions in a map: payload and last-activity time in ms. A destroyed session stays as a
/// tombstone (an empty payload) for the lifetime, or the shorter time set with
/// [`ArraySessionHandler::with_tombstone_secs`], so that a save racing the destroy (a request
/// that loaded the session before a logout) is refused instead of bringing it back.
///
/// Keys and payloads are boxed `str`s, allocated at their exact length: a `String` key would
/// add 8 bytes of capacity per entry to the table, which is most of the per-session overhead
/// beside the payload itself.
pub struct ArraySessionHandler {
    records: Mutex<Records>,
    // The user index: user -> id -> (ip, user agent) of the last write (see crate::users).
    users: Mutex<HashMap<String, HashMap<String, ClientMeta>>>,
    // Blocking locks (see `crate::blocking`): id -> (token, expiry in ms).
    locks: Mutex<HashMap<String, (String, i64)>>,
    lifetime_ms: i64,
    // How much earlier than the destroy a tombstone is stamped (see
    // `handler::tombstone_backdate_ms`): 0 keeps it for the lifetime.
    tombstone_backdate_ms: i64,
    clock: SharedClock,
}

impl ArraySessionHandler {
    /// A handler whose sessions live `minutes` after their last write or touch.
    pub fn new(minutes: f64, clock: Option<SharedClock>) -> Result<Self> {
        Ok(Self {
            records: Mutex::new(HashMap::new()),
            users: Mutex::new(HashMap::new()),
            locks: Mutex::new(HashMap::new()),
            lifetime_ms: clock::lifetime_ms(minutes)?,
            tombstone_backdate_ms: 0,
            clock: clock.unwrap_or_else(clock::system),
        })
    }

    /// Keeps tombstones `secs` seconds instead of the lifetime (`None`: the lifetime); gc
    /// removes them once that time has passed.
    ///
    /// # Errors
    /// [`crate::SessionError::InvalidOption`] unless `secs` is from 1 to the lifetime (see
    /// [`handler::tombstone_ms`]).
    pub fn with_tombstone_secs(mut self, secs: Option<u64>) -> Result<Self> {
        self.tombstone_backdate_ms = handler::tombstone_backdate_ms(self.lifetime_ms, secs)?;
        Ok(self)
    }

    fn records(&self) -> MutexGuard<'_, Records> {
        // No code path panics while holding the lock, but a poisoned map is still consistent.
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn users(&self) -> MutexGuard<'_, HashMap<String, HashMap<String, ClientMeta>>> {
        self.users.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Indexes `id` under the user a write names.
    fn index(&self, id: &str, meta: &WriteMeta) {
        if let Some(user) = &meta.user_id {
            self.users()
                .entry(user.clone())
                .or_default()
                .insert(id.to_owned(), (meta.ip.clone(), meta.user_agent.clone()));
        }
    }

    /// Number of records held, expired ones included until `gc`.
    pub fn len(&self) -> usize {
        self.records().len()
    }

    /// Whether no record is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Synchronous read, for callers already on their own thread.
    pub fn read_now(&self, id: &str) -> String {
        let now = self.clock.now_ms();
        match self.records().get(id) {
            Some((data, at)) if now - at <= self.lifetime_ms => data.to_string(),
            _ => String::new(),
        }
    }

    /// Synchronous write.
    pub fn write_now(&self, id: &str, data: &str) {
        let now = self.clock.now_ms();
        let mut records = self.records();
        // An existing entry keeps its key allocation.
        match records.get_mut(id) {
            Some(rec) => *rec = (data.into(), now),
            None => {
                records.insert(id.into(), (data.into(), now));
            }
        }
    }

    /// Synchronous touch: `false` when there is no live record.
    pub fn touch_now(&self, id: &str) -> bool {
        let now = self.clock.now_ms();
        match self.records().get_mut(id) {
            Some(rec) if now - rec.1 <= self.lifetime_ms && !rec.0.is_empty() => {
                rec.1 = now;
                true
            }
            _ => false,
        }
    }

    /// Synchronous destroy: leaves a tombstone until `gc` (see the type's docs), stamped early
    /// by the tombstone's back-dating so that the lifetime rule ends it in time.
    pub fn destroy_now(&self, id: &str) {
        let now = self.clock.now_ms() - self.tombstone_backdate_ms;
        let mut records = self.records();
        if let Some(rec) = records.get_mut(id) {
            *rec = (Box::from(""), now);
        }
    }

    /// Synchronous compare-and-set: see [`SessionHandler::write_if_unchanged`].
    pub fn write_if_unchanged_now(&self, id: &str, data: &str, previous: &str) -> CasOutcome {
        let now = self.clock.now_ms();
        let mut records = self.records();
        if let Some(rec) = records.get_mut(id) {
            let current = if now - rec.1 <= self.lifetime_ms {
                if rec.0.is_empty() {
                    // A tombstone: the session was destroyed after this request loaded it.
                    return CasOutcome::Conflict(String::new());
                }
                &*rec.0
            } else {
                ""
            };
            if current != previous {
                return CasOutcome::Conflict(current.to_owned());
            }
            // An existing entry keeps its key allocation.
            *rec = (data.into(), now);
            return CasOutcome::Written;
        }
        if !previous.is_empty() {
            return CasOutcome::Conflict(String::new());
        }
        records.insert(id.into(), (data.into(), now));
        CasOutcome::Written
    }

    /// Synchronous lock: see [`SessionHandler::lock`].
    ///
    /// # Errors
    /// [`crate::SessionError::Io`] when the OS has no randomness for the token.
    pub fn lock_now(&self, id: &str, ttl_ms: u64) -> Result<Option<String>> {
        let now = self.clock.now_ms();
        let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        if locks.get(id).is_some_and(|(_, until)| *until > now) {
            return Ok(None);
        }
        let token = crate::blocking::new_token()?;
        let until = now.saturating_add(i64::try_from(ttl_ms).unwrap_or(i64::MAX));
        locks.insert(id.to_owned(), (token.clone(), until));
        // Expired locks of ids nobody asks for again would pile up: drop them now and then.
        if locks.len() > 1024 {
            locks.retain(|_, (_, until)| *until > now);
        }
        Ok(Some(token))
    }

    /// Synchronous unlock: see [`SessionHandler::unlock`].
    pub fn unlock_now(&self, id: &str, token: &str) {
        let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        if locks.get(id).is_some_and(|(t, _)| t == token) {
            locks.remove(id);
        }
    }

    /// Synchronous gc: removes records idle strictly longer than `secs`.
    pub fn gc_now(&self, secs: u64) -> u64 {
        let now = self.clock.now_ms();
        let max = i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        let mut records = self.records();
        let before = records.len();
        records.retain(|_, (_, at)| now - *at <= max);
        // Give memory back after a large sweep.
        if records.capacity() > 64 && records.len() < records.capacity() / 4 {
            records.shrink_to_fit();
        }
        let removed = (before - records.len()) as u64;
        // Index entries of records gone.
        self.users().retain(|_, ids| {
            ids.retain(|id, _| records.contains_key(id.as_str()));
            !ids.is_empty()
        });
        removed
    }
}

/// The client's IP address and user agent.
type ClientMeta = (Option<String>, Option<String>);

#[async_trait]
impl SessionHandler for ArraySessionHandler {
    async fn read(&self, id: &str) -> Result<String> {
        Ok(self.read_now(id))
    }
    async fn write(&self, id: &str, data: &str, meta: &WriteMeta) -> Result<()> {
        self.write_now(id, data);
        self.index(id, meta);
        Ok(())
    }
    async fn destroy(&self, id: &str) -> Result<()> {
        self.destroy_now(id);
        Ok(())
    }
    async fn gc(&self, max_lifetime_secs: u64) -> Result<u64> {
        Ok(self.gc_now(max_lifetime_secs))
    }
    async fn touch(&self, id: &str) -> Result<bool> {
        Ok(self.touch_now(id))
    }
    async fn is_tombstone(&self, id: &str) -> Result<bool> {
        let now = self.clock.now_ms();
        let records = self.records();
        Ok(records
            .get(id)
            .is_some_and(|(data, at)| data.is_empty() && now - at <= self.lifetime_ms))
    }
    async fn write_if_unchanged(
        &self,
        id: &str,
        data: &str,
        previous: &str,
        meta: &WriteMeta,
    ) -> Result<CasOutcome> {
        let outcome = self.write_if_unchanged_now(id, data, previous);
        if outcome == CasOutcome::Written {
            self.index(id, meta);
        }
        Ok(outcome)
    }
    fn supports_cas(&self) -> bool {
        true
    }
    async fn lock(&self, id: &str, ttl_ms: u64) -> Result<Option<String>> {
        self.lock_now(id, ttl_ms)
    }
    async fn unlock(&self, id: &str, token: &str) -> Result<()> {
        self.unlock_now(id, token);
        Ok(())
    }
    fn supports_lock(&self) -> bool {
        true
    }
    fn is_inline(&self) -> bool {
        true
    }
    async fn user_sessions(&self, user: &str) -> Result<Vec<UserRecord>> {
        let entries: Vec<(String, ClientMeta)> = match self.users().get(user) {
            Some(ids) => ids.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            None => return Ok(Vec::new()),
        };
        let now = self.clock.now_ms();
        let records = self.records();
        Ok(entries
            .into_iter()
            .map(|(id, (ip, user_agent))| {
                let (payload, at) = match records.get(id.as_str()) {
                    Some((d, at)) if now - at <= self.lifetime_ms => (d.to_string(), *at),
                    _ => (String::new(), 0),
                };
                UserRecord {
                    id,
                    payload,
                    last_activity_ms: at,
                    ip,
                    user_agent,
                }
            })
            .collect())
    }
    async fn unlink_user(&self, user: &str, ids: &[String]) -> Result<()> {
        let mut users = self.users();
        if let Some(set) = users.get_mut(user) {
            for id in ids {
                set.remove(id);
            }
            if set.is_empty() {
                users.remove(user);
            }
        }
        Ok(())
    }
}
