'use strict';
// Our array driver through the express-session API (`manager.middleware({ api: 'express-session' })`),
// running express-session's route unchanged: the cost of the compatibility mode, HTTP case only.
const kit = require('../lib/kit');

module.exports = {
  id: 'ours-array-express-session', label: '@ostro/session array, express-session API', kind: 'ours', family: 'array', api: 'express-session',
  http: () => kit.expressApiHttp({ driver: 'array' }),
};
