'use strict';
// Lifecycle events on node:diagnostics_channel and manager.on() (issue 13): a subscriber on each
// channel sees login -> regenerate -> logout -> expire in order, and no message carries the id
// or any session data; load and save have tracing channels; manager.metrics() counts.
const { it } = require('node:test');
const assert = require('node:assert/strict');
const dc = require('node:diagnostics_channel');
const { createHmac } = require('node:crypto');
const { MIN, KEY, testClock, managerOf, request } = require('./support/lifecycle');
const { ArraySessionHandler } = require('..');

const NAMES = ['created', 'loaded', 'regenerated', 'renewed', 'destroyed', 'expired', 'save_dropped', 'error'];

it('each channel sees the scripted sequence in order, with handles and never ids or payloads', async () => {
  const now = testClock();
  const m = managerOf(new ArraySessionHandler(120, { now }), now, { lifetime: 120, absolute_lifetime: 60, renew_after: 20 });
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
