'use strict';
// Our file driver with `durable: true`: the file and the directory are fsynced on every write,
// for power-loss safety. Beside `ours-file`, the row shows what that safety costs per cycle.
const path = require('node:path');
const kit = require('../lib/kit');

module.exports = {
  id: 'ours-file-durable', label: '@ostro/session file (durable: fsync)', kind: 'ours', family: 'file',
  store(ctx) {
    const { FileSessionHandler } = kit.ours();
    const dir = path.join(ctx.dir, 'durable-sessions');
    return kit.storeCycles(new FileSessionHandler(dir, kit.LIFETIME_MIN, { durable: true }));
  },
};
