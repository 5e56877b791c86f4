'use strict';
// Lays down many stored sessions fast, directly in each of our drivers' own storage format, so
// that the scale case can start from 1,000,000 sessions without a million timed writes. Each
// helper is checked afterwards by a real cycle through the driver (worker.js `bulk`).

const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const { Worker, isMainThread, parentPort, workerData } = require('node:worker_threads');
const { idOf } = require('./ids');
const { SESSION_JSON } = require('./payload');

// ----- files: one name per id in the driver's directory -----------------------------------------
// Creating a million real files costs 100-500 µs each on this VM's disk (block allocation and
// journal), minutes in all. So one real file is written and every other id is a hard link to it:
// the directory really holds N names (the lookup cost the scale case is about) and a read sees the
// same bytes. Replacing a link is cheaper than replacing a file, so the ids the scale case cycles
// on (its working set) are made real files first. Both sizes are laid down the same way.

// ext4 allows 65,000 links per inode: one source file per 60,000 ids.
const PER_SOURCE = 60000;
const sourceOf = (dir, k) => path.join(dir, `.bulk-source-${Math.floor(k / PER_SOURCE)}`);

function writeRange(dir, from, to) {
  for (let k = from; k < to; k++) fs.linkSync(sourceOf(dir, k), path.join(dir, idOf(k)));
}

/**
 * `count` ids in `dir`; the ids of `workingSet` ({ size, stride }) become real files of their own,
 * so that the cycles of the scale case, which touch only those, never write through a link.
 */
async function files(dir, count, workingSet, threads = 2) {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  for (let k = 0; k < count; k += PER_SOURCE) fs.writeFileSync(sourceOf(dir, k), SESSION_JSON, { mode: 0o600 });
  const per = Math.ceil(count / threads);
  await Promise.all(Array.from({ length: threads }, (_, i) => new Promise((resolve, reject) => {
    const w = new Worker(__filename, { workerData: { dir, from: i * per, to: Math.min(count, (i + 1) * per) } });
    w.once('error', reject);
    w.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`bulk file writer exited with ${code}`))));
  })));
  for (let k = 0; k < count; k += PER_SOURCE) fs.unlinkSync(sourceOf(dir, k));
  if (workingSet) {
    for (let i = 0; i < workingSet.size; i++) {
      const file = path.join(dir, idOf(i * workingSet.stride));
      fs.unlinkSync(file); // never write through a link: that would change every linked name
      fs.writeFileSync(file, SESSION_JSON, { mode: 0o600 });
    }
  }
}

if (!isMainThread && workerData && workerData.dir) {
  writeRange(workerData.dir, workerData.from, workerData.to);
  parentPort.close();
}

// ----- redis: SET prefix+id payload EX ttl, pipelined in batches over one raw connection -------

function resp(args) {
  let s = `*${args.length}\r\n`;
  for (const a of args) s += `$${Buffer.byteLength(a)}\r\n${a}\r\n`;
  return s;
}

function redis(url, prefix, count, ttlSeconds) {
  const u = new URL(url);
  const db = u.pathname.replace('/', '') || '0';
  return new Promise((resolve, reject) => {
    const sock = net.connect(Number(u.port), u.hostname);
    let acked = -1; // the SELECT reply comes first
    let sent = 0;
    let buf = '';
    const BATCH = 2000;
    const pump = () => {
      // Keep at most two batches in flight.
      while (sent < count && sent - Math.max(0, acked) < 2 * BATCH) {
        let chunk = '';
        const end = Math.min(count, sent + BATCH);
        for (let k = sent; k < end; k++) chunk += resp(['SET', prefix + idOf(k), SESSION_JSON, 'EX', String(ttlSeconds)]);
        sent = end;
        sock.write(chunk);
      }
    };
    sock.setEncoding('latin1');
    sock.on('error', reject);
    sock.on('connect', () => { sock.write(resp(['SELECT', db])); pump(); });
    sock.on('data', (d) => {
      buf += d;
      let i;
      while ((i = buf.indexOf('\r\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 2);
        if (line[0] === '-') { sock.destroy(); reject(new Error(`redis: ${line}`)); return; }
        acked++;
      }
      if (acked >= count) { sock.end(); resolve(); } else pump();
    });
  });
}

// ----- sqlite: rows in the driver's table, in one transaction --------------------------------

function sqlite(file, table, count, need) {
  const Database = need('better-sqlite3');
  const db = new Database(file);
  db.pragma('busy_timeout = 10000');
  const st = db.prepare(`INSERT OR REPLACE INTO ${table} (sid, payload, last_activity) VALUES (?, ?, ?)`);
  const now = Math.floor(Date.now() / 1000);
  const CHUNK = 50000;
  for (let from = 0; from < count; from += CHUNK) {
    db.transaction(() => { for (let k = from; k < Math.min(count, from + CHUNK); k++) st.run(idOf(k), SESSION_JSON, now); })();
  }
  db.close();
}

module.exports = { files, redis, sqlite };
