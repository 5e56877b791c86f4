'use strict';
// Our Memcached driver (Rust client).
const kit = require('../lib/kit');

module.exports = {
  id: 'ours-memcached', label: '@ostro/session memcached', kind: 'ours', family: 'memcached', needs: ['memcached'],
  store(ctx) {
    const MemcachedSessionHandler = kit.ourDriver('memcached', 'MemcachedSessionHandler');
    return kit.storeCycles(new MemcachedSessionHandler(ctx.memcachedAddr, { prefix: 'ours:', minutes: kit.LIFETIME_MIN }));
  },
  http: (ctx) => kit.ourHttp({ driver: 'memcached', connection: ctx.memcachedAddr }),
};
