'use strict';
// Child process of concurrency.test.js: `count` concurrent requests on one session, through the
// Store, each incrementing `n` and putting its own key `<prefix><i>`. argv: driver (file, sqlite,
// redis or database), its location (directory, database file, URL, or database URL#table), the session id, the key prefix and
// the count. Prints "ready" once the driver is open, waits for "go" on stdin, prints the save
// outcomes as JSON when done.
const { Store, FileSessionHandler, SqliteSessionHandler, RedisSessionHandler, DatabaseSessionHandler } = require('../..');

const [driver, where, id, prefix, count] = process.argv.slice(2);
// database: `where` is `<url>#<table>`.
const handler = driver === 'file'
  ? new FileSessionHandler(where, 120)
  : driver === 'sqlite'
    ? new SqliteSessionHandler(where, { busyTimeoutMs: 10000 })
    : driver === 'database'
      ? new DatabaseSessionHandler(where.slice(0, where.lastIndexOf('#')), { table: where.slice(where.lastIndexOf('#') + 1) })
      : new RedisSessionHandler(where);

(async () => {
  await handler.read(id); // opens the driver before the start signal
  process.stdout.write('ready\n');
  await new Promise((resolve) => process.stdin.once('data', resolve));
  process.stdin.pause();
  const stores = Array.from({ length: Number(count) }, () => new Store('ostro_session', handler, id));
  await Promise.all(stores.map((s) => s.start()));
  const outcomes = await Promise.all(stores.map((s, i) => {
    s.increment('n');
    s.put(`${prefix}${i}`, i);
    return s.save();
  }));
  process.stdout.write(`${JSON.stringify(outcomes)}\n`);
  await handler.close();
})().catch((e) => {
  process.stderr.write(`${e.code}: ${e.message}\n`);
  process.exitCode = 1;
});
