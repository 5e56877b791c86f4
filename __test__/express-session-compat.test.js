'use strict';
// Issue 15, "express-session compatibility": req.session in express-session's shape over our
// engine and drivers, tested with the real express, passport + passport-local, connect-flash,
// and, for the migration, the real express-session + connect-redis + redis against a real
// redis-server.
const test = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const express = require('express');
const flash = require('connect-flash');
const passport = require('passport');
const { Strategy: LocalStrategy } = require('passport-local');
const { SessionManager } = require('../lib/manager');
const { createExpressSessionMiddleware } = require('../lib/express-session');
const { listen, Client, sessionCookie, idOf, parseSetCookie } = require('./support/http');
const { RecordingHandler } = require('./support/recording-handler');

const KEY = 'base64:' + Buffer.alloc(32, 7).toString('base64');

// The one place the tests mount the middleware: as apps do, through the manager.
function sessionMiddleware(manager, options) {
  return manager.middleware({ api: 'express-session', ...options });
}

function errorHandler(err, req, res, next) { // eslint-disable-line no-unused-vars
  res.status(500).json({ code: err.code || null, message: err.message });
}

/** An Express app with our session middleware, `routes(app)`, and a JSON error handler. */
async function serveApp(t, manager, options, routes) {
  const app = express();
  app.use(express.urlencoded({ extended: false }));
  app.use(sessionMiddleware(manager, options));
  routes(app);
  app.use(errorHandler);
  const server = await listen(http.createServer(app));
  t.after(() => server.close());
  return server;
}

/** A manager on a RecordingHandler, so tests can count writes and touches and inject failures. */
function recordingManager(config = {}) {
  const handler = new RecordingHandler();
  const manager = new SessionManager({ driver: 'rec', key: KEY, lottery: [0, 100], ...config });
  manager.extend('rec', () => handler);
  return { manager, handler };
}

/** The stored attributes of session `id`, read back through the Laravel Store API; null when there is no record. */
async function stored(manager, id) {
  if (await manager.driver().read(id) === '') return null;
  const store = manager.createStore(id);
  await store.start();
  return store.all();
}

const USERS = { alice: { id: 1, password: 'wonderland' }, bob: { id: 2, password: 'builder' } };

/** The app every Passport tutorial has: local login, a protected page, flash messages, logout. */
function passportRoutes(extra = () => {}) {
  return (app) => {
    const pp = new passport.Passport();
    pp.use(new LocalStrategy((username, password, done) => {
      const u = Object.hasOwn(USERS, username) ? USERS[username] : null;
      if (u && u.password === password) return done(null, { id: u.id, username });
      return done(null, false, { message: `bad credentials for ${username}` });
    }));
    pp.serializeUser((user, done) => done(null, user.id));
    pp.deserializeUser((id, done) => {
      const name = Object.keys(USERS).find((n) => USERS[n].id === id);
      done(null, name ? { id, username: name } : false);
    });
    app.use(flash());
    app.use(pp.initialize());
    app.use(pp.session());
    app.post('/login', pp.authenticate('local', { failureRedirect: '/login', failureFlash: true }), (req, res) => {
      req.flash('info', `welcome ${req.user.username}`);
      res.redirect('/me');
    });
    app.get('/me', (req, res) => {
      if (!req.isAuthenticated()) return res.status(401).json({ user: null, error: req.flash('error') });
      return res.json({ user: req.user.username, info: req.flash('info'), sid: req.sessionID });
    });
    app.get('/public', (req, res) => res.end('hello'));
    app.post('/logout', (req, res, next) => req.logout((err) => (err ? next(err) : res.redirect('/'))));
    extra(app);
  };
}

function form(fields) {
  return { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields).toString() };
}

test('passport + passport-local + connect-flash: login regenerates, protected page, flash read once, logout regenerates; two users never see each other\'s flash', async (t) => {
  const manager = new SessionManager({ driver: 'array', key: KEY });
  t.after(() => manager.close());
  const server = await serveApp(t, manager, { saveUninitialized: false }, passportRoutes());
  const alice = new Client(server.url);
  const bob = new Client(server.url);

  // A visitor with a session before logging in: login must move it to a fresh id (fixation).
  let r = await alice.get('/public');
  assert.equal(r.status, 200);
  assert.equal(sessionCookie(r), undefined, 'an untouched new session sends no cookie with saveUninitialized: false');
  r = await alice.request('/login', form({ username: 'alice', password: 'nope' }));
  assert.equal(r.status, 302);
  const anonymousId = idOf(sessionCookie(r));
  assert.match(anonymousId, /^[A-Za-z0-9]{40}$/);

  r = await alice.request('/login', form({ username: 'alice', password: 'wonderland' }));
  assert.equal(r.status, 302, r.body);
  assert.equal(r.headers.get('location'), '/me');
  const aliceId = idOf(sessionCookie(r));
  assert.notEqual(aliceId, anonymousId, 'passport\'s regenerate() gave a fresh id');
  assert.equal(await stored(manager, anonymousId), null, 'the pre-login record was destroyed');

  // Bob fails, then logs in, in his own cookie jar, between Alice's flash and her reading it.
  r = await bob.request('/login', form({ username: 'bob', password: 'wrong' }));
  assert.equal(r.status, 302);
  const bobAnon = idOf(sessionCookie(r));
  assert.deepEqual((await stored(manager, aliceId)).flash, { info: ['welcome alice'] }, 'bob\'s error is not in alice\'s session');
  assert.deepEqual((await stored(manager, bobAnon)).flash, { error: ['bad credentials for bob'] });
  r = await bob.get('/me');
  assert.deepEqual(r.json(), { user: null, error: ['bad credentials for bob'] });
  r = await bob.request('/login', form({ username: 'bob', password: 'builder' }));
  assert.equal(r.status, 302);

  r = await alice.get('/me');
  assert.equal(r.status, 200, r.body);
  assert.deepEqual(r.json(), { user: 'alice', info: ['welcome alice'], sid: aliceId });
  r = await alice.get('/me');
  assert.deepEqual(r.json().info, [], 'a flash message is read once');

  r = await bob.get('/me');
  assert.equal(r.json().user, 'bob');
  assert.deepEqual(r.json().info, ['welcome bob'], 'bob sees his message only; the failed-login error was consumed');

  // Our payload format underneath: Passport's data is a plain attribute, visible to the Store API.
  const record = await stored(manager, aliceId);
  assert.deepEqual(record.passport, { user: 1 });
  assert.equal(typeof record._token, 'string');
  assert.equal(typeof record.cookie.originalMaxAge, 'number');

  const beforeLogout = alice.cookieHeader();
  r = await alice.request('/logout', { method: 'POST' });
  assert.equal(r.status, 302, r.body);
  const afterLogout = idOf(sessionCookie(r));
  assert.notEqual(afterLogout, aliceId, 'logout regenerates too');
  r = await alice.get('/me');
  assert.equal(r.status, 401);
  // The pre-logout cookie no longer logs anyone in: its record is gone.
  r = await alice.get('/me', { cookie: beforeLogout });
  assert.equal(r.status, 401);
  assert.equal(await stored(manager, aliceId), null);
});

test('Express 4: the same Passport + connect-flash flow', async (t) => {
  const express4 = require('express4');
  const manager = new SessionManager({ driver: 'array', key: KEY });
  t.after(() => manager.close());
  const app = express4();
  app.use(express4.urlencoded({ extended: false }));
  app.use(sessionMiddleware(manager, { saveUninitialized: false }));
  passportRoutes()(app);
  app.use(errorHandler);
  const server = await listen(http.createServer(app));
  t.after(() => server.close());
  const c = new Client(server.url);
  let r = await c.request('/login', form({ username: 'alice', password: 'wonderland' }));
  assert.equal(r.status, 302, r.body);
  r = await c.get('/me');
  assert.deepEqual(r.json().info, ['welcome alice']);
  r = await c.request('/logout', { method: 'POST' });
  assert.equal(r.status, 302, r.body);
  r = await c.get('/me');
  assert.equal(r.status, 401);
});

test('passport keepSessionInfo: data from before login survives the regenerate', async (t) => {
  const manager = new SessionManager({ driver: 'array', key: KEY });
  t.after(() => manager.close());
  const server = await serveApp(t, manager, {}, passportRoutes((app) => {
    app.get('/remember', (req, res) => {
      req.session.returnTo = '/cart';
      res.end();
    });
    app.post('/login-keep', (req, res, next) => {
      req.login({ id: 2, username: 'bob' }, { keepSessionInfo: true }, (err) => (err ? next(err) : res.json({ returnTo: req.session.returnTo })));
    });
  }));
  const c = new Client(server.url);
  await c.get('/remember');
  const r = await c.request('/login-keep', { method: 'POST' });
  assert.deepEqual(r.json(), { returnTo: '/cart' });
  const rec = await stored(manager, idOf(sessionCookie(r)));
  assert.equal(rec.returnTo, '/cart');
  assert.deepEqual(rec.passport, { user: 2 });
});

test('plain properties: assignment, nested objects, delete and Dates persist as JSON; id is read-only; methods are not data', async (t) => {
  const manager = new SessionManager({ driver: 'array', key: KEY });
  t.after(() => manager.close());
  const server = await serveApp(t, manager, { saveUninitialized: false }, (app) => {
    app.get('/step1', (req, res) => {
      req.session.views = 1;
      req.session.cart = { items: [{ sku: 'a', qty: 2 }], coupon: null };
      req.session.temp = 'x';
      req.session.when = new Date(Date.UTC(2026, 0, 2));
      req.session.fn = () => 1; // dropped, as JSON drops it
      res.json({ keys: Object.keys(req.session) });
    });
    app.get('/step2', (req, res) => {
      req.session.views++;
      req.session.cart.items.push({ sku: 'b', qty: 1 });
      delete req.session.temp;
      res.end();
    });
    app.get('/read', (req, res) => {
      let idError = null;
      try {
        req.session.id = 'x';
      } catch (err) {
        idError = err.name;
      }
      res.json({ data: { ...req.session, cookie: undefined }, id: req.session.id, sessionID: req.sessionID, idError, enumerable: Object.keys(req.session) });
    });
  });
  const c = new Client(server.url);
  let r = await c.get('/step1');
  assert.deepEqual(r.json().keys, ['cookie', 'views', 'cart', 'temp', 'when', 'fn']);
  const id = idOf(sessionCookie(r));
  await c.get('/step2');
  r = await c.get('/read');
  const body = r.json();
  assert.deepEqual(body.data, { views: 2, cart: { items: [{ sku: 'a', qty: 2 }, { sku: 'b', qty: 1 }], coupon: null }, when: '2026-01-02T00:00:00.000Z' });
  assert.equal(body.id, id);
  assert.equal(body.sessionID, id);
  assert.equal(body.idError, 'TypeError', 'req.session.id is read-only');
  assert.deepEqual(body.enumerable, ['cookie', 'views', 'cart', 'when']);
  const rec = await stored(manager, id);
  assert.equal(rec.views, 2);
  assert.equal(rec.temp, undefined);
  assert.deepEqual(rec.cart.items.map((i) => i.sku), ['a', 'b']);
});

test('a request that changes nothing touches the record and writes nothing; one that changes a nested value writes', async (t) => {
  const { manager, handler } = recordingManager();
  const server = await serveApp(t, manager, { saveUninitialized: false }, (app) => {
    app.get('/init', (req, res) => {
      req.session.a = 1;
      req.session.b = 1;
      res.end();
    });
    app.get('/read', (req, res) => res.json({ a: req.session.a, b: req.session.b }));
    app.get('/nested', (req, res) => {
      req.session.b = { deep: { list: [1] } };
      res.end();
    });
    app.get('/nested-push', (req, res) => {
      req.session.b.deep.list.push(2);
      res.end();
    });
  });
  const c = new Client(server.url);
  await c.get('/init');
  handler.reset();
  await c.get('/read');
  assert.deepEqual(handler.calls, { read: 1, write: 0, touch: 1, destroy: 0 }, 'unchanged with resave: false: a touch, no write');

  await c.get('/nested');
  handler.reset();
  await c.get('/nested-push');
  assert.deepEqual(handler.calls, { read: 1, write: 1, touch: 0, destroy: 0 }, 'a change deep inside a property is seen');
  const r = await c.get('/read');
  assert.deepEqual(r.json(), { a: 1, b: { deep: { list: [1, 2] } } });
});

test('cookie: defaults from the manager config; maxAge set by the app changes Set-Cookie and is kept with the session', async (t) => {
  const manager = new SessionManager({ driver: 'array', key: KEY, lifetime: 30, same_site: 'strict', path: '/' });
  t.after(() => manager.close());
  const server = await serveApp(t, manager, {}, (app) => {
    app.get('/cookie', (req, res) => {
      const c = req.session.cookie;
      res.json({ maxAge: c.maxAge, originalMaxAge: c.originalMaxAge, expires: c.expires, httpOnly: c.httpOnly, path: c.path, secure: c.secure, sameSite: c.sameSite });
    });
    app.get('/remember-me', (req, res) => {
      req.session.cookie.maxAge = 30 * 24 * 3600 * 1000;
      req.session.remember = true;
      res.end();
    });
    app.get('/browser-session', (req, res) => {
      req.session.cookie.expires = null;
      req.session.cookie.maxAge = null;
      req.session.short = true;
      res.end();
    });
  });
  const c = new Client(server.url);
  let r = await c.get('/cookie');
  const first = r.json();
  assert.equal(first.originalMaxAge, 30 * 60000);
  assert.ok(first.maxAge > 30 * 60000 - 5000 && first.maxAge <= 30 * 60000, String(first.maxAge));
  assert.equal(typeof first.expires, 'string');
  assert.deepEqual({ httpOnly: first.httpOnly, path: first.path, secure: first.secure, sameSite: first.sameSite }, { httpOnly: true, path: '/', secure: false, sameSite: 'strict' });
  let line = sessionCookie(r);
  assert.equal(line.attrs['max-age'], String(30 * 60));
  assert.equal(line.attrs.samesite, 'Strict');
  assert.equal(line.attrs.httponly, true);

  r = await c.get('/remember-me');
  line = sessionCookie(r);
  assert.ok(line, 'a changed session with an expiring cookie is re-cookied');
  assert.equal(line.attrs['max-age'], String(30 * 24 * 3600));
  assert.ok(Date.parse(line.attrs.expires) > Date.now() + 29 * 24 * 3600 * 1000);
  // The next request keeps the 30 days: the cookie is stored with the session.
  r = await c.get('/cookie');
  assert.equal(r.json().originalMaxAge, 30 * 24 * 3600 * 1000);

  r = await c.get('/browser-session');
  line = sessionCookie(r);
  assert.equal(line, undefined, 'expires null and not rolling: express-session sends no cookie for an existing session');
  r = await c.get('/cookie');
  assert.equal(r.json().originalMaxAge, null);
  assert.equal(r.json().maxAge, null);
});

test('saveUninitialized: false neither writes nor cookies an untouched new session; a touched one is both', async (t) => {
  const { manager, handler } = recordingManager();
  const server = await serveApp(t, manager, { saveUninitialized: false }, (app) => {
    app.get('/nothing', (req, res) => res.json({ id: req.session.id }));
    app.get('/something', (req, res) => {
      req.session.seen = true;
      res.end();
    });
  });
  const c = new Client(server.url);
  let r = await c.get('/nothing');
  assert.equal(sessionCookie(r), undefined);
  assert.equal(handler.records.size, 0);
  assert.equal(handler.calls.write, 0);
  r = await c.get('/something');
  assert.ok(sessionCookie(r));
  assert.equal(handler.records.size, 1);

  // saveUninitialized: true (the manager's default): the empty session is saved and cookied.
  const other = recordingManager();
  const server2 = await serveApp(t, other.manager, {}, (app) => app.get('/nothing', (req, res) => res.end()));
  r = await new Client(server2.url).get('/nothing');
  assert.ok(sessionCookie(r));
  assert.equal(other.handler.records.size, 1);
});

test('rolling: the cookie is re-sent on every response; without it an unchanged session gets none', async (t) => {
  const manager = new SessionManager({ driver: 'array', key: KEY });
  t.after(() => manager.close());
  const routes = (app) => {
    app.get('/set', (req, res) => {
      req.session.n = 1;
      res.end();
    });
    app.get('/read', (req, res) => res.end(String(req.session.n)));
  };
  const plain = await serveApp(t, manager, {}, routes);
  const rolling = await serveApp(t, manager, { rolling: true }, routes);
  const a = new Client(plain.url);
  await a.get('/set');
  let r = await a.get('/read');
  assert.equal(r.body, '1');
  assert.equal(sessionCookie(r), undefined);

  const b = new Client(rolling.url);
  await b.get('/set');
  r = await b.get('/read');
  assert.equal(r.body, '1');
  const line = sessionCookie(r);
  assert.ok(line, 'rolling re-sends the cookie');
  assert.equal(line.attrs['max-age'], String(120 * 60), 'with a full lifetime from now');
});

test('resave: true writes an unchanged session back; false only touches it', async (t) => {
  const { manager, handler } = recordingManager();
  const routes = (app) => {
    app.get('/set', (req, res) => {
      req.session.n = 1;
      res.end();
    });
    app.get('/read', (req, res) => res.end(String(req.session.n)));
  };
  const resave = await serveApp(t, manager, { resave: true }, routes);
  const noResave = await serveApp(t, manager, { resave: false }, routes);
  const a = new Client(resave.url);
  await a.get('/set');
  handler.reset();
  await a.get('/read');
  assert.equal(handler.calls.write, 1);
  assert.equal(handler.calls.touch, 0);

  const b = new Client(noResave.url);
  await b.get('/set');
  handler.reset();
  await b.get('/read');
  assert.equal(handler.calls.write, 0);
  assert.equal(handler.calls.touch, 1);
});

test('save(cb) writes before the callback; reload(cb) sees another request\'s write; touch() resets maxAge', async (t) => {
  const manager = new SessionManager({ driver: 'array', key: KEY });
  t.after(() => manager.close());
  let release;
  const gate = new Promise((resolve) => { release = resolve; });
  let entered;
  const inWait = new Promise((resolve) => { entered = resolve; });
  const server = await serveApp(t, manager, {}, (app) => {
    app.get('/set', (req, res, next) => {
      req.session.views = Number(req.query.v);
      req.session.save((err) => {
        if (err) return next(err);
        // The record holds the value before the response is even started.
        return stored(manager, req.session.id).then((rec) => res.json({ stored: rec.views }), next);
      });
    });
    app.get('/wait', async (req, res, next) => {
      const before = req.session.views;
      entered();
      await gate;
      const old = req.session;
      const ret = req.session.reload((err) => {
        if (err) return next(err);
        return res.json({ before, after: req.session.views, replaced: old !== req.session, sameId: old.id === req.session.id });
      });
      assert.equal(ret, old, 'reload returns the session for chaining');
    });
    app.get('/touch', (req, res) => {
      // As time passing would: the expiry comes closer while originalMaxAge stays.
      req.session.cookie._expires = new Date(Date.now() + 1000);
      const shortened = req.session.cookie.maxAge;
      const ret = req.session.touch();
      res.json({ shortened, after: req.session.cookie.maxAge, chained: ret === req.session });
    });
    app.get('/read', (req, res) => res.json({ views: req.session.views }));
  });
  const c = new Client(server.url);
  let r = await c.get('/set?v=1');
  assert.deepEqual(r.json(), { stored: 1 });
  const waiting = c.get('/wait');
  await inWait;
  await c.get('/set?v=5');
  release();
  r = await waiting;
  assert.deepEqual(r.json(), { before: 1, after: 5, replaced: true, sameId: true });
  r = await c.get('/read');
  assert.deepEqual(r.json(), { views: 5 }, 'the reloading request did not write its stale value back');
  r = await c.get('/touch');
  const tj = r.json();
  assert.ok(tj.shortened <= 1000);
  assert.ok(tj.after > 100 * 60000, 'touch() restored the original maxAge');
  assert.equal(tj.chained, true);
});

test('destroy(cb) removes the record and req.session; the old cookie then gets a fresh empty session', async (t) => {
  const { manager, handler } = recordingManager();
  const server = await serveApp(t, manager, {}, (app) => {
    app.get('/set', (req, res) => {
      req.session.user = 'carol';
      res.end();
    });
    app.get('/destroy', (req, res, next) => {
      const id = req.session.id;
      req.session.destroy((err) => {
        if (err) return next(err);
        return res.json({ session: req.session === undefined ? 'gone' : 'still there', had: handler.records.has(id) });
      });
    });
    app.get('/read', (req, res) => res.json({ user: req.session.user ?? null, id: req.session.id }));
  });
  const c = new Client(server.url);
  let r = await c.get('/set');
  const id = idOf(sessionCookie(r));
  const cookie = c.cookieHeader();
  r = await c.get('/destroy');
  assert.deepEqual(r.json(), { session: 'gone', had: false });
  assert.equal(sessionCookie(r), undefined, 'as express-session: no cookie for a destroyed session');
  assert.equal(handler.records.has(id), false);
  r = await c.get('/read', { cookie });
  assert.equal(r.json().user, null);
  assert.notEqual(r.json().id, id, 'the destroyed id is never adopted again');
});

test('driver failures reach cb(err) as the driver\'s own error; without a callback they fail the request', async (t) => {
  const { manager, handler } = recordingManager();
  const server = await serveApp(t, manager, {}, (app) => {
    app.get('/init', (req, res) => {
      req.session.n = 1;
      res.end();
    });
    for (const method of ['save', 'regenerate', 'destroy', 'reload']) {
      app.get(`/${method}`, (req, res) => {
        const op = { save: 'write', regenerate: 'destroy', destroy: 'destroy', reload: 'read' }[method];
        const thrown = handler.failNext(op);
        req.session[method]((err) => res.json({ same: err === thrown, message: err && err.message, session: req.session ? 'present' : 'none' }));
      });
    }
    app.get('/save-no-cb', (req, res) => {
      handler.failNext('write');
      req.session.n = 2;
      req.session.save();
      res.end('unreachable');
    });
    app.get('/end-fails', (req, res) => {
      handler.failNext('write', Object.assign(new Error('disk full'), { code: 'ERR_SESSION_IO' }));
      req.session.n = 3;
      res.end('unreachable');
    });
    app.get('/stale', (req, res) => {
      const old = req.session;
      req.session.regenerate(() => old.save((err) => res.json({ code: err && err.code })));
    });
    app.get('/reserved', (req, res) => {
      req.session._token = 'mine';
      res.end('unreachable');
    });
    app.get('/dotted', (req, res) => {
      req.session['a.b'] = 1;
      res.end('unreachable');
    });
    app.get('/cycle', (req, res) => {
      const o = {};
      o.self = o;
      req.session.o = o;
      res.end('unreachable');
    });
    app.get('/bad-cb', (req, res) => {
      try {
        req.session.save('yes');
        res.end('unreachable');
      } catch (err) {
        res.json({ code: err.code });
      }
    });
  });
  const c = new Client(server.url);
  await c.get('/init');
  for (const method of ['save', 'regenerate', 'destroy']) {
    const r = await c.get(`/${method}`);
    assert.equal(r.json().same, true, `${method}: ${r.body}`);
    await c.get('/init');
  }
  let r = await c.get('/regenerate');
  assert.equal(r.json().session, 'present', 'regenerate still gives a new session when the destroy failed');
  await c.get('/init');
  r = await c.get('/reload');
  assert.equal(r.json().same, true, r.body);

  r = await c.get('/save-no-cb');
  assert.equal(r.status, 500);
  assert.match(r.json().message, /went away/);
  r = await c.get('/end-fails');
  assert.equal(r.status, 500);
  assert.deepEqual(r.json(), { code: 'ERR_SESSION_IO', message: 'disk full' });
  assert.equal(r.body.includes('unreachable'), false);

  r = await c.get('/stale');
  assert.deepEqual(r.json(), { code: 'ERR_SESSION_INVALID_ID' });
  for (const p of ['/reserved', '/dotted', '/cycle']) {
    r = await c.get(p);
    assert.equal(r.status, 500, p);
    assert.equal(r.json().code, 'ERR_SESSION_VALUE', p);
  }
  r = await c.get('/bad-cb');
  assert.deepEqual(r.json(), { code: 'ERR_SESSION_CALLBACK' });

  // reload() of a record that is gone: express-session's "failed to load session", coded.
  const server2 = await serveApp(t, manager, {}, (app) => {
    app.get('/init', (req, res) => {
      req.session.n = 1;
      res.end();
    });
    app.get('/reload-gone', (req, res) => {
      handler.records.delete(req.session.id);
      req.session.reload((err) => res.json({ code: err && err.code }));
    });
  });
  const c2 = new Client(server2.url);
  await c2.get('/init');
  r = await c2.get('/reload-gone');
  assert.deepEqual(r.json(), { code: 'ERR_SESSION_INVALID_ID' });
});

test('options are checked: unknown keys, wrong types, the cookie driver, a non-manager', () => {
  const manager = new SessionManager({ driver: 'array', key: KEY });
  const code = { code: 'ERR_SESSION_INVALID_OPTION' };
  assert.throws(() => createExpressSessionMiddleware(manager, { resave: 'yes' }), code);
  assert.throws(() => createExpressSessionMiddleware(manager, { saveUnitialized: false }), { ...code, message: /saveUnitialized/ });
  assert.throws(() => createExpressSessionMiddleware(manager, { api: 'laravel' }), code);
  assert.throws(() => createExpressSessionMiddleware(manager, { unset: 'drop' }), code);
  assert.throws(() => createExpressSessionMiddleware(manager, { migrateFrom: { secret: '' , store: { get() {} } } }), code);
  assert.throws(() => createExpressSessionMiddleware(manager, { migrateFrom: { secret: 's', store: {} } }), code);
  assert.throws(() => createExpressSessionMiddleware(manager, { migrateFrom: { secret: 's', store: { get() {} }, prefix: 'sess:' } }), code);
  assert.throws(() => createExpressSessionMiddleware({}, {}), code);
  assert.throws(() => manager.middleware({ api: 'express-session', rolling: 1 }), code);
  assert.throws(() => manager.middleware({ rolling: true }), code, 'express-session options without the api are refused');
  const cookieDriver = new SessionManager({ driver: 'cookie', key: KEY });
  assert.throws(() => createExpressSessionMiddleware(cookieDriver, {}), { ...code, message: /server-side driver/ });
});

test('unset: \'destroy\' removes the record when the app sets req.session to null; \'keep\' leaves it', async (t) => {
  const { manager, handler } = recordingManager();
  const routes = (app) => {
    app.get('/set', (req, res) => {
      req.session.n = 1;
      res.end();
    });
    app.get('/null', (req, res) => {
      req.session.n = 2;
      req.session = null;
      res.end();
    });
  };
  const destroy = await serveApp(t, manager, { unset: 'destroy' }, routes);
  const keep = await serveApp(t, manager, {}, routes);
  const a = new Client(destroy.url);
  let id = idOf(sessionCookie(await a.get('/set')));
  await a.get('/null');
  assert.equal(handler.records.has(id), false);
  const b = new Client(keep.url);
  id = idOf(sessionCookie(await b.get('/set')));
  await b.get('/null');
  assert.equal(JSON.parse(handler.records.get(id)).n, 1, 'kept, and the change was not saved');
});

test('migration from express-session + connect-redis: the old cookie and record log the user in, under a fresh id in our format', async (t) => {
  const { startRedis } = require('./support/servers');
  const session = require('express-session');
  const { RedisStore } = require('connect-redis');
  const { createClient } = require('redis');
  const srv = await startRedis();
  const client = createClient({ url: srv.url });
  // Reported through the commands that fail; the client must not crash the test runner.
  client.on('error', () => {});
  await client.connect();
  // One hook, in order: the clients go before the server they talk to.
  let manager = null;
  t.after(async () => {
    client.destroy();
    if (manager !== null) await manager.close();
    await srv.stop();
  });
  const OLD_SECRET = 'keyboard cat';

  // The app as it ran before the switch: express-session + connect-redis, same routes.
  const oldApp = express();
  oldApp.use(express.urlencoded({ extended: false }));
  oldApp.use(session({ secret: OLD_SECRET, store: new RedisStore({ client }), resave: false, saveUninitialized: false, cookie: { maxAge: 7 * 24 * 3600 * 1000 } }));
  passportRoutes()(oldApp);
  const oldServer = await listen(http.createServer(oldApp));
  t.after(() => oldServer.close());
  const browser = new Client(oldServer.url);
  let r = await browser.request('/login', form({ username: 'alice', password: 'wonderland' }));
  assert.equal(r.status, 302, r.body);
  const oldCookie = browser.jar.get('connect.sid');
  const oldId = decodeURIComponent(oldCookie).slice(2, decodeURIComponent(oldCookie).lastIndexOf('.'));
  assert.match(oldId, /^[A-Za-z0-9_-]{32}$/);
  const oldRecord = JSON.parse(await client.get(`sess:${oldId}`));
  assert.deepEqual(oldRecord.passport, { user: 1 });
  assert.deepEqual(oldRecord.flash, { info: ['welcome alice'] }, 'a message flashed before the switch and not read yet');

  // The app after the switch: our redis driver, the same cookie name, the old secret and store.
  manager = new SessionManager({ driver: 'redis', connection: srv.url, key: KEY, cookie: 'connect.sid' });
  const migrateFrom = { secret: OLD_SECRET, store: new RedisStore({ client }) };
  const server = await serveApp(t, manager, { saveUninitialized: false, migrateFrom }, passportRoutes());
  const after = new Client(server.url);
  after.jar.set('connect.sid', oldCookie);
  r = await after.get('/me');
  assert.equal(r.status, 200, r.body);
  const newLine = sessionCookie(r, 'connect.sid');
  const newId = idOf(newLine);
  assert.match(newId, /^[A-Za-z0-9]{40}$/, 'a fresh id in our shape');
  assert.deepEqual(r.json(), { user: 'alice', info: ['welcome alice'], sid: newId });
  assert.equal(newLine.attrs['max-age'], String(7 * 24 * 3600), 'the old cookie\'s maxAge came along');

  const rec = await stored(manager, newId);
  assert.deepEqual(rec.passport, { user: 1 });
  assert.equal(rec.cookie.originalMaxAge, 7 * 24 * 3600 * 1000);
  assert.equal(typeof rec._token, 'string', 'our payload format (with our token) under our prefix');
  assert.equal(await client.exists(`ostro_session:${newId}`), 1);
  assert.ok(await client.get(`sess:${oldId}`), 'the old record is left to expire (parallel requests still find it)');

  // From now on the browser holds our cookie: still logged in, the flash was consumed.
  r = await after.get('/me');
  assert.deepEqual(r.json(), { user: 'alice', info: [], sid: newId });

  // A cookie signed with another secret is not migrated; neither is one whose record is gone.
  const forged = new Client(server.url);
  // cookie-signature's format: HMAC-SHA256, base64 without padding.
  const sig = require('node:crypto').createHmac('sha256', 'another secret').update(oldId).digest('base64').replace(/=+$/, '');
  forged.jar.set('connect.sid', encodeURIComponent(`s:${oldId}.${sig}`));
  r = await forged.get('/me');
  assert.equal(r.status, 401);
  await client.del(`sess:${oldId}`);
  const late = new Client(server.url);
  late.jar.set('connect.sid', oldCookie);
  r = await late.get('/me');
  assert.equal(r.status, 401);

  // The old store failing is an error, not a silent logout.
  const broken = createClient({ url: srv.url });
  broken.on('error', () => {});
  await broken.connect();
  broken.destroy();
  const server2 = await serveApp(t, manager, { migrateFrom: { secret: OLD_SECRET, store: new RedisStore({ client: broken }) } }, passportRoutes());
  const c2 = new Client(server2.url);
  c2.jar.set('connect.sid', oldCookie);
  r = await c2.get('/me');
  assert.equal(r.status, 500);
  assert.equal(r.json().code, 'ERR_SESSION_UNAVAILABLE');
});

test('concurrent requests that change different properties both keep their change (per-property puts replayed by the engine\'s compare-and-set; array driver)', async (t) => {
  const manager = new SessionManager({ driver: 'array', key: KEY });
  t.after(() => manager.close());
  let release;
  const gate = new Promise((resolve) => { release = resolve; });
  let entered;
  const inSlow = new Promise((resolve) => { entered = resolve; });
  const server = await serveApp(t, manager, {}, (app) => {
    app.get('/init', (req, res) => {
      req.session.a = 1;
      req.session.b = 1;
      res.end();
    });
    app.get('/read', (req, res) => res.json({ a: req.session.a, b: req.session.b }));
    app.get('/slow-a', async (req, res) => {
      entered();
      await gate;
      req.session.a = 2;
      res.end();
    });
    app.get('/b', (req, res) => {
      req.session.b = 2;
      res.end();
    });
  });
  const c = new Client(server.url);
  await c.get('/init');
  const slow = c.get('/slow-a');
  await inSlow;
  await c.get('/b');
  release();
  await slow;
  const r = await c.get('/read');
  assert.deepEqual(r.json(), { a: 2, b: 2 }, 'the slow request wrote only a; b from the other request stayed');
});

test('a response whose session was destroyed meanwhile clears the cookie instead of resending the id (rolling)', async (t) => {
  const manager = new SessionManager({ driver: 'array', key: KEY });
  t.after(() => manager.close());
  let loaded;
  const started = new Promise((r) => { loaded = r; });
  let release;
  const gate = new Promise((r) => { release = r; });
  const { url } = await serveApp(t, manager, { rolling: true }, (app) => {
    app.get('/set', (req, res) => {
      req.session.user = 'alice';
      res.end();
    });
    app.get('/slow', async (req, res) => {
      loaded();
      await gate;
      res.end(String(req.session.user));
    });
    app.get('/logout', (req, res, next) => req.session.destroy((err) => (err ? next(err) : res.end('bye'))));
    app.get('/read', (req, res) => res.end(String(req.session.user)));
  });
  const client = new Client(url);
  await client.get('/set');
  const cookie = client.cookieHeader();
  const slow = client.get('/slow', { cookie });
  await started;
  await client.get('/logout', { cookie });
  release();
  const res = await slow;
  assert.equal(res.body, 'alice', 'the request still saw the session it loaded');
  const line = sessionCookie(res);
  assert.ok(line, 'rolling sends a cookie line');
  assert.equal(line.attrs['max-age'], '0', `the cookie is cleared, not resent: ${res.setCookies}`);
  assert.equal((await client.get('/read', { cookie })).body, 'undefined', 'the old id stays dead');
});
