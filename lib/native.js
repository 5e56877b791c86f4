'use strict';
// Loads the addon built by `npm install` (scripts/install.js).
const path = require('node:path');
const { addonPath } = require('./native-path');

const file = addonPath(path.resolve(__dirname, '..'));
let native;
try {
  native = require(file);
} catch (err) {
  const e = new Error(`@ostro/session: the native addon ${path.basename(file)} could not be loaded; run npm install (it needs cargo) to build it. Cause: ${err.message}`);
  e.code = 'ERR_SESSION_NATIVE';
  e.cause = err;
  throw e;
}
module.exports = native;
