'use strict';
// Custom JS drivers over a Map, for the contention case: the same store with and without
// compare-and-set, so that a comparison of the two measures only what writeIfUnchanged costs
// through the bridge (persistCas in lib/handler-bridge.js against the plain write).

const kit = require('./kit');

const TOMBSTONE = Symbol('tombstone');
const hop = () => new Promise((resolve) => setImmediate(resolve));

/**
 * A custom driver over a Map, last writer wins (no writeIfUnchanged). `hop`: every method
 * answers after a macrotask, as a network store would, so that concurrent requests interleave;
 * without it every method returns a plain value (the cheapest a JS driver can be, so the bridge's
 * own cost is all there is to measure).
 */
function mapHandler({ hop: async = false } = {}) {
  const { SessionHandlerInterface } = kit.ours();
  class MapSessionHandler extends SessionHandlerInterface {
    constructor() {
      super();
      this.records = new Map();
    }

    read(id) {
      const get = () => {
        const v = this.records.get(id);
        return v === undefined || v === TOMBSTONE ? '' : v;
      };
      return async ? hop().then(get) : get();
    }

    write(id, data) {
      const set = () => { this.records.set(id, data); };
      return async ? hop().then(set) : set();
    }

    destroy(id) {
      // A tombstone that reads as no record and never matches a previousData: a logout sticks.
      const del = () => { this.records.set(id, TOMBSTONE); };
      return async ? hop().then(del) : del();
    }

    gc() {
      return 0;
    }
  }
  return new MapSessionHandler();
}

/** The same driver with compare-and-set (writeIfUnchanged), as __test__/support/http-drivers.js has it. */
function mapCasHandler(options = {}) {
  const h = mapHandler(options);
  const async = !!options.hop;
  h.writeIfUnchanged = (id, data, previousData) => {
    const cas = () => {
      const cur = h.records.get(id);
      if (cur === TOMBSTONE || (cur ?? '') !== previousData) return false;
      h.records.set(id, data);
      return true;
    };
    return async ? hop().then(cas) : cas();
  };
  return h;
}

module.exports = { mapHandler, mapCasHandler };
