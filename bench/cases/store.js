'use strict';
// Case 1, the store cycle: load a session (~1 KB), change two keys, save. Every contender runs in
// its own worker process; rounds are interleaved (each round visits every contender in turn,
// starting one further along each time) at concurrency 1 and 64.

const path = require('node:path');
const { Worker } = require('../lib/pool');
const { processCpuUs } = require('../lib/services');
const { median, fmt } = require('../lib/stats');

const CONCURRENCY = [1, 64];
const POOL = 1024; // sessions stored per contender; each lane of a run owns a slice of them

/** Spawns, initialises and seeds one worker per contender; unavailable ones get a reason. */
async function prepare(env, list, mode, seedCount) {
  const entries = list.map((c) => ({ c, id: c.id, label: c.label, kind: c.kind, family: c.family, status: 'ok', reason: '', samples: {} }));
  await Promise.all(entries.map(async (e) => {
    const missing = (e.c.needs || []).filter((s) => !env.services[s] || env.services[s].error);
    if (missing.length) {
      e.status = 'unavailable';
      e.reason = missing.map((s) => (env.services[s] ? env.services[s].error : `${s} not started`)).join('; ');
      return;
    }
    e.worker = new Worker(e.id);
    try {
      const r = await e.worker.call('init', { module: e.c.file, mode, ctx: env.ctxFor(e.id, mode) });
      if (!r.available) {
        e.status = 'unavailable';
        e.reason = r.reason;
        await e.worker.close();
        e.worker = null;
        return;
      }
      if (seedCount) await e.worker.call('seed', { count: seedCount }, 300000);
    } catch (err) {
      e.status = 'failed';
      e.reason = firstLine(err.message);
      await e.worker.close();
      e.worker = null;
    }
  }));
  return entries;
}

function firstLine(s) {
  const lines = String(s).split('\n').map((l) => l.trim()).filter(Boolean);
  const msg = lines.find((l) => /Error|failed|not /.test(l)) || lines[0] || '';
  return msg.length > 160 ? `${msg.slice(0, 157)}…` : msg;
}

/** One run of one contender, with the CPU the servers it talks to spent meanwhile. */
async function runOne(env, e, args) {
  const pids = (e.c.needs || []).map((s) => env.services[s].pid);
  const before = pids.map(processCpuUs);
  const r = await e.worker.call('run', args, args.ms + 120000);
  const after = pids.map(processCpuUs);
  const serverUs = pids.length ? after.reduce((a, v, i) => a + (v - before[i]), 0) : null;
  r.serverUs = serverUs === null ? null : serverUs / Math.max(1, r.cycles);
  return r;
}

async function run(env) {
  const { quick } = env;
  const rounds = quick ? 2 : 5;
  const windowMs = quick ? 250 : 1200;
  const entries = await prepare(env, env.storeContenders, 'store', POOL);
  const live = () => entries.filter((e) => e.status === 'ok');
  env.log(`store cycle: ${live().length} contenders live, ${entries.length - live().length} not available`);

  for (const e of live()) {
    try {
      await e.worker.call('run', { concurrency: 64, ms: quick ? 150 : 500, pool: POOL, warm: true });
    } catch (err) {
      e.status = 'failed';
      e.reason = firstLine(err.message);
    }
  }
  for (let r = 0; r < rounds; r++) {
    for (const conc of CONCURRENCY) {
      const order = live();
      for (let j = 0; j < order.length; j++) {
        const e = order[(j + r) % order.length];
        try {
          const res = await runOne(env, e, { concurrency: conc, ms: windowMs, pool: POOL });
          (e.samples[conc] ||= []).push(res);
          if (res.cycles === 0) throw new Error(res.firstError || 'no cycle completed');
        } catch (err) {
          e.status = 'failed';
          e.reason = firstLine(err.message);
        }
      }
    }
    env.log(`store cycle: round ${r + 1}/${rounds} done`);
  }
  await Promise.all(entries.map((e) => (e.worker ? e.worker.close() : null)));
  return summarize(entries, rounds, windowMs);
}

/** Medians over rounds per contender and concurrency. */
function summarize(entries, rounds, windowMs) {
  const rows = [];
  const data = {};
  for (const e of entries) {
    const d = { id: e.id, label: e.label, kind: e.kind, family: e.family, status: e.status, reason: e.reason, conc: {} };
    data[e.id] = d;
    for (const conc of CONCURRENCY) {
      const s = e.samples[conc] || [];
      if (e.status !== 'ok' || s.length === 0) continue;
      const m = (f) => median(s.map(f));
      d.conc[conc] = {
        perSec: m((x) => x.perSec),
        perSecRounds: s.map((x) => x.perSec),
        p50: m((x) => x.p50),
        p99: m((x) => x.p99),
        cpuUs: m((x) => x.cpuUs),
        cpuUsRounds: s.map((x) => x.cpuUs),
        serverUs: s[0].serverUs === null ? null : m((x) => x.serverUs),
        eldP99: m((x) => x.eldP99),
        eldMax: Math.max(...s.map((x) => x.eldMax)),
        psi: s.some((x) => x.psi === null) ? null : m((x) => x.psi),
        errors: s.reduce((a, x) => a + x.errors, 0),
      };
    }
  }
  for (const d of Object.values(data)) {
    if (d.status !== 'ok') {
      rows.push([d.label, d.kind, '–', '–', '–', '–', '–', '–', '–', d.status === 'unavailable' ? `not available yet: ${d.reason}` : `failed: ${d.reason}`]);
      continue;
    }
    for (const conc of CONCURRENCY) {
      const x = d.conc[conc];
      if (!x) continue;
      rows.push([
        conc === CONCURRENCY[0] ? d.label : '', conc === CONCURRENCY[0] ? d.kind : '', String(conc),
        fmt(x.perSec, 0), fmt(x.p50, 3), fmt(x.p99, 3), fmt(x.cpuUs, 1),
        x.serverUs === null ? '–' : fmt(x.serverUs, 1), fmt(x.eldP99, 1), x.errors ? `${x.errors} errors` : '',
      ]);
    }
  }
  return {
    title: 'Case 1: store cycle (load ~1 KB, change two keys, save)',
    note: `${rounds} interleaved rounds of ${windowMs} ms per contender and concurrency; medians over rounds. `
      + 'CPU µs/cycle is the worker process (JS thread plus native threads); server µs/cycle is redis-server or memcached. '
      + 'loop p99 is the worker\'s event-loop delay during the run.',
    header: ['store', 'kind', 'conc', 'cycles/s', 'p50 ms', 'p99 ms', 'CPU µs/cycle', 'server µs/cycle', 'loop p99 ms', 'note'],
    rows,
    data,
  };
}

module.exports = { run, prepare, firstLine, CONCURRENCY, POOL };
