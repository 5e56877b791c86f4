'use strict';
// Overlapping requests on one session lose nothing (issue 12), at the Store level, on every
// driver that compares and sets: array, file, sqlite, redis and memcached (real servers started
// here), and a custom JS driver implementing writeIfUnchanged(). File, sqlite and redis are also
// shared by two Node processes. (The HTTP-level version needs the middleware's 'dropped' rule.)
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { spawn } = require('node:child_process');
const {
  Store, ArraySessionHandler, FileSessionHandler, SqliteSessionHandler, RedisSessionHandler,
  MemcachedSessionHandler, SessionHandlerInterface,
} = require('..');
const { startRedis, startMemcached } = require('./support/servers');
const { tmpDir } = require('./support/tmp');

const NAME = 'ostro_session';
const isEmpty = (v) => v === '' || v === null || v === undefined;
const hop = () => new Promise((resolve) => setImmediate(resolve));

const TOMBSTONE = Symbol('tombstone');

/**
 * A custom driver over a Map with compare-and-set, answering after a hop (as a network store
 * would) so that concurrent saves interleave. destroy() keeps a tombstone that reads as no
 * record and never matches.
 */
class MapCasHandler extends SessionHandlerInterface {
  constructor() {
    super();
    this.records = new Map();
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
}

/** A driver whose record changes on every read: no save can ever settle. */
class ChurningHandler extends SessionHandlerInterface {
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

async function seeded(h) {
  const s = new Store(NAME, h);
  await s.start();
  s.put('n', 0);
  s.put('user', 'alice');
  assert.equal(await s.save(), 'written');
  return s.getId();
}

/** 200 Stores load one session, then each increments `n` and puts its own key, all at once. */
async function twoHundredConcurrentSaves(h) {
  const id = await seeded(h);
  const stores = Array.from({ length: 200 }, () => new Store(NAME, h, id));
  await Promise.all(stores.map((s) => s.start()));
  const outcomes = await Promise.all(stores.map((s, i) => {
    s.increment('n');
    s.put(`k${i}`, i);
    return s.save();
  }));
  assert.deepEqual(new Set(outcomes), new Set(['written']));
  const back = new Store(NAME, h, id);
  await back.start();
  assert.equal(back.get('n'), 200, 'concurrent increments were lost');
  for (let i = 0; i < 200; i++) assert.equal(back.get(`k${i}`), i, `key k${i} was lost`);
  assert.equal(back.get('user'), 'alice');
}

/** A logout racing 50 in-flight writers, over 20 trials: the old id never reads back. */
async function logoutRacingWriters(h) {
  for (let trial = 0; trial < 20; trial++) {
    const id = await seeded(h);
    const writers = Array.from({ length: 50 }, () => new Store(NAME, h, id));
    await Promise.all(writers.map((s) => s.start()));
    const logout = new Store(NAME, h, id);
    await logout.start();
    const at = trial % 50 === 0 ? 25 : (trial * 7) % 50;
    const running = [];
    writers.forEach((s, i) => {
      if (i === at) running.push(logout.invalidate().then(() => logout.save()));
      s.put(`w${i}`, i);
      running.push(s.save());
    });
    const outcomes = await Promise.all(running);
    for (const o of outcomes) assert.ok(o === 'written' || o === 'dropped', `unexpected outcome ${o}`);
    assert.ok(isEmpty(await h.read(id)), `trial ${trial}: the logged-out session came back`);
    // A request still carrying the old cookie, unchanged: its save never revives the id.
    const late = new Store(NAME, h, id);
    await late.start();
    assert.equal(late.get('user'), null);
    assert.equal(await late.save(), 'dropped', 'a save on a logged-out id must be dropped');
    assert.ok(isEmpty(await h.read(id)), `trial ${trial}: a late save revived the old id`);
    assert.notEqual(logout.getId(), id);
  }
}

function suite(name, make, { setup, teardown } = {}) {
  describe(`${name}: concurrent requests on one session`, { timeout: 120000 }, () => {
    let h;
    before(async () => {
      if (setup) await setup();
      h = make();
    });
    after(async () => {
      if (h && typeof h.close === 'function') await h.close();
      if (teardown) await teardown();
    });

    it('200 concurrent saves keep all 200 keys and exactly +200', () => twoHundredConcurrentSaves(h));

    it('a logout racing 50 in-flight writers sticks (20 trials)', () => logoutRacingWriters(h));
  });
}

suite('array', () => new ArraySessionHandler(120));
suite('file', () => new FileSessionHandler(tmpDir('ostro-concurrency-file-'), 120));
suite('sqlite', () => new SqliteSessionHandler(path.join(tmpDir('ostro-concurrency-sqlite-'), 's.db')));
let redis;
suite('redis', () => new RedisSessionHandler(redis.url), {
  setup: async () => {
    redis = await startRedis();
  },
  teardown: () => redis.stop(),
});
let memcached;
suite('memcached', () => new MemcachedSessionHandler(memcached.addr), {
  setup: async () => {
    memcached = await startMemcached();
  },
  teardown: () => memcached.stop(),
});
suite('a JS Map driver with writeIfUnchanged()', () => new MapCasHandler());

describe('a driver whose record never settles', () => {
  it('ends the save in ERR_SESSION_CONFLICT after the bound, writing nothing', async () => {
    const h = new ChurningHandler();
    const s = new Store(NAME, h);
    await s.start();
    s.increment('n');
    await assert.rejects(s.save(), (err) => {
      assert.equal(err.code, 'ERR_SESSION_CONFLICT');
      assert.match(err.message, /kept changing under this save \(\d+ attempts\)/);
      return true;
    });
    assert.equal(h.writes, 0, 'a compare-and-set driver must never get a blind write');
  });

  it('a refusal that is not a boolean is a coded error', async () => {
    const h = new MapCasHandler();
    h.writeIfUnchanged = () => 'yes';
    const s = new Store(NAME, h);
    await s.start();
    s.put('a', 1);
    await assert.rejects(s.save(), { code: 'ERR_SESSION_VALUE' });
  });
});

/** Runs `count` concurrent requests on `id` in a child process; resolves when it is ready. */
function writer(driver, where, id, prefix, count) {
  const child = spawn(process.execPath, [path.join(__dirname, 'support', 'concurrency-writer.js'), driver, where, id, prefix, String(count)], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => {
    out += d;
  });
  child.stderr.on('data', (d) => {
    err += d;
  });
  const exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  const ready = new Promise((resolve, reject) => {
    const check = () => {
      if (out.includes('ready\n')) resolve();
    };
    child.stdout.on('data', check);
    exited.then((code) => reject(new Error(`writer ${prefix} exited (${code}) before ready: ${err}`)));
  });
  const done = exited.then((code) => {
    assert.equal(code, 0, `writer ${prefix} failed: ${err}`);
    return JSON.parse(out.split('\n')[1]);
  });
  return { child, ready, done };
}

function twoProcesses(driver, make, where, { setup, teardown } = {}) {
  describe(`${driver}: two Node processes on one session`, { timeout: 120000 }, () => {
    before(async () => {
      if (setup) await setup();
    });
    after(async () => {
      if (teardown) await teardown();
    });

    it('100 concurrent saves in each keep all 200 keys and exactly +200', async () => {
      const h = make();
      try {
        const id = await seeded(h);
        const a = writer(driver, where(), id, 'a', 100);
        const b = writer(driver, where(), id, 'b', 100);
        await Promise.all([a.ready, b.ready]);
        a.child.stdin.write('go\n');
        b.child.stdin.write('go\n');
        const [oa, ob] = await Promise.all([a.done, b.done]);
        assert.deepEqual(new Set([...oa, ...ob]), new Set(['written']));
        const back = new Store(NAME, h, id);
        await back.start();
        assert.equal(back.get('n'), 200, 'increments were lost across processes');
        for (let i = 0; i < 100; i++) {
          assert.equal(back.get(`a${i}`), i, `key a${i} was lost`);
          assert.equal(back.get(`b${i}`), i, `key b${i} was lost`);
        }
      } finally {
        await h.close();
      }
    });
  });
}

const sharedDir = tmpDir('ostro-concurrency-procs-');
twoProcesses('file', () => new FileSessionHandler(path.join(sharedDir, 'files'), 120), () => path.join(sharedDir, 'files'));
twoProcesses('sqlite', () => new SqliteSessionHandler(path.join(sharedDir, 's.db')), () => path.join(sharedDir, 's.db'));
let redis2;
twoProcesses('redis', () => new RedisSessionHandler(redis2.url), () => redis2.url, {
  setup: async () => {
    redis2 = await startRedis();
  },
  teardown: () => redis2.stop(),
});
