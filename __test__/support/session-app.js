'use strict';
// One small app used by the HTTP tests, written against plain node:http `req`/`res` so the same
// routes run under node:http and Express.

function send(res, status, body, headers = {}) {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': typeof body === 'string' ? 'text/plain' : 'application/json', 'Content-Length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

/** The routes; `hooks` may add or override routes for one test. */
function sessionApp(hooks = {}) {
  return async function app(req, res) {
    const url = new URL(req.url, 'http://x');
    const q = Object.fromEntries(url.searchParams);
    const s = req.session;
    const route = hooks[url.pathname];
    if (route) return route(req, res, q);
    switch (url.pathname) {
      case '/put': s.put(q.key, q.value); return send(res, 200, { id: s.getId() });
      case '/get': return send(res, 200, { value: s.get(q.key), id: s.getId() });
      case '/all': return send(res, 200, { all: s.all(), id: s.getId() });
      case '/flash': s.flash(q.key, q.value); return send(res, 200, 'flashed');
      case '/increment': return send(res, 200, { n: s.increment('n') });
      case '/token': return send(res, 200, { token: s.token() });
      case '/none': return send(res, 200, 'ok');
      case '/regenerate': await s.regenerate(true); return send(res, 200, { id: s.getId() });
      case '/invalidate': await s.invalidate(); return send(res, 200, { id: s.getId() });
      case '/status': return send(res, Number(q.code), 'status');
      case '/previous': return send(res, 200, { previous: s.previousUrl() });
      case '/redirect':
        s.put('redirected', q.value || 'yes');
        res.writeHead(302, { Location: '/get?key=redirected' });
        res.end();
        return undefined;
      default: return send(res, 404, 'not found');
    }
  };
}

module.exports = { sessionApp, send };
