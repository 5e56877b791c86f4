'use strict';
const path = require('node:path');

/** The file name napi-rs gives the addon on this platform (`session.linux-x64-gnu.node`). */
function addonPath(root) {
  let abi = '';
  if (process.platform === 'linux') {
    const report = typeof process.report?.getReport === 'function' ? process.report.getReport() : null;
    abi = report && report.header && report.header.glibcVersionRuntime ? '-gnu' : '-musl';
  } else if (process.platform === 'win32') {
    abi = '-msvc';
  }
  return path.join(root, `session.${process.platform}-${process.arch}${abi}.node`);
}

module.exports = { addonPath };
