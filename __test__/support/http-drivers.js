'use strict';
// Shared by the HTTP-level concurrency and blocking tests (issue 12) and their child processes:
// a SessionManager per driver (array, file, sqlite, the native database driver on Postgres and
// MariaDB, redis, memcached, and a custom JS driver over a Map with writeIfUnchanged, lock and
// unlock), and one Express app whose routes put, increment, flash, log out and read-modify-write
// through `req.session`.
const { SessionManager, SessionHandlerInterface } = require('../..');

const KEY = 'k'.repeat(40);
const hop = () => new Promise((resolve) => setImmediate(resolve));
const TOMBSTONE = Symbol('tombstone');

/**
 * A custom driver over a Map with compare-and-set and locks, answering after a hop (as a
 * network store would) so that concurrent requests interleave. destroy() keeps a tombstone that
 * reads as no record and never matches. Locks expire by the wall clock.
 */
class MapDriver extends SessionHandlerInterface {
  constructor() {
    super();
    this.records = new Map();
    this.locks = new Map();
    this.n = 0;
  }

  async read(id) {
    await hop();
    const v = this.records.get(id);
    return typeof v === 'string' ? v : '';
  }

  async write(id, data) {
    await hop();
    this.records.set(id, data);
  }

  async destroy(id) {
    await hop();
    if (this.records.has(id)) this.records.set(id, TOMBSTONE);
  }

  async touch(id) {
    await hop();
    return typeof this.records.get(id) === 'string';
  }

  async writeIfUnchanged(id, data, previousData) {
    await hop();
    const cur = this.records.get(id);
    if (cur === TOMBSTONE || (cur ?? '') !== previousData) return false;
    this.records.set(id, data);
    return true;
  }

  async lock(id, ttlMs) {
    await hop();
    const held = this.locks.get(id);
    if (held && held.until > Date.now()) return null;
    const token = `t${++this.n}`;
    this.locks.set(id, { token, until: Date.now() + ttlMs });
    return token;
  }

  async unlock(id, token) {
    await hop();
    const held = this.locks.get(id);
    if (held && held.token === token) this.locks.delete(id);
  }
}

/**
 * A manager on `driver` at `where` (directory, database file, URL or address; `{ url, table }`
 * for 'database'; a MapDriver instance for 'map').
 */
function managerFor(driver, where) {
  const config = { driver, key: KEY, lifetime: 120, lottery: [0, 100] };
  if (driver === 'file') config.files = where;
  else if (driver === 'sqlite' || driver === 'redis' || driver === 'memcached') config.connection = where;
  else if (driver === 'database') {
    config.connection = where.url;
    config.table = where.table;
  }
  if (driver === 'map') {
    const m = new SessionManager(config, {});
    m.extend('map', () => where);
    return m;
  }
  return new SessionManager(config);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Holds `/heldput` requests of the app (see appFor's `gate`) between their load and their save
 * until the next `/logout` response head has gone out, so that a test knows some responses
 * follow the logout's. `reset()` starts a round; `arrived(n)` resolves once `n` held requests
 * have loaded their session. A request held for 10 s fails (500) instead of waiting forever.
 */
function logoutGate() {
  let count = 0;
  let released = null;
  let release = () => {};
  let arrivals = [];
  const gate = {
    reset() {
      count = 0;
      arrivals = [];
      released = new Promise((resolve) => { release = resolve; });
    },
    arrived(n) {
      if (count >= n) return Promise.resolve();
      return new Promise((resolve) => arrivals.push({ n, resolve }));
    },
    /** Called by a held route once its session is loaded; resolves at the logout's head. */
    hold() {
      count++;
      arrivals = arrivals.filter((a) => (a.n <= count ? (a.resolve(), false) : true));
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('held for 10 s: no /logout response went out')), 10000);
        released.then(() => { clearTimeout(timer); resolve(); });
      });
    },
    release() { release(); },
  };
  gate.reset();
  return gate;
}

/**
 * The Express app of the tests. `block`: the options of the blocking middleware mounted on
 * `/blocked` (before the plain one, which then leaves those requests to it). `log` receives
 * `{ start, end }` of every blocked read-modify-write (performance.now() times); `sent`, when
 * given, `{ url, at, saveFrom, setCookie }` of every response head as it is written (`saveFrom`:
 * when a `/slowput` route started its response, and with it the save); `gate`, a `logoutGate()`
 * holding `/heldput` requests until a `/logout` response head went out.
 */
function appFor(manager, { block = { lockSeconds: 10, waitSeconds: 10 }, log = [], sent = null, gate = null } = {}) {
  const express = require('express');
  const app = express();
  if (sent !== null) {
    // When each response's head goes out (after its save settled), with its Set-Cookie lines:
    // wrapped before the session middleware, which holds the response back on top of this.
    app.use((req, res, next) => {
      const writeHead = res.writeHead;
      res.writeHead = function recorded(...args) {
        sent.push({ url: req.originalUrl, at: performance.now(), saveFrom: res.locals.saveFrom, setCookie: [].concat(res.getHeader('set-cookie') || []) });
        if (gate !== null && req.originalUrl === '/logout') gate.release();
        return writeHead.apply(this, args);
      };
      next();
    });
  }
  // Express's final handler answers errors (423 for ERR_SESSION_LOCKED) without logging them.
  app.set('env', 'test');
  app.use('/blocked', manager.middleware({ block }));
  app.use(manager.middleware());
  app.get('/seed', (req, res) => {
    req.session.put('n', 0);
    req.session.put('user', 'alice');
    res.send('ok');
  });
  app.post('/put/:k', (req, res) => {
    req.session.put(req.params.k, Number(req.params.k.slice(1)));
    res.send('ok');
  });
  app.post('/inc', (req, res) => {
    req.session.increment('n');
    res.send('ok');
  });
  app.post('/logout', async (req, res) => {
    await req.session.invalidate();
    res.send('bye');
  });
  app.get('/dump', (req, res) => res.json(req.session.all()));
  app.post('/slowput/:k', async (req, res) => {
    // Loaded now, saved later: in flight while other requests (a logout) land.
    await sleep(Number(req.query.ms || 20));
    req.session.put(req.params.k, 1);
    // The save starts with the response.
    res.locals.saveFrom = performance.now();
    res.send('ok');
  });
  app.post('/heldput/:k', async (req, res, next) => {
    // Loaded before the logout (the test waits for it), saved after the logout's head went out.
    try {
      await gate.hold();
    } catch (err) {
      next(err);
      return;
    }
    req.session.put(req.params.k, 1);
    res.locals.saveFrom = performance.now();
    res.send('ok');
  });
  app.post('/flash/:key', (req, res) => {
    req.session.flash(req.params.key, 'v');
    res.send('ok');
  });
  app.get('/flash/:key', (req, res) => res.json({ value: req.session.get(req.params.key, null) }));
  app.get('/slow', async (req, res) => {
    // Another request's save lands while this one runs; its own save ages flash data.
    await sleep(Number(req.query.ms || 100));
    res.send('ok');
  });
  // Read-modify-write in JS, which replay cannot merge: only blocking keeps every item.
  app.post('/blocked/cart/:item', async (req, res) => {
    const start = performance.now();
    const cart = req.session.get('cart', []);
    await sleep(Number(req.query.ms || 40));
    cart.push(req.params.item);
    req.session.put('cart', cart);
    log.push({ start, end: performance.now() });
    res.send('ok');
  });
  app.get('/blocked/fail', () => {
    throw new Error('route failed');
  });
  app.get('/blocked/hang', (req) => new Promise((resolve) => req.on('close', resolve)));
  app.get('/blocked/dump', (req, res) => res.json(req.session.all()));
  return app;
}

module.exports = { MapDriver, managerFor, appFor, logoutGate, KEY, sleep };
