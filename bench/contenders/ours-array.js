'use strict';
// Our in-process array driver (Rust HashMap behind the engine).
const kit = require('../lib/kit');

module.exports = {
  id: 'ours-array', label: '@ostro/session array', kind: 'ours', family: 'array',
  store() {
    const { ArraySessionHandler } = kit.ours();
    return kit.storeCycles(new ArraySessionHandler(kit.LIFETIME_MIN));
  },
  http: () => kit.ourHttp({ driver: 'array' }),
};
