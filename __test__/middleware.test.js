'use strict';
// Black-box HTTP tests of manager.middleware() over node:http and Express 5, with a cookie jar,
// on every built-in driver: array, file, sqlite, redis, memcached (real servers) and cookie.
const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { performance } = require('node:perf_hooks');
const { SessionManager } = require('../lib/manager');
const { SessionHandlerInterface } = require('../lib/handler-interface');
const { serve, listen, Client, rawRequest, parseSetCookie, sessionCookie, idOf, until } = require('./support/http');
const { sessionApp, send } = require('./support/session-app');
const { tmpDir } = require('./support/tmp');
const { startRedis, startMemcached } = require('./support/servers');

const KEY = 'base64:dGhpcyBpcyBhIHRlc3Qga2V5IG9mIDMyIGJ5dGVzIQ==';
const OLD_KEY = 'base64:b2xkIGtleSBvZiB0aGlydHktdHdvIGJ5dGVzIGxvbmc=';
const FRAMEWORKS = ['node', 'express'];
const DRIVERS = ['array', 'file', 'sqlite', 'redis', 'memcached', 'cookie'];

// One redis-server and one memcached for the file, started on free loopback ports and stopped by pid.
let redis;
let memcached;
let prefixes = 0;
test.before(async () => {
  [redis, memcached] = await Promise.all([startRedis(), startMemcached()]);
});
test.after(async () => {
  await Promise.all([redis && redis.stop(), memcached && memcached.stop()]);
});

// cookie-signature, computed independently of the addon.
function sign(id, key = KEY) {
  return `s:${id}.${crypto.createHmac('sha256', key).update(id).digest('base64').replace(/=+$/, '')}`;
}

function configFor(driver, extra = {}) {
  const c = { driver, key: KEY, lottery: [0, 100], ...extra };
  if (driver === 'file') c.files = tmpDir();
  if (driver === 'sqlite') c.connection = path.join(tmpDir(), 'sessions.sqlite');
  if (driver === 'redis') Object.assign(c, { connection: redis.url, prefix: `http${prefixes++}:` });
  if (driver === 'memcached') Object.assign(c, { connection: memcached.addr, prefix: `http${prefixes++}:` });
  return c;
}

/** Starts a server for one test and closes it (and the manager) when the test ends. */
async function setup(t, kind, config, { hooks, options } = {}) {
  const manager = new SessionManager(config, options);
  const server = await serve(kind, manager, sessionApp(hooks));
  t.after(async () => {
    await server.close();
    await manager.close();
  });
  return { manager, server, client: new Client(server.url) };
}

/** A JS handler over a Map that records what it was asked. */
class RecordingHandler extends SessionHandlerInterface {
  constructor({ writeDelayMs = 0 } = {}) {
    super();
    this.map = new Map();
    this.calls = [];
    this.metas = [];
    this.writeDelayMs = writeDelayMs;
    this.writeResolvedAt = [];
  }
  read(id) { this.calls.push('read'); return this.map.get(id) || ''; }
  async write(id, data, meta) {
    this.calls.push('write');
    this.metas.push(meta);
    if (this.writeDelayMs) await new Promise((r) => setTimeout(r, this.writeDelayMs));
    this.map.set(id, data);
    this.writeResolvedAt.push(performance.now());
  }
  destroy(id) { this.calls.push('destroy'); this.map.delete(id); }
  touch(id) { this.calls.push('touch'); return this.map.has(id); }
  gc() { return 0; }
}

function withHandler(handler, extra = {}) {
  const config = { driver: 'recording', key: KEY, lottery: [0, 100], ...extra };
  return { config, extend: (m) => m.extend('recording', () => handler) };
}

async function setupWith(t, kind, handler, extra, hooks) {
  const { config, extend } = withHandler(handler, extra);
  const manager = new SessionManager(config);
  extend(manager);
  const server = await serve(kind, manager, sessionApp(hooks));
  t.after(async () => {
    await server.close();
  });
  return { manager, server, client: new Client(server.url) };
}

// ----- the core behaviour on every framework and driver ----------------------------------------

for (const kind of FRAMEWORKS) {
  for (const driver of DRIVERS) {
    test(`${kind}/${driver}: data persists across requests; the cookie is signed 1.x-style`, async (t) => {
      const { client } = await setup(t, kind, configFor(driver));
      const r1 = await client.get('/put?key=cart&value=pear');
      assert.equal(r1.status, 200);
      const c = sessionCookie(r1);
      assert.ok(c, 'a session cookie was set');
      if (driver === 'cookie') {
        assert.match(c.value, /^v1\.[A-Za-z0-9_-]+$/);
      } else {
        const v = decodeURIComponent(c.value);
        assert.match(v, /^s:[A-Za-z0-9]{40}\.[A-Za-z0-9+/]{43}$/);
        assert.equal(v, sign(idOf(c)), 'the signature is HMAC-SHA256 of the id with the literal key');
        assert.equal(r1.json().id, idOf(c));
      }
      const r2 = await client.get('/get?key=cart');
      assert.equal(r2.json().value, 'pear');
      assert.equal((await client.get('/increment')).json().n, 1);
      assert.equal((await client.get('/increment')).json().n, 2);
      assert.equal((await client.get('/get?key=cart')).json().value, 'pear');
    });

    test(`${kind}/${driver}: flash is visible on exactly the next request`, async (t) => {
      const { client } = await setup(t, kind, configFor(driver));
      await client.get('/flash?key=status&value=saved');
      assert.equal((await client.get('/get?key=status')).json().value, 'saved');
      assert.equal((await client.get('/get?key=status')).json().value, null);
    });

    test(`${kind}/${driver}: regenerate gives a new id, keeps data${driver === 'cookie' ? '' : ', and kills the old id'}`, async (t) => {
      const { client } = await setup(t, kind, configFor(driver));
      const first = await client.get('/put?key=user&value=ada');
      const oldCookie = client.cookieHeader();
      const oldId = first.json().id;
      const r = await client.get('/regenerate');
      const newId = r.json().id;
      assert.notEqual(newId, oldId);
      assert.match(newId, /^[A-Za-z0-9]{40}$/);
      const c = sessionCookie(r);
      assert.ok(c, 'the new id is cookied');
      if (driver !== 'cookie') assert.equal(idOf(c), newId);
      const after = await client.get('/get?key=user');
      assert.equal(after.json().value, 'ada');
      assert.equal(after.json().id, newId);
      if (driver !== 'cookie') {
        // A server-side driver forgets the old id: replaying the old cookie starts afresh.
        const replay = await client.get('/get?key=user', { cookie: oldCookie });
        assert.equal(replay.json().value, null);
        assert.notEqual(replay.json().id, oldId);
      }
    });

    test(`${kind}/${driver}: invalidate empties the session and replaces the cookie`, async (t) => {
      const { client } = await setup(t, kind, configFor(driver));
      const before = await client.get('/put?key=user&value=ada');
      const oldValue = sessionCookie(before).value;
      const r = await client.get('/invalidate');
      const c = sessionCookie(r);
      assert.ok(c);
      assert.notEqual(c.value, oldValue);
      assert.notEqual(r.json().id, before.json().id);
      const after = await client.get('/get?key=user');
      assert.equal(after.json().value, null);
      assert.equal(after.json().id, r.json().id);
    });

    test(`${kind}/${driver}: a redirect target sees the redirecting request's write`, async (t) => {
      const { client } = await setup(t, kind, configFor(driver));
      for (let i = 0; i < 5; i++) {
        const r = await client.get(`/redirect?value=v${i}`);
        assert.equal(r.status, 302);
        const next = await client.get(r.headers.get('location'));
        assert.equal(next.json().value, `v${i}`);
      }
    });
  }
}

// ----- commit before respond ---------------------------------------------------------------------

for (const kind of FRAMEWORKS) {
  test(`${kind}: no byte reaches the client before a 200 ms write resolves (writeHead(302) + end)`, async (t) => {
    const h = new RecordingHandler({ writeDelayMs: 200 });
    const { server } = await setupWith(t, kind, h, {}, {
      '/bounce': (req, res) => {
        req.session.put('x', 1);
        res.writeHead(302, { Location: '/next' });
        res.end();
      },
    });
    const r = await rawRequest(server.port, 'GET /bounce HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n');
    assert.match(r.text, /^HTTP\/1\.1 302/);
    assert.match(r.text, /Set-Cookie: ostro_session=/i);
    assert.equal(h.writeResolvedAt.length, 1);
    assert.ok(r.firstByteAt >= h.writeResolvedAt[0], `first byte at ${r.firstByteAt}, write resolved at ${h.writeResolvedAt[0]}`);
  });

  test(`${kind}: a streamed body is saved and cookied before its first chunk`, async (t) => {
    const h = new RecordingHandler({ writeDelayMs: 200 });
    const { server } = await setupWith(t, kind, h, {}, {
      '/stream': (req, res) => {
        req.session.put('x', 1);
        res.setHeader('Content-Type', 'text/plain');
        res.write('first,');
        res.flushHeaders();
        setTimeout(() => res.end('last'), 20);
      },
    });
    const r = await rawRequest(server.port, 'GET /stream HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n');
    assert.match(r.text, /^HTTP\/1\.1 200/);
    assert.match(r.text, /Set-Cookie: ostro_session=/i);
    assert.match(r.text, /first,/);
    assert.match(r.text, /last/);
    assert.ok(r.firstByteAt >= h.writeResolvedAt[0]);
  });
}

for (const kind of FRAMEWORKS) {
  test(`${kind}: a piped 1 MB body waits for the save, respects backpressure and arrives whole`, async (t) => {
    const { Readable } = require('node:stream');
    const h = new RecordingHandler({ writeDelayMs: 200 });
    const chunk = Buffer.alloc(64 * 1024, 'a');
    const { server } = await setupWith(t, kind, h, {}, {
      '/pipe': (req, res) => {
        req.session.put('piped', true);
        res.setHeader('Content-Length', 16 * chunk.length);
        let n = 0;
        Readable.from((function* gen() { while (n++ < 16) yield chunk; })()).pipe(res);
      },
    });
    const r = await rawRequest(server.port, 'GET /pipe HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n');
    assert.match(r.text, /^HTTP\/1\.1 200/);
    assert.match(r.text, /Set-Cookie: ostro_session=/i);
    assert.equal(r.text.length - r.text.indexOf('\r\n\r\n') - 4, 16 * chunk.length);
    assert.ok(r.firstByteAt >= h.writeResolvedAt[0]);
  });
}

test('express: no byte reaches the client before a 200 ms write resolves (res.redirect)', async (t) => {
  const express = require('express');
  const http = require('node:http');
  const { listen } = require('./support/http');
  const h = new RecordingHandler({ writeDelayMs: 200 });
  const manager = new SessionManager({ driver: 'slow', key: KEY, lottery: [0, 100] });
  manager.extend('slow', () => h);
  const app = express();
  app.use(manager.middleware());
  app.post('/login', (req, res) => {
    req.session.put('user', 'ada');
    res.redirect('/home');
  });
  app.get('/home', (req, res) => res.json({ user: req.session.get('user') }));
  const server = await listen(http.createServer(app));
  t.after(() => server.close());
  const r = await rawRequest(server.port, 'POST /login HTTP/1.1\r\nHost: a.test\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
  assert.match(r.text, /^HTTP\/1\.1 302/);
  assert.ok(r.firstByteAt >= h.writeResolvedAt[0], `first byte at ${r.firstByteAt}, write resolved at ${h.writeResolvedAt[0]}`);
  const cookie = parseSetCookie(/Set-Cookie: (.*)\r\n/i.exec(r.text)[1]);
  const home = await new Client(server.url).get('/home', { cookie: `${cookie.name}=${cookie.value}` });
  assert.deepEqual(home.json(), { user: 'ada' });
});

// ----- cookies -----------------------------------------------------------------------------------

const ATTRIBUTE_CASES = [
  [{}, { path: '/', httponly: true, samesite: 'Lax', 'max-age': '7200' }, ['secure', 'domain']],
  [{ lifetime: '30', path: '/app', domain: 'example.test' }, { path: '/app', domain: 'example.test', 'max-age': '1800' }, []],
  [{ secure: true }, { secure: true }, []],
  [{ http_only: false }, {}, ['httponly']],
  [{ same_site: 'strict' }, { samesite: 'Strict' }, []],
  [{ same_site: 'none', secure: true }, { samesite: 'None', secure: true }, []],
  [{ same_site: null }, {}, ['samesite']],
  [{ expire_on_close: true }, { path: '/' }, ['max-age', 'expires']],
  [{ cookie: 'shop_session' }, {}, []],
  [{ cookie: 'my shop_session' }, {}, []],
];

for (const kind of FRAMEWORKS) {
  test(`${kind}: cookie attributes follow the config`, async (t) => {
    for (const [extra, want, absent] of ATTRIBUTE_CASES) {
      const manager = new SessionManager({ driver: 'array', key: KEY, lottery: [0, 100], ...extra });
      const server = await serve(kind, manager, sessionApp());
      try {
        const r = await new Client(server.url).get('/put?key=a&value=b');
        const c = sessionCookie(r, extra.cookie || 'ostro_session');
        assert.ok(c, JSON.stringify(extra));
        for (const [k, v] of Object.entries(want)) assert.equal(c.attrs[k], v, `${JSON.stringify(extra)}: ${k}`);
        for (const k of absent) assert.equal(c.attrs[k], undefined, `${JSON.stringify(extra)}: no ${k}`);
        if (!extra.expire_on_close) {
          const expires = Date.parse(c.attrs.expires);
          const maxAge = Number(c.attrs['max-age']);
          assert.ok(Math.abs(expires - (Date.now() + maxAge * 1000)) < 5000);
        }
        assert.equal(r.headers.get('cache-control'), 'private');
      } finally {
        await server.close();
      }
    }
  });
}

test("secure 'auto' follows the request, and trusts X-Forwarded-Proto only behind a trusted proxy", async (t) => {
  const { client } = await setup(t, 'node', configFor('array', { secure: 'auto' }));
  const plain = await client.get('/put?key=a&value=1', { headers: { 'x-forwarded-proto': 'https' } });
  assert.equal(sessionCookie(plain).attrs.secure, undefined);
  const { client: proxied } = await setup(t, 'node', configFor('array', { secure: 'auto', trust_proxy: true }));
  const viaProxy = await proxied.get('/put?key=a&value=1', { headers: { 'x-forwarded-proto': 'https' } });
  assert.equal(sessionCookie(viaProxy).attrs.secure, true);
  const httpProxy = await proxied.get('/put?key=a&value=1', { headers: { 'x-forwarded-proto': 'http' } });
  assert.equal(sessionCookie(httpProxy).attrs.secure, undefined);
});

test("same_site 'none' without secure is refused at construction", () => {
  assert.throws(() => new SessionManager({ same_site: 'none' }), (e) => e.code === 'ERR_SESSION_INVALID_OPTION' && /same_site/.test(e.message) && /secure/.test(e.message));
  assert.throws(() => new SessionManager({ same_site: 'None', secure: 'auto' }), /same_site/);
});

for (const kind of FRAMEWORKS) {
  test(`${kind}: the app's Set-Cookie and Cache-Control headers are kept`, async (t) => {
    const { client } = await setup(t, kind, configFor('array'), {
      hooks: {
        '/mine': (req, res) => {
          req.session.put('a', 1);
          res.setHeader('Set-Cookie', ['app=1; Path=/']);
          res.setHeader('Cache-Control', 'no-store');
          send(res, 200, 'ok', { 'X-Extra': 'y' });
        },
        '/head-cookies': (req, res) => {
          req.session.put('a', 2);
          res.writeHead(200, { 'Set-Cookie': ['b=2', 'c=3'], 'Content-Type': 'text/plain' });
          res.end('ok');
        },
      },
    });
    const r = await client.get('/mine');
    const names = r.setCookies.map((l) => parseSetCookie(l).name);
    assert.deepEqual(names.sort(), ['app', 'ostro_session']);
    assert.equal(r.headers.get('cache-control'), 'no-store');
    assert.equal(r.headers.get('x-extra'), 'y');
    const r2 = await client.get('/head-cookies');
    assert.deepEqual(r2.setCookies.map((l) => parseSetCookie(l).name).sort(), ['b', 'c', 'ostro_session']);
    assert.equal(r2.headers.get('cache-control'), 'private');
  });
}

// ----- reading the cookie ------------------------------------------------------------------------

for (const kind of FRAMEWORKS) {
  test(`${kind}: tampered, unsigned, wrong-key, badly encoded, duplicate and unknown cookies start fresh sessions`, async (t) => {
    const { client } = await setup(t, kind, configFor('file'));
    const good = await client.get('/put?key=secret&value=s3');
    const id = good.json().id;
    const value = sessionCookie(good).value;
    const signed = decodeURIComponent(value);
    const tamperedSig = signed.slice(0, -2) + (signed.endsWith('AA') ? 'BB' : 'AA');
    const otherId = `${id.slice(0, -1)}${id.endsWith('a') ? 'b' : 'a'}`;
    const cases = {
      tampered: `ostro_session=${encodeURIComponent(tamperedSig)}`,
      'tampered id': `ostro_session=${encodeURIComponent(signed.replace(id, otherId))}`,
      unsigned: `ostro_session=${id}`,
      'wrong key': `ostro_session=${encodeURIComponent(sign(id, 'another key that is long enough, 32+'))}`,
      'bad encoding': 'ostro_session=s%3A%E0%A4%A',
      duplicate: `ostro_session=${value}; ostro_session=${value}`,
      'unknown id': `ostro_session=${encodeURIComponent(sign(crypto.randomBytes(30).toString('base64').replace(/[^A-Za-z0-9]/g, 'x').slice(0, 40)))}`,
      empty: 'ostro_session=',
      garbage: 'ostro_session="s:"; other=1',
    };
    for (const [what, cookie] of Object.entries(cases)) {
      const r = await client.get('/get?key=secret', { cookie });
      assert.equal(r.status, 200, what);
      assert.equal(r.json().value, null, `${what}: no data`);
      assert.notEqual(r.json().id, id, `${what}: a fresh id`);
      const c = sessionCookie(r);
      assert.ok(c, `${what}: the fresh session is cookied`);
      assert.equal(idOf(c), r.json().id);
    }
    // Strict mode: a validly signed id the store does not know is not adopted.
    const unknown = 'Q'.repeat(40);
    const r = await client.get('/put?key=x&value=1', { cookie: `ostro_session=${encodeURIComponent(sign(unknown))}` });
    assert.notEqual(r.json().id, unknown);
    assert.notEqual(idOf(sessionCookie(r)), unknown);
    // And the genuine cookie still works.
    assert.equal((await client.get('/get?key=secret', { cookie: `ostro_session=${value}` })).json().value, 's3');
  });
}

test('a key rotated into previous_keys still verifies; the new cookie is signed with the new key', async (t) => {
  const dir = tmpDir();
  const before = await setup(t, 'node', { driver: 'file', files: dir, key: OLD_KEY, lottery: [0, 100] });
  const r1 = await before.client.get('/put?key=user&value=ada');
  const oldCookie = before.client.cookieHeader();
  const id = r1.json().id;
  const after = await setup(t, 'express', { driver: 'file', files: dir, key: KEY, previous_keys: [OLD_KEY], lottery: [0, 100] });
  const r2 = await after.client.get('/get?key=user', { cookie: oldCookie });
  assert.equal(r2.json().value, 'ada');
  assert.equal(r2.json().id, id);
  assert.equal(decodeURIComponent(sessionCookie(r2).value), sign(id, KEY));
  // Without the previous key the old cookie is just invalid.
  const strict = await setup(t, 'node', { driver: 'file', files: dir, key: KEY, lottery: [0, 100] });
  assert.equal((await strict.client.get('/get?key=user', { cookie: oldCookie })).json().value, null);
  // previous_keys from env() as one comma-separated string.
  const env = await setup(t, 'node', { driver: 'file', files: dir, key: KEY, previous_keys: `unused-key-0123456789abcdefghijkl, ${OLD_KEY}`, lottery: [0, 100] });
  assert.equal((await env.client.get('/get?key=user', { cookie: oldCookie })).json().value, 'ada');
});

// ----- legacy 1.x sessions -----------------------------------------------------------------------

const LEGACY_ID = 'Ab-_c1dE2fG3hI4jK5lM6nO7pQ8rS9tU0vWx-y_Z';
// What @ostro/session 1.x's file adapter wrote: the attributes with its own internal keys.
const LEGACY_PAYLOAD = JSON.stringify({
  __token: 'abcdefghijklmnopqrstuvwxyz0123-xo75IyYRhcHcZFo1LjPQB7-Gx-g',
  __flash: { __old: [], __new: [] },
  cartItem: 'pear',
  user: { teams: ['red'] },
});

for (const kind of FRAMEWORKS) {
  test(`${kind}: a 1.x cookie and file payload load, then move to a fresh id; the legacy record is left`, async (t) => {
    assert.equal(LEGACY_ID.length, 40);
    assert.match(LEGACY_ID, /-/);
    assert.match(LEGACY_ID, /_/);
    const dir = tmpDir();
    fs.writeFileSync(path.join(dir, LEGACY_ID), LEGACY_PAYLOAD, { mode: 0o600 });
    const { client } = await setup(t, kind, { driver: 'file', files: dir, key: KEY, lottery: [0, 100] });
    // 1.x sent `s%3A<id>.<sig>` with cookie.serialize (encodeURIComponent).
    const legacyCookie = `ostro_session=${encodeURIComponent(sign(LEGACY_ID))}`;
    const r = await client.get('/all', { cookie: legacyCookie });
    const { all, id } = r.json();
    assert.equal(all.cartItem, 'pear');
    assert.deepEqual(all.user, { teams: ['red'] });
    assert.equal(all._token, 'abcdefghijklmnopqrstuvwxyz0123-xo75IyYRhcHcZFo1LjPQB7-Gx-g', 'the 1.x token carries over');
    assert.match(id, /^[A-Za-z0-9]{40}$/);
    assert.notEqual(id, LEGACY_ID);
    assert.equal(idOf(sessionCookie(r)), id);
    assert.ok(fs.existsSync(path.join(dir, id)), 'saved under the fresh id');
    assert.ok(fs.existsSync(path.join(dir, LEGACY_ID)), 'the legacy record is left to expire');
    // Parallel requests of the upgrade still land on the session.
    const again = await client.get('/get?key=cartItem', { cookie: legacyCookie });
    assert.equal(again.json().value, 'pear');
    // The new cookie works on its own.
    client.jar.set('ostro_session', sessionCookie(r).value);
    assert.equal((await client.get('/get?key=cartItem')).json().value, 'pear');
  });
}

test('a legacy id whose record is gone gets a fresh session', async (t) => {
  const { client } = await setup(t, 'node', configFor('file'));
  const r = await client.get('/get?key=cartItem', { cookie: `ostro_session=${encodeURIComponent(sign(LEGACY_ID))}` });
  assert.equal(r.json().value, null);
  assert.notEqual(r.json().id, LEGACY_ID);
});

// ----- req.session -------------------------------------------------------------------------------

for (const kind of FRAMEWORKS) {
  test(`${kind}: req.session is one Store for the whole request and cannot be replaced`, async (t) => {
    const { client } = await setup(t, kind, configFor('array'), {
      hooks: {
        '/replace': (req, res) => {
          const s = req.session;
          let threw = false;
          try {
            req.session = { fake: true };
          } catch (e) {
            threw = e instanceof TypeError;
          }
          let deleted;
          try {
            deleted = delete req.session;
          } catch (e) {
            deleted = !(e instanceof TypeError);
          }
          send(res, 200, { same: req.session === s, threw, deleted, started: s.isStarted() });
        },
      },
    });
    assert.deepEqual((await client.get('/replace')).json(), { same: true, threw: true, deleted: false, started: true });
  });
}

test('mounted twice, the first middleware owns the session', async (t) => {
  const express = require('express');
  const http = require('node:http');
  const { listen } = require('./support/http');
  const manager = new SessionManager(configFor('array'));
  const app = express();
  app.use(manager.middleware());
  app.use(manager.middleware());
  app.get('/', (req, res) => {
    req.session.increment('n');
    res.json({ n: req.session.get('n') });
  });
  const server = await listen(http.createServer(app));
  t.after(() => server.close());
  const c = new Client(server.url);
  const r = await c.get('/');
  assert.equal(r.setCookies.length, 1);
  assert.equal((await c.get('/')).json().n, 2);
});

// ----- metadata ----------------------------------------------------------------------------------

test('write metadata carries the client IP (X-Forwarded-For only with trust_proxy) and the user agent', async (t) => {
  const plain = new RecordingHandler();
  const a = await setupWith(t, 'node', plain);
  await a.client.get('/put?key=a&value=1', { headers: { 'x-forwarded-for': '203.0.113.7', 'user-agent': 'test-agent/1' } });
  assert.deepEqual(plain.metas[0], { ip: '127.0.0.1', userAgent: 'test-agent/1' });
  const proxied = new RecordingHandler();
  const b = await setupWith(t, 'express', proxied, { trust_proxy: true });
  await b.client.get('/put?key=a&value=1', { headers: { 'x-forwarded-for': '203.0.113.7, 10.0.0.1', 'user-agent': 'ua' } });
  assert.deepEqual(proxied.metas[0], { ip: '203.0.113.7', userAgent: 'ua' });
});

// ----- save rules ----------------------------------------------------------------------------------

test('saveUninitialized: false saves and cookies a new session only when changed or its token was read', async (t) => {
  const h = new RecordingHandler();
  const { client } = await setupWith(t, 'node', h, { saveUninitialized: false });
  const none = await client.get('/none');
  assert.equal(none.setCookies.length, 0);
  assert.equal(h.map.size, 0);
  assert.deepEqual(h.calls, [], 'a new session is neither read nor written');
  const tok = await client.get('/token');
  assert.ok(sessionCookie(tok), 'reading token() cookies the session');
  assert.equal(h.map.size, 1);
  const c2 = new Client(client.base);
  const put = await c2.get('/put?key=a&value=1');
  assert.ok(sessionCookie(put));
  assert.equal(h.map.size, 2);
  // An existing session is kept alive (touched and re-cookied) even when unchanged.
  const again = await client.get('/none');
  assert.ok(sessionCookie(again));
});

test('saveUninitialized: true (the default) saves every new session', async (t) => {
  const h = new RecordingHandler();
  const { client } = await setupWith(t, 'node', h);
  const r = await client.get('/none');
  assert.ok(sessionCookie(r));
  assert.equal(h.map.size, 1);
});

test('an unchanged session is touched, or rewritten with resave', async (t) => {
  const h = new RecordingHandler();
  const { client } = await setupWith(t, 'node', h, { previous_url: false });
  await client.get('/put?key=a&value=1');
  h.calls.length = 0;
  await client.get('/none');
  assert.deepEqual(h.calls, ['read', 'touch']);
  const r = new RecordingHandler();
  const b = await setupWith(t, 'node', r, { previous_url: false, resave: true });
  await b.client.get('/put?key=a&value=1');
  r.calls.length = 0;
  await b.client.get('/none');
  // resave touches first and rewrites only a record that still exists (issue 10, defect 3).
  assert.deepEqual(r.calls, ['read', 'touch', 'write']);
});

// A request that loaded the session before a concurrent logout destroyed it saves unchanged: the
// save finds the record gone ('dropped'), so its response must not send the old id back (that
// would undo the logout in the browser); it clears the cookie instead, and the record stays gone.
for (const kind of FRAMEWORKS) {
  for (const driver of DRIVERS.filter((d) => d !== 'cookie')) {
    test(`${kind} + ${driver}: a response whose session was destroyed meanwhile clears the cookie instead of resending the id`, async (t) => {
      let loaded;
      const started = new Promise((r) => { loaded = r; });
      let release;
      const gate = new Promise((r) => { release = r; });
      const hooks = {
        '/slow': async (req, res) => {
          loaded();
          await gate;
          send(res, 200, 'slow');
        },
      };
      const { client, manager } = await setup(t, kind, configFor(driver, { previous_url: false }), { hooks });
      await client.get('/put?key=user&value=alice');
      const cookie = client.cookieHeader();
      const oldId = idOf(sessionCookie(await client.get('/get?key=user', { cookie })));
      const slow = client.get('/slow', { cookie });
      await started;
      const out = await client.get('/invalidate', { cookie });
      assert.notEqual(idOf(sessionCookie(out)), oldId, 'the logout moved to a fresh id');
      release();
      const res = await slow;
      assert.equal(res.status, 200);
      const c = sessionCookie(res);
      assert.ok(c, 'the response carries a session cookie line');
      assert.equal(c.attrs['max-age'], '0', `the cookie is cleared, not resent: ${res.setCookies}`);
      assert.equal(c.value, '');
      // The old id stays dead: presenting it again starts a fresh, empty session.
      const again = await client.get('/get?key=user', { cookie });
      assert.equal(again.json().value, null);
      assert.notEqual(again.json().id, oldId);
      const { store, existed } = await manager.loadStore(cookie);
      assert.equal(existed, false);
      assert.notEqual(store.getId(), oldId);
    });
  }
}

// The response is held back through http.ServerResponse.prototype (Express 4 and 5 responses
// inherit from it), so a request adds no methods of its own to `res`; a response whose methods a
// middleware mounted earlier already wrapped is wrapped on top, per instance, and still waits.
test('the hook lives on ServerResponse.prototype for node:http, Express 4 and 5; an earlier wrapper is wrapped on top', async (t) => {
  const http = require('node:http');
  const express4 = require('express4');
  const express5 = require('express');
  const h = new RecordingHandler({ writeDelayMs: 100 });
  const manager = new SessionManager({ driver: 'rec', key: KEY, lottery: [0, 100] });
  manager.extend('rec', () => h);
  t.after(() => manager.close());
  const mw = manager.middleware();
  const route = (req, res) => {
    const own = ['writeHead', 'write', 'end', 'flushHeaders'].filter((m) => Object.hasOwn(res, m));
    req.session.put('n', req.session.get('n', 0) + 1);
    res.setHeader('Content-Type', 'application/json');
    res.end(JSON.stringify({ own }));
  };
  const servers = [];
  const node = http.createServer((req, res) => mw(req, res, () => route(req, res)));
  // A wrapper installed before the session middleware, holding the method it found then.
  const wrapped = http.createServer((req, res) => {
    const end = res.end;
    res.end = function wrappedEnd(...args) { res.setHeader('X-Wrapped', '1'); return end.apply(this, args); };
    mw(req, res, () => route(req, res));
  });
  const e4 = express4();
  e4.use(mw);
  e4.get('/', route);
  const e5 = express5();
  e5.use(mw);
  e5.get('/', route);
  for (const [name, server] of [['node', node], ['express4', http.createServer(e4)], ['express5', http.createServer(e5)], ['wrapped', wrapped]]) {
    servers.push([name, await listen(server)]);
  }
  t.after(() => Promise.all(servers.map(([, s]) => s.close())));
  for (const [name, s] of servers) {
    const client = new Client(s.url);
    await client.get('/');
    const before = h.writeResolvedAt.length;
    const res = await client.get('/');
    const arrived = performance.now();
    assert.equal(h.writeResolvedAt.length, before + 1, `${name}: saved`);
    assert.ok(h.writeResolvedAt.at(-1) <= arrived, `${name}: the save settled before the response arrived`);
    assert.ok(sessionCookie(res), `${name}: cookied`);
    assert.deepEqual(res.json().own, name === 'wrapped' ? ['writeHead', 'write', 'end', 'flushHeaders'] : [], `${name}: own methods on res`);
    if (name === 'wrapped') assert.equal(res.headers.get('x-wrapped'), '1');
  }
});

// ----- previous URL ---------------------------------------------------------------------------------

for (const kind of FRAMEWORKS) {
  test(`${kind}: the previous URL is the path and query of GET 2xx pages only`, async (t) => {
    const h = new RecordingHandler();
    const { client, server } = await setupWith(t, kind, h);
    const previous = async () => (await client.get('/previous', { headers: { 'x-requested-with': 'XMLHttpRequest' } })).json().previous;
    await client.get('/none?page=2');
    assert.equal(await previous(), '/none?page=2');
    await client.request('/none?post=1', { method: 'POST' });
    assert.equal(await previous(), '/none?page=2', 'POST is not remembered');
    await client.get('/status?code=404');
    await client.get('/status?code=302');
    assert.equal(await previous(), '/none?page=2', 'non-2xx is not remembered');
    await client.get('/none?xhr=1', { headers: { 'x-requested-with': 'XMLHttpRequest' } });
    await client.get('/none?pf=1', { headers: { purpose: 'prefetch' } });
    await client.get('/none?pf=2', { headers: { 'sec-purpose': 'prefetch;prerender' } });
    await client.get('/none?pf=3', { headers: { 'x-moz': 'prefetch' } });
    assert.equal(await previous(), '/none?page=2', 'XHR and prefetches are not remembered');
    // The absolute request-target form: the Host never gets in.
    await rawRequest(server.port, `GET http://evil.test/none?abs=1 HTTP/1.1\r\nHost: evil.test\r\nCookie: ${client.cookieHeader()}\r\nConnection: close\r\n\r\n`);
    assert.equal(await previous(), '/none?abs=1');
    await rawRequest(server.port, `GET //evil.test/none HTTP/1.1\r\nHost: a.test\r\nCookie: ${client.cookieHeader()}\r\nConnection: close\r\n\r\n`);
    const p = await previous();
    assert.ok(!p.startsWith('//'), `never protocol-relative: ${p}`);
  });
}

test('remembering the same URL again does not mark the session changed', async (t) => {
  const h = new RecordingHandler();
  const { client } = await setupWith(t, 'node', h);
  await client.get('/none?a=1');
  await client.get('/none?a=1');
  h.calls.length = 0;
  await client.get('/none?a=1');
  assert.deepEqual(h.calls, ['read', 'touch']);
  await client.get('/none?a=2');
  assert.deepEqual(h.calls, ['read', 'touch', 'read', 'write']);
});

// ----- failures -------------------------------------------------------------------------------------

class FailingHandler extends RecordingHandler {
  constructor(what) {
    super();
    this.what = what;
  }
  read(id) {
    if (this.what === 'read') throw Object.assign(new Error('db down'), { code: 'EDBDOWN' });
    return super.read(id);
  }
  write(id, data, meta) {
    if (this.what === 'read') return super.write(id, data, meta);
    return Promise.reject(Object.assign(new Error('disk full'), { code: 'EDISKFULL' }));
  }
}

for (const kind of ['node', 'node-await', 'express']) {
  for (const what of ['read', 'write']) {
    test(`${kind}: a driver failing on ${what} gives a 500, never a hang`, async (t) => {
      const errors = [];
      const manager = new SessionManager({ driver: 'broken', key: KEY, lottery: [0, 100] }, { logger: { error: (...a) => errors.push(a) } });
      const handler = new FailingHandler(what);
      manager.extend('broken', () => handler);
      const server = await serve(kind, manager, sessionApp());
      t.after(() => server.close());
      const client = new Client(server.url);
      if (what === 'read') {
        // Reads happen for sessions the client claims: make one first (writes work here).
        client.jar.set('ostro_session', encodeURIComponent(sign('R'.repeat(40))));
        handler.map.set('R'.repeat(40), '{}');
      }
      const r = await client.get('/redirect');
      assert.equal(r.status, 500);
      assert.equal(r.headers.get('location'), null);
      assert.equal(sessionCookie(r), undefined, 'no cookie for a session that was not saved');
      const code = what === 'read' ? 'EDBDOWN' : 'EDISKFULL';
      if (kind === 'node-await') {
        assert.equal(r.body, 'Internal Server Error', 'a generic message');
        assert.equal(errors.length, 1, 'and the error is logged');
        assert.equal(errors[0][1].code, code);
      } else {
        assert.equal(r.body, `error:${code}`, 'the error reaches next(err)');
      }
    });
  }
}

test('a missing app key is one clear error, never a hang: at construction outside OstroJS, on the request under OstroJS', async (t) => {
  assert.throws(() => new SessionManager({ driver: 'array', lottery: [0, 100] }), (e) => e.code === 'ERR_SESSION_INVALID_OPTION' && /app key is missing/.test(e.message));
  // Under OstroJS construction does not need it (key:generate runs on a fresh app).
  const manager = new SessionManager({ driver: 'array', lottery: [0, 100], csrf: 'laravel' }, { app: {} });
  for (const kind of ['node', 'express']) {
    const server = await serve(kind, manager, sessionApp());
    try {
      const r = await new Client(server.url).get('/put?key=a&value=b');
      assert.equal(r.status, 500);
      assert.equal(r.body, 'error:ERR_SESSION_INVALID_OPTION');
    } finally {
      await server.close();
    }
  }
  await assert.rejects(manager.loadSession({ headers: { cookie: 'ostro_session=s%3Ax.y' }, socket: {} }), /app key is missing/);
});

// ----- garbage collection ------------------------------------------------------------------------

test('the lottery runs gc off the request path, one run at a time per handler, and logs its errors', async (t) => {
  let running = 0;
  let maxRunning = 0;
  let calls = 0;
  const seconds = [];
  let release;
  const gate = new Promise((r) => { release = r; });
  const h = new RecordingHandler();
  h.gc = async (secs) => {
    calls++;
    seconds.push(secs);
    running++;
    maxRunning = Math.max(maxRunning, running);
    await gate;
    running--;
    if (calls === 1) throw new Error('gc exploded');
    return 0;
  };
  const errors = [];
  const manager = new SessionManager({ driver: 'gc', key: KEY, lottery: [1, 1], lifetime: 2 }, { logger: { error: (...a) => errors.push(a) } });
  manager.extend('gc', () => h);
  const server = await serve('node', manager, sessionApp());
  t.after(() => server.close());
  const c = new Client(server.url);
  // Every request wins the lottery; the first gc hangs until released, and no response waits for it.
  const responses = await Promise.all(Array.from({ length: 20 }, () => c.get('/none')));
  assert.ok(responses.every((r) => r.status === 200));
  await until(() => calls === 1, 5000, 'the first gc');
  assert.equal(calls, 1, 'no second gc while one runs');
  release();
  await until(() => errors.length === 1, 5000, 'the gc error to be logged');
  assert.match(errors[0][0], /garbage collection failed: gc exploded/);
  await c.get('/none');
  await until(() => calls === 2, 5000, 'a later gc');
  assert.equal(maxRunning, 1);
  assert.deepEqual(seconds, [120, 120]);
});

test('lottery [0, 100] never collects', async (t) => {
  const h = new RecordingHandler();
  let calls = 0;
  h.gc = () => { calls++; return 0; };
  const { client } = await setupWith(t, 'node', h, { lottery: [0, 100] });
  await Promise.all(Array.from({ length: 30 }, () => client.get('/none')));
  await new Promise((r) => setImmediate(r));
  assert.equal(calls, 0);
});

// ----- the cookie driver ---------------------------------------------------------------------------

for (const kind of FRAMEWORKS) {
  test(`${kind}: the cookie driver refuses a cookie over 4096 bytes with ERR_SESSION_TOO_LARGE`, async (t) => {
    // previous_url off: the URL itself would take room in the cookie.
    const { client } = await setup(t, kind, configFor('cookie', { previous_url: false }));
    const ok = await client.get(`/put?key=note&value=${'x'.repeat(2000)}`);
    assert.equal(ok.status, 200);
    const line = ok.setCookies.find((l) => l.startsWith('ostro_session='));
    assert.ok(line.split(';')[0].length <= 4096);
    const big = await client.get(`/put?key=note&value=${'y'.repeat(3500)}`);
    assert.equal(big.status, 500);
    assert.equal(big.body, 'error:ERR_SESSION_TOO_LARGE');
    assert.equal(sessionCookie(big), undefined, 'nothing truncated is sent');
    assert.equal((await client.get('/get?key=note')).json().value, 'x'.repeat(2000), 'the previous cookie still holds');
  });
}

test('the cookie driver: 100 concurrent requests each see only their own data', async (t) => {
  const { server } = await setup(t, 'node', configFor('cookie'));
  const clients = Array.from({ length: 100 }, () => new Client(server.url));
  await Promise.all(clients.map((c, i) => c.get(`/put?key=who&value=client-${i}`)));
  const reads = await Promise.all(clients.map((c) => c.get('/get?key=who')));
  reads.forEach((r, i) => assert.equal(r.json().value, `client-${i}`));
  const ids = new Set(reads.map((r) => r.json().id));
  assert.equal(ids.size, 100);
});

test('the cookie driver: sealed with the cookie name, unreadable, and useless under another name or key', async (t) => {
  const { client } = await setup(t, 'node', configFor('cookie'));
  const r = await client.get('/put?key=card&value=4111111111111111');
  const v = sessionCookie(r).value;
  assert.ok(!Buffer.from(v.slice(3), 'base64url').toString('latin1').includes('4111'));
  const other = await setup(t, 'node', configFor('cookie', { cookie: 'other_session' }));
  assert.equal((await other.client.get('/get?key=card', { cookie: `other_session=${v}` })).json().value, null);
  const otherKey = await setup(t, 'node', configFor('cookie', { key: OLD_KEY }));
  assert.equal((await otherKey.client.get('/get?key=card', { cookie: `ostro_session=${v}` })).json().value, null);
  const tampered = `${v.slice(0, 20)}${v[20] === 'A' ? 'B' : 'A'}${v.slice(21)}`;
  const t2 = await client.get('/get?key=card', { cookie: `ostro_session=${tampered}` });
  assert.equal(t2.status, 200);
  assert.equal(t2.json().value, null);
});

// ----- encryption at rest --------------------------------------------------------------------------

for (const kind of FRAMEWORKS) {
  test(`${kind}: encrypted payloads are unreadable at rest, differ per seal, and do not open under another id`, async (t) => {
    const dir = tmpDir();
    const { client } = await setup(t, kind, { driver: 'file', files: dir, key: KEY, encrypt: true, resave: true, previous_url: false, lottery: [0, 100] });
    const a = await client.get('/put?key=card&value=4111111111111111');
    const idA = a.json().id;
    const first = fs.readFileSync(path.join(dir, idA), 'utf8');
    assert.match(first, /^v1\.[A-Za-z0-9_-]+$/);
    assert.ok(!first.includes('4111') && !first.includes('card'));
    await client.get('/none');
    const second = fs.readFileSync(path.join(dir, idA), 'utf8');
    assert.notEqual(second, first, 'two seals of the same data differ');
    assert.equal((await client.get('/get?key=card')).json().value, '4111111111111111');

    const other = new Client(client.base);
    const b = await other.get('/put?key=card&value=none');
    const idB = b.json().id;
    fs.writeFileSync(path.join(dir, idB), fs.readFileSync(path.join(dir, idA)));
    const moved = await other.get('/get?key=card');
    assert.equal(moved.json().value, null, 'a ciphertext moved to another id opens as empty');
    assert.notEqual(moved.json().id, idB, 'and the id is not adopted');
  });
}

test('encrypt without encrypt_migrate reads 1.x plaintext as empty; with it, once, then re-seals', async (t) => {
  const dir = tmpDir();
  const id = 'P'.repeat(40);
  fs.writeFileSync(path.join(dir, id), JSON.stringify({ cartItem: 'pear' }), { mode: 0o600 });
  const cookie = `ostro_session=${encodeURIComponent(sign(id))}`;
  const strict = await setup(t, 'node', { driver: 'file', files: dir, key: KEY, encrypt: true, lottery: [0, 100] });
  assert.equal((await strict.client.get('/get?key=cartItem', { cookie })).json().value, null);
  assert.equal(fs.readFileSync(path.join(dir, id), 'utf8'), JSON.stringify({ cartItem: 'pear' }), 'never overwritten by the strict reader');
  const migrating = await setup(t, 'node', { driver: 'file', files: dir, key: KEY, encrypt: true, encrypt_migrate: true, lottery: [0, 100] });
  const r = await migrating.client.get('/get?key=cartItem', { cookie });
  assert.equal(r.json().value, 'pear');
  assert.equal(r.json().id, id);
  assert.match(fs.readFileSync(path.join(dir, id), 'utf8'), /^v1\./);
  assert.equal((await strict.client.get('/get?key=cartItem', { cookie })).json().value, 'pear', 'sealed now');
});
