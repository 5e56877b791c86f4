'use strict';
// What one session cycle (new Store + start + put + save, on an existing ~1.1 KB session) costs
// through a custom JS handler and through the Rust array driver, at concurrency 1 and 64, in one
// run. The Store path for JS handlers: Rust calls the handler's read/write directly on the JS
// thread and applies plain results in the same native call; Promises come back to JS, which awaits
// them with the deadline (lib/handler-bridge.js). Also measures the designs the Store does not
// use, so that choice stays checked:
//   - "alt": JS calls the handler and hands strings to the engine in separate sync calls
//     (startJs/saveJs in lib/handler-bridge.js);
//   - "proto rust direct": Rust calls the handler and chains a Rust Promise continuation itself
//     (startDirect/saveDirect in src/js_handler.rs; no deadline);
//   - "proto rust tsfn": the engine drives the handler from tokio through threadsafe functions
//     (jsHandlerAsNative(JsHandler) with the engine's startNative/saveNative).
//
//   node bench/bridge.js [--rounds N] [--cycles N] [--json]
//
// Every cycle starts in its own event-loop turn (setImmediate), as an HTTP request would.
// Rounds are interleaved (every case once per round, in a random order) so machine noise hits
// all cases alike;
// each cell is the median over rounds: wall-clock µs per cycle (and cycles/s), and process CPU
// µs per cycle, all threads (lower is better).

const { makeSession } = require('./lib/payload');
const native = require('../lib/native');
const { Store, ArraySessionHandler } = require('..');
const { MemorySessionHandler } = require('../examples/memory-session-handler');
const { JsHandler } = native;
const bridge = require('../lib/handler-bridge');

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] !== undefined ? Number(args[i + 1]) : def;
};
const ROUNDS = opt('--rounds', 7);
const CYCLES = opt('--cycles', 6400);
const AS_JSON = args.includes('--json');
const NAME = 'ostro_session';

// The same ~1.1 KB session as the other benchmarks, without its token (the engine adds one).
// The same ~1 KB session as every other bench case.
const SESSION = makeSession();

/** The Map-backed example handler with async methods (each returns a Promise). */
class AsyncMemoryHandler extends MemorySessionHandler {
  async read(id) { return super.read(id); }
  async write(id, data) { return super.write(id, data); }
  async destroy(id) { return super.destroy(id); }
  async touch(id) { return super.touch(id); }
}

const UNUSED = new MemorySessionHandler();

// One cycle per path: a request arrives with its cookie, reads, changes one key and saves.
const paths = {
  store: {
    async cycle(handler, id) {
      const s = new Store(NAME, handler, id);
      await s.start();
      s.increment('counter');
      await s.save();
    },
  },
  js: {
    async cycle(handler, id) {
      const s = new Store(NAME, handler, id);
      await bridge.startJs(s, handler, s._s, 30000);
      s.increment('counter');
      await bridge.saveJs(s, handler, s._s, 30000, false, undefined);
    },
  },
  direct: {
    async cycle(handler, id) {
      const s = new Store(NAME, handler, id);
      await native.startDirect(s._s, handler);
      s.increment('counter');
      await native.saveDirect(s._s, handler);
    },
  },
  tsfn: {
    async cycle(bridge, id) {
      const s = new Store(NAME, UNUSED, id); // only for its engine session
      await s._s.startNative(bridge);
      s.increment('counter');
      await s._s.saveNative(bridge, false, undefined);
    },
  },
};

async function seed(handler, ids) {
  for (const id of ids) {
    const s = new Store(NAME, handler, id);
    await s.start();
    s.put(SESSION);
    await s.save();
  }
}

function makeIds(n) {
  return Array.from({ length: n }, (_, i) => `bench${String(i).padStart(35, '0')}`);
}

const IDS = makeIds(64);
const turn = () => new Promise((resolve) => setImmediate(resolve));

/**
 * Wall-clock and process CPU µs per cycle for `cycles` cycles with `concurrency` in flight. CPU
 * time (all threads) is what the comparisons use: on a shared machine it is far less noisy than
 * wall time, which also counts waiting for a core.
 */
async function measure(run, target, concurrency, cycles) {
  const per = Math.ceil(cycles / concurrency);
  const worker = async (w) => {
    const id = IDS[w % IDS.length];
    for (let i = 0; i < per; i++) {
      // Each cycle starts in its own macrotask, as a request does. Without this, paths that
      // never leave the microtask queue would defer Node's finalizers of native objects (one
      // engine session per Store) to whichever case next turns the event loop, and bill it there.
      await turn();
      await run(target, id);
    }
  };
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w)));
  const wall = Number(process.hrtime.bigint() - t0) / 1000 / (per * concurrency);
  const c = process.cpuUsage(c0);
  return { wall, cpu: (c.user + c.system) / (per * concurrency) };
}

async function main() {
  const sync = new MemorySessionHandler();
  const asyncH = new AsyncMemoryHandler();
  const array = new ArraySessionHandler(120);
  const syncBridge = native.jsHandlerAsNative(new JsHandler(sync));
  const asyncBridge = native.jsHandlerAsNative(new JsHandler(asyncH));
  for (const h of [sync, asyncH, array]) await seed(h, IDS);

  const cases = [
    { label: 'JS handler (Map), plain values — Store', run: paths.store.cycle, target: sync, key: 'jsSync' },
    { label: 'JS handler (Map), async methods — Store', run: paths.store.cycle, target: asyncH, key: 'jsAsync' },
    { label: 'Rust array driver — Store', run: paths.store.cycle, target: array, key: 'array' },
    { label: 'alt: JS calls handler, strings to engine, plain values', run: paths.js.cycle, target: sync, key: 'altSync' },
    { label: 'alt: JS calls handler, strings to engine, async methods', run: paths.js.cycle, target: asyncH, key: 'altAsync' },
    { label: 'proto: rust direct + Promise continuation, plain values', run: paths.direct.cycle, target: sync, key: 'directSync' },
    { label: 'proto: rust direct + Promise continuation, async methods', run: paths.direct.cycle, target: asyncH, key: 'directAsync' },
    { label: 'proto: rust tsfn from tokio, plain values', run: paths.tsfn.cycle, target: syncBridge, key: 'tsfnSync', slow: true },
    { label: 'proto: rust tsfn from tokio, async methods', run: paths.tsfn.cycle, target: asyncBridge, key: 'tsfnAsync', slow: true },
  ];
  const results = new Map(cases.map((c) => [c.key, { 1: [], 64: [], cpu1: [], cpu64: [] }]));

  // Warm up every path (JIT, tokio runtime, the deadline timer).
  for (const c of cases) for (const conc of [1, 64]) await measure(c.run, c.target, conc, 640);

  for (let r = 0; r < ROUNDS; r++) {
    // A fresh random order each round, so no case always follows the same neighbour.
    const order = cases.map((c) => [Math.random(), c]).sort((a, b) => a[0] - b[0]).map((x) => x[1]);
    for (const c of order) {
      for (const conc of [1, 64]) {
        // The tsfn path is ~50x slower; fewer cycles keep the run short without changing µs/cycle.
        const n = c.slow ? Math.max(640, CYCLES / 8) : CYCLES;
        const m = await measure(c.run, c.target, conc, n);
        results.get(c.key)[conc].push(m.wall);
        results.get(c.key)[`cpu${conc}`].push(m.cpu);
      }
    }
  }

  const median = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
  const rows = cases.map((c) => {
    const m = results.get(c.key);
    return { key: c.key, label: c.label, c1: median(m[1]), c64: median(m[64]), cpu1: median(m.cpu1), cpu64: median(m.cpu64) };
  });
  // Per-round ratios against the shipped Store path: robust to the machine's drift between rounds.
  const ratios = [
    ['alt JS-calls-handler / Store path, plain values', 'altSync', 'jsSync'],
    ['alt JS-calls-handler / Store path, async methods', 'altAsync', 'jsAsync'],
    ['proto rust direct / Store path, plain values', 'directSync', 'jsSync'],
    ['proto rust direct / Store path, async methods', 'directAsync', 'jsAsync'],
    ['proto rust tsfn / Store path, plain values', 'tsfnSync', 'jsSync'],
    ['proto rust tsfn / Store path, async methods', 'tsfnAsync', 'jsAsync'],
    ['JS handler (Map, plain) / Rust array driver', 'jsSync', 'array'],
  ].map(([label, a, b]) => {
    const ra = results.get(a);
    const rb = results.get(b);
    const per = (c) => median(ra[c].map((v, i) => v / rb[c][i]));
    return { label, c1: per('cpu1'), c64: per('cpu64') };
  });
  if (AS_JSON) {
    console.log(JSON.stringify({ node: process.version, rounds: ROUNDS, cycles: CYCLES, rows, ratios }, null, 2));
    return;
  }
  const w = Math.max(...rows.map((r) => r.label.length));
  const f = (n) => n.toFixed(2).padStart(8);
  const ops = (n) => `${Math.round(1e6 / n).toLocaleString('en-US')}/s`.padStart(10);
  console.log(`bench/bridge.js — one cycle = new Store + start + increment + save, ~1.1 KB session (node ${process.version}, median of ${ROUNDS} rounds)`);
  console.log(`${'path'.padEnd(w)}  ${'c=1 µs'.padStart(8)}  ${'c=1'.padStart(10)}  ${'cpu µs'.padStart(8)}  ${'c=64 µs'.padStart(8)}  ${'c=64'.padStart(10)}  ${'cpu µs'.padStart(8)}`);
  for (const r of rows) console.log(`${r.label.padEnd(w)}  ${f(r.c1)}  ${ops(r.c1)}  ${f(r.cpu1)}  ${f(r.c64)}  ${ops(r.c64)}  ${f(r.cpu64)}`);
  console.log('\nmedian of per-round ratios of CPU µs per cycle (> 1: the first costs more)');
  for (const r of ratios) console.log(`${r.label.padEnd(w)}  c=1 ${`${r.c1.toFixed(2)}×`.padStart(7)}  c=64 ${`${r.c64.toFixed(2)}×`.padStart(7)}`);
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
