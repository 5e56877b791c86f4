'use strict';
// The built-in drivers as JS classes. Each holds a native handle; all I/O runs in Rust off the
// JS thread and comes back as a Promise.
const native = require('./native');
const { SessionHandlerInterface } = require('./handler-interface');
const { sessionError, rethrow } = require('./errors');
const { rejectUnknown } = require('./options');
const { tombstoneRange } = require('./config');

const CLOCK_KEYS = ['now', 'clock'];
const ARRAY_KEYS = [...CLOCK_KEYS, 'tombstoneSeconds'];
const FILE_KEYS = [...CLOCK_KEYS, 'timeoutMs', 'durable', 'maxFileBytes', 'tombstoneSeconds'];

/** Validates a lifetime in minutes (fractions allowed); `undefined` gives `fallback`. */
function minutesOf(minutes, fallback = 120) {
  if (minutes === undefined || minutes === null) return fallback;
  const n = typeof minutes === 'string' && minutes.trim() !== '' ? Number(minutes) : minutes;
  if (typeof n !== 'number' || !Number.isFinite(n) || n <= 0) {
    throw sessionError('ERR_SESSION_INVALID_OPTION', `minutes must be a positive number, got ${JSON.stringify(minutes)}`);
  }
  return n;
}

/** A whole number from 1 to `max`, or undefined when not given. */
function wholeOf(name, v, max) {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > max) {
    throw sessionError('ERR_SESSION_INVALID_OPTION', `${name} must be a whole number from 1 to ${max}, got ${JSON.stringify(v)}`);
  }
  return v;
}

/**
 * The `tombstoneSeconds` driver option: how long a destroyed session's tombstone lives, in whole
 * seconds from 1 to the lifetime (`minutes`, already checked), or undefined (the lifetime). The
 * core checks the same rule again (handler::tombstone_ms) for its own callers.
 */
function tombstoneSecondsOf(v, minutes) {
  if (v === undefined || v === null) return undefined;
  const why = tombstoneRange(v, minutes);
  if (why !== null) throw sessionError('ERR_SESSION_INVALID_OPTION', `tombstoneSeconds ${why}, got ${JSON.stringify(v) ?? typeof v}`);
  return v;
}

/** The optional test clock: a `now()` function returning ms since the epoch. */
function clockOf(options) {
  const now = options && (options.now || (options.clock && options.clock.now && options.clock.now.bind(options.clock)));
  if (now === undefined || now === null) return null;
  if (typeof now !== 'function') throw sessionError('ERR_SESSION_INVALID_OPTION', 'the clock option must be a function returning milliseconds');
  return now;
}

/**
 * Base of the built-in drivers: delegates to the native handle, feeding the test clock first.
 * @abstract
 */
class NativeSessionHandler extends SessionHandlerInterface {
  constructor(nativeHandle, now) {
    super();
    Object.defineProperty(this, '_native', { value: nativeHandle });
    Object.defineProperty(this, '_now', { value: now });
  }

  /** Feeds the test clock, if any, before an operation. */
  _tick() {
    if (this._now !== null) this._native.setNow(this._now());
  }

  /** @returns {Promise<string>} the stored payload or `''`. */
  read(sessionId) {
    this._tick();
    return this._native.read(String(sessionId)).catch(rethrow);
  }

  /** @returns {Promise<void>} */
  write(sessionId, data, meta) {
    this._tick();
    if (typeof data !== 'string') return Promise.reject(sessionError('ERR_SESSION_VALUE', 'write() takes the payload as a string'));
    return this._native.write(String(sessionId), data, meta || undefined).catch(rethrow);
  }

  /** @returns {Promise<void>} */
  destroy(sessionId) {
    this._tick();
    return this._native.destroy(String(sessionId)).catch(rethrow);
  }

  /** @returns {Promise<number>} how many sessions were removed. */
  gc(lifetimeSeconds) {
    this._tick();
    const secs = Number(lifetimeSeconds);
    if (!Number.isFinite(secs) || secs < 0) return Promise.reject(sessionError('ERR_SESSION_INVALID_OPTION', 'gc() takes a lifetime in seconds'));
    return this._native.gc(secs).catch(rethrow);
  }

  /** @returns {Promise<boolean>} `false` when there was no record to refresh. */
  touch(sessionId) {
    this._tick();
    return this._native.touch(String(sessionId)).catch(rethrow);
  }

  /**
   * One try at the blocking lock of a session (opt-in blocking, `middleware({ block })`).
   * @returns {Promise<string|null>} a token, or null when the lock is held elsewhere
   */
  lock(sessionId, ttlMs) {
    this._tick();
    return this._native.lock(String(sessionId), Number(ttlMs)).catch(rethrow);
  }

  /** Releases a lock `lock()` took, if `token` still holds it. @returns {Promise<void>} */
  unlock(sessionId, token) {
    this._tick();
    return this._native.unlock(String(sessionId), String(token)).catch(rethrow);
  }

  /** Releases connections and threads. */
  close() {
    return this._native.close().catch(rethrow);
  }
}

/** Sessions in process memory; for tests and single-process apps. */
class ArraySessionHandler extends NativeSessionHandler {
  /**
   * @param {number} [minutes=120] lifetime after the last write or touch
   * @param {{ now?: () => number, tombstoneSeconds?: number }} [options] `now` replaces the
   *   clock (tests); `tombstoneSeconds` keeps a destroyed session's tombstone that long (1 to
   *   the lifetime) instead of the lifetime
   */
  constructor(minutes, options) {
    rejectUnknown(options, ARRAY_KEYS, 'ArraySessionHandler options');
    const now = clockOf(options);
    const life = minutesOf(minutes);
    const tomb = tombstoneSecondsOf(options ? options.tombstoneSeconds : undefined, life);
    super(native.createArrayHandler(life, now !== null, tomb), now);
  }
}

/** Sessions as files, one per id, written atomically; the default driver. */
class FileSessionHandler extends NativeSessionHandler {
  /**
   * @param {string} path directory, created with mode 0700 when missing (and again if it
   *   disappears); refused when another user owns it or group/others can write to it
   * @param {number} [minutes=120] lifetime after the last write or touch
   * @param {{ timeoutMs?: number, durable?: boolean, maxFileBytes?: number, now?: () => number }} [options]
   *   `timeoutMs` deadline of one file operation (default 30000) after which it rejects with
   *   ERR_SESSION_TIMEOUT; `durable` fsyncs the file and the directory on every write and
   *   destroy (power-loss safety, at a cost per write); `maxFileBytes` largest session file read
   *   (default 4 MiB; a larger one reads as no session without being read); `tombstoneSeconds`
   *   keeps a destroyed session's tombstone that long (1 to the lifetime) instead of the
   *   lifetime; `now` replaces the clock (tests)
   */
  constructor(path, minutes, options) {
    if (typeof path !== 'string' || path === '') throw sessionError('ERR_SESSION_INVALID_OPTION', 'FileSessionHandler needs a directory path string');
    if (options !== undefined && options !== null && typeof options !== 'object') {
      throw sessionError('ERR_SESSION_INVALID_OPTION', 'FileSessionHandler options must be an object');
    }
    rejectUnknown(options, FILE_KEYS, 'FileSessionHandler options');
    const o = options || {};
    const now = clockOf(o);
    if (o.durable !== undefined && typeof o.durable !== 'boolean') {
      throw sessionError('ERR_SESSION_INVALID_OPTION', `durable must be true or false, got ${JSON.stringify(o.durable)}`);
    }
    const life = minutesOf(minutes);
    const handle = native.createFileHandler(path, life, now !== null, {
      timeoutMs: wholeOf('timeoutMs', o.timeoutMs, 600000),
      durable: o.durable,
      maxFileBytes: wholeOf('maxFileBytes', o.maxFileBytes, Number.MAX_SAFE_INTEGER),
      tombstoneSeconds: tombstoneSecondsOf(o.tombstoneSeconds, life),
    });
    super(handle, now);
  }
}

module.exports = { NativeSessionHandler, ArraySessionHandler, FileSessionHandler, minutesOf, clockOf, tombstoneSecondsOf };
