'use strict';
// The better-sqlite3 limit: prepared SELECT + UPSERT, WAL, synchronous=NORMAL (on the JS thread).
const path = require('node:path');
const kit = require('../lib/kit');
const { makeSession } = require('../lib/payload');

module.exports = {
  id: 'raw-sqlite', label: 'raw better-sqlite3 SELECT + UPSERT (WAL)', kind: 'raw', family: 'sqlite',
  store(ctx) {
    const Database = kit.need('better-sqlite3');
    const db = new Database(path.join(ctx.dir, 'raw.sqlite'));
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.exec('CREATE TABLE IF NOT EXISTS sessions (sid TEXT PRIMARY KEY, payload TEXT NOT NULL, last_activity INTEGER NOT NULL)');
    const sel = db.prepare('SELECT payload FROM sessions WHERE sid = ? AND last_activity >= ?');
    const up = db.prepare('INSERT INTO sessions (sid, payload, last_activity) VALUES (?, ?, ?) ON CONFLICT(sid) DO UPDATE SET payload = excluded.payload, last_activity = excluded.last_activity');
    const nowS = () => Math.floor(Date.now() / 1000);
    // Async wrappers, as a store API would have.
    const read = async (id) => { const r = sel.get(id, nowS() - kit.LIFETIME_MIN * 60); return r ? r.payload : ''; };
    const write = async (id, data) => { up.run(id, data, nowS()); };
    return {
      async seed(ids) { db.transaction(() => ids.forEach((id, k) => up.run(id, JSON.stringify(makeSession(k)), nowS())))(); },
      async cycle(id, i) {
        const o = JSON.parse(await read(id));
        o.counter = (o.counter || 0) + 1;
        o.lastSeen = i;
        await write(id, JSON.stringify(o));
      },
      check: async (id) => JSON.parse(await read(id)),
      close: () => db.close(),
    };
  },
};
