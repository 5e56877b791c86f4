'use strict';
// A custom JS driver through the bridge: the project's own Map-based example
// (examples/memory-session-handler.js, plain-value methods as in the OstroJS docs), or, before it
// exists, the same thing inline with async methods.
const fs = require('node:fs');
const path = require('node:path');
const kit = require('../lib/kit');

function mapHandler() {
  const example = path.join(kit.ROOT, 'examples', 'memory-session-handler.js');
  if (fs.existsSync(example)) {
    const { MemorySessionHandler } = require(example);
    return new MemorySessionHandler({ minutes: kit.LIFETIME_MIN });
  }
  const { SessionHandlerInterface } = kit.ours();
  class MapSessionHandler extends SessionHandlerInterface {
    constructor() { super(); this.map = new Map(); }
    async read(id) { return this.map.get(id) || ''; }
    async write(id, data) { this.map.set(id, data); }
    async destroy(id) { this.map.delete(id); }
    async gc() { return 0; }
  }
  return new MapSessionHandler();
}

module.exports = {
  id: 'ours-bridge', label: '@ostro/session JS Map handler (bridge)', kind: 'ours', family: 'bridge',
  store: () => kit.storeCycles(mapHandler()),
  http() {
    const h = mapHandler();
    return kit.ourHttp({ driver: 'jsmap' }, { extend: { name: 'jsmap', factory: () => h } });
  },
};
