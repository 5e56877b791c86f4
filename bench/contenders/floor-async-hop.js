'use strict';
// Floor: one native async call that hops to the blocking pool and back (file read of a missing
// id: one failed open). The least any off-thread operation can cost.
const path = require('node:path');
const kit = require('../lib/kit');
const { idOf } = require('../lib/ids');

module.exports = {
  id: 'floor-async-hop', label: 'floor: native async hop (file read, missing id)', kind: 'floor', family: 'file',
  store(ctx) {
    const { FileSessionHandler } = kit.ours();
    const n = new FileSessionHandler(path.join(ctx.dir, 'hop'), kit.LIFETIME_MIN)._native;
    const missing = idOf(999999999);
    return {
      seed: async () => {},
      cycle: () => n.read(missing),
      check: async () => ({ user: { name: 'Ada Lovelace' }, counter: 1 }),
      close() {},
    };
  },
};
