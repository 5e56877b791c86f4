'use strict';
// A small shop on plain node:http with @ostro/session (`npm start`).
//
//   APP_KEY=base64:...        the key that signs cookies (a random one per run when unset)
//   SESSION_DRIVER=file       file (default), array, sqlite, redis, memcached, cookie
//   SESSION_CONNECTION=...    e.g. redis://127.0.0.1:6379, 127.0.0.1:11211, ./shop.sqlite
//   PORT=3000 HOST=127.0.0.1
//
// It shows the session API an app uses: a cart (push / put), a flash message that survives
// exactly one redirect, a login that regenerates the session id, a logout that invalidates the
// session, a visit counter (increment) and a CSRF token checked on every POST.
const http = require('node:http');
const crypto = require('node:crypto');
const { SessionManager } = require('..');

const key = process.env.APP_KEY || `base64:${crypto.randomBytes(32).toString('base64')}`;
if (!process.env.APP_KEY) {
  console.warn('APP_KEY is not set: using a random key, so sessions end when the server restarts');
}

const sessions = new SessionManager({
  driver: process.env.SESSION_DRIVER || 'file',
  connection: process.env.SESSION_CONNECTION || null,
  files: process.env.SESSION_FILES || 'storage/framework/sessions',
  lifetime: 120,
  cookie: 'shop_session',
  key,
});
const startSession = sessions.middleware();

const PRODUCTS = { apple: 'Apple', pear: 'Pear', fig: 'Fig' };

const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(session) {
  const user = session.get('user');
  const cart = session.get('cart', []);
  const status = session.get('status');
  const token = escape(session.token());
  const form = (action, label, fields = '') => `<form method="post" action="${action}"><input type="hidden" name="_token" value="${token}">${fields}<button>${label}</button></form>`;
  return `<!doctype html><meta charset="utf-8"><title>Shop</title>
<h1>Shop</h1>
${status ? `<p class="status">${escape(status)}</p>` : ''}
<p class="visits">Visits: ${session.get('visits')}</p>
<p class="user">${user ? `Signed in as ${escape(user)}` : 'Not signed in'}</p>
<h2>Products</h2>
${Object.entries(PRODUCTS).map(([id, name]) => form('/cart', `Add ${name}`, `<input type="hidden" name="item" value="${id}">`)).join('\n')}
<h2>Cart</h2>
<ul class="cart">${cart.map((id) => `<li>${escape(PRODUCTS[id] || id)}</li>`).join('')}</ul>
${form('/cart/clear', 'Empty the cart')}
${user ? form('/logout', 'Sign out') : form('/login', 'Sign in', '<input name="name" placeholder="name">')}
`;
}

function readForm(req) {
  return new Promise((resolve, reject) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk) => {
      body += chunk;
      if (body.length > 10000) req.destroy(new Error('form too large'));
    });
    req.on('end', () => resolve(Object.fromEntries(new URLSearchParams(body))));
    req.on('error', reject);
  });
}

function tokenMatches(session, given) {
  const a = Buffer.from(String(session.token()));
  const b = Buffer.from(typeof given === 'string' ? given : '');
  return a.length === b.length && crypto.timingSafeEqual(a, b);
}

function redirect(res, location) {
  res.writeHead(303, { Location: location });
  res.end();
}

async function app(req, res) {
  const session = req.session;
  const url = new URL(req.url, 'http://localhost');
  if (req.method === 'GET' && url.pathname === '/') {
    session.increment('visits');
    const html = page(session);
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    return res.end(html);
  }
  if (req.method !== 'POST') {
    res.writeHead(404, { 'Content-Type': 'text/plain' });
    return res.end('Not found');
  }
  const form = await readForm(req);
  if (!tokenMatches(session, form._token)) {
    res.writeHead(419, { 'Content-Type': 'text/plain' });
    return res.end('Page expired: reload and try again');
  }
  switch (url.pathname) {
    case '/cart':
      if (!PRODUCTS[form.item]) break;
      session.push('cart', form.item);
      session.put('cart_updated_at', new Date().toISOString());
      session.flash('status', `${PRODUCTS[form.item]} added to your cart`);
      return redirect(res, '/');
    case '/cart/clear':
      session.forget('cart');
      session.flash('status', 'Your cart is empty');
      return redirect(res, '/');
    case '/login': {
      const name = String(form.name || '').trim().slice(0, 40);
      if (!name) break;
      // A new id on sign-in: an id an attacker planted before never sees the signed-in session.
      await session.regenerate();
      session.put('user', name);
      session.flash('status', `Welcome, ${name}`);
      return redirect(res, '/');
    }
    case '/logout':
      // Everything goes, the cart included, and the old id is destroyed.
      await session.invalidate();
      session.flash('status', 'Signed out');
      return redirect(res, '/');
    default:
      break;
  }
  res.writeHead(400, { 'Content-Type': 'text/plain' });
  return res.end('Bad request');
}

const server = http.createServer((req, res) => {
  startSession(req, res, (err) => {
    if (err) {
      console.error(err);
      res.writeHead(500, { 'Content-Type': 'text/plain' });
      return res.end('Internal Server Error');
    }
    return app(req, res).catch((e) => {
      console.error(e);
      if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain' });
      res.end('Internal Server Error');
    });
  });
});

const port = process.env.PORT === undefined ? 3000 : Number(process.env.PORT);
server.listen(port, process.env.HOST || '127.0.0.1', () => {
  const a = server.address();
  console.log(`shop listening on http://${a.address}:${a.port} (session driver: ${sessions.getDefaultDriver()})`);
});

function shutdown() {
  server.close(() => {
    sessions.close().finally(() => process.exit(0));
  });
  server.closeAllConnections();
}
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);
