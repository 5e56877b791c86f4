'use strict';
// The HTTP middleware: Connect-style `(req, res, next)` for node:http, Express 4/5 and Connect.
//
// Per request: read and verify the session cookie, load the session (`req.session`), run the
// app, and, before the first byte reaches the socket, remember the previous URL, save, and set the
// cookie. "Before the first byte" is enforced by wrapping writeHead, write, flushHeaders and end:
// the first of them starts the commit, and every call is queued until the save settles, then
// replayed in order. A redirect target therefore always sees what the redirecting request wrote.
const { Store } = require('./store');
const { tokenWasRead, CookieRequestHandler } = require('./manager');

const OPEN = 0;
const COMMITTING = 1;
const DONE = 2;

// What Node's writeHead accepts as a reason phrase (it throws on anything else).
const BAD_REASON = /[^\t\x20-\x7e\x80-\xff]/;

/** The middleware of `manager` (see `SessionManager#middleware`). */
function createMiddleware(manager) {
  return function ostroSession(req, res, next) {
    return handle(manager, req, res, typeof next === 'function' ? next : null);
  };
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
    const handler = manager.driver();
    loaded = await manager.loadSession(req);
    manager._lottery(handler);
  } catch (err) {
    return fail(manager, res, next, err, null);
  }
  // The same Store for the whole request; it cannot be replaced or deleted.
  Object.defineProperty(req, 'session', { value: loaded.store, enumerable: true });
  hookResponse(manager, req, res, loaded.store, loaded.existed, next);
  if (next) next();
  return true;
}

/**
 * A save or load error: to `next(err)`, or else a generic 500 (the error is logged). `orig`
 * holds the unwrapped response methods and the headers from before the app ran: the response the
 * app prepared is abandoned, so its headers (a redirect's Location, a Content-Length) go too.
 */
function fail(manager, res, next, err, orig) {
  if (orig && !res.headersSent) {
    for (const name of res.getHeaderNames()) res.removeHeader(name);
    for (const [name, value] of orig.headers) res.setHeader(name, value);
    res.statusCode = orig.statusCode;
  }
  if (next) {
    next(err);
    return false;
  }
  manager._logger.error(`@ostro/session: ${err && err.message}`, err);
  const writeHead = orig ? orig.writeHead : res.writeHead;
  const end = orig ? orig.end : res.end;
  if (res.headersSent) {
    res.destroy(err);
    return false;
  }
  const body = 'Internal Server Error';
  writeHead.call(res, 500, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store' });
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

function hookResponse(manager, req, res, store, existed, next) {
  const orig = {
    writeHead: res.writeHead,
    write: res.write,
    end: res.end,
    flushHeaders: res.flushHeaders,
    // What earlier middleware set; restored if the save fails.
    headers: Object.entries(res.getHeaders()).map(([k, v]) => [k, Array.isArray(v) ? v.slice() : v]),
    statusCode: res.statusCode,
  };
  let state = OPEN;
  const queue = [];
  let queuedBytes = 0;
  let needDrain = false;

  function enqueue(method, args) {
    queue.push(method, args);
    if (state === OPEN) {
      state = COMMITTING;
      commit();
    }
  }

  async function commit() {
    let error = null;
    try {
      await persist(manager, req, res, store, existed);
    } catch (err) {
      error = err;
    }
    state = DONE;
    if (error !== null) {
      queue.length = 0;
      fail(manager, res, next, error, orig);
      return;
    }
    try {
      for (let i = 0; i < queue.length; i += 2) orig[queue[i]].apply(res, queue[i + 1]);
    } catch (err) {
      // A call Node refuses now would have thrown at the app; the response cannot be completed.
      manager._logger.error(`@ostro/session: the deferred response failed: ${err && err.message}`, err);
      res.destroy(err);
    }
    queue.length = 0;
    if (needDrain && !res.writableNeedDrain && !res.destroyed) res.emit('drain');
  }

  res.writeHead = function writeHead(statusCode, reason, headers) {
    if (state === DONE) return orig.writeHead.apply(this, arguments);
    const code = statusCode | 0;
    const hasReason = typeof reason === 'string';
    if (code < 100 || code > 999 || (hasReason && BAD_REASON.test(reason))) {
      return orig.writeHead.apply(this, arguments); // throws as Node does, before anything is sent
    }
    applyHeaders(res, hasReason ? headers : reason);
    res.statusCode = code;
    if (hasReason) res.statusMessage = reason;
    enqueue('writeHead', hasReason ? [code, reason] : [code]);
    return this;
  };

  res.write = function write(chunk, encoding, cb) {
    if (state === DONE) return orig.write.apply(this, arguments);
    if (!isChunk(chunk)) return orig.write.apply(this, arguments); // Node throws, before anything is sent
    enqueue('write', Array.prototype.slice.call(arguments));
    queuedBytes += byteLength(chunk, encoding);
    if (queuedBytes >= res.writableHighWaterMark) {
      needDrain = true;
      return false;
    }
    return true;
  };

  res.end = function end(chunk, encoding, cb) {
    if (state === DONE) return orig.end.apply(this, arguments);
    if (chunk && typeof chunk !== 'function' && !isChunk(chunk)) return orig.end.apply(this, arguments); // Node throws
    enqueue('end', Array.prototype.slice.call(arguments));
    return this;
  };

  res.flushHeaders = function flushHeaders() {
    if (state === DONE) return orig.flushHeaders.apply(this, arguments);
    enqueue('flushHeaders', []);
    return undefined;
  };
}

/** Remembers the URL, saves, and sets the cookie; nothing has reached the socket yet. */
async function persist(manager, req, res, store, existed) {
  const cfg = manager._config;
  // A new session nobody touched, whose token nobody read, is neither written nor cookied
  // unless saveUninitialized (1.x's default) says so.
  if (!existed && !cfg.saveUninitialized && !store.isDirty() && !tokenWasRead(store)) return;
  if (cfg.previous_url) rememberUrl(req, res.statusCode, store);
  const handler = store.getHandler();
  const cookieDriver = handler instanceof CookieRequestHandler;
  // Signing first: a missing key fails before anything is written.
  let value = cookieDriver ? null : manager._signedValue(store.getId());
  await store.save({ resave: cfg.resave });
  if (cookieDriver) {
    const out = handler.outgoing();
    if (out === null) return;
    value = out === '' ? null : out;
  }
  const line = manager._setCookie(value, req);
  const prev = res.getHeader('Set-Cookie');
  // The app's own cookies are kept.
  if (prev === undefined) res.setHeader('Set-Cookie', [line]);
  else res.setHeader('Set-Cookie', [].concat(prev, line));
  if (!res.hasHeader('Cache-Control')) res.setHeader('Cache-Control', 'private');
}

/**
 * Stores the path and query (never the Host) of a GET that ends 2xx and is neither XHR nor a
 * prefetch; the session changes only when the URL does.
 */
function rememberUrl(req, status, store) {
  if (req.method !== 'GET' || status < 200 || status > 299) return;
  const h = req.headers;
  const xrw = h['x-requested-with'];
  if (typeof xrw === 'string' && xrw.toLowerCase() === 'xmlhttprequest') return;
  if (isPrefetch(h)) return;
  const url = pathAndQuery(req.originalUrl || req.url);
  if (url !== null && store.previousUrl() !== url) store.setPreviousUrl(url);
}

function isPrefetch(h) {
  for (const name of ['purpose', 'sec-purpose', 'x-purpose', 'x-moz']) {
    const v = h[name];
    if (typeof v === 'string' && v.toLowerCase().includes('prefetch')) return true;
  }
  return false;
}

function pathAndQuery(url) {
  if (typeof url !== 'string' || url === '') return null;
  let u = url;
  if (u[0] !== '/') {
    // The absolute form (`GET http://host/path`): keep only the path and query.
    try {
      const parsed = new URL(u);
      u = parsed.pathname + parsed.search;
    } catch {
      return null;
    }
  }
  // `//host/x` or `/\host` would be a protocol-relative URL when redirected back to.
  const second = u.charCodeAt(1);
  return second === 47 || second === 92 ? u.replace(/^[/\\]+/, '/') : u;
}

module.exports = { createMiddleware, pathAndQuery };
