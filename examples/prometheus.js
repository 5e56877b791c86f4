'use strict';
// Serves a SessionManager's metrics in the Prometheus text format (`GET /metrics`), for a
// scraper to fetch. Run it beside an app, or mount `metricsHandler(manager)` in your own server.
//
//   node examples/prometheus.js       then   curl http://127.0.0.1:9464/metrics
//
// Exported series, per driver (`driver` label) and operation (`op`: load, save, destroy, gc):
//   ostro_session_operation_duration_seconds (histogram), ostro_session_operation_errors_total,
//   ostro_session_saves_total{outcome="written|touched|dropped"}.
const http = require('node:http');

/** The Prometheus text exposition of `manager.metrics()`. */
function render(metrics) {
  const lines = [
    '# HELP ostro_session_operation_duration_seconds Latency of session driver operations.',
    '# TYPE ostro_session_operation_duration_seconds histogram',
  ];
  const errors = ['# HELP ostro_session_operation_errors_total Failed session driver operations.', '# TYPE ostro_session_operation_errors_total counter'];
  const saves = ['# HELP ostro_session_saves_total Session saves by outcome.', '# TYPE ostro_session_saves_total counter'];
  const label = (v) => String(v).replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
  for (const [driver, d] of Object.entries(metrics.drivers)) {
    for (const [op, o] of Object.entries(d.operations)) {
      const l = `driver="${label(driver)}",op="${op}"`;
      for (const b of o.buckets) {
        const le = b.le === Infinity ? '+Inf' : String(b.le / 1000);
        lines.push(`ostro_session_operation_duration_seconds_bucket{${l},le="${le}"} ${b.count}`);
      }
      lines.push(`ostro_session_operation_duration_seconds_sum{${l}} ${o.sumMs / 1000}`);
      lines.push(`ostro_session_operation_duration_seconds_count{${l}} ${o.count}`);
      errors.push(`ostro_session_operation_errors_total{${l}} ${o.errors}`);
    }
    for (const [outcome, n] of Object.entries(d.saves)) saves.push(`ostro_session_saves_total{driver="${label(driver)}",outcome="${outcome}"} ${n}`);
  }
  return `${[...lines, ...errors, ...saves].join('\n')}\n`;
}

/** A node:http handler answering `GET /metrics` with the manager's metrics. */
function metricsHandler(manager) {
  return (req, res) => {
    if (req.method !== 'GET' || req.url !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
    res.end(render(manager.metrics()));
  };
}

module.exports = { render, metricsHandler };

if (require.main === module) {
  const crypto = require('node:crypto');
  const { SessionManager } = require('..');
  const sessions = new SessionManager({ driver: process.env.SESSION_DRIVER || 'array', key: process.env.APP_KEY || `base64:${crypto.randomBytes(32).toString('base64')}` });
  const app = sessions.middleware();
  // The app on PORT (default 3000) counts visits; the metrics on METRICS_PORT (default 9464).
  const appServer = http.createServer((req, res) => app(req, res, () => res.end(`visits: ${req.session.increment('visits')}\n`)));
  const metricsServer = http.createServer(metricsHandler(sessions));
  appServer.listen(Number(process.env.PORT ?? 3000), '127.0.0.1', () => {
    metricsServer.listen(Number(process.env.METRICS_PORT ?? 9464), '127.0.0.1', () => {
      console.log(`app http://127.0.0.1:${appServer.address().port} metrics http://127.0.0.1:${metricsServer.address().port}/metrics`);
    });
  });
}
