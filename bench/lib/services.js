'use strict';
// Our own redis-server and memcached for the benchmark: started on free 127.0.0.1 ports with no
// persistence, waited for until they answer, and stopped by pid, also when the run fails.
// Child processes of the harness (benchmark workers) are tracked here too, so one exit hook
// stops everything this run started and nothing else.

const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');

const started = new Set(); // ChildProcess objects this run started

let hooked = false;
function hookExit() {
  if (hooked) return;
  hooked = true;
  const killAll = () => {
    for (const child of started) {
      if (child.exitCode === null && child.signalCode === null) {
        try { process.kill(child.pid, 'SIGKILL'); } catch { /* already gone */ }
      }
    }
    started.clear();
  };
  process.on('exit', killAll);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.once(sig, () => {
      killAll();
      process.exit(128 + (sig === 'SIGINT' ? 2 : sig === 'SIGTERM' ? 15 : 1));
    });
  }
}

/** Registers a child so that it is killed by pid when this process exits. */
function track(child) {
  hookExit();
  started.add(child);
  child.once('exit', () => started.delete(child));
  return child;
}

/** Stops a child by pid: SIGTERM, then SIGKILL after `graceMs`. Resolves when it has exited. */
function stop(child, graceMs = 3000) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      try { process.kill(child.pid, 'SIGKILL'); } catch { /* gone */ }
    }, graceMs);
    child.once('exit', () => { clearTimeout(timer); resolve(); });
    try { process.kill(child.pid, 'SIGTERM'); } catch { clearTimeout(timer); resolve(); }
  });
}

/** A port that was free a moment ago on 127.0.0.1 (the server start retries if it is taken). */
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Sends `probe` until the reply matches `expect`, or rejects after `ms`. */
async function waitAnswer(port, probe, expect, ms, child, log) {
  const deadline = Date.now() + ms;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`server exited early (${child.exitCode ?? child.signalCode}): ${log()}`);
    const ok = await new Promise((resolve) => {
      const sock = net.connect(port, '127.0.0.1');
      let buf = '';
      const done = (v) => { sock.destroy(); resolve(v); };
      sock.setTimeout(500, () => done(false));
      sock.on('error', () => done(false));
      sock.on('connect', () => sock.write(probe));
      sock.on('data', (d) => { buf += d; if (expect.test(buf)) done(true); });
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`server on port ${port} did not answer within ${ms} ms: ${log()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function versionOf(cmd, args, re) {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.error) return null;
  const m = re.exec(`${r.stdout}${r.stderr}`);
  return m ? m[1] : 'unknown';
}

async function startServer(kind, workDir) {
  const bin = kind === 'redis' ? 'redis-server' : 'memcached';
  const version = kind === 'redis'
    ? versionOf('redis-server', ['--version'], /v=(\S+)/)
    : versionOf('memcached', ['-V'], /memcached (\S+)/);
  if (version === null) return { kind, error: `${bin} is not installed (apt-get install ${kind === 'redis' ? 'redis-server' : 'memcached'})` };
  let lastErr;
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const args = kind === 'redis'
      ? ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
        '--dir', workDir, '--protected-mode', 'yes', '--enable-debug-command', 'local', '--loglevel', 'warning']
      : ['-l', '127.0.0.1', '-p', String(port), '-U', '0', '-m', '2048', '-t', '2', '-c', '4096',
        ...(process.getuid && process.getuid() === 0 ? ['-u', 'root'] : [])];
    const child = track(spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] }));
    let out = '';
    child.stdout.on('data', (d) => { out = (out + d).slice(-2000); });
    child.stderr.on('data', (d) => { out = (out + d).slice(-2000); });
    try {
      if (kind === 'redis') await waitAnswer(port, 'PING\r\n', /\+PONG/, 10000, child, () => out);
      else await waitAnswer(port, 'version\r\n', /VERSION/, 10000, child, () => out);
      return { kind, port, pid: child.pid, child, version, url: kind === 'redis' ? `redis://127.0.0.1:${port}` : `127.0.0.1:${port}` };
    } catch (err) {
      lastErr = err;
      await stop(child);
    }
  }
  return { kind, error: String(lastErr && lastErr.message) };
}

/** CPU time (µs) a process has used so far, from /proc (Linux); null elsewhere. */
function processCpuUs(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[11] = utime, fields[12] = stime, in clock ticks (100 Hz on Linux).
    return ((Number(fields[11]) + Number(fields[12])) * 1e6) / 100;
  } catch {
    return null;
  }
}

/** Starts redis and memcached for the run; each entry has `error` instead of `port` if it could not start. */
async function startServices(workDir, kinds = ['redis', 'memcached']) {
  fs.mkdirSync(workDir, { recursive: true });
  const out = {};
  for (const k of kinds) out[k] = await startServer(k, path.join(workDir));
  return out;
}

async function stopServices(services) {
  await Promise.all(Object.values(services).map((s) => (s && s.child ? stop(s.child) : null)));
}

module.exports = { startServices, stopServices, track, stop, freePort, processCpuUs };
