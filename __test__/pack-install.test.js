'use strict';
// The package as a user gets it (issue 15, issue 10): scripts/pack.js packs the main package and
// this platform's prebuilt package with `npm pack`; both tarballs are installed into a fresh
// project with no cargo on PATH and no network (`--offline`: the main package has no runtime
// dependencies, and the other platforms' optional packages are skipped as npm skips any
// optional dependency it cannot fetch). Then a session round-trips through the installed copy.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync, spawnSync } = require('node:child_process');
const { tmpDir } = require('./support/tmp');
const { platformName, addonFile } = require('../lib/native-path');
const { notStripped } = require('../scripts/pack');

const root = path.join(__dirname, '..');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const host = platformName();

/**
 * What a machine without Rust has: node's own directory (npm sits next to it), /usr/bin and
 * /bin. No inherited npm_* variables (set by `npm test`) and no addon override.
 */
function userEnv() {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^npm_/i.test(k) || k === 'OSTRO_SESSION_NATIVE_PATH' || k === 'NAPI_RS_NATIVE_LIBRARY_PATH') continue;
    env[k] = v;
  }
  env.PATH = [path.dirname(process.execPath), '/usr/bin', '/bin'].join(path.delimiter);
  return env;
}

function which(program, PATH) {
  for (const dir of PATH.split(path.delimiter)) {
    const file = path.join(dir, program);
    try {
      fs.accessSync(file, fs.constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return null;
}

function tarList(tarball) {
  return execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' }).trim().split('\n');
}

/** Bytes on disk (du) and apparent bytes of everything under dir. */
function diskUsage(dir) {
  let disk = 0;
  let bytes = 0;
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      const st = fs.lstatSync(p);
      disk += st.blocks * 512;
      if (e.isDirectory()) walk(p);
      else bytes += st.size;
    }
  };
  walk(dir);
  return { disk, bytes };
}

const mb = (n) => `${(n / 1048576).toFixed(1)} MB`;

let packed;
let project;
let installOutput;

test.before(() => {
  // The addon is the one prerequisite; name it rather than failing somewhere inside npm.
  assert.ok(fs.existsSync(path.join(root, addonFile(host))), `${addonFile(host)} is not built: run \`npm run build\` (needs cargo) before the tests`);
  const dest = tmpDir('ostro-pack-');
  const r = spawnSync(process.execPath, [path.join(root, 'scripts', 'pack.js'), '--pack-destination', dest], { encoding: 'utf8', timeout: 60000 });
  assert.equal(r.status, 0, `scripts/pack.js failed:\n${r.stderr}`);
  packed = JSON.parse(r.stdout.trim().split('\n').pop());

  project = tmpDir('ostro-user-');
  fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'ostro-session-user', version: '1.0.0', private: true }));
  const env = userEnv();
  assert.equal(which('cargo', env.PATH), null, `cargo must not be on the test PATH (${env.PATH})`);
  assert.ok(which('npm', env.PATH), `npm is not next to node or in /usr/bin: ${env.PATH}`);
  const install = spawnSync('npm', ['install', '--no-audit', '--no-fund', '--offline', packed.main, packed.platform], {
    cwd: project,
    env,
    encoding: 'utf8',
    timeout: 60000,
  });
  installOutput = `${install.stdout}${install.stderr}`;
  assert.equal(install.status, 0, `npm install of the tarballs failed:\n${installOutput}`);
});

test('the main tarball ships JS, types, README and LICENSE: no Rust sources, build output or addon', () => {
  const files = tarList(packed.main);
  const bad = files.filter((f) => /\.(rs|node)$/.test(f)
    || /^package\/(crates|src|target|scripts|npm|__test__|bench)\//.test(f)
    || /^package\/(Cargo\.(toml|lock)|build\.rs)$/.test(f));
  assert.deepEqual(bad, []);
  for (const f of ['package/LICENSE', 'package/README.md', 'package/index.js', 'package/index.d.ts', 'package/lib/native.js', 'package/lib/native-path.js']) {
    assert.ok(files.includes(f), `${f} is missing from ${path.basename(packed.main)}`);
  }
  assert.match(fs.readFileSync(path.join(root, 'LICENSE'), 'utf8'), /^MIT License[\s\S]*Copyright \(c\) 2026 OstroJS contributors/);
});

test('the installed package has no install scripts and no runtime dependencies, only its platform packages', () => {
  const installed = JSON.parse(fs.readFileSync(path.join(project, 'node_modules', '@ostro', 'session', 'package.json'), 'utf8'));
  for (const hook of ['preinstall', 'install', 'postinstall']) assert.equal(installed.scripts && installed.scripts[hook], undefined, `scripts.${hook}`);
  assert.equal(installed.dependencies, undefined, 'a runtime dependency would need the registry (and this test to go online)');
  assert.equal(installed.optionalDependencies[`@ostro/session-${host}`], pkg.version);
  // npm installed this platform's package from its tarball and skipped the five others.
  assert.deepEqual(fs.readdirSync(path.join(project, 'node_modules', '@ostro')).sort(), ['session', `session-${host}`]);
  assert.equal(fs.existsSync(path.join(project, 'node_modules', '@ostro', 'session', 'node_modules')), false, 'no nested copy');
});

test('npm prints no warning: no install-scripts notice, no EBADENGINE', () => {
  assert.doesNotMatch(installOutput, /install.scripts|allowScripts/i);
  assert.doesNotMatch(installOutput, /EBADENGINE/);
  assert.doesNotMatch(installOutput, /npm warn/i, installOutput);
});

test('the platform package carries the stripped release addon', (t) => {
  assert.deepEqual(tarList(packed.platform).sort(), ['package/README.md', 'package/package.json', `package/${addonFile(host)}`].sort());
  const file = path.join(project, 'node_modules', '@ostro', `session-${host}`, addonFile(host));
  const image = fs.readFileSync(file);
  assert.equal(notStripped(image), null);
  // A debug build is ~60-90 MB; the release build with LTO and stripped symbols is ~6 MB.
  assert.ok(image.length < 20 * 1048576, `${mb(image.length)} is not a release build`);
  t.diagnostic(`${addonFile(host)}: ${image.length} bytes (${mb(image.length)})`);
});

test("require('@ostro/session') in the user's project loads the prebuilt addon and a session round-trips", (t) => {
  const script = `
    const { Store, ArraySessionHandler } = require('@ostro/session');
    (async () => {
      const handler = new ArraySessionHandler(120);
      const first = new Store('ostro_session', handler);
      await first.start();
      first.put('user.name', 'Ada');
      first.put('cart', [{ sku: 'tea', qty: 1 }]);
      await first.save();
      const again = new Store('ostro_session', handler, first.getId());
      await again.start();
      const addons = Object.keys(require.cache).filter((f) => f.endsWith('.node'));
      console.log(JSON.stringify({ sameId: again.getId() === first.getId(), name: again.get('user.name'), cart: again.get('cart'), addons, main: require.resolve('@ostro/session') }));
    })().catch((err) => { console.error(err); process.exit(1); });
  `;
  const r = spawnSync(process.execPath, ['-e', script], { cwd: project, env: userEnv(), encoding: 'utf8', timeout: 30000 });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.sameId, true);
  assert.equal(out.name, 'Ada');
  assert.deepEqual(out.cart, [{ sku: 'tea', qty: 1 }]);
  const real = (p) => fs.realpathSync(p);
  assert.equal(out.main, real(path.join(project, 'node_modules', '@ostro', 'session', 'index.js')), 'the installed copy, not this checkout');
  assert.deepEqual(out.addons, [real(path.join(project, 'node_modules', '@ostro', `session-${host}`, addonFile(host)))]);

  const usage = diskUsage(path.join(project, 'node_modules', '@ostro'));
  t.diagnostic(`installed size of node_modules/@ostro: ${mb(usage.disk)} on disk (du), ${mb(usage.bytes)} of files`);
  t.diagnostic(`tarballs: ${path.basename(packed.main)} ${fs.statSync(packed.main).size} bytes, ${path.basename(packed.platform)} ${fs.statSync(packed.platform).size} bytes`);
});

test('dev dependencies raise no EBADENGINE on this Node (npm install --dry-run in the checkout)', () => {
  // --offline: the lockfile has every manifest npm needs; --dry-run changes nothing on disk.
  const r = spawnSync('npm', ['install', '--dry-run', '--offline', '--ignore-scripts', '--no-audit', '--no-fund'], {
    cwd: root,
    env: { ...userEnv(), PATH: process.env.PATH },
    encoding: 'utf8',
    timeout: 60000,
  });
  const out = `${r.stdout}${r.stderr}`;
  assert.equal(r.status, 0, out);
  assert.doesNotMatch(out, /EBADENGINE/, `a dependency declares an engine this Node (${process.version}) does not satisfy:\n${out}`);
});
