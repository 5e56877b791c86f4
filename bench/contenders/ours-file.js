'use strict';
// Our file driver: one file per session, atomic tmp + rename, all I/O off the JS thread.
const path = require('node:path');
const kit = require('../lib/kit');
const bulk = require('../lib/bulk');

module.exports = {
  id: 'ours-file', label: '@ostro/session file', kind: 'ours', family: 'file',
  store(ctx) {
    const { FileSessionHandler } = kit.ours();
    const dir = path.join(ctx.dir, 'sessions');
    const inst = kit.storeCycles(new FileSessionHandler(dir, kit.LIFETIME_MIN));
    inst.bulk = (count, workingSet) => bulk.files(dir, count, workingSet);
    return inst;
  },
  http: (ctx) => kit.ourHttp({ driver: 'file', files: path.join(ctx.dir, 'http-sessions'), lottery: [2, 100] }),
};
