'use strict';
// Our SQLite driver: rusqlite on one dedicated thread per handler, never on the JS thread.
const path = require('node:path');
const kit = require('../lib/kit');
const bulk = require('../lib/bulk');

module.exports = {
  id: 'ours-sqlite', label: '@ostro/session sqlite', kind: 'ours', family: 'sqlite',
  store(ctx) {
    const SqliteSessionHandler = kit.ourDriver('sqlite', 'SqliteSessionHandler');
    const file = path.join(ctx.dir, 'sessions.sqlite');
    const h = new SqliteSessionHandler(file, { minutes: kit.LIFETIME_MIN });
    const inst = kit.storeCycles(h);
    inst.bulk = async (count) => {
      await h.write(kit.SENTINEL_ID, kit.SESSION_JSON); // the driver creates its table on first use
      bulk.sqlite(file, 'sessions', count, kit.need);
    };
    return inst;
  },
  http: (ctx) => kit.ourHttp({ driver: 'sqlite', connection: path.join(ctx.dir, 'http.sqlite') }),
};
