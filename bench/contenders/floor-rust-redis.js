'use strict';
// Floor: our Redis driver's GET + SET EX through the addon, without the engine (no JSON work).
const kit = require('../lib/kit');

module.exports = {
  id: 'floor-rust-redis', label: 'floor: raw Rust GET + SET EX (addon)', kind: 'floor', family: 'redis', needs: ['redis'],
  store(ctx) {
    const RedisSessionHandler = kit.ourDriver('redis', 'RedisSessionHandler');
    const h = new RedisSessionHandler(ctx.redisUrl, { prefix: 'floor:', minutes: kit.LIFETIME_MIN });
    const n = h._native || h;
    return {
      seed: (ids) => kit.eachLimit(ids, 64, (id) => n.write(id, kit.SESSION_JSON)),
      async cycle(id) { const raw = await n.read(id); await n.write(id, raw); },
      check: async (id) => JSON.parse(await n.read(id)),
      close: () => (typeof h.close === 'function' ? h.close() : undefined),
    };
  },
};
