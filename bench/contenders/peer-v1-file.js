'use strict';
// The JS @ostro/session 1.x file adapter, driven through its callback API (it overwrites the
// session file in place: no temp file, no fsync).
const path = require('node:path');
const kit = require('../lib/kit');
const { makeSession } = require('../lib/payload');

module.exports = {
  id: 'peer-v1-file', label: '@ostro/session 1.x file adapter', kind: 'peer', family: 'file',
  store(ctx) {
    const File = kit.need('ostro-session-v1/adapter/file', '@ostro/session 1.x (npm alias ostro-session-v1)');
    const a = new File(path.join(ctx.dir, 'v1'));
    const read = (id) => new Promise((resolve, reject) => a.read(id, (err, o) => (err ? reject(err) : resolve(o))));
    const write = (id, o) => new Promise((resolve, reject) => a.write(id, o, (err) => (err ? reject(err) : resolve())));
    return {
      seed: (ids) => kit.eachLimit(ids, 16, (id, k) => write(id, makeSession(k))),
      async cycle(id, i) {
        const o = await read(id);
        o.counter = (o.counter || 0) + 1;
        o.lastSeen = i;
        await write(id, o);
      },
      check: read,
      close() {},
    };
  },
};
