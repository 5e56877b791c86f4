'use strict';
// One gc measurement in a fresh process: N expired sessions are laid down directly in the
// store's own format (fast, not timed), then the store's cleanup runs while
// perf_hooks.monitorEventLoopDelay samples the event loop every millisecond, and a 1 ms interval
// ticks as a stand-in for requests. Prints one JSON line.
//   node gc-child.js <ours-file|ours-sqlite|peer-file-store|peer-sqlite-store> <N> <dir>

const fs = require('node:fs');
const path = require('node:path');
const { monitorEventLoopDelay, performance } = require('node:perf_hooks');
const { idOf } = require('../lib/ids');
const kit = require('../lib/kit');
const { SESSION_JSON } = require('../lib/payload');

const [variant, nArg, dir] = process.argv.slice(2);
const N = Number(nArg);
const OLD_MS = Date.now() - 3 * 3600 * 1000; // three hours ago: past the 2 h lifetime
const LIFETIME_S = kit.LIFETIME_MIN * 60;

function writeFiles(d, name, content, mtimeMs) {
  fs.mkdirSync(d, { recursive: true, mode: 0o700 });
  const t = new Date(mtimeMs);
  for (let k = 0; k < N; k++) {
    const file = path.join(d, name(k));
    fs.writeFileSync(file, content(k), { mode: 0o600 });
    fs.utimesSync(file, t, t);
  }
}

function sqliteInsert(file, sql, rowOf) {
  const Database = kit.need('better-sqlite3');
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  const st = db.prepare(sql);
  db.transaction(() => { for (let k = 0; k < N; k++) st.run(...rowOf(k)); })();
  db.close();
}

async function prepare() {
  switch (variant) {
    case 'ours-file': {
      const d = path.join(dir, 'sessions');
      writeFiles(d, idOf, () => SESSION_JSON, OLD_MS);
      const { FileSessionHandler } = kit.ours();
      const h = new FileSessionHandler(d, kit.LIFETIME_MIN);
      return { label: '@ostro/session file gc()', gc: () => h.gc(LIFETIME_S) };
    }
    case 'ours-sqlite': {
      const SqliteSessionHandler = kit.ourDriver('sqlite', 'SqliteSessionHandler');
      const file = path.join(dir, 'gc.sqlite');
      const h = new SqliteSessionHandler(file, { minutes: kit.LIFETIME_MIN });
      await h.write(idOf(N + 1), SESSION_JSON); // creates the table (and stays fresh)
      const old = Math.floor(OLD_MS / 1000);
      sqliteInsert(file, 'INSERT INTO sessions (sid, payload, last_activity) VALUES (?, ?, ?)', (k) => [idOf(k), SESSION_JSON, old]);
      return { label: '@ostro/session sqlite gc()', gc: () => h.gc(LIFETIME_S) };
    }
    case 'peer-file-store': {
      const d = path.join(dir, 'sfs');
      const session = kit.need('express-session');
      const FileStore = kit.need('session-file-store')(session);
      const helpers = kit.need('session-file-store/lib/session-file-helpers');
      const body = (k) => JSON.stringify({ ...kit.expressSession(k), __lastAccess: OLD_MS });
      writeFiles(d, (k) => `${idOf(k)}.json`, body, OLD_MS);
      const store = new FileStore({ path: d, ttl: LIFETIME_S, reapInterval: -1, logFn() {} });
      return {
        label: 'session-file-store reap()',
        gc: () => new Promise((resolve) => helpers.reap(store.options, () => resolve(N - fs.readdirSync(d).length))),
      };
    }
    case 'peer-sqlite-store': {
      // close() clears the store's cleanup interval and closes the database.
      const { store, db, close } = kit.sqlitePeerStore(path.join(dir, 'bss.sqlite'), { wal: true });
      const old = new Date(OLD_MS).toISOString();
      const ins = db.prepare('INSERT INTO sessions (sid, sess, expire) VALUES (?, ?, ?)');
      db.transaction(() => { for (let k = 0; k < N; k++) ins.run(idOf(k), JSON.stringify(kit.expressSession(k)), old); })();
      const count = () => db.prepare('SELECT COUNT(*) AS n FROM sessions').get().n;
      return {
        label: 'better-sqlite3-session-store clearExpiredSessions()',
        gc: async () => { const before = count(); store.clearExpiredSessions(); return before - count(); },
        close,
      };
    }
    default:
      throw new Error(`unknown variant ${variant}`);
  }
}

async function main() {
  let target;
  try {
    target = await prepare();
  } catch (err) {
    if (err && err.code === 'NOT_AVAILABLE') {
      process.stdout.write(`${JSON.stringify({ variant, ok: false, reason: `not available yet: ${err.message}` })}\n`);
      return;
    }
    throw err;
  }
  await new Promise((r) => setTimeout(r, 50));
  const h = monitorEventLoopDelay({ resolution: 1 });
  let ticks = 0;
  const ticker = setInterval(() => { ticks++; }, 1);
  h.enable();
  // The histogram records the time between its timer's ticks, from the second tick on: let it
  // tick before the cleanup starts, or a synchronous cleanup would go unrecorded.
  // reset() forgets the previous tick as well, so one more tick primes it again.
  await new Promise((r) => setTimeout(r, 15));
  h.reset();
  await new Promise((r) => setTimeout(r, 2));
  const t0 = performance.now();
  const removed = await target.gc();
  const ms = performance.now() - t0;
  // A tail so that a sample delayed by a synchronous cleanup is recorded too.
  await new Promise((r) => setTimeout(r, 20));
  h.disable();
  clearInterval(ticker);
  process.stdout.write(`${JSON.stringify({
    variant, ok: true, label: target.label, n: N, removed: Number(removed), ms,
    eldP50: h.percentile(50) / 1e6, eldP99: h.percentile(99) / 1e6, eldMax: h.max / 1e6, ticks,
  })}\n`);
  if (target.close) await target.close();
  // Exit even if a variant left a handle open: the result is written.
  setImmediate(() => process.exit(0));
}

main().catch((err) => {
  process.stderr.write(`${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
