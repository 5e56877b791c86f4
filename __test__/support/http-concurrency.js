'use strict';
// The HTTP-level concurrency scenarios of issue 12 on one session, shared by
// concurrency-http.test.js (every built-in driver, a custom JS driver; its header says what is
// asserted) and concurrency-http-ostro.test.js (the OstroJS query-builder database driver).
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const { listen, Client, sessionCookie, idOf, parseSetCookie } = require('./http');
const { appFor, logoutGate, sleep } = require('./http-drivers');

const isEmpty = (v) => v === '' || v === null || v === undefined;

async function seed(client) {
  const r = await client.get('/seed');
  assert.equal(r.status, 200);
  return idOf(sessionCookie(r));
}

/** 200 puts of distinct keys, then 200 increments, all at once, spread over `bases`. */
async function puts200AndIncrements200(bases) {
  const client = new Client(bases[0]);
  await seed(client);
  const cookie = client.cookieHeader();
  const on = (i) => new Client(bases[i % bases.length]);
  const puts = await Promise.all(Array.from({ length: 200 }, (_, i) => on(i).request(`/put/k${i}`, { method: 'POST', cookie })));
  for (const r of puts) assert.equal(r.status, 200, r.body);
  const incs = await Promise.all(Array.from({ length: 200 }, (_, i) => on(i).request('/inc', { method: 'POST', cookie })));
  for (const r of incs) assert.equal(r.status, 200, r.body);
  const all = (await client.get('/dump')).json();
  for (let i = 0; i < 200; i++) assert.equal(all[`k${i}`], i, `key k${i} was lost`);
  assert.equal(all.n, 200, 'increments were lost');
  assert.equal(all.user, 'alice');
}

/**
 * The scenarios on one session through the Express app of support/http-drivers.js, as a
 * describe() named `label`: 200 concurrent puts and 200 increments; a logout racing 50 in-flight
 * writers, 20 times; a flash set while another request ages flash data. `makeManager()` (called
 * after `setup()`) returns the SessionManager to serve; after the tests the server and the
 * manager are closed, then `teardown()` runs.
 */
function concurrencySuite(label, makeManager, { setup, teardown } = {}) {
  describe(`${label}: concurrent HTTP requests on one session`, { timeout: 120000 }, () => {
    let manager;
    let server;
    const sent = [];
    const gate = logoutGate();

    before(async () => {
      if (setup) await setup();
      manager = await makeManager();
      server = await listen(http.createServer(appFor(manager, { sent, gate })));
    });

    after(async () => {
      if (server) await server.close();
      if (manager) await manager.close();
      if (teardown) await teardown();
    });

    it('200 concurrent puts keep all 200 keys; 200 concurrent increments give +200', () => puts200AndIncrements200([server.url]));

    // What is asserted about cookies, and why. A response sets the old id's cookie only when its
    // save wrote the old record, i.e. its compare-and-set landed before the logout's destroy;
    // once the tombstone is there a save is dropped and its line clears the cookie (empty
    // value, Max-Age=0). Such a response's head goes out as soon as its save settles, while the
    // logout's head waits for the destroy, which the driver orders after that write (one record:
    // the file lock, the row, the transaction, the server), and then for the logout's own save
    // of the new id. So every response whose head leaves after the logout's carries no cookie
    // for the old id, or a cleared one, whenever its save started; responses ahead of the
    // logout's may legitimately re-send the old id (their writes were real), and the browser
    // then takes the logout's cookie after them. The order is the server's (`sent`, heads as
    // written), which is what a client on one connection sees. (On the file driver a write's
    // completion comes back from a blocking-pool thread: a thread stalled between releasing the
    // lock and waking the JS thread for longer than the logout's destroy and save take would
    // break the order; that would fail here, not pass silently.)
    // Five `/heldput` requests load the session before the logout is sent and are held until
    // the logout's head went out: each trial checks at least those, whose saves must be dropped.
    it('a logout racing 50 in-flight writers sticks, and no response after the logout\'s re-cookies the old id (20 trials)', async () => {
      const handler = manager.driver();
      const HELD = 5;
      for (let trial = 0; trial < 20; trial++) {
        const client = new Client(server.url);
        const id = await seed(client);
        const cookie = client.cookieHeader();
        sent.length = 0;
        gate.reset();
        const held = Array.from({ length: HELD }, (_, i) => client.request(`/heldput/h${i}`, { method: 'POST', cookie }));
        const writers = Array.from({ length: 50 }, (_, i) => client.request(`/slowput/w${i}?ms=${5 + ((i * 7 + trial) % 40)}`, { method: 'POST', cookie }));
        await gate.arrived(HELD);
        await sleep(5 + (trial % 15));
        const logout = await client.request('/logout', { method: 'POST', cookie });
        assert.equal(logout.status, 200);
        assert.notEqual(idOf(sessionCookie(logout)), id);
        for (const r of await Promise.all(writers)) assert.equal(r.status, 200, r.body);
        for (const r of await Promise.all(held)) {
          assert.equal(r.status, 200, r.body);
          const c = sessionCookie(r);
          assert.ok(c && c.value === '' && c.attrs['max-age'] === '0', `trial ${trial}: a save held past the logout must be dropped and clear the cookie, got ${r.setCookies}`);
        }
        assert.ok(isEmpty(await handler.read(id)), `trial ${trial}: the logged-out session came back`);
        const out = sent.find((s) => s.url === '/logout');
        const later = sent.filter((s) => s !== out && s.at > out.at);
        assert.ok(later.length >= HELD, `trial ${trial}: only ${later.length} responses went out after the logout's`);
        for (const s of later) {
          for (const line of s.setCookie) {
            const c = parseSetCookie(line);
            if (c.name !== 'ostro_session') continue;
            assert.ok(c.value === '' || idOf(c) !== id, `trial ${trial}: ${s.url}, answered after the logout, cookied the old id: ${line}`);
          }
        }
        // A request still carrying the old cookie finds nothing and revives nothing.
        const late = await client.request('/dump', { cookie });
        assert.equal(late.json().user, undefined);
        assert.ok(isEmpty(await handler.read(id)), `trial ${trial}: a late request revived the old id`);
      }
    });

    it('a flash set while another request ages flash data is seen by the next request', async () => {
      const client = new Client(server.url);
      await seed(client);
      const cookie = client.cookieHeader();
      assert.equal((await client.request('/flash/first', { method: 'POST', cookie })).status, 200);
      // Loads `first` as new flash data; its save (after the flash below) ages it.
      const ager = client.request('/slow?ms=150', { cookie });
      await sleep(50);
      assert.equal((await client.request('/flash/second', { method: 'POST', cookie })).status, 200);
      assert.equal((await ager).status, 200);
      assert.deepEqual((await client.request('/flash/second', { cookie })).json(), { value: 'v' }, 'the concurrent flash was lost');
      // Seen once: the request after the next no longer has it.
      assert.deepEqual((await client.request('/flash/second', { cookie })).json(), { value: null });
    });
  });
}

module.exports = { concurrencySuite, puts200AndIncrements200, seed };
