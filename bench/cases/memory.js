'use strict';
// Case 3, memory: RSS per live session with 100,000 sessions of ~1.2 KB in our array driver,
// express-session's MemoryStore and a bare Map of JSON strings. Each in a fresh process, with
// the variants interleaved over rounds; medians.

const { execFile } = require('node:child_process');
const path = require('node:path');
const { median, fmt } = require('../lib/stats');

const VARIANTS = [
  ['ours-array', '@ostro/session array driver'],
  ['peer-memorystore', 'express-session MemoryStore'],
  ['raw-map', 'bare Map of JSON strings'],
];

function measure(variant, n) {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--expose-gc', path.join(__dirname, 'memory-child.js'), variant, String(n)], { timeout: 180000, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err) return resolve({ ok: false, reason: String(stderr || err.message).trim().split('\n').slice(-2).join(' ') });
      try {
        resolve({ ok: true, ...JSON.parse(stdout.trim().split('\n').pop()) });
      } catch (e) {
        resolve({ ok: false, reason: `bad output: ${stdout.slice(0, 100)}` });
      }
    });
  });
}

async function run(env) {
  // 100,000 live sessions as the issue asks; a quick smoke run stores half as many.
  const n = env.quick ? 50000 : 100000;
  const rounds = env.quick ? 1 : 3;
  const samples = Object.fromEntries(VARIANTS.map(([id]) => [id, []]));
  const fails = {};
  for (let r = 0; r < rounds; r++) {
    for (let j = 0; j < VARIANTS.length; j++) {
      const [id] = VARIANTS[(j + r) % VARIANTS.length];
      const res = await measure(id, n);
      if (res.ok && res.n >= n) samples[id].push(res);
      else fails[id] = res.ok ? `stored ${res.n} of ${n}` : res.reason;
    }
    env.log(`memory: round ${r + 1}/${rounds} done`);
  }
  const data = {};
  const rows = [];
  const ms = samples['peer-memorystore'].length ? median(samples['peer-memorystore'].map((x) => x.bytesPerSession)) : NaN;
  for (const [id, label] of VARIANTS) {
    const s = samples[id];
    if (!s.length) {
      data[id] = { ok: false, reason: fails[id] };
      rows.push([label, '–', '–', '–', '–', '–', `failed: ${fails[id]}`]);
      continue;
    }
    const d = {
      ok: true,
      bytesPerSession: median(s.map((x) => x.bytesPerSession)),
      heapPerSession: median(s.map((x) => x.heapPerSession)),
      payloadBytes: s[0].payloadBytes,
      rssAfterMB: median(s.map((x) => x.rssAfter)) / 1048576,
    };
    data[id] = d;
    rows.push([label, fmt(d.payloadBytes, 0), fmt(d.bytesPerSession, 0), fmt(d.heapPerSession, 0), fmt(d.rssAfterMB, 0), (d.bytesPerSession / ms).toFixed(2) + '×', '']);
  }
  return {
    title: `Case 3: memory with ${fmt(n, 0)} live sessions`,
    note: `Each store in a fresh process; RSS after GC, before and after storing ${fmt(n, 0)} sessions of the same JSON text; ${rounds} round(s), medians.`,
    header: ['store', 'payload bytes', 'RSS bytes/session', 'JS heap bytes/session', 'RSS MB at end', 'vs MemoryStore', 'note'],
    rows,
    data,
  };
}

module.exports = { run };
