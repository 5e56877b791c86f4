'use strict';
// Floor: the engine decoding the payload into a session (NativeSession.load: serde decode + apply).
const kit = require('../lib/kit');

module.exports = {
  id: 'floor-engine-decode', label: 'floor: engine decode of the payload (Rust)', kind: 'floor', family: 'json',
  store() {
    const { Store, ArraySessionHandler } = kit.ours();
    const s = new Store(kit.COOKIE, new ArraySessionHandler(kit.LIFETIME_MIN));
    return {
      seed: async () => {},
      cycle: async () => { s._s.load(kit.SESSION_JSON); },
      check: async () => { s._s.load(kit.SESSION_JSON); return s.all(); },
      close() {},
    };
  },
};
