'use strict';
// A user's sessions (issue 13) through the public API: store.setUser / user_attribute link a
// session to a user, manager.sessionsOf lists that user's live sessions by handle (never the
// id), destroySession ends one, destroyUserSessions({ except }) is "log out other devices".
// Every driver that keeps an index, against real servers and files; two processes sharing one
// SQLite file; handles bound to the app key; drivers that cannot enumerate refuse by name.
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { SessionManager } = require('..');
const { startRedis, startRedisCluster } = require('./support/servers');
const { tmpDir } = require('./support/tmp');

const KEY = 'user-sessions-key-one-0123456789abcdef';
const KEY2 = 'user-sessions-key-two-0123456789abcdef';
const HANDLE = /^[0-9a-f]{32}$/;

/** A new session linked to `user`, saved with request metadata `n`. */
async function login(manager, user, n) {
  const s = manager.createStore();
  await s.start();
  s.put('n', n);
  if (user !== null) s.setUser(user);
  s.setRequestMeta({ ip: `10.0.0.${n}`, userAgent: `agent ${n}` });
  await s.save();
  return s;
}

async function loads(manager, id) {
  const s = manager.createStore(id);
  await s.start();
  return s.get('n') !== null;
}

/** The scenario on one manager: 3 sessions of user 7, 1 of user 8, 1 anonymous. */
async function scenario(manager) {
  const seven = [await login(manager, 7, 1), await login(manager, '7', 2), await login(manager, 7, 3)];
  const eight = await login(manager, 8, 4);
  const anon = await login(manager, null, 5);
  assert.equal(seven[0].getUser(), '7');
  assert.equal(anon.getUser(), null);
  assert.equal(seven[0].all()._user, undefined, 'the link is not app data');

  const list = await manager.sessionsOf(7, { current: seven[1] });
  assert.equal(list.length, 3);
  const ids = seven.map((s) => s.getId());
  for (const e of list) {
    assert.deepEqual(Object.keys(e).sort(), ['createdAt', 'current', 'handle', 'ipAddress', 'lastActivity', 'userAgent']);
    assert.match(e.handle, HANDLE);
    assert.ok(!ids.some((id) => JSON.stringify(e).includes(id)), 'no id in an entry');
    assert.ok(e.createdAt instanceof Date && e.lastActivity instanceof Date);
    assert.match(e.ipAddress, /^10\.0\.0\.[123]$/);
    assert.equal(e.userAgent, `agent ${e.ipAddress.slice(-1)}`);
  }
  assert.deepEqual(list.map((e) => e.current).filter(Boolean), [true]);
  assert.equal(list.find((e) => e.current).ipAddress, '10.0.0.2');
  assert.equal((await manager.sessionsOf(8)).length, 1);
  assert.deepEqual(await manager.sessionsOf(9), []);

  // Ending one by handle: its record is gone for every later request.
  const first = list.find((e) => e.ipAddress === '10.0.0.1');
  assert.equal(await manager.destroySession(7, first.handle), true);
  assert.equal(await loads(manager, ids[0]), false);
  assert.equal(await manager.destroySession(7, first.handle), false, 'already gone');
  // User 8's handle is not user 7's to end.
  const [e8] = await manager.sessionsOf(8);
  assert.equal(await manager.destroySession(7, e8.handle), false);
  assert.equal(await loads(manager, eight.getId()), true);

  // "Log out other devices" leaves exactly the current one.
  await login(manager, 7, 6);
  assert.equal(await manager.destroyUserSessions(7, { except: seven[1] }), 2);
  const left = await manager.sessionsOf(7, { current: seven[1] });
  assert.equal(left.length, 1);
  assert.equal(left[0].current, true);
  assert.equal(await loads(manager, ids[1]), true);
  assert.equal(await loads(manager, ids[2]), false);
  assert.equal(await loads(manager, eight.getId()), true);
  assert.equal(await loads(manager, anon.getId()), true);

  // Logout (invalidate) unlinks: nothing of user 7 is left.
  const s = manager.createStore(ids[1]);
  await s.start();
  await s.invalidate();
  await s.save();
  assert.deepEqual(await manager.sessionsOf(7), []);
  // Everything ends, with no exception.
  assert.equal(await manager.destroyUserSessions(8), 1);
  assert.equal(await loads(manager, eight.getId()), false);
}

test('array driver', async () => {
  const m = new SessionManager({ driver: 'array', key: KEY });
  await scenario(m);
});

test('file driver', async () => {
  const m = new SessionManager({ driver: 'file', files: path.join(tmpDir(), 's'), key: KEY });
  await scenario(m);
});

test('sqlite driver', async () => {
  const m = new SessionManager({ driver: 'sqlite', connection: path.join(tmpDir(), 's.sqlite'), key: KEY });
  await scenario(m);
  await m.close();
});

test('redis driver (a real redis-server)', async (t) => {
  const server = await startRedis();
  t.after(() => server.stop());
  const m = new SessionManager({ driver: 'redis', connection: server.url, key: KEY });
  t.after(() => m.close());
  await scenario(m);
});

test('redis driver on a Redis Cluster (6 nodes): the index and the sessions sit in different slots', async (t) => {
  const c = await startRedisCluster();
  t.after(() => c.stop());
  const cluster = c.nodes.map((x) => `redis://127.0.0.1:${x.port}`);
  const m = new SessionManager({ driver: 'redis', connection: { cluster }, key: KEY });
  t.after(() => m.close());
  await scenario(m);
  // A read-only request (a touch) keeps a linked session listed.
  const s = await login(m, 11, 6);
  const again = m.createStore(s.getId());
  await again.start();
  assert.equal(await again.save(), 'touched');
  assert.equal((await m.sessionsOf(11)).length, 1);
});

test('a custom driver with sessionsOf', async () => {
  // A plain in-memory driver keeping its own index from `meta.userId`.
  const records = new Map();
  const index = new Map();
  const handler = {
    read: (id) => records.get(id)?.data ?? '',
    write: (id, data, meta) => {
      records.set(id, { data, at: Date.now(), meta: meta || {} });
      if (meta && meta.userId) {
        if (!index.has(meta.userId)) index.set(meta.userId, new Set());
        index.get(meta.userId).add(id);
      }
    },
    destroy: (id) => { records.delete(id); },
    sessionsOf: (user) => [...(index.get(user) || [])].map((id) => {
      const r = records.get(id);
      return { id, payload: r ? r.data : '', lastActivity: r ? r.at : 0, ipAddress: r?.meta.ip, userAgent: r?.meta.userAgent };
    }),
    unlinkSessions: (user, ids) => { for (const id of ids) index.get(user)?.delete(id); },
  };
  const m = new SessionManager({ driver: 'mine', key: KEY });
  m.extend('mine', () => handler);
  await scenario(m);
  assert.equal(index.get('7').size, 0, 'stale entries were pruned through unlinkSessions');
});

test('two processes sharing one SQLite file see and end each other\'s sessions', async (t) => {
  const db = path.join(tmpDir(), 'shared.sqlite');
  const m = new SessionManager({ driver: 'sqlite', connection: db, key: KEY });
  t.after(() => m.close());
  const mine = await login(m, 'ada', 1);
  const child = spawn(process.execPath, [path.join(__dirname, 'support', 'user-sessions-child.js'), db, KEY, 'ada', '2'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { err += d; });
  const line = (re) => new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`child: no ${re} in ${JSON.stringify(out)} ${err}`)), 20_000);
    const check = () => {
      const m2 = re.exec(out);
      if (m2) { clearTimeout(timer); child.stdout.off('data', check); resolve(m2); }
    };
    child.stdout.on('data', check);
    child.once('exit', (code) => { if (!re.test(out)) { clearTimeout(timer); reject(new Error(`child exited ${code}: ${err}`)); } });
    check();
  });
  await line(/^done$/m);
  const list = await m.sessionsOf('ada', { current: mine });
  assert.equal(list.length, 3);
  assert.deepEqual(list.filter((e) => e.ipAddress === '10.9.9.9').map((e) => e.userAgent).sort(), ['child 0', 'child 1']);
  assert.equal(await m.destroyUserSessions('ada', { except: mine }), 2);
  child.stdin.write('check\n');
  const [, alive] = await line(/^alive (\d+)$/m);
  assert.equal(alive, '0', 'the other process no longer loads its sessions');
  assert.equal((await m.sessionsOf('ada')).length, 1);
});

test('a handle is bound to the app key: another key can neither list it nor end with it', async () => {
  const db = path.join(tmpDir(), 'keys.sqlite');
  const a = new SessionManager({ driver: 'sqlite', connection: db, key: KEY });
  const b = new SessionManager({ driver: 'sqlite', connection: db, key: KEY2 });
  const s = await login(a, 'ada', 1);
  const [ea] = await a.sessionsOf('ada');
  const [eb] = await b.sessionsOf('ada');
  assert.notEqual(ea.handle, eb.handle);
  assert.equal(await b.destroySession('ada', ea.handle), false);
  assert.equal(await a.destroySession('ada', eb.handle), false);
  assert.equal(await loads(a, s.getId()), true, 'nothing was ended');
  assert.equal(await a.destroySession('ada', ea.handle), true);
  await a.close();
  await b.close();
});

test('drivers that cannot enumerate reject with ERR_SESSION_UNSUPPORTED naming the driver', async () => {
  for (const driver of ['memcached', 'cookie']) {
    const m = new SessionManager({ driver, key: KEY });
    for (const call of [() => m.sessionsOf(7), () => m.destroyUserSessions(7), () => m.destroySession(7, 'a'.repeat(32))]) {
      await assert.rejects(call(), (e) => e.code === 'ERR_SESSION_UNSUPPORTED' && e.message.includes(`the ${driver} session driver`));
    }
    await m.close();
  }
  const m = new SessionManager({ driver: 'legacy', key: KEY });
  m.extend('legacy', () => ({ read: () => '', write: () => {}, destroy: () => {} }));
  await assert.rejects(m.sessionsOf(7), (e) => e.code === 'ERR_SESSION_UNSUPPORTED' && e.message.includes('the legacy session driver'));
});

test('bad input is refused with a coded error', async () => {
  const m = new SessionManager({ driver: 'array', key: KEY });
  const s = m.createStore();
  await s.start();
  for (const bad of [{}, 1.5, true, '', 'x'.repeat(256), 'a\nb']) {
    assert.throws(() => s.setUser(bad), (e) => e.code === 'ERR_SESSION_VALUE', JSON.stringify(bad));
  }
  for (const bad of [undefined, null, '', {}, 1.5]) {
    await assert.rejects(m.sessionsOf(bad), (e) => e.code === 'ERR_SESSION_INVALID_OPTION');
  }
  await assert.rejects(m.destroySession(7, 'not-a-handle'), (e) => e.code === 'ERR_SESSION_INVALID_OPTION' && /32 lowercase hex/.test(e.message));
  await assert.rejects(m.sessionsOf(7, { current: 'an id string' }), (e) => e.code === 'ERR_SESSION_INVALID_OPTION');
  await assert.rejects(m.destroyUserSessions(7, { except: {} }), (e) => e.code === 'ERR_SESSION_INVALID_OPTION');
  assert.throws(() => new SessionManager({ driver: 'array', key: KEY, user_attribute: 5 }), (e) => e.code === 'ERR_SESSION_INVALID_OPTION');
});

test('user_attribute links the session named by an attribute at every save', async () => {
  const m = new SessionManager({ driver: 'file', files: path.join(tmpDir(), 's'), key: KEY, user_attribute: 'auth.id' });
  const s = m.createStore();
  await s.start();
  s.put('auth', { id: 42 });
  await s.save();
  assert.equal(s.getUser(), '42');
  assert.equal((await m.sessionsOf(42)).length, 1);
  const again = m.createStore(s.getId());
  await again.start();
  again.forget('auth');
  await again.save();
  assert.deepEqual(await m.sessionsOf(42), []);
});

for (const driver of ['array', 'file', 'sqlite']) {
  test(`setUser(null) unlinks: sessionsOf no longer lists the session, which lives on (${driver})`, async () => {
    const dir = tmpDir();
    const m = new SessionManager({ driver, key: KEY, files: path.join(dir, 's'), connection: path.join(dir, 's.sqlite') });
    const kept = await login(m, 7, 1);
    const s = await login(m, 7, 2);
    assert.equal((await m.sessionsOf(7)).length, 2);
    const again = m.createStore(s.getId());
    await again.start();
    assert.equal(again.getUser(), '7');
    again.setUser(null);
    assert.equal(again.getUser(), null);
    assert.equal(await again.save(), 'written');
    const list = await m.sessionsOf(7, { current: kept });
    assert.equal(list.length, 1, 'only the other session is listed');
    assert.equal(list[0].current, true);
    // The unlinked session itself is not ended: it loads, with its data and no user.
    const back = m.createStore(s.getId());
    await back.start();
    assert.equal(back.get('n'), 2);
    assert.equal(back.getUser(), null);
    // Nor can it be ended as that user's any more.
    assert.equal(await m.destroyUserSessions(7, { except: kept }), 0);
    assert.equal(await loads(m, s.getId()), true);
    await m.close();
  });
}
