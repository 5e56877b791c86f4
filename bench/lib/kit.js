'use strict';
// Building blocks for contenders (bench/contenders/*.js): how each family of store does one
// cycle (load, change two keys, save), how it is seeded and checked, and the HTTP route that
// every server runs. A contender module only says which store it builds.

const fs = require('node:fs');
const path = require('node:path');
const { makeSession, SESSION_JSON } = require('./payload');

// The package under test: this checkout, or another build of it (OSTRO_BENCH_ROOT), so that a
// prototype can be measured by the same harness.
const ROOT = process.env.OSTRO_BENCH_ROOT ? path.resolve(process.env.OSTRO_BENCH_ROOT) : path.resolve(__dirname, '..', '..');
const LIFETIME_MIN = 120;
const LIFETIME_MS = LIFETIME_MIN * 60000;
const APP_KEY = `base64:${Buffer.alloc(32, 7).toString('base64')}`;
const COOKIE = 'ostro_session';
/** An id outside every benchmark pool (idOf(k) for k < 2^31), for set-up writes. */
const SENTINEL_ID = 'Sentinel0000000000000000000000000000000x';

/** Thrown when a contender cannot run here yet (module not written, server missing, …). */
class NotAvailable extends Error {
  constructor(reason) {
    super(reason);
    this.code = 'NOT_AVAILABLE';
  }
}

/** `require` of a bench dependency or library file; a missing one becomes NotAvailable. */
function need(spec, what) {
  try {
    return require(spec);
  } catch (err) {
    if (err && err.code === 'MODULE_NOT_FOUND' && String(err.message).includes(spec.replace(/^\.\.?\//, ''))) {
      throw new NotAvailable(`${what || spec} not available yet`);
    }
    throw err;
  }
}

/** `require(file)`; a library file that needs another one not written yet becomes NotAvailable. */
function requireLib(file, what) {
  try {
    return require(file);
  } catch (err) {
    const m = err && err.code === 'MODULE_NOT_FOUND' && /Cannot find module '([^']+)'/.exec(err.message);
    if (m) throw new NotAvailable(`${what} needs ${m[1]}, not available yet`);
    throw err;
  }
}

/** The library under test (the root package). */
const ours = () => require(ROOT);

/**
 * One of our drivers by file name (`lib/drivers/<name>.js`), or by export name from the root
 * package; NotAvailable until it lands.
 */
function ourDriver(name, exportName) {
  const root = ours();
  if (root[exportName]) return root[exportName];
  const file = path.join(ROOT, 'lib', 'drivers', `${name}.js`);
  if (!fs.existsSync(file)) throw new NotAvailable(`lib/drivers/${name}.js not available yet`);
  const mod = requireLib(file, `lib/drivers/${name}.js`);
  const cls = mod[exportName] || Object.values(mod).find((v) => typeof v === 'function' && /SessionHandler$/.test(v.name));
  if (!cls) throw new NotAvailable(`lib/drivers/${name}.js exports no ${exportName}`);
  return cls;
}

/** The SessionManager (lib/manager.js); NotAvailable until it lands. */
function ourManager() {
  const root = ours();
  if (root.SessionManager) return root.SessionManager;
  const file = path.join(ROOT, 'lib', 'manager.js');
  if (!fs.existsSync(file)) throw new NotAvailable('lib/manager.js (the HTTP middleware) not available yet');
  const mod = requireLib(file, 'lib/manager.js');
  const cls = mod.SessionManager || (typeof mod === 'function' ? mod : null);
  if (!cls) throw new NotAvailable('lib/manager.js exports no SessionManager');
  return cls;
}

/** Runs `fn` over `items` with at most `limit` in flight. */
async function eachLimit(items, limit, fn) {
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
}

// ----- peer stores that start timers --------------------------------------------------------

/**
 * Builds a peer's express-session store with `build()` and returns `{ store, close }`, where
 * close() ends what the store started, so that a case that builds peers in the bench process
 * itself (the contention case's HTTP servers) lets Node exit when it ends:
 * - the timers its constructor armed: better-sqlite3-session-store starts a cleanup setInterval
 *   it keeps no handle to and has no close(), so the handle is caught here, while it is built;
 * - the store's own close(), when it has one: connect-pg-simple's stops its prune timer and ends
 *   the pg pool it made; express-mysql-session's clears its expiration-check interval and ends
 *   its connection;
 * - `also()`: what the caller made for the store (a better-sqlite3 Database, a redis client).
 * close() runs once; later calls resolve at once.
 * @param {() => object} build
 * @param {{ also?: () => unknown }} [options]
 */
function peerStore(build, { also } = {}) {
  const timers = [];
  const { setInterval: realInterval, setTimeout: realTimeout } = globalThis;
  globalThis.setInterval = function setIntervalCaught(...args) {
    const t = realInterval.apply(this, args);
    timers.push(t);
    return t;
  };
  globalThis.setTimeout = function setTimeoutCaught(...args) {
    const t = realTimeout.apply(this, args);
    timers.push(t);
    return t;
  };
  let store;
  try {
    store = build();
  } finally {
    globalThis.setInterval = realInterval;
    globalThis.setTimeout = realTimeout;
  }
  let closing = null;
  const close = () => {
    closing ||= (async () => {
      for (const t of timers) clearInterval(t); // clears a timeout as well
      if (typeof store.close === 'function') await store.close();
      if (also) await also();
    })();
    return closing;
  };
  return { store, close, timers };
}

/**
 * better-sqlite3-session-store on a better-sqlite3 Database in `file`, with the cleanup interval
 * its README sets (hourly: never due during a run). `wal`: our driver's settings (WAL,
 * synchronous=NORMAL) instead of SQLite's defaults. close() clears the interval and closes the
 * database.
 */
function sqlitePeerStore(file, { wal = false } = {}) {
  const session = need('express-session');
  const Database = need('better-sqlite3');
  const SqliteStore = need('better-sqlite3-session-store')(session);
  const db = new Database(file);
  if (wal) {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
  }
  const peer = peerStore(() => new SqliteStore({ client: db, expired: { clear: true, intervalMs: 3600000 } }), { also: () => db.close() });
  return { ...peer, db };
}

/** A cycle over a Store on one of our handlers (built-in or a JS object through the bridge). */
function storeCycles(handler, { close } = {}) {
  const { Store } = ours();
  return {
    async seed(ids) {
      await eachLimit(ids, 64, (id, k) => handler.write(id, JSON.stringify(makeSession(k))));
    },
    async cycle(id, i) {
      const s = new Store(COOKIE, handler, id);
      await s.start();
      s.increment('counter');
      // The read an app makes (issue 11 names the cycle start, increment, get, put, save).
      if (typeof s.get('user.name') !== 'string') throw new Error('the stored user did not read back');
      s.put('lastSeen', i);
      await s.save();
    },
    async check(id) {
      const s = new Store(COOKIE, handler, id);
      await s.start();
      return s.all();
    },
    close: close || (() => (typeof handler.close === 'function' ? handler.close() : undefined)),
  };
}

/** The session object an express-session store holds: the payload plus express-session's cookie. */
function expressSession(k) {
  return {
    cookie: { originalMaxAge: LIFETIME_MS, expires: new Date(Date.now() + LIFETIME_MS).toISOString(), secure: false, httpOnly: true, path: '/', sameSite: 'lax' },
    ...makeSession(k),
  };
}

/** A cycle over an express-session Store (callback API), as express-session drives it. */
function expressCycles(store, { close } = {}) {
  const get = (id) => new Promise((resolve, reject) => store.get(id, (err, s) => (err ? reject(err) : resolve(s))));
  const set = (id, s) => new Promise((resolve, reject) => store.set(id, s, (err) => (err ? reject(err) : resolve())));
  return {
    async seed(ids) {
      await eachLimit(ids, 16, (id, k) => set(id, expressSession(k)));
    },
    async cycle(id, i) {
      const s = (await get(id)) || expressSession(0);
      s.counter = (s.counter || 0) + 1;
      if (typeof (s.user && s.user.name) !== 'string') throw new Error('the stored user did not read back');
      s.lastSeen = i;
      await set(id, s);
    },
    check: (id) => get(id),
    close: close || (() => undefined),
  };
}

// ----- HTTP ---------------------------------------------------------------------------------

const ITEMS = ['SHOE-RUN-42', 'SOCK-WOOL-M', 'CAP-SUN-01', 'BAG-DAY-20'];
const USER = makeSession().user;
const PREFS = makeSession().prefs;

function reply(res, n) {
  const body = `{"n":${n}}`;
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
  res.end(body);
}

function fail(res, err) {
  if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
  res.end(String(err && err.message));
}

/**
 * The route every session server runs: read the counter, increment it, push to the cart (reset
 * every 8 items so the payload stays near 1 KB), and on the first visit store a user and prefs.
 */
function ourRoute(req, res) {
  const s = req.session;
  const n = s.increment('counter');
  if (n === 1) s.put({ user: USER, prefs: PREFS });
  const item = { sku: ITEMS[n & 3], qty: 1 };
  if (n % 8 === 1) s.put('cart', [item]);
  else s.push('cart', item);
  reply(res, n);
}

/** The same route on express-session's `req.session`. */
function expressRoute(req, res) {
  const s = req.session;
  const n = (s.counter || 0) + 1;
  s.counter = n;
  if (n === 1) { s.user = USER; s.prefs = PREFS; }
  const item = { sku: ITEMS[n & 3], qty: 1 };
  if (n % 8 === 1 || !Array.isArray(s.cart)) s.cart = [item];
  else s.cart.push(item);
  reply(res, n);
}

/** A request listener: our SessionManager middleware on `config`, then the route. */
function ourHttp(config, { extend } = {}) {
  const SessionManager = ourManager();
  const manager = new SessionManager({ key: APP_KEY, cookie: COOKIE, lifetime: LIFETIME_MIN, ...config });
  if (extend) manager.extend(extend.name, extend.factory);
  const mw = manager.middleware();
  return {
    listener(req, res) {
      mw(req, res, (err) => {
        if (err) return fail(res, err);
        try { ourRoute(req, res); } catch (e) { fail(res, e); }
      });
    },
    close: () => (typeof manager.close === 'function' ? manager.close() : undefined),
  };
}

/** A request listener: our middleware with `api: 'express-session'` on `config`, then express-session's route. */
function expressApiHttp(config) {
  const SessionManager = ourManager();
  const manager = new SessionManager({ key: APP_KEY, cookie: COOKIE, lifetime: LIFETIME_MIN, ...config });
  const mw = manager.middleware({ api: 'express-session' });
  return {
    listener(req, res) {
      mw(req, res, (err) => {
        if (err) return fail(res, err);
        try { expressRoute(req, res); } catch (e) { fail(res, e); }
      });
    },
    close: () => manager.close(),
  };
}

/** A request listener: express-session with `store` on plain node:http, then the route. */
function expressHttp(store, { close } = {}) {
  const session = need('express-session');
  const mw = session({
    store,
    secret: APP_KEY,
    name: COOKIE,
    resave: false,
    saveUninitialized: true,
    cookie: { maxAge: LIFETIME_MS, httpOnly: true, sameSite: 'lax' },
  });
  return {
    listener(req, res) {
      mw(req, res, (err) => {
        if (err) return fail(res, err);
        try { expressRoute(req, res); } catch (e) { fail(res, e); }
      });
    },
    close: close || (() => undefined),
  };
}

module.exports = {
  ROOT, LIFETIME_MIN, LIFETIME_MS, APP_KEY, COOKIE, SESSION_JSON, SENTINEL_ID,
  NotAvailable, need, ours, ourDriver, ourManager, eachLimit, peerStore, sqlitePeerStore,
  storeCycles, expressCycles, expressSession, ourHttp, expressApiHttp, expressHttp, reply,
};
