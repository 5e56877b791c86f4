'use strict';
// Describes the native addon under test, so that a debug build (10-50× slower) is never
// mistaken for a release in the results.

const fs = require('node:fs');
const path = require('node:path');

/** `{ file, bytes, debug, text }` for the addon of the package at `root`. */
function describeAddon(root) {
  let file;
  try {
    file = require(path.join(root, 'lib', 'native-path.js')).addonPath(root);
  } catch {
    file = path.join(root, `session.${process.platform}-${process.arch}-gnu.node`);
  }
  let bytes = 0;
  let debug = false;
  try {
    bytes = fs.statSync(file).size;
    // A release build is stripped and a few MB; a debug build carries DWARF sections.
    const fd = fs.openSync(file, 'r');
    const buf = Buffer.alloc(Math.min(bytes, 256 * 1024));
    fs.readSync(fd, buf, 0, buf.length, Math.max(0, bytes - buf.length));
    fs.closeSync(fd);
    debug = buf.includes('.debug_info') || bytes > 30 * 1024 * 1024;
  } catch {
    return { file, bytes: 0, debug: false, text: `addon ${path.basename(file)} not found` };
  }
  const mb = (bytes / 1048576).toFixed(1);
  return {
    file,
    bytes,
    debug,
    text: debug
      ? `addon: DEBUG build (${mb} MB) – numbers are NOT representative; build with npm run build (release) first`
      : `addon: release build (${mb} MB)`,
  };
}

module.exports = { describeAddon };
