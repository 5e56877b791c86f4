'use strict';
// session-file-store (write-file-atomic with fsync, retried reads).
const path = require('node:path');
const kit = require('../lib/kit');

function make(dir) {
  const session = kit.need('express-session');
  const FileStore = kit.need('session-file-store')(session);
  return new FileStore({ path: dir, ttl: kit.LIFETIME_MIN * 60, reapInterval: -1, logFn() {} });
}

module.exports = {
  id: 'peer-file-store', label: 'session-file-store', kind: 'peer', family: 'file',
  store: (ctx) => kit.expressCycles(make(path.join(ctx.dir, 'sfs'))),
  http: (ctx) => kit.expressHttp(make(path.join(ctx.dir, 'sfs-http'))),
};
