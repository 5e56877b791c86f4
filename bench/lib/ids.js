'use strict';
// Session ids for the benchmark: the k-th id is always the same 40 characters of [A-Za-z0-9], so
// a worker can address any of 1,000,000 stored sessions without receiving a list of them.

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** The k-th benchmark id (deterministic, uniformly spread characters). */
function idOf(k) {
  // mulberry32 seeded with k: cheap and well spread, so no two ids share long prefixes.
  let a = (k * 0x9e3779b1 + 0x6d2b79f5) >>> 0;
  // Char codes first, then one flat string: `s += c` would build a 40-node rope that costs
  // ~1.3 KB per id in any JS store that keeps the key unflattened (a Map does).
  const codes = new Array(40);
  for (let i = 0; i < 40; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    t = (t ^ (t >>> 14)) >>> 0;
    codes[i] = ALNUM.charCodeAt(t % 62);
  }
  return String.fromCharCode.apply(null, codes);
}

module.exports = { idOf };
