'use strict';
// The sqlite driver from JS: the Store cycle, options, bad files, a lock held by another
// connection (the sqlite3 CLI), two processes sharing one file, and process exit.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawn, execFileSync } = require('node:child_process');
const { Store, SqliteSessionHandler } = require('..');
const native = require('../lib/native');
const { tmpDir } = require('./support/tmp');

const ID = 'S1'.repeat(20);
const T0 = 1_700_000_000_000;

function dbPath() {
  return path.join(tmpDir('ostro-sqlite-'), 'sessions.sqlite');
}

/** Runs SQL through the sqlite3 CLI: the test's independent view of the database. */
function sql(db, query) {
  return execFileSync('sqlite3', ['-separator', '|', db, query], { encoding: 'utf8' }).trim();
}

/** Resolves when `child` prints `line`; rejects when it exits first or `ms` pass. */
function waitForLine(child, line, ms = 10_000) {
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => done(new Error(`no "${line}" within ${ms} ms; got ${JSON.stringify(out)}`)), ms);
    const onData = (d) => {
      out += d;
      if (out.split('\n').includes(line)) done();
    };
    const onExit = (code) => done(new Error(`exited (${code}) before "${line}"; got ${JSON.stringify(out)}`));
    function done(err) {
      clearTimeout(timer);
      child.stdout.off('data', onData);
      child.off('exit', onExit);
      if (err) reject(err);
      else resolve();
    }
    child.stdout.on('data', onData);
    child.on('exit', onExit);
  });
}

/** Resolves with the exit code; kills the child by pid (and rejects) after `ms`. */
function exitOf(child, ms = 15_000) {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      process.kill(child.pid, 'SIGKILL');
      reject(new Error(`pid ${child.pid} did not exit within ${ms} ms`));
    }, ms);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

function stop(child) {
  if (child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL');
}

test('a full Store cycle, with request metadata and raw JSON payloads in the table', async () => {
  const db = dbPath();
  const h = new SqliteSessionHandler(db, { table: 'app_sessions', minutes: 5 });
  assert.equal(fs.existsSync(db), false, 'nothing is opened at construction');
  const s = new Store('ostro_session', h);
  s.setRequestMeta({ ip: '203.0.113.9', userAgent: 'Mozilla/5.0 (test)', userId: '42' });
  await s.start();
  s.put('user.name', 'Zoë 🎉');
  s.flash('status', 'saved');
  await s.save();

  const again = new Store('ostro_session', h, s.getId());
  await again.start();
  assert.equal(again.get('user.name'), 'Zoë 🎉');
  assert.equal(again.get('status'), 'saved');
  assert.equal(again.token(), s.token());
  await again.save();

  // `again` had no request metadata: its write kept the columns the first request set.
  const row = sql(db, `SELECT ip_address, user_agent, user_id, typeof(payload), typeof(last_activity) FROM app_sessions WHERE sid = '${s.getId()}'`);
  assert.equal(row, '203.0.113.9|Mozilla/5.0 (test)|42|text|integer');
  const payload = JSON.parse(sql(db, `SELECT payload FROM app_sessions WHERE sid = '${s.getId()}'`));
  assert.deepEqual(payload.user, { name: 'Zoë 🎉' }, 'the payload is JSON text, not base64');
  await h.close();
});

test('the clock option: readable exactly at the lifetime, gone one second later; touch and gc', async () => {
  let now = T0;
  const h = new SqliteSessionHandler(':memory:', { minutes: 1, now: () => now });
  await h.write(ID, '{"k":1}');
  now += 60_000;
  assert.equal(await h.read(ID), '{"k":1}');
  now += 1_000;
  assert.equal(await h.read(ID), '');
  assert.equal(await h.touch(ID), false, 'an expired row counts as no record');
  await h.write(ID, '{"k":2}');
  now += 50_000;
  assert.equal(await h.touch(ID), true);
  now += 50_000;
  assert.equal(await h.read(ID), '{"k":2}', 'touch moved the expiry');
  assert.equal(await h.gc(50), 0, 'idle exactly 50 s is not more than 50');
  now += 1_000;
  assert.equal(await h.gc(50), 1);
  assert.equal(await h.read(ID), '');
});

test('a table name that is not a plain identifier is a TypeError, in JS and in Rust', () => {
  for (const table of ['sessions; DROP TABLE users', 'a"b', 'main.sessions', '1x', '', 42]) {
    assert.throws(
      () => new SqliteSessionHandler(':memory:', { table }),
      (e) => e instanceof TypeError && e.code === 'ERR_SESSION_INVALID_OPTION',
      String(table),
    );
  }
  // The native factory checks on its own, whatever a caller passes.
  assert.throws(
    () => native.createSqliteHandler(':memory:', { table: 'x; DROP TABLE y' }),
    (e) => e instanceof TypeError && e.code === 'ERR_SESSION_INVALID_OPTION' && /plain SQL identifier/.test(e.message),
  );
  for (const busyTimeoutMs of [-1, NaN, Infinity, '5']) {
    assert.throws(() => new SqliteSessionHandler(':memory:', { busyTimeoutMs }), (e) => e instanceof TypeError && e.code === 'ERR_SESSION_INVALID_OPTION');
  }
  assert.throws(() => new SqliteSessionHandler(''), TypeError);
  assert.throws(() => new SqliteSessionHandler(':memory:', { minutes: 0 }), TypeError);
});

test('a file that is not a database fails at the first operation with ERR_SESSION_IO, naming no path', async () => {
  const db = path.join(tmpDir('ostro-sqlite-'), 'private-name.db');
  fs.writeFileSync(db, 'not a database '.repeat(100));
  const h = new SqliteSessionHandler(db);
  for (const op of [() => h.read(ID), () => h.write(ID, '{}')]) {
    await assert.rejects(op(), (e) => {
      assert.equal(e.code, 'ERR_SESSION_IO');
      assert.match(e.message, /not a SQLite database/);
      assert.doesNotMatch(e.message, /private-name/);
      return true;
    });
  }
  assert.match(fs.readFileSync(db, 'utf8'), /^not a database/, 'the file is left alone');
});

test('a lock held by another connection gives ERR_SESSION_BUSY after busyTimeoutMs, then success', async () => {
  const db = dbPath();
  const h = new SqliteSessionHandler(db, { busyTimeoutMs: 200 });
  await h.write(ID, '{"v":"before"}');
  const cli = spawn('sqlite3', [db], { stdio: ['pipe', 'pipe', 'inherit'] });
  try {
    cli.stdin.write("BEGIN EXCLUSIVE;\nDELETE FROM sessions WHERE sid = 'none';\n.print locked\n");
    await waitForLine(cli, 'locked');
    const t = Date.now();
    await assert.rejects(h.write(ID, '{"v":"during"}'), (e) => {
      assert.equal(e.code, 'ERR_SESSION_BUSY');
      assert.ok(!(e instanceof TypeError));
      assert.match(e.message, /^database is locked/);
      return true;
    });
    const waited = Date.now() - t;
    assert.ok(waited >= 150 && waited < 5000, `waited ${waited} ms`);
    assert.equal(await h.read(ID), '{"v":"before"}', 'WAL: readers are not blocked by the writer');
    cli.stdin.end('COMMIT;\n.quit\n');
    assert.equal(await exitOf(cli), 0);
  } finally {
    stop(cli);
  }
  await h.write(ID, '{"v":"after"}');
  assert.equal(await h.read(ID), '{"v":"after"}');
});

test('two Node processes write 500 sessions each into one file: all 1,000 read back', async () => {
  const db = dbPath();
  const writer = path.join(__dirname, 'support', 'sqlite-writer.js');
  const children = ['A', 'B'].map((p) => spawn(process.execPath, [writer, db, p, '500'], { stdio: ['pipe', 'pipe', 'inherit'] }));
  try {
    await Promise.all(children.map((c) => waitForLine(c, 'ready')));
    for (const c of children) c.stdin.write('go\n');
    await Promise.all(children.map((c) => waitForLine(c, 'done', 30_000)));
    // Neither closes its handler; both must exit by themselves.
    assert.deepEqual(await Promise.all(children.map((c) => exitOf(c))), [0, 0]);
  } finally {
    children.forEach(stop);
  }
  assert.equal(sql(db, 'SELECT count(*) FROM sessions'), '1000');
  const h = new SqliteSessionHandler(db);
  for (const p of ['A', 'B']) {
    for (let i = 0; i < 500; i++) {
      const id = p + String(i).padStart(39, '0');
      assert.deepEqual(JSON.parse(await h.read(id)), { by: p, i });
    }
  }
});

test('node exits by itself after using sqlite handlers it never closed', async () => {
  const db = dbPath();
  const child = spawn(process.execPath, [path.join(__dirname, 'support', 'sqlite-exit.js'), db], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  try {
    assert.equal(await exitOf(child, 10_000), 0);
  } finally {
    stop(child);
  }
  assert.equal(out, 'ok\n');
});
