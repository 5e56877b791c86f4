'use strict';
// The public Store: Laravel's session API over the Rust engine. This file converts arguments
// (variadic keys, lazy defaults, JSON for containers) and dispatches I/O; the semantics live in
// crates/session-core.
const native = require('./native');
const { sessionError, propertyError, callbackError, fromNative, rethrow } = require('./errors');
const { keyOf, keysOf, isContainer, scalar, json, unwrap } = require('./value');
const { NativeSessionHandler } = require('./handlers');
const bridge = require('./handler-bridge');
const events = require('./events');
const { performance } = require('node:perf_hooks');

const DEFAULTS = { timeoutMs: 30000, maxPayloadBytes: 1048576 };

function positiveInt(name, v, fallback) {
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) {
    throw sessionError('ERR_SESSION_INVALID_OPTION', `option ${name} must be a positive integer, got ${JSON.stringify(v)}`);
  }
  return v;
}

function optionsOf(options) {
  if (typeof options !== 'object') throw sessionError('ERR_SESSION_INVALID_OPTION', 'Store options must be an object');
  const maxPayloadBytes = positiveInt('maxPayloadBytes', options.maxPayloadBytes, DEFAULTS.maxPayloadBytes);
  return {
    timeoutMs: positiveInt('timeoutMs', options.timeoutMs, DEFAULTS.timeoutMs),
    native: { ...options.native, maxPayloadBytes },
    // Set by the manager: the driver name, app key and metrics of lifecycle events.
    observer: options.observer || null,
    // A test clock (ms since the epoch) for the session's lifecycle decisions.
    now: typeof options.now === 'function' ? options.now : null,
  };
}

// Checked options per options object: the manager hands every request's Store the same object,
// so the checks and the native options are built once, not per request.
const checked = new WeakMap();
// The addon defaults to the same limit, so the default options cross no object at all.
const DEFAULT_CHECKED = { timeoutMs: DEFAULTS.timeoutMs, native: undefined, observer: null, now: null };
// The engine's options, registered once per distinct content (registerSessionOptions): a Store
// then crosses a number instead of an object of nine fields, which cost as much as the rest
// of the constructor. Keyed by content so that options objects made per Store reuse a handle.
const handles = new Map();
function nativeHandle(nativeOptions) {
  const key = JSON.stringify(nativeOptions);
  let h = handles.get(key);
  if (h === undefined) {
    h = native.registerSessionOptions(nativeOptions); // throws on bad options, as the constructor did
    handles.set(key, h);
  }
  return h;
}
function checkedOptions(options) {
  if (options === undefined || options === null) return DEFAULT_CHECKED;
  if (typeof options !== 'object') return optionsOf(options);
  let c = checked.get(options);
  if (c === undefined) {
    c = optionsOf(options);
    c.native = nativeHandle(c.native);
    checked.set(options, c);
  }
  return c;
}

// Every property write, definition or deletion on a Store throws, in strict and sloppy code
// alike (connect-flash's `req.session.flash = req.session.flash || {}` is sloppy): a write to a
// method's name would share data between every session, any other name would never be saved.
// There is no get or has trap, so reading a Store (and calling its methods) stays trap-free.
const GUARD = Object.freeze({
  __proto__: null,
  set(target, key) { throw propertyError(key, 'set'); },
  defineProperty(target, key) { throw propertyError(key, 'define'); },
  deleteProperty(target, key) { throw propertyError(key, 'delete'); },
  setPrototypeOf() { throw propertyError(null, 'setPrototypeOf'); },
});

// A Store's mutable internals (request metadata, whether the token was read) live in one plain
// object under this key, so internal code never writes through the guard.
const kState = Symbol('ostro.session.state');

// Laravel's methods take a boolean or nothing and never call back; express-session code passes a
// callback and waits for it forever (passport's login). Such a call throws at once instead.
function noCallback(method, a, b, async) {
  if (typeof a === 'function' || typeof b === 'function') throw callbackError(method, async);
}

function fallback(def) {
  if (def === undefined) return null;
  return typeof def === 'function' ? def() : def;
}

/** A session: attributes with Laravel's semantics, loaded from and saved to a handler. */
class Store {
  /**
   * @param {string} name the cookie name
   * @param {object} handler a built-in handler or any object with read/write/destroy
   * @param {string} [id] an id; an invalid one is replaced by a fresh one
   * @param {{ timeoutMs?: number, maxPayloadBytes?: number }} [options]
   */
  constructor(name, handler, id, options) {
    if (typeof name !== 'string') throw sessionError('ERR_SESSION_INVALID_OPTION', 'Store needs a session name string');
    const opts = checkedOptions(options);
    const isNative = handler instanceof NativeSessionHandler;
    if (!isNative) bridge.checkHandler(handler);
    // Plain fields, set before the guard exists and never written again: Object.defineProperties
    // here cost more than the native session itself.
    this._handler = handler;
    this._nativeHandler = isNative ? handler._native : null;
    this._timeoutMs = opts.timeoutMs;
    this._s = new native.NativeSession(name, typeof id === 'string' ? id : null, opts.native);
    this._obs = opts.observer;
    // The session's lifecycle clock: the manager's test clock, else a built-in handler's.
    this._now = opts.now || (isNative && handler._now) || null;
    if (this._now !== null) this._s.setNow(this._now());
    this[kState] = { meta: undefined, tokenRead: false };
    // A subclass's constructor runs on the guarded object: it must not add fields either.
    return new Proxy(this, GUARD);
  }

  // ----- id and name ------------------------------------------------------------------------

  /** The session id: 40 characters of [A-Za-z0-9]. */
  getId(cb) {
    noCallback('getId', cb);
    return this._s.getId();
  }
  /** The session id. */
  get id() { return this._s.getId(); }
  /** Sets the id; an invalid id is replaced by a fresh one. */
  setId(id) { this._s.setId(typeof id === 'string' ? id : ''); }
  /** Whether `id` is 40 characters of [A-Za-z0-9]; never throws. */
  isValidId(id) { return typeof id === 'string' && native.isValidId(id); }
  /** The cookie name. */
  getName(cb) {
    noCallback('getName', cb);
    return this._s.getName();
  }
  /** Sets the cookie name. */
  setName(name) { this._s.setName(String(name)); }
  /** The handler this Store reads and writes through. */
  getHandler(cb) {
    noCallback('getHandler', cb);
    return this._handler;
  }
  /** Request metadata (`ip`, `userAgent`, `userId`) passed to the handler's `write`. */
  setRequestMeta(meta) { this[kState].meta = meta || undefined; }

  // ----- lifecycle --------------------------------------------------------------------------

  /**
   * Loads the session. Resolves to `true`; a corrupt or missing payload gives an empty session,
   * and so does an expired one (under a new id; the expired record is destroyed). A renewed
   * id's old id loads the renewed session inside the grace window; an id due for renewal
   * (`renewAfterSecs`) moves to a new id, data and token kept.
   */
  start(cb) {
    noCallback('start', cb, arguments[1], true);
    const obs = this._obs;
    if (obs === null) return this._start(true);
    if (events.tracing.load.hasSubscribers) {
      return events.tracing.load.tracePromise(() => observed(this, obs, 'load', this._start(false)), { driver: obs.driver, handle: events.handleOf(obs, this._s.getId()) });
    }
    return observed(this, obs, 'load', this._start(false));
  }

  // `coded`: turn a native rejection into a coded error here; observed() does it otherwise,
  // which saves a promise per operation.
  _start(coded) {
    if (this._now !== null) this._s.setNow(this._now());
    if (this._nativeHandler) {
      this._tick();
      const p = this._s.startNative(this._nativeHandler, this[kState].meta);
      return coded ? p.catch(rethrow) : p;
    }
    return bridge.start(this, this._handler, this._s, this._timeoutMs, this[kState].meta);
  }

  /** Ages flash data, then writes the session if it changed, or refreshes its expiry if not. */
  save(options) {
    noCallback('save', options, arguments[1], true);
    const resave = !!(options && options.resave);
    const obs = this._obs;
    if (obs === null) return this._save(resave, true);
    if (events.tracing.save.hasSubscribers) {
      return events.tracing.save.tracePromise(() => observed(this, obs, 'save', this._save(resave, false)), { driver: obs.driver, handle: events.handleOf(obs, this._s.getId()) });
    }
    return observed(this, obs, 'save', this._save(resave, false));
  }

  _save(resave, coded) {
    const meta = this[kState].meta;
    if (this._now !== null) this._s.setNow(this._now());
    if (this._nativeHandler) {
      this._tick();
      const p = this._s.saveNative(this._nativeHandler, resave, meta);
      return coded ? p.catch(rethrow) : p;
    }
    // A JS driver's write gets the linked user as `meta.userId`; native drivers get it in Rust.
    return bridge.save(this, this._handler, this._s, this._timeoutMs, resave, this._s.writeMeta(meta));
  }

  // ----- the user link (issue 13) -------------------------------------------------------------

  /**
   * Links the session to a user (a string or an integer id), or unlinks it with `null`; stored
   * at the next save, which indexes the session under that user (`manager.sessionsOf`).
   */
  setUser(id) {
    let user;
    if (id === null || id === undefined) user = null;
    else if (typeof id === 'string') user = id;
    else if (typeof id === 'number' && Number.isSafeInteger(id)) user = String(id);
    else if (typeof id === 'bigint') user = id.toString();
    else throw sessionError('ERR_SESSION_VALUE', `setUser() takes a user id (a string or an integer) or null, got ${typeof id}`);
    this._s.setUser(user);
  }

  /** The linked user's id, or `null`. */
  getUser() { return this._s.getUser(); }

  _tick() {
    if (this._handler._now !== null) this._handler._tick();
  }

  _destroy(id) {
    const obs = this._obs;
    let p;
    if (this._nativeHandler) {
      this._tick();
      p = this._s.destroyNative(this._nativeHandler, id);
      if (obs === null) p = p.catch(rethrow);
    } else {
      p = bridge.destroy(this, this._handler, id, this._timeoutMs);
    }
    return obs === null ? p : observed(this, obs, 'destroy', p, id);
  }

  /** True between `start()` and `save()`. */
  isStarted(cb) {
    noCallback('isStarted', cb);
    return this._s.isStarted();
  }
  /** Whether anything changed since `start()` (the initial token does not count). */
  isDirty(cb) {
    noCallback('isDirty', cb);
    return this._s.isDirty();
  }

  // Not `async`: a callback must throw at the call, not become a rejection nobody awaits.

  /** A new id, data kept; the old record is destroyed when `destroy` is true. */
  migrate(destroy = false) {
    noCallback('migrate', destroy, arguments[1], true);
    return this._moveId(false, destroy, 'migrate');
  }

  /** `migrate(destroy)` plus a new CSRF token. */
  regenerate(destroy = false) {
    noCallback('regenerate', destroy, arguments[1], true);
    return this._moveId(true, destroy, 'regenerate');
  }

  /** Empties the session and moves it to a new id, destroying the old record. */
  invalidate(cb) {
    noCallback('invalidate', cb, arguments[1], true);
    this._s.flush();
    return this._moveId(false, true, 'invalidate');
  }

  // Never leaves a forward marker: handing the new session to whoever holds the old id at a
  // login or logout is session fixation (only renewal forwards, see the core's load steps).
  async _moveId(newToken, destroy, reason) {
    if (this._now !== null) this._s.setNow(this._now());
    const old = this._s.migrateId(newToken);
    if (this._obs !== null) events.publish(this._obs, 'regenerated', this._s.getId(), reason);
    if (destroy) {
      await this._destroy(old);
      if (this._obs !== null) events.publish(this._obs, 'destroyed', old, reason);
    }
    return true;
  }

  // ----- reading ----------------------------------------------------------------------------

  /** Every attribute (a copy), internal keys included. */
  all(cb) {
    noCallback('all', cb);
    return JSON.parse(this._s.all());
  }
  /** The listed top-level keys that exist (no dot notation). */
  only(...keys) { return JSON.parse(this._s.only(keysOf(keys))); }
  /** A copy without the listed keys (dot-aware). */
  except(...keys) { return JSON.parse(this._s.except(keysOf(keys))); }
  /** Every key present, null values included. */
  exists(...keys) { return this._s.exists(keysOf(keys)); }
  /** Every key present and not null. */
  has(...keys) {
    if (keys.length === 1 && typeof keys[0] === 'string') return this._s.hasKey(keys[0]);
    return this._s.has(keysOf(keys));
  }
  /** At least one key present and not null. */
  hasAny(...keys) { return this._s.hasAny(keysOf(keys)); }
  /** Every key null or absent. */
  missing(...keys) { return this._s.missing(keysOf(keys)); }

  /** The value at `key` (dot-aware), a copy; `def` (called if a function) when absent. */
  get(key, def) {
    const v = this._s.get(keyOf(key));
    return v === undefined ? fallback(def) : unwrap(v);
  }

  /** `get` then `forget`. */
  pull(key, def) {
    const v = this._s.pull(keyOf(key));
    return v === undefined ? fallback(def) : unwrap(v);
  }

  /** `pull` without a default. */
  remove(key) { return this.pull(key); }

  // ----- writing ----------------------------------------------------------------------------

  /** Sets `key` (dot-aware) to `value`, or every pair of an object. */
  put(key, value) {
    if (key !== null && typeof key === 'object' && !Array.isArray(key)) {
      this._s.putMany(json('(object)', key));
      return;
    }
    const k = keyOf(key);
    if (isContainer(value)) this._s.putJson(k, json(k, value));
    else this._s.put(k, scalar(k, value));
  }

  /** Merges every pair of `attributes` into the session (as Laravel's `replace`). */
  replace(attributes) {
    if (attributes === null || typeof attributes !== 'object' || Array.isArray(attributes)) {
      throw sessionError('ERR_SESSION_VALUE', 'replace() takes an object of key/value pairs');
    }
    this.put(attributes);
  }

  /** Deep-merges `value` into `key`: objects merge, arrays concatenate. */
  merge(key, value) {
    const k = keyOf(key);
    this._s.mergeJson(k, json(k, value));
  }

  /** The value at `key`, or `fn()` stored there when it is null or absent. */
  remember(key, fn) {
    const k = keyOf(key);
    if (this._s.hasKey(k)) return this.get(k);
    const v = fn();
    this.put(k, v);
    return v;
  }

  /** Appends `value` to the array at `key`. */
  push(key, value) {
    const k = keyOf(key);
    if (isContainer(value)) this._s.pushJson(k, json(k, value));
    else this._s.push(k, scalar(k, value));
  }

  /** Adds `by` (default 1) to the number at `key`; returns the new value. */
  increment(key, by = 1) {
    if (typeof by !== 'number' || !Number.isFinite(by)) throw sessionError('ERR_SESSION_VALUE', 'increment() takes a finite number');
    return this._s.increment(keyOf(key), by);
  }

  /** Subtracts `by` (default 1) from the number at `key`; returns the new value. */
  decrement(key, by = 1) {
    if (typeof by !== 'number' || !Number.isFinite(by)) throw sessionError('ERR_SESSION_VALUE', 'decrement() takes a finite number');
    return this._s.increment(keyOf(key), -by);
  }

  /** Removes the keys (dot-aware). */
  forget(...keys) { this._s.forget(keysOf(keys)); }
  /** Empties the session, the token included. */
  flush(cb) {
    noCallback('flush', cb);
    this._s.flush();
  }

  // ----- flash ------------------------------------------------------------------------------

  /** Puts `value` (default true) for exactly the next request; or flashes every pair of an object. */
  flash(key, value) {
    if (key !== null && typeof key === 'object' && !Array.isArray(key)) {
      this._s.flashMany(json('(object)', key));
      return;
    }
    const k = keyOf(key);
    // flash('k') means true, as in Laravel; an explicit undefined is refused like everywhere else.
    if (arguments.length < 2) value = true;
    if (isContainer(value)) this._s.flashJson(k, json(k, value));
    else this._s.flash(k, scalar(k, value));
  }

  /** Puts `value` for this request only. */
  now(key, value) {
    const k = keyOf(key);
    if (isContainer(value)) this._s.nowJson(k, json(k, value));
    else this._s.now(k, scalar(k, value));
  }

  /** Keeps all flash data for one more request. */
  reflash(cb) {
    noCallback('reflash', cb);
    this._s.reflash();
  }
  /** Keeps the listed keys for one more request. */
  keep(...keys) { this._s.keep(keysOf(keys)); }
  /** Of this request's new flash data, keeps only the listed keys. */
  flashOnly(...keys) { this._s.flashOnly(keysOf(keys)); }
  /** Of this request's new flash data, drops the listed keys. */
  flashExcept(...keys) { this._s.flashExcept(keysOf(keys)); }
  /** Flashes old input (`_old_input`). */
  flashInput(input) { this._s.flashInput(json('_old_input', input)); }
  /** Whether old input exists (or one field of it is not null). */
  hasOldInput(key) { return this._s.hasOldInput(key === undefined || key === null ? null : keyOf(key)); }
  /** The old input, or one field of it (dot-aware), or `def`. */
  getOldInput(key, def) {
    const v = this._s.getOldInput(key === undefined || key === null ? null : keyOf(key));
    return v === undefined ? fallback(def) : unwrap(v);
  }
  /** Forgets old flash data and makes new flash data old (`save()` does this). */
  ageFlashData(cb) {
    noCallback('ageFlashData', cb);
    this._s.ageFlashData();
  }

  // ----- token and previous URL -------------------------------------------------------------

  /** The CSRF token, or null before `start()`. */
  token(cb) {
    noCallback('token', cb);
    return this._s.token() ?? null;
  }
  /** Replaces the CSRF token and returns it. */
  regenerateToken(cb) {
    noCallback('regenerateToken', cb);
    return this._s.regenerateToken();
  }
  /** The previous URL, or null. */
  previousUrl(cb) {
    noCallback('previousUrl', cb);
    return this._s.previousUrl() ?? null;
  }
  /** Sets the previous URL. */
  setPreviousUrl(url) {
    if (typeof url !== 'string') throw sessionError('ERR_SESSION_VALUE', 'setPreviousUrl() takes a string');
    this._s.setPreviousUrl(url);
  }
}

/**
 * Freezes a class's prototype and every function on it (methods, accessors, the constructor),
 * so no write can hang data on an object that every session shares.
 */
function freezeClass(Class) {
  const proto = Class.prototype;
  for (const key of Reflect.ownKeys(proto)) {
    const d = Object.getOwnPropertyDescriptor(proto, key);
    for (const f of [d.value, d.get, d.set]) if (typeof f === 'function') Object.freeze(f);
  }
  Object.freeze(proto);
}

freezeClass(Store);

/**
 * `p` (a load, save or destroy of `store`) with its latency and outcome recorded in the
 * manager's metrics, the engine's load events published, and a failure published on `error`.
 * One continuation per operation; events cost a `hasSubscribers` check when nobody listens.
 */
function observed(store, obs, op, p, id) {
  const t0 = performance.now();
  const rec = obs.metrics.ops[op];
  return p.then(
    (v) => {
      rec.record(performance.now() - t0, false);
      if (op === 'load') events.afterLoad(obs, store._s);
      else if (op === 'save') saved(store, obs, v);
      return v;
    },
    (failure) => {
      // A native rejection arrives uncoded (see _start): coded here, once.
      const err = fromNative(failure);
      rec.record(performance.now() - t0, true);
      const subject = id === undefined ? store._s.getId() : id;
      events.publish(obs, 'error', subject, (err && err.code) || 'ERR_SESSION_HANDLER');
      // A save that kept conflicting past the engine's retry bound wrote nothing: dropped, as
      // a save that found a tombstone is ('gone'), though it also fails.
      if (op === 'save' && err && err.code === 'ERR_SESSION_CONFLICT') events.publish(obs, 'save_dropped', subject, 'conflict');
      throw err;
    },
  );
}

function saved(store, obs, result) {
  // save() resolves to the outcome, a native commit to { outcome, setCookie }.
  const outcome = typeof result === 'string' ? result : result && result.outcome;
  obs.metrics.outcome(outcome);
  if (outcome === 'dropped') events.publish(obs, 'save_dropped', store._s.getId(), 'gone');
}

/**
 * The per-request Store the manager hands out: a `Store` that remembers whether `token()` was
 * read. Like every Store it refuses property writes (`ERR_SESSION_PROPERTY`), so a subclass
 * given as `storeClass` keeps no fields of its own either.
 */
class HttpStore extends Store {
  /** The CSRF token; reading it makes a new session worth saving (the client may echo it back). */
  token(cb) {
    const t = super.token(cb);
    this[kState].tokenRead = true;
    return t;
  }
}
freezeClass(HttpStore);

/** Whether `token()` was read on a Store since it was created. */
function tokenWasRead(store) {
  return store[kState].tokenRead === true;
}

// The engine steps the request layer (the manager's loadSession, express-session's reload) takes
// on a Store and no application should: functions over a Store rather than methods, so they stay
// out of the public Store API and the engine handle `_s` is touched in this file only.
const internals = Object.freeze({
  /** Whether the handler held a record for the id at `start()` (or one was written since). */
  recordExists(store) { return store._s.recordExists(); },
  /** Reads a 1.x (base64url) id's record on the next `start()`; the id itself stays fresh. */
  useLegacyId(store, id) { store._s.setLegacyId(id); },
  /** Starts the Store empty without asking the driver: a fresh random id has no record. */
  startEmpty(store) {
    if (store._now !== null) store._s.setNow(store._now());
    store._s.load('');
    if (store._obs !== null) events.afterLoad(store._obs, store._s);
  },
  /** Whether the engine started the session over under a fresh id (absolute expiry) at start(). */
  startedOver(store) { return store._s.expiredReason() != null; },
  /**
   * A signed id under which the load found no session, still the Store's id: publishes
   * `expired` with the reason the engine gives ('idle': the driver's expiry or gc took the
   * record), or nothing when the engine can tell that no session expired: the driver holds a
   * tombstone (a logout or a revoke, which published `destroyed`), or the id is a renewed id
   * past its grace window. The rule is the core's (`Session::missing_reason`); a built-in driver
   * is asked about a tombstone (one read) only when someone listens for `expired`, and a JS
   * driver cannot tell. A failing probe publishes `error` instead and never fails the request.
   * Nothing is destroyed here: the driver already treats the record as gone (its own expiry,
   * then gc), and a record that merely failed to open (encryption without encrypt_migrate)
   * must stay intact.
   */
  async publishMissing(store) {
    const obs = store._obs;
    if (obs === null || !events.channels.expired.hasSubscribers) return;
    const id = store._s.getId();
    let reason;
    if (store._nativeHandler) {
      store._tick();
      try {
        reason = await store._s.missingReasonNative(store._nativeHandler);
      } catch (failure) {
        const err = fromNative(failure);
        events.publish(obs, 'error', id, (err && err.code) || 'ERR_SESSION_HANDLER');
        return;
      }
    } else {
      reason = store._s.missingReason();
    }
    if (reason !== null && reason !== undefined) events.publish(obs, 'expired', id, reason);
  },
  /** Moves the loaded data to a fresh id without destroying the old record (1.x upgrade). */
  moveToFreshId(store) { store._s.migrateId(false); },
  /**
   * Sets `key` (dot-aware) to the value of the JSON text `json`, taken as it is: the
   * express-session mode stores what `JSON.stringify` kept of a property, so parsing and walking
   * it again in JS would only redo that work (the engine still checks the depth).
   */
  putJsonText(store, key, json) {
    try {
      store._s.putJson(key, json);
    } catch (err) {
      rethrow(err); // text JSON.stringify made may still hold an unpaired surrogate
    }
  },
  /** Whether the Store's driver is a built-in (native) one. */
  isNative(store) { return store._nativeHandler !== null; },
  /**
   * A built-in driver's whole commit in one crossing (lib/http-session.js): remembers
   * `previousUrl` (when not null and different), saves as `save()` does, and builds the
   * `Set-Cookie` line of the registered cookie `cookie.handle`. Resolves to
   * `{ outcome, setCookie }`.
   */
  commitNative(store, resave, cookie, previousUrl) {
    const obs = store._obs;
    if (obs === null) return commitNow(store, resave, cookie, previousUrl, true);
    if (events.tracing.save.hasSubscribers) {
      // The trace's `result` is the outcome, as for save(): the Set-Cookie line carries the
      // signed id, which no subscriber (a tracer recording results) may see.
      let committed;
      const outcome = () => observed(store, obs, 'save', commitNow(store, resave, cookie, previousUrl, false)).then((c) => {
        committed = c;
        return c.outcome;
      });
      return events.tracing.save.tracePromise(outcome, { driver: obs.driver, handle: events.handleOf(obs, store._s.getId()) }).then(() => committed);
    }
    return observed(store, obs, 'save', commitNow(store, resave, cookie, previousUrl, false));
  },
});

function commitNow(store, resave, cookie, previousUrl, coded) {
  store._tick();
  if (store._now !== null) store._s.setNow(store._now());
  const p = store._s.commitNative(store._nativeHandler, resave, store[kState].meta, cookie, previousUrl);
  return coded ? p.catch(rethrow) : p;
}

module.exports = { Store, HttpStore, kState, freezeClass, tokenWasRead, internals };
