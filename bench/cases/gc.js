'use strict';
// Case 4, event-loop delay during gc: 100,000 expired sessions removed by our file and sqlite
// drivers (off the JS thread) and by session-file-store's reaper and better-sqlite3-session-store's
// cleanup. Each in a fresh process; the event-loop delay during HTTP load is in case 2.

const { execFile } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { median, fmt } = require('../lib/stats');

const VARIANTS = ['ours-file', 'ours-sqlite', 'peer-file-store', 'peer-sqlite-store'];

function measure(variant, n, dir) {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(__dirname, 'gc-child.js'), variant, String(n), dir], { timeout: 600000, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err) return resolve({ ok: false, reason: String(stderr || err.message).trim().split('\n').slice(-2).join(' ') });
      try {
        resolve(JSON.parse(stdout.trim().split('\n').pop()));
      } catch {
        resolve({ ok: false, reason: `bad output: ${stdout.slice(0, 100)}` });
      }
    });
  });
}

async function run(env) {
  const n = env.quick ? 10000 : 100000;
  const rounds = 1;
  const samples = Object.fromEntries(VARIANTS.map((v) => [v, []]));
  const fail = {};
  const labels = {};
  for (let r = 0; r < rounds; r++) {
    for (let j = 0; j < VARIANTS.length; j++) {
      const v = VARIANTS[(j + r) % VARIANTS.length];
      const dir = path.join(env.workDir, `gc-${v}-${r}`);
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
      const res = await measure(v, n, dir);
      fs.rmSync(dir, { recursive: true, force: true });
      if (res.ok && res.removed === n) { samples[v].push(res); labels[v] = res.label; }
      else fail[v] = res.ok ? `removed ${res.removed} of ${n}` : res.reason;
    }
    env.log(`gc: round ${r + 1}/${rounds} done`);
  }
  const data = {};
  const rows = [];
  for (const v of VARIANTS) {
    const s = samples[v];
    if (!s.length) {
      data[v] = { ok: false, reason: fail[v], label: v };
      rows.push([v, '–', '–', '–', '–', '–', fail[v]]);
      continue;
    }
    const d = {
      ok: true, label: labels[v], removed: s[0].removed,
      ms: median(s.map((x) => x.ms)), eldP50: median(s.map((x) => x.eldP50)),
      eldP99: median(s.map((x) => x.eldP99)), eldMax: Math.max(...s.map((x) => x.eldMax)),
    };
    data[v] = d;
    rows.push([d.label, fmt(d.removed, 0), fmt(d.ms, 0), fmt(d.eldP50, 2), fmt(d.eldP99, 2), fmt(d.eldMax, 1), '']);
  }
  return {
    title: `Case 4: event-loop delay during gc of ${fmt(n, 0)} expired sessions`,
    note: `Event-loop delay sampled every 1 ms (monitorEventLoopDelay) from the start of the cleanup to 20 ms after it ends; ${rounds} round(s), medians (max over rounds). `
      + (env.quick ? 'Quick mode uses 10,000 sessions; the full run uses 100,000.' : ''),
    header: ['cleanup', 'removed', 'duration ms', 'loop p50 ms', 'loop p99 ms', 'loop max ms', 'note'],
    rows,
    data,
  };
}

module.exports = { run };
