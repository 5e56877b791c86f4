'use strict';
// Opt-in session blocking (Laravel's `block()`): `manager.middleware({ block })` holds a
// per-session lock around each request, from before the load until the save settles, for code
// that reads a value, changes it in JS and puts it back (which replay cannot merge).
//
// The drivers take and release locks atomically (crates/session-core/src/blocking.rs and each
// handler's `lock`/`unlock`); the core also owns the waiting rule. A built-in driver waits in
// Rust, off the JS thread (`acquireLock`); a custom JS driver's `lock()` is called here on the
// JS thread, with the pause between tries asked from the core (`lockRetryPause`), which also
// decides when the wait is over (ERR_SESSION_LOCKED).
const native = require('./native');
const { sessionError, rethrow } = require('./errors');
const { rejectUnknown } = require('./options');
const { NativeSessionHandler } = require('./handlers');
const bridge = require('./handler-bridge');

const MAX_SECONDS = 600;

function secondsOf(name, v, fallback, allowZero) {
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || (!allowZero && v === 0) || v > MAX_SECONDS) {
    throw sessionError('ERR_SESSION_INVALID_OPTION', `middleware() option block.${name} must be a number of seconds ${allowZero ? 'from 0' : 'above 0'} up to ${MAX_SECONDS}, got ${JSON.stringify(v)}`);
  }
  return v;
}

/**
 * The `block` option of `middleware()`: `true` or `{ lockSeconds = 10, waitSeconds = 10 }`, as
 * `{ lockMs, waitMs }`; null when blocking is off (`false` or absent).
 */
function blockOptions(block) {
  if (block === undefined || block === null || block === false) return null;
  if (block === true) return { lockMs: 10000, waitMs: 10000 };
  if (typeof block !== 'object' || Array.isArray(block)) {
    throw sessionError('ERR_SESSION_INVALID_OPTION', `middleware() option "block" must be true or { lockSeconds, waitSeconds }, got ${JSON.stringify(block)}`);
  }
  rejectUnknown(block, ['lockSeconds', 'waitSeconds'], 'middleware() option "block"');
  return {
    lockMs: Math.ceil(secondsOf('lockSeconds', block.lockSeconds, 10, false) * 1000),
    waitMs: Math.ceil(secondsOf('waitSeconds', block.waitSeconds, 10, true) * 1000),
  };
}

/** Whether `handler` can lock sessions: a built-in that can, or a JS driver with lock() and unlock(). */
function canLock(handler) {
  if (handler instanceof NativeSessionHandler) return handler._native.supportsLock();
  return handler !== null && typeof handler === 'object' && typeof handler.lock === 'function' && typeof handler.unlock === 'function';
}

/** Refuses blocking on a driver that cannot lock (the cookie driver, a JS driver without lock/unlock). */
function checkCanLock(handler, driverName) {
  if (canLock(handler)) return;
  const why = handler && handler.constructor && handler.constructor.name === 'CookieSessionHandler'
    ? 'the cookie driver keeps the session in the browser, where nothing can lock it'
    : 'it has no lock(sessionId, ttlMs) and unlock(sessionId, token) methods';
  throw sessionError('ERR_SESSION_INVALID_OPTION', `middleware({ block }) needs a session driver that can lock sessions, and the driver [${driverName}] cannot: ${why}. Drivers that can: array, file, sqlite, database (Postgres, MySQL/MariaDB), redis, memcached, and custom drivers implementing lock() and unlock().`);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A JS driver's lock, tried until had or until the core says the wait is over. */
async function acquireJs(handler, id, lockMs, waitMs, timeoutMs, name) {
  // As before a read: the driver's open() runs once, before anything else reaches it.
  await bridge.ensureOpen(handler, '', name, timeoutMs);
  const started = Date.now();
  for (let attempt = 0; ; attempt++) {
    const token = await bridge.call(handler, 'lock', [id, lockMs], timeoutMs);
    if (typeof token === 'string' && token !== '') return token;
    if (token !== null && token !== undefined) {
      throw sessionError('ERR_SESSION_VALUE', `session handler lock() must return a token string, or null when the lock is held elsewhere, got ${typeof token}`);
    }
    // Throws ERR_SESSION_LOCKED once the wait is over.
    await sleep(native.lockRetryPause(id, attempt, Date.now() - started, waitMs));
  }
}

/**
 * Takes the lock of session `id` through `handler` for `lockMs`, waiting up to `waitMs`.
 * Resolves to the held lock, whose `release()` never rejects (a failed release is logged
 * through `logger`; the lock then expires by itself).
 * @param {{ lockMs: number, waitMs: number }} block what `blockOptions()` returned
 * @param {{ timeoutMs: number, name: string, logger: { error: Function } }} ctx the deadline
 *   of one driver call, the session (cookie) name for a JS driver's open(), and the logger
 * @returns {Promise<{ release: () => Promise<void> }>}
 * @throws `ERR_SESSION_LOCKED` (with `status` and `statusCode` 423) when the wait is over
 */
async function acquire(handler, id, { lockMs, waitMs }, { timeoutMs, name, logger }) {
  let token;
  try {
    token = handler instanceof NativeSessionHandler
      ? await handler._native.acquireLock(id, lockMs, waitMs).catch(rethrow)
      : await acquireJs(handler, id, lockMs, waitMs, timeoutMs, name);
  } catch (err) {
    if (err && err.code === 'ERR_SESSION_LOCKED') {
      // What Express's and Connect's final handlers answer with.
      err.status = 423;
      err.statusCode = 423;
    }
    throw err;
  }
  let released = null;
  return {
    release() {
      if (released === null) {
        const p = handler instanceof NativeSessionHandler
          ? handler._native.unlock(id, token).catch(rethrow)
          : bridge.call(handler, 'unlock', [id, token], timeoutMs);
        released = Promise.resolve(p).then(() => {}, (err) => {
          logger.error(`@ostro/session: releasing the session lock failed (it expires by itself): ${err && err.message}`, err);
        });
      }
      return released;
    },
  };
}

/**
 * Releases `lock` when the connection behind `res` closes before `isCommitting()`; returns
 * false (and releases at once) when it closed already, during the lock and the load: its
 * 'close' event has then passed, and waiting for it would hold the lock until it expires.
 */
function releaseOnClose(res, lock, isCommitting) {
  if (res.closed === true || res.destroyed === true) {
    lock.release();
    return false;
  }
  res.once('close', () => {
    if (!isCommitting()) lock.release();
  });
  return true;
}

module.exports = { blockOptions, checkCanLock, acquire, releaseOnClose };
