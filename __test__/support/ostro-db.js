'use strict';
// OstroJS's database layer for the tests of the query-builder `database` driver on PostgreSQL and
// MariaDB: knex's `pg` and `mysql2` clients installed once into a cache directory
// (ensureDbDrivers; the fixture app reaches them through NODE_PATH), and, in the test process
// itself, the real @ostro/database of the fixture app's install (support/ostro-app.js): its
// DatabaseManager, ConnectionFactory, connectors, connections and query builder, configured as
// the skeleton's config/database.js configures them, so that the handler runs over exactly
// what `app.db.connection(name)` gives it in an app (see lib/ostro/sessionManager.js).
//
// Loading @ostro/database loads @ostro/support's helpers, which add globals and prototype
// methods: only test files that need the framework in process should require ostroDatabase().
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Module } = require('node:module');
const { run } = require('./ostro-app');

// knex (what OstroJS's query builder is) too: the one @ostro/database uses, at the same version.
const DB_DRIVERS = { pg: '8.16.3', mysql2: '3.10.2', knex: '2.5.1' };

/** pg, mysql2 and knex, installed once per machine into their own cache directory; its node_modules. */
async function ensureDbDrivers() {
  const key = Object.entries(DB_DRIVERS).map(([n, v]) => `${n}@${v}`).join('_').replace(/[^a-z0-9@._-]/gi, '');
  const dir = path.join(os.tmpdir(), `ostro-session-dbdrivers-${key}`);
  if (!fs.existsSync(path.join(dir, '.complete'))) {
    const tmp = `${dir}.tmp-${process.pid}`;
    fs.rmSync(tmp, { recursive: true, force: true });
    fs.mkdirSync(tmp, { recursive: true });
    fs.writeFileSync(path.join(tmp, 'package.json'), JSON.stringify({ private: true, dependencies: DB_DRIVERS }));
    await run('npm', ['install', '--no-audit', '--no-fund', '--no-package-lock', '--loglevel=error'], { cwd: tmp, timeout: 10 * 60 * 1000 });
    fs.writeFileSync(path.join(tmp, '.complete'), new Date().toISOString());
    try {
      fs.renameSync(tmp, dir);
    } catch (err) {
      if (!fs.existsSync(path.join(dir, '.complete'))) throw err;
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  }
  return path.join(dir, 'node_modules');
}

/**
 * The skeleton's pgsql and mysql connections (the fixture's config/database.js, Laravel's shape)
 * for a server of support/db-servers.js. `connectionCloseTime`: how long OstroJS keeps an idle
 * pool before destroying it (its default is 5 s, which would keep the test process alive).
 */
function connectionConfigOf(b, { connectionCloseTime = 500 } = {}) {
  const u = new URL(b.url);
  const common = {
    host: u.hostname, port: u.port || String(b.defaultPort), database: u.pathname.slice(1),
    username: decodeURIComponent(u.username), password: decodeURIComponent(u.password), connectionCloseTime,
  };
  return b.name === 'PostgreSQL'
    ? { name: 'pgsql', config: { driver: 'pgsql', ...common, schema: 'public' } }
    : { name: 'mysql', config: { driver: 'mysql', ...common, charset: 'utf8mb4' } };
}

/**
 * An OstroJS DatabaseManager (`app.db`) over `connections` (`{ name: config }`), from the fixture
 * install at `installModules` (ensureInstall().nodeModules), with knex resolving its clients from
 * `driverModules` (ensureDbDrivers()).
 *
 * The install's knex cannot see the cached pg and mysql2 (the app finds them through NODE_PATH,
 * which a running process no longer reads), so the cached knex, the same version, is registered
 * in require.cache under the install's path: @ostro/database's connectors require it there.
 * @returns {{ db: object, app: object, close: () => Promise<void> }} `app`: what
 *   lib/ostro/sessionManager.js needs of an OstroJS app (`config`, `db`)
 */
function ostroDatabase(installModules, driverModules, connections) {
  const databaseDir = path.join(installModules, '@ostro', 'database');
  const installKnex = require.resolve('knex', { paths: [databaseDir] });
  if (!require.cache[installKnex]) {
    const m = new Module(installKnex, module);
    m.filename = installKnex;
    m.exports = require(path.join(driverModules, 'knex'));
    m.loaded = true;
    require.cache[installKnex] = m;
  }
  require(path.join(installModules, '@ostro', 'support', 'helpers'));
  const DatabaseManager = require(path.join(databaseDir, 'databaseManager'));
  const ConnectionFactory = require(path.join(databaseDir, 'connectors', 'connectionFactory'));
  const config = { database: { default: Object.keys(connections)[0], connections } };
  const container = { config, bound: () => false };
  const db = new DatabaseManager(container, new ConnectionFactory(container));
  const app = { config, db };
  return {
    db,
    app,
    /** Destroys every pool the manager opened. */
    async close() {
      for (const c of Object.values(db.$connections)) await c.$connection.destroy();
    },
  };
}

/**
 * Runs the migration `session:table` writes (lib/ostro/migration.js, its source as generated)
 * for `table` on the connection `name` of `db`, its `Schema` facade being that connection's
 * schema builder, as in the app.
 */
async function migrateSessionsTable(installModules, db, name, table) {
  const { migrationSource } = require('../../lib/ostro/migration');
  const schema = db.connection(name).getSchemaBuilder();
  const load = new Function('require', 'module', 'exports', migrationSource(table)); // eslint-disable-line no-new-func
  const mod = { exports: {} };
  load((id) => (id === '@ostro/support/facades/schema' ? schema : require(path.join(installModules, id))), mod, mod.exports);
  const Migration = mod.exports;
  await new Migration().up();
}

module.exports = { DB_DRIVERS, ensureDbDrivers, connectionConfigOf, ostroDatabase, migrateSessionsTable };
