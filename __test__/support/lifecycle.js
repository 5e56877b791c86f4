'use strict';
// Shared by __test__/lifecycle-*.test.js: every driver that stores sessions, each built with the
// test clock where the driver takes one, and one request of a client as the manager runs it
// (signed cookie in, Store loaded, work, save).
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const net = require('node:net');
const { execFileSync } = require('node:child_process');
const {
  SessionManager, ArraySessionHandler, FileSessionHandler, SqliteSessionHandler, DatabaseSessionHandler,
  RedisSessionHandler, MemcachedSessionHandler,
} = require('../..');
const { MemorySessionHandler } = require('../../examples/memory-session-handler');
const { startRedis, startMemcached } = require('./servers');

const KEY = 'base64:bGlmZWN5Y2xlLXRlc3Qta2V5LTAxMjM0NTY3ODlhYmNkZWY=';
const T0 = 1_700_000_000_000;
const MIN = 60_000;

/** A clock the tests move by hand. */
function testClock(start = T0) {
  let t = start;
  const now = () => t;
  now.advance = (ms) => { t += ms; };
  now.set = (ms) => { t = ms; };
  return now;
}

/** The examples' Map driver with compare-and-set, so the renewal's claim compares. */
class CasMemoryHandler extends MemorySessionHandler {
  writeIfUnchanged(id, data, previous) {
    const current = this.read(id);
    if (current !== previous) return false;
    this.write(id, data);
    return true;
  }
}

const PG = process.env.OSTRO_TEST_POSTGRES_URL || 'postgres://postgres@127.0.0.1:5432/test';
const MY = process.env.OSTRO_TEST_MYSQL_URL || 'mysql://root@127.0.0.1:3306/test';
let seq = 0;
const table = () => `ostro_lc${process.pid}_${seq++}`;

function reachable(url, name) {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: u.hostname, port: Number(u.port), timeout: 2000 });
    s.once('connect', () => { s.destroy(); resolve(); });
    const fail = (e) => { s.destroy(); reject(new Error(`the ${name} server at ${u.host} is not reachable (${e ? e.message : 'timeout'}): these tests need it`)); };
    s.once('error', fail);
    s.once('timeout', () => fail());
  });
}

function dropPg(t) {
  execFileSync('psql', [PG, '-X', '-q', '-c', `DROP TABLE IF EXISTS "${t}"`]);
}
function dropMy(t) {
  const u = new URL(MY);
  execFileSync('mysql', ['-h', u.hostname, '-P', u.port, '-u', u.username, u.pathname.slice(1), '-e', `DROP TABLE IF EXISTS \`${t}\``]);
}

/**
 * The drivers, each `{ name, serverTtl, setup(), make(now, minutes, options), teardown() }`.
 * `serverTtl`: the server expires records on its own clock (redis, memcached), so idle expiry is
 * waited for. `options`: more handler options for the built-in drivers (`tombstoneSeconds`, a
 * `prefix` or `table` of the test's choosing); the JS drivers take none.
 */
function drivers() {
  const dirs = [];
  const tmp = () => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'ostro-lc-'));
    dirs.push(d);
    return d;
  };
  let redis = null;
  let memcached = null;
  const pgTables = [];
  const myTables = [];
  return [
    { name: 'array', make: (now, minutes, o) => new ArraySessionHandler(minutes, { now, ...o }) },
    { name: 'file', make: (now, minutes, o) => new FileSessionHandler(path.join(tmp(), 's'), minutes, { now, ...o }), teardown: () => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })) },
    { name: 'sqlite', make: (now, minutes, o) => new SqliteSessionHandler(path.join(tmp(), 's.db'), { minutes, now, ...o }), teardown: () => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })) },
    { name: 'js (examples/memory-session-handler + writeIfUnchanged)', make: (now, minutes) => new CasMemoryHandler({ minutes, now }) },
    { name: 'js without writeIfUnchanged', make: (now, minutes) => new MemorySessionHandler({ minutes, now }) },
    {
      name: 'database (PostgreSQL)',
      setup: () => reachable(PG, 'PostgreSQL'),
      make: (now, minutes, o = {}) => {
        const t = o.table || table();
        pgTables.push(t);
        return new DatabaseSessionHandler(PG, { minutes, now, ...o, table: t });
      },
      teardown: () => pgTables.forEach(dropPg),
    },
    {
      name: 'database (MariaDB)',
      setup: () => reachable(MY, 'MariaDB'),
      make: (now, minutes, o = {}) => {
        const t = o.table || table();
        myTables.push(t);
        return new DatabaseSessionHandler(MY, { minutes, now, ...o, table: t });
      },
      teardown: () => myTables.forEach(dropMy),
    },
    {
      name: 'redis',
      serverTtl: true,
      setup: async () => { redis = await startRedis(); },
      make: (now, minutes, o) => new RedisSessionHandler(redis.url, { minutes, prefix: `lc${seq++}:`, ...o }),
      server: () => redis,
      teardown: () => redis && redis.stop(),
    },
    {
      name: 'memcached',
      serverTtl: true,
      setup: async () => { memcached = await startMemcached(); },
      make: (now, minutes, o) => new MemcachedSessionHandler(memcached.addr, { minutes, prefix: `lc${seq++}:`, ...o }),
      server: () => memcached,
      teardown: () => memcached && memcached.stop(),
    },
  ];
}

/** A manager over `handler` with the lifecycle keys of `config`, on the test clock `now`. */
function managerOf(handler, now, config = {}) {
  const m = new SessionManager({ driver: 'lc', key: KEY, lottery: [0, 100], ...config }, { now });
  m.extend('lc', () => handler);
  return m;
}

/**
 * One request of a client holding session `id` (null: no cookie): loads it as the middleware
 * does, runs `work(store)`, saves. Resolves to `{ store, existed, id }` (`id`: what the client
 * holds afterwards).
 */
async function request(manager, id, work) {
  const header = id ? `${manager.config.cookie}=${encodeURIComponent(manager.signedCookieValue(id))}` : undefined;
  const { store, existed } = await manager.loadStore(header);
  if (work) await work(store);
  const outcome = await store.save();
  return { store, existed, id: outcome === 'dropped' ? null : store.getId(), outcome };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

module.exports = { KEY, T0, MIN, PG, MY, testClock, drivers, managerOf, request, sleep, CasMemoryHandler };
