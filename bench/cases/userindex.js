'use strict';
// Case "userindex" (issue 13): what the per-user index costs on the save path. The store cycle
// of case 1 (load ~1 KB, change two keys, save) on the redis and sqlite drivers, over 1024
// sessions, side by side: sessions linked to users (setUser at login: every save then updates
// the user's sorted set in the write script, or sets the indexed user_id column) and the same
// sessions unlinked. Windows alternate A B A B … after a warm-up of each (bench/lib/alternate.js);
// the cost is the median of the adjacent windows' ratios. The target is the index costing at
// most 10 % (linked ≥ unlinked ÷ 1.1).

const path = require('node:path');
const { fmt } = require('../lib/stats');
const { alternate } = require('../lib/alternate');

const TARGET = 1.1;
const CONCURRENCY = [1, 64];
const POOL = 1024;
const USERS = 64; // 16 sessions per user

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
function idOf(prefix, i) {
  let s = String(i);
  let id = prefix;
  while (id.length + s.length < 40) id += ALNUM[(id.length * 7 + i) % ALNUM.length];
  return id + s;
}

function drivers(env, pkg) {
  const list = [['sqlite', () => new pkg.SqliteSessionHandler(path.join(env.workDir, `userindex-${Date.now()}.db`))]];
  const redis = env.services.redis;
  if (redis && !redis.error) list.unshift(['redis', () => new pkg.RedisSessionHandler(redis.url, { prefix: `ui${Date.now()}:` })]);
  return list;
}

/** Cycles/s of `op(i)` over `ms`, `conc` in flight, each lane on its own slice of the pool. */
async function measure(op, ms, conc) {
  let cycles = 0;
  const end = performance.now() + ms;
  const slice = Math.max(1, Math.floor(POOL / conc));
  const lane = async (w) => {
    let j = 0;
    while (performance.now() < end) {
      await new Promise((resolve) => setImmediate(resolve));
      await op((w * slice + (j++ % slice)) % POOL, cycles);
      cycles++;
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: conc }, (_, w) => lane(w)));
  return cycles / ((performance.now() - t0) / 1000);
}

async function run(env) {
  const pkg = require(path.resolve(__dirname, '..', '..'));
  const rounds = env.quick ? 5 : 9;
  const ms = env.quick ? 200 : 600;
  const meta = { ip: '203.0.113.7', userAgent: 'Mozilla/5.0 (bench) like Gecko' };
  const base = { user: { id: 42, name: 'Ada Lovelace' }, cart: Array.from({ length: 20 }, (_, i) => ({ sku: `sku-${i}`, qty: i })), counter: 0 };
  const rows = [];
  const data = {};
  const redis = env.services.redis;
  if (!redis || redis.error) for (const conc of CONCURRENCY) data[`redis@${conc}`] = { unavailable: `redis-server: ${redis ? redis.error : 'not started'}` };
  for (const [name, make] of drivers(env, pkg)) {
    const h = make();
    const off = Array.from({ length: POOL }, (_, i) => idOf('n', i));
    const on = Array.from({ length: POOL }, (_, i) => idOf('u', i));
    const cycle = (ids, i, n) => async () => {
      const s = new pkg.Store('ostro_session', h, ids[i]);
      await s.start();
      s.increment('counter');
      s.put('lastSeen', n);
      s.setRequestMeta(meta);
      return s.save();
    };
    try {
      // Seed both pools through the Store; the linked pool is logged in (setUser) once.
      for (const [ids, linked] of [[off, false], [on, true]]) {
        for (let i = 0; i < POOL; i++) {
          const s = new pkg.Store('ostro_session', h, ids[i]);
          await s.start();
          s.put(base);
          if (linked) s.setUser(`user-${i % USERS}`);
          s.setRequestMeta(meta);
          await s.save();
        }
      }
      const listed = await (new pkg.SessionManager({ driver: 'bench', key: 'k'.repeat(40) }).extend('bench', () => h)).sessionsOf('user-0');
      if (listed.length !== POOL / USERS) throw new Error(`${name}: the index lists ${listed.length} sessions of user-0, expected ${POOL / USERS}`);
      for (const conc of CONCURRENCY) {
        const r = await alternate(() => measure((i, n) => cycle(off, i, n)(), ms, conc), () => measure((i, n) => cycle(on, i, n)(), ms, conc), { rounds });
        data[`${name}@${conc}`] = { off: r.aMedian, on: r.bMedian, cost: r.ratio, ratios: r.ratios };
        rows.push([name, String(conc), fmt(r.aMedian, 0), fmt(r.bMedian, 0), `${fmt((r.ratio - 1) * 100, 1)} %`, r.ratio <= TARGET ? 'ok' : `over ${Math.round((TARGET - 1) * 100)} %`]);
        env.log(`userindex: ${name} at ${conc} done (${fmt((r.ratio - 1) * 100, 1)} %)`);
      }
    } finally {
      await h.close();
    }
  }
  return {
    title: 'Case userindex: store cycle with the per-user index on and off',
    note: `Store cycle (load ~1 KB, change two keys, save with request metadata) on 1024 sessions, linked to ${USERS} users (index on) or not linked (off); ${rounds} rounds of ${ms} ms per side after a warm-up of each, alternating A B A B …; cost = median over adjacent windows of (off ÷ on) − 1 (target ≤ ${Math.round((TARGET - 1) * 100)} %).`,
    header: ['driver', 'in flight', 'index off cycles/s', 'index on cycles/s', 'cost', 'target'],
    rows,
    data,
  };
}

module.exports = { run, TARGET };
