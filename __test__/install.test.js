'use strict';
// scripts/install.js, run by `npm install`: no rebuild when the addon loads, and one clear line
// when cargo is missing.
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const script = path.join(__dirname, '..', 'scripts', 'install.js');

test('an addon that is present and loads is not rebuilt', () => {
  const r = spawnSync(process.execPath, [script], { env: { ...process.env, PATH: '/nonexistent' }, encoding: 'utf8', timeout: 30000 });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout + r.stderr, '', 'nothing is built or printed');
});

test('without cargo the install fails with one line saying cargo is needed', () => {
  const r = spawnSync(process.execPath, [script], { env: { ...process.env, PATH: '/nonexistent', OSTRO_SESSION_FORCE_BUILD: '1' }, encoding: 'utf8', timeout: 30000 });
  assert.equal(r.status, 1);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0], /cargo is needed/);
});
