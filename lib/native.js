'use strict';
// The one entry to the native addon for the rest of lib/: a prebuilt `@ostro/session-<platform>`
// package, or a local `npm run build` in a checkout (search order and errors: ./native-path.js).
const { loadNative } = require('./native-path');

module.exports = loadNative().binding;
