'use strict';
// Issue 10, defects 1 and 2 with the real npm packages people combine with a session library:
// connect-flash must never carry one user's message to another, and passport's login must answer
// (with an error pointing to the express-session compatibility mode) instead of hanging.
const test = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const express = require('express');
const flash = require('connect-flash');
const passport = require('passport');
const { Strategy: LocalStrategy } = require('passport-local');
const { SessionManager } = require('../lib/manager');
const { Store } = require('../lib/store');
const { listen, Client } = require('./support/http');

const KEY = 'base64:' + Buffer.alloc(32, 9).toString('base64');

function errorHandler(err, req, res, next) { // eslint-disable-line no-unused-vars
  res.status(500).json({ code: err.code || null, message: err.message });
}

test('connect-flash: a message flashed for user A never reaches user B; the write fails with ERR_SESSION_PROPERTY', async (t) => {
  const manager = new SessionManager({ driver: 'array', key: KEY });
  const app = express();
  app.use(manager.middleware());
  app.use(flash());
  app.get('/a', (req, res) => {
    // connect-flash runs `req.session.flash = req.session.flash || {}` and pushes the message.
    req.flash('error', 'for A');
    res.send('flashed');
  });
  app.get('/b', (req, res) => {
    const shared = req.session.flash;
    res.json({ error: (shared && shared.error) || null, own: req.session.get('flash', null) });
  });
  app.use(errorHandler);
  const server = await listen(http.createServer(app));
  t.after(() => server.close());

  const a = new Client(server.url);
  const b = new Client(server.url);
  const first = await a.get('/a');
  assert.equal(first.status, 500, first.body);
  const err = first.json();
  assert.equal(err.code, 'ERR_SESSION_PROPERTY');
  assert.match(err.message, /'flash'/);
  assert.match(err.message, /put\(/);

  const second = await b.get('/b');
  assert.equal(second.status, 200, second.body);
  assert.deepEqual(second.json(), { error: null, own: null });
  // Nothing was hung on the method every session shares.
  assert.equal(Store.prototype.flash.error, undefined);
  assert.deepEqual(Object.keys(Store.prototype.flash), []);
  await manager.close();
});

/** A POST with a per-request deadline: a hang fails the test instead of stalling it. */
async function post(url, form, cookie) {
  const headers = { 'content-type': 'application/x-www-form-urlencoded' };
  if (cookie) headers.cookie = cookie;
  const res = await fetch(url, {
    method: 'POST',
    headers,
    body: new URLSearchParams(form).toString(),
    redirect: 'manual',
    signal: AbortSignal.timeout(3000),
  });
  return { status: res.status, body: await res.text() };
}

test('passport + passport-local: login answers with ERR_SESSION_CALLBACK instead of hanging', async (t) => {
  const manager = new SessionManager({ driver: 'array', key: KEY });
  const pp = new passport.Passport();
  pp.use(new LocalStrategy((username, password, done) => {
    if (username === 'alice' && password === 'secret') return done(null, { id: 1, username });
    return done(null, false);
  }));
  pp.serializeUser((user, done) => done(null, user.id));
  pp.deserializeUser((id, done) => done(null, { id }));

  const app = express();
  app.use(manager.middleware());
  app.use(express.urlencoded({ extended: false }));
  app.use(pp.initialize());
  app.use(pp.session());
  app.post('/login', pp.authenticate('local', { failureRedirect: '/login' }), (req, res) => res.send('welcome'));
  app.post('/logout', (req, res, next) => req.logout((err) => (err ? next(err) : res.send('bye'))));
  app.use(errorHandler);
  const server = await listen(http.createServer(app));
  t.after(() => server.close());

  // Today's code never called regenerate()'s callback: this request hung until the deadline.
  const login = await post(`${server.url}/login`, { username: 'alice', password: 'secret' });
  assert.equal(login.status, 500, login.body);
  const err = JSON.parse(login.body);
  assert.equal(err.code, 'ERR_SESSION_CALLBACK');
  assert.match(err.message, /regenerate\(\)/);
  assert.match(err.message, /api: 'express-session'/);

  // Logout calls save(cb) the same way.
  const logout = await post(`${server.url}/logout`, {});
  assert.equal(logout.status, 500, logout.body);
  assert.equal(JSON.parse(logout.body).code, 'ERR_SESSION_CALLBACK');

  // A failed login never reaches the session: it still redirects as passport means it to.
  const wrong = await post(`${server.url}/login`, { username: 'alice', password: 'nope' });
  assert.equal(wrong.status, 302);
  await manager.close();
});

// The errors above point to this mode: with it the same two libraries work, per user.
test("the way out the errors name: manager.middleware({ api: 'express-session' }) runs connect-flash and passport", async (t) => {
  const manager = new SessionManager({ driver: 'array', key: KEY });
  const pp = new passport.Passport();
  pp.use(new LocalStrategy((username, password, done) => done(null, username === 'alice' && password === 'secret' ? { id: 1 } : false)));
  pp.serializeUser((user, done) => done(null, user.id));
  pp.deserializeUser((id, done) => done(null, { id }));
  const app = express();
  app.use(manager.middleware({ api: 'express-session' }));
  app.use(express.urlencoded({ extended: false }));
  app.use(flash());
  app.use(pp.initialize());
  app.use(pp.session());
  app.get('/a', (req, res) => {
    req.flash('error', 'for A');
    res.send('flashed');
  });
  app.get('/read', (req, res) => res.json({ error: req.flash('error') }));
  app.post('/login', pp.authenticate('local'), (req, res) => res.send('welcome'));
  app.get('/me', (req, res) => res.json({ user: req.user || null }));
  app.use(errorHandler);
  const server = await listen(http.createServer(app));
  t.after(() => server.close());

  const a = new Client(server.url);
  const b = new Client(server.url);
  assert.equal((await a.get('/a')).status, 200);
  assert.deepEqual((await b.get('/read')).json(), { error: [] });
  assert.deepEqual((await a.get('/read')).json(), { error: ['for A'] });

  const login = await a.request('/login', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'username=alice&password=secret' });
  assert.equal(login.status, 200, login.body);
  assert.deepEqual((await a.get('/me')).json(), { user: { id: 1 } });
  assert.deepEqual((await b.get('/me')).json(), { user: null });
  assert.throws(() => manager.middleware({ api: 'connect' }), { code: 'ERR_SESSION_INVALID_OPTION' });
  assert.throws(() => manager.middleware({ rolling: true }), (e) => e.code === 'ERR_SESSION_INVALID_OPTION' && /"rolling"/.test(e.message));
  assert.equal(manager.middleware({ api: 'laravel' }), manager.middleware());
  await manager.close();
});
