'use strict';
// express-session's MemoryStore (JSON strings in an object).
const kit = require('../lib/kit');

module.exports = {
  id: 'peer-memorystore', label: 'express-session MemoryStore', kind: 'peer', family: 'array',
  store() {
    const { MemoryStore } = kit.need('express-session');
    return kit.expressCycles(new MemoryStore());
  },
  http() {
    const { MemoryStore } = kit.need('express-session');
    return kit.expressHttp(new MemoryStore());
  },
};
