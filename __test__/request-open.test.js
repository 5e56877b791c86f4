'use strict';
// The open path's one native crossing (src/request.rs -> cookie_header::signed_session_id)
// against the JS steps it replaced (readCookie, then unsignCookie, then the id checks), on the
// same headers: what the manager reads from a Cookie header must not change.
const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const native = require('../lib/native');
const { readCookie } = require('../lib/cookies');

const KEY = 'base64:dGhpcyBpcyBhIHRlc3Qga2V5IG9mIDMyIGJ5dGVzIQ==';
const OLD = 'base64:b2xkIGtleSBvZiB0aGlydHktdHdvIGJ5dGVzIGxvbmc=';
const NAME = 'ostro_session';

function sign(id, key = KEY) {
  return `s:${id}.${crypto.createHmac('sha256', key).update(id).digest('base64').replace(/=+$/, '')}`;
}

// What lib/manager.js did before the crossing.
function viaJs(header, name, keys) {
  const value = readCookie(header, name);
  if (value === null || !value.startsWith('s:')) return null;
  const id = native.unsignCookie(value, keys);
  if (id === null || id === undefined) return null;
  if (native.isValidId(id)) return { id, legacy: false };
  if (/^[A-Za-z0-9_-]{40}$/.test(id)) return { id, legacy: true };
  return null;
}

test('signedSessionId reads what readCookie + unsignCookie + the id checks read', () => {
  const id = 'a'.repeat(20) + 'B'.repeat(20);
  const legacy = 'abc-_'.repeat(8);
  const enc = (v) => encodeURIComponent(v);
  const headers = [
    '',
    'other=1',
    `${NAME}=${enc(sign(id))}`,
    `a=1; ${NAME}=${enc(sign(id))}; b=2`,
    `  ${NAME} = ${enc(sign(id))} `,
    `${NAME}="${enc(sign(id))}"`,
    `${NAME}=${sign(id)}`, // unencoded
    `${NAME}=${enc(sign(id, OLD))}`, // a previous key
    `${NAME}=${enc(sign(id, 'base64:' + 'x'.repeat(44)))}`, // no key of ours
    `${NAME}=${enc(sign(id))}; ${NAME}=${enc(sign(id))}`, // duplicate
    `${NAME}=${id}`, // unsigned
    `${NAME}=${enc(sign(legacy))}`, // 1.x id
    `${NAME}=${enc(sign('short'))}`, // not an id
    `${NAME}=%E0%A4%A`, // malformed escape
    `${NAME}=${enc(sign(id)).slice(0, -2)}`, // tampered signature
    `${NAME.toUpperCase()}=${enc(sign(id))}`, // names are case-sensitive
    `x${NAME}=${enc(sign(id))}`,
    `;;;${NAME}=${enc(sign(id))};;;`,
    `${'k=v; '.repeat(800)}${NAME}=${enc(sign(id))}`, // a 4 KB header
    `caf\u00e9=1; ${NAME}=${enc(sign(id))}`, // latin1 bytes as Node hands them over
  ];
  for (const h of headers) {
    for (const keys of [[KEY], [KEY, OLD]]) {
      const got = native.signedSessionId(h, native.registerSessionCookie(NAME, keys));
      assert.deepEqual(got === undefined ? null : got && { id: got.id, legacy: got.legacy }, viaJs(h, NAME, keys), `header ${JSON.stringify(h.slice(0, 80))} keys ${keys.length}`);
    }
  }
  // The same name and keys share one handle; an unknown handle reads nothing.
  assert.equal(native.registerSessionCookie(NAME, [KEY]), native.registerSessionCookie(NAME, [KEY]));
  assert.notEqual(native.registerSessionCookie(NAME, [KEY]), native.registerSessionCookie(NAME, [KEY, OLD]));
  assert.equal(native.signedSessionId(`${NAME}=${encodeURIComponent(sign('a'.repeat(40)))}`, 4294967295), null);
});
