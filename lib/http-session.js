'use strict';
// The request-scoped part of HTTP sessions that every framework adapter shares, with no response
// object in sight: `open()` turns a request into its Store, `commit()` saves that Store and says
// which `Set-Cookie` line the response must carry. The Connect middleware defers Node's response
// methods around these two steps; the Fastify plugin runs them from its hooks.
//
// This file is the only place where the adapters reach into the manager's private methods
// (`_lottery`, `_signedValue`, `_setCookie`): once the manager has public equivalents, only this
// file changes.
const { tokenWasRead, CookieRequestHandler } = require('./manager');

/**
 * Loads the session of `req`: verifies the signed cookie (or opens the cookie driver's sealed
 * one), starts the Store, and runs the gc lottery (a win collects off the request path).
 * @param {import('./manager').SessionManager} manager
 * @param {import('http').IncomingMessage} req
 * @returns {Promise<{ store: import('./manager').HttpStore, existed: boolean }>} `existed`: the
 *   request carried a session the driver knew
 */
async function open(manager, req) {
  // Resolving the driver first makes a config error (unknown driver, missing key) fail here,
  // before anything is read.
  const handler = manager.driver();
  const loaded = await manager.loadSession(req);
  manager._lottery(handler);
  return loaded;
}

/**
 * Saves `store` (aging flash data; a write when it changed, a touch otherwise) and returns the
 * `Set-Cookie` line the response must carry, or null when it must carry none: a new session
 * nobody touched and whose token nobody read is neither saved nor cookied unless
 * `saveUninitialized`, and the cookie driver may have nothing to resend.
 * Nothing has been sent when this runs, so the caller can still answer with an error instead.
 * @param {import('./manager').SessionManager} manager
 * @param {import('http').IncomingMessage} req the request (its method, URL, headers and socket)
 * @param {number} statusCode the status the response will have (the previous URL is remembered
 *   for a 2xx GET only)
 * @param {import('./manager').HttpStore} store the Store `open()` returned
 * @param {boolean} existed what `open()` returned
 * @returns {Promise<string|null>}
 */
async function commit(manager, req, statusCode, store, existed) {
  const cfg = manager.config;
  if (!existed && !cfg.saveUninitialized && !store.isDirty() && !tokenWasRead(store)) return null;
  if (cfg.previous_url) rememberUrl(req, statusCode, store);
  const handler = store.getHandler();
  const cookieDriver = handler instanceof CookieRequestHandler;
  // Signing first: a missing app key fails before anything is written.
  let value = cookieDriver ? null : manager._signedValue(store.getId());
  await store.save({ resave: cfg.resave });
  if (cookieDriver) {
    const out = handler.outgoing();
    if (out === null) return null;
    // '' means the session was emptied: the cookie is expired.
    value = out === '' ? null : out;
  }
  return manager._setCookie(value, req);
}

/**
 * Stores the path and query (never the Host) of a GET that ends 2xx and is neither XHR nor a
 * prefetch, so that `back()`-style redirects have somewhere to go; the session changes only when
 * the URL does.
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

/** The path and query of a request target; null when there is none. */
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

module.exports = { open, commit, pathAndQuery };
