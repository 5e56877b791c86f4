'use strict';
// The Node Redis client limit: node-redis 5 GET + SET EX, JSON in JS.
const kit = require('../lib/kit');
const { makeSession } = require('../lib/payload');

module.exports = {
  id: 'raw-redis', label: 'raw node-redis GET + SET EX', kind: 'raw', family: 'redis', needs: ['redis'],
  async store(ctx) {
    const { createClient } = kit.need('redis');
    const client = createClient({ url: ctx.redisUrl });
    client.on('error', () => {});
    await client.connect();
    const ttl = kit.LIFETIME_MIN * 60;
    return {
      seed: (ids) => kit.eachLimit(ids, 64, (id, k) => client.set(`raw:${id}`, JSON.stringify(makeSession(k)), { EX: ttl })),
      async cycle(id, i) {
        const o = JSON.parse(await client.get(`raw:${id}`));
        o.counter = (o.counter || 0) + 1;
        o.lastSeen = i;
        await client.set(`raw:${id}`, JSON.stringify(o), { EX: ttl });
      },
      check: async (id) => JSON.parse(await client.get(`raw:${id}`)),
      close: () => client.quit(),
    };
  },
};
