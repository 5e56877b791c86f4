'use strict';
// Worker threads: Node unloads an addon when the last Worker that loaded it exits, and the next
// Worker loads it again. With mimalloc v3 as the addon's allocator that second load crashed the
// whole process (SIGSEGV in module registration). Each scenario runs in a child process, so a
// crash is seen as a signal, not as a lost test runner.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const ROOT = path.resolve(__dirname, '..');

/** Runs `main` (source of a CommonJS script) in a fresh node process; returns its outcome. */
function runScript(main) {
  const r = spawnSync(process.execPath, ['-e', main], { encoding: 'utf8', timeout: 60000, env: { ...process.env, OSTRO_ROOT: ROOT } });
  return { status: r.status, signal: r.signal, out: `${r.stdout}${r.stderr}` };
}

// A worker that loads the package, runs a Store cycle on the array driver and reports what it read.
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const { SessionManager } = require(process.env.OSTRO_ROOT);
(async () => {
  const manager = new SessionManager({ driver: 'array', key: 'k'.repeat(40) });
  const store = manager.createStore();
  await store.start();
  store.put('worker', workerData);
  await store.save();
  const again = manager.createStore(store.getId());
  await again.start();
  parentPort.postMessage(again.get('worker'));
})().catch((e) => { parentPort.postMessage('error: ' + e.message); });
`;

test('the addon loads again in a Worker started after the last one that loaded it exited', () => {
  const r = runScript(`
    const { Worker } = require('node:worker_threads');
    const one = (i) => new Promise((resolve, reject) => {
      const w = new Worker(${JSON.stringify(WORKER)}, { eval: true, workerData: i });
      let got;
      w.on('message', (m) => { got = m; });
      w.on('error', reject);
      w.on('exit', (code) => resolve({ code, got }));
    });
    (async () => {
      for (let i = 0; i < 3; i++) {
        const { code, got } = await one(i);
        if (code !== 0 || got !== i) throw new Error('worker ' + i + ': exit ' + code + ', read ' + got);
      }
      console.log('three workers in a row: ok');
    })().catch((e) => { console.error(e.message); process.exit(1); });
  `);
  assert.equal(r.signal, null, `the process died of ${r.signal}: ${r.out}`);
  assert.equal(r.status, 0, r.out);
  assert.match(r.out, /three workers in a row: ok/);
});

test('Workers in parallel and the main thread each run their own sessions', () => {
  const r = runScript(`
    const { Worker } = require('node:worker_threads');
    const { SessionManager } = require(process.env.OSTRO_ROOT);
    const run = (i) => new Promise((resolve, reject) => {
      const w = new Worker(${JSON.stringify(WORKER)}, { eval: true, workerData: i });
      let got;
      w.on('message', (m) => { got = m; });
      w.on('error', reject);
      w.on('exit', (code) => resolve({ code, got }));
    });
    (async () => {
      const manager = new SessionManager({ driver: 'array', key: 'k'.repeat(40) });
      const store = manager.createStore();
      await store.start();
      store.put('main', 'here');
      const results = await Promise.all([run(10), run(11), run(12)]);
      await store.save();
      for (const [i, { code, got }] of results.entries()) {
        if (code !== 0 || got !== 10 + i) throw new Error('worker ' + (10 + i) + ': exit ' + code + ', read ' + got);
      }
      if (store.get('main') !== 'here') throw new Error('the main thread lost its session');
      console.log('parallel: ok');
    })().catch((e) => { console.error(e.message); process.exit(1); });
  `);
  assert.equal(r.signal, null, `the process died of ${r.signal}: ${r.out}`);
  assert.equal(r.status, 0, r.out);
  assert.match(r.out, /parallel: ok/);
});
