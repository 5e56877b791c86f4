'use strict';
// Opt-in blocking in the Fastify plugin (`block` among the plugin's options, or a route's
// `config: { session: { block } }`), against the real `fastify` from npm over real HTTP: blocked
// requests on one session run one after the other and keep every read-modify-write, an
// unblocked route on the same app does not wait, a lock held past lockSeconds expires, a waiter
// past waitSeconds gets ERR_SESSION_LOCKED answered 423, an aborted request releases its lock,
// and bad settings fail at start-up. On array, sqlite and redis (a redis-server started here).
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const Fastify = require('fastify');
const ostroSession = require('@ostro/session/fastify');
const { SessionManager } = require('@ostro/session');
const { Client, sessionCookie, idOf, until } = require('./support/http');
const { tmpDir } = require('./support/tmp');
const { startRedis } = require('./support/servers');

const KEY = 'base64:dGhpcyBpcyBhIHRlc3Qga2V5IG9mIDMyIGJ5dGVzIQ==';
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

let redis;
test.before(async () => {
  redis = await startRedis();
});
test.after(() => redis && redis.stop());

function configFor(driver) {
  const c = { driver, key: KEY, lottery: [0, 100] };
  if (driver === 'sqlite') c.connection = path.join(tmpDir(), 's.sqlite');
  if (driver === 'redis') Object.assign(c, { connection: redis.url, prefix: `fyb${process.pid}:` });
  return c;
}

/** The app: `/cart/:item` blocked per route, `/plain/:item` not; `log` gets each RMW's span. */
async function serve(t, options, log, routeBlock = { lockSeconds: 10, waitSeconds: 10 }) {
  const app = Fastify();
  await app.register(ostroSession, options);
  app.get('/seed', async (req) => {
    req.session.put('cart', []);
    return 'ok';
  });
  const rmw = async (req) => {
    const start = performance.now();
    const cart = req.session.get('cart', []);
    await sleep(Number(req.query.ms || 40));
    cart.push(req.params.item);
    req.session.put('cart', cart);
    log.push({ start, end: performance.now(), item: req.params.item });
    return 'ok';
  };
  app.post('/cart/:item', { config: { session: { block: routeBlock } } }, rmw);
  app.post('/plain/:item', rmw);
  app.post('/off/:item', { config: { session: { block: false } } }, rmw);
  app.get('/hang', { config: { session: { block: routeBlock } } }, (req, reply) => new Promise((resolve) => req.raw.on('close', () => resolve(reply.send('late')))));
  app.get('/dump', async (req) => req.session.all());
  await app.listen({ port: 0, host: '127.0.0.1' });
  t.after(() => app.close());
  const url = `http://127.0.0.1:${app.server.address().port}`;
  return { app, url, client: new Client(url) };
}

function serialized(log) {
  const byStart = [...log].sort((x, y) => x.start - y.start);
  for (let i = 1; i < byStart.length; i++) {
    if (byStart[i].start < byStart[i - 1].end) return false;
  }
  return true;
}

for (const driver of ['array', 'sqlite', 'redis']) {
  test(`${driver}: a route's config.session.block runs one session's requests one at a time`, async (t) => {
    const log = [];
    const { app, client } = await serve(t, configFor(driver), log);
    const seeded = await client.get('/seed');
    const id = idOf(sessionCookie(seeded));
    const items = ['a', 'b', 'c', 'd', 'e'];
    const rs = await Promise.all(items.map((i) => client.request(`/cart/${i}`, { method: 'POST' })));
    for (const r of rs) assert.equal(r.status, 200, r.body);
    assert.ok(serialized(log), 'two blocked requests on one session overlapped');
    assert.deepEqual([...(await client.get('/dump')).json().cart].sort(), items, 'a read-modify-write was lost');

    // The unblocked route on the same app does not take the lock: its requests overlap (and so
    // lose read-modify-writes, which is what blocking is for).
    log.length = 0;
    await Promise.all(['x', 'y', 'z'].map((i) => client.request(`/plain/${i}?ms=80`, { method: 'POST' })));
    assert.equal(serialized(log), false, 'an unblocked route waited for a lock');

    // A waiter past its wait: ERR_SESSION_LOCKED through Fastify's error handling, 423.
    const handler = app.sessionManager.driver();
    const token = await handler.lock(id, 60000);
    assert.ok(token);
    try {
      const short = await serve(t, { manager: app.sessionManager }, [], { lockSeconds: 10, waitSeconds: 0.2 });
      const started = Date.now();
      const r = await short.client.request('/cart/q', { method: 'POST', cookie: client.cookieHeader() });
      assert.equal(r.status, 423, r.body);
      assert.equal(r.json().code, 'ERR_SESSION_LOCKED');
      assert.ok(Date.now() - started >= 190, 'gave up before its wait');
      assert.equal(sessionCookie(r), undefined, 'a refused request sets no cookie');
    } finally {
      await handler.unlock(id, token);
    }
    assert.ok(!(await client.get('/dump')).json().cart.includes('q'), 'the refused request ran');
  });
}

test('a lock held past lockSeconds expires; an aborted request releases its lock at once', async (t) => {
  const manager = new SessionManager(configFor('array'));
  const expiring = await serve(t, { manager }, [], { lockSeconds: 0.3, waitSeconds: 10 });
  const { client } = expiring;
  const id = idOf(sessionCookie(await client.get('/seed')));
  const handler = manager.driver();
  const heldElsewhere = async () => {
    const x = await handler.lock(id, 1000);
    if (x !== null) await handler.unlock(id, x);
    return x === null;
  };
  // A request that takes the lock and never answers: its lock expires after 0.3 s.
  const hung = new AbortController();
  const hanging = fetch(`${expiring.url}/hang`, { headers: { cookie: client.cookieHeader() }, signal: hung.signal }).catch(() => null);
  await until(heldElsewhere, 5000, 'the hanging request to hold the lock');
  const started = Date.now();
  const r = await client.request('/cart/late', { method: 'POST' });
  assert.equal(r.status, 200, r.body);
  assert.ok(Date.now() - started < 3000, `waited ${Date.now() - started} ms`);
  hung.abort();
  await hanging;

  // lockSeconds 10: only the release on close frees it this soon.
  const long = await serve(t, { manager }, [], { lockSeconds: 10, waitSeconds: 10 });
  const ac = new AbortController();
  const pending = fetch(`${long.url}/hang`, { headers: { cookie: client.cookieHeader() }, signal: ac.signal }).catch(() => null);
  await until(heldElsewhere, 5000, 'the hanging request to hold the lock');
  ac.abort();
  await pending;
  await until(async () => !(await heldElsewhere()), 3000, 'the aborted request to release its lock');
});

test('block among the plugin options blocks every route; a route turns it off with block: false', async (t) => {
  const log = [];
  const { client } = await serve(t, { ...configFor('array'), block: true }, log);
  await client.get('/seed');
  await Promise.all(['a', 'b', 'c'].map((i) => client.request(`/plain/${i}`, { method: 'POST' })));
  assert.ok(serialized(log), 'the plugin-wide block did not apply');
  assert.deepEqual([...(await client.get('/dump')).json().cart].sort(), ['a', 'b', 'c']);
  log.length = 0;
  await Promise.all(['x', 'y', 'z'].map((i) => client.request(`/off/${i}?ms=80`, { method: 'POST' })));
  assert.equal(serialized(log), false, 'block: false on the route still blocked');
});

test('routes declared before the plugin loaded (register() not awaited) are blocked too', async (t) => {
  const app = Fastify();
  app.register(ostroSession, configFor('array'));
  const log = [];
  app.post('/cart/:item', { config: { session: { block: true } } }, async (req) => {
    const start = performance.now();
    const cart = req.session.get('cart', []);
    await sleep(40);
    cart.push(req.params.item);
    req.session.put('cart', cart);
    log.push({ start, end: performance.now() });
    return cart;
  });
  app.get('/seed', async (req) => {
    req.session.put('cart', []);
    return 'ok';
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  t.after(() => app.close());
  const client = new Client(`http://127.0.0.1:${app.server.address().port}`);
  await client.get('/seed');
  const rs = await Promise.all(['a', 'b', 'c', 'd'].map((i) => client.request(`/cart/${i}`, { method: 'POST' })));
  for (const r of rs) assert.equal(r.status, 200, r.body);
  assert.ok(serialized(log), 'two blocked requests on one session overlapped');
  assert.deepEqual(rs.map((r) => r.json().length).sort(), [1, 2, 3, 4]);
});

test('bad block settings and drivers that cannot lock fail at start-up', async () => {
  const ready = async (options, route) => {
    const app = Fastify();
    try {
      await app.register(ostroSession, options);
      if (route) app.get('/x', { config: { session: route } }, async () => 'ok');
      await app.ready();
    } finally {
      await app.close();
    }
  };
  await assert.rejects(ready({ ...configFor('array'), block: 'yes' }), (e) => e.code === 'ERR_SESSION_INVALID_OPTION' && /"block"/.test(e.message));
  await assert.rejects(ready(configFor('array'), { block: { lockSecs: 1 } }), (e) => e.code === 'ERR_SESSION_INVALID_OPTION' && /lockSecs/.test(e.message));
  await assert.rejects(ready(configFor('array'), { blok: true }), (e) => e.code === 'ERR_SESSION_INVALID_OPTION' && /blok/.test(e.message));
  await assert.rejects(ready(configFor('cookie'), { block: true }), (e) => e.code === 'ERR_SESSION_INVALID_OPTION' && /cookie driver/.test(e.message));
  await assert.rejects(ready({ ...configFor('array'), api: 'express-session', block: true }), (e) => e.code === 'ERR_SESSION_INVALID_OPTION' && /Store API only/.test(e.message));
  await assert.rejects(ready({ ...configFor('array'), api: 'express-session' }, { block: true }), (e) => e.code === 'ERR_SESSION_INVALID_OPTION' && /Store API only/.test(e.message));
  // Valid settings start.
  await ready({ ...configFor('array'), block: { lockSeconds: 5, waitSeconds: 0 } }, { block: false });
});
