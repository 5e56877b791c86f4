'use strict';
// Child process of redis.test.js / memcached.test.js: `node server-driver-exit.js <redis|memcached>
// <live address> <dead address>`. Runs a Store cycle on a live server and one failing operation
// against a dead one, closes nothing, and returns. The process must exit by itself: the driver's
// connections and reconnect attempts never hold Node open.
const { Store, RedisSessionHandler, MemcachedSessionHandler } = require('../..');

const [kind, live, dead] = process.argv.slice(2);
const make = (addr) => (kind === 'redis'
  ? new RedisSessionHandler(addr, { commandTimeoutMs: 500 })
  : new MemcachedSessionHandler(addr, { timeoutMs: 500 }));

(async () => {
  const h = make(live);
  const s = new Store('ostro_session', h);
  await s.start();
  s.put('n', 1);
  await s.save();
  const again = new Store('ostro_session', h, s.getId());
  await again.start();
  if (again.get('n') !== 1) throw new Error('round trip failed');
  try {
    await make(dead).read('A'.repeat(40));
    throw new Error('a dead server answered');
  } catch (e) {
    if (e.code !== 'ERR_SESSION_UNAVAILABLE') throw e;
  }
  process.stdout.write('ok\n');
})().catch((e) => {
  process.stderr.write(`${e.code}: ${e.message}\n`);
  process.exitCode = 1;
});
