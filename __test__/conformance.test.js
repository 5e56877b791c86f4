'use strict';
// The driver conformance kit (`@ostro/session/testing`) run against the built-in drivers and the
// two example JS drivers in examples/. The Redis and Memcached drivers run the same kit against
// real servers in __test__/redis.test.js and __test__/memcached.test.js (started by
// support/servers.js), next to their outage tests, so their servers start once.
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

if (has('cookie')) {
  const { CookieSessionHandler } = require('../lib/drivers/cookie');
  const KEY = 'base64:dGhpcyBpcyBhIHRlc3Qga2V5IG9mIDMyIGJ5dGVzIQ==';
  const MAX_BYTES = 4096;

  /**
   * The cookie driver seen through a cookie jar: each request builds its handler from the cookie
   * the client holds for that session, and the jar keeps what the response sends back (as a
   * browser would), so the kit's many sessions each live in their own cookie.
   */
  class CookieJarHandler {
    constructor(minutes) {
      this.driver = new CookieSessionHandler({ name: 'conformance', keys: [KEY], minutes, maxBytes: MAX_BYTES });
      this.jar = new Map();
    }
    request(id) {
      return this.driver.forRequest(this.jar.get(id));
    }
    keep(id, req) {
      const out = req.outgoing();
      if (out === '') this.jar.delete(id);
      else if (out !== null) this.jar.set(id, out);
    }
    async read(id) {
      return this.request(id).read(id);
    }
    async write(id, data, meta) {
      const req = this.request(id);
      await req.write(id, data, meta);
      this.keep(id, req);
    }
    async destroy(id) {
      const req = this.request(id);
      await req.destroy(id);
      this.keep(id, req);
    }
    async touch(id) {
      const req = this.request(id);
      const found = await req.touch(id);
      this.keep(id, req);
      return found;
    }
    gc(lifetimeSeconds) {
      return this.driver.gc(lifetimeSeconds);
    }
  }

  sessionHandlerConformance(({ minutes }) => new CookieJarHandler(minutes), {
    name: 'CookieSessionHandler (Rust) through a cookie jar',
    payloadBytes: 2048, // a sealed 2 KB payload still fits the 4 KB cookie
    gcRemoves: false, // expired cookies die in the browser; the server has nothing to collect
  });
}

if (has('sqlite')) {
  const { SqliteSessionHandler } = require('../lib/drivers/sqlite');
  const sqliteBase = tmpDir('ostro-conformance-sqlite-');
  sessionHandlerConformance(({ minutes }) => new SqliteSessionHandler(path.join(sqliteBase, `s${n++}.db`), { minutes }), { name: 'SqliteSessionHandler (Rust)' });
}
