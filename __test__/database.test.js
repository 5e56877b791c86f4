'use strict';
// The native database driver from JS, on the machine's PostgreSQL and MariaDB servers: the
// conformance kit, options, the Store cycle, servers that are not there or never answer, and two
// Node processes writing the same table. Each suite works in its own table and drops it after.
// A server that is not running fails the suite, naming it (never a skip).
// OSTRO_TEST_POSTGRES_URL / OSTRO_TEST_MYSQL_URL override the servers' URLs.
const test = require('node:test');
const { describe, before, after } = test;
const assert = require('node:assert/strict');
const net = require('node:net');
const path = require('node:path');
const { spawn, execFileSync } = require('node:child_process');
const sessionHandlerConformance = require('../lib/testing');
const { Store, DatabaseSessionHandler, SessionManager } = require('..');
const { serve, Client, sessionCookie, idOf: idOfCookie } = require('./support/http');
const { sessionApp } = require('./support/session-app');

const KEY = 'base64:' + Buffer.alloc(32, 7).toString('base64');

const SLACK = 500;
const BACKENDS = [
  {
    name: 'PostgreSQL',
    url: process.env.OSTRO_TEST_POSTGRES_URL || 'postgres://postgres@127.0.0.1:5432/test',
    scheme: 'postgres',
    sql(url, query) {
      return execFileSync('psql', [url, '-X', '-q', '-t', '-A', '-v', 'ON_ERROR_STOP=1', '-c', query], { encoding: 'utf8' }).trim();
    },
    quote: (t) => `"${t}"`,
  },
  {
    name: 'MariaDB',
    url: process.env.OSTRO_TEST_MYSQL_URL || 'mysql://root@127.0.0.1:3306/test',
    scheme: 'mysql',
    sql(url, query) {
      const u = new URL(url);
      return execFileSync('mariadb', ['-h', u.hostname, '-P', u.port || '3306', '-u', decodeURIComponent(u.username), '-N', '-B', '-D', u.pathname.slice(1), '-e', query], { encoding: 'utf8' }).trim();
    },
    quote: (t) => `\`${t}\``,
  },
];

let seq = 0;
const tableName = () => `ostro_js${process.pid}_${seq++}_${Date.now() % 100000}`;
const idOf = (p, i) => p + String(i).padStart(39, '0');

/** Rejects naming the server when nothing accepts connections at `url`. */
function requireServer(b) {
  const u = new URL(b.url);
  const port = Number(u.port) || (b.scheme === 'postgres' ? 5432 : 3306);
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: u.hostname, port, timeout: 2000 });
    s.once('connect', () => { s.destroy(); resolve(); });
    const fail = (e) => { s.destroy(); reject(new Error(`the ${b.name} server at ${u.hostname}:${port} is not reachable (${e ? e.message : 'timeout'}): these tests need it running (see .ci/run)`)); };
    s.once('error', fail);
    s.once('timeout', () => fail());
  });
}

function dropTable(b, table) {
  try { b.sql(b.url, `DROP TABLE IF EXISTS ${b.quote(table)}`); } catch { /* reported by the test that failed */ }
}

function waitForLine(child, line, ms = 15_000) {
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => done(new Error(`no "${line}" within ${ms} ms; got ${JSON.stringify(out)}`)), ms);
    const onData = (d) => { out += d; if (out.split('\n').includes(line)) done(); };
    const onExit = (code) => done(new Error(`exited (${code}) before "${line}"; got ${JSON.stringify(out)}`));
    function done(err) {
      clearTimeout(timer);
      child.stdout.off('data', onData);
      child.off('exit', onExit);
      if (err) reject(err); else resolve();
    }
    child.stdout.on('data', onData);
    child.on('exit', onExit);
  });
}

function exitOf(child, ms = 15_000) {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { process.kill(child.pid, 'SIGKILL'); reject(new Error(`pid ${child.pid} did not exit within ${ms} ms`)); }, ms);
    child.once('exit', (code) => { clearTimeout(timer); resolve(code); });
  });
}

async function rejectsUnavailable(promise, boundMs, addr) {
  const t = Date.now();
  await assert.rejects(promise, (e) => {
    assert.equal(e.code, 'ERR_SESSION_UNAVAILABLE', e.message);
    assert.ok(e.message.includes(addr), `the message must name ${addr}: ${e.message}`);
    return true;
  });
  const took = Date.now() - t;
  assert.ok(took <= boundMs + SLACK, `took ${took} ms (bound ${boundMs} + ${SLACK})`);
}

/**
 * A TCP proxy in front of a database server, which the test can cut (connections reset, new ones
 * refused), freeze (accepted and kept, nothing forwarded: a server that hangs) and restore, on
 * the same port. The shared servers themselves are never stopped.
 */
async function proxyTo(host, port) {
  const pairs = new Set();
  let mode = 'open';
  const srv = net.createServer((client) => {
    if (mode === 'cut') { client.destroy(); return; }
    const pair = { client, up: null };
    pairs.add(pair);
    client.on('error', () => {});
    client.on('close', () => { pairs.delete(pair); if (pair.up) pair.up.destroy(); });
    if (mode === 'frozen') return; // accepted, never answered
    pair.up = net.connect({ host, port });
    pair.up.on('error', () => client.destroy());
    pair.up.on('close', () => client.destroy());
    client.on('data', (d) => { if (mode === 'open') pair.up.write(d); });
    pair.up.on('data', (d) => { if (mode === 'open') client.write(d); });
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  return {
    port: srv.address().port,
    cut() { mode = 'cut'; for (const p of pairs) { p.client.destroy(); if (p.up) p.up.destroy(); } },
    freeze() { mode = 'frozen'; },
    restore() { mode = 'open'; for (const p of pairs) { p.client.destroy(); if (p.up) p.up.destroy(); } },
    close() { mode = 'cut'; for (const p of pairs) p.client.destroy(); return new Promise((r) => srv.close(r)); },
  };
}

/** Runs `count` concurrent Store saves on `id` in a child process (support/concurrency-writer.js). */
function casWriter(where, id, prefix, count) {
  const child = spawn(process.execPath, [path.join(__dirname, 'support', 'concurrency-writer.js'), 'database', where, id, prefix, String(count)], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { err += d; });
  const exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  const ready = waitForLine(child, 'ready');
  const done = exited.then((code) => {
    assert.equal(code, 0, `writer ${prefix} failed: ${err}`);
    return JSON.parse(out.split('\n')[1]);
  });
  return { child, ready, done };
}

for (const b of BACKENDS) {
  // A table per handler, as the file driver gets a directory per handler: the kit's gc test
  // counts what gc removes, so other tests' expired records must not share its table.
  const conformanceTables = [];
  sessionHandlerConformance(({ minutes }) => {
    const table = tableName();
    conformanceTables.push(table);
    return new DatabaseSessionHandler(b.url, { table, minutes });
  }, {
    name: `DatabaseSessionHandler (Rust) on ${b.name}`,
    before: () => requireServer(b),
    after: () => conformanceTables.forEach((t) => dropTable(b, t)),
  });

  describe(`DatabaseSessionHandler on ${b.name}`, () => {
    const table = tableName();
    before(() => requireServer(b));
    after(() => dropTable(b, table));

    test('unknown options, bad URLs, tables and pools are refused in the constructor', () => {
      const bad = (fn, what) => assert.throws(fn, (e) => {
        assert.equal(e.code, 'ERR_SESSION_INVALID_OPTION');
        if (what) assert.match(e.message, what);
        return true;
      });
      bad(() => new DatabaseSessionHandler(b.url, { tabel: 'x' }), /unknown option "tabel"/);
      bad(() => new DatabaseSessionHandler(b.url, { table: 'x; DROP TABLE y' }), /table/);
      bad(() => new DatabaseSessionHandler(b.url, { pool: 0 }), /pool/);
      bad(() => new DatabaseSessionHandler(b.url, { pool: 65 }), /pool/);
      bad(() => new DatabaseSessionHandler(b.url, { commandTimeoutMs: 0 }), /commandTimeoutMs/);
      bad(() => new DatabaseSessionHandler(b.url, { minutes: -1 }));
      bad(() => new DatabaseSessionHandler('redis://127.0.0.1:6379'), /postgres/);
      bad(() => new DatabaseSessionHandler(42));
      bad(() => new DatabaseSessionHandler(b.url, 'sessions'));
    });

    test('a Store cycle: start, put, save, start again; metadata lands in the columns', async () => {
      const h = new DatabaseSessionHandler(b.url, { table });
      const s = new Store('ostro_session', h);
      await s.start();
      s.put('user.name', 'Ada 👩‍💻');
      s.setRequestMeta({ ip: '::1', userAgent: 'node-test', userId: '42' });
      await s.save();
      const again = new Store('ostro_session', h, s.getId());
      await again.start();
      assert.equal(again.get('user.name'), 'Ada 👩‍💻');
      assert.equal(b.sql(b.url, `SELECT concat(ip_address, '|', user_agent, '|', user_id) FROM ${b.quote(table)} WHERE sid = '${s.getId()}'`), '::1|node-test|42');
      await h.close();
    });

    test('gc removes what is idle past the lifetime, through the last_activity index', async () => {
      let now = 1_700_000_000_000;
      const h = new DatabaseSessionHandler(b.url, { table, minutes: 2, now: () => now });
      for (let i = 0; i < 50; i++) await h.write(idOf('G', i), '{}');
      now += 121_000;
      await h.write(idOf('H', 0), '{}');
      assert.equal(await h.gc(120), 50);
      assert.equal(await h.read(idOf('H', 0)), '{}');
      const indexes = b.scheme === 'postgres'
        ? b.sql(b.url, `SELECT count(*) FROM pg_indexes WHERE tablename = '${table}' AND indexdef LIKE '%(last_activity)'`)
        : b.sql(b.url, `SELECT COUNT(*) FROM information_schema.statistics WHERE table_schema = DATABASE() AND table_name = '${table}' AND column_name = 'last_activity' AND seq_in_index = 1`);
      assert.equal(indexes, '1');
      await h.close();
    });

    test('a port where nothing listens: ERR_SESSION_UNAVAILABLE naming host:port, within the timeout', async () => {
      const srv = net.createServer();
      await new Promise((r) => srv.listen(0, '127.0.0.1', r));
      const { port } = srv.address();
      await new Promise((r) => srv.close(r));
      const u = new URL(b.url);
      u.port = String(port);
      const h = new DatabaseSessionHandler(u.href, { table, connectTimeoutMs: 800, commandTimeoutMs: 800 });
      await rejectsUnavailable(h.read(idOf('D', 1)), 800, `127.0.0.1:${port}`);
      await rejectsUnavailable(h.write(idOf('D', 1), '{}'), 800, `127.0.0.1:${port}`);
    });

    test('a server that accepts and never answers: ERR_SESSION_UNAVAILABLE within the command timeout', async () => {
      const sockets = [];
      const srv = net.createServer((s) => sockets.push(s));
      await new Promise((r) => srv.listen(0, '127.0.0.1', r));
      const { port } = srv.address();
      try {
        const u = new URL(b.url);
        u.port = String(port);
        const h = new DatabaseSessionHandler(u.href, { table, connectTimeoutMs: 5000, commandTimeoutMs: 700 });
        await rejectsUnavailable(h.read(idOf('F', 1)), 700, `127.0.0.1:${port}`);
        await rejectsUnavailable(h.touch(idOf('F', 1)), 700, `127.0.0.1:${port}`);
        assert.ok(sockets.length >= 1);
      } finally {
        sockets.forEach((s) => s.destroy());
        await new Promise((r) => srv.close(r));
      }
    });

    test('two Node processes: their own sessions all kept, shared sessions whole (last writer wins)', async () => {
      const t2 = tableName();
      const writer = path.join(__dirname, 'support', 'database-writer.js');
      const children = ['A', 'B'].map((p) => spawn(process.execPath, [writer, b.url, t2, p, '300', '40'], { stdio: ['pipe', 'pipe', 'inherit'] }));
      try {
        await Promise.all(children.map((c) => waitForLine(c, 'ready')));
        for (const c of children) c.stdin.write('go\n');
        await Promise.all(children.map((c) => waitForLine(c, 'done', 60_000)));
        // Neither closes its handler; both must exit by themselves.
        assert.deepEqual(await Promise.all(children.map((c) => exitOf(c))), [0, 0]);
        const h = new DatabaseSessionHandler(b.url, { table: t2 });
        for (const p of ['A', 'B']) {
          for (let i = 0; i < 300; i++) assert.deepEqual(JSON.parse(await h.read(idOf(p, i))), { by: p, i });
        }
        for (let i = 0; i < 40; i++) {
          const got = JSON.parse(await h.read(idOf('S', i)));
          assert.ok(got.by === 'A' || got.by === 'B');
          assert.equal(got.i, i);
          assert.equal(got.pad, got.by.repeat(2000), 'a payload is one writer\'s, whole');
        }
        assert.equal(b.sql(b.url, `SELECT count(*) FROM ${b.quote(t2)}`), '640');
        await h.close();
      } finally {
        children.forEach((c) => { if (c.exitCode === null) process.kill(c.pid, 'SIGKILL'); });
        dropTable(b, t2);
      }
    });

    test('two Node processes, 100 concurrent saves each on one session: all 200 keys and exactly +200 (compare-and-set)', { timeout: 120000 }, async () => {
      const t2 = tableName();
      const h = new DatabaseSessionHandler(b.url, { table: t2 });
      const writers = [];
      try {
        const s0 = new Store('ostro_session', h);
        await s0.start();
        s0.put('n', 0);
        await s0.save();
        const id = s0.getId();
        writers.push(casWriter(`${b.url}#${t2}`, id, 'a', 100), casWriter(`${b.url}#${t2}`, id, 'b', 100));
        await Promise.all(writers.map((w) => w.ready));
        for (const w of writers) w.child.stdin.write('go\n');
        const outcomes = await Promise.all(writers.map((w) => w.done));
        assert.deepEqual(new Set(outcomes.flat()), new Set(['written']));
        const back = new Store('ostro_session', h, id);
        await back.start();
        assert.equal(back.get('n'), 200, 'increments were lost across processes');
        for (let i = 0; i < 100; i++) {
          assert.equal(back.get(`a${i}`), i, `key a${i} was lost`);
          assert.equal(back.get(`b${i}`), i, `key b${i} was lost`);
        }
      } finally {
        writers.forEach((w) => { if (w.child.exitCode === null) process.kill(w.child.pid, 'SIGKILL'); });
        await h.close();
        dropTable(b, t2);
      }
    });

    // The driver's own gc statement, not a hand-written one: the server's per-index usage
    // counters are read around handler.gc() on a table large enough (20 000 live rows, 20
    // expired, ANALYZEd) that a plan without the index reads every row. PostgreSQL:
    // pg_stat_user_indexes.idx_scan of the index and pg_stat_user_tables.seq_scan of the table
    // (a backend reports its counts when it ends, so gc runs on a handler of its own, closed
    // after). MariaDB (no performance_schema here): information_schema.INDEX_STATISTICS and
    // TABLE_STATISTICS, which count only while the global userstat is on; it is turned on for
    // the test and back off after, if it was off.
    test('gc\'s own DELETE goes through the last_activity index (the server\'s index counters around handler.gc())', { timeout: 60000 }, async () => {
      const LIVE = 20000;
      const EXPIRED = 20;
      const t = tableName();
      const index = `${t}_last_activity_index`;
      const nowMs = 1_700_000_000_000;
      const nowS = nowMs / 1000;
      const make = () => new DatabaseSessionHandler(b.url, { table: t, minutes: 2, now: () => nowMs });
      const maker = make();
      await maker.read(idOf('E', 0)); // creates the table and its indexes
      await maker.close();
      const q = b.quote(t);
      let userstatWas = null;
      try {
        if (b.scheme === 'postgres') {
          b.sql(b.url, `INSERT INTO ${q} (sid, payload, last_activity) SELECT 'live' || g, '{}', ${nowS} FROM generate_series(1, ${LIVE}) g;
            INSERT INTO ${q} (sid, payload, last_activity) SELECT 'old' || g, '{}', ${nowS - 1000} FROM generate_series(1, ${EXPIRED}) g;
            ANALYZE ${q}`);
        } else {
          const digits = `(${Array.from({ length: 10 }, (_, i) => `SELECT ${i} d`).join(' UNION ALL ')})`;
          b.sql(b.url, `INSERT INTO ${q} (sid, payload, last_activity) SELECT CONCAT('live', a.d + 10 * b.d + 100 * c.d + 1000 * e.d + 10000 * f.d), '{}', ${nowS}
              FROM ${digits} a, ${digits} b, ${digits} c, ${digits} e, (SELECT 0 d UNION ALL SELECT 1) f;
            INSERT INTO ${q} (sid, payload, last_activity) SELECT CONCAT('old', a.d + 10 * b.d), '{}', ${nowS - 1000}
              FROM ${digits} a, (SELECT 0 d UNION ALL SELECT 1) b;
            ANALYZE TABLE ${q}`);
          userstatWas = b.sql(b.url, 'SELECT @@GLOBAL.userstat');
          if (userstatWas !== '1') b.sql(b.url, 'SET GLOBAL userstat = 1');
        }
        assert.equal(b.sql(b.url, `SELECT COUNT(*) FROM ${q}`), String(LIVE + EXPIRED));
        // [rows or scans through the index, whole-table reads]; null when the index is gone.
        const counters = () => {
          const row = b.scheme === 'postgres'
            ? b.sql(b.url, `SELECT i.idx_scan || '|' || s.seq_scan FROM pg_stat_user_indexes i JOIN pg_stat_user_tables s USING (relid)
                WHERE s.relname = '${t}' AND i.indexrelname = '${index}'`)
            : b.sql(b.url, `SELECT CONCAT(IFNULL((SELECT ROWS_READ FROM information_schema.INDEX_STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '${t}' AND INDEX_NAME = '${index}'), 0),
                '|', IFNULL((SELECT ROWS_READ FROM information_schema.TABLE_STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '${t}'), 0))
                FROM information_schema.statistics WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '${t}' AND INDEX_NAME = '${index}' AND COLUMN_NAME = 'last_activity' AND SEQ_IN_INDEX = 1`);
          return row === '' ? null : row.split('|').map(Number);
        };
        // Settled: what the table's creator reported when it ended is in.
        let before = counters();
        for (let i = 0; i < 20; i++) {
          await new Promise((r) => setTimeout(r, 100));
          const again = counters();
          if (JSON.stringify(again) === JSON.stringify(before)) break;
          before = again;
        }
        assert.ok(before, `no index ${index} on last_activity`);
        const h = make();
        assert.equal(await h.gc(120), EXPIRED);
        await h.close();
        let after = counters();
        for (let i = 0; i < 50 && after && after[0] === before[0]; i++) {
          await new Promise((r) => setTimeout(r, 100));
          after = counters();
        }
        assert.ok(after, `index ${index} on last_activity is gone`);
        const [viaIndex, whole] = [after[0] - before[0], after[1] - before[1]];
        if (b.scheme === 'postgres') {
          assert.ok(viaIndex >= 1, `gc's DELETE did not scan ${index} (idx_scan +${viaIndex}, seq_scan +${whole})`);
          assert.equal(whole, 0, `gc's DELETE scanned the whole table (seq_scan +${whole})`);
        } else {
          assert.ok(viaIndex >= EXPIRED, `gc's DELETE read ${viaIndex} rows through ${index} (table rows read: ${whole})`);
          assert.ok(whole < LIVE / 10, `gc's DELETE read ${whole} rows of the table: a full scan, not the index`);
        }
        assert.equal(b.sql(b.url, `SELECT COUNT(*) FROM ${q}`), String(LIVE), 'only the expired rows went');
      } finally {
        if (userstatWas !== null && userstatWas !== '1') b.sql(b.url, `SET GLOBAL userstat = ${Number(userstatWas) || 0}`);
        dropTable(b, t);
        dropTable(b, `${t}_locks`);
      }
    });

    test('driver \'database\' with a URL connection: the native driver through the middleware (put, flash, regenerate, logout that sticks)', { timeout: 60000 }, async () => {
      const t2 = tableName();
      const m = new SessionManager({ driver: 'database', connection: b.url, table: t2, key: KEY, lottery: [0, 100] });
      assert.ok(m.driver() instanceof DatabaseSessionHandler);
      const srv = await serve('node', m, sessionApp());
      try {
        const c = new Client(srv.url);
        await c.get('/put?key=name&value=ada');
        const first = idOfCookie(sessionCookie(await c.get('/flash?key=status&value=saved')));
        assert.equal((await c.get('/get?key=status')).json().value, 'saved');
        assert.equal((await c.get('/get?key=status')).json().value ?? null, null, 'a flash lives for one request');
        const regenerated = (await c.get('/regenerate')).json().id;
        assert.notEqual(regenerated, first);
        assert.equal((await c.get('/get?key=name')).json().value, 'ada');
        assert.equal(b.sql(b.url, `SELECT count(*) FROM ${b.quote(t2)} WHERE sid = '${regenerated}' AND payload LIKE '%ada%'`), '1');
        // The old id of regenerate(true) is a tombstone: no session, and a save cannot revive it.
        assert.equal(await m.driver().read(first), '');
        const stale = new Store('ostro_session', m.driver(), first);
        await stale.start();
        stale.put('back', 1);
        assert.equal(await stale.save(), 'dropped');
        assert.equal(await m.driver().read(first), '');
        const loggedOut = (await c.get('/invalidate')).json().id;
        assert.notEqual(loggedOut, regenerated);
        assert.equal(await m.driver().read(regenerated), '');
        assert.equal((await c.get('/get?key=name')).json().value ?? null, null, 'logged out');
        // 200 concurrent requests on one session, each incrementing: exactly +200.
        const cookie = c.cookieHeader();
        const res = await Promise.all(Array.from({ length: 200 }, () => c.get('/increment', { cookie })));
        assert.ok(res.every((r) => r.status === 200), res.map((r) => r.status).join(','));
        assert.equal((await c.get('/get?key=n')).json().value, 200);
      } finally {
        await srv.close();
        await m.close();
        dropTable(b, t2);
      }
    });

    test('a server that goes away (through a TCP proxy that is cut, then hangs): ERR_SESSION_UNAVAILABLE in time, and the same handler recovers', { timeout: 60000 }, async () => {
      const u = new URL(b.url);
      const proxy = await proxyTo(u.hostname, Number(u.port) || (b.scheme === 'postgres' ? 5432 : 3306));
      const via = new URL(b.url);
      via.port = String(proxy.port);
      const addr = `127.0.0.1:${proxy.port}`;
      const h = new DatabaseSessionHandler(via.href, { table, connectTimeoutMs: 800, commandTimeoutMs: 800 });
      try {
        const s = new Store('ostro_session', h);
        await s.start();
        s.put('v', 1);
        await s.save();
        const id = s.getId();
        proxy.cut();
        await rejectsUnavailable(h.read(id), 800, addr);
        const during = new Store('ostro_session', h, id);
        await rejectsUnavailable(during.start(), 800, addr);
        proxy.freeze();
        await rejectsUnavailable(h.read(id), 800, addr);
        await rejectsUnavailable(h.write(id, '{"v":9}'), 800, addr);
        proxy.restore();
        const after = new Store('ostro_session', h, id);
        await after.start();
        assert.equal(after.get('v'), 1, 'the session is there once the server is back');
        after.increment('v');
        assert.equal(await after.save(), 'written');
        assert.equal(JSON.parse(await h.read(id)).v, 2);
      } finally {
        await h.close();
        await proxy.close();
      }
    });
  });
}
