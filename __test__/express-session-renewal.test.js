'use strict';
// Id renewal (renew_after, renew_grace_seconds) in the express-session API mode
// (`manager.middleware({ api: 'express-session' })`), with the real express over real HTTP and
// a cookie jar, on the test clock of __test__/support/lifecycle.js:
// - a renewal at load sends a Set-Cookie with the new id, even where express-session's own rules
//   (saveUninitialized: false, no rolling, nothing changed) send none; data and CSRF token kept;
// - the old cookie inside the grace window reaches the renewed session and gets the new cookie;
//   after the window it loads nothing;
// - a save that follows the old id's forward marker (a request that loaded the old id before
//   another request renewed it) answers with the renewed id's cookie, and `req.session.id` /
//   `req.sessionID` follow it, for the automatic commit and for `req.session.save(cb)` alike;
// - `req.session.id` stays read-only;
// - regenerate() and destroy() never forward.
// The same rules under Fastify's express-session mode are checked once at the end.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const express = require('express');
const { MIN, testClock, drivers, managerOf } = require('./support/lifecycle');
const { listen, Client, sessionCookie, idOf } = require('./support/http');

const RENEW = { lifetime: 120, renew_after: 15, renew_grace_seconds: 30 };
// The drivers this file runs on: the built-in array, file, sqlite and redis (a redis-server of its
// own on a free port), and a custom JS driver with compare-and-set (whose commit builds the
// Set-Cookie line in JS rather than in the save's native crossing).
const NAMES = ['array', 'file', 'sqlite', 'redis', 'js (examples/memory-session-handler + writeIfUnchanged)'];

/** Requests that wait in the route, after the load, until the test lets them go on. */
function gates() {
  const held = new Map();
  return {
    hold(name) {
      let enter;
      let release;
      const g = { entered: new Promise((r) => { enter = r; }), gate: new Promise((r) => { release = r; }) };
      g.enter = enter;
      g.release = release;
      held.set(name, g);
      return g;
    },
    /** Lets every held request go on (a failed test must not leave them hanging). */
    releaseAll() {
      for (const g of held.values()) g.release();
    },
    async wait(name) {
      const g = held.get(name);
      if (!g) return;
      g.enter();
      await g.gate;
    },
  };
}

/** What a route answers: the session as the app sees it. */
function view(req) {
  return { user: req.session.user ?? null, views: req.session.views ?? null, w: req.session.w ?? null, id: req.session.id, sessionID: req.sessionID };
}

/**
 * An Express app with the express-session API (saveUninitialized: false, no rolling: the rules
 * under which an unchanged session gets no cookie) and these routes:
 * GET /whoami (changes nothing), POST /login, POST /views, POST /slow/:gate (waits, then sets w),
 * POST /slowread/:gate (waits, changes nothing), POST /slowsave/:gate (waits, sets w and calls
 * req.session.save(cb)), POST /regenerate, POST /logout (destroy), POST /id/:gate (waits, saves
 * with save(cb), then tries to assign req.session.id).
 */
function appOf(manager, g) {
  const app = express();
  app.use(manager.middleware({ api: 'express-session', saveUninitialized: false }));
  app.get('/whoami', (req, res) => res.json(view(req)));
  app.post('/login', (req, res) => {
    req.session.user = 'ada';
    res.json(view(req));
  });
  app.post('/views', (req, res) => {
    req.session.views = (req.session.views || 0) + 1;
    res.json(view(req));
  });
  app.post('/slow/:gate', async (req, res) => {
    await g.wait(req.params.gate);
    req.session.w = true;
    res.json(view(req));
  });
  app.post('/slowread/:gate', async (req, res) => {
    await g.wait(req.params.gate);
    res.json(view(req));
  });
  app.post('/slowsave/:gate', async (req, res, next) => {
    await g.wait(req.params.gate);
    const before = req.session.id;
    req.session.w = true;
    req.session.save((err) => {
      if (err) return next(err);
      return res.json({ ...view(req), before });
    });
  });
  app.post('/regenerate', (req, res, next) => {
    req.session.regenerate((err) => {
      if (err) return next(err);
      req.session.user = 'bob';
      return res.json(view(req));
    });
  });
  app.post('/logout', (req, res, next) => {
    req.session.destroy((err) => (err ? next(err) : res.json({ ok: true })));
  });
  app.post('/id/:gate', async (req, res, next) => {
    await g.wait(req.params.gate);
    const loadedId = req.session.id;
    req.session.w = true;
    await new Promise((resolve) => { req.session.save((err) => (err ? next(err) : resolve())); });
    const sess = req.session;
    let strict = null;
    try {
      sess.id = 'x'.repeat(40);
    } catch (err) {
      strict = err.name;
    }
    // Sloppy code (connect-flash style): the assignment is ignored, as express-session's is.
    const sloppy = new Function('s', 's.id = "y"; return s.id;')(sess); // eslint-disable-line no-new-func
    let redefine = null;
    try {
      Object.defineProperty(sess, 'id', { value: 'z' });
    } catch (err) {
      redefine = err.name;
    }
    const d = Object.getOwnPropertyDescriptor(sess, 'id');
    res.json({
      loadedId, id: sess.id, sessionID: req.sessionID, strict, sloppy, redefine,
      enumerable: d.enumerable, inKeys: Object.keys(sess).includes('id'), inSpread: Object.hasOwn({ ...sess }, 'id'),
    });
  });
  app.use((err, req, res, next) => { // eslint-disable-line no-unused-vars
    res.status(500).json({ error: err.code || err.message });
  });
  return listen(http.createServer(app));
}

/** The stored attributes of session `id` through the Store API (token included); null when none. */
async function stored(manager, id) {
  const { store, existed } = await manager.loadStore(`${manager.config.cookie}=${encodeURIComponent(manager.signedCookieValue(id))}`);
  if (!existed) return null;
  assert.equal(store.getId(), id, 'read under its own id (not renewed or forwarded by this check)');
  return { user: store.get('user'), views: store.get('views'), w: store.get('w'), token: store.token() };
}

for (const d of drivers().filter((x) => NAMES.includes(x.name))) {
  describe(`express-session API: id renewal on ${d.name}`, () => {
    before(async () => { if (d.setup) await d.setup(); });
    after(async () => { if (d.teardown) await d.teardown(); });

    /** A browser logged in at T0 with cookie c0 (id0); the clock then at exactly renew_after. */
    async function loggedIn() {
      const now = testClock();
      const g = gates();
      const m = managerOf(d.make(now, 120), now, RENEW);
      const server = await appOf(m, g);
      const browser = new Client(server.url);
      const name = m.config.cookie;
      const login = await browser.request('/login', { method: 'POST' });
      assert.equal(login.status, 200, login.body);
      const c0 = sessionCookie(login);
      assert.ok(c0, 'the login is cookied');
      const id0 = idOf(c0);
      const rec0 = await stored(m, id0);
      assert.equal(rec0.user, 'ada');
      assert.match(rec0.token, /^[A-Za-z0-9]{40}$/);
      now.advance(15 * MIN);
      const close = async () => {
        g.releaseAll();
        await server.close();
        await m.close();
      };
      return { now, g, m, browser, name, c0, id0, token0: rec0.token, close };
    }

    it('renewal at load sends a Set-Cookie with the new id; data and CSRF token are kept; req.session.id is the new id', async () => {
      const { now, m, browser, name, c0, id0, token0, close } = await loggedIn();
      try {
        const same = await browser.get('/whoami');
        assert.equal(sessionCookie(same), undefined, 'at exactly renew_after: not renewed, and an unchanged session gets no cookie');
        assert.equal(same.json().id, id0);

        now.advance(1000);
        const r = await browser.get('/whoami');
        assert.equal(r.status, 200, r.body);
        const c1 = sessionCookie(r);
        assert.ok(c1, 'the renewal sends a cookie, though nothing changed and saveUninitialized is false');
        const id1 = idOf(c1);
        assert.notEqual(id1, id0, 'under a new id');
        assert.match(id1, /^[A-Za-z0-9]{40}$/);
        assert.deepEqual(r.json(), { user: 'ada', views: null, w: null, id: id1, sessionID: id1 }, 'the data, under the new id');
        assert.equal(browser.jar.get(name), c1.value);
        const rec1 = await stored(m, id1);
        assert.equal(rec1.user, 'ada');
        assert.equal(rec1.token, token0, 'the CSRF token is kept');

        // The browser now holds the new id: no second renewal, no further cookie.
        const next = await browser.get('/whoami');
        assert.equal(sessionCookie(next), undefined);
        assert.equal(next.json().id, id1);
        assert.notEqual(browser.jar.get(name), c0);
      } finally {
        await close();
      }
    });

    it('the old cookie inside the grace window gets the renewed session and the new cookie; after it the old id loads nothing', async () => {
      const { now, m, browser, name, c0, id0, token0, close } = await loggedIn();
      try {
        // Renewed by a request that changes the session (so its response is cookied by
        // express-session's own rules too).
        now.advance(1000);
        const c1 = sessionCookie(await browser.request('/views', { method: 'POST' }));
        assert.ok(c1);
        const id1 = idOf(c1);
        assert.notEqual(id1, id0);

        now.advance(10 * 1000);
        const late = await browser.request('/whoami', { cookie: `${name}=${c0.value}` });
        assert.deepEqual(late.json(), { user: 'ada', views: 1, w: null, id: id1, sessionID: id1 }, 'forwarded to the renewed session');
        assert.equal(sessionCookie(late) && sessionCookie(late).value, c1.value, 'and answered with the renewed cookie, though nothing changed');

        // A write through the old cookie lands in the renewed session.
        now.advance(10 * 1000);
        const write = await browser.request('/views', { method: 'POST', cookie: `${name}=${c0.value}` });
        assert.equal(write.json().id, id1);
        assert.equal(sessionCookie(write) && sessionCookie(write).value, c1.value);
        const rec = await stored(m, id1);
        assert.equal(rec.views, 2);
        assert.equal(rec.token, token0);

        // One second past the window: the old id loads nothing, and a new session nobody
        // changed is not cookied (saveUninitialized: false).
        now.advance(11 * 1000);
        const gone = await browser.request('/whoami', { cookie: `${name}=${c0.value}` });
        const body = gone.json();
        assert.equal(body.user, null, 'past the window: no session');
        assert.notEqual(body.id, id0);
        assert.notEqual(body.id, id1);
        assert.equal(sessionCookie(gone), undefined);
        // The renewed cookie carries on.
        const ok = await browser.request('/whoami', { cookie: `${name}=${c1.value}` });
        assert.deepEqual(ok.json(), { user: 'ada', views: 2, w: null, id: id1, sessionID: id1 });
      } finally {
        await close();
      }
    });

    it('a save that follows the forward marker sets the cookie to the renewed id (a write, a read, and save(cb))', async () => {
      const { now, g, m, browser, name, c0, id0, close } = await loggedIn();
      try {
        const writer = g.hold('w');
        const reader = g.hold('r');
        const saver = g.hold('s');
        // All three load id0 (not yet due) and wait in the route.
        const slowWrite = browser.request('/slow/w', { method: 'POST' });
        const slowRead = browser.request('/slowread/r', { method: 'POST' });
        const slowSave = browser.request('/slowsave/s', { method: 'POST' });
        await Promise.all([writer.entered, reader.entered, saver.entered]);
        now.advance(1000);
        const renew = await browser.request('/views', { method: 'POST' });
        const c1 = sessionCookie(renew);
        assert.ok(c1 && c1.value !== c0.value, 'a fast request renewed the id');
        const id1 = idOf(c1);

        now.advance(5 * 1000);
        writer.release();
        const w = await slowWrite;
        assert.equal(w.status, 200, w.body);
        assert.equal(sessionCookie(w) && sessionCookie(w).value, c1.value, "the slow writer's response carries the renewed id's cookie");
        assert.deepEqual(w.json(), { user: 'ada', views: null, w: true, id: id0, sessionID: id0 }, 'the route ran before the save: it saw the id (and data) it loaded');

        reader.release();
        const r = await slowRead;
        assert.equal(r.status, 200, r.body);
        assert.equal(sessionCookie(r) && sessionCookie(r).value, c1.value, "so does the slow reader's, which changed nothing");

        saver.release();
        const s = await slowSave;
        assert.equal(s.status, 200, s.body);
        const sb = s.json();
        assert.equal(sb.before, id0);
        assert.equal(sb.id, id1, 'after save(cb) followed the marker, req.session.id is the renewed id');
        assert.equal(sb.sessionID, id1, 'and so is req.sessionID');
        assert.equal(sessionCookie(s) && sessionCookie(s).value, c1.value, "save(cb)'s response carries the renewed id's cookie");

        assert.equal(browser.jar.get(name), c1.value, 'the browser ends up holding the renewed id');
        const next = await browser.get('/whoami');
        assert.deepEqual(next.json(), { user: 'ada', views: 1, w: true, id: id1, sessionID: id1 }, 'the slow writes are in the renewed session, beside the fast one');
        assert.equal(sessionCookie(next), undefined, 'no further renewal');
        const rec = await stored(m, id1);
        assert.equal(rec.w, true);
      } finally {
        await close();
      }
    });

    it('req.session.id follows the renewal (after save(cb) followed the marker) and cannot be assigned', async () => {
      const { now, g, browser, id0, close } = await loggedIn();
      try {
        const held = g.hold('i');
        const slow = browser.request('/id/i', { method: 'POST' });
        await held.entered;
        now.advance(1000);
        const c1 = sessionCookie(await browser.request('/views', { method: 'POST' }));
        assert.ok(c1, 'a fast request renewed the id');
        const id1 = idOf(c1);
        assert.notEqual(id1, id0);
        now.advance(1000);
        held.release();
        const r = await slow;
        assert.equal(r.status, 200, r.body);
        assert.deepEqual(r.json(), {
          loadedId: id0, id: id1, sessionID: id1, strict: 'TypeError', sloppy: id1, redefine: 'TypeError',
          enumerable: false, inKeys: false, inSpread: false,
        });
        assert.equal(sessionCookie(r) && sessionCookie(r).value, c1.value);

        // Renewed at load: the id the route sees is the new one from the start.
        now.advance(15 * MIN + 1000);
        const again = await browser.request('/id/none', { method: 'POST' });
        const c2 = sessionCookie(again);
        assert.ok(c2 && c2.value !== c1.value, 'renewed again, at load');
        const id2 = idOf(c2);
        assert.equal(again.json().loadedId, id2);
        assert.equal(again.json().id, id2);
      } finally {
        await close();
      }
    });

    it('regenerate() and destroy() never forward, not even right after a renewal', async () => {
      const { now, browser, name, c0, id0, close } = await loggedIn();
      try {
        now.advance(1000);
        const c1 = sessionCookie(await browser.request('/views', { method: 'POST' }));
        const id1 = idOf(c1);
        assert.notEqual(id1, id0);

        // Login-style regenerate on the renewed session.
        const regen = await browser.request('/regenerate', { method: 'POST' });
        const c2 = sessionCookie(regen);
        assert.ok(c2);
        const id2 = idOf(c2);
        assert.notEqual(id2, id1);
        assert.deepEqual(regen.json(), { user: 'bob', views: null, w: null, id: id2, sessionID: id2 });
        for (const c of [c0.value, c1.value]) {
          const r = await browser.request('/whoami', { cookie: `${name}=${c}` });
          const b = r.json();
          assert.equal(b.user, null, 'neither the pre-renewal nor the renewed id reaches the regenerated session');
          assert.notEqual(b.id, id2);
          assert.equal(sessionCookie(r), undefined);
        }

        // Logout: destroy. The destroyed id loads nothing, inside any window.
        now.advance(1000);
        const out = await browser.request('/logout', { method: 'POST' });
        assert.equal(out.status, 200, out.body);
        assert.equal(sessionCookie(out), undefined, 'destroy() sends no cookie');
        const stale = await browser.request('/whoami', { cookie: `${name}=${c2.value}` });
        assert.equal(stale.json().user, null);
        assert.notEqual(stale.json().id, id2);
        assert.equal(sessionCookie(stale), undefined);
      } finally {
        await close();
      }
    });
  });
}

describe('Fastify with api: express-session: renewal', () => {
  it('a renewal at load sends the new cookie and request.session.sessionId is the new id; the old cookie forwards inside the window', async () => {
    const Fastify = require('fastify');
    const ostroSession = require('@ostro/session/fastify');
    const arr = drivers().find((x) => x.name === 'array');
    const now = testClock();
    const m = managerOf(arr.make(now, 120), now, RENEW);
    const app = Fastify();
    await app.register(ostroSession, { manager: m, api: 'express-session', saveUninitialized: false });
    app.post('/login', async (req) => {
      req.session.user = 'ada';
      return { id: req.session.id };
    });
    app.get('/whoami', async (req) => ({ user: req.session.user ?? null, id: req.session.id, sessionId: req.session.sessionId }));
    await app.listen({ port: 0, host: '127.0.0.1' });
    try {
      const browser = new Client(`http://127.0.0.1:${app.server.address().port}`);
      const name = m.config.cookie;
      const c0 = sessionCookie(await browser.request('/login', { method: 'POST' }));
      assert.ok(c0);
      now.advance(15 * MIN);
      assert.equal(sessionCookie(await browser.get('/whoami')), undefined, 'not due yet: no cookie');
      now.advance(1000);
      const r = await browser.get('/whoami');
      const c1 = sessionCookie(r);
      assert.ok(c1, 'renewed: a new cookie');
      const id1 = idOf(c1);
      assert.notEqual(id1, idOf(c0));
      assert.deepEqual(r.json(), { user: 'ada', id: id1, sessionId: id1 });
      now.advance(10 * 1000);
      const late = await browser.request('/whoami', { cookie: `${name}=${c0.value}` });
      assert.deepEqual(late.json(), { user: 'ada', id: id1, sessionId: id1 });
      assert.equal(sessionCookie(late) && sessionCookie(late).value, c1.value);
    } finally {
      await app.close();
      await m.close();
    }
  });
});
