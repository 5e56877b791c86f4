'use strict';
// `require('@ostro/session/testing')`: the conformance suite for session drivers. Call it at the
// top level of a node:test file with a factory that builds a handler for a lifetime in minutes:
//
//   const sessionHandlerConformance = require('@ostro/session/testing');
//   sessionHandlerConformance(({ minutes }) => new MyHandler({ minutes }), { name: 'MyHandler' });
//
// It registers one `describe` suite checking what the engine relies on: read after write,
// overwrite, destroy, unknown ids, expiry, gc, large and Unicode payloads, 500 concurrent
// sessions, `touch` (when the handler has it), compare-and-set (`writeIfUnchanged`, when the
// handler has it; otherwise the suite reports the driver as last-writer-wins in a test title and
// a diagnostic), and the Store on top of the handler with its methods returning plain values or
// Promises. Every handler the suite creates is closed at the end
// (the suite owns them).
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { randomInt } = require('node:crypto');
const { Store } = require('./store');

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** A fresh session id: 40 characters of [A-Za-z0-9], as the engine makes them. */
function newId() {
  let id = '';
  for (let i = 0; i < 40; i++) id += ALNUM[randomInt(ALNUM.length)];
  return id;
}

const isEmpty = (v) => v === '' || v === null || v === undefined;
const delay = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` every `every` ms until it returns true or `ms` pass; resolves to the outcome. */
async function waitUntil(check, ms, every = 50) {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check()) return true;
    if (Date.now() >= deadline) return false;
    await delay(every);
  }
}

/** A JSON payload of about `bytes` UTF-8 bytes mixing ASCII, accents, CJK, emoji and escapes. */
function bigPayload(bytes) {
  const pieces = ['plain ascii ', 'crème brûlée ', '会话数据 ', '🎉🚀 ', 'quote " back \\ slash ', 'tab\tnew\nline '];
  const parts = [];
  let size = 0;
  for (let i = 0; size < bytes - 64; i++) {
    const p = pieces[i % pieces.length];
    parts.push(p);
    size += Buffer.byteLength(JSON.stringify(p)) - 2;
  }
  return JSON.stringify({ big: parts.join('') });
}

const UNICODE = JSON.stringify({
  name: 'Zoë Ångström',
  greeting: 'こんにちは世界',
  emoji: '👩‍💻🏳️‍🌈',
  rtl: 'مرحبا',
  combining: 'e\u0301',
  escapes: 'line\nbreak "quoted" \\ \u2028',
});

/**
 * Returns a handler whose every method forwards to `h` and returns a Promise, so the suite checks
 * both shapes whatever `h` itself returns.
 */
function promised(h) {
  const w = {
    read: async (id) => h.read(id),
    write: async (id, data, meta) => h.write(id, data, meta),
    destroy: async (id) => h.destroy(id),
  };
  if (typeof h.gc === 'function') w.gc = async (s) => h.gc(s);
  if (typeof h.touch === 'function') w.touch = async (id) => h.touch(id);
  if (typeof h.open === 'function') w.open = async (p, n) => h.open(p, n);
  return w;
}

/** Wraps `h` to count calls per method (same shape of returns as `h`). */
function counting(h) {
  const calls = { read: 0, write: 0, destroy: 0, touch: 0 };
  const w = {
    calls,
    read: (id) => (calls.read++, h.read(id)),
    write: (id, data, meta) => (calls.write++, h.write(id, data, meta)),
    destroy: (id) => (calls.destroy++, h.destroy(id)),
  };
  if (typeof h.touch === 'function') w.touch = (id) => (calls.touch++, h.touch(id));
  if (typeof h.open === 'function') w.open = (p, n) => h.open(p, n);
  return w;
}

/**
 * The handler's compare-and-set as `(id, data, previous) => Promise<boolean>`, or null when it
 * keeps last-writer-wins: a custom driver's `writeIfUnchanged`, or a built-in driver's (its
 * native handle says whether the driver compares).
 */
function compareAndSet(h) {
  if (typeof h.writeIfUnchanged === 'function') return async (id, data, prev) => h.writeIfUnchanged(id, data, prev);
  const n = h._native;
  if (n && typeof n.supportsCas === 'function' && n.supportsCas()) return (id, data, prev) => n.writeIfUnchanged(id, data, prev);
  return null;
}

function checkReadResult(v) {
  assert.ok(typeof v === 'string' || v === null || v === undefined, `read() must return a string, null or undefined, got ${typeof v}`);
}

/**
 * Registers the conformance suite for one driver.
 *
 * @param {(options: { minutes: number }) => object | Promise<object>} factory builds a handler
 *   whose records live `minutes` after their last write or touch
 * @param {object} [options]
 * @param {string} [options.name] suite title
 * @param {number} [options.payloadBytes=524288] size of the large payload (the cookie driver passes
 *   its small limit)
 * @param {number} [options.concurrency=500] sessions in flight in the concurrency tests
 * @param {number} [options.lifetimeSeconds=1] lifetime in the expiry tests (a driver whose clock
 *   ticks in whole seconds may need 2)
 * @param {number} [options.expiryWaitMs=4000] how long past the lifetime a record may linger
 * @param {boolean} [options.gcRemoves=true] whether `gc()` itself removes expired records and
 *   counts them; false for drivers whose server expires records (Redis, Memcached, cookies)
 * @param {() => unknown} [options.before] runs before the suite (start a server)
 * @param {() => unknown} [options.after] runs after the suite, even on failure
 * @param {number} [options.timeout=120000] per-test timeout, ms
 */
function sessionHandlerConformance(factory, options = {}) {
  if (typeof factory !== 'function') throw new TypeError('sessionHandlerConformance() takes a handler factory ({ minutes }) => handler');
  const name = options.name || 'session handler conformance';
  const payloadBytes = options.payloadBytes ?? 512 * 1024;
  const concurrency = options.concurrency ?? 500;
  const lifetime = options.lifetimeSeconds ?? 1;
  const waitMs = options.expiryWaitMs ?? 4000;
  const gcRemoves = options.gcRemoves !== false;
  const created = [];

  const make = async (minutes = 120) => {
    const h = await factory({ minutes });
    assert.ok(h && typeof h.read === 'function' && typeof h.write === 'function' && typeof h.destroy === 'function', 'the factory must return a handler with read, write and destroy');
    created.push(h);
    if (typeof h.open === 'function') await h.open('', 'conformance');
    return h;
  };
  const read = async (h, id) => {
    const v = await h.read(id);
    checkReadResult(v);
    return v;
  };

  describe(name, { timeout: options.timeout ?? 120000 }, () => {
    let h; // a long-lived handler shared by the tests that do not depend on expiry

    before(async () => {
      if (options.before) await options.before();
      h = await make();
    });

    after(async () => {
      try {
        for (const x of created) if (typeof x.close === 'function') await x.close();
      } finally {
        if (options.after) await options.after();
      }
    });

    it('reads back what was written', async () => {
      const id = newId();
      const data = JSON.stringify({ a: 1, b: 'two' });
      await h.write(id, data, undefined);
      assert.equal(await read(h, id), data);
    });

    it('write overwrites the previous payload', async () => {
      const id = newId();
      await h.write(id, '{"v":1}', undefined);
      await h.write(id, '{"v":2}', { ip: '127.0.0.1', userAgent: 'conformance', userId: '42' });
      assert.equal(await read(h, id), '{"v":2}');
    });

    it('destroy removes the record; destroying an unknown id is not an error', async () => {
      const id = newId();
      await h.write(id, '{"v":1}', undefined);
      await h.destroy(id);
      assert.ok(isEmpty(await read(h, id)), 'a destroyed record must read as empty');
      await h.destroy(newId());
    });

    it('unknown ids read as empty and do not disturb others', async () => {
      const known = newId();
      await h.write(known, '{"k":true}', undefined);
      for (let i = 0; i < 5; i++) assert.ok(isEmpty(await read(h, newId())), 'an unknown id must read as empty');
      assert.equal(await read(h, known), '{"k":true}');
    });

    it(`records expire ${lifetime} s after their last write`, async () => {
      const short = await make(lifetime / 60);
      const id = newId();
      const t0 = Date.now();
      await short.write(id, '{"e":1}', undefined);
      assert.equal(await read(short, id), '{"e":1}', 'a record must be readable right after it is written');
      const gone = await waitUntil(async () => isEmpty(await read(short, id)), lifetime * 1000 + waitMs);
      assert.ok(gone, `the record still reads ${Date.now() - t0} ms after a write with a ${lifetime} s lifetime`);
    });

    it('gc returns a count and keeps live records', async () => {
      const id = newId();
      await h.write(id, '{"live":1}', undefined);
      if (typeof h.gc !== 'function') return assert.equal(h.gc, undefined);
      const n = await h.gc(3600);
      assert.ok(n === undefined || (Number.isInteger(n) && n >= 0), `gc() must return a count, got ${n}`);
      assert.equal(await read(h, id), '{"live":1}', 'gc must not remove a live record');
    });

    it(gcRemoves ? 'gc removes records idle longer than the lifetime, and only those' : 'gc leaves live records alone', async () => {
      const short = await make(lifetime / 60);
      if (typeof short.gc !== 'function') return assert.equal(short.gc, undefined);
      const old = newId();
      await short.write(old, '{"old":1}', undefined);
      let removed = 0;
      let fresh;
      // Write a fresh record just before each gc: it must survive every run.
      const done = await waitUntil(async () => {
        fresh = newId();
        await short.write(fresh, '{"fresh":1}', undefined);
        const n = (await short.gc(lifetime)) ?? 0;
        assert.ok(Number.isInteger(n) && n >= 0, `gc() must return a count, got ${n}`);
        removed += n;
        assert.equal(await read(short, fresh), '{"fresh":1}', 'gc removed a record written just before it');
        return gcRemoves ? removed >= 1 : isEmpty(await read(short, old));
      }, lifetime * 1000 + waitMs, 100);
      assert.ok(done, gcRemoves ? 'gc never reported removing the expired record' : 'the expired record never went away');
      assert.ok(isEmpty(await read(short, old)), 'the expired record still reads after gc');
    });

    it(`large payloads (${payloadBytes} bytes) round-trip unchanged`, async () => {
      const id = newId();
      const data = bigPayload(payloadBytes);
      await h.write(id, data, undefined);
      assert.ok((await read(h, id)) === data, 'the large payload came back different');
    });

    it('Unicode payloads round-trip unchanged', async () => {
      const id = newId();
      await h.write(id, UNICODE, undefined);
      assert.equal(await read(h, id), UNICODE);
    });

    it(`${concurrency} concurrent sessions keep their own payloads`, async () => {
      const ids = Array.from({ length: concurrency }, () => newId());
      await Promise.all(ids.map((id, i) => h.write(id, JSON.stringify({ i, id }), undefined)));
      const back = await Promise.all(ids.map((id) => read(h, id)));
      back.forEach((v, i) => assert.deepEqual(JSON.parse(v), { i, id: ids[i] }));
      await Promise.all(ids.map((id) => h.destroy(id)));
    });

    it('touch() is false for an unknown id and keeps an existing record unchanged (or the Store writes without it)', async () => {
      if (typeof h.touch !== 'function') {
        // Without touch() the Store must write every save, so unchanged sessions stay alive.
        const spy = counting(h);
        const s = new Store('conformance', spy);
        await s.start();
        await s.save();
        const again = new Store('conformance', spy, s.getId());
        await again.start();
        await again.save();
        assert.equal(spy.calls.write, 2, 'without touch(), save() of an unchanged session must write');
        return;
      }
      assert.equal(await h.touch(newId()), false, 'touch() of an unknown id must return false');
      const id = newId();
      await h.write(id, '{"t":1}', undefined);
      const found = await h.touch(id);
      assert.notEqual(found, false, 'touch() of an existing record must not return false');
      assert.equal(await read(h, id), '{"t":1}', 'touch() changed the payload');
    });

    it('saving an unchanged session extends its lifetime', async () => {
      const span = lifetime * 2;
      const short = await make(span / 60);
      const s = new Store('conformance', short);
      await s.start();
      s.put('t', 1);
      await s.save();
      const untouched = newId();
      await short.write(untouched, '{"u":1}', undefined);
      await delay((span * 1000) / 2);
      const again = new Store('conformance', short, s.getId());
      await again.start();
      assert.equal(again.get('t'), 1);
      const tSave = Date.now();
      await again.save(); // unchanged: touch() when the handler has it, else write()
      const gone = await waitUntil(async () => isEmpty(await read(short, untouched)), span * 1000 + waitMs);
      assert.ok(gone, 'the record written alongside never expired');
      const since = Date.now() - tSave;
      const r = new Store('conformance', short, s.getId());
      await r.start();
      assert.equal(r.get('t'), 1, `the re-saved session expired ${since} ms after save() with a ${span} s lifetime`);
    });

    it('writeIfUnchanged() compares and sets (or the driver is reported as last-writer-wins)', async (t) => {
      const cas = compareAndSet(h);
      if (cas === null) {
        t.diagnostic('last-writer-wins: the handler has no writeIfUnchanged(), so concurrent saves of one session overwrite each other');
        return;
      }
      t.diagnostic('compare-and-set: concurrent saves of one session are replayed, not lost');
      const id = newId();
      const checkResult = (v, what) => assert.ok(v === true || v === false, `writeIfUnchanged() must resolve true or false, got ${typeof v} (${what})`);
      let r = await cas(id, '{"v":1}', '{"v":0}');
      checkResult(r, 'no record, previous data given');
      assert.equal(r, false, "writeIfUnchanged() wrote over no record although previousData was not ''");
      assert.ok(isEmpty(await read(h, id)), 'a refused writeIfUnchanged() must write nothing');
      r = await cas(id, '{"v":1}', '');
      assert.equal(r, true, "writeIfUnchanged() with previousData '' must write when there is no record");
      assert.equal(await read(h, id), '{"v":1}');
      r = await cas(id, '{"v":2}', '');
      assert.equal(r, false, "writeIfUnchanged() with previousData '' must refuse when a record exists");
      r = await cas(id, '{"v":2}', '{"v":9}');
      assert.equal(r, false, 'writeIfUnchanged() must refuse when the stored data changed');
      assert.equal(await read(h, id), '{"v":1}', 'a refused writeIfUnchanged() must leave the record as it was');
      r = await cas(id, '{"v":2}', '{"v":1}');
      assert.equal(r, true, 'writeIfUnchanged() must write when the stored data is unchanged');
      assert.equal(await read(h, id), '{"v":2}');
      await h.destroy(id);
      assert.ok(isEmpty(await read(h, id)), 'a destroyed record must read as empty');
      r = await cas(id, '{"v":3}', '{"v":2}');
      assert.equal(r, false, 'writeIfUnchanged() must refuse once the record was destroyed');
      assert.ok(isEmpty(await read(h, id)), 'a destroyed record came back');
      // 20 Stores that all loaded the same session, each incrementing and putting its own key.
      const s0 = new Store('conformance', h);
      await s0.start();
      s0.put('n', 0);
      await s0.save();
      const stores = Array.from({ length: 20 }, () => new Store('conformance', h, s0.getId()));
      await Promise.all(stores.map((s) => s.start()));
      await Promise.all(stores.map((s, i) => {
        s.increment('n');
        s.put(`k${i}`, i);
        return s.save();
      }));
      const back = new Store('conformance', h, s0.getId());
      await back.start();
      assert.equal(back.get('n'), 20, 'concurrent increments were lost');
      for (let i = 0; i < 20; i++) assert.equal(back.get(`k${i}`), i, `concurrent put k${i} was lost`);
    });

    describe('through a Store', () => {
      const shapes = [
        ['methods as given', (x) => x],
        ['every method returning a Promise', promised],
      ];
      for (const [label, shape] of shapes) {
        it(`start, put, flash, save, start, read (${label})`, async () => {
          const handler = shape(h);
          const s = new Store('conformance', handler);
          await s.start();
          s.put('user', { name: 'Zoë', roles: ['a', 'b'] });
          s.put('n', 1);
          s.flash('status', 'saved ✓');
          await s.save();

          const s2 = new Store('conformance', handler, s.getId());
          await s2.start();
          assert.deepEqual(s2.get('user'), { name: 'Zoë', roles: ['a', 'b'] });
          assert.equal(s2.get('n'), 1);
          assert.equal(s2.get('status'), 'saved ✓');
          assert.equal(s2.token(), s.token());
          await s2.save();

          const s3 = new Store('conformance', handler, s.getId());
          await s3.start();
          assert.equal(s3.get('status'), null, 'flash data must last exactly one more request');
          assert.equal(s3.get('n'), 1);
        });
      }

      it('regenerate(true) and invalidate() destroy the old record; migrate() keeps it', async () => {
        const s1 = new Store('conformance', h);
        await s1.start();
        s1.put('k', 'v');
        await s1.save();
        const first = s1.getId();

        const s2 = new Store('conformance', h, first);
        await s2.start();
        await s2.migrate(false);
        await s2.save();
        assert.notEqual(s2.getId(), first);
        assert.ok(!isEmpty(await read(h, first)), 'migrate(false) must keep the old record');

        const second = s2.getId();
        const s3 = new Store('conformance', h, second);
        await s3.start();
        await s3.regenerate(true);
        await s3.save();
        assert.ok(isEmpty(await read(h, second)), 'regenerate(true) must destroy the old record');
        assert.equal(JSON.parse(await read(h, s3.getId())).k, 'v', 'regenerate() must keep the data');

        const third = s3.getId();
        const s4 = new Store('conformance', h, third);
        await s4.start();
        await s4.invalidate();
        await s4.save();
        assert.ok(isEmpty(await read(h, third)), 'invalidate() must destroy the old record');
        const fresh = new Store('conformance', h, s4.getId());
        await fresh.start();
        assert.equal(fresh.get('k'), null, 'invalidate() must empty the session');
      });

      it('an unchanged session is touched, not rewritten (written when the handler has no touch)', async () => {
        const spy = counting(h);
        const s = new Store('conformance', spy);
        await s.start();
        s.put('k', 1);
        await s.save();
        const writes = spy.calls.write;
        const again = new Store('conformance', spy, s.getId());
        await again.start();
        await again.save();
        if (typeof h.touch === 'function') {
          assert.equal(spy.calls.touch, 1, 'save() of an unchanged session must call touch()');
          assert.equal(spy.calls.write, writes, 'save() of an unchanged session must not write when touch() found the record');
        } else {
          assert.equal(spy.calls.write, writes + 1, 'without touch(), save() must write');
        }
      });

      it(`${concurrency} concurrent Stores start, change and save their own sessions`, async () => {
        const stores = Array.from({ length: concurrency }, () => new Store('conformance', h));
        await Promise.all(stores.map(async (s, i) => {
          await s.start();
          s.put('i', i);
          await s.save();
        }));
        const back = await Promise.all(stores.map(async (s) => {
          const r = new Store('conformance', h, s.getId());
          await r.start();
          return r.get('i');
        }));
        back.forEach((v, i) => assert.equal(v, i));
      });

      it(`a ${payloadBytes}-byte Unicode session survives a Store cycle`, async () => {
        const s = new Store('conformance', h, undefined, { maxPayloadBytes: Math.max(payloadBytes * 2, 1048576) });
        await s.start();
        const text = JSON.parse(bigPayload(Math.max(0, payloadBytes - 200))).big;
        s.put('text', text);
        await s.save();
        const r = new Store('conformance', h, s.getId(), { maxPayloadBytes: Math.max(payloadBytes * 2, 1048576) });
        await r.start();
        assert.ok(r.get('text') === text, 'the large session came back different');
      });
    });
  });
}

module.exports = sessionHandlerConformance;
module.exports.sessionHandlerConformance = sessionHandlerConformance;
module.exports.newId = newId;
