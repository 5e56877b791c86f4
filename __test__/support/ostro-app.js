'use strict';
// A real OstroJS app for the tests: the fixture under __test__/fixtures/ostro-app, with the
// @ostro/framework from npm installed once into a cache directory under os.tmpdir() (keyed by the
// fixture's package.json, Node's version and the platform), and `@ostro/session` in that
// installation replaced by a symlink to this repository. The 1.x package npm installed is kept
// aside (`legacyDir`), so the same app can also be served with 1.x to mint legacy cookies.
//
// Every @ostro/* package resolves to one copy (npm installs them once, at the top level), so the
// framework's `instanceof` checks see the same classes as the app.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const crypto = require('node:crypto');
const { spawn, execFile } = require('node:child_process');

const REPO = path.resolve(__dirname, '..', '..');
const FIXTURE = path.join(REPO, '__test__', 'fixtures', 'ostro-app');
const INSTALL_TIMEOUT_MS = 15 * 60 * 1000;

function cacheKey() {
  const pkg = fs.readFileSync(path.join(FIXTURE, 'package.json'));
  return crypto.createHash('sha256').update(pkg).update(process.version).update(process.platform + process.arch).digest('hex').slice(0, 16);
}

function run(cmd, args, opts) {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { maxBuffer: 64 * 1024 * 1024, ...opts }, (err, stdout, stderr) => {
      if (err) {
        err.message += `\n--- stdout\n${stdout}\n--- stderr\n${stderr}`;
        reject(err);
      } else resolve({ stdout, stderr });
    });
  });
}

/** Points `link` at `target`, replacing whatever is there, atomically (rename over it). */
function forceSymlink(target, link) {
  const tmp = `${link}.tmp-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
  fs.symlinkSync(target, tmp, 'dir');
  try {
    const st = fs.lstatSync(link, { throwIfNoEntry: false });
    if (st && !st.isSymbolicLink()) fs.rmSync(link, { recursive: true, force: true });
    fs.renameSync(tmp, link);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
}

/**
 * Installs the fixture's dependencies once (about two minutes on a fresh machine, most of it
 * building sqlite3) and returns the cache directory. Later calls, and later test runs on the
 * same machine, reuse it.
 * @returns {Promise<{ dir: string, nodeModules: string, legacyDir: string }>}
 */
async function ensureInstall() {
  const dir = path.join(os.tmpdir(), `ostro-session-app-${cacheKey()}`);
  const nodeModules = path.join(dir, 'node_modules');
  const legacyDir = path.join(dir, 'legacy', 'node_modules', '@ostro', 'session');
  if (!fs.existsSync(path.join(dir, '.complete'))) {
    // Install into a private directory, then rename it into place: two test runs racing each
    // install once and the loser's copy is discarded.
    const tmp = `${dir}.tmp-${process.pid}`;
    fs.rmSync(tmp, { recursive: true, force: true });
    fs.mkdirSync(tmp, { recursive: true });
    fs.copyFileSync(path.join(FIXTURE, 'package.json'), path.join(tmp, 'package.json'));
    await run('npm', ['install', '--no-audit', '--no-fund', '--no-package-lock', '--loglevel=error'], { cwd: tmp, timeout: INSTALL_TIMEOUT_MS });
    // npm may skip install scripts it was not told to allow (the fixture's allowScripts): say so
    // here rather than through a confusing migrate failure later.
    await run(process.execPath, ['-e', "require('sqlite3')"], { cwd: tmp }).catch((err) => {
      throw new Error(`sqlite3 did not build in the fixture app (were its install scripts skipped?): ${err.message}`);
    });
    const dupes = findNestedOstro(path.join(tmp, 'node_modules'));
    if (dupes.length) throw new Error(`the fixture app has nested @ostro packages (expected one copy each): ${dupes.join(', ')}`);
    // Keep 1.x aside; its dependencies still resolve from the cache's node_modules (an ancestor).
    const legacyTmp = path.join(tmp, 'legacy', 'node_modules', '@ostro');
    fs.mkdirSync(legacyTmp, { recursive: true });
    fs.renameSync(path.join(tmp, 'node_modules', '@ostro', 'session'), path.join(legacyTmp, 'session'));
    fs.writeFileSync(path.join(tmp, '.complete'), new Date().toISOString());
    try {
      fs.renameSync(tmp, dir);
    } catch (err) {
      if (!fs.existsSync(path.join(dir, '.complete'))) throw err;
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  }
  // The cache may be shared by several checkouts: point it at this one on every run.
  forceSymlink(REPO, path.join(nodeModules, '@ostro', 'session'));
  return { dir, nodeModules, legacyDir };
}

/** `node_modules/**\/node_modules/@ostro/*` directories: second copies of framework packages. */
function findNestedOstro(nodeModules) {
  const found = [];
  const walk = (dir, depth) => {
    if (depth > 8) return;
    let entries;
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (!e.isDirectory()) continue; // symlinks are not followed
      const p = path.join(dir, e.name);
      if (e.name === 'node_modules' && fs.existsSync(path.join(p, '@ostro'))) found.push(path.relative(nodeModules, path.join(p, '@ostro')));
      walk(p, depth + 1);
    }
  };
  walk(nodeModules, 0);
  return found;
}

/** A fresh copy of the fixture app in a temp directory, sharing the cached node_modules. */
function makeApp(install) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ostro-app-'));
  fs.cpSync(FIXTURE, dir, { recursive: true, filter: (src) => path.basename(src) !== 'node_modules' });
  fs.symlinkSync(install.nodeModules, path.join(dir, 'node_modules'), 'dir');
  for (const d of ['storage/framework/sessions', 'storage/framework/cache/data', 'storage/logs', 'storage/app', 'database/migrations']) {
    fs.mkdirSync(path.join(dir, d), { recursive: true });
  }
  return dir;
}

/** A random app key in the format `node assistant key:generate` writes. */
function newAppKey() {
  return `base64:${crypto.randomBytes(32).toString('base64')}`;
}

/** The environment the app runs with: only what the test sets, plus PATH and HOME. */
function appEnv(env) {
  return { PATH: process.env.PATH, HOME: process.env.HOME, TMPDIR: process.env.TMPDIR || os.tmpdir(), APP_ENV: 'testing', APP_NAME: 'Ostro', ...env };
}

/**
 * Starts `node app.js` in `dir` and resolves once it listens (it prints `LISTENING <port>`).
 * @returns {Promise<{ port: number, base: string, child: import('child_process').ChildProcess, output: () => string, stop: () => Promise<void> }>}
 */
function startApp(dir, env, { timeoutMs = 30000 } = {}) {
  const child = spawn(process.execPath, ['app.js'], { cwd: dir, env: appEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { out += d; });
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGTERM');
    const t = setTimeout(() => {
      if (child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL');
    }, 5000);
    await exited;
    clearTimeout(t);
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      stop().then(() => reject(new Error(`the OstroJS app did not start within ${timeoutMs} ms:\n${out}`)));
    }, timeoutMs);
    const onData = () => {
      const m = /LISTENING (\d+)/.exec(out);
      if (!m) return;
      clearTimeout(timer);
      child.stdout.off('data', onData);
      const port = Number(m[1]);
      resolve({ port, base: `http://127.0.0.1:${port}`, child, output: () => out, stop });
    };
    child.stdout.on('data', onData);
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`the OstroJS app exited (${code ?? signal}) before listening:\n${out}`));
    });
  });
}

/** Runs `node assistant ...args` in `dir`. */
function assistant(dir, args, env) {
  return run(process.execPath, ['assistant', ...args], { cwd: dir, env: appEnv(env), timeout: 60000 });
}

/** A fetch-based client keeping one cookie jar, like a browser (no automatic redirects). */
class Browser {
  /** @param {string} base @param {Record<string, string>} [headers] sent with every request */
  constructor(base, headers = {}) {
    this.base = base;
    this.jar = new Map();
    this.headers = headers;
  }

  cookieHeader() {
    return [...this.jar].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  async request(pathname, { method = 'GET', headers = {}, body } = {}) {
    const h = { ...this.headers, ...headers };
    if (this.jar.size) h.cookie = this.cookieHeader();
    const res = await fetch(this.base + pathname, { method, headers: h, body, redirect: 'manual' });
    const setCookies = res.headers.getSetCookie();
    for (const line of setCookies) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attrs.some((a) => /^\s*max-age=(0|-)/i.test(a)) || value === '';
      if (expired) this.jar.delete(name);
      else this.jar.set(name, value);
    }
    const text = await res.text();
    let json;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.status, headers: res.headers, setCookies, text, json };
  }

  get(pathname, opts) {
    return this.request(pathname, opts);
  }

  post(pathname, form, opts = {}) {
    return this.request(pathname, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...(opts.headers || {}) },
      body: new URLSearchParams(form).toString(),
    });
  }
}

/** The session id in a signed `s:<id>.<sig>` cookie value (URL-encoded or not). */
function idOfCookie(value) {
  const v = decodeURIComponent(value);
  const m = /^s:(.*)\.[^.]*$/.exec(v);
  return m ? m[1] : null;
}

module.exports = { REPO, FIXTURE, ensureInstall, makeApp, newAppKey, startApp, assistant, Browser, idOfCookie, run };
