'use strict';
// Builds the native addon from source on `npm install`. Nothing prebuilt is downloaded.
// When the addon is already present and loads (an installed package), nothing is rebuilt.
const { spawnSync } = require('node:child_process');
const path = require('node:path');
const fs = require('node:fs');

const root = path.resolve(__dirname, '..');
const { addonPath } = require('../lib/native-path');

function loads() {
  const file = addonPath(root);
  if (!fs.existsSync(file)) return false;
  try {
    require(file);
    return true;
  } catch {
    return false;
  }
}

if (process.env.OSTRO_SESSION_FORCE_BUILD !== '1' && loads()) process.exit(0);

const probe = spawnSync('cargo', ['--version'], { stdio: 'ignore' });
if (probe.error || probe.status !== 0) {
  console.error('@ostro/session: cargo is needed to build the native addon (install Rust from https://rustup.rs), then run npm install again.');
  process.exit(1);
}

const cli = (() => {
  try {
    return require.resolve('@napi-rs/cli/dist/cli.js', { paths: [root] });
  } catch {
    return null;
  }
})();

let r;
if (cli) {
  r = spawnSync(process.execPath, [cli, 'build', '--platform', '--release', '--no-js', '--dts', 'binding.d.ts'], { cwd: root, stdio: 'inherit' });
} else {
  // Installed as a dependency without the CLI: plain cargo, then copy the library into place.
  r = spawnSync('cargo', ['build', '--release', '-p', 'ostro-session'], { cwd: root, stdio: 'inherit' });
  if (r.status === 0) {
    fs.copyFileSync(path.join(root, 'target', 'release', 'libostro_session.so'), addonPath(root));
  }
}
if (r.status !== 0) {
  console.error('@ostro/session: building the native addon failed (see the cargo output above).');
  process.exit(1);
}
if (!loads()) {
  console.error('@ostro/session: the native addon was built but does not load.');
  process.exit(1);
}
