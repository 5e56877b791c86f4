'use strict';
// One memory measurement in a fresh process: RSS before and after storing N live sessions of
// identical JSON text (the express-session shape, ~1.2 KB) in one store. Prints one JSON line.
//   node --expose-gc memory-child.js <ours-array|peer-memorystore|raw-map> <N>

const path = require('node:path');
const { idOf } = require('../lib/ids');
const { expressSession, ours, need } = require('../lib/kit');

const [variant, nArg] = process.argv.slice(2);
const N = Number(nArg);

async function settle() {
  for (let i = 0; i < 4; i++) {
    global.gc();
    await new Promise((r) => setImmediate(r));
  }
  return process.memoryUsage();
}

async function main() {
  let store;
  let write;
  let count;
  if (variant === 'ours-array') {
    const { ArraySessionHandler } = ours();
    store = new ArraySessionHandler(120);
    write = (id, text) => store.write(id, text);
    count = async () => {
      let n = 0;
      for (const k of [0, N >> 1, N - 1]) if ((await store.read(idOf(k))).length > 0) n++;
      return n === 3 ? N : -1;
    };
  } else if (variant === 'peer-memorystore') {
    const { MemoryStore } = need('express-session');
    store = new MemoryStore();
    // MemoryStore keeps JSON.stringify(session): hand it the object, as express-session does.
    write = (id, text, obj) => new Promise((resolve, reject) => store.set(id, obj, (e) => (e ? reject(e) : resolve())));
    count = () => new Promise((resolve) => store.length((e, n) => resolve(n)));
  } else if (variant === 'raw-map') {
    store = new Map();
    write = async (id, text) => { store.set(id, text); };
    count = async () => store.size;
  } else {
    throw new Error(`unknown variant ${variant}`);
  }
  // Warm the code paths, then measure from a settled heap.
  await write(idOf(N + 1), JSON.stringify(expressSession(0)), expressSession(0));
  const before = await settle();
  let bytes = 0;
  for (let k = 0; k < N; k++) {
    const obj = expressSession(k);
    const text = JSON.stringify(obj);
    bytes += text.length;
    await write(idOf(k), text, obj);
  }
  const after = await settle();
  const n = await count();
  process.stdout.write(`${JSON.stringify({
    variant,
    n,
    payloadBytes: bytes / N,
    rssBefore: before.rss,
    rssAfter: after.rss,
    bytesPerSession: (after.rss - before.rss) / N,
    heapPerSession: (after.heapUsed - before.heapUsed) / N,
    externalPerSession: (after.external - before.external) / N,
  })}\n`);
}

main().catch((err) => {
  process.stderr.write(`${err && err.stack ? err.stack : err}\n`);
  process.exit(path.basename(__filename) && 1);
});
