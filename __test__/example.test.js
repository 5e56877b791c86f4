'use strict';
// examples/server.js (`npm start`), driven like a browser: cart, flash after a redirect, login
// that regenerates the id, logout that invalidates, visit counter, CSRF on every POST.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { Browser, idOfCookie } = require('./support/ostro-app');

const SERVER = path.resolve(__dirname, '..', 'examples', 'server.js');

function startExample(env) {
  const cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'shop-'));
  const child = spawn(process.execPath, [SERVER], {
    cwd,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, PORT: '0', APP_KEY: 'base64:c2hvcC1leGFtcGxlLWtleS1mb3ItdGVzdHMtb25seS0xMjM=', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { out += d; });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGTERM');
    await exited;
    fs.rmSync(cwd, { recursive: true, force: true });
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => stop().then(() => reject(new Error(`the example did not start:\n${out}`))), 20000);
    child.stdout.on('data', () => {
      const m = /listening on (http:\/\/[\d.]+:\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ base: m[1], cwd, stop, output: () => out });
      }
    });
    exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`the example exited (${code}) before listening:\n${out}`));
    });
  });
}

const tokenOf = (html) => /name="_token" value="([^"]+)"/.exec(html)[1];
const statusOf = (html) => (/<p class="status">([^<]*)<\/p>/.exec(html) || [])[1] || null;
const cartOf = (html) => [.../<ul class="cart">(.*?)<\/ul>/s.exec(html)[1].matchAll(/<li>([^<]*)<\/li>/g)].map((m) => m[1]);
const visitsOf = (html) => Number(/Visits: (\d+)/.exec(html)[1]);

describe('examples/server.js (file driver)', () => {
  let shop;
  before(async () => {
    shop = await startExample({});
  });
  after(async () => {
    if (shop) await shop.stop();
  });

  it('keeps a cart, flashes once after a redirect, counts visits, regenerates on login and invalidates on logout', async () => {
    const b = new Browser(shop.base);
    let r = await b.get('/');
    assert.equal(r.status, 200);
    assert.equal(visitsOf(r.text), 1);
    const firstId = idOfCookie(b.jar.get('shop_session'));
    assert.match(firstId, /^[A-Za-z0-9]{40}$/);

    r = await b.post('/cart', { _token: tokenOf(r.text), item: 'apple' });
    assert.equal(r.status, 303);
    assert.equal(r.headers.get('location'), '/');
    r = await b.get('/');
    assert.equal(statusOf(r.text), 'Apple added to your cart');
    assert.deepEqual(cartOf(r.text), ['Apple']);
    assert.equal(visitsOf(r.text), 2);
    r = await b.post('/cart', { _token: tokenOf(r.text), item: 'fig' });
    r = await b.get('/');
    assert.deepEqual(cartOf(r.text), ['Apple', 'Fig']);
    r = await b.get('/');
    assert.equal(statusOf(r.text), null, 'the flash message is gone on the second request');
    assert.equal(visitsOf(r.text), 4);

    // The session is stored by the file driver under the cookie's id.
    assert.ok(fs.existsSync(path.join(shop.cwd, 'storage', 'framework', 'sessions', firstId)));

    const preLoginCookie = b.jar.get('shop_session');
    r = await b.post('/login', { _token: tokenOf(r.text), name: 'ada' });
    assert.equal(r.status, 303);
    const loggedInId = idOfCookie(b.jar.get('shop_session'));
    assert.notEqual(loggedInId, firstId, 'login regenerates the id');
    r = await b.get('/');
    assert.match(r.text, /Signed in as ada/);
    assert.deepEqual(cartOf(r.text), ['Apple', 'Fig'], 'the cart survives the login');

    // A client still holding the pre-login cookie does not see the login.
    const planted = new Browser(shop.base);
    planted.jar.set('shop_session', preLoginCookie);
    r = await planted.get('/');
    assert.match(r.text, /Not signed in/);

    r = await b.get('/');
    const token = tokenOf(r.text);
    r = await b.post('/logout', { _token: token });
    assert.equal(r.status, 303);
    const afterLogout = idOfCookie(b.jar.get('shop_session'));
    assert.notEqual(afterLogout, loggedInId, 'logout moves to a new id');
    r = await b.get('/');
    assert.equal(statusOf(r.text), 'Signed out');
    assert.match(r.text, /Not signed in/);
    assert.deepEqual(cartOf(r.text), [], 'logout empties the session');
    // Destroyed: gone, or the tombstone a destroy leaves for the lifetime (an empty file, issue 12).
    const oldFile = path.join(shop.cwd, 'storage', 'framework', 'sessions', loggedInId);
    assert.ok(!fs.existsSync(oldFile) || fs.statSync(oldFile).size === 0, 'the old record is destroyed');
  });

  it('refuses a POST without the session token', async () => {
    const b = new Browser(shop.base);
    await b.get('/');
    const r = await b.post('/cart', { _token: 'x'.repeat(40), item: 'apple' });
    assert.equal(r.status, 419);
    const other = new Browser(shop.base);
    const page = await other.get('/');
    // Another visitor's token is not this one's.
    const r2 = await b.post('/cart', { _token: tokenOf(page.text), item: 'apple' });
    assert.equal(r2.status, 419);
  });
});

describe('examples/server.js with SESSION_DRIVER / SESSION_CONNECTION', () => {
  it('uses the sqlite driver and file named by the environment', async () => {
    const shop = await startExample({ SESSION_DRIVER: 'sqlite', SESSION_CONNECTION: 'shop.sqlite' });
    try {
      assert.match(shop.output(), /session driver: sqlite/);
      const b = new Browser(shop.base);
      let r = await b.get('/');
      r = await b.post('/cart', { _token: tokenOf(r.text), item: 'pear' });
      r = await b.get('/');
      assert.deepEqual(cartOf(r.text), ['Pear']);
      assert.ok(fs.existsSync(path.join(shop.cwd, 'shop.sqlite')));
      assert.ok(!fs.existsSync(path.join(shop.cwd, 'storage', 'framework', 'sessions')) || fs.readdirSync(path.join(shop.cwd, 'storage', 'framework', 'sessions')).length === 0);
    } finally {
      await shop.stop();
    }
  });
});
