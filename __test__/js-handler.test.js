'use strict';
// Custom JS session handlers: the docs' example, handler shapes, every failure of the contract,
// the threadsafe-function paths (gc off the request path, the timeoutMs timer), load, process
// exit and memory.
const test = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { performance } = require('node:perf_hooks');
const { Store, SessionHandlerInterface, ArraySessionHandler } = require('..');
const bridge = require('../lib/handler-bridge');
const native = require('../lib/native');

const NAME = 'ostro_session';
const CHILD = path.join(__dirname, 'support', 'js-handler-child.js');

// ----- the docs' example: a MongoDB-shaped handler, with a Map as the database ---------------------

/** Just enough of a MongoDB collection, async like the driver, over a Map. */
class FakeCollection {
  constructor() {
    this.docs = new Map();
  }
  async findOne(query) {
    const d = this.docs.get(query._id);
    return d ? { ...d } : null;
  }
  async updateOne(query, update, options) {
    const d = this.docs.get(query._id);
    if (!d && !(options && options.upsert)) return { matchedCount: 0 };
    this.docs.set(query._id, { ...(d || { _id: query._id }), ...update.$set });
    return { matchedCount: d ? 1 : 0 };
  }
  async deleteOne(query) {
    return { deletedCount: this.docs.delete(query._id) ? 1 : 0 };
  }
  async deleteMany(query) {
    let deletedCount = 0;
    for (const [id, d] of this.docs) {
      if (d.last_activity < query.last_activity.$lt) {
        this.docs.delete(id);
        deletedCount++;
      }
    }
    return { deletedCount };
  }
}

/** The docs' custom driver, as an app would write it. */
class MongoSessionHandler extends SessionHandlerInterface {
  constructor(db, collectionName) {
    super();
    this.db = db;
    this.collectionName = collectionName;
    this.collection = null;
  }
  async open(savePath, sessionName) {
    this.collection = this.db.collection(this.collectionName);
    this.openedWith = [savePath, sessionName];
  }
  async close() {
    this.collection = null;
  }
  async read(sessionId) {
    const doc = await this.collection.findOne({ _id: sessionId });
    return doc ? doc.payload : '';
  }
  async write(sessionId, data, meta) {
    await this.collection.updateOne(
      { _id: sessionId },
      { $set: { payload: data, last_activity: Date.now(), ip_address: meta && meta.ip, user_agent: meta && meta.userAgent } },
      { upsert: true },
    );
  }
  async destroy(sessionId) {
    await this.collection.deleteOne({ _id: sessionId });
  }
  async gc(lifetimeSeconds) {
    const r = await this.collection.deleteMany({ last_activity: { $lt: Date.now() - lifetimeSeconds * 1000 } });
    return r.deletedCount;
  }
}

function fakeDb() {
  const collections = new Map();
  return {
    collection(name) {
      if (!collections.has(name)) collections.set(name, new FakeCollection());
      return collections.get(name);
    },
  };
}

test('the docs example: a MongoDB-shaped handler through a full request cycle', async () => {
  const db = fakeDb();
  const handler = new MongoSessionHandler(db, 'sessions');
  const s = new Store(NAME, handler);
  s.setRequestMeta({ ip: '203.0.113.9', userAgent: 'test-agent' });
  await s.start();
  assert.deepEqual(handler.openedWith, ['', NAME]);
  s.put('user', { id: 7, name: 'Ada' });
  s.flash('status', 'Profile updated.');
  await s.save();

  const doc = db.collection('sessions').docs.get(s.getId());
  assert.equal(typeof doc.payload, 'string');
  assert.equal(doc.ip_address, '203.0.113.9');
  assert.equal(doc.user_agent, 'test-agent');

  const next = new Store(NAME, handler, s.getId());
  await next.start();
  assert.deepEqual(next.get('user'), { id: 7, name: 'Ada' });
  assert.equal(next.get('status'), 'Profile updated.');
  assert.equal(next.token(), s.token());
  await next.save();

  const third = new Store(NAME, handler, s.getId());
  await third.start();
  assert.equal(third.get('status'), null, 'flash data lasts one request');

  // gc through the threadsafe-function path removes what is idle.
  db.collection('sessions').docs.get(s.getId()).last_activity -= 10000;
  assert.equal(await bridge.scheduleGc(handler, 5), 1);
  const gone = new Store(NAME, handler, s.getId());
  await gone.start();
  assert.equal(gone.get('user'), null);
});

// ----- handler shapes ---------------------------------------------------------------------------

function syncHandler() {
  const m = new Map();
  return {
    m,
    read: (id) => m.get(id),
    write: (id, d) => {
      m.set(id, d);
    },
    destroy: (id) => {
      m.delete(id);
    },
    touch: (id) => m.has(id),
    gc: () => 0,
  };
}

function asyncHandler() {
  const m = new Map();
  return {
    m,
    read: async (id) => m.get(id) ?? null,
    write: async (id, d) => {
      m.set(id, d);
    },
    destroy: async (id) => {
      m.delete(id);
    },
    touch: async (id) => m.has(id),
    gc: async () => undefined,
  };
}

function mixedHandler() {
  const m = new Map();
  return {
    m,
    read: (id) => Promise.resolve(m.get(id) || ''),
    write(id, d) {
      m.set(id, d); // plain value
    },
    async destroy(id) {
      m.delete(id);
    },
    touch: (id) => (m.has(id) ? Promise.resolve(true) : false),
  };
}

for (const [label, make] of [['sync', syncHandler], ['async', asyncHandler], ['mixed', mixedHandler]]) {
  test(`handler shape: ${label} methods through start, save, touch, regenerate, invalidate and gc`, async () => {
    const h = make();
    const s = new Store(NAME, h);
    await s.start();
    s.put('n', 1);
    await s.save();
    assert.equal(JSON.parse(h.m.get(s.getId())).n, 1);

    const again = new Store(NAME, h, s.getId());
    await again.start();
    assert.equal(again.get('n'), 1);
    await again.save(); // unchanged: touch

    const old = again.getId();
    await again.start();
    await again.regenerate(true);
    await again.save();
    assert.equal(h.m.has(old), false);
    assert.equal(JSON.parse(h.m.get(again.getId())).n, 1);

    const before = again.getId();
    await again.start();
    await again.invalidate();
    await again.save();
    assert.equal(h.m.has(before), false);
    assert.equal(await bridge.scheduleGc(h, 60), 0, 'gc returning 0, undefined or missing counts as 0');
  });
}

test('non-native thenables are awaited like Promises', async () => {
  const m = new Map();
  const thenable = (v) => ({ then: (resolve) => resolve(v) });
  const h = {
    read: (id) => thenable(m.get(id) || ''),
    write: (id, d) => thenable(m.set(id, d) && undefined),
    destroy: (id) => thenable(m.delete(id) && undefined),
  };
  const s = new Store(NAME, h);
  await s.start();
  s.put('t', 'yes');
  await s.save();
  const again = new Store(NAME, h, s.getId());
  await again.start();
  assert.equal(again.get('t'), 'yes');
});

test('the JS-calls-handler path kept for bench/bridge.js still completes a cycle', async () => {
  for (const h of [syncHandler(), asyncHandler()]) {
    const s = new Store(NAME, h);
    await bridge.startJs(s, h, s._s, 1000);
    s.put('k', 1);
    await bridge.saveJs(s, h, s._s, 1000, false, undefined);
    const again = new Store(NAME, h, s.getId());
    await bridge.startJs(again, h, again._s, 1000);
    assert.equal(again.get('k'), 1);
    await bridge.saveJs(again, h, again._s, 1000, false, undefined); // unchanged: touch
  }
});

// ----- lifecycle --------------------------------------------------------------------------------

function recording(base = syncHandler()) {
  const calls = [];
  const h = Object.create(base);
  for (const m of ['open', 'close', 'read', 'write', 'destroy', 'touch', 'gc']) {
    const f = base[m];
    if (typeof f !== 'function') continue;
    h[m] = function (...args) {
      calls.push([m, ...args]);
      return f.apply(base, args);
    };
  }
  h.open = function (...args) {
    calls.push(['open', ...args]);
  };
  h.close = function () {
    calls.push(['close']);
  };
  h.calls = calls;
  h.named = (name) => calls.filter((c) => c[0] === name);
  return h;
}

test('open() runs once per handler, before the first read, shared by concurrent first Stores; close() is never called by a Store', async () => {
  const h = recording();
  await Promise.all(Array.from({ length: 20 }, async () => {
    const s = new Store(NAME, h);
    await s.start();
    s.put('x', 1);
    await s.save();
    await s.start();
    await s.migrate(true);
    await s.invalidate();
    await s.save();
  }));
  assert.equal(h.named('open').length, 1);
  assert.equal(h.calls[0][0], 'open');
  assert.deepEqual(h.calls[0], ['open', '', NAME]);
  assert.equal(h.named('close').length, 0);
});

test('an open() that rejects rejects the operation, and is retried by the next one', async () => {
  const h = recording();
  const boom = new Error('database down');
  let fail = 1;
  h.open = async function () {
    h.calls.push(['open']);
    if (fail-- > 0) throw boom;
  };
  const s = new Store(NAME, h);
  await assert.rejects(s.start(), (err) => err === boom);
  assert.equal(h.named('read').length, 0, 'read must not run before open succeeded');
  const t = new Store(NAME, h);
  assert.equal(await t.start(), true);
  await new Store(NAME, h).start();
  assert.equal(h.named('open').length, 2);
});

test('migrate(true), regenerate(true) and invalidate() call destroy with the old id; migrate() does not', async () => {
  const h = recording();
  const s = new Store(NAME, h);
  await s.start();
  const a = s.getId();
  await s.migrate();
  assert.equal(h.named('destroy').length, 0);
  const b = s.getId();
  await s.migrate(true);
  const c = s.getId();
  await s.regenerate(true);
  const d = s.getId();
  await s.invalidate();
  assert.deepEqual(h.named('destroy').map((x) => x[1]), [b, c, d]);
  assert.notEqual(a, b);
});

// Issue 10 (defect 3) changed this test: touch() answering false (no record) used to be followed
// by a write, which brought back sessions destroyed by a logout in another request.
test('touch is optional: without it save() reads and writes the stored text back; false from touch() writes nothing; true does not write', async () => {
  const plain = recording({ ...syncHandler(), touch: undefined });
  delete plain.touch;
  const s = new Store(NAME, plain);
  await s.start();
  await s.save();
  const again = new Store(NAME, plain, s.getId());
  await again.start();
  assert.equal(await again.save(), 'touched');
  assert.equal(plain.named('write').length, 2);
  assert.equal(plain.named('read').length, 3, 'without touch() save() looks the record up by a read');

  const base = syncHandler();
  const lying = recording({ ...base, touch: () => false });
  const t = new Store(NAME, lying);
  await t.start();
  await t.save();
  const t2 = new Store(NAME, lying, t.getId());
  await t2.start();
  assert.equal(await t2.save(), 'dropped');
  assert.equal(lying.named('touch').length, 1);
  assert.equal(lying.named('write').length, 1, 'touch() returning false (no record) must not be followed by a write');

  const honest = recording();
  const u = new Store(NAME, honest);
  await u.start();
  await u.save();
  const u2 = new Store(NAME, honest, u.getId());
  await u2.start();
  await u2.save();
  assert.equal(honest.named('touch').length, 1);
  assert.equal(honest.named('write').length, 1);
});

test('write() receives the request metadata', async () => {
  const h = recording();
  const s = new Store(NAME, h);
  s.setRequestMeta({ ip: '198.51.100.7', userAgent: 'ua', userId: '42' });
  await s.start();
  s.put('k', 1);
  await s.save();
  assert.deepEqual(h.named('write')[0][3], { ip: '198.51.100.7', userAgent: 'ua', userId: '42' });
});

// ----- failures ---------------------------------------------------------------------------------

class HandlerFailure extends Error {
  constructor(message) {
    super(message);
    this.name = 'HandlerFailure';
    this.code = 'E_MY_DRIVER';
    this.detail = { retry: false };
  }
}

for (const method of ['read', 'write', 'destroy', 'touch']) {
  for (const how of ['throws synchronously', 'returns a rejected Promise']) {
    test(`${method}() that ${how} rejects with the same Error object`, async () => {
      const thrown = new HandlerFailure(`${method} failed`);
      const h = syncHandler();
      h[method] = how === 'throws synchronously'
        ? () => { throw thrown; }
        : () => Promise.reject(thrown);
      const ok = syncHandler();
      // Get a Store to the point where `method` runs.
      let op;
      if (method === 'read') op = () => new Store(NAME, h).start();
      if (method === 'write') op = async () => { const s = new Store(NAME, h); await s.start(); s.put('a', 1); return s.save(); };
      if (method === 'destroy') op = async () => { const s = new Store(NAME, h); await s.start(); return s.invalidate(); };
      if (method === 'touch') {
        const s = new Store(NAME, ok);
        await s.start();
        await s.save();
        h.m = ok.m;
        h.read = ok.read;
        op = async () => { const t = new Store(NAME, h, s.getId()); await t.start(); return t.save(); };
      }
      await assert.rejects(op(), (err) => {
        assert.equal(err, thrown);
        assert.equal(err.code, 'E_MY_DRIVER');
        assert.deepEqual(err.detail, { retry: false });
        assert.match(err.stack, /HandlerFailure: .* failed/);
        return true;
      });
    });
  }
}

for (const [label, value] of [['a string', 'disk on fire'], ['undefined', undefined], ['null', null], ['a number', 42], ['a plain object', { reason: 'x' }]]) {
  test(`a handler throwing ${label} (not an Error) rejects with ERR_SESSION_HANDLER`, async () => {
    for (const style of ['sync', 'async']) {
      const h = syncHandler();
      h.read = style === 'sync' ? () => { throw value; } : () => Promise.reject(value);
      await assert.rejects(new Store(NAME, h).start(), (err) => {
        assert.ok(err instanceof Error);
        assert.equal(err.code, 'ERR_SESSION_HANDLER');
        assert.match(err.message, /session handler read\(\) threw a non-Error value/);
        assert.equal(err.cause, value);
        return true;
      });
    }
  });
}

for (const [label, value, shown] of [
  ['an object', { payload: 'x' }, /got an object$/],
  ['a number', 42, /got a number$/],
  ['a boolean', true, /got a boolean$/],
  ['an array', ['x'], /got an array$/],
  ['a Promise of an object', Promise.resolve({}), /got an object$/],
  ['a Promise of a number', Promise.resolve(7), /got a number$/],
]) {
  test(`read() returning ${label} rejects start() with a TypeError (never coerced)`, async () => {
    const h = syncHandler();
    h.read = () => value;
    await assert.rejects(new Store(NAME, h).start(), (err) => {
      assert.ok(err instanceof TypeError);
      assert.equal(err.code, 'ERR_SESSION_VALUE');
      assert.match(err.message, /read\(\) must return a string/);
      assert.match(err.message, shown);
      return true;
    });
  });
}

test('a handler missing write (or several methods) is refused at construction, listing what is missing', () => {
  const h = syncHandler();
  delete h.write;
  assert.throws(() => new Store(NAME, h), (err) => {
    assert.ok(err instanceof TypeError);
    assert.equal(err.code, 'ERR_SESSION_INVALID_OPTION');
    assert.match(err.message, /missing write\(\)/);
    return true;
  });
  assert.throws(() => new Store(NAME, { read() {} }), /missing write\(\), destroy\(\)/);
  assert.throws(() => new Store(NAME, null), { code: 'ERR_SESSION_INVALID_OPTION' });
  assert.throws(() => new Store(NAME, 'file'), { code: 'ERR_SESSION_INVALID_OPTION' });
  // The native bridge refuses the same handlers the same way.
  assert.throws(() => new native.JsHandler({ read() {}, destroy() {} }), (err) => err instanceof TypeError && err.code === 'ERR_SESSION_INVALID_OPTION' && /missing write\(\)/.test(err.message));
  // A subclass of SessionHandlerInterface that forgot read() is refused too.
  class Partial extends SessionHandlerInterface {
    write() {}
    destroy() {}
  }
  assert.throws(() => new Store(NAME, new Partial()), /missing read\(\)/);
});

/** A TCP server that accepts and never answers: a database that hangs, holding a real socket. */
async function hangingServer() {
  const sockets = new Set();
  const server = net.createServer((s) => sockets.add(s));
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: server.address().port,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

/** A handler whose methods send a request to `port` and wait for a reply that never comes. */
function hangingHandler(port, late) {
  const clients = new Set();
  const ask = (what) => new Promise((resolve, reject) => {
    const c = net.connect(port, '127.0.0.1', () => c.write(`${what}\n`));
    clients.add(c);
    c.on('data', () => resolve(''));
    c.on('error', reject);
    late.push({ resolve, reject, c });
  });
  return {
    clients,
    read: () => ask('read'),
    write: () => ask('write'),
    destroy: () => ask('destroy'),
    gc: () => ask('gc'),
  };
}

test('a method that never settles rejects after timeoutMs with ERR_SESSION_TIMEOUT; the late result is ignored', async () => {
  const server = await hangingServer();
  const late = [];
  const unhandled = [];
  const onUnhandled = (e) => unhandled.push(e);
  process.on('unhandledRejection', onUnhandled);
  try {
    const h = hangingHandler(server.port, late);
    const t0 = performance.now();
    await assert.rejects(new Store(NAME, h, undefined, { timeoutMs: 60 }).start(), (err) => {
      assert.equal(err.code, 'ERR_SESSION_TIMEOUT');
      assert.match(err.message, /read\(\) did not settle within 60 ms/);
      return true;
    });
    const took = performance.now() - t0;
    assert.ok(took >= 59 && took < 2000, `timed out after ${took} ms`);

    // Several pending calls with different deadlines on one timer: each fails at its own time.
    const store = (ms) => new Store(NAME, h, undefined, { timeoutMs: ms });
    const t1 = performance.now();
    const at = await Promise.all([300, 40, 150].map((ms) => store(ms).start().then(
      () => assert.fail('must time out'),
      (err) => {
        assert.equal(err.code, 'ERR_SESSION_TIMEOUT');
        return [ms, performance.now() - t1];
      },
    )));
    for (const [ms, elapsed] of at) assert.ok(elapsed >= ms - 1 && elapsed < ms + 1500, `${ms} ms deadline fired after ${elapsed} ms`);

    // write() and gc() too (gc through the threadsafe function, with Rust's own timer).
    const ok = syncHandler();
    const s = new Store(NAME, { ...h, read: ok.read }, undefined, { timeoutMs: 50 });
    await s.start();
    s.put('a', 1);
    await assert.rejects(s.save(), { code: 'ERR_SESSION_TIMEOUT', message: /write\(\) did not settle within 50 ms/ });
    await assert.rejects(bridge.scheduleGc(h, 60, { timeoutMs: 50 }), { code: 'ERR_SESSION_TIMEOUT', message: /gc\(\) did not settle within 50 ms/ });

    // The late results arrive now: settling or failing, they go nowhere.
    for (const [i, l] of late.entries()) (i % 2 ? l.resolve : l.reject)(i % 2 ? 'late payload' : new Error('late failure'));
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(unhandled, []);
    for (const c of h.clients) c.destroy();
  } finally {
    process.off('unhandledRejection', onUnhandled);
    await server.close();
  }
});

// ----- the gc path through the threadsafe function ----------------------------------------------

test('scheduleGc runs the handler gc from Rust through a threadsafe function, off the calling turn', async () => {
  const seen = [];
  let returned = false;
  const h = {
    ...syncHandler(),
    gc(lifetimeSeconds) {
      seen.push({ lifetimeSeconds, self: this === h, afterReturn: returned, stack: new Error('here').stack });
      return Promise.resolve(3);
    },
  };
  const p = bridge.scheduleGc(h, 7200);
  returned = true;
  assert.equal(seen.length, 0, 'gc must not run inside scheduleGc()');
  assert.equal(await p, 3);
  assert.equal(seen.length, 1);
  assert.equal(seen[0].lifetimeSeconds, 7200);
  assert.equal(seen[0].self, true, 'gc is called bound to its handler');
  assert.equal(seen[0].afterReturn, true);
  assert.doesNotMatch(seen[0].stack, /scheduleGc/, 'gc must be called from the threadsafe function, not from scheduleGc');

  // A plain number, undefined, and a missing gc.
  assert.equal(await bridge.scheduleGc({ ...syncHandler(), gc: () => 2 }, 1), 2);
  assert.equal(await bridge.scheduleGc({ ...syncHandler(), gc: () => undefined }, 1), 0);
  const noGc = syncHandler();
  delete noGc.gc;
  assert.equal(await bridge.scheduleGc(noGc, 1), 0);
  // A built-in handler runs its own gc.
  assert.equal(await bridge.scheduleGc(new ArraySessionHandler(1), 60), 0);
});

test('scheduleGc: errors keep their identity, bad returns are ERR_SESSION_HANDLER, open() runs first, runs do not pile up', async () => {
  const thrown = new HandlerFailure('gc failed');
  await assert.rejects(bridge.scheduleGc({ ...syncHandler(), gc() { throw thrown; } }, 1), (err) => err === thrown);
  await assert.rejects(bridge.scheduleGc({ ...syncHandler(), gc: () => Promise.reject(thrown) }, 1), (err) => err === thrown);
  await assert.rejects(bridge.scheduleGc({ ...syncHandler(), gc() { throw 'nope'; } }, 1), { code: 'ERR_SESSION_HANDLER', message: /gc\(\) threw a non-Error value: "nope"/ });
  await assert.rejects(bridge.scheduleGc({ ...syncHandler(), gc: () => ({}) }, 1), { code: 'ERR_SESSION_HANDLER', message: /gc\(\) must return a number or undefined, got an object/ });
  await assert.rejects(bridge.scheduleGc({ ...syncHandler(), gc: async () => '3' }, 1), { code: 'ERR_SESSION_HANDLER', message: /gc\(\) must return a number or undefined, got a string/ });
  await assert.rejects(bridge.scheduleGc({ ...syncHandler(), gc: () => -1 }, 1), { code: 'ERR_SESSION_HANDLER' });
  await assert.rejects(bridge.scheduleGc(syncHandler(), -5), { code: 'ERR_SESSION_INVALID_OPTION' });
  await assert.rejects(bridge.scheduleGc({ read() {} }, 5), { code: 'ERR_SESSION_INVALID_OPTION', message: /missing write\(\), destroy\(\)/ });

  const h = recording({ ...syncHandler(), gc: () => new Promise((r) => setTimeout(() => r(1), 30)) });
  const [a, b] = [bridge.scheduleGc(h, 60, { sessionName: 'app' }), bridge.scheduleGc(h, 60)];
  assert.equal(a, b, 'a second call during a run returns the same run');
  assert.equal(await a, 1);
  assert.deepEqual(h.calls.map((c) => c[0]), ['open', 'gc']);
  assert.deepEqual(h.calls[0], ['open', '', 'app']);
  assert.equal(await bridge.scheduleGc(h, 60), 1);
  assert.deepEqual(h.calls.map((c) => c[0]), ['open', 'gc', 'gc'], 'open() runs once per handler');
});

test('openBridge: a long-lived bridge calls every method through threadsafe functions; close() drops them', async () => {
  const base = asyncHandler();
  const h = recording(base);
  const b = bridge.openBridge(h, { timeoutMs: 1000, sessionName: 'app' });
  const id = 'B'.repeat(40);
  await b.write(id, '{"a":1}', { ip: '192.0.2.1' });
  assert.equal(await b.read(id), '{"a":1}');
  assert.equal(await b.read('C'.repeat(40)), '', 'null from read() is the empty string');
  assert.equal(await b.touch(id), true);
  assert.equal(await b.gc(60), 0);
  await b.destroy(id);
  assert.equal(await b.read(id), '');
  assert.deepEqual(h.calls[0], ['open', '', 'app']);
  assert.deepEqual(h.named('write')[0][3], { ip: '192.0.2.1' });
  await b.close();
  assert.equal(h.named('close').length, 1);
  await assert.rejects(b.read(id), { code: 'ERR_SESSION_HANDLER', message: /bridge is closed/ });

  const thrown = new HandlerFailure('read failed');
  const bad = bridge.openBridge({ ...syncHandler(), read() { throw thrown; } });
  await assert.rejects(bad.read(id), (err) => err === thrown);
  const obj = bridge.openBridge({ ...syncHandler(), read: () => ({}) });
  await assert.rejects(obj.read(id), (err) => err instanceof TypeError && err.code === 'ERR_SESSION_VALUE' && /read\(\) must return a string/.test(err.message));
  await bad.close();
  await obj.close();
});

// ----- load -------------------------------------------------------------------------------------

test('10,000 sequential and 1,000 concurrent start/save cycles on a JS handler, every payload accounted for', async () => {
  const h = asyncHandler();
  const seqIds = [];
  for (let i = 0; i < 10000; i++) {
    const s = new Store(NAME, h);
    await s.start();
    s.put('i', i);
    s.put('kind', 'seq');
    await s.save();
    seqIds.push(s.getId());
  }
  const conc = await Promise.all(Array.from({ length: 1000 }, async (_, i) => {
    const s = new Store(NAME, h);
    await s.start();
    s.put('i', i);
    s.put('kind', 'conc');
    await s.save();
    return s.getId();
  }));
  assert.equal(new Set([...seqIds, ...conc]).size, 11000, 'every cycle got its own id');
  assert.equal(h.m.size, 11000, 'every payload reached the handler');
  seqIds.forEach((id, i) => {
    const p = JSON.parse(h.m.get(id));
    assert.equal(p.i, i);
    assert.equal(p.kind, 'seq');
  });
  conc.forEach((id, i) => {
    const p = JSON.parse(h.m.get(id));
    assert.equal(p.i, i);
    assert.equal(p.kind, 'conc');
  });
  // And back through Stores, concurrently.
  const back = await Promise.all(conc.map(async (id) => {
    const s = new Store(NAME, h, id);
    await s.start();
    return s.get('i');
  }));
  assert.deepEqual(back, conc.map((_, i) => i));
});

// ----- process exit and memory ------------------------------------------------------------------

function runChild(args, timeoutMs) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let doneAt = null;
    const kill = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`child ${args.join(' ')} did not exit within ${timeoutMs} ms; stdout: ${out} stderr: ${err}`));
    }, timeoutMs);
    child.stdout.on('data', (d) => {
      out += d;
      if (doneAt === null && /^done /m.test(out)) doneAt = performance.now();
    });
    child.stderr.on('data', (d) => {
      err += d;
    });
    child.on('exit', (code, signal) => {
      clearTimeout(kill);
      resolve({ code, signal, out, err, doneAt, exitAt: performance.now() });
    });
  });
}

test('a child process using a JS handler on every bridge path exits on its own within a second', async () => {
  const r = await runChild([CHILD, 'exit'], 15000);
  assert.equal(r.code, 0, r.err);
  assert.ok(r.doneAt !== null, `the child did not finish: ${r.out} ${r.err}`);
  const lag = r.exitAt - r.doneAt;
  assert.ok(lag < 1000, `the child exited ${lag.toFixed(0)} ms after finishing`);
});

test('100,000 Stores on one JS handler: RSS ends within 10 % of where it was after 10,000', { timeout: 300000 }, async () => {
  // A fixed young generation: V8 grows it from 8 to 32 MB on its own schedule (see the child).
  const r = await runChild(['--expose-gc', '--min-semi-space-size=16', '--max-semi-space-size=16', CHILD, 'rss'], 290000);
  assert.equal(r.code, 0, r.err);
  const { at10k, end, sessions } = JSON.parse(r.out.trim().split('\n').pop());
  assert.equal(sessions, 1000);
  const growth = (end - at10k) / at10k;
  assert.ok(growth <= 0.1, `RSS grew ${(growth * 100).toFixed(1)} % (${(at10k / 1048576).toFixed(1)} MB -> ${(end / 1048576).toFixed(1)} MB)`);
});

test('a Rust panic inside the bridge becomes an ERR_SESSION_HANDLER rejection and the process lives on', async () => {
  // In a child: the panic hook prints the panic (and a backtrace under RUST_BACKTRACE) on stderr.
  const r = await runChild([CHILD, 'panic'], 15000);
  assert.equal(r.code, 0, r.err);
  const res = JSON.parse(r.out.trim().split('\n').pop());
  assert.deepEqual(res, {
    rejected: true,
    code: 'ERR_SESSION_HANDLER',
    message: 'the session handler bridge panicked: deliberate panic from the bridge self-test',
    afterwards: true,
  });
});

test('a handler referring back to the holder of its bridge is freed after close()', async () => {
  const r = await runChild(['--expose-gc', CHILD, 'cycle'], 60000);
  assert.equal(r.code, 0, r.err);
  const { closed, collected } = JSON.parse(r.out.trim().split('\n').pop());
  assert.equal(closed, 100);
  assert.equal(collected, closed, `${collected} of ${closed} closed handlers were collected`);
});

// ----- through jsHandlerAsNative(JsHandler): the engine's own save drives the optional methods (issue 12) ----

test.describe('a JS handler driven by the engine through jsHandlerAsNative()', () => {
  const { MapDriver } = require('./support/http-drivers');
  const load = async (nativeHandler, id) => {
    const s = new native.NativeSession(NAME, id);
    await s.startNative(nativeHandler);
    return s;
  };

  test.it('forwards writeIfUnchanged: concurrent saves replay instead of overwriting', async () => {
    const driver = new MapDriver();
    const h = native.jsHandlerAsNative(new native.JsHandler(driver));
    assert.equal(h.supportsCas(), true);
    const first = await load(h, null);
    first.put('n', 0);
    assert.equal(await first.saveNative(h, false, undefined), 'written');
    const id = first.getId();
    const a = await load(h, id);
    const b = await load(h, id);
    a.increment('n', 1);
    a.put('a', 1);
    b.increment('n', 1);
    b.put('b', 2);
    assert.deepEqual(await Promise.all([a.saveNative(h, false, undefined), b.saveNative(h, false, undefined)]), ['written', 'written']);
    const stored = JSON.parse(driver.records.get(id));
    assert.equal(stored.n, 2, 'an increment was lost');
    assert.equal(stored.a, 1);
    assert.equal(stored.b, 2);
    // A logout's tombstone drops a racing save instead of reviving the session.
    const late = await load(h, id);
    late.put('c', 3);
    await driver.destroy(id);
    assert.equal(await late.saveNative(h, false, undefined), 'dropped');
    assert.equal(await driver.read(id), '');
  });

  test.it('a driver without writeIfUnchanged keeps last-writer-wins, and says so', () => {
    const driver = new MapDriver();
    driver.writeIfUnchanged = undefined;
    driver.lock = undefined;
    const h = native.jsHandlerAsNative(new native.JsHandler(driver));
    assert.equal(h.supportsCas(), false);
    assert.equal(h.supportsLock(), false);
  });

  test.it('a refusal that is not a boolean is ERR_SESSION_VALUE', async () => {
    const driver = new MapDriver();
    driver.writeIfUnchanged = async () => 'yes';
    const h = native.jsHandlerAsNative(new native.JsHandler(driver));
    const s = await load(h, null);
    s.put('a', 1);
    await assert.rejects(s.saveNative(h, false, undefined).catch(require('../lib/errors').rethrow), (err) => {
      assert.equal(err.code, 'ERR_SESSION_VALUE');
      assert.match(err.message, /writeIfUnchanged\(\) must return true or false/);
      return true;
    });
  });

  test.it('forwards lock and unlock: the core waits, then gives up with ERR_SESSION_LOCKED', async () => {
    const driver = new MapDriver();
    const h = native.jsHandlerAsNative(new native.JsHandler(driver));
    assert.equal(h.supportsLock(), true);
    const id = 'L'.repeat(40);
    const token = await h.acquireLock(id, 60000, 0);
    assert.equal(driver.locks.get(id).token, token);
    await assert.rejects(h.acquireLock(id, 60000, 100).catch(require('../lib/errors').rethrow), { code: 'ERR_SESSION_LOCKED' });
    await h.unlock(id, token);
    assert.equal(driver.locks.has(id), false);
    assert.equal(typeof await h.acquireLock(id, 60000, 0), 'string');
  });
});
