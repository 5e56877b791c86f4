'use strict';
// The driver conformance kit (`@ostro/session/testing`) run against every built-in driver that
// stores sessions server-side and against the two example JS drivers in examples/.
const fs = require('node:fs');
const path = require('node:path');
const sessionHandlerConformance = require('../lib/testing');
const { ArraySessionHandler, FileSessionHandler } = require('..');
const { MemorySessionHandler } = require('../examples/memory-session-handler');
const { JsonFileSessionHandler } = require('../examples/json-file-session-handler');
const { tmpDir } = require('./support/tmp');

let n = 0;
const freshDir = (base) => path.join(base, `h${n++}`);

sessionHandlerConformance(({ minutes }) => new ArraySessionHandler(minutes), { name: 'ArraySessionHandler (Rust)' });

const fileBase = tmpDir('ostro-conformance-file-');
sessionHandlerConformance(({ minutes }) => new FileSessionHandler(freshDir(fileBase), minutes), { name: 'FileSessionHandler (Rust)' });

sessionHandlerConformance(({ minutes }) => new MemorySessionHandler({ minutes }), { name: 'MemorySessionHandler (examples/, plain values)' });

const jsonBase = tmpDir('ostro-conformance-json-');
sessionHandlerConformance(({ minutes }) => new JsonFileSessionHandler(freshDir(jsonBase), { minutes }), { name: 'JsonFileSessionHandler (examples/, fs.promises)' });

// Drivers that live in lib/drivers/ run here once they exist; each file is required directly so
// a broken driver fails loudly instead of being left out.
const drivers = path.join(__dirname, '..', 'lib', 'drivers');
const has = (name) => fs.existsSync(path.join(drivers, `${name}.js`));

if (has('sqlite')) {
  const { SqliteSessionHandler } = require('../lib/drivers/sqlite');
  const sqliteBase = tmpDir('ostro-conformance-sqlite-');
  sessionHandlerConformance(({ minutes }) => new SqliteSessionHandler(path.join(sqliteBase, `s${n++}.db`), { minutes }), { name: 'SqliteSessionHandler (Rust)' });
}
