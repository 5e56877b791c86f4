'use strict';
// Child processes for __test__/js-handler.test.js. `node js-handler-child.js <scenario>`:
//   exit  — uses JS handlers on every bridge path (request path with the deadline timer armed,
//           scheduleGc, an open long-lived bridge left unclosed), prints "done <ms>" and
//           returns; the parent measures how long the process takes to exit after that.
//   rss   — (needs --expose-gc) 100,000 Stores on one JS handler; prints RSS after the first
//           10,000 and at the end, as JSON. Run it with a fixed V8 young generation
//           (--min-semi-space-size=16 --max-semi-space-size=16): V8 otherwise doubles it
//           from 8 to 32 MB as it sees fit, a step in RSS that has nothing to do with sessions.
//   panic — a Rust panic inside the bridge: prints how the Promise settled, then uses a Store.
//   cycle — (needs --expose-gc) handlers that refer back to the holder of their bridge: the ones
//           whose bridge was closed must be collected; prints counts as JSON.
const { performance } = require('node:perf_hooks');
const { Store } = require('../..');
const bridge = require('../../lib/handler-bridge');
const { MemorySessionHandler } = require('../../examples/memory-session-handler');

class AsyncMemory extends MemorySessionHandler {
  async read(id) { return super.read(id); }
  async write(id, data) { return super.write(id, data); }
  async destroy(id) { return super.destroy(id); }
  async touch(id) { return super.touch(id); }
  async gc(secs) { return super.gc(secs); }
}

async function exitScenario() {
  const h = new AsyncMemory();
  const s = new Store('child', h); // default timeoutMs 30 s: the deadline timer is armed
  await s.start();
  s.put('k', 'v');
  await s.save();
  const again = new Store('child', h, s.getId());
  await again.start();
  if (again.get('k') !== 'v') throw new Error('round trip failed');
  await again.save();
  await bridge.scheduleGc(h, 3600);
  const long = bridge.openBridge(h); // deliberately never closed: weak tsfns must not hold Node
  await long.read(s.getId());
  process.stdout.write(`done ${performance.now()}\n`);
}

const rss = () => {
  global.gc();
  global.gc();
  return process.memoryUsage().rss;
};

async function rssScenario() {
  const h = new AsyncMemory();
  const ids = [];
  const TOTAL = 100000;
  const IDS = 1000; // the handler keeps 1,000 sessions; Stores come and go
  let at10k = 0;
  for (let i = 0; i < TOTAL; i++) {
    const s = new Store('rss', h, ids[i % IDS]);
    await s.start();
    s.put('i', i);
    await s.save();
    if (i < IDS) ids.push(s.getId());
    if (i % 1000 === 999) await bridge.scheduleGc(h, 3600);
    // Requests reach a real app through I/O callbacks, so the event loop turns between them; Node
    // runs the finalizers of native objects (each Store's engine session) only when it does.
    if (i % 100 === 99) await new Promise((resolve) => setImmediate(resolve));
    if (i === 9999) at10k = rss();
  }
  const end = rss();
  process.stdout.write(`${JSON.stringify({ at10k, end, sessions: h.sessions.size })}\n`);
}

async function cycleScenario() {
  const N = 200;
  let collected = 0;
  const closedIds = new Set();
  const reg = new FinalizationRegistry((i) => {
    if (closedIds.has(i)) collected++;
  });
  for (let i = 0; i < N; i++) {
    const h = new MemorySessionHandler();
    const owner = { bridge: bridge.openBridge(h) };
    h.owner = owner; // the back reference: handler -> owner -> bridge -> tsfn -> handler
    await owner.bridge.gc(60);
    if (i % 2 === 0) {
      closedIds.add(i);
      await owner.bridge.close();
    }
    reg.register(h, i);
  }
  // Released threadsafe functions drop their function references on a later loop turn.
  for (let round = 0; round < 50 && collected < closedIds.size; round++) {
    global.gc();
    await new Promise((r) => setTimeout(r, 10));
  }
  process.stdout.write(`${JSON.stringify({ closed: closedIds.size, collected })}\n`);
}

async function panicScenario() {
  const native = require('../../lib/native');
  const { fromNative } = require('../../lib/errors');
  let result;
  try {
    await native.__panicInBridge();
    result = { rejected: false };
  } catch (err) {
    const e = fromNative(err);
    result = { rejected: true, code: e.code, message: e.message };
  }
  const s = new Store('child', new MemorySessionHandler());
  result.afterwards = await s.start();
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

const scenarios = { exit: exitScenario, rss: rssScenario, cycle: cycleScenario, panic: panicScenario };
scenarios[process.argv[2]]().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
