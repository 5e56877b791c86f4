'use strict';
// The public Store: Laravel's session API over the Rust engine. This file converts arguments
// (variadic keys, lazy defaults, JSON for containers) and dispatches I/O; the semantics live in
// crates/session-core.
const native = require('./native');
const { sessionError, rethrow } = require('./errors');
const { keyOf, keysOf, isContainer, scalar, json, unwrap } = require('./value');
const { NativeSessionHandler } = require('./handlers');
const bridge = require('./handler-bridge');

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
  };
}

// Checked options per options object: the manager hands every request's Store the same object,
// so the checks and the native options object are built once, not per request.
const checked = new WeakMap();
// The addon defaults to the same limit, so the default options cross no object at all.
const DEFAULT_CHECKED = { timeoutMs: DEFAULTS.timeoutMs, native: undefined };
function checkedOptions(options) {
  if (options === undefined || options === null) return DEFAULT_CHECKED;
  if (typeof options !== 'object') return optionsOf(options);
  let c = checked.get(options);
  if (c === undefined) {
    c = optionsOf(options);
    checked.set(options, c);
  }
  return c;
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
    // Plain fields: Object.defineProperties here cost more than the native session itself.
    this._handler = handler;
    this._nativeHandler = isNative ? handler._native : null;
    this._timeoutMs = opts.timeoutMs;
    this._s = new native.NativeSession(name, typeof id === 'string' ? id : null, opts.native);
    this._meta = undefined;
  }

  // ----- id and name ------------------------------------------------------------------------

  /** The session id: 40 characters of [A-Za-z0-9]. */
  getId() { return this._s.getId(); }
  /** The session id. */
  get id() { return this._s.getId(); }
  /** Sets the id; an invalid id is replaced by a fresh one. */
  setId(id) { this._s.setId(typeof id === 'string' ? id : ''); }
  /** Whether `id` is 40 characters of [A-Za-z0-9]; never throws. */
  isValidId(id) { return typeof id === 'string' && native.isValidId(id); }
  /** The cookie name. */
  getName() { return this._s.getName(); }
  /** Sets the cookie name. */
  setName(name) { this._s.setName(String(name)); }
  /** The handler this Store reads and writes through. */
  getHandler() { return this._handler; }
  /** Request metadata (`ip`, `userAgent`, `userId`) passed to the handler's `write`. */
  setRequestMeta(meta) { this._meta = meta || undefined; }

  // ----- lifecycle --------------------------------------------------------------------------

  /** Loads the session. Resolves to `true`; a corrupt or missing payload gives an empty session. */
  start() {
    if (this._nativeHandler) {
      this._tick();
      return this._s.startNative(this._nativeHandler).catch(rethrow);
    }
    return bridge.start(this, this._handler, this._s, this._timeoutMs);
  }

  /** Ages flash data, then writes the session if it changed, or refreshes its expiry if not. */
  save(options) {
    const resave = !!(options && options.resave);
    if (this._nativeHandler) {
      this._tick();
      return this._s.saveNative(this._nativeHandler, resave, this._meta).catch(rethrow);
    }
    return bridge.save(this, this._handler, this._s, this._timeoutMs, resave, this._meta);
  }

  _tick() {
    if (this._handler._now !== null) this._handler._tick();
  }

  _destroy(id) {
    if (this._nativeHandler) {
      this._tick();
      return this._s.destroyNative(this._nativeHandler, id).catch(rethrow);
    }
    return bridge.destroy(this, this._handler, id, this._timeoutMs);
  }

  /** True between `start()` and `save()`. */
  isStarted() { return this._s.isStarted(); }
  /** Whether anything changed since `start()` (the initial token does not count). */
  isDirty() { return this._s.isDirty(); }

  /** A new id, data kept; the old record is destroyed when `destroy` is true. */
  async migrate(destroy = false) {
    const old = this._s.migrateId(false);
    if (destroy) await this._destroy(old);
    return true;
  }

  /** `migrate(destroy)` plus a new CSRF token. */
  async regenerate(destroy = false) {
    const old = this._s.migrateId(true);
    if (destroy) await this._destroy(old);
    return true;
  }

  /** Empties the session and moves it to a new id, destroying the old record. */
  async invalidate() {
    this._s.flush();
    return this.migrate(true);
  }

  // ----- reading ----------------------------------------------------------------------------

  /** Every attribute (a copy), internal keys included. */
  all() { return JSON.parse(this._s.all()); }
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
  flush() { this._s.flush(); }

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
  reflash() { this._s.reflash(); }
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
  ageFlashData() { this._s.ageFlashData(); }

  // ----- token and previous URL -------------------------------------------------------------

  /** The CSRF token, or null before `start()`. */
  token() { return this._s.token() ?? null; }
  /** Replaces the CSRF token and returns it. */
  regenerateToken() { return this._s.regenerateToken(); }
  /** The previous URL, or null. */
  previousUrl() { return this._s.previousUrl() ?? null; }
  /** Sets the previous URL. */
  setPreviousUrl(url) {
    if (typeof url !== 'string') throw sessionError('ERR_SESSION_VALUE', 'setPreviousUrl() takes a string');
    this._s.setPreviousUrl(url);
  }
}

module.exports = { Store };
