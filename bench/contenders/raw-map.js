'use strict';
// The in-process limit: a Map of JSON strings, parse + stringify per cycle.
const kit = require('../lib/kit');
const { makeSession } = require('../lib/payload');

module.exports = {
  id: 'raw-map', label: 'raw Map + JSON (in-process limit)', kind: 'raw', family: 'array',
  store() {
    const map = new Map();
    const read = async (id) => map.get(id) || '';
    const write = async (id, data) => { map.set(id, data); };
    return {
      seed: async (ids) => ids.forEach((id, k) => map.set(id, JSON.stringify(makeSession(k)))),
      async cycle(id, i) {
        const o = JSON.parse(await read(id));
        o.counter = (o.counter || 0) + 1;
        o.lastSeen = i;
        await write(id, JSON.stringify(o));
      },
      check: async (id) => JSON.parse(map.get(id)),
      close() {},
    };
  },
  http() {
    // The no-session baseline: the same server and response, no session at all.
    return { listener: (req, res) => kit.reply(res, 0), close() {} };
  },
};
