'use strict';
// Issue 10, the manager's items: a strict loadStore(cookieHeader) for WebSockets (createStore(id)
// adopts any id and is for trusted input only), unknown config keys refused while every key of
// OstroJS's config/session.js is accepted, errors at construction or start-up instead of on the
// first request, and the README's HTTP snippet logging the error it receives.
const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { SessionManager } = require('../lib/manager');
const OstroSessionManager = require('../lib/ostro/sessionManager');
const { ArraySessionHandler } = require('../lib/handlers');

const KEY = 'base64:' + Buffer.alloc(32, 3).toString('base64');
const OLD_KEY = 'an older app key that is long enough to use';

/** `ostro_session=<s:id.sig>` as the middleware (and 1.x) signs it. */
function cookieFor(id, key = KEY, name = 'ostro_session') {
  const sig = crypto.createHmac('sha256', key).update(id).digest('base64').replace(/=+$/, '');
  return `${name}=${encodeURIComponent(`s:${id}.${sig}`)}`;
}

async function savedSession(manager, data) {
  const store = manager.createStore();
  await store.start();
  store.put(data);
  await store.save();
  return store.getId();
}

test('loadStore(cookieHeader): a known signed id loads; an unknown signed id gets a fresh id and is never written', async () => {
  const manager = new SessionManager({ driver: 'array', key: KEY, previous_keys: [OLD_KEY] });
  const id = await savedSession(manager, { user: 'alice' });

  const known = await manager.loadStore(`theme=dark; ${cookieFor(id)}`);
  assert.equal(known.existed, true);
  assert.equal(known.store.getId(), id);
  assert.equal(known.store.get('user'), 'alice');
  assert.equal(known.store.isStarted(), true);
  // Signed with a previous key: still verifies, as in the middleware.
  assert.equal((await manager.loadStore(cookieFor(id, OLD_KEY))).store.get('user'), 'alice');

  // An attacker's id, correctly signed (say, a leaked key or a cookie from another app) but
  // unknown to the store: not adopted, so the victim's later writes are not under it.
  const chosen = 'A'.repeat(40);
  const fixation = await manager.loadStore(cookieFor(chosen));
  assert.equal(fixation.existed, false);
  assert.notEqual(fixation.store.getId(), chosen);
  fixation.store.put('user', 'victim');
  await fixation.store.save();
  assert.equal(await manager.driver().read(chosen), '');
  assert.match(await manager.driver().read(fixation.store.getId()), /victim/);

  // Unsigned, tampered, wrong-key, duplicate and absent cookies: fresh sessions too.
  const tampered = cookieFor(id).replace(/.$/, (c) => (c === 'A' ? 'B' : 'A'));
  for (const header of [`ostro_session=${id}`, tampered, cookieFor(id, 'some other key that is long enough!'), `${cookieFor(id)}; ${cookieFor(id)}`, '', undefined, null, 'other=1']) {
    const r = await manager.loadStore(header);
    assert.equal(r.existed, false, String(header));
    assert.notEqual(r.store.getId(), id);
    assert.equal(r.store.get('user'), null);
  }
  // An array of header lines is read as one header.
  assert.equal((await manager.loadStore(['theme=dark', cookieFor(id)])).existed, true);
  // A request object by mistake is refused, not read as "no cookie".
  await assert.rejects(manager.loadStore({ headers: { cookie: cookieFor(id) } }), (e) => e.code === 'ERR_SESSION_INVALID_OPTION' && /loadSession\(req\)/.test(e.message));
  await manager.close();
});

test('loadStore and loadSession share one rule: the same header gives the same outcome', async () => {
  const manager = new SessionManager({ driver: 'array', key: KEY });
  const id = await savedSession(manager, { n: 1 });
  for (const header of [cookieFor(id), cookieFor('B'.repeat(40)), `ostro_session=${id}`]) {
    const a = await manager.loadStore(header);
    const b = await manager.loadSession({ headers: { cookie: header }, socket: {} });
    assert.equal(a.existed, b.existed, header);
    assert.equal(a.store.getId() === id, b.store.getId() === id, header);
  }
  await manager.close();
});

test('createStore(id) is for trusted input: it adopts any valid id (documented, unchanged)', async () => {
  const manager = new SessionManager({ driver: 'array', key: KEY });
  const chosen = 'C'.repeat(40);
  const store = manager.createStore(chosen);
  await store.start();
  assert.equal(store.getId(), chosen);
  const readme = fs.readFileSync(path.join(__dirname, '..', 'README.md'), 'utf8');
  assert.match(readme, /createStore\(id\)`\s+is for trusted input only/);
  assert.match(readme, /loadStore\(/);
  const dts = fs.readFileSync(path.join(__dirname, '..', 'index.d.ts'), 'utf8');
  assert.match(dts, /loadStore\(cookieHeader/);
  assert.match(dts, /[Tt]rusted input only/);
  await manager.close();
});

test("every key of the OstroJS fixture app's config/session.js is accepted; a mistyped one is refused", () => {
  const file = path.join(__dirname, 'fixtures', 'ostro-app', 'config', 'session.js');
  const source = fs.readFileSync(file, 'utf8');
  // The config file calls OstroJS's env() and storage_path() globals: give it minimal ones.
  const mod = { exports: {} };
  new Function('module', 'env', 'storage_path', source)(mod, (k, d) => d, (p) => path.join('/tmp', p)); // eslint-disable-line no-new-func
  const config = mod.exports;
  assert.ok(Object.keys(config).length >= 18, 'the fixture has the whole skeleton config');
  const app = { config: { get: (k) => (k === 'session' ? config : (k === 'app.key' ? KEY : undefined)) }, make() {}, singleton() {} };
  const manager = new OstroSessionManager(app);
  assert.equal(manager.config.driver, 'file');
  // The same config object outside OstroJS (query_builder and native are the OstroJS manager's
  // own keys: they choose how an app's database connection is used).
  assert.equal(new OstroSessionManager({ ...config, key: KEY }).config.table, 'sessions');
  const { query_builder, native, ...generic } = config; // eslint-disable-line camelcase, no-unused-vars
  assert.equal(new SessionManager({ ...generic, key: KEY }).config.cookie, config.cookie);
  assert.throws(() => new SessionManager({ ...config, key: KEY }), (e) => e.code === 'ERR_SESSION_INVALID_OPTION' && /"query_builder"/.test(e.message));
  assert.throws(() => new OstroSessionManager({ ...config, key: KEY, expire_on_closed: true }), (e) => e.code === 'ERR_SESSION_INVALID_OPTION' && /"expire_on_closed"/.test(e.message));
  assert.throws(() => new OstroSessionManager({ ...config, key: KEY }, { application: app }), (e) => /"application"/.test(e.message));
});

test('outside OstroJS set-up mistakes fail before the first request; under OstroJS they wait for it', () => {
  assert.throws(() => new SessionManager({ driver: 'array' }), /app key is missing/);
  assert.throws(() => new SessionManager({ driver: 'array', key: 'short' }), /too short/);
  const typo = new SessionManager({ driver: 'redsi', key: KEY });
  assert.throws(() => typo.middleware(), (e) => e.code === 'ERR_SESSION_INVALID_OPTION' && /Driver \[redsi\] is not supported/.test(e.message) && /redis/.test(e.message));
  // extend() after construction, before middleware(): the documented way to add a driver.
  const custom = new SessionManager({ driver: 'mine', key: KEY });
  custom.extend('mine', () => ({ read: () => '', write() {}, destroy() {} }));
  assert.equal(typeof custom.middleware(), 'function');
  // Under OstroJS: no key yet (key:generate), a driver registered in a provider's boot().
  const app = {};
  const lazy = new SessionManager({ driver: 'later' }, { app });
  assert.equal(typeof lazy.middleware(), 'function');
  lazy.extend('later', () => ({ read: () => '', write() {}, destroy() {} }));
  assert.equal(typeof lazy.driver().read, 'function');
});

test("the README's HTTP snippet logs the error it receives, then answers 500", async () => {
  const readme = fs.readFileSync(path.join(__dirname, '..', 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## HTTP: the manager and the middleware'));
  const code = /```js\n([\s\S]*?)```/.exec(section)[1];
  const failure = Object.assign(new Error('the session store is down'), { code: 'ERR_SESSION_UNAVAILABLE' });
  // The snippet's own code, with a manager whose loads fail and a server that does not listen.
  class FailingManager extends SessionManager {
    createFileDriver() { return new ArraySessionHandler(1); } // nothing written into the checkout
    loadSession() { return Promise.reject(failure); }
  }
  let listener = null;
  const fakeRequire = (id) => {
    if (id === '@ostro/session') return { SessionManager: FailingManager };
    if (id === 'node:http') return { createServer: (fn) => { listener = fn; return { listen() {} }; } };
    throw new Error(`the snippet requires ${id}`);
  };
  const logged = [];
  const fakeConsole = { error: (...args) => logged.push(args), log() {} };
  const env = { APP_KEY: KEY };
  new Function('require', 'process', 'console', code)(fakeRequire, { env }, fakeConsole); // eslint-disable-line no-new-func
  assert.equal(typeof listener, 'function');
  const res = {
    statusCode: 200,
    body: null,
    headersSent: false,
    end(b) { this.body = b; },
    setHeader() {},
    getHeaderNames: () => [],
  };
  listener({ headers: {}, socket: {}, method: 'GET', url: '/' }, res);
  for (let i = 0; i < 20 && res.body === null; i++) await new Promise((r) => setImmediate(r));
  assert.equal(res.statusCode, 500);
  assert.ok(logged.some((args) => args.includes(failure)), `the snippet logged ${JSON.stringify(logged.map((a) => a.map(String)))}`);
});
