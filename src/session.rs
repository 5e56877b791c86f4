//! `NativeSession`: the engine's `Session` behind a JS class. `lib/store.js` wraps it with the
//! public `Store` API (variadic keys, lazy defaults, JSON for containers, handler dispatch).

use crate::errors::{self, OrThrow};
use crate::handlers::{NativeHandler, WriteMetaJs};
use crate::runtime::promise;
use crate::values::{self, Out, Scalar};
use napi::bindgen_prelude::*;
use napi_derive::napi;
use ostro_session_core::clock::ManualClock;
use ostro_session_core::lifecycle::Event;
use ostro_session_core::load::{self, LoadStep};
use ostro_session_core::session::write_payload;
use ostro_session_core::{
    session_handle, AfterConflict, AfterTouch, SaveAction, SaveOutcome, Session, SessionError,
    SessionOptions,
};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

/// Options of a session.
#[napi(object)]
pub struct NativeSessionOptions {
    /// Largest payload read or written, in bytes.
    pub max_payload_bytes: Option<f64>,
    /// How `token()` values are made: `'random'` (40 alphanumerics, the default) or `'ostro'`
    /// (the `csrf` package's format that OstroJS checks against `tokenKey`).
    pub token_format: Option<String>,
    /// The app key that `'ostro'` tokens are made with.
    pub token_key: Option<String>,
    /// Seal payloads at rest: the app key first, then previous keys that still open payloads.
    pub encrypt_keys: Option<Vec<String>>,
    /// With `encryptKeys`: read an unsealed payload once and seal it at the next save.
    pub encrypt_migrate: Option<bool>,
    /// `user_attribute`: the attribute (a dot path) whose value links the session to a user at
    /// every save.
    pub user_attribute: Option<String>,
    /// The absolute timeout in seconds since creation (`absolute_lifetime`); none when absent.
    pub absolute_lifetime_secs: Option<f64>,
    /// Id renewal in seconds since the id was issued (`renew_after`); none when absent.
    pub renew_after_secs: Option<f64>,
    /// How long a renewed id's old id forwards, in seconds (`renew_grace_seconds`, default 30).
    pub renew_grace_secs: Option<f64>,
}

/// A whole number of seconds from JS (already checked by lib/config.js; checked again here so
/// that a direct caller gets an error, not a wrapped value).
fn whole_secs(name: &str, v: f64) -> std::result::Result<u64, SessionError> {
    if (0.0..=9_007_199_254_740_991.0).contains(&v) {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Ok(v.ceil() as u64)
    } else {
        Err(SessionError::InvalidOption(format!(
            "{name} must be a number of seconds from 0, got {v}"
        )))
    }
}

/// A lifecycle event of a load, as `takeEvents` hands it to lib/events.js.
#[napi(object)]
pub struct LifecycleEvent {
    /// `'created'`, `'loaded'`, `'expired'` or `'renewed'`.
    pub name: String,
    /// `'idle'`/`'absolute'` for `expired`, `'forwarded'` for a load through a renewed id's
    /// forward, `'renew_after'` for `renewed`; null otherwise.
    pub reason: Option<String>,
    /// The keyed hash of the id the event is about (`sessionHandle`), never the id.
    pub handle: String,
}

/// One session's attributes and id.
#[napi]
pub struct NativeSession {
    // Locked only for the duration of a sync call or of an apply step, never across I/O.
    inner: Arc<Mutex<Session>>,
    // The test clock, once `setNow` was called.
    clock: OnceLock<ManualClock>,
}

/// A load step for JS: null when the load is over, `['read', id]`, `['destroy', id]`, or
/// `['renew', newId, payload, oldId, marker, base]` (see the core's `LoadStep`).
fn step_js(step: LoadStep) -> Option<Vec<String>> {
    match step {
        LoadStep::Done => None,
        LoadStep::Read(id) => Some(vec!["read".into(), id]),
        LoadStep::Destroy(id) => Some(vec!["destroy".into(), id]),
        LoadStep::Renew {
            new_id,
            payload,
            old_id,
            marker,
            base,
        } => Some(vec!["renew".into(), new_id, payload, old_id, marker, base]),
    }
}

/// What to do after a refused compare-and-set, for JS: null when the save is dropped,
/// `['write', payload]` to try again against the record just read, `['read', id]` to read a
/// renewed id's record and hand it to `afterConflict` (see the core's `AfterConflict`).
fn conflict_js(step: AfterConflict) -> Option<Vec<String>> {
    match step {
        AfterConflict::Retry(p) => Some(vec!["write".into(), p]),
        AfterConflict::Follow(id) => Some(vec!["read".into(), id]),
        AfterConflict::Drop => None,
    }
}

/// The engine's options from the JS object (checked here as well as in lib/config.js, so that
/// a direct caller gets a coded error).
fn session_options(o: NativeSessionOptions) -> std::result::Result<SessionOptions, SessionError> {
    let mut opts = SessionOptions::default();
    if let Some(max) = o.max_payload_bytes {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        {
            opts.max_payload_bytes = max as usize;
        }
    }
    opts.user_attribute = o.user_attribute.filter(|a| !a.is_empty());
    crate::crypto::configure(
        &mut opts,
        o.token_format.as_deref(),
        o.token_key,
        o.encrypt_keys,
        o.encrypt_migrate,
    )?;
    if let Some(v) = o.absolute_lifetime_secs {
        opts.absolute_lifetime_secs = Some(whole_secs("absoluteLifetimeSecs", v)?);
    }
    if let Some(v) = o.renew_after_secs {
        opts.renew_after_secs = Some(whole_secs("renewAfterSecs", v)?);
    }
    if let Some(v) = o.renew_grace_secs {
        opts.renew_grace_secs = whole_secs("renewGraceSecs", v)?;
    }
    Ok(opts)
}

/// Registered session options, by handle. Append-only: lib/store.js registers each checked
/// options object once (a manager hands every request's Store the same one).
static OPTIONS: Mutex<Vec<SessionOptions>> = Mutex::new(Vec::new());

fn registered_options(handle: u32) -> std::result::Result<SessionOptions, SessionError> {
    let all = OPTIONS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    usize::try_from(handle)
        .ok()
        .and_then(|i| all.get(i))
        .cloned()
        .ok_or_else(|| {
            SessionError::InvalidOption(format!("unknown session options handle {handle}"))
        })
}

/// Checks and registers session options once; returns the handle `new NativeSession` takes in
/// their place. Throws as the constructor would on bad options.
#[napi(catch_unwind)]
pub fn register_session_options(env: Env, options: NativeSessionOptions) -> Result<u32> {
    let opts = session_options(options).or_throw(&env)?;
    let mut all = OPTIONS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    all.push(opts);
    Ok(u32::try_from(all.len() - 1).unwrap_or(u32::MAX))
}

fn lock(m: &Mutex<Session>) -> MutexGuard<'_, Session> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[napi]
impl NativeSession {
    /// A session named `name`; an absent or invalid id is replaced by a fresh one. `options` is
    /// an options object, or the handle `registerSessionOptions` returned for one: the Store
    /// of every request under one manager crosses a number instead of converting the object.
    #[napi(constructor, catch_unwind)]
    pub fn new(
        env: Env,
        name: String,
        id: Option<String>,
        #[napi(ts_arg_type = "NativeSessionOptions | number")] options: Option<
            Either<u32, NativeSessionOptions>,
        >,
    ) -> Result<Self> {
        let opts = match options {
            None => SessionOptions::default(),
            Some(Either::A(handle)) => registered_options(handle).or_throw(&env)?,
            Some(Either::B(o)) => session_options(o).or_throw(&env)?,
        };
        let s = Session::new(&name, id.as_deref(), opts).or_throw(&env)?;
        Ok(Self {
            inner: Arc::new(Mutex::new(s)),
            clock: OnceLock::new(),
        })
    }

    /// Sets the session's test clock (ms since the epoch): lifecycle stamps, the absolute
    /// timeout and renewal read it from then on (lib/store.js feeds it from a handler's `now`).
    #[napi(catch_unwind)]
    pub fn set_now(&self, ms: f64) {
        let clock = self.clock.get_or_init(|| {
            let c = ManualClock::new(0);
            self.s().set_clock(Arc::new(c.clone()));
            c
        });
        #[allow(clippy::cast_possible_truncation)]
        clock.set(ms as i64);
    }

    /// The lifecycle events of the loads since the last call, each with the handle (keyed with
    /// `key`) of the id it is about. Called only when someone listens (lib/events.js).
    #[napi(catch_unwind)]
    pub fn take_events(&self, key: String) -> Vec<LifecycleEvent> {
        let mut s = self.s();
        let events = s.take_events();
        events
            .into_iter()
            .map(|e| {
                let id = match e {
                    Event::Expired(_) => s.expired_from().unwrap_or_else(|| s.id()),
                    _ => s.id(),
                };
                LifecycleEvent {
                    name: e.name().to_owned(),
                    reason: e.reason().map(str::to_owned),
                    handle: session_handle(&key, id),
                }
            })
            .collect()
    }

    /// Why the record loaded at the last start was expired (`'absolute'`; the session then
    /// started over under a fresh id), or null.
    #[napi(catch_unwind)]
    pub fn expired_reason(&self) -> Option<String> {
        self.s().expired().map(|e| e.as_str().to_owned())
    }

    /// Why the last load found no session under the id a client presented, as the `reason` of
    /// the `expired` event due (`'idle'`), or null when nothing expired (a renewed id's marker
    /// past its window). For JS drivers, which cannot say whether a tombstone is there; built-in
    /// drivers are asked with `missingReasonNative`. The rule is the core's
    /// (`Session::missing_reason`).
    #[napi(catch_unwind)]
    pub fn missing_reason(&self) -> Option<String> {
        self.s()
            .missing_reason(false)
            .map(|e| e.as_str().to_owned())
    }

    /// `missingReason`, asking the built-in `handler` whether a tombstone is there (a logout or
    /// a revoke: null) when the load itself cannot tell. One read; lib/manager.js asks only
    /// when someone listens for `expired`.
    #[napi(catch_unwind, ts_return_type = "Promise<string | null>")]
    pub fn missing_reason_native<'env>(
        &self,
        env: &'env Env,
        handler: &NativeHandler,
    ) -> Result<PromiseRaw<'env, Option<String>>> {
        let h = Arc::clone(&handler.inner);
        let inner = Arc::clone(&self.inner);
        promise(
            env,
            h.is_inline(),
            async move { load::missing_reason(&*h, &inner).await },
            |reason| Ok(reason.map(|e| e.as_str().to_owned())),
        )
    }

    /// The step after a read of a load that a JS driver carries out (lib/handler-bridge.js):
    /// see `loadStep`'s shapes.
    #[napi(catch_unwind, ts_return_type = "string[] | null")]
    pub fn after_read(&self, env: Env, raw: String) -> Result<Option<Vec<String>>> {
        let step = self.s().after_read(raw).or_throw(&env)?;
        Ok(step_js(step))
    }

    /// The step after the load's `['destroy', id]` was carried out.
    #[napi(catch_unwind, ts_return_type = "string[] | null")]
    pub fn after_destroy(&self, env: Env) -> Result<Option<Vec<String>>> {
        let step = self.s().after_destroy().or_throw(&env)?;
        Ok(step_js(step))
    }

    /// The step after the load's `['renew', …]`: `claimed` when the marker replaced the old
    /// record, else `current` is what the old record holds now.
    #[napi(catch_unwind, ts_return_type = "string[] | null")]
    pub fn after_renew(
        &self,
        env: Env,
        claimed: bool,
        current: String,
    ) -> Result<Option<Vec<String>>> {
        let step = self.s().after_renew(claimed, current).or_throw(&env)?;
        Ok(step_js(step))
    }

    fn s(&self) -> MutexGuard<'_, Session> {
        lock(&self.inner)
    }

    /// The session id.
    #[napi(catch_unwind)]
    pub fn get_id(&self) -> String {
        self.s().id().to_owned()
    }

    /// Sets the id; an invalid one is replaced by a fresh id.
    #[napi(catch_unwind)]
    pub fn set_id(&self, env: Env, id: String) -> Result<()> {
        self.s().set_id(&id).or_throw(&env)
    }

    /// Loads from a 1.x id (`[A-Za-z0-9_-]{40}`); the HTTP layer migrates it afterwards.
    #[napi(catch_unwind)]
    pub fn set_legacy_id(&self, env: Env, id: String) -> Result<()> {
        self.s().set_legacy_id(&id).or_throw(&env)
    }

    /// The cookie name.
    #[napi(catch_unwind)]
    pub fn get_name(&self) -> String {
        self.s().name().to_owned()
    }

    /// Sets the cookie name.
    #[napi(catch_unwind)]
    pub fn set_name(&self, name: String) {
        self.s().set_name(&name);
    }

    /// Whether the handler held a record for this id at `start()` (or one was written since).
    #[napi(catch_unwind)]
    pub fn record_exists(&self) -> bool {
        self.s().record_exists()
    }

    /// True between `start()` and `save()`.
    #[napi(catch_unwind)]
    pub fn is_started(&self) -> bool {
        self.s().is_started()
    }

    /// Whether anything changed since `start()`.
    #[napi(catch_unwind)]
    pub fn is_dirty(&self) -> bool {
        self.s().is_dirty()
    }

    /// Marks the session changed.
    #[napi(catch_unwind)]
    pub fn mark_dirty(&self) {
        self.s().mark_dirty();
    }

    /// The value at `key`: `undefined` when absent, a scalar, or `[json]` for a container.
    #[napi(catch_unwind, ts_return_type = "unknown")]
    pub fn get(&self, key: String) -> Out {
        let s = self.s();
        // An untouched object or array goes out as its stored text: no parse, no re-encode.
        if let Some(raw) = s.get_raw(&key) {
            if raw.starts_with(['{', '[']) {
                return Out::Json(raw.to_owned());
            }
        }
        Out::of(s.get(&key))
    }

    /// Sets a scalar.
    #[napi(catch_unwind)]
    pub fn put(&self, env: Env, key: String, value: Scalar) -> Result<()> {
        self.s().put(&key, value.0).or_throw(&env)
    }

    /// Sets a container given as JSON text.
    #[napi(catch_unwind)]
    pub fn put_json(&self, env: Env, key: String, json: String) -> Result<()> {
        let v = values::parse_at(&env, &key, &json)?;
        self.s().put(&key, v).or_throw(&env)
    }

    /// Sets every pair of a JSON object (keys dot-aware).
    #[napi(catch_unwind)]
    pub fn put_many(&self, env: Env, json: String) -> Result<()> {
        let m = values::parse_object_at(&env, &json)?;
        self.s().put_many(m).or_throw(&env)
    }

    /// All attributes as JSON text.
    #[napi(catch_unwind)]
    pub fn all(&self) -> String {
        self.s().all_json()
    }

    /// The listed top-level keys as JSON text.
    #[napi(catch_unwind)]
    pub fn only(&self, keys: Vec<String>) -> String {
        serde_json::to_string(&self.s().only(&keys)).unwrap_or_default()
    }

    /// A copy without the listed keys (dot-aware), as JSON text.
    #[napi(catch_unwind)]
    pub fn except(&self, keys: Vec<String>) -> String {
        serde_json::to_string(&self.s().except(&keys)).unwrap_or_default()
    }

    /// Every key present (null included).
    #[napi(catch_unwind)]
    pub fn exists(&self, keys: Vec<String>) -> bool {
        self.s().exists(&keys)
    }

    /// Every key present and not null.
    #[napi(catch_unwind)]
    pub fn has(&self, keys: Vec<String>) -> bool {
        self.s().has(&keys)
    }

    /// One key present and not null (the single-key fast path of `has`).
    #[napi(catch_unwind)]
    pub fn has_key(&self, key: String) -> bool {
        self.s().has(&[key])
    }

    /// Any key present and not null.
    #[napi(catch_unwind)]
    pub fn has_any(&self, keys: Vec<String>) -> bool {
        self.s().has_any(&keys)
    }

    /// Every key null or absent.
    #[napi(catch_unwind)]
    pub fn missing(&self, keys: Vec<String>) -> bool {
        self.s().missing(&keys)
    }

    /// Removes the keys (dot-aware).
    #[napi(catch_unwind)]
    pub fn forget(&self, keys: Vec<String>) {
        let mut s = self.s();
        for k in &keys {
            s.forget(k);
        }
    }

    /// Removes `key` and returns its value.
    #[napi(catch_unwind, ts_return_type = "unknown")]
    pub fn pull(&self, key: String) -> Out {
        Out::of(self.s().pull(&key).as_ref())
    }

    /// Empties the session, the token included.
    #[napi(catch_unwind)]
    pub fn flush(&self) {
        self.s().flush();
    }

    /// Appends a scalar to the array at `key`.
    #[napi(catch_unwind)]
    pub fn push(&self, env: Env, key: String, value: Scalar) -> Result<()> {
        self.s().push(&key, value.0).or_throw(&env)
    }

    /// Appends a container (JSON text) to the array at `key`.
    #[napi(catch_unwind)]
    pub fn push_json(&self, env: Env, key: String, json: String) -> Result<()> {
        let v = values::parse_at(&env, &key, &json)?;
        self.s().push(&key, v).or_throw(&env)
    }

    /// Adds `by` to the number at `key`; returns the new value.
    #[napi(catch_unwind)]
    pub fn increment(&self, env: Env, key: String, by: f64) -> Result<f64> {
        let v = self.s().increment(&key, by).or_throw(&env)?;
        Ok(v.as_f64().unwrap_or(0.0))
    }

    /// Deep-merges a JSON value into `key`.
    #[napi(catch_unwind)]
    pub fn merge_json(&self, env: Env, key: String, json: String) -> Result<()> {
        let v = values::parse_at(&env, &key, &json)?;
        self.s().merge(&key, v).or_throw(&env)
    }

    /// Flashes a scalar.
    #[napi(catch_unwind)]
    pub fn flash(&self, env: Env, key: String, value: Scalar) -> Result<()> {
        self.s().flash(&key, value.0).or_throw(&env)
    }

    /// Flashes a container given as JSON text.
    #[napi(catch_unwind)]
    pub fn flash_json(&self, env: Env, key: String, json: String) -> Result<()> {
        let v = values::parse_at(&env, &key, &json)?;
        self.s().flash(&key, v).or_throw(&env)
    }

    /// Flashes every pair of a JSON object; a pair nested too deep refuses them all.
    #[napi(catch_unwind)]
    pub fn flash_many(&self, env: Env, json: String) -> Result<()> {
        let m = values::parse_object_at(&env, &json)?;
        let mut s = self.s();
        for (k, v) in &m {
            s.check_value(k, v).or_throw(&env)?;
        }
        for (k, v) in m {
            s.flash(&k, v).or_throw(&env)?;
        }
        Ok(())
    }

    /// Puts a scalar for this request only.
    #[napi(catch_unwind)]
    pub fn now(&self, env: Env, key: String, value: Scalar) -> Result<()> {
        self.s().now(&key, value.0).or_throw(&env)
    }

    /// Puts a container for this request only.
    #[napi(catch_unwind)]
    pub fn now_json(&self, env: Env, key: String, json: String) -> Result<()> {
        let v = values::parse_at(&env, &key, &json)?;
        self.s().now(&key, v).or_throw(&env)
    }

    /// Keeps all flash data one more request.
    #[napi(catch_unwind)]
    pub fn reflash(&self) {
        self.s().reflash();
    }

    /// Keeps the listed keys one more request.
    #[napi(catch_unwind)]
    pub fn keep(&self, keys: Vec<String>) {
        self.s().keep(&keys);
    }

    /// Keeps only the listed keys of this request's new flash data.
    #[napi(catch_unwind)]
    pub fn flash_only(&self, keys: Vec<String>) {
        self.s().flash_only(&keys);
    }

    /// Drops the listed keys from this request's new flash data.
    #[napi(catch_unwind)]
    pub fn flash_except(&self, keys: Vec<String>) {
        self.s().flash_except(&keys);
    }

    /// Flashes old input given as JSON text.
    #[napi(catch_unwind)]
    pub fn flash_input(&self, env: Env, json: String) -> Result<()> {
        let v = values::parse_at(&env, "_old_input", &json)?;
        self.s().flash_input(v).or_throw(&env)
    }

    /// Whether old input (or one field of it) exists.
    #[napi(catch_unwind)]
    pub fn has_old_input(&self, key: Option<String>) -> bool {
        self.s().has_old_input(key.as_deref())
    }

    /// The old input or one field of it.
    #[napi(catch_unwind, ts_return_type = "unknown")]
    pub fn get_old_input(&self, key: Option<String>) -> Out {
        Out::of(self.s().get_old_input(key.as_deref()))
    }

    /// Ages flash data.
    #[napi(catch_unwind)]
    pub fn age_flash_data(&self) {
        self.s().age_flash_data();
    }

    /// The CSRF token.
    #[napi(catch_unwind)]
    pub fn token(&self) -> Option<String> {
        self.s().token().map(str::to_owned)
    }

    /// A new CSRF token.
    #[napi(catch_unwind)]
    pub fn regenerate_token(&self, env: Env) -> Result<String> {
        self.s().regenerate_token().or_throw(&env)
    }

    /// `_previous.url`.
    #[napi(catch_unwind)]
    pub fn previous_url(&self) -> Option<String> {
        self.s().previous_url().map(str::to_owned)
    }

    /// Sets `_previous.url`.
    #[napi(catch_unwind)]
    pub fn set_previous_url(&self, url: String) {
        self.s().set_previous_url(&url);
    }

    /// Switches to a fresh id (and a new token when `new_token`); returns the old id.
    #[napi(catch_unwind)]
    pub fn migrate_id(&self, env: Env, new_token: bool) -> Result<String> {
        let mut s = self.s();
        let old = s.migrate_id().or_throw(&env)?;
        if new_token {
            s.regenerate_token().or_throw(&env)?;
        }
        Ok(old)
    }

    /// Applies a payload read by a JS handler, as the first read of a load: returns the load's
    /// next step (null when it is over; see `afterRead`).
    #[napi(catch_unwind, ts_return_type = "string[] | null")]
    pub fn load(&self, env: Env, raw: String) -> Result<Option<Vec<String>>> {
        let step = self.s().load(&raw).or_throw(&env)?;
        Ok(step_js(step))
    }

    /// Ages flash data and returns the payload to write, or `null` when the engine asks for a
    /// touch first (then call `afterTouch` with what the touch found). `compares`: the write
    /// goes through the driver's `writeIfUnchanged` (see the core's `prepare_save_for`).
    #[napi(catch_unwind)]
    pub fn prepare_save(
        &self,
        env: Env,
        resave: bool,
        compares: Option<bool>,
    ) -> Result<Option<String>> {
        let action = self
            .s()
            .prepare_save_for(resave, compares.unwrap_or(false))
            .or_throw(&env)?;
        match action {
            SaveAction::Write(p) => Ok(Some(p)),
            SaveAction::Touch => Ok(None),
        }
    }

    /// After the touch asked for by `prepareSave`: `'touched'` or `'dropped'` when the save is
    /// over (nothing to write), or `[payload]` to write, then call `saved()`.
    #[napi(catch_unwind, ts_return_type = "'touched' | 'dropped' | [string]")]
    pub fn after_touch(&self, env: Env, found: bool) -> Result<Either<&'static str, Vec<String>>> {
        match self.s().after_touch(found).or_throw(&env)? {
            AfterTouch::Write(p) => Ok(Either::B(vec![p])),
            AfterTouch::Done(o) => Ok(Either::A(o.as_str())),
        }
    }

    /// The payload as it would be written now.
    #[napi(catch_unwind)]
    pub fn payload(&self, env: Env) -> Result<String> {
        self.s().payload().or_throw(&env)
    }

    /// Records that the payload reached the handler.
    #[napi(catch_unwind)]
    pub fn saved(&self) {
        self.s().saved();
    }

    /// The record as this request last saw it (`''` for none): what a custom driver's
    /// `writeIfUnchanged` compares the stored data with.
    #[napi(catch_unwind)]
    pub fn base(&self) -> String {
        self.s().base().to_owned()
    }

    /// After `writeIfUnchanged` refused: `current` is what the session's id holds now (`''`
    /// when it is gone). Returns `['write', payload]` (rebased onto `current` by replaying this
    /// request's operations: write it comparing against `current`), `['read', id]` (`current`
    /// was a renewal's forward marker inside its window: the session moved to `id`; read it and
    /// call `afterConflict` with what it holds), or `null` (gone: the save is dropped).
    #[napi(catch_unwind, ts_return_type = "['write' | 'read', string] | null")]
    pub fn after_conflict(&self, env: Env, current: String) -> Result<Option<Vec<String>>> {
        let step = self.s().after_conflict(current).or_throw(&env)?;
        Ok(conflict_js(step))
    }

    /// Records that `payload` reached the handler: saved, and the base of a later save.
    #[napi(catch_unwind)]
    pub fn saved_as(&self, payload: String) {
        self.s().saved_as(payload);
    }

    /// Links the session to a user (`null` unlinks); stored at the next save.
    #[napi(catch_unwind)]
    pub fn set_user(&self, env: Env, user: Option<String>) -> Result<()> {
        self.s().set_user(user.as_deref()).or_throw(&env)
    }

    /// The linked user's id, or `null`.
    #[napi(catch_unwind)]
    pub fn get_user(&self) -> Option<String> {
        self.s().user().map(str::to_owned)
    }

    /// `meta` as a JS driver's `write` gets it: `userId` set to the linked user (after
    /// `user_attribute` is applied), or cleared when the session is known to be unlinked.
    /// `undefined` when there is nothing to hand over, as before a link existed.
    #[napi(catch_unwind)]
    pub fn write_meta(&self, meta: Option<WriteMetaJs>) -> Option<WriteMetaJs> {
        let m = self.s().linked_meta(crate::handlers::meta_of(meta));
        if m == ostro_session_core::WriteMeta::default() {
            return None;
        }
        Some(WriteMetaJs {
            ip: m.ip,
            user_agent: m.user_agent,
            user_id: m.user_id,
        })
    }

    /// Loads through a built-in handler as the core's load steps decide (`load::load`): the
    /// read, a renewed id's forward, an expired record's destruction, an id renewal. The session
    /// is locked for each sync step only, never across I/O. `meta` goes with a renewal's write.
    #[napi(catch_unwind, ts_return_type = "Promise<boolean>")]
    pub fn start_native<'env>(
        &self,
        env: &'env Env,
        handler: &NativeHandler,
        meta: Option<WriteMetaJs>,
    ) -> Result<PromiseRaw<'env, bool>> {
        let h = Arc::clone(&handler.inner);
        let inner = Arc::clone(&self.inner);
        let meta = crate::handlers::meta_of(meta);
        promise(
            env,
            h.is_inline(),
            async move { load::load(&*h, &inner, &meta).await },
            |()| Ok(true),
        )
    }

    /// Saves through a built-in handler as the engine decides: write when changed or new, else
    /// touch, and nothing when the touch finds no record. Resolves to `'written'`, `'touched'`
    /// or `'dropped'` (the record was gone: the id must not be sent again).
    #[napi(
        catch_unwind,
        ts_return_type = "Promise<'written' | 'touched' | 'dropped'>"
    )]
    pub fn save_native<'env>(
        &self,
        env: &'env Env,
        handler: &NativeHandler,
        resave: bool,
        meta: Option<WriteMetaJs>,
    ) -> Result<PromiseRaw<'env, &'static str>> {
        let fut = match self.save_future(handler, resave, meta) {
            Ok(f) => f,
            Err(e) => return PromiseRaw::reject(env, errors::reject(&e)),
        };
        let inner = Arc::clone(&self.inner);
        promise(env, handler.inner.is_inline(), fut, move |saved| {
            Ok(finish_save(&inner, saved).as_str())
        })
    }

    /// The whole end of an HTTP request in one crossing: remembers `previousUrl` (when given and
    /// different), saves exactly as `saveNative` does, and builds the `Set-Cookie` line of the
    /// registered cookie `cookie.handle` (`registerSetCookie`): the signed id, or a line that
    /// clears the cookie when the save was `'dropped'`. Resolves to `{ outcome, setCookie }`;
    /// `setCookie` is null when no cookie was asked for.
    #[napi(
        catch_unwind,
        ts_return_type = "Promise<{ outcome: 'written' | 'touched' | 'dropped', setCookie: string | null }>"
    )]
    pub fn commit_native<'env>(
        &self,
        env: &'env Env,
        handler: &NativeHandler,
        resave: bool,
        meta: Option<WriteMetaJs>,
        cookie: Option<CommitCookie>,
        previous_url: Option<String>,
    ) -> Result<PromiseRaw<'env, Committed>> {
        let line = match cookie {
            Some(c) => match crate::request::set_cookie(c.handle) {
                Some(cfg) => Some((cfg, c.secure)),
                None => {
                    let e = SessionError::InvalidOption(format!(
                        "unknown session cookie handle {}",
                        c.handle
                    ));
                    return PromiseRaw::reject(env, errors::reject(&e));
                }
            },
            None => None,
        };
        if let Some(url) = previous_url {
            let mut s = self.s();
            if s.previous_url() != Some(url.as_str()) {
                s.set_previous_url(&url);
            }
        }
        let fut = match self.save_future(handler, resave, meta) {
            Ok(f) => f,
            Err(e) => return PromiseRaw::reject(env, errors::reject(&e)),
        };
        let inner = Arc::clone(&self.inner);
        promise(env, handler.inner.is_inline(), fut, move |saved| {
            let outcome = finish_save(&inner, saved);
            let set_cookie = line.map(|(cfg, secure)| match outcome {
                SaveOutcome::Dropped => cfg.line_for(None, secure),
                _ => cfg.line_for(Some(lock(&inner).id()), secure),
            });
            Ok(Committed {
                outcome: outcome.as_str().to_owned(),
                set_cookie,
            })
        })
    }

    /// Prepares a save (ageing flash data, encoding) and returns the I/O that carries it out
    /// through `handler`: a write when changed or new, else a touch, and a write with
    /// compare-and-set (`session::write_payload`) either way. `finish_save` applies the result.
    fn save_future(
        &self,
        handler: &NativeHandler,
        resave: bool,
        meta: Option<WriteMetaJs>,
    ) -> std::result::Result<
        impl std::future::Future<Output = std::result::Result<Saved, SessionError>> + Send + 'static,
        SessionError,
    > {
        let h = Arc::clone(&handler.inner);
        let (id, action, meta) = {
            let mut s = self.s();
            let action = s.prepare_save_for(resave, h.supports_cas());
            let meta = s.write_meta(crate::handlers::meta_of(meta));
            (s.id().to_owned(), action, meta)
        };
        let action = action?;
        let inner = Arc::clone(&self.inner);
        Ok(async move {
            let payload = match action {
                SaveAction::Write(p) => p,
                SaveAction::Touch => {
                    let found = h.touch_with_meta(&id, &meta).await?;
                    // The lock is held for this sync step only, never across the await.
                    let next = lock(&inner).after_touch(found)?;
                    match next {
                        AfterTouch::Write(p) => p,
                        AfterTouch::Done(outcome) => return Ok((outcome, None)),
                    }
                }
            };
            // The base moves out of the session for the write (no copy of the record); a write
            // that fails puts it back. The session is not used while its save is in flight.
            let mut base = lock(&inner).take_base();
            // On a conflict the session is rebased under the lock for that sync step only.
            let written = match write_payload(&*h, &id, payload, &mut base, &meta, |current| {
                lock(&inner).after_conflict(current)
            })
            .await
            {
                Ok(w) => w,
                Err(e) => {
                    lock(&inner).restore_base(base);
                    return Err(e);
                }
            };
            Ok(match written {
                Some(p) => (SaveOutcome::Written, Some(p)),
                None => (SaveOutcome::Dropped, None),
            })
        })
    }

    /// Destroys a record through a built-in handler (for migrate/invalidate).
    #[napi(catch_unwind, ts_return_type = "Promise<void>")]
    pub fn destroy_native<'env>(
        &self,
        env: &'env Env,
        handler: &NativeHandler,
        id: String,
    ) -> Result<PromiseRaw<'env, ()>> {
        let h = Arc::clone(&handler.inner);
        promise(env, h.is_inline(), async move { h.destroy(&id).await }, Ok)
    }

    /// A no-op call, the floor that `bench/engine.js` compares method calls with.
    #[napi(catch_unwind)]
    pub fn noop(&self) {}
}

/// What a save's I/O did, and the payload written (the base of a later save).
type Saved = (SaveOutcome, Option<String>);

/// Applies a finished save to the session (on the JS thread) and returns its outcome.
fn finish_save(inner: &Mutex<Session>, (outcome, written): Saved) -> SaveOutcome {
    if let Some(p) = written {
        lock(inner).saved_as(p);
    }
    outcome
}

/// The cookie `commitNative` builds the `Set-Cookie` line of.
#[napi(object)]
pub struct CommitCookie {
    /// What `registerSetCookie` returned.
    pub handle: u32,
    /// Whether the line carries `Secure` (the config's `secure`, or the request's when 'auto').
    pub secure: bool,
}

/// What `commitNative` resolves to.
#[napi(object)]
pub struct Committed {
    /// `'written'`, `'touched'` or `'dropped'`.
    #[napi(ts_type = "'written' | 'touched' | 'dropped'")]
    pub outcome: String,
    /// The `Set-Cookie` line, when a cookie was asked for.
    pub set_cookie: Option<String>,
}

/// How many times a save writes with compare-and-set before it fails with
/// `ERR_SESSION_CONFLICT` (the engine's bound, shared by the JS-handler bridge).
#[napi]
pub fn cas_tries() -> u32 {
    u32::try_from(ostro_session_core::session::CAS_TRIES).unwrap_or(u32::MAX)
}

/// The handle of session `id` under the app key `key`: a keyed hash that can be shown or
/// published without leaking the id (the core's `session_handle`).
#[napi]
pub fn session_handle_of(key: String, id: String) -> String {
    session_handle(&key, &id)
}

/// Whether `id` is 40 characters of `[A-Za-z0-9]`.
#[napi]
pub fn is_valid_id(id: String) -> bool {
    ostro_session_core::id::is_valid_id(&id)
}

/// The deepest nesting a stored payload may have; `lib/value.js` stops walking a value there.
#[napi]
pub fn max_payload_depth() -> u32 {
    u32::try_from(ostro_session_core::payload::MAX_DEPTH).unwrap_or(u32::MAX)
}
