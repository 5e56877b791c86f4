'use strict';
// A benchmark worker: one child process per contender, driven by run.js over IPC, so that each
// contender's CPU time, heap and event loop are its own. Commands:
//   init {module, mode, ctx}   load the contender; reply {available, reason}
//   seed {count}               store sessions idOf(0..count-1), then check one full cycle
//   run {concurrency, ms, pool, random, stride}  store cycles for `ms`; reply throughput, latency, CPU
//   listen                     (http mode) start the server on 127.0.0.1:0; reply {port}
//   mark / collect             CPU, requests and event-loop delay between the two
//   close                      close the contender and exit

const http = require('node:http');
const { monitorEventLoopDelay, performance } = require('node:perf_hooks');
const { idOf } = require('./ids');
const { quantile } = require('./stats');

let contender = null; // the module
let inst = null; // what store() / http() returned
let server = null;
let requests = 0;
let window = null;

function eld() {
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  return h;
}

const ms = (ns) => ns / 1e6;

/** Linux CPU pressure: µs in which some task waited for a CPU (machine-wide); null elsewhere. */
function cpuPressureUs() {
  try {
    const m = /^some .*total=(\d+)/m.exec(require('node:fs').readFileSync('/proc/pressure/cpu', 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}
const pressureShare = (p0, elapsedMs) => {
  const p1 = cpuPressureUs();
  return p0 === null || p1 === null ? null : (p1 - p0) / (elapsedMs * 1000);
};
const yieldToLoop = () => new Promise((resolve) => setImmediate(resolve));

async function runCycles({ concurrency, ms: duration, pool, random, stride = 1, warm }) {
  const lat = [];
  let count = 0;
  let errors = 0;
  let firstError = null;
  let seq = 0;
  const slice = Math.max(1, Math.floor(pool / concurrency));
  const loop = eld();
  const deadline = performance.now() + duration;
  const cpu0 = process.cpuUsage();
  const psi0 = cpuPressureUs();
  const t0 = performance.now();
  const lane = async (w) => {
    let j = 0;
    while (performance.now() < deadline) {
      // Each cycle starts in a new macrotask, as a request does. Without this, a store whose
      // Promises resolve in place would run a whole window as one macrotask: Node then never
      // gets to run N-API finalizers (deferred to the event loop), so native memory piles up
      // for the whole window and the run measures page faults instead of the store.
      await yieldToLoop();
      // Each lane owns its own ids (no two in-flight cycles on one id), unless random.
      // With a stride, the pool is every stride-th id (a working set spread over a larger store).
      const k = stride * (random ? Math.floor(Math.random() * pool) : (w * slice + (j++ % slice)) % pool);
      const s = performance.now();
      try {
        await inst.cycle(idOf(k), seq++);
      } catch (err) {
        errors++;
        if (!firstError) firstError = err;
        if (errors > 50 && errors > count) throw firstError;
        continue;
      }
      lat.push(performance.now() - s);
      count++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, w) => lane(w)));
  const elapsed = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const psi = pressureShare(psi0, elapsed);
  loop.disable();
  if (warm) return { count };
  return {
    cycles: count,
    errors,
    firstError: firstError ? String(firstError.message || firstError) : null,
    elapsedMs: elapsed,
    perSec: (count * 1000) / elapsed,
    p50: quantile(lat, 0.5),
    p99: quantile(lat, 0.99),
    cpuUs: (cpu.user + cpu.system) / Math.max(1, count),
    eldP99: ms(loop.percentile(99)),
    eldMax: ms(loop.max),
    psi,
  };
}

async function seed({ count }) {
  const ids = Array.from({ length: count }, (_, k) => idOf(k));
  const t0 = performance.now();
  await inst.seed(ids);
  const seedMs = performance.now() - t0;
  // Prove the contender really does the work: one cycle, then the data must be there, changed.
  if (contender.kind !== 'floor') {
    await inst.cycle(ids[0], 1);
    const o = await inst.check(ids[0]);
    if (!o || !o.user || o.user.name !== 'Ada Lovelace' || !(o.counter >= 1)) {
      throw new Error(`sanity check failed: after a cycle the session reads back as ${JSON.stringify(o).slice(0, 120)}`);
    }
  }
  return { seedMs };
}

/** Lays down `count` sessions in the driver's own format, then proves one reads back and cycles. */
async function bulkSeed({ count, workingSet }) {
  if (typeof inst.bulk !== 'function') throw new Error('this contender has no bulk seeding');
  const t0 = performance.now();
  await inst.bulk(count, workingSet);
  const seedMs = performance.now() - t0;
  for (const k of [0, count - 1]) {
    await inst.cycle(idOf(k), 1);
    const o = await inst.check(idOf(k));
    if (!o || !o.user || !(o.counter >= 1)) throw new Error(`bulk sanity check failed for id #${k}: ${JSON.stringify(o).slice(0, 120)}`);
  }
  return { seedMs };
}

async function listen() {
  server = http.createServer((req, res) => {
    requests++;
    inst.listener(req, res);
  });
  server.keepAliveTimeout = 60000;
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: server.address().port };
}

function mark() {
  if (window) window.loop.disable();
  window = { cpu: process.cpuUsage(), requests, loop: eld(), t: performance.now(), psi: cpuPressureUs() };
  return {};
}

function collect() {
  const cpu = process.cpuUsage(window.cpu);
  window.loop.disable();
  const elapsedMs = performance.now() - window.t;
  const out = {
    cpuUs: cpu.user + cpu.system,
    requests: requests - window.requests,
    elapsedMs,
    psi: pressureShare(window.psi, elapsedMs),
    eldP99: ms(window.loop.percentile(99)),
    eldMax: ms(window.loop.max),
    rssMB: process.memoryUsage().rss / 1048576,
  };
  window = null;
  return out;
}

async function init({ module, mode, ctx }) {
  contender = require(module);
  const make = contender[mode];
  if (typeof make !== 'function') return { available: false, reason: `no ${mode} case for this contender` };
  try {
    inst = await make(ctx);
  } catch (err) {
    if (err && err.code === 'NOT_AVAILABLE') return { available: false, reason: err.message };
    throw err;
  }
  return { available: true };
}

async function close() {
  try {
    if (server) await new Promise((resolve) => { server.closeAllConnections(); server.close(resolve); });
    if (inst && inst.close) await inst.close();
  } finally {
    setImmediate(() => process.exit(0));
  }
  return {};
}

const commands = { init, seed, bulk: bulkSeed, run: runCycles, listen, mark, collect, close };

process.on('message', async (msg) => {
  const fn = commands[msg.cmd];
  try {
    if (!fn) throw new Error(`unknown command ${msg.cmd}`);
    const result = await fn(msg.args || {});
    process.send({ id: msg.id, ok: true, result });
  } catch (err) {
    process.send({ id: msg.id, ok: false, error: String((err && err.stack) || err) });
  }
});
process.on('disconnect', () => process.exit(0));
