'use strict';
// Lifecycle events on node:diagnostics_channel and manager.on() (issue 13): a subscriber on each
// channel sees login -> regenerate -> logout -> expire in order, and no message carries the id
// or any session data (on the array, file, sqlite and redis drivers); save_dropped says 'gone' (a tombstone) or 'conflict' (past the retry
// bound); revoking sessions publishes destroyed 'revoked' by handle; load and save have tracing
// channels (no id in a trace context either); manager.metrics() counts. What a signed id with
// no session is reported as: lifecycle-tombstones.test.js.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const dc = require('node:diagnostics_channel');
const { createHmac } = require('node:crypto');
const { MIN, KEY, testClock, drivers, managerOf, request } = require('./support/lifecycle');
const { ArraySessionHandler, SessionHandlerInterface } = require('..');
const { serve, Client, sessionCookie, idOf } = require('./support/http');

const NAMES = ['created', 'loaded', 'regenerated', 'renewed', 'destroyed', 'expired', 'save_dropped', 'error'];

// The scripted sequence on drivers of each kind: in memory, files, SQLite and a redis-server of
// its own (which expires records on its own clock: the script's 82 minutes on the test clock
// stay within the 120-minute lifetime there, so only the manager's clock decides).
const SCRIPTED = ['array', 'file', 'sqlite', 'redis'];
for (const d of drivers().filter((x) => SCRIPTED.includes(x.name))) {
  describe(`the scripted login -> regenerate -> renew -> logout -> expire sequence on ${d.name}`, () => {
    before(async () => { if (d.setup) await d.setup(); });
    after(async () => { if (d.teardown) await d.teardown(); });

    it('each channel sees the scripted sequence in order, with handles and never ids or payloads', async () => {
      const now = testClock();
      const m = managerOf(d.make(now, 120), now, { lifetime: 120, absolute_lifetime: 60, renew_after: 20 });
      const seen = [];
      const subs = NAMES.map((name) => {
        const fn = (msg) => seen.push({ name, msg, text: JSON.stringify(msg) });
        dc.subscribe(`ostro:session:${name}`, fn);
        return [name, fn];
      });
      const traced = [];
      const tracer = { start: (ctx) => traced.push(`start:${ctx.driver}`), asyncEnd: () => traced.push('end'), end() {}, asyncStart() {}, error() {} };
      dc.tracingChannel('ostro:session:load').subscribe(tracer);
      const ids = [];
      const SECRET = 'p4ssw0rd-payload-value';
      try {
        const visit = await request(m, null, (s) => s.put('cart', [SECRET]));
        ids.push(visit.id);
        const login = await request(m, visit.id, async (s) => {
          await s.regenerate(true);
          s.put('user', SECRET);
        });
        ids.push(login.id);
        now.advance(21 * MIN);
        const renewed = await request(m, login.id);
        ids.push(renewed.id);
        const logout = await request(m, renewed.id, async (s) => { await s.invalidate(); s.put('flash', SECRET); });
        ids.push(logout.id);
        now.advance(61 * MIN);
        const expired = await request(m, logout.id);
        ids.push(expired.id);
      } finally {
        for (const [name, fn] of subs) dc.unsubscribe(`ostro:session:${name}`, fn);
        dc.tracingChannel('ostro:session:load').unsubscribe(tracer);
      }
      const handle = (id) => createHmac('sha256', KEY).update(`ostro-session-handle\0${id}`).digest('hex').slice(0, 32);
      const got = seen.map((e) => [e.name, e.msg.reason, e.msg.handle]);
      assert.deepEqual(got, [
        ['created', null, handle(ids[0])],
        ['loaded', null, handle(ids[0])],
        ['regenerated', 'regenerate', handle(ids[1])],
        ['destroyed', 'regenerate', handle(ids[0])],
        ['loaded', null, handle(ids[2])],
        ['renewed', 'renew_after', handle(ids[2])],
        ['loaded', null, handle(ids[2])],
        ['regenerated', 'invalidate', handle(ids[3])],
        ['destroyed', 'invalidate', handle(ids[2])],
        ['expired', 'absolute', handle(ids[3])],
        ['created', null, handle(ids[4])],
      ]);
      for (const e of seen) {
        assert.deepEqual(Object.keys(e.msg), ['driver', 'handle', 'reason']);
        assert.equal(e.msg.driver, 'lc');
        for (const id of ids) assert.ok(!e.text.includes(id), `${e.name} carries an id: ${e.text}`);
        assert.ok(!e.text.includes(SECRET), `${e.name} carries session data: ${e.text}`);
      }
      assert.equal(traced.filter((t) => t === 'start:lc').length, 4, 'one traced load per request with a cookie');
      assert.equal(traced.filter((t) => t === 'end').length, 4);
      await m.close();
    });
  });
}

it('manager.on() delivers only its own manager\'s events; off() stops them; unknown events are refused', async () => {
  const now = testClock();
  const a = managerOf(new ArraySessionHandler(120, { now }), now);
  const b = managerOf(new ArraySessionHandler(120, { now }), now);
  const got = [];
  const fn = (msg) => got.push(msg.handle);
  a.on('created', fn);
  await request(b, null);
  assert.equal(got.length, 0, 'another manager\'s event');
  await request(a, null);
  assert.equal(got.length, 1);
  a.off('created', fn);
  await request(a, null);
  assert.equal(got.length, 1);
  assert.throws(() => a.on('logout', fn), (e) => e.code === 'ERR_SESSION_INVALID_OPTION' && /unknown session event "logout"/.test(e.message));
  assert.throws(() => a.on('created', 'nope'), (e) => e.code === 'ERR_SESSION_INVALID_OPTION');
});

it('a failing driver publishes error with its code, and metrics count it', async () => {
  const now = testClock();
  const broken = { read() { throw Object.assign(new Error('disk gone'), { code: 'EIO' }); }, write() {}, destroy() {} };
  const m = managerOf(broken, now);
  const errors = [];
  m.on('error', (msg) => errors.push(msg));
  const { id } = await request(managerOf(new ArraySessionHandler(120, { now }), now), null);
  await assert.rejects(request(m, id), /disk gone/);
  assert.equal(errors.length, 1);
  assert.equal(errors[0].reason, 'EIO');
  assert.equal(m.metrics().drivers.lc.operations.load.errors, 1);
});

it('manager.metrics() counts operations with cumulative latency buckets and save outcomes', async () => {
  const now = testClock();
  const m = managerOf(new ArraySessionHandler(120, { now }), now);
  const { id } = await request(m, null, (s) => s.put('a', 1));
  await request(m, id);
  await request(m, id, async (s) => { await s.regenerate(true); });
  await m.collectGarbage();
  const d = m.metrics().drivers.lc;
  assert.equal(d.operations.load.count, 2, 'the first visit starts empty without a read');
  assert.equal(d.operations.save.count, 3);
  assert.deepEqual(d.saves, { written: 2, touched: 1, dropped: 0 });
  assert.equal(d.operations.destroy.count, 1);
  assert.equal(d.operations.gc.count, 1);
  const b = d.operations.save.buckets;
  assert.equal(b[b.length - 1].le, Infinity);
  assert.equal(b[b.length - 1].count, 3);
  for (let i = 1; i < b.length; i++) assert.ok(b[i].count >= b[i - 1].count, 'cumulative');
  assert.ok(d.operations.save.sumMs >= 0);
});

/** A driver whose record changes on every read: no save can ever settle (see concurrency*.test.js). */
class ChurningDriver extends SessionHandlerInterface {
  constructor() {
    super();
    this.n = 0;
    this.writes = 0;
  }

  read() { return JSON.stringify({ _token: 't', n: this.n++ }); }

  write() { this.writes++; }

  destroy() {}

  writeIfUnchanged() { return false; }
}

const handleOf = (id) => createHmac('sha256', KEY).update(`ostro-session-handle\0${id}`).digest('hex').slice(0, 32);

/** Runs `fn` with a subscriber on `ostro:session:<name>` for each name, collecting `[name, msg]`. */
async function watching(names, fn) {
  const seen = [];
  const subs = names.map((name) => {
    const sub = (msg) => seen.push([name, msg]);
    dc.subscribe(`ostro:session:${name}`, sub);
    return [name, sub];
  });
  try {
    await fn();
  } finally {
    for (const [name, sub] of subs) dc.unsubscribe(`ostro:session:${name}`, sub);
  }
  return seen;
}

it("save_dropped: 'gone' for a save that finds the logout's tombstone, 'conflict' for a save past the retry bound", async () => {
  const now = testClock();
  const m = managerOf(new ArraySessionHandler(120, { now }), now);
  const churn = new ChurningDriver();
  const c = managerOf(churn, now);
  const churnId = 'C'.repeat(40);
  const ids = [];
  const seen = await watching(['save_dropped', 'error'], async () => {
    const { id } = await request(m, null, (s) => s.put('cart', ['book']));
    ids.push(id);
    const header = `${m.config.cookie}=${encodeURIComponent(m.signedCookieValue(id))}`;
    // A request that loaded the session before the logout saves after it.
    const { store: stale } = await m.loadStore(header);
    const logout = await request(m, id, (s) => s.invalidate());
    ids.push(logout.id);
    stale.put('cart', ['book', 'pen']);
    assert.equal(await stale.save(), 'dropped');
    // A driver that keeps conflicting: the save fails, and is dropped too.
    const { store, existed } = await c.loadStore(`${c.config.cookie}=${encodeURIComponent(c.signedCookieValue(churnId))}`);
    assert.equal(existed, true);
    store.increment('n');
    await assert.rejects(store.save(), (e) => e.code === 'ERR_SESSION_CONFLICT');
    assert.equal(churn.writes, 0, 'nothing was written');
  });
  assert.deepEqual(seen.map(([name, msg]) => [name, msg.driver, msg.reason, msg.handle]), [
    ['save_dropped', 'lc', 'gone', handleOf(ids[0])],
    ['error', 'lc', 'ERR_SESSION_CONFLICT', handleOf(churnId)],
    ['save_dropped', 'lc', 'conflict', handleOf(churnId)],
  ]);
  for (const [name, msg] of seen) {
    const text = JSON.stringify(msg);
    for (const id of [...ids, churnId]) assert.ok(!text.includes(id), `${name} carries an id: ${text}`);
  }
  assert.equal(m.metrics().drivers.lc.saves.dropped, 1);
});

for (const kind of ['array (native)', 'a custom driver with sessionsOf']) {
  it(`destroySession and destroyUserSessions publish destroyed 'revoked' per session ended, by handle (${kind})`, async () => {
    const now = testClock();
    let handler;
    if (kind.startsWith('array')) {
      handler = new ArraySessionHandler(120, { now });
    } else {
      const records = new Map();
      const index = new Map();
      handler = {
        read: (id) => records.get(id)?.data ?? '',
        write: (id, data, meta) => {
          records.set(id, { data, at: now() });
          if (meta && meta.userId) {
            if (!index.has(meta.userId)) index.set(meta.userId, new Set());
            index.get(meta.userId).add(id);
          }
        },
        destroy: (id) => { records.delete(id); },
        sessionsOf: (user) => [...(index.get(user) || [])].map((id) => ({ id, payload: records.get(id)?.data ?? '', lastActivity: records.get(id)?.at ?? 0 })),
      };
    }
    const m = managerOf(handler, now);
    const login = async (user) => (await request(m, null, (s) => { s.put('at', now()); s.setUser(user); now.advance(1000); })).id;
    const mine = await login('ada');
    const other = [await login('ada'), await login('ada'), await login('ada')];
    const bob = await login('bob');
    const destroyed = [];
    m.on('destroyed', (msg) => destroyed.push(msg));
    const seen = await watching(['destroyed'], async () => {
      const list = await m.sessionsOf('ada');
      const first = list.find((e) => e.handle === handleOf(other[0]));
      assert.ok(first, 'listed');
      assert.equal(await m.destroySession('ada', first.handle), true);
      assert.equal(await m.destroySession('ada', first.handle), false, 'already ended: no event');
      assert.equal(await m.destroySession('ada', handleOf(bob)), false, "another user's session: no event");
      const { store } = await m.loadStore(`${m.config.cookie}=${encodeURIComponent(m.signedCookieValue(mine))}`);
      assert.equal(await m.destroyUserSessions('ada', { except: store }), 2);
      assert.equal(await m.destroyUserSessions('ada', { except: store }), 0);
    });
    const got = seen.map(([, msg]) => [msg.driver, msg.reason, msg.handle]);
    assert.deepEqual(got[0], ['lc', 'revoked', handleOf(other[0])]);
    assert.deepEqual(got.slice(1).sort(), [['lc', 'revoked', handleOf(other[1])], ['lc', 'revoked', handleOf(other[2])]].sort());
    assert.equal(got.length, 3, 'one event per session ended');
    assert.deepEqual(destroyed.map((msg) => msg.handle), seen.map(([, msg]) => msg.handle), 'manager.on() sees the same');
    for (const [, msg] of seen) {
      assert.deepEqual(Object.keys(msg), ['driver', 'handle', 'reason']);
      for (const id of [mine, ...other, bob]) assert.ok(!JSON.stringify(msg).includes(id), 'an id in a message');
    }
    // The revoked sessions are gone; the kept one and bob's are not.
    for (const id of other) assert.equal((await request(m, id)).existed, false);
    assert.equal((await request(m, mine)).existed, true);
    assert.equal((await request(m, bob)).existed, true);
  });
}

it("tracingChannel('ostro:session:save') wraps each save: start/end/asyncStart/asyncEnd, or error", async () => {
  const now = testClock();
  const m = managerOf(new ArraySessionHandler(120, { now }), now);
  const c = managerOf(new ChurningDriver(), now);
  const log = [];
  const on = (kind) => (ctx) => log.push({ kind, driver: ctx.driver, handle: ctx.handle, result: ctx.result, error: ctx.error, text: JSON.stringify({ ...ctx, error: undefined }) });
  const tracer = { start: on('start'), end: on('end'), asyncStart: on('asyncStart'), asyncEnd: on('asyncEnd'), error: on('error') };
  const ch = dc.tracingChannel('ostro:session:save');
  const churnId = 'C'.repeat(40);
  const server = await serve('node', managerOf(new ArraySessionHandler(120, { now }), now), (req, res) => {
    req.session.put('via', 'http');
    res.end('ok');
  });
  let id;
  let httpId;
  ch.subscribe(tracer);
  try {
    // Store.save() through a built-in driver.
    ({ id } = await request(m, null, (s) => s.put('a', 1)));
    assert.deepEqual(log.map((e) => e.kind), ['start', 'end', 'asyncStart', 'asyncEnd']);
    for (const e of log) {
      assert.equal(e.driver, 'lc');
      assert.equal(e.handle, handleOf(id));
    }
    assert.equal(log[0].result, undefined, 'no result at start');
    assert.equal(log[3].result, 'written');
    // A save that fails: error carries the coded error, then the async pair.
    log.length = 0;
    const { store } = await c.loadStore(`${c.config.cookie}=${encodeURIComponent(c.signedCookieValue(churnId))}`);
    store.increment('n');
    await assert.rejects(store.save(), { code: 'ERR_SESSION_CONFLICT' });
    assert.deepEqual(log.map((e) => e.kind), ['start', 'end', 'error', 'asyncStart', 'asyncEnd']);
    assert.equal(log[2].error.code, 'ERR_SESSION_CONFLICT');
    assert.equal(log[2].handle, handleOf(churnId));
    // The middleware's one-crossing commit is traced too, with the outcome as its result: the
    // Set-Cookie line (the signed id) is never in the context.
    log.length = 0;
    const r = await new Client(server.url).get('/');
    assert.equal(r.status, 200);
    httpId = idOf(sessionCookie(r));
    assert.deepEqual(log.map((e) => e.kind), ['start', 'end', 'asyncStart', 'asyncEnd']);
    assert.equal(log[3].result, 'written');
    assert.equal(log[3].handle, handleOf(httpId));
  } finally {
    ch.unsubscribe(tracer);
    await server.close();
  }
  for (const e of log) assert.ok(!e.text.includes(httpId), `a trace context carries the id: ${e.text}`);
  // Unsubscribed: saves are no longer traced.
  log.length = 0;
  await request(m, id, (s) => s.put('b', 2));
  assert.equal(log.length, 0);
});
