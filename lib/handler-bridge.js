'use strict';
// Calls a custom JS handler on the JS thread and hands the strings to the engine.
// Measured (see the custom-driver note): a threadsafe-function round trip from Rust into JS costs
// 60-90 µs, while JS awaiting the handler and making one sync native call costs under 2 µs, so
// on the request path the handler is called here, directly, and Rust applies the result.
const { sessionError } = require('./errors');

const REQUIRED = ['read', 'write', 'destroy'];

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

/** Awaits `value` (a value or a Promise) with a deadline of `ms`. */
function settle(value, ms, what) {
  if (value === null || typeof value !== 'object' || typeof value.then !== 'function') return value;
  let timer;
  const deadline = new Promise((_, reject) => {
    timer = setTimeout(() => reject(sessionError('ERR_SESSION_TIMEOUT', `session handler ${what}() did not settle within ${ms} ms`)), ms);
  });
  return Promise.race([value, deadline]).finally(() => clearTimeout(timer));
}

/** Wraps non-Error throws so they never escape as strings or undefined. */
function asError(err, what) {
  if (err instanceof Error) return err;
  const e = sessionError('ERR_SESSION_HANDLER', `session handler ${what}() threw a non-Error value: ${describe(err)}`);
  e.cause = err;
  return e;
}

function describe(v) {
  if (typeof v === 'string') return JSON.stringify(v.length > 80 ? `${v.slice(0, 80)}…` : v);
  return v === undefined ? 'undefined' : typeof v;
}

// State kept per handler object, so `open()` runs once per handler, not per Store.
const opened = new WeakMap();

async function call(handler, method, args, ms) {
  try {
    return await settle(handler[method](...args), ms, method);
  } catch (err) {
    throw asError(err, method);
  }
}

async function ensureOpen(handler, store, ms) {
  if (typeof handler.open !== 'function' || opened.get(handler) === true) return;
  let pending = opened.get(handler);
  if (!pending) {
    pending = call(handler, 'open', [store._savePath || '', store.getName()], ms).then(
      () => opened.set(handler, true),
      (err) => {
        opened.delete(handler); // retried on the next operation
        throw err;
      },
    );
    opened.set(handler, pending);
  }
  await pending;
}

/** `start()` through a JS handler. */
async function start(store, handler, s, ms) {
  await ensureOpen(handler, store, ms);
  const raw = await call(handler, 'read', [s.getId()], ms);
  if (raw !== '' && raw !== null && raw !== undefined && typeof raw !== 'string') {
    throw sessionError('ERR_SESSION_VALUE', `session handler read() must return a string (or null/undefined when there is none), got ${Array.isArray(raw) ? 'an array' : typeof raw}`);
  }
  s.load(raw || '');
  return true;
}

/** `save()` through a JS handler: write when changed, touch when it can, write if touch finds nothing. */
async function save(store, handler, s, ms, resave, meta) {
  await ensureOpen(handler, store, ms);
  const payload = s.prepareSave(resave);
  const id = s.getId();
  if (payload !== null) {
    await call(handler, 'write', [id, payload, meta], ms);
  } else if (typeof handler.touch === 'function') {
    const found = await call(handler, 'touch', [id], ms);
    if (found === false) await call(handler, 'write', [id, s.payload(), meta], ms);
  } else {
    await call(handler, 'write', [id, s.payload(), meta], ms);
  }
  s.saved();
}

/** `destroy()` through a JS handler. */
async function destroy(store, handler, id, ms) {
  await ensureOpen(handler, store, ms);
  await call(handler, 'destroy', [id], ms);
}

module.exports = { checkHandler, start, save, destroy, call };
