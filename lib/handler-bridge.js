'use strict';
// Custom JS session handlers: the request path, the timeoutMs deadlines and the gc run.
//
// Request path (start/save), on the JS thread with no thread hop: one native call per step, in
// which Rust calls the handler's `read` or `write` itself and applies a plain result at once. A
// Promise comes back here and is awaited with the Store's deadline, then applied with one more
// sync call. bench/bridge.js measures this against JS calling the handler and handing strings to
// the engine in separate sync calls (`startJs`/`saveJs` below), Rust chaining a Promise
// continuation itself (`startDirect`/`saveDirect`) and Rust calling through threadsafe functions
// from tokio (`jsHandlerAsNative`, a contributor-build hook). At equal or lower CPU per cycle than each of them, this one
// was kept (run `node bench/bridge.js`).
//
// Off the JS thread, through weak threadsafe functions (src/js_handler.rs):
// - `scheduleGc()`: the garbage-collection run the HTTP lottery starts off the request path;
// - the `timeoutMs` deadlines: one Rust timer (a tokio sleep) fires `onDeadline` below, which
//   rejects the overdue calls with ERR_SESSION_TIMEOUT. A late result is ignored. Being weak,
//   the timer does not keep Node alive by itself: a handler waiting on a socket or a timer keeps
//   the process up until its deadline, while a Promise that nothing can ever settle lets Node exit,
//   as it would in plain JS.
//
// Lifetime rule: `openBridge()` returns a long-lived bridge whose threadsafe functions hold the
// handler as a GC root. A handler that keeps a reference back to something holding that bridge is
// freed only after the bridge's `close()`. `scheduleGc()` needs no close: its threadsafe function
// lives for one run.
const { performance } = require('node:perf_hooks');
const native = require('./native');
const { sessionError, fromNative } = require('./errors');
const { NativeSessionHandler } = require('./handlers');

const REQUIRED = ['read', 'write', 'destroy'];
const DEFAULT_TIMEOUT_MS = 30000;

/** Refuses a handler that lacks a required method, listing what is missing. */
function checkHandler(handler) {
  if (handler === null || (typeof handler !== 'object' && typeof handler !== 'function')) {
    throw sessionError('ERR_SESSION_INVALID_OPTION', `a session handler must be an object with ${REQUIRED.join(', ')} methods`);
  }
  const missing = REQUIRED.filter((m) => typeof handler[m] !== 'function');
  if (missing.length) {
    throw sessionError('ERR_SESSION_INVALID_OPTION', `the session handler is missing ${missing.map((m) => `${m}()`).join(', ')}`);
  }
}

// ----- deadlines --------------------------------------------------------------------------------
// Every pending handler call with its deadline. One Rust timer is armed for the earliest one; a
// call whose deadline is later than the armed one costs no native call.
const pending = new Set();
let timer = null;
let armedFor = Infinity;

function onDeadline() {
  armedFor = Infinity;
  // The Rust timer and performance.now() read the same monotonic clock at ms precision.
  const due = performance.now() + 1;
  let next = Infinity;
  for (const entry of pending) {
    if (entry.deadline <= due) {
      pending.delete(entry);
      entry.reject(sessionError('ERR_SESSION_TIMEOUT', `session handler ${entry.what}() did not settle within ${entry.ms} ms`));
    } else if (entry.deadline < next) {
      next = entry.deadline;
    }
  }
  if (next !== Infinity) arm(next);
}

function arm(deadline) {
  if (deadline >= armedFor) return;
  if (timer === null) timer = new native.DeadlineTimer(onDeadline);
  armedFor = deadline;
  timer.arm(Math.max(0, deadline - performance.now()));
}

// ----- errors -----------------------------------------------------------------------------------

/** Passes Errors through unchanged (same object); wraps other thrown values. */
function asError(err, what) {
  if (err instanceof Error) return err;
  const e = sessionError('ERR_SESSION_HANDLER', `session handler ${what}() threw a non-Error value: ${describe(err)}`);
  e.cause = err;
  return e;
}

function describe(v) {
  if (typeof v === 'string') return JSON.stringify(v.length > 80 ? `${v.slice(0, 80)}…` : v);
  if (v === null) return 'null';
  return v === undefined ? 'undefined' : typeof v;
}

/**
 * A rejection from the addon: the engine's own errors carry an `[ERR_SESSION_X] ` prefix and a
 * napi status code; a handler's own Error arrives as the same object and passes unchanged.
 */
function fromBridge(err, what) {
  if (err instanceof Error && !(typeof err.code === 'string' && err.code.startsWith('ERR_'))) {
    const coded = fromNative(err);
    if (coded !== err) return coded;
  }
  return asError(err, what);
}

// ----- calling the handler on the JS thread -----------------------------------------------------
// No async functions here: a handler that returns plain values completes a whole start() or
// save() synchronously, and the Store gets one already-settled Promise (bench/bridge.js).

const isThenable = (v) => v !== null && typeof v === 'object' && typeof v.then === 'function';

/**
 * Calls `handler[method]` with `n` of the arguments `a, b, c` and passes its value to `next`,
 * which may return a value or a Promise. Sync throws and rejections reject the returned Promise
 * with the thrown object itself; a thenable result is awaited with the `ms` deadline.
 */
function invoke(handler, method, n, a, b, c, ms, next) {
  let value;
  try {
    value = n === 1 ? handler[method](a) : n === 2 ? handler[method](a, b) : handler[method](a, b, c);
  } catch (err) {
    return Promise.reject(asError(err, method));
  }
  return after(value, method, ms, next);
}

/** Passes what `method` returned to `next`; a thenable is awaited first, with the deadline. */
function after(value, method, ms, next) {
  if (!isThenable(value)) {
    try {
      const r = next(value);
      return isThenable(r) ? r : Promise.resolve(r);
    } catch (err) {
      return Promise.reject(err);
    }
  }
  return new Promise((resolve, reject) => {
    const pendingCall = { deadline: performance.now() + ms, ms, what: method, reject };
    pending.add(pendingCall);
    arm(pendingCall.deadline);
    value.then(
      (v) => {
        if (!pending.delete(pendingCall)) return; // timed out: the late result is ignored
        try {
          resolve(next(v));
        } catch (err) {
          reject(err);
        }
      },
      (err) => {
        if (pending.delete(pendingCall)) reject(asError(err, method));
      },
    );
  });
}

const identity = (v) => v;

/** Awaits one handler call (open/destroy and the tests' helpers). */
function call(handler, method, args, ms) {
  return invoke(handler, method, args.length, args[0], args[1], args[2], ms, identity);
}

// Per handler object, so `open()` runs once per handler, not per Store: `true` once opened, or
// the pending open. A failed open is forgotten, so the next operation retries it.
const opened = new WeakMap();

/** Undefined when the handler is open (or has no open()); else the Promise of opening it. */
function ensureOpen(handler, savePath, name, ms) {
  if (typeof handler.open !== 'function') return undefined;
  const state = opened.get(handler);
  if (state === true) return undefined;
  if (state) return state;
  const p = call(handler, 'open', [savePath || '', name || ''], ms).then(
    () => {
      opened.set(handler, true);
    },
    (err) => {
      opened.delete(handler);
      throw err;
    },
  );
  opened.set(handler, p);
  return p;
}

const openStore = (handler, store, ms) => ensureOpen(handler, store._savePath, store.getName(), ms);

/** Runs `step` once the handler is open (at once, without a Promise hop, when it already is). */
function whenOpen(store, handler, ms, step) {
  const opening = typeof handler.open === 'function' ? openStore(handler, store, ms) : undefined;
  return opening ? opening.then(step) : step();
}

function kindOf(v) {
  if (Array.isArray(v)) return 'an array';
  const t = typeof v;
  return t === 'object' ? 'an object' : `a${/^[aeiou]/.test(t) ? 'n' : ''} ${t}`;
}

function readString(raw) {
  if (typeof raw !== 'string') {
    if (raw !== null && raw !== undefined) {
      throw sessionError('ERR_SESSION_VALUE', `session handler read() must return a string (or null/undefined when there is none), got ${kindOf(raw)}`);
    }
    return '';
  }
  return raw;
}

function loaded(handler, s, ms, meta, raw) {
  const step = s.load(readString(raw));
  return step === null ? true : loadStep(handler, s, ms, meta, step);
}

/**
 * Carries out the engine's next load step through a JS handler (the core decides them, see
 * crates/session-core/src/load.rs): `['read', id]` follows a renewed id's forward,
 * `['destroy', id]` removes an expired record (or a lost renewal's copy), `['renew', newId,
 * payload, oldId, marker, base]` writes the renewed session, then replaces the old record with
 * the forward marker only if it is unchanged (`writeIfUnchanged`; a plain write on a driver
 * without it). Resolves to true when the load is over.
 */
function loadStep(handler, s, ms, meta, step) {
  if (step === null) return true;
  const next = (nextStep) => loadStep(handler, s, ms, meta, nextStep);
  switch (step[0]) {
    case 'read':
      return invoke(handler, 'read', 1, step[1], undefined, undefined, ms, (raw) => next(s.afterRead(readString(raw))));
    case 'destroy':
      return invoke(handler, 'destroy', 1, step[1], undefined, undefined, ms, () => next(s.afterDestroy()));
    case 'renew': {
      const [, newId, payload, oldId, marker, base] = step;
      return invoke(handler, 'write', 3, newId, payload, meta, ms, () => {
        if (typeof handler.writeIfUnchanged !== 'function') {
          return invoke(handler, 'write', 3, oldId, marker, undefined, ms, () => next(s.afterRenew(true, '')));
        }
        return invoke(handler, 'writeIfUnchanged', 3, oldId, marker, base, ms, (ok) => {
          if (ok === true) return next(s.afterRenew(true, ''));
          return invoke(handler, 'read', 1, oldId, undefined, undefined, ms, (raw) => next(s.afterRenew(false, readString(raw))));
        });
      });
    }
    default:
      throw sessionError('ERR_SESSION_HANDLER', `unknown load step ${JSON.stringify(step[0])}`);
  }
}

/** Marks the session saved after a write; what save() resolves to. */
function written(s) {
  s.saved();
  return 'written';
}

/**
 * After `prepareSave` asked for a touch (the session existed at start and is unchanged): touch,
 * then do what the engine's `afterTouch` decides: nothing when the record is gone ('dropped', so
 * that a read-only request never undoes a logout), a rewrite for `resave`, else 'touched'. A
 * handler without touch() is asked by reading: a stored payload is written back as it is, which
 * refreshes its expiry without changing or recreating anything.
 */
function touchThen(handler, s, ms, meta, rewrite) {
  const id = s.getId();
  const next = (found) => {
    const step = s.afterTouch(found);
    if (typeof step === 'string') return step;
    if (rewrite) return rewrite(step[0]);
    return invoke(handler, 'write', 3, id, step[0], meta, ms, () => written(s));
  };
  if (typeof handler.touch === 'function') {
    return invoke(handler, 'touch', 1, id, undefined, undefined, ms, (found) => next(found !== false));
  }
  return invoke(handler, 'read', 1, id, undefined, undefined, ms, (raw) => {
    if (typeof raw !== 'string' || raw === '') return next(false);
    return invoke(handler, 'write', 3, id, raw, meta, ms, () => next(true));
  });
}

// Rust calls the handler: `readInto` and `writeFrom` (src/js_handler.rs) call `read`/`write`
// directly on this thread and apply a plain result in the same native call; a thenable comes
// back here to be awaited with the deadline. What the handler throws propagates unchanged.

function read(handler, s, ms, meta) {
  let r;
  try {
    r = native.readInto(s, handler);
  } catch (err) {
    return Promise.reject(asError(err, 'read'));
  }
  if (r === true) return Promise.resolve(true);
  if (Array.isArray(r)) return after(r, 'read', ms, (step) => loadStep(handler, s, ms, meta, step));
  return after(r, 'read', ms, (raw) => loaded(handler, s, ms, meta, raw));
}

// ----- compare-and-set through a custom driver (issue 12) ---------------------------------------
// A driver with the optional `writeIfUnchanged(sessionId, data, previousData)` takes part in the
// engine's compare-and-set: the save writes only if the stored data is still what this request
// loaded; on `false` the bridge re-reads and does what the engine's `afterConflict` decides
// (crates/session-core/src/session.rs, `AfterConflict`): `['write', payload]` replays this
// request's operations onto what it found and tries again, up to the engine's bound
// (ERR_SESSION_CONFLICT after it); `['read', id]` follows a renewal's forward marker to the
// renewed id (read, then `afterConflict` again; the write and the cookie then go to that id);
// null drops the save ('dropped': the record is gone). Saves of one id through one handler take
// turns here, as the engine's native saves do in Rust: in-process saves then conflict at most once
// each, and only other processes' saves race. A driver without the method keeps
// last-writer-wins.

const CAS_TRIES = native.casTries();
// handler -> (id -> the tail of that id's save turns)
const turns = new WeakMap();

/** Runs `step` after the pending saves of `id` through `handler` settle; the next waits on it. */
function inTurn(handler, id, step) {
  let ids = turns.get(handler);
  if (ids === undefined) {
    ids = new Map();
    turns.set(handler, ids);
  }
  const prev = ids.get(id);
  const run = prev === undefined ? step() : prev.then(step, step);
  if (!isThenable(run)) return run;
  const tail = run.then(identity, identity);
  ids.set(id, tail);
  tail.then(() => {
    if (ids.get(id) === tail) ids.delete(id);
  });
  return run;
}

function conflictError(id) {
  return sessionError('ERR_SESSION_CONFLICT', `the session ${id.slice(0, 6)}… kept changing under this save (${CAS_TRIES} attempts); nothing was written and the stored session is intact`);
}

/** One compare-and-set attempt of `payload` against `base`, and what follows a refusal. */
function casWrite(handler, s, id, ms, payload, base, tries, meta) {
  let value;
  try {
    // `meta` as write() gets it: the request's ip, user agent and user id, for drivers that keep them.
    value = handler.writeIfUnchanged(id, payload, base, meta);
  } catch (err) {
    return Promise.reject(asError(err, 'writeIfUnchanged'));
  }
  return after(value, 'writeIfUnchanged', ms, (ok) => {
    if (ok === true) {
      s.savedAs(payload);
      return 'written';
    }
    if (ok !== false) {
      throw sessionError('ERR_SESSION_VALUE', `session handler writeIfUnchanged() must return true or false (or a Promise of one), got ${kindOf(ok)}`);
    }
    return reread(handler, s, id, ms, tries, meta);
  });
}

/** Reads what `id` holds now and carries out the engine's `afterConflict` step for it. */
function reread(handler, s, id, ms, tries, meta) {
  return invoke(handler, 'read', 1, id, undefined, undefined, ms, (raw) => {
    const current = readString(raw);
    const step = s.afterConflict(current);
    if (step === null) return 'dropped';
    // The session moved to the renewed id (the core bounds how many markers one save follows).
    if (step[0] === 'read') return reread(handler, s, step[1], ms, tries, meta);
    if (tries + 1 >= CAS_TRIES) throw conflictError(id);
    return casWrite(handler, s, id, ms, step[1], current, tries + 1, meta);
  });
}

/** `persist` for a driver with writeIfUnchanged: the write (or a resave's rewrite) compares. */
function persistCas(handler, s, ms, resave, meta) {
  let payload;
  try {
    payload = s.prepareSave(resave, true);
  } catch (err) {
    return Promise.reject(err);
  }
  const id = s.getId();
  if (payload === null) {
    return touchThen(handler, s, ms, meta, (p) => inTurn(handler, id, () => casWrite(handler, s, id, ms, p, s.base(), 0, meta)));
  }
  const r = inTurn(handler, id, () => casWrite(handler, s, id, ms, payload, s.base(), 0, meta));
  return isThenable(r) ? r : Promise.resolve(r);
}

function persist(handler, s, ms, resave, meta) {
  if (typeof handler.writeIfUnchanged === 'function') return persistCas(handler, s, ms, resave, meta);
  let r;
  try {
    r = native.writeFrom(s, handler, resave, meta);
  } catch (err) {
    return Promise.reject(asError(err, 'write'));
  }
  if (r === true) return Promise.resolve('written');
  if (r === null) return touchThen(handler, s, ms, meta);
  return after(r, 'write', ms, () => written(s));
}

/** `start()` through a JS handler. */
function start(store, handler, s, ms, meta) {
  return whenOpen(store, handler, ms, () => read(handler, s, ms, meta));
}

/**
 * `save()` through a JS handler, as the engine decides: write when changed or new, else touch,
 * and nothing when the record is gone. Resolves to 'written', 'touched' or 'dropped'.
 */
function save(store, handler, s, ms, resave, meta) {
  return whenOpen(store, handler, ms, () => persist(handler, s, ms, resave, meta));
}

/** `destroy()` through a JS handler (migrate(true), regenerate(true), invalidate()). */
function destroy(store, handler, id, ms) {
  return whenOpen(store, handler, ms, () => call(handler, 'destroy', [id], ms));
}

// The same start/save with JS calling the handler and handing strings to the engine in separate
// sync calls (getId, load; prepareSave, getId, saved). Not used by the Store: bench/bridge.js
// keeps measuring it against the path above.

function startJs(store, handler, s, ms) {
  return whenOpen(store, handler, ms, () => invoke(handler, 'read', 1, s.getId(), undefined, undefined, ms, (raw) => loaded(handler, s, ms, undefined, raw)));
}

function saveJs(store, handler, s, ms, resave, meta) {
  return whenOpen(store, handler, ms, () => {
    let payload;
    try {
      payload = s.prepareSave(resave);
    } catch (err) {
      return Promise.reject(err);
    }
    if (payload === null) return touchThen(handler, s, ms, meta);
    return invoke(handler, 'write', 3, s.getId(), payload, meta, ms, () => written(s));
  });
}

// ----- off the request path ---------------------------------------------------------------------

function timeoutOf(options) {
  const ms = options && options.timeoutMs;
  if (ms === undefined) return DEFAULT_TIMEOUT_MS;
  if (typeof ms !== 'number' || !Number.isInteger(ms) || ms <= 0) {
    throw sessionError('ERR_SESSION_INVALID_OPTION', `option timeoutMs must be a positive integer, got ${JSON.stringify(ms)}`);
  }
  return ms;
}

const gcRuns = new WeakMap();

/**
 * Runs `handler.gc(lifetimeSeconds)` off the request path and resolves to the number removed.
 * A built-in handler runs it on its own threads; a JS handler is called from Rust's tokio runtime
 * through a weak threadsafe function, after `open()` if it has not run yet. `undefined` or a
 * missing `gc` count as 0. While one run is in progress for a handler, later calls return it.
 *
 * @param {object} handler a built-in handler or any object with read/write/destroy
 * @param {number} lifetimeSeconds sessions idle for longer are removed
 * @param {{ timeoutMs?: number, savePath?: string, sessionName?: string }} [options]
 * @returns {Promise<number>}
 */
function scheduleGc(handler, lifetimeSeconds, options) {
  const secs = Number(lifetimeSeconds);
  if (!Number.isFinite(secs) || secs < 0) {
    return Promise.reject(sessionError('ERR_SESSION_INVALID_OPTION', 'gc takes a lifetime in seconds (a number >= 0)'));
  }
  if (handler instanceof NativeSessionHandler) return handler.gc(secs);
  let ms;
  try {
    checkHandler(handler);
    ms = timeoutOf(options);
  } catch (err) {
    return Promise.reject(err);
  }
  const running = gcRuns.get(handler);
  if (running) return running;
  const run = (async () => {
    await ensureOpen(handler, options && options.savePath, options && options.sessionName, ms);
    try {
      return await native.scheduleGc(handler, secs, ms);
    } catch (err) {
      throw fromBridge(err, 'gc');
    }
  })().finally(() => gcRuns.delete(handler));
  gcRuns.set(handler, run);
  return run;
}

/**
 * A long-lived bridge over a JS handler for an owner (a manager) that calls it from Rust
 * repeatedly. Each method runs the handler through weak threadsafe functions and returns a
 * Promise. Call `close()` when done: it calls the handler's `close()` and drops the threadsafe
 * functions, which frees a handler that refers back to the owner.
 *
 * @param {object} handler any object with read/write/destroy
 * @param {{ timeoutMs?: number, savePath?: string, sessionName?: string }} [options]
 */
function openBridge(handler, options) {
  checkHandler(handler);
  const ms = timeoutOf(options);
  const js = new native.JsHandler(handler, {
    timeoutMs: ms,
    savePath: (options && options.savePath) || '',
    sessionName: (options && options.sessionName) || '',
    opened: opened.get(handler) === true,
  });
  const wrap = (what, p) => p.catch((err) => {
    throw fromBridge(err, what);
  });
  return {
    read: (id) => wrap('read', js.read(String(id))),
    write: (id, data, meta) => wrap('write', js.write(String(id), String(data), meta || undefined)),
    destroy: (id) => wrap('destroy', js.destroy(String(id))),
    gc: (secs) => wrap('gc', js.gc(Number(secs))),
    touch: (id) => wrap('touch', js.touch(String(id))),
    close: () => wrap('close', js.close()),
  };
}

module.exports = { checkHandler, start, save, destroy, call, ensureOpen, scheduleGc, openBridge, startJs, saveJs };
