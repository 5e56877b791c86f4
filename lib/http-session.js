'use strict';
// The request-scoped part of HTTP sessions that every framework adapter shares, with no response
// object in sight: an `HttpSession` turns one request into its Store (`open()`) and, at the end,
// saves that Store and says which `Set-Cookie` line the response must carry (`commit()`). The
// Connect middleware holds Node's response methods back around these two steps; the Fastify
// plugin runs them from its hooks; the express-session mode builds on `open()` and `reopen()`.
//
// Everything here goes through the manager's public API (`openSession`, `setCookieHandle`,
// `signedCookieValue`, `sessionCookie`, `logger`) and never imports lib/manager.js: the manager
// imports this file (for `requestMeta` and `isSecure`), and lib/middleware.js imports it, so
// neither needs the other.
const { tokenWasRead, internals } = require('./store');
const { CookieRequestHandler } = require('./drivers/cookie');
const native = require('./native');

/** One request's session: its cookie, its load and its commit. */
class HttpSession {
  /**
   * @param {import('./manager').SessionManager} manager
   * @param {import('http').IncomingMessage} req
   * @param {import('./store').HttpStore|null} [store] a Store already opened for `req`
   * @param {boolean} [existed] what opening it said
   */
  constructor(manager, req, store = null, existed = false) {
    this.manager = manager;
    this.req = req;
    /** @type {import('./store').HttpStore|null} the Store, once `open()` resolved */
    this.store = store;
    /** Whether the request carried a session the driver knew. */
    this.existed = existed;
  }

  /**
   * Loads the session of the request: verifies the signed cookie (or opens the cookie driver's
   * sealed one), starts the Store, and draws the gc lottery (a win collects off the request path).
   * @returns {Promise<import('./store').HttpStore>}
   */
  async open() {
    const loaded = await this.manager.openSession(this.req);
    this.store = loaded.store;
    this.existed = loaded.existed;
    return loaded.store;
  }

  /**
   * Saves the Store (aging flash data; a write when it changed, a touch otherwise) and returns
   * the `Set-Cookie` line the response must carry, or null when it must carry none: a new
   * session nobody touched and whose token nobody read is neither saved nor cookied unless
   * `saveUninitialized`, and the cookie driver may have nothing to resend. When the save finds
   * the record gone ('dropped': a concurrent request destroyed it, say a logout), the line
   * clears the cookie: sending that id again would undo the logout in the browser.
   * Nothing has been sent when this runs, so the caller can still answer with an error instead.
   * @param {number} statusCode the status the response will have (the previous URL is
   *   remembered for a 2xx GET only)
   * @returns {Promise<string|null>}
   */
  async commit(statusCode) {
    const { manager, req, store } = this;
    const cfg = manager.config;
    if (!this.existed && !cfg.saveUninitialized && !store.isDirty() && !tokenWasRead(store)) return null;
    const url = cfg.previous_url ? urlToRemember(req, statusCode) : null;
    const handler = store.getHandler();
    if (handler instanceof CookieRequestHandler) {
      if (url !== null && store.previousUrl() !== url) store.setPreviousUrl(url);
      await store.save({ resave: cfg.resave });
      const out = handler.outgoing();
      if (out === null) return null;
      // '' means the session was emptied: the cookie is expired.
      return manager.sessionCookie(out === '' ? null : out, req);
    }
    // Registered once per manager; the first call checks the app key, so a missing key fails
    // before anything is written.
    const handle = manager.setCookieHandle();
    const secure = cfg.secure === 'auto' ? isSecure(req, cfg.trust_proxy) : !!cfg.secure;
    if (internals.isNative(store)) {
      // One crossing: previous URL, save, signed id and the whole line.
      const done = await internals.commitNative(store, !!cfg.resave, { handle, secure }, url);
      return done.setCookie;
    }
    if (url !== null && store.previousUrl() !== url) store.setPreviousUrl(url);
    const outcome = await store.save({ resave: cfg.resave });
    return native.sessionCookieLine(handle, outcome === 'dropped' ? null : store.getId(), secure);
  }
}

/**
 * Loads the session of `req` (see `HttpSession#open`).
 * @param {import('./manager').SessionManager} manager
 * @param {import('http').IncomingMessage} req
 * @returns {Promise<{ store: import('./store').HttpStore, existed: boolean, cookieId?: string|null }>}
 *   `cookieId`: see `manager.loadSession(req)`
 */
function open(manager, req) {
  return manager.openSession(req);
}

/**
 * Saves `store` and returns the `Set-Cookie` line or null (see `HttpSession#commit`).
 * @param {import('./manager').SessionManager} manager
 * @param {import('http').IncomingMessage} req
 * @param {number} statusCode
 * @param {import('./store').HttpStore} store the Store `open()` returned
 * @param {boolean} existed what `open()` returned
 * @returns {Promise<string|null>}
 */
function commit(manager, req, statusCode, store, existed) {
  return new HttpSession(manager, req, store, existed).commit(statusCode);
}

/**
 * The URL to remember as the previous one: the path and query (never the Host) of a GET that
 * ends 2xx and is neither XHR nor a prefetch, so that `back()`-style redirects have somewhere to
 * go; null otherwise. The session changes only when the URL does (the commit compares).
 */
function urlToRemember(req, status) {
  if (req.method !== 'GET' || status < 200 || status > 299) return null;
  const h = req.headers;
  const xrw = h['x-requested-with'];
  if (typeof xrw === 'string' && xrw.toLowerCase() === 'xmlhttprequest') return null;
  if (isPrefetch(h)) return null;
  return pathAndQuery(req.originalUrl || req.url);
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

/**
 * Loads session `id` again from its driver into a new Store with the request's metadata
 * (express-session's `reload()`), or null when the driver has no record under that id: a
 * reload never adopts an id the store does not know.
 * @param {import('./manager').SessionManager} manager
 * @param {import('http').IncomingMessage} req
 * @param {string} id
 * @returns {Promise<import('./manager').HttpStore|null>}
 */
async function reopen(manager, req, id) {
  const store = manager.createStore(id);
  store.setRequestMeta(requestMeta(req, manager.config.trust_proxy));
  await store.start();
  return internals.recordExists(store) ? store : null;
}

/** Logs `err` through the manager's logger (the `logger` option, console by default). */
function logError(manager, message, err) {
  manager.logger.error(message, err);
}

/** The client IP (from `X-Forwarded-For` when the proxy is trusted) and user agent of a request. */
function requestMeta(req, trustProxy) {
  const headers = req.headers || {};
  let ip;
  if (trustProxy) {
    const xff = headers['x-forwarded-for'];
    if (typeof xff === 'string' && xff !== '') ip = xff.split(',')[0].trim();
  }
  if (!ip) ip = req.socket && req.socket.remoteAddress;
  const ua = headers['user-agent'];
  const meta = {};
  if (typeof ip === 'string' && ip !== '') meta.ip = ip.slice(0, 45);
  if (typeof ua === 'string' && ua !== '') meta.userAgent = ua.slice(0, 500);
  return meta;
}

/** Whether the request came over TLS (or, with a trusted proxy, `X-Forwarded-Proto: https`). */
function isSecure(req, trustProxy) {
  if (req.socket && req.socket.encrypted) return true;
  if (!trustProxy) return false;
  const proto = req.headers && req.headers['x-forwarded-proto'];
  return typeof proto === 'string' && proto.split(',')[0].trim().toLowerCase() === 'https';
}

module.exports = { HttpSession, open, commit, reopen, logError, pathAndQuery, requestMeta, isSecure };
