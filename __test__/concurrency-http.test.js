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
// (The scenarios are in support/http-concurrency.js; concurrency-http-ostro.test.js runs them
// on the OstroJS query-builder database driver. The Store-level versions are in
// concurrency.test.js.)
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { SessionHandlerInterface } = require('..');
const { listen, Client, sessionCookie } = require('./support/http');
const { startRedis, startMemcached } = require('./support/servers');
const { tmpDir } = require('./support/tmp');
const { MapDriver, managerFor } = require('./support/http-drivers');
const { concurrencySuite, puts200AndIncrements200 } = require('./support/http-concurrency');
const { DB_SERVERS, uniqueTable, requireDbServer, dropDbTable } = require('./support/db-servers');

/** The scenarios of support/http-concurrency.js on `driver` at `where()` (see managerFor). */
function suite(driver, where, { setup, teardown, label = driver } = {}) {
  concurrencySuite(label, () => managerFor(driver, where()), { setup, teardown });
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
