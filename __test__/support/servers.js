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
const tls = require('node:tls');
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

/**
 * A socket to 127.0.0.1:`port`, over TLS trusting only the CA in `caFile` when one is given;
 * `ready` is the event after which it can be written to.
 */
function dial(port, caFile) {
  if (!caFile) return { sock: net.connect({ host: '127.0.0.1', port }), ready: 'connect' };
  return { sock: tls.connect({ host: '127.0.0.1', port, ca: fs.readFileSync(caFile) }), ready: 'secureConnect' };
}

/**
 * Sends `request` and resolves true when the reply starts with one of `expect`. `connectOptions`:
 * `{ path }` (a unix socket), `{ port }`, or `{ port, caFile }` (TLS).
 */
function asks(connectOptions, request, expect) {
  return new Promise((resolve) => {
    const { sock, ready } = connectOptions.path
      ? { sock: net.connect(connectOptions), ready: 'connect' }
      : dial(connectOptions.port, connectOptions.caFile);
    let buf = '';
    const done = (ok) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(500, () => done(false));
    sock.once('error', () => done(false));
    sock.once(ready, () => sock.write(request));
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

/**
 * A throwaway CA and a server certificate for 127.0.0.1/localhost, made with openssl.
 * `clientAuth`: the certificate may serve as a client's too (a Redis Cluster's bus over TLS always
 * asks the connecting node for one, whatever tls-auth-clients says).
 */
function makeTestCa(dir, name = 'test', { clientAuth = false } = {}) {
  const f = (s) => path.join(dir, `${name}-${s}`);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  const run = (args) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  run(['req', '-x509', ...ec, '-keyout', f('ca.key'), '-out', f('ca.crt'), '-days', '2',
    '-subj', `/CN=ostro-session test CA ${name}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  run(['req', ...ec, '-keyout', f('server.key'), '-out', f('server.csr'), '-subj', '/CN=localhost']);
  fs.writeFileSync(f('ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n'
    + `keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth${clientAuth ? ',clientAuth' : ''}\n`);
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

// ----- Redis topologies: a cluster, and a master/replica pair under Sentinel ------------------

/**
 * Commands over one fresh socket (AUTH first when `auth` is given; TLS trusting the CA in
 * `caFile` when given); resolves to the last one's decoded reply: a string, a number, null, an
 * array, or an Error for a server error (an error from an earlier command rejects). The tests'
 * view of a server, independent of the driver.
 */
function commands(port, list, auth, caFile) {
  const frame = (a) => `*${a.length}\r\n${a.map((x) => `$${Buffer.byteLength(String(x))}\r\n${x}\r\n`).join('')}`;
  const all = auth ? [['AUTH', auth.user, auth.password], ...list] : list;
  return new Promise((resolve, reject) => {
    const { sock, ready } = dial(port, caFile);
    let buf = Buffer.alloc(0);
    let left = all.length;
    sock.setTimeout(5000, () => { sock.destroy(); reject(new Error(`127.0.0.1:${port} did not answer ${all[all.length - 1][0]}`)); });
    sock.once('error', reject);
    sock.once(ready, () => sock.write(all.map(frame).join('')));
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const r = parseReply(buf, 0);
        if (r === null) return;
        buf = buf.subarray(r.end);
        left -= 1;
        if (left === 0) {
          sock.destroy();
          resolve(r.value);
          return;
        }
        if (r.value instanceof Error) {
          sock.destroy();
          reject(r.value);
          return;
        }
      }
    });
  });
}

/** One command; see `commands`. */
function command(port, args, auth, caFile) {
  return commands(port, [args], auth, caFile);
}

/** Decodes one RESP2 reply at `at`, or null when it is incomplete. */
function parseReply(buf, at) {
  const eol = buf.indexOf('\r\n', at);
  if (eol < 0) return null;
  const line = buf.toString('utf8', at + 1, eol);
  const next = eol + 2;
  switch (String.fromCharCode(buf[at])) {
    case '+': return { value: line, end: next };
    case '-': return { value: new Error(line), end: next };
    case ':': return { value: Number(line), end: next };
    case '$': {
      const n = Number(line);
      if (n < 0) return { value: null, end: next };
      if (buf.length < next + n + 2) return null;
      return { value: buf.toString('utf8', next, next + n), end: next + n + 2 };
    }
    case '*': {
      const n = Number(line);
      if (n < 0) return { value: null, end: next };
      const out = [];
      let pos = next;
      for (let i = 0; i < n; i++) {
        const r = parseReply(buf, pos);
        if (r === null) return null;
        out.push(r.value);
        pos = r.end;
      }
      return { value: out, end: pos };
    }
    default: throw new Error(`unexpected RESP reply: ${line}`);
  }
}

/**
 * Runs redis-cli (async: the event loop stays free for the load the tests put on), over TLS
 * trusting the CA in `caFile` when given.
 */
function redisCli(args, auth, caFile) {
  const full = [...(auth ? ['--user', auth.user, '--pass', auth.password, '--no-auth-warning'] : []),
    ...(caFile ? ['--tls', '--cacert', caFile] : []), ...args];
  return new Promise((resolve, reject) => {
    const child = spawn('redis-cli', full, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { out += d; });
    child.once('error', (e) => reject(e.code === 'ENOENT' ? new Error('redis-cli is not installed: these tests need it (.ci/run installs it with apt-get)') : e));
    child.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`redis-cli ${args.join(' ')} exited ${code}:\n${out}`))));
  });
}

async function waitFor(what, check, ms = 20_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    let last;
    try {
      if (await check()) return;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ''}`);
    await delay(50);
  }
}

/** Redis config lines for an ACL user (the default user off) when `acl` is given. */
function aclLines(acl) {
  if (!acl) return [];
  return ['user default off', `user ${acl.user} on >${acl.password} ~* &* +@all`,
    `masteruser ${acl.user}`, `masterauth ${acl.password}`];
}

/**
 * The redis-server arguments (or sentinel config lines, `asLines`) that make a server TLS only on
 * `port`, with the certificate of the test CA `certs` (from makeTestCa), replicating over TLS
 * too. Clients need no certificate of their own.
 */
function tlsArgs(certs, port, asLines = false) {
  const pairs = [['port', '0'], ['tls-port', String(port)], ['tls-cert-file', certs.cert], ['tls-key-file', certs.key],
    ['tls-ca-cert-file', certs.caFile], ['tls-auth-clients', 'no'], ['tls-replication', 'yes']];
  return asLines ? pairs.map(([k, v]) => `${k} ${v}`) : pairs.flatMap(([k, v]) => [`--${k}`, v]);
}

/**
 * One redis-server of a topology, in `dir`, on a free port; `acl` goes into its config file;
 * with `certs` (a test CA, from makeTestCa), TLS only on that port (see tlsArgs).
 */
function topologyNode(name, dir, extra, acl, certs) {
  fs.mkdirSync(dir, { recursive: true });
  const conf = path.join(dir, 'redis.conf');
  fs.writeFileSync(conf, `${aclLines(acl).join('\n')}\n`);
  return onFreePort((port) => {
    const s = new ServerProcess({
      name: certs ? `${name} (tls)` : name,
      program: 'redis-server',
      // Replicas sync at once (the diskless sync otherwise waits 5 s for more replicas).
      args: [conf, '--bind', '127.0.0.1', ...(certs ? tlsArgs(certs, port) : ['--port', String(port)]),
        '--save', '', '--appendonly', 'no', '--dir', dir,
        '--logfile', '', '--repl-diskless-sync-delay', '0', ...extra(port)],
      dir,
      probe: () => asks({ port, caFile: certs && certs.caFile }, 'PING\r\n', PONG),
    });
    s.port = port;
    return s;
  });
}

/**
 * A Redis Cluster of `masters` masters with one replica each (6 nodes by default), made with
 * `redis-cli --cluster create … --cluster-replicas 1 --cluster-yes`, every node in its own
 * directory under one temp dir, cluster bus on a second free port.
 * @param {{ acl?: { user: string, password: string }, nodeTimeoutMs?: number, masters?: number, tls?: boolean }} [options]
 *   `acl`: the default user is off and this user has every right (clients and replicas log in as
 *   it); `nodeTimeoutMs`: cluster-node-timeout (default 1000, so that a failover takes seconds);
 *   `tls`: every node TLS only (`--port 0 --tls-port`), the cluster bus and replication over TLS
 *   too (`tls-cluster`, `tls-replication`), with a certificate of one fresh test CA
 *   (`cluster.caFile`), so the nodes announce their TLS ports
 */
async function startRedisCluster(options = {}) {
  const dir = tmp();
  const auth = options.acl || null;
  const masters = options.masters || 3;
  const certs = options.tls ? makeTestCa(dir, 'cluster', { clientAuth: true }) : null;
  const caFile = certs && certs.caFile;
  const nodes = [];
  const cluster = {
    dir,
    auth,
    caFile,
    nodes,
    get urls() {
      const cred = auth ? `${auth.user}:${auth.password}@` : '';
      return nodes.map((n) => `${certs ? 'rediss' : 'redis'}://${cred}127.0.0.1:${n.port}`);
    },
    /** A command to the node on `port`. */
    command: (port, args) => command(port, args, auth, caFile),
    /** Commands on one connection to the node on `port`; the last reply. */
    commands: (port, list) => commands(port, list, auth, caFile),
    /** redis-cli with the cluster's credentials (and CA). */
    cli: (args) => redisCli(args, auth, caFile),
    /** Every live node's view: `{ id, port, role, masterId, slots: [[from, to]…], failed }`. */
    async topology() {
      for (const n of nodes) {
        if (!n.child) continue;
        try {
          return parseClusterNodes(await cluster.command(n.port, ['CLUSTER', 'NODES']));
        } catch {
          // try the next node
        }
      }
      throw new Error('no cluster node answers');
    },
    /** The node process on `port`. */
    node: (port) => nodes.find((n) => n.port === port),
    /** The master that holds `slot`, from a live node's view. */
    async masterOf(slot) {
      const t = await cluster.topology();
      return t.find((n) => n.role === 'master' && !n.failed && n.slots.some(([a, b]) => slot >= a && slot <= b));
    },
    /**
     * Resolves once every live node reports cluster_state:ok, every live replica is in sync
     * with its master, and they agree on the masters.
     */
    async waitHealthy(ms) {
      await waitFor('the cluster to be healthy', async () => {
        const views = [];
        for (const n of nodes) {
          if (!n.child) continue;
          const info = await cluster.command(n.port, ['CLUSTER', 'INFO']);
          if (!/cluster_state:ok/.test(info)) return false;
          const repl = await cluster.command(n.port, ['INFO', 'replication']);
          if (/role:slave/.test(repl) && !/master_link_status:up/.test(repl)) return false;
          const view = parseClusterNodes(await cluster.command(n.port, ['CLUSTER', 'NODES']));
          const live = view.filter((x) => x.role === 'master' && !x.failed);
          // A node redis-cli has not made a replica yet is still a master without slots.
          if (live.some((x) => x.slots.length === 0)) return false;
          views.push(live.map((x) => x.port).sort().join(','));
        }
        return views.every((v) => v === views[0]);
      }, ms);
    },
    async stop() {
      await Promise.all(nodes.map((n) => n.kill()));
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    for (let i = 0; i < masters * 2; i++) {
      const nodeDir = path.join(dir, `node${i}`);
      const busPort = await freePort();
      nodes.push(await topologyNode(`redis-server (cluster node ${i})`, nodeDir, () => [
        '--cluster-enabled', 'yes', '--cluster-config-file', path.join(nodeDir, 'nodes.conf'),
        '--cluster-node-timeout', String(options.nodeTimeoutMs || 1000), '--cluster-port', String(busPort),
        // A replica with stale data may still take over: the tests kill masters on purpose.
        '--cluster-replica-validity-factor', '0', ...(certs ? ['--tls-cluster', 'yes'] : [])], auth, certs));
    }
    await cluster.cli(['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '1', '--cluster-yes']);
    await cluster.waitHealthy(20_000);
  } catch (e) {
    await cluster.stop();
    throw e;
  }
  return cluster;
}

/** `CLUSTER NODES` as objects. */
function parseClusterNodes(text) {
  return String(text).trim().split('\n').map((line) => {
    const f = line.split(' ');
    const port = Number(f[1].split('@')[0].split(':')[1]);
    const flags = f[2].split(',');
    return {
      id: f[0],
      port,
      role: flags.includes('master') ? 'master' : 'replica',
      masterId: f[3] === '-' ? null : f[3],
      failed: flags.includes('fail') || flags.includes('fail?') || f[7] === 'disconnected',
      slots: f.slice(8).filter((s) => !s.startsWith('[')).map((s) => {
        const [a, b] = s.split('-').map(Number);
        return [a, b === undefined ? a : b];
      }),
    };
  });
}

/**
 * A master, a replica and three sentinels watching them as `masterName` (quorum 2,
 * down-after 1000 ms), each in its own directory under one temp dir.
 * @param {{ acl?: { user: string, password: string }, masterName?: string, tls?: boolean }} [options]
 *   `acl`: the data nodes' default user is off; replicas and sentinels log in as this user;
 *   `tls`: every server and sentinel TLS only (`port 0`, `tls-port`), replication and the
 *   sentinels' own connections over TLS too (`tls-replication`), with a certificate of one fresh
 *   test CA (`topo.caFile`)
 */
async function startRedisSentinel(options = {}) {
  const dir = tmp();
  const auth = options.acl || null;
  const masterName = options.masterName || 'sessions';
  const certs = options.tls ? makeTestCa(dir, 'sentinel') : null;
  const caFile = certs && certs.caFile;
  const data = [];
  const sentinels = [];
  const topo = {
    dir,
    auth,
    caFile,
    masterName,
    data,
    sentinels,
    get sentinelUrls() {
      return sentinels.map((s) => `${certs ? 'rediss' : 'redis'}://127.0.0.1:${s.port}`);
    },
    command: (port, args) => command(port, args, auth, caFile),
    commands: (port, list) => commands(port, list, auth, caFile),
    /** A command to a sentinel (no login: the sentinels have no users). */
    sentinelCommand: (port, args) => command(port, args, null, caFile),
    /** The master's port as the sentinels report it (all live ones agreeing). */
    async masterPort() {
      const ports = new Set();
      for (const s of sentinels) {
        if (!s.child) continue;
        const r = await topo.sentinelCommand(s.port, ['SENTINEL', 'GET-MASTER-ADDR-BY-NAME', masterName]);
        ports.add(Number(r[1]));
      }
      if (ports.size !== 1) throw new Error(`the sentinels disagree on the master: ${[...ports]}`);
      return [...ports][0];
    },
    node: (port) => data.find((n) => n.port === port),
    async stop() {
      await Promise.all([...data, ...sentinels].map((n) => n.kill()));
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    const master = await topologyNode('redis-server (sentinel master)', path.join(dir, 'master'), () => [], auth, certs);
    data.push(master);
    data.push(await topologyNode('redis-server (sentinel replica)', path.join(dir, 'replica'), () => [
      '--replicaof', '127.0.0.1', String(master.port)], auth, certs));
    await waitFor('the replica to sync', async () => /master_link_status:up/.test(
      await topo.command(data[1].port, ['INFO', 'replication'])));
    for (let i = 0; i < 3; i++) {
      const sdir = path.join(dir, `sentinel${i}`);
      fs.mkdirSync(sdir, { recursive: true });
      const s = await onFreePort((port) => {
        const conf = path.join(sdir, 'sentinel.conf');
        fs.writeFileSync(conf, [
          ...(certs ? tlsArgs(certs, port, true) : [`port ${port}`]), 'bind 127.0.0.1', `dir ${sdir}`, 'logfile ""',
          `sentinel monitor ${masterName} 127.0.0.1 ${master.port} 2`,
          `sentinel down-after-milliseconds ${masterName} 1000`,
          `sentinel failover-timeout ${masterName} 4000`,
          ...(auth ? [`sentinel auth-user ${masterName} ${auth.user}`, `sentinel auth-pass ${masterName} ${auth.password}`] : []),
          '',
        ].join('\n'));
        const p = new ServerProcess({
          name: `redis-sentinel ${i}${certs ? ' (tls)' : ''}`,
          program: 'redis-server',
          args: [conf, '--sentinel'],
          dir: sdir,
          probe: () => asks({ port, caFile }, 'PING\r\n', PONG),
        });
        p.port = port;
        return p;
      });
      sentinels.push(s);
    }
    // Ready once every sentinel knows the replica and the other two sentinels.
    await waitFor('the sentinels to discover each other', async () => {
      for (const s of sentinels) {
        const m = await topo.sentinelCommand(s.port, ['SENTINEL', 'MASTER', masterName]);
        const f = {};
        for (let i = 0; i + 1 < m.length; i += 2) f[m[i]] = m[i + 1];
        if (Number(f['num-slaves']) < 1 || Number(f['num-other-sentinels']) < 2) return false;
      }
      return true;
    }, 30_000);
  } catch (e) {
    await topo.stop();
    throw e;
  }
  return topo;
}

module.exports = { startRedis, startMemcached, makeTestCa, freePort, startRedisCluster, startRedisSentinel, command, commands };

