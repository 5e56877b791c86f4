'use strict';
// Temp directories removed after the test file.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const made = [];
function tmpDir(prefix = 'ostro-session-') {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  made.push(d);
  return d;
}
process.on('exit', () => {
  for (const d of made) fs.rmSync(d, { recursive: true, force: true });
});

module.exports = { tmpDir };
