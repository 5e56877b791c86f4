'use strict';
// better-sqlite3-session-store on better-sqlite3 12 (synchronous, on the JS thread).
const path = require('node:path');
const kit = require('../lib/kit');

function make(file) {
  const session = kit.need('express-session');
  const Database = kit.need('better-sqlite3');
  const SqliteStore = kit.need('better-sqlite3-session-store')(session);
  const db = new Database(file);
  // The same durability settings as our driver (WAL, synchronous=NORMAL), so only the design differs.
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  const store = new SqliteStore({ client: db, expired: { clear: true, intervalMs: 3600000 } });
  return { store, db };
}

module.exports = {
  id: 'peer-sqlite-store', label: 'better-sqlite3-session-store (WAL, NORMAL)', kind: 'peer', family: 'sqlite',
  store(ctx) {
    const { store, db } = make(path.join(ctx.dir, 'bss.sqlite'));
    return kit.expressCycles(store, { close: () => db.close() });
  },
  http(ctx) {
    const { store, db } = make(path.join(ctx.dir, 'bss-http.sqlite'));
    return kit.expressHttp(store, { close: () => db.close() });
  },
};
