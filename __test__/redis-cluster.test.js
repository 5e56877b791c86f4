'use strict';
// The redis driver on a Redis Cluster of 6 redis-server processes (3 masters, 3 replicas, made
// with `redis-cli --cluster create`) that this file starts on free loopback ports and stops by
// pid, with an ACL user and the default user off: the conformance kit, Store round trips,
// compare-and-set under 200 concurrent saves, a slot migration under load, a master killed
// (rejections while its slots have no master, recovery after the promotion), minReplicas, and
// topologies that cannot work. Then the same cluster all TLS (clients, cluster bus, replication;
// a test CA): round trips on every master, compare-and-set, minReplicas, and a wrong or missing
// CA refused naming TLS.
const path = require('node:path');
const test = require('node:test');
const assert = require('node:assert/strict');
const { Store, RedisSessionHandler } = require('..');
const sessionHandlerConformance = require('../lib/testing');
const { startRedisCluster, startRedis, freePort, makeTestCa } = require('./support/servers');
const faults = require('./support/server-faults');

const ACL = { user: 'sessions', password: 'cl-s3cret-pw' };
const TIMEOUT = 1000;
const opts = (more) => ({ commandTimeoutMs: TIMEOUT, connectTimeoutMs: 500, ...more });
const NAME = 'ostro_session';

/** The cluster connection: one seed URL is enough, credentials as separate fields. */
const clusterOf = (c, n = 1) => ({ cluster: c.nodes.slice(0, n).map((x) => `redis://127.0.0.1:${x.port}`), username: ACL.user, password: ACL.password });

/** The hash slot of a key (CRC16/XMODEM mod 16384), computed here, not asked of the driver. */
function slotOf(key) {
  let crc = 0;
  for (const b of Buffer.from(key)) {
    crc ^= b << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc % 16384;
}

let kitCluster;
sessionHandlerConformance(({ minutes }) => new RedisSessionHandler(clusterOf(kitCluster), opts({ minutes })), {
  name: 'RedisSessionHandler on a Redis Cluster (6 nodes, ACL user)',
  gcRemoves: false,
  lifetimeSeconds: 1,
  before: async () => { kitCluster = await startRedisCluster({ acl: ACL }); },
  after: () => kitCluster && kitCluster.stop(),
});

test('redis cluster', async (t) => {
  const c = await startRedisCluster({ acl: ACL });
  t.after(() => c.stop());

  await t.test('Store round trips: each session is one key on the master of its slot, with the TTL', async () => {
    const h = new RedisSessionHandler(clusterOf(c), opts({ prefix: 'app:', minutes: 30 }));
    const ids = [];
    for (let i = 0; i < 30; i++) {
      const s = new Store(NAME, h);
      await s.start();
      s.put('user.name', `Zoë ${i}`);
      s.flash('status', 'saved');
      assert.equal(await s.save(), 'written');
      ids.push(s.getId());
    }
    const holders = new Set();
    for (const [i, id] of ids.entries()) {
      const back = new Store(NAME, h, id);
      await back.start();
      assert.equal(back.get('user.name'), `Zoë ${i}`);
      assert.equal(back.get('status'), 'saved');
      const key = `app:${id}`;
      const master = await c.masterOf(slotOf(key));
      holders.add(master.port);
      assert.match(await c.command(master.port, ['GET', key]), new RegExp(`Zo.* ${i}`));
      const ttl = await c.command(master.port, ['TTL', key]);
      assert.ok(ttl > 1790 && ttl <= 1800, `TTL ${ttl}`);
    }
    assert.equal(holders.size, 3, 'sessions are spread over the three masters');
    // Destroy leaves a tombstone that reads as no session.
    await h.destroy(ids[0]);
    assert.equal(await h.read(ids[0]), '');
    assert.equal(await h.touch(ids[0]), false);
    await h.close();
  });

  await t.test('200 concurrent saves of one session keep every key and exactly +200', async () => {
    const h = new RedisSessionHandler(clusterOf(c, 3), opts());
    const seed = new Store(NAME, h);
    await seed.start();
    seed.put('n', 0);
    assert.equal(await seed.save(), 'written');
    const id = seed.getId();
    const stores = Array.from({ length: 200 }, () => new Store(NAME, h, id));
    await Promise.all(stores.map((s) => s.start()));
    const outcomes = await Promise.all(stores.map((s, i) => {
      s.increment('n');
      s.put(`k${i}`, i);
      return s.save();
    }));
    assert.deepEqual(new Set(outcomes), new Set(['written']));
    const back = new Store(NAME, h, id);
    await back.start();
    assert.equal(back.get('n'), 200, 'concurrent increments were lost');
    for (let i = 0; i < 200; i++) assert.equal(back.get(`k${i}`), i);
    // A logout racing a writer sticks: the writer's save is dropped, the old id stays empty.
    const writer = new Store(NAME, h, id);
    await writer.start();
    const logout = new Store(NAME, h, id);
    await logout.start();
    await logout.invalidate();
    writer.put('late', true);
    assert.equal(await logout.save(), 'written');
    assert.equal(await writer.save(), 'dropped');
    assert.equal(await h.read(id), '');
    await h.close();
  });

  await t.test('a wrong password is ERR_SESSION_UNAVAILABLE and never echoed', async () => {
    const h = new RedisSessionHandler({ ...clusterOf(c), password: 'wrong-pw-x' }, opts());
    const [e, ms] = await faults.timed(h.read(faults.sid('pw', 1)));
    assert.ok(e && faults.assertUnavailable(e));
    assert.doesNotMatch(e.message, /wrong-pw-x|cl-s3cret-pw/);
    assert.ok(ms <= TIMEOUT + faults.SLACK_MS, `took ${ms} ms`);
    // Credentials in the URL work as well as separate fields.
    const inUrl = new RedisSessionHandler({ cluster: [`redis://${ACL.user}:${ACL.password}@127.0.0.1:${c.nodes[2].port}`] }, opts());
    await inUrl.write(faults.sid('pw', 2), '"url"');
    assert.equal(await inUrl.read(faults.sid('pw', 2)), '"url"');
  });

  await t.test('minReplicas: a save resolves once the replica of its master has it', async () => {
    const h = new RedisSessionHandler(clusterOf(c), opts({ minReplicas: 1 }));
    const id = faults.sid('wait', 1);
    await h.write(id, '"replicated"');
    const key = `ostro_session:${id}`;
    const master = await c.masterOf(slotOf(key));
    const replica = (await c.topology()).find((n) => n.masterId === master.id);
    // WAIT returned 1 before the save resolved, so the replica has it now.
    assert.equal(await c.commands(replica.port, [['READONLY'], ['GET', key]]), '"replicated"');
    // A frozen replica acknowledges nothing: the save is written on the master but rejects.
    const node = c.node(replica.port);
    await node.freeze();
    try {
      const [e, ms] = await faults.timed(h.write(id, '"unconfirmed"'));
      assert.ok(e && faults.assertUnavailable(e));
      assert.match(e.message, /minReplicas/);
      assert.ok(ms <= TIMEOUT + faults.SLACK_MS, `took ${ms} ms`);
      // Without minReplicas the same save resolves on the master's word.
      await new RedisSessionHandler(clusterOf(c), opts()).write(id, '"master only"');
    } finally {
      node.thaw();
    }
  });

  await t.test('a slot migration under load (redis-cli --cluster reshard): every operation succeeds', async () => {
    const h = new RedisSessionHandler(clusterOf(c), opts({ commandTimeoutMs: 3000 }));
    const ids = Array.from({ length: 300 }, (_, i) => faults.sid('reshard', i));
    await Promise.all(ids.map((id, i) => h.write(id, JSON.stringify({ i, v: 0 }))));
    const before = await c.topology();
    const [from, to] = before.filter((n) => n.role === 'master' && n.slots.length > 0);
    let running = true;
    let ops = 0;
    const failures = [];
    const load = (async () => {
      for (let round = 1; running; round++) {
        await Promise.all(ids.map(async (id, i) => {
          try {
            const want = JSON.stringify({ i, v: round });
            await h.write(id, want);
            const got = await h.read(id);
            if (got !== want) failures.push(`${id}: read ${got} after writing ${want}`);
            ops += 2;
          } catch (e) {
            failures.push(`${e.code}: ${e.message}`);
          }
        }));
      }
    })();
    await c.cli(['--cluster', 'reshard', `127.0.0.1:${from.port}`, '--cluster-from', from.id, '--cluster-to', to.id,
      '--cluster-slots', '1500', '--cluster-yes', '--cluster-pipeline', '20']);
    running = false;
    await load;
    assert.deepEqual(failures.slice(0, 5), [], `${failures.length} failed operations`);
    const after = await c.topology();
    const slotsOf = (topo, id) => topo.find((n) => n.id === id).slots.reduce((a, [x, y]) => a + y - x + 1, 0);
    assert.equal(slotsOf(after, to.id) - slotsOf(before, to.id), 1500, 'the slots moved');
    assert.ok(ops > ids.length * 4, `load ran during the migration (${ops} operations)`);
    // Every session is where its slot now is, and reads back.
    for (const [i, id] of ids.entries()) assert.match(await h.read(id), new RegExp(`"i":${i},`));
    await h.close();
  });

  await t.test('a master killed: its slots reject within the timeout, others work, then the promoted replica serves', async () => {
    const h = new RedisSessionHandler(clusterOf(c), opts());
    const ids = Array.from({ length: 60 }, (_, i) => faults.sid('failover', i));
    await Promise.all(ids.map((id) => h.write(id, '"before"')));
    const victim = (await c.topology()).find((n) => n.role === 'master' && n.slots.length > 0 && n.port !== c.nodes[0].port);
    const onVictim = [];
    const elsewhere = [];
    for (const id of ids) {
      const slot = slotOf(`ostro_session:${id}`);
      (victim.slots.some(([a, b]) => slot >= a && slot <= b) ? onVictim : elsewhere).push(id);
    }
    assert.ok(onVictim.length > 0 && elsewhere.length > 0);
    await c.node(victim.port).kill();
    const killedAt = Date.now();
    let sawUnavailable = false;
    let recoveredAt = null;
    while (Date.now() - killedAt < 15_000) {
      const results = await Promise.all(onVictim.map((id) => faults.timed(h.write(id, '"after"'))));
      for (const [e, ms] of results) {
        if (e) {
          faults.assertUnavailable(e);
          assert.ok(ms <= TIMEOUT + faults.SLACK_MS, `a rejection took ${ms} ms`);
          sawUnavailable = true;
        }
      }
      if (results.every(([e]) => e === null)) {
        recoveredAt = Date.now();
        break;
      }
      // Sessions on the other masters are served meanwhile.
      for (const id of elsewhere.slice(0, 5)) assert.equal(await h.read(id), '"before"');
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(sawUnavailable, 'no operation noticed the dead master');
    assert.ok(recoveredAt !== null, 'the promoted replica never served the slots');
    const promoted = (await c.topology()).find((n) => n.role === 'master' && !n.failed && n.slots.some(([a]) => a === victim.slots[0][0]));
    assert.ok(promoted && promoted.port !== victim.port, 'a replica took over the slots');
    for (const id of onVictim) assert.equal(await h.read(id), '"after"');
    for (const id of elsewhere) assert.equal(await h.read(id), '"before"');
    await h.close();
  });
});

test('redis cluster: topologies that cannot work', async (t) => {
  await t.test('an empty node list, a bad URL, a unix socket or a db number: ERR_SESSION_INVALID_OPTION at construction', () => {
    for (const [conn, what] of [
      [{ cluster: [] }, /node list is empty/],
      [{ cluster: ['http://127.0.0.1:7000'] }, /node 0/],
      [{ cluster: ['redis+unix:///tmp/r.sock'] }, /unix socket/],
      [{ cluster: ['redis://127.0.0.1:7000/2'] }, /database 0/],
      [{ cluster: 'redis://127.0.0.1:7000' }, /list of redis/],
      [{ cluster: ['redis://127.0.0.1:7000'], host: 'x' }, /host/],
    ]) {
      assert.throws(() => new RedisSessionHandler(conn), (e) => e.code === 'ERR_SESSION_INVALID_OPTION' && what.test(e.message), JSON.stringify(conn));
    }
  });

  await t.test('nothing listening: ERR_SESSION_UNAVAILABLE within the timeout', async () => {
    const h = new RedisSessionHandler({ cluster: [`redis://127.0.0.1:${await freePort()}`] }, opts());
    const [e, ms] = await faults.timed(h.read(faults.sid('none', 1)));
    assert.ok(e && faults.assertUnavailable(e));
    assert.ok(ms <= TIMEOUT + faults.SLACK_MS, `took ${ms} ms`);
  });

  await t.test('a standalone server given as a cluster node: ERR_SESSION_UNAVAILABLE saying cluster support is off', async () => {
    const plain = await startRedis();
    t.after(() => plain.stop());
    const h = new RedisSessionHandler({ cluster: [plain.url] }, opts());
    const [e, ms] = await faults.timed(h.write(faults.sid('plain', 1), '"x"'));
    assert.ok(e && faults.assertUnavailable(e));
    assert.match(e.message, /cluster support disabled/i);
    assert.ok(ms <= TIMEOUT + faults.SLACK_MS, `took ${ms} ms`);
  });
});

test('redis cluster over TLS (rediss://, cluster bus and replication on TLS, ACL user)', async (t) => {
  const c = await startRedisCluster({ acl: ACL, tls: true });
  t.after(() => c.stop());
  const seed = (n = 0) => `rediss://127.0.0.1:${c.nodes[n].port}`;
  const login = { username: ACL.user, password: ACL.password };

  await t.test('Store round trips reach every master through one seed, over TLS, for each way of asking for it', async () => {
    for (const [i, [conn, o]] of [
      [{ cluster: [seed()], ...login, tls: { caFile: c.caFile } }, {}],
      // tls: true turns redis:// node URLs into TLS ones; the CA as a handler option.
      [{ cluster: [`redis://127.0.0.1:${c.nodes[1].port}`], ...login, tls: true }, { tls: { caFile: c.caFile } }],
      // Credentials in the URL.
      [{ cluster: [`rediss://${ACL.user}:${ACL.password}@127.0.0.1:${c.nodes[2].port}`], tls: { caFile: c.caFile } }, {}],
    ].entries()) {
      const h = new RedisSessionHandler(conn, opts({ prefix: `tls${i}:`, minutes: 30, ...o }));
      const holders = new Set();
      for (let j = 0; j < 12; j++) {
        const s = new Store(NAME, h);
        await s.start();
        s.put('user.name', `Zoë ${j}`);
        assert.equal(await s.save(), 'written');
        const back = new Store(NAME, h, s.getId());
        await back.start();
        assert.equal(back.get('user.name'), `Zoë ${j}`);
        // Checked on the master of its slot, over a TLS connection of the test's own.
        const key = `tls${i}:${s.getId()}`;
        const master = await c.masterOf(slotOf(key));
        holders.add(master.port);
        assert.match(await c.command(master.port, ['GET', key]), new RegExp(`Zo.* ${j}`));
        const ttl = await c.command(master.port, ['TTL', key]);
        assert.ok(ttl > 1790 && ttl <= 1800, `TTL ${ttl}`);
      }
      assert.equal(holders.size, 3, `connection ${i}: sessions on all three masters`);
      await h.close();
    }
  });

  await t.test('100 concurrent saves of one session over TLS: every key and exactly +100', async () => {
    const h = new RedisSessionHandler({ cluster: [seed(3)], ...login, tls: { caFile: c.caFile } }, opts());
    const first = new Store(NAME, h);
    await first.start();
    first.put('n', 0);
    await first.save();
    const stores = Array.from({ length: 100 }, () => new Store(NAME, h, first.getId()));
    await Promise.all(stores.map((s) => s.start()));
    const outcomes = await Promise.all(stores.map((s, i) => {
      s.increment('n');
      s.put(`k${i}`, i);
      return s.save();
    }));
    assert.deepEqual(new Set(outcomes), new Set(['written']));
    const back = new Store(NAME, h, first.getId());
    await back.start();
    assert.equal(back.get('n'), 100, 'concurrent increments were lost');
    for (let i = 0; i < 100; i++) assert.equal(back.get(`k${i}`), i);
    await h.close();
  });

  await t.test('minReplicas: a save resolves once the replica has it over TLS replication', async () => {
    const h = new RedisSessionHandler({ cluster: [seed()], ...login, tls: { caFile: c.caFile } }, opts({ minReplicas: 1 }));
    const id = faults.sid('tlswait', 1);
    await h.write(id, '"replicated"');
    const key = `ostro_session:${id}`;
    const master = await c.masterOf(slotOf(key));
    const replica = (await c.topology()).find((n) => n.masterId === master.id);
    assert.ok(replica, 'the master has a replica');
    assert.equal(await c.commands(replica.port, [['READONLY'], ['GET', key]]), '"replicated"');
    await h.close();
  });

  await t.test('another CA, the system roots or plain text: ERR_SESSION_UNAVAILABLE naming the cause, within the timeout', async () => {
    const other = makeTestCa(c.dir, 'other');
    const id = faults.sid('tlsbad', 1);
    for (const [conn, cause] of [
      // The certificate is checked against the CA given, or the system roots without one.
      [{ cluster: [seed()], ...login, tls: { caFile: other.caFile } }, /invalid peer certificate: UnknownIssuer/],
      [{ cluster: [seed()], ...login }, /invalid peer certificate: UnknownIssuer/],
      // Plain text to a TLS port: the node hangs up.
      [{ cluster: [`redis://127.0.0.1:${c.nodes[0].port}`], ...login }, /reset|closed|broken pipe/i],
    ]) {
      const h = new RedisSessionHandler(conn, opts());
      const [e, ms] = await faults.timed(h.write(id, '"x"'));
      assert.ok(e, `${JSON.stringify(conn.cluster)} with ${JSON.stringify(conn.tls)}: the write went through`);
      faults.assertUnavailable(e);
      assert.match(e.message, cause);
      assert.match(e.message, new RegExp(`127\\.0\\.0\\.1:${c.nodes[0].port}`), 'names the node');
      assert.doesNotMatch(e.message, /cl-s3cret-pw/);
      assert.ok(ms <= TIMEOUT + faults.SLACK_MS, `took ${ms} ms`);
      await h.close();
    }
    // Nothing was written by the refused handlers.
    const master = await c.masterOf(slotOf(`ostro_session:${id}`));
    assert.equal(await c.command(master.port, ['EXISTS', `ostro_session:${id}`]), 0);
  });
});
