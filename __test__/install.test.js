'use strict';
// How the addon is found (lib/native-path.js): an override, then a local `npm run build`, then
// the prebuilt `@ostro/session-<platform>` package; and the error a user gets when none matches.
// The search is injectable (root, env, platform, arch, libc), so nothing here patches `process`.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { tmpDir } = require('./support/tmp');
const { PLATFORMS, platformName, addonFile, loadNative } = require('../lib/native-path');

const root = path.join(__dirname, '..');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const host = platformName();

/** The addon `npm run build` wrote; the tests that load a real addon need it. */
function builtAddon() {
  const file = path.join(root, addonFile(host));
  assert.ok(fs.existsSync(file), `${path.basename(file)} is missing: run \`npm run build\` (needs cargo) before the tests`);
  return file;
}

/** A package root containing only a symlink to the built addon under `name` (same real path,
 * so Node loads the one image already mapped instead of registering the addon twice). */
function linkAddon(dir, name) {
  fs.symlinkSync(builtAddon(), path.join(dir, name));
}

test('napi-rs platform names: libc on Linux, msvc on Windows, nothing on macOS', () => {
  assert.equal(platformName({ platform: 'linux', arch: 'x64', libc: 'glibc' }), 'linux-x64-gnu');
  assert.equal(platformName({ platform: 'linux', arch: 'x64', libc: 'musl' }), 'linux-x64-musl');
  assert.equal(platformName({ platform: 'linux', arch: 'arm64', libc: 'glibc' }), 'linux-arm64-gnu');
  assert.equal(platformName({ platform: 'darwin', arch: 'arm64' }), 'darwin-arm64');
  assert.equal(platformName({ platform: 'win32', arch: 'x64' }), 'win32-x64-msvc');
  assert.equal(addonFile('darwin-x64'), 'session.darwin-x64.node');
});

test('every prebuilt platform has an npm/<platform> package that npm installs only on that platform', () => {
  assert.deepEqual(PLATFORMS.map((p) => p.name).sort(), [
    'darwin-arm64', 'darwin-x64', 'linux-arm64-gnu', 'linux-x64-gnu', 'linux-x64-musl', 'win32-x64-msvc',
  ]);
  assert.deepEqual(Object.keys(pkg.optionalDependencies).sort(), PLATFORMS.map((p) => `@ostro/session-${p.name}`).sort());
  assert.deepEqual(pkg.napi.targets.slice().sort(), PLATFORMS.map((p) => p.target).sort(), 'napi.targets drives `napi artifacts` in the release workflow');
  for (const p of PLATFORMS) {
    const sub = JSON.parse(fs.readFileSync(path.join(root, 'npm', p.name, 'package.json'), 'utf8'));
    assert.equal(sub.name, `@ostro/session-${p.name}`);
    assert.equal(sub.version, pkg.version, `${sub.name} must be released with the main package`);
    assert.equal(pkg.optionalDependencies[sub.name], pkg.version, 'an exact pin: the addon and lib/ change together');
    assert.deepEqual(sub.os, [p.os]);
    assert.deepEqual(sub.cpu, [p.cpu]);
    // Without libc, npm would install the glibc build on Alpine (and the musl one on Debian).
    assert.deepEqual(sub.libc, p.libc ? [p.libc] : undefined);
    assert.equal(sub.main, addonFile(p.name));
    assert.deepEqual(sub.files, [addonFile(p.name)]);
    assert.equal(sub.license, pkg.license);
    assert.deepEqual(sub.engines, pkg.engines);
    // Scoped packages are private by default; the first publish would fail without this.
    assert.equal(sub.publishConfig && sub.publishConfig.access, 'public');
  }
  assert.ok(PLATFORMS.some((p) => p.name === host), `this machine (${host}) should be a prebuilt platform`);
});

test('the release workflow builds exactly the prebuilt platforms and publishes them the napi-rs way', () => {
  const yml = fs.readFileSync(path.join(root, '.github', 'workflows', 'release.yml'), 'utf8');
  const targets = [...yml.matchAll(/^\s+target: ([\w-]+)$/gm)].map((m) => m[1]);
  assert.deepEqual(targets.sort(), PLATFORMS.map((p) => p.target).sort());
  assert.match(yml, /node scripts\/build\.js --target/);
  assert.match(yml, /artifacts --output-dir artifacts/);
  assert.match(yml, /prepublish -t npm/);
  assert.match(yml, /npm publish/);
});

test('the package has no install script; `npm run build` builds from source', () => {
  for (const hook of ['preinstall', 'install', 'postinstall']) assert.equal(pkg.scripts[hook], undefined, `scripts.${hook}`);
  assert.equal(pkg.scripts.build, 'node scripts/build.js');
  assert.equal(fs.existsSync(path.join(root, 'scripts', 'install.js')), false);
});

test('the build script without cargo says so in one line, with where to get Rust', () => {
  const r = spawnSync(process.execPath, [path.join(root, 'scripts', 'build.js')], {
    env: { ...process.env, PATH: '/nonexistent' },
    encoding: 'utf8',
    timeout: 30000,
  });
  assert.equal(r.status, 1, r.stderr);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0], /cargo was not found/);
  assert.match(lines[0], /rustup\.rs/);
});

test('the build script refuses a target with no platform package, naming the known ones', () => {
  const r = spawnSync(process.execPath, [path.join(root, 'scripts', 'build.js'), '--target', 'riscv64gc-unknown-linux-gnu'], { encoding: 'utf8', timeout: 30000 });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /no platform package for target riscv64gc-unknown-linux-gnu/);
  assert.match(r.stderr, /x86_64-unknown-linux-musl/);
});

test('a local build in the package root wins over the platform package', () => {
  const dir = tmpDir();
  linkAddon(dir, addonFile(host));
  let resolved = 0;
  const found = loadNative({ root: dir, env: {}, resolve: () => { resolved++; return builtAddon(); } });
  assert.equal(found.kind, 'local');
  assert.equal(found.file, path.join(dir, addonFile(host)));
  assert.equal(typeof found.binding.createArrayHandler, 'function');
  assert.equal(resolved, 0, 'the package is not even looked up');
});

test('without a local build, the @ostro/session-<platform> package is resolved from the package root', () => {
  // The layout npm makes: node_modules/@ostro/session-<platform> next to (or under) our root.
  const dir = tmpDir();
  const sub = path.join(dir, 'node_modules', '@ostro', `session-${host}`);
  fs.mkdirSync(sub, { recursive: true });
  fs.writeFileSync(path.join(sub, 'package.json'), JSON.stringify({ name: `@ostro/session-${host}`, main: addonFile(host) }));
  linkAddon(sub, addonFile(host));
  const found = loadNative({ root: dir, env: {} });
  assert.equal(found.kind, 'package');
  // require.resolve answers with the real path, here the symlink's target.
  assert.equal(found.file, fs.realpathSync(path.join(sub, addonFile(host))));
  assert.equal(typeof found.binding.createArrayHandler, 'function');
});

test('when nothing matches: ERR_SESSION_NATIVE naming the platform, what was tried, and how to build', () => {
  const dir = tmpDir();
  assert.throws(() => loadNative({ root: dir, env: {}, platform: 'linux', arch: 'arm64', libc: 'musl' }), (err) => {
    assert.equal(err.code, 'ERR_SESSION_NATIVE');
    assert.equal(err.platform, 'linux-arm64-musl');
    assert.match(err.message, /linux\/arm64 \(musl\)/);
    // Both places, so the user can see which one they expected to work.
    assert.ok(err.message.includes(path.join(dir, 'session.linux-arm64-musl.node')), err.message);
    assert.ok(err.message.includes('@ostro/session-linux-arm64-musl'), err.message);
    assert.equal(err.tried.length, 2);
    assert.match(err.message, /No prebuilt binary is published for "linux-arm64-musl"/);
    assert.match(err.message, /linux-x64-musl, linux-arm64-gnu/);
    assert.match(err.message, /cargo/);
    assert.match(err.message, /npm run build/);
    return true;
  });
});

test('on a prebuilt platform whose package is missing, the error says to reinstall with optional dependencies', () => {
  const dir = tmpDir();
  assert.throws(() => loadNative({ root: dir, env: {}, platform: 'darwin', arch: 'arm64' }), (err) => {
    assert.equal(err.code, 'ERR_SESSION_NATIVE');
    assert.match(err.message, /darwin\/arm64, platform name "darwin-arm64"/);
    assert.match(err.message, /optional dependency @ostro\/session-darwin-arm64/);
    assert.match(err.message, /--omit=optional/);
    assert.match(err.message, /npm run build/);
    return true;
  });
});

test('a file that is found but does not load reports its own error, not "not found"', () => {
  const dir = tmpDir();
  fs.writeFileSync(path.join(dir, addonFile(host)), 'not an ELF image');
  assert.throws(() => loadNative({ root: dir, env: {}, resolve: () => { throw Object.assign(new Error('nope'), { code: 'MODULE_NOT_FOUND' }); } }), (err) => {
    assert.equal(err.code, 'ERR_SESSION_NATIVE');
    assert.match(err.message, /found but failed to load: /);
    assert.ok(err.cause instanceof Error, 'the dlopen error is kept as the cause');
    return true;
  });
});

test('an override is the only candidate: a wrong path fails even when a local build exists', () => {
  const dir = tmpDir();
  linkAddon(dir, addonFile(host));
  const missing = path.join(dir, 'elsewhere', 'session.node');
  assert.throws(() => loadNative({ root: dir, env: { OSTRO_SESSION_NATIVE_PATH: missing } }), (err) => {
    assert.equal(err.code, 'ERR_SESSION_NATIVE');
    assert.ok(err.message.includes(`${missing} (from OSTRO_SESSION_NATIVE_PATH): no such file`), err.message);
    assert.match(err.message, /nothing else was tried/);
    assert.deepEqual(err.tried, [`${missing} (from OSTRO_SESSION_NATIVE_PATH)`]);
    return true;
  });
});

test('NAPI_RS_NATIVE_LIBRARY_PATH is honoured as napi-rs loaders do', () => {
  const found = loadNative({ root: tmpDir(), env: { NAPI_RS_NATIVE_LIBRARY_PATH: builtAddon() } });
  assert.equal(found.kind, 'override');
  assert.equal(found.file, builtAddon());
});

test("require('@ostro/session') fails with the loader's error when no addon is found", () => {
  const missing = path.join(tmpDir(), 'session.node');
  const probe = `try { require(${JSON.stringify(root)}); console.log('loaded'); } catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }`;
  const r = spawnSync(process.execPath, ['-e', probe], { env: { ...process.env, OSTRO_SESSION_NATIVE_PATH: missing }, encoding: 'utf8', timeout: 30000 });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.code, 'ERR_SESSION_NATIVE');
  assert.ok(out.message.includes(missing), out.message);
  assert.ok(out.message.includes(host), out.message);
});
