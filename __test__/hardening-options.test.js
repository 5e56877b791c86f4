'use strict';
// Issue 10, defect 6 (driver half): an unknown key in a driver's connection or options object
// is refused with ERR_SESSION_INVALID_OPTION naming it. `new RedisSessionHandler({ cluster })`
// used to be a plain connection to 127.0.0.1:6379.
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const {
  ArraySessionHandler, FileSessionHandler, SqliteSessionHandler, RedisSessionHandler,
  MemcachedSessionHandler, CookieSessionHandler,
} = require('..');
const { tmpDir } = require('./support/tmp');

function refused(make, key, more) {
  assert.throws(make, (e) => {
    assert.equal(e.code, 'ERR_SESSION_INVALID_OPTION', e.message);
    assert.ok(e instanceof TypeError);
    assert.ok(e.message.includes(`"${key}"`), e.message);
    if (more) assert.match(e.message, more);
    return true;
  });
}

test('redis: cluster and sentinel in a wrong shape are refused naming the key, never connected to localhost', () => {
  refused(() => new RedisSessionHandler({ cluster: [{ host: '10.0.0.1', port: 7000 }] }), 'cluster', /URL strings/);
  refused(() => new RedisSessionHandler({ sentinel: { name: 'mymaster' } }), 'name');
  refused(() => new RedisSessionHandler({ sentinels: [] }), 'sentinels', /masterName/);
});

test('redis: unknown connection, options and tls keys are refused', () => {
  refused(() => new RedisSessionHandler({ hots: 'redis.internal' }), 'hots');
  refused(() => new RedisSessionHandler({ host: 'h', tls: { caFiel: '/x' } }), 'caFiel');
  refused(() => new RedisSessionHandler('redis://127.0.0.1:6379', { prefx: 'a:' }), 'prefx');
  refused(() => new RedisSessionHandler('redis://127.0.0.1:6379', { timeoutMs: 5 }), 'timeoutMs');
  // Known keys still work (nothing connects at construction).
  new RedisSessionHandler({ host: '127.0.0.1', port: 6379, database: 1 }, { prefix: 'p:', minutes: 5 });
});

test('memcached: unknown options are refused; credentials keep their own message', () => {
  refused(() => new MemcachedSessionHandler('127.0.0.1:11211', { prefx: 'a:' }), 'prefx');
  assert.throws(() => new MemcachedSessionHandler('127.0.0.1:11211', { password: 'x' }), /SASL/);
  new MemcachedSessionHandler('127.0.0.1:11211', { prefix: 'p:', minutes: 5, timeoutMs: 100 });
});

test('sqlite, file, array and cookie: unknown options are refused', () => {
  const dir = tmpDir();
  refused(() => new SqliteSessionHandler(path.join(dir, 'db'), { tabel: 'x' }), 'tabel');
  refused(() => new FileSessionHandler(dir, 120, { mode: 0o700 }), 'mode');
  refused(() => new ArraySessionHandler(120, { max: 5 }), 'max');
  refused(() => new CookieSessionHandler({ name: 'c', keys: ['k'.repeat(32)], secure: true }), 'secure');
  new SqliteSessionHandler(path.join(dir, 'db'), { table: 'sessions', minutes: 5, busyTimeoutMs: 10, timeoutMs: 1000 });
  assert.throws(() => new SqliteSessionHandler(path.join(dir, 'db'), { timeoutMs: 0 }), (e) => e.code === 'ERR_SESSION_INVALID_OPTION' && /timeoutMs/.test(e.message));
  new CookieSessionHandler({ name: 'c', keys: ['k'.repeat(32)], minutes: 5, maxBytes: 4096 });
});
