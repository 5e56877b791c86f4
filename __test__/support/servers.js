'use strict';
// Real redis-server and memcached processes for node:test suites, the twin of
// crates/session-core/tests/support/servers.rs: each on a free 127.0.0.1 port (or a unix
// socket) in its own temp dir, with no persistence, waited for until it answers (bounded), and
// stopped by pid by the suite's after() hook. Any still running when the test process exits
// are SIGKILLed then, so a failing suite leaves nothing behind.
//
// Fault injection: kill() (SIGKILL), freeze() (SIGSTOP, resolved once every thread stopped),
// thaw() (SIGCONT), restart() (same port, same files).
const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const READY_MS = 10_000;
const PORT_ATTEMPTS = 5;
const running = new Set();

process.on('exit', () => {
  for (const child of running) {
    try {
      process.kill(child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

const delay = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A port nothing listened on a moment ago. */
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Sends `request` and resolves true when the reply starts with one of `expect`. */
function asks(connectOptions, request, expect) {
  return new Promise((resolve) => {
    const sock = net.connect(connectOptions);
    let buf = '';
    const done = (ok) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(500, () => done(false));
    sock.once('error', () => done(false));
    sock.once('connect', () => sock.write(request));
    sock.on('data', (d) => {
      buf += d;
      if (expect.some((e) => buf.startsWith(e))) done(true);
      else if (buf.includes('\n')) done(false);
    });
  });
}

function accepts(port) {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });
}

/** The state letters of every thread of `pid` (from /proc). */
function threadStates(pid) {
  try {
    return fs.readdirSync(`/proc/${pid}/task`).map((t) => {
      const stat = fs.readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8');
      return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    });
  } catch {
    return [];
  }
}

/** One server process and how to start it again. */
class ServerProcess {
  constructor({ name, program, args, dir, probe }) {
    this.name = name;
    this.program = program;
    this.args = args;
    this.dir = dir;
    this.log = path.join(dir, `${program}.log`);
    this.probe = probe;
    this.child = null;
  }

  get pid() {
    if (!this.child) throw new Error(`${this.name} is not running`);
    return this.child.pid;
  }

  logText() {
    try {
      return fs.readFileSync(this.log, 'utf8');
    } catch {
      return '';
    }
  }

  /** Spawns and waits until it answers; rejects when it exits first or takes too long. */
  async spawn() {
    const out = fs.openSync(this.log, 'a');
    const child = spawn(this.program, this.args, { stdio: ['ignore', out, out] });
    fs.closeSync(out);
    const spawned = new Promise((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', (e) => reject(e.code === 'ENOENT'
        ? new Error(`${this.program} is not installed: these tests need it (.ci/run installs it with apt-get)`)
        : e));
    });
    await spawned;
    this.child = child;
    running.add(child);
    let exited = null;
    child.once('exit', (code, signal) => {
      exited = signal || code;
      running.delete(child);
    });
    const deadline = Date.now() + READY_MS;
    for (;;) {
      if (await this.probe()) return;
      if (exited !== null) {
        this.child = null;
        throw new Error(`${this.name} exited early (${exited})\n${this.logText()}`);
      }
      if (Date.now() > deadline) {
        await this.kill();
        throw new Error(`${this.name} did not answer within ${READY_MS} ms\n${this.logText()}`);
      }
      await delay(20);
    }
  }

  /** SIGKILL and wait for the exit: gone with its connections, as in a crash. */
  async kill() {
    const child = this.child;
    if (!child) return;
    this.child = null;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    process.kill(child.pid, 'SIGKILL');
    await exited;
  }

  /** SIGSTOP; resolves once every thread is stopped (the signal itself is asynchronous). */
  async freeze() {
    const pid = this.pid;
    process.kill(pid, 'SIGSTOP');
    const deadline = Date.now() + READY_MS;
    while (!threadStates(pid).every((s) => s === 'T' || s === 't')) {
      if (Date.now() > deadline) throw new Error(`${this.name} did not stop`);
      await delay(2);
    }
  }

  /** SIGCONT after freeze(). */
  thaw() {
    process.kill(this.pid, 'SIGCONT');
  }

  /** Kills it if running, then starts it again on the same port. */
  async restart() {
    await this.kill();
    await this.spawn();
  }

  /** Kills it and removes its directory. */
  async stop() {
    await this.kill();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

function tmp() {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'ostro-srv-'));
}

/** Starts `make(port)` on a free port, trying another port when the server exits early. */
async function onFreePort(make) {
  const errors = [];
  for (let i = 0; i < PORT_ATTEMPTS; i++) {
    const port = await freePort();
    const srv = make(port);
    try {
      await srv.spawn();
      return srv;
    } catch (e) {
      if (/not installed/.test(e.message)) throw e;
      errors.push(e.message);
    }
  }
  throw new Error(`server did not start:\n${errors.join('\n---\n')}`);
}

/** A throwaway CA and a server certificate for 127.0.0.1/localhost, made with openssl. */
function makeTestCa(dir, name = 'test') {
  const f = (s) => path.join(dir, `${name}-${s}`);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  const run = (args) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  run(['req', '-x509', ...ec, '-keyout', f('ca.key'), '-out', f('ca.crt'), '-days', '2',
    '-subj', `/CN=ostro-session test CA ${name}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  run(['req', ...ec, '-keyout', f('server.key'), '-out', f('server.csr'), '-subj', '/CN=localhost']);
  fs.writeFileSync(f('ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n'
    + 'keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n');
  run(['x509', '-req', '-in', f('server.csr'), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial',
    '-out', f('server.crt'), '-days', '2', '-extfile', f('ext.cnf')]);
  return { caFile: f('ca.crt'), cert: f('server.crt'), key: f('server.key') };
}

const PONG = ['+PONG', '-NOAUTH'];

/**
 * Starts a redis-server with no persistence.
 * @param {{ tls?: boolean, unix?: boolean, args?: string[] }} [options] `tls`: TLS only, with a
 *   certificate from a fresh test CA (`server.caFile`); `unix`: a unix socket only
 *   (`server.socket`); `args`: extra redis-server arguments
 */
async function startRedis(options = {}) {
  const dir = tmp();
  const base = ['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--logfile', ''];
  const extra = options.args || [];
  let srv;
  if (options.unix) {
    const socket = path.join(dir, 'redis.sock');
    srv = new ServerProcess({
      name: 'redis-server (unix)',
      program: 'redis-server',
      args: [...base, '--port', '0', '--unixsocket', socket, '--unixsocketperm', '700', ...extra],
      dir,
      probe: () => asks({ path: socket }, 'PING\r\n', PONG),
    });
    await srv.spawn();
    srv.socket = socket;
    srv.port = 0;
    srv.url = `redis+unix://${socket}`;
    return srv;
  }
  const tls = options.tls ? makeTestCa(dir, 'redis') : null;
  srv = await onFreePort((port) => {
    const s = new ServerProcess({
      name: tls ? 'redis-server (tls)' : 'redis-server',
      program: 'redis-server',
      args: tls
        ? [...base, '--port', '0', '--tls-port', String(port), '--tls-cert-file', tls.cert, '--tls-key-file', tls.key,
          '--tls-ca-cert-file', tls.caFile, '--tls-auth-clients', 'no', ...extra]
        : [...base, '--port', String(port), ...extra],
      dir,
      // The harness speaks no TLS: a TLS server is ready when it logs so and accepts.
      probe: tls
        ? async () => s.logText().includes('Ready to accept connections') && accepts(port)
        : () => asks({ host: '127.0.0.1', port }, 'PING\r\n', PONG),
    });
    s.port = port;
    return s;
  });
  srv.caFile = tls && tls.caFile;
  srv.url = `${tls ? 'rediss' : 'redis'}://127.0.0.1:${srv.port}`;
  return srv;
}

/**
 * Starts a memcached with UDP off.
 * @param {{ args?: string[] }} [options] extra memcached arguments (e.g. `['-I', '2m']`)
 */
async function startMemcached(options = {}) {
  const dir = tmp();
  // memcached refuses to run as root unless told which user to be.
  const asRoot = process.getuid && process.getuid() === 0 ? ['-u', 'root'] : [];
  const srv = await onFreePort((port) => {
    const s = new ServerProcess({
      name: 'memcached',
      program: 'memcached',
      args: ['-l', '127.0.0.1', '-p', String(port), '-U', '0', ...asRoot, ...(options.args || [])],
      dir,
      probe: () => asks({ host: '127.0.0.1', port }, 'version\r\n', ['VERSION']),
    });
    s.port = port;
    return s;
  });
  srv.addr = `127.0.0.1:${srv.port}`;
  return srv;
}

module.exports = { startRedis, startMemcached, makeTestCa, freePort };
