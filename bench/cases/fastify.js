'use strict';
// Case "fastify": the HTTP case of bench/cases/http.js on Fastify 5 instead of node:http.
// @ostro/session/fastify (array and redis drivers, and the array driver through
// `api: 'express-session'`) against @fastify/session with its own memory store, with
// express-session's MemoryStore (JSON, for reference) and with connect-redis, plus Fastify without
// sessions as the baseline and two floors (what two async hooks and a cookie cost; what a
// minimal JSON session in a JS Map costs); one worker process
// per server, rounds interleaved, every connection keeping its cookie and checking that its
// counter grows by one on each response.
//
// This file is also the module the workers load: `fastify:<id>` builds that server (worker.js
// calls `module[mode](ctx)` and then serves `listener` on its own node:http server, which
// Fastify's `serverFactory` hands its request handler to).

const http = require('node:http');
const path = require('node:path');
const { Worker } = require('../lib/pool');
const { median, fmt, ratio } = require('../lib/stats');
const { pairedRatio } = require('../lib/targets');
const kit = require('../lib/kit');
const { makeSession } = require('../lib/payload');

const CONNECTIONS = 50;
const ITEMS = ['SHOE-RUN-42', 'SOCK-WOOL-M', 'CAP-SUN-01', 'BAG-DAY-20'];
const USER = makeSession().user;
const PREFS = makeSession().prefs;

// ----- the servers (run inside the workers) -----------------------------------------------------

/** A Fastify app whose request handler is served by the worker's own node:http server. */
async function fastifyServer(setup) {
  const Fastify = kit.need('fastify');
  let handler = null;
  const app = Fastify({
    logger: false,
    serverFactory(h) {
      handler = h;
      return http.createServer(h);
    },
  });
  await setup(app);
  await app.ready();
  return { listener: (req, res) => handler(req, res), close: () => app.close() };
}

/** One body for every server, so serialization costs the same everywhere. */
function send(reply, n) {
  return reply.type('application/json').send(`{"n":${n}}`);
}

/** The route of the HTTP case on our Store: counter, cart (reset every 8 items), user and prefs. */
function ourRoute(request, reply) {
  const s = request.session;
  const n = s.increment('counter');
  if (n === 1) s.put({ user: USER, prefs: PREFS });
  const item = { sku: ITEMS[n & 3], qty: 1 };
  if (n % 8 === 1) s.put('cart', [item]);
  else s.push('cart', item);
  return send(reply, n);
}

/** The same route on @fastify/session's session object (and on ours with `api: 'express-session'`). */
function peerRoute(request, reply) {
  const s = request.session;
  const n = (s.get('counter') || 0) + 1;
  s.set('counter', n);
  if (n === 1) { s.set('user', USER); s.set('prefs', PREFS); }
  const item = { sku: ITEMS[n & 3], qty: 1 };
  const cart = s.get('cart');
  if (n % 8 === 1 || !Array.isArray(cart)) s.set('cart', [item]);
  else { cart.push(item); s.set('cart', cart); }
  return send(reply, n);
}

function ours(config) {
  return fastifyServer(async (app) => {
    // The plugin of the package under test (OSTRO_BENCH_ROOT or this checkout).
    const plugin = kit.need(path.join(kit.ROOT, 'lib', 'fastify.js'), '@ostro/session/fastify');
    await app.register(plugin, { key: kit.APP_KEY, cookie: kit.COOKIE, lifetime: kit.LIFETIME_MIN, lottery: [0, 100], ...config });
    app.get('/', ourRoute);
  });
}

/** Our plugin with `api: 'express-session'`: @fastify/session's route runs on it unchanged. */
function oursCompat(config) {
  return fastifyServer(async (app) => {
    const plugin = kit.need(path.join(kit.ROOT, 'lib', 'fastify.js'), '@ostro/session/fastify');
    await app.register(plugin, { key: kit.APP_KEY, cookie: kit.COOKIE, lifetime: kit.LIFETIME_MIN, lottery: [0, 100], api: 'express-session', ...config });
    app.get('/', peerRoute);
  });
}

// The least a session plugin costs on Fastify: an async onRequest hook that reads the cookie, an
// async onSend hook that sets a Set-Cookie header (a fixed line), nothing stored.
const FLOOR_LINE = `${kit.COOKIE}=s%3Afloor; Path=/; Max-Age=${kit.LIFETIME_MIN * 60}; HttpOnly; SameSite=Lax`;
function floorHooks() {
  return fastifyServer(async (app) => {
    app.decorateRequest('sid', null);
    app.addHook('onRequest', async (request) => {
      const c = request.headers.cookie;
      request.sid = c === undefined ? null : c.slice(c.indexOf('=') + 1);
    });
    app.addHook('onSend', async (request, reply, payload) => {
      reply.header('set-cookie', FLOOR_LINE);
      return payload;
    });
    app.get('/', (request, reply) => send(reply, 0));
  });
}

// The least a session that is stored as JSON costs, written the plainest way in JS: the signed
// cookie verified and signed with node:crypto's HMAC, the record JSON.parse'd from and
// JSON.stringify'd into a Map, the route of @fastify/session on the parsed object. (No id
// validation, expiry, change detection or locking: a floor, not a product.)
function floorJsonMap() {
  const crypto = require('node:crypto');
  const key = kit.APP_KEY;
  const sign = (id) => `${id}.${crypto.createHmac('sha256', key).update(id).digest('base64').replace(/=+$/, '')}`;
  const records = new Map();
  return fastifyServer(async (app) => {
    app.decorateRequest('session', null);
    app.decorateRequest('sid', null);
    app.addHook('onRequest', async (request) => {
      const c = request.headers.cookie;
      const at = c === undefined ? -1 : c.indexOf(`${kit.COOKIE}=`);
      let id = null;
      if (at !== -1) {
        const end = c.indexOf(';', at);
        const v = decodeURIComponent(c.slice(at + kit.COOKIE.length + 1, end === -1 ? c.length : end));
        const dot = v.lastIndexOf('.');
        const claimed = v.slice(2, dot);
        if (dot > 2 && sign(claimed) === v.slice(2) && records.has(claimed)) id = claimed;
      }
      request.sid = id === null ? crypto.randomBytes(30).toString('base64url').slice(0, 40) : id;
      const data = id === null ? {} : JSON.parse(records.get(id));
      request.session = { get: (k) => data[k], set: (k, v) => { data[k] = v; }, data };
    });
    app.addHook('onSend', async (request, reply, payload) => {
      records.set(request.sid, JSON.stringify(request.session.data));
      const exp = new Date(Date.now() + kit.LIFETIME_MS).toUTCString();
      reply.header('set-cookie', `${kit.COOKIE}=${encodeURIComponent(`s:${sign(request.sid)}`)}; Path=/; Max-Age=${kit.LIFETIME_MIN * 60}; Expires=${exp}; HttpOnly; SameSite=Lax`);
      return payload;
    });
    app.get('/', peerRoute);
  });
}

function peer(store) {
  return fastifyServer(async (app) => {
    await app.register(kit.need('@fastify/cookie'));
    await app.register(kit.need('@fastify/session'), {
      secret: kit.APP_KEY,
      cookieName: kit.COOKIE,
      saveUninitialized: true,
      cookie: { secure: false, httpOnly: true, sameSite: 'lax', maxAge: kit.LIFETIME_MS },
      ...(store ? { store } : {}),
    });
    app.get('/', peerRoute);
  });
}

async function connectRedis(ctx) {
  const { RedisStore } = kit.need('connect-redis');
  const { createClient } = kit.need('redis');
  const client = createClient({ url: ctx.redisUrl });
  client.on('error', () => {});
  await client.connect();
  return { store: new RedisStore({ client, prefix: 'fcr:' /* apart from the http case's keys */, ttl: kit.LIFETIME_MIN * 60 }), client };
}

const CONTENDERS = [
  { id: 'fastify-baseline', label: 'Fastify, no session (baseline)', verify: false, make: () => fastifyServer(async (app) => { app.get('/', (request, reply) => send(reply, 0)); }) },
  { id: 'fastify-ours-array', label: '@ostro/session/fastify + array', make: () => ours({ driver: 'array' }) },
  { id: 'fastify-ours-compat-array', label: '@ostro/session/fastify (express-session API) + array', make: () => oursCompat({ driver: 'array' }) },
  { id: 'fastify-peer-memory', label: '@fastify/session + its MemoryStore', make: () => peer(null) },
  // Its own MemoryStore keeps the session object itself (no serialization, no copy), as the 1.x
  // memory adapter did; express-session's MemoryStore stores JSON, as every real store does.
  { id: 'fastify-peer-memory-json', label: '@fastify/session + express-session MemoryStore', make: () => peer(new (kit.need('express-session').MemoryStore)()) },
  { id: 'fastify-ours-redis', label: '@ostro/session/fastify + redis', needs: ['redis'], make: (ctx) => ours({ driver: 'redis', connection: ctx.redisUrl, prefix: 'fos:' }) },
  {
    id: 'fastify-peer-redis', label: '@fastify/session + connect-redis', needs: ['redis'],
    async make(ctx) {
      const { store, client } = await connectRedis(ctx);
      const srv = await peer(store);
      return { listener: srv.listener, close: async () => { await srv.close(); await client.quit(); } };
    },
  },
  { id: 'fastify-floor-hooks', label: 'floor: two async hooks, a cookie read and a Set-Cookie header', verify: false, make: floorHooks },
  { id: 'fastify-floor-json-map', label: 'floor: a JSON session in a JS Map, HMAC-signed cookie (node:crypto)', make: floorJsonMap },
];
for (const c of CONTENDERS) module.exports[`fastify:${c.id}`] = c.make;

/** The pairs whose req/s ratio has the >= 1.5× target. */
const PAIRS = [['fastify-ours-array', 'fastify-peer-memory'], ['fastify-ours-redis', 'fastify-peer-redis']];
const TARGET = 1.5;
/** Shown beside them, without a target: the express-session API, and what the floors reach. */
const CONTEXT_PAIRS = [
  ['fastify-ours-compat-array', 'fastify-peer-memory'],
  ['fastify-ours-compat-array', 'fastify-peer-memory-json'],
  ['fastify-floor-json-map', 'fastify-peer-memory'],
  ['fastify-floor-hooks', 'fastify-peer-memory'],
];

// ----- the load (run in the harness) ------------------------------------------------------------

function headerOf(headers, name) {
  for (const k of Object.keys(headers)) if (k.toLowerCase() === name) return headers[k];
  return undefined;
}

function cookieOf(sc, previous) {
  if (!sc) return previous;
  return (Array.isArray(sc) ? sc : [sc]).map((c) => String(c).split(';')[0]).join('; ');
}

/** Two requests with a cookie jar: the second must see the first's counter. */
async function probe(port) {
  const get = (cookie) => new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', headers: cookie ? { cookie } : {}, agent: false }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, body, cookie: cookieOf(res.headers['set-cookie'], cookie) }));
    });
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error('probe timed out')));
  });
  const a = await get(null);
  if (a.status !== 200) throw new Error(`probe: status ${a.status}: ${a.body.slice(0, 120)}`);
  const b = await get(a.cookie);
  return { first: JSON.parse(a.body).n, second: JSON.parse(b.body).n, cookie: !!a.cookie };
}

/** One autocannon run (as in the http case): every connection keeps its cookie and checks its counter. */
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
        st.cookie = cookieOf(headerOf(headers || {}, 'set-cookie'), st.cookie);
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
  return {
    reqPerSec: r.requests.total / r.duration,
    p50: r.latency.p50,
    p99: r.latency.p99,
    errors: r.errors + r.timeouts + r.non2xx,
    persisted: states.filter((s) => s.broken === 0 && s.ok > 1).length,
    connections: states.length,
    broken: states.reduce((a, s) => a + s.broken, 0),
    maxCounter: Math.max(0, ...states.map((s) => s.last)),
  };
}

function firstLine(s) {
  const line = String(s).split('\n').map((l) => l.trim()).find(Boolean) || '';
  return line.length > 160 ? `${line.slice(0, 157)}…` : line;
}

async function run(env) {
  const { quick } = env;
  const rounds = quick ? 1 : 2;
  const seconds = quick ? 2 : 6;
  const entries = CONTENDERS.map((c) => ({ c, id: c.id, label: c.label, verify: c.verify !== false, status: 'ok', reason: '', samples: [] }));
  await Promise.all(entries.map(async (e) => {
    const missing = (e.c.needs || []).filter((s) => !env.services[s] || env.services[s].error);
    if (missing.length) {
      e.status = 'unavailable';
      e.reason = `${missing.join(', ')} not running`;
      return;
    }
    e.worker = new Worker(e.id);
    try {
      const r = await e.worker.call('init', { module: __filename, mode: `fastify:${e.id}`, ctx: env.ctxFor(e.id, 'fastify') });
      if (!r.available) throw Object.assign(new Error(r.reason), { unavailable: true });
      e.port = (await e.worker.call('listen')).port;
      const p = await probe(e.port);
      if (e.verify && !(p.first === 1 && p.second === 2)) throw new Error(`the session did not persist across two requests (counter ${p.first} then ${p.second}, cookie ${p.cookie ? 'set' : 'missing'})`);
      await cannon(e.port, quick ? 0.3 : 1, false); // warm-up
    } catch (err) {
      e.status = err.unavailable ? 'unavailable' : 'failed';
      e.reason = firstLine(err.message);
    }
  }));
  const live = () => entries.filter((e) => e.status === 'ok');
  env.log(`fastify: ${live().length} servers live`);
  for (let r = 0; r < rounds; r++) {
    const order = live();
    for (let j = 0; j < order.length; j++) {
      const e = order[(j + r) % order.length];
      try {
        await e.worker.call('mark');
        const c = await cannon(e.port, seconds, e.verify);
        const s = await e.worker.call('collect');
        e.samples.push({ ...c, cpuUsPerReq: s.cpuUs / Math.max(1, s.requests), eldP99: s.eldP99 });
      } catch (err) {
        e.status = 'failed';
        e.reason = firstLine(err.message);
      }
    }
    env.log(`fastify: round ${r + 1}/${rounds} done`);
  }
  await Promise.all(entries.map((e) => (e.worker ? e.worker.close() : null)));

  const data = {};
  const rows = [];
  const base = entries.find((e) => e.id === 'fastify-baseline');
  const baseCpu = base && base.samples.length ? median(base.samples.map((x) => x.cpuUsPerReq)) : NaN;
  for (const e of entries) {
    const s = e.samples;
    if (e.status !== 'ok' || s.length === 0) {
      data[e.id] = { label: e.label, status: e.status === 'ok' ? 'failed' : e.status, reason: e.reason || 'no sample' };
      rows.push([e.label, '–', '–', '–', '–', '–', '–', `${e.status === 'unavailable' ? 'not available' : 'failed'}: ${e.reason || 'no sample'}`]);
      continue;
    }
    const m = (f) => median(s.map(f));
    const d = {
      label: e.label, status: 'ok',
      reqPerSec: m((x) => x.reqPerSec), reqRounds: s.map((x) => x.reqPerSec),
      p50: m((x) => x.p50), p99: m((x) => x.p99), cpuUsPerReq: m((x) => x.cpuUsPerReq), eldP99: m((x) => x.eldP99),
      persisted: Math.min(...s.map((x) => x.persisted)), connections: s[0].connections,
      broken: s.reduce((a, x) => a + x.broken, 0), errors: s.reduce((a, x) => a + x.errors, 0),
      maxCounter: Math.max(...s.map((x) => x.maxCounter)),
    };
    data[e.id] = d;
    const persist = e.verify ? `${d.persisted}/${d.connections} connections, counters to ${d.maxCounter}${d.broken ? `, ${d.broken} BROKEN` : ''}` : 'n/a';
    rows.push([
      e.label, fmt(d.reqPerSec, 0), fmt(d.p50, 0), fmt(d.p99, 0), fmt(d.cpuUsPerReq, 0),
      e.id === 'fastify-baseline' ? '0' : fmt(d.cpuUsPerReq - baseCpu, 0), persist, d.errors ? `${d.errors} errors/non-2xx` : '',
    ]);
  }
  // The ratios side by side, with the target (also in the Targets table).
  const ratioRow = (a, b, target) => {
    const x = data[a];
    const y = data[b];
    const goal = target === null ? '–' : `>= ${target}×`;
    if (!x || !y || x.status !== 'ok' || y.status !== 'ok') return [`${x ? x.label : a} vs ${y ? y.label : b}`, '–', goal, 'not measured'];
    const r = pairedRatio(x.reqRounds, y.reqRounds);
    const cpu = `CPU ${fmt(x.cpuUsPerReq, 0)} vs ${fmt(y.cpuUsPerReq, 0)} µs/req`;
    return [`${x.label} vs ${y.label}`, ratio(r), goal, target === null ? cpu : `${r >= target ? 'met' : 'MISSED'}; ${cpu}`];
  };
  const ratioRows = [...PAIRS.map(([a, b]) => ratioRow(a, b, TARGET)), ...CONTEXT_PAIRS.map(([a, b]) => ratioRow(a, b, null))];
  return {
    title: `Case fastify: Fastify 5 (autocannon, ${CONNECTIONS} connections, each keeping its cookie)`,
    note: `${rounds} interleaved round(s) of ${seconds} s per server; medians; the route of the HTTP case. `
      + 'session µs/req is server CPU per request minus Fastify without sessions. '
      + 'persisted: connections whose counter grew by exactly one on every response.',
    header: ['server', 'req/s', 'p50 ms', 'p99 ms', 'server CPU µs/req', 'session µs/req', 'persisted', 'note'],
    rows,
    extra: [{ title: 'req/s ratio (median of per-round ratios)', header: ['pair', 'ratio', 'target', 'verdict / server CPU'], rows: ratioRows }],
    data,
  };
}

module.exports.run = run;
module.exports.PAIRS = PAIRS;
module.exports.TARGET = TARGET;
