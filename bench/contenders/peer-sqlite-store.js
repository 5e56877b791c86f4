'use strict';
// better-sqlite3-session-store on better-sqlite3 12 (synchronous, on the JS thread), given the
// same durability settings as our driver (WAL, synchronous=NORMAL), so only the design differs.
// The store starts a cleanup interval it never clears: close() (kit.sqlitePeerStore) clears it
// and closes the database, or a process that built it (the contention case's HTTP server runs
// in the bench process) would never exit.
const path = require('node:path');
const kit = require('../lib/kit');

module.exports = {
  id: 'peer-sqlite-store', label: 'better-sqlite3-session-store (WAL, NORMAL)', kind: 'peer', family: 'sqlite',
  store(ctx) {
    const { store, close } = kit.sqlitePeerStore(path.join(ctx.dir, 'bss.sqlite'), { wal: true });
    return kit.expressCycles(store, { close });
  },
  http(ctx) {
    const { store, close } = kit.sqlitePeerStore(path.join(ctx.dir, 'bss-http.sqlite'), { wal: true });
    return kit.expressHttp(store, { close });
  },
};
