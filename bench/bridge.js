'use strict';
// What one session cycle (new Store + start + put + save, on an existing ~1.1 KB session) costs
// through a custom JS handler and through the Rust array driver, at concurrency 1 and 64, in one
// run. Also measures the two designs the Store does not use for JS handlers, so the choice in
// lib/handler-bridge.js stays checked:
//   - "rust direct": Rust calls the handler itself on the JS thread and applies the result in a
//     Promise continuation (startDirect/saveDirect in src/js_handler.rs);
//   - "rust tsfn": the engine drives the handler from tokio through threadsafe functions
//     (JsHandler#asNative with the engine's startNative/saveNative).
//
//   node bench/bridge.js [--rounds N] [--cycles N] [--json]
//
// Rounds are interleaved (every case once per round) so machine noise hits all cases alike;
// each cell is the median over rounds, µs per cycle (lower is better).

const native = require('../lib/native');
const { Store, ArraySessionHandler } = require('..');
const { MemorySessionHandler } = require('../examples/memory-session-handler');
const { JsHandler } = native;

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
const SESSION = {
  _previous: { url: 'https://shop.example.com/catalog/shoes?page=2&sort=price' },
  user: { id: 48213, name: 'Ada Lovelace', email: 'ada@example.com', roles: ['customer', 'beta'], locale: 'en-GB', verified: true },
  cart: {
    currency: 'EUR',
    items: [
      { sku: 'SHOE-RUN-42', name: 'Trail runner', qty: 1, price: 129.9 },
      { sku: 'SOCK-WOOL-M', name: 'Merino socks', qty: 3, price: 14.5 },
      { sku: 'CAP-SUN-01', name: 'Sun cap', qty: 1, price: 19 },
      { sku: 'BAG-DAY-20', name: 'Day pack 20 l', qty: 1, price: 79 },
    ],
    coupon: null,
  },
  prefs: { theme: 'dark', newsletter: false, currency: 'EUR', lastSearch: 'waterproof trail shoes' },
  counter: 0,
  recent: [1041, 1093, 2210, 2291, 3307, 3318, 4011, 5123],
  notes: 'x'.repeat(295),
};

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

/** µs per cycle for `cycles` cycles with `concurrency` in flight. */
async function measure(run, target, concurrency, cycles) {
  const per = Math.ceil(cycles / concurrency);
  const worker = async (w) => {
    const id = IDS[w % IDS.length];
    for (let i = 0; i < per; i++) await run(target, id);
  };
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w)));
  return Number(process.hrtime.bigint() - t0) / 1000 / (per * concurrency);
}

async function main() {
  const sync = new MemorySessionHandler();
  const asyncH = new AsyncMemoryHandler();
  const array = new ArraySessionHandler(120);
  const syncBridge = new JsHandler(sync).asNative();
  const asyncBridge = new JsHandler(asyncH).asNative();
  for (const h of [sync, asyncH, array]) await seed(h, IDS);

  const cases = [
    { label: 'JS handler (Map), plain values — Store', run: paths.store.cycle, target: sync, key: 'jsSync' },
    { label: 'JS handler (Map), async methods — Store', run: paths.store.cycle, target: asyncH, key: 'jsAsync' },
    { label: 'Rust array driver — Store', run: paths.store.cycle, target: array, key: 'array' },
    { label: 'proto: rust direct + Promise continuation, plain values', run: paths.direct.cycle, target: sync, key: 'directSync' },
    { label: 'proto: rust direct + Promise continuation, async methods', run: paths.direct.cycle, target: asyncH, key: 'directAsync' },
    { label: 'proto: rust tsfn from tokio, plain values', run: paths.tsfn.cycle, target: syncBridge, key: 'tsfnSync', slow: true },
    { label: 'proto: rust tsfn from tokio, async methods', run: paths.tsfn.cycle, target: asyncBridge, key: 'tsfnAsync', slow: true },
  ];
  const results = new Map(cases.map((c) => [c.key, { 1: [], 64: [] }]));

  // Warm up every path (JIT, tokio runtime, the deadline timer).
  for (const c of cases) for (const conc of [1, 64]) await measure(c.run, c.target, conc, 640);

  for (let r = 0; r < ROUNDS; r++) {
    for (const c of cases) {
      for (const conc of [1, 64]) {
        // The tsfn path is ~50x slower; fewer cycles keep the run short without changing µs/cycle.
        const n = c.slow ? Math.max(640, CYCLES / 8) : CYCLES;
        results.get(c.key)[conc].push(await measure(c.run, c.target, conc, n));
      }
    }
  }

  const median = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
  const rows = cases.map((c) => {
    const m = results.get(c.key);
    return { key: c.key, label: c.label, c1: median(m[1]), c64: median(m[64]) };
  });
  // Per-round ratios against the shipped JS path: robust to the machine's drift between rounds.
  const ratios = [
    ['rust direct / JS path, plain values', 'directSync', 'jsSync'],
    ['rust direct / JS path, async methods', 'directAsync', 'jsAsync'],
    ['rust tsfn / JS path, plain values', 'tsfnSync', 'jsSync'],
    ['rust tsfn / JS path, async methods', 'tsfnAsync', 'jsAsync'],
    ['JS handler (Map, plain) / Rust array driver', 'jsSync', 'array'],
  ].map(([label, a, b]) => {
    const ra = results.get(a);
    const rb = results.get(b);
    const per = (c) => median(ra[c].map((v, i) => v / rb[c][i]));
    return { label, c1: per(1), c64: per(64) };
  });
  if (AS_JSON) {
    console.log(JSON.stringify({ node: process.version, rounds: ROUNDS, cycles: CYCLES, rows, ratios }, null, 2));
    return;
  }
  const w = Math.max(...rows.map((r) => r.label.length));
  const f = (n) => n.toFixed(2).padStart(8);
  const ops = (n) => `${Math.round(1e6 / n).toLocaleString('en-US')}/s`.padStart(10);
  console.log(`bench/bridge.js — one cycle = new Store + start + increment + save, ~1.1 KB session (node ${process.version}, median of ${ROUNDS} rounds)`);
  console.log(`${'path'.padEnd(w)}  ${'c=1 µs'.padStart(8)}  ${'c=1'.padStart(10)}  ${'c=64 µs'.padStart(8)}  ${'c=64'.padStart(10)}`);
  for (const r of rows) console.log(`${r.label.padEnd(w)}  ${f(r.c1)}  ${ops(r.c1)}  ${f(r.c64)}  ${ops(r.c64)}`);
  console.log('\nmedian of per-round ratios (> 1: the first is slower)');
  for (const r of ratios) console.log(`${r.label.padEnd(w)}  ${`${r.c1.toFixed(2)}×`.padStart(8)}  ${''.padStart(10)}  ${`${r.c64.toFixed(2)}×`.padStart(8)}`);
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
