'use strict';
// The Fastify plugin with `api: 'express-session'`: `request.session` in express-session's shape
// (with @fastify/session's Promise-returning methods, `sessionId`, `get`/`set`), against the real
// `fastify` from npm over real HTTP with a cookie jar, on every server-side driver (redis and
// memcached on servers this file starts and stops by pid).
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const Fastify = require('fastify');
const ostroSession = require('@ostro/session/fastify');
const { SessionManager } = require('@ostro/session');
const { Client, sessionCookie, idOf } = require('./support/http');
const { RecordingHandler } = require('./support/recording-handler');
const { tmpDir } = require('./support/tmp');
const { startRedis, startMemcached } = require('./support/servers');

const KEY = 'base64:dGhpcyBpcyBhIHRlc3Qga2V5IG9mIDMyIGJ5dGVzIQ==';
const DRIVERS = ['array', 'file', 'sqlite', 'redis', 'memcached'];

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
  if (driver === 'redis') Object.assign(c, { connection: redis.url, prefix: `fe${prefixes++}:` });
  if (driver === 'memcached') Object.assign(c, { connection: memcached.addr, prefix: `fe${prefixes++}:` });
  return c;
}

/** A Fastify app with the plugin (`options`) and `routes(app)`, listening; closed after the test. */
async function setup(t, options, routes) {
  const app = Fastify();
  const hits = new Map();
  app.addHook('preHandler', async (req) => { hits.set(req.url, (hits.get(req.url) || 0) + 1); });
  await app.register(ostroSession, options);
  routes(app);
  await app.listen({ port: 0, host: '127.0.0.1' });
  t.after(() => app.close());
  const { port } = app.server.address();
  return { app, hits, client: new Client(`http://127.0.0.1:${port}`), url: `http://127.0.0.1:${port}` };
}

/** A manager on a RecordingHandler: counts writes and touches, and fails an operation on request. */
function recordingManager(t, config = {}) {
  const handler = new RecordingHandler();
  const manager = new SessionManager({ driver: 'rec', key: KEY, lottery: [0, 100], ...config });
  manager.extend('rec', () => handler);
  t.after(() => manager.close());
  return { manager, handler };
}

const USERS = { alice: 'wonderland', bob: 'builder' };

/**
 * What a login app does with @fastify/session's API (and what Passport does on top of it):
 * regenerate on login and logout, the user in a property, flash messages read once.
 */
function loginRoutes(app) {
  const flash = (req, type, msg) => {
    req.session.flash = req.session.flash || {};
    (req.session.flash[type] = req.session.flash[type] || []).push(msg);
  };
  const takeFlash = (req, type) => {
    const all = req.session.flash || {};
    const msgs = all[type] || [];
    delete all[type];
    return msgs;
  };
  app.post('/login', async (req, reply) => {
    const { username, password } = req.body;
    if (!Object.hasOwn(USERS, username) || USERS[username] !== password) {
      flash(req, 'error', `bad credentials for ${username}`);
      return reply.redirect('/login', 303);
    }
    // As Passport: a new session id on login (session fixation), data from before kept.
    await req.session.regenerate(['cartId']);
    req.session.user = { name: username };
    flash(req, 'info', `welcome ${username}`);
    return reply.redirect('/me', 303);
  });
  app.get('/login', async (req) => ({ error: takeFlash(req, 'error') }));
  app.get('/me', async (req, reply) => {
    if (!req.session.user) return reply.code(401).send({ user: null });
    return { user: req.session.user.name, info: takeFlash(req, 'info'), id: req.session.id, sessionId: req.session.sessionId, cartId: req.session.cartId ?? null };
  });
  app.post('/cart', async (req) => {
    req.session.cartId = 'cart-7';
    return { ok: true };
  });
  app.post('/logout', (req, reply) => {
    // The callback form, as express-session code writes it.
    req.session.regenerate((err) => {
      if (err) reply.send(err);
      else reply.redirect('/', 303);
    });
    return reply;
  });
}

const form = (fields) => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(fields) });

for (const driver of DRIVERS) {
  test(`${driver}: log in (regenerate keeps the listed data), a protected page, flash read once, log out; the old ids stay dead`, async (t) => {
    const { client, hits } = await setup(t, { ...configFor(driver), api: 'express-session', saveUninitialized: false }, loginRoutes);
    let r = await client.get('/me');
    assert.equal(r.status, 401);
    assert.equal(sessionCookie(r), undefined, 'saveUninitialized: false: no cookie for an untouched session');

    r = await client.request('/cart', form({}));
    const anonId = idOf(sessionCookie(r));
    assert.ok(anonId, 'a changed session is cookied');
    const anonCookie = client.cookieHeader();

    r = await client.request('/login', form({ username: 'alice', password: 'nope' }));
    assert.equal(r.status, 303);
    assert.deepEqual((await client.get('/login')).json(), { error: ['bad credentials for alice'] });
    assert.deepEqual((await client.get('/login')).json(), { error: [] }, 'a flash message is read once');

    r = await client.request('/login', form({ username: 'alice', password: 'wonderland' }));
    assert.equal(r.status, 303);
    assert.equal(r.headers.get('location'), '/me');
    const loginId = idOf(sessionCookie(r));
    assert.ok(loginId && loginId !== anonId, 'login moved the session to a fresh id');
    r = await client.get('/me');
    assert.deepEqual(r.json(), { user: 'alice', info: ['welcome alice'], id: loginId, sessionId: loginId, cartId: 'cart-7' });
    assert.deepEqual((await client.get('/me')).json().info, [], 'the welcome flash was read once');
    assert.equal((await client.get('/me', { cookie: anonCookie })).status, 401, 'the id from before login is dead');
    const userCookie = client.cookieHeader();

    r = await client.request('/logout', { method: 'POST' });
    assert.equal(r.status, 303);
    const outId = idOf(sessionCookie(r));
    assert.ok(outId && outId !== loginId, 'logout moved the session to a fresh id');
    assert.equal((await client.get('/me')).status, 401);
    assert.equal((await client.get('/me', { cookie: userCookie })).status, 401, 'the logged-in id is dead after logout');
    assert.equal(hits.get('/logout'), 1, 'each route ran once');
  });
}

test('properties: assignment, nested objects, delete and Dates persist as JSON; id is read-only; get/set; methods are not data', async (t) => {
  const { client } = await setup(t, { ...configFor('array'), api: 'express-session' }, (app) => {
    app.get('/write', async (req) => {
      req.session.views = (req.session.views || 0) + 1;
      req.session.set('profile', { name: 'Ada', tags: ['x'] });
      req.session.when = new Date(Date.UTC(2026, 0, 2));
      req.session.gone = 'soon';
      return { views: req.session.get('views') };
    });
    app.get('/change', async (req) => {
      req.session.profile.tags.push('y');
      delete req.session.gone;
      return { keys: Object.keys(req.session).sort() };
    });
    app.get('/read', async (req) => {
      let idError = null;
      try {
        req.session.id = 'x';
      } catch (err) {
        idError = err.constructor.name;
      }
      return { profile: req.session.profile, when: req.session.when, gone: req.session.gone ?? null, views: req.session.views, idError, idType: typeof req.session.id };
    });
  });
  assert.deepEqual((await client.get('/write')).json(), { views: 1 });
  assert.deepEqual((await client.get('/change')).json().keys, ['cookie', 'profile', 'views', 'when']);
  const r = (await client.get('/read')).json();
  assert.deepEqual(r, { profile: { name: 'Ada', tags: ['x', 'y'] }, when: '2026-01-02T00:00:00.000Z', gone: null, views: 1, idError: 'TypeError', idType: 'string' });
});

test('save, reload and destroy, with a callback and as Promises; touch() resets maxAge', async (t) => {
  const { client } = await setup(t, { ...configFor('redis'), api: 'express-session' }, (app) => {
    app.get('/init', async (req) => {
      req.session.n = 1;
      return { id: req.session.id };
    });
    // A save in the middle of the route, then a change the end of the request saves.
    app.get('/save-promise', async (req) => {
      req.session.n = 2;
      const r = await req.session.save();
      req.session.after = true;
      return { resolved: r === undefined };
    });
    app.get('/save-cb', (req, reply) => {
      req.session.n = 3;
      const ret = req.session.save((err) => reply.send({ err: err || null, chained: ret === req.session }));
      return reply;
    });
    // Another request writes meanwhile; reload() sees it.
    app.get('/bump', async (req) => {
      req.session.n += 100;
      return { n: req.session.n };
    });
    app.get('/reload-promise', async (req, reply) => {
      const before = req.session.n;
      await reply.server.inject({ method: 'GET', url: '/bump', headers: { cookie: req.headers.cookie } });
      await req.session.reload();
      return { before, after: req.session.n };
    });
    app.get('/reload-cb', (req, reply) => {
      const old = req.session;
      req.session.reload((err) => reply.send({ err: err || null, n: req.session.n, replaced: req.session !== old }));
      return reply;
    });
    app.get('/touch', async (req) => {
      req.session.cookie.maxAge = 1000;
      req.session.touch();
      return { maxAge: req.session.cookie.maxAge, original: req.session.cookie.originalMaxAge };
    });
    app.get('/read', async (req) => ({ n: req.session.n ?? null, after: req.session.after ?? null }));
    app.get('/destroy-promise', async (req) => {
      await req.session.destroy();
      return { session: req.session };
    });
    app.get('/destroy-cb', (req, reply) => {
      req.session.destroy((err) => reply.send({ err: err || null, session: req.session }));
      return reply;
    });
  });
  await client.get('/init');
  assert.deepEqual((await client.get('/save-promise')).json(), { resolved: true });
  assert.deepEqual((await client.get('/read')).json(), { n: 2, after: true });
  assert.deepEqual((await client.get('/save-cb')).json(), { err: null, chained: true });
  assert.deepEqual((await client.get('/read')).json(), { n: 3, after: true });
  assert.deepEqual((await client.get('/reload-promise')).json(), { before: 3, after: 103 });
  assert.deepEqual((await client.get('/reload-cb')).json(), { err: null, n: 103, replaced: true });
  const touched = (await client.get('/touch')).json();
  assert.equal(touched.original, 1000);
  assert.ok(touched.maxAge > 0 && touched.maxAge <= 1000, String(touched.maxAge));

  const cookie = client.cookieHeader();
  let r = await client.get('/destroy-promise');
  assert.deepEqual(r.json(), { session: null });
  assert.equal(sessionCookie(r), undefined, 'a destroyed session sends no cookie');
  assert.deepEqual((await client.get('/read', { cookie })).json(), { n: null, after: null }, 'the record is gone: the old cookie gets a fresh empty session');
  await client.get('/init');
  const cookie2 = client.cookieHeader();
  r = await client.get('/destroy-cb');
  assert.deepEqual(r.json(), { err: null, session: null });
  assert.deepEqual((await client.get('/read', { cookie: cookie2 })).json(), { n: null, after: null });
});

test('driver failures: a Promise rejects and a callback receives the driver\'s own error; an unhandled one fails the request through Fastify\'s error handler', async (t) => {
  const { manager, handler } = recordingManager(t);
  const { client } = await setup(t, { manager, api: 'express-session' }, (app) => {
    app.setErrorHandler((err, req, reply) => {
      reply.code(500).send({ code: err.code || null, message: err.message, cause: err.cause ? err.cause.message : null });
    });
    app.get('/init', async (req) => {
      req.session.n = 1;
      return { ok: true };
    });
    for (const method of ['save', 'regenerate', 'destroy', 'reload']) {
      const op = { save: 'write', regenerate: 'destroy', destroy: 'destroy', reload: 'read' }[method];
      app.get(`/${method}-promise`, async (req) => {
        const thrown = handler.failNext(op);
        try {
          await req.session[method]();
          return { rejected: false };
        } catch (err) {
          return { rejected: true, same: err === thrown };
        }
      });
      app.get(`/${method}-cb`, (req, reply) => {
        const thrown = handler.failNext(op);
        req.session[method]((err) => reply.send({ same: err === thrown }));
        return reply;
      });
    }
    app.get('/unhandled', async (req) => {
      handler.failNext('write');
      req.session.n = 2;
      await req.session.save();
      return 'unreachable';
    });
    app.get('/end-fails', async (req) => {
      handler.failNext('write');
      req.session.n = 3;
      return 'unreachable';
    });
    app.get('/stale', async (req) => {
      const old = req.session;
      await req.session.regenerate();
      try {
        await old.save();
        return { code: null };
      } catch (err) {
        return { code: err.code };
      }
    });
    // What JSON.stringify keeps but the engine cannot store: the request fails, coded.
    app.get('/surrogate', async (req) => {
      req.session.bad = { name: 'x\ud800' };
      return 'unreachable';
    });
    app.get('/dotted', async (req) => {
      req.session['a.b'] = 1;
      return 'unreachable';
    });
    app.get('/bad-keys', async (req) => {
      try {
        req.session.regenerate('user');
        return { code: null };
      } catch (err) {
        return { code: err.code };
      }
    });
  });
  await client.get('/init');
  for (const method of ['save', 'regenerate', 'destroy', 'reload']) {
    assert.deepEqual((await client.get(`/${method}-promise`)).json(), { rejected: true, same: true }, method);
    await client.get('/init');
    assert.deepEqual((await client.get(`/${method}-cb`)).json(), { same: true }, method);
    await client.get('/init');
  }
  let r = await client.get('/unhandled');
  assert.equal(r.status, 500);
  assert.match(r.json().message, /went away/);
  r = await client.get('/end-fails');
  assert.equal(r.status, 500);
  assert.equal(r.json().code, 'ERR_SESSION_HANDLER');
  assert.match(r.json().cause, /went away/);
  assert.equal(r.body.includes('unreachable'), false);
  assert.equal(sessionCookie(r), undefined, 'a failed save sends no cookie');
  assert.deepEqual((await client.get('/stale')).json(), { code: 'ERR_SESSION_INVALID_ID' });
  for (const p of ['/surrogate', '/dotted']) {
    r = await client.get(p);
    assert.equal(r.status, 500, p);
    assert.equal(r.json().code, 'ERR_SESSION_VALUE', `${p}: ${r.body}`);
    assert.equal(sessionCookie(r), undefined, p);
  }
  assert.deepEqual((await client.get('/bad-keys')).json(), { code: 'ERR_SESSION_VALUE' });
});

test('express-session\'s rules: an unchanged session is touched, not written, and not re-cookied unless rolling', async (t) => {
  const { manager, handler } = recordingManager(t);
  const { client } = await setup(t, { manager, api: 'express-session', rolling: false }, (app) => {
    app.get('/set', async (req) => {
      req.session.n = 1;
      return { ok: true };
    });
    app.get('/look', async (req) => ({ n: req.session.n }));
  });
  let r = await client.get('/set');
  assert.ok(sessionCookie(r));
  handler.reset();
  r = await client.get('/look');
  assert.deepEqual(r.json(), { n: 1 });
  assert.equal(sessionCookie(r), undefined, 'not rolling: no cookie for an unchanged session');
  assert.deepEqual({ write: handler.calls.write, touch: handler.calls.touch }, { write: 0, touch: 1 });

  const rolling = await setup(t, { manager, api: 'express-session', rolling: true }, (app) => {
    app.get('/look', async (req) => ({ n: req.session.n ?? null }));
  });
  rolling.client.jar = new Map(client.jar);
  r = await rolling.client.get('/look');
  assert.deepEqual(r.json(), { n: 1 });
  assert.ok(sessionCookie(r), 'rolling: the cookie is re-sent on every response');
});

test('the Set-Cookie line: the config\'s attributes, and a session\'s own maxAge, path and SameSite, as express-session writes them', async (t) => {
  const { client } = await setup(t, { ...configFor('array', { lifetime: 30, same_site: 'strict' }), api: 'express-session' }, (app) => {
    app.get('/new', async (req) => {
      req.session.a = 1;
      return { ok: true };
    });
    app.get('/own', async (req) => {
      req.session.cookie.maxAge = 3 * 24 * 3600 * 1000;
      req.session.cookie.path = '/app';
      req.session.cookie.sameSite = 'lax';
      req.session.cookie.httpOnly = false;
      req.session.b = 2;
      return { ok: true };
    });
  });
  let r = await client.get('/new');
  let c = sessionCookie(r);
  assert.equal(r.setCookies.length, 1);
  assert.deepEqual(Object.keys(c.attrs), ['path', 'max-age', 'expires', 'httponly', 'samesite']);
  assert.deepEqual({ path: c.attrs.path, maxAge: c.attrs['max-age'], httpOnly: c.attrs.httponly, sameSite: c.attrs.samesite }, { path: '/', maxAge: '1800', httpOnly: true, sameSite: 'Strict' });
  assert.ok(Math.abs(Date.parse(c.attrs.expires) - (Date.now() + 1800e3)) < 5000, c.attrs.expires);
  assert.match(c.value, /^s%3A[A-Za-z0-9]{40}\.[A-Za-z0-9%+/=_-]+$/);
  assert.equal(r.headers.get('cache-control'), 'private');

  r = await client.get('/own');
  c = sessionCookie(r);
  assert.deepEqual(Object.keys(c.attrs), ['path', 'max-age', 'expires', 'samesite']);
  assert.deepEqual({ path: c.attrs.path, maxAge: c.attrs['max-age'], sameSite: c.attrs.samesite }, { path: '/app', maxAge: String(3 * 24 * 3600), sameSite: 'Lax' });
  assert.ok(Math.abs(Date.parse(c.attrs.expires) - (Date.now() + 3 * 24 * 3600e3)) < 5000, c.attrs.expires);
});

test('options: checked at registration with coded errors; { manager } with the API\'s own options', async (t) => {
  const cases = [
    [{ ...configFor('cookie'), api: 'express-session' }, /server-side driver/],
    [{ ...configFor('array'), api: 'connect' }, /"api" must be 'laravel'.*'express-session'/],
    [{ ...configFor('array'), rolling: true }, /unknown option "rolling"/],
    [{ ...configFor('array'), api: 'express-session', rolling: 'yes' }, /"rolling" must be true or false/],
    [{ ...configFor('array'), api: 'express-session', unset: 'drop' }, /"unset"/],
    [{ manager: new SessionManager(configFor('array')), api: 'express-session', driver: 'file' }, /unknown option "driver"/],
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
  // resave beside { manager } overrides the manager's config for this API.
  const { manager, handler } = recordingManager(t);
  const { client } = await setup(t, { manager, api: 'express-session', resave: true }, (app) => {
    app.get('/set', async (req) => {
      req.session.n = 1;
      return { ok: true };
    });
    app.get('/look', async (req) => ({ n: req.session.n }));
  });
  await client.get('/set');
  handler.reset();
  await client.get('/look');
  assert.equal(handler.calls.write, 1, 'resave: true writes an unchanged session back');
});

test('unset: \'destroy\' removes the record when the route sets request.session to null', async (t) => {
  const { manager, handler } = recordingManager(t);
  const { client } = await setup(t, { manager, api: 'express-session', unset: 'destroy' }, (app) => {
    app.get('/set', async (req) => {
      req.session.n = 1;
      return { id: req.session.id };
    });
    app.get('/drop', async (req) => {
      req.session = null;
      return { ok: true };
    });
  });
  const { id } = (await client.get('/set')).json();
  assert.ok(handler.records.has(id));
  const r = await client.get('/drop');
  assert.equal(sessionCookie(r), undefined);
  assert.equal(handler.records.has(id), false);
});
