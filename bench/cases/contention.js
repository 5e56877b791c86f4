'use strict';
// Case "contention" (issue 12), first half: what compare-and-set costs when nothing conflicts.
// Per driver, the same ~1 KB payload rewritten over a pool of 1024 existing sessions, through
// the driver's native handle from this process, as a plain write (last writer wins, today's save) and as
// writeIfUnchanged (the compare-and-set every save now does: a script on redis, gets/cas on
// memcached, a write transaction on sqlite, a flock'd read-compare-rename on file, in place on
// array), side by side: rounds alternate which goes first; medians of per-round cycles/s. The
// target is a compare-and-set costing at most 1.1x the plain write.
//
// Second half, "64 concurrent requests on one session": every driver's HTTP server (our
// middleware, and express-session with the matching peer store: MemoryStore, session-file-store,
// better-sqlite3-session-store, connect-redis) gets 64 requests in flight at all times, all
// carrying one session's cookie, each incrementing its counter (the contenders' shared route);
// a last request reads the counter back. Updates lost = requests answered 200 minus the counter's
// growth: ours must print 0.

const http = require('node:http');
const path = require('node:path');
const { median, fmt } = require('../lib/stats');

const TARGET = 1.1;
const CONCURRENCY = [1, 64];

function load(root) {
  return require(root);
}

function drivers(env, pkg) {
  const list = [
    ['array', () => new pkg.ArraySessionHandler(120)],
    ['file', () => {
      const dir = path.join(env.workDir, `contention-file-${Date.now()}`);
      return new pkg.FileSessionHandler(dir, 120);
    }],
    ['sqlite', () => new pkg.SqliteSessionHandler(path.join(env.workDir, `contention-${Date.now()}.db`))],
  ];
  const redis = env.services.redis;
  if (redis && !redis.error) list.push(['redis', () => new pkg.RedisSessionHandler(redis.url)]);
  const mc = env.services.memcached;
  if (mc && !mc.error) list.push(['memcached', () => new pkg.MemcachedSessionHandler(mc.url)]);
  return list;
}

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
function idOf(prefix, i) {
  let s = String(i);
  let id = prefix;
  while (id.length + s.length < 40) id += ALNUM[(id.length * 7 + i) % ALNUM.length];
  return id + s;
}

/** Cycles/s of `op(i)` over `ms`, `conc` in flight. */
async function measure(op, ms, conc) {
  let i = 0;
  let cycles = 0;
  const end = performance.now() + ms;
  const lane = async () => {
    while (performance.now() < end) {
      await op(i++);
      cycles++;
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: conc }, lane));
  return cycles / ((performance.now() - t0) / 1000);
}

async function run(env) {
  const pkg = load(path.resolve(__dirname, '..', '..'));
  const rounds = env.quick ? 3 : 7;
  const ms = env.quick ? 300 : 1000;
  const payload = JSON.stringify({ _token: 'x'.repeat(40), user: { id: 42, name: 'Zoë' }, cart: Array.from({ length: 20 }, (_, i) => ({ sku: `sku-${i}`, qty: i })) }).padEnd(1024, ' ');
  const rows = [];
  const data = {};
  for (const [name, make] of drivers(env, pkg)) {
    const h = make();
    const n = h._native;
    const POOL = 1024;
    const ids = Array.from({ length: POOL }, (_, i) => idOf('s', i));
    try {
      await Promise.all(ids.map((id) => n.write(id, payload)));
      for (const conc of CONCURRENCY) {
        const plain = [];
        const cas = [];
        for (let r = 0; r < rounds; r++) {
          // The compare-and-set finds the record unchanged (it holds `payload`) and writes.
          const runPlain = async () => {
            plain.push(await measure((i) => n.write(ids[i % POOL], payload), ms, conc));
          };
          const runCas = async () => {
            cas.push(await measure(async (i) => {
              if (!(await n.writeIfUnchanged(ids[i % POOL], payload, payload))) throw new Error(`${name}: an unchanged record was refused`);
            }, ms, conc));
          };
          if (r % 2 === 0) {
            await runPlain();
            await runCas();
          } else {
            await runCas();
            await runPlain();
          }
        }
        const p = median(plain);
        const c = median(cas);
        const ratio = p / c;
        data[`${name}@${conc}`] = { plain: p, cas: c, ratio, supportsCas: n.supportsCas() };
        rows.push([name, String(conc), fmt(p, 0), fmt(c, 0), `${fmt(ratio, 2)}x`, ratio <= TARGET ? 'ok' : `over ${TARGET}x`]);
        env.log(`contention: ${name} at ${conc} done`);
      }
    } finally {
      await h.close();
    }
  }
  const one = await oneSession(env, env.quick ? 1000 : 3000);
  data.oneSession = one.data;
  return {
    extra: [one.table],
    title: 'Case contention: save without conflict, compare-and-set against a plain write',
    note: `Native handle of each driver from one process, ~1 KB payload over 1024 existing sessions; ${rounds} rounds of ${ms} ms each, order alternating, medians. `
      + `cost = plain cycles/s ÷ compare-and-set cycles/s (target ≤ ${TARGET}x).`,
    header: ['driver', 'in flight', 'plain write /s', 'writeIfUnchanged /s', 'cost', 'target'],
    rows,
    data,
  };
}

// ----- 64 concurrent requests on one session ----------------------------------------------------

// Per driver family: our contender and express-session with the matching peer store.
const PAIRS = [
  ['array', 'ours-array', 'peer-memorystore'],
  ['file', 'ours-file', 'peer-file-store'],
  ['sqlite', 'ours-sqlite', 'peer-sqlite-store'],
  ['redis', 'ours-redis', 'peer-connect-redis'],
  ['memcached', 'ours-memcached', null],
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
    const line = first.setCookie.find((c) => c.startsWith(`${require('../lib/kit').COOKIE}=`));
    if (first.status !== 200 || !line) throw new Error(`${contender.id}: the first request did not start a session (${first.status})`);
    const cookie = line.split(';')[0];
    const base = JSON.parse(first.body).n;
    let ok = 0;
    let failed = 0;
    const end = performance.now() + ms;
    const t0 = performance.now();
    await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
      while (performance.now() < end) {
        const r = await get(agent, port, cookie);
        if (r.status === 200) ok++;
        else failed++;
      }
    }));
    const secs = (performance.now() - t0) / 1000;
    const last = await get(agent, port, cookie);
    // The counter after the burst is one below what the last request answers.
    const grew = JSON.parse(last.body).n - 1 - base;
    return { perSec: ok / secs, ok, failed, lost: ok - grew };
  } finally {
    agent.destroy();
    await new Promise((resolve) => server.close(resolve));
    await inst.close();
  }
}

async function oneSession(env, ms) {
  const byId = new Map(env.httpContenders.map((c) => [c.id, c]));
  const usable = (c) => c && (c.needs || []).every((s) => env.services[s] && !env.services[s].error);
  const rows = [];
  const data = {};
  for (const [family, oursId, peerId] of PAIRS) {
    for (const id of [oursId, peerId]) {
      const c = byId.get(id);
      if (!usable(c)) continue;
      const r = await hammer(env, c, ms);
      data[id] = r;
      rows.push([family, c.label, fmt(r.perSec, 0), String(r.ok), String(r.lost), String(r.failed)]);
      env.log(`contention: ${id} on one session done (lost ${r.lost})`);
    }
  }
  return {
    data,
    table: {
      title: `64 concurrent requests on one session (${ms} ms each, one process, loopback HTTP): updates lost must be 0 for ours`,
      header: ['driver', 'server', 'requests/s', 'answered 200', 'updates lost', 'errors'],
      rows,
    },
  };
}

module.exports = { run, TARGET };
