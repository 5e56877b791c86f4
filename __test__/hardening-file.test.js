'use strict';
// Issue 10, defect 5 and the file-driver gaps, from JS: FIFOs, sockets and huge files at session
// paths, the directory disappearing, EACCES naming the directory, invalid UTF-8 in a payload,
// and the new options (durable, timeoutMs, maxFileBytes).
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const { execFileSync, spawnSync } = require('node:child_process');
const { Store, FileSessionHandler } = require('..');
const { tmpDir } = require('./support/tmp');

const sid = (n) => String(n).padStart(40, 'F');

function sessionDir() {
  const dir = path.join(tmpDir(), 'sessions');
  fs.mkdirSync(dir, { mode: 0o700 });
  return dir;
}

// The timeout only turns the old driver's hang into a failure; it asserts no timing.
test('nine FIFOs at session paths read as no session, and the handler keeps working', { timeout: 60_000 }, async () => {
  // The old driver blocked in open() on each FIFO: nine held all 8 in-flight slots, every later
  // operation hung, and this test process could not exit.
  const dir = sessionDir();
  for (let n = 1; n <= 9; n++) execFileSync('mkfifo', [path.join(dir, sid(n))]);
  const h = new FileSessionHandler(dir, 120);
  const reads = await Promise.all(Array.from({ length: 9 }, (_, i) => h.read(sid(i + 1))));
  assert.deepEqual(reads, Array(9).fill(''));
  assert.equal(await h.touch(sid(1)), false);

  const s = new Store('s', h);
  await s.start();
  s.put('user', 'alice');
  assert.equal(await s.save(), 'written');
  const again = new Store('s', h, s.getId());
  await again.start();
  assert.equal(again.get('user'), 'alice');
});

test('a unix socket at a session path reads as no session', async (t) => {
  const dir = sessionDir();
  const server = net.createServer();
  await new Promise((resolve) => server.listen(path.join(dir, sid(1)), resolve));
  t.after(() => server.close());
  const h = new FileSessionHandler(dir, 120);
  assert.equal(await h.read(sid(1)), '');
  assert.equal(await h.touch(sid(1)), false);
});

test('a 100 MiB session file is refused from its size, without being read', async () => {
  const dir = sessionDir();
  const file = path.join(dir, sid(1));
  fs.writeFileSync(file, '{"a":1}');
  fs.truncateSync(file, 100 * 1024 * 1024); // sparse: no disk used
  const h = new FileSessionHandler(dir, 120);
  // The old driver returned all 100 MiB (and spent that much memory on each request).
  assert.equal(await h.read(sid(1)), '');

  const small = new FileSessionHandler(dir, 120, { maxFileBytes: 7 });
  fs.writeFileSync(path.join(dir, sid(2)), '{"a":1}');
  fs.writeFileSync(path.join(dir, sid(3)), '{"a":12}');
  assert.equal(await small.read(sid(2)), '{"a":1}', 'a file at the limit is read');
  assert.equal(await small.read(sid(3)), '', 'one byte over is not');
});

test('the directory is recreated (mode 0700) when it disappears', async () => {
  const dir = sessionDir();
  const h = new FileSessionHandler(dir, 120);
  await h.write(sid(1), '{}');
  fs.rmSync(dir, { recursive: true });
  await h.write(sid(1), '{"b":2}');
  assert.equal(await h.read(sid(1)), '{"b":2}');
  assert.equal(fs.statSync(dir).mode & 0o777, 0o700);
});

test('a directory made group-writable after start is refused, naming it', async () => {
  const dir = sessionDir();
  const h = new FileSessionHandler(dir, 120);
  await h.write(sid(1), '{}');
  fs.chmodSync(dir, 0o775);
  await assert.rejects(h.read(sid(1)), (e) => e.code === 'ERR_SESSION_IO' && e.message.includes(dir) && /writable by group or others/.test(e.message));
  fs.chmodSync(dir, 0o700);
  assert.equal(await h.read(sid(1)), '{}');
});

test('EACCES names the session directory', async () => {
  const base = tmpDir();
  fs.chmodSync(base, 0o755);
  const dir = path.join(base, 'sessions');
  fs.mkdirSync(dir, { mode: 0o700 });
  if (process.getuid() !== 0) {
    fs.writeFileSync(path.join(dir, sid(1)), '{}', { mode: 0o000 });
    await assert.rejects(new FileSessionHandler(dir, 120).read(sid(1)), (e) => e.code === 'ERR_SESSION_IO' && /Permission denied/.test(e.message) && e.message.includes(dir));
    return;
  }
  // Root is denied nothing, so a child runs as nobody: its session directory is its own, but a
  // session file in it belongs to root with mode 0600.
  fs.writeFileSync(path.join(dir, sid(1)), '{}', { mode: 0o600 });
  fs.chownSync(dir, 65534, 65534);
  const script = `
    const { FileSessionHandler } = require(${JSON.stringify(path.resolve(__dirname, '..'))});
    new FileSessionHandler(${JSON.stringify(dir)}, 120).read(${JSON.stringify(sid(1))})
      .then(() => console.log('{}'), (e) => console.log(JSON.stringify({ code: e.code, message: e.message })));`;
  const r = spawnSync(process.execPath, ['-e', script], { uid: 65534, gid: 65534, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const err = JSON.parse(r.stdout);
  assert.equal(err.code, 'ERR_SESSION_IO');
  assert.match(err.message, /Permission denied/);
  assert.ok(err.message.includes(dir), err.message);
});

test('invalid UTF-8 inside a stored string keeps the session and its id (lossy decoding)', async () => {
  const dir = sessionDir();
  const id = sid(7);
  fs.writeFileSync(path.join(dir, id), Buffer.concat([
    Buffer.from('{"_token":"t","user":"alice","note":"caf'),
    Buffer.from([0xc3, 0x28, 0xff]),
    Buffer.from('"}'),
  ]));
  const s = new Store('s', new FileSessionHandler(dir, 120), id);
  await s.start();
  assert.equal(s.getId(), id, 'no new id');
  assert.equal(s.get('user'), 'alice');
  assert.equal(s.get('note'), 'caf\uFFFD(\uFFFD');
});

test('durable, timeoutMs and maxFileBytes are checked; unknown options are refused', async () => {
  const dir = sessionDir();
  const h = new FileSessionHandler(dir, 120, { durable: true, timeoutMs: 5000 });
  await h.write(sid(1), '{"d":1}');
  assert.equal(await h.read(sid(1)), '{"d":1}');
  await h.destroy(sid(1));
  assert.equal(await h.read(sid(1)), '');
  const bad = (o, re) => assert.throws(() => new FileSessionHandler(dir, 120, o), (e) => e.code === 'ERR_SESSION_INVALID_OPTION' && re.test(e.message));
  bad({ durable: 'yes' }, /durable/);
  bad({ timeoutMs: 0 }, /timeoutMs/);
  bad({ timeoutMs: 600001 }, /timeoutMs/);
  bad({ maxFileBytes: 1.5 }, /maxFileBytes/);
  bad({ durabel: true }, /unknown option "durabel"/);
});
