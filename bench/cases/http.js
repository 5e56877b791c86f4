'use strict';
// Case 2, HTTP: one node:http server per contender (each in its own worker process) with one
// route that loads the session, increments a counter, pushes to a cart and saves. autocannon
// drives 50 connections, each keeping its own cookie, and checks that the counter grows by one
// on every response of that connection, so the sessions really persist.

const http = require('node:http');
const { prepare, firstLine } = require('./store');
const { median, fmt, ratio } = require('../lib/stats');
const { pairedRatio } = require('../lib/targets');

const CONNECTIONS = 50;

/** Two requests with a cookie jar: the second must see the first's counter. */
function probe(port) {
  const get = (cookie) => new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', headers: cookie ? { cookie } : {}, agent: false }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => {
        const sc = res.headers['set-cookie'];
        resolve({ status: res.statusCode, body, cookie: sc ? sc.map((c) => c.split(';')[0]).join('; ') : cookie });
      });
    });
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error('probe timed out')));
  });
  return (async () => {
    const a = await get(null);
    if (a.status !== 200) throw new Error(`probe: status ${a.status}: ${a.body.slice(0, 120)}`);
    const b = await get(a.cookie);
    return { first: JSON.parse(a.body).n, second: JSON.parse(b.body).n, cookie: !!a.cookie };
  })();
}

function headerOf(headers, name) {
  for (const k of Object.keys(headers)) if (k.toLowerCase() === name) return headers[k];
  return undefined;
}

/** One autocannon run; every connection keeps its cookie and checks its counter. */
async function cannon(port, seconds, verify) {
  const autocannon = require('autocannon');
  const states = [];
  const setupClient = (client) => {
    const st = { cookie: null, last: 0, ok: 0, broken: 0 };
    states.push(st);
    client.setRequests([{
      method: 'GET',
      path: '/',
      setupRequest(req) {
        return st.cookie ? { ...req, headers: { ...(req.headers || {}), cookie: st.cookie } } : req;
      },
      onResponse(status, body, ctx, headers) {
        const sc = headerOf(headers || {}, 'set-cookie');
        if (sc) st.cookie = (Array.isArray(sc) ? sc : [sc]).map((c) => String(c).split(';')[0]).join('; ');
        if (!verify) return;
        let n = NaN;
        try { n = JSON.parse(body).n; } catch { /* counted as broken */ }
        if (n === st.last + 1) st.ok++;
        else st.broken++;
        st.last = Number.isFinite(n) ? n : st.last;
      },
    }]);
  };
  const r = await autocannon({ url: `http://127.0.0.1:${port}/`, connections: CONNECTIONS, duration: seconds, setupClient });
  const persisted = states.filter((s) => s.broken === 0 && s.ok > 1).length;
  return {
    reqPerSec: r.requests.total / r.duration,
    p50: r.latency.p50,
    p99: r.latency.p99,
    non2xx: r.non2xx,
    errors: r.errors + r.timeouts,
    persisted,
    connections: states.length,
    broken: states.reduce((a, s) => a + s.broken, 0),
    maxCounter: Math.max(0, ...states.map((s) => s.last)),
  };
}

function httpLabel(c) {
  if (c.id === 'raw-map') return 'node:http, no session (baseline)';
  if (c.kind === 'floor') return c.label;
  if (c.kind === 'ours' && c.api === 'express-session') return `our middleware (express-session API) + ${c.family}`;
  if (c.kind === 'ours') return `our middleware + ${c.family === 'bridge' ? 'JS Map handler' : c.family}`;
  return `express-session + ${c.label.replace(/^express-session /, '')}`;
}

async function run(env) {
  const { quick } = env;
  const rounds = quick ? 1 : 2;
  const seconds = quick ? 2 : 6;
  const list = env.httpContenders;
  const entries = await prepare(env, list, 'http', 0);
  for (const e of entries) {
    e.label = httpLabel(e.c);
    e.store = e.c.label.replace(/^express-session /, '');
  }
  const live = () => entries.filter((e) => e.status === 'ok');
  for (const e of live()) {
    try {
      e.port = (await e.worker.call('listen')).port;
      const p = await probe(e.port);
      e.verify = e.id !== 'raw-map' && e.kind !== 'floor';
      if (e.verify && !(p.first === 1 && p.second === 2)) throw new Error(`the session did not persist across two requests (counter ${p.first} then ${p.second}, cookie ${p.cookie ? 'set' : 'missing'})`);
      await cannon(e.port, quick ? 0.3 : 1, false); // warm-up
    } catch (err) {
      e.status = 'failed';
      e.reason = firstLine(err.message);
    }
  }
  env.log(`http: ${live().length} servers live`);
  for (let r = 0; r < rounds; r++) {
    const order = live();
    for (let j = 0; j < order.length; j++) {
      const e = order[(j + r) % order.length];
      try {
        await e.worker.call('mark');
        const c = await cannon(e.port, seconds, e.verify);
        const s = await e.worker.call('collect');
        (e.samples.http ||= []).push({ ...c, cpuUsPerReq: s.cpuUs / Math.max(1, s.requests), eldP99: s.eldP99, eldMax: s.eldMax, rssMB: s.rssMB, psi: s.psi });
      } catch (err) {
        e.status = 'failed';
        e.reason = firstLine(err.message);
      }
    }
    env.log(`http: round ${r + 1}/${rounds} done`);
  }
  await Promise.all(entries.map((e) => (e.worker ? e.worker.close() : null)));

  const data = {};
  const rows = [];
  const base = entries.find((e) => e.id === 'raw-map');
  const baseCpu = base && base.samples.http ? median(base.samples.http.map((x) => x.cpuUsPerReq)) : NaN;
  for (const e of entries) {
    const s = e.samples.http || [];
    if (e.status !== 'ok' || s.length === 0) {
      data[e.id] = { label: e.label, store: e.store, status: e.status === 'ok' ? 'failed' : e.status, reason: e.reason || 'no sample' };
      rows.push([e.label, '–', '–', '–', '–', '–', '–', '–', e.status === 'unavailable' ? `not available yet: ${e.reason}` : `failed: ${e.reason}`]);
      continue;
    }
    const m = (f) => median(s.map(f));
    const d = {
      label: e.label, store: e.store, status: 'ok',
      reqPerSec: m((x) => x.reqPerSec), reqRounds: s.map((x) => x.reqPerSec),
      p50: m((x) => x.p50), p99: m((x) => x.p99), cpuUsPerReq: m((x) => x.cpuUsPerReq),
      eldP99: m((x) => x.eldP99), eldMax: Math.max(...s.map((x) => x.eldMax)),
      psi: s.some((x) => x.psi == null) ? null : m((x) => x.psi),
      persisted: Math.min(...s.map((x) => x.persisted)), connections: s[0].connections,
      broken: s.reduce((a, x) => a + x.broken, 0), errors: s.reduce((a, x) => a + x.errors + x.non2xx, 0),
      maxCounter: Math.max(...s.map((x) => x.maxCounter)),
    };
    data[e.id] = d;
    const persist = e.verify
      ? `${d.persisted}/${d.connections} connections, counters to ${d.maxCounter}${d.broken ? `, ${d.broken} BROKEN` : ''}`
      : 'n/a';
    rows.push([
      e.label, fmt(d.reqPerSec, 0), fmt(d.p50, 0), fmt(d.p99, 0), fmt(d.cpuUsPerReq, 0),
      e.id === 'raw-map' ? '0' : fmt(d.cpuUsPerReq - baseCpu, 0), fmt(d.eldP99, 1),
      persist, d.errors ? `${d.errors} errors/non-2xx` : '',
    ]);
  }
  // The express-session API against express-session itself, on the same kind of store.
  const compat = [['ours-array-express-session', 'peer-memorystore'], ['ours-array-express-session', 'ours-array']].map(([a, b]) => {
    const x = data[a];
    const y = data[b];
    if (!x || !y || x.status !== 'ok' || y.status !== 'ok') return [`${x ? x.label : a} vs ${y ? y.label : b}`, '–', '–', 'not measured'];
    const above = (d) => fmt(d.cpuUsPerReq - baseCpu, 0);
    return [`${x.label} vs ${y.label}`, ratio(pairedRatio(x.reqRounds, y.reqRounds)), ratio((x.cpuUsPerReq - baseCpu) / (y.cpuUsPerReq - baseCpu)), `${above(x)} vs ${above(y)} µs/request above the baseline`];
  });
  return {
    title: `Case 2: HTTP (autocannon, ${CONNECTIONS} connections, each keeping its cookie)`,
    extra: [{ title: 'express-session API (req/s ratio: median of per-round ratios)', header: ['pair', 'req/s ratio', 'session CPU ratio', 'session CPU'], rows: compat }],
    note: `${rounds} interleaved round(s) of ${seconds} s per server; medians. Server CPU is the server process only (autocannon runs in the harness process on the same cores). `
      + 'session µs/req is server CPU per request minus the no-session baseline: the session\'s own cost. '
      + 'persisted: connections whose counter grew by exactly one on every response.',
    header: ['server', 'req/s', 'p50 ms', 'p99 ms', 'server CPU µs/req', 'session µs/req', 'loop p99 ms', 'persisted', 'note'],
    rows,
    data,
  };
}

module.exports = { run };
