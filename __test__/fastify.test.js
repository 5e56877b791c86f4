'use strict';
// The Fastify plugin (`@ostro/session/fastify`) against the real `fastify` from npm, over real
// HTTP on a free loopback port with a cookie jar: every built-in driver (redis and memcached on
// servers this file starts and stops by pid), flash and redirects, the save finishing before the
// first byte, errors through Fastify's error handling, routes running once, and whole bodies.
const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const path = require('node:path');
const { Readable } = require('node:stream');
const { performance } = require('node:perf_hooks');
const Fastify = require('fastify');
const ostroSession = require('@ostro/session/fastify');
const { SessionManager } = require('@ostro/session');
const { SessionHandlerInterface } = require('../lib/handler-interface');
const { Client, rawRequest, parseSetCookie, sessionCookie, idOf } = require('./support/http');
const { tmpDir } = require('./support/tmp');
const { startRedis, startMemcached, freePort } = require('./support/servers');

const KEY = 'base64:dGhpcyBpcyBhIHRlc3Qga2V5IG9mIDMyIGJ5dGVzIQ==';
const DRIVERS = ['array', 'file', 'sqlite', 'redis', 'memcached', 'cookie'];

let redis;
let memcached;
let prefixes = 0;
test.before(async () => {
  [redis, memcached] = await Promise.all([startRedis(), startMemcached()]);
});
test.after(async () => {
  await Promise.all([redis && redis.stop(), memcached && memcached.stop()]);
});

function configFor(driver, extra = {}) {
  const c = { driver, key: KEY, lottery: [0, 100], ...extra };
  if (driver === 'file') c.files = tmpDir();
  if (driver === 'sqlite') c.connection = path.join(tmpDir(), 'sessions.sqlite');
  if (driver === 'redis') Object.assign(c, { connection: redis.url, prefix: `fy${prefixes++}:` });
  if (driver === 'memcached') Object.assign(c, { connection: memcached.addr, prefix: `fy${prefixes++}:` });
  return c;
}

/**
 * A Fastify app with the plugin registered with `options` and the routes `routes(app)` adds;
 * listening on a free port, closed when the test ends. `hits` counts route runs by URL.
 */
async function setup(t, options, routes) {
  const app = Fastify();
  const hits = new Map();
  app.addHook('preHandler', async (req) => { hits.set(req.url, (hits.get(req.url) || 0) + 1); });
  await app.register(ostroSession, options);
  routes(app);
  await app.listen({ port: 0, host: '127.0.0.1' });
  t.after(() => app.close());
  const { port } = app.server.address();
  return { app, hits, port, url: `http://127.0.0.1:${port}`, client: new Client(`http://127.0.0.1:${port}`) };
}

/** The counter, flash, redirect and logout routes of the per-driver scenario. */
function appRoutes(app) {
  app.get('/count', async (req) => ({ n: req.session.increment('n'), id: req.session.getId() }));
  app.post('/flash', async (req) => {
    req.session.flash('status', 'saved');
    return { ok: true };
  });
  app.get('/read', async (req) => ({ status: req.session.get('status', null), n: req.session.get('n', null), user: req.session.get('user', null) }));
  app.post('/login', async (req, reply) => {
    await req.session.regenerate(true);
    req.session.put('user', { name: 'Ada' });
    req.session.flash('welcome', 'hello Ada');
    return reply.redirect('/home', 303);
  });
  app.get('/home', async (req) => ({ user: req.session.get('user', null), welcome: req.session.get('welcome', null) }));
  app.post('/logout', async (req) => {
    await req.session.invalidate();
    return { ok: true };
  });
}

for (const driver of DRIVERS) {
  test(`${driver}: the cookie round-trips, flash lasts exactly one request, a redirect target reads what the redirect wrote`, async (t) => {
    const { client, hits, app } = await setup(t, configFor(driver), appRoutes);

    const a = await client.get('/count');
    assert.equal(a.status, 200);
    assert.equal(a.json().n, 1);
    const cookie = sessionCookie(a);
    assert.ok(cookie, 'the first response sets the session cookie');
    assert.equal(cookie.attrs.httponly, true);
    assert.equal(cookie.attrs.samesite, 'Lax');
    assert.equal(cookie.attrs.path, '/');
    assert.equal(a.headers.get('cache-control'), 'private');
    if (driver === 'cookie') {
      // The payload lives in the cookie: no signed id (`s:`), a sealed value instead.
      assert.ok(!decodeURIComponent(cookie.value).startsWith('s:'));
    } else {
      assert.equal(idOf(cookie), a.json().id, 'the cookie carries the signed session id');
    }
    const b = await client.get('/count');
    assert.equal(b.json().n, 2);
    if (driver !== 'cookie') assert.equal(b.json().id, a.json().id);

    // Flash: seen by the next request, gone on the one after.
    assert.equal((await client.request('/flash', { method: 'POST' })).status, 200);
    assert.equal((await client.get('/read')).json().status, 'saved');
    assert.equal((await client.get('/read')).json().status, null);

    // A 303 to /home: the target sees the user and the flash the login wrote, under a new id.
    const before = client.jar.get('ostro_session');
    const login = await client.request('/login', { method: 'POST' });
    assert.equal(login.status, 303);
    assert.equal(login.headers.get('location'), '/home');
    assert.ok(sessionCookie(login), 'the redirect carries the cookie');
    assert.notEqual(client.jar.get('ostro_session'), before, 'regenerate() gives a new cookie');
    assert.deepEqual((await client.get('/home')).json(), { user: { name: 'Ada' }, welcome: 'hello Ada' });
    assert.deepEqual((await client.get('/home')).json(), { user: { name: 'Ada' }, welcome: null });

    // The cookie from before the login no longer opens the session (the old record went).
    const stale = await client.get('/read', { cookie: `ostro_session=${before}` });
    if (driver !== 'cookie') assert.deepEqual(stale.json(), { status: null, n: null, user: null });

    // Logout empties the session for the next request.
    await client.request('/logout', { method: 'POST' });
    assert.deepEqual((await client.get('/read')).json(), { status: null, n: null, user: null });

    // Every route ran once per request.
    for (const [url, count] of hits) {
      const expected = { '/count': 2, '/flash': 1, '/read': 4, '/login': 1, '/home': 2, '/logout': 1 }[url];
      assert.equal(count, expected, `${url} ran ${count} times`);
    }
    assert.equal(app.sessionManager.getDefaultDriver(), driver);
  });
}

test('cookie driver: a second app with the same key reads the session from the cookie alone', async (t) => {
  const one = await setup(t, configFor('cookie'), appRoutes);
  await one.client.get('/count');
  await one.client.get('/count');
  const two = await setup(t, configFor('cookie'), appRoutes);
  const r = await two.client.get('/count', { cookie: one.client.cookieHeader() });
  assert.equal(r.json().n, 3);
});

/** A JS driver over a Map that records its calls, with an optional delay on write. */
class RecordingHandler extends SessionHandlerInterface {
  constructor({ writeDelayMs = 0, failWrite = null, failRead = null } = {}) {
    super();
    this.map = new Map();
    this.writes = 0;
    this.writeDelayMs = writeDelayMs;
    this.writeResolvedAt = [];
    this.failWrite = failWrite;
    this.failRead = failRead;
  }
  read(id) {
    if (this.failRead) throw this.failRead;
    return this.map.get(id) || '';
  }
  async write(id, data) {
    this.writes++;
    if (this.writeDelayMs) await new Promise((r) => setTimeout(r, this.writeDelayMs));
    if (this.failWrite) throw this.failWrite;
    this.map.set(id, data);
    this.writeResolvedAt.push(performance.now());
  }
  destroy(id) { this.map.delete(id); }
  touch(id) { return this.map.has(id); }
  gc() { return 0; }
}

function managerWith(handler, extra = {}) {
  const manager = new SessionManager({ driver: 'recording', key: KEY, lottery: [0, 100], ...extra });
  manager.extend('recording', () => handler);
  return manager;
}

test('no byte reaches the client before a 200 ms write resolves: a redirect and a streamed body', async (t) => {
  const h = new RecordingHandler({ writeDelayMs: 200 });
  const { port, hits } = await setup(t, { manager: managerWith(h) }, (app) => {
    app.post('/bounce', async (req, reply) => {
      req.session.put('x', 1);
      return reply.redirect('/next');
    });
    app.get('/stream', async (req, reply) => {
      req.session.put('y', 2);
      reply.type('text/plain');
      return Readable.from(['first,', 'last']);
    });
  });
  const r = await rawRequest(port, 'POST /bounce HTTP/1.1\r\nHost: a.test\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
  assert.match(r.text, /^HTTP\/1\.1 302/);
  assert.match(r.text, /set-cookie: ostro_session=/i);
  assert.equal(h.writeResolvedAt.length, 1);
  assert.ok(r.firstByteAt >= h.writeResolvedAt[0], `first byte at ${r.firstByteAt}, write resolved at ${h.writeResolvedAt[0]}`);

  const s = await rawRequest(port, 'GET /stream HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n');
  assert.match(s.text, /^HTTP\/1\.1 200/);
  assert.match(s.text, /set-cookie: ostro_session=/i);
  assert.match(s.text, /first,/);
  assert.match(s.text, /last/);
  assert.equal(h.writeResolvedAt.length, 2);
  assert.ok(s.firstByteAt >= h.writeResolvedAt[1]);
  assert.deepEqual([...hits.values()], [1, 1]);
});

test('a failing save reaches Fastify\'s error handler as ERR_SESSION_HANDLER (cause kept): 500, no cookie, no redirect', async (t) => {
  const thrown = new Error('disk on fire');
  const h = new RecordingHandler({ failWrite: thrown });
  const seen = [];
  const { client, hits } = await setup(t, { manager: managerWith(h) }, (app) => {
    app.setErrorHandler((err, req, reply) => {
      seen.push(err);
      reply.code(500).send({ code: err.code });
    });
    app.post('/bounce', async (req, reply) => {
      req.session.put('x', 1);
      return reply.redirect('/next');
    });
  });
  const r = await client.request('/bounce', { method: 'POST' });
  assert.equal(r.status, 500);
  assert.deepEqual(r.json(), { code: 'ERR_SESSION_HANDLER' });
  assert.equal(sessionCookie(r), undefined, 'a session that was not saved is not cookied');
  assert.equal(seen.length, 1, 'the error handler ran once');
  assert.equal(seen[0].code, 'ERR_SESSION_HANDLER');
  assert.equal(seen[0].cause, thrown);
  assert.match(seen[0].message, /saving the session failed: disk on fire/);
  assert.equal(hits.get('/bounce'), 1, 'the route ran once');
});

test('without an error handler, a failing save is Fastify\'s default 500 with the code', async (t) => {
  const h = new RecordingHandler({ failWrite: new Error('nope') });
  const { client } = await setup(t, { manager: managerWith(h) }, (app) => {
    app.get('/', async (req) => {
      req.session.put('x', 1);
      return { ok: true };
    });
  });
  const r = await client.get('/');
  assert.equal(r.status, 500);
  assert.equal(r.json().code, 'ERR_SESSION_HANDLER');
  assert.equal(r.json().statusCode, 500);
  assert.equal(sessionCookie(r), undefined);
});

test('a failing save drops a streamed body (the stream is destroyed, not leaked)', async (t) => {
  const h = new RecordingHandler({ failWrite: new Error('nope') });
  let stream;
  const { client } = await setup(t, { manager: managerWith(h) }, (app) => {
    app.get('/stream', async (req) => {
      req.session.put('x', 1);
      stream = Readable.from(['never sent']);
      return stream;
    });
  });
  const r = await client.get('/stream');
  assert.equal(r.status, 500);
  assert.doesNotMatch(r.body, /never sent/);
  assert.equal(stream.destroyed, true);
});

test('a failing load: the route never runs; a native driver error keeps its own code', async (t) => {
  // A redis port nothing listens on: the Rust driver answers ERR_SESSION_UNAVAILABLE.
  const port = await freePort();
  const manager = new SessionManager({ driver: 'redis', key: KEY, lottery: [0, 100], connection: { host: '127.0.0.1', port } });
  t.after(() => manager.close());
  const { client, hits } = await setup(t, { manager }, (app) => {
    app.get('/', async () => ({ ran: true }));
  });
  const signed = `s:${'A'.repeat(40)}.${crypto.createHmac('sha256', KEY).update('A'.repeat(40)).digest('base64').replace(/=+$/, '')}`;
  const r = await client.get('/', { cookie: `ostro_session=${encodeURIComponent(signed)}` });
  assert.equal(r.status, 500);
  assert.equal(r.json().code, 'ERR_SESSION_UNAVAILABLE');
  assert.equal(hits.get('/'), undefined, 'the route did not run');
  assert.equal(sessionCookie(r), undefined);
});

test('a custom driver\'s read error is ERR_SESSION_HANDLER with the original as cause', async (t) => {
  const thrown = new Error('read refused');
  const h = new RecordingHandler({ failRead: thrown });
  const seen = [];
  const { client, hits } = await setup(t, { manager: managerWith(h) }, (app) => {
    app.setErrorHandler((err, req, reply) => {
      seen.push(err);
      reply.code(503).send({ code: err.code });
    });
    app.get('/', async () => ({ ran: true }));
  });
  const id = 'B'.repeat(40);
  const signed = `s:${id}.${crypto.createHmac('sha256', KEY).update(id).digest('base64').replace(/=+$/, '')}`;
  const r = await client.get('/', { cookie: `ostro_session=${encodeURIComponent(signed)}` });
  assert.equal(r.status, 503);
  assert.equal(seen.length, 1);
  assert.equal(seen[0].code, 'ERR_SESSION_HANDLER');
  assert.equal(seen[0].cause, thrown);
  assert.equal(hits.get('/'), undefined);
});

test('bodies arrive whole: a 5 MB streamed body and a 1 MB JSON body, each route run once', async (t) => {
  const chunk = crypto.randomBytes(64 * 1024);
  const CHUNKS = 80;
  const expected = crypto.createHash('sha256');
  for (let i = 0; i < CHUNKS; i++) expected.update(chunk);
  const big = { items: Array.from({ length: 10000 }, (_, i) => ({ i, name: `item ${i} ${'x'.repeat(80)}` })) };
  const { url, hits, client } = await setup(t, configFor('array'), (app) => {
    app.get('/stream', async (req, reply) => {
      req.session.put('streamed', true);
      reply.type('application/octet-stream');
      let n = 0;
      return Readable.from((function* gen() { while (n++ < CHUNKS) yield chunk; })());
    });
    app.get('/json', async (req) => {
      req.session.put('json', true);
      return big;
    });
    app.get('/flags', async (req) => ({ streamed: req.session.get('streamed', false), json: req.session.get('json', false) }));
  });
  const res = await fetch(`${url}/stream`);
  const body = Buffer.from(await res.arrayBuffer());
  assert.equal(res.status, 200);
  assert.equal(body.length, CHUNKS * chunk.length);
  assert.equal(crypto.createHash('sha256').update(body).digest('hex'), expected.digest('hex'));
  const cookie = res.headers.getSetCookie()[0].split(';')[0];
  const j = await client.get('/json', { cookie });
  assert.equal(j.status, 200);
  assert.equal(Number(j.headers.get('content-length')), Buffer.byteLength(j.body));
  assert.deepEqual(j.json(), big);
  assert.deepEqual((await client.get('/flags', { cookie })).json(), { streamed: true, json: true });
  assert.deepEqual(Object.fromEntries(hits), { '/stream': 1, '/json': 1, '/flags': 1 });
});

test('the app\'s own cookies and Cache-Control are kept beside the session cookie', async (t) => {
  const { client } = await setup(t, configFor('array'), (app) => {
    app.get('/', async (req, reply) => {
      reply.header('set-cookie', 'theme=dark; Path=/');
      reply.header('cache-control', 'no-store');
      req.session.put('x', 1);
      return 'ok';
    });
  });
  const r = await client.get('/');
  const names = r.setCookies.map((l) => parseSetCookie(l).name);
  assert.deepEqual(names.sort(), ['ostro_session', 'theme']);
  assert.equal(r.headers.get('cache-control'), 'no-store');
});

test('a route that throws: Fastify answers 500 and what the route wrote before is saved', async (t) => {
  const { client } = await setup(t, configFor('array'), (app) => {
    app.get('/boom', async (req) => {
      req.session.put('before', 'boom');
      throw new Error('route failed');
    });
    app.get('/read', async (req) => ({ before: req.session.get('before', null) }));
  });
  const r = await client.get('/boom');
  assert.equal(r.status, 500);
  assert.ok(sessionCookie(r));
  assert.deepEqual((await client.get('/read')).json(), { before: 'boom' });
});

test('the previous URL is remembered for a 2xx GET only', async (t) => {
  const { client } = await setup(t, configFor('array'), (app) => {
    app.get('/page', async () => 'page');
    app.get('/missing', async (req, reply) => reply.code(404).send('no'));
    app.get('/prev', async (req) => ({ prev: req.session.previousUrl() }));
  });
  await client.get('/page?tab=2');
  await client.get('/missing');
  assert.deepEqual((await client.get('/prev')).json(), { prev: '/page?tab=2' });
});

test('saveUninitialized: false sends no cookie for an untouched session', async (t) => {
  const { client } = await setup(t, configFor('array', { saveUninitialized: false }), (app) => {
    app.get('/idle', async () => 'idle');
    app.get('/touch', async (req) => { req.session.put('x', 1); return 'ok'; });
  });
  assert.equal(sessionCookie(await client.get('/idle')), undefined);
  assert.ok(sessionCookie(await client.get('/touch')));
});

test('options: a config object makes a manager the app closes; { manager } stays the caller\'s', async (t) => {
  const app = Fastify();
  await app.register(ostroSession, configFor('array'));
  await app.ready();
  assert.ok(app.sessionManager instanceof SessionManager);
  const before = app.sessionManager.driver();
  await app.close();
  assert.notEqual(app.sessionManager.driver(), before, 'closing the app closed (and dropped) its drivers');

  const manager = new SessionManager(configFor('array'));
  t.after(() => manager.close());
  const handler = manager.driver();
  const app2 = Fastify();
  await app2.register(ostroSession, { manager });
  await app2.ready();
  assert.equal(app2.sessionManager, manager);
  await app2.close();
  assert.equal(manager.driver(), handler, 'a manager passed in is left open');
});

test('options are checked when the plugin registers, with coded errors', async () => {
  const cases = [
    [{ manager: {} }, /"manager" must be a SessionManager/],
    [{ manager: new SessionManager({ driver: 'array', key: KEY }), driver: 'file' }, /unknown option "driver"/],
    [{ driver: 'nope', key: KEY }, /Driver \[nope\] is not supported/],
    [{ driver: 'cookie' }, /app key is missing/],
    [{ driver: 'array', lifetime: -1 }, /"lifetime" must be a positive number/],
    // A mistyped key is refused, not ignored (the manager owns the list of keys).
    [{ driver: 'array', key: KEY, cookei: 'typo' }, /unknown option "cookei"/],
  ];
  for (const [opts, message] of cases) {
    const app = Fastify();
    app.register(ostroSession, opts);
    await assert.rejects(app.ready(), (err) => {
      assert.equal(err.code, 'ERR_SESSION_INVALID_OPTION');
      assert.match(err.message, message);
      return true;
    });
    await app.close();
  }
});

test('registered twice on one instance: Fastify refuses the second registration (its decorators exist)', async () => {
  const app = Fastify();
  app.register(ostroSession, configFor('array'));
  app.register(ostroSession, configFor('array'));
  await assert.rejects(app.ready(), { code: 'FST_ERR_DEC_ALREADY_PRESENT' });
  await app.close();
});

test('the plugin is not encapsulated: routes of sibling and child contexts get request.session', async (t) => {
  const { client } = await setup(t, configFor('array'), (app) => {
    app.register(async (child) => {
      child.get('/child', async (req) => ({ n: req.session.increment('n') }));
    }, { prefix: '/api' });
  });
  assert.equal((await client.get('/api/child')).json().n, 1);
  assert.equal((await client.get('/api/child')).json().n, 2);
});

// A request that loaded the session before a concurrent logout destroyed it saves unchanged: the
// save finds the record gone ('dropped'), so its reply clears the cookie instead of resending the
// id (which would undo the logout in the browser).
for (const driver of DRIVERS.filter((d) => d !== 'cookie')) {
  test(`${driver}: a reply whose session was destroyed meanwhile clears the cookie instead of resending the id`, async (t) => {
    let loaded;
    const started = new Promise((r) => { loaded = r; });
    let release;
    const gate = new Promise((r) => { release = r; });
    const { client } = await setup(t, configFor(driver, { previous_url: false }), (app) => {
      appRoutes(app);
      app.get('/slow', async () => {
        loaded();
        await gate;
        return { ok: true };
      });
    });
    await client.get('/count');
    const cookie = client.cookieHeader();
    const oldId = idOf(sessionCookie(await client.get('/read', { cookie })));
    const slow = client.get('/slow', { cookie });
    await started;
    await client.request('/logout', { method: 'POST', cookie });
    release();
    const res = await slow;
    assert.equal(res.status, 200);
    const c = sessionCookie(res);
    assert.ok(c, 'the reply carries a session cookie line');
    assert.equal(c.attrs['max-age'], '0', `the cookie is cleared, not resent: ${res.setCookies}`);
    assert.notEqual(idOf(c), oldId);
    const again = await client.get('/read', { cookie });
    assert.equal(again.json().n, null, 'the old id stays dead');
  });
}
