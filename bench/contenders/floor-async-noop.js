'use strict';
// Floor: one native call returning a Promise that the addon resolves in place (array touch):
// the cost of a Promise crossing the boundary, with no thread hop and no I/O.
const kit = require('../lib/kit');

module.exports = {
  id: 'floor-async-noop', label: 'floor: native Promise, resolved in place (array touch)', kind: 'floor', family: 'array',
  store() {
    const { ArraySessionHandler } = kit.ours();
    const h = new ArraySessionHandler(kit.LIFETIME_MIN);
    const n = h._native;
    return {
      seed: (ids) => kit.eachLimit(ids, 64, (id) => n.write(id, kit.SESSION_JSON)),
      cycle: (id) => n.touch(id),
      check: async (id) => JSON.parse(await n.read(id)),
      close() {},
    };
  },
};
