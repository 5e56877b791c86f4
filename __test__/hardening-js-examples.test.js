'use strict';
// Issue 10: the README's custom-driver example passes the conformance kit. The example lives in
// examples/mongo-session-handler.js and the README shows that file verbatim (checked below); it
// runs here on an in-memory collection with the `mongodb` API subset it uses. The README's
// earlier version never expired records on read and failed the expiry checks.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const sessionHandlerConformance = require('../lib/testing');
const { MongoSessionHandler } = require('../examples/mongo-session-handler');
const { FakeCollection } = require('../examples/fake-mongo-collection');

const ROOT = path.join(__dirname, '..');

test('the README shows examples/mongo-session-handler.js verbatim', () => {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Custom drivers'));
  const block = /```js\n([\s\S]*?)```/.exec(section)[1];
  const file = fs.readFileSync(path.join(ROOT, 'examples', 'mongo-session-handler.js'), 'utf8');
  assert.equal(block, file);
});

test('an expired record reads as empty before any gc, and touch() does not revive it', async () => {
  const collection = new FakeCollection();
  const h = new MongoSessionHandler(collection, { minutes: 1 });
  await h.write('a'.repeat(40), '{"user":"alice"}');
  assert.equal(await h.read('a'.repeat(40)), '{"user":"alice"}');
  // Age the record past the lifetime without waiting: its write time moves back 61 s.
  collection.docs.get('a'.repeat(40)).at = new Date(Date.now() - 61 * 1000);
  assert.equal(await h.read('a'.repeat(40)), '');
  assert.equal(await h.touch('a'.repeat(40)), false);
  assert.equal(await h.gc(60), 1);
  assert.equal(collection.docs.size, 0);
});

sessionHandlerConformance(({ minutes }) => new MongoSessionHandler(new FakeCollection(), { minutes }), { name: 'MongoSessionHandler (README example, in-memory collection)' });
