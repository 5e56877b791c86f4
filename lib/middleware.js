'use strict';
// The HTTP middleware: Connect-style `(req, res, next)` for node:http, Express 4/5 and Connect.
//
// Per request: read and verify the session cookie, load the session (`req.session`), run the
// app, and, before the first byte reaches the socket, remember the previous URL, save, and set the
// cookie. "Before the first byte" is enforced by holding back writeHead, write, flushHeaders and
// end: the first of them starts the commit, and every call is queued until the save settles, then
// replayed in order. A redirect target therefore always sees what the redirecting request wrote.
//
// The four methods are replaced once on `http.ServerResponse.prototype` (Express's and Connect's
// responses inherit from it), not per request: a request with a session puts one small state
// object under a symbol on its `res`, and every other response pays one property check. A
// response that does not inherit them, or whose methods another middleware already wrapped
// before us, is wrapped per instance instead, as before (see `hookResponse`).
//
// This file imports lib/http-session.js and never lib/manager.js; the manager requires this file
// when `middleware()` is first called.
const http = require('node:http');
const { Store } = require('./store');
const { HttpSession, pathAndQuery } = require('./http-session');
const blocking = require('./blocking');

const OPEN = 0;
const COMMITTING = 1;
const DONE = 2;

// What Node's writeHead accepts as a reason phrase (it throws on anything else).
const BAD_REASON = /[^\t\x20-\x7e\x80-\xff]/;

// The per-request state of a held-back response, on the response itself.
const kHook = Symbol('ostro.session.response');

const METHODS = ['writeHead', 'write', 'end', 'flushHeaders'];
const PROTO = http.ServerResponse.prototype;

/**
 * The middleware of `manager` (see `SessionManager#middleware`). `open`: the options of
 * `manager.openSession(req, open)`, `{ block }` for a blocking middleware.
 */
function createMiddleware(manager, open) {
  if (open !== undefined) {
    return function ostroSession(req, res, next) {
      return handleBlocked(manager, req, res, typeof next === 'function' ? next : null, open);
    };
  }
  return function ostroSession(req, res, next) {
    return handle(manager, req, res, typeof next === 'function' ? next : null);
  };
}

// ----- opt-in blocking (manager.middleware({ block })) ------------------------------------------
// The session's lock is taken by openSession() before the load, and released once the commit
// (the save) settled, failed or not; a request whose response never starts releases it when
// its connection closes, and one that never ends holds it until it expires (lockSeconds).

async function commitBlocked(hs, res) {
  hs.committing = true;
  try {
    return await hs.commit(res.statusCode);
  } finally {
    await hs.lock.release();
  }
}

async function handleBlocked(manager, req, res, next, open) {
  if (Object.prototype.hasOwnProperty.call(req, 'session')) return handle(manager, req, res, next);
  let loaded;
  try {
    loaded = await manager.openSession(req, open);
  } catch (err) {
    return fail(manager, res, next, err, null);
  }
  Object.defineProperty(req, 'session', { value: loaded.store, enumerable: true });
  const hs = new HttpSession(manager, req, loaded.store, loaded.existed);
  if (loaded.lock === undefined) {
    hookResponse(res, manager, next, commitHttp, hs);
  } else {
    hs.lock = loaded.lock;
    hs.committing = false;
    // A client gone during the lock and the load: nothing to answer, and the lock is free.
    if (!blocking.releaseOnClose(res, hs.lock, () => hs.committing)) return true;
    hookResponse(res, manager, next, commitBlocked, hs);
  }
  if (next) next();
  return true;
}

// Both are plain functions so that no closure is made per request.
function commitHttp(hs, res) {
  return hs.commit(res.statusCode);
}

async function handle(manager, req, res, next) {
  if (Object.prototype.hasOwnProperty.call(req, 'session')) {
    // Mounted twice (say, app-wide and on a router): the first one owns the session.
    if (req.session instanceof Store) {
      if (next) next();
      return true;
    }
    return fail(manager, res, next, new Error('req.session is already set by another middleware; mount one session middleware'), null);
  }
  let loaded;
  try {
    // The manager's promise itself, not HttpSession#open() around it: one async layer less.
    loaded = await manager.openSession(req);
  } catch (err) {
    return fail(manager, res, next, err, null);
  }
  // The same Store for the whole request; it cannot be replaced or deleted.
  Object.defineProperty(req, 'session', { value: loaded.store, enumerable: true });
  hookResponse(res, manager, next, commitHttp, new HttpSession(manager, req, loaded.store, loaded.existed));
  if (next) next();
  return true;
}

/**
 * A save or load error: to `next(err)`, or else a generic 500 (the error is logged). `h` is the
 * response's hook state: the response the app prepared is abandoned, so its headers (a
 * redirect's Location, a Content-Length) give way to the ones earlier middleware had set.
 */
function fail(manager, res, next, err, h) {
  if (h !== null && !res.headersSent) {
    for (const name of res.getHeaderNames()) res.removeHeader(name);
    const saved = h.headers;
    if (saved !== null) for (const name in saved) res.setHeader(name, saved[name]);
    res.statusCode = h.statusCode;
  }
  if (next) {
    next(err);
    return false;
  }
  manager.logger.error(`@ostro/session: ${err && err.message}`, err);
  if (res.headersSent) {
    res.destroy(err);
    return false;
  }
  const writeHead = h !== null ? h.orig.writeHead : res.writeHead;
  const end = h !== null ? h.orig.end : res.end;
  // A blocked request that waited in vain for its session's lock: 423 Locked.
  const locked = err && err.code === 'ERR_SESSION_LOCKED';
  const body = locked ? 'Locked' : 'Internal Server Error';
  writeHead.call(res, locked ? 423 : 500, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store' });
  end.call(res, body);
  return false;
}

function isChunk(chunk) {
  return typeof chunk === 'string' || chunk instanceof Uint8Array;
}

function byteLength(chunk, encoding) {
  if (typeof chunk === 'string') return Buffer.byteLength(chunk, typeof encoding === 'string' ? encoding : 'utf8');
  return chunk ? chunk.length : 0;
}

// Applies the headers argument of a deferred writeHead as Node's writeHead would.
function applyHeaders(res, headers) {
  if (!headers) return;
  if (Array.isArray(headers)) {
    if (headers.length % 2 !== 0) {
      const e = new TypeError('The argument \'headers\' is invalid: a flat list of names and values must have an even length');
      e.code = 'ERR_INVALID_ARG_VALUE';
      throw e;
    }
    for (let i = 0; i < headers.length; i += 2) res.removeHeader(headers[i]);
    for (let i = 0; i < headers.length; i += 2) if (headers[i]) res.appendHeader(headers[i], headers[i + 1]);
    return;
  }
  for (const k of Object.keys(headers)) if (k) res.setHeader(k, headers[k]);
}

// What earlier middleware set, restored if the save fails. `getHeaders()` is one shallow object
// (null when there is none); only list values are copied, since appendHeader() grows them in place.
function savedHeaders(res) {
  if (res.getHeaderNames().length === 0) return null;
  const headers = res.getHeaders();
  for (const name in headers) {
    const v = headers[name];
    if (Array.isArray(v)) headers[name] = v.slice();
  }
  return headers;
}

/** One held-back response: what the hooked methods and the commit share. */
class Hook {
  constructor(res, manager, next, commit, ctx, orig) {
    this.manager = manager;
    this.next = next;
    this.commit = commit;
    this.ctx = ctx;
    this.orig = orig;
    this.phase = OPEN;
    this.queue = null;
    this.queuedBytes = 0;
    this.needDrain = false;
    this.headers = savedHeaders(res);
    this.statusCode = res.statusCode;
  }
}

/**
 * Holds `res` back until the session is committed: the first writeHead, write, end or
 * flushHeaders starts `commit(ctx, res)`, which resolves to the `Set-Cookie` line to add (or
 * null); every call is queued and replayed in order once it settled. A commit error abandons the
 * queued response and goes to `next(err)`, or else becomes a 500. Shared by the middleware and the
 * express-session mode (lib/express-session.js).
 * @param {import('http').ServerResponse} res
 * @param {import('./manager').SessionManager} manager its logger receives errors without `next`
 * @param {((err: unknown) => void)|null} next
 * @param {(ctx: any, res: import('http').ServerResponse) => Promise<string|null>} commit
 * @param {any} ctx passed to `commit`
 */
function hookResponse(res, manager, next, commit, ctx) {
  if (res instanceof http.ServerResponse && !hasOwnMethod(res)) {
    res[kHook] = new Hook(res, manager, next, commit, ctx, ORIG);
    return;
  }
  // Not a node:http response (a framework's wrapper), or one whose methods a middleware mounted
  // earlier has wrapped: such a wrapper may hold the prototype's methods from before they were
  // hooked, so this response is wrapped on top, per instance, as the outermost layer.
  const orig = { writeHead: res.writeHead, write: res.write, end: res.end, flushHeaders: res.flushHeaders };
  const h = new Hook(res, manager, next, commit, ctx, orig);
  res.writeHead = function writeHead(statusCode, reason, headers) {
    if (h.phase === DONE) return orig.writeHead.apply(this, arguments);
    return deferWriteHead(h, this, statusCode, reason, headers, arguments);
  };
  res.write = function write(chunk, encoding, cb) { // eslint-disable-line no-unused-vars
    if (h.phase === DONE) return orig.write.apply(this, arguments);
    return deferWrite(h, this, chunk, encoding, arguments);
  };
  res.end = function end(chunk, encoding, cb) { // eslint-disable-line no-unused-vars
    if (h.phase === DONE) return orig.end.apply(this, arguments);
    return deferEnd(h, this, chunk, arguments);
  };
  res.flushHeaders = function flushHeaders() {
    if (h.phase === DONE) return orig.flushHeaders.apply(this, arguments);
    return deferFlushHeaders(h, this);
  };
}

function hasOwnMethod(res) {
  return Object.prototype.hasOwnProperty.call(res, 'writeHead') || Object.prototype.hasOwnProperty.call(res, 'write')
    || Object.prototype.hasOwnProperty.call(res, 'end') || Object.prototype.hasOwnProperty.call(res, 'flushHeaders');
}

// node:http's own methods, taken when this file loads (before any request of a session app).
const ORIG = { writeHead: PROTO.writeHead, write: PROTO.write, end: PROTO.end, flushHeaders: PROTO.flushHeaders };

function hookedWriteHead(statusCode, reason, headers) {
  const h = this[kHook];
  if (h === undefined || h.phase === DONE) return ORIG.writeHead.apply(this, arguments);
  return deferWriteHead(h, this, statusCode, reason, headers, arguments);
}

function hookedWrite(chunk, encoding, cb) { // eslint-disable-line no-unused-vars
  const h = this[kHook];
  if (h === undefined || h.phase === DONE) return ORIG.write.apply(this, arguments);
  return deferWrite(h, this, chunk, encoding, arguments);
}

function hookedEnd(chunk, encoding, cb) { // eslint-disable-line no-unused-vars
  const h = this[kHook];
  if (h === undefined || h.phase === DONE) return ORIG.end.apply(this, arguments);
  return deferEnd(h, this, chunk, arguments);
}

function hookedFlushHeaders() {
  const h = this[kHook];
  if (h === undefined || h.phase === DONE) return ORIG.flushHeaders.apply(this, arguments);
  return deferFlushHeaders(h, this);
}

const HOOKED = { writeHead: hookedWriteHead, write: hookedWrite, end: hookedEnd, flushHeaders: hookedFlushHeaders };

// Once per process, when this file loads (the manager loads it at the latest in `middleware()`,
// before that middleware sees a request), so that a wrapper another middleware puts on a response
// later captures the hooked methods. The methods keep their names and lengths.
function installOnPrototype() {
  for (const m of METHODS) {
    Object.defineProperty(PROTO, m, { value: HOOKED[m], writable: true, configurable: true, enumerable: true });
  }
}
installOnPrototype();

function deferWriteHead(h, res, statusCode, reason, headers, args) {
  const code = statusCode | 0;
  const hasReason = typeof reason === 'string';
  if (code < 100 || code > 999 || (hasReason && BAD_REASON.test(reason))) {
    return h.orig.writeHead.apply(res, args); // throws as Node does, before anything is sent
  }
  applyHeaders(res, hasReason ? headers : reason);
  res.statusCode = code;
  if (hasReason) res.statusMessage = reason;
  enqueue(h, res, 'writeHead', hasReason ? [code, reason] : [code]);
  return res;
}

function deferWrite(h, res, chunk, encoding, args) {
  if (!isChunk(chunk)) return h.orig.write.apply(res, args); // Node throws, before anything is sent
  enqueue(h, res, 'write', Array.prototype.slice.call(args));
  h.queuedBytes += byteLength(chunk, encoding);
  if (h.queuedBytes >= res.writableHighWaterMark) {
    h.needDrain = true;
    return false;
  }
  return true;
}

function deferEnd(h, res, chunk, args) {
  if (chunk && typeof chunk !== 'function' && !isChunk(chunk)) return h.orig.end.apply(res, args); // Node throws
  enqueue(h, res, 'end', Array.prototype.slice.call(args));
  return res;
}

function deferFlushHeaders(h, res) {
  enqueue(h, res, 'flushHeaders', []);
  return undefined;
}

function enqueue(h, res, method, args) {
  if (h.queue === null) h.queue = [method, args];
  else h.queue.push(method, args);
  if (h.phase === OPEN) {
    h.phase = COMMITTING;
    runCommit(h, res);
  }
}

// An async function rather than `.then(ok, err)`: no closures per request.
async function runCommit(h, res) {
  let line = null;
  let error = null;
  try {
    line = await h.commit(h.ctx, res);
  } catch (err) {
    error = err;
  }
  settle(h, res, error, line);
}

/** The commit settled: add the cookie and replay the queued calls, or fail the request. */
function settle(h, res, error, line) {
  h.phase = DONE;
  const queue = h.queue;
  h.queue = null;
  if (error !== null) {
    fail(h.manager, res, h.next, error, h);
    return;
  }
  if (line !== null) {
    const prev = res.getHeader('Set-Cookie');
    // The app's own cookies are kept.
    res.setHeader('Set-Cookie', prev === undefined ? [line] : [].concat(prev, line));
    if (!res.hasHeader('Cache-Control')) res.setHeader('Cache-Control', 'private');
  }
  const orig = h.orig;
  try {
    for (let i = 0; i < queue.length; i += 2) orig[queue[i]].apply(res, queue[i + 1]);
  } catch (err) {
    // A call Node refuses now would have thrown at the app; the response cannot be completed.
    h.manager.logger.error(`@ostro/session: the deferred response failed: ${err && err.message}`, err);
    res.destroy(err);
  }
  if (h.needDrain && !res.writableNeedDrain && !res.destroyed) res.emit('drain');
}

module.exports = { createMiddleware, hookResponse, pathAndQuery };
