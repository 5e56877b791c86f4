'use strict';
// A real OstroJS app, built from @ostro/framework on npm (see support/ostro-app.js), with
// @ostro/session resolved to this repository and served on a loopback port. It checks what an
// app upgrading from 1.x relies on: the docs' routes, flash through redirect.to().with(), the
// framework's CSRF check, a custom driver registered in a service provider, session:table +
// migrate + the database driver, and sessions minted by 1.x loading after the upgrade.
//
// The first run on a machine installs the framework and sqlite3 (about two minutes, most of it
// building sqlite3, which the framework's SQLite connections use); later runs reuse the install.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const crypto = require('node:crypto');
const { createRequire } = require('node:module');
const { ensureInstall, makeApp, newAppKey, startApp, assistant, Browser, idOfCookie, run, REPO } = require('./support/ostro-app');

const ALNUM_ID = /^[A-Za-z0-9]{40}$/;
const OSTRO_TOKEN = /^[A-Za-z0-9]{30}-[A-Za-z0-9_-]{27}$/;
const COOKIE = 'ostro_session';

let install;
const dirs = [];

function newApp() {
  const dir = makeApp(install);
  dirs.push(dir);
  return dir;
}

function sessionIdOf(browser) {
  const v = browser.jar.get(COOKIE);
  return v === undefined ? null : idOfCookie(v);
}

function sessionFile(dir, id) {
  return path.join(dir, 'storage', 'framework', 'sessions', id);
}

/** Runs SQL on the app's SQLite database with the sqlite3 package the app itself uses. */
function query(dir, sql, params = []) {
  const sqlite3 = createRequire(path.join(install.nodeModules, 'x.js'))('sqlite3');
  return new Promise((resolve, reject) => {
    const db = new sqlite3.Database(path.join(dir, 'database', 'database.sqlite'), sqlite3.OPEN_READONLY, (err) => {
      if (err) return reject(err);
      db.all(sql, params, (e, rows) => {
        db.close();
        if (e) reject(e);
        else resolve(rows);
      });
    });
  });
}

/** Starts the app and stops it when the enclosing describe ends. */
function serve(getDir, env) {
  const state = { app: null, b: null };
  before(async () => {
    state.app = await startApp(getDir(), env());
  });
  after(async () => {
    if (state.app) await state.app.stop();
  });
  return state;
}

describe('a real OstroJS app with this package as @ostro/session', { timeout: 30 * 60 * 1000 }, () => {
  before(async () => {
    install = await ensureInstall();
  }, { timeout: 20 * 60 * 1000 });

  after(() => {
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  describe('file driver (the skeleton default)', () => {
    let dir;
    const key = newAppKey();
    before(() => {
      dir = newApp();
    });
    const s = serve(() => dir, () => ({ APP_KEY: key }));

    it('serves the docs cart route and push(\'user.teams\', ...)', async () => {
      const b = new Browser(s.app.base);
      assert.deepEqual((await b.get('/cart/add?item=apple')).json, { added: 'apple' });
      await b.get('/cart/add?item=pear');
      const cart = await b.get('/cart');
      assert.equal(cart.status, 200);
      assert.deepEqual(cart.json, { cartItem: 'pear', cartItems: ['apple', 'pear'] });
      assert.deepEqual((await b.get('/teams/add?team=red')).json, { teams: ['red'] });
      assert.deepEqual((await b.get('/teams/add?team=blue')).json, { teams: ['red', 'blue'] });
      const me = (await b.get('/whoami')).json;
      assert.deepEqual(me.user, { teams: ['red', 'blue'] });

      // Stored by the file driver under the cookie's id, as JSON.
      const id = sessionIdOf(b);
      assert.match(id, ALNUM_ID);
      assert.equal(me.id, id);
      const stored = JSON.parse(fs.readFileSync(sessionFile(dir, id), 'utf8'));
      assert.equal(stored.cartItem, 'pear');
      assert.deepEqual(stored.user, { teams: ['red', 'blue'] });

      // Another visitor has an empty cart.
      assert.deepEqual((await new Browser(s.app.base).get('/cart')).json, { cartItem: null, cartItems: [] });
    });

    it('flashes with redirect.to().with() for exactly the next request', async () => {
      const b = new Browser(s.app.base);
      const r = await b.get('/flash');
      assert.equal(r.status, 302);
      assert.equal(r.headers.get('location'), '/flashed');
      assert.deepEqual((await b.get('/flashed')).json, { status: 'Profile updated!' });
      assert.deepEqual((await b.get('/flashed')).json, { status: null });
    });

    it('flashes old input with redirect.to().withInput(), read back by request.old()', async () => {
      const b = new Browser(s.app.base);
      const { token } = (await b.get('/token')).json;
      const r = await b.post('/form', { _token: token, name: 'Ada' });
      assert.equal(r.status, 302);
      assert.deepEqual((await b.get('/old-input')).json, { name: 'Ada' });
      assert.deepEqual((await b.get('/old-input')).json, { name: null });
    });

    it('counts visits with increment()', async () => {
      const b = new Browser(s.app.base);
      for (const n of [1, 2, 3]) assert.deepEqual((await b.get('/visits')).json, { visits: n });
    });

    it('regenerates on login: a new id, the data kept, and the pre-login cookie never sees the login', async () => {
      const b = new Browser(s.app.base);
      await b.get('/cart/add?item=fig');
      const before = sessionIdOf(b);
      const preLogin = b.jar.get(COOKIE);
      const login = await b.get('/login?name=ada');
      const after = sessionIdOf(b);
      assert.match(after, ALNUM_ID);
      assert.notEqual(after, before);
      assert.equal(login.json.id, after);
      const me = (await b.get('/whoami')).json;
      assert.deepEqual(me.user, { name: 'ada' });
      assert.equal(me.all.cartItem, 'fig');

      // Whoever held (or planted) the old id is not logged in.
      const planted = new Browser(s.app.base);
      planted.jar.set(COOKIE, preLogin);
      assert.equal((await planted.get('/whoami')).json.user, null);
    });

    it('invalidates on logout: a new id, the data gone, the old id dead', async () => {
      const b = new Browser(s.app.base);
      await b.get('/cart/add?item=kiwi');
      await b.get('/login?name=bob');
      const loggedIn = sessionIdOf(b);
      const loggedInCookie = b.jar.get(COOKIE);
      assert.ok(fs.existsSync(sessionFile(dir, loggedIn)));
      const out = await b.get('/logout');
      const fresh = sessionIdOf(b);
      assert.notEqual(fresh, loggedIn);
      assert.equal(out.json.id, fresh);
      const me = (await b.get('/whoami')).json;
      assert.equal(me.user, null);
      assert.equal(me.all.cartItem, undefined);
      // Destroyed: gone, or the tombstone a destroy leaves for the lifetime (an empty file, issue 12).
      const loggedInFile = sessionFile(dir, loggedIn);
      assert.ok(!fs.existsSync(loggedInFile) || fs.statSync(loggedInFile).size === 0, 'the logged-in session file is destroyed');

      // Replaying the logged-in cookie gets a brand-new empty session (strict mode).
      const replay = new Browser(s.app.base);
      replay.jar.set(COOKIE, loggedInCookie);
      const again = (await replay.get('/whoami')).json;
      assert.equal(again.user, null);
      assert.notEqual(again.id, loggedIn);
    });

    it('passes a CSRF-protected POST carrying session.token() and refuses a wrong token', async () => {
      const b = new Browser(s.app.base);
      const { token } = (await b.get('/token')).json;
      assert.match(token, OSTRO_TOKEN, 'OstroJS-format token (csrf package)');
      // The framework's own check, independently: csrf().verify(app key, token).
      const csrf = createRequire(path.join(install.nodeModules, 'x.js'))('csrf');
      assert.equal(csrf().verify(key, token), true);
      // VerifyCsrfToken hands the same token to the browser as XSRF-TOKEN.
      assert.equal(b.jar.get('XSRF-TOKEN'), token);
      assert.ok(b.jar.has(COOKIE), 'the session cookie is kept next to the framework\'s cookie');

      const ok = await b.post('/profile', { _token: token, name: 'Ada' });
      assert.equal(ok.status, 200);
      assert.deepEqual(ok.json, { saved: 'Ada' });
      const viaHeader = await b.post('/profile', { name: 'Bea' }, { headers: { 'x-csrf-token': token } });
      assert.equal(viaHeader.status, 200);
      const wrong = await b.post('/profile', { _token: `${token.slice(0, -1)}${token.endsWith('A') ? 'B' : 'A'}`, name: 'Eve' });
      assert.equal(wrong.status, 403);
      const none = await b.post('/profile', { name: 'Eve' });
      assert.equal(none.status, 403);
    });

    it('gives routes request.session === session, an @ostro/contracts session that cannot be replaced', async () => {
      const b = new Browser(s.app.base);
      const me = (await b.get('/whoami')).json;
      assert.equal(me.same, true);
      assert.equal(me.contract, true);
      const r = (await b.get('/replace')).json;
      assert.equal(r.kept, true);
      assert.equal(r.deleted, false);
    });

    it('blocks the routes of a group that lists StartSession.block(): overlapping read-modify-writes keep every item', async () => {
      const b = new Browser(s.app.base);
      await b.get('/cart/add?item=seed');
      const items = ['a', 'b', 'c', 'd', 'e'];
      const rs = await Promise.all(items.map((i) => b.get(`/blocked/cart?item=${i}&ms=60`)));
      for (const r of rs) assert.equal(r.status, 200);
      // Each request saw the items of the ones before it: one at a time.
      assert.deepEqual(rs.map((r) => r.json.cart.length).sort(), [1, 2, 3, 4, 5]);
      const me = (await b.get('/whoami')).json;
      assert.deepEqual([...me.all.cart].sort(), items, 'a read-modify-write was lost');
    });

    it('binds session.store to the default driver\'s handler', async () => {
      const r = (await new Browser(s.app.base).get('/driver')).json;
      assert.equal(r.handler, 'FileSessionHandler');
    });
  });

  describe('a custom driver registered with this.$app.session.extend(\'mongo\', ...) in AppServiceProvider.boot()', () => {
    let dir;
    before(() => {
      dir = newApp();
    });
    const s = serve(() => dir, () => ({ APP_KEY: newAppKey(), SESSION_DRIVER: 'mongo' }));

    it('stores, regenerates and invalidates sessions through the custom handler', async () => {
      const b = new Browser(s.app.base);
      await b.get('/cart/add?item=plum');
      assert.deepEqual((await b.get('/cart')).json, { cartItem: 'plum', cartItems: ['plum'] });
      const id = sessionIdOf(b);
      let r = (await b.get('/driver')).json;
      assert.equal(r.handler, 'MongoSessionHandler');
      assert.ok(r.mongoIds.includes(id), 'the session is in the mongo collection');
      assert.deepEqual(fs.readdirSync(path.join(dir, 'storage', 'framework', 'sessions')), [], 'and not in files');

      await b.get('/login?name=cy');
      const afterLogin = sessionIdOf(b);
      await b.get('/logout');
      r = (await b.get('/driver')).json;
      assert.ok(!r.mongoIds.includes(afterLogin), 'invalidate destroyed the record in the custom driver');
      assert.ok(r.mongoIds.includes(sessionIdOf(b)));
      assert.equal((await b.get('/whoami')).json.user, null);
    });
  });

  describe('node assistant session:table, node assistant migrate, then the database driver (SQLite connection)', () => {
    let dir;
    const key = newAppKey();
    before(async () => {
      dir = newApp();
      const table = await assistant(dir, ['session:table'], { APP_KEY: key });
      assert.match(table.stdout, /Migration created successfully!/);
      const migrate = await assistant(dir, ['migrate'], { APP_KEY: key });
      assert.match(migrate.stdout, /Migrated:.*create_sessions_table/);
    });

    it('creates the sessions table of the migration', async () => {
      const files = fs.readdirSync(path.join(dir, 'database', 'migrations')).filter((f) => f.endsWith('.js'));
      assert.equal(files.length, 1);
      assert.match(files[0], /^\d{4}_\d{2}_\d{2}_\d{6}_create_sessions_table\.js$/);
      const cols = await query(dir, 'PRAGMA table_info(sessions)');
      const byName = Object.fromEntries(cols.map((c) => [c.name, c]));
      assert.deepEqual(Object.keys(byName).sort(), ['ip_address', 'last_activity', 'payload', 'sid', 'user_agent', 'user_id']);
      assert.equal(byName.sid.pk, 1);
      assert.equal(byName.ip_address.notnull, 0);
      assert.equal(byName.user_agent.notnull, 0);
      assert.equal(byName.payload.notnull, 0);
      assert.equal(byName.user_id.notnull, 0);
      assert.match(byName.last_activity.type, /int/i);
      const indexes = await query(dir, "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'sessions' AND sql IS NOT NULL");
      assert.ok(indexes.some((i) => /\(\s*[`"]?last_activity[`"]?\s*\)/.test(i.sql)), `last_activity is indexed: ${JSON.stringify(indexes)}`);
      // sessionsOf and "log out other devices" look sessions up by user_id.
      assert.ok(indexes.some((i) => /\(\s*[`"]?user_id[`"]?\s*\)/.test(i.sql)), `user_id is indexed: ${JSON.stringify(indexes)}`);
    });

    for (const viaBuilder of [false, true]) {
      const title = viaBuilder
        ? 'stores sessions in that table through the OstroJS query builder (query_builder: true)'
        : 'stores sessions in that table (the native sqlite driver over the app\'s database file)';
      it(title, async () => {
        const app = await startApp(dir, { APP_KEY: key, SESSION_DRIVER: 'database', SESSION_QUERY_BUILDER: String(viaBuilder) });
        try {
          const ua = `ostro-test/${viaBuilder ? 'builder' : 'native'}`;
          const b = new Browser(app.base, { 'user-agent': ua });
          await b.get('/cart/add?item=quince');
          assert.deepEqual((await b.get('/visits')).json, { visits: 1 });
          assert.deepEqual((await b.get('/visits')).json, { visits: 2 });
          assert.equal((await b.get('/driver')).json.handler, viaBuilder ? 'DatabaseSessionHandler' : 'SqliteSessionHandler');
          const id = sessionIdOf(b);
          const rows = await query(dir, 'SELECT * FROM sessions WHERE sid = ?', [id]);
          assert.equal(rows.length, 1);
          const row = rows[0];
          const payload = JSON.parse(row.payload);
          assert.equal(payload.cartItem, 'quince');
          assert.equal(payload.visits, 2);
          assert.equal(row.ip_address, '127.0.0.1');
          assert.equal(row.user_agent, ua);
          assert.ok(Math.abs(row.last_activity - Date.now() / 1000) < 120, `last_activity ${row.last_activity} is now`);
          assert.deepEqual(fs.readdirSync(path.join(dir, 'storage', 'framework', 'sessions')), [], 'no session files');

          // Flash through a redirect, and logout deleting the row.
          assert.equal((await b.get('/flash')).status, 302);
          assert.deepEqual((await b.get('/flashed')).json, { status: 'Profile updated!' });
          await b.get('/logout');
          // Destroyed: no row with a payload (a destroy leaves a tombstone row with an empty one, issue 12).
          assert.equal((await query(dir, "SELECT sid FROM sessions WHERE sid = ? AND payload <> ''", [id])).length, 0);
          assert.equal((await query(dir, 'SELECT sid FROM sessions WHERE sid = ?', [sessionIdOf(b)])).length, 1);
        } finally {
          await app.stop();
        }
      });
    }

    it('the query-builder handler passes the driver conformance suite on the app\'s own connection', { timeout: 5 * 60 * 1000 }, async () => {
      const { stdout } = await run(process.execPath, ['--test', path.join('tests', 'database-handler-conformance.js')], {
        cwd: dir,
        env: { PATH: process.env.PATH, HOME: process.env.HOME, APP_KEY: key },
        timeout: 4 * 60 * 1000,
      });
      assert.match(stdout, /# fail 0/);
      assert.match(stdout, /# pass [1-9]/);
    });
  });

  describe('npx ostro-session session:table', () => {
    it('writes the same migration as the assistant, and migrate runs it', async () => {
      const dir = newApp();
      const key = newAppKey();
      const bin = path.join(REPO, 'bin', 'ostro-session.js');
      const out = await run(process.execPath, [bin, 'session:table'], { cwd: dir });
      assert.match(out.stdout, /Migration created successfully/);
      const [file] = fs.readdirSync(path.join(dir, 'database', 'migrations')).filter((f) => f.endsWith('.js'));
      assert.match(file, /^\d{4}_\d{2}_\d{2}_\d{6}_create_sessions_table\.js$/);
      // A second run refuses rather than writing a duplicate class.
      await assert.rejects(run(process.execPath, [bin, 'session:table'], { cwd: dir }), /already exists/);

      // The assistant writes the same source.
      const other = newApp();
      await assistant(other, ['session:table'], { APP_KEY: key });
      const [otherFile] = fs.readdirSync(path.join(other, 'database', 'migrations')).filter((f) => f.endsWith('.js'));
      assert.equal(fs.readFileSync(path.join(dir, 'database', 'migrations', file), 'utf8'), fs.readFileSync(path.join(other, 'database', 'migrations', otherFile), 'utf8'));

      await assistant(dir, ['migrate'], { APP_KEY: key });
      const cols = await query(dir, 'PRAGMA table_info(sessions)');
      assert.equal(cols.length, 6);
    });
  });

  describe('upgrading from @ostro/session 1.x', () => {
    let dir;
    const key = newAppKey();
    const legacy = { browser: null, cookie: null, id: null, item: null, token: null, file: null };

    before(async () => {
      dir = newApp();
      // The same app served by the real 1.x package mints the sessions.
      const old = await startApp(dir, { APP_KEY: key, OSTRO_SESSION_PACKAGE: install.legacyDir });
      try {
        // 1.x ids are base64url: look for one with both '-' and '_' (about 1 in 4.5 has both).
        for (let i = 0; i < 80 && legacy.id === null; i++) {
          const b = new Browser(old.base);
          const item = `legacy-${i}`;
          const r = await b.get(`/cart/add?item=${item}`);
          assert.equal(r.status, 200, r.text);
          const id = sessionIdOf(b);
          if (id.includes('-') && id.includes('_')) Object.assign(legacy, { browser: b, id, item });
        }
        assert.ok(legacy.id, '1.x minted no id with both - and _ in 80 sessions');
        assert.equal((await legacy.browser.get('/teams/add?team=red')).status, 200);
        // A flash set just before the upgrade, shown just after it.
        assert.equal((await legacy.browser.get('/flash')).status, 302);
        legacy.token = legacy.browser.jar.get('XSRF-TOKEN');
        legacy.cookie = legacy.browser.jar.get(COOKIE);
      } finally {
        await old.stop();
      }
      legacy.file = sessionFile(dir, legacy.id);
      const stored = JSON.parse(fs.readFileSync(legacy.file, 'utf8'));
      assert.equal(stored.cartItem, legacy.item, 'the 1.x file payload');
      assert.ok(stored.__token && stored.__flash, '1.x keys');
    });

    const s = serve(() => dir, () => ({ APP_KEY: key }));

    it('loads a session minted by the real 1.x package (id with - and _) and moves it to a fresh id', async () => {
      const b = new Browser(s.app.base);
      b.jar.set(COOKIE, legacy.cookie);
      // The flash 1.x stored is shown once.
      const flashed = await b.get('/flashed');
      assert.deepEqual(flashed.json, { status: 'Profile updated!' });
      const newId = sessionIdOf(b);
      assert.match(newId, ALNUM_ID, 'saved under a fresh 40-alphanumeric id, with a new cookie');
      assert.notEqual(newId, legacy.id);
      assert.deepEqual((await b.get('/flashed')).json, { status: null });
      const me = (await b.get('/whoami')).json;
      assert.equal(me.id, newId);
      assert.equal(me.all.cartItem, legacy.item);
      assert.deepEqual(me.user, { teams: ['red'] });
      assert.equal(me.contract, true);

      // The CSRF token 1.x issued still passes, and token() returns it.
      assert.equal((await b.get('/token')).json.token, legacy.token);
      assert.equal((await b.post('/profile', { _token: legacy.token, name: 'Old' })).status, 200);

      // The 1.x record is left to expire, so a parallel request with the old cookie still lands.
      assert.ok(fs.existsSync(legacy.file));
      const parallel = new Browser(s.app.base);
      parallel.jar.set(COOKIE, legacy.cookie);
      const cart = (await parallel.get('/cart')).json;
      assert.equal(cart.cartItem, legacy.item);
    });

    it('loads a 1.x file payload under a cookie computed exactly as 1.x signs it', async () => {
      const id = 'Xy-9_ab-CD_ef0123-_456789abcdefGHIJKL_m'.padEnd(40, 'z');
      assert.match(id, /^[A-Za-z0-9_-]{40}$/);
      assert.ok(id.includes('-') && id.includes('_'));
      const csrf = createRequire(path.join(install.nodeModules, 'x.js'))('csrf');
      const token = csrf({ saltLength: 30 }).create(key);
      fs.writeFileSync(sessionFile(dir, id), JSON.stringify({
        __token: token,
        __flash: { __old: [], __new: [] },
        cartItem: 'legacy-pear',
        cartItems: ['legacy-pear'],
        user: { teams: ['red', 'blue'] },
        visits: 41,
      }));
      // cookie-signature's sign(), as 1.x's jar calls it: HMAC-SHA256 keyed with the literal key
      // string, base64 without padding; then cookie.serialize's encodeURIComponent.
      const sig = crypto.createHmac('sha256', key).update(id).digest('base64').replace(/=+$/, '');
      const b = new Browser(s.app.base);
      b.jar.set(COOKIE, encodeURIComponent(`s:${id}.${sig}`));
      assert.deepEqual((await b.get('/visits')).json, { visits: 42 });
      assert.match(sessionIdOf(b), ALNUM_ID);
      const me = (await b.get('/whoami')).json;
      assert.deepEqual(me.user, { teams: ['red', 'blue'] });
      assert.deepEqual((await b.get('/cart')).json, { cartItem: 'legacy-pear', cartItems: ['legacy-pear'] });
      assert.equal((await b.get('/token')).json.token, token);

      // The same cookie signed with another key is refused: a fresh, empty session.
      const forged = new Browser(s.app.base);
      const badSig = crypto.createHmac('sha256', newAppKey()).update(id).digest('base64').replace(/=+$/, '');
      forged.jar.set(COOKIE, encodeURIComponent(`s:${id}.${badSig}`));
      assert.deepEqual((await forged.get('/cart')).json, { cartItem: null, cartItems: [] });
    });
  });

  describe('an app without APP_KEY', () => {
    it('still runs node assistant key:generate, and a request gets a clear 500 instead of hanging', async () => {
      const dir = newApp();
      const env = path.join(dir, '.env');
      fs.writeFileSync(env, 'APP_NAME=Ostro\nAPP_KEY=\n');
      const gen = await assistant(dir, ['key:generate'], {});
      assert.match(gen.stdout, /Application key set successfully/);
      assert.match(fs.readFileSync(env, 'utf8'), /^APP_KEY=base64:[A-Za-z0-9+/]{43}=$/m);

      fs.writeFileSync(env, 'APP_NAME=Ostro\nAPP_KEY=\n');
      const app = await startApp(dir, {});
      try {
        const res = await fetch(`${app.base}/cart`, { signal: AbortSignal.timeout(10000) });
        assert.equal(res.status, 500);
        await res.text();
        assert.match(app.output(), /app key is missing/);
      } finally {
        await app.stop();
      }
    });
  });
});
