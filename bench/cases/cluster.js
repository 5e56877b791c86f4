'use strict';
// Case "cluster" (issue 14): what a Redis Cluster costs against one redis-server. One session
// cycle = read then save (writeIfUnchanged, what every save does) of a ~1 KB payload over 1024
// existing sessions, through the driver's native handle, against the run's standalone
// redis-server and against a 6-node cluster (3 masters, 3 replicas) this case starts on free
// loopback ports with the tests' harness and stops by pid. Windows alternate A B A B …
// (bench/lib/alternate.js); the cost is the median of the adjacent windows' ratios. Target: a
// cluster cycle costs at most 1.2x the standalone one.

const path = require('node:path');
const { fmt } = require('../lib/stats');
const { alternate } = require('../lib/alternate');
// The tests' topology harness: one owner of how a cluster is started and stopped.
const { startRedisCluster } = require('../../__test__/support/servers');

const TARGET = 1.2;
const CONCURRENCY = [1, 64];

function idOf(i) {
  return `c${String(i)}`.padStart(40, 'A');
}

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
  const pkg = require(path.resolve(__dirname, '..', '..'));
  const redis = env.services.redis;
  if (!redis || redis.error) throw new Error(`the standalone redis-server is needed: ${redis ? redis.error : 'not started'}`);
  const rounds = env.quick ? 5 : 9;
  const ms = env.quick ? 200 : 600;
  const payload = JSON.stringify({ _token: 'x'.repeat(40), user: { id: 42, name: 'Zoë' }, cart: Array.from({ length: 20 }, (_, i) => ({ sku: `sku-${i}`, qty: i })) }).padEnd(1024, ' ');
  const cluster = await startRedisCluster();
  env.log(`cluster: 6 nodes on ports ${cluster.nodes.map((n) => n.port).join(', ')}`);
  const handlers = {
    standalone: new pkg.RedisSessionHandler(redis.url),
    cluster: new pkg.RedisSessionHandler({ cluster: cluster.urls.slice(0, 1) }),
  };
  const POOL = 1024;
  const ids = Array.from({ length: POOL }, (_, i) => idOf(i));
  const rows = [];
  const data = {};
  try {
    for (const h of Object.values(handlers)) await Promise.all(ids.map((id) => h._native.write(id, payload)));
    const cycle = (n) => async (i) => {
      const id = ids[i % POOL];
      const cur = await n.read(id);
      if (!(await n.writeIfUnchanged(id, cur, cur))) throw new Error('an unchanged record was refused');
    };
    for (const conc of CONCURRENCY) {
      const r = await alternate(() => measure(cycle(handlers.standalone._native), ms, conc), () => measure(cycle(handlers.cluster._native), ms, conc), { rounds });
      data[`cluster@${conc}`] = { standalone: r.aMedian, cluster: r.bMedian, ratio: r.ratio, ratios: r.ratios };
      rows.push([String(conc), fmt(r.aMedian, 0), fmt(r.bMedian, 0), `${fmt(r.ratio, 2)}x`, r.ratio <= TARGET ? 'ok' : `over ${TARGET}x`]);
      env.log(`cluster: at ${conc} done (${fmt(r.ratio, 2)}x)`);
    }
  } finally {
    await Promise.all(Object.values(handlers).map((h) => h.close()));
    await cluster.stop();
  }
  return {
    title: 'Case cluster: a session cycle on a Redis Cluster against one redis-server',
    note: `Native handle, read + writeIfUnchanged of ~1 KB over 1024 existing sessions; standalone redis-server vs a 6-node cluster (3 masters, 3 replicas) on this machine; ${rounds} rounds of ${ms} ms per side after a warm-up of each, alternating A B A B …; cycles/s are medians per side; `
      + `cost = median over adjacent windows of standalone ÷ cluster cycles/s (target ≤ ${TARGET}x).`,
    header: ['in flight', 'standalone cycles/s', 'cluster cycles/s', 'cost', 'target'],
    rows,
    data,
  };
}

module.exports = { run, TARGET };
