'use strict';
// Issue 10, defect 3: a logout must not be undone by requests that only read. Request A loads
// a session, request B destroys it (invalidate), then A saves unchanged: the old "touch, else
// write" rule wrote A's stale copy back. Now the touch finds no record and nothing is written
// ('dropped'), on every driver and through the JS handler bridge, with and without touch().
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { Store, ArraySessionHandler, FileSessionHandler, SqliteSessionHandler, RedisSessionHandler } = require('..');
const { startRedis } = require('./support/servers');
const { tmpDir } = require('./support/tmp');

/** A plain JS handler over a Map; `withTouch` adds touch(). */
function mapHandler(withTouch) {
  const m = new Map();
  const h = {
    read: (id) => m.get(id) || '',
    write: (id, data) => { m.set(id, data); },
    destroy: (id) => { m.delete(id); },
  };
  if (withTouch) h.touch = (id) => m.has(id);
  return h;
}

let redis;
const drivers = {
  array: () => new ArraySessionHandler(120),
  file: () => new FileSessionHandler(path.join(tmpDir(), 'sessions'), 120),
  sqlite: () => new SqliteSessionHandler(path.join(tmpDir(), 'sessions.db')),
  redis: () => new RedisSessionHandler(redis.url, { prefix: `touch${Math.random().toString(36).slice(2)}:` }),
  'JS handler with touch()': () => mapHandler(true),
  'JS handler without touch()': () => mapHandler(false),
};

test.before(async () => { redis = await startRedis(); });
test.after(() => redis && redis.stop());

async function loggedIn(handler) {
  const login = new Store('s', handler);
  await login.start();
  login.put('user', 'alice');
  assert.equal(await login.save(), 'written');
  return login.getId();
}

async function loaded(handler, id) {
  const s = new Store('s', handler, id);
  await s.start();
  assert.equal(s.get('user'), 'alice');
  return s;
}

for (const [name, make] of Object.entries(drivers)) {
  test(`${name}: a read-only request does not bring back a session destroyed meanwhile`, async () => {
    const handler = make();
    try {
      const id = await loggedIn(handler);
      const reader = await loaded(handler, id);
      const resaver = await loaded(handler, id);
      const logout = await loaded(handler, id);
      await logout.invalidate();
      assert.equal(await logout.save(), 'written');

      assert.equal(await reader.save(), 'dropped');
      assert.equal(await handler.read(id) || '', '', 'the old id has no record');
      assert.equal(await resaver.save({ resave: true }), 'dropped', 'resave does not resurrect either');
      assert.equal(await handler.read(id) || '', '');

      const again = new Store('s', handler, id);
      await again.start();
      assert.equal(again.get('user'), null, 'the logged-out id loads empty');
    } finally {
      if (typeof handler.close === 'function') await handler.close();
    }
  });

  test(`${name}: save reports written, touched and written for resave on a live record`, async () => {
    const handler = make();
    try {
      const fresh = new Store('s', handler);
      await fresh.start();
      assert.equal(await fresh.save(), 'written', 'a new session is written even unchanged');
      const id = fresh.getId();
      const reader = new Store('s', handler, id);
      await reader.start();
      assert.equal(await reader.save(), 'touched');
      await reader.start();
      assert.equal(await reader.save({ resave: true }), 'written');
      assert.notEqual(await handler.read(id) || '', '');
    } finally {
      if (typeof handler.close === 'function') await handler.close();
    }
  });
}
