'use strict';
// HTTP test helpers: servers on a free loopback port (node:http or Express), a cookie-jar
// client, and a raw socket client that timestamps the first byte it receives.
const http = require('node:http');
const net = require('node:net');
const { performance } = require('node:perf_hooks');

const TIMEOUT_MS = 10000;

/** Starts `server` on 127.0.0.1 and a free port; `close()` also ends kept-alive sockets. */
function listen(server) {
  const sockets = new Set();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      resolve({
        port,
        url: `http://127.0.0.1:${port}`,
        close: () => new Promise((r) => {
          for (const s of sockets) s.destroy();
          server.close(() => r());
        }),
      });
    });
  });
}

/**
 * A server running `manager.middleware()` then `app(req, res)`, as node:http (`'node'`, with
 * `next`), node:http without `next` (`'node-await'`) or Express 5 (`'express'`). Errors reaching
 * `next(err)` answer 500 with `error:<code>`.
 */
function serve(kind, manager, app) {
  const mw = manager.middleware();
  if (kind === 'express') {
    const express = require('express');
    const e = express();
    e.use(mw);
    e.use((req, res, next) => Promise.resolve(app(req, res)).catch(next));
    e.use((err, req, res, next) => { // eslint-disable-line no-unused-vars
      res.status(500).type('text').send(`error:${err.code || err.message}`);
    });
    return listen(http.createServer(e));
  }
  if (kind === 'node-await') {
    return listen(http.createServer(async (req, res) => {
      if (!(await mw(req, res))) return;
      await app(req, res);
    }));
  }
  return listen(http.createServer((req, res) => {
    mw(req, res, (err) => {
      if (err) {
        res.statusCode = 500;
        res.end(`error:${err.code || err.message}`);
        return;
      }
      Promise.resolve(app(req, res)).catch((e) => {
        res.statusCode = 500;
        res.end(`error:${e.code || e.message}`);
      });
    });
  }));
}

/** Parses a `Set-Cookie` line into `{ name, value, attrs }` (attribute names lower-cased). */
function parseSetCookie(line) {
  const parts = line.split(';').map((p) => p.trim());
  const [nv, ...rest] = parts;
  const eq = nv.indexOf('=');
  const attrs = {};
  for (const a of rest) {
    const i = a.indexOf('=');
    if (i === -1) attrs[a.toLowerCase()] = true;
    else attrs[a.slice(0, i).toLowerCase()] = a.slice(i + 1);
  }
  return { name: nv.slice(0, eq), value: nv.slice(eq + 1), attrs };
}

/** A client with a cookie jar (name -> raw value), like a browser for one host. */
class Client {
  constructor(base) {
    this.base = base;
    this.jar = new Map();
  }

  cookieHeader() {
    return [...this.jar].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  /**
   * @returns {Promise<{ status: number, headers: Headers, setCookies: string[], body: string, json: () => any }>}
   */
  async request(pathname, { method = 'GET', headers = {}, body, cookie } = {}) {
    const h = { ...headers };
    const c = cookie !== undefined ? cookie : this.cookieHeader();
    if (c) h.cookie = c;
    const res = await fetch(this.base + pathname, { method, headers: h, body, redirect: 'manual', signal: AbortSignal.timeout(TIMEOUT_MS) });
    const text = await res.text();
    const setCookies = res.headers.getSetCookie();
    for (const line of setCookies) {
      const { name, value, attrs } = parseSetCookie(line);
      if (attrs['max-age'] === '0') this.jar.delete(name);
      else this.jar.set(name, value);
    }
    return { status: res.status, headers: res.headers, setCookies, body: text, json: () => JSON.parse(text) };
  }

  get(pathname, opts) { return this.request(pathname, opts); }
}

/**
 * Sends a raw request over a socket and resolves with the response text and the
 * `performance.now()` time at which its first byte arrived.
 */
function rawRequest(port, text) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let firstByteAt = null;
    const chunks = [];
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error('raw request timed out'));
    }, TIMEOUT_MS);
    sock.on('data', (d) => {
      if (firstByteAt === null) firstByteAt = performance.now();
      chunks.push(d);
      // One response per connection: stop once it is complete.
      const s = Buffer.concat(chunks).toString('latin1');
      const headEnd = s.indexOf('\r\n\r\n');
      if (headEnd !== -1) {
        const m = /content-length: *(\d+)/i.exec(s.slice(0, headEnd));
        const chunked = /transfer-encoding: *chunked/i.test(s.slice(0, headEnd));
        if ((m && s.length >= headEnd + 4 + Number(m[1])) || (chunked && s.endsWith('0\r\n\r\n'))) sock.end();
      }
    });
    sock.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    sock.on('close', () => {
      clearTimeout(timer);
      resolve({ text: Buffer.concat(chunks).toString('latin1'), firstByteAt });
    });
    sock.write(text);
  });
}

/** The session cookie line of a response, parsed, or undefined. */
function sessionCookie(res, name = 'ostro_session') {
  return res.setCookies.map(parseSetCookie).find((c) => c.name === name);
}

/** The session id in a signed cookie value (`s%3A<id>.<sig>`). */
function idOf(cookie) {
  if (!cookie) return undefined;
  const v = decodeURIComponent(cookie.value);
  return v.slice(2, v.lastIndexOf('.'));
}

/** Polls `fn` until it returns truthy or the deadline passes. */
async function until(fn, ms = 5000, what = 'condition') {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

module.exports = { listen, serve, Client, rawRequest, parseSetCookie, sessionCookie, idOf, until };
