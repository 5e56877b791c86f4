'use strict';
// The redis driver from JS, against redis-server processes this file starts on free loopback
// ports (and stops by pid): the conformance kit, the Store cycle, options, outages (kill with
// operations in flight, SIGSTOP, SIGCONT, restart), rediss:// with a test CA, redis+unix://,
// and Node exiting by itself.
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const net = require('node:net');
const { Store, RedisSessionHandler } = require('..');
const sessionHandlerConformance = require('../lib/testing');
const { startRedis, makeTestCa, freePort } = require('./support/servers');
const faults = require('./support/server-faults');

const TIMEOUT = 800;
const opts = (more) => ({ commandTimeoutMs: TIMEOUT, connectTimeoutMs: TIMEOUT, ...more });

let shared;
sessionHandlerConformance(({ minutes }) => new RedisSessionHandler(shared.url, { minutes }), {
  name: 'RedisSessionHandler (Rust) against redis-server',
  gcRemoves: false,
  lifetimeSeconds: 1,
  before: async () => { shared = await startRedis(); },
  after: () => shared && shared.stop(),
});

/** One RESP command over a plain socket: the test's independent view of what was stored. */
function raw(port, args) {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    let buf = '';
    sock.once('error', reject);
    sock.on('data', (d) => {
      buf += d;
      if (buf.endsWith('\r\n')) {
        sock.destroy();
        resolve(buf.trimEnd());
      }
    });
    sock.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`);
  });
}

test('redis driver', async (t) => {
  const server = await startRedis();
  t.after(() => server.stop());

  await t.test('a full Store cycle, stored as prefix + id with the lifetime as TTL', async () => {
    const h = new RedisSessionHandler(server.url, opts({ prefix: 'app:', minutes: 30 }));
    const s = new Store('ostro_session', h);
    await s.start();
    s.put('user.name', 'Zoë 🎉');
    s.flash('status', 'saved');
    await s.save();
    const again = new Store('ostro_session', new RedisSessionHandler(server.url, { prefix: 'app:' }), s.getId());
    await again.start();
    assert.equal(again.get('user.name'), 'Zoë 🎉');
    assert.equal(again.get('status'), 'saved');
    const key = `app:${s.getId()}`;
    assert.equal(await raw(server.port, ['TTL', key]), ':1800');
    assert.match(await raw(server.port, ['GET', key]), /Zo/);
    await h.close();
  });

  await t.test('the object form, passwords and dbs', async () => {
    const secured = await startRedis({ args: ['--requirepass', 's3cret-pw'] });
    t.after(() => secured.stop());
    const url = new RedisSessionHandler(`redis://:s3cret-pw@127.0.0.1:${secured.port}/3`, opts());
    await url.write(faults.sid('pw', 1), '"db3"');
    const obj = new RedisSessionHandler({ host: '127.0.0.1', port: secured.port, password: 's3cret-pw', db: 3 }, opts());
    assert.equal(await obj.read(faults.sid('pw', 1)), '"db3"');
    const db0 = new RedisSessionHandler({ port: String(secured.port), password: 's3cret-pw', database: 0 }, opts());
    assert.equal(await db0.read(faults.sid('pw', 1)), '');
    const wrong = new RedisSessionHandler(`redis://:wrong-pw-x@127.0.0.1:${secured.port}`, opts());
    await assert.rejects(wrong.read(faults.sid('pw', 1)), (e) => {
      faults.assertUnavailable(e);
      assert.doesNotMatch(e.message, /wrong-pw-x|s3cret-pw/);
      return true;
    });
  });

  await t.test('bad URLs and options are TypeErrors that never echo the password', () => {
    for (const url of ['http://u:hunter2pw@h:1', 'redis://u:hunter2pw@h:1/notadb', 'redis://u:hunter2pw@h:99999',
      'rediss://u:hunter2pw@h:1/#insecure', 'hunter2pw', '', 42, null]) {
      assert.throws(() => new RedisSessionHandler(url), (e) => {
        assert.ok(e instanceof TypeError, String(url));
        assert.equal(e.code, 'ERR_SESSION_INVALID_OPTION');
        assert.doesNotMatch(e.message, /hunter2pw/);
        return true;
      });
    }
    for (const [conn, o] of [
      [{ port: 70000, password: 'hunter2pw' }, {}],
      [{ port: -1 }, {}],
      [{ db: 1.5 }, {}],
      [{ host: '' }, {}],
      [{ tls: 'yes' }, {}],
      ['redis://127.0.0.1:6390', { minutes: 0 }],
      ['redis://127.0.0.1:6390', { commandTimeoutMs: 0 }],
      ['redis://127.0.0.1:6390', { connectTimeoutMs: 'fast' }],
      ['redis://127.0.0.1:6390', { prefix: 5 }],
      ['redis://127.0.0.1:6390', { tls: { caFile: '/tmp/ca.pem' } }],
      ['rediss://127.0.0.1:6390', { tls: { caFile: '/nonexistent/ca.pem' } }],
    ]) {
      assert.throws(() => new RedisSessionHandler(conn, o), (e) => e instanceof TypeError
        && e.code === 'ERR_SESSION_INVALID_OPTION' && !/hunter2pw/.test(e.message), JSON.stringify([conn, o]));
    }
  });

  await t.test('built while nothing listens: no error until the first operation, which is unavailable', async () => {
    const port = await freePort();
    const t0 = Date.now();
    const h = new RedisSessionHandler(`redis://127.0.0.1:${port}`, opts());
    assert.ok(Date.now() - t0 < 100, 'construction does not connect');
    const [e, ms] = await faults.timed(h.read(faults.sid('dead', 1)));
    assert.ok(e && faults.assertUnavailable(e));
    assert.ok(ms <= TIMEOUT + faults.SLACK_MS, `took ${ms} ms`);
  });

  await t.test('node exits by itself after using handlers, live and dead', async () => {
    await faults.exitsByItself('redis', server.url, `redis://127.0.0.1:${await freePort()}`);
  });
});

test('redis outages', async (t) => {
  await t.test('killed with operations in flight: ERR_SESSION_UNAVAILABLE', async () => {
    const server = await startRedis();
    t.after(() => server.stop());
    await faults.killInFlight(new RedisSessionHandler(server.url, opts()), server, TIMEOUT);
  });

  await t.test('SIGSTOP: rejects within the timeout + 0.5 s; SIGCONT: works again', async () => {
    const server = await startRedis();
    t.after(() => server.stop());
    await faults.freezeThaw(new RedisSessionHandler(server.url, opts()), server, TIMEOUT);
  });

  await t.test('restarted on the same port: works again without a new handler', async () => {
    const server = await startRedis();
    t.after(() => server.stop());
    await faults.restart(new RedisSessionHandler(server.url, opts()), server);
  });
});

test('rediss:// against a TLS redis-server with a test CA', async (t) => {
  const server = await startRedis({ tls: true });
  t.after(() => server.stop());
  const id = faults.sid('tls', 1);
  for (const [conn, o] of [
    [server.url, { tls: { caFile: server.caFile } }],
    [`rediss://localhost:${server.port}`, { tls: { caFile: server.caFile } }],
    [{ host: '127.0.0.1', port: server.port, tls: { caFile: server.caFile } }, {}],
  ]) {
    const h = new RedisSessionHandler(conn, opts(o));
    await h.write(id, '{"tls":true}');
    assert.equal(await h.read(id), '{"tls":true}');
    assert.equal(await h.touch(id), true);
  }
  // Certificates are verified by default: unknown CA, another CA, or plain text all fail.
  const other = makeTestCa(path.dirname(server.caFile), 'other');
  for (const [conn, o] of [
    [server.url, {}],
    [server.url, { tls: { caFile: other.caFile } }],
    [`redis://127.0.0.1:${server.port}`, {}],
  ]) {
    await assert.rejects(new RedisSessionHandler(conn, opts(o)).read(id), faults.assertUnavailable, JSON.stringify([conn, o]));
  }
});

test('redis+unix:// against a unix socket', async (t) => {
  const server = await startRedis({ unix: true });
  t.after(() => server.stop());
  const h = new RedisSessionHandler(server.url, opts());
  const s = new Store('ostro_session', h);
  await s.start();
  s.put('via', 'unix');
  await s.save();
  const again = new Store('ostro_session', h, s.getId());
  await again.start();
  assert.equal(again.get('via'), 'unix');
});
