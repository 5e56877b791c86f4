'use strict';
// How built-in drivers settle their Promises (src/runtime.rs): many operations in flight settle
// in batches, each with its own value or error, and the process stays alive exactly while one is
// pending.
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { FileSessionHandler, SqliteSessionHandler, Store } = require('..');
const { tmpDir } = require('./support/tmp');

const idOf = (k) => `c${String(k).padStart(39, '0')}`;

for (const [name, make] of [
  ['sqlite', () => new SqliteSessionHandler(path.join(tmpDir('ostro-completions-'), 's.sqlite'))],
  ['file', () => new FileSessionHandler(tmpDir('ostro-completions-'), 120)],
]) {
  test(`${name}: 500 concurrent operations each settle with their own value`, async () => {
    const h = make();
    const N = 500;
    await Promise.all(Array.from({ length: N }, (_, k) => h.write(idOf(k), JSON.stringify({ k }))));
    const read = await Promise.all(Array.from({ length: N }, (_, k) => h.read(idOf(k))));
    read.forEach((raw, k) => assert.deepEqual(JSON.parse(raw), { k }));
    // Reads, writes and failures interleaved in one burst: every Promise gets its own outcome.
    const mixed = await Promise.allSettled(Array.from({ length: N }, (_, k) => {
      if (k % 5 === 0) return h.read('bad id!');
      if (k % 5 === 1) return h.write(idOf(k), JSON.stringify({ k, again: true })).then(() => 'w');
      return h.read(idOf(k));
    }));
    mixed.forEach((r, k) => {
      if (k % 5 === 0) {
        assert.equal(r.status, 'rejected');
        assert.equal(r.reason.code, 'ERR_SESSION_INVALID_ID');
      } else if (k % 5 === 1) {
        assert.deepEqual(r, { status: 'fulfilled', value: 'w' });
      } else {
        assert.equal(r.status, 'fulfilled');
        assert.deepEqual(JSON.parse(r.value), { k });
      }
    });
    // Store cycles in flight at once, through start and save.
    await Promise.all(Array.from({ length: 64 }, async (_, k) => {
      const s = new Store('ostro_session', h, idOf(k));
      await s.start();
      s.increment('k');
      await s.save();
    }));
    assert.equal(JSON.parse(await h.read(idOf(63))).k, 64);
  });
}

const CHILD = `
const { SqliteSessionHandler, FileSessionHandler } = require(${JSON.stringify(path.join(__dirname, '..'))});
const dir = process.argv[1];
const sq = new SqliteSessionHandler(dir + '/s.sqlite');
const fh = new FileSessionHandler(dir + '/files', 120);
const id = 'x'.repeat(40);
// Nothing but the pending operations holds the loop open: the chain must still finish.
sq.write(id, '{"a":1}')
  .then(() => sq.read(id))
  .then((v) => fh.write(id, v))
  .then(() => fh.read(id))
  .then((v) => { process.stdout.write(v + '\\n'); });
`;

test('a process waits for its pending operations, then exits by itself when idle', () => {
  const dir = tmpDir('ostro-completions-');
  const t0 = Date.now();
  const r = spawnSync(process.execPath, ['-e', CHILD, dir], { encoding: 'utf8', timeout: 20000 });
  assert.equal(r.signal, null, `the child did not exit by itself (${Date.now() - t0} ms): ${r.stderr}`);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), '{"a":1}');
});
