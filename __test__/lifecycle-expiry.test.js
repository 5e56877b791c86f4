'use strict';
// Idle and absolute timeouts on every driver that stores sessions, with the test clock
// (issue 13): a session used every minute still dies at the absolute cap; one idle past the
// lifetime dies although it is young. Either way the client gets a new empty session under a new
// id. Redis and memcached expire records on the server's own clock, so their idle case waits.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { T0, MIN, testClock, drivers, managerOf, request, sleep } = require('./support/lifecycle');

for (const d of drivers()) {
  describe(`timeouts on ${d.name}`, () => {
    before(async () => { if (d.setup) await d.setup(); });
    after(async () => { if (d.teardown) await d.teardown(); });

    it('a session used every minute still dies at the absolute cap, and its record is destroyed', async () => {
      const now = testClock();
      const handler = d.make(now, 120);
      const m = managerOf(handler, now, { lifetime: 120, absolute_lifetime: 60 });
      const expired = [];
      m.on('expired', (msg) => expired.push(msg));
      let { id } = await request(m, null, (s) => s.put('user', 'ada'));
      const first = id;
      for (let minute = 1; minute <= 60; minute++) {
        now.advance(MIN);
        const r = await request(m, id, (s) => s.increment('hits'));
        assert.equal(r.existed, true, `minute ${minute}: still alive`);
        assert.equal(r.id, first, `minute ${minute}: same id`);
        id = r.id;
      }
      assert.deepEqual(expired, []);
      now.advance(1000);
      const r = await request(m, id, (s) => {
        assert.equal(s.get('user'), null, 'a new empty session');
        assert.equal(s.get('hits'), null);
      });
      assert.equal(r.existed, false);
      assert.notEqual(r.id, first, 'under a new id');
      assert.equal(expired.length, 1);
      assert.equal(expired[0].reason, 'absolute');
      assert.equal(expired[0].driver, 'lc');
      assert.equal(await handler.read(first) || '', '', 'the expired record is destroyed');
      // The new session lives on its own clock from now.
      now.advance(59 * MIN);
      const again = await request(m, r.id);
      assert.equal(again.existed, true);
      await m.close();
    });

    it('a young session idle past the lifetime is gone: new empty session, new id, expired idle', async () => {
      const now = testClock();
      // Servers expire on their own clock: a 2-second lifetime, waited for.
      const minutes = d.serverTtl ? 2 / 60 : 10;
      const handler = d.make(now, minutes);
      const m = managerOf(handler, now, { lifetime: minutes, absolute_lifetime: 600 });
      const expired = [];
      m.on('expired', (msg) => expired.push(msg));
      const { id } = await request(m, null, (s) => s.put('user', 'ada'));
      if (d.serverTtl) await sleep(4500);
      else now.advance(10 * MIN + 1000);
      const r = await request(m, id, (s) => assert.equal(s.get('user'), null));
      assert.equal(r.existed, false);
      assert.notEqual(r.id, id);
      assert.deepEqual(expired.map((e) => e.reason), ['idle']);
      await m.close();
    });

    it('exactly at the cap is alive, one second more is not (Store API, no manager clock needed)', async () => {
      const now = testClock(T0);
      const handler = d.make(now, 600);
      const m = managerOf(handler, now, { lifetime: 600, absolute_lifetime: 1 });
      const { id } = await request(m, null, (s) => s.put('k', 1));
      now.advance(MIN);
      assert.equal((await request(m, id)).id, id);
      now.advance(1000);
      const r = await request(m, id);
      assert.notEqual(r.id, id);
      await m.close();
    });
  });
}

describe('absolute timeout with the cookie driver (no server record)', () => {
  it('an old cookie starts a new session; the data sealed in it is gone', async () => {
    const { SessionManager } = require('..');
    const { KEY } = require('./support/lifecycle');
    const now = testClock();
    const m = new SessionManager({ driver: 'cookie', key: KEY, lifetime: 120, absolute_lifetime: 30 }, { now });
    const cookieOf = (store) => store.getHandler().outgoing();
    const hdr = (v) => `${m.config.cookie}=${encodeURIComponent(v)}`;
    let { store } = await m.loadStore(undefined);
    store.put('user', 'ada');
    await store.save();
    let value = cookieOf(store);
    const id = store.getId();
    now.advance(29 * MIN);
    ({ store } = await m.loadStore(hdr(value)));
    assert.equal(store.get('user'), 'ada');
    store.put('n', 1);
    await store.save();
    value = cookieOf(store);
    now.advance(MIN + 1000);
    ({ store } = await m.loadStore(hdr(value)));
    assert.equal(store.get('user'), null);
    assert.notEqual(store.getId(), id);
  });
});

describe('config keys', () => {
  const { SessionManager } = require('..');
  const { KEY } = require('./support/lifecycle');
  const bad = (config, re) => assert.throws(() => new SessionManager({ key: KEY, ...config }), (e) => e.code === 'ERR_SESSION_INVALID_OPTION' && re.test(e.message));

  it('absolute_lifetime, renew_after and renew_grace_seconds default to off, off and 30', () => {
    const m = new SessionManager({ key: KEY });
    assert.equal(m.config.absolute_lifetime, null);
    assert.equal(m.config.renew_after, null);
    assert.equal(m.config.renew_grace_seconds, 30);
    const n = new SessionManager({ key: KEY, absolute_lifetime: '480', renew_after: 15, renew_grace_seconds: '10' });
    assert.equal(n.config.absolute_lifetime, 480);
    assert.equal(n.config.renew_grace_seconds, 10);
  });

  it('bad values are refused with the key named', () => {
    bad({ absolute_lifetime: 0 }, /"absolute_lifetime" must be a positive number of minutes/);
    bad({ absolute_lifetime: 'soon' }, /"absolute_lifetime"/);
    bad({ renew_after: -5 }, /"renew_after"/);
    bad({ renew_grace_seconds: -1 }, /"renew_grace_seconds"/);
    bad({ renew_after: 0.25, renew_grace_seconds: 60 }, /longer than "renew_after"/);
    assert.throws(() => new SessionManager({ key: KEY }, { now: 5 }), (e) => e.code === 'ERR_SESSION_INVALID_OPTION' && /"now"/.test(e.message));
  });
});
