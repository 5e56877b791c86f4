'use strict';
// Child process of database.test.js: once told to, writes its own sessions and, concurrently, a
// set of sessions the other writer writes too, through one DatabaseSessionHandler.
// argv: url, table, prefix letter, own count, shared count. Prints "ready", waits for "go" on
// stdin, prints "done". It never closes the handler: the process must still exit by itself.
const { DatabaseSessionHandler } = require('../..');

const [url, table, prefix, own, shared] = process.argv.slice(2);
const h = new DatabaseSessionHandler(url, { table, pool: 4 });
const idOf = (p, i) => p + String(i).padStart(39, '0');

(async () => {
  await h.read(idOf(prefix, 0)); // connects and prepares the table before the start signal
  process.stdout.write('ready\n');
  await new Promise((resolve) => process.stdin.once('data', resolve));
  process.stdin.pause();
  const writes = [];
  for (let i = 0; i < Number(own); i++) {
    writes.push(h.write(idOf(prefix, i), JSON.stringify({ by: prefix, i }), { ip: '127.0.0.1', userAgent: `writer ${prefix}` }));
  }
  // The same sessions from both processes, several times each: the last write wins whole.
  for (let round = 0; round < 3; round++) {
    for (let i = 0; i < Number(shared); i++) {
      writes.push(h.write(idOf('S', i), JSON.stringify({ by: prefix, i, round, pad: prefix.repeat(2000) })));
    }
  }
  await Promise.all(writes);
  process.stdout.write('done\n');
})().catch((e) => {
  process.stderr.write(`${e.code}: ${e.message}\n`);
  process.exitCode = 1;
});
