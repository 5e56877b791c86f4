'use strict';
// `npm run bench:engine`: what one call into the engine costs, beside a no-op native call and a
// plain JS object doing the same work, measured in one process with the rounds interleaved
// (A B C … A B C …) so that machine noise hits every case alike. Prints best and median per call
// and the two targets of issue 2 with PASS/MISS.
//
//   node bench/engine.js [--rounds N] [--ms M] [--json]
//
// Numbers are per call; the ratios are what matters on a shared 2-core machine.

const fs = require('node:fs');
const fsp = require('node:fs/promises');
const os = require('node:os');
const path = require('node:path');
// The package under test: this checkout, or another build of it via OSTRO_BENCH_ROOT.
const ROOT = process.env.OSTRO_BENCH_ROOT ? path.resolve(process.env.OSTRO_BENCH_ROOT) : path.resolve(__dirname, '..');
const { Store, ArraySessionHandler, FileSessionHandler } = require(ROOT);
const { describeAddon } = require('./lib/addon');
const { makeSession, SESSION_JSON, SESSION_BYTES } = require('./lib/payload');
const { median, best, fmt, ratio, textTable } = require('./lib/stats');

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] !== undefined ? Number(args[i + 1]) : def;
};
const ROUNDS = opt('--rounds', 9);
const SYNC_MS = opt('--ms', 40); // target duration of one round of one sync case
const ASYNC_MS = Math.max(SYNC_MS * 3, 60);
const AS_JSON = args.includes('--json');

// Sinks keep V8 from removing the measured work.
let sink = 0;
const keep = (v) => {
  sink = (sink + (typeof v === 'string' ? v.length : v === undefined ? 1 : 3)) | 0;
};

const SHORTS = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel'];
const OBJ = makeSession(); // the 1 KB value used by get/put of an object

// ----- the session objects under test ---------------------------------------------------------

const arrayHandler = new ArraySessionHandler(120);
const store = new Store('ostro_session', arrayHandler);
store.put('name', 'Ada Lovelace');
store.put('obj', OBJ);
const plain = { name: 'Ada Lovelace', obj: OBJ };

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ostro-bench-engine-'));
const fileHandler = new FileSessionHandler(path.join(dir, 'native'), 120);
const jsDir = path.join(dir, 'js');
fs.mkdirSync(jsDir, { mode: 0o700 });

const ID = new Store('x', arrayHandler).getId(); // a valid engine id
const plainMap = new Map([[ID, SESSION_JSON]]);

// ----- cases ----------------------------------------------------------------------------------
// Each sync case runs its own loop (no shared megamorphic call site) and returns elapsed ns.

const now = () => process.hrtime.bigint();

const syncCases = [
  {
    id: 'noop', label: 'native no-op method  store._s.noop()',
    run(n) { const s = store._s; const t = now(); for (let i = 0; i < n; i++) s.noop(); return Number(now() - t); },
  },
  {
    id: 'get.str', label: 'Store.get(short string)',
    run(n) { const t = now(); for (let i = 0; i < n; i++) keep(store.get('name')); return Number(now() - t); },
  },
  {
    id: 'js.get.str', label: 'plain object  o[k]  (short string)',
    run(n) { const k = 'name'; const t = now(); for (let i = 0; i < n; i++) keep(plain[k]); return Number(now() - t); },
  },
  {
    id: 'put.str', label: 'Store.put(k, short string)',
    run(n) { const t = now(); for (let i = 0; i < n; i++) store.put('name', SHORTS[i & 7]); return Number(now() - t); },
  },
  {
    id: 'js.put.str', label: 'plain object  o[k] = v  (short string)',
    run(n) { const k = 'name'; const t = now(); for (let i = 0; i < n; i++) plain[k] = SHORTS[i & 7]; keep(plain[k]); return Number(now() - t); },
  },
  {
    id: 'get.obj', label: 'Store.get(1 KB object)',
    run(n) { const t = now(); for (let i = 0; i < n; i++) keep(store.get('obj').cart); return Number(now() - t); },
  },
  {
    id: 'js.copy.obj', label: 'JSON.parse(JSON.stringify(obj))  (1 KB copy)',
    run(n) { const o = plain.obj; const t = now(); for (let i = 0; i < n; i++) keep(JSON.parse(JSON.stringify(o)).cart); return Number(now() - t); },
  },
  {
    id: 'js.get.obj', label: 'plain object  o[k]  (1 KB, by reference)',
    run(n) { const k = 'obj'; const t = now(); for (let i = 0; i < n; i++) keep(plain[k].cart); return Number(now() - t); },
  },
  {
    id: 'put.obj', label: 'Store.put(k, 1 KB object)',
    run(n) { const t = now(); for (let i = 0; i < n; i++) store.put('obj', OBJ); return Number(now() - t); },
  },
  {
    id: 'js.stringify.obj', label: 'JSON.stringify(obj)  (1 KB)',
    run(n) { const t = now(); for (let i = 0; i < n; i++) keep(JSON.stringify(OBJ)); return Number(now() - t); },
  },
  {
    id: 'js.parse.obj', label: 'JSON.parse(text)  (1 KB)',
    run(n) { const t = now(); for (let i = 0; i < n; i++) keep(JSON.parse(SESSION_JSON).cart); return Number(now() - t); },
  },
  {
    id: 'js.put.obj', label: 'plain object  o[k] = v  (1 KB, by reference)',
    run(n) { const k = 'obj'; const t = now(); for (let i = 0; i < n; i++) plain[k] = i & 1 ? OBJ : plain; keep(plain[k]); plain[k] = OBJ; return Number(now() - t); },
  },
];

// Every async case starts each cycle in its own macrotask (setImmediate), as a request does: in
// one long microtask chain Node never runs N-API finalizers, so native memory would pile up for
// the whole round and the cycle would measure page faults.
const turn = () => new Promise((resolve) => setImmediate(resolve));

// One store cycle: a new Store for a known id (as a request does), start, change two keys, save.
async function storeCycle(handler, i) {
  const s = new Store('ostro_session', handler, ID);
  await s.start();
  s.increment('counter');
  s.put('lastSeen', i);
  await s.save();
}

// The same work on plain JS: a Map of JSON strings behind async functions.
const mapRead = async (id) => plainMap.get(id) || '';
const mapWrite = async (id, data) => { plainMap.set(id, data); };

// The same work with fs.promises: read, then write a temp file and rename it over.
let tmpSeq = 0;
async function jsFileCycle(i) {
  const file = path.join(jsDir, ID);
  let raw = '';
  try { raw = await fsp.readFile(file, 'utf8'); } catch { /* missing */ }
  const o = raw ? JSON.parse(raw) : {};
  o.counter = (o.counter || 0) + 1;
  o.lastSeen = i;
  const tmp = path.join(jsDir, `.${ID}.${process.pid}.${tmpSeq++}.tmp`);
  await fsp.writeFile(tmp, JSON.stringify(o), { mode: 0o600 });
  await fsp.rename(tmp, file);
}

const asyncCases = [
  {
    id: 'cycle.array', label: 'Store cycle, array driver',
    async run(n) { const t = now(); for (let i = 0; i < n; i++) { await turn(); await storeCycle(arrayHandler, i); } return Number(now() - t); },
  },
  {
    id: 'raw.array', label: 'array handler read + write alone (native, no engine)',
    async run(n) { const h = arrayHandler._native; const t = now(); for (let i = 0; i < n; i++) { await turn(); keep(await h.read(ID)); await h.write(ID, SESSION_JSON); } return Number(now() - t); },
  },
  {
    id: 'js.cycle.map', label: 'plain JS cycle: Map + JSON.parse/stringify',
    async run(n) {
      const t = now();
      for (let i = 0; i < n; i++) {
        await turn();
        const o = JSON.parse(await mapRead(ID));
        o.counter = (o.counter || 0) + 1;
        o.lastSeen = i;
        await mapWrite(ID, JSON.stringify(o));
      }
      return Number(now() - t);
    },
  },
  {
    id: 'cycle.file', label: 'Store cycle, file driver',
    async run(n) { const t = now(); for (let i = 0; i < n; i++) { await turn(); await storeCycle(fileHandler, i); } return Number(now() - t); },
  },
  {
    id: 'raw.file', label: 'file handler read + write alone (native, no engine)',
    async run(n) { const h = fileHandler._native; const t = now(); for (let i = 0; i < n; i++) { await turn(); keep(await h.read(ID)); await h.write(ID, SESSION_JSON); } return Number(now() - t); },
  },
  {
    id: 'js.cycle.file', label: 'plain JS cycle: fs.promises read + tmp write + rename',
    async run(n) { const t = now(); for (let i = 0; i < n; i++) { await turn(); await jsFileCycle(i); } return Number(now() - t); },
  },
  {
    id: 'turn', label: 'one event-loop turn alone (setImmediate; in every row above)',
    async run(n) { const t = now(); for (let i = 0; i < n; i++) await turn(); return Number(now() - t); },
  },
  {
    id: 'async.noop', label: 'native async no-op (array touch, resolved in place)',
    async run(n) { const h = arrayHandler._native; const t = now(); for (let i = 0; i < n; i++) { await turn(); keep(await h.touch(ID)); } return Number(now() - t); },
  },
  {
    id: 'async.hop', label: 'native async hop (file touch: tokio blocking hop + 1 open/futimens)',
    async run(n) { const h = fileHandler._native; const t = now(); for (let i = 0; i < n; i++) { await turn(); keep(await h.touch(ID)); } return Number(now() - t); },
  },
];

// ----- calibration and rounds -----------------------------------------------------------------

function calibrateSync(c) {
  let n = 1000;
  for (;;) {
    const ns = c.run(n);
    if (ns > 10e6 || n >= 1e8) return Math.max(1, Math.round((n * SYNC_MS * 1e6) / ns));
    n *= 4;
  }
}

async function calibrateAsync(c) {
  let n = 10;
  for (;;) {
    const ns = await c.run(n);
    if (ns > 20e6 || n >= 1e7) return Math.max(5, Math.round((n * ASYNC_MS * 1e6) / ns));
    n *= 4;
  }
}

async function main() {
  await fileHandler.write(ID, SESSION_JSON);
  await arrayHandler.write(ID, SESSION_JSON);
  await fsp.writeFile(path.join(jsDir, ID), SESSION_JSON, { mode: 0o600 });

  for (const c of syncCases) { c.n = calibrateSync(c); c.samples = []; }
  for (const c of asyncCases) { c.n = await calibrateAsync(c); c.samples = []; }

  for (let r = 0; r < ROUNDS; r++) {
    // Rotate the starting case every round so no case always runs first after a GC.
    for (let j = 0; j < syncCases.length; j++) {
      const c = syncCases[(j + r) % syncCases.length];
      c.samples.push(c.run(c.n) / c.n);
    }
    for (let j = 0; j < asyncCases.length; j++) {
      const c = asyncCases[(j + r) % asyncCases.length];
      c.samples.push((await c.run(c.n)) / c.n);
    }
  }
  report();
}

function report() {
  const by = Object.fromEntries([...syncCases, ...asyncCases].map((c) => [c.id, c]));
  const b = (id) => best(by[id].samples);
  const m = (id) => median(by[id].samples);
  // Per-round paired ratios: both cases ran in the same round, so load hits both.
  const pairedMedian = (a, z) => median(by[a].samples.map((v, i) => v / by[z].samples[i]));

  const out = [];
  const load = os.loadavg().map((x) => x.toFixed(2)).join(' ');
  out.push(`@ostro/session engine benchmark  ${new Date().toISOString()}`);
  out.push(`node ${process.version}, ${os.cpus().length} × ${os.cpus()[0].model.trim()}, loadavg ${load}`);
  out.push(describeAddon(ROOT).text);
  out.push(`${ROUNDS} interleaved rounds; payload ${SESSION_BYTES} bytes of JSON; sync cases ~${SYNC_MS} ms per round`);
  out.push('');

  const us = (ns) => fmt(ns / 1000);
  const nsf = (ns) => fmt(ns, ns >= 100 ? 0 : 1);
  out.push('Per call (sync, ns):');
  out.push(textTable(['case', 'best ns', 'median ns'], syncCases.map((c) => [c.label, nsf(b(c.id)), nsf(m(c.id))])));
  out.push('');
  out.push('Per cycle (async, sequential, µs):');
  out.push(textTable(['case', 'best µs', 'median µs'], asyncCases.map((c) => [c.label, us(b(c.id)), us(m(c.id))])));
  out.push('');

  const rows = [
    ['get short string', 'get.str', 'js.get.str', 'noop'],
    ['put short string', 'put.str', 'js.put.str', 'noop'],
    ['get 1 KB object', 'get.obj', 'js.copy.obj', 'noop'],
    ['put 1 KB object', 'put.obj', 'js.stringify.obj', 'noop'],
    ['start+save, array', 'cycle.array', 'js.cycle.map', 'raw.array'],
    ['start+save, file', 'cycle.file', 'js.cycle.file', 'raw.file'],
  ];
  out.push('Side by side (best; ratios are per-round medians):');
  out.push(textTable(
    ['operation', 'Store', 'plain JS', 'native floor', 'Store/plain JS', 'Store/floor'],
    rows.map(([label, a, js, fl]) => {
      const cycle = a.startsWith('cycle');
      const f = (id) => (cycle ? `${us(b(id))} µs` : `${nsf(b(id))} ns`);
      return [label, f(a), f(js), f(fl), ratio(pairedMedian(a, js)), ratio(pairedMedian(a, fl))];
    }),
  ));
  out.push('  plain JS: o[k] / o[k]=v for strings, JSON.parse(JSON.stringify) copy for an object get,');
  out.push('  JSON.stringify for an object put, Map+JSON or fs.promises tmp+rename for cycles.');
  out.push('  native floor: the no-op method for sync calls; the handler\'s own read+write for cycles.');
  out.push('');

  const targets = [
    ['short-string get <= 2.5x native no-op', 'get.str', 'noop', 2.5],
    ['short-string put <= 2.5x native no-op', 'put.str', 'noop', 2.5],
    ['1 KB object get <= 2x JSON.parse(JSON.stringify(obj))', 'get.obj', 'js.copy.obj', 2],
  ];
  out.push('Targets (issue 2):');
  const results = [];
  out.push(textTable(
    ['target', 'best/best', 'median of rounds', 'verdict'],
    targets.map(([label, a, z, max]) => {
      const rb = b(a) / b(z);
      const rm = pairedMedian(a, z);
      // Verdict on the per-round median ratio; best/best shown as the low-noise view.
      const ok = rm <= max;
      results.push({ target: label, bestRatio: rb, medianRatio: rm, max, pass: ok });
      return [label, ratio(rb), ratio(rm), ok ? 'PASS' : 'MISS'];
    }),
  ));
  console.log(out.join('\n'));
  if (AS_JSON) {
    const cases = Object.fromEntries(Object.values(by).map((c) => [c.id, { label: c.label, bestNs: b(c.id), medianNs: m(c.id) }]));
    fs.writeFileSync(path.join(__dirname, 'results', 'engine.json'), JSON.stringify({ date: new Date().toISOString(), cases, targets: results }, null, 2));
  }
}

main()
  .catch((err) => { console.error(err); process.exitCode = 1; })
  .finally(() => { fs.rmSync(dir, { recursive: true, force: true }); if (sink === 0.5) console.log(sink); });
