//! The session: an attribute map with Laravel's `Store` semantics (dot paths, flash data,
//! tokens, id protection). I/O is not done here; [`Session::start`] and [`Session::save`] drive a
//! [`SessionHandler`], and the binding drives the same steps (`apply`, `prepare_save`) itself so
//! that no lock is held across an await.

use crate::attributes::{self, Attributes};
use crate::clock::{self, SharedClock};
use crate::cookie_header::SignedId;
use crate::crypto::Cipher;
use crate::error::{Result, SessionError};
use crate::handler::{CasOutcome, SessionHandler, WriteMeta};
use crate::id;
use crate::lazy::TopMap;
use crate::lifecycle::{self, Event, Expiry, CREATED, ID_AT};
use crate::load::LoadStep;
use crate::ops::{self, Op};
use crate::payload::{self, Decoded};
use crate::token::TokenFormat;
use crate::users::{self, USER};
use serde_json::{Map, Number, Value};
use std::sync::Arc;

/// Options of a session.
#[derive(Clone)]
pub struct SessionOptions {
    /// Largest payload that is read or written, in bytes.
    pub max_payload_bytes: usize,
    /// How `token()` values are made.
    pub token: TokenFormat,
    /// Seals payloads at rest when set (`encrypt: true`): every payload handed to a handler is
    /// sealed with the session id as associated data, and what fails to open reads as no record.
    pub cipher: Option<Arc<Cipher>>,
    /// With a cipher: read an unsealed payload once (it is sealed at the next save) instead of
    /// treating it as no record.
    pub encrypt_migrate: bool,
    /// The absolute timeout (`absolute_lifetime`), in seconds since the session was created; a
    /// session loaded past it starts over as a new empty session with a new id (see
    /// [`crate::lifecycle`]). `None` (the default) turns it off. The idle timeout is the
    /// handlers' `lifetime`.
    pub absolute_lifetime_secs: Option<u64>,
    /// Id renewal (`renew_after`), in seconds since the current id was issued: a session loaded
    /// past it moves to a new id, data and token kept, and its old id forwards to the new one
    /// for [`SessionOptions::renew_grace_secs`] (see [`crate::lifecycle`]). `None` (the
    /// default) turns it off.
    pub renew_after_secs: Option<u64>,
    /// How long a renewed session's old id still loads the new session (`renew_grace_seconds`,
    /// default 30).
    pub renew_grace_secs: u64,
    /// Where lifecycle stamps and the absolute timeout read the time.
    pub clock: SharedClock,
    /// `user_attribute`: the attribute (a dot path such as `auth.id`) whose value links the
    /// session to a user at every save, as `set_user` would (see [`crate::users`]).
    pub user_attribute: Option<String>,
}

impl Default for SessionOptions {
    fn default() -> Self {
        Self {
            max_payload_bytes: 1_048_576,
            token: TokenFormat::Random,
            cipher: None,
            encrypt_migrate: false,
            absolute_lifetime_secs: None,
            renew_after_secs: None,
            renew_grace_secs: 30,
            clock: clock::system(),
            user_attribute: None,
        }
    }
}

impl std::fmt::Debug for SessionOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionOptions")
            .field("max_payload_bytes", &self.max_payload_bytes)
            .field("token", &self.token)
            .field("cipher", &self.cipher)
            .field("encrypt_migrate", &self.encrypt_migrate)
            .field("absolute_lifetime_secs", &self.absolute_lifetime_secs)
            .field("user_attribute", &self.user_attribute)
            .field("renew_after_secs", &self.renew_after_secs)
            .field("renew_grace_secs", &self.renew_grace_secs)
            .finish_non_exhaustive()
    }
}

/// What `save()` must do with the handler first. The engine decides; the binding and
/// `lib/handler-bridge.js` only carry it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaveAction {
    /// Write this payload: the session changed, or its id had no record at `start()` (a new
    /// session).
    Write(String),
    /// The session existed at `start()` and nothing changed: refresh its expiry, then hand what
    /// the touch found to [`Session::after_touch`]. A touch never recreates a record.
    Touch,
}

/// What [`Session::after_touch`] asks for next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterTouch {
    /// Write this payload (`resave` on a record that still exists), then call [`Session::saved`].
    Write(String),
    /// Nothing more to do; the save ended so.
    Done(SaveOutcome),
}

/// What [`Session::after_conflict`] asks for next, after a compare-and-set found the record
/// changed. The engine decides; [`write_payload`] and `lib/handler-bridge.js` carry it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterConflict {
    /// Write this payload (the session rebased onto the record just seen, this request's
    /// operations replayed) with compare-and-set against that record, under [`Session::id`].
    Retry(String),
    /// The record was a renewal's forward marker inside its grace window: the session has moved
    /// to this id (the renewed one). Read its record and hand what it holds to
    /// [`Session::after_conflict`] again.
    Follow(String),
    /// The record is gone (destroyed: a tombstone; expired; a forward marker past its window):
    /// nothing is written, the save is [`SaveOutcome::Dropped`].
    Drop,
}

/// How a save ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveOutcome {
    /// The payload was written.
    Written,
    /// The record's expiry was refreshed; nothing else changed.
    Touched,
    /// Nothing was written: the session was unchanged and its record is gone (destroyed by a
    /// logout or `invalidate()` in another request, or expired). The id must not be re-sent.
    Dropped,
}

impl SaveOutcome {
    /// `'written'`, `'touched'` or `'dropped'`: what `save()` resolves to in JS.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Written => "written",
            Self::Touched => "touched",
            Self::Dropped => "dropped",
        }
    }
}

/// One session.
#[derive(Debug, Clone)]
pub struct Session {
    id: String,
    name: String,
    attributes: TopMap,
    started: bool,
    dirty: bool,
    // The handler had no record at start: touching would fail, so save writes at once.
    record_missing: bool,
    // `prepare_save(resave = true)` on an unchanged session: rewrite after the touch, if found.
    resave_pending: bool,
    // Forward markers this save followed so far (see `after_conflict`).
    save_hops: u8,
    // What this request did since the last save, for replay on a record changed meanwhile.
    ops: Vec<Op>,
    // Set while a composite operation runs its parts, so only the composite is logged.
    muted: bool,
    // The record as this request last saw it (read at start, or written since); `""` for none.
    // A compare-and-set save writes only if the store still holds exactly this.
    base: String,
    // Set when the record loaded at start was expired and the session started over: why, and
    // the expired id until the caller takes it to destroy its record.
    expired: Option<Expiry>,
    expired_id: Option<String>,
    // The user link was stored at load or set since: every write then says who (or nobody), so
    // a driver's index follows an unlink too.
    user_known: bool,
    // Where a load driven by `LoadStep`s stands (see `crate::load`).
    loading: Loading,
    // Lifecycle events since the last `take_events`, for the binding to publish, and the id an
    // `Expired` event is about (the session has a new id by then).
    events: Vec<Event>,
    expired_from: Option<String>,
    // The last load met a renewed id's forward marker past its grace window under the id it
    // was asked for: no session there, yet none expired (see `missing_reason`).
    stale_forward: bool,
    options: SessionOptions,
}

/// The state of a load between its steps.
#[derive(Debug, Clone, Default)]
enum Loading {
    #[default]
    Idle,
    /// Reading; `hops` forward markers followed so far.
    Reading {
        hops: u8,
        forwarded: bool,
        keeps_records: bool,
        renewals: u8,
        // The session as it was before the first apply, for a lost renewal to start again from.
        before: Option<Box<Session>>,
    },
    /// The expired record is being destroyed; the load then ends.
    Destroying,
    /// A renewal's writes are in flight: the session as it will be once they land.
    Renewing {
        next: Box<Session>,
        payload: String,
        before: Box<Session>,
        renewals: u8,
    },
    /// The renewal lost a race: its new record is being destroyed, then `current` (what the old
    /// id holds now) is loaded as if just read.
    Retrying {
        current: String,
        before: Box<Session>,
        renewals: u8,
    },
}

/// Forward markers followed at most in one load (a renewed session renewed again within the
/// grace window leaves a chain).
const MAX_HOPS: u8 = 3;
/// Renewals tried in one load before it settles for the session as read (each lost race re-reads).
const MAX_RENEWALS: u8 = 2;

/// How many times a save re-reads and replays before it gives up with
/// [`SessionError::Conflict`]: enough for bursts of concurrent requests on one session, bounded
/// so that a record that changes on every read cannot hold a request forever.
pub const CAS_TRIES: usize = 16;

/// Carries out a save's write. A handler that compares gets a compare-and-set against `base`
/// (the record as the request loaded it, taken out of the session with [`Session::take_base`]
/// rather than copied, and moved on to the record seen at each conflict). On a conflict,
/// `on_conflict` gets the record as it is now and decides (see [`Session::after_conflict`]):
/// the payload to try next (the session rebased and replayed), an id to follow (a renewal's
/// forward marker inside its grace window: that id's record is read and handed to `on_conflict`
/// in turn, and the write goes there), or a drop when the record is gone. Resolves to the
/// payload that was written, or `None` when the save was dropped; the id it was written under
/// is the session's own by then. Both [`Session::save`] and the binding (which must not hold its
/// session lock across an await) drive their writes through this.
///
/// # Errors
/// The handler's errors, `on_conflict`'s, and [`SessionError::Conflict`] after [`CAS_TRIES`]
/// writes.
pub async fn write_payload<F>(
    handler: &dyn SessionHandler,
    id: &str,
    payload: String,
    base: &mut String,
    meta: &WriteMeta,
    mut on_conflict: F,
) -> Result<Option<String>>
where
    F: FnMut(String) -> Result<AfterConflict> + Send,
{
    if !handler.supports_cas() {
        handler.write(id, &payload, meta).await?;
        return Ok(Some(payload));
    }
    // Saves of one id in this process take turns, so they never conflict with each other: the
    // save whose turn it is first moves onto what the previous one wrote (handed over in the
    // turn, without a round trip), so only other processes' writes can make it conflict.
    // Inline handlers run on one thread to completion and need no turns.
    let mut queued = false;
    let mut turn = if handler.is_inline() {
        None
    } else {
        let stripe = save_turn(id);
        Some(match stripe.try_lock() {
            Ok(t) => t,
            Err(_) => {
                queued = true;
                stripe.lock().await
            }
        })
    };
    // The id written to: the session's, until a forward marker moves it to the renewed id.
    let mut target = id.to_owned();
    let mut payload = payload;
    if let Some(t) = turn.as_mut() {
        if let Some((last_id, last)) = t.last.take() {
            if last_id == id && last != *base {
                match settle(handler, &mut on_conflict, last, &mut target).await? {
                    Some((p, seen)) => {
                        payload = p;
                        *base = seen;
                    }
                    None => return Ok(None),
                }
            }
        }
        // Fairness between processes: another process's save that just lost a race to this
        // process is retrying now. A queued save that went at once would win every such race (the
        // loser has to take the news and replay first, while this one is ready) and could starve
        // it for as long as this process has saves queued; waiting a little lets the retry land.
        // A save that did not queue, and whose predecessor raced nobody, goes at once.
        if std::mem::take(&mut t.contended) || queued {
            cas_pause().await;
        }
    }
    for _ in 0..CAS_TRIES {
        match handler
            .write_if_unchanged(&target, &payload, base, meta)
            .await?
        {
            CasOutcome::Written => {
                if let Some(t) = turn.as_mut() {
                    // The turn is the stripe of `id`: what was written elsewhere (a renewed id
                    // this save followed) is not handed to the next save of `id`.
                    if target == id && payload.len() <= HANDOVER_MAX_BYTES {
                        t.last = Some((target, payload.clone()));
                    }
                }
                return Ok(Some(payload));
            }
            CasOutcome::Conflict(current) => {
                if let Some(t) = turn.as_mut() {
                    t.contended = true;
                }
                match settle(handler, &mut on_conflict, current, &mut target).await? {
                    Some((p, seen)) => {
                        payload = p;
                        *base = seen;
                    }
                    None => return Ok(None),
                }
            }
        }
    }
    Err(conflict_error(&target))
}

/// Hands `current` (the record of `target` now) to `on_conflict` and carries out what it asks:
/// while it follows a forward marker, reads the renewed id's record (and `target` becomes that
/// id). Resolves to the payload to write next with the record it compares against, or `None`
/// for a drop. The session bounds how many markers one save follows ([`MAX_HOPS`]); the bound
/// here only keeps a caller's own `on_conflict` from following forever.
async fn settle<F>(
    handler: &dyn SessionHandler,
    on_conflict: &mut F,
    mut current: String,
    target: &mut String,
) -> Result<Option<(String, String)>>
where
    F: FnMut(String) -> Result<AfterConflict> + Send,
{
    for _ in 0..CAS_TRIES {
        match on_conflict(current.clone())? {
            AfterConflict::Retry(p) => return Ok(Some((p, current))),
            AfterConflict::Follow(next) => {
                current = handler.read(&next).await?;
                *target = next;
            }
            AfterConflict::Drop => return Ok(None),
        }
    }
    Err(conflict_error(target))
}

/// Largest payload handed over to the next save's turn; a larger one is re-read by it instead,
/// so the turns never hold more than 64 × this in memory.
const HANDOVER_MAX_BYTES: usize = 64 * 1024;

/// The state of one stripe of save turns.
struct Turn {
    /// The last payload a save wrote in this stripe, with its id.
    last: Option<(String, String)>,
    /// Whether the last save here lost a race to another process.
    contended: bool,
}

/// Turns of the saves in this process, striped by id (FNV-1a; a shared stripe only queues two
/// ids' saves, it never merges them).
fn save_turn(id: &str) -> &'static tokio::sync::Mutex<Turn> {
    const STRIPES: usize = 64;
    static TURNS: [tokio::sync::Mutex<Turn>; STRIPES] = [const {
        tokio::sync::Mutex::const_new(Turn {
            last: None,
            contended: false,
        })
    }; STRIPES];
    let mut h: u32 = 0x811c_9dc5;
    for b in id.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    &TURNS[h as usize % STRIPES]
}

/// A random wait below 1 ms (see the fairness note in [`write_payload`]).
async fn cas_pause() {
    const WINDOW_US: u64 = 1000;
    let r = getrandom::u64().unwrap_or(WINDOW_US / 2);
    tokio::time::sleep(std::time::Duration::from_micros(r % WINDOW_US)).await;
}

/// The error after [`CAS_TRIES`] conflicting attempts.
pub fn conflict_error(id: &str) -> SessionError {
    let short: String = id.chars().take(6).collect();
    SessionError::Conflict(format!(
        "the session {short}… kept changing under this save ({CAS_TRIES} attempts); nothing was written and the stored session is intact"
    ))
}

const FLASH_NEW: &str = "_flash.new";
const FLASH_OLD: &str = "_flash.old";
const OLD_INPUT: &str = "_old_input";

impl Session {
    /// A session named `name` (the cookie name). An absent or invalid `id` is replaced by a fresh one.
    pub fn new(name: &str, id: Option<&str>, options: SessionOptions) -> Result<Self> {
        let mut s = Self {
            id: String::new(),
            name: name.to_owned(),
            attributes: TopMap::default(),
            started: false,
            dirty: false,
            record_missing: true,
            resave_pending: false,
            save_hops: 0,
            ops: Vec::new(),
            muted: false,
            base: String::new(),
            expired: None,
            expired_id: None,
            user_known: false,
            loading: Loading::Idle,
            events: Vec::new(),
            expired_from: None,
            stale_forward: false,
            options,
        };
        s.set_id(id.unwrap_or(""))?;
        Ok(s)
    }

    /// The session id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Sets the id; an invalid one is replaced by a fresh random id.
    pub fn set_id(&mut self, id: &str) -> Result<()> {
        self.id = if id::is_valid_id(id) {
            id.to_owned()
        } else {
            id::generate_id()?
        };
        Ok(())
    }

    /// Uses a 1.x id (`[A-Za-z0-9_-]{40}`) as the storage key for loading only. The HTTP layer
    /// calls [`Session::migrate_id`] afterwards so the session is saved under a fresh id.
    pub fn set_legacy_id(&mut self, id: &str) -> Result<()> {
        if id::is_legacy_id(id) {
            self.id = id.to_owned();
            Ok(())
        } else {
            self.set_id(id)
        }
    }

    /// Adopts the id a request's verified session cookie claimed
    /// ([`crate::cookie_header::signed_session_id`]), before loading it; a 1.x id is the storage
    /// key for that one read (see [`Session::set_legacy_id`]).
    pub fn claim_id(&mut self, claimed: &SignedId) -> Result<()> {
        if claimed.legacy {
            self.set_legacy_id(&claimed.id)
        } else {
            self.set_id(&claimed.id)
        }
    }

    /// After loading a claimed id: whether the handler knew it. Strict mode: an id the handler
    /// does not know is never adopted (session fixation), the session moves to a fresh id. A
    /// known 1.x id moves to a fresh id too, keeping its data (the old record is left to
    /// expire, so parallel requests during the upgrade still find it).
    pub fn settle_claim(&mut self, legacy: bool) -> Result<bool> {
        if !self.record_exists() {
            self.set_id("")?;
            return Ok(false);
        }
        if legacy {
            self.migrate_id()?;
        }
        Ok(true)
    }

    /// The cookie name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sets the cookie name.
    pub fn set_name(&mut self, name: &str) {
        name.clone_into(&mut self.name);
    }

    /// The options.
    pub fn options(&self) -> &SessionOptions {
        &self.options
    }

    /// Replaces the token format (the HTTP layer knows the app key only later).
    pub fn set_token_format(&mut self, token: TokenFormat) {
        self.options.token = token;
    }

    /// True between `start()` and `save()`.
    pub fn is_started(&self) -> bool {
        self.started
    }

    /// Whether anything changed since `start()`.
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// Marks the session changed, so that `save()` writes rather than touches.
    pub fn mark_dirty(&mut self) {
        self.dirty = true;
    }

    // ----- lifecycle -------------------------------------------------------------------------

    /// Merges a decoded payload (stored keys win over keys put before start), generates the
    /// token when absent or null, stamps the lifecycle keys when absent (see
    /// [`crate::lifecycle`]), and marks the session started and clean.
    ///
    /// A record past the absolute timeout is not used: the session starts over, empty, under a
    /// new id (nothing of the expired record is kept, keys put before start included), and
    /// [`Session::expired`] says why. The caller destroys the expired record, whose id
    /// [`Session::take_expired_id`] hands over ([`Session::start`] does both).
    pub fn apply(&mut self, decoded: Decoded) -> Result<()> {
        let Decoded {
            attributes: stored,
            missing,
            legacy,
        } = decoded;
        self.expired = None;
        self.expired_id = None;
        if !missing {
            let created = lifecycle::stamp(stored.get(CREATED));
            if let Some(reason) = lifecycle::check_absolute(
                created,
                self.now_secs(),
                self.options.absolute_lifetime_secs,
            ) {
                return self.start_over(reason);
            }
        }
        if self.attributes.is_empty() {
            self.attributes = stored;
        } else {
            self.attributes.extend(stored);
        }
        self.record_missing = missing;
        self.user_known = self.user_known || self.attributes.contains_key(USER);
        let had_extra_before_start = self.dirty;
        if !self.has_one("_token") {
            let t = self.options.token.generate()?;
            self.log(|| Op::TokenIfAbsent(t.clone()));
            self.attributes
                .insert("_token".to_owned(), Value::String(t));
        }
        let stamped = self.created_at().is_none() || self.id_issued_at().is_none();
        if stamped {
            self.write_stamps(&Op::StampIfAbsent(self.now_secs()));
        }
        self.started = true;
        // A record that predates the stamps gets them written at this request's save when an
        // absolute timeout is on (else the cap would restart at every load); without one they
        // ride along with the next write, so a read-only request still only touches.
        let stamp_now = stamped && !missing && self.options.absolute_lifetime_secs.is_some();
        self.dirty = legacy || had_extra_before_start || stamp_now;
        Ok(())
    }

    // The loaded record is expired: an empty new session under a new id, as if none was found.
    fn start_over(&mut self, reason: Expiry) -> Result<()> {
        let new = id::generate_id()?;
        let old = std::mem::replace(&mut self.id, new);
        self.attributes.clear();
        self.ops.clear();
        self.base.clear();
        self.dirty = false;
        self.resave_pending = false;
        self.user_known = false;
        self.apply(Decoded {
            missing: true,
            ..Decoded::default()
        })?;
        self.expired = Some(reason);
        self.expired_id = Some(old);
        Ok(())
    }

    /// Why the record loaded at the last start was expired (the session then started over under
    /// a new id), or `None`.
    pub fn expired(&self) -> Option<Expiry> {
        self.expired
    }

    /// The id of the expired record (see [`Session::expired`]), once: the caller destroys it.
    pub fn take_expired_id(&mut self) -> Option<String> {
        self.expired_id.take()
    }

    /// When the session was created (unix seconds); `None` before start.
    pub fn created_at(&self) -> Option<i64> {
        lifecycle::stamp(self.attributes.get(CREATED))
    }

    /// When the current id was issued (unix seconds); `None` before start.
    pub fn id_issued_at(&self) -> Option<i64> {
        lifecycle::stamp(self.attributes.get(ID_AT))
    }

    fn now_secs(&self) -> i64 {
        lifecycle::secs(self.options.clock.now_ms())
    }

    /// Carries out a lifecycle stamp operation ([`Op::StampIfAbsent`], [`Op::IdIssued`],
    /// [`Op::Restart`]) and logs it; other operations are ignored.
    pub(crate) fn write_stamps(&mut self, op: &Op) {
        let (t, created, if_absent) = match *op {
            Op::StampIfAbsent(t) => (t, true, true),
            Op::IdIssued(t) => (t, false, false),
            Op::Restart(t) => (t, true, false),
            _ => return,
        };
        for key in [CREATED, ID_AT] {
            if key == CREATED && !created {
                continue;
            }
            if if_absent && lifecycle::stamp(self.attributes.get(key)).is_some() {
                continue;
            }
            self.set(key, Value::from(t));
        }
        self.log(|| op.clone());
    }

    /// How to decode what a handler returned for this session (limits, and the cipher when
    /// payloads are sealed); detached so that decoding can run off the JS thread.
    pub fn reader(&self) -> payload::Reader {
        payload::Reader {
            max_bytes: self.options.max_payload_bytes,
            cipher: self.options.cipher.clone(),
            ad: self.id.clone(),
            accept_plaintext: self.options.encrypt_migrate,
        }
    }

    /// Whether the handler held a record for this id at `start()` (or one has been written
    /// since). The HTTP layer gives a signed but unknown id a fresh one (strict mode).
    pub fn record_exists(&self) -> bool {
        !self.record_missing
    }

    /// Decodes `raw` (what the handler returned for this id) with this session's limits and
    /// applies it, as the first read of [`Session::begin_load`] would: returns what the load
    /// must do next (follow a forward, destroy an expired record, renew the id), or
    /// [`LoadStep::Done`].
    ///
    /// # Errors
    /// As [`Session::after_read`].
    pub fn load(&mut self, raw: &str) -> Result<LoadStep> {
        let _ = self.begin_load(true);
        self.after_read(raw.to_owned())
    }

    /// Starts a load (see [`crate::load`]): the first step reads this session's id.
    /// `keeps_records` is the handler's [`SessionHandler::keeps_records`].
    pub fn begin_load(&mut self, keeps_records: bool) -> LoadStep {
        self.stale_forward = false;
        self.loading = Loading::Reading {
            hops: 0,
            forwarded: false,
            keeps_records,
            renewals: 0,
            before: None,
        };
        LoadStep::Read(self.id.clone())
    }

    /// The step after a read of this session's (current) id returned `raw`.
    ///
    /// - A forward marker inside its grace window: the session takes the new id and reads it.
    ///   An expired (or unreadable) marker reads as no session.
    /// - Otherwise the record is applied ([`Session::apply`]); one past the absolute timeout asks
    ///   for its destruction (the session starts over under a new id); one whose id is due for
    ///   renewal asks for the renewal's writes.
    ///
    /// # Errors
    /// As [`Session::apply`], and sealing errors of a renewal's payload.
    pub fn after_read(&mut self, raw: String) -> Result<LoadStep> {
        let Loading::Reading {
            hops,
            forwarded,
            keeps_records,
            renewals,
            before,
        } = std::mem::take(&mut self.loading)
        else {
            // Not in a load (a caller applying a payload directly): one as `load` would.
            let _ = self.begin_load(true);
            return self.after_read(raw);
        };
        if raw.starts_with(lifecycle::FORWARD) {
            let cipher = self.options.cipher.clone();
            if let Some((target, until)) =
                lifecycle::parse_forward(&raw, cipher.as_deref(), &self.id)
            {
                if hops < MAX_HOPS && self.now_secs() <= until {
                    self.id = target;
                    self.loading = Loading::Reading {
                        hops: hops + 1,
                        forwarded: true,
                        keeps_records,
                        renewals,
                        before,
                    };
                    return Ok(LoadStep::Read(self.id.clone()));
                }
            }
        }
        // A marker past its window (or one that does not open) is no session.
        let raw = if raw.starts_with(lifecycle::FORWARD) {
            self.stale_forward = true;
            String::new()
        } else {
            raw
        };
        // A lost renewal starts again from the session as it was before the first apply.
        let before = match before {
            Some(b) => Some(b),
            None if self.options.renew_after_secs.is_some() => Some(Box::new(self.clone())),
            None => None,
        };
        let decoded = self.reader().decode(&raw);
        let missing = decoded.missing;
        self.apply(decoded)?;
        self.set_base(raw);
        if let Some(old) = self.take_expired_id() {
            if let Some(reason) = self.expired {
                self.events.push(Event::Expired(reason));
                self.expired_from = Some(old.clone());
            }
            self.events.push(Event::Created);
            self.loading = Loading::Destroying;
            return Ok(LoadStep::Destroy(old));
        }
        if missing {
            self.events.push(Event::Created);
            return Ok(LoadStep::Done);
        }
        self.events.push(if forwarded {
            Event::Forwarded
        } else {
            Event::Loaded
        });
        let due = lifecycle::renewal_due(
            self.id_issued_at(),
            self.now_secs(),
            self.options.renew_after_secs,
        );
        if !due || renewals >= MAX_RENEWALS {
            return Ok(LoadStep::Done);
        }
        if !keeps_records {
            // The cookie driver keeps no record to forward from: the renewed id simply goes out
            // in the next cookie, sealed with the data.
            self.migrate_id()?;
            self.events.push(Event::Renewed);
            return Ok(LoadStep::Done);
        }
        let mut next = Box::new(self.clone());
        let old_id = next.migrate_id()?;
        let payload = next.payload()?;
        let until = self
            .now_secs()
            .saturating_add(i64::try_from(self.options.renew_grace_secs).unwrap_or(i64::MAX));
        let marker =
            lifecycle::forward_marker(&next.id, until, self.options.cipher.as_deref(), &old_id)?;
        let step = LoadStep::Renew {
            new_id: next.id.clone(),
            payload: payload.clone(),
            old_id,
            marker,
            base: self.base.clone(),
        };
        self.loading = Loading::Renewing {
            next,
            payload,
            before: before.unwrap_or_else(|| Box::new(self.clone())),
            renewals: renewals + 1,
        };
        Ok(step)
    }

    /// The step after a [`LoadStep::Destroy`] was carried out.
    ///
    /// # Errors
    /// As [`Session::after_read`] (a lost renewal loads the record it lost to).
    pub fn after_destroy(&mut self) -> Result<LoadStep> {
        match std::mem::take(&mut self.loading) {
            Loading::Retrying {
                current,
                before,
                renewals,
            } => {
                let events = std::mem::take(&mut self.events);
                *self = *before;
                self.events = events;
                self.loading = Loading::Reading {
                    hops: 0,
                    forwarded: false,
                    keeps_records: true,
                    renewals,
                    before: Some(Box::new(self.clone())),
                };
                self.after_read(current)
            }
            _ => Ok(LoadStep::Done),
        }
    }

    /// The step after a [`LoadStep::Renew`]: `claimed` when the marker replaced the old record;
    /// otherwise `current` is what the old record holds now (another request renewed first, or
    /// changed it), and the new record is destroyed before `current` is loaded instead.
    ///
    /// # Errors
    /// As [`Session::after_read`].
    pub fn after_renew(&mut self, claimed: bool, current: String) -> Result<LoadStep> {
        let Loading::Renewing {
            next,
            payload,
            before,
            renewals,
        } = std::mem::take(&mut self.loading)
        else {
            return Ok(LoadStep::Done);
        };
        if claimed {
            let events = std::mem::take(&mut self.events);
            *self = *next;
            self.events = events;
            self.events.push(Event::Renewed);
            self.saved_as(payload);
            self.loading = Loading::Idle;
            return Ok(LoadStep::Done);
        }
        let new_id = next.id.clone();
        self.loading = Loading::Retrying {
            current,
            before,
            renewals,
        };
        Ok(LoadStep::Destroy(new_id))
    }

    /// The `reason` of the `expired` event due when the last load found no session under the id
    /// a client presented (the session still has that id and [`Session::record_exists`] is
    /// false), given whether the driver holds a live tombstone there
    /// ([`crate::SessionHandler::is_tombstone`]). `None` when the engine can tell that nothing
    /// expired:
    /// - a tombstone: the session was ended (a logout, `destroy`, a revoke), which published
    ///   its own `destroyed` event;
    /// - a renewed id's forward marker past its grace window: the session lives on under its
    ///   new id.
    ///
    /// Otherwise [`Expiry::Idle`]: the record went by the driver's own expiry (a TTL) or by gc.
    /// No driver can tell that from an id it never stored, or from a logout whose tombstone
    /// has itself expired (a lifetime later, when the session would have expired idle anyway),
    /// so those are reported as idle too.
    pub fn missing_reason(&self, tombstone: bool) -> Option<Expiry> {
        (!tombstone && !self.stale_forward).then_some(Expiry::Idle)
    }

    /// Whether the last load met a renewed id's forward marker past its grace window under the
    /// id it was asked for (see [`Session::missing_reason`]): no driver needs asking then.
    pub fn met_stale_forward(&self) -> bool {
        self.stale_forward
    }

    /// The lifecycle events since the last call, oldest first (see [`Event`]).
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// The id the last [`Event::Expired`] was about (the session has a new id since).
    pub fn expired_from(&self) -> Option<&str> {
        self.expired_from.as_deref()
    }

    /// Replaces the clock of lifecycle stamps, the absolute timeout and renewal (a test clock
    /// shared with the handler).
    pub fn set_clock(&mut self, clock: SharedClock) {
        self.options.clock = clock;
    }

    /// Remembers `raw` as the record this request loaded (after [`Session::apply`] of what a
    /// handler read off the JS thread): compare-and-set saves compare against it.
    ///
    /// After an expired record made the session start over, the new id has no record: the base
    /// stays empty whatever `raw` is.
    pub fn set_base(&mut self, raw: String) {
        if self.expired.is_none() {
            self.base = raw;
        }
    }

    /// The record as this request last saw it (`""` for none).
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Takes the base out for a save's write ([`write_payload`] compares against it): a move, not
    /// a copy of the payload. A write that succeeds replaces it ([`Session::saved_as`]); one that
    /// fails hands it back with [`Session::restore_base`].
    pub fn take_base(&mut self) -> String {
        std::mem::take(&mut self.base)
    }

    /// Puts back the base taken by [`Session::take_base`] after a write failed: the record as
    /// last seen (the loaded one, or the one the last conflict found).
    pub fn restore_base(&mut self, base: String) {
        self.base = base;
    }

    /// After a compare-and-set found the record of this session's id changed to `current`:
    ///
    /// - A renewal's forward marker inside its grace window (another request renewed the id
    ///   after this one loaded it): the session moves to the renewed id and asks for its record
    ///   ([`AfterConflict::Follow`]); what that read returns comes back here, is rebased onto
    ///   and written there, and the cookie then carries the renewed id. Only renewal leaves
    ///   markers, so this never follows a login's or logout's old id (session fixation): those
    ///   leave a tombstone or nothing, which read as gone. At most [`MAX_HOPS`] markers are
    ///   followed in one save.
    /// - A record that holds no session (gone: destroyed, expired, or a marker past its window
    ///   or one that does not open): [`AfterConflict::Drop`]; the save must never recreate it.
    /// - Otherwise the session is rebased onto it (see [`Session::rebase`]) and the payload to
    ///   try next is returned ([`AfterConflict::Retry`]).
    ///
    /// # Errors
    /// As [`Session::rebase`] and [`Session::payload`].
    pub fn after_conflict(&mut self, current: String) -> Result<AfterConflict> {
        if current.starts_with(lifecycle::FORWARD) {
            let cipher = self.options.cipher.clone();
            if let Some((target, until)) =
                lifecycle::parse_forward(&current, cipher.as_deref(), &self.id)
            {
                if self.save_hops < MAX_HOPS && self.now_secs() <= until {
                    self.save_hops += 1;
                    self.id.clone_from(&target);
                    return Ok(AfterConflict::Follow(target));
                }
            }
            // A marker is never a payload: one that does not forward reads as no session.
            self.dirty = false;
            return Ok(AfterConflict::Drop);
        }
        if !self.rebase(&current)? {
            self.dirty = false;
            return Ok(AfterConflict::Drop);
        }
        self.base = current;
        self.payload().map(AfterConflict::Retry)
    }

    /// Records that `payload` reached the handler: the new base for a later save.
    pub fn saved_as(&mut self, payload: String) {
        self.saved();
        self.base = payload;
    }

    /// Ages flash data and decides how to persist: the payload when changed (or when the handler
    /// held no record at start: a new session), a touch otherwise. Ends the started state.
    ///
    /// An unchanged session is never written blindly, so that a request that only read cannot
    /// bring back a record that another request destroyed meanwhile (a logout). `resave` keeps
    /// that rule: it touches first and rewrites only when the touch found the record (see
    /// [`Session::after_touch`]); between the two a concurrent destroy can still slip in, which
    /// the concurrency issue's tombstones close.
    ///
    /// # Errors
    /// [`SessionError::TooLarge`] when the payload is over the limit; nothing must be written then.
    pub fn prepare_save(&mut self, resave: bool) -> Result<SaveAction> {
        self.prepare_save_for(resave, false)
    }

    /// [`Session::prepare_save`] for a handler that compares (`compares`: its
    /// [`SessionHandler::supports_cas`]). With id renewal on, an unchanged session whose id
    /// became due for renewal while this request ran may have been renewed by another request
    /// since it loaded: its old id then holds a forward marker, which a touch would find and keep
    /// alive, and the response would carry the old id back to the browser (loading nothing once
    /// the grace window is over). Such a save is a compare-and-set write instead of a touch (one
    /// round trip either way, and only in that window): unchanged record, the same data written
    /// back; a marker, followed (see [`Session::after_conflict`]); gone, dropped. A handler that
    /// cannot compare keeps the touch, since its plain write would replace the marker.
    ///
    /// # Errors
    /// As [`Session::prepare_save`].
    pub fn prepare_save_for(&mut self, resave: bool, compares: bool) -> Result<SaveAction> {
        self.sync_user();
        self.age_flash_data();
        self.started = false;
        self.resave_pending = false;
        self.save_hops = 0;
        let maybe_renewed = compares
            && lifecycle::renewal_due(
                self.id_issued_at(),
                self.now_secs(),
                self.options.renew_after_secs,
            );
        if self.dirty || self.record_missing || maybe_renewed {
            Ok(SaveAction::Write(self.payload()?))
        } else {
            self.resave_pending = resave;
            Ok(SaveAction::Touch)
        }
    }

    /// The step after the touch of [`SaveAction::Touch`]: `found` is what the touch answered.
    /// No record: nothing is written and the save is [`SaveOutcome::Dropped`]. A record with a
    /// pending `resave`: write [`Session::payload`]. Otherwise the session is saved as touched.
    ///
    /// A handler that cannot touch answers by reading: a non-empty payload is found, and writing
    /// that same stored text back refreshes the expiry without changing or recreating anything.
    ///
    /// # Errors
    /// [`SessionError::TooLarge`] when a rewrite's payload is over the limit.
    pub fn after_touch(&mut self, found: bool) -> Result<AfterTouch> {
        let resave = std::mem::take(&mut self.resave_pending);
        if !found {
            // The record is gone: keep "existed at start" so a later unchanged save drops too.
            self.dirty = false;
            return Ok(AfterTouch::Done(SaveOutcome::Dropped));
        }
        if resave {
            return Ok(AfterTouch::Write(self.payload()?));
        }
        self.saved();
        Ok(AfterTouch::Done(SaveOutcome::Touched))
    }

    /// Records that the payload reached the handler: later saves may touch.
    pub fn saved(&mut self) {
        self.dirty = false;
        self.record_missing = false;
        self.ops.clear();
    }

    /// What this request did since it started (or last saved), in order.
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    /// Moves this session onto `current`, the record as another request left it, and replays
    /// this request's operations on it (see [`crate::ops`] for the merge rules). Returns
    /// `false`, changing nothing, when `current` holds no session (destroyed, expired or
    /// unreadable): a save must then be dropped, never recreate the record.
    ///
    /// # Errors
    /// An operation that no longer applies (a `push` onto what is now a string): the caller
    /// reports a conflict it cannot merge.
    pub fn rebase(&mut self, current: &str) -> Result<bool> {
        let decoded = self.reader().decode(current);
        if decoded.missing {
            return Ok(false);
        }
        let before = std::mem::replace(&mut self.attributes, decoded.attributes);
        let log = std::mem::take(&mut self.ops);
        if let Err(e) = ops::replay(self, &log) {
            self.attributes = before;
            self.ops = log;
            return Err(e);
        }
        self.dirty = true;
        Ok(true)
    }

    // Logs an operation unless a composite operation is running its parts.
    fn log(&mut self, op: impl FnOnce() -> Op) {
        if !self.muted {
            self.ops.push(op());
        }
    }

    /// Runs `f` with its parts unlogged, then logs `op` when it succeeded.
    pub(crate) fn logged<T>(
        &mut self,
        op: Op,
        f: impl FnOnce(&mut Self) -> Result<T>,
    ) -> Result<T> {
        let prev = std::mem::replace(&mut self.muted, true);
        let r = f(self);
        self.muted = prev;
        if r.is_ok() {
            self.log(|| op);
        }
        r
    }

    /// The payload to store, size-checked, and sealed when a cipher is set (a sealing failure
    /// is an error: plaintext is never written in its place).
    pub fn payload(&self) -> Result<String> {
        let p = payload::encode(&self.attributes);
        if p.len() > self.options.max_payload_bytes {
            return Err(SessionError::TooLarge(format!(
                "session payload is {} bytes, over the limit of {} bytes; nothing was written",
                p.len(),
                self.options.max_payload_bytes
            )));
        }
        match &self.options.cipher {
            Some(c) => c.seal(p.as_bytes(), self.id.as_bytes()),
            None => Ok(p),
        }
    }

    /// Loads the session from `handler` (see [`crate::load::load`]): a renewed id's old id is
    /// forwarded, a record past the absolute timeout is destroyed and the session starts over
    /// under a new id, and an id due for renewal is renewed.
    pub async fn start(&mut self, handler: &dyn SessionHandler) -> Result<bool> {
        let cell = std::sync::Mutex::new(self);
        crate::load::load(handler, &cell, &WriteMeta::default()).await?;
        Ok(true)
    }

    /// Opens a request's session: with no verified cookie (`claimed` is `None`) the fresh id
    /// starts empty without asking the handler (a fresh random id has no record); otherwise the
    /// claimed id is loaded and settled ([`Session::settle_claim`]). Resolves to whether the
    /// handler knew the claimed id.
    pub async fn open(
        &mut self,
        handler: &dyn SessionHandler,
        claimed: Option<&SignedId>,
    ) -> Result<bool> {
        let Some(c) = claimed else {
            self.load("")?;
            return Ok(false);
        };
        self.claim_id(c)?;
        self.start(handler).await?;
        self.settle_claim(c.legacy)
    }

    /// Saves the session to `handler` as [`Session::prepare_save`] and [`Session::after_touch`]
    /// decide: a write when changed or new, else a touch, and nothing when the touch finds no
    /// record.
    pub async fn save(
        &mut self,
        handler: &dyn SessionHandler,
        meta: &WriteMeta,
    ) -> Result<SaveOutcome> {
        self.save_with(handler, false, meta).await
    }

    /// [`Session::save`] with `resave`.
    pub async fn save_with(
        &mut self,
        handler: &dyn SessionHandler,
        resave: bool,
        meta: &WriteMeta,
    ) -> Result<SaveOutcome> {
        let action = self.prepare_save_for(resave, handler.supports_cas())?;
        let meta = &self.write_meta(meta.clone());
        let payload = match action {
            SaveAction::Write(p) => p,
            SaveAction::Touch => {
                let found = handler.touch_with_meta(&self.id, meta).await?;
                match self.after_touch(found)? {
                    AfterTouch::Write(p) => p,
                    AfterTouch::Done(outcome) => return Ok(outcome),
                }
            }
        };
        let id = self.id.clone();
        let mut base = self.take_base();
        let written = match write_payload(handler, &id, payload, &mut base, meta, |current| {
            self.after_conflict(current)
        })
        .await
        {
            Ok(w) => w,
            Err(e) => {
                self.restore_base(base);
                return Err(e);
            }
        };
        Ok(match written {
            Some(p) => {
                self.saved_as(p);
                SaveOutcome::Written
            }
            None => SaveOutcome::Dropped,
        })
    }

    /// A new id, data kept; the old record is destroyed through `handler` when `destroy`.
    pub async fn migrate(&mut self, handler: &dyn SessionHandler, destroy: bool) -> Result<bool> {
        let old = self.migrate_id()?;
        if destroy {
            handler.destroy(&old).await?;
        }
        Ok(true)
    }

    /// `migrate` plus a new token.
    pub async fn regenerate(
        &mut self,
        handler: &dyn SessionHandler,
        destroy: bool,
    ) -> Result<bool> {
        self.migrate(handler, destroy).await?;
        self.regenerate_token()?;
        Ok(true)
    }

    /// `flush` then `migrate(true)`.
    pub async fn invalidate(&mut self, handler: &dyn SessionHandler) -> Result<bool> {
        self.flush();
        self.migrate(handler, true).await
    }

    /// Switches to a fresh id and returns the old one (for the caller to destroy when asked).
    /// The new id has no record yet, so the next save writes.
    ///
    /// The creation time is kept and the id's issue time set to now; a session holding no app
    /// data (`flush` then migrate: `invalidate`) starts a new lifecycle instead, both stamps now.
    pub fn migrate_id(&mut self) -> Result<String> {
        let new = id::generate_id()?;
        let now = self.now_secs();
        let empty = self
            .attributes
            .iter()
            .all(|(k, _)| lifecycle::RESERVED.contains(&k.as_str()));
        self.write_stamps(&if empty {
            Op::Restart(now)
        } else {
            Op::IdIssued(now)
        });
        self.record_missing = true;
        self.dirty = true;
        // The new id has no record: its first save compares against "none".
        self.base.clear();
        Ok(std::mem::replace(&mut self.id, new))
    }

    // ----- the user link (see crate::users) ---------------------------------------------------

    /// Links the session to user `user` (`None` unlinks); stored at the next save, which hands
    /// it to the driver's per-user index.
    ///
    /// # Errors
    /// [`SessionError::Value`] for an id that [`users::check_user_id`] refuses; nothing changes.
    pub fn set_user(&mut self, user: Option<&str>) -> Result<()> {
        if let Some(u) = user {
            users::check_user_id(u)?;
        }
        self.log(|| Op::SetUser(user.map(str::to_owned)));
        match user {
            Some(u) => self.set(USER, Value::String(u.to_owned())),
            None => {
                if self.attributes.remove(USER).is_some() {
                    self.dirty = true;
                }
            }
        }
        self.user_known = true;
        Ok(())
    }

    /// The linked user's id, if any.
    pub fn user(&self) -> Option<&str> {
        self.attributes.get(USER).and_then(Value::as_str)
    }

    /// With `user_attribute` set: links the user that attribute names now, when it changed.
    fn sync_user(&mut self) {
        let Some(attr) = self.options.user_attribute.as_deref() else {
            return;
        };
        let want = users::user_of_value(self.get(attr));
        if want.as_deref() != self.user() {
            // `want` is checked already: this cannot fail.
            let _ = self.set_user(want.as_deref());
        }
    }

    /// [`Session::write_meta`] after applying `user_attribute`, for callers that hand the
    /// metadata over before [`Session::prepare_save`] (the JS-driver bridge).
    pub fn linked_meta(&mut self, meta: WriteMeta) -> WriteMeta {
        self.sync_user();
        self.write_meta(meta)
    }

    /// The metadata to hand the driver with this session's writes: `meta` with `user_id` set to
    /// the linked user (or cleared when the session is known to be unlinked). A session that
    /// never had a link keeps the caller's `user_id`.
    pub fn write_meta(&self, mut meta: WriteMeta) -> WriteMeta {
        if let Some(u) = self.user() {
            meta.user_id = Some(u.to_owned());
        } else if self.user_known {
            meta.user_id = None;
        }
        meta
    }

    // ----- reading ---------------------------------------------------------------------------

    /// The value at `key` (dot-aware); `None` when absent, `Some(Null)` for a stored null.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.attributes.get(key)
    }

    /// The stored JSON text of a literal top-level key that nothing has read for changing: a
    /// `get` of a whole object can hand it over without parsing and re-encoding it.
    pub fn get_raw(&self, key: &str) -> Option<&str> {
        self.attributes.raw(key)
    }

    /// A copy of all attributes, internal keys (`_token`, `_flash`, …) included; the lifecycle
    /// keys of [`crate::lifecycle`] are never shown.
    pub fn all(&self) -> Attributes {
        let mut out = self.attributes.to_map();
        for k in lifecycle::RESERVED {
            out.shift_remove(k);
        }
        out.shift_remove(USER);
        out
    }

    /// All attributes as JSON text (untouched values copied verbatim), as [`Session::all`].
    pub fn all_json(&self) -> String {
        if lifecycle::RESERVED
            .iter()
            .any(|k| self.attributes.contains_key(k))
            || self.attributes.contains_key(USER)
        {
            lifecycle::encode_visible(&self.attributes)
        } else {
            self.attributes.encode()
        }
    }

    /// The listed top-level keys that are present (no dot notation, as Laravel's `Arr::only`);
    /// never the lifecycle keys.
    pub fn only<S: AsRef<str>>(&self, keys: &[S]) -> Attributes {
        let mut out = Map::new();
        for (k, slot) in self.attributes.iter() {
            if lifecycle::is_hidden(k) {
                continue;
            }
            if keys.iter().any(|key| key.as_ref() == k) {
                out.insert(k.clone(), slot.value().clone());
            }
        }
        out
    }

    /// A copy without the listed keys (dot-aware), and without the lifecycle keys.
    pub fn except<S: AsRef<str>>(&self, keys: &[S]) -> Attributes {
        let mut out = self.all();
        for k in keys {
            attributes::forget(&mut out, k.as_ref());
        }
        out
    }

    /// Every key present, a null value included. Vacuously true for no keys.
    pub fn exists<S: AsRef<str>>(&self, keys: &[S]) -> bool {
        keys.iter().all(|k| {
            let k = k.as_ref();
            self.attributes.raw(k).is_some() || self.get(k).is_some()
        })
    }

    fn has_one(&self, key: &str) -> bool {
        // An untouched top-level value answers from its stored text, without being parsed.
        if let Some(raw) = self.attributes.raw(key) {
            return raw.trim() != "null";
        }
        self.get(key).is_some_and(|v| !v.is_null())
    }

    /// Every key present and not null. Vacuously true for no keys.
    pub fn has<S: AsRef<str>>(&self, keys: &[S]) -> bool {
        keys.iter().all(|k| self.has_one(k.as_ref()))
    }

    /// At least one key present and not null.
    pub fn has_any<S: AsRef<str>>(&self, keys: &[S]) -> bool {
        keys.iter().any(|k| self.has_one(k.as_ref()))
    }

    /// As the OstroJS docs define it: true when every key is null or absent.
    pub fn missing<S: AsRef<str>>(&self, keys: &[S]) -> bool {
        keys.iter().all(|k| !self.has_one(k.as_ref()))
    }

    // ----- writing ---------------------------------------------------------------------------

    /// Sets `key` (dot-aware).
    ///
    /// # Errors
    /// [`SessionError::Value`] naming the key when the value would sit deeper than
    /// [`payload::MAX_DEPTH`] in the payload (the key's dot segments count): reading would
    /// treat such a payload as corrupt and lose the whole session. Nothing is stored then.
    pub fn put(&mut self, key: &str, value: Value) -> Result<()> {
        check_depth(key, &value, 0)?;
        self.log(|| Op::Put(key.to_owned(), value.clone()));
        self.set(key, value);
        Ok(())
    }

    /// Checks `value` for `key` as [`Session::put`] would, without storing it.
    ///
    /// # Errors
    /// As [`Session::put`].
    pub fn check_value(&self, key: &str, value: &Value) -> Result<()> {
        check_depth(key, value, 0)
    }

    // Engine-made values (flash lists, tokens): shallow by construction.
    fn set(&mut self, key: &str, value: Value) {
        if self.attributes.set(key, value) {
            self.dirty = true;
        }
    }

    /// Sets every pair of `values` (keys dot-aware). `replace()` is the same merge.
    ///
    /// # Errors
    /// As [`Session::put`]; every pair is checked before any is stored.
    pub fn put_many(&mut self, values: Attributes) -> Result<()> {
        for (k, v) in &values {
            check_depth(k, v, 0)?;
        }
        for (k, v) in values {
            self.log(|| Op::Put(k.clone(), v.clone()));
            self.set(&k, v);
        }
        Ok(())
    }

    /// Removes `key` (dot-aware) and returns its value. A lifecycle key is not removed (`None`).
    pub fn forget(&mut self, key: &str) -> Option<Value> {
        if lifecycle::is_reserved(key) {
            return None;
        }
        let v = self.attributes.forget(key);
        if v.is_some() {
            self.dirty = true;
            self.log(|| Op::Forget(key.to_owned()));
        }
        v
    }

    /// `get` then `forget`.
    pub fn pull(&mut self, key: &str) -> Option<Value> {
        self.forget(key)
    }

    /// Empties the session, the token included. The lifecycle keys stay, so flushing cannot
    /// extend the absolute timeout; `invalidate` (flush, then a new id) resets them.
    pub fn flush(&mut self) {
        self.log(|| Op::Flush);
        let kept: Vec<(&str, Value)> = lifecycle::RESERVED
            .iter()
            .filter_map(|k| self.attributes.remove(k).map(|v| (*k, v)))
            .collect();
        if !self.attributes.is_empty() {
            self.dirty = true;
        }
        self.attributes.clear();
        for (k, v) in kept {
            self.attributes.insert(k.to_owned(), v);
        }
    }

    /// Appends `value` to the array at `key` (absent or null starts a new array).
    ///
    /// # Errors
    /// [`SessionError::Value`] when the key holds something other than an array.
    pub fn push(&mut self, key: &str, value: Value) -> Result<()> {
        // One level more than `key`: the element sits inside the array.
        check_depth(key, &value, 1)?;
        // An untouched stored array takes the element as text, unparsed (see `push_raw`).
        if self.attributes.push_raw(key, &value) {
            self.log(|| Op::Push(key.to_owned(), value));
            self.dirty = true;
            return Ok(());
        }
        if !self.muted && matches!(self.get(key), None | Some(Value::Null | Value::Array(_))) {
            self.ops.push(Op::Push(key.to_owned(), value.clone()));
        }
        match self.attributes.get_mut(key) {
            Some(Value::Array(a)) => {
                a.push(value);
                self.dirty = true;
                Ok(())
            }
            None | Some(Value::Null) => {
                self.set(key, Value::Array(vec![value]));
                Ok(())
            }
            Some(other) => Err(SessionError::Value(format!(
                "cannot push onto session key \"{key}\": it holds {}, not an array",
                kind(other)
            ))),
        }
    }

    /// Adds `by` to the number at `key` (absent or null counts as 0) and returns the new value.
    ///
    /// # Errors
    /// [`SessionError::Value`] when the value is not a number (or numeric string) or the result
    /// is not finite; the stored value is left unchanged.
    pub fn increment(&mut self, key: &str, by: f64) -> Result<Value> {
        let current = match self.get(key) {
            None | Some(Value::Null) => Value::from(0),
            Some(Value::Number(n)) => Value::Number(n.clone()),
            Some(Value::String(s)) if s.trim().parse::<f64>().is_ok_and(f64::is_finite) => {
                number_from_str(s.trim())
            }
            Some(other) => {
                return Err(SessionError::Value(format!(
                    "cannot increment session key \"{key}\": it holds {}, not a number",
                    kind(other)
                )))
            }
        };
        let next = add(&current, by).ok_or_else(|| {
            SessionError::Value(format!(
                "cannot increment session key \"{key}\" by {by}: the result is not a finite number"
            ))
        })?;
        // A number is a leaf, but a long dot key alone can pass the payload's depth limit.
        check_depth(key, &next, 0)?;
        self.log(|| Op::Add(key.to_owned(), by));
        self.set(key, next.clone());
        Ok(next)
    }

    /// Deep-merges `value` into `key`: objects merge, arrays concatenate, anything else replaces.
    ///
    /// # Errors
    /// As [`Session::put`], for the merged value.
    pub fn merge(&mut self, key: &str, value: Value) -> Result<()> {
        check_depth(key, &value, 0)?;
        let op = Op::Merge(key.to_owned(), value.clone());
        let mut target = self.get(key).cloned().unwrap_or(Value::Null);
        attributes::merge_values(&mut target, value);
        self.logged(op, |s| s.put(key, target))
    }

    // ----- flash -----------------------------------------------------------------------------

    pub(crate) fn list(&self, key: &str) -> Vec<String> {
        match self.get(key) {
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            // Laravel's JSON serialisation can write a list as an object of strings.
            Some(Value::Object(m)) => m
                .values()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        }
    }

    pub(crate) fn set_list(&mut self, key: &str, list: Vec<String>) {
        self.set(
            key,
            Value::Array(list.into_iter().map(Value::String).collect()),
        );
    }

    /// Puts `value` and marks `key` to survive exactly the next request.
    ///
    /// # Errors
    /// As [`Session::put`]; nothing is stored or marked then.
    pub fn flash(&mut self, key: &str, value: Value) -> Result<()> {
        let op = Op::Flash(key.to_owned(), value.clone());
        self.logged(op, |s| s.flash_parts(key, value))
    }

    fn flash_parts(&mut self, key: &str, value: Value) -> Result<()> {
        self.put(key, value)?;
        let mut new = self.list(FLASH_NEW);
        new.push(key.to_owned());
        self.set_list(FLASH_NEW, new);
        let old: Vec<String> = self
            .list(FLASH_OLD)
            .into_iter()
            .filter(|k| k != key)
            .collect();
        self.set_list(FLASH_OLD, old);
        Ok(())
    }

    /// Puts `value` for this request only.
    ///
    /// # Errors
    /// As [`Session::put`].
    pub fn now(&mut self, key: &str, value: Value) -> Result<()> {
        let op = Op::Now(key.to_owned(), value.clone());
        self.logged(op, |s| s.now_parts(key, value))
    }

    fn now_parts(&mut self, key: &str, value: Value) -> Result<()> {
        self.put(key, value)?;
        let mut old = self.list(FLASH_OLD);
        old.push(key.to_owned());
        self.set_list(FLASH_OLD, old);
        Ok(())
    }

    /// Keeps every flashed value for one more request.
    pub fn reflash(&mut self) {
        self.log(|| Op::Reflash);
        let new = unique(self.list(FLASH_NEW).into_iter().chain(self.list(FLASH_OLD)));
        self.set_list(FLASH_NEW, new);
        self.set_list(FLASH_OLD, Vec::new());
    }

    /// Keeps the listed keys for one more request (a plain key becomes flash data).
    pub fn keep<S: AsRef<str>>(&mut self, keys: &[S]) {
        let keys: Vec<String> = keys.iter().map(|k| k.as_ref().to_owned()).collect();
        self.log(|| Op::Keep(keys.clone()));
        let new = unique(self.list(FLASH_NEW).into_iter().chain(keys.iter().cloned()));
        self.set_list(FLASH_NEW, new);
        let old: Vec<String> = self
            .list(FLASH_OLD)
            .into_iter()
            .filter(|k| !keys.contains(k))
            .collect();
        self.set_list(FLASH_OLD, old);
    }

    /// Of this request's new flash data, keeps only the listed keys; the rest are forgotten.
    pub fn flash_only<S: AsRef<str>>(&mut self, keys: &[S]) {
        self.log(|| Op::FlashOnly(keys.iter().map(|k| k.as_ref().to_owned()).collect()));
        self.filter_new_flash(|k| keys.iter().any(|x| x.as_ref() == k));
    }

    /// Of this request's new flash data, forgets the listed keys.
    pub fn flash_except<S: AsRef<str>>(&mut self, keys: &[S]) {
        self.log(|| Op::FlashExcept(keys.iter().map(|k| k.as_ref().to_owned()).collect()));
        self.filter_new_flash(|k| !keys.iter().any(|x| x.as_ref() == k));
    }

    fn filter_new_flash(&mut self, keep: impl Fn(&str) -> bool) {
        let (kept, dropped): (Vec<String>, Vec<String>) =
            self.list(FLASH_NEW).into_iter().partition(|k| keep(k));
        if dropped.is_empty() {
            return;
        }
        // Parts of the flash operation already logged.
        let muted = std::mem::replace(&mut self.muted, true);
        for k in &dropped {
            self.forget(k);
        }
        self.muted = muted;
        self.set_list(FLASH_NEW, kept);
    }

    /// Flashes old input (`_old_input`).
    ///
    /// # Errors
    /// As [`Session::put`]: client input nested too deep is refused, not stored.
    pub fn flash_input(&mut self, input: Value) -> Result<()> {
        self.flash(OLD_INPUT, input)
    }

    /// With no key: whether any old input exists; with a key: whether that field is non-null.
    pub fn has_old_input(&self, key: Option<&str>) -> bool {
        match key {
            None => match self.get(OLD_INPUT) {
                Some(Value::Object(m)) => !m.is_empty(),
                Some(Value::Array(a)) => !a.is_empty(),
                _ => false,
            },
            Some(k) => self.get_old_input(Some(k)).is_some_and(|v| !v.is_null()),
        }
    }

    /// The old input, or one field of it (dot-aware).
    pub fn get_old_input(&self, key: Option<&str>) -> Option<&Value> {
        let input = self.get(OLD_INPUT)?;
        match (key, input) {
            (None, v) => Some(v),
            (Some(k), Value::Object(m)) => attributes::get(m, k),
            _ => None,
        }
    }

    /// Forgets the old flash data, makes the new flash data old.
    ///
    /// Logged as what this request saw, so that a replay on a record another request changed
    /// ages only those keys (see [`crate::ops`]).
    pub fn age_flash_data(&mut self) {
        let old = self.list(FLASH_OLD);
        let new = self.list(FLASH_NEW);
        self.log(|| Op::Age {
            old: old.clone(),
            new: new.clone(),
        });
        let muted = std::mem::replace(&mut self.muted, true);
        for k in &old {
            self.forget(k);
        }
        self.set_list(FLASH_OLD, new);
        self.set_list(FLASH_NEW, Vec::new());
        self.muted = muted;
    }

    // ----- token and previous URL ------------------------------------------------------------

    /// The CSRF token (`_token`), if any.
    pub fn token(&self) -> Option<&str> {
        self.get("_token").and_then(Value::as_str)
    }

    /// Replaces the CSRF token and returns it.
    pub fn regenerate_token(&mut self) -> Result<String> {
        let t = self.options.token.generate()?;
        self.log(|| Op::Put("_token".to_owned(), Value::String(t.clone())));
        self.set("_token", Value::String(t.clone()));
        Ok(t)
    }

    /// `_previous.url`.
    pub fn previous_url(&self) -> Option<&str> {
        self.get("_previous.url").and_then(Value::as_str)
    }

    /// Sets `_previous.url`; the session only changes when the URL differs.
    pub fn set_previous_url(&mut self, url: &str) {
        if self.previous_url() == Some(url) {
            return;
        }
        self.log(|| Op::Put("_previous.url".to_owned(), Value::String(url.to_owned())));
        self.set("_previous.url", Value::String(url.to_owned()));
    }
}

/// Refuses `value` at `key` when it would sit deeper than [`payload::MAX_DEPTH`] in the stored
/// payload: the top-level object, one level per dot segment of `key` after the first, `extra`
/// levels (a push goes inside an array) and the value's own nesting.
///
/// Also refuses the lifecycle keys, which only the engine writes (see [`crate::lifecycle`]).
fn check_depth(key: &str, value: &Value, extra: usize) -> Result<()> {
    if lifecycle::is_reserved(key) {
        return Err(SessionError::Value(format!(
            "cannot store a value at session key \"{key}\": it is reserved for the session's \
             lifecycle (creation and id times) or its user link (use setUser); nothing was stored"
        )));
    }
    let at = key.split('.').count().saturating_add(extra);
    let room = payload::MAX_DEPTH.saturating_sub(at);
    if at <= payload::MAX_DEPTH && payload::value_depth_within(value, room) {
        return Ok(());
    }
    Err(depth_error(key))
}

/// The error for a value nested deeper than the payload allows, naming the key.
pub fn depth_error(key: &str) -> SessionError {
    SessionError::Value(format!(
        "cannot store the value at session key \"{key}\": it is nested more than {} levels deep \
         (counting the key's dot segments), and a payload that deep would read back as corrupt; \
         nothing was stored",
        payload::MAX_DEPTH
    ))
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn unique(items: impl Iterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for i in items {
        if !out.contains(&i) {
            out.push(i);
        }
    }
    out
}

fn number_from_str(s: &str) -> Value {
    if let Ok(i) = s.parse::<i64>() {
        return Value::from(i);
    }
    s.parse::<f64>()
        .ok()
        .and_then(Number::from_f64)
        .map_or(Value::from(0), Value::Number)
}

// Integer arithmetic while both sides are integers (no float rounding of counters).
fn add(current: &Value, by: f64) -> Option<Value> {
    let n = current.as_number()?;
    #[allow(clippy::cast_possible_truncation, clippy::float_cmp)]
    if let (Some(a), true) = (n.as_i64(), by.fract() == 0.0 && by.abs() < 9.0e15) {
        let b = by as i64;
        if let Some(sum) = a.checked_add(b) {
            return Some(Value::from(sum));
        }
    }
    let sum = n.as_f64()? + by;
    Number::from_f64(sum).map(Value::Number)
}
