'use strict';
// Packs what a release publishes for this machine: the main package and the platform package
// (`@ostro/session-linux-x64-gnu` here), with `npm pack`. The built addon (`npm run build`) is
// copied into npm/<platform>/ first, as `napi artifacts` does in the release workflow. A debug
// build is refused: it is ~60 MB of DWARF that nobody should download.
//
//   node scripts/pack.js [--pack-destination <dir>]
// Prints one JSON line: { "main": <tarball>, "platform": <tarball>, "addonBytes": <n> }.
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { platformName, addonFile } = require('../lib/native-path');

const root = path.resolve(__dirname, '..');

/**
 * The section names of a 64-bit little-endian ELF image (what Linux builds are), or null for any
 * other format. Searching the bytes for ".debug_info" is not enough: std's backtrace code
 * contains that string even in a stripped build.
 */
function elfSectionNames(buf) {
  if (buf.length < 64 || buf.readUInt32BE(0) !== 0x7f454c46 || buf[4] !== 2 || buf[5] !== 1) return null;
  const shoff = Number(buf.readBigUInt64LE(40));
  const shentsize = buf.readUInt16LE(58);
  const shnum = buf.readUInt16LE(60);
  const shstrndx = buf.readUInt16LE(62);
  const header = (i) => shoff + i * shentsize;
  const strOff = Number(buf.readBigUInt64LE(header(shstrndx) + 24));
  const names = [];
  for (let i = 0; i < shnum; i++) {
    const start = strOff + buf.readUInt32LE(header(i));
    names.push(buf.toString('latin1', start, buf.indexOf(0, start)));
  }
  return names;
}

/** Why an addon image is not a stripped release build, or null when it is. */
function notStripped(buf) {
  const names = elfSectionNames(buf);
  if (names) {
    const bad = names.filter((n) => n === '.symtab' || n.startsWith('.debug_'));
    return bad.length ? `it has ${bad.join(', ')} sections (a debug or unstripped build)` : null;
  }
  // Other formats: the debug build is ~60 MB against ~5 MB for a stripped release.
  return buf.length > 20 * 1048576 ? `it is ${(buf.length / 1048576).toFixed(0)} MB (a debug build?)` : null;
}

function npmPack(cwd, dest) {
  // --json gives the file name without scraping npm's notices; --ignore-scripts because
  // packing must never build anything.
  const out = execFileSync('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', dest], {
    cwd,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const [info] = JSON.parse(out);
  return path.join(dest, info.filename);
}

function pack({ destination = root } = {}) {
  const name = platformName();
  const built = path.join(root, addonFile(name));
  if (!fs.existsSync(built)) {
    throw new Error(`${path.basename(built)} is not built: run \`npm run build\` (needs cargo) before packing.`);
  }
  const image = fs.readFileSync(built);
  const why = notStripped(image);
  if (why) {
    throw new Error(`${path.basename(built)} is not a stripped release build: ${why}. Run \`npm run build\` before packing.`);
  }
  const platformDir = path.join(root, 'npm', name);
  if (!fs.existsSync(path.join(platformDir, 'package.json'))) {
    throw new Error(`no platform package npm/${name}/package.json: this platform has no prebuilt package.`);
  }
  fs.copyFileSync(built, path.join(platformDir, addonFile(name)));
  fs.mkdirSync(destination, { recursive: true });
  return {
    main: npmPack(root, destination),
    platform: npmPack(platformDir, destination),
    addonBytes: image.length,
  };
}

if (require.main === module) {
  const args = process.argv.slice(2);
  let destination = root;
  if (args[0] === '--pack-destination' && args[1]) destination = path.resolve(args[1]);
  else if (args.length) {
    console.error('usage: node scripts/pack.js [--pack-destination <dir>]');
    process.exit(1);
  }
  try {
    console.log(JSON.stringify(pack({ destination })));
  } catch (err) {
    console.error(`@ostro/session pack: ${err.message}`);
    process.exit(1);
  }
}

module.exports = { pack, elfSectionNames, notStripped };
