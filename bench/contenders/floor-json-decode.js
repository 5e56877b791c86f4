'use strict';
// Floor: decoding the 1 KB payload, in JS (JSON.parse) and in the engine (NativeSession.load,
// which is serde decode + apply), as one "cycle" each so they print beside the others.
const kit = require('../lib/kit');

module.exports = {
  id: 'floor-json-decode', label: 'floor: JSON.parse of the payload (JS)', kind: 'floor', family: 'json',
  store() {
    let sink = 0;
    return {
      seed: async () => {},
      cycle: async () => { sink += JSON.parse(kit.SESSION_JSON).counter; },
      check: async () => JSON.parse(kit.SESSION_JSON),
      close() { return sink; },
    };
  },
};
