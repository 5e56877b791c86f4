'use strict';
// The same middleware under Express 4, Express 5 and Connect: persistence, flash across a
// redirect, regenerate, invalidate, and no byte sent before a slow write resolves.
const test = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const { SessionManager } = require('../lib/manager');
const { SessionHandlerInterface } = require('../lib/handler-interface');
const { listen, Client, rawRequest } = require('./support/http');
const { tmpDir } = require('./support/tmp');

const KEY = 'base64:dGhpcyBpcyBhIHRlc3Qga2V5IG9mIDMyIGJ5dGVzIQ==';

function routes(req, res) {
  const s = req.session;
  const url = new URL(req.url, 'http://x');
  const json = (body) => {
    res.setHeader('Content-Type', 'application/json');
    res.end(JSON.stringify(body));
  };
  switch (url.pathname) {
    case '/count': return json({ n: s.increment('n'), id: s.getId() });
    case '/flash':
      s.flash('notice', 'saved');
      res.statusCode = 302;
      res.setHeader('Location', '/show');
      return res.end();
    case '/show': return json({ notice: s.get('notice', null) });
    case '/login': return s.regenerate(true).then(() => { s.put('user', 'ada'); json({ id: s.getId() }); });
    case '/logout': return s.invalidate().then(() => json({ id: s.getId() }));
    case '/me': return json({ user: s.get('user', null), n: s.get('n', null) });
    default:
      res.statusCode = 404;
      return res.end();
  }
}

function appFor(kind, mw) {
  if (kind === 'connect') {
    const app = require('connect')();
    app.use(mw);
    app.use((req, res, next) => Promise.resolve(routes(req, res)).catch(next));
    return app;
  }
  const express = require(kind === 'express4' ? 'express4' : 'express');
  const app = express();
  app.use(mw);
  app.get('/express-redirect', (req, res) => {
    req.session.put('via', 'res.redirect');
    res.redirect('/me');
  });
  app.use((req, res, next) => Promise.resolve(routes(req, res)).catch(next));
  return app;
}

class SlowWrites extends SessionHandlerInterface {
  constructor() { super(); this.map = new Map(); this.resolvedAt = 0; }
  read(id) { return this.map.get(id) || ''; }
  async write(id, data) {
    await new Promise((r) => setTimeout(r, 200));
    this.map.set(id, data);
    this.resolvedAt = performance.now();
  }
  destroy(id) { this.map.delete(id); }
}

for (const kind of ['express4', 'express', 'connect']) {
  test(`${kind}: persistence, flash over a redirect, regenerate and invalidate`, async (t) => {
    const manager = new SessionManager({ driver: 'file', files: tmpDir(), key: KEY, lottery: [0, 100] });
    const server = await listen(http.createServer(appFor(kind, manager.middleware())));
    t.after(async () => { await server.close(); await manager.close(); });
    const c = new Client(server.url);
    assert.equal((await c.get('/count')).json().n, 1);
    const second = (await c.get('/count')).json();
    assert.equal(second.n, 2);
    const r = await c.get('/flash');
    assert.equal(r.status, 302);
    assert.equal((await c.get('/show')).json().notice, 'saved');
    assert.equal((await c.get('/show')).json().notice, null);
    const login = (await c.get('/login')).json();
    assert.notEqual(login.id, second.id);
    assert.deepEqual((await c.get('/me')).json(), { user: 'ada', n: 2 });
    const stale = new Client(server.url);
    stale.jar = new Map(c.jar);
    const logout = (await c.get('/logout')).json();
    assert.notEqual(logout.id, login.id);
    assert.deepEqual((await c.get('/me')).json(), { user: null, n: null });
    assert.deepEqual((await stale.get('/me')).json(), { user: null, n: null }, 'the old id is dead');
    if (kind !== 'connect') {
      await c.get('/express-redirect');
      assert.equal((await c.get('/me')).status, 200);
    }
  });

  test(`${kind}: no byte reaches the client before a 200 ms write resolves`, async (t) => {
    const handler = new SlowWrites();
    const manager = new SessionManager({ driver: 'slow', key: KEY, lottery: [0, 100] });
    manager.extend('slow', () => handler);
    const server = await listen(http.createServer(appFor(kind, manager.middleware())));
    t.after(async () => { await server.close(); await manager.close(); });
    const { port } = new URL(server.url);
    const res = await rawRequest(Number(port), 'GET /flash HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    assert.match(res.text, /^HTTP\/1\.1 302/);
    assert.ok(handler.resolvedAt > 0, 'the write ran');
    assert.ok(res.firstByteAt >= handler.resolvedAt, `first byte at ${res.firstByteAt}, write resolved at ${handler.resolvedAt}`);
  });
}
