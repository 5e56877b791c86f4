'use strict';
// better-sqlite3-session-store as its README sets it up: a plain better-sqlite3 Database, so
// SQLite's defaults (rollback journal, synchronous=FULL). peer-sqlite-store.js is the same store
// given our driver's settings (WAL, synchronous=NORMAL).
const path = require('node:path');
const kit = require('../lib/kit');

function make(file) {
  const session = kit.need('express-session');
  const Database = kit.need('better-sqlite3');
  const SqliteStore = kit.need('better-sqlite3-session-store')(session);
  const db = new Database(file);
  const store = new SqliteStore({ client: db, expired: { clear: true, intervalMs: 3600000 } });
  return { store, db };
}

module.exports = {
  id: 'peer-sqlite-store-defaults', label: 'better-sqlite3-session-store (defaults)', kind: 'peer', family: 'sqlite',
  store(ctx) {
    const { store, db } = make(path.join(ctx.dir, 'bss-defaults.sqlite'));
    return kit.expressCycles(store, { close: () => db.close() });
  },
};
