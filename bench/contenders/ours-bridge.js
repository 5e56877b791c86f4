'use strict';
// A custom JS handler (a Map, async methods, the shape of the docs' example) through the bridge.
const kit = require('../lib/kit');

function mapHandler() {
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
