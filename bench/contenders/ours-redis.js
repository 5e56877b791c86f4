'use strict';
// Our Redis driver: the Rust redis crate (ConnectionManager), no JS client involved.
const kit = require('../lib/kit');
const bulk = require('../lib/bulk');

module.exports = {
  id: 'ours-redis', label: '@ostro/session redis', kind: 'ours', family: 'redis', needs: ['redis'],
  store(ctx) {
    const RedisSessionHandler = kit.ourDriver('redis', 'RedisSessionHandler');
    const inst = kit.storeCycles(new RedisSessionHandler(ctx.redisUrl, { prefix: 'ours:', minutes: kit.LIFETIME_MIN }));
    inst.bulk = (count) => bulk.redis(ctx.redisUrl, 'ours:', count, kit.LIFETIME_MIN * 60);
    return inst;
  },
  http: (ctx) => kit.ourHttp({ driver: 'redis', connection: ctx.redisUrl }),
};
