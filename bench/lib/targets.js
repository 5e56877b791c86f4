'use strict';
// The targets of the benchmark issue, with issue 11's values where it set one (array cycle, sqlite
// at concurrency 1, file vs the raw floor, CPU pressure, 1M rows, memory, event-loop p99 in HTTP),
// evaluated on the numbers of this run: each row states the ratio reached and whether it meets the
// target. Throughput ratios are the median of per-round
// ratios (the two contenders ran in the same round, so load hits both alike).

const { median, fmt, ratio } = require('./stats');

// File cycle CPU µs at concurrency 64 when issue 11 was filed (bench run at f1fe30b); the target
// is half of it.
const FILE_CPU_AT_ISSUE_11 = 1143.7;

function pairedRatio(a, b) {
  const n = Math.min(a.length, b.length);
  if (n === 0) return NaN;
  const r = [];
  for (let i = 0; i < n; i++) r.push(a[i] / b[i]);
  return median(r);
}

// `ok` values of add() besides true / false: the case was not part of this run; it ran but this
// row could not be measured (a contender unavailable or failed); a row with no target.
const NOT_RUN = 'not run';
const INFO = 'info';

function evaluate(data) {
  const rows = [];
  const add = (kase, target, reached, ok, detail = '') => {
    const verdict = ok === NOT_RUN ? 'not run' : ok === INFO ? 'info (no target)' : ok === null ? 'not measured' : ok ? 'met' : 'MISSED';
    rows.push([kase, target, reached, verdict, detail]);
  };
  // For a case that did not run: NOT_RUN; one that ran and failed as a whole: null, with why.
  // The verdict of a row that has no value: 'not run' when its case was not part of this run.
  const na = (name) => (data[name] === undefined ? NOT_RUN : null);
  const caseMissing = (name) => (data[name] === undefined ? { ok: NOT_RUN, why: `case ${name} not run` } : data[name].caseFailed ? { ok: null, why: `case ${name} failed: ${data[name].caseFailed}` } : null);
  const st = data.store || {};
  const conc = (id, c) => st[id] && st[id].status === 'ok' ? st[id].conc[c] : null;
  const why = (id) => (st[id] ? (st[id].status === 'ok' ? '' : `${st[id].label}: ${st[id].status === 'unavailable' ? 'not available yet' : 'failed'} (${st[id].reason})`) : `${id}: not run`);

  // Throughput of `a` over `b` at concurrency c must be >= min.
  const throughput = (kase, a, b, c, min, extra = '') => {
    const x = conc(a, c);
    const y = conc(b, c);
    if (!x || !y) return add(kase, `>= ${min}× ${st[b] ? st[b].label : b}`, '–', na('store'), why(a) || why(b));
    const r = pairedRatio(x.perSecRounds, y.perSecRounds);
    add(kase, `>= ${min}× ${st[b].label}`, ratio(r), r >= min, `${fmt(x.perSec, 0)} vs ${fmt(y.perSec, 0)} cycles/s${extra ? `; ${extra}` : ''}`);
  };

  throughput('redis cycle, concurrency 64', 'ours-redis', 'peer-connect-redis', 64, 1.5);
  throughput('redis cycle, concurrency 1', 'ours-redis', 'peer-connect-redis', 1, 1.0);
  throughput('file cycle, concurrency 64', 'ours-file', 'peer-v1-file', 64, 1.0, 'ours: tmp + rename (never torn, no fsync); 1.x: in-place overwrite (can be torn)');
  throughput('file cycle, concurrency 64', 'ours-file', 'peer-file-store', 64, 3.0, 'session-file-store: write-file-atomic with fsync (survives power loss; ours survives a process crash)');
  {
    // Against the store as its README sets it up (SQLite defaults); the ratio against the same
    // store given our WAL/NORMAL settings is in the detail.
    const x = conc('ours-sqlite', 64);
    const tuned = conc('peer-sqlite-store', 64);
    const vsTuned = x && tuned ? `${ratio(pairedRatio(x.perSecRounds, tuned.perSecRounds))} vs the same store in WAL/NORMAL (${fmt(tuned.perSec, 0)} cycles/s)` : '';
    const loop = x ? `our loop p99 ${fmt(x.eldP99, 1)} ms vs ${tuned ? fmt(tuned.eldP99, 1) : '–'} ms` : '';
    throughput('sqlite cycle, concurrency 64', 'ours-sqlite', 'peer-sqlite-store-defaults', 64, 3.0, [vsTuned, loop].filter(Boolean).join('; '));
  }
  throughput('sqlite cycle, concurrency 1', 'ours-sqlite', 'peer-sqlite-store', 1, 1.0);
  {
    const x = conc('ours-file', 64);
    const cpu = x ? `; CPU ${fmt(x.cpuUs, 1)} µs/cycle, target <= ${fmt(FILE_CPU_AT_ISSUE_11 / 2, 1)} (half of ${fmt(FILE_CPU_AT_ISSUE_11, 1)} at issue 11)` : '';
    const y = conc('raw-fs', 64);
    if (!x || !y) add('file cycle, concurrency 64', `>= 0.9× ${st['raw-fs'] ? st['raw-fs'].label : 'raw-fs'}, CPU <= 0.5× issue 11's`, '–', na('store'), why('ours-file') || why('raw-fs'));
    else {
      const r = pairedRatio(x.perSecRounds, y.perSecRounds);
      add('file cycle, concurrency 64', `>= 0.9× ${st['raw-fs'].label}, CPU <= 0.5× issue 11's`, ratio(r), r >= 0.9 && x.cpuUs <= FILE_CPU_AT_ISSUE_11 / 2, `${fmt(x.perSec, 0)} vs ${fmt(y.perSec, 0)} cycles/s${cpu}`);
    }
  }
  throughput('array cycle, concurrency 64', 'ours-array', 'peer-memorystore', 64, 1.5);
  // CPU pressure (Linux PSI "some", machine-wide) during our rows against the peers' rows: the
  // worst of each side, per concurrency.
  for (const c of [1, 64]) {
    const side = (kind) => Object.values(st).filter((d) => d.kind === kind && d.status === 'ok' && d.conc[c] && d.conc[c].psi != null);
    const ours = side('ours');
    const peers = side('peer');
    const kase = `CPU pressure during store rows, concurrency ${c}`;
    if (!ours.length || !peers.length) { add(kase, 'no worse than the peers', '–', na('store'), data.store === undefined ? 'case store not run' : 'not measured (no /proc/pressure/cpu)'); continue; }
    const worst = (list) => list.reduce((a, d) => (d.conc[c].psi > a.conc[c].psi ? d : a));
    const a = worst(ours);
    const b = worst(peers);
    const pct = (v) => `${fmt(v * 100, 1)} %`;
    add(kase, 'no worse than the peers', pct(a.conc[c].psi), a.conc[c].psi <= b.conc[c].psi, `worst ours ${a.label} ${pct(a.conc[c].psi)} vs worst peer ${b.label} ${pct(b.conc[c].psi)}`);
  }
  for (const c of [1, 64]) {
    const x = conc('ours-bridge', c);
    const y = conc('peer-memorystore', c);
    const kase = `JS Map handler via bridge, concurrency ${c}`;
    if (!x || !y) { add(kase, '<= 2× MemoryStore cost/cycle', '–', na('store'), why('ours-bridge') || why('peer-memorystore')); continue; }
    // Cost per cycle = wall time per cycle (1 / throughput); CPU per cycle shown beside it.
    const r = pairedRatio(y.perSecRounds, x.perSecRounds);
    add(kase, '<= 2× MemoryStore cost/cycle', ratio(r), r <= 2, `${fmt(1e6 / x.perSec, 1)} vs ${fmt(1e6 / y.perSec, 1)} µs/cycle; CPU ${fmt(x.cpuUs, 1)} vs ${fmt(y.cpuUs, 1)} µs/cycle`);
  }

  // HTTP
  const h = data.http || {};
  const PAIRS = [['ours-array', 'peer-memorystore'], ['ours-file', 'peer-file-store'], ['ours-sqlite', 'peer-sqlite-store'], ['ours-redis', 'peer-connect-redis'], ['ours-bridge', 'peer-memorystore']];
  const hok = (id) => h[id] && h[id].status === 'ok';
  const hwhy = (id) => (h[id] ? `${h[id].label}: ${h[id].status === 'ok' ? '' : h[id].reason}` : `${id}: not run`);
  for (const [a, b] of PAIRS) {
    const kase = `HTTP req/s, ${h[a] ? h[a].label : a}`;
    if (!hok(a) || !hok(b)) { add(kase, `>= 1.5× express-session + ${h[b] ? h[b].store : b}`, '–', na('http'), !hok(a) ? hwhy(a) : hwhy(b)); continue; }
    const r = pairedRatio(h[a].reqRounds, h[b].reqRounds);
    add(kase, `>= 1.5× express-session + ${h[b].store}`, ratio(r), r >= 1.5, `${fmt(h[a].reqPerSec, 0)} vs ${fmt(h[b].reqPerSec, 0)} req/s`);
  }
  const base = h['raw-map'];
  for (const [a, b] of PAIRS) {
    const kase = `session CPU/request above baseline, ${h[a] ? h[a].label : a}`;
    if (!hok(a) || !hok(b) || !base || base.status !== 'ok') { add(kase, '<= 0.4× express-session\'s', '–', na('http'), !hok(a) ? hwhy(a) : !hok(b) ? hwhy(b) : 'no baseline'); continue; }
    const ours = h[a].cpuUsPerReq - base.cpuUsPerReq;
    const theirs = h[b].cpuUsPerReq - base.cpuUsPerReq;
    const r = ours / theirs;
    add(kase, `<= 0.4× express-session + ${h[b].store}`, ratio(r), r <= 0.4, `${fmt(ours, 0)} vs ${fmt(theirs, 0)} µs/request above the ${fmt(base.cpuUsPerReq, 0)} µs baseline`);
  }
  for (const [id, d] of Object.entries(h)) {
    if (!id.startsWith('ours-') || d.status !== 'ok') continue;
    add(`event-loop p99, HTTP ${d.label}`, '<= 10 ms', `${fmt(d.eldP99, 1)} ms`, d.eldP99 <= 10, `max ${fmt(d.eldMax, 1)} ms`);
  }

  // Fastify (bench/cases/fastify.js): our plugin against @fastify/session, same store family.
  const f = data.fastify || {};
  for (const [a, b] of [['fastify-ours-array', 'fastify-peer-memory'], ['fastify-ours-redis', 'fastify-peer-redis']]) {
    const ok = (id) => f[id] && f[id].status === 'ok';
    const kase = `Fastify req/s, ${f[a] ? f[a].label : a}`;
    const target = `>= 1.5× ${f[b] ? f[b].label : b}`;
    if (!ok(a) || !ok(b)) {
      const bad = !ok(a) ? a : b;
      add(kase, target, '–', na('fastify'), f[bad] ? `${f[bad].label}: ${f[bad].reason}` : `${bad}: not run`);
      continue;
    }
    const r = pairedRatio(f[a].reqRounds, f[b].reqRounds);
    add(kase, target, ratio(r), r >= 1.5, `${fmt(f[a].reqPerSec, 0)} vs ${fmt(f[b].reqPerSec, 0)} req/s`);
  }

  // Memory
  const m = data.memory || {};
  if (m['ours-array'] && m['peer-memorystore'] && m['ours-array'].ok && m['peer-memorystore'].ok) {
    const r = m['ours-array'].bytesPerSession / m['peer-memorystore'].bytesPerSession;
    add('memory per 1 KB session (array)', '<= 0.6× MemoryStore', ratio(r), r <= 0.6, `${fmt(m['ours-array'].bytesPerSession, 0)} vs ${fmt(m['peer-memorystore'].bytesPerSession, 0)} bytes (RSS)`);
  } else add('memory per 1 KB session (array)', '<= 0.6× MemoryStore', '–', na('memory'), data.memory === undefined ? 'case memory not run' : 'not measured');

  // Event-loop delay during gc
  const g = data.gc || {};
  for (const id of ['ours-file', 'ours-sqlite']) {
    const x = g[id];
    const kase = `event-loop p99 during gc, ${x ? x.label : id}`;
    if (!x || !x.ok) { add(kase, '< 10 ms', '–', na('gc'), x ? x.reason : 'not run'); continue; }
    add(kase, '< 10 ms', `${fmt(x.eldP99, 1)} ms`, x.eldP99 < 10, `${fmt(x.removed, 0)} sessions removed in ${fmt(x.ms, 0)} ms; max ${fmt(x.eldMax, 1)} ms`);
  }

  // Scale
  const sc = data.scale || {};
  for (const fam of ['file', 'sqlite', 'redis']) {
    const x = sc[fam];
    const kase = `${x ? x.bigLabel : '1M'} vs ${x ? x.smallLabel : '10k'} stored, ${fam}`;
    // Issue 11 set 1.15× for sqlite; file and redis keep the benchmark issue's 1.3×.
    const max = fam === 'sqlite' ? 1.15 : 1.3;
    if (!x || !x.ok) { add(kase, `<= ${max}× slower per cycle`, '–', na('scale'), x ? x.reason : 'not run'); continue; }
    add(kase, `<= ${max}× slower per cycle`, ratio(x.slowdown), x.slowdown <= max, `${fmt(x.smallPerSec, 0)} → ${fmt(x.bigPerSec, 0)} cycles/s at concurrency ${x.conc}`);
  }

  // Save without conflict (issue 12): the compare-and-set every save now does against today's
  // plain save, per driver (bench/cases/contention.js).
  const { DRIVERS, PAIRS: ONE_SESSION, TARGET: CAS_TARGET } = require('../cases/contention');
  const ct = data.contention;
  const missingCt = caseMissing('contention');
  const rangeOf = (v) => (v && v.length ? `${fmt(Math.min(...v), 2)}–${fmt(Math.max(...v), 2)}` : '–');
  for (const name of DRIVERS) {
    for (const c of [1, 64]) {
      const kase = `save without conflict, ${name}, concurrency ${c}`;
      const target = `<= ${CAS_TARGET}× today's save`;
      if (missingCt) { add(kase, target, '–', missingCt.ok, missingCt.why); continue; }
      const x = ct[`${name}@${c}`];
      if (!x) { add(kase, target, '–', NOT_RUN, `${name}: not run`); continue; }
      if (x.unavailable || x.failed) { add(kase, target, '–', null, x.unavailable ? `not available: ${x.unavailable}` : `failed: ${x.failed}`); continue; }
      add(kase, target, ratio(x.ratio), x.ratio <= CAS_TARGET, `${fmt(x.plain, 0)} plain vs ${fmt(x.cas, 0)} compare-and-set /s; median of ${x.ratios.length} adjacent-window ratios (${rangeOf(x.ratios)}); ${x.how}`);
    }
  }

  // Updates lost under 64 concurrent requests on one session (issue 12): 0 for ours; the peers'
  // losses as information.
  const one = ct && ct.oneSession;
  for (const [family, oursId, peerId, peerName] of ONE_SESSION) {
    for (const id of [oursId, peerId]) {
      if (!id) continue;
      const isOurs = id === oursId;
      const d = one && one[id];
      const kase = isOurs ? `updates lost, 64 requests on one session, ${family}` : `updates lost, 64 requests on one session, ${family}, ${peerName} (peer)`;
      const target = isOurs ? '= 0' : '–';
      const none = isOurs ? null : INFO;
      if (missingCt) { add(kase, target, '–', isOurs ? missingCt.ok : INFO, missingCt.why); continue; }
      if (!d || d.unavailable === 'not run') { add(kase, target, '–', isOurs ? NOT_RUN : INFO, `${id}: not run`); continue; }
      if (d.unavailable || d.failed) { add(kase, target, '–', none, d.unavailable ? `not available: ${d.unavailable}` : `failed: ${d.failed}`); continue; }
      const detail = `${d.ok} answered 200, ${d.failed} errors, ${fmt(d.perSec, 0)} requests/s${d.ok === 0 ? '; no request answered 200' : ''}`;
      add(kase, target, String(d.lost), isOurs ? d.ok > 0 && d.lost === 0 : INFO, detail);
    }
  }

  // Redis Cluster against one redis-server (issue 14, bench/cases/cluster.js).
  const cl = data.cluster;
  const missingCl = caseMissing('cluster');
  for (const c of [1, 64]) {
    const kase = `cluster cycle, concurrency ${c}`;
    const target = '<= 1.2× standalone redis';
    if (missingCl) { add(kase, target, '–', missingCl.ok, missingCl.why); continue; }
    const x = cl[`cluster@${c}`];
    if (!x) { add(kase, target, '–', null, 'no result'); continue; }
    add(kase, target, ratio(x.ratio), x.ratio <= 1.2, `${fmt(x.standalone, 0)} standalone vs ${fmt(x.cluster, 0)} cluster cycles/s; median of ${x.ratios ? x.ratios.length : '?'} adjacent-window ratios (${rangeOf(x.ratios)})`);
  }

  // The per-user index on the save path (issue 13)
  const ui = data.userindex;
  const missingUi = caseMissing('userindex');
  for (const fam of ['redis', 'sqlite']) {
    for (const c of [1, 64]) {
      const kase = `user index on the save path, ${fam}, concurrency ${c}`;
      const target = '<= 10 % slower';
      if (missingUi) { add(kase, target, '–', missingUi.ok, missingUi.why); continue; }
      const x = ui[`${fam}@${c}`];
      if (!x) { add(kase, target, '–', null, 'no result'); continue; }
      if (x.unavailable) { add(kase, target, '–', null, `not available: ${x.unavailable}`); continue; }
      add(kase, target, `${fmt((x.cost - 1) * 100, 1)} %`, x.cost <= 1.1, `${fmt(x.off, 0)} → ${fmt(x.on, 0)} cycles/s; median of ${x.ratios ? x.ratios.length : '?'} adjacent-window ratios (${rangeOf(x.ratios)})`);
    }
  }

  // The native database driver against the peers (bench/cases/database.js), concurrency 64; the
  // OstroJS query-builder handler's ratio to the same peer beside it.
  const dbd = data.database;
  const missingDb = caseMissing('database');
  for (const [server, oursId, peerId, qbId] of [['postgres', 'ours-postgres', 'peer-connect-pg-simple', 'ours-querybuilder-postgres'], ['mariadb', 'ours-mysql', 'peer-express-mysql-session', 'ours-querybuilder-mysql']]) {
    const kase = `database cycle, ${server}, concurrency 64`;
    const peerLabel = dbd && dbd[peerId] && dbd[peerId].label ? dbd[peerId].label : peerId.replace(/^peer-/, '');
    const target = `>= 2× ${peerLabel}`;
    if (missingDb) { add(kase, target, '–', missingDb.ok, missingDb.why); continue; }
    const at64 = (id) => (dbd[id] && dbd[id].status === 'ok' ? dbd[id].conc[64] : null);
    const whyDb = (id) => (!dbd[id] ? `${id}: not run` : `${dbd[id].label}: ${dbd[id].status === 'unavailable' ? 'not available' : 'failed'} (${dbd[id].reason})`);
    const x = at64(oursId);
    const y = at64(peerId);
    if (!x || !y) { add(kase, target, '–', null, !x ? whyDb(oursId) : whyDb(peerId)); continue; }
    const r = pairedRatio(x.perSecRounds, y.perSecRounds);
    const q = at64(qbId);
    const qb = q ? `OstroJS query builder ${ratio(pairedRatio(q.perSecRounds, y.perSecRounds))} ${peerLabel} (${fmt(q.perSec, 0)} cycles/s)` : `OstroJS query builder: ${whyDb(qbId)}`;
    const perRound = x.perSecRounds.map((v, i) => v / y.perSecRounds[i]).filter(Number.isFinite);
    add(kase, target, ratio(r), r >= 2, `${fmt(x.perSec, 0)} vs ${fmt(y.perSec, 0)} cycles/s; median of ${perRound.length} per-round ratios (${rangeOf(perRound)}); ${qb}`);
  }

  // Floors
  const floorRows = [];
  for (const [id, d] of Object.entries(st)) {
    if (d.kind !== 'floor') continue;
    if (d.status !== 'ok') { floorRows.push([d.label, '–', '–', '–', d.reason]); continue; }
    const c1 = d.conc[1];
    const c64 = d.conc[64];
    floorRows.push([d.label, c1 ? fmt(1e6 / c1.perSec, 2) : '–', c64 ? fmt(c64.perSec, 0) : '–', c64 ? fmt(c64.cpuUs, 2) : '–', '']);
  }
  for (const [id, d] of Object.entries(h)) {
    if (!id.startsWith('floor-')) continue;
    if (d.status !== 'ok') { floorRows.push([d.label, '–', '–', '–', d.reason]); continue; }
    floorRows.push([d.label, '–', fmt(d.reqPerSec, 0), fmt(d.cpuUsPerReq, 2), `HTTP, 50 connections: req/s and server CPU µs/request (no-session baseline ${base && base.status === 'ok' ? fmt(base.cpuUsPerReq, 2) : '–'})`]);
  }
  return {
    targets: { header: ['case', 'target', 'reached', 'verdict', 'detail'], rows },
    floors: {
      note: 'The least the same work can cost here, measured in the same run: a miss above a floor is ours to fix; a floor is physics or the platform.',
      header: ['floor', 'µs/op at conc 1', 'ops/s at conc 64', 'CPU µs/op at 64', 'note'],
      rows: floorRows,
    },
  };
}

module.exports = { evaluate, pairedRatio };
