'use strict';
// Floor: our file driver's atomic write alone (temp file, write, rename), no read, no engine.
const path = require('node:path');
const kit = require('../lib/kit');

module.exports = {
  id: 'floor-atomic-write', label: 'floor: raw atomic file write (addon)', kind: 'floor', family: 'file',
  store(ctx) {
    const { FileSessionHandler } = kit.ours();
    const n = new FileSessionHandler(path.join(ctx.dir, 'aw'), kit.LIFETIME_MIN)._native;
    return {
      seed: (ids) => kit.eachLimit(ids, 16, (id) => n.write(id, kit.SESSION_JSON)),
      cycle: (id) => n.write(id, kit.SESSION_JSON),
      check: async (id) => JSON.parse(await n.read(id)),
      close() {},
    };
  },
};
