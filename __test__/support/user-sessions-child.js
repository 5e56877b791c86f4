'use strict';
// Child process of user-sessions.test.js: logs user `user` in `count` times on the sqlite file
// `db` (another process sharing it), prints "done", then waits for "check" on stdin and prints
// how many of its sessions still load (after the parent's "log out other devices").
// argv: db path, app key, user id, count.
const { SessionManager } = require('../..');

const [db, key, user, count] = process.argv.slice(2);
const manager = new SessionManager({ driver: 'sqlite', connection: db, key });
const ids = [];

(async () => {
  for (let i = 0; i < Number(count); i++) {
    const s = manager.createStore();
    await s.start();
    s.setUser(user);
    s.put('from', 'child');
    s.setRequestMeta({ ip: '10.9.9.9', userAgent: `child ${i}` });
    await s.save();
    ids.push(s.getId());
  }
  process.stdout.write('done\n');
  await new Promise((resolve) => process.stdin.once('data', resolve));
  process.stdin.pause();
  let alive = 0;
  for (const id of ids) {
    const s = manager.createStore(id);
    await s.start();
    if (s.get('from') === 'child') alive++;
  }
  process.stdout.write(`alive ${alive}\n`);
  await manager.close();
})().catch((e) => {
  process.stderr.write(`${e.code}: ${e.message}\n`);
  process.exitCode = 1;
});
