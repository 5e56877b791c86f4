'use strict';
// Issue 10, "errors a user can act on": an unreachable Redis or memcached names host:port and
// the cause; a SQLite database in a missing directory names that directory.
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { RedisSessionHandler, MemcachedSessionHandler, SqliteSessionHandler } = require('..');
const { freePort } = require('./support/servers');
const { tmpDir } = require('./support/tmp');

const ID = 'a'.repeat(40);

test('redis on a refused port: the message names host:port and "refused", never the password', async () => {
  const port = await freePort();
  const h = new RedisSessionHandler({ host: '127.0.0.1', port, password: 'hunter2' }, { connectTimeoutMs: 500, commandTimeoutMs: 1500 });
  await assert.rejects(h.read(ID), (e) => {
    assert.equal(e.code, 'ERR_SESSION_UNAVAILABLE');
    assert.ok(e.message.includes(`127.0.0.1:${port}`), e.message);
    assert.match(e.message, /refused/);
    assert.ok(!e.message.includes('hunter2'));
    return true;
  });
  await h.close();
});

test('memcached on a refused port: the message names host:port and "refused"', async () => {
  const port = await freePort();
  const h = new MemcachedSessionHandler(`127.0.0.1:${port}`, { timeoutMs: 1500 });
  await assert.rejects(h.read(ID), (e) => {
    assert.equal(e.code, 'ERR_SESSION_UNAVAILABLE');
    assert.ok(e.message.includes(`127.0.0.1:${port}`), e.message);
    assert.match(e.message, /refused/);
    return true;
  });
  await h.close();
});

test('sqlite in a missing directory: the message names the directory', async () => {
  const missing = path.join(tmpDir(), 'no', 'such');
  const h = new SqliteSessionHandler(path.join(missing, 'sessions.db'));
  await assert.rejects(h.read(ID), (e) => {
    assert.equal(e.code, 'ERR_SESSION_IO');
    assert.ok(e.message.includes(missing), e.message);
    assert.match(e.message, /does not exist/);
    return true;
  });
  await h.close();
});

// Issue 11: every binding error goes through src/errors.rs. The native session object sits
// below the Store (lib/store.js checks values first), so only a layer calling it directly can
// pass it an object, a NaN or broken JSON text; that must still be a coded Error, not napi's
// `InvalidArg` with a `[ERR_SESSION_VALUE]` prefix left in the message.
test('values refused by the native session itself carry ERR_SESSION_VALUE and a plain message', async () => {
  const { Store, ArraySessionHandler } = require('..');
  const s = new Store('c', new ArraySessionHandler(120));
  await s.start();
  const native = s._s;
  const cases = [
    [() => native.put('k', {}), /expected a string, number, boolean or null/, TypeError],
    [() => native.put('k', [1]), /expected a string, number, boolean or null/, TypeError],
    [() => native.put('k', Number.NaN), /numbers must be finite/, TypeError],
    [() => native.put('k', Infinity), /numbers must be finite/, TypeError],
    [() => native.putJson('k', '{bad'), /invalid JSON value/, TypeError],
    [() => native.putMany('[1]'), /expected JSON text of an object, got an array/, TypeError],
  ];
  for (const [call, message, kind] of cases) {
    assert.throws(call, (e) => {
      assert.ok(e instanceof kind, `${e.constructor.name}: ${e.message}`);
      assert.equal(e.code, 'ERR_SESSION_VALUE', e.message);
      assert.match(e.message, message);
      assert.ok(!e.message.startsWith('['), `no code prefix left in the message: ${e.message}`);
      return true;
    });
  }
  // Nothing was stored by the refused calls.
  assert.equal(s.has('k'), false);
});
