'use strict';
// The redis driver: sessions as Redis keys (`SET prefix+id payload EX ttl`) that Redis expires
// itself. The Rust driver is the client: no npm redis package is needed. One connection per
// handler, shared by concurrent requests, reconnecting by itself after an outage.
const native = require('../native');
const { NativeSessionHandler, tombstoneSecondsOf, minutesOf } = require('../handlers');
const { sessionError } = require('../errors');
const { rejectUnknown } = require('../options');
const { MAX_MIN_REPLICAS } = require('../config');

const CONNECTION_KEYS = ['host', 'port', 'username', 'password', 'db', 'database', 'tls'];
const CLUSTER_KEYS = ['cluster', 'username', 'password', 'tls'];
const SENTINEL_KEYS = ['masterName', 'nodes', 'username', 'password', 'db', 'database', 'tls'];
const OPTION_KEYS = ['prefix', 'minutes', 'connectTimeoutMs', 'commandTimeoutMs', 'tls', 'minReplicas', 'tombstoneSeconds'];

const invalid = (message) => sessionError('ERR_SESSION_INVALID_OPTION', message);

function isObject(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** A whole number from a number or a numeric string; `undefined` stays undefined. */
function wholeOf(name, v, max) {
  if (v === undefined || v === null) return undefined;
  const n = typeof v === 'string' && /^\d+$/.test(v.trim()) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > max) {
    throw invalid(`${name} must be a whole number from 0 to ${max}`);
  }
  return n;
}

function stringOf(name, v) {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw invalid(`${name} must be a string`);
  return v;
}

function msOf(name, v) {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 1 || v > 600000) {
    throw invalid(`${name} must be a number of milliseconds from 1 to 600000, got ${String(v)}`);
  }
  return v;
}

/** The CA file from `{ tls: { caFile } }`, or undefined. */
function caFileOf(tls) {
  if (tls === undefined || tls === null || typeof tls === 'boolean') return undefined;
  if (!isObject(tls)) throw invalid('the tls option must be true or an object like { caFile }');
  rejectUnknown(tls, ['caFile'], 'RedisSessionHandler tls');
  return stringOf('tls.caFile', tls.caFile);
}

/** The connection object for the addon; never puts the password in a message. */
function connectionOf(conn) {
  if (typeof conn === 'string') {
    if (conn === '') throw invalid('RedisSessionHandler needs a redis://, rediss:// or redis+unix:// URL');
    return { connection: conn, caFile: undefined };
  }
  if (!isObject(conn)) {
    throw invalid('RedisSessionHandler needs a URL string or an object { host, port, username, password, db, tls }');
  }
  if (Object.hasOwn(conn, 'cluster')) return clusterOf(conn);
  if (Object.hasOwn(conn, 'sentinel')) return sentinelOf(conn);
  if (Object.hasOwn(conn, 'sentinels')) throw invalid('RedisSessionHandler connection: "sentinels" is not an option; use { sentinel: { masterName, nodes: [urls] } }');
  rejectUnknown(conn, CONNECTION_KEYS, 'RedisSessionHandler connection');
  const tls = conn.tls;
  if (tls !== undefined && tls !== null && typeof tls !== 'boolean' && !isObject(tls)) {
    throw invalid('the tls field must be true, false or an object like { caFile }');
  }
  return {
    connection: {
      host: stringOf('redis host', conn.host),
      port: wholeOf('redis port', conn.port, 65535),
      username: stringOf('redis username', conn.username),
      password: stringOf('redis password', conn.password),
      // `database` as in Laravel's config.
      db: wholeOf('redis db', conn.db !== undefined ? conn.db : conn.database, 1e9),
      tls: Boolean(tls),
    },
    caFile: caFileOf(tls),
  };
}

/** A list of node URLs (the core checks that it is not empty and what each URL says). */
function nodesOf(name, v) {
  if (!Array.isArray(v) || v.some((u) => typeof u !== 'string')) {
    throw invalid(`"${name}" must be a list of redis:// or rediss:// URL strings`);
  }
  return v;
}

function tlsFlagOf(name, tls) {
  if (tls !== undefined && tls !== null && typeof tls !== 'boolean' && !isObject(tls)) {
    throw invalid(`the ${name} field must be true, false or an object like { caFile }`);
  }
  return Boolean(tls);
}

/** `{ cluster: [urls], username?, password?, tls? }`. */
function clusterOf(conn) {
  rejectUnknown(conn, CLUSTER_KEYS, 'RedisSessionHandler cluster connection');
  return {
    connection: {
      cluster: nodesOf('cluster', conn.cluster),
      username: stringOf('cluster username', conn.username),
      password: stringOf('cluster password', conn.password),
      tls: tlsFlagOf('tls', conn.tls),
    },
    caFile: caFileOf(conn.tls),
  };
}

/** `{ sentinel: { masterName, nodes: [urls], username?, password?, db?, tls? } }`. */
function sentinelOf(conn) {
  rejectUnknown(conn, ['sentinel'], 'RedisSessionHandler sentinel connection');
  const s = conn.sentinel;
  if (!isObject(s)) throw invalid('sentinel must be an object { masterName, nodes: [urls], username?, password?, tls? }');
  rejectUnknown(s, SENTINEL_KEYS, 'RedisSessionHandler sentinel');
  if (typeof s.masterName !== 'string') throw invalid('sentinel.masterName must be the name the sentinels monitor the master under');
  return {
    connection: {
      sentinel: {
        masterName: s.masterName,
        nodes: nodesOf('sentinel.nodes', s.nodes),
        username: stringOf('sentinel.username', s.username),
        password: stringOf('sentinel.password', s.password),
        db: wholeOf('sentinel.db', s.db !== undefined ? s.db : s.database, 1e9),
        tls: tlsFlagOf('sentinel.tls', s.tls),
      },
    },
    caFile: caFileOf(s.tls),
  };
}

/** Sessions in Redis; the central store for apps served by several processes or machines. */
class RedisSessionHandler extends NativeSessionHandler {
  /**
   * Nothing is connected here: the first operation connects. While Redis is down every
   * operation rejects within `commandTimeoutMs` (+0.5 s) with `ERR_SESSION_UNAVAILABLE`, and
   * recovers by itself once Redis is back.
   * @param {string | object} connection
   *   `redis://[user:pass@]host:port/db`, `rediss://…` (TLS, certificates verified) or
   *   `redis+unix:///path`, or the same as an object `{ host, port, username, password, db, tls }`;
   *   a Redis Cluster `{ cluster: [nodeUrls], username?, password?, tls? }`; or a master found
   *   through Sentinel `{ sentinel: { masterName, nodes: [sentinelUrls], username?, password?, db?, tls? } }`
   *   (credentials in a sentinel URL are the sentinels' own; `username`/`password` are the master's)
   * @param {{ prefix?: string, minutes?: number, connectTimeoutMs?: number, commandTimeoutMs?: number, tls?: { caFile?: string }, minReplicas?: number, tombstoneSeconds?: number }} [options]
   *   `prefix` of every key (default `'ostro_session:'`), `minutes` lifetime (default 120),
   *   timeouts in ms (default 2000 each), `tls.caFile` a PEM CA bundle to trust instead of the
   *   system roots, `minReplicas` replicas that must acknowledge a save or destroy before it
   *   resolves (`WAIT`; default 0: a save acknowledged by the master alone can be lost in a failover),
   *   `tombstoneSeconds` the TTL of a destroyed session's tombstone (1 to the lifetime; default
   *   the lifetime)
   */
  constructor(connection, options) {
    if (options !== undefined && options !== null && !isObject(options)) {
      throw invalid('RedisSessionHandler options must be an object');
    }
    rejectUnknown(options, OPTION_KEYS, 'RedisSessionHandler options');
    const o = options || {};
    const c = connectionOf(connection);
    const caFile = caFileOf(o.tls) || c.caFile;
    const handle = native.createRedisHandler(c.connection, {
      prefix: stringOf('prefix', o.prefix),
      minutes: minutesOf(o.minutes),
      connectTimeoutMs: msOf('connectTimeoutMs', o.connectTimeoutMs),
      commandTimeoutMs: msOf('commandTimeoutMs', o.commandTimeoutMs),
      caFile,
      minReplicas: wholeOf('minReplicas', o.minReplicas, MAX_MIN_REPLICAS),
      tombstoneSeconds: tombstoneSecondsOf(o.tombstoneSeconds, minutesOf(o.minutes)),
    });
    super(handle, null);
  }
}

module.exports = { RedisSessionHandler };
