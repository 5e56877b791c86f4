'use strict';
// Opt-in blocking through real Express (issue 12): `manager.middleware({ block })` on array,
// file, sqlite, redis and memcached (servers started here), the native database driver on the
// machine's PostgreSQL and MariaDB servers (a table of its own each, dropped after; a server that
// is not running fails naming it), and a custom JS driver with lock()/unlock(). Blocked requests on one session run one after the other, so read-modify-write
// in JS keeps every change; a lock held past lockSeconds expires; a waiter past waitSeconds gets
// ERR_SESSION_LOCKED, which Express answers 423; a failed or aborted request releases its lock.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const path = require('node:path');
const { SessionManager, SessionHandlerInterface } = require('..');
const { listen, Client, sessionCookie, idOf, until } = require('./support/http');
const { startRedis, startMemcached } = require('./support/servers');
const { tmpDir } = require('./support/tmp');
const { MapDriver, managerFor, appFor, KEY } = require('./support/http-drivers');
const { DB_SERVERS, uniqueTable, requireDbServer, dropDbTable } = require('./support/db-servers');

async function seed(client) {
  const r = await client.get('/seed');
  assert.equal(r.status, 200);
  return idOf(sessionCookie(r));
}

function suite(driver, where, { setup, teardown, minLockSeconds = 0.3, label = driver } = {}) {
  describe(`${label}: middleware({ block })`, { timeout: 60000 }, () => {
    let manager;
    let handler;
    const servers = [];
    const log = [];
    let main;
    let shortLock;
    let shortWait;

    before(async () => {
      if (setup) await setup();
      manager = managerFor(driver, where());
      handler = manager.driver();
      main = await listen(http.createServer(appFor(manager, { block: { lockSeconds: 10, waitSeconds: 10 }, log })));
      shortLock = await listen(http.createServer(appFor(manager, { block: { lockSeconds: minLockSeconds, waitSeconds: 10 } })));
      // No error handler of its own: Express's final handler answers.
      shortWait = await listen(http.createServer(appFor(manager, { block: { lockSeconds: 10, waitSeconds: 0.2 } })));
      servers.push(main, shortLock, shortWait);
    });

    after(async () => {
      for (const s of servers) await s.close();
      await manager.close();
      if (teardown) await teardown();
    });

    it('blocked requests on one session run one after the other and keep every read-modify-write', async () => {
      const client = new Client(main.url);
      await seed(client);
      log.length = 0;
      const items = ['a', 'b', 'c', 'd', 'e', 'f'];
      const rs = await Promise.all(items.map((i) => client.request(`/blocked/cart/${i}`, { method: 'POST' })));
      for (const r of rs) assert.equal(r.status, 200, r.body);
      assert.equal(log.length, items.length);
      const byStart = [...log].sort((x, y) => x.start - y.start);
      for (let i = 1; i < byStart.length; i++) {
        assert.ok(byStart[i].start >= byStart[i - 1].end, `request ${i} ran while request ${i - 1} held the session (${byStart[i].start} < ${byStart[i - 1].end})`);
      }
      const cart = (await client.get('/dump')).json().cart;
      assert.deepEqual([...cart].sort(), items, 'a read-modify-write was lost');
    });

    it('a lock held past its lockSeconds expires and the next request gets it', async () => {
      const client = new Client(shortLock.url);
      const id = await seed(client);
      const hung = new AbortController();
      // This request takes the lock and never answers (until aborted below).
      const hanging = fetch(`${shortLock.url}/blocked/hang`, { headers: { cookie: client.cookieHeader() }, signal: hung.signal }).catch(() => null);
      await until(async () => {
        const t = await handler.lock(id, 1000);
        if (t !== null) await handler.unlock(id, t);
        return t === null;
      }, 5000, 'the hanging request to hold the lock');
      const started = Date.now();
      const r = await client.request('/blocked/cart/late', { method: 'POST' });
      assert.equal(r.status, 200, r.body);
      const waited = Date.now() - started;
      assert.ok(waited < minLockSeconds * 1000 + 3000, `waited ${waited} ms`);
      assert.deepEqual((await client.get('/dump')).json().cart, ['late']);
      hung.abort();
      await hanging;
    });

    it('a waiter past waitSeconds gets ERR_SESSION_LOCKED, answered 423 by Express', async () => {
      const client = new Client(shortWait.url);
      const id = await seed(client);
      const token = await handler.lock(id, 60000);
      assert.ok(token);
      try {
        const started = Date.now();
        const r = await client.request('/blocked/cart/x', { method: 'POST' });
        assert.equal(r.status, 423);
        assert.match(r.body, /is locked by another request/);
        assert.ok(Date.now() - started >= 190, 'the waiter gave up before its wait');
        assert.equal(sessionCookie(r), undefined, 'a refused request sets no cookie');
      } finally {
        await handler.unlock(id, token);
      }
      // Released: the same request goes through, and the refused one changed nothing.
      const r = await client.request('/blocked/cart/y', { method: 'POST' });
      assert.equal(r.status, 200);
      assert.deepEqual((await client.get('/dump')).json().cart, ['y']);
    });

    it('a route that fails and a request the client aborts release the lock at once', async () => {
      const client = new Client(main.url);
      const id = await seed(client);
      const failed = await client.get('/blocked/fail');
      assert.equal(failed.status, 500);
      const t = await handler.lock(id, 1000);
      assert.ok(t, 'a failed request kept its lock');
      await handler.unlock(id, t);

      const ac = new AbortController();
      const hanging = fetch(`${main.url}/blocked/hang`, { headers: { cookie: client.cookieHeader() }, signal: ac.signal }).catch(() => null);
      await until(async () => {
        const x = await handler.lock(id, 1000);
        if (x !== null) await handler.unlock(id, x);
        return x === null;
      }, 5000, 'the hanging request to hold the lock');
      ac.abort();
      await hanging;
      // lockSeconds is 10 here: only the release on close frees it this soon.
      const freed = await until(() => handler.lock(id, 1000), 3000, 'the aborted request to release its lock');
      await handler.unlock(id, freed);
    });
  });
}

suite('array', () => null);
suite('file', () => tmpDir('ostro-blocking-file-'));
suite('sqlite', () => path.join(tmpDir('ostro-blocking-sqlite-'), 's.db'));
let redis;
suite('redis', () => redis.url, {
  setup: async () => {
    redis = await startRedis();
  },
  teardown: () => redis.stop(),
});
let memcached;
suite('memcached', () => memcached.addr, {
  setup: async () => {
    memcached = await startMemcached();
  },
  teardown: () => memcached.stop(),
  // memcached expires in whole seconds.
  minLockSeconds: 1,
});
suite('map', () => new MapDriver());
for (const b of DB_SERVERS) {
  const table = uniqueTable('block');
  suite('database', () => ({ url: b.url, table }), {
    label: b.label,
    setup: () => requireDbServer(b),
    teardown: () => dropDbTable(b, table),
  });
}

describe('middleware({ block }) set-up and plain node:http', () => {
  it('refuses the cookie driver and custom drivers without lock()/unlock() at construction', () => {
    const cookie = new SessionManager({ driver: 'cookie', key: KEY });
    assert.throws(() => cookie.middleware({ block: true }), (err) => {
      assert.equal(err.code, 'ERR_SESSION_INVALID_OPTION');
      assert.match(err.message, /cookie driver keeps the session in the browser/);
      return true;
    });
    class NoLock extends SessionHandlerInterface {
      read() { return ''; }
      write() {}
      destroy() {}
    }
    const custom = new SessionManager({ driver: 'nolock', key: KEY });
    custom.extend('nolock', () => new NoLock());
    assert.throws(() => custom.middleware({ block: true }), /has no lock\(sessionId, ttlMs\) and unlock/);
    // Without block, the same managers mount fine.
    assert.equal(typeof cookie.middleware(), 'function');
    assert.equal(typeof custom.middleware(), 'function');
  });

  it('checks the block options', () => {
    const m = new SessionManager({ driver: 'array', key: KEY });
    for (const bad of ['yes', 1, [], { lockSeconds: 0 }, { waitSeconds: -1 }, { lockSeconds: 601 }, { lockSeconds: NaN }, { lockSecs: 5 }]) {
      assert.throws(() => m.middleware({ block: bad }), { code: 'ERR_SESSION_INVALID_OPTION' }, JSON.stringify(bad));
    }
    assert.equal(typeof m.middleware({ block: false }), 'function');
    assert.equal(typeof m.middleware({ block: { waitSeconds: 0 } }), 'function');
  });

  it('without next, a waiter past its wait is answered 423 by the middleware itself', async () => {
    const m = new SessionManager({ driver: 'array', key: KEY });
    const plain = m.middleware();
    const blocked = m.middleware({ block: { waitSeconds: 0.1 } });
    const server = await listen(http.createServer(async (req, res) => {
      if (!(await (req.url === '/seed' ? plain : blocked)(req, res))) return;
      if (req.url === '/seed') req.session.put('a', 1);
      res.end('ok');
    }));
    try {
      const client = new Client(server.url);
      const id = await seed(client);
      const token = await m.driver().lock(id, 60000);
      const r = await client.get('/x');
      assert.equal(r.status, 423);
      assert.equal(r.body, 'Locked');
      await m.driver().unlock(id, token);
      assert.equal((await client.get('/x')).status, 200);
    } finally {
      await server.close();
    }
  });

  it('a client that aborts during the lock and the load frees the lock at once (its close event came before the load ended)', async () => {
    const driver = new MapDriver();
    let slowReads = false;
    let reading = null;
    const read = driver.read.bind(driver);
    driver.read = async (id) => {
      if (slowReads) {
        reading();
        await new Promise((resolve) => setTimeout(resolve, 300));
      }
      return read(id);
    };
    const m = managerFor('map', driver);
    const express = require('express');
    const app = express();
    app.use(m.middleware({ block: { lockSeconds: 10, waitSeconds: 10 } }));
    let routes = 0;
    app.get('/seed', (req, res) => {
      routes++;
      req.session.put('a', 1);
      res.send('ok');
    });
    const server = await listen(http.createServer(app));
    try {
      const client = new Client(server.url);
      const id = await seed(client);
      slowReads = true;
      const inRead = new Promise((resolve) => { reading = resolve; });
      const ac = new AbortController();
      const aborted = fetch(`${server.url}/seed`, { headers: { cookie: client.cookieHeader() }, signal: ac.signal }).catch(() => null);
      await inRead;
      ac.abort();
      await aborted;
      slowReads = false;
      // lockSeconds is 10: only the release after the load frees it this soon.
      const token = await until(() => driver.lock(id, 1000), 3000, 'the aborted request to release its lock');
      await driver.unlock(id, token);
      assert.equal(routes, 1, 'the aborted request\'s route ran');
    } finally {
      await server.close();
    }
  });

  it('a custom driver whose lock() answers something else is a coded error', async () => {
    const driver = new MapDriver();
    driver.lock = () => 42;
    const m = managerFor('map', driver);
    const express = require('express');
    const app = express();
    app.use(m.middleware({ block: true }));
    app.get('/seed', (req, res) => {
      req.session.put('a', 1);
      res.send('ok');
    });
    app.use((err, req, res, next) => { // eslint-disable-line no-unused-vars
      res.status(500).send(`error:${err.code}`);
    });
    const server = await listen(http.createServer(app));
    try {
      const client = new Client(server.url);
      assert.equal((await client.get('/seed')).status, 200);
      const r = await client.get('/seed');
      assert.equal(r.body, 'error:ERR_SESSION_VALUE');
    } finally {
      await server.close();
    }
  });
});
