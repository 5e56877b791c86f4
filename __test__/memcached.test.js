'use strict';
// The memcached driver from JS, against memcached processes this file starts on free loopback
// ports (and stops by pid): the conformance kit, the Store cycle, validation, the server's item
// size limit, two servers, outages (kill with operations in flight, SIGSTOP, SIGCONT, restart),
// and Node exiting by itself.
const test = require('node:test');
const assert = require('node:assert/strict');
const { Store, MemcachedSessionHandler } = require('..');
const sessionHandlerConformance = require('../lib/testing');
const { startMemcached, freePort } = require('./support/servers');
const faults = require('./support/server-faults');

const TIMEOUT = 800;
const opts = (more) => ({ timeoutMs: TIMEOUT, ...more });

let shared;
sessionHandlerConformance(({ minutes }) => new MemcachedSessionHandler(shared.addr, { minutes }), {
  name: 'MemcachedSessionHandler (Rust) against memcached',
  gcRemoves: false,
  // memcached keeps time in whole seconds: an item set with a TTL of L s expires between L-1
  // and L+1 s later, so the lifetime-extension check needs L = 3 to tell the two apart.
  lifetimeSeconds: 3,
  before: async () => { shared = await startMemcached(); },
  after: () => shared && shared.stop(),
});

test('memcached driver', async (t) => {
  const server = await startMemcached();
  t.after(() => server.stop());

  await t.test('a full Store cycle', async () => {
    const h = new MemcachedSessionHandler(server.addr, opts({ prefix: 'app:', minutes: 30 }));
    const s = new Store('ostro_session', h);
    await s.start();
    s.put('user.name', 'Zoë 🎉');
    s.flash('status', 'saved');
    await s.save();
    const again = new Store('ostro_session', new MemcachedSessionHandler([server.addr], { prefix: 'app:' }), s.getId());
    await again.start();
    assert.equal(again.get('user.name'), 'Zoë 🎉');
    assert.equal(again.get('status'), 'saved');
    const other = new Store('ostro_session', new MemcachedSessionHandler(server.addr, { prefix: 'other:' }), s.getId());
    await other.start();
    assert.equal(other.has('user.name'), false, 'the prefix separates apps');
    await h.close();
  });

  await t.test('validation: prefix, key length, SASL, servers, options', () => {
    const bad = (servers, o, pattern) => assert.throws(() => new MemcachedSessionHandler(servers, o), (e) => {
      assert.ok(e instanceof TypeError, JSON.stringify([servers, o]));
      assert.equal(e.code, 'ERR_SESSION_INVALID_OPTION');
      if (pattern) assert.match(e.message, pattern);
      assert.doesNotMatch(e.message, /hunter2pw/);
      return true;
    });
    for (const prefix of ['has space', 'tab\t', 'nl\n', 'é', '\u0000']) bad('127.0.0.1:1', { prefix }, /printable ASCII/);
    bad('127.0.0.1:1', { prefix: 'p'.repeat(211) }, /250-byte/);
    new MemcachedSessionHandler('127.0.0.1:1', { prefix: 'p'.repeat(210) });
    bad('127.0.0.1:1', { username: 'u', password: 'hunter2pw' }, /SASL/);
    bad('127.0.0.1:1', { sasl: { username: 'u', password: 'hunter2pw' } }, /SASL/);
    bad('u:hunter2pw@127.0.0.1:1', {}, /SASL/);
    for (const servers of ['', [], ['127.0.0.1:0'], 'h:x', '::1:11211', 42, [null]]) bad(servers, {});
    bad('127.0.0.1:1', { minutes: -1 });
    bad('127.0.0.1:1', { timeoutMs: 0 });
    bad('127.0.0.1:1', { prefix: 7 });
  });

  await t.test('lifetimes over 30 days are kept (sent as absolute times)', async () => {
    const h = new MemcachedSessionHandler(server.addr, opts({ minutes: 31 * 24 * 60 }));
    const id = faults.sid('long', 1);
    await h.write(id, '{"long":1}');
    assert.equal(await h.read(id), '{"long":1}');
    assert.equal(await h.touch(id), true);
    assert.equal(await h.read(id), '{"long":1}');
  });

  await t.test("a payload over the server's item limit is ERR_SESSION_TOO_LARGE; -I raises it", async () => {
    const h = new MemcachedSessionHandler(server.addr, opts());
    const id = faults.sid('big', 1);
    const big = 'x'.repeat(1536 * 1024);
    await assert.rejects(h.write(id, big), (e) => e.code === 'ERR_SESSION_TOO_LARGE' && !(e instanceof TypeError));
    await h.write(id, '{}');
    assert.equal(await h.read(id), '{}', 'the connection survives');
    const large = await startMemcached({ args: ['-I', '2m'] });
    t.after(() => large.stop());
    const h2 = new MemcachedSessionHandler(large.addr, opts());
    await h2.write(id, big);
    assert.ok((await h2.read(id)) === big);
  });

  await t.test('two servers: keys land on both, and each reads back', async () => {
    const second = await startMemcached();
    t.after(() => second.stop());
    const both = new MemcachedSessionHandler([server.addr, second.addr], opts());
    const onlyA = new MemcachedSessionHandler(server.addr, opts());
    const onlyB = new MemcachedSessionHandler(second.addr, opts());
    const n = 200;
    const ids = Array.from({ length: n }, (_, i) => faults.sid('two', i));
    await Promise.all(ids.map((id, i) => both.write(id, String(i))));
    let a = 0;
    let b = 0;
    for (const [i, id] of ids.entries()) {
      assert.equal(await both.read(id), String(i));
      const inA = (await onlyA.read(id)) !== '';
      const inB = (await onlyB.read(id)) !== '';
      assert.notEqual(inA, inB, `session ${i} must live on exactly one server`);
      a += inA;
      b += inB;
    }
    assert.ok(a > n / 5 && b > n / 5, `keys spread ${a}/${b}`);
  });

  await t.test('built while nothing listens: no error until the first operation, which is unavailable', async () => {
    const h = new MemcachedSessionHandler(`127.0.0.1:${await freePort()}`, opts());
    const [e, ms] = await faults.timed(h.read(faults.sid('dead', 1)));
    assert.ok(e && faults.assertUnavailable(e));
    assert.ok(ms <= TIMEOUT + faults.SLACK_MS, `took ${ms} ms`);
  });

  await t.test('node exits by itself after using handlers, live and dead', async () => {
    await faults.exitsByItself('memcached', server.addr, `127.0.0.1:${await freePort()}`);
  });
});

test('memcached outages', async (t) => {
  await t.test('killed with operations in flight: ERR_SESSION_UNAVAILABLE', async () => {
    const server = await startMemcached();
    t.after(() => server.stop());
    await faults.killInFlight(new MemcachedSessionHandler(server.addr, opts()), server, TIMEOUT);
  });

  await t.test('SIGSTOP: rejects within the timeout + 0.5 s; SIGCONT: works again', async () => {
    const server = await startMemcached();
    t.after(() => server.stop());
    await faults.freezeThaw(new MemcachedSessionHandler(server.addr, opts()), server, TIMEOUT);
  });

  await t.test('restarted on the same port: works again without a new handler', async () => {
    const server = await startMemcached();
    t.after(() => server.stop());
    await faults.restart(new MemcachedSessionHandler(server.addr, opts()), server);
  });
});
