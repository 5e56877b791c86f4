'use strict';
// Contributor build (`npm run build`, `npm run build:debug`): compiles the addon with cargo and
// copies the library to `session.<platform>.node`, napi-rs's file name, in the package root (or
// --out-dir). The release workflow runs the same script with --target for each prebuilt package.
//
// This replaces `napi build` so that @napi-rs/cli, whose dependencies declare Node >= 22 and warn
// with EBADENGINE on the Node 20 we support, is not a dev dependency. The types are hand-written
// (index.d.ts), so the CLI's .d.ts generation is not needed either.
//
//   node scripts/build.js [--debug] [--target <rust triple>] [--out-dir <dir>]
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { PLATFORMS, platformName, addonFile } = require('../lib/native-path');

const root = path.resolve(__dirname, '..');
const CRATE = 'ostro-session';
const LIB = 'ostro_session';

function parseArgs(argv) {
  const opts = { debug: false, target: null, outDir: root };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--debug') opts.debug = true;
    else if (a === '--release') opts.debug = false;
    else if (a === '--target') opts.target = argv[++i];
    else if (a === '--out-dir') opts.outDir = path.resolve(argv[++i]);
    else fail(`unknown argument ${a} (usage: node scripts/build.js [--debug] [--target <triple>] [--out-dir <dir>])`);
  }
  if (opts.target !== null && !opts.target) fail('--target needs a Rust target triple');
  return opts;
}

function fail(message) {
  console.error(`@ostro/session build: ${message}`);
  process.exit(1);
}

/** The library cargo writes for a target's OS: libostro_session.so / .dylib, ostro_session.dll. */
function libraryName(os) {
  if (os === 'win32') return `${LIB}.dll`;
  if (os === 'darwin') return `lib${LIB}.dylib`;
  return `lib${LIB}.so`;
}

function main() {
  const opts = parseArgs(process.argv.slice(2));
  let name;
  let os = process.platform;
  let musl;
  if (opts.target) {
    const p = PLATFORMS.find((x) => x.target === opts.target);
    if (!p) fail(`no platform package for target ${opts.target} (known: ${PLATFORMS.map((x) => x.target).join(', ')})`);
    ({ name, os } = p);
    musl = p.libc === 'musl';
  } else {
    name = platformName();
    musl = name.endsWith('-musl');
  }

  const probe = spawnSync('cargo', ['--version'], { stdio: 'ignore' });
  if (probe.error || probe.status !== 0) {
    fail('cargo was not found on PATH. Install Rust from https://rustup.rs, then run npm run build again. (Installing the package from npm needs no Rust: it uses the prebuilt @ostro/session-<platform> package.)');
  }

  const args = ['build', '-p', CRATE];
  if (!opts.debug) args.push('--release');
  if (opts.target) args.push('--target', opts.target);
  // Contributor builds carry the bench and test hooks (src/js_handler_dev.rs); the release
  // workflow builds each shipped package with --target, without them.
  else args.push('--features', 'dev-hooks');
  const env = { ...process.env };
  if (musl) {
    // musl targets link the C runtime statically by default, and a static CRT cannot produce the
    // cdylib Node loads; napi-rs's CLI turns it off the same way.
    const triple = opts.target || 'x86_64-unknown-linux-musl';
    const key = `CARGO_TARGET_${triple.toUpperCase().replace(/-/g, '_')}_RUSTFLAGS`;
    env[key] = `${env[key] ? `${env[key]} ` : ''}-C target-feature=-crt-static`;
  }
  console.error(`> cargo ${args.join(' ')}`);
  const r = spawnSync('cargo', args, { cwd: root, stdio: 'inherit', env });
  if (r.error || r.status !== 0) fail('cargo build failed (see its output above).');

  const targetDir = process.env.CARGO_TARGET_DIR ? path.resolve(root, process.env.CARGO_TARGET_DIR) : path.join(root, 'target');
  const built = path.join(targetDir, ...(opts.target ? [opts.target] : []), opts.debug ? 'debug' : 'release', libraryName(os));
  if (!fs.existsSync(built)) fail(`cargo finished but ${built} is missing`);
  fs.mkdirSync(opts.outDir, { recursive: true });
  const dest = path.join(opts.outDir, addonFile(name));
  // Copy through a temp name and rename: a Node process holding the old file mapped keeps a
  // valid image, and a reader never sees a half-written addon.
  const tmp = `${dest}.tmp-${process.pid}`;
  fs.copyFileSync(built, tmp);
  fs.renameSync(tmp, dest);
  const mb = (fs.statSync(dest).size / 1048576).toFixed(1);
  console.error(`@ostro/session build: wrote ${path.relative(process.cwd(), dest) || dest} (${mb} MB, ${opts.debug ? 'debug' : 'release'})`);
}

main();
