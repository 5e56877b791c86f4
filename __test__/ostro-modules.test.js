'use strict';
// The OstroJS module paths without the framework: they load outside an OstroJS app, resolve
// through the package's "exports", never throw where the framework cannot catch it, and turn an
// app's config (connections, cache stores) into the right drivers. The real framework is
// exercised in ostro-app.test.js.
const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync, spawnSync } = require('node:child_process');

const REPO = path.resolve(__dirname, '..');
const pkg = require('../package.json');

const tmp = (prefix) => fs.mkdtempSync(path.join(os.tmpdir(), prefix));

/** A minimal stand-in for OstroJS's container: singleton(), make(), config, paths. */
function fakeApp(config, extra = {}) {
  const bindings = new Map();
  const instances = new Map();
  let proxy = null;
  const app = {
    config: { get: (key) => key.split('.').reduce((v, k) => (v === undefined || v === null ? undefined : v[k]), config) },
    singleton(name, factory) {
      bindings.set(name, factory);
    },
    make(name) {
      if (!instances.has(name) && bindings.has(name)) instances.set(name, bindings.get(name)(proxy));
      return instances.get(name);
    },
    ...extra,
  };
  proxy = new Proxy(app, { get: (t, k) => (k in t ? t[k] : t.make(k)) });
  return proxy;
}

describe('package exports', () => {
  it('lists the OstroJS drop-in paths, ".", "./testing", "./fastify" and "./package.json", and each resolves by name', () => {
    const subpaths = ['.', './testing', './fastify', './package.json', './sessionServiceProvider', './middleware/startSession', './console/sessionTableCommand', './sessionManager'];
    assert.deepEqual(Object.keys(pkg.exports).sort(), subpaths.slice().sort());
    for (const sub of subpaths) {
      const id = sub === '.' ? '@ostro/session' : `@ostro/session/${sub.slice(2)}`;
      // Self-reference by package name goes through the "exports" map.
      assert.ok(require.resolve(id).startsWith(REPO), id);
    }
    assert.throws(() => require.resolve('@ostro/session/lib/store'), { code: 'ERR_PACKAGE_PATH_NOT_EXPORTED' });
    assert.equal(pkg.bin['ostro-session'], 'bin/ostro-session.js');
  });

  it('loads every OstroJS module outside an OstroJS app (no @ostro/* installed)', () => {
    const cwd = tmp('no-ostro-');
    fs.mkdirSync(path.join(cwd, 'node_modules', '@ostro'), { recursive: true });
    fs.symlinkSync(REPO, path.join(cwd, 'node_modules', '@ostro', 'session'), 'dir');
    const script = `
      const SP = require('@ostro/session/sessionServiceProvider');
      const SS = require('@ostro/session/middleware/startSession');
      const Cmd = require('@ostro/session/console/sessionTableCommand');
      const M = require('@ostro/session/sessionManager');
      const { SessionManager } = require('@ostro/session');
      if (!(new M({ driver: 'array', key: 'k'.repeat(32) }) instanceof SessionManager)) throw new Error('not a SessionManager');
      new SS(); new Cmd(undefined); new SP({});
      process.stdout.write('ok');`;
    const out = execFileSync(process.execPath, ['-e', script], { cwd });
    assert.equal(String(out), 'ok');
  });
});

describe('SessionServiceProvider', () => {
  const SessionServiceProvider = require('../lib/ostro/sessionServiceProvider');
  const OstroSessionManager = require('../lib/ostro/sessionManager');
  const { SessionManager } = require('../lib/manager');
  const { Store } = require('../lib/store');

  it('binds `session` to the manager built from config(session) and config(app.key), and `session.store` to the default handler', () => {
    const dir = tmp('provider-');
    const app = fakeApp({ app: { key: 'base64:' + 'k'.repeat(44) }, session: { driver: 'file', files: dir, lifetime: '30', cookie: 'shop_session' } });
    const provider = new SessionServiceProvider(app);
    provider.register();
    const manager = app.session;
    assert.ok(manager instanceof OstroSessionManager);
    assert.ok(manager instanceof SessionManager);
    assert.equal(manager.app, app);
    assert.equal(manager.config.lifetime, 30);
    assert.equal(manager.config.cookie, 'shop_session');
    assert.equal(manager.config.key, 'base64:' + 'k'.repeat(44));
    assert.equal(app.session, manager, 'a singleton');
    // Drivers resolve lazily: extend() after register() (a provider's boot()) still works.
    manager.extend('mongo', () => ({ read: () => '', write() {}, destroy() {} }));
    provider.boot();
    const handler = app['session.store'];
    assert.equal(handler.constructor.name, 'FileSessionHandler');
    assert.ok(!(handler instanceof Store), 'session.store is the handler, never a Store');
    assert.equal(handler, manager.driver());
  });

  it('config/session.js minReplicas (an env string) reaches the redis driver of a config/database.js connection', async () => {
    const { startRedis } = require('./support/servers');
    const redis = await startRedis();
    try {
      const app = fakeApp({
        app: { key: 'base64:' + 'k'.repeat(44) },
        database: { redis: { sessions: { url: redis.url } } },
        session: { driver: 'redis', connection: 'sessions', minReplicas: '1', lottery: [0, 100] },
      });
      new SessionServiceProvider(app).register();
      const manager = app.session;
      assert.equal(manager.config.minReplicas, 1);
      // A lone server has no replica to acknowledge the WAIT: the save says so.
      const store = manager.createStore();
      await store.start();
      store.put('a', 1);
      await assert.rejects(store.save(), (e) => e.code === 'ERR_SESSION_UNAVAILABLE' && /WAIT/.test(e.message) && /acknowledged by 0 of the 1 replica/.test(e.message));
      await manager.close();
    } finally {
      await redis.stop();
    }
  });

  it('does not need the key until a cookie must be signed (node assistant key:generate on a fresh app)', () => {
    const app = fakeApp({ app: { key: '' }, session: { driver: 'array' } });
    new SessionServiceProvider(app).register();
    assert.ok(app.session.driver());
    assert.throws(() => app.session.createStore(), /app key is missing/);
  });
});

describe('StartSession (middleware/startSession)', () => {
  const StartSession = require('../lib/ostro/middleware/startSession');

  it('never throws when constructed, and reports a missing manager to next()', () => {
    class Bare extends StartSession {}
    Bare.prototype.$app = fakeApp({});
    const mw = new Bare();
    let got = null;
    mw.handle({ request: {}, response: {}, next: (err) => { got = err; } });
    assert.match(got.message, /sessionServiceProvider/);
  });

  it('reports a manager that failed to build (a bad config) to next(), not at boot', () => {
    class Broken extends StartSession {}
    Broken.prototype.$app = { get session() { throw new TypeError('session config "lifetime" must be a positive number'); } };
    const mw = new Broken();
    let got = null;
    mw.handle({ request: {}, response: {}, next: (err) => { got = err; } });
    assert.match(got.message, /lifetime/);
  });

  it('hands the request to the manager\'s middleware with the context\'s next', () => {
    const calls = [];
    class Wired extends StartSession {}
    Wired.prototype.$app = { session: { middleware: () => (req, res, next) => calls.push([req, res, next]) } };
    const mw = new Wired();
    const ctx = { request: { r: 1 }, response: { s: 1 }, next: () => {} };
    mw.handle(ctx);
    mw.handle(ctx);
    assert.equal(calls.length, 2);
    assert.equal(calls[0][0], ctx.request);
    assert.equal(calls[0][2], ctx.next);
  });
});

describe('StartSession with block parameters (opt-in blocking, as Laravel\'s block())', () => {
  const http = require('node:http');
  const StartSession = require('../lib/ostro/middleware/startSession');
  const { SessionManager } = require('..');
  const { listen, Client, sessionCookie, idOf } = require('./support/http');
  const KEY = 'k'.repeat(40);
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  /** A node:http server running `Mw` as the OstroJS router does (one instance, handle per request). */
  async function serveWith(Mw, manager, params, log) {
    class Bound extends Mw {}
    Bound.prototype.$app = { session: manager };
    const mw = new Bound(...params);
    return listen(http.createServer((req, res) => {
      mw.handle({
        request: req,
        response: res,
        next: async (err) => {
          if (err) {
            res.statusCode = err.status || 500;
            res.end(`error:${err.code}`);
            return;
          }
          if (req.url === '/seed') {
            req.session.put('cart', []);
            res.end('ok');
            return;
          }
          const start = performance.now();
          const cart = req.session.get('cart', []);
          await sleep(40);
          cart.push(req.url.slice(1));
          req.session.put('cart', cart);
          log.push({ start, end: performance.now() });
          res.end(JSON.stringify(cart));
        },
      });
    }));
  }

  const overlapped = (log) => {
    const s = [...log].sort((x, y) => x.start - y.start);
    return s.some((e, i) => i > 0 && e.start < s[i - 1].end);
  };

  for (const [title, Mw, params] of [
    ["the router's string parameters ('session:10,10')", StartSession, ['10', '10']],
    ['StartSession.block(10, 10), for a middleware group', StartSession.block(10, 10), []],
  ]) {
    it(`${title}: one session's requests run one at a time and keep every read-modify-write`, async () => {
      const manager = new SessionManager({ driver: 'array', key: KEY, lottery: [0, 100] });
      const log = [];
      const server = await serveWith(Mw, manager, params, log);
      try {
        const client = new Client(server.url);
        await client.get('/seed');
        const items = ['a', 'b', 'c', 'd'];
        await Promise.all(items.map((i) => client.get(`/${i}`)));
        assert.equal(overlapped(log), false, 'two requests of one session overlapped');
        const last = await client.get('/e');
        assert.deepEqual(JSON.parse(last.body).sort(), [...items, 'e']);
      } finally {
        await server.close();
      }
    });
  }

  it('without parameters it does not block (requests overlap)', async () => {
    const manager = new SessionManager({ driver: 'array', key: KEY, lottery: [0, 100] });
    const log = [];
    const server = await serveWith(StartSession, manager, [], log);
    try {
      const client = new Client(server.url);
      await client.get('/seed');
      await Promise.all(['a', 'b', 'c'].map((i) => client.get(`/${i}`)));
      assert.equal(overlapped(log), true);
    } finally {
      await server.close();
    }
  });

  it('a waiter past waitSeconds gets ERR_SESSION_LOCKED (status 423) through next(err)', async () => {
    const manager = new SessionManager({ driver: 'array', key: KEY, lottery: [0, 100] });
    const server = await serveWith(StartSession, manager, ['10', '0.2'], []);
    try {
      const client = new Client(server.url);
      const id = idOf(sessionCookie(await client.get('/seed')));
      const token = await manager.driver().lock(id, 60000);
      const r = await client.get('/x');
      assert.equal(r.status, 423);
      assert.equal(r.body, 'error:ERR_SESSION_LOCKED');
      await manager.driver().unlock(id, token);
      assert.equal((await client.get('/y')).status, 200);
    } finally {
      await server.close();
    }
  });

  it('bad parameters and a driver that cannot lock reach each request as a coded error, never a throw at boot', () => {
    for (const [config, params, re] of [
      [{ driver: 'array' }, ['ten'], /lockSeconds parameter must be a number/],
      [{ driver: 'array' }, ['0'], /lockSeconds/],
      [{ driver: 'cookie' }, ['10'], /cookie driver/],
    ]) {
      class Bound extends StartSession {}
      Bound.prototype.$app = { session: new SessionManager({ ...config, key: KEY }) };
      const mw = new Bound(...params);
      let got = null;
      mw.handle({ request: {}, response: {}, next: (err) => { got = err; } });
      assert.equal(got && got.code, 'ERR_SESSION_INVALID_OPTION', String(params));
      assert.match(got.message, re);
    }
  });
});

describe('SessionTableCommand (console/sessionTableCommand)', () => {
  const SessionTableCommand = require('../lib/ostro/console/sessionTableCommand');

  it('has the session:table signature and a constructor that never throws', () => {
    const cmd = new SessionTableCommand(undefined);
    assert.equal(cmd.$signature, 'session:table');
    assert.match(cmd.$description, /session/);
  });

  it('writes the migration with the configured table when the app has no migration creator', async () => {
    const dir = tmp('cmd-');
    const cmd = new SessionTableCommand({});
    cmd.setApp({ databasePath: (p) => path.join(dir, 'database', p), config: { get: (k) => (k === 'session.table' ? 'web_sessions' : undefined) } });
    cmd.info = () => {};
    const file = await cmd.handle();
    assert.match(path.basename(file), /^\d{4}_\d{2}_\d{2}_\d{6}_create_sessions_table\.js$/);
    const src = fs.readFileSync(file, 'utf8');
    assert.match(src, /Schema\.create\('web_sessions'/);
    assert.match(src, /\$table\.string\('sid'\)\.primary\(\)/);
    assert.match(src, /\$table\.string\('ip_address', 45\)\.nullable\(\)/);
    assert.match(src, /\$table\.text\('user_agent'\)\.nullable\(\)/);
    assert.match(src, /\$table\.text\('payload'\)\.nullable\(\)/);
    assert.match(src, /\$table\.integer\('last_activity'\)\.index\(\)/);
    assert.match(src, /\$table\.string\('user_id'\)\.nullable\(\)\.index\(\)/);
    assert.match(src, /dropIfExists\('web_sessions'\)/);
  });

  it('uses the framework\'s migration creator and filesystem when the app has them', async () => {
    const written = new Map();
    const cmd = new SessionTableCommand({ put: async (f, s) => written.set(f, s) });
    cmd.setApp({
      databasePath: (p) => `/app/database/${p}`,
      'migration.creator': { create: async (name, dir) => `${dir}/2024_01_02_030405_${name}.js` },
      config: { get: () => undefined },
    });
    cmd.info = () => {};
    const file = await cmd.handle();
    assert.equal(file, '/app/database/migrations/2024_01_02_030405_create_sessions_table.js');
    assert.match(written.get(file), /Schema\.create\('sessions'/);
  });
});

describe('OstroSessionManager: the app\'s connections and cache stores', () => {
  const OstroSessionManager = require('../lib/ostro/sessionManager');
  const { DatabaseSessionHandler } = OstroSessionManager;

  const databaseConfig = (dir) => ({
    default: 'sqlite',
    connections: {
      sqlite: { driver: 'sqlite', database: path.join(dir, 'app.sqlite') },
      other: { driver: 'sqlite', database: path.join(dir, 'other.sqlite') },
      mysql: { driver: 'mysql', host: '127.0.0.1' },
      queue: { driver: 'redis', host: 'r2', port: '6380' },
    },
    redis: { sessions: { host: 'redis.internal', port: '6390', password: 'null', username: 'u', database: '2' } },
  });

  function manager(session, dir, extra = {}) {
    const app = fakeApp({ app: { key: 'k'.repeat(40) }, session, database: databaseConfig(dir), cache: extra.cache }, extra.app);
    return new OstroSessionManager(app);
  }

  it('takes the app as 1.x did (new SessionManager(app)) and reads config(session)', () => {
    const m = manager({ driver: 'array', lifetime: 5 }, tmp('m-'));
    assert.equal(m.config.lifetime, 5);
    assert.equal(m.driver().constructor.name, 'ArraySessionHandler');
  });

  it('database on a SQLite connection is the native sqlite driver over that database file', async () => {
    const dir = tmp('db-');
    const m = manager({ driver: 'database' }, dir);
    const h = m.driver();
    assert.equal(h.constructor.name, 'SqliteSessionHandler');
    await h.write('a'.repeat(40), '{"x":1}');
    assert.ok(fs.existsSync(path.join(dir, 'app.sqlite')));
    await m.close();
  });

  it('database with connection naming another SQLite connection uses that file', async () => {
    const dir = tmp('db-');
    const m = manager({ driver: 'database', connection: 'other' }, dir);
    await m.driver().write('b'.repeat(40), '{"x":1}');
    assert.ok(fs.existsSync(path.join(dir, 'other.sqlite')));
    await m.close();
  });

  it('database on a non-SQLite connection, or with query_builder, goes through the query builder', async () => {
    const dir = tmp('db-');
    const seen = [];
    const db = { connection: (name) => { seen.push(name); return { table: () => { throw new Error('no database here'); } }; } };
    const m = manager({ driver: 'database', connection: 'mysql' }, dir, { app: { db } });
    const h = m.driver();
    assert.ok(h instanceof DatabaseSessionHandler);
    await assert.rejects(h.read('c'.repeat(40)), /no database here/);
    assert.deepEqual(seen, ['mysql']);

    const forced = manager({ driver: 'database', query_builder: 'true' }, dir, { app: { db } });
    assert.ok(forced.driver() instanceof DatabaseSessionHandler);
  });

  it('an unknown connection name is a clear error', () => {
    const m = manager({ driver: 'database', connection: 'nope' }, tmp('db-'));
    assert.throws(() => m.driver(), /session connection \[nope\] is not in the app's database connections/);
  });

  it('sqlite with a connection name uses that connection\'s file; a non-sqlite one is refused', async () => {
    const dir = tmp('db-');
    const m = manager({ driver: 'sqlite', connection: 'other' }, dir);
    await m.driver().write('d'.repeat(40), '{}');
    assert.ok(fs.existsSync(path.join(dir, 'other.sqlite')));
    await m.close();
    assert.throws(() => manager({ driver: 'sqlite', connection: 'mysql' }, dir).driver(), /is a mysql connection/);
  });

  it('translates redis connection names and cache-store servers for the redis and memcached drivers', () => {
    const m = manager({ driver: 'array' }, tmp('r-'));
    assert.deepEqual(m.resolveConnection('redis', 'sessions'), { host: 'redis.internal', port: 6390, username: 'u', db: 2 });
    assert.deepEqual(m.resolveConnection('redis', 'queue'), { host: 'r2', port: 6380 });
    assert.equal(m.resolveConnection('redis', 'redis://127.0.0.1:7000'), 'redis://127.0.0.1:7000');
    assert.deepEqual(m.resolveConnection('redis', { host: 'h', port: '13002', password: null, user: 'me' }), { host: 'h', port: 13002, username: 'me' });
    assert.equal(m.resolveConnection('memcached', { host: '10.0.0.5', port: 11311, weight: 100 }), '10.0.0.5:11311');
    assert.deepEqual(m.resolveConnection('memcached', [{ host: 'a', port: 1 }, 'b:2']), ['a:1', 'b:2']);
  });

  it('Redis Cluster and Sentinel configs in Laravel\'s shapes map onto the driver\'s cluster and sentinel forms', () => {
    const redis = {
      options: { cluster: 'redis' },
      clusters: { default: [{ host: 'c1', port: 7000, password: 'p w', scheme: 'tls' }, { host: 'c2', port: '7001', password: 'p w', scheme: 'tls' }] },
      default: { host: 'x' },
      ha: { sentinel: { service: 'sessions', nodes: [{ host: 's1', port: 26379 }, 'redis://s2:26380'] }, username: 'app', password: 'pw', database: 1 },
      sharded: [{ host: 'r1', port: 26379 }],
    };
    const app = fakeApp({ app: { key: 'k'.repeat(40) }, session: { driver: 'array' }, database: { redis } });
    const c = new OstroSessionManager(app);
    assert.deepEqual(c.resolveConnection('redis', 'default'), { cluster: ['rediss://:p%20w@c1:7000', 'rediss://:p%20w@c2:7001'] });
    // Laravel's `database` on the connection is the master's database (not dropped: db 0 would be another store).
    assert.deepEqual(c.resolveConnection('redis', 'ha'), { sentinel: { masterName: 'sessions', nodes: ['redis://s1:26379', 'redis://s2:26380'], username: 'app', password: 'pw', db: 1 } });
    assert.deepEqual(c.resolveConnection('redis', 'sharded'), { cluster: ['redis://r1:26379'] });
    const predis = fakeApp({ app: { key: 'k'.repeat(40) }, session: { driver: 'array' }, database: { redis: { options: { replication: 'sentinel', service: 'mymaster' }, default: [{ host: 's1', port: 26379 }] } } });
    assert.deepEqual(new OstroSessionManager(predis).resolveConnection('redis', 'default'), { sentinel: { masterName: 'mymaster', nodes: ['redis://s1:26379'] } });
    // Objects given directly keep their credentials.
    const m = manager({ driver: 'array' }, tmp('rc-'));
    assert.deepEqual(m.resolveConnection('redis', { cluster: [{ host: 'a', port: 1 }], password: 'pw' }), { cluster: ['redis://a:1'], password: 'pw' });
    // The result is what the driver accepts.
    const { RedisSessionHandler } = require('..');
    for (const conn of [c.resolveConnection('redis', 'default'), c.resolveConnection('redis', 'ha')]) new RedisSessionHandler(conn);
  });

  it('Laravel\'s `database` key selects the database for standalone and Sentinel connections; a cluster refuses a non-zero one', () => {
    const redis = {
      options: { cluster: 'redis' },
      plain: { host: 'r', port: '6379', database: '3' },
      url: { url: 'redis://u:p%40w@r:6379', database: 4 },
      urlWithDb: { url: 'redis://r:6379/5', database: 4 },
      both: { host: 'r', db: 6, database: 7 },
      ha: { sentinel: { service: 'm', nodes: ['redis://s1:26379'], database: '2' } },
      haTop: { sentinels: [{ host: 's1', port: 26379 }], service: 'm', database: 0 },
      clusters: {
        zero: [{ host: 'c1', port: 7000, database: 0 }, { host: 'c2', port: 7001, database: '0' }],
        one: [{ host: 'c1', port: 7000, database: 0 }, { host: 'c2', port: 7001, database: 1 }],
      },
    };
    const m = new OstroSessionManager(fakeApp({ app: { key: 'k'.repeat(40) }, session: { driver: 'array' }, database: { redis } }));
    assert.deepEqual(m.resolveConnection('redis', 'plain'), { host: 'r', port: 6379, db: 3 });
    // A URL without a database gets the connection's (Laravel merges them); one with a database keeps it.
    assert.equal(m.resolveConnection('redis', 'url'), 'redis://u:p%40w@r:6379/4');
    assert.equal(m.resolveConnection('redis', 'urlWithDb'), 'redis://r:6379/5');
    assert.deepEqual(m.resolveConnection('redis', 'both'), { host: 'r', db: 6 });
    assert.deepEqual(m.resolveConnection('redis', 'ha'), { sentinel: { masterName: 'm', nodes: ['redis://s1:26379'], db: 2 } });
    assert.deepEqual(m.resolveConnection('redis', 'haTop'), { sentinel: { masterName: 'm', nodes: ['redis://s1:26379'], db: 0 } });
    assert.deepEqual(m.resolveConnection('redis', 'zero'), { cluster: ['redis://c1:7000', 'redis://c2:7001'] });
    const refused = (fn, what) => assert.throws(fn, (e) => e.code === 'ERR_SESSION_INVALID_OPTION' && what.test(e.message), String(what));
    refused(() => m.resolveConnection('redis', 'one'), /redis\.clusters\.one .*node 1 sets database 1, but a Redis Cluster has only database 0/);
    refused(() => m.resolveConnection('redis', { cluster: ['redis://c1:7000'], database: 2 }), /database 2, but a Redis Cluster has only database 0/);
    assert.deepEqual(m.resolveConnection('redis', { cluster: ['redis://c1:7000'], database: 0 }), { cluster: ['redis://c1:7000'] });
    // predis: `options.parameters` are the master's (Sentinel) or every node's (cluster).
    const predis = (options) => new OstroSessionManager(fakeApp({ app: { key: 'k'.repeat(40) }, session: { driver: 'array' }, database: { redis: { options, default: [{ host: 's1', port: 26379 }] } } }));
    assert.deepEqual(predis({ replication: 'sentinel', service: 'm', parameters: { password: 'pw', database: '5' } }).resolveConnection('redis', 'default'),
      { sentinel: { masterName: 'm', nodes: ['redis://s1:26379'], password: 'pw', db: 5 } });
    refused(() => predis({ cluster: 'redis', parameters: { database: 1 } }).resolveConnection('redis', 'default'), /redis\.default .*options\.parameters sets database 1/);
    // The resolved forms are what the driver accepts, database included.
    const { RedisSessionHandler } = require('..');
    for (const name of ['plain', 'url', 'ha', 'zero']) new RedisSessionHandler(m.resolveConnection('redis', name));
  });

  it('options.cluster other than \'redis\' (predis\' client-side sharding) is refused, naming it, not taken for a Redis Cluster', () => {
    const nodes = [{ host: 'r1', port: 6379 }, { host: 'r2', port: 6379 }];
    const mk = (redis) => new OstroSessionManager(fakeApp({ app: { key: 'k'.repeat(40) }, session: { driver: 'redis', connection: 'default' }, database: { redis } }));
    const refused = (m, what) => assert.throws(() => m.driver(), (e) => e.code === 'ERR_SESSION_INVALID_OPTION' && what.test(e.message) && /only 'redis' \(a Redis Cluster\)/.test(e.message));
    refused(mk({ options: { cluster: 'predis' }, clusters: { default: nodes } }), /redis\.clusters\.default .*options\.cluster "predis"/);
    refused(mk({ options: { cluster: 'predis' }, default: nodes }), /redis\.default .*options\.cluster "predis"/);
    // `redis.clusters.options` overrides `redis.options` for the clusters, as in Laravel.
    refused(mk({ options: { cluster: 'redis' }, clusters: { options: { cluster: 'sharded' }, default: nodes } }), /options\.cluster "sharded"/);
    // 'redis', or no value (Laravel's default config says 'redis'), is a Redis Cluster.
    for (const options of [{ cluster: 'redis' }, {}, undefined]) {
      const m = mk({ options, clusters: { default: nodes } });
      assert.deepEqual(m.resolveConnection('redis', 'default'), { cluster: ['redis://r1:6379', 'redis://r2:6379'] });
    }
    // Sentinel replication does not read options.cluster.
    assert.ok('sentinel' in mk({ options: { cluster: 'predis', replication: 'sentinel' }, default: nodes }).resolveConnection('redis', 'default'));
  });

  it('cache.<store> and cache + store pick the built-in driver from the app\'s cache config', async () => {
    const dir = tmp('cache-');
    const cache = {
      default: 'file',
      stores: {
        file: { driver: 'file', path: path.join(dir, 'cache-data') },
        memory: { driver: 'memory' },
        redis: { driver: 'redis', server: { host: '127.0.0.1', port: 1, password: null } },
        database: { driver: 'database', table: 'caches' },
      },
    };
    const file = manager({ driver: 'cache.file' }, dir, { cache });
    await file.driver().write('e'.repeat(40), '{}');
    assert.ok(fs.existsSync(path.join(dir, 'cache-data', 'e'.repeat(40))));
    await file.close();
    assert.equal(manager({ driver: 'cache', store: 'memory' }, dir, { cache }).driver().constructor.name, 'ArraySessionHandler');
    const redis = manager({ driver: 'cache.redis' }, dir, { cache });
    assert.equal(redis.driver().constructor.name, 'RedisSessionHandler');
    await redis.close();
    assert.throws(() => manager({ driver: 'cache.database' }, dir, { cache }).driver(), /sessions cannot use/);
    assert.throws(() => manager({ driver: 'cache.nope' }, dir, { cache }).driver(), /\[nope\] is not in the cache config/);
  });
});

describe('request.session instanceof @ostro/contracts/session/session', () => {
  it('holds for every Store once linked, and only for the contract itself (its subclasses keep the ordinary check)', () => {
    const app = tmp('contracts-');
    const dir = path.join(app, 'node_modules', '@ostro', 'contracts', 'session');
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'session.js'), 'class Session {}\nmodule.exports = Session\n');
    const script = `
      const { linkSessionContract } = require(${JSON.stringify(path.join(REPO, 'lib', 'ostro', 'resolve.js'))});
      const { Store, ArraySessionHandler } = require(${JSON.stringify(REPO)});
      const Contract = require('@ostro/contracts/session/session');
      const store = new Store('s', new ArraySessionHandler());
      const before = store instanceof Contract;
      const n = linkSessionContract();
      class LegacySession extends Contract {}
      process.stdout.write(JSON.stringify({ before, n, after: store instanceof Contract, plain: ({}) instanceof Contract,
        legacy: new LegacySession() instanceof Contract, storeIsLegacy: store instanceof LegacySession, again: linkSessionContract() }));`;
    const r = spawnSync(process.execPath, ['-e', script], { cwd: app, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { before: false, n: 1, after: true, plain: false, legacy: true, storeIsLegacy: false, again: 1 });
  });
});

describe('npx ostro-session', () => {
  const bin = path.join(REPO, 'bin', 'ostro-session.js');
  const runBin = (args, cwd) => spawnSync(process.execPath, [bin, ...args], { cwd, encoding: 'utf8' });

  it('session:table writes database/migrations/<date>_create_sessions_table.js, or into [dir]', () => {
    const cwd = tmp('bin-');
    let r = runBin(['session:table'], cwd);
    assert.equal(r.status, 0, r.stderr);
    const files = fs.readdirSync(path.join(cwd, 'database', 'migrations'));
    assert.equal(files.length, 1);
    assert.match(files[0], /^\d{4}_\d{2}_\d{2}_\d{6}_create_sessions_table\.js$/);
    r = runBin(['session:table', 'db/mig', '--table=app_sessions'], cwd);
    assert.equal(r.status, 0, r.stderr);
    const [f] = fs.readdirSync(path.join(cwd, 'db', 'mig'));
    assert.match(fs.readFileSync(path.join(cwd, 'db', 'mig', f), 'utf8'), /Schema\.create\('app_sessions'/);
  });

  it('refuses a second migration, a bad table name, unknown commands, and prints usage', () => {
    const cwd = tmp('bin-');
    assert.equal(runBin(['session:table'], cwd).status, 0);
    const again = runBin(['session:table'], cwd);
    assert.equal(again.status, 1);
    assert.match(again.stderr, /already exists/);
    const bad = runBin(['session:table', 'x', '--table=drop table;'], cwd);
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /plain SQL identifier/);
    assert.equal(runBin(['migrate'], cwd).status, 1);
    assert.equal(runBin([], cwd).status, 1);
    const help = runBin(['--help'], cwd);
    assert.equal(help.status, 0);
    assert.match(help.stdout, /Usage: ostro-session session:table/);
  });
});
