'use strict';
// SessionManager: OstroJS's `config/session.js` keys -> drivers, Stores and the HTTP middleware.
// Unknown config keys and options are refused at construction. Outside OstroJS the app key is
// checked at construction too, and `middleware()` resolves the driver, so set-up mistakes show at
// start-up (the constructor cannot judge a driver name: `extend()` may register it afterwards).
// Under OstroJS both stay lazy: drivers resolve on first use so that `extend()` in a provider's
// `boot()` works, and the key is checked when first needed so that `node assistant key:generate`
// still runs on a fresh app.
const path = require('node:path');
const { performance } = require('node:perf_hooks');
const native = require('./native');
const { HttpStore, tokenWasRead, internals } = require('./store');
const { sessionError, rethrow } = require('./errors');
const { rejectUnknown } = require('./options');
const { normalize, invalid } = require('./config');
const { ArraySessionHandler, FileSessionHandler, NativeSessionHandler } = require('./handlers');
const bridge = require('./handler-bridge');
const { CookieSessionHandler, CookieRequestHandler } = require('./drivers/cookie');
const cookies = require('./cookies');
const { requestMeta, isSecure } = require('./http-session');
const events = require('./events');
const { Metrics } = require('./metrics');
const blocking = require('./blocking');

const OPTION_KEYS = new Set(['app', 'logger', 'storeClass', 'cache', 'timeoutMs', 'now']);

// URLs the `database` driver takes as its connection (the native DatabaseSessionHandler).
const DATABASE_URL = /^(postgres|postgresql|mysql|mariadb):\/\//i;

// The drivers _resolve() knows by name (before any extend()).
const BUILT_IN = ['file', 'array', 'memory', 'sqlite', 'database', 'redis', 'memcached', 'cookie', 'cache'];

/** Sessions for an app: drivers by name, per-request Stores, and the HTTP middleware. */
class SessionManager {
  /**
   * @param {object} [config] the keys of OstroJS's `config/session.js`, plus `key` (the app key),
   *   `previous_keys`, `trust_proxy` and `csrf` ('ostro' | 'laravel'); see the README for each
   * @param {{ app?: object|null, logger?: { error: Function }, storeClass?: typeof Store,
   *   cache?: object, timeoutMs?: number }} [options] `app` is the OstroJS application (null
   *   outside OstroJS), passed to `extend()` factories; `logger` receives gc errors (console by
   *   default); `storeClass` replaces the per-request Store class (it must extend HttpStore);
   *   `cache` is a cache config (`{ default, stores }`) for the `cache` driver outside OstroJS
   * @throws {TypeError} `ERR_SESSION_INVALID_OPTION` for an unknown or invalid config key or
   *   option, and, outside OstroJS, for a missing app key or one shorter than 32 characters
   */
  constructor(config, options) {
    const o = options || {};
    if (typeof o !== 'object') throw sessionError('ERR_SESSION_INVALID_OPTION', 'SessionManager options must be an object');
    rejectUnknown(o, OPTION_KEYS, 'SessionManager options');
    const storeClass = o.storeClass || HttpStore;
    if (storeClass !== HttpStore && !(storeClass.prototype instanceof HttpStore)) {
      throw sessionError('ERR_SESSION_INVALID_OPTION', 'options.storeClass must extend HttpStore');
    }
    Object.defineProperties(this, {
      _config: { value: normalize(config), writable: true },
      _app: { value: o.app === undefined ? null : o.app },
      _logger: { value: o.logger || console },
      _storeClass: { value: storeClass },
      _cacheConfig: { value: o.cache || null },
      _timeoutMs: { value: o.timeoutMs },
      _customCreators: { value: new Map() },
      _drivers: { value: new Map() },
      _gcRunning: { value: new Set() },
      _defaultDriver: { value: null, writable: true },
      _keyChecked: { value: false, writable: true },
      _storeOptions: { value: null, writable: true },
      _middleware: { value: null, writable: true },
      _cookieAttrs: { value: null, writable: true },
      _cookieId: { value: null, writable: true },
      _setCookieId: { value: null, writable: true },
      // session lifecycle: test clock, metrics, event source and manager.on() subscriptions
      _now: { value: nowOption(o.now) },
      _metrics: { value: new Metrics() },
      _eventSource: { value: Object.freeze({}) },
      _listeners: { value: new Map() },
    });
    // Outside OstroJS a missing or short key is a set-up mistake: say so now, not on the first
    // request. Inside OstroJS it stays lazy, so that `node assistant key:generate` runs on a
    // fresh app (whose APP_KEY is still empty).
    if (this._app === null) this._key();
  }

  /** The checked config (frozen). */
  get config() { return this._config; }

  /** The OstroJS application, or null. */
  get app() { return this._app; }

  /** The name of the default driver. */
  getDefaultDriver() { return this._defaultDriver || this._config.driver; }

  /** Changes the default driver (the next `createStore()` and requests use it). */
  setDefaultDriver(name) {
    if (typeof name !== 'string' || name === '') throw sessionError('ERR_SESSION_INVALID_OPTION', 'setDefaultDriver() takes a driver name');
    this._defaultDriver = name;
    this._storeOptions = null;
  }

  /**
   * Registers a driver. `factory(app, name, config)` returns a handler (any object with read,
   * write and destroy); it is called once, when the driver is first used.
   * @returns {this}
   */
  extend(name, factory) {
    if (typeof name !== 'string' || name === '') throw sessionError('ERR_SESSION_INVALID_OPTION', 'extend() takes a driver name');
    if (typeof factory !== 'function') throw sessionError('ERR_SESSION_INVALID_OPTION', 'extend() takes a factory function (app, name, config) => handler');
    this._customCreators.set(name, factory);
    return this;
  }

  /**
   * The handler of driver `name` (the default driver when omitted), created on first use and
   * shared by all requests.
   */
  driver(name) {
    const n = name === undefined || name === null ? this.getDefaultDriver() : name;
    if (typeof n !== 'string' || n === '') throw sessionError('ERR_SESSION_INVALID_OPTION', 'driver() takes a driver name');
    let h = this._drivers.get(n);
    if (h === undefined) {
      h = this._resolve(n);
      this._drivers.set(n, h);
    }
    return h;
  }

  _resolve(name) {
    const custom = this._customCreators.get(name);
    if (custom) {
      const h = custom(this._app, name, this._config);
      if (h && typeof h.then === 'function') {
        throw sessionError('ERR_SESSION_INVALID_OPTION', `the factory of session driver [${name}] returned a Promise; it must return the handler itself`);
      }
      if (!(h instanceof NativeSessionHandler) && !(h instanceof CookieSessionHandler)) bridge.checkHandler(h);
      return h;
    }
    const dot = name.indexOf('.');
    const base = dot === -1 ? name : name.slice(0, dot);
    const sub = dot === -1 ? null : name.slice(dot + 1);
    switch (base) {
      case 'file': return this.createFileDriver();
      case 'array':
      case 'memory': return this.createArrayDriver();
      case 'sqlite': return this.createSqliteDriver();
      case 'database': return this.createDatabaseDriver();
      case 'redis': return this.createRedisDriver(this._config.connection);
      case 'memcached': return this.createMemcachedDriver(this._config.connection);
      case 'cookie': return this.createCookieDriver();
      case 'cache': return this.createCacheDriver(sub || this._config.store);
      default: throw unknownDriver(name, [...this._customCreators.keys()]);
    }
  }

  // ----- built-in drivers (methods so that the OstroJS integration can override them) ------------

  /** `file`: one file per session under `files`, resolved against the working directory. */
  createFileDriver(dir) {
    return new FileSessionHandler(path.resolve(dir || this._config.files), this._config.lifetime, { tombstoneSeconds: this._config.tombstone_seconds });
  }

  /** `array` / `memory`: process memory. */
  createArrayDriver() {
    return new ArraySessionHandler(this._config.lifetime, { tombstoneSeconds: this._config.tombstone_seconds });
  }

  /** `sqlite`: `connection` is the database file (default `storage/framework/sessions.sqlite`). */
  createSqliteDriver(connection) {
    const conn = connection === undefined ? this.resolveConnection('sqlite', this._config.connection) : connection;
    if (conn !== null && typeof conn !== 'string') throw invalid('connection', 'must be a database file path for the sqlite driver', '(not a string)');
    const file = conn === null ? path.resolve('storage/framework/sessions.sqlite') : (conn === ':memory:' ? conn : path.resolve(conn));
    const { SqliteSessionHandler } = require('./drivers/sqlite');
    return new SqliteSessionHandler(file, { table: this._config.table, minutes: this._config.lifetime, tombstoneSeconds: this._config.tombstone_seconds });
  }

  /**
   * `database`: with a `postgres://`, `postgresql://`, `mysql://` or `mariadb://` URL as
   * `connection`, the native DatabaseSessionHandler on `table` (created when
   * missing). Under OstroJS a connection name picks the app's connection instead; that
   * integration overrides this method and calls it with the URL it builds.
   * @param {string} [url] the database URL (default: the config's `connection`)
   */
  createDatabaseDriver(url) {
    const conn = url === undefined ? this._config.connection : url;
    if (typeof conn !== 'string' || !DATABASE_URL.test(conn)) {
      throw sessionError('ERR_SESSION_INVALID_OPTION', 'the database driver needs "connection" set to a postgres://, postgresql://, mysql:// or mariadb:// URL (under OstroJS: the name of a connection of config/database.js); for a SQLite file use driver "sqlite"');
    }
    const { DatabaseSessionHandler } = require('./drivers/database');
    return new DatabaseSessionHandler(conn, { table: this._config.table, minutes: this._config.lifetime, tombstoneSeconds: this._config.tombstone_seconds });
  }

  /** `redis`: `connection` is a URL or `{host, port, username, password, db, tls}`. */
  createRedisDriver(connection) {
    const conn = this.resolveConnection('redis', connection === undefined ? this._config.connection : connection);
    const { RedisSessionHandler } = require('./drivers/redis');
    const opts = { minutes: this._config.lifetime, tombstoneSeconds: this._config.tombstone_seconds };
    if (this._config.prefix !== null) opts.prefix = this._config.prefix;
    if (this._config.minReplicas > 0) opts.minReplicas = this._config.minReplicas;
    return new RedisSessionHandler(conn === null ? 'redis://127.0.0.1:6379' : conn, opts);
  }

  /** `memcached`: `connection` is `'host:port'` or a list of them. */
  createMemcachedDriver(connection) {
    const conn = this.resolveConnection('memcached', connection === undefined ? this._config.connection : connection);
    const { MemcachedSessionHandler } = require('./drivers/memcached');
    const opts = { minutes: this._config.lifetime, tombstoneSeconds: this._config.tombstone_seconds };
    if (this._config.prefix !== null) opts.prefix = this._config.prefix;
    return new MemcachedSessionHandler(conn === null ? '127.0.0.1:11211' : conn, opts);
  }

  /** `cookie`: the session sealed in the cookie itself; needs the app key. */
  createCookieDriver() {
    return new CookieSessionHandler({ name: this._config.cookie, keys: this._keys(), minutes: this._config.lifetime });
  }

  /**
   * `cache` with `store`, or `cache.<store>`: the named store of the cache config picks the
   * matching built-in driver by its `driver` and configures it from `server` (or `connection`,
   * `servers`, `path`).
   */
  createCacheDriver(storeName) {
    const cache = this.cacheConfig();
    const name = storeName || (cache && cache.default) || null;
    const stores = cache && cache.stores;
    const store = name && stores && typeof stores === 'object' ? stores[name] : undefined;
    if (!store || typeof store !== 'object') {
      throw sessionError('ERR_SESSION_INVALID_OPTION', name ? `the cache store [${name}] is not in the cache config` : 'the cache driver needs a store: set "store" or use driver "cache.<store>"');
    }
    const server = store.server ?? store.connection ?? store.servers ?? store.url ?? null;
    switch (store.driver) {
      case 'redis': return this.createRedisDriver(server);
      case 'memcached': return this.createMemcachedDriver(server);
      case 'file': return this.createFileDriver(store.path || store.files || this._config.files);
      case 'memory':
      case 'array': return this.createArrayDriver();
      default: throw sessionError('ERR_SESSION_INVALID_OPTION', `the cache store [${name}] uses driver [${store.driver}], which sessions cannot use (redis, memcached, file or memory)`);
    }
  }

  /** The cache config for the `cache` driver: the `cache` option, else the app's `cache` config. */
  cacheConfig() {
    if (this._cacheConfig) return this._cacheConfig;
    const app = this._app;
    const conf = app && (app.config || app['config']);
    if (!conf) return null;
    if (typeof conf.get === 'function') return conf.get('cache') || null;
    return conf.cache || null;
  }

  /**
   * Turns a configured connection into what the driver takes. Outside OstroJS it is used as
   * is; the OstroJS integration overrides it to look connection names up in the app's config.
   */
  resolveConnection(driver, connection) { // eslint-disable-line no-unused-vars
    return connection === undefined ? null : connection;
  }

  // ----- keys ------------------------------------------------------------------------------------

  /** The app key, checked on first use: missing or empty is an error, and so is a short key outside OstroJS. */
  _key() {
    if (this._keyChecked) return this._config.key;
    const key = this._config.key;
    if (typeof key !== 'string' || key === '') {
      throw sessionError('ERR_SESSION_INVALID_OPTION', 'the app key is missing: sessions need `key` (APP_KEY; in OstroJS run `node assistant key:generate`) to sign cookies, make CSRF tokens and encrypt');
    }
    if (this._app === null && key.length < 32) {
      throw sessionError('ERR_SESSION_INVALID_OPTION', `the app key is too short (${key.length} characters): use at least 32 random characters, e.g. 'base64:' + crypto.randomBytes(32).toString('base64')`);
    }
    this._keyChecked = true;
    return key;
  }

  /** The app key, then the previous keys: what verifies and opens. */
  _keys() {
    return [this._key(), ...this._config.previousKeys];
  }

  /**
   * The native handle of this manager's cookie name and keys (src/request.rs), registered on
   * first use: the request path then crosses with the header and a number, not the key list.
   */
  _cookieHandle() {
    if (this._cookieId === null) this._cookieId = native.registerSessionCookie(this._config.cookie, this._keys());
    return this._cookieId;
  }

  /** Whether tokens are OstroJS `csrf`-package tokens: under OstroJS, or with `csrf: 'ostro'`. */
  _ostroTokens() {
    return this._config.csrf === 'ostro' || (this._config.csrf === null && this._app !== null);
  }

  // ----- stores ----------------------------------------------------------------------------------

  _nativeOptions(handler) {
    if (this._storeOptions !== null) return this._storeOptions;
    const nativeOpts = {};
    if (this._ostroTokens()) {
      nativeOpts.tokenFormat = 'ostro';
      nativeOpts.tokenKey = this._key();
    }
    // The cookie driver always seals (with the cookie name as associated data); sealing the
    // payload again under the id would only add bytes to a 4 KB cookie.
    if (this._config.encrypt && !(handler instanceof CookieSessionHandler)) {
      nativeOpts.encryptKeys = this._keys();
      nativeOpts.encryptMigrate = this._config.encrypt_migrate;
    }
    if (this._config.user_attribute !== null) nativeOpts.userAttribute = this._config.user_attribute;
    const opts = { native: nativeOpts };
    if (this._timeoutMs !== undefined) opts.timeoutMs = this._timeoutMs;
    this._lifecycleOptions(opts, handler);
    this._storeOptions = opts;
    return opts;
  }

  // ----- session lifecycle: timeouts, renewal, events, metrics -----------------------------------

  /** Adds the lifecycle keys, the event observer and the test clock to the Store options. */
  _lifecycleOptions(opts, handler) {
    const cfg = this._config;
    if (cfg.absolute_lifetime !== null) opts.native.absoluteLifetimeSecs = Math.ceil(cfg.absolute_lifetime * 60);
    if (cfg.renew_after !== null) {
      opts.native.renewAfterSecs = Math.ceil(cfg.renew_after * 60);
      opts.native.renewGraceSecs = Math.ceil(cfg.renew_grace_seconds);
    }
    const driver = this.getDefaultDriver();
    opts.observer = Object.freeze({
      driver,
      key: () => this._key(),
      metrics: this._metrics.of(driver),
      source: this._eventSource,
    });
    if (this._now !== null) opts.now = this._now;
    void handler;
  }

  /**
   * Calls `fn(message)` for each lifecycle event `event` of this manager's sessions: sugar over
   * the `node:diagnostics_channel` channel `ostro:session:<event>` (which sees every manager's).
   * A message is `{ driver, handle, reason }`: `handle` is a keyed hash of the id, never the id.
   * @param {'created'|'loaded'|'regenerated'|'renewed'|'destroyed'|'expired'|'save_dropped'|'error'} event
   * @param {(message: { driver: string, handle: string|null, reason: string|null }) => void} fn
   * @returns {this}
   */
  on(event, fn) {
    if (!events.EVENTS.includes(event)) {
      throw sessionError('ERR_SESSION_INVALID_OPTION', `manager.on(): unknown session event ${JSON.stringify(event)} (known: ${events.EVENTS.join(', ')})`);
    }
    if (typeof fn !== 'function') throw sessionError('ERR_SESSION_INVALID_OPTION', 'manager.on() takes a listener function');
    const source = this._eventSource;
    const wrapped = (message) => {
      if (events.sourceOf(message) === source) fn(message);
    };
    let byEvent = this._listeners.get(event);
    if (byEvent === undefined) {
      byEvent = new Map();
      this._listeners.set(event, byEvent);
    }
    if (byEvent.has(fn)) return this;
    byEvent.set(fn, wrapped);
    events.channels[event].subscribe(wrapped);
    return this;
  }

  /** Removes a listener added with `on(event, fn)`. @returns {this} */
  off(event, fn) {
    const byEvent = this._listeners.get(event);
    const wrapped = byEvent && byEvent.get(fn);
    if (wrapped) {
      byEvent.delete(fn);
      events.channels[event].unsubscribe(wrapped);
    }
    return this;
  }

  /**
   * Counters and latency histograms per driver and operation, since this manager was made:
   * `{ drivers: { [driver]: { operations: { load|save|destroy|gc: { count, errors, sumMs,
   * buckets: [{ le, count }] } }, saves: { written, touched, dropped } } } }` (buckets
   * cumulative, `le` in ms). examples/prometheus.js serves them in the Prometheus text format.
   */
  metrics() {
    return this._metrics.snapshot();
  }

  /**
   * A new, not yet started Store on the default driver, with the manager's cookie name, token
   * format and encryption. Every request gets its own.
   *
   * **Trusted input only**: `id` is adopted as is, even when no session has it, and `save()` then
   * writes under it. An id that came from a client (a cookie, a query string, a WebSocket message)
   * must go through `loadStore(cookieHeader)` or `loadSession(req)` instead, which verify the
   * signature and give unknown ids a fresh one (session fixation).
   * @param {string|null} [id] an id the application itself chose or already verified; an
   *   invalid one is replaced by a fresh one
   * @param {{ cookie?: string|null }} [options] for the cookie driver: the request's session
   *   cookie value (URL-decoded); the Store then loads the session sealed in it
   * @returns {HttpStore}
   */
  createStore(id, options) {
    const handler = this.driver();
    const opts = this._nativeOptions(handler);
    if (handler instanceof CookieSessionHandler) {
      const rh = handler.forRequest(options && options.cookie);
      const sealedId = rh.incomingId();
      return new this._storeClass(this._config.cookie, rh, typeof id === 'string' ? id : sealedId, opts);
    }
    return new this._storeClass(this._config.cookie, handler, typeof id === 'string' ? id : null, opts);
  }

  /**
   * Loads the session of a request, as the middleware does, without touching the response:
   * the signed cookie is verified (key, then previous keys), an unknown id gets a fresh one
   * (strict mode), and a 1.x id is loaded then moved to a fresh id. Useful for WebSocket upgrades.
   * @param {import('http').IncomingMessage} req
   * @param {{ block?: boolean|{ lockSeconds?: number, waitSeconds?: number } }} [options]
   *   `block`: take the session's lock before loading it (see `middleware({ block })`); the
   *   result then has `lock`, whose `release()` the caller must call once the save settled
   * @returns {Promise<{ store: HttpStore, existed: boolean, cookieId: string|null, lock?: { release(): Promise<void> } }>}
   *   `existed`: the request carried a session the store knew; `cookieId`: the id the cookie
   *   must carry after the load when it is not the one the request's cookie named (the session
   *   was renewed, or the cookie named a renewed id inside its grace window and was forwarded,
   *   or a 1.x id moved to a fresh one): the Store's id then; null when the cookie the request
   *   carried still names the session, or named none (`existed: false`)
   */
  loadSession(req, options) {
    // Not `async`: the load's own promise is returned, without wrapping it in another one.
    let meta;
    let block = null;
    try {
      meta = requestMeta(req, this._config.trust_proxy);
      if (options && options.block !== undefined) block = blocking.blockOptions(options.block);
    } catch (err) {
      return Promise.reject(err); // a bad `req` rejects, as from an async function
    }
    return this._load(req.headers && req.headers.cookie, meta, block);
  }

  /**
   * What the middleware does when a request comes in, without touching the response: resolves
   * the driver (a config error fails here, before anything is read), loads the session as
   * `loadSession(req)` does, and draws the gc lottery. For adapters of other frameworks.
   * @param {import('http').IncomingMessage} req
   * @param {{ block?: boolean|object }} [options] as `loadSession(req, options)`
   * @returns {Promise<{ store: HttpStore, existed: boolean, cookieId: string|null, lock?: { release(): Promise<void> } }>}
   *   as `loadSession(req, options)`
   */
  async openSession(req, options) {
    const handler = this.driver();
    // Through loadSession(), so that a subclass overriding it changes what the middleware loads.
    const loaded = await this.loadSession(req, options);
    this.runLottery(handler);
    return loaded;
  }

  /**
   * The strict way to a Store from a client's `Cookie` header outside the HTTP middleware (a
   * WebSocket upgrade, a job that received the header): the same checks as `loadSession(req)`.
   * The signed cookie is verified (key, then previous keys); an id the store does not know, or a
   * missing, unsigned or tampered cookie, gives a fresh id (`existed: false`); a 1.x id is loaded
   * then moved to a fresh id. The Store is started; `save()` it when done. No cookie is sent: a
   * fresh id reaches the client only if the application sends it.
   * @param {string|string[]|null|undefined} cookieHeader the request's `Cookie` header
   * @returns {Promise<{ store: HttpStore, existed: boolean, cookieId: string|null }>} `cookieId`
   *   as from `loadSession(req)`: the id a new cookie must carry when the load renewed or
   *   forwarded the session, else null
   */
  async loadStore(cookieHeader) {
    if (cookieHeader !== undefined && cookieHeader !== null && typeof cookieHeader !== 'string' && !Array.isArray(cookieHeader)) {
      throw sessionError('ERR_SESSION_INVALID_OPTION', 'loadStore() takes the Cookie header (a string, e.g. req.headers.cookie); for a request object use loadSession(req)');
    }
    return this._load(cookieHeader, undefined);
  }

  /** loadSession/loadStore: verify the cookie, refuse unknown ids, start the Store. */
  async _load(cookieHeader, meta, block = null) {
    const cfg = this._config;
    const handler = this.driver();
    let store;
    let claimed = null;
    let legacy = false;
    if (handler instanceof CookieSessionHandler) {
      store = this.createStore(null, { cookie: cookies.readCookie(cookieHeader, cfg.cookie) });
      claimed = store.getHandler().incomingId();
    } else {
      const header = Array.isArray(cookieHeader) ? cookieHeader.join('; ') : cookieHeader;
      // A header that does not even contain the cookie name (a new visitor) needs no app key
      // yet (OstroJS's lazy key).
      const carried = typeof header === 'string' && header.includes(cfg.cookie) ? header : null;
      // One crossing finds the cookie, verifies its signature (key, then previous keys) and
      // checks the id shape, 1.x ids included: those rules are the core's
      // (cookie_header::signed_session_id). A header that does not even contain the cookie name
      // (a new visitor) crosses nothing, and needs no app key yet (OstroJS's lazy key).
      if (carried !== null) {
        const signed = native.signedSessionId(carried, this._cookieHandle());
        if (signed !== null && signed !== undefined) {
          claimed = signed.id;
          legacy = signed.legacy;
        }
      }
      store = this.createStore(legacy ? null : claimed);
      // 1.x ids (base64url) are a storage key for this one read only.
      if (legacy) internals.useLegacyId(store, claimed);
    }
    if (meta !== undefined) store.setRequestMeta(meta);
    // Blocking: the claimed id's lock before its load (a fresh random id is nobody else's).
    const lock = block !== null && claimed !== null ? await this._lockFor(handler, claimed, block) : null;
    // A fresh random id has no record: starting it empty saves a driver round trip per new visitor.
    if (claimed === null) internals.startEmpty(store);
    else if (lock === null) await store.start();
    else {
      try {
        await store.start();
      } catch (err) {
        await lock.release();
        throw err;
      }
    }
    let existed = false;
    if (claimed !== null) {
      if (!internals.recordExists(store)) {
        // A signed id the driver no longer holds, still under its own id (not an absolute expiry
        // or a forward the engine already dealt with): expired idle, unless the engine can tell
        // it was ended instead (see internals.publishMissing).
        if (store.getId() === claimed && !legacy) await internals.publishMissing(store);
        // Strict mode: never adopt an id the store does not know (session fixation). An absolute
        // expiry already started over under a fresh id, the one its events name.
        if (!internals.startedOver(store)) store.setId(null);
      } else {
        existed = true;
        // A 1.x session is saved under a fresh id and re-cookied; the old record is left to
        // expire, so parallel requests during the upgrade still find it.
        if (legacy) internals.moveToFreshId(store);
      }
    }
    // The id the client's cookie must carry from now on, when the load moved the session off the
    // id the cookie named (a renewal, a forward through a renewed id's marker, a 1.x upgrade):
    // an adapter that sends the cookie only when it changes must send it then.
    const cookieId = existed && store.getId() !== claimed ? store.getId() : null;
    return lock === null ? { store, existed, cookieId } : { store, existed, cookieId, lock };
  }

  /** The lock of session `id` for a blocked request (see `middleware({ block })`). */
  _lockFor(handler, id, block) {
    blocking.checkCanLock(handler, this.getDefaultDriver());
    return blocking.acquire(handler, id, block, { timeoutMs: this._timeoutMs || 30000, name: this._config.cookie, logger: this._logger });
  }

  // ----- cookies ---------------------------------------------------------------------------------

  /**
   * The `Set-Cookie` line of the session cookie under the config's attributes (path, domain,
   * lifetime, HttpOnly, SameSite; Secure from `secure`, or from the request when it is 'auto').
   * @param {string|null} value the cookie value as it goes to the browser before URL-encoding:
   *   `signedCookieValue(id)`, or the cookie driver's sealed session; null writes an expired
   *   cookie that makes the browser drop it
   * @param {import('http').IncomingMessage} [req] the request (needed for `secure: 'auto'` only)
   * @returns {string}
   */
  sessionCookie(value, req) {
    const cfg = this._config;
    if (this._cookieAttrs === null) this._cookieAttrs = cookies.attributes(cfg);
    const secure = cfg.secure === 'auto' ? req !== undefined && req !== null && isSecure(req, cfg.trust_proxy) : cfg.secure;
    return cookies.serialize(cfg.cookie, value, this._cookieAttrs, secure, Date.now());
  }

  /**
   * The native handle of this manager's `Set-Cookie` attributes and signing key (src/request.rs),
   * registered on first use: a request's commit then crosses with a number, and the line
   * (signed id, attributes, Expires) is built in the core, as `sessionCookie` builds it.
   * @returns {number}
   * @throws {TypeError} `ERR_SESSION_INVALID_OPTION` when the app key is missing
   */
  setCookieHandle() {
    if (this._setCookieId !== null) return this._setCookieId;
    const cfg = this._config;
    this._setCookieId = native.registerSetCookie({
      name: cfg.cookie,
      key: this._key(),
      lifetime: cfg.lifetime,
      expireOnClose: !!cfg.expire_on_close,
      path: cfg.path,
      domain: cfg.domain || undefined,
      httpOnly: !!cfg.http_only,
      sameSite: cfg.same_site || undefined,
    });
    return this._setCookieId;
  }

  /**
   * The signed session cookie value for `id` (`s:<id>.<HMAC-SHA256>`, as cookie-signature and
   * 1.x sign it), before URL-encoding.
   * @param {string} id
   * @returns {string}
   * @throws {TypeError} `ERR_SESSION_INVALID_OPTION` when the app key is missing
   */
  signedCookieValue(id) {
    return native.signCookie(id, this._key());
  }

  /** Where errors off the request path go (the `logger` option; console by default). */
  get logger() { return this._logger; }

  // ----- garbage collection ----------------------------------------------------------------------

  /**
   * Draws the gc lottery (`lottery: [chances, outOf]`) for `handler` (the default driver when
   * omitted); a win schedules `collectGarbage()` off the request path, at most one run per
   * handler at a time, and a failure is logged. The middleware draws once per request.
   * @param {object} [handler]
   * @returns {boolean} whether a collection was scheduled
   */
  runLottery(handler) {
    const [chances, outOf] = this._config.lottery;
    if (chances <= 0 || Math.floor(Math.random() * outOf) >= chances) return false;
    const h = handler === undefined || handler === null ? this.driver() : handler;
    // Cookie-driver sessions expire inside their cookies: there is nothing to collect.
    if (this._gcRunning.has(h) || typeof h.gc !== 'function' || h instanceof CookieSessionHandler) return false;
    this._gcRunning.add(h);
    setImmediate(() => {
      this.collectGarbage(h)
        .catch((err) => this._logger.error(`@ostro/session: garbage collection failed: ${err && err.message}`, err))
        .finally(() => this._gcRunning.delete(h));
    });
    return true;
  }

  /** Removes sessions idle for longer than the lifetime through `handler` (the default driver). */
  async collectGarbage(handler) {
    const h = handler || this.driver();
    const secs = Math.ceil(this._config.lifetime * 60);
    const rec = this._metrics.of(handler ? this._driverName(h) : this.getDefaultDriver()).ops.gc;
    const t0 = performance.now();
    try {
      const n = await bridge.scheduleGc(h, secs, { timeoutMs: this._timeoutMs, sessionName: this._config.cookie });
      rec.record(performance.now() - t0, false);
      return n;
    } catch (err) {
      rec.record(performance.now() - t0, true);
      throw err;
    }
  }

  /** The name a created driver is registered under (for metrics), or 'custom'. */
  _driverName(h) {
    for (const [name, d] of this._drivers) if (d === h) return name;
    return 'custom';
  }

  // ----- a user's sessions (issue 13) ------------------------------------------------------------

  /**
   * The live sessions of `userId` on the default driver, newest activity first, each as
   * `{ handle, createdAt, lastActivity, ipAddress, userAgent, current }`. `handle` is a keyed hash
   * of the id (safe to show in a page); `current` marks `options.current` (the caller's Store).
   * Rejects with `ERR_SESSION_UNSUPPORTED` on drivers that cannot enumerate (memcached, cookie).
   * @param {string|number} userId
   * @param {{ current?: { getId(): string } }} [options]
   */
  async sessionsOf(userId, options) {
    const c = this._userCall(userId, options);
    if (c.native) {
      c.handler._tick();
      const list = await native.userSessionsOf(c.handler._native, c.user, c.opts).catch(rethrow);
      return list.map(userSession);
    }
    return (await this._jsUserSessions(c)).sessions.map(userSession);
  }

  /**
   * Ends the session of `userId` shown as `handle` (by `sessionsOf`); its record gets the same
   * tombstone a logout leaves, and `destroyed` is published for it with reason 'revoked'.
   * Resolves to `false` when that user has no live session with it.
   * @param {string|number} userId
   * @param {string} handle
   */
  async destroySession(userId, handle) {
    if (typeof handle !== 'string') throw sessionError('ERR_SESSION_INVALID_OPTION', 'destroySession() takes the handle that sessionsOf() listed');
    native.checkSessionHandle(handle);
    const c = this._userCall(userId, undefined);
    let ended;
    if (c.native) {
      c.handler._tick();
      ended = await native.destroyUserSession(c.handler._native, c.user, handle, c.opts).catch(rethrow);
    } else {
      const d = await this._jsUserSessions(c);
      const i = d.sessions.findIndex((s) => s.handle === handle);
      ended = i !== -1;
      if (ended) {
        await c.handler.destroy(d.ids[i]);
        if (typeof c.handler.unlinkSessions === 'function') await c.handler.unlinkSessions(c.user, [d.ids[i]]);
      }
    }
    // The handle matched a live session's under this manager's key: it is that session's.
    if (ended) events.publishHandle(c.observer, 'destroyed', handle, 'revoked');
    return ended;
  }

  /**
   * Ends every live session of `userId`, except `options.except` (the caller's Store: "log out
   * other devices"), publishing `destroyed` with reason 'revoked' for each. Resolves to how many
   * ended.
   * @param {string|number} userId
   * @param {{ except?: { getId(): string } }} [options]
   */
  async destroyUserSessions(userId, options) {
    const except = options && options.except ? storeId(options.except, 'except') : null;
    const c = this._userCall(userId, undefined);
    let handles;
    if (c.native) {
      c.handler._tick();
      handles = await native.destroyUserSessions(c.handler._native, c.user, except, c.opts).catch(rethrow);
    } else {
      const d = await this._jsUserSessions(c);
      const ended = [];
      handles = [];
      d.ids.forEach((id, i) => {
        if (id === except) return;
        ended.push(id);
        handles.push(d.sessions[i].handle);
      });
      for (const id of ended) await c.handler.destroy(id);
      if (ended.length > 0 && typeof c.handler.unlinkSessions === 'function') await c.handler.unlinkSessions(c.user, ended);
    }
    for (const h of handles) events.publishHandle(c.observer, 'destroyed', h, 'revoked');
    return handles.length;
  }

  _userCall(userId, options) {
    let user;
    if (typeof userId === 'string' && userId !== '') user = userId;
    else if (typeof userId === 'number' && Number.isSafeInteger(userId)) user = String(userId);
    else throw sessionError('ERR_SESSION_INVALID_OPTION', `a user id must be a non-empty string or an integer, got ${typeof userId === 'string' ? 'an empty string' : typeof userId}`);
    const handler = this.driver();
    const storeOptions = this._nativeOptions(handler);
    const n = storeOptions.native;
    const opts = { key: this._key(), encryptKeys: n.encryptKeys, encryptMigrate: n.encryptMigrate };
    if (options && options.current) opts.current = storeId(options.current, 'current');
    // Sessions past absolute_lifetime are not listed (nor ended) even before a load or gc removed
    // them: judged by the engine at the Store's clock (the manager's test clock when there is
    // one), as a load judges them. Idle sessions: the built-in drivers leave them out by their
    // own clock; a custom driver's entries are judged by their lastActivity.
    const cfg = this._config;
    const builtIn = handler instanceof NativeSessionHandler;
    const clock = this._now || (builtIn && handler._now) || Date.now;
    opts.nowMs = clock();
    if (cfg.absolute_lifetime !== null) opts.absoluteLifetimeSecs = Math.ceil(cfg.absolute_lifetime * 60);
    if (!builtIn) opts.lifetimeSecs = Math.floor(cfg.lifetime * 60);
    return { user, handler, opts, native: builtIn, name: this.getDefaultDriver(), observer: storeOptions.observer };
  }

  // A custom driver's optional sessionsOf(userId), checked by the engine as the built-in ones are.
  async _jsUserSessions(c) {
    const h = c.handler;
    if (h instanceof CookieSessionHandler || typeof h.sessionsOf !== 'function') native.unsupportedUserSessions(c.name);
    const records = await h.sessionsOf(c.user);
    if (!Array.isArray(records)) throw sessionError('ERR_SESSION_VALUE', `session handler sessionsOf() must return an array of { id, payload, lastActivity, ipAddress, userAgent }, got ${typeof records}`);
    let d;
    try {
      d = native.describeUserSessions(records, c.user, c.opts);
    } catch (err) {
      if (err && err.code) throw err;
      throw sessionError('ERR_SESSION_VALUE', `session handler sessionsOf() returned a bad entry: ${err && err.message}`);
    }
    if (d.stale.length > 0 && typeof h.unlinkSessions === 'function') await h.unlinkSessions(c.user, d.stale);
    return d;
  }

  // ----- middleware and lifecycle ----------------------------------------------------------------

  /**
   * The Connect-style middleware `(req, res, next)` for node:http, Express 4/5 and Connect.
   * Without `next`, it returns a Promise of `true` once `req.session` is ready (or `false` after
   * answering 500 itself).
   *
   * `{ block: true | { lockSeconds = 10, waitSeconds = 10 } }` blocks, as Laravel's `block()`:
   * each request holds its session's lock from before the load until the save settled, so
   * requests on one session run one at a time. A request that waited `waitSeconds` in vain
   * fails with `ERR_SESSION_LOCKED` (`status` 423: `next(err)`, or a 423 answer without
   * `next`); a lock outlives a stuck request by at most `lockSeconds`. The cookie driver and
   * custom drivers without `lock()`/`unlock()` refuse it (`ERR_SESSION_INVALID_OPTION`).
   *
   * `{ api: 'express-session', ...options }` gives the express-session compatibility mode
   * instead (lib/express-session.js): `req.session` in express-session's shape, with
   * callbacks, for libraries such as connect-flash and passport. Without options (or with
   * `{ api: 'laravel' }`), `req.session` is the Store.
   * @param {{ api?: 'laravel'|'express-session', block?: boolean|{ lockSeconds?: number, waitSeconds?: number } }} [options]
   */
  middleware(options) {
    if (options !== undefined && options !== null) {
      if (typeof options !== 'object' || Array.isArray(options)) throw sessionError('ERR_SESSION_INVALID_OPTION', 'middleware() options must be an object');
      if (options.api === 'express-session') return require('./express-session').createExpressSessionMiddleware(this, options);
      rejectUnknown(options, ['api', 'block'], "middleware() options (the other options belong to api: 'express-session')");
      if (options.api !== undefined && options.api !== 'laravel') {
        throw sessionError('ERR_SESSION_INVALID_OPTION', `middleware() option "api" must be 'laravel' (the default: req.session is the Store) or 'express-session', got ${JSON.stringify(options.api)}`);
      }
    }
    // Opt-in blocking: its own middleware per call (a route's block options are its own).
    const block = options ? blocking.blockOptions(options.block) : null;
    if (block !== null) {
      if (this._app === null) blocking.checkCanLock(this.driver(), this.getDefaultDriver());
      return require('./middleware').createMiddleware(this, { block: options.block });
    }
    if (this._middleware === null) {
      // Outside OstroJS the app mounts the middleware at start-up, after any extend(): an unknown
      // driver name fails here, before the first request. (The constructor cannot decide it,
      // since extend() may register the name after construction.) Under OstroJS the driver stays
      // lazy, as the framework builds its middleware before providers boot.
      if (this._app === null) this.driver();
      this._middleware = require('./middleware').createMiddleware(this);
    }
    return this._middleware;
  }

  /** Closes every driver this manager created (and their connections). */
  async close() {
    const handlers = [...this._drivers.values()];
    this._drivers.clear();
    const results = await Promise.allSettled(handlers.map((h) => (typeof h.close === 'function' ? h.close() : undefined)));
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
  }
}

/** A user's session as sessionsOf() shows it: times as Dates. */
function userSession(s) {
  return {
    handle: s.handle,
    createdAt: s.createdAt === null || s.createdAt === undefined ? null : new Date(s.createdAt),
    lastActivity: new Date(s.lastActivity),
    ipAddress: s.ipAddress ?? null,
    userAgent: s.userAgent ?? null,
    current: s.current,
  };
}

/** The id of a Store passed as `current`/`except` (it stays in this process). */
function storeId(store, what) {
  if (!store || typeof store.getId !== 'function') throw sessionError('ERR_SESSION_INVALID_OPTION', `option "${what}" must be a session Store (req.session)`);
  return store.getId();
}

/** The `now` option: a function returning ms since the epoch (a test clock), or null. */
function nowOption(now) {
  if (now === undefined || now === null) return null;
  if (typeof now !== 'function') throw sessionError('ERR_SESSION_INVALID_OPTION', 'SessionManager option "now" must be a function returning milliseconds since the epoch');
  return now;
}

/** `ERR_SESSION_INVALID_OPTION` for a driver name nobody knows, listing the ones that exist. */
function unknownDriver(name, custom) {
  const known = BUILT_IN.map((d) => (d === 'cache' ? 'cache (or cache.<store>)' : d)).join(', ');
  const registered = custom.length > 0 ? `; registered with extend(): ${custom.join(', ')}` : '';
  return sessionError('ERR_SESSION_INVALID_OPTION', `Driver [${name}] is not supported. Built-in drivers: ${known}${registered}. A custom driver must be registered with manager.extend('${name}', factory) before the manager is used (before middleware()).`);
}

// requestMeta and isSecure live in lib/http-session.js (the request layer); re-exported for the
// adapters and tests that took them from here.
module.exports = { SessionManager, HttpStore, tokenWasRead, normalize, requestMeta, isSecure, CookieRequestHandler };
