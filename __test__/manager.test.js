'use strict';
// SessionManager: config checks, lazy drivers, extend(), createStore(), keys, close().
const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { SessionManager, HttpStore } = require('../lib/manager');
const { Store, ArraySessionHandler, FileSessionHandler, SessionHandlerInterface } = require('..');
const { CookieSessionHandler } = require('../lib/drivers/cookie');
const { tmpDir } = require('./support/tmp');

const KEY = 'base64:dGhpcyBpcyBhIHRlc3Qga2V5IG9mIDMyIGJ5dGVzIQ==';

// The csrf package's check, written out independently of the addon.
function csrfValid(key, token) {
  const i = token.indexOf('-');
  if (i === -1) return false;
  const salt = token.slice(0, i);
  const hash = crypto.createHash('sha1').update(`${salt}-${key}`, 'ascii').digest('base64').replace(/\+/g, '-').replace(/\//g, '_').replace(/=/g, '');
  return token === `${salt}-${hash}`;
}

function invalidOption(key) {
  return (err) => {
    assert.equal(err.code, 'ERR_SESSION_INVALID_OPTION');
    assert.ok(err instanceof TypeError);
    assert.ok(err.message.includes(`"${key}"`), `the message names ${key}: ${err.message}`);
    return true;
  };
}

test('defaults are those of OstroJS config/session.js', () => {
  const c = new SessionManager({ key: KEY, key: KEY }).config;
  assert.equal(c.driver, 'file');
  assert.equal(c.lifetime, 120);
  assert.equal(c.expire_on_close, false);
  assert.equal(c.encrypt, false);
  assert.equal(c.files, 'storage/framework/sessions');
  assert.equal(c.connection, null);
  assert.equal(c.table, 'sessions');
  assert.equal(c.store, null);
  assert.deepEqual(c.lottery, [2, 100]);
  assert.equal(c.cookie, 'ostro_session');
  assert.equal(c.path, '/');
  assert.equal(c.domain, null);
  assert.equal(c.secure, false);
  assert.equal(c.http_only, true);
  assert.equal(c.same_site, 'lax');
  assert.equal(c.resave, false);
  assert.equal(c.saveUninitialized, true);
  assert.equal(c.signed, true);
  assert.equal(c.previous_url, true);
  assert.equal(c.trust_proxy, false);
  assert.ok(Object.isFrozen(c));
});

test('every key is type-checked at construction, and the error names the key', () => {
  const bad = {
    driver: 42,
    lifetime: 'soon',
    expire_on_close: 'sometimes',
    encrypt: 1,
    encrypt_migrate: 'maybe',
    files: '',
    connection: 42,
    table: 'sessions; drop table users',
    store: 5,
    lottery: [1],
    cookie: 'bad name;',
    path: 'no-slash',
    domain: 'a;b',
    secure: 'maybe',
    http_only: 'x',
    same_site: 'sometimes',
    resave: 'x',
    saveUninitialized: 1,
    previous_url: 'x',
    trust_proxy: 'x',
    key: 42,
    csrf: 'django',
    prefix: 7,
  };
  for (const [key, value] of Object.entries(bad)) {
    assert.throws(() => new SessionManager({ [key]: value }), invalidOption(key), key);
  }
  for (const lottery of [[1, 0], ['a', 2], [-1, 100], [1, 2, 3], 'x']) {
    assert.throws(() => new SessionManager({ key: KEY, lottery }), invalidOption('lottery'));
  }
  for (const lifetime of [0, -5, Infinity, '']) {
    assert.throws(() => new SessionManager({ key: KEY, lifetime }), invalidOption('lifetime'));
  }
  assert.throws(() => new SessionManager({ previous_keys: [1] }), invalidOption('previous_keys'));
  assert.throws(() => new SessionManager('file'), /config object/);
});

test("numeric strings and env()'s 'true'/'false' are accepted", () => {
  const c = new SessionManager({ key: KEY, lifetime: '90', secure: 'true', http_only: 'false', lottery: ['1', '50'] }).config;
  assert.equal(c.lifetime, 90);
  assert.equal(c.secure, true);
  assert.equal(c.http_only, false);
  assert.deepEqual(c.lottery, [1, 50]);
  assert.equal(new SessionManager({ key: KEY, same_site: 'STRICT' }).config.same_site, 'strict');
  assert.equal(new SessionManager({ key: KEY, same_site: null }).config.same_site, null);
  assert.equal(new SessionManager({ key: KEY, lifetime: 0.5 }).config.lifetime, 0.5);
  const env = new SessionManager({ key: KEY, encrypt: '1', secure: '', http_only: '0', resave: 'FALSE' }).config;
  assert.deepEqual([env.encrypt, env.secure, env.http_only, env.resave], [true, false, false, false]);
  // OstroJS names the cookie after APP_NAME: 'My Shop' gives 'my shop_session', which 1.x sent.
  assert.equal(new SessionManager({ key: KEY, cookie: 'my shop_session' }).config.cookie, 'my shop_session');
  for (const cookie of ['a;b', 'a=b', ' lead', 'trail ', 'tab\there', 'é']) {
    assert.throws(() => new SessionManager({ key: KEY, cookie }), invalidOption('cookie'), cookie);
  }
});

test('minReplicas: a whole number of replicas from 0 to 100 (numeric strings too), for the redis driver only', () => {
  assert.equal(new SessionManager({ key: KEY, driver: 'redis', minReplicas: '2' }).config.minReplicas, 2);
  assert.equal(new SessionManager({ key: KEY, driver: 'file' }).config.minReplicas, 0);
  // 0 (an env default) is fine on any driver.
  assert.equal(new SessionManager({ key: KEY, driver: 'file', minReplicas: 0 }).config.minReplicas, 0);
  for (const bad of [-1, 101, 1.5, 'two', true]) {
    assert.throws(() => new SessionManager({ key: KEY, driver: 'redis', minReplicas: bad }), (e) => e.code === 'ERR_SESSION_INVALID_OPTION' && /"minReplicas" must be a whole number of replicas from 0 to 100/.test(e.message), String(bad));
  }
  assert.throws(() => new SessionManager({ key: KEY, driver: 'sqlite', minReplicas: 1 }), (e) => e.code === 'ERR_SESSION_INVALID_OPTION' && /redis driver only.*\[sqlite\]/.test(e.message));
  // It reaches the driver: the handler's own check sees it.
  const m = new SessionManager({ key: KEY, driver: 'redis', connection: 'redis://127.0.0.1:1', minReplicas: 1 });
  assert.equal(m.driver().constructor.name, 'RedisSessionHandler');
});

test('signed: false is refused with an explanation', () => {
  assert.throws(() => new SessionManager({ key: KEY, signed: false }), (e) => e.code === 'ERR_SESSION_INVALID_OPTION' && /always signed/.test(e.message) && /fixation/.test(e.message));
  assert.equal(new SessionManager({ key: KEY, signed: true }).config.signed, true);
});

test('drivers resolve lazily: an unknown driver fails when first used (at the latest middleware()), and extend() after construction works', () => {
  const m = new SessionManager({ key: KEY, driver: 'mongo' });
  const unknown = (e) => {
    assert.equal(e.code, 'ERR_SESSION_INVALID_OPTION');
    assert.match(e.message, /^Driver \[mongo\] is not supported\./);
    // The message lists what exists and how to add a driver.
    for (const d of ['file', 'array', 'memory', 'sqlite', 'redis', 'memcached', 'cookie', 'cache']) assert.match(e.message, new RegExp(`\\b${d}\\b`));
    assert.match(e.message, /extend\('mongo', factory\)/);
    return true;
  };
  assert.throws(() => m.driver(), unknown);
  // Mounting the middleware resolves the driver: the mistake shows at start-up, not on a request.
  assert.throws(() => m.middleware(), unknown);
  const calls = [];
  const handler = { read: () => '', write() {}, destroy() {} };
  m.extend('mongo', (...args) => {
    calls.push(args);
    return handler;
  });
  assert.equal(m.driver(), handler);
  assert.equal(m.driver('mongo'), handler, 'shared by every request');
  assert.equal(calls.length, 1);
  const [app, name, config] = calls[0];
  assert.equal(app, null, 'the app is null outside OstroJS');
  assert.equal(name, 'mongo');
  assert.equal(config.driver, 'mongo');
  const app2 = { marker: 1 };
  const m2 = new SessionManager({ key: KEY, driver: 'mongo' }, { app: app2 });
  let seen;
  m2.extend('mongo', (a) => {
    seen = a;
    return handler;
  });
  m2.driver();
  assert.equal(seen, app2);
});

test('extend() refuses bad arguments and factories that return bad handlers', () => {
  const m = new SessionManager({ key: KEY, key: KEY });
  assert.throws(() => m.extend('', () => ({})), /driver name/);
  assert.throws(() => m.extend('x', 'nope'), /factory/);
  m.extend('half', () => ({ read() {} }));
  assert.throws(() => m.driver('half'), (e) => e.code === 'ERR_SESSION_INVALID_OPTION' && /write\(\)/.test(e.message) && /destroy\(\)/.test(e.message));
  m.extend('async', async () => ({ read() {}, write() {}, destroy() {} }));
  assert.throws(() => m.driver('async'), /returned a Promise/);
  assert.throws(() => m.driver('nope.sub'), /Driver \[nope\.sub\] is not supported\./);
});

test('built-in driver names: file, array, memory, cookie, sqlite, cache with a store and cache.<store>', () => {
  const dir = tmpDir();
  const m = new SessionManager({ driver: 'file', files: dir, key: KEY }, {
    cache: { default: 'mem', stores: { files: { driver: 'file', path: path.join(dir, 'cache') }, mem: { driver: 'memory' }, dyn: { driver: 'dynamodb' } } },
  });
  assert.ok(m.driver() instanceof FileSessionHandler);
  assert.ok(m.driver('array') instanceof ArraySessionHandler);
  assert.ok(m.driver('memory') instanceof ArraySessionHandler);
  assert.notEqual(m.driver('array'), m.driver('memory'));
  assert.ok(m.driver('cookie') instanceof CookieSessionHandler);
  assert.ok(m.driver('cache.files') instanceof FileSessionHandler);
  assert.ok(m.driver('cache.mem') instanceof ArraySessionHandler);
  assert.ok(m.driver('cache') instanceof ArraySessionHandler, 'the default cache store');
  assert.throws(() => m.driver('cache.nope'), /cache store \[nope\] is not in the cache config/);
  assert.throws(() => m.driver('cache.dyn'), /driver \[dynamodb\], which sessions cannot use/);
  const withStore = new SessionManager({ key: KEY, driver: 'cache', store: 'files' }, { cache: { stores: { files: { driver: 'file', path: path.join(dir, 'c2') } } } });
  assert.ok(withStore.driver() instanceof FileSessionHandler);
  assert.throws(() => new SessionManager({ key: KEY, driver: 'cache' }).driver(), /needs a store/);
  // Outside OstroJS the database driver needs a database URL (the native driver); a file path or
  // nothing at all is refused with directions.
  assert.throws(() => new SessionManager({ key: KEY, driver: 'database' }).driver(), /needs "connection" set to a postgres:\/\/, postgresql:\/\/, mysql:\/\/ or mariadb:\/\/ URL/);
  assert.throws(() => new SessionManager({ key: KEY, driver: 'database', connection: 'storage/s.sqlite' }).driver(), (e) => e.code === 'ERR_SESSION_INVALID_OPTION' && /driver "sqlite"/.test(e.message));
});

test('the sqlite driver stores sessions in the configured file and table', async (t) => {
  const db = path.join(tmpDir(), 'sessions.sqlite');
  const m = new SessionManager({ key: KEY, driver: 'sqlite', connection: db, table: 'web_sessions', lifetime: 5 });
  t.after(() => m.close());
  const { SqliteSessionHandler } = require('../lib/drivers/sqlite');
  assert.ok(m.driver() instanceof SqliteSessionHandler);
  const s = m.createStore();
  await s.start();
  s.put('cart', ['pear']);
  await s.save();
  const again = m.createStore(s.getId());
  await again.start();
  assert.deepEqual(again.get('cart'), ['pear']);
  assert.ok(fs.existsSync(db));
});

test('the file driver resolves a relative files path against the working directory', async () => {
  const cwd = process.cwd();
  const dir = tmpDir();
  process.chdir(dir);
  try {
    const m = new SessionManager({ key: KEY, driver: 'file' });
    const s = m.createStore();
    await s.start();
    s.put('a', 1);
    await s.save();
    assert.ok(fs.existsSync(path.join(dir, 'storage', 'framework', 'sessions', s.getId())));
  } finally {
    process.chdir(cwd);
  }
});

test('createStore(): a new, unstarted Store per call, with the cookie name; usable outside HTTP', async () => {
  const m = new SessionManager({ key: KEY, driver: 'array', cookie: 'shop_session' });
  const a = m.createStore();
  const b = m.createStore();
  assert.notEqual(a, b);
  assert.ok(a instanceof Store && a instanceof HttpStore);
  assert.equal(a.isStarted(), false);
  assert.equal(a.getName(), 'shop_session');
  assert.equal(a.getHandler(), m.driver());
  assert.notEqual(a.getId(), b.getId());
  await a.start();
  a.put('ws', 'hello');
  await a.save();
  const again = m.createStore(a.getId());
  await again.start();
  assert.equal(again.get('ws'), 'hello');
  assert.equal(m.createStore('../bad').getId().length, 40);
});

test("tokens: 40 alphanumerics by default, the csrf package's format with csrf: 'ostro' or under OstroJS", async () => {
  const plain = new SessionManager({ key: KEY, driver: 'array' }).createStore();
  await plain.start();
  assert.match(plain.token(), /^[A-Za-z0-9]{40}$/);

  const ostro = new SessionManager({ driver: 'array', key: KEY, csrf: 'ostro' }).createStore();
  await ostro.start();
  const token = ostro.token();
  assert.match(token, /^[A-Za-z0-9]{30}-[A-Za-z0-9_-]{27}$/);
  assert.ok(csrfValid(KEY, token), 'valid for the csrf package');
  assert.ok(!csrfValid('another key', token));
  const again = ostro.regenerateToken();
  assert.notEqual(again, token);
  assert.ok(csrfValid(KEY, again));

  const underApp = new SessionManager({ driver: 'array', key: 'short-key' }, { app: {} }).createStore();
  await underApp.start();
  assert.ok(csrfValid('short-key', underApp.token()), 'OstroJS mode by default under an app, short keys allowed');
  const laravel = new SessionManager({ driver: 'array', key: KEY, csrf: 'laravel' }, { app: {} }).createStore();
  await laravel.start();
  assert.match(laravel.token(), /^[A-Za-z0-9]{40}$/);
});

test('outside OstroJS the key is checked at construction: missing is one clear error, short is refused', () => {
  const missing = (e) => e.code === 'ERR_SESSION_INVALID_OPTION' && e instanceof TypeError && /app key is missing/.test(e.message) && /key:generate/.test(e.message);
  for (const driver of ['array', 'file', 'cookie', 'redis', 'mongo']) {
    assert.throws(() => new SessionManager({ driver }), missing, driver);
    assert.throws(() => new SessionManager({ driver, key: '' }), missing, driver);
    assert.throws(() => new SessionManager({ driver, key: null }), missing, driver);
  }
  assert.throws(() => new SessionManager({ driver: 'array', key: 'too-short-key' }), /too short \(13 characters\)/);
  assert.throws(() => new SessionManager({ driver: 'array', key: 'x'.repeat(31) }), /too short \(31 characters\)/);
  assert.equal(new SessionManager({ driver: 'array', key: 'x'.repeat(32) }).driver().constructor.name, 'ArraySessionHandler');
});

test('under OstroJS the key stays lazy (key:generate runs on a fresh app): missing fails when first needed', async () => {
  const app = {};
  const noKey = new SessionManager({ driver: 'array', csrf: 'ostro' }, { app });
  assert.throws(() => noKey.createStore(), (e) => e.code === 'ERR_SESSION_INVALID_OPTION' && /app key is missing/.test(e.message) && /key:generate/.test(e.message));
  const lazy = new SessionManager({ driver: 'array', csrf: 'laravel' }, { app });
  await lazy.createStore().start();
  assert.throws(() => lazy.signedCookieValue('x'.repeat(40)), /app key is missing/);
  // OstroJS apps' keys are theirs to choose: a short one is not refused there.
  assert.equal(typeof new SessionManager({ driver: 'array', key: 'short' }, { app }).signedCookieValue('x'.repeat(40)), 'string');
  const encrypting = new SessionManager({ driver: 'array', encrypt: true, key: '' }, { app });
  assert.throws(() => encrypting.createStore(), /app key is missing/);
  assert.throws(() => new SessionManager({ driver: 'cookie' }, { app }).driver(), /app key is missing/);
});

test('unknown config keys and options are refused, naming the key; every key of OstroJS config/session.js is accepted', () => {
  for (const key of ['lifeTime', 'conection', 'whatever', 'serialization', 'partitioned', 'query_builder', 'cluster']) {
    assert.throws(() => new SessionManager({ key: KEY, driver: 'array', [key]: 1 }), (e) => {
      assert.equal(e.code, 'ERR_SESSION_INVALID_OPTION');
      assert.ok(e instanceof TypeError);
      assert.match(e.message, new RegExp(`unknown option "${key}"`));
      assert.match(e.message, /session config/);
      return true;
    }, key);
  }
  for (const key of ['logger ', 'store', 'apps', 'timeout']) {
    assert.throws(() => new SessionManager({ key: KEY }, { [key]: 1 }), (e) => e.code === 'ERR_SESSION_INVALID_OPTION' && e.message.includes(`unknown option "${key}"`) && /SessionManager options/.test(e.message), key);
  }
  // The skeleton's config/session.js, as env() hands it over (strings, nulls), plus the keys
  // this package adds.
  const skeleton = {
    driver: 'file', lifetime: '120', expire_on_close: false, encrypt: false, signed: true, files: tmpDir(),
    connection: null, table: 'sessions', store: null, lottery: [2, 100], cookie: 'ostro_session', path: '/',
    domain: null, secure: false, http_only: true, same_site: 'lax', resave: false, saveUninitialized: true,
    key: KEY, previous_keys: '', encrypt_migrate: false, prefix: null, previous_url: true, trust_proxy: false, csrf: null,
  };
  assert.equal(new SessionManager(skeleton, { app: null, logger: console, storeClass: HttpStore, cache: null, timeoutMs: 1000 }).config.driver, 'file');
});

test('encrypt: createStore() seals what the driver stores', async () => {
  const m = new SessionManager({ driver: 'array', key: KEY, encrypt: true });
  const s = m.createStore();
  await s.start();
  s.put('secret', 'swordfish');
  await s.save();
  const raw = await m.driver().read(s.getId());
  assert.match(raw, /^v1\./);
  assert.ok(!raw.includes('swordfish'));
  const again = m.createStore(s.getId());
  await again.start();
  assert.equal(again.get('secret'), 'swordfish');
});

test('encrypt also seals what a custom JS driver stores', async () => {
  const map = new Map();
  const m = new SessionManager({ driver: 'map', key: KEY, encrypt: true });
  m.extend('map', () => ({ read: (id) => map.get(id), write: (id, data) => { map.set(id, data); }, destroy: (id) => { map.delete(id); } }));
  const s = m.createStore();
  await s.start();
  s.put('secret', 'swordfish');
  await s.save();
  assert.match(map.get(s.getId()), /^v1\./);
  assert.ok(!map.get(s.getId()).includes('swordfish'));
  const again = m.createStore(s.getId());
  await again.start();
  assert.equal(again.get('secret'), 'swordfish');
  map.set(s.getId(), JSON.stringify({ secret: 'planted' }));
  const planted = m.createStore(s.getId());
  await planted.start();
  assert.equal(planted.get('secret'), null, 'plaintext is not trusted');
});

test('loadSession() gives code outside the middleware (a WebSocket upgrade) the request\'s session', async () => {
  const m = new SessionManager({ driver: 'array', key: KEY });
  const s = m.createStore();
  await s.start();
  s.put('user', 'ada');
  await s.save();
  const signed = encodeURIComponent(`s:${s.getId()}.${crypto.createHmac('sha256', KEY).update(s.getId()).digest('base64').replace(/=+$/, '')}`);
  const req = { headers: { cookie: `a=b; ostro_session=${signed}` }, socket: { remoteAddress: '127.0.0.1' } };
  const { store, existed } = await m.loadSession(req);
  assert.equal(existed, true);
  assert.equal(store.get('user'), 'ada');
  assert.equal(store.getId(), s.getId());
  const none = await m.loadSession({ headers: {}, socket: {} });
  assert.equal(none.existed, false);
  assert.equal(none.store.get('user'), null);
  assert.ok(none.store.isStarted());
});

test('the cookie driver gives each Store its own request handler; the shared one stores nothing', async () => {
  const m = new SessionManager({ driver: 'cookie', key: KEY });
  const shared = m.driver();
  const a = m.createStore();
  const b = m.createStore();
  assert.notEqual(a.getHandler(), b.getHandler());
  assert.notEqual(a.getHandler(), shared);
  await a.start();
  a.put('x', 1);
  await a.save();
  const value = a.getHandler().outgoing();
  assert.match(value, /^v1\./);
  const c = m.createStore(null, { cookie: value });
  assert.equal(c.getId(), a.getId());
  await c.start();
  assert.equal(c.get('x'), 1);
  assert.equal(await shared.read(a.getId()), '');
  await assert.rejects(shared.write(a.getId(), '{}'), /its response cookie/);
});

test('the cookie driver: save() fails with ERR_SESSION_TOO_LARGE past 4096 bytes; the expiry is sealed inside', async () => {
  let now = Date.UTC(2030, 0, 1);
  const handler = new CookieSessionHandler({ name: 'ostro_session', keys: [KEY], minutes: 1, now: () => now });
  const m = new SessionManager({ driver: 'mine', key: KEY });
  m.extend('mine', () => handler);
  const s = m.createStore();
  await s.start();
  s.put('blob', 'z'.repeat(5000));
  await assert.rejects(s.save(), (e) => e.code === 'ERR_SESSION_TOO_LARGE' && /4096/.test(e.message));
  assert.equal(s.getHandler().outgoing(), null, 'nothing to send');
  const small = m.createStore();
  await small.start();
  small.put('a', 1);
  await small.save();
  const v = small.getHandler().outgoing();
  now += 60000;
  assert.equal(handler.forRequest(v).incomingId(), small.getId(), 'alive at exactly the lifetime');
  now += 1;
  assert.equal(handler.forRequest(v).incomingId(), null, 'dead after it');
});

test('close() closes every driver the manager created, once', async () => {
  let closed = 0;
  class Closable extends SessionHandlerInterface {
    read() { return ''; }
    write() {}
    destroy() {}
    close() { closed++; }
  }
  const m = new SessionManager({ key: KEY, driver: 'c', files: tmpDir() });
  m.extend('c', () => new Closable());
  m.driver();
  m.driver('array');
  m.driver('file');
  await m.close();
  assert.equal(closed, 1);
  await m.close();
  assert.equal(closed, 1, 'nothing left to close');
  // A failing close is reported after the others were closed.
  const m2 = new SessionManager({ key: KEY, driver: 'bad' });
  m2.extend('bad', () => ({ read() {}, write() {}, destroy() {}, close: () => Promise.reject(new Error('close failed')) }));
  m2.extend('good', () => new Closable());
  m2.driver();
  m2.driver('good');
  await assert.rejects(m2.close(), /close failed/);
  assert.equal(closed, 2);
});

test('setDefaultDriver() switches the driver of later Stores; storeClass must extend HttpStore', () => {
  const m = new SessionManager({ key: KEY, driver: 'array', files: tmpDir() });
  assert.ok(m.createStore().getHandler() instanceof ArraySessionHandler);
  m.setDefaultDriver('file');
  assert.equal(m.getDefaultDriver(), 'file');
  assert.ok(m.createStore().getHandler() instanceof FileSessionHandler);
  class Mine extends HttpStore {}
  assert.ok(new SessionManager({ key: KEY, driver: 'array' }, { storeClass: Mine }).createStore() instanceof Mine);
  assert.throws(() => new SessionManager({ key: KEY }, { storeClass: class {} }), /must extend HttpStore/);
});
