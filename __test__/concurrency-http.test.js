'use strict';
// Overlapping requests on one session lose nothing, through real Express and the middleware
// (issue 12), on array, file, sqlite, redis and memcached (servers started here), the native
// database driver on the machine's PostgreSQL and MariaDB servers (a table of its own each,
// dropped after; a server that is not running fails naming it), and a custom JS driver
// implementing writeIfUnchanged(): 200 concurrent puts keep all 200 keys and 200
// concurrent increments give exactly +200, also from two Node processes on the shared drivers;
// a logout racing 50 in-flight writers sticks and no response after the logout's re-cookies the
// old id (at least five such responses checked per trial); a
// flash set while another request ages flash data survives to the next request; a driver that
// keeps conflicting ends in ERR_SESSION_CONFLICT without a hang or a blind write.
// (The Store-level versions are in concurrency.test.js.)
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { SessionHandlerInterface } = require('..');
const { listen, Client, sessionCookie, idOf, parseSetCookie } = require('./support/http');
const { startRedis, startMemcached } = require('./support/servers');
const { tmpDir } = require('./support/tmp');
const { MapDriver, managerFor, appFor, logoutGate, sleep } = require('./support/http-drivers');
const { DB_SERVERS, uniqueTable, requireDbServer, dropDbTable } = require('./support/db-servers');

const isEmpty = (v) => v === '' || v === null || v === undefined;

async function seed(client) {
  const r = await client.get('/seed');
  assert.equal(r.status, 200);
  return idOf(sessionCookie(r));
}

/** 200 puts of distinct keys, then 200 increments, all at once, spread over `bases`. */
async function puts200AndIncrements200(bases) {
  const client = new Client(bases[0]);
  await seed(client);
  const cookie = client.cookieHeader();
  const on = (i) => new Client(bases[i % bases.length]);
  const puts = await Promise.all(Array.from({ length: 200 }, (_, i) => on(i).request(`/put/k${i}`, { method: 'POST', cookie })));
  for (const r of puts) assert.equal(r.status, 200, r.body);
  const incs = await Promise.all(Array.from({ length: 200 }, (_, i) => on(i).request('/inc', { method: 'POST', cookie })));
  for (const r of incs) assert.equal(r.status, 200, r.body);
  const all = (await client.get('/dump')).json();
  for (let i = 0; i < 200; i++) assert.equal(all[`k${i}`], i, `key k${i} was lost`);
  assert.equal(all.n, 200, 'increments were lost');
  assert.equal(all.user, 'alice');
}

function suite(driver, where, { setup, teardown, label = driver } = {}) {
  describe(`${label}: concurrent HTTP requests on one session`, { timeout: 120000 }, () => {
    let manager;
    let server;
    const sent = [];
    const gate = logoutGate();

    before(async () => {
      if (setup) await setup();
      manager = managerFor(driver, where());
      server = await listen(http.createServer(appFor(manager, { sent, gate })));
    });

    after(async () => {
      if (server) await server.close();
      if (manager) await manager.close();
      if (teardown) await teardown();
    });

    it('200 concurrent puts keep all 200 keys; 200 concurrent increments give +200', () => puts200AndIncrements200([server.url]));

    // What is asserted about cookies, and why. A response sets the old id's cookie only when its
    // save wrote the old record, i.e. its compare-and-set landed before the logout's destroy;
    // once the tombstone is there a save is dropped and its line clears the cookie (empty
    // value, Max-Age=0). Such a response's head goes out as soon as its save settles, while the
    // logout's head waits for the destroy, which the driver orders after that write (one record:
    // the file lock, the row, the transaction, the server), and then for the logout's own save
    // of the new id. So every response whose head leaves after the logout's carries no cookie
    // for the old id, or a cleared one, whenever its save started; responses ahead of the
    // logout's may legitimately re-send the old id (their writes were real), and the browser
    // then takes the logout's cookie after them. The order is the server's (`sent`, heads as
    // written), which is what a client on one connection sees. (On the file driver a write's
    // completion comes back from a blocking-pool thread: a thread stalled between releasing the
    // lock and waking the JS thread for longer than the logout's destroy and save take would
    // break the order; that would fail here, not pass silently.)
    // Five `/heldput` requests load the session before the logout is sent and are held until
    // the logout's head went out: each trial checks at least those, whose saves must be dropped.
    it('a logout racing 50 in-flight writers sticks, and no response after the logout\'s re-cookies the old id (20 trials)', async () => {
      const handler = manager.driver();
      const HELD = 5;
      for (let trial = 0; trial < 20; trial++) {
        const client = new Client(server.url);
        const id = await seed(client);
        const cookie = client.cookieHeader();
        sent.length = 0;
        gate.reset();
        const held = Array.from({ length: HELD }, (_, i) => client.request(`/heldput/h${i}`, { method: 'POST', cookie }));
        const writers = Array.from({ length: 50 }, (_, i) => client.request(`/slowput/w${i}?ms=${5 + ((i * 7 + trial) % 40)}`, { method: 'POST', cookie }));
        await gate.arrived(HELD);
        await sleep(5 + (trial % 15));
        const logout = await client.request('/logout', { method: 'POST', cookie });
        assert.equal(logout.status, 200);
        assert.notEqual(idOf(sessionCookie(logout)), id);
        for (const r of await Promise.all(writers)) assert.equal(r.status, 200, r.body);
        for (const r of await Promise.all(held)) {
          assert.equal(r.status, 200, r.body);
          const c = sessionCookie(r);
          assert.ok(c && c.value === '' && c.attrs['max-age'] === '0', `trial ${trial}: a save held past the logout must be dropped and clear the cookie, got ${r.setCookies}`);
        }
        assert.ok(isEmpty(await handler.read(id)), `trial ${trial}: the logged-out session came back`);
        const out = sent.find((s) => s.url === '/logout');
        const later = sent.filter((s) => s !== out && s.at > out.at);
        assert.ok(later.length >= HELD, `trial ${trial}: only ${later.length} responses went out after the logout's`);
        for (const s of later) {
          for (const line of s.setCookie) {
            const c = parseSetCookie(line);
            if (c.name !== 'ostro_session') continue;
            assert.ok(c.value === '' || idOf(c) !== id, `trial ${trial}: ${s.url}, answered after the logout, cookied the old id: ${line}`);
          }
        }
        // A request still carrying the old cookie finds nothing and revives nothing.
        const late = await client.request('/dump', { cookie });
        assert.equal(late.json().user, undefined);
        assert.ok(isEmpty(await handler.read(id)), `trial ${trial}: a late request revived the old id`);
      }
    });

    it('a flash set while another request ages flash data is seen by the next request', async () => {
      const client = new Client(server.url);
      await seed(client);
      const cookie = client.cookieHeader();
      assert.equal((await client.request('/flash/first', { method: 'POST', cookie })).status, 200);
      // Loads `first` as new flash data; its save (after the flash below) ages it.
      const ager = client.request('/slow?ms=150', { cookie });
      await sleep(50);
      assert.equal((await client.request('/flash/second', { method: 'POST', cookie })).status, 200);
      assert.equal((await ager).status, 200);
      assert.deepEqual((await client.request('/flash/second', { cookie })).json(), { value: 'v' }, 'the concurrent flash was lost');
      // Seen once: the request after the next no longer has it.
      assert.deepEqual((await client.request('/flash/second', { cookie })).json(), { value: null });
    });
  });
}

suite('array', () => null);
suite('file', () => tmpDir('ostro-chttp-file-'));
suite('sqlite', () => path.join(tmpDir('ostro-chttp-sqlite-'), 's.db'));
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
});
suite('map', () => new MapDriver());
for (const b of DB_SERVERS) {
  const table = uniqueTable('chttp');
  suite('database', () => ({ url: b.url, table }), {
    label: b.label,
    setup: () => requireDbServer(b),
    teardown: () => dropDbTable(b, table),
  });
}

/** A server process on the shared driver; resolves to its URL and a stop(). */
function worker(driver, where) {
  const arg = typeof where === 'string' ? where : JSON.stringify(where);
  const child = spawn(process.execPath, [path.join(__dirname, 'support', 'http-worker.js'), driver, arg], { stdio: ['pipe', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d) => {
    err += d;
  });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  const url = new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = /^(\d+)\n/.exec(out);
      if (m) resolve(`http://127.0.0.1:${m[1]}`);
    });
    exited.then((code) => reject(new Error(`the ${driver} worker exited (${code}) before listening: ${err}`)));
  });
  return {
    url,
    stop: async () => {
      child.stdin.end();
      const code = await exited;
      assert.equal(code, 0, `the ${driver} worker failed: ${err}`);
    },
  };
}

function twoProcesses(driver, where, { setup, teardown, label = driver } = {}) {
  describe(`${label}: two Node processes serving one session`, { timeout: 120000 }, () => {
    let workers = [];
    before(async () => {
      if (setup) await setup();
      const w = where();
      workers = [worker(driver, w), worker(driver, w)];
    });
    after(async () => {
      for (const w of workers) await w.stop();
      if (teardown) await teardown();
    });

    it('200 concurrent puts and 200 increments, half through each process, lose nothing', async () => {
      const bases = await Promise.all(workers.map((w) => w.url));
      await puts200AndIncrements200(bases);
    });
  });
}

twoProcesses('file', () => tmpDir('ostro-chttp-procs-file-'));
twoProcesses('sqlite', () => path.join(tmpDir('ostro-chttp-procs-sqlite-'), 's.db'));
let redis2;
twoProcesses('redis', () => redis2.url, {
  setup: async () => {
    redis2 = await startRedis();
  },
  teardown: () => redis2.stop(),
});
let memcached2;
twoProcesses('memcached', () => memcached2.addr, {
  setup: async () => {
    memcached2 = await startMemcached();
  },
  teardown: () => memcached2.stop(),
});
for (const b of DB_SERVERS) {
  const table = uniqueTable('chttpp');
  twoProcesses('database', () => ({ url: b.url, table }), {
    label: b.label,
    setup: () => requireDbServer(b),
    teardown: () => dropDbTable(b, table),
  });
}

/** A driver whose record changes on every read: no save can ever settle. */
class ChurningDriver extends SessionHandlerInterface {
  constructor() {
    super();
    this.n = 0;
    this.writes = 0;
  }

  read() {
    return JSON.stringify({ _token: 't', n: this.n++ });
  }

  write() {
    this.writes++;
  }

  destroy() {}

  writeIfUnchanged() {
    return false;
  }
}

describe('a driver that keeps conflicting, through Express', () => {
  it('ends the request in ERR_SESSION_CONFLICT after the retry bound, without a hang or a blind write', async () => {
    const driver = new ChurningDriver();
    const manager = managerFor('map', driver);
    const express = require('express');
    const app = express();
    app.use(manager.middleware());
    app.post('/inc', (req, res) => {
      req.session.increment('n');
      res.send('ok');
    });
    app.use((err, req, res, next) => { // eslint-disable-line no-unused-vars
      res.status(500).send(`error:${err.code}`);
    });
    const server = await listen(http.createServer(app));
    try {
      const client = new Client(server.url);
      // The cookie of a session the driver "knows" (every read finds a record).
      const started = Date.now();
      const r = await client.request('/inc', { method: 'POST', cookie: `ostro_session=${encodeURIComponent(`s:${'a'.repeat(40)}.x`)}` });
      // An unsigned id gives a fresh session: its first save compares against "no record".
      assert.equal(r.body, 'error:ERR_SESSION_CONFLICT');
      assert.equal(r.status, 500);
      assert.equal(sessionCookie(r), undefined, 'a failed save sets no cookie');
      assert.ok(Date.now() - started < 5000, 'the save did not give up in time');
      assert.equal(driver.writes, 0, 'a compare-and-set driver must never get a blind write');
    } finally {
      await server.close();
    }
  });
});
