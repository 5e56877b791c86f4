'use strict';
// connect-redis 9 on node-redis 5.
const kit = require('../lib/kit');

async function make(ctx) {
  const { RedisStore } = kit.need('connect-redis');
  const { createClient } = kit.need('redis');
  const client = createClient({ url: ctx.redisUrl });
  client.on('error', () => {});
  await client.connect();
  const store = new RedisStore({ client, prefix: 'cr:', ttl: kit.LIFETIME_MIN * 60 });
  return { store, close: () => client.quit() };
}

module.exports = {
  id: 'peer-connect-redis', label: 'connect-redis', kind: 'peer', family: 'redis', needs: ['redis'],
  async store(ctx) {
    const { store, close } = await make(ctx);
    return kit.expressCycles(store, { close });
  },
  async http(ctx) {
    const { store, close } = await make(ctx);
    return kit.expressHttp(store, { close });
  },
};
