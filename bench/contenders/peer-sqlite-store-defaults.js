'use strict';
// better-sqlite3-session-store as its README sets it up: a plain better-sqlite3 Database, so
// SQLite's defaults (rollback journal, synchronous=FULL). peer-sqlite-store.js is the same store
// given our driver's settings (WAL, synchronous=NORMAL).
const path = require('node:path');
const kit = require('../lib/kit');

module.exports = {
  id: 'peer-sqlite-store-defaults', label: 'better-sqlite3-session-store (defaults)', kind: 'peer', family: 'sqlite',
  store(ctx) {
    // close() clears the store's cleanup interval too, not only the database.
    const { store, close } = kit.sqlitePeerStore(path.join(ctx.dir, 'bss-defaults.sqlite'));
    return kit.expressCycles(store, { close });
  },
};
