'use strict';
// Case "contention" (issue 12), first half: what compare-and-set costs when nothing conflicts.
// Per driver, the same ~1 KB payload rewritten over a pool of 1024 existing sessions, as today's
// plain save (last writer wins) and as the save without conflict (the compare-and-set every
// save now does: a script on redis, gets/cas on memcached, a write transaction on sqlite, a
// flock'd read-compare-rename on file, in place on array, a conditional UPDATE on
// PostgreSQL/MariaDB). The built-in drivers go through their native handle from this process:
// write() against writeIfUnchanged(). The custom JS driver (a Map) goes through the Store and
// the bridge, whose path is what differs: a store cycle (load, change, save) on the Map driver
// without writeIfUnchanged (the bridge's plain write) against the same driver with it (the
// bridge's compare-and-set). The two sides run in the same loop shape, alternating A B A B …
// (bench/lib/alternate.js), and the cost is the median of the adjacent windows' ratios. The
// target is a compare-and-set costing at most 1.1x the plain save.
//
// Second half, "64 concurrent requests on one session": every driver's HTTP server (our
// middleware, and express-session with the matching peer store: MemoryStore, session-file-store,
// better-sqlite3-session-store, connect-redis, connect-pg-simple, express-mysql-session) gets 64
// requests in flight at all times, all carrying one session's cookie, each incrementing its
// counter (the contenders' shared route); a last request reads the counter back. Updates lost =
// requests answered 200 minus the counter's growth: ours must print 0.
//
// Everything here runs in the bench process: every store made is closed at the end, timers
// included (kit.peerStore), so the process exits when the run ends.

const http = require('node:http');
const path = require('node:path');
const { median, fmt } = require('../lib/stats');
const { alternate } = require('../lib/alternate');
const { mapHandler, mapCasHandler } = require('../lib/map-handler');
const { makeSession } = require('../lib/payload');
const kit = require('../lib/kit');
const database = require('./database');

const TARGET = 1.1;
const CONCURRENCY = [1, 64];
const POOL = 1024;
/** The drivers of both halves, in the order of the tables (and of the targets). */
const DRIVERS = ['array', 'file', 'sqlite', 'redis', 'memcached', 'postgres', 'mariadb', 'js map'];

function load(root) {
  return require(root);
}

// Tables this run made on the database servers (dropped at the end of the case).
const madeTables = { pg: [], my: [] };
let tableSeq = 0;
function tableName(kind) {
  const t = `bench_cont_${kind}_${process.pid}_${++tableSeq}`;
  madeTables[kind].push(t);
  return t;
}

/** What keeps a database driver from running here, or null. */
async function dbDown(which) {
  return database.reachable(which === 'pg' ? database.PG_URL : database.MY_URL);
}

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
function idOf(prefix, i) {
  let s = String(i);
  let id = prefix;
  while (id.length + s.length < 40) id += ALNUM[(id.length * 7 + i) % ALNUM.length];
  return id + s;
}

const hopLoop = () => new Promise((resolve) => setImmediate(resolve));

/**
 * Cycles/s of `op(i)` over `ms`, `conc` in flight. `yieldEach`: each op starts in a new
 * macrotask (as a request does), for ops whose Promises may resolve in place (a Store on a JS
 * driver answering plain values), which would otherwise run a whole window as one macrotask.
 */
async function measure(op, ms, conc, { yieldEach = false } = {}) {
  let i = 0;
  let cycles = 0;
  const end = performance.now() + ms;
  const lane = async () => {
    while (performance.now() < end) {
      if (yieldEach) await hopLoop();
      await op(i++);
      cycles++;
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: conc }, lane));
  return cycles / ((performance.now() - t0) / 1000);
}

// ----- save without conflict ---------------------------------------------------------------------

const PAYLOAD = JSON.stringify({ _token: 'x'.repeat(40), user: { id: 42, name: 'Zoë' }, cart: Array.from({ length: 20 }, (_, i) => ({ sku: `sku-${i}`, qty: i })) }).padEnd(1024, ' ');

/**
 * A built-in driver's pair of ops on its native handle: write() and writeIfUnchanged() of the
 * same payload (the compare-and-set finds the record unchanged, as it holds that payload, and
 * writes). Both in the same shape: one async function, one await.
 */
function nativeSides(name, h) {
  const n = h._native;
  const ids = Array.from({ length: POOL }, (_, i) => idOf('s', i));
  return {
    how: 'native handle: write() vs writeIfUnchanged()',
    supportsCas: n.supportsCas(),
    seed: () => Promise.all(ids.map((id) => n.write(id, PAYLOAD))),
    plain: async (i) => {
      await n.write(ids[i % POOL], PAYLOAD);
    },
    cas: async (i) => {
      if (!(await n.writeIfUnchanged(ids[i % POOL], PAYLOAD, PAYLOAD))) throw new Error(`${name}: an unchanged record was refused`);
    },
    close: () => h.close(),
  };
}

/**
 * The custom JS driver's pair: a store cycle through the bridge on the Map driver without
 * writeIfUnchanged (plain write) and on the same driver with it (compare-and-set). Methods
 * answer plain values: nothing else to wait for, so the bridge's cost is all that differs.
 */
function jsSides(pkg) {
  const plainH = mapHandler();
  const casH = mapCasHandler();
  const ids = Array.from({ length: POOL }, (_, i) => idOf('j', i));
  const cycle = (h) => async (i) => {
    const s = new pkg.Store(kit.COOKIE, h, ids[i % POOL]);
    await s.start();
    s.increment('counter');
    s.put('lastSeen', i);
    const outcome = await s.save();
    if (outcome !== 'written') throw new Error(`js map: the save was ${outcome}, not written`);
  };
  return {
    how: 'Store cycle through the bridge: Map driver without vs with writeIfUnchanged()',
    supportsCas: true,
    yieldEach: true,
    seed: async () => {
      for (const h of [plainH, casH]) ids.forEach((id, k) => h.write(id, JSON.stringify(makeSession(k))));
    },
    plain: cycle(plainH),
    cas: cycle(casH),
    close: () => undefined,
  };
}

/** Per driver, a function making its pair of sides, or the reason it cannot run here. */
async function saveDrivers(env, pkg) {
  const list = [
    ['array', () => nativeSides('array', new pkg.ArraySessionHandler(120))],
    ['file', () => nativeSides('file', new pkg.FileSessionHandler(path.join(env.workDir, `contention-file-${Date.now()}`), 120))],
    ['sqlite', () => nativeSides('sqlite', new pkg.SqliteSessionHandler(path.join(env.workDir, `contention-${Date.now()}.db`)))],
  ];
  const redis = env.services.redis;
  list.push(['redis', redis && !redis.error ? () => nativeSides('redis', new pkg.RedisSessionHandler(redis.url)) : `redis-server: ${redis ? redis.error : 'not started'}`]);
  const mc = env.services.memcached;
  list.push(['memcached', mc && !mc.error ? () => nativeSides('memcached', new pkg.MemcachedSessionHandler(mc.url)) : `memcached: ${mc ? mc.error : 'not started'}`]);
  for (const [name, which, url] of [['postgres', 'pg', database.PG_URL], ['mariadb', 'my', database.MY_URL]]) {
    const down = await dbDown(which);
    list.push([name, down ? `server not reachable (${down})` : () => nativeSides(name, new pkg.DatabaseSessionHandler(url, { table: tableName(which), minutes: kit.LIFETIME_MIN }))]);
  }
  list.push(['js map', () => jsSides(pkg)]);
  return list;
}

async function saveWithoutConflict(env, pkg) {
  // Many short windows, strictly alternating: see bench/lib/alternate.js.
  const rounds = env.quick ? 5 : 9;
  const ms = env.quick ? 200 : 600;
  const rows = [];
  const data = {};
  for (const [name, make] of await saveDrivers(env, pkg)) {
    if (typeof make === 'string') {
      for (const conc of CONCURRENCY) data[`${name}@${conc}`] = { unavailable: make };
      rows.push([name, '–', '–', '–', '–', '–', `not available: ${make}`]);
      continue;
    }
    let sides;
    try {
      sides = make();
      await sides.seed();
      for (const conc of CONCURRENCY) {
        const opts = { yieldEach: !!sides.yieldEach };
        const r = await alternate(() => measure(sides.plain, ms, conc, opts), () => measure(sides.cas, ms, conc, opts), { rounds });
        data[`${name}@${conc}`] = { plain: r.aMedian, cas: r.bMedian, ratio: r.ratio, ratios: r.ratios, supportsCas: sides.supportsCas, how: sides.how };
        rows.push([conc === CONCURRENCY[0] ? name : '', String(conc), fmt(r.aMedian, 0), fmt(r.bMedian, 0), `${fmt(r.ratio, 2)}x`, r.ratio <= TARGET ? 'ok' : `over ${TARGET}x`, conc === CONCURRENCY[0] ? sides.how : '']);
        env.log(`contention: ${name} at ${conc} done (${fmt(r.ratio, 2)}x)`);
      }
    } catch (err) {
      const reason = String(err && err.message ? err.message : err).split('\n')[0];
      for (const conc of CONCURRENCY) if (!data[`${name}@${conc}`]) data[`${name}@${conc}`] = { failed: reason };
      rows.push([name, '–', '–', '–', '–', '–', `failed: ${reason}`]);
      env.log(`contention: ${name} failed: ${reason}`);
    } finally {
      if (sides) await sides.close();
    }
  }
  return { rows, data, rounds, ms };
}

async function run(env) {
  const pkg = load(path.resolve(__dirname, '..', '..'));
  try {
    const save = await saveWithoutConflict(env, pkg);
    const one = await oneSession(env, pkg, env.quick ? 1000 : 3000);
    return {
      extra: [one.table],
      title: 'Case contention: save without conflict, compare-and-set against a plain save',
      note: `~1 KB payload over 1024 existing sessions, from one process. Built-in drivers: their native handle, write() against writeIfUnchanged(); js map: a store cycle through the bridge on a Map driver without and with writeIfUnchanged(). `
        + `${save.rounds} rounds of ${save.ms} ms per side after a warm-up of each, alternating A B A B …; cycles/s are medians per side; cost = median over adjacent windows of plain ÷ compare-and-set (target ≤ ${TARGET}x).`,
      header: ['driver', 'in flight', 'plain save /s', 'compare-and-set /s', 'cost', 'target', 'measured'],
      rows: save.rows,
      data: { ...save.data, oneSession: one.data },
    };
  } finally {
    database.dropTablesOf(madeTables);
    madeTables.pg = [];
    madeTables.my = [];
  }
}

// ----- 64 concurrent requests on one session ----------------------------------------------------

// Contenders this case adds to bench/contenders/ for its HTTP half: the database driver and the
// JS Map driver with compare-and-set on our side, connect-pg-simple and express-mysql-session
// (as their READMEs leave them: expiry sweeps on, closed at the end) on the peers' side.
function localContenders(pkg) {
  const dbOurs = (which, label) => ({
    id: `ours-database-${which === 'pg' ? 'postgres' : 'mariadb'}`, label, kind: 'ours',
    async http() {
      const down = await dbDown(which);
      if (down) throw new kit.NotAvailable(`server not reachable (${down})`);
      return kit.ourHttp({ driver: 'database', connection: which === 'pg' ? database.PG_URL : database.MY_URL, table: tableName(which) });
    },
  });
  const dbPeer = (which, id, label) => ({
    id, label, kind: 'peer',
    async http() {
      const down = await dbDown(which);
      if (down) throw new kit.NotAvailable(`server not reachable (${down})`);
      const { store, close } = await database.peerDbStore(which === 'pg' ? 'pg' : 'mysql', tableName(which), { housekeeping: true });
      return kit.expressHttp(store, { close });
    },
  });
  return [
    dbOurs('pg', '@ostro/session database (postgres)'),
    dbPeer('pg', 'peer-connect-pg-simple', 'connect-pg-simple'),
    dbOurs('my', '@ostro/session database (mariadb)'),
    dbPeer('my', 'peer-express-mysql-session', 'express-mysql-session'),
    {
      id: 'ours-jsmap-cas', label: '@ostro/session JS Map driver with writeIfUnchanged (bridge)', kind: 'ours',
      http() {
        // Answers after a macrotask, as a network store would, so that the requests' loads and
        // saves interleave and the compare-and-set has conflicts to settle.
        const h = mapCasHandler({ hop: true });
        return kit.ourHttp({ driver: 'jsmapcas' }, { extend: { name: 'jsmapcas', factory: () => h } });
      },
    },
  ].map((c) => ({ ...c, pkg }));
}

// Per driver family: our contender and express-session with the matching peer store (its name
// for the Targets table).
const PAIRS = [
  ['array', 'ours-array', 'peer-memorystore', 'MemoryStore'],
  ['file', 'ours-file', 'peer-file-store', 'session-file-store'],
  ['sqlite', 'ours-sqlite', 'peer-sqlite-store', 'better-sqlite3-session-store'],
  ['redis', 'ours-redis', 'peer-connect-redis', 'connect-redis'],
  ['memcached', 'ours-memcached', null],
  ['postgres', 'ours-database-postgres', 'peer-connect-pg-simple', 'connect-pg-simple'],
  ['mariadb', 'ours-database-mariadb', 'peer-express-mysql-session', 'express-mysql-session'],
  ['js map', 'ours-jsmap-cas', null],
];
const IN_FLIGHT = 64;

function get(agent, port, cookie) {
  return new Promise((resolve, reject) => {
    const req = http.get({ agent, host: '127.0.0.1', port, path: '/', headers: cookie ? { cookie } : {} }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => {
        body += d;
      });
      res.on('end', () => resolve({ status: res.statusCode, body, setCookie: res.headers['set-cookie'] || [] }));
    });
    req.on('error', reject);
  });
}

/** One contender's server under 64 in-flight requests on one session for `ms`. */
async function hammer(env, contender, ms) {
  const inst = await contender.http(env.ctxFor(contender.id, 'one-session'));
  const server = http.createServer(inst.listener);
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  const agent = new http.Agent({ keepAlive: true, maxSockets: IN_FLIGHT });
  try {
    const first = await get(agent, port, null);
    const line = first.setCookie.find((c) => c.startsWith(`${kit.COOKIE}=`));
    if (first.status !== 200 || !line) throw new Error(`${contender.id}: the first request did not start a session (${first.status}: ${first.body.slice(0, 160)})`);
    const cookie = line.split(';')[0];
    const base = JSON.parse(first.body).n;
    let ok = 0;
    let failed = 0;
    let firstFailure = null;
    const end = performance.now() + ms;
    const t0 = performance.now();
    await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
      while (performance.now() < end) {
        const r = await get(agent, port, cookie);
        if (r.status === 200) ok++;
        else {
          failed++;
          firstFailure ||= `${r.status}: ${r.body.slice(0, 120)}`;
        }
      }
    }));
    const secs = (performance.now() - t0) / 1000;
    const last = await get(agent, port, cookie);
    // The counter after the burst is one below what the last request answers.
    const grew = JSON.parse(last.body).n - 1 - base;
    return { perSec: ok / secs, ok, failed, lost: ok - grew, firstFailure };
  } finally {
    agent.destroy();
    await new Promise((resolve) => server.close(resolve));
    await inst.close();
  }
}

async function oneSession(env, pkg, ms) {
  const byId = new Map([...env.httpContenders, ...localContenders(pkg)].map((c) => [c.id, c]));
  const missing = (c) => (c.needs || []).filter((s) => !env.services[s] || env.services[s].error);
  const rows = [];
  const data = {};
  for (const [family, oursId, peerId] of PAIRS) {
    for (const id of [oursId, peerId]) {
      if (!id) continue;
      const c = byId.get(id);
      if (!c) {
        // Filtered out (OSTRO_BENCH_CONTENDERS) or no HTTP server for it.
        data[id] = { family, unavailable: 'not run' };
        continue;
      }
      const gone = missing(c);
      if (gone.length) {
        data[id] = { family, label: c.label, kind: c.kind, unavailable: gone.map((s) => (env.services[s] ? env.services[s].error : `${s} not started`)).join('; ') };
        rows.push([family, c.label, '–', '–', '–', '–', `not available: ${data[id].unavailable}`]);
        continue;
      }
      try {
        const r = await hammer(env, c, ms);
        data[id] = { family, label: c.label, kind: c.kind, ...r };
        rows.push([family, c.label, fmt(r.perSec, 0), String(r.ok), String(r.lost), String(r.failed), r.firstFailure ? `first error ${r.firstFailure}` : '']);
        env.log(`contention: ${id} on one session done (lost ${r.lost})`);
      } catch (err) {
        const reason = String(err && err.message ? err.message : err).split('\n')[0];
        const key = err && err.code === 'NOT_AVAILABLE' ? 'unavailable' : 'failed';
        data[id] = { family, label: c.label, kind: c.kind, [key]: reason };
        rows.push([family, c.label, '–', '–', '–', '–', `${key === 'failed' ? 'failed' : 'not available'}: ${reason}`]);
        env.log(`contention: ${id} on one session ${key}: ${reason}`);
      }
    }
  }
  return {
    data,
    table: {
      title: `64 concurrent requests on one session (${ms} ms each, one process, loopback HTTP): updates lost must be 0 for ours`,
      header: ['driver', 'server', 'requests/s', 'answered 200', 'updates lost', 'errors', 'note'],
      rows,
    },
  };
}

module.exports = { run, TARGET, DRIVERS, PAIRS };
