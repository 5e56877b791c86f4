'use strict';
// The addon's cookie signatures, CSRF tokens and sealed payloads, checked against independent
// implementations written here with node:crypto from the formats' definitions.
const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const native = require('../lib/native');
const { SessionManager } = require('../lib/manager');
const { Store, ArraySessionHandler } = require('..');

const KEY = 'base64:dGhpcyBpcyBhIHRlc3Qga2V5IG9mIDMyIGJ5dGVzIQ==';

// cookie-signature 1.x: what @ostro/cookie's Jar used for 1.x session cookies.
function cookieSignature(value, key) {
  return `${value}.${crypto.createHmac('sha256', key).update(value).digest('base64').replace(/=+$/, '')}`;
}

// csrf 3.x `_tokenize` and `verify`.
function csrfHash(str) {
  return crypto.createHash('sha1').update(str, 'ascii').digest('base64').replace(/\+/g, '-').replace(/\//g, '_').replace(/=/g, '');
}
function csrfCreate(key, salt) {
  return `${salt}-${csrfHash(`${salt}-${key}`)}`;
}
function csrfVerify(key, token) {
  const i = token.indexOf('-');
  return i !== -1 && token === csrfCreate(key, token.slice(0, i));
}

// The sealed form: v1. + base64url(nonce(12) || ciphertext || tag(16)), AES-256-GCM under
// HKDF-SHA256(key bytes, no salt, info 'ostro-session/v1/enc').
function encKey(key) {
  return Buffer.from(crypto.hkdfSync('sha256', Buffer.from(key, 'utf8'), Buffer.alloc(0), 'ostro-session/v1/enc', 32));
}
function open(sealed, key, ad) {
  assert.ok(sealed.startsWith('v1.'));
  const raw = Buffer.from(sealed.slice(3), 'base64url');
  const d = crypto.createDecipheriv('aes-256-gcm', encKey(key), raw.subarray(0, 12));
  d.setAAD(Buffer.from(ad));
  d.setAuthTag(raw.subarray(raw.length - 16));
  return Buffer.concat([d.update(raw.subarray(12, raw.length - 16)), d.final()]).toString('utf8');
}
function seal(plaintext, key, ad) {
  const nonce = crypto.randomBytes(12);
  const c = crypto.createCipheriv('aes-256-gcm', encKey(key), nonce);
  c.setAAD(Buffer.from(ad));
  const ct = Buffer.concat([c.update(plaintext, 'utf8'), c.final()]);
  return `v1.${Buffer.concat([nonce, ct, c.getAuthTag()]).toString('base64url')}`;
}

test('signCookie is byte-for-byte cookie-signature with the literal key string', () => {
  const keys = [KEY, 'plain key with spaces and ünïcödé ✓', 'k'];
  for (let i = 0; i < 50; i++) {
    const id = crypto.randomBytes(30).toString('base64url');
    for (const key of keys) assert.equal(native.signCookie(id, key), `s:${cookieSignature(id, key)}`);
  }
});

test('unsignCookie checks the key, then each previous key, and rejects everything else', () => {
  const id = 'Ab-_c1dE2fG3hI4jK5lM6nO7pQ8rS9tU0vWx-y_Z';
  const signed = `s:${cookieSignature(id, 'old')}`;
  assert.equal(native.unsignCookie(signed, ['new', 'old']), id);
  assert.equal(native.unsignCookie(signed, ['old']), id);
  assert.equal(native.unsignCookie(signed, ['new']), null);
  assert.equal(native.unsignCookie(signed, []), null);
  assert.equal(native.unsignCookie(signed, ['']), null);
  assert.equal(native.unsignCookie(id, ['old']), null, 'unsigned');
  assert.equal(native.unsignCookie(`s:${id}`, ['old']), null, 'no signature');
  assert.equal(native.unsignCookie(`${signed}x`, ['old']), null, 'longer signature');
  assert.equal(native.unsignCookie(signed.slice(0, -1), ['old']), null, 'shorter signature');
  assert.equal(native.unsignCookie(signed.replace('Ab', 'AB'), ['old']), null, 'tampered id');
  assert.equal(native.unsignCookie(`s:${cookieSignature('a.b', 'k')}`, ['k']), 'a.b');
});

test('OstroJS CSRF tokens: made by the addon, valid for the csrf package; and the reverse', async () => {
  const m = new SessionManager({ driver: 'array', key: KEY, csrf: 'ostro' });
  const seen = new Set();
  for (let i = 0; i < 20; i++) {
    const s = m.createStore();
    await s.start();
    const t = s.token();
    assert.equal(t.length, 58);
    assert.ok(csrfVerify(KEY, t), t);
    assert.ok(native.verifyCsrfToken(KEY, t));
    seen.add(t.slice(0, 30));
  }
  assert.equal(seen.size, 20, 'fresh salts');
  for (const salt of ['abcdefghijklmnopqrstuvwxyz0123', 'ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ', 'a1']) {
    const t = csrfCreate(KEY, salt);
    assert.ok(native.verifyCsrfToken(KEY, t));
    assert.ok(!native.verifyCsrfToken('other', t));
    assert.ok(!native.verifyCsrfToken(KEY, `${t}x`));
  }
  // Node's 'ascii' encoding keeps the low byte of each UTF-16 unit; so does the addon.
  assert.ok(native.verifyCsrfToken('k€y', csrfCreate('k€y', 'saltsaltsaltsaltsaltsaltsaltsa')));
  assert.ok(!native.verifyCsrfToken(KEY, 'no-dash-in-wrong-place'));
  assert.ok(!native.verifyCsrfToken('', csrfCreate('', 'abc')));
});

test('sealed payloads follow the documented format: node opens them, and the addon opens node\'s', async () => {
  const h = new ArraySessionHandler(120);
  const opts = { native: { encryptKeys: [KEY] } };
  const s = new Store('ostro_session', h, null, opts);
  await s.start();
  s.put('card', '4111');
  await s.save();
  const stored = await h.read(s.getId());
  const plain = JSON.parse(open(stored, KEY, s.getId()));
  assert.equal(plain.card, '4111');
  assert.throws(() => open(stored, KEY, 'another id'));

  const id = 'N'.repeat(40);
  await h.write(id, seal(JSON.stringify({ from: 'node' }), KEY, id));
  const t = new Store('ostro_session', h, id, opts);
  await t.start();
  assert.equal(t.get('from'), 'node');
  // Under a previous key.
  const old = 'an old app key that is long enough!!';
  await h.write(id, seal(JSON.stringify({ from: 'old key' }), old, id));
  const rotated = new Store('ostro_session', h, id, { native: { encryptKeys: [KEY, old] } });
  await rotated.start();
  assert.equal(rotated.get('from'), 'old key');
  const current = new Store('ostro_session', h, id, opts);
  await current.start();
  assert.equal(current.get('from'), null);
});

test('cookie-driver values: sealed with the cookie name as associated data, expiry and id inside', async () => {
  const m = new SessionManager({ driver: 'cookie', key: KEY, lifetime: 2 });
  const s = m.createStore();
  await s.start();
  s.put('a', 1);
  const before = Date.now();
  await s.save();
  const v = s.getHandler().outgoing();
  const plain = open(v, KEY, 'ostro_session');
  const [expires, id, ...rest] = plain.split('.');
  assert.equal(id, s.getId());
  assert.equal(JSON.parse(rest.join('.')).a, 1);
  assert.ok(Number(expires) >= before + 120000 && Number(expires) <= Date.now() + 120000);
  assert.throws(() => open(v, KEY, 'other_name'));
  // A value sealed elsewhere in the same format opens.
  const forged = seal(`${Date.now() + 60000}.${'F'.repeat(40)}.{"via":"node"}`, KEY, 'ostro_session');
  const f = m.createStore(null, { cookie: forged });
  assert.equal(f.getId(), 'F'.repeat(40));
  await f.start();
  assert.equal(f.get('via'), 'node');
  const expired = seal(`${Date.now() - 1}.${'E'.repeat(40)}.{"via":"node"}`, KEY, 'ostro_session');
  assert.notEqual(m.createStore(null, { cookie: expired }).getId(), 'E'.repeat(40));
});

test('NativeSession refuses bad token and encryption options', () => {
  assert.throws(() => new native.NativeSession('n', null, { tokenFormat: 'ostro' }), /tokenKey/);
  assert.throws(() => new native.NativeSession('n', null, { tokenFormat: 'md5' }), /tokenFormat/);
  assert.throws(() => new native.NativeSession('n', null, { encryptKeys: [] }), /app key/);
  assert.throws(() => new native.NativeSession('n', null, { encryptKeys: [KEY, ''] }), /empty/);
});
