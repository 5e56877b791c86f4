'use strict';
// Id renewal (renew_after, renew_grace_seconds) on every driver that stores sessions (issue 13):
// the id changes on the first request after renew_after, data and CSRF token kept; a request
// still carrying the old id inside the grace window gets the new session and the new cookie, and
// after it the old id loads nothing. regenerate() and invalidate() never forward.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const { MIN, KEY, testClock, drivers, managerOf, request } = require('./support/lifecycle');
const { serve, Client, sessionCookie, idOf } = require('./support/http');
const { SessionManager, ArraySessionHandler } = require('..');

const RENEW = { lifetime: 120, renew_after: 15, renew_grace_seconds: 30 };

for (const d of drivers()) {
  describe(`id renewal on ${d.name}`, () => {
    before(async () => { if (d.setup) await d.setup(); });
    after(async () => { if (d.teardown) await d.teardown(); });

    it('renews after renew_after keeping data and token; the old id forwards inside the window only', async () => {
      const now = testClock();
      const m = managerOf(d.make(now, 120), now, RENEW);
      const renewed = [];
      m.on('renewed', (msg) => renewed.push(msg));
      let token;
      const { id: first } = await request(m, null, (s) => {
        s.put('user', { name: 'ada' });
        token = s.token();
      });
      now.advance(15 * MIN);
      const same = await request(m, first);
      assert.equal(same.id, first, 'not renewed at exactly renew_after');
      assert.equal(renewed.length, 0);

      now.advance(1000);
      const r = await request(m, first, (s) => {
        assert.deepEqual(s.get('user'), { name: 'ada' }, 'data kept');
        assert.equal(s.token(), token, 'CSRF token kept');
        s.put('cart', ['apple']);
      });
      assert.equal(r.existed, true);
      assert.notEqual(r.id, first, 'a new id');
      assert.equal(renewed.length, 1);

      // An in-flight request with the old cookie, 30 s later: the new session.
      now.advance(30 * 1000);
      const late = await request(m, first, (s) => {
        assert.deepEqual(s.get('cart'), ['apple']);
        assert.equal(s.token(), token);
        s.push('cart', 'pear');
      });
      assert.equal(late.existed, true);
      assert.equal(late.id, r.id, 'forwarded to the renewed session');
      const check = await request(m, r.id, (s) => assert.deepEqual(s.get('cart'), ['apple', 'pear']));
      assert.equal(check.id, r.id);

      // One second past the window: the old id loads nothing.
      now.advance(1000);
      const gone = await request(m, first, (s) => assert.equal(s.get('user'), null));
      assert.equal(gone.existed, false);
      assert.notEqual(gone.id, first);
      assert.notEqual(gone.id, r.id);
      // The renewed session carries on, and renews again 15 minutes after its own id was issued.
      now.advance(14 * MIN);
      assert.equal((await request(m, r.id)).id, r.id);
      now.advance(MIN);
      const second = await request(m, r.id, (s) => assert.deepEqual(s.get('user'), { name: 'ada' }));
      assert.notEqual(second.id, r.id);
      await m.close();
    });

    it('regenerate() at login and invalidate() at logout never forward', async () => {
      const now = testClock();
      const m = managerOf(d.make(now, 120), now, RENEW);
      const { id: anon } = await request(m, null, (s) => s.put('cart', ['fig']));
      const login = await request(m, anon, async (s) => {
        await s.regenerate(true);
        s.put('user', 'ada');
      });
      assert.notEqual(login.id, anon);
      const fixated = await request(m, anon, (s) => assert.equal(s.get('user'), null, 'the pre-login id never reaches the logged-in session'));
      assert.equal(fixated.existed, false);
      assert.notEqual(fixated.id, login.id);

      const logout = await request(m, login.id, async (s) => { await s.invalidate(); });
      assert.notEqual(logout.id, login.id);
      const stale = await request(m, login.id, (s) => assert.equal(s.get('user'), null));
      assert.equal(stale.existed, false);
      assert.notEqual(stale.id, logout.id, 'the logged-out id does not follow to the new session either');
      await m.close();
    });
  });
}

describe('renewal over HTTP', () => {
  it('the old cookie inside the window gets the new session and the new Set-Cookie', async () => {
    const now = testClock();
    const handler = new ArraySessionHandler(120, { now });
    const m = new SessionManager({ driver: 'mem', key: KEY, lottery: [0, 100], ...RENEW }, { now });
    m.extend('mem', () => handler);
    const mw = m.middleware();
    const server = http.createServer((req, res) => mw(req, res, () => {
      if (req.url === '/login') req.session.put('user', 'ada');
      res.end(JSON.stringify({ user: req.session.get('user'), token: req.session.token() }));
    }));
    await new Promise((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address();
    const get = (p, cookie) => new Promise((resolve, reject) => {
      http.get({ port, host: '127.0.0.1', path: p, headers: cookie ? { cookie } : {} }, (res) => {
        let body = '';
        res.on('data', (c) => { body += c; });
        res.on('end', () => resolve({ cookie: (res.headers['set-cookie'] || [])[0].split(';')[0], body: JSON.parse(body) }));
      }).on('error', reject);
    });
    try {
      const a = await get('/login');
      now.advance(16 * MIN);
      const b = await get('/', a.cookie);
      assert.notEqual(b.cookie, a.cookie, 'renewed: a new cookie');
      assert.equal(b.body.user, 'ada');
      assert.equal(b.body.token, a.body.token);
      now.advance(20 * 1000);
      const c = await get('/', a.cookie);
      assert.equal(c.body.user, 'ada', 'the old cookie still reaches the session');
      assert.equal(c.cookie, b.cookie, 'and is answered with the new cookie');
      now.advance(11 * 1000);
      const e = await get('/', a.cookie);
      assert.equal(e.body.user, null, 'past the window: a new session');
      assert.notEqual(e.cookie, b.cookie);
      const f = await get('/', b.cookie);
      assert.equal(f.body.user, 'ada');
    } finally {
      server.close();
      await m.close();
    }
  });
});

describe('renewal with the cookie driver', () => {
  it('reissues the cookie under a new id, data and token kept (there is no server record to forward from)', async () => {
    const now = testClock();
    const m = new SessionManager({ driver: 'cookie', key: KEY, ...RENEW }, { now });
    const hdr = (v) => `${m.config.cookie}=${encodeURIComponent(v)}`;
    let { store } = await m.loadStore(undefined);
    store.put('user', 'ada');
    const token = store.token();
    await store.save();
    const id = store.getId();
    const value = store.getHandler().outgoing();
    now.advance(16 * MIN);
    ({ store } = await m.loadStore(hdr(value)));
    assert.notEqual(store.getId(), id);
    assert.equal(store.get('user'), 'ada');
    assert.equal(store.token(), token);
    await store.save();
    const next = store.getHandler().outgoing();
    assert.ok(typeof next === 'string' && next !== '' && next !== value, 'a new cookie goes out');
    ({ store } = await m.loadStore(hdr(next)));
    assert.equal(store.getId() !== id && store.get('user') === 'ada', true);
  });
});

// A request that loaded the old id before another request renewed it, and saves after the
// renewal: inside the grace window it follows the forward marker, its write lands in the renewed
// session and its response carries the renewed id's cookie (so the browser tab whose response
// comes last is not left holding an id that stops loading after the window). Past the window, or
// after a logout, it is dropped. Every driver that compares (the JS driver without
// writeIfUnchanged keeps last-writer-wins: README).

/** Requests that wait in the route, after the load, until the test lets them go on. */
function gates() {
  const held = new Map();
  return {
    hold(name) {
      let entered;
      let release;
      const g = { entered: new Promise((r) => { entered = r; }), gate: new Promise((r) => { release = r; }) };
      g.enter = entered;
      g.release = release;
      held.set(name, g);
      return g;
    },
    async wait(name) {
      const g = held.get(name);
      if (!g) return;
      g.enter();
      await g.gate;
    },
  };
}

/** An Express app: /login, /whoami (GET), /slow/:key (POST, puts key), /slowread and /logout. */
function appOf(g) {
  return async (req, res) => {
    const s = req.session;
    const url = new URL(req.url, 'http://x');
    const [, route, arg] = url.pathname.split('/');
    if (route === 'login') s.put('user', 'ada');
    else if (route === 'slow') {
      await g.wait(arg);
      s.put(arg, true);
      s.push('log', arg);
    } else if (route === 'slowread') await g.wait(arg);
    else if (route === 'logout') await s.invalidate();
    res.json({ user: s.get('user'), keys: s.get('log'), slow: s.get('w') });
  };
}

for (const d of drivers().filter((x) => x.name !== 'js without writeIfUnchanged')) {
  describe(`a request in flight across a renewal, over HTTP with Express, on ${d.name}`, () => {
    before(async () => { if (d.setup) await d.setup(); });
    after(async () => { if (d.teardown) await d.teardown(); });

    /** A browser logged in at T0, the clock at renew_after (the id one second short of due). */
    async function loggedIn() {
      const now = testClock();
      const g = gates();
      const m = managerOf(d.make(now, 120), now, RENEW);
      const server = await serve('express', m, appOf(g));
      const browser = new Client(server.url);
      const login = await browser.request('/login', { method: 'POST' });
      assert.equal(login.status, 200, login.body);
      const name = m.config.cookie;
      const c0 = browser.jar.get(name);
      now.advance(15 * MIN);
      const close = async () => { await server.close(); await m.close(); };
      return { now, g, m, browser, name, c0, close };
    }

    it('inside the grace window: the slow request keeps its write and answers with the renewed cookie', async () => {
      const { now, g, browser, name, c0, close } = await loggedIn();
      try {
        const writer = g.hold('w');
        const reader = g.hold('r');
        // Both load the old id (not yet due) and wait in the route.
        const slowWrite = browser.request('/slow/w', { method: 'POST' });
        const slowRead = browser.request('/slowread/r', { method: 'POST' });
        await writer.entered;
        await reader.entered;
        now.advance(1000);
        const renew = await browser.get('/whoami');
        const c1 = sessionCookie(renew);
        assert.ok(c1 && c1.value !== c0, 'the fast request renewed the id');
        assert.equal(renew.json().user, 'ada');

        now.advance(10 * 1000);
        writer.release();
        const w = await slowWrite;
        assert.equal(w.status, 200, w.body);
        assert.equal(sessionCookie(w).value, c1.value, "the slow writer's response carries the renewed id's cookie");
        assert.deepEqual(w.json(), { user: 'ada', keys: ['w'], slow: true });
        reader.release();
        const r = await slowRead;
        assert.equal(r.status, 200, r.body);
        assert.equal(sessionCookie(r).value, c1.value, "so does the slow reader's, which changed nothing");
        assert.equal(browser.jar.get(name), c1.value, 'the browser ends up holding the renewed id');

        // The write is in the renewed session, which the browser now reaches directly.
        const next = await browser.get('/whoami');
        assert.deepEqual(next.json(), { user: 'ada', keys: ['w'], slow: true });
        assert.equal(idOf(sessionCookie(next)), idOf(c1), 'no second renewal');
        // The old id still only forwards.
        const viaOld = await browser.request('/whoami', { cookie: `${name}=${c0}` });
        assert.equal(sessionCookie(viaOld).value, c1.value);
        assert.deepEqual(viaOld.json(), { user: 'ada', keys: ['w'], slow: true });
      } finally {
        await close();
      }
    });

    it('past the grace window: the slow write is dropped and its response clears the cookie', async () => {
      const { now, g, browser, name, c0, close } = await loggedIn();
      try {
        const writer = g.hold('w');
        const slowWrite = browser.request('/slow/w', { method: 'POST' });
        await writer.entered;
        now.advance(1000);
        const c1 = sessionCookie(await browser.get('/whoami'));
        assert.ok(c1 && c1.value !== c0);
        now.advance(31 * 1000);
        writer.release();
        const w = await slowWrite;
        assert.equal(w.status, 200, w.body);
        const line = sessionCookie(w);
        assert.ok(line && line.value !== c1.value && line.value !== c0, 'neither id is sent');
        assert.equal(line.attrs['max-age'], '0', 'the cookie is cleared');
        const check = await browser.request('/whoami', { cookie: `${name}=${c1.value}` });
        assert.deepEqual(check.json(), { user: 'ada', keys: null, slow: null }, 'the late write is not in the renewed session');
      } finally {
        await close();
      }
    });

    it('after a logout of the renewed session: the slow write is dropped, nothing comes back', async () => {
      const { now, g, browser, name, c0, close } = await loggedIn();
      try {
        const writer = g.hold('w');
        const slowWrite = browser.request('/slow/w', { method: 'POST' });
        await writer.entered;
        now.advance(1000);
        const c1 = sessionCookie(await browser.get('/whoami'));
        assert.ok(c1 && c1.value !== c0);
        const logout = await browser.request('/logout', { method: 'POST', cookie: `${name}=${c1.value}` });
        assert.equal(logout.json().user, null);
        now.advance(5 * 1000);
        writer.release();
        const w = await slowWrite;
        assert.equal(sessionCookie(w).attrs['max-age'], '0', 'dropped: the cookie is cleared');
        for (const c of [c0, c1.value]) {
          const r = await browser.request('/whoami', { cookie: `${name}=${c}` });
          assert.deepEqual(r.json(), { user: null, keys: null, slow: null }, 'the logged-out session stays gone');
        }
      } finally {
        await close();
      }
    });
  });
}
