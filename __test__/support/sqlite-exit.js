'use strict';
// Child process of sqlite.test.js: uses sqlite handlers (file and in-memory) without closing
// them, then returns. The process must exit by itself: the SQLite threads never hold Node open.
const { SqliteSessionHandler, Store } = require('../..');

(async () => {
  const file = new SqliteSessionHandler(process.argv[2]);
  const mem = new SqliteSessionHandler(':memory:');
  for (const h of [file, mem]) {
    const s = new Store('ostro_session', h);
    await s.start();
    s.put('n', 1);
    await s.save();
    const again = new Store('ostro_session', h, s.getId());
    await again.start();
    if (again.get('n') !== 1) throw new Error('round trip failed');
  }
  process.stdout.write('ok\n');
})().catch((e) => {
  process.stderr.write(`${e.code}: ${e.message}\n`);
  process.exitCode = 1;
});
