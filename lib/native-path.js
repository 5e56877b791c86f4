'use strict';
// Finds and loads the native addon, the napi-rs way: prebuilt binaries ship as one small npm
// package per platform (`@ostro/session-linux-x64-gnu`, …), listed in `optionalDependencies`, so
// npm installs only the one matching the machine and nothing is compiled on install.
//
// Search order:
//   1. an explicit override, OSTRO_SESSION_NATIVE_PATH (or napi-rs's NAPI_RS_NATIVE_LIBRARY_PATH):
//      the only candidate when set, because silently loading another file would hide the mistake;
//   2. `session.<platform>.node` in the package root: what `npm run build` writes in a checkout;
//   3. the `@ostro/session-<platform>` package.
// Everything is injectable (root, env, platform, arch, libc, resolve) so the tests can point the
// search at an empty directory or another platform without patching `process`.
const path = require('node:path');
const fs = require('node:fs');

const PACKAGE = '@ostro/session';
const BINARY = 'session';
const ROOT = path.resolve(__dirname, '..');

/** The platforms we publish a prebuilt package for, with the Rust target each is built for. */
const PLATFORMS = [
  { name: 'linux-x64-gnu', target: 'x86_64-unknown-linux-gnu', os: 'linux', cpu: 'x64', libc: 'glibc' },
  { name: 'linux-x64-musl', target: 'x86_64-unknown-linux-musl', os: 'linux', cpu: 'x64', libc: 'musl' },
  { name: 'linux-arm64-gnu', target: 'aarch64-unknown-linux-gnu', os: 'linux', cpu: 'arm64', libc: 'glibc' },
  { name: 'darwin-x64', target: 'x86_64-apple-darwin', os: 'darwin', cpu: 'x64' },
  { name: 'darwin-arm64', target: 'aarch64-apple-darwin', os: 'darwin', cpu: 'arm64' },
  { name: 'win32-x64-msvc', target: 'x86_64-pc-windows-msvc', os: 'win32', cpu: 'x64' },
];

let hostLibc;

/**
 * 'glibc' or 'musl' on Linux (null elsewhere), with no child process: the ldd script names its
 * libc, and Node's report has `glibcVersionRuntime` only under glibc (napi-rs's loader does both).
 */
function detectLibc(platform = process.platform) {
  if (platform !== 'linux') return null;
  // Asked about Linux from another OS (a test passing platform: 'linux'): the common case.
  if (process.platform !== 'linux') return 'glibc';
  if (hostLibc) return hostLibc;
  let libc = null;
  try {
    const ldd = fs.readFileSync('/usr/bin/ldd', 'latin1');
    if (ldd.includes('musl')) libc = 'musl';
    else if (ldd.includes('GNU C Library')) libc = 'glibc';
  } catch {
    // no ldd (distroless images): ask the report
  }
  if (!libc && typeof process.report?.getReport === 'function') {
    // Collecting network interfaces can take seconds on some hosts; the header is all we need.
    const excluded = process.report.excludeNetwork;
    process.report.excludeNetwork = true;
    try {
      const report = process.report.getReport();
      libc = report && report.header && report.header.glibcVersionRuntime ? 'glibc' : 'musl';
    } finally {
      process.report.excludeNetwork = excluded;
    }
  }
  hostLibc = libc || 'glibc';
  return hostLibc;
}

/** napi-rs's platform name: `linux-x64-gnu`, `linux-x64-musl`, `darwin-arm64`, `win32-x64-msvc`, … */
function platformName({ platform = process.platform, arch = process.arch, libc } = {}) {
  let abi = '';
  if (platform === 'linux') abi = (libc === undefined ? detectLibc(platform) : libc) === 'musl' ? '-musl' : '-gnu';
  else if (platform === 'win32') abi = '-msvc';
  return `${platform}-${arch}${abi}`;
}

/** The addon file name for a platform name: `session.linux-x64-gnu.node`. */
function addonFile(name = platformName()) {
  return `${BINARY}.${name}.node`;
}

/** Where `npm run build` puts the addon for this machine (kept for bench/lib/addon.js). */
function addonPath(root = ROOT) {
  return path.join(root, addonFile());
}

/** The ordered list of places to look, each `{ kind, label, load }` without touching the disk. */
function candidates({ root = ROOT, env = process.env, platform, arch, libc, resolve } = {}) {
  const name = platformName({ platform, arch, libc });
  const override = env.OSTRO_SESSION_NATIVE_PATH ? 'OSTRO_SESSION_NATIVE_PATH'
    : env.NAPI_RS_NATIVE_LIBRARY_PATH ? 'NAPI_RS_NATIVE_LIBRARY_PATH' : null;
  if (override) {
    const file = path.resolve(env[override]);
    return [{ kind: 'override', label: `${file} (from ${override})`, file, variable: override }];
  }
  const local = path.join(root, addonFile(name));
  const pkg = `${PACKAGE}-${name}`;
  // Resolve from the package root, so a platform package hoisted next to ours or nested under it
  // is found the way Node would find any dependency of ours.
  const find = resolve || ((request) => require.resolve(request, { paths: [root] }));
  return [
    { kind: 'local', label: `${local} (a build from source)`, file: local },
    { kind: 'package', label: `${pkg} (the prebuilt package)`, request: pkg, find },
  ];
}

/**
 * Loads the addon. Returns `{ binding, file, kind }`; throws an Error with code
 * `ERR_SESSION_NATIVE` saying which platform was looked for, what was tried, and how to build.
 */
function loadNative(options = {}) {
  const { platform = process.platform, arch = process.arch } = options;
  const libc = options.libc === undefined ? detectLibc(platform) : options.libc;
  const tried = [];
  const list = candidates({ ...options, platform, arch, libc });
  for (const c of list) {
    let file = c.file;
    if (c.kind === 'package') {
      try {
        file = c.find(c.request);
      } catch (err) {
        if (err && err.code !== 'MODULE_NOT_FOUND') throw err;
        tried.push({ label: c.label, reason: 'not installed (or it has no .node file)' });
        continue;
      }
    } else if (!fs.existsSync(file)) {
      tried.push({ label: c.label, reason: 'no such file' });
      continue;
    }
    try {
      return { binding: require(file), file, kind: c.kind };
    } catch (err) {
      // A file that exists but does not load (wrong architecture, missing libc symbols, a
      // truncated download) is worth more than "not found": keep its own message.
      tried.push({ label: c.label, reason: `found but failed to load: ${err.message}`, cause: err });
    }
  }
  throw nativeError({ platform, arch, libc, tried, override: list[0].variable });
}

function nativeError({ platform, arch, libc, tried, override }) {
  const name = platformName({ platform, arch, libc });
  let advice;
  if (override) {
    advice = `${override} is set, so nothing else was tried: fix the path, or unset it to use the prebuilt package or a local build.`;
  } else if (PLATFORMS.some((p) => p.name === name)) {
    advice = `A prebuilt binary ships as the optional dependency ${PACKAGE}-${name}: reinstall without --no-optional / --omit=optional (and check that the lockfile was not made on another platform).`;
  } else {
    advice = `No prebuilt binary is published for "${name}" (prebuilt: ${PLATFORMS.map((p) => p.name).join(', ')}).`;
  }
  const lines = [
    `${PACKAGE}: no native addon could be loaded for ${platform}/${arch}${libc ? ` (${libc})` : ''}, platform name "${name}".`,
    'Tried:',
    ...tried.map((t) => `  - ${t.label}: ${t.reason}`),
    advice,
    `To build from source: in a checkout of ${PACKAGE} with Rust's cargo installed (https://rustup.rs), run \`npm install && npm run build\`, which writes ${addonFile(name)}; or point OSTRO_SESSION_NATIVE_PATH at a built .node file.`,
  ];
  const err = new Error(lines.join('\n'));
  err.code = 'ERR_SESSION_NATIVE';
  err.platform = name;
  err.tried = tried.map((t) => t.label);
  const failed = tried.find((t) => t.cause);
  if (failed) err.cause = failed.cause;
  return err;
}

module.exports = { PLATFORMS, PACKAGE, detectLibc, platformName, addonFile, addonPath, candidates, loadNative };
