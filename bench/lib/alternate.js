'use strict';
// Two sides of one comparison measured side by side in one process (a plain save and a
// compare-and-set save, the user index off and on, standalone redis and a cluster): windows
// alternate A B A B … and every window is compared with the next one, of the other side.

const { median } = require('./stats');

/**
 * Runs `a()` and `b()` (each one measurement window resolving to a rate, cycles/s) alternately,
 * A B A B … for `rounds` rounds, after one unrecorded warm-up window of each. Each window is
 * compared with the next: the 2·rounds − 1 adjacent pairs are half A-then-B and half
 * B-then-A, so neither which side goes first nor a slow drift of a shared machine favours one
 * side, and a stall that hits one window spoils at most two of the ratios, which the median
 * then drops.
 * @param {() => Promise<number>} a
 * @param {() => Promise<number>} b
 * @param {{ rounds: number, warm?: boolean }} options
 * @returns {Promise<{ a: number[], b: number[], ratios: number[], ratio: number, aMedian: number, bMedian: number }>}
 *   `ratios` are a/b per adjacent pair; `ratio` is their median
 */
async function alternate(a, b, { rounds, warm = true }) {
  if (warm) {
    await a();
    await b();
  }
  const windows = [];
  for (let r = 0; r < rounds; r++) {
    windows.push({ side: 'a', rate: await a() });
    windows.push({ side: 'b', rate: await b() });
  }
  const ratios = [];
  for (let i = 0; i + 1 < windows.length; i++) {
    const [x, y] = windows[i].side === 'a' ? [windows[i], windows[i + 1]] : [windows[i + 1], windows[i]];
    ratios.push(x.rate / y.rate);
  }
  const as = windows.filter((w) => w.side === 'a').map((w) => w.rate);
  const bs = windows.filter((w) => w.side === 'b').map((w) => w.rate);
  return { a: as, b: bs, ratios, ratio: median(ratios), aMedian: median(as), bMedian: median(bs) };
}

module.exports = { alternate };
