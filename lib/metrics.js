'use strict';
// Counters and latency histograms per driver and operation (load, save, destroy, gc), kept in
// plain arrays: recording is two additions and a short scan of the bucket bounds, with no
// allocation. `manager.metrics()` returns a snapshot; examples/prometheus.js renders it in the
// Prometheus text format.

/** Upper bounds of the latency buckets, in milliseconds (a last bucket holds the rest). */
const BOUNDS_MS = Object.freeze([0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000]);
const OPERATIONS = Object.freeze(['load', 'save', 'destroy', 'gc']);
const OUTCOMES = Object.freeze(['written', 'touched', 'dropped']);

class Operation {
  constructor() {
    this.count = 0;
    this.errors = 0;
    this.sumMs = 0;
    this.buckets = new Float64Array(BOUNDS_MS.length + 1);
  }

  record(ms, failed) {
    this.count++;
    if (failed) this.errors++;
    this.sumMs += ms;
    let i = 0;
    while (i < BOUNDS_MS.length && ms > BOUNDS_MS[i]) i++;
    this.buckets[i]++;
  }

  snapshot() {
    let cumulative = 0;
    const buckets = BOUNDS_MS.map((le, i) => {
      cumulative += this.buckets[i];
      return { le, count: cumulative };
    });
    buckets.push({ le: Infinity, count: cumulative + this.buckets[BOUNDS_MS.length] });
    return { count: this.count, errors: this.errors, sumMs: this.sumMs, buckets };
  }
}

/** One driver's recorder (what a Store holds). */
class DriverMetrics {
  constructor(driver) {
    this.driver = driver;
    this.ops = { load: new Operation(), save: new Operation(), destroy: new Operation(), gc: new Operation() };
    this.saves = { written: 0, touched: 0, dropped: 0 };
  }

  /** Records a save's outcome ('written', 'touched' or 'dropped'). */
  outcome(o) {
    if (o === 'written' || o === 'touched' || o === 'dropped') this.saves[o]++;
  }

  snapshot() {
    const ops = {};
    for (const op of OPERATIONS) ops[op] = this.ops[op].snapshot();
    return { operations: ops, saves: { ...this.saves } };
  }
}

/** Every driver's recorder of one manager. */
class Metrics {
  constructor() {
    this.drivers = new Map();
  }

  /** The recorder of `driver`, created on first use. */
  of(driver) {
    let d = this.drivers.get(driver);
    if (d === undefined) {
      d = new DriverMetrics(driver);
      this.drivers.set(driver, d);
    }
    return d;
  }

  /**
   * A snapshot: `{ drivers: { [driver]: { operations: { load|save|destroy|gc: { count, errors,
   * sumMs, buckets: [{ le, count }] } }, saves: { written, touched, dropped } } } }`; bucket
   * counts are cumulative (`le` in ms, the last is Infinity), as Prometheus histograms are.
   */
  snapshot() {
    const drivers = {};
    for (const [name, d] of this.drivers) drivers[name] = d.snapshot();
    return { drivers };
  }
}

module.exports = { Metrics, DriverMetrics, BOUNDS_MS, OPERATIONS, OUTCOMES };
