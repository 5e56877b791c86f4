'use strict';
// Floor for the HTTP case: the no-session server plus one native Promise that the addon resolves
// in place (an array touch), so the distance from our middleware to that limit shows.
const kit = require('../lib/kit');

module.exports = {
  id: 'floor-http-resolve', label: 'floor: HTTP with a session whose whole cost is one in-place resolve', kind: 'floor', family: 'array',
  async http() {
    const { ArraySessionHandler } = kit.ours();
    const n = new ArraySessionHandler(kit.LIFETIME_MIN)._native;
    await n.write(kit.SENTINEL_ID, kit.SESSION_JSON);
    return {
      listener(req, res) {
        n.touch(kit.SENTINEL_ID).then(() => kit.reply(res, 0), (err) => kit.reply(res, String(err)));
      },
      close() {},
    };
  },
};
