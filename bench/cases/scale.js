'use strict';
// Case 5, scale: the store cycle at concurrency 64 on ids drawn at random from 10,000 stored
// sessions versus 1,000,000 (file, sqlite, redis). Two stores per driver, each in its own worker,
// laid down in the driver's own format (lib/bulk.js), measured in interleaved rounds.

const path = require('node:path');
const fs = require('node:fs');
const { prepare, firstLine } = require('./store');
const { median, fmt, ratio } = require('../lib/stats');
const { pairedRatio } = require('../lib/targets');

const FAMILIES = [['file', 'ours-file'], ['sqlite', 'ours-sqlite'], ['redis', 'ours-redis']];
// The file store cycles on a working set of 4,096 sessions spread over the whole store (every
// (N/4096)-th id; each a real file, see lib/bulk.js); sqlite and redis on ids drawn from all N.
const WORKING_SET = 4096;
const CONC = 64;

/** Which ids a family's cycles use in a store of `size`: a spread working set, or all of them. */
function pick(fam, size) {
  if (fam !== 'file') return { run: { pool: size, stride: 1 }, workingSet: null };
  const stride = Math.floor(size / WORKING_SET);
  return { run: { pool: WORKING_SET, stride }, workingSet: { size: WORKING_SET, stride } };
}

const human = (n) => (n >= 1e6 ? `${n / 1e6}M` : `${n / 1e3}k`);

async function run(env) {
  const small = 10000;
  const big = env.bigScale || (env.quick ? 100000 : 1000000);
  const rounds = env.quick ? 2 : 4;
  const windowMs = env.quick ? 400 : 1500;
  const data = {};
  const rows = [];
  for (const [fam, id] of FAMILIES) {
    const c = env.contenders.find((x) => x.id === id);
    if (!c) continue; // filtered out (OSTRO_BENCH_CONTENDERS)
    const sizes = [small, big];
    // Two stores: separate directories, database files, or redis databases (1 and 2).
    const envFor = (size, i) => ({
      ...env,
      ctxFor(cid, mode) {
        const ctx = env.ctxFor(`${cid}-scale-${human(size)}`, mode);
        if (ctx.redisUrl) ctx.redisUrl = `${ctx.redisUrl}/${i + 1}`;
        return ctx;
      },
    });
    const pair = [];
    for (const [i, size] of sizes.entries()) pair.push((await prepare(envFor(size, i), [c], 'store', 0))[0]);
    let failed = pair.find((e) => e.status !== 'ok');
    if (!failed) {
      for (const [i, e] of pair.entries()) {
        try {
          const r = await e.worker.call('bulk', { count: sizes[i], workingSet: pick(fam, sizes[i]).workingSet }, 600000);
          env.log(`scale ${fam}: ${fmt(sizes[i], 0)} sessions laid down in ${fmt(r.seedMs / 1000, 1)} s`);
          await e.worker.call('run', { concurrency: CONC, ms: 300, ...pick(fam, sizes[i]).run, random: true, warm: true });
        } catch (err) {
          e.status = 'failed';
          e.reason = firstLine(err.message);
        }
      }
      failed = pair.find((e) => e.status !== 'ok');
    }
    if (!failed) {
      for (let r = 0; r < rounds; r++) {
        for (let j = 0; j < 2; j++) {
          const k = (j + r) % 2;
          try {
            const res = await pair[k].worker.call('run', { concurrency: CONC, ms: windowMs, ...pick(fam, sizes[k]).run, random: true }, windowMs + 120000);
            (pair[k].samples.scale ||= []).push(res);
          } catch (err) {
            pair[k].status = 'failed';
            pair[k].reason = firstLine(err.message);
          }
        }
      }
      failed = pair.find((e) => e.status !== 'ok');
    }
    await Promise.all(pair.map((e) => (e.worker ? e.worker.close() : null)));
    for (const [i, size] of sizes.entries()) {
      fs.rmSync(path.join(env.workDir, `${id}-scale-${human(size)}-store`), { recursive: true, force: true });
    }
    if (failed) {
      data[fam] = { ok: false, reason: `${failed.status === 'unavailable' ? 'not available yet' : 'failed'}: ${failed.reason}` };
      rows.push([`${c ? c.label : id}`, '–', '–', '–', '–', '–', data[fam].reason]);
      continue;
    }
    const [a, b] = pair.map((e) => e.samples.scale);
    // Slowdown per cycle = small throughput / big throughput, paired by round.
    const slowdown = pairedRatio(a.map((x) => x.perSec), b.map((x) => x.perSec));
    const d = {
      ok: true, conc: CONC, smallLabel: human(small), bigLabel: human(big),
      smallPerSec: median(a.map((x) => x.perSec)), bigPerSec: median(b.map((x) => x.perSec)),
      smallP99: median(a.map((x) => x.p99)), bigP99: median(b.map((x) => x.p99)), slowdown,
    };
    data[fam] = d;
    rows.push([c.label, fmt(d.smallPerSec, 0), fmt(d.bigPerSec, 0), fmt(d.smallP99, 2), fmt(d.bigP99, 2), ratio(slowdown), '']);
    env.log(`scale ${fam}: ${human(small)} ${fmt(d.smallPerSec, 0)}/s vs ${human(big)} ${fmt(d.bigPerSec, 0)}/s`);
  }
  return {
    title: `Case 5: scale, ${human(small)} vs ${human(big)} stored sessions (store cycle, concurrency ${CONC}, random ids)`,
    note: `${rounds} interleaved rounds of ${windowMs} ms; medians. Sessions are laid down directly in each driver's format (files: hard links of a few files, with the ${fmt(WORKING_SET, 0)} sessions the cycles use, spread over the whole store, as real files; sqlite: rows in one transaction; redis: pipelined SET EX). `
      + 'The file cycles use that working set; sqlite and redis cycles draw ids from every stored session.'
      + (env.quick ? ' Quick mode uses 100k as the large size; the full run uses 1M.' : ''),
    header: ['driver', `${human(small)} cycles/s`, `${human(big)} cycles/s`, `${human(small)} p99 ms`, `${human(big)} p99 ms`, 'slowdown per cycle', 'note'],
    rows,
    data,
  };
}

module.exports = { run };
