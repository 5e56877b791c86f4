'use strict';
// Case "database": the store cycle (load a ~1 KB session, change two keys, save) on the
// machine's PostgreSQL and MariaDB servers, side by side in one run: our native database driver
// (Rust, tokio-postgres / mysql_async) against express-session with connect-pg-simple (pg) and
// with express-mysql-session (mysql2), and against the handler OstroJS apps use on these
// databases (lib/ostro/databaseHandler.js: the query builder, here knex with pg / mysql2 as
// OstroJS configures it, run through the custom-driver bridge) on the same kind of table. Every store keeps its sessions in its own table, made
// when the case starts and dropped at the end. Peers run as their READMEs set them up (pg and
// mysql2 pools of 10 connections); ours with its defaults (pool 4 on Postgres, 8 on MySQL).
//
// This file is also the contenders' module: the worker calls `db(ctx)` with ctx.which.
// OSTRO_BENCH_POSTGRES_URL / OSTRO_BENCH_MYSQL_URL point it at other servers.

const net = require('node:net');
const { execFileSync } = require('node:child_process');
const kit = require('../lib/kit');
const { prepare, firstLine } = require('./store');
const { median, fmt, ratio } = require('../lib/stats');

const PG_URL = process.env.OSTRO_BENCH_POSTGRES_URL || 'postgres://postgres@127.0.0.1:5432/test';
const MY_URL = process.env.OSTRO_BENCH_MYSQL_URL || 'mysql://root@127.0.0.1:3306/test';
const CONCURRENCY = [1, 64];
const POOL = 1024;
const TABLE = {
  'ours-postgres': 'bench_ours_pg', 'peer-connect-pg-simple': 'bench_peer_pg', 'ours-querybuilder-postgres': 'bench_qb_pg',
  'ours-mysql': 'bench_ours_my', 'peer-express-mysql-session': 'bench_peer_my', 'ours-querybuilder-mysql': 'bench_qb_my',
};

const CONTENDERS = [
  { id: 'ours-postgres', label: '@ostro/session database (postgres)', kind: 'ours', family: 'postgres' },
  { id: 'ours-querybuilder-postgres', label: '@ostro/session OstroJS query builder (postgres)', kind: 'ours', family: 'postgres' },
  { id: 'peer-connect-pg-simple', label: 'connect-pg-simple', kind: 'peer', family: 'postgres' },
  { id: 'ours-mysql', label: '@ostro/session database (mariadb)', kind: 'ours', family: 'mysql' },
  { id: 'ours-querybuilder-mysql', label: '@ostro/session OstroJS query builder (mariadb)', kind: 'ours', family: 'mysql' },
  { id: 'peer-express-mysql-session', label: 'express-mysql-session', kind: 'peer', family: 'mysql' },
].map((c) => ({ ...c, file: __filename, db: true }));
const PEER_OF = {
  'ours-postgres': 'peer-connect-pg-simple', 'ours-mysql': 'peer-express-mysql-session',
  'ours-querybuilder-postgres': 'peer-connect-pg-simple', 'ours-querybuilder-mysql': 'peer-express-mysql-session',
};

function reachable(url) {
  const u = new URL(url);
  const port = Number(u.port) || (u.protocol.startsWith('postgres') ? 5432 : 3306);
  return new Promise((resolve) => {
    const s = net.connect({ host: u.hostname, port, timeout: 2000 });
    s.once('connect', () => { s.destroy(); resolve(null); });
    s.once('error', (e) => { s.destroy(); resolve(`${u.hostname}:${port}: ${e.message}`); });
    s.once('timeout', () => { s.destroy(); resolve(`${u.hostname}:${port}: no answer`); });
  });
}

/** Drops `tables` from the Postgres (`pg`) and MariaDB (`my`) servers through their CLI clients (outside every contender). */
function dropTablesOf({ pg = [], my = [] }) {
  if (pg.length) {
    try { execFileSync('psql', [PG_URL, '-X', '-q', '-c', `DROP TABLE IF EXISTS ${pg.join(', ')}`], { stdio: 'ignore' }); } catch { /* server missing: reported as unavailable */ }
  }
  if (my.length) {
    try {
      const u = new URL(MY_URL);
      execFileSync('mariadb', ['-h', u.hostname, '-P', u.port || '3306', '-u', decodeURIComponent(u.username), '-D', u.pathname.slice(1), '-e', `DROP TABLE IF EXISTS ${my.join(', ')}`], { stdio: 'ignore' });
    } catch { /* as above */ }
  }
}

/** Drops the case's tables. */
function dropTables() {
  dropTablesOf({
    pg: Object.entries(TABLE).filter(([id]) => !id.includes('my')).map(([, t]) => t),
    my: Object.entries(TABLE).filter(([id]) => id.includes('my')).map(([, t]) => t),
  });
}

/**
 * The peer's express-session store on `table`: connect-pg-simple (`which` 'pg') or
 * express-mysql-session ('mysql'), through kit.peerStore, so close() stops its timers and ends its
 * pool. `housekeeping`: the stores' own expiry sweeps as their READMEs leave them on
 * (connect-pg-simple's prune timer, express-mysql-session's expiration-check interval, both every
 * 15 minutes, so never due in a run); off, no timer is armed at all (this case's cycle rows).
 */
async function peerDbStore(which, table, { housekeeping = false } = {}) {
  const session = kit.need('express-session');
  if (which === 'pg') {
    const PgStore = kit.need('connect-pg-simple')(session);
    return kit.peerStore(() => new PgStore({ conString: PG_URL, tableName: table, createTableIfMissing: true, ...(housekeeping ? {} : { pruneSessionInterval: false }) }));
  }
  const MySQLStore = kit.need('express-mysql-session')(session);
  const u = new URL(MY_URL);
  const peer = kit.peerStore(() => new MySQLStore({
    host: u.hostname, port: Number(u.port) || 3306, user: decodeURIComponent(u.username), password: decodeURIComponent(u.password),
    database: u.pathname.slice(1), schema: { tableName: table }, ...(housekeeping ? {} : { clearExpired: false }),
  }));
  // Its expiration-check interval starts once the table is made: wait, so close() finds it.
  await peer.store.onReady();
  return peer;
}

/** The worker side: builds one contender's cycle. */
async function db(ctx) {
  const table = TABLE[ctx.which];
  const url = ctx.which.includes('my') ? MY_URL : PG_URL;
  const down = await reachable(url);
  if (down) throw new kit.NotAvailable(`server not reachable (${down})`);
  switch (ctx.which) {
    case 'ours-postgres':
    case 'ours-mysql': {
      const DatabaseSessionHandler = kit.ourDriver('database', 'DatabaseSessionHandler');
      const h = new DatabaseSessionHandler(url, { table, minutes: kit.LIFETIME_MIN });
      await h.read('0'.repeat(40)); // connects and creates the table before the clock starts
      return kit.storeCycles(h);
    }
    case 'ours-querybuilder-postgres':
    case 'ours-querybuilder-mysql': {
      // The table as the session:table migration makes it (the native driver creates that shape).
      const DatabaseSessionHandler = kit.ourDriver('database', 'DatabaseSessionHandler');
      // (The first operation creates the table; JS open() is the interface's no-op.)
      const maker = new DatabaseSessionHandler(url, { table });
      await maker.read('0'.repeat(40));
      await maker.close();
      const knex = kit.need('knex');
      const u = new URL(url);
      const db = knex({
        client: ctx.which.includes('my') ? 'mysql2' : 'pg',
        connection: { host: u.hostname, port: Number(u.port), user: decodeURIComponent(u.username), password: decodeURIComponent(u.password), database: u.pathname.slice(1) },
        useNullAsDefault: true,
      });
      const { DatabaseSessionHandler: QueryBuilderHandler } = require('../../lib/ostro/databaseHandler');
      return kit.storeCycles(new QueryBuilderHandler(db, { table, minutes: kit.LIFETIME_MIN }), { close: () => db.destroy() });
    }
    case 'peer-connect-pg-simple':
    case 'peer-express-mysql-session': {
      const { store, close } = await peerDbStore(ctx.which.includes('my') ? 'mysql' : 'pg', table);
      return kit.expressCycles(store, { close });
    }
    default:
      throw new Error(`unknown database contender ${ctx.which}`);
  }
}

// Per server, the order of a round: the peer in the middle, so that ours and the query builder
// each run next to it (see run()).
const ROUND_ORDER = {
  postgres: ['ours-postgres', 'peer-connect-pg-simple', 'ours-querybuilder-postgres'],
  mysql: ['ours-mysql', 'peer-express-mysql-session', 'ours-querybuilder-mysql'],
};

async function run(env) {
  const { quick } = env;
  // Many short rounds rather than a few long ones: the ratio is a median of per-round ratios,
  // and fsync stalls on a shared disk hit a window at random; more windows, a steadier median.
  const rounds = quick ? 5 : 9;
  const windowMs = quick ? 250 : 700;
  dropTables();
  const caseEnv = { services: {}, ctxFor: (id) => ({ which: id }) };
  const entries = await prepare(caseEnv, CONTENDERS, 'db', POOL);
  const live = () => entries.filter((e) => e.status === 'ok');
  env.log(`database: ${live().length} contenders live, ${entries.length - live().length} not available`);
  try {
    for (const e of live()) {
      try {
        await e.worker.call('run', { concurrency: 64, ms: quick ? 150 : 500, pool: POOL, warm: true });
      } catch (err) {
        e.status = 'failed';
        e.reason = firstLine(err.message);
      }
    }
    // A round runs one server's contenders back to back, ours → peer → query builder, then the
    // next round the other way round (ABC CBA ABC …): each ratio to the peer compares two
    // adjacent windows on the same server, and which of the two goes first alternates, so
    // neither a drift of the machine nor the order favours one side.
    for (let r = 0; r < rounds; r++) {
      for (const conc of CONCURRENCY) {
        for (const ids of Object.values(ROUND_ORDER)) {
          const order = ids.map((id) => entries.find((e) => e.id === id));
          if (r % 2) order.reverse();
          for (const e of order) {
            if (!e || e.status !== 'ok') continue;
            try {
              const res = await e.worker.call('run', { concurrency: conc, ms: windowMs, pool: POOL }, windowMs + 120000);
              (e.samples[conc] ||= []).push(res);
              if (res.cycles === 0) throw new Error(res.firstError || 'no cycle completed');
            } catch (err) {
              e.status = 'failed';
              e.reason = firstLine(err.message);
            }
          }
        }
      }
      env.log(`database: round ${r + 1}/${rounds} done`);
    }
  } finally {
    await Promise.all(entries.map((e) => (e.worker ? e.worker.close() : null)));
    dropTables();
  }
  return summarize(entries, rounds, windowMs);
}

/** Median of per-round ratios: both ran in the same round, so load hits both alike. */
function pairedRatio(a, b) {
  const n = Math.min(a.length, b.length);
  const r = [];
  for (let i = 0; i < n; i++) r.push(a[i] / b[i]);
  return n ? median(r) : NaN;
}

function summarize(entries, rounds, windowMs) {
  const byId = Object.fromEntries(entries.map((e) => [e.id, e]));
  const rows = [];
  const data = {};
  for (const e of entries) {
    const d = { id: e.id, label: e.label, kind: e.kind, family: e.family, status: e.status, reason: e.reason, conc: {} };
    data[e.id] = d;
    if (e.status !== 'ok') {
      rows.push([e.label, e.kind, '–', '–', '–', '–', '–', '–', e.status === 'unavailable' ? `not available: ${e.reason}` : `failed: ${e.reason}`]);
      continue;
    }
    for (const conc of CONCURRENCY) {
      const s = e.samples[conc] || [];
      if (!s.length) continue;
      const m = (f) => median(s.map(f));
      const x = { perSec: m((v) => v.perSec), perSecRounds: s.map((v) => v.perSec), p50: m((v) => v.p50), p99: m((v) => v.p99), cpuUs: m((v) => v.cpuUs), errors: s.reduce((a, v) => a + v.errors, 0) };
      d.conc[conc] = x;
      let vs = '';
      const peer = byId[PEER_OF[e.id]];
      if (peer && peer.status === 'ok' && peer.samples[conc]) {
        const r = pairedRatio(x.perSecRounds, peer.samples[conc].map((v) => v.perSec));
        const target = conc === 64 && !e.id.includes('querybuilder');
        vs = `${ratio(r)} ${peer.label}${target ? (r >= 2 ? ' (target ≥ 2×: met)' : ' (target ≥ 2×: MISSED)') : ''}`;
      }
      rows.push([conc === CONCURRENCY[0] ? e.label : '', conc === CONCURRENCY[0] ? e.kind : '', String(conc), fmt(x.perSec, 0), fmt(x.p50, 3), fmt(x.p99, 3), fmt(x.cpuUs, 1), vs, x.errors ? `${x.errors} errors` : '']);
    }
  }
  return {
    title: 'Case database: store cycle on PostgreSQL and MariaDB (load ~1 KB, change two keys, save)',
    note: `${rounds} rounds of ${windowMs} ms per contender and concurrency; a round runs one server's contenders back to back, ours → peer → query builder, the next round the other way round; medians over rounds; ratios are medians of per-round ratios (adjacent windows). `
      + 'Servers: the machine\'s PostgreSQL and MariaDB (durable commits, as configured). Ours: their default pools (4 Postgres connections, which pipeline; 8 MySQL); peers and the query builder (knex): their default pools of 10. CPU µs/cycle is the worker process.',
    header: ['store', 'kind', 'conc', 'cycles/s', 'p50 ms', 'p99 ms', 'CPU µs/cycle', 'vs peer', 'note'],
    rows,
    data,
  };
}

module.exports = { run, db, CONTENDERS, PG_URL, MY_URL, reachable, dropTablesOf, peerDbStore };
