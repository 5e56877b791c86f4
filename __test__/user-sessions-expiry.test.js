'use strict';
// A user's sessions and the timeouts (issue 13): manager.sessionsOf() never lists a session that
// is past absolute_lifetime, or idle past lifetime, even while its record is still stored (not
// loaded or collected since), and destroyUserSessions() does not count it; on every driver that
// keeps a user index (array, file, sqlite, the database driver on the real Postgres and MariaDB
// servers, redis on a redis-server started here, and a custom driver with sessionsOf), on the
// test clock. And the redis gc prunes the user index: entries of sessions that expired or were
// destroyed leave every user's sorted set and client hash, not only the ones a listing meets.
const test = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const { SessionManager, SessionHandlerInterface, RedisSessionHandler } = require('..');
const { T0, MIN, testClock, drivers, managerOf } = require('./support/lifecycle');
const { startRedis } = require('./support/servers');

const LIFETIME = 30; // minutes
const ABSOLUTE = 60; // minutes

/** A custom driver over a Map that lists every indexed entry, expired or not: the engine judges. */
class ListingMapDriver extends SessionHandlerInterface {
  constructor(now) {
    super();
    this.now = now;
    this.records = new Map();
    this.users = new Map();
  }

  read(id) {
    const r = this.records.get(id);
    return r ? r.data : '';
  }

  write(id, data, meta) {
    this.records.set(id, { data, at: this.now() });
    const user = meta && meta.userId;
    if (user) {
      if (!this.users.has(user)) this.users.set(user, new Set());
      this.users.get(user).add(id);
    }
  }

  destroy(id) {
    this.records.delete(id);
  }

  touch(id) {
    const r = this.records.get(id);
    if (r) r.at = this.now();
    return r !== undefined;
  }

  sessionsOf(user) {
    return [...(this.users.get(user) || [])].map((id) => {
      const r = this.records.get(id);
      return { id, payload: r ? r.data : '', lastActivity: r ? r.at : 0 };
    });
  }

  unlinkSessions(user, ids) {
    for (const id of ids) this.users.get(user)?.delete(id);
  }
}

/** A request on session `id`: loaded, changed, saved (it stays active). */
async function use(manager, id, n) {
  const s = manager.createStore(id);
  await s.start();
  assert.equal(s.getId(), id, 'the session should still load');
  s.put('n', n);
  await s.save();
}

async function login(manager, n) {
  const s = manager.createStore();
  await s.start();
  s.put('n', n);
  s.setUser(7);
  await s.save();
  return s.getId();
}

const listed = async (manager) => (await manager.sessionsOf(7)).length;

/**
 * The scenario: A is used every 15 minutes, B never again. B goes idle at 30 minutes; A, though
 * active 11 minutes before, dies at the absolute cap of 60. `serverTtl` drivers expire idle
 * records on the server's own clock, which the test clock cannot move: only the cap is checked.
 */
async function scenario(manager, handler, now, { serverTtl = false } = {}) {
  const a = await login(manager, 1);
  const b = await login(manager, 2);
  assert.equal(await listed(manager), 2);
  now.advance(20 * MIN);
  await use(manager, a, 3);
  assert.equal(await listed(manager), 2, 'both are alive at 20 minutes');
  if (!serverTtl) {
    now.advance(15 * MIN); // 35: B idle for 35 minutes, A for 15
    const list = await manager.sessionsOf(7, { current: manager.createStore(a) });
    assert.equal(list.length, 1, 'B, idle past the lifetime, is listed');
    assert.equal(list[0].current, true, 'the one listed is A');
    await use(manager, a, 4);
    now.advance(15 * MIN); // 50
  } else {
    now.advance(30 * MIN); // 50
  }
  await use(manager, a, 5);
  now.advance(11 * MIN); // 61: A was active 11 minutes ago, but was created 61 minutes ago
  assert.notEqual(await handler.read(a), '', "A's record is still stored (not loaded, not collected)");
  assert.deepEqual(await manager.sessionsOf(7), [], 'A, past absolute_lifetime, is listed');
  assert.equal(await manager.destroyUserSessions(7), 0, 'an expired session is not counted as ended');
  // Its next load starts over, as the listing said.
  const s = manager.createStore(a);
  await s.start();
  assert.notEqual(s.getId(), a);
  void b;
}

const config = { lifetime: LIFETIME, absolute_lifetime: ABSOLUTE };

for (const d of drivers()) {
  if (d.name === 'memcached' || d.name.startsWith('js ')) continue; // no user index
  test(`${d.name}: sessionsOf leaves out sessions past absolute_lifetime or idle past lifetime`, async (t) => {
    if (d.setup) await d.setup();
    t.after(async () => {
      if (d.teardown) await d.teardown();
    });
    const now = testClock(d.serverTtl ? Date.now() : T0);
    const handler = d.make(now, LIFETIME);
    const manager = managerOf(handler, now, config);
    try {
      await scenario(manager, handler, now, { serverTtl: d.serverTtl });
    } finally {
      await manager.close();
    }
  });
}

test('a custom driver whose sessionsOf lists everything: the engine leaves out what expired', async () => {
  const now = testClock(T0);
  const handler = new ListingMapDriver(now);
  const manager = managerOf(handler, now, config);
  await scenario(manager, handler, now);
  // The expired entries were pruned through unlinkSessions.
  assert.equal(handler.users.get('7').size, 0);
});

test('redis gc prunes every user index of sessions that expired or were destroyed', async (t) => {
  const server = await startRedis();
  t.after(() => server.stop());
  const cli = (...args) => execFileSync('redis-cli', ['-p', String(server.port), ...args], { encoding: 'utf8' }).trim();
  const prefix = 'gc*[x]:';
  const handler = new RedisSessionHandler(server.url, { prefix, minutes: LIFETIME });
  const manager = new SessionManager({ driver: 'g', key: 'k'.repeat(40), lottery: [0, 100], lifetime: LIFETIME });
  manager.extend('g', () => handler);
  t.after(() => manager.close());
  const ids = {};
  for (const user of [7, 8]) {
    ids[user] = [];
    for (let i = 0; i < 3; i++) {
      const s = manager.createStore();
      await s.start();
      s.put('i', i);
      s.setUser(user);
      await s.save();
      ids[user].push(s.getId());
    }
  }
  const set = (user) => `${prefix}user:{${user}}`;
  assert.equal(cli('ZCARD', set(7)), '3');
  // User 7: one expires (its key vanishes, as Redis expiring it would), one is destroyed (a
  // tombstone). User 8: one expires. No listing runs before gc.
  cli('DEL', `${prefix}${ids[7][0]}`);
  await handler.destroy(ids[7][1]);
  cli('DEL', `${prefix}${ids[8][2]}`);
  // A key of another app under a different prefix is not touched.
  cli('ZADD', 'other:user:{7}', '1', ids[7][0]);
  assert.equal(await manager.collectGarbage(), 0, 'redis gc removes no session records');
  assert.deepEqual(cli('ZRANGE', set(7), '0', '-1').split('\n'), [ids[7][2]]);
  assert.deepEqual(cli('HKEYS', `${set(7)}:client`).split('\n').filter(Boolean).filter((k) => k !== ids[7][2]), []);
  assert.deepEqual(cli('ZRANGE', set(8), '0', '-1').split('\n').sort(), [ids[8][0], ids[8][1]].sort());
  assert.equal(cli('ZCARD', 'other:user:{7}'), '1');
  assert.equal((await manager.sessionsOf(7)).length, 1);
  assert.equal((await manager.sessionsOf(8)).length, 2);
});
