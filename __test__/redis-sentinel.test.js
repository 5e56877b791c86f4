'use strict';
// The redis driver on a master found through Redis Sentinel: a master, a replica and three
// sentinels (`redis-server <conf> --sentinel`) that this file starts on free loopback ports and
// stops by pid, with an ACL user and the default user off on the data nodes. Round trips,
// minReplicas (WAIT), a killed master (the new master is found and used without a restart, and
// a save made with minReplicas survives), and topologies that cannot work. Then the same topology
// all TLS (data nodes, replication and the sentinels; a test CA): round trips, minReplicas, and
// a wrong CA, a master without `tls` or plain-text sentinels refused.
const test = require('node:test');
const assert = require('node:assert/strict');
const { Store, RedisSessionHandler, SessionManager } = require('..');
const OstroSessionManager = require('../lib/ostro/sessionManager');
const { startRedisSentinel, startRedis, freePort, makeTestCa } = require('./support/servers');
const faults = require('./support/server-faults');

const ACL = { user: 'sessions', password: 'se-s3cret-pw' };
const TIMEOUT = 1000;
const opts = (more) => ({ commandTimeoutMs: TIMEOUT, connectTimeoutMs: 500, ...more });

const sentinelOf = (topo, more) => ({
  sentinel: { masterName: topo.masterName, nodes: topo.sentinelUrls, username: ACL.user, password: ACL.password, ...more },
});

test('redis sentinel', async (t) => {
  const topo = await startRedisSentinel({ acl: ACL });
  t.after(() => topo.stop());

  await t.test('a Store round trip lands on the master the sentinels name, with the TTL', async () => {
    const h = new RedisSessionHandler(sentinelOf(topo), opts({ prefix: 'app:', minutes: 30 }));
    const s = new Store('ostro_session', h);
    await s.start();
    s.put('user.name', 'Zoë');
    s.flash('status', 'saved');
    assert.equal(await s.save(), 'written');
    const back = new Store('ostro_session', h, s.getId());
    await back.start();
    assert.equal(back.get('user.name'), 'Zoë');
    assert.equal(back.get('status'), 'saved');
    const master = await topo.masterPort();
    assert.match(await topo.command(master, ['GET', `app:${s.getId()}`]), /Zo/);
    assert.equal(await topo.command(master, ['TTL', `app:${s.getId()}`]), 1800);
    // db selects the database on the master.
    const db2 = new RedisSessionHandler(sentinelOf(topo, { db: 2 }), opts());
    await db2.write(faults.sid('db', 1), '"two"');
    assert.equal(await topo.commands(master, [['SELECT', '2'], ['GET', `ostro_session:${faults.sid('db', 1)}`]]), '"two"');
    assert.equal(await h.read(faults.sid('db', 1)), '', 'db 0 does not see db 2');
    await h.close();
  });

  await t.test('an OstroJS config/database.js Sentinel connection with Laravel\'s `database: 1` keeps its sessions in database 1', async () => {
    const redis = {
      sessions: {
        sentinels: topo.sentinels.map((n) => ({ host: '127.0.0.1', port: n.port })),
        service: topo.masterName, username: ACL.user, password: ACL.password, database: 1,
      },
    };
    const config = { get: (key) => (key === 'database' ? { redis } : undefined) };
    const app = { config, make() {}, singleton() {} };
    const manager = new OstroSessionManager({ driver: 'redis', connection: 'sessions', prefix: 'ostrodb:', key: 'k'.repeat(40), lottery: [0, 100] }, { app });
    try {
      const { store } = await manager.loadStore(undefined);
      store.put('cart', ['tea']);
      assert.equal(await store.save(), 'written');
      const master = await topo.masterPort();
      const key = `ostrodb:${store.getId()}`;
      assert.match(await topo.commands(master, [['SELECT', '1'], ['GET', key]]), /tea/);
      assert.equal(await topo.command(master, ['EXISTS', key]), 0, 'nothing in database 0');
    } finally {
      await manager.close();
    }
  });

  await t.test('a wrong master password is ERR_SESSION_UNAVAILABLE and never echoed', async () => {
    const h = new RedisSessionHandler(sentinelOf(topo, { password: 'wrong-pw-x' }), opts());
    const [e, ms] = await faults.timed(h.read(faults.sid('pw', 1)));
    assert.ok(e && faults.assertUnavailable(e));
    assert.doesNotMatch(e.message, /wrong-pw-x|se-s3cret-pw/);
    assert.ok(ms <= TIMEOUT + faults.SLACK_MS, `took ${ms} ms`);
  });

  await t.test('a master name the sentinels do not know: ERR_SESSION_UNAVAILABLE naming it', async () => {
    const h = new RedisSessionHandler(sentinelOf(topo, { masterName: 'no-such-master' }), opts());
    const [e, ms] = await faults.timed(h.write(faults.sid('name', 1), '"x"'));
    assert.ok(e && faults.assertUnavailable(e));
    assert.match(e.message, /no-such-master/);
    assert.ok(ms <= TIMEOUT + faults.SLACK_MS, `took ${ms} ms`);
  });

  await t.test('minReplicas: a save resolves once the replica has it; a frozen replica makes it reject', async () => {
    const h = new RedisSessionHandler(sentinelOf(topo), opts({ minReplicas: 1 }));
    const id = faults.sid('wait', 1);
    await h.write(id, '"replicated"');
    const master = await topo.masterPort();
    const replica = topo.data.find((n) => n.port !== master);
    assert.equal(await topo.command(replica.port, ['GET', `ostro_session:${id}`]), '"replicated"');
    await replica.freeze();
    try {
      const [e, ms] = await faults.timed(h.write(id, '"unconfirmed"'));
      assert.ok(e && faults.assertUnavailable(e));
      assert.match(e.message, /acknowledged by 0 of the 1 replica/);
      assert.ok(ms <= TIMEOUT + faults.SLACK_MS, `took ${ms} ms`);
      const [d] = await faults.timed(h.destroy(id));
      assert.ok(d && faults.assertUnavailable(d), 'a destroy waits for the replica too');
      // Without minReplicas the master's word is enough.
      await new RedisSessionHandler(sentinelOf(topo), opts()).write(id, '"master only"');
    } finally {
      replica.thaw();
    }
  });

  await t.test('the session config key minReplicas: a Store save resolves once the replica has it, and a frozen replica makes it ERR_SESSION_UNAVAILABLE naming WAIT', async () => {
    const manager = new SessionManager({ driver: 'redis', connection: sentinelOf(topo), minReplicas: 1, prefix: 'cfg:', key: 'k'.repeat(40), lottery: [0, 100] });
    try {
      const { store } = await manager.loadStore(undefined);
      store.put('cart', ['book']);
      assert.equal(await store.save(), 'written');
      const master = await topo.masterPort();
      const replica = topo.data.find((n) => n.port !== master);
      // Resolved only once the replica had it: read from the replica right away.
      assert.match(await topo.command(replica.port, ['GET', `cfg:${store.getId()}`]), /book/);
      await replica.freeze();
      try {
        store.put('cart', ['book', 'pen']);
        const [e, ms] = await faults.timed(store.save());
        assert.ok(e && faults.assertUnavailable(e));
        assert.match(e.message, /WAIT/);
        assert.match(e.message, /acknowledged by 0 of the 1 replica/);
        assert.ok(ms <= 2000 + faults.SLACK_MS, `took ${ms} ms`);
      } finally {
        replica.thaw();
      }
    } finally {
      await manager.close();
    }
  });

  await t.test('the master killed: rejections while no master is known, then the promoted replica is used', async () => {
    const h = new RedisSessionHandler(sentinelOf(topo), opts({ minReplicas: 1 }));
    const ids = Array.from({ length: 20 }, (_, i) => faults.sid('failover', i));
    await Promise.all(ids.map((id) => h.write(id, '"kept"')));
    const oldMaster = await topo.masterPort();
    await topo.node(oldMaster).kill();
    const killedAt = Date.now();
    let sawUnavailable = false;
    let recovered = false;
    while (Date.now() - killedAt < 20_000) {
      const [e, ms] = await faults.timed(h.read(ids[0]));
      if (e === null) {
        recovered = true;
        break;
      }
      faults.assertUnavailable(e);
      assert.ok(ms <= TIMEOUT + faults.SLACK_MS, `a rejection took ${ms} ms`);
      sawUnavailable = true;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(sawUnavailable, 'no operation noticed the dead master');
    assert.ok(recovered, 'the handler never used the new master');
    const newMaster = await topo.masterPort();
    assert.notEqual(newMaster, oldMaster);
    // Saves acknowledged by the replica before the kill survived the failover.
    for (const id of ids) assert.equal(await h.read(id), '"kept"');
    // Writes go to the new master (no replica is left, so without minReplicas).
    const after = new RedisSessionHandler(sentinelOf(topo), opts());
    await after.write(ids[0], '"after"');
    assert.equal(await topo.command(newMaster, ['GET', `ostro_session:${ids[0]}`]), '"after"');
    assert.equal(await h.read(ids[0]), '"after"', 'the first handler reads from the new master too');
  });
});

test('redis sentinel: topologies that cannot work', async (t) => {
  await t.test('an empty node list, no master name, a bad URL: ERR_SESSION_INVALID_OPTION at construction', () => {
    for (const [conn, what] of [
      [{ sentinel: { masterName: 'm', nodes: [] } }, /node list is empty/],
      [{ sentinel: { masterName: '', nodes: ['redis://127.0.0.1:26379'] } }, /masterName/],
      [{ sentinel: { nodes: ['redis://127.0.0.1:26379'] } }, /masterName/],
      [{ sentinel: { masterName: 'm', nodes: ['http://127.0.0.1:26379'] } }, /node 0/],
      [{ sentinel: { masterName: 'm', nodes: 'redis://127.0.0.1:26379' } }, /list of redis/],
      [{ sentinel: { masterName: 'm', nodes: ['redis://127.0.0.1:26379'], port: 1 } }, /port/],
      [{ sentinels: [] }, /sentinel: \{ masterName/],
    ]) {
      assert.throws(() => new RedisSessionHandler(conn), (e) => e.code === 'ERR_SESSION_INVALID_OPTION' && what.test(e.message), JSON.stringify(conn));
    }
  });

  await t.test('no sentinel listening: ERR_SESSION_UNAVAILABLE within the timeout', async () => {
    const h = new RedisSessionHandler({ sentinel: { masterName: 'm', nodes: [`redis://127.0.0.1:${await freePort()}`] } }, opts());
    const [e, ms] = await faults.timed(h.read(faults.sid('none', 1)));
    assert.ok(e && faults.assertUnavailable(e));
    assert.ok(ms <= TIMEOUT + faults.SLACK_MS, `took ${ms} ms`);
  });

  await t.test('a plain redis-server given as a sentinel: ERR_SESSION_UNAVAILABLE', async () => {
    const plain = await startRedis();
    t.after(() => plain.stop());
    const h = new RedisSessionHandler({ sentinel: { masterName: 'm', nodes: [plain.url] } }, opts());
    const [e, ms] = await faults.timed(h.read(faults.sid('plain', 1)));
    assert.ok(e && faults.assertUnavailable(e));
    assert.ok(ms <= TIMEOUT + faults.SLACK_MS, `took ${ms} ms`);
  });
});

test('redis sentinel over TLS (rediss:// sentinels, a TLS master and replica, TLS replication, ACL user)', async (t) => {
  const topo = await startRedisSentinel({ acl: ACL, tls: true });
  t.after(() => topo.stop());
  const tlsOf = (more, o) => [sentinelOf(topo, { tls: { caFile: topo.caFile }, ...more }), opts(o)];

  await t.test('a Store round trip lands on the master the sentinels name, for each way of giving the CA', async () => {
    for (const [i, [conn, o]] of [
      tlsOf({}, { prefix: 'tls0:', minutes: 30 }),
      // tls: true for the master, the CA as a handler option (trusted for the sentinels too).
      [sentinelOf(topo, { tls: true }), opts({ prefix: 'tls1:', minutes: 30, tls: { caFile: topo.caFile } })],
      // db selects the database on the TLS master.
      tlsOf({ db: 3 }, { prefix: 'tls2:', minutes: 30 }),
    ].entries()) {
      const h = new RedisSessionHandler(conn, o);
      const s = new Store('ostro_session', h);
      await s.start();
      s.put('user.name', 'Zoë');
      s.flash('status', 'saved');
      assert.equal(await s.save(), 'written');
      const back = new Store('ostro_session', h, s.getId());
      await back.start();
      assert.equal(back.get('user.name'), 'Zoë');
      assert.equal(back.get('status'), 'saved');
      // Checked on the master over a TLS connection of the test's own.
      const master = await topo.masterPort();
      const db = i === 2 ? '3' : '0';
      assert.match(await topo.commands(master, [['SELECT', db], ['GET', `tls${i}:${s.getId()}`]]), /Zo/);
      assert.equal(await topo.commands(master, [['SELECT', db], ['TTL', `tls${i}:${s.getId()}`]]), 1800);
      await h.close();
    }
  });

  await t.test('minReplicas: a save resolves once the replica has it over TLS replication; a frozen replica makes it reject', async () => {
    const [conn, o] = tlsOf({}, { minReplicas: 1 });
    const h = new RedisSessionHandler(conn, o);
    const id = faults.sid('tlswait', 1);
    await h.write(id, '"replicated"');
    const master = await topo.masterPort();
    const replica = topo.data.find((n) => n.port !== master);
    assert.equal(await topo.command(replica.port, ['GET', `ostro_session:${id}`]), '"replicated"');
    await replica.freeze();
    try {
      const [e, ms] = await faults.timed(h.write(id, '"unconfirmed"'));
      assert.ok(e && faults.assertUnavailable(e));
      assert.match(e.message, /acknowledged by 0 of the 1 replica/);
      assert.ok(ms <= TIMEOUT + faults.SLACK_MS, `took ${ms} ms`);
    } finally {
      replica.thaw();
    }
    await h.close();
  });

  await t.test('another CA, the system roots, a master without tls, plain-text sentinels: ERR_SESSION_UNAVAILABLE naming the cause', async () => {
    const other = makeTestCa(topo.dir, 'other');
    const plain = topo.sentinelUrls.map((u) => u.replace(/^rediss:/, 'redis:'));
    for (const [[conn, o], cause] of [
      [tlsOf({ tls: { caFile: other.caFile } }), /TLS: invalid peer certificate: UnknownIssuer/],
      [tlsOf({ tls: true }), /TLS: invalid peer certificate: UnknownIssuer/],
      // The sentinels are reached over TLS, but `tls` is the master's: plain text to its TLS port.
      [[sentinelOf(topo), opts({ tls: { caFile: topo.caFile } })], /reset|closed|broken pipe/i],
      [tlsOf({ nodes: plain }), /reset|closed|broken pipe/i],
    ]) {
      const h = new RedisSessionHandler(conn, o);
      const [e, ms] = await faults.timed(h.write(faults.sid('tlsbad', 1), '"x"'));
      assert.ok(e, `${JSON.stringify(conn.sentinel.nodes)} with ${JSON.stringify(conn.sentinel.tls)}: the write went through`);
      faults.assertUnavailable(e);
      assert.match(e.message, cause);
      assert.match(e.message, /master "sessions" via sentinels 127\.0\.0\.1:\d+/);
      assert.doesNotMatch(e.message, /se-s3cret-pw/);
      assert.ok(ms <= TIMEOUT + faults.SLACK_MS, `took ${ms} ms`);
      await h.close();
    }
    assert.equal(await topo.command(await topo.masterPort(), ['EXISTS', `ostro_session:${faults.sid('tlsbad', 1)}`]), 0);
  });
});
