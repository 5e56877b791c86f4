'use strict';
// The HTTP concurrency scenarios of concurrency-http.test.js (issue 12: 200 concurrent puts and
// 200 increments, a logout racing 50 writers, a flash set while another request ages flash data)
// on the OstroJS query-builder `database` driver (lib/ostro/databaseHandler.js: compare-and-set as
// a conditional UPDATE), on the machine's PostgreSQL and MariaDB: the session manager of an
// OstroJS app (lib/ostro/sessionManager.js, driver 'database' naming a connection) over the real
// @ostro/database of the fixture app's install (support/ostro-db.js), its table made by the
// `session:table` migration, dropped after. In a file of its own: the framework's helpers add
// globals and prototype methods to the process. Also: compare-and-set through OstroJS's builder
// compares payloads byte for byte on both servers (the migration's MariaDB table has a
// case-insensitive, PAD SPACE collation), so a concurrent change of letter case or trailing
// spaces is not overwritten. A server that is not running fails naming it; the two-process
// version (the app itself, 200 increments) is in ostro-database.test.js.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { concurrencySuite } = require('./support/http-concurrency');
const { DB_SERVERS, uniqueTable, requireDbServer, dropDbTable } = require('./support/db-servers');
const { ensureInstall } = require('./support/ostro-app');
const { ensureDbDrivers, connectionConfigOf, ostroDatabase, migrateSessionsTable } = require('./support/ostro-db');
const OstroSessionManager = require('../lib/ostro/sessionManager');
const { DatabaseSessionHandler: QueryBuilderHandler } = require('../lib/ostro/databaseHandler');

const { Store } = require('..');

const KEY = 'k'.repeat(40);

let install;
let driverModules;
before(async () => {
  install = await ensureInstall();
  driverModules = await ensureDbDrivers();
}, { timeout: 20 * 60 * 1000 });

for (const b of DB_SERVERS) {
  const table = uniqueTable('chttpqb');
  const { name, config } = connectionConfigOf(b);
  let ostro = null;
  concurrencySuite(`the OstroJS query-builder database driver on ${b.name}`, () => {
    const manager = new OstroSessionManager({ driver: 'database', connection: name, table, key: KEY, lifetime: 120, lottery: [0, 100] }, { app: ostro.app });
    // Not the native driver, not sqlite: the handler over the app's `db`.
    assert.ok(manager.driver() instanceof QueryBuilderHandler, `the driver is ${manager.driver().constructor.name}`);
    return manager;
  }, {
    setup: async () => {
      await requireDbServer(b);
      ostro = ostroDatabase(install.nodeModules, driverModules, { [name]: config });
      await migrateSessionsTable(install.nodeModules, ostro.db, name, table);
    },
    teardown: async () => {
      if (ostro) await ostro.close();
      dropDbTable(b, table);
    },
  });
}

for (const b of DB_SERVERS) {
  describe(`compare-and-set through OstroJS's query builder on ${b.name} compares payloads byte for byte`, () => {
    const table = uniqueTable('casqb');
    const { name, config } = connectionConfigOf(b);
    let ostro = null;
    let handler;
    before(async () => {
      await requireDbServer(b);
      ostro = ostroDatabase(install.nodeModules, driverModules, { [name]: config });
      await migrateSessionsTable(install.nodeModules, ostro.db, name, table);
      handler = new QueryBuilderHandler(() => ostro.db.connection(name), { table });
    });
    after(async () => {
      if (ostro) await ostro.close();
      dropDbTable(b, table);
    });

    it('a stored payload differing only in letter case or trailing spaces does not match', async () => {
      const id = 'c'.repeat(40);
      await handler.write(id, '{"name":"Ada"}');
      assert.equal(await handler.writeIfUnchanged(id, '{"name":"x"}', '{"name":"ada"}'), false, 'matched another letter case');
      assert.equal(await handler.writeIfUnchanged(id, '{"name":"x"}', '{"name":"Ada"} '), false, 'matched with a trailing space');
      assert.equal(await handler.read(id), '{"name":"Ada"}');
      assert.equal(await handler.writeIfUnchanged(id, '{"name":"y"}', '{"name":"Ada"}'), true);
      assert.equal(await handler.read(id), '{"name":"y"}');
    });

    it('a concurrent save that only changed a letter\'s case is kept by the save of a request that loaded before it', async () => {
      const manager = new OstroSessionManager({ driver: 'database', connection: name, table, key: KEY, lifetime: 120, lottery: [0, 100] }, { app: ostro.app });
      const h = manager.driver();
      assert.ok(h instanceof QueryBuilderHandler);
      const first = new Store('ostro_session', h);
      await first.start();
      first.put('name', 'ada');
      await first.save();
      const id = first.getId();
      const slow = new Store('ostro_session', h, id);
      await slow.start();
      const fast = new Store('ostro_session', h, id);
      await fast.start();
      fast.put('name', 'Ada');
      assert.equal(await fast.save(), 'written');
      slow.put('cart', ['tea']);
      assert.equal(await slow.save(), 'written');
      const back = new Store('ostro_session', h, id);
      await back.start();
      assert.equal(back.get('name'), 'Ada', 'the concurrent change of case was overwritten');
      assert.deepEqual(back.get('cart'), ['tea']);
      await manager.close();
    });
  });
}
