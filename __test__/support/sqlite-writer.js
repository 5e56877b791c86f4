'use strict';
// Child process of sqlite.test.js: writes `count` sessions into one database file once told to.
// argv: db path, id prefix letter, count. Prints "ready", waits for "go" on stdin, prints "done".
// It never closes the handler: the process must still exit by itself.
const { SqliteSessionHandler } = require('../..');

const [db, prefix, count] = process.argv.slice(2);
const h = new SqliteSessionHandler(db, { busyTimeoutMs: 10000 });
const idOf = (i) => prefix + String(i).padStart(39, '0');

(async () => {
  await h.read(idOf(0)); // opens the database before the start signal
  process.stdout.write('ready\n');
  await new Promise((resolve) => process.stdin.once('data', resolve));
  process.stdin.pause();
  const writes = [];
  for (let i = 0; i < Number(count); i++) {
    writes.push(h.write(idOf(i), JSON.stringify({ by: prefix, i }), { ip: '127.0.0.1', userAgent: `writer ${prefix}` }));
  }
  await Promise.all(writes);
  process.stdout.write('done\n');
})().catch((e) => {
  process.stderr.write(`${e.code}: ${e.message}\n`);
  process.exitCode = 1;
});
