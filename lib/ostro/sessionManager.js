'use strict';
// `@ostro/session/sessionManager`: the package's historical main, the SessionManager OstroJS
// binds as the `session` singleton. It is the generic manager plus what only an OstroJS app
// has: its config (`config('session')`, `config('app.key')`), its database connections (the
// `database` driver and connection names) and its cache stores (`cache` / `cache.<store>`).
const path = require('node:path');
const { SessionManager } = require('../manager');
const { sessionError } = require('../errors');
const { DatabaseSessionHandler } = require('./databaseHandler');
const { linkSessionContract, configGet, appConfig, isOstroApp } = require('./resolve');

/** `config('session')` plus the app key (and previous keys) as the manager takes them. */
function configFromApp(app) {
  const conf = appConfig(app);
  const session = { ...(configGet(conf, 'session') || {}) };
  if (session.key === undefined) session.key = configGet(conf, 'app.key');
  if (session.previous_keys === undefined) session.previous_keys = configGet(conf, 'app.previous_keys');
  return session;
}

// As the generic manager reads booleans from env(): 'true', '1', 'yes', 'on' count as true.
function truthy(v) {
  if (v === true || v === 1) return true;
  return typeof v === 'string' && ['true', '1', 'yes', 'on'].includes(v.trim().toLowerCase());
}

function isObject(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** A string or number from a config value; env()'s 'null' and '' count as absent. */
function present(v) {
  if (v === undefined || v === null || v === '' || v === 'null') return undefined;
  return v;
}

// ----- Redis Cluster and Sentinel from config/database.js (Laravel's shapes) -----------------

/** One node of a Laravel-style node list (`{ host, port, username, password, scheme }` or a URL) as a URL. */
function redisNodeUrl(n) {
  if (typeof n === 'string') return n;
  if (!isObject(n)) return n;
  if (typeof n.url === 'string' && n.url !== '') return n.url;
  const user = present(n.username !== undefined ? n.username : n.user);
  const pw = present(n.password);
  const cred = pw !== undefined ? `${user !== undefined ? encodeURIComponent(String(user)) : ''}:${encodeURIComponent(String(pw))}@` : '';
  const scheme = n.scheme === 'tls' || n.scheme === 'rediss' || n.tls === true ? 'rediss' : 'redis';
  return `${scheme}://${cred}${present(n.host) || '127.0.0.1'}:${present(n.port) || 6379}`;
}

/**
 * The database number of a connection config: the driver's `db`, or Laravel's `database`
 * (env() gives it as a string). Undefined when neither is set.
 */
function redisDbOf(o) {
  if (!isObject(o)) return undefined;
  const db = present(o.db) ?? present(o.database);
  return typeof db === 'string' && /^\d+$/.test(db.trim()) ? Number(db) : db;
}

/** A Redis Cluster has only database 0 (SELECT is refused there): say so rather than write to 0. */
function refuseClusterDb(db, where) {
  if (db === undefined || db === 0) return;
  throw sessionError('ERR_SESSION_INVALID_OPTION', `${where} sets database ${JSON.stringify(db)}, but a Redis Cluster has only database 0: remove it or set it to 0`);
}

/**
 * `redis.clusters.<name>` (a node list) → `{ cluster }`; a connection with `sentinel` /
 * `sentinels`, or a node list with `options.replication: 'sentinel'` (predis) → `{ sentinel }`.
 * Returns undefined for a standalone connection.
 */
function redisTopologyOf(conf, options, where) {
  const opts = { ...(isObject(options) ? options : {}), ...(isObject(conf) && isObject(conf.options) ? conf.options : {}) };
  const params = isObject(opts.parameters) ? opts.parameters : {};
  const nodes = Array.isArray(conf) ? conf : null;
  if (isObject(conf) && (conf.sentinel !== undefined || conf.sentinels !== undefined)) {
    const s = isObject(conf.sentinel) ? conf.sentinel : {};
    const list = Array.isArray(conf.sentinels) ? conf.sentinels : (s.nodes || conf.sentinel);
    const sentinel = { masterName: String(present(s.masterName) || present(s.service) || present(conf.service) || present(opts.service) || 'mymaster'), nodes: (Array.isArray(list) ? list : []).map(redisNodeUrl) };
    for (const k of ['username', 'password', 'tls']) if (present(s[k] ?? conf[k]) !== undefined) sentinel[k] = s[k] ?? conf[k];
    const db = redisDbOf(s) ?? redisDbOf(conf);
    if (db !== undefined) sentinel.db = db;
    return { sentinel };
  }
  if (nodes && opts.replication === 'sentinel') {
    // predis: the list is the sentinels; `options.parameters` are the master's login and database.
    const sentinel = { masterName: String(present(opts.service) || 'mymaster'), nodes: nodes.map(redisNodeUrl) };
    for (const k of ['username', 'password']) if (present(params[k]) !== undefined) sentinel[k] = String(params[k]);
    const db = redisDbOf(params);
    if (db !== undefined) sentinel.db = db;
    return { sentinel };
  }
  if (nodes) {
    // Laravel's `options.cluster`: 'redis' (its default) is a Redis Cluster; predis' 'predis' is
    // client-side sharding over independent servers, a different key placement that this
    // driver does not implement. Treating those servers as a cluster would fail, or split
    // sessions differently from the PHP side.
    const mode = present(opts.cluster);
    if (mode !== undefined && mode !== 'redis') {
      throw sessionError('ERR_SESSION_INVALID_OPTION', `${where} has options.cluster ${JSON.stringify(mode)}; the redis session driver supports only 'redis' (a Redis Cluster), not predis' client-side sharding`);
    }
    for (const [i, n] of nodes.entries()) refuseClusterDb(redisDbOf(n), `${where} node ${i}`);
    refuseClusterDb(redisDbOf(params), `${where} options.parameters`);
    const out = { cluster: nodes.map(redisNodeUrl) };
    for (const k of ['username', 'password']) if (present(params[k]) !== undefined) out[k] = String(params[k]);
    return out;
  }
  return undefined;
}

/** Laravel merges `database` into a URL that names none (`redis://host:6379` + `database: 1`). */
function redisUrlWithDb(url, db) {
  if (db === undefined) return url;
  let u;
  try {
    u = new URL(url);
  } catch {
    return url;
  }
  if ((u.protocol !== 'redis:' && u.protocol !== 'rediss:') || (u.pathname !== '' && u.pathname !== '/')) return url;
  u.pathname = `/${db}`;
  return u.href;
}

/**
 * An OstroJS / Laravel style redis connection config as the redis driver takes it. `where`
 * names it in errors.
 */
function redisConnectionOf(o, options, where = 'the redis connection') {
  const topology = redisTopologyOf(o, options, where);
  if (topology !== undefined) return topology;
  if (Array.isArray(o.cluster)) {
    refuseClusterDb(redisDbOf(o), where);
    const out = { cluster: o.cluster.map(redisNodeUrl) };
    for (const k of ['username', 'password', 'tls']) if (present(o[k]) !== undefined) out[k] = o[k];
    return out;
  }
  const db = redisDbOf(o);
  if (typeof o.url === 'string' && o.url !== '') return redisUrlWithDb(o.url, db);
  const out = {};
  const host = present(o.host);
  const port = present(o.port);
  const username = present(o.username !== undefined ? o.username : o.user);
  const password = present(o.password);
  if (host !== undefined) out.host = String(host);
  if (port !== undefined) out.port = typeof port === 'string' && /^\d+$/.test(port) ? Number(port) : port;
  if (username !== undefined) out.username = String(username);
  if (password !== undefined) out.password = String(password);
  if (db !== undefined) out.db = db;
  if (o.tls !== undefined && o.tls !== null) out.tls = o.tls;
  return out;
}

/** One `host:port` from an OstroJS cache `server` entry (or a string as is). */
function memcachedServerOf(s) {
  if (typeof s === 'string') return s;
  if (!isObject(s)) return s;
  const host = present(s.host) || '127.0.0.1';
  const port = present(s.port) || 11211;
  return `${host}:${port}`;
}

/** The SQLite file of a database connection config (`database`, or a `sqlite:` URL). */
function sqliteFileOf(conn) {
  const db = present(conn.database);
  if (typeof db === 'string') return db;
  const url = present(conn.url);
  if (typeof url === 'string' && url.startsWith('sqlite:')) {
    const p = url.replace(/^sqlite:(\/\/)?/, '');
    return p === '' ? null : p;
  }
  return null;
}

const DATABASE_URL = /^(postgres|postgresql|mysql|mariadb):\/\//i;
const NATIVE_SCHEME = { pgsql: 'postgres', postgres: 'postgres', postgresql: 'postgres', mysql: 'mysql', mariadb: 'mysql' };

/**
 * The URL the native database driver takes for an app's connection config (`native: true`):
 * its `url`, or one built from host, port, database, username and password.
 */
function nativeUrlOf(name, conn) {
  const scheme = NATIVE_SCHEME[String(conn.driver).toLowerCase()];
  if (scheme === undefined) {
    throw sessionError('ERR_SESSION_INVALID_OPTION', `session config "native" needs a pgsql or mysql connection; [${name}] is a ${conn.driver} connection`);
  }
  const url = present(conn.url);
  if (typeof url === 'string' && DATABASE_URL.test(url)) return url;
  const database = present(conn.database);
  if (database === undefined) {
    throw sessionError('ERR_SESSION_INVALID_OPTION', `the database connection [${name}] names no database (config/database.js)`);
  }
  const user = present(conn.username !== undefined ? conn.username : conn.user);
  const password = present(conn.password);
  const auth = user === undefined ? '' : `${encodeURIComponent(String(user))}${password === undefined ? '' : `:${encodeURIComponent(String(password))}`}@`;
  const host = String(present(conn.host) || '127.0.0.1');
  const port = present(conn.port) || (scheme === 'postgres' ? 5432 : 3306);
  return `${scheme}://${auth}${host.includes(':') ? `[${host}]` : host}:${port}/${encodeURIComponent(String(database))}`;
}

/**
 * The SessionManager of an OstroJS app. `new SessionManager(app)` (as 1.x) reads the app's
 * config; `new SessionManager(config, { app })` takes a config object.
 *
 * Config keys only OstroJS has: `connection` may name a connection of the app's database config
 * (`database.connections`, and `database.redis` for the redis driver); `query_builder: true`
 * makes the `database` driver use the query-builder handler even on SQLite, and `native: true`
 * makes it use the native DatabaseSessionHandler (Rust) on a pgsql or mysql connection.
 */
class OstroSessionManager extends SessionManager {
  /**
   * @param {object} appOrConfig the OstroJS application, or a session config object
   * @param {object} [options] as `SessionManager`'s; `app` is taken from the first argument when
   *   that is the application
   */
  constructor(appOrConfig, options) {
    let config = appOrConfig;
    let opts = options || {};
    if (isOstroApp(appOrConfig)) {
      config = configFromApp(appOrConfig);
      opts = { ...opts, app: appOrConfig };
    }
    // The generic manager refuses keys it does not know; the OstroJS-only ones are read here.
    let queryBuilder;
    let nativeDb;
    if (config !== null && typeof config === 'object' && !Array.isArray(config) && 'query_builder' in config) {
      ({ query_builder: queryBuilder, ...config } = config);
    }
    if (config !== null && typeof config === 'object' && !Array.isArray(config) && 'native' in config) {
      ({ native: nativeDb, ...config } = config);
    }
    super(config, opts);
    Object.defineProperty(this, '_ostroConfig', { value: { query_builder: truthy(queryBuilder), native: truthy(nativeDb) } });
    if (this._ostroConfig.native && this._ostroConfig.query_builder) {
      throw sessionError('ERR_SESSION_INVALID_OPTION', 'session config has both "native" and "query_builder": choose one for the database driver');
    }
    if (this.app !== null) linkSessionContract();
  }

  /** The app's `database` config, or null. */
  _databaseConfig() {
    return configGet(appConfig(this.app), 'database') || null;
  }

  /** The name and config of a connection of the app's database config (the default when `name` is null). */
  _dbConnection(name) {
    const db = this._databaseConfig();
    const connName = name === null || name === undefined ? (db && db.default) : name;
    const conns = db && db.connections;
    const conn = typeof connName === 'string' && isObject(conns) ? conns[connName] : undefined;
    if (!isObject(conn)) {
      throw sessionError('ERR_SESSION_INVALID_OPTION', connName
        ? `the session connection [${connName}] is not in the app's database connections (config/database.js)`
        : 'the database session driver needs a database connection: set database.default or session.connection');
    }
    return { name: connName, conn };
  }

  /**
   * `database`: on a SQLite connection, the native sqlite driver over the same database file
   * (the table `session:table` made); with `native: true`, the native DatabaseSessionHandler on
   * the pgsql or mysql connection; on any other connection, or with `query_builder: true`, the
   * query-builder handler over the app's `db`. A URL as `connection` is the native driver too.
   */
  createDatabaseDriver(url) {
    if (this.app === null || url !== undefined) return super.createDatabaseDriver(url);
    const connection = this.config.connection;
    if (connection !== null && typeof connection !== 'string') {
      throw sessionError('ERR_SESSION_INVALID_OPTION', 'for the database driver, session config "connection" must name a connection of config/database.js');
    }
    // A URL instead of a connection name: the native driver, as outside OstroJS.
    if (connection !== null && DATABASE_URL.test(connection)) return super.createDatabaseDriver(connection);
    const { name, conn } = this._dbConnection(connection);
    if (this._ostroConfig.native) return super.createDatabaseDriver(nativeUrlOf(name, conn));
    if (conn.driver === 'sqlite' && !this._ostroConfig.query_builder) {
      const file = sqliteFileOf(conn);
      if (file !== null && file !== ':memory:') return this.createSqliteDriver(path.resolve(file));
    }
    const app = this.app;
    return new DatabaseSessionHandler(() => {
      const db = app['db'];
      if (!db || typeof db.connection !== 'function') {
        throw sessionError('ERR_SESSION_UNAVAILABLE', 'the database session driver needs the app\'s `db` (register @ostro/database/databaseServiceProvider)');
      }
      return db.connection(name);
    }, { table: this.config.table, minutes: this.config.lifetime, tombstoneSeconds: this.config.tombstone_seconds });
  }

  /**
   * Connection names are looked up in the app's config: a sqlite connection gives its database
   * file; a redis one its host, port and credentials (`database.redis.<name>` as in Laravel, or a
   * connection with driver `redis`). Cache-store `server` objects are translated for the redis
   * and memcached drivers. Anything else is passed on unchanged.
   */
  resolveConnection(driver, connection) {
    if (this.app === null) return super.resolveConnection(driver, connection);
    if (connection === undefined || connection === null) return null;
    const db = this._databaseConfig() || {};
    if (typeof connection === 'string') {
      const conns = isObject(db.connections) ? db.connections : {};
      if (driver === 'sqlite' && isObject(conns[connection])) {
        const conn = conns[connection];
        if (conn.driver !== 'sqlite') {
          throw sessionError('ERR_SESSION_INVALID_OPTION', `the session connection [${connection}] is a ${conn.driver} connection; the sqlite driver needs a sqlite one (use driver "database" for ${conn.driver})`);
        }
        const file = sqliteFileOf(conn);
        return file === null || file === ':memory:' ? file : path.resolve(file);
      }
      if (driver === 'redis') {
        // Laravel's shape: `redis.clusters.<name>` is a Redis Cluster (`options.cluster: 'redis'`);
        // a node list under `redis.<name>` is one too, or Sentinel with `options.replication`.
        const r = isObject(db.redis) ? db.redis : {};
        if (isObject(r.clusters) && Array.isArray(r.clusters[connection])) {
          // `redis.clusters.options` applies to every cluster, over `redis.options` (Laravel).
          const options = { ...(isObject(r.options) ? r.options : {}), ...(isObject(r.clusters.options) ? r.clusters.options : {}) };
          return redisConnectionOf(r.clusters[connection], options, `redis.clusters.${connection} (config/database.js)`);
        }
        if (isObject(r[connection]) || Array.isArray(r[connection])) return redisConnectionOf(r[connection], r.options, `redis.${connection} (config/database.js)`);
        if (isObject(conns[connection]) && conns[connection].driver === 'redis') return redisConnectionOf(conns[connection], undefined, `connections.${connection} (config/database.js)`);
      }
      if (driver === 'memcached') {
        const store = configGet(appConfig(this.app), `cache.stores.${connection}`);
        if (isObject(store) && store.driver === 'memcached') return this.resolveConnection('memcached', store.servers || store.server);
      }
      return connection;
    }
    if (driver === 'redis' && isObject(connection)) return redisConnectionOf(connection);
    if (driver === 'memcached') {
      if (Array.isArray(connection)) return connection.map(memcachedServerOf);
      if (isObject(connection)) return memcachedServerOf(connection);
    }
    return connection;
  }
}

module.exports = OstroSessionManager;
module.exports.SessionManager = OstroSessionManager;
module.exports.OstroSessionManager = OstroSessionManager;
module.exports.configFromApp = configFromApp;
module.exports.DatabaseSessionHandler = DatabaseSessionHandler;
