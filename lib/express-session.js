'use strict';
// express-session's API over our engine: `req.session` is a plain object whose enumerable
// properties are the session data (`req.session.views = 1`, nested objects, `delete`), with
// `id`, `cookie` and `regenerate/destroy/reload/save/touch` as express-session has them, so
// Passport, connect-flash and the rest of the Express ecosystem work unchanged.
//
// The object is only a view: the request's Store (our engine, driver, payload format, signed
// cookie) stays underneath. Each top-level property is compared, as JSON, with what it held at
// load; a save puts the properties that differ and forgets the ones that went away, then saves
// the Store. `resave`, `saveUninitialized` and `rolling` decide when that happens and when the
// cookie is sent, with express-session's rules (index.js of express-session 1.19: shouldSave,
// shouldTouch, shouldSetCookie).
//
//   app.use(manager.middleware({ api: 'express-session', saveUninitialized: false }))
//
// Loading, the "unknown id gets a fresh id" rule and cookie signing come from
// lib/http-session.js and the manager; the Set-Cookie line is the core's (set_cookie.rs, through
// the manager's registered cookie); this file owns the object shape and the decisions.
//
// Id renewal (renew_after) moves a session to a new id without making it another session: at
// load (the manager's `cookieId` names the id the cookie must now carry), or in a save that
// follows the old id's forward marker (the Store's id after the save). Either way the response
// carries the new id's cookie, whatever express-session's rules say, and `req.session.id`
// follows: as the Laravel-API commit, which always cookies the Store's id after the save.
//
// The Fastify plugin (lib/fastify.js) uses the same sessions with `api: 'express-session'`:
// there `request.session` is the session, and its methods also return Promises, as
// @fastify/session's do.
//
// This file does not import lib/manager.js (the manager requires this one from `middleware()`):
// it takes the manager it is given and uses its public API only.
const { isSecure } = require('./http-session');
const { internals } = require('./store');
const httpSession = require('./http-session');
const { hookResponse } = require('./middleware');
const cookies = require('./cookies');
const native = require('./native');
const { sessionError } = require('./errors');
const { rejectUnknown } = require('./options');
const { CookieSessionHandler } = require('./drivers/cookie');

// express-session's default ids: uid-safe's 24 random bytes in base64url. The only place this
// shape is known; it belongs next to `is_legacy_id` in crates/session-core/src/id.rs.
const EXPRESS_SESSION_ID = /^[A-Za-z0-9_-]{32}$/;

// The engine's own top-level keys (CSRF token, flash bookkeeping, previous URL). They are not
// session data in express-session's sense, so they are neither shown nor writable.
const RESERVED = new Set(['_token', '_flash', '_previous']);

const OPTION_KEYS = ['api', 'resave', 'saveUninitialized', 'rolling', 'unset', 'migrateFrom'];
const MIGRATE_KEYS = ['secret', 'store'];
const COOKIE_KEYS = ['path', 'maxAge', 'httpOnly', 'secure', 'sameSite', 'domain', 'expires', 'originalMaxAge', 'partitioned', 'priority'];

// Per-session request state and each session object's id, kept under private symbols as
// non-enumerable properties so that they never become data (Object.keys, JSON and spreads skip
// them). Not WeakMaps: V8's young-generation GC keeps a WeakMap's values alive as long as the
// map's entries are not swept, which only a full GC does, so every request's context (and the
// session data it holds) survived scavenges and was promoted: 5–10 ms scavenges and a 24 ms
// event-loop p99 under load, measured. The id changes when a save follows a renewal's forward
// marker (the session carries on under the renewed id); a session object left behind by
// regenerate(), reload() or destroy() keeps the id it had.
const kContext = Symbol('ostro.session.context');
const kId = Symbol('ostro.session.id');
const isObject = (o) => o !== null && typeof o === 'object';
function slot(key) {
  return {
    get: (o) => (isObject(o) && Object.prototype.hasOwnProperty.call(o, key) ? o[key] : undefined),
    has: (o) => isObject(o) && Object.prototype.hasOwnProperty.call(o, key),
    set(o, v) {
      if (Object.prototype.hasOwnProperty.call(o, key)) o[key] = v;
      else Object.defineProperty(o, key, { value: v, writable: true, enumerable: false, configurable: false });
    },
  };
}
const contexts = slot(kContext);
const ids = slot(kId);

/** `req.session.id`: read-only, as express-session's (a getter without a setter). */
function sessionId() {
  return ids.get(this);
}
Object.freeze(sessionId);

// ----- Cookie ------------------------------------------------------------------------------------

/**
 * `req.session.cookie`, with express-session's Cookie semantics: `maxAge` (ms, relative to now)
 * and `expires` (a Date) are two views of one expiry; setting either changes the Set-Cookie;
 * `touch()` resets `maxAge` to `originalMaxAge`. null means a browser-session cookie.
 */
class Cookie {
  constructor(options) {
    this.path = '/';
    this.maxAge = null;
    this.httpOnly = true;
    if (options) {
      // Known keys only: a stored record is data, and `__proto__` in it must stay a string key.
      for (const key of COOKIE_KEYS) if (Object.hasOwn(options, key)) this[key] = options[key];
    }
    if (this.originalMaxAge === undefined || this.originalMaxAge === null) this.originalMaxAge = this.maxAge;
  }

  set expires(date) {
    this._expires = date;
    this.originalMaxAge = this.maxAge;
  }

  get expires() {
    return this._expires;
  }

  set maxAge(ms) {
    if (ms && typeof ms !== 'number' && !(ms instanceof Date)) {
      throw sessionError('ERR_SESSION_VALUE', 'req.session.cookie.maxAge must be a number of milliseconds or null');
    }
    this.expires = typeof ms === 'number' ? new Date(Date.now() + ms) : ms;
  }

  get maxAge() {
    return this.expires instanceof Date ? this.expires.valueOf() - Date.now() : this.expires;
  }

  /** The attributes, as stored with the session (express-session's `cookie.data`). */
  get data() {
    return {
      originalMaxAge: this.originalMaxAge,
      partitioned: this.partitioned,
      priority: this.priority,
      expires: this._expires,
      secure: this.secure,
      httpOnly: this.httpOnly,
      domain: this.domain,
      path: this.path,
      sameSite: this.sameSite,
    };
  }

  toJSON() {
    return this.data;
  }
}

/** A new session's cookie: the manager's cookie config, as express-session's `cookie` option. */
function freshCookie(manager, req) {
  const cfg = manager.config;
  const o = {
    path: cfg.path,
    httpOnly: cfg.http_only,
    secure: cfg.secure === 'auto' ? isSecure(req, cfg.trust_proxy) : cfg.secure,
    maxAge: cfg.expire_on_close ? null : Math.round(cfg.lifetime * 60000),
  };
  if (cfg.domain) o.domain = cfg.domain;
  if (cfg.same_site) o.sameSite = cfg.same_site;
  return new Cookie(o);
}

/** A stored cookie back as a Cookie, as express-session's `Store#createSession` does it. */
function storedCookie(data) {
  const expires = data.expires;
  const originalMaxAge = data.originalMaxAge;
  const c = new Cookie(data);
  if (typeof expires === 'string') c.expires = new Date(expires);
  c.originalMaxAge = originalMaxAge;
  return c;
}

function sameSiteOf(v) {
  if (v === true) return 'strict';
  if (v === false || v === undefined || v === null) return null;
  if (typeof v === 'string' && ['lax', 'strict', 'none'].includes(v.toLowerCase())) return v.toLowerCase();
  throw sessionError('ERR_SESSION_VALUE', `req.session.cookie.sameSite must be true, false, 'lax', 'strict' or 'none', got ${JSON.stringify(v)}`);
}

/** The attributes `cookieLine()` takes. */
function attributesOf(cookie) {
  let maxAgeMs = null;
  const exp = cookie.expires;
  if (exp !== undefined && exp !== null) {
    const t = exp instanceof Date ? exp.valueOf() : new Date(exp).valueOf();
    if (Number.isNaN(t)) throw sessionError('ERR_SESSION_VALUE', 'req.session.cookie.expires must be a Date or null');
    maxAgeMs = t - Date.now();
  }
  return {
    maxAgeMs,
    path: cookie.path === undefined || cookie.path === null ? '/' : cookie.path,
    domain: cookie.domain ? cookie.domain : null,
    httpOnly: !!cookie.httpOnly,
    secure: !!cookie.secure,
    sameSite: sameSiteOf(cookie.sameSite),
  };
}

// ----- Session -----------------------------------------------------------------------------------

// As express-session's checks: a ';' or a control character would inject attributes.
const UNSAFE = /[\u0000-\u001f\u007f;]/; // eslint-disable-line no-control-regex

/**
 * The `Set-Cookie` line carrying `id`, signed as the Laravel-API commit signs it, under the
 * session's own attributes instead of the config's. The line is the core's (set_cookie.rs):
 * the manager's registered cookie gives the name and the key, `attrs` the rest.
 * @param {import('./manager').SessionManager} manager
 * @param {string} id
 * @param {{ maxAgeMs: number|null, path: string, domain: string|null, httpOnly: boolean,
 *   secure: boolean, sameSite: 'lax'|'strict'|'none'|null }} attrs `maxAgeMs` null: no
 *   Max-Age/Expires (the cookie ends with the browser); 0 or less: an expired cookie
 * @returns {string}
 * @throws {TypeError} `ERR_SESSION_VALUE` for a path or domain that would inject attributes
 */
function cookieLine(manager, id, attrs) {
  const { path, domain } = attrs;
  if (typeof path !== 'string' || path[0] !== '/' || UNSAFE.test(path)) {
    throw sessionError('ERR_SESSION_VALUE', `session cookie path must start with '/' and hold no ';' or control characters, got ${JSON.stringify(path)}`);
  }
  if (domain !== null && (typeof domain !== 'string' || domain === '' || UNSAFE.test(domain) || /\s/.test(domain))) {
    throw sessionError('ERR_SESSION_VALUE', `session cookie domain must hold no ';', spaces or control characters, got ${JSON.stringify(domain)}`);
  }
  const handle = manager.setCookieHandle();
  // The usual case, the config's own attributes (a fresh or touched cookie): the registered
  // line, without crossing an attributes object (which costs about as much as the line).
  if (isConfigCookie(manager.config, attrs)) return native.sessionCookieLine(handle, id, attrs.secure);
  return native.sessionCookieLineWith(handle, id, attrs.secure, {
    maxAgeMs: attrs.maxAgeMs === null ? undefined : attrs.maxAgeMs,
    path,
    domain: domain === null ? undefined : domain,
    httpOnly: attrs.httpOnly,
    sameSite: attrs.sameSite === null ? undefined : attrs.sameSite,
  });
}

/**
 * Whether `attrs` make the same line as the config's registered cookie: the same path, domain,
 * flags, and a Max-Age of the same whole seconds (the core rounds both up alike).
 */
function isConfigCookie(cfg, attrs) {
  if (attrs.path !== cfg.path || attrs.domain !== (cfg.domain || null) || attrs.httpOnly !== !!cfg.http_only
    || attrs.sameSite !== (cfg.same_site || null)) return false;
  const ms = attrs.maxAgeMs;
  if (cfg.expire_on_close) return ms === null;
  return ms !== null && ms > 0 && Math.max(1, Math.ceil((ms / 60000) * 60)) === Math.max(1, Math.ceil(cfg.lifetime * 60));
}

/**
 * `req.session`: the data as own enumerable properties, `id` and `req` as read-only
 * non-enumerable ones (`id` follows the Store's id when a renewal moves the session, see
 * `followId`), and express-session's methods. Each callback method returns the session
 * and calls `cb(err)` once its I/O settled; without a callback, an error fails the request
 * (it reaches `next(err)`), so nothing is lost silently. (Under Fastify, a call without a
 * callback returns a Promise instead: see FastifySession.)
 */
class Session {
  constructor(ctx, data, cookie) {
    Object.defineProperty(this, 'req', { value: ctx.holder });
    // An accessor without a setter: assigning it throws in strict code (and is ignored in sloppy
    // code), as express-session's non-writable `id`, yet it can follow a renewal.
    ids.set(this, ctx.id);
    Object.defineProperty(this, 'id', { get: sessionId });
    contexts.set(this, ctx);
    this.cookie = cookie;
    // As express-session: a stored key that names a method or anything inherited (`save`,
    // `__proto__`, `constructor`) is skipped, not assigned.
    for (const k of Object.keys(data)) if (!(k in this)) this[k] = data[k];
  }

  /** Resets the cookie's expiry to `originalMaxAge` from now (every response does this too). */
  touch() {
    return this.resetMaxAge();
  }

  /** Resets `cookie.maxAge` to `cookie.originalMaxAge`. */
  resetMaxAge() {
    this.cookie.maxAge = this.cookie.originalMaxAge;
    return this;
  }

  /** Writes the session now (even unchanged), then `cb(err)`. */
  save(cb) {
    return run(this, 'save', async (ctx) => { await write(ctx, this, snapshot(this)); }, cb);
  }

  /** Reads the session again from its driver into a new `req.session`, then `cb(err)`. */
  reload(cb) {
    return run(this, 'reload', async (ctx) => {
      const before = ctx.id;
      const fresh = await httpSession.reopen(ctx.manager, ctx.req, ctx.store.getId());
      if (fresh === null) {
        throw sessionError('ERR_SESSION_INVALID_ID', 'failed to load session: its record is gone (destroyed or expired) in the driver');
      }
      ctx.store = fresh;
      const sess = install(ctx, fresh.all(), true);
      // Another request renewed the id meanwhile and the load followed its forward marker: the
      // same session, under the renewed id.
      if (ctx.id !== before) moved(ctx, before);
      // The reloaded data is the new baseline: this request writes only what it changes after.
      ctx.originalHash = hashOf(ctx.baseline);
      if (!ctx.opts.resave) {
        ctx.savedId = sess.id;
        ctx.savedHash = ctx.originalHash;
      }
    }, cb);
  }

  /** Removes the record and `req.session`; no cookie is sent for this request. */
  destroy(cb) {
    return run(this, 'destroy', async (ctx) => {
      ctx.destroyed = true;
      await ctx.store.invalidate();
    }, cb, (ctx) => {
      // At once, as express-session: code after the call sees no session. (Fastify's request
      // keeps the decorated property, null, as @fastify/session leaves it.)
      if (ctx.promises) ctx.holder.session = null;
      else delete ctx.holder.session;
    });
  }

  /**
   * Destroys the record and gives the request a new, empty session under a fresh id (a new
   * `req.session` object), then `cb(err)`. The new session is saved and cookied at the end of
   * the request.
   */
  regenerate(cb) {
    return regenerate(this, null, cb);
  }
}

/**
 * `request.session` under Fastify: the same session, plus what @fastify/session's has beside
 * the data: `sessionId`, `get(key)`, `set(key, value)`, and `regenerate(keys)` keeping the
 * listed properties. `save/reload/destroy/regenerate` without a callback return a Promise
 * (resolved once the I/O settled, rejected with its error) instead of the session.
 */
class FastifySession extends Session {
  /** The session id (@fastify/session's name for `id`). */
  get sessionId() {
    return this.id;
  }

  /** `this[key]`. */
  get(key) {
    return this[key];
  }

  /** `this[key] = value`. */
  set(key, value) {
    this[key] = value;
  }

  /** As Session#regenerate; `keys` lists properties the new session keeps. */
  regenerate(keys, cb) {
    if (typeof keys === 'function' && cb === undefined) return regenerate(this, null, keys);
    if (keys !== undefined && keys !== null && (!Array.isArray(keys) || keys.some((k) => typeof k !== 'string'))) {
      throw sessionError('ERR_SESSION_VALUE', 'session.regenerate() takes a list of property names to keep, a callback, or both');
    }
    return regenerate(this, keys || null, cb);
  }
}

/** A new, empty session under a fresh id (with the properties `keep` lists copied over). */
function regenerate(sess, keep, cb) {
  return run(sess, 'regenerate', async (ctx) => {
    let kept = null;
    if (keep !== null) {
      kept = {};
      for (const k of keep) if (k !== 'cookie' && Object.hasOwn(sess, k)) kept[k] = sess[k];
    }
    let error = null;
    try {
      // Empties the Store, moves it to a fresh id and destroys the old record.
      await ctx.store.invalidate();
    } catch (err) {
      error = err;
    }
    // As express-session: the request gets its new session even when the destroy failed.
    install(ctx, kept, false);
    if (error !== null) throw error;
  }, cb);
}

// No data may hang on the functions every session shares.
for (const C of [Session, FastifySession, Cookie]) {
  for (const key of Reflect.ownKeys(C.prototype)) {
    const d = Object.getOwnPropertyDescriptor(C.prototype, key);
    for (const f of [d.value, d.get, d.set]) if (typeof f === 'function') Object.freeze(f);
  }
}

/**
 * Runs `work(ctx)` after every earlier operation of the request (so a `save()` nobody waited for
 * never races the end-of-request commit), then calls `cb`. `sync` runs at the call. Returns the
 * session, or under Fastify without `cb`, a Promise of the outcome.
 */
function run(sess, method, work, cb, sync) {
  const ctx = contexts.get(sess);
  if (ctx === undefined) throw sessionError('ERR_SESSION_VALUE', `session.${method}() was called on an object that is not a request's session`);
  if (cb !== undefined && cb !== null && typeof cb !== 'function') {
    throw sessionError('ERR_SESSION_CALLBACK', `session.${method}() takes a callback function (err) => {} or nothing`);
  }
  let p;
  if (ctx.holder.session !== sess) {
    // A session object left behind by regenerate(), reload() or destroy(): saving it would write
    // data back under an id that was given up (a logout undone).
    p = Promise.reject(sessionError('ERR_SESSION_INVALID_ID', `session.${method}() was called on a session that is no longer req.session (it was regenerated, reloaded or destroyed); call it on req.session`));
  } else {
    if (sync) sync(ctx);
    p = ctx.queue.then(() => work(ctx));
    ctx.queue = p.catch(() => {});
  }
  // The caller awaits the outcome (and handles its error) itself.
  if (ctx.promises && (cb === undefined || cb === null)) return p.then(nothing);
  p.then(() => deliver(ctx, cb, null), (err) => deliver(ctx, cb, err));
  return sess;
}

function nothing() {}

// Outside the promise chain, so a callback that throws is an uncaught exception, as with
// express-session, not a rejection nobody sees.
function deliver(ctx, cb, err) {
  if (typeof cb === 'function') {
    process.nextTick(() => (err === null ? cb() : cb(err)));
  } else if (err !== null && ctx.pending === null) {
    ctx.pending = err;
  }
}

// ----- data: snapshots and writes ------------------------------------------------------------------

function valueError(key, err) {
  const e = sessionError('ERR_SESSION_VALUE', `cannot store req.session.${key}: ${err && err.message ? err.message : String(err)}`);
  e.cause = err;
  return e;
}

/** The JSON of each top-level property except `cookie` (undefined and functions drop out, as in JSON). */
function snapshot(sess) {
  const snap = new Map();
  for (const k of Object.keys(sess)) {
    if (k === 'cookie') continue;
    let j;
    try {
      j = JSON.stringify(sess[k]);
    } catch (err) {
      throw valueError(k, err); // a cycle or a BigInt
    }
    if (j !== undefined) snap.set(k, j);
  }
  return snap;
}

function hashOf(snap) {
  let s = '';
  for (const [k, j] of snap) s += `${JSON.stringify(k)}:${j},`;
  return s;
}

function checkKey(k) {
  if (RESERVED.has(k)) {
    throw sessionError('ERR_SESSION_VALUE', `req.session.${k} is reserved: the engine keeps its CSRF token, flash bookkeeping and previous URL under _token, _flash and _previous`);
  }
  // The engine's put() reads dots as a path; a literal dotted top-level key needs a core addition.
  if (k.includes('.')) {
    throw sessionError('ERR_SESSION_VALUE', `cannot store req.session[${JSON.stringify(k)}]: top-level session property names cannot contain '.'`);
  }
}

/**
 * Saves the Store (`resave`: a write even when unchanged; else a touch when unchanged). With
 * `cookie` (`{ handle, secure }` of the manager's registered cookie), the same crossing builds
 * the `Set-Cookie` line, as the Laravel-API commit does. Resolves to `{ outcome, line }`
 * (`line` null without `cookie`).
 */
async function persist(store, resave, cookie) {
  if (cookie === null) return { outcome: await store.save({ resave }), line: null };
  const done = await internals.commitNative(store, resave, cookie, null);
  return { outcome: done.outcome, line: done.setCookie };
}

/**
 * Writes `sess` through the Store: puts the properties whose JSON differs from the last load or
 * write, forgets the ones that went away, stores the cookie, and saves (a write even when
 * nothing changed, as express-session's `store.set`). `cookie` as `persist()` takes it.
 */
async function write(ctx, sess, snap, cookie = null) {
  const store = ctx.store;
  // The JSON text itself: it is what is stored (as express-session stores JSON).
  for (const [k, j] of snap) {
    if (ctx.baseline.get(k) === j) continue;
    checkKey(k);
    const c = j.charCodeAt(0);
    // A scalar crosses as itself, cheaper than JSON text the engine parses.
    if (c === 123 || c === 91) internals.putJsonText(store, k, j);
    else store.put(k, JSON.parse(j));
  }
  for (const k of ctx.baseline.keys()) if (!snap.has(k)) store.forget(k);
  const cj = JSON.stringify(sess.cookie);
  if (cj !== ctx.cookieBaseline) internals.putJsonText(store, 'cookie', cj);
  const done = await persist(store, true, cookie);
  if (done.outcome !== 'dropped') followId(ctx, sess);
  ctx.baseline = snap;
  ctx.cookieBaseline = cj;
  ctx.savedId = ctx.id;
  ctx.savedHash = hashOf(snap);
  ctx.wrote = true;
  return done;
}

/**
 * After a save: when it found the old id's forward marker inside the renewal's grace window, the
 * engine wrote to the renewed session and the Store now has that id. The session carries on
 * under it (`sess.id`, `req.sessionID`) and the response must cookie it, whatever
 * express-session's rules say, or the browser keeps an id that stops loading after the window.
 */
function followId(ctx, sess) {
  const before = ctx.id;
  const id = ctx.store.getId();
  if (id === before) return;
  ctx.id = id;
  if (contexts.get(sess) === ctx) ids.set(sess, id);
  if (!ctx.promises) ctx.req.sessionID = id;
  moved(ctx, before);
}

/**
 * The bookkeeping of a session that moved from id `before` to `ctx.id` without becoming another
 * session (a renewal or a forward, never regenerate()): what pointed at the old id points at the
 * new one, and the cookie is sent.
 */
function moved(ctx, before) {
  if (ctx.cookieId === before) ctx.cookieId = ctx.id;
  if (ctx.originalId === before) ctx.originalId = ctx.id;
  if (ctx.savedId === before) ctx.savedId = ctx.id;
  ctx.sendCookie = true;
}

/**
 * Makes `req.session` a new Session for the Store's current id from `record` (the Store's
 * attributes, an old express-session record, or null for an empty one). `fromStore`: the
 * record is what the Store holds, so it is the baseline changes are measured against.
 */
function install(ctx, record, fromStore) {
  const data = {};
  let stored = null;
  if (record !== null) {
    for (const k of Object.keys(record)) {
      if (k === 'cookie') stored = record[k];
      else if (!RESERVED.has(k)) data[k] = record[k];
    }
  }
  ctx.id = ctx.store.getId();
  const usable = stored !== null && typeof stored === 'object' && !Array.isArray(stored);
  const cookie = usable ? storedCookie(stored) : freshCookie(ctx.manager, ctx.req);
  const sess = ctx.promises ? new FastifySession(ctx, data, cookie) : new Session(ctx, data, cookie);
  ctx.holder.session = sess;
  if (!ctx.promises) ctx.req.sessionID = sess.id;
  ctx.baseline = fromStore ? snapshot(sess) : new Map();
  ctx.cookieBaseline = fromStore && usable ? JSON.stringify(stored) : null;
  return sess;
}

// ----- migration from express-session ---------------------------------------------------------------

/**
 * The record of an express-session cookie the request carries (signed with the old secret,
 * under the manager's cookie name), read from the old store; null when there is none.
 */
async function readOld(manager, migrate, req) {
  const value = cookies.readCookie(req.headers && req.headers.cookie, manager.config.cookie);
  if (value === null || !value.startsWith('s:')) return null;
  const sid = native.unsignCookie(value, migrate.secrets);
  if (sid === null || sid === undefined || !EXPRESS_SESSION_ID.test(sid)) return null;
  const sess = await new Promise((resolve, reject) => {
    const r = migrate.store.get(sid, (err, s) => (err ? reject(err) : resolve(s)));
    // A store that answers only through its promise (and ignores the callback).
    if (r && typeof r.then === 'function') r.then((s) => { if (s !== undefined) resolve(s); }, reject);
  }).catch((err) => {
    // As express-session: ENOENT (session-file-store) means no session.
    if (err && err.code === 'ENOENT') return null;
    // Not "no session": the user would be logged out without anyone knowing why.
    const e = sessionError('ERR_SESSION_UNAVAILABLE', `reading the express-session record to migrate from migrateFrom.store failed: ${err && err.message ? err.message : String(err)}`);
    e.cause = err;
    throw e;
  });
  if (sess === null || typeof sess !== 'object' || Array.isArray(sess)) return null;
  return sess;
}

// ----- options -------------------------------------------------------------------------------------

function boolOption(o, key, def) {
  const v = o[key];
  if (v === undefined) return def;
  if (typeof v !== 'boolean') throw sessionError('ERR_SESSION_INVALID_OPTION', `express-session API option "${key}" must be true or false, got ${JSON.stringify(v)}`);
  return v;
}

function migrateOf(m) {
  if (m === undefined || m === null) return null;
  if (typeof m !== 'object' || Array.isArray(m)) {
    throw sessionError('ERR_SESSION_INVALID_OPTION', 'express-session API option "migrateFrom" must be { secret, store }');
  }
  rejectUnknown(m, MIGRATE_KEYS, 'express-session API option "migrateFrom"');
  const secrets = typeof m.secret === 'string' ? [m.secret] : m.secret;
  if (!Array.isArray(secrets) || secrets.length === 0 || secrets.some((s) => typeof s !== 'string' || s === '')) {
    throw sessionError('ERR_SESSION_INVALID_OPTION', 'migrateFrom.secret must be the old express-session secret: a non-empty string or a list of them');
  }
  if (!m.store || typeof m.store.get !== 'function') {
    throw sessionError('ERR_SESSION_INVALID_OPTION', 'migrateFrom.store must be the old express-session store (e.g. connect-redis\'s RedisStore): an object with get(sid, callback)');
  }
  return { secrets: secrets.slice(), store: m.store };
}

/** Whether `m` offers the manager API this file uses (without importing the manager). */
function isManager(m) {
  return m !== null && typeof m === 'object' && typeof m.openSession === 'function' && typeof m.createStore === 'function'
    && typeof m.setCookieHandle === 'function' && typeof m.driver === 'function' && m.config !== null && typeof m.config === 'object';
}

/**
 * The checked express-session API options, with the defaults taken from `manager`'s config.
 * @throws {TypeError} `ERR_SESSION_INVALID_OPTION`
 */
function optionsOf(manager, options) {
  if (!isManager(manager)) throw sessionError('ERR_SESSION_INVALID_OPTION', 'the express-session API takes a SessionManager');
  const o = options === undefined || options === null ? {} : options;
  if (typeof o !== 'object' || Array.isArray(o)) throw sessionError('ERR_SESSION_INVALID_OPTION', 'the express-session API options must be an object');
  rejectUnknown(o, OPTION_KEYS, 'express-session API options');
  if (o.api !== undefined && o.api !== 'express-session') {
    throw sessionError('ERR_SESSION_INVALID_OPTION', `express-session API option "api" must be 'express-session', got ${JSON.stringify(o.api)}`);
  }
  if (o.unset !== undefined && o.unset !== 'keep' && o.unset !== 'destroy') {
    throw sessionError('ERR_SESSION_INVALID_OPTION', `express-session API option "unset" must be 'keep' or 'destroy', got ${JSON.stringify(o.unset)}`);
  }
  const cfg = manager.config;
  return Object.freeze({
    // The defaults are the manager's config keys of the same names.
    resave: boolOption(o, 'resave', cfg.resave),
    saveUninitialized: boolOption(o, 'saveUninitialized', cfg.saveUninitialized),
    rolling: boolOption(o, 'rolling', false),
    unset: o.unset || 'keep',
    migrateFrom: migrateOf(o.migrateFrom),
  });
}

/** The cookie driver keeps the whole session in the cookie, which this API may not resend. */
function checkDriver(manager) {
  if (manager.driver() instanceof CookieSessionHandler) {
    throw sessionError('ERR_SESSION_INVALID_OPTION', 'the express-session API needs a server-side driver (file, sqlite, redis, memcached, array, …): with the cookie driver the session lives in the cookie, which express-session\'s rules do not resend on every change');
  }
}

// ----- the middleware -------------------------------------------------------------------------------

/**
 * Connect-style middleware giving `req.session` in express-session's shape, backed by
 * `manager`'s driver, cookie and payload format.
 * @param {import('./manager').SessionManager} manager
 * @param {{ api?: 'express-session', resave?: boolean, saveUninitialized?: boolean,
 *   rolling?: boolean, unset?: 'keep'|'destroy', migrateFrom?: { secret: string|string[],
 *   store: { get(sid: string, cb: Function): unknown } } }} [options] `resave` and
 *   `saveUninitialized` default to the manager's config keys of the same names
 * @returns {(req, res, next?) => Promise<boolean>}
 */
function createExpressSessionMiddleware(manager, options) {
  const opts = optionsOf(manager, options);
  // Outside OstroJS the driver is known at mount time (as for manager.middleware()); under
  // OstroJS it resolves on the first request, after providers registered their drivers.
  let checked = false;
  if (manager.app === null) {
    checkDriver(manager);
    checked = true;
  }
  return function expressSession(req, res, next) {
    const n = typeof next === 'function' ? next : null;
    if (!checked) {
      try {
        checkDriver(manager);
        checked = true;
      } catch (err) {
        return Promise.resolve(fail(manager, res, n, err));
      }
    }
    return handle(manager, opts, req, res, n);
  };
}

async function handle(manager, opts, req, res, next) {
  if (req.session !== undefined && req.session !== null) {
    // Mounted twice (say, app-wide and on a router): the first one owns the session.
    if (contexts.has(req.session)) {
      if (next) next();
      return true;
    }
    return fail(manager, res, next, sessionError('ERR_SESSION_INVALID_OPTION', 'req.session is already set by another middleware; mount one session middleware'));
  }
  let ctx;
  try {
    ctx = await load(manager, opts, req, req);
  } catch (err) {
    return fail(manager, res, next, err);
  }
  // Held back exactly as the Laravel-API middleware holds its responses (lib/middleware.js).
  hookResponse(res, manager, next, commitSession, ctx);
  if (next) next();
  return true;
}

/**
 * Loads the session of `req` and installs it as `holder.session`: `holder` is `req` under
 * Express and Connect, Fastify's request (whose methods then return Promises) otherwise.
 * Resolves to the request's context, which `commitSession` takes at the end.
 */
async function load(manager, opts, req, holder) {
  const loaded = await httpSession.open(manager, req);
  const { store, existed } = loaded;
  const id = store.getId();
  const ctx = {
    manager,
    opts,
    req,
    holder,
    promises: holder !== req,
    store,
    existed,
    // express-session's `cookieId`: the id of the session the browser's cookie names. (After
    // a renewal at load, or a forward, the browser's cookie names the session by its old id:
    // `sendCookie` then says that it must get the Store's id.)
    cookieId: existed ? id : null,
    // The browser holds an id other than the session's (the manager's `cookieId`: the load
    // renewed or forwarded the session; or a later save followed a forward marker): the
    // response must carry the cookie even where express-session's rules send none.
    sendCookie: existed && typeof loaded.cookieId === 'string' && loaded.cookieId !== '',
    baseline: null,
    cookieBaseline: null,
    originalId: id,
    // The Store's id, read once per change: it changes in regenerate(), destroy() and reload(),
    // each of which installs a new session (install() reads it again), and in a save that
    // follows a renewal's forward marker (followId() reads it again).
    id,
    originalHash: '',
    savedId: null,
    savedHash: null,
    queue: Promise.resolve(),
    pending: null,
    destroyed: false,
    wrote: false,
  };
  let record = null;
  let migrated = false;
  if (existed) {
    record = store.all();
  } else if (opts.migrateFrom !== null) {
    record = await readOld(manager, opts.migrateFrom, req);
    migrated = record !== null;
  }
  // A migrated session is new to our store: its data counts as a change (saved under the fresh
  // id, and cookied) even with saveUninitialized: false. The old record is left to expire, so
  // requests already in flight with the old cookie still find it.
  install(ctx, record, existed);
  ctx.originalHash = migrated ? '' : hashOf(ctx.baseline);
  if (existed && !opts.resave) {
    ctx.savedId = ctx.originalId;
    ctx.savedHash = ctx.originalHash;
  }
  return ctx;
}

/**
 * Decides and performs the end of the request with express-session's rules, and returns the
 * `Set-Cookie` line to send, or null. Nothing has been sent yet.
 */
async function commitSession(ctx) {
  await ctx.queue;
  if (ctx.pending !== null) throw ctx.pending;
  const { manager, opts, req } = ctx;
  const sess = ctx.holder.session;
  if (sess === undefined || sess === null) {
    // Set to null by the app (destroy() already did its work): `unset` says what happens.
    if (!ctx.destroyed && opts.unset === 'destroy' && ctx.existed) await ctx.store.invalidate();
    return null;
  }
  if (contexts.get(sess) !== ctx) {
    throw sessionError('ERR_SESSION_PROPERTY', 'req.session was replaced by an object that is not this request\'s session; change its properties, or use req.session.regenerate()');
  }
  sess.touch();
  const snap = snapshot(sess);
  const hash = hashOf(snap);
  const id = ctx.id;
  const modified = ctx.originalId !== id || ctx.originalHash !== hash;
  const saved = ctx.savedId === id && ctx.savedHash === hash;
  const isNew = ctx.cookieId !== id;
  const shouldSave = !opts.saveUninitialized && ctx.savedHash === null && isNew ? modified : !saved;
  const shouldSetCookie = (ctx.sendCookie && !isNew) || (isNew
    ? opts.saveUninitialized || modified
    : opts.rolling || (sess.cookie.expires !== undefined && sess.cookie.expires !== null && modified));
  // express-session's store.touch(): refreshes the record's expiry, never recreates it.
  const touch = !shouldSave && !isNew && !ctx.wrote;
  let line = null;
  let inCommit = null;
  // A Secure cookie is only sent over HTTPS, as express-session does.
  const mayCookie = !(sess.cookie.secure && !isSecure(req, manager.config.trust_proxy));
  if (shouldSetCookie && mayCookie) {
    const attrs = attributesOf(sess.cookie);
    // The config's cookie on a built-in driver: the save's own crossing builds the line.
    if ((shouldSave || touch) && internals.isNative(ctx.store) && isConfigCookie(manager.config, attrs)) {
      inCommit = { handle: manager.setCookieHandle(), secure: attrs.secure };
    } else {
      // Built before anything is written, so a bad cookie attribute fails the request cleanly.
      line = cookieLine(manager, id, attrs);
    }
  }
  let done = null;
  if (shouldSave) done = await write(ctx, sess, snap, inCommit);
  else if (touch) done = await persist(ctx.store, false, inCommit);
  if (done === null) return line;
  // The record was gone (a concurrent request destroyed it, say a logout): sending this id
  // again would undo the logout in the browser, so the cookie is cleared instead (the
  // registered line does that by itself).
  if (done.outcome === 'dropped' && inCommit === null) return cookieLine(manager, id, { ...attributesOf(sess.cookie), maxAgeMs: 0 });
  if (done.outcome !== 'dropped') followId(ctx, sess);
  if (ctx.id !== id) {
    // The save followed another request's renewal: the renewed id's cookie goes out (the line
    // built in the save's crossing already carries it), even where none was due.
    if (inCommit !== null) return done.line;
    return mayCookie ? cookieLine(manager, ctx.id, attributesOf(sess.cookie)) : null;
  }
  return inCommit === null ? line : done.line;
}

/**
 * A load error: to `next(err)`, or else a generic 500 (the error is logged). (Save errors are
 * handled by the response hook of lib/middleware.js.)
 */
function fail(manager, res, next, err) {
  if (next) {
    next(err);
    return false;
  }
  httpSession.logError(manager, `@ostro/session: ${err && err.message}`, err);
  if (res.headersSent) {
    res.destroy(err);
    return false;
  }
  const body = 'Internal Server Error';
  res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store' });
  res.end(body);
  return false;
}

module.exports = {
  createExpressSessionMiddleware,
  EXPRESS_SESSION_ID,
  // For adapters without a Node response to wrap (the Fastify plugin): checked options
  // (`checkDriver` once the driver is known), then per request
  // `openExpressSession(manager, opts, req, holder)` before the route and
  // `commitExpressSession(ctx)` before the reply (it resolves to the Set-Cookie line or null).
  expressSessionOptions: optionsOf,
  checkExpressSessionDriver: checkDriver,
  openExpressSession: load,
  commitExpressSession: commitSession,
};
