'use strict';
// The tombstone time (`tombstone_seconds` in the session config, `tombstoneSeconds` as a driver
// option): the tombstone a logout leaves refuses late saves for that time instead of the
// lifetime, and is gone after it. On every built-in driver that keeps tombstones: array, file,
// sqlite and the native database driver on PostgreSQL and MariaDB on the test clock (exactly at
// the tombstone time, then one second past it, where gc collects it), redis and memcached on
// servers of their own (their clock: a 2 s tombstone, waited for). Bad values are refused with
// ERR_SESSION_INVALID_OPTION, by the config, by each driver and by the core itself.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { KEY, MIN, PG, MY, testClock, drivers, managerOf, request, sleep } = require('./support/lifecycle');
const { command, startRedis } = require('./support/servers');
const { tmpDir } = require('./support/tmp');
const { HttpSession } = require('../lib/http-session');
const native = require('../lib/native');
const {
  SessionManager, ArraySessionHandler, FileSessionHandler, SqliteSessionHandler, DatabaseSessionHandler,
  RedisSessionHandler, MemcachedSessionHandler,
} = require('..');
const { DatabaseSessionHandler: QueryBuilderHandler } = require('../lib/ostro/databaseHandler');

const LIFETIME = 10; // minutes
const TOMB = 60; // seconds, on the test clock
const SERVER_TOMB = 2; // seconds, on a server's own clock

/** The Cookie header of a client holding session `id`. */
const cookieOf = (m, id) => `${m.config.cookie}=${encodeURIComponent(m.signedCookieValue(id))}`;

/** What a driver's storage holds for `key` (an id or a server key): 'tombstone', 'record' or 'absent'. */
function sqlRow(run) {
  const out = run().trim();
  if (out === '') return 'absent';
  return out === '0' ? 'tombstone' : 'record';
}

function memcachedGet(addr, key) {
  const [host, port] = addr.split(':');
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port: Number(port) });
    let buf = '';
    s.setTimeout(3000, () => { s.destroy(); reject(new Error('memcached did not answer')); });
    s.once('error', reject);
    s.once('connect', () => s.write(`mg ${key} v t\r\n`));
    s.on('data', (d) => {
      buf += d.toString('latin1');
      if (buf.startsWith('EN\r\n')) { s.destroy(); resolve(null); return; }
      const m = /^VA (\d+) t(-?\d+)\r\n/.exec(buf);
      if (m && buf.length >= m[0].length + Number(m[1]) + 2) {
        s.destroy();
        resolve({ value: buf.slice(m[0].length, m[0].length + Number(m[1])), ttl: Number(m[2]) });
      }
    });
  });
}

/**
 * A handler of driver `d` keeping tombstones `tomb` seconds under a 10 minute lifetime, and a
 * look into its storage: `stored(id)` is 'tombstone', 'record' or 'absent' (null for array,
 * which has no storage to look into), `ttl(id)` the server's remaining TTL in seconds.
 */
function built(d, now, tomb) {
  const o = { tombstoneSeconds: tomb };
  switch (d.name) {
    case 'array':
      return { handler: d.make(now, LIFETIME, o), stored: null };
    case 'file': {
      const dir = path.join(tmpDir('ostro-tombttl-file-'), 's');
      return {
        handler: new FileSessionHandler(dir, LIFETIME, { now, ...o }),
        stored: async (id) => {
          try {
            return fs.statSync(path.join(dir, id)).size === 0 ? 'tombstone' : 'record';
          } catch (e) {
            if (e.code === 'ENOENT') return 'absent';
            throw e;
          }
        },
      };
    }
    case 'sqlite': {
      const db = path.join(tmpDir('ostro-tombttl-sqlite-'), 's.db');
      return {
        handler: new SqliteSessionHandler(db, { minutes: LIFETIME, now, ...o }),
        stored: async (id) => sqlRow(() => execFileSync('sqlite3', [db, `SELECT length(payload) FROM sessions WHERE sid = '${id}'`], { encoding: 'utf8' })),
      };
    }
    case 'database (PostgreSQL)': {
      const table = `ostro_tt${process.pid}_pg`;
      return {
        handler: d.make(now, LIFETIME, { ...o, table }),
        stored: async (id) => sqlRow(() => execFileSync('psql', [PG, '-X', '-q', '-t', '-A', '-c', `SELECT length(payload) FROM "${table}" WHERE sid = '${id}'`], { encoding: 'utf8' })),
      };
    }
    case 'database (MariaDB)': {
      const table = `ostro_tt${process.pid}_my`;
      const u = new URL(MY);
      return {
        handler: d.make(now, LIFETIME, { ...o, table }),
        stored: async (id) => sqlRow(() => execFileSync('mysql', ['-h', u.hostname, '-P', u.port, '-u', u.username, '-N', '-B', u.pathname.slice(1), '-e', `SELECT length(payload) FROM \`${table}\` WHERE sid = '${id}'`], { encoding: 'utf8' })),
      };
    }
    case 'redis': {
      const prefix = `tt${process.pid}:`;
      const port = d.server().port;
      return {
        handler: d.make(now, LIFETIME, { ...o, prefix }),
        stored: async (id) => {
          const v = await command(port, ['GET', prefix + id]);
          return v === null ? 'absent' : (v === '!' ? 'tombstone' : 'record');
        },
        ttl: async (id) => command(port, ['TTL', prefix + id]),
      };
    }
    case 'memcached': {
      const prefix = `tt${process.pid}:`;
      const addr = d.server().addr;
      return {
        handler: d.make(now, LIFETIME, { ...o, prefix }),
        stored: async (id) => {
          const v = await memcachedGet(addr, prefix + id);
          return v === null ? 'absent' : (v.value === '!' ? 'tombstone' : 'record');
        },
        ttl: async (id) => (await memcachedGet(addr, prefix + id)).ttl,
      };
    }
    default:
      return null;
  }
}

/** A request that loaded session `id` before the logout and saves after it, through the HTTP commit. */
async function httpRequest(m, id) {
  const req = { method: 'POST', url: '/cart', headers: { cookie: cookieOf(m, id) }, socket: {} };
  const hs = new HttpSession(m, req);
  await hs.open();
  return hs;
}

/** The `Set-Cookie` line clears the session cookie: empty value, Max-Age=0. */
function assertCleared(m, line) {
  assert.ok(typeof line === 'string', `a Set-Cookie line, got ${line}`);
  assert.ok(line.startsWith(`${m.config.cookie}=;`), `no session id is sent: ${line}`);
  assert.match(line, /Max-Age=0/i, 'the cookie is cleared');
}

/**
 * A logged-in session and requests that loaded it before the logout: two that change it (a
 * Store save and an HTTP commit) and one that does not (a touch), twice (one set saves inside
 * the tombstone's window, one after it); then the logout.
 */
async function logout(m) {
  const { id } = await request(m, null, (s) => s.put('user', 'ada'));
  const late = async () => ({
    write: (await m.loadStore(cookieOf(m, id))).store,
    touch: (await m.loadStore(cookieOf(m, id))).store,
    http: await httpRequest(m, id),
  });
  const inside = await late();
  const outside = await late();
  for (const r of [inside, outside]) {
    assert.equal(r.write.get('user'), 'ada');
    r.write.put('cart', ['apple']);
    r.http.store.put('cart', ['pear']);
  }
  const out = await request(m, id, (s) => { s.invalidate(); s.put('flash', 'bye'); });
  assert.equal(out.outcome, 'written');
  assert.notEqual(out.id, id);
  return { id, newId: out.id, inside, outside };
}

/** Every late save is dropped: 'dropped', save_dropped 'gone', and the HTTP response clears the cookie. */
async function allDropped(m, late, dropped) {
  const before = dropped.length;
  assert.equal(await late.write.save(), 'dropped', 'a late write');
  assert.equal(await late.touch.save(), 'dropped', 'a late touch');
  assertCleared(m, await late.http.commit(200));
  assert.deepEqual(dropped.slice(before), ['gone', 'gone', 'gone']);
}

/** After the window: the old id loads as no session (a fresh id), the logout's new session lives on. */
async function oldIdIsNoSession(m, id, newId) {
  const again = await request(m, id, (s) => assert.equal(s.get('user'), null));
  assert.equal(again.existed, false, 'the old id loads as no session');
  assert.notEqual(again.id, id, 'a fresh id, never the logged-out one');
  const kept = await request(m, newId, (s) => assert.equal(s.get('flash'), 'bye'));
  assert.equal(kept.existed, true, 'the new id is unaffected');
}

for (const d of drivers()) {
  if (d.name.startsWith('js')) continue; // custom JS drivers keep their own tombstones, if any
  describe(`tombstoneSeconds on ${d.name}`, () => {
    before(async () => { if (d.setup) await d.setup(); });
    after(async () => { if (d.teardown) await d.teardown(); });

    if (!d.serverTtl) {
      it(`a logout's tombstone refuses late saves for ${TOMB} s, then gc removes it`, async () => {
        const now = testClock();
        const { handler, stored } = built(d, now, TOMB);
        const m = managerOf(handler, now, { lifetime: LIFETIME, tombstone_seconds: TOMB });
        const dropped = [];
        m.on('save_dropped', (msg) => dropped.push(msg.reason));
        now.advance(MIN);
        const { id, newId, inside, outside } = await logout(m);
        if (stored) assert.equal(await stored(id), 'tombstone', 'the logout left a tombstone');

        // Exactly the tombstone time after the logout: still there, every late save dropped.
        now.advance(TOMB * 1000);
        await allDropped(m, inside, dropped);
        assert.equal(await m.collectGarbage(), 0, 'kept exactly at its time (and the new session is fresh)');
        if (stored) assert.equal(await stored(id), 'tombstone', 'kept exactly at its time');

        // One second more: gc removes the tombstone, and only it, long before the lifetime.
        now.advance(1000);
        assert.equal(await m.collectGarbage(), 1, 'the tombstone is collected');
        if (stored) assert.equal(await stored(id), 'absent', 'removed from storage');
        if (stored) assert.equal(await stored(newId), 'record');
        // A late save still cannot bring the session back: there is no record to match.
        await allDropped(m, outside, dropped);
        await oldIdIsNoSession(m, id, newId);
        await m.close();
      });
    } else {
      it(`a logout's tombstone has a ${SERVER_TOMB} s TTL: late saves are dropped inside it, the key is gone after it`, async () => {
        const now = testClock();
        const { handler, stored, ttl } = built(d, now, SERVER_TOMB);
        const m = managerOf(handler, now, { lifetime: LIFETIME, tombstone_seconds: SERVER_TOMB });
        const dropped = [];
        m.on('save_dropped', (msg) => dropped.push(msg.reason));
        const { id, newId, inside, outside } = await logout(m);
        const t0 = Date.now();
        assert.equal(await stored(id), 'tombstone', 'the logout left a tombstone');
        const left = await ttl(id);
        assert.ok(left >= 1 && left <= SERVER_TOMB, `the tombstone's TTL is ${SERVER_TOMB} s, not the lifetime's: ${left}`);
        await allDropped(m, inside, dropped);
        // The late touch refreshed nothing (redis) or was set back (memcached): still short.
        assert.ok((await ttl(id)) <= SERVER_TOMB, 'the late touch did not extend the tombstone');
        while ((await stored(id)) !== 'absent') {
          assert.ok(Date.now() - t0 < SERVER_TOMB * 1000 + 1500, `the ${SERVER_TOMB} s tombstone is still there after ${Date.now() - t0} ms`);
          await sleep(50);
        }
        assert.ok(Date.now() - t0 >= 900, `gone after ${Date.now() - t0} ms`);
        assert.equal(await stored(newId), 'record', 'the new session is untouched');
        await allDropped(m, outside, dropped);
        await oldIdIsNoSession(m, id, newId);
        await m.close();
      });
    }
  });
}

describe('tombstone_seconds reaches the built-in drivers from the config', () => {
  it('file: the tombstone is stamped lifetime - tombstone_seconds early', async () => {
    const dir = path.join(tmpDir('ostro-tombttl-cfg-'), 's');
    const m = new SessionManager({ key: KEY, driver: 'file', files: dir, lifetime: LIFETIME, tombstone_seconds: TOMB, lottery: [0, 100] });
    const { id } = await request(m, null, (s) => s.put('user', 'ada'));
    await request(m, id, (s) => s.invalidate());
    const st = fs.statSync(path.join(dir, id));
    assert.equal(st.size, 0, 'a tombstone');
    const early = Date.now() - st.mtimeMs;
    assert.ok(early >= (LIFETIME * 60 - TOMB) * 1000 - 1000 && early < (LIFETIME * 60 - TOMB) * 1000 + 5000, `stamped ${early} ms early`);
    await m.close();
  });

  it('redis: the tombstone gets the shorter TTL', async () => {
    const server = await startRedis();
    try {
      const m = new SessionManager({ key: KEY, driver: 'redis', connection: server.url, prefix: 'cfg:', lifetime: LIFETIME, tombstone_seconds: '30', lottery: [0, 100] });
      assert.equal(m.config.tombstone_seconds, 30, 'an env string is read as a number');
      const { id } = await request(m, null, (s) => s.put('user', 'ada'));
      assert.equal(await command(server.port, ['TTL', `cfg:${id}`]), LIFETIME * 60);
      await request(m, id, (s) => s.invalidate());
      assert.equal(await command(server.port, ['GET', `cfg:${id}`]), '!');
      const left = await command(server.port, ['TTL', `cfg:${id}`]);
      assert.ok(left > 0 && left <= 30, `TTL ${left}`);
      await m.close();
    } finally {
      await server.stop();
    }
  });

  it('the OstroJS query-builder handler stamps its tombstone row early too', async () => {
    const updates = [];
    const q = { where: () => q, update: (row) => { updates.push(row); return Promise.resolve(1); } };
    const T = 1_700_000_000_000;
    const h = new QueryBuilderHandler({ table: () => q }, { minutes: LIFETIME, tombstoneSeconds: TOMB, now: () => T });
    await h.destroy('x'.repeat(40));
    assert.equal(updates[0].payload, '');
    assert.equal(updates[0].last_activity, T / 1000 - (LIFETIME * 60 - TOMB));
    const plain = new QueryBuilderHandler({ table: () => q }, { minutes: LIFETIME, now: () => T });
    await plain.destroy('x'.repeat(40));
    assert.equal(updates[1].last_activity, T / 1000, 'by default: for the lifetime');
  });
});

describe('bad tombstone times are refused with ERR_SESSION_INVALID_OPTION', () => {
  it('the config key: default null, a whole number of seconds from 1 to the lifetime', () => {
    assert.equal(new SessionManager({ key: KEY }).config.tombstone_seconds, null, 'default: the lifetime');
    assert.equal(new SessionManager({ key: KEY, tombstone_seconds: null }).config.tombstone_seconds, null);
    assert.equal(new SessionManager({ key: KEY, lifetime: LIFETIME, tombstone_seconds: 600 }).config.tombstone_seconds, 600, 'the lifetime itself');
    assert.equal(new SessionManager({ key: KEY, lifetime: 0.5, tombstone_seconds: 30 }).config.tombstone_seconds, 30);
    const bad = (config, shown) => assert.throws(() => new SessionManager({ key: KEY, lifetime: LIFETIME, ...config }), (e) => {
      assert.equal(e.code, 'ERR_SESSION_INVALID_OPTION');
      assert.match(e.message, /"tombstone_seconds"/);
      assert.match(e.message, /from 1 to the lifetime \(600 s\)|\(30 s\)/);
      assert.ok(e.message.endsWith(`got ${shown}`), e.message);
      return true;
    }, JSON.stringify(config));
    bad({ tombstone_seconds: 0 }, '0');
    bad({ tombstone_seconds: -5 }, '-5');
    bad({ tombstone_seconds: 1.5 }, '1.5');
    bad({ tombstone_seconds: '1.5' }, '"1.5"');
    bad({ tombstone_seconds: 'soon' }, '"soon"');
    bad({ tombstone_seconds: true }, 'true');
    bad({ tombstone_seconds: 601 }, '601');
    bad({ lifetime: 0.5, tombstone_seconds: 31 }, '31');
  });

  it('every driver option, and the core behind it', () => {
    const dir = tmpDir('ostro-tombttl-bad-');
    const makers = {
      array: (t) => new ArraySessionHandler(LIFETIME, { tombstoneSeconds: t }),
      file: (t) => new FileSessionHandler(path.join(dir, 's'), LIFETIME, { tombstoneSeconds: t }),
      sqlite: (t) => new SqliteSessionHandler(':memory:', { minutes: LIFETIME, tombstoneSeconds: t }),
      database: (t) => new DatabaseSessionHandler('postgres://u@127.0.0.1:1/db', { minutes: LIFETIME, tombstoneSeconds: t }),
      redis: (t) => new RedisSessionHandler('redis://127.0.0.1:1', { minutes: LIFETIME, tombstoneSeconds: t }),
      memcached: (t) => new MemcachedSessionHandler('127.0.0.1:1', { minutes: LIFETIME, tombstoneSeconds: t }),
      'query builder': (t) => new QueryBuilderHandler({ table() {} }, { minutes: LIFETIME, tombstoneSeconds: t }),
    };
    for (const [name, make] of Object.entries(makers)) {
      make(1);
      make(600);
      make(undefined);
      for (const [t, shown] of [[0, '0'], [1.5, '1.5'], ['60', '"60"'], [601, '601'], [-1, '-1']]) {
        assert.throws(() => make(t), (e) => {
          assert.equal(e.code, 'ERR_SESSION_INVALID_OPTION', `${name} ${shown}`);
          assert.match(e.message, /tombstoneSeconds must be a whole number of seconds from 1 to the lifetime \(600 s\)/, name);
          assert.ok(e.message.endsWith(`got ${shown}`), `${name}: ${e.message}`);
          return true;
        }, `${name} ${shown}`);
      }
    }
    // The core's own check, for callers that skip lib/ (the binding's factories).
    assert.throws(() => native.createArrayHandler(LIFETIME, false, 601), (e) => {
      assert.equal(e.code, 'ERR_SESSION_INVALID_OPTION');
      assert.match(e.message, /tombstoneSeconds must be a whole number of seconds from 1 to the lifetime \(600 s\), got 601/);
      return true;
    });
    assert.throws(() => native.createRedisHandler('redis://127.0.0.1:1', { minutes: LIFETIME, tombstoneSeconds: 0.5 }), (e) => e.code === 'ERR_SESSION_INVALID_OPTION' && /tombstoneSeconds/.test(e.message));
  });
});
