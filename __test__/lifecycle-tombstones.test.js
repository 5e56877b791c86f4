'use strict';
// What a signed id with no session behind it is reported as (issue 13's `expired` event over
// issue 12's tombstones), on every driver that stores sessions, and gc of expired tombstones.
//
// The rule (README, Events; the core's Session::missing_reason): a request presenting a correctly
// signed id under which the driver holds no session publishes `expired` with reason 'idle',
// except when the engine can tell no session expired:
// - the driver holds a live tombstone: a logout or a revoke ended the session (and published
//   `destroyed`), so nothing is reported as expired;
// - the id is a renewed id past its grace window: the session lives on under its new id.
// What no driver can tell apart is reported as 'idle': an id it never stored, a tombstone that
// itself expired a lifetime after the logout, and any logged-out id on a custom JS driver (it
// cannot report tombstones).
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { MIN, testClock, drivers, managerOf, request } = require('./support/lifecycle');
const { ArraySessionHandler, FileSessionHandler, SqliteSessionHandler } = require('..');
const { tmpDir } = require('./support/tmp');

// The custom JS drivers of support/lifecycle (the examples' Map driver) keep no tombstones.
const isJs = (d) => d.name.startsWith('js');
// Drivers that list and end a user's sessions (memcached and plain JS drivers cannot).
const canRevoke = (d) => !isJs(d) && d.name !== 'memcached';

/** A manager over a fresh handler of driver `d`, with the `expired` and `destroyed` reasons it publishes. */
function watched(d, now, config) {
  const m = managerOf(d.make(now, 120), now, { lifetime: 120, ...config });
  const expired = [];
  const destroyed = [];
  m.on('expired', (msg) => expired.push(msg.reason));
  m.on('destroyed', (msg) => destroyed.push(msg.reason));
  return { m, expired, destroyed };
}

for (const d of drivers()) {
  describe(`a signed id with no session on ${d.name}`, () => {
    before(async () => { if (d.setup) await d.setup(); });
    after(async () => { if (d.teardown) await d.teardown(); });

    it(isJs(d) ? 'a logged-out id is reported as idle: a JS driver keeps no tombstone to tell' : 'a logged-out id is not reported as expired: its tombstone says it was ended', async () => {
      const now = testClock();
      const { m, expired, destroyed } = watched(d, now);
      const { id } = await request(m, null, (s) => s.put('user', 'ada'));
      await request(m, id, (s) => s.invalidate());
      assert.deepEqual(destroyed, ['invalidate']);
      now.advance(MIN);
      const again = await request(m, id);
      assert.equal(again.existed, false);
      assert.notEqual(again.id, id, 'a fresh id, never the logged-out one');
      assert.deepEqual(expired, isJs(d) ? ['idle'] : []);
      await m.close();
    });

    if (canRevoke(d)) {
      it('a revoked session is not reported as expired', async () => {
        const now = testClock();
        const { m, expired, destroyed } = watched(d, now);
        const { id } = await request(m, null, (s) => s.setUser('ada'));
        const [entry] = await m.sessionsOf('ada');
        assert.equal(await m.destroySession('ada', entry.handle), true);
        assert.deepEqual(destroyed, ['revoked']);
        const again = await request(m, id);
        assert.equal(again.existed, false);
        assert.deepEqual(expired, []);
        await m.close();
      });
    }

    it('an id the driver never stored is reported as idle: no driver can tell it from a collected one', async () => {
      const now = testClock();
      const { m, expired } = watched(d, now);
      const never = `N${Date.now()}${process.pid}`.padEnd(40, 'x');
      const r = await request(m, never);
      assert.equal(r.existed, false);
      assert.deepEqual(expired, ['idle']);
      await m.close();
    });

    it('a renewed id past its grace window is not reported as expired: the session lives on', async () => {
      const now = testClock();
      const { m, expired } = watched(d, now, { renew_after: 15, renew_grace_seconds: 30 });
      const { id: first } = await request(m, null, (s) => s.put('user', 'ada'));
      now.advance(16 * MIN);
      const renewed = await request(m, first);
      assert.notEqual(renewed.id, first, 'renewed');
      now.advance(31 * 1000);
      const late = await request(m, first);
      assert.equal(late.existed, false, 'past the window the old id loads nothing');
      assert.deepEqual(expired, []);
      assert.equal((await request(m, renewed.id)).existed, true);
      await m.close();
    });

    if (!d.serverTtl) {
      it('a logged-out id presented after its tombstone expired is reported as idle', async () => {
        const now = testClock();
        const { m, expired } = watched(d, now);
        const { id } = await request(m, null, (s) => s.put('user', 'ada'));
        await request(m, id, (s) => s.invalidate());
        now.advance(120 * MIN + 1000);
        assert.equal((await request(m, id)).existed, false);
        assert.deepEqual(expired, ['idle']);
        await m.close();
      });
    }
  });
}

describe('gc removes expired tombstones, at the lifetime and not before (test clock)', () => {
  const cases = [
    {
      name: 'array',
      make: (now) => ({ handler: new ArraySessionHandler(10, { now }) }),
    },
    {
      name: 'file',
      make: (now) => {
        const dir = path.join(tmpDir('ostro-tomb-file-'), 's');
        return {
          handler: new FileSessionHandler(dir, 10, { now }),
          tombstone: (id) => {
            try {
              return fs.statSync(path.join(dir, id)).size === 0;
            } catch (e) {
              if (e.code === 'ENOENT') return false;
              throw e;
            }
          },
        };
      },
    },
    {
      name: 'sqlite',
      make: (now) => {
        const db = path.join(tmpDir('ostro-tomb-sqlite-'), 's.db');
        return {
          handler: new SqliteSessionHandler(db, { minutes: 10, now }),
          tombstone: (id) => execFileSync('sqlite3', [db, `SELECT count(*) FROM sessions WHERE sid = '${id}' AND payload = ''`], { encoding: 'utf8' }).trim() === '1',
        };
      },
    },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const now = testClock();
      const { handler, tombstone } = c.make(now);
      const m = managerOf(handler, now, { lifetime: 10 });
      const { id } = await request(m, null, (s) => s.put('user', 'ada'));
      now.advance(5 * MIN);
      // The logout: the old id gets a tombstone (at T0 + 5 min), the new session a record.
      const logout = await request(m, id, (s) => s.invalidate());
      assert.equal(logout.outcome, 'written');
      if (tombstone) assert.equal(tombstone(id), true, 'the logout left a tombstone');
      // The new session stays alive throughout.
      now.advance(9 * MIN);
      assert.equal((await request(m, logout.id)).existed, true);
      // Exactly a lifetime after the logout: the tombstone is kept (and nothing else is idle).
      now.advance(MIN);
      assert.equal(await m.collectGarbage(), 0, 'nothing is idle for strictly longer than the lifetime yet');
      if (tombstone) assert.equal(tombstone(id), true, 'kept exactly at the lifetime');
      // One second more: the tombstone, and only it, goes.
      now.advance(1000);
      assert.equal(await m.collectGarbage(), 1, 'the expired tombstone is collected');
      if (tombstone) assert.equal(tombstone(id), false, 'removed from storage');
      assert.equal(await m.collectGarbage(), 0, 'already collected');
      assert.equal((await request(m, logout.id)).existed, true, 'the live session is untouched');
      await m.close();
    });
  }
});
