'use strict';
// Issue 10: `npm run bench -- --quick` overwrote the tracked bench/results/latest.*. Only a full
// run of every case writes there; quick and partial runs go to the temp directory. The bench
// itself is not run: its output path is a pure function of the arguments.
const test = require('node:test');
const assert = require('node:assert/strict');
const os = require('node:os');
const path = require('node:path');
const { outputTarget } = require('../bench/run');

const BENCH = path.join(__dirname, '..', 'bench');
const ALL = ['store', 'http', 'fastify', 'memory', 'gc', 'scale'];

test('a full run writes bench/results/latest; --quick and --only never do', () => {
  assert.deepEqual(outputTarget({ quick: false, only: [], wanted: ALL }), { dir: path.join(BENCH, 'results'), base: 'latest' });
  const runs = [
    [{ quick: true, only: [], wanted: ALL }, 'ostro-bench-quick'],
    [{ quick: false, only: ['http'], wanted: ['http'] }, 'ostro-bench-http'],
    [{ quick: true, only: ['store', 'gc'], wanted: ['store', 'gc'] }, 'ostro-bench-quick-store-gc'],
    // --only naming every case is still a partial invocation, not the result of record.
    [{ quick: false, only: ALL, wanted: ALL }, `ostro-bench-${ALL.join('-')}`],
  ];
  for (const [opts, base] of runs) {
    const out = outputTarget(opts);
    assert.equal(out.dir, os.tmpdir(), JSON.stringify(opts));
    assert.equal(out.base, base);
    assert.notEqual(path.resolve(out.dir), path.resolve(BENCH, 'results'));
  }
});
