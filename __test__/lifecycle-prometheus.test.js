'use strict';
// examples/prometheus.js run as a process: requests to its app are counted, and a scrape of
// /metrics returns them in the Prometheus text format.
const { it } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const http = require('node:http');
const { spawn } = require('node:child_process');

function get(port, p, cookie) {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: p, headers: cookie ? { cookie } : {} }, (res) => {
      let body = '';
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode, type: res.headers['content-type'], cookie: (res.headers['set-cookie'] || [''])[0].split(';')[0], body }));
    }).on('error', reject);
  });
}

it('examples/prometheus.js serves counters and histograms a scraper can parse', async () => {
  const child = spawn(process.execPath, [path.join(__dirname, '..', 'examples', 'prometheus.js')], { env: { ...process.env, PORT: '0', METRICS_PORT: '0' }, stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const line = await new Promise((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`no start line: ${out}`)), 15000);
      child.stdout.on('data', (d) => {
        out += d;
        if (out.includes('\n')) { clearTimeout(timer); resolve(out); }
      });
      child.once('exit', (code) => reject(new Error(`exited ${code}: ${out}`)));
    });
    const [, appPort, metricsPort] = /app http:\/\/127\.0\.0\.1:(\d+) metrics http:\/\/127\.0\.0\.1:(\d+)/.exec(line);
    const first = await get(appPort, '/');
    assert.equal(first.body, 'visits: 1\n');
    for (let i = 2; i <= 3; i++) assert.equal((await get(appPort, '/', first.cookie)).body, `visits: ${i}\n`);

    const scrape = await get(metricsPort, '/metrics');
    assert.equal(scrape.status, 200);
    assert.match(scrape.type, /^text\/plain; version=0\.0\.4/);
    const samples = new Map();
    for (const l of scrape.body.split('\n')) {
      if (l === '' || l.startsWith('#')) continue;
      const m = /^([a-z_]+)(\{[^}]*\})? (\S+)$/.exec(l);
      assert.ok(m, `not a Prometheus sample line: ${JSON.stringify(l)}`);
      samples.set(`${m[1]}${m[2] || ''}`, Number(m[3]));
    }
    assert.equal(samples.get('ostro_session_operation_duration_seconds_count{driver="array",op="load"}'), 2, 'two requests carried a cookie');
    assert.equal(samples.get('ostro_session_operation_duration_seconds_count{driver="array",op="save"}'), 3);
    assert.equal(samples.get('ostro_session_operation_duration_seconds_bucket{driver="array",op="save",le="+Inf"}'), 3);
    assert.equal(samples.get('ostro_session_saves_total{driver="array",outcome="written"}'), 3);
    assert.equal(samples.get('ostro_session_operation_errors_total{driver="array",op="load"}'), 0);
    assert.ok(samples.get('ostro_session_operation_duration_seconds_sum{driver="array",op="save"}') >= 0);
    assert.equal((await get(metricsPort, '/other')).status, 404);
  } finally {
    child.kill('SIGKILL');
  }
});
