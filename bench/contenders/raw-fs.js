'use strict';
// The fs.promises limit: readFile, then writeFile to a temp file and rename it over (atomic, no fsync).
const fs = require('node:fs');
const fsp = require('node:fs/promises');
const path = require('node:path');
const kit = require('../lib/kit');
const { makeSession } = require('../lib/payload');

module.exports = {
  id: 'raw-fs', label: 'raw fs.promises read + write tmp + rename', kind: 'raw', family: 'file',
  store(ctx) {
    const dir = path.join(ctx.dir, 'rawfs');
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    let seq = 0;
    const write = async (id, data) => {
      const tmp = path.join(dir, `.${id}.${process.pid}.${seq++}.tmp`);
      await fsp.writeFile(tmp, data, { mode: 0o600 });
      await fsp.rename(tmp, path.join(dir, id));
    };
    return {
      seed: (ids) => kit.eachLimit(ids, 16, (id, k) => write(id, JSON.stringify(makeSession(k)))),
      async cycle(id, i) {
        const o = JSON.parse(await fsp.readFile(path.join(dir, id), 'utf8'));
        o.counter = (o.counter || 0) + 1;
        o.lastSeen = i;
        await write(id, JSON.stringify(o));
      },
      check: async (id) => JSON.parse(await fsp.readFile(path.join(dir, id), 'utf8')),
      close() {},
    };
  },
};
