'use strict';
// `npm run bench [-- --quick] [-- --only store,http,fastify,memory,gc,scale,database,contention,userindex,cluster]`
// (OSTRO_BENCH_CONTENDERS=id,id runs only those contenders, for work on one row.)
//
// Runs every case of the benchmark issue against our drivers, the peers people install instead,
// and the raw-client limits, in one run on this machine with the rounds interleaved. Installs the
// bench dependencies when missing, starts its own redis-server and memcached on free loopback
// ports (stopped by pid at the end, also on failure), prints the tables and writes them with the
// machine, versions and date to bench/results/latest.md (a full run only: --quick and --only
// runs write to the OS temp directory, see outputTarget).

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const BENCH = __dirname;
const ROOT = path.resolve(BENCH, '..');
const { describeAddon } = require('./lib/addon');
// OSTRO_BENCH_ROOT benchmarks another build of the package (a prototype) with the same harness.
const ROOT_UNDER_TEST = process.env.OSTRO_BENCH_ROOT ? path.resolve(process.env.OSTRO_BENCH_ROOT) : ROOT;
const args = process.argv.slice(2);
const quick = args.includes('--quick');
const onlyArg = args.find((a) => a.startsWith('--only='));
const onlyIdx = args.indexOf('--only');
const only = (onlyArg ? onlyArg.slice(7) : onlyIdx >= 0 ? args[onlyIdx + 1] || '' : '').split(',').filter(Boolean);
const CASES = ['store', 'http', 'fastify', 'memory', 'gc', 'scale', 'database', 'contention', 'userindex', 'cluster'];
const wanted = only.length ? CASES.filter((c) => only.includes(c)) : CASES;

const t0 = Date.now();
const log = (msg) => process.stderr.write(`[bench ${((Date.now() - t0) / 1000).toFixed(0).padStart(4)} s] ${msg}\n`);

// ----- dependencies -------------------------------------------------------------------------

function ensureDeps() {
  const pkg = JSON.parse(fs.readFileSync(path.join(BENCH, 'package.json'), 'utf8'));
  const missing = Object.keys(pkg.devDependencies).filter((name) => !fs.existsSync(path.join(BENCH, 'node_modules', name, 'package.json')));
  if (missing.length === 0) return;
  log(`installing bench dependencies (missing: ${missing.join(', ')}) …`);
  const r = spawnSync('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: BENCH, stdio: 'inherit' });
  if (r.status !== 0) throw new Error('npm install in bench/ failed; the peers cannot be benchmarked');
}

function ensureAddon() {
  try {
    require(ROOT_UNDER_TEST);
  } catch (err) {
    throw new Error(`@ostro/session does not load (${err.message}); run npm install at the repo root first`);
  }
}

// ----- contenders ---------------------------------------------------------------------------

function loadContenders() {
  const dir = path.join(BENCH, 'contenders');
  const order = { ours: 0, peer: 1, raw: 2, floor: 3 };
  return fs.readdirSync(dir).filter((f) => f.endsWith('.js')).map((f) => {
    const file = path.join(dir, f);
    const c = require(file);
    return { ...c, file };
  }).filter((c) => !process.env.OSTRO_BENCH_CONTENDERS || process.env.OSTRO_BENCH_CONTENDERS.split(',').includes(c.id)).sort((a, b) => order[a.kind] - order[b.kind] || FAMILY.indexOf(a.family) - FAMILY.indexOf(b.family) || a.id.localeCompare(b.id));
}
const FAMILY = ['array', 'bridge', 'file', 'sqlite', 'redis', 'memcached', 'json'];

// ----- versions and machine -----------------------------------------------------------------

function versionOf(name) {
  // Read the file directly: packages with an "exports" map (connect-redis 9) hide package.json.
  try {
    return JSON.parse(fs.readFileSync(path.join(BENCH, 'node_modules', name, 'package.json'), 'utf8')).version;
  } catch {
    return 'not installed';
  }
}

function gitRev() {
  const r = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' });
  const dirty = spawnSync('git', ['status', '--porcelain', '--untracked-files=no', '--', 'src', 'crates', 'lib', 'index.js'], { cwd: ROOT, encoding: 'utf8' });
  if (r.status !== 0) return 'no commit';
  return `${r.stdout.trim()}${dirty.stdout.trim() ? ' (with uncommitted changes)' : ''}`;
}

function machine(services) {
  const cpus = os.cpus();
  const lines = [
    `date: ${new Date().toISOString()}`,
    `mode: ${quick ? 'quick (--quick: short rounds, smaller data sets)' : 'full'}${only.length ? `, only ${wanted.join(',')}` : ''}`,
    `machine: ${cpus.length} × ${cpus[0] ? cpus[0].model.trim() : 'cpu'}, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM, ${os.type()} ${os.release()}, load average at start ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`,
    ...(ROOT_UNDER_TEST !== ROOT ? [`package under test: ${ROOT_UNDER_TEST} (OSTRO_BENCH_ROOT)${process.env.OSTRO_BENCH_REV ? `, built from ${process.env.OSTRO_BENCH_REV}` : ''}`] : []),
    describeAddon(ROOT_UNDER_TEST).text,
    `node ${process.version}; @ostro/session ${JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version} at ${gitRev()}`,
    `peers: ${['express', 'express-session', 'connect-redis', 'redis', 'session-file-store', 'better-sqlite3', 'better-sqlite3-session-store', 'ostro-session-v1', 'fastify', '@fastify/session', '@fastify/cookie', 'autocannon'].map((n) => `${n === 'ostro-session-v1' ? '@ostro/session 1.x' : n} ${versionOf(n)}`).join(', ')}`,
    `servers: ${Object.values(services).map((s) => (s.error ? `${s.kind}: ${s.error}` : `${s.kind === 'redis' ? 'redis-server' : 'memcached'} ${s.version} on 127.0.0.1:${s.port}`)).join(', ')}`,
  ];
  return lines;
}

// ----- output -------------------------------------------------------------------------------

/**
 * Where a run writes its report: `{ dir, base }` (files `<base>.md` and `<base>.json`). Only a
 * full run of every case is the result of record, bench/results/latest.*; a --quick or --only
 * run goes to the OS temp directory, so it can never replace the tracked results.
 * @param {{ quick: boolean, only: string[], wanted: string[], benchDir?: string, tmpDir?: string }} o
 */
function outputTarget({ quick: isQuick, only: onlyCases, wanted: cases, benchDir = BENCH, tmpDir = os.tmpdir() }) {
  if (!isQuick && onlyCases.length === 0) return { dir: path.join(benchDir, 'results'), base: 'latest' };
  const parts = ['ostro-bench'];
  if (isQuick) parts.push('quick');
  if (onlyCases.length) parts.push(...cases);
  return { dir: tmpDir, base: parts.join('-') };
}

// ----- report -------------------------------------------------------------------------------

function render(sections, header, targets, floors, elapsedS) {
  const { textTable, mdTable } = require('./lib/stats');
  const text = [];
  const md = [];
  md.push('# @ostro/session benchmark results', '', '_Generated by `npm run bench` (bench/run.js); do not edit by hand._', '');
  for (const l of header) { text.push(l); md.push(`- ${l}`); }
  text.push('');
  md.push('');
  md.push('Every comparison is a ratio measured in this one run on this machine with the rounds interleaved; absolute numbers drift between runs.', '');
  if (targets) {
    text.push('== Targets ==', textTable(targets.header, targets.rows), '');
    md.push('## Targets', '', mdTable(targets.header, targets.rows), '');
  }
  if (floors) {
    text.push('== Floors (measured in this run) ==', textTable(floors.header, floors.rows), '');
    md.push('## Floors', '', floors.note, '', mdTable(floors.header, floors.rows), '');
  }
  for (const s of sections) {
    text.push(`== ${s.title} ==`);
    md.push(`## ${s.title}`, '');
    if (s.note) md.push(s.note, '');
    if (s.rows && s.rows.length) {
      text.push(textTable(s.header, s.rows));
      md.push(mdTable(s.header, s.rows));
    }
    for (const extra of s.extra || []) {
      text.push('', extra.title, textTable(extra.header, extra.rows));
      md.push('', `**${extra.title}**`, '', mdTable(extra.header, extra.rows));
    }
    if (s.note) text.push(s.note);
    text.push('');
    md.push('');
  }
  text.push(`total ${elapsedS.toFixed(0)} s`);
  md.push(`Run took ${elapsedS.toFixed(0)} s.`, '');
  return { text: text.join('\n'), md: md.join('\n') };
}

// ----- main ---------------------------------------------------------------------------------

async function main() {
  ensureAddon();
  ensureDeps();
  const addon = describeAddon(ROOT_UNDER_TEST);
  if (addon.debug) log(`WARNING ${addon.text}`);
  const addonStamp = () => { try { const st = fs.statSync(addon.file); return `${st.size}:${st.mtimeMs}`; } catch { return 'missing'; } };
  const stampAtStart = addonStamp();
  const { startServices, stopServices } = require('./lib/services');
  const contenders = loadContenders();
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ostro-bench-'));
  let services = {};
  const sections = [];
  const data = {};
  try {
    log('starting redis-server and memcached on free loopback ports …');
    services = await startServices(path.join(workDir, 'servers'));
    for (const s of Object.values(services)) log(s.error ? `${s.kind}: ${s.error}` : `${s.kind} ${s.version} on port ${s.port} (pid ${s.pid})`);
    const env = {
      quick,
      services,
      workDir,
      log,
      contenders,
      storeContenders: contenders.filter((c) => typeof c.store === 'function'),
      httpContenders: contenders.filter((c) => typeof c.http === 'function'),
      ctxFor(id, mode) {
        const dir = path.join(workDir, `${id}-${mode}`);
        fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
        return {
          dir,
          redisUrl: services.redis && services.redis.url,
          redisPort: services.redis && services.redis.port,
          memcachedAddr: services.memcached && services.memcached.url,
        };
      },
    };
    for (const name of wanted) {
      log(`case ${name} …`);
      const c = require(`./cases/${name}`);
      try {
        const res = await c.run(env);
        sections.push(res);
        data[name] = res.data;
      } catch (err) {
        log(`case ${name} failed: ${err.stack || err}`);
        sections.push({ title: `Case ${name}: failed`, note: String(err.message || err), rows: [] });
        // The Targets rows of a case that ran and failed say so (not "not run").
        data[name] = { caseFailed: String(err.message || err).split('\n')[0] };
      }
    }
    const { targets, floors } = require('./lib/targets').evaluate(data);
    const elapsed = (Date.now() - t0) / 1000;
    const header = machine(services);
    // Workers load the addon when they start: a rebuild during the run mixes two builds.
    if (addonStamp() !== stampAtStart) header.push('WARNING: the addon file changed during this run (rebuilt?); rows may come from different builds. Run again.');
    const { text, md } = render(sections, header, targets, floors, elapsed);
    console.log(text);
    const { dir: outDir, base } = outputTarget({ quick, only, wanted });
    fs.mkdirSync(outDir, { recursive: true });
    const write = (name, content) => {
      const tmp = path.join(outDir, `${name}.${process.pid}.tmp`);
      fs.writeFileSync(tmp, content);
      fs.renameSync(tmp, path.join(outDir, name));
    };
    write(`${base}.md`, md);
    write(`${base}.json`, `${JSON.stringify({ date: new Date().toISOString(), quick, header, data }, null, 1)}\n`);
    log(`wrote ${path.relative(process.cwd(), path.join(outDir, `${base}.md`)) || `${base}.md`}`);
  } finally {
    await stopServices(services);
    log('servers stopped');
    fs.rmSync(workDir, { recursive: true, force: true });
    log('work directory removed');
  }
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err && err.stack ? err.stack : err);
    process.exitCode = 1;
  });
}

module.exports = { outputTarget };
