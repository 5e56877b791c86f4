'use strict';
// Issue 10, defect 4: a value nested deeper than a payload may be (64) used to be stored, and
// the next read treated the whole payload as corrupt: the session, login included, read back
// empty. Writing now enforces the reading limit with ERR_SESSION_VALUE naming the key, and
// nothing is stored. A value 20,000 deep gives the same coded error, not a bare RangeError.
const test = require('node:test');
const assert = require('node:assert/strict');
const { Store, ArraySessionHandler } = require('..');

function nested(depth) {
  let v = 1;
  for (let i = 0; i < depth; i++) v = { a: v };
  return v;
}

const ops = {
  put: (s, v) => s.put('deep', v),
  'put(object)': (s, v) => s.put({ fine: 1, deep: v }),
  push: (s, v) => s.push('deep', v),
  merge: (s, v) => s.merge('deep', v),
  flash: (s, v) => s.flash('deep', v),
  'flash(object)': (s, v) => s.flash({ deep: v }),
  now: (s, v) => s.now('deep', v),
  flashInput: (s, v) => s.flashInput({ deep: v }),
};

async function loggedIn() {
  const h = new ArraySessionHandler(120);
  const s = new Store('s', h);
  await s.start();
  s.put('user', 'alice');
  await s.save();
  const again = new Store('s', h, s.getId());
  await again.start();
  return { h, s: again };
}

for (const depth of [70, 20000]) {
  for (const [name, op] of Object.entries(ops)) {
    test(`${name}() of a value ${depth} deep is refused with the key, and the session survives`, async () => {
      const { h, s } = await loggedIn();
      const key = name === 'flashInput' ? '_old_input' : 'deep';
      assert.throws(() => op(s, nested(depth)), (e) => {
        assert.equal(e.code, 'ERR_SESSION_VALUE', e.stack);
        assert.ok(e.message.includes(`"${key}"`), e.message);
        assert.match(e.message, /nested more than 64 levels deep/);
        return true;
      });
      assert.equal(s.has('deep'), false);
      assert.equal(s.has('fine'), false, 'no pair of a refused object is stored');
      await s.save();
      const after = new Store('s', h, s.getId());
      await after.start();
      assert.equal(after.get('user'), 'alice', 'the session still reads back');
    });
  }
}

test('a 65-segment dot key is refused; 64 segments are stored and read back', async () => {
  const { h, s } = await loggedIn();
  const deepKey = Array(65).fill('k').join('.');
  assert.throws(() => s.put(deepKey, 1), (e) => e.code === 'ERR_SESSION_VALUE' && e.message.includes('"k.k.k'));
  assert.throws(() => s.put(deepKey, { a: 1 }), (e) => e.code === 'ERR_SESSION_VALUE');
  const okKey = Array(64).fill('k').join('.');
  s.put(okKey, 1);
  s.put('near', nested(63));
  await s.save();
  const after = new Store('s', h, s.getId());
  await after.start();
  assert.equal(after.get('user'), 'alice');
  assert.equal(after.get(okKey), 1);
  assert.deepEqual(after.get('near'), nested(63));
});

test('the native JSON path refuses 20,000-deep text itself, naming the key', async () => {
  // The addon is also reached without lib/value.js's walk (its own checks must hold).
  const native = require('../lib/native');
  const s = new native.NativeSession('s', null);
  const text = `${'['.repeat(20000)}${']'.repeat(20000)}`;
  for (const call of [() => s.putJson('k', text), () => s.pushJson('k', text), () => s.mergeJson('k', text), () => s.flashJson('k', text), () => s.nowJson('k', text), () => s.flashInput(text)]) {
    assert.throws(call, (e) => e.code === 'ERR_SESSION_VALUE' && /"(k|_old_input)"/.test(e.message));
  }
  assert.throws(() => s.putMany(`{"ok":1,"bad":${text}}`), (e) => e.code === 'ERR_SESSION_VALUE' && e.message.includes('"bad"'));
  assert.throws(() => s.flashMany(`{"bad":${text}}`), (e) => e.code === 'ERR_SESSION_VALUE' && e.message.includes('"bad"'));
  assert.equal(s.all(), '{}');
});
