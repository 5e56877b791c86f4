'use strict';
// The `database` session driver of a real OstroJS app (the fixture of support/ostro-app.js) whose
// DB_CONNECTION is pgsql or mysql, on the machine's PostgreSQL and MariaDB: `node assistant
// session:table`, `node assistant migrate`, then requests that log in, flash, regenerate and
// log out, with the rows checked in the server. OstroJS reaches these databases through knex
// with the `pg` and `mysql2` clients (knex's peer dependencies); they are installed once into a
// cache directory beside the fixture's install and found through NODE_PATH, so the shared
// fixture stays as it is. Each backend gets a database of its own, dropped at the end.
// A server that is not running fails the suite, naming it.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const sessionHandlerConformance = require('../lib/testing');
const { ensureInstall, makeApp, newAppKey, startApp, assistant, Browser, idOfCookie } = require('./support/ostro-app');
// pg, mysql2 and knex (what OstroJS's query builder is), the last for the handler-level conformance run.
const { ensureDbDrivers } = require('./support/ostro-db');

const COOKIE = 'ostro_session';
const OVERLAY = path.join(__dirname, 'fixtures', 'ostro-app-database');

const BACKENDS = [
  {
    name: 'PostgreSQL', connection: 'pgsql', host: '127.0.0.1', port: 5432, user: 'postgres',
    sql: (db, q) => execFileSync('psql', [`postgres://postgres@127.0.0.1:5432/${db}`, '-X', '-q', '-t', '-A', '-F', '|', '-v', 'ON_ERROR_STOP=1', '-c', q], { encoding: 'utf8' }).trim(),
    admin: 'postgres',
  },
  {
    name: 'MariaDB', connection: 'mysql', host: '127.0.0.1', port: 3306, user: 'root',
    sql: (db, q) => execFileSync('mariadb', ['-h', '127.0.0.1', '-P', '3306', '-u', 'root', '-N', '-B', '-D', db, '-e', q], { encoding: 'utf8' }).trim().replace(/\t/g, '|'),
    admin: 'mysql',
  },
];

function requireServer(b) {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: b.host, port: b.port, timeout: 2000 });
    s.once('connect', () => { s.destroy(); resolve(); });
    const fail = (e) => { s.destroy(); reject(new Error(`the ${b.name} server at ${b.host}:${b.port} is not reachable (${e ? e.message : 'timeout'}): this test needs it running`)); };
    s.once('error', fail);
    s.once('timeout', () => fail());
  });
}

const sessionIdOf = (browser) => {
  const v = browser.jar.get(COOKIE);
  return v === undefined ? null : idOfCookie(v);
};

let install;
let nodePath;
const dirs = [];

before(async () => {
  install = await ensureInstall();
  nodePath = await ensureDbDrivers();
}, { timeout: 20 * 60 * 1000 });

after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

// The query-builder handler itself, on knex as OstroJS configures it, through the conformance
// kit (compare-and-set and tombstones included): a table per handler, made by the native driver
// in the migration's shape, dropped at the end.
for (const b of BACKENDS) {
  const knexes = [];
  const tables = [];
  sessionHandlerConformance(async ({ minutes }) => {
    const { DatabaseSessionHandler: Native } = require('..');
    const { DatabaseSessionHandler: QueryBuilder } = require('../lib/ostro/databaseHandler');
    const table = `ostro_qb${process.pid}_${tables.length}`;
    tables.push(table);
    const scheme = b.connection === 'pgsql' ? 'postgres' : 'mysql';
    const maker = new Native(`${scheme}://${b.user}@${b.host}:${b.port}/test`, { table });
    await maker.read('0'.repeat(40));
    await maker.close();
    const knex = require(path.join(nodePath, 'knex'))({
      client: b.connection === 'pgsql' ? 'pg' : 'mysql2',
      connection: { host: b.host, port: b.port, user: b.user, password: '', database: 'test' },
    });
    knexes.push(knex);
    return new QueryBuilder(knex, { table, minutes });
  }, {
    name: `the OstroJS query-builder handler (knex) on ${b.name}`,
    before: () => requireServer(b),
    after: async () => {
      await Promise.all(knexes.map((k) => k.destroy()));
      for (const t of tables) {
        try { b.sql('test', `DROP TABLE IF EXISTS ${t}`); } catch { /* reported by the failing test */ }
      }
    },
  });
}

for (const b of BACKENDS) {
  describe(`an OstroJS app on ${b.name} (DB_CONNECTION=${b.connection}): session:table, migrate, the database driver`, () => {
    const database = `ostro_app_${process.pid}_${b.connection}`;
    const key = newAppKey();
    let dir;
    let env;

    before(async () => {
      await requireServer(b);
      b.sql(b.admin, `DROP DATABASE IF EXISTS ${database}`);
      b.sql(b.admin, `CREATE DATABASE ${database}`);
      dir = makeApp(install);
      dirs.push(dir);
      fs.cpSync(OVERLAY, dir, { recursive: true });
      env = {
        APP_KEY: key, NODE_PATH: nodePath, DB_CONNECTION: b.connection, DB_HOST: b.host, DB_PORT: String(b.port),
        DB_DATABASE: database, DB_USERNAME: b.user, DB_PASSWORD: '',
      };
      const table = await assistant(dir, ['session:table'], env);
      assert.match(table.stdout, /Migration created successfully!/);
      const migrate = await assistant(dir, ['migrate'], env);
      assert.match(migrate.stdout, /Migrated:.*create_sessions_table/);
    }, { timeout: 5 * 60 * 1000 });

    /** How many indexes of the sessions table lead with `col`, as the server reports them. */
    const indexesOn = (col) => (b.connection === 'pgsql'
      ? b.sql(database, `SELECT count(*) FROM pg_indexes WHERE tablename = 'sessions' AND indexdef LIKE '%(${col})'`)
      : b.sql(database, `SELECT COUNT(*) FROM information_schema.statistics WHERE table_schema = DATABASE() AND table_name = 'sessions' AND column_name = '${col}' AND seq_in_index = 1`));

    // First, before any driver has touched the table (the native one adopts it and would add a
    // missing index itself).
    it('migrate made the sessions table: the migration\'s columns, sid the primary key, last_activity and user_id indexed', () => {
      const cols = b.connection === 'pgsql'
        ? b.sql(database, "SELECT string_agg(column_name::text, ',' ORDER BY column_name) FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'sessions'")
        : b.sql(database, "SELECT GROUP_CONCAT(column_name ORDER BY column_name) FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = 'sessions'");
      assert.equal(cols, 'ip_address,last_activity,payload,sid,user_agent,user_id');
      assert.equal(indexesOn('last_activity'), '1');
      // sessionsOf and "log out other devices" look sessions up by user_id.
      assert.equal(indexesOn('user_id'), '1');
    });

    it('the native DatabaseSessionHandler shares the migration\'s table with the query builder, both ways', { timeout: 120000 }, async () => {
      const { Store, DatabaseSessionHandler } = require('..');
      const url = b.connection === 'pgsql'
        ? `postgres://${b.user}@${b.host}:${b.port}/${database}`
        : `mysql://${b.user}@${b.host}:${b.port}/${database}`;
      const app = await startApp(dir, { ...env, SESSION_DRIVER: 'database' });
      const native = new DatabaseSessionHandler(url, { table: 'sessions' });
      try {
        const br = new Browser(app.base);
        assert.deepEqual((await br.get('/visits')).json, { visits: 1 });
        assert.deepEqual((await br.get('/visits')).json, { visits: 2 });
        const id = sessionIdOf(br);
        // Written by the query builder, read and changed by the native driver …
        assert.equal(JSON.parse(await native.read(id)).visits, 2);
        const s = new Store(COOKIE, native, id);
        await s.start();
        assert.equal(s.get('visits'), 2);
        s.put('visits', 10);
        await s.save();
        // … and read back by the app through the query builder.
        assert.deepEqual((await br.get('/visits')).json, { visits: 11 });
        assert.equal(JSON.parse(await native.read(id)).visits, 11);
        // The native driver adopted the migration's table as it was: no second index, no new columns.
        assert.equal(indexesOn('last_activity'), '1');
        assert.equal(indexesOn('user_id'), '1');
      } finally {
        await native.close();
        await app.stop();
      }
    });

    after(() => {
      try { b.sql(b.admin, `DROP DATABASE IF EXISTS ${database}`); } catch { /* reported by the failing test */ }
    });

    /** Log in, flash, regenerate and log out through `app`, checking the rows in the server. */
    async function loginFlashLogout(app, native) {
      const row = (id) => b.sql(database, `SELECT payload, ip_address, user_agent, last_activity FROM sessions WHERE sid = '${id}'`);
      {
        const ua = `ostro-test/${b.connection}/${native ? 'native' : 'qb'}`;
        const br = new Browser(app.base, { 'user-agent': ua });
        await br.get('/cart/add?item=quince');
        assert.deepEqual((await br.get('/visits')).json, { visits: 1 });
        assert.deepEqual((await br.get('/visits')).json, { visits: 2 });
        const driver = (await br.get('/driver')).json;
        assert.equal(driver.handler, 'DatabaseSessionHandler');
        assert.equal(driver.nativeDatabase, native, native ? 'native: true must pick the Rust driver' : 'the query builder is the default');
        const first = sessionIdOf(br);
        const [payload, ip, agent, last] = row(first).split('|');
        assert.equal(JSON.parse(payload).visits, 2);
        assert.equal(JSON.parse(payload).cartItem, 'quince');
        assert.equal(ip, '127.0.0.1');
        assert.equal(agent, ua);
        assert.ok(Math.abs(Number(last) - Date.now() / 1000) < 120, `last_activity ${last} is now`);

        // Log in: the session is regenerated (a new id, the data carried over).
        const login = (await br.get('/login?name=ada')).json;
        const afterLogin = sessionIdOf(br);
        assert.equal(login.id, afterLogin);
        assert.notEqual(afterLogin, first);
        const who = (await br.get('/whoami')).json;
        assert.deepEqual(who.user, { name: 'ada' });
        assert.equal(who.all.visits, 2);
        assert.equal(JSON.parse(row(afterLogin).split('|')[0]).user.name, 'ada');

        // Flash through a redirect: there on the next request, gone on the one after.
        assert.equal((await br.get('/flash')).status, 302);
        assert.deepEqual((await br.get('/flashed')).json, { status: 'Profile updated!' });
        assert.deepEqual((await br.get('/flashed')).json, { status: null });

        // Log out: invalidate leaves a tombstone (an empty payload, so that a request that
        // started before the logout cannot bring the session back) and starts an empty session
        // under a new id.
        await br.get('/logout');
        const afterLogout = sessionIdOf(br);
        assert.notEqual(afterLogout, afterLogin);
        assert.equal(b.sql(database, `SELECT CONCAT('[', payload, ']') FROM sessions WHERE sid = '${afterLogin}'`), '[]', 'the logged-in session is a tombstone');
        assert.equal((await br.get('/whoami')).json.user, null);
        assert.notEqual(row(afterLogout), '', 'the new session has its row');
      }
    }

    /** Two app processes, 100 concurrent `/visits` each on one session: exactly +200. */
    async function twoAppsIncrement(extraEnv) {
      const apps = await Promise.all([0, 1].map(() => startApp(dir, { ...env, SESSION_DRIVER: 'database', ...extraEnv })));
      try {
        const br = new Browser(apps[0].base);
        assert.deepEqual((await br.get('/visits')).json, { visits: 1 });
        const cookie = br.cookieHeader();
        const res = await Promise.all(apps.flatMap((a) => Array.from({ length: 100 }, () => fetch(`${a.base}/visits`, { headers: { cookie } }))));
        assert.deepEqual([...new Set(res.map((r) => r.status))], [200]);
        await Promise.all(res.map((r) => r.text()));
        assert.deepEqual((await br.get('/visits')).json, { visits: 202 }, 'concurrent increments were lost');
      } finally {
        await Promise.all(apps.map((a) => a.stop()));
      }
    }

    it('keeps sessions in that table through the query builder: log in, flash, regenerate, log out', { timeout: 120000 }, async () => {
      const app = await startApp(dir, { ...env, SESSION_DRIVER: 'database' });
      try {
        await loginFlashLogout(app, false);
      } finally {
        await app.stop();
      }
    });

    it('the query builder compares and sets: two app processes, 200 concurrent increments of one session, none lost', { timeout: 120000 }, async () => {
      await twoAppsIncrement({});
    });

    it('native: true in config/session.js: the Rust driver on the same table, log in, flash, regenerate, log out', { timeout: 120000 }, async () => {
      const app = await startApp(dir, { ...env, SESSION_DRIVER: 'database', SESSION_NATIVE: 'true' });
      try {
        await loginFlashLogout(app, true);
      } finally {
        await app.stop();
      }
    });

    it('native: true: two app processes, 200 concurrent increments of one session, none lost', { timeout: 120000 }, async () => {
      await twoAppsIncrement({ SESSION_NATIVE: 'true' });
    });
  });
}
