// Types of the public surface of @ostro/session.
import type {
  SessionPath, SessionPathValue, SessionGot, SessionPutValue, SessionElement, SessionValues,
  SessionMergeValue, SessionAttributes, SessionKeys, SessionFlashArgs,
} from './lib/session-data';

export type {
  SessionPath, SessionPathValue, SessionPathDepth, SessionGot, SessionPutValue, SessionElement,
  SessionValues, SessionMergeValue, SessionAttributes, SessionKeys, SessionFlashArgs, DeepPartial,
  FastifySessionData,
} from './lib/session-data';
export type {
  ExpressSession, ExpressSessionData, ExpressSessionMethods, ExpressSessionRequest, ExpressSessionOptions,
  ExpressSessionMiddleware, ExpressSessionMigration, SessionCookie, SessionCallback,
  FastifySessionApi, FastifyExpressSession, FastifyExpressSessionMethods,
} from './lib/express-session';
import type { ExpressSessionOptions, ExpressSessionMiddleware } from './lib/express-session';

/** A JSON value as a session stores it. `Date`s are stored as ISO strings. */
export type SessionValue = string | number | boolean | null | Date | SessionValue[] | { [key: string]: SessionValue };

/** Request metadata a driver may store beside the payload (the sqlite driver does). */
export interface WriteMeta {
  ip?: string;
  userAgent?: string;
  userId?: string;
}

/** An error from this package: `code` is one of the `ERR_SESSION_*` codes. */
export interface SessionError extends Error {
  code:
    | 'ERR_SESSION_IO'
    | 'ERR_SESSION_INVALID_ID'
    | 'ERR_SESSION_INVALID_OPTION'
    | 'ERR_SESSION_VALUE'
    | 'ERR_SESSION_PROPERTY'
    | 'ERR_SESSION_CALLBACK'
    | 'ERR_SESSION_TOO_LARGE'
    | 'ERR_SESSION_UNAVAILABLE'
    | 'ERR_SESSION_BUSY'
    | 'ERR_SESSION_TIMEOUT'
    | 'ERR_SESSION_HANDLER'
    | 'ERR_SESSION_UNSUPPORTED';
}

/** Options shared by handlers that expire data themselves. */
export interface ClockOption {
  /** Replaces the clock (ms since the epoch), so tests can move time instead of sleeping. */
  now?: () => number;
  /** Replaces the clock (tests); same as `now`. */
  clock?: { now(): number };
}

/** The built-in drivers' tombstone time (session config `tombstone_seconds`). */
export interface TombstoneOption {
  /**
   * How long a destroyed session's tombstone refuses late saves, in whole seconds from 1 to the
   * lifetime (default: the lifetime); anything else is ERR_SESSION_INVALID_OPTION.
   */
  tombstoneSeconds?: number;
}

/** Options of the file driver. */
export interface FileSessionHandlerOptions extends ClockOption, TombstoneOption {
  /** Deadline of one file operation, 1 to 600000 ms (default 30000); past it, ERR_SESSION_TIMEOUT. */
  timeoutMs?: number;
  /** fsync the file and the directory on every write and destroy: power-loss safety, at a cost per write (default false). */
  durable?: boolean;
  /** Largest session file read, in bytes (default 4 MiB); a larger one reads as no session, unread. */
  maxFileBytes?: number;
}

/**
 * The base class of session drivers. A custom driver implements `read`, `write` and `destroy`
 * (and optionally `gc`, `touch`, `open`, `close`); each may return a value or a Promise.
 */
export class SessionHandlerInterface {
  /** Called once per handler before its first read. */
  open(savePath: string, sessionName: string): void | Promise<void>;
  /** Called by the owner of the handler (never by a per-request Store). */
  close(): void | Promise<void>;
  /** Removes sessions idle for more than `lifetimeSeconds`; returns how many (undefined = 0). */
  gc(lifetimeSeconds: number): number | undefined | Promise<number | undefined>;
}

/** The shape a custom handler must have (an instance of any class, or a plain object). */
export interface CustomSessionHandler {
  open?(savePath: string, sessionName: string): unknown;
  close?(): unknown;
  /** The stored string, or '' / null / undefined when there is none. */
  read(sessionId: string): string | null | undefined | Promise<string | null | undefined>;
  write(sessionId: string, data: string, meta?: WriteMeta): unknown;
  destroy(sessionId: string): unknown;
  gc?(lifetimeSeconds: number): number | undefined | Promise<number | undefined>;
  /** Refreshes expiry without rewriting; returns false when there was no record. */
  touch?(sessionId: string): boolean | Promise<boolean>;
  /**
   * Optional compare-and-set: store `data` only if the stored data is exactly `previousData`
   * (`''` = no record), atomically, and resolve `true`; otherwise write nothing and resolve
   * `false`. With it, concurrent requests on one session lose nothing; without it, the driver
   * keeps last-writer-wins. `meta` is what `write()` gets (the request's ip, user agent, user id).
   */
  writeIfUnchanged?(sessionId: string, data: string, previousData: string, meta?: WriteMeta): boolean | Promise<boolean>;
  /**
   * Optional, for manager.sessionsOf(): the driver's index entries of `userId` (sessions whose
   * write had `meta.userId === userId`), each with its stored payload ('' when gone).
   */
  sessionsOf?(userId: string): UserSessionRecord[] | Promise<UserSessionRecord[]>;
  /** Optional: prunes stale entries the engine found in `sessionsOf`. */
  unlinkSessions?(userId: string, ids: string[]): unknown;
  /** Opt-in blocking: takes the session's lock for `ttlMs` atomically; a token, or null when held elsewhere. */
  lock?(sessionId: string, ttlMs: number): string | null | Promise<string | null>;
  /** Releases the lock only while it still holds `token`. */
  unlock?(sessionId: string, token: string): void | Promise<void>;
}

/** One index entry a custom driver's `sessionsOf` returns. */
export interface UserSessionRecord {
  id: string;
  payload: string;
  /** Last write or touch, in ms since the epoch. */
  lastActivity: number;
  ipAddress?: string | null;
  userAgent?: string | null;
}

/** One live session of a user, as manager.sessionsOf() lists it (never the id). */
export interface UserSession {
  /** A keyed hash of the id (HMAC-SHA256 under the app key, 32 hex digits). */
  handle: string;
  createdAt: Date | null;
  lastActivity: Date;
  ipAddress: string | null;
  userAgent: string | null;
  /** Whether this is the `current` Store passed to sessionsOf(). */
  current: boolean;
}

/** Base of the built-in drivers: every method returns a Promise and runs off the JS thread. */
export class NativeSessionHandler extends SessionHandlerInterface {
  /** The stored payload, or '' when there is none or it expired. */
  read(sessionId: string): Promise<string>;
  /** Stores a payload (a string), refreshing its expiry. */
  write(sessionId: string, data: string, meta?: WriteMeta): Promise<void>;
  /** Removes a record; an unknown id is not an error. */
  destroy(sessionId: string): Promise<void>;
  /** Removes sessions idle for strictly more than `lifetimeSeconds`; resolves to the count. */
  gc(lifetimeSeconds: number): Promise<number>;
  /** Refreshes expiry; resolves to false when there was no record. */
  touch(sessionId: string): Promise<boolean>;
  /** Releases connections and threads. */
  close(): Promise<void>;
}

/** Sessions in process memory; for tests and single-process apps. */
export class ArraySessionHandler extends NativeSessionHandler {
  /** @param minutes lifetime after the last write or touch (default 120; fractions allowed) */
  constructor(minutes?: number, options?: ClockOption & TombstoneOption);
}

/** Sessions as files (one per id, written atomically, mode 0600) in a 0700 directory. */
export class FileSessionHandler extends NativeSessionHandler {
  /**
   * @param path the directory, created (mode 0700) when missing; refused when another user owns
   *   it or group/others can write to it
   * @param minutes lifetime after the last write or touch (default 120; fractions allowed)
   */
  constructor(path: string, minutes?: number, options?: FileSessionHandlerOptions);
}

/** Options of the sqlite driver. */
export interface SqliteSessionHandlerOptions extends ClockOption, TombstoneOption {
  /** Table name, a plain SQL identifier (default 'sessions'); anything else is a TypeError. */
  table?: string;
  /** Lifetime after the last write or touch, in minutes (default 120; fractions allowed). */
  minutes?: number;
  /** How long to wait for another connection's lock before ERR_SESSION_BUSY (default 5000). */
  busyTimeoutMs?: number;
  /** Deadline of one operation, 1 to 600000 ms (default 30000); past it, ERR_SESSION_TIMEOUT. */
  timeoutMs?: number;
}

/**
 * Sessions as rows of a SQLite table (the `session:table` migration's), shareable by several
 * processes. All SQLite work runs on one Rust thread per handler; no npm SQLite package needed.
 */
export class SqliteSessionHandler extends NativeSessionHandler {
  /** @param path database file, or ':memory:' for a private in-memory database */
  constructor(path: string, options?: SqliteSessionHandlerOptions);
}

/** Options of the native database driver. */
export interface DatabaseSessionHandlerOptions extends TombstoneOption {
  /** Table name, a plain SQL identifier (default 'sessions'); created when missing. */
  table?: string;
  /** Lifetime in minutes after the last write or touch (default 120). */
  minutes?: number;
  /** Connections kept open at most, 1 to 64 (default 4 for Postgres, which pipelines; 8 for MySQL/MariaDB). */
  pool?: number;
  /** Time allowed to connect, in ms (default 2000). */
  connectTimeoutMs?: number;
  /** Time allowed for one operation, connecting included, in ms (default 2000). */
  commandTimeoutMs?: number;
  /** Replaces the clock: milliseconds since the epoch (tests). */
  now?: () => number;
  /** Replaces the clock (tests); same as `now`. */
  clock?: { now(): number };
}

/**
 * Sessions as rows of a PostgreSQL or MySQL/MariaDB table (the `session:table` migration's),
 * through a small pool of Rust connections; no npm database package needed. A server that goes
 * away rejects with `ERR_SESSION_UNAVAILABLE` within `commandTimeoutMs` (+0.5 s). No TLS.
 */
export class DatabaseSessionHandler extends NativeSessionHandler {
  /** @param url `postgres://…`, `postgresql://…`, `mysql://…` or `mariadb://…` */
  constructor(url: string, options?: DatabaseSessionHandlerOptions);
}

/** A Redis address as an object; `redis://` URL fields, one by one. */
export interface RedisConnectionOptions {
  /** Host name or IP address (default '127.0.0.1'). */
  host?: string;
  /** TCP port (default 6379). */
  port?: number;
  /** ACL user name. */
  username?: string;
  /** Password; never echoed in error messages. */
  password?: string;
  /** Database number (default 0); `database` is accepted too. */
  db?: number;
  /** Connect over TLS with certificate verification; `{ caFile }` trusts a private CA. */
  tls?: boolean | { caFile?: string };
}

/** A Redis Cluster: some node URLs (the rest are discovered) and one login for every node. */
export interface RedisClusterConnection {
  /** `redis://[user:pass@]host:port` or `rediss://…` URLs of some of the nodes. */
  cluster: string[];
  /** ACL user name for every node (else the first URL's). */
  username?: string;
  /** Password for every node (else the first URL's); never echoed in error messages. */
  password?: string;
  /** TLS to every node, also for `redis://` URLs; `{ caFile }` trusts a private CA. */
  tls?: boolean | { caFile?: string };
}

/** A master found through Redis Sentinel, found again after a failover. */
export interface RedisSentinelConnection {
  sentinel: {
    /** The name the sentinels monitor the master under. */
    masterName: string;
    /** Sentinel URLs; credentials in them are the sentinels' own. */
    nodes: string[];
    /** ACL user name for the master. */
    username?: string;
    /** Password for the master. */
    password?: string;
    /** Database number on the master (default 0). */
    db?: number;
    /** TLS to the master; `{ caFile }` trusts a private CA. */
    tls?: boolean | { caFile?: string };
  };
}

/** Options of the redis driver. */
export interface RedisSessionHandlerOptions extends TombstoneOption {
  /**
   * Replicas that must acknowledge each save and destroy (`WAIT`) before it resolves; fewer
   * within the command timeout reject with ERR_SESSION_UNAVAILABLE. Default 0: a save only the
   * master acknowledged can be lost in a failover.
   */
  minReplicas?: number;
  /** Prepended to every session id to form the key (default 'ostro_session:'). */
  prefix?: string;
  /** Lifetime after the last write or touch, in minutes (default 120; the TTL is rounded up to whole seconds). */
  minutes?: number;
  /** Time allowed to connect, in ms (default 2000). */
  connectTimeoutMs?: number;
  /** Time allowed for one operation, in ms (default 2000); past it, ERR_SESSION_UNAVAILABLE. */
  commandTimeoutMs?: number;
  /** `caFile`: a PEM file of CA certificates to verify a `rediss://` server with, instead of the system roots. */
  tls?: { caFile?: string };
}

/**
 * Sessions in Redis (`SET prefix+id payload EX ttl`), expired by Redis itself. The Rust driver
 * is the client: no npm redis package is needed. Nothing connects until the first operation;
 * while Redis is down operations reject with ERR_SESSION_UNAVAILABLE, and recover by themselves.
 */
export class RedisSessionHandler extends NativeSessionHandler {
  /**
   * @param connection `redis://[user:pass@]host:port/db`, `rediss://…` (TLS) or
   *   `redis+unix:///path`, or the same as an object; a Redis Cluster; a master found through Sentinel
   */
  constructor(connection: string | RedisConnectionOptions | RedisClusterConnection | RedisSentinelConnection, options?: RedisSessionHandlerOptions);
}

/** Options of the memcached driver. */
export interface MemcachedSessionHandlerOptions extends TombstoneOption {
  /** Prepended to every id: printable ASCII without spaces, at most 210 bytes (default 'ostro_session:'). */
  prefix?: string;
  /** Lifetime after the last write or touch, in minutes (default 120; over 30 days is sent as an absolute time). */
  minutes?: number;
  /** Time allowed for one operation, in ms (default 2000); past it, ERR_SESSION_UNAVAILABLE. */
  timeoutMs?: number;
}

/**
 * Sessions in memcached, spread over several servers by consistent hashing. The Rust driver is
 * the client (no npm package). SASL credentials are not supported and are refused. A payload
 * over the server's item size limit rejects with ERR_SESSION_TOO_LARGE.
 */
export class MemcachedSessionHandler extends NativeSessionHandler {
  /** @param servers 'host:port', or several */
  constructor(servers: string | string[], options?: MemcachedSessionHandlerOptions);
}

/** Options of a Store. */
export interface StoreOptions {
  /** Deadline for a custom handler's methods (default 30000). */
  timeoutMs?: number;
  /** Largest payload read or written (default 1048576). */
  maxPayloadBytes?: number;
}

/**
 * A session with Laravel's Store API. Keys are dot-aware unless noted. Data lives only behind the
 * methods: setting, defining or deleting any property of a Store throws a `TypeError` with code
 * `ERR_SESSION_PROPERTY` (sloppy-mode code included), and a function passed to a method that
 * takes a boolean or nothing (`regenerate(cb)`, `save(cb)`) throws `ERR_SESSION_CALLBACK`.
 *
 * `Data` types the attributes for the methods that take a key: `Store<{ user: { name: string } }>`
 * makes `get('user.name')` a `string`, `put('user.name', 1)` an error and `get('usr')` an error.
 * It describes the data as stored (JSON: a `Date` comes back as an ISO string). The default,
 * `Record<string, unknown>`, takes any key and reads `unknown`.
 */
export class Store<Data extends object = Record<string, unknown>> {
  constructor(name: string, handler: NativeSessionHandler | CustomSessionHandler, id?: string, options?: StoreOptions);
  /** The id: 40 characters of [A-Za-z0-9]. */
  readonly id: string;
  /** The id. */
  getId(): string;
  /** Sets the id; an invalid one is replaced by a fresh one. */
  setId(id: string): void;
  /** Whether `id` is 40 characters of [A-Za-z0-9]; false for non-strings; never throws. */
  isValidId(id: unknown): boolean;
  /** The cookie name. */
  getName(): string;
  /** Sets the cookie name. */
  setName(name: string): void;
  /** The handler. */
  getHandler(): NativeSessionHandler | CustomSessionHandler;
  /** Request metadata passed to the handler's `write`. */
  setRequestMeta(meta: WriteMeta | undefined): void;
  /** Links the session to a user (null unlinks); saved with the session, indexed by the driver. */
  setUser(id: string | number | bigint | null): void;
  /** The linked user's id, or null. */
  getUser(): string | null;
  /** Loads the session; a corrupt or missing payload gives an empty session. */
  start(): Promise<true>;
  /**
   * Ages flash data; writes when changed (or `resave`), touches when not. Resolves to what it
   * did: 'written', 'touched', or 'dropped' (the session existed at start, is unchanged, and its
   * record is gone: nothing was written, so a read-only request never undoes a logout).
   */
  save(options?: { resave?: boolean }): Promise<'written' | 'touched' | 'dropped'>;
  /** True between start() and save(). */
  isStarted(): boolean;
  /** Whether anything changed since start() (the initial token does not count). */
  isDirty(): boolean;
  /** A new id, data kept; the old record destroyed when `destroy`. */
  migrate(destroy?: boolean): Promise<true>;
  /** migrate() plus a new CSRF token. */
  regenerate(destroy?: boolean): Promise<true>;
  /** flush() then migrate(true). */
  invalidate(): Promise<true>;
  /** A copy of every attribute, internal keys included. */
  all(): SessionAttributes<Data>;
  /** The listed top-level keys that exist (no dot notation). */
  only<K extends keyof Data & string>(...keys: Array<K | readonly K[]>): Partial<Pick<Data, K>>;
  /** A copy without the listed keys. */
  except(...keys: SessionKeys<Data>): SessionAttributes<Data>;
  /** Every key present, null included. */
  exists(...keys: SessionKeys<Data>): boolean;
  /** Every key present and not null. */
  has(...keys: SessionKeys<Data>): boolean;
  /** At least one key present and not null. */
  hasAny(...keys: SessionKeys<Data>): boolean;
  /** Every key null or absent. */
  missing(...keys: SessionKeys<Data>): boolean;
  /** A copy of the value at a dot path; null when absent. */
  get<P extends SessionPath<Data>>(key: P): SessionGot<SessionPathValue<Data, P>>;
  /** A copy of the value at a dot path; `def` (called when a function) when absent. */
  get<P extends SessionPath<Data>, D>(key: P, def: D | (() => D)): Exclude<SessionPathValue<Data, P>, undefined> | D;
  /** get() then forget(). */
  pull<P extends SessionPath<Data>>(key: P): SessionGot<SessionPathValue<Data, P>>;
  pull<P extends SessionPath<Data>, D>(key: P, def: D | (() => D)): Exclude<SessionPathValue<Data, P>, undefined> | D;
  /** pull() without a default. */
  remove<P extends SessionPath<Data>>(key: P): SessionGot<SessionPathValue<Data, P>>;
  /** Sets a dot path (its type checked against `Data`), or every pair of an object (each replacing its path). */
  put<P extends SessionPath<Data>>(key: P, value: SessionPutValue<Data, P>): void;
  put(values: SessionValues<Data>): void;
  /** Sets every pair, as `put(values)`. */
  replace(values: SessionValues<Data>): void;
  /** Deep-merges: objects merge, arrays concatenate. */
  merge<P extends SessionPath<Data>>(key: P, value: SessionMergeValue<Data, P>): void;
  /** The value, or fn() stored when it is null or absent. */
  remember<P extends SessionPath<Data>, R extends SessionPutValue<Data, P>>(key: P, fn: () => R): Exclude<SessionPathValue<Data, P>, undefined | null> | R;
  /** Appends to the array at a path typed as an array (absent or null starts one); throws a TypeError for a non-array. */
  push<P extends SessionPath<Data, readonly unknown[]>>(key: P, value: SessionElement<Data, P>): void;
  /** Adds `by` (default 1) at a path typed as a number; absent counts as 0; throws a TypeError for a non-number. */
  increment(key: SessionPath<Data, number>, by?: number): number;
  /** Subtracts `by` (default 1). */
  decrement(key: SessionPath<Data, number>, by?: number): number;
  /** Removes keys. */
  forget(...keys: SessionKeys<Data>): void;
  /** Empties the session, the token included. */
  flush(): void;
  /** Puts a value (default true, where `true` fits the path) for exactly the next request; or every pair of an object. */
  flash<P extends SessionPath<Data>>(key: P, ...value: SessionFlashArgs<Data, P>): void;
  flash(values: SessionValues<Data>): void;
  /** Puts a value for this request only. */
  now<P extends SessionPath<Data>>(key: P, value: SessionPutValue<Data, P>): void;
  /** Keeps all flash data one more request. */
  reflash(): void;
  /** Keeps the listed keys one more request. */
  keep(...keys: SessionKeys<Data>): void;
  /** Of this request's new flash data, keeps only these keys. */
  flashOnly(...keys: SessionKeys<Data>): void;
  /** Of this request's new flash data, drops these keys. */
  flashExcept(...keys: SessionKeys<Data>): void;
  /** Flashes old input. */
  flashInput(input: Record<string, SessionValue>): void;
  /** Whether old input exists, or one field of it is not null. */
  hasOldInput(key?: string): boolean;
  /** The old input or one field (free-form: the request's input is not part of `Data`). */
  getOldInput(key?: string, def?: unknown): unknown;
  /** Forgets old flash data and makes new flash data old. */
  ageFlashData(): void;
  /** The CSRF token (null before start()). */
  token(): string | null;
  /** A new CSRF token. */
  regenerateToken(): string;
  /** The previous URL, or null. */
  previousUrl(): string | null;
  /** Sets the previous URL. */
  setPreviousUrl(url: string): void;
}

/** The keys of OstroJS's `config/session.js`, plus the app key and proxy trust. */
export interface SessionConfig {
  /** 'file' (default), 'array'/'memory', 'sqlite', 'database', 'redis', 'memcached', 'cookie', 'cache', 'cache.<store>', or an extend() name. */
  driver?: string;
  /** Minutes (default 120); numeric strings are accepted. */
  lifetime?: number | string;
  /** The cookie carries no expiry (default false). */
  expire_on_close?: boolean;
  /** Seal payloads at rest with AES-256-GCM (default false). */
  encrypt?: boolean;
  /** With `encrypt`: read an unsealed payload once and seal it (default false). */
  encrypt_migrate?: boolean;
  /** The file driver's directory (default 'storage/framework/sessions', relative to the working directory). */
  files?: string;
  /** redis: URL or connection object; memcached: 'host:port' or a list; sqlite: database file; database: a postgres://, mysql:// or mariadb:// URL. */
  connection?: string | string[] | RedisConnectionOptions | RedisClusterConnection | RedisSentinelConnection | null;
  /** sqlite / database table (default 'sessions'). */
  table?: string;
  /** For driver 'cache': the cache store's name. */
  store?: string | null;
  /** Key prefix for redis / memcached. */
  prefix?: string | null;
  /** Garbage-collection odds: [chances, outOf] (default [2, 100]). */
  lottery?: [number, number];
  /** Cookie name (default 'ostro_session'). */
  cookie?: string;
  /** Cookie path (default '/'). */
  path?: string;
  /** Cookie domain (default none). */
  domain?: string | null;
  /** `Secure` attribute (default false); 'auto' sets it on secure requests only. */
  secure?: boolean | 'auto';
  /** `HttpOnly` attribute (default true). */
  http_only?: boolean;
  /** `SameSite` (default 'lax'); 'none' requires secure: true. */
  same_site?: 'lax' | 'strict' | 'none' | null;
  /** Always write, never touch (default false). */
  resave?: boolean;
  /** Save and cookie new sessions nobody touched (default true). */
  saveUninitialized?: boolean;
  /** Always true: session cookies are always signed. */
  signed?: true;
  /** Remember the previous URL (default true). */
  previous_url?: boolean;
  /** Trust X-Forwarded-For / -Proto (default false). */
  trust_proxy?: boolean;
  /** The app key: signs cookies, makes OstroJS CSRF tokens, derives the encryption key. */
  key?: string;
  /** Old app keys still accepted when verifying and decrypting (or one comma-separated string). */
  previous_keys?: string[] | string;
  /** 'ostro': CSRF tokens in the format OstroJS's VerifyCsrfToken checks (the default under OstroJS); 'laravel': 40 alphanumerics. */
  csrf?: 'ostro' | 'laravel' | null;
  /** The attribute (a dot path such as 'auth.id') whose value links the session to a user at every save. */
  user_attribute?: string | null;
  // ----- session lifecycle -----
  /** Absolute timeout in minutes since the session was created (null, the default: off). */
  absolute_lifetime?: number | string | null;
  /** Renew the session id this many minutes after it was issued (null, the default: off). */
  renew_after?: number | string | null;
  /** How long a renewed session's old id still loads it, in seconds (default 30). */
  renew_grace_seconds?: number | string | null;
  /**
   * How long a logout's tombstone refuses late saves, in whole seconds from 1 to the lifetime
   * (null, the default: the lifetime); longer is refused, not clamped.
   */
  tombstone_seconds?: number | string | null;
  /**
   * redis: replicas that must acknowledge each save and destroy (`WAIT`) before it resolves,
   * 0 to 100 (default 0: the master's word, which a failover can lose). Other drivers refuse
   * a non-zero value.
   */
  minReplicas?: number | string | null;
}

/** A lifecycle event published on `ostro:session:<event>` (and to `manager.on(event, fn)`). */
export type SessionEventName = 'created' | 'loaded' | 'regenerated' | 'renewed' | 'destroyed' | 'expired' | 'save_dropped' | 'error';

/** The message of a lifecycle event: `handle` is a keyed hash of the id, never the id. */
export interface SessionEventMessage {
  driver: string;
  handle: string | null;
  /** 'idle' | 'absolute' (expired), 'regenerate' | 'migrate' | 'invalidate' | 'revoked' (destroyed; 'revoked' from destroySession/destroyUserSessions), 'renew_after', 'forwarded' (loaded), 'gone' | 'conflict' (save_dropped), an error code (error); else null. */
  reason: string | null;
}

/** One operation's counters and latency histogram (`le` in ms, counts cumulative). */
export interface SessionOperationMetrics {
  count: number;
  errors: number;
  sumMs: number;
  buckets: { le: number; count: number }[];
}

/** What `manager.metrics()` returns. */
export interface SessionMetrics {
  drivers: Record<string, {
    operations: Record<'load' | 'save' | 'destroy' | 'gc', SessionOperationMetrics>;
    saves: { written: number; touched: number; dropped: number };
  }>;
}

/** The Store each request gets from a SessionManager; it notes whether `token()` was read. */
export class HttpStore<Data extends object = Record<string, unknown>> extends Store<Data> {}

/** Connect-style middleware; without `next` it resolves to true once `req.session` is ready (false after answering 500). */
export type SessionMiddleware = (req: any, res: any, next?: (err?: unknown) => void) => Promise<boolean>;

/**
 * What `manager.middleware()` adds to a request: `req.session`, the request's Store. Opt in for
 * Express (one session API per app) by augmenting its Request:
 *
 *   declare global { namespace Express { interface Request extends SessionRequest<AppData> {} } }
 *
 * (or `interface Request { session: HttpStore<AppData> }`, the same thing).
 */
export interface SessionRequest<Data extends object = Record<string, unknown>> {
  session: HttpStore<Data>;
}

/** Drivers by name, per-request Stores, and the HTTP middleware. */
export class SessionManager<Data extends object = Record<string, unknown>> {
  constructor(config?: SessionConfig, options?: { app?: unknown; logger?: { error(...args: unknown[]): void }; storeClass?: new (name: string, handler: NativeSessionHandler | CustomSessionHandler, id?: string, options?: StoreOptions) => HttpStore<Data>; cache?: { default?: string; stores?: Record<string, { driver: string; [k: string]: unknown }> }; timeoutMs?: number; now?: () => number });
  readonly config: Readonly<Required<SessionConfig>>;
  readonly app: unknown;
  getDefaultDriver(): string;
  setDefaultDriver(name: string): void;
  /** `factory(app, name, config)` returns a handler; called once, on first use. */
  extend(name: string, factory: (app: unknown, name: string, config: Readonly<SessionConfig>) => CustomSessionHandler | NativeSessionHandler): this;
  /** The (shared) handler of a driver, the default one when `name` is omitted. */
  driver(name?: string): CustomSessionHandler | NativeSessionHandler;
  /**
   * A new, not started Store on the default driver; `cookie` is the cookie driver's request value.
   * Trusted input only: `id` is adopted even when no session has it, and `save()` writes under it.
   * For an id that came from a client use `loadStore(cookieHeader)` or `loadSession(req)`.
   */
  createStore(id?: string | null, options?: { cookie?: string | null }): HttpStore<Data>;
  /**
   * Loads a request's session as the middleware does, without touching a response. `existed`:
   * the request's cookie named a session the store knew. `cookieId`: the id the cookie must
   * carry after the load when it is not the one the request's cookie named (the session was
   * renewed under `renew_after`, or the cookie named a renewed id inside its grace window and
   * was forwarded, or a 1.x id moved to a fresh one): send a new cookie for it; null when the
   * request's cookie still names the session, or named none. Optional: a subclass overriding
   * `loadSession` may leave it out.
   */
  loadSession(req: any, options?: { block?: SessionBlockOption }): Promise<{ store: HttpStore<Data>; existed: boolean; cookieId?: string | null; lock?: SessionLock }>;
  /**
   * The session of a client's `Cookie` header (a WebSocket upgrade), with the middleware's
   * checks: the signature is verified, and an unknown, unsigned or tampered id gets a fresh id
   * (`existed: false`). The Store is started; `save()` it when done. `cookieId` as from
   * `loadSession(req)`: the id a new cookie must carry when the load renewed or forwarded the
   * session, else null.
   */
  loadStore(cookieHeader: string | string[] | null | undefined): Promise<{ store: HttpStore<Data>; existed: boolean; cookieId?: string | null }>;
  /**
   * What the middleware does when a request comes in, without touching the response: resolves
   * the driver, loads the session as `loadSession(req)` does, and draws the gc lottery. For
   * adapters of other frameworks. `existed` and `cookieId` as from `loadSession(req)`.
   */
  openSession(req: any, options?: { block?: SessionBlockOption }): Promise<{ store: HttpStore<Data>; existed: boolean; cookieId?: string | null; lock?: SessionLock }>;
  /**
   * The session cookie's `Set-Cookie` line under the config's attributes. `value` is the cookie
   * value before URL-encoding (`signedCookieValue(id)`, or the cookie driver's sealed session);
   * null writes an expired cookie that makes the browser drop it. `req` decides `secure: 'auto'`.
   */
  sessionCookie(value: string | null, req?: any): string;
  /** The signed cookie value for `id` (`s:<id>.<signature>`, as cookie-signature and 1.x sign it). */
  signedCookieValue(id: string): string;
  /**
   * The native handle of the session cookie's `Set-Cookie` attributes and signing key,
   * registered on first use; the request layer commits with it, and the line is built in the
   * core as `sessionCookie` builds it. Throws `ERR_SESSION_INVALID_OPTION` when the app key is
   * missing.
   */
  setCookieHandle(): number;
  /** Where errors off the request path go (the `logger` option; console by default). */
  readonly logger: { error(...args: unknown[]): void };
  /**
   * Draws the gc lottery for `handler` (the default driver); a win schedules `collectGarbage()`
   * off the request path, one run per handler at a time. Returns whether it was scheduled.
   */
  runLottery(handler?: unknown): boolean;
  /** Runs gc now on a driver (the default one). */
  collectGarbage(handler?: unknown): Promise<number>;
  /**
   * The live sessions of a user on the default driver, newest first; `current` marks the given
   * Store. Rejects with ERR_SESSION_UNSUPPORTED on drivers that cannot enumerate (memcached, cookie).
   */
  sessionsOf(userId: string | number, options?: { current?: Store<Data> }): Promise<UserSession[]>;
  /** Ends the user's session shown as `handle` (publishing `destroyed`, reason 'revoked'); false when the user has no live session with it. */
  destroySession(userId: string | number, handle: string): Promise<boolean>;
  /** Ends every live session of the user except `except` ("log out other devices"), publishing `destroyed` (reason 'revoked') for each; resolves to how many. */
  destroyUserSessions(userId: string | number, options?: { except?: Store<Data> }): Promise<number>;
  /**
   * The middleware. Outside OstroJS it resolves the driver now, so an unknown driver name fails
   * at start-up: register custom drivers with `extend()` before calling it. With
   * `{ api: 'express-session', ...options }`, `req.session` has express-session's shape (the
   * compatibility mode for connect-flash, passport and the like); otherwise it is the Store.
   */
  /** `block`: requests on one session run one at a time (README "Blocking"); ERR_SESSION_LOCKED / 423 after `waitSeconds`. */
  middleware(options?: { api?: 'laravel'; block?: SessionBlockOption }): SessionMiddleware;
  middleware(options: ExpressSessionOptions & { api: 'express-session' }): ExpressSessionMiddleware;
  /** Closes every driver the manager created. */
  close(): Promise<void>;
  // ----- session lifecycle -----
  /** Calls `fn` for each `event` of this manager's sessions (sugar over node:diagnostics_channel). */
  on(event: SessionEventName, fn: (message: SessionEventMessage) => void): this;
  /** Removes a listener added with `on()`. */
  off(event: SessionEventName, fn: (message: SessionEventMessage) => void): this;
  /** Counters and latency histograms per driver and operation. */
  metrics(): SessionMetrics;
}

/**
 * The cookie driver: each session sealed (AES-256-GCM) in its own cookie, the cookie name as
 * associated data and an expiry inside. Such a session cannot be revoked server-side before it
 * expires.
 */
export class CookieSessionHandler extends SessionHandlerInterface {
  constructor(options: { name: string; keys: string[]; minutes?: number; maxBytes?: number } & ClockOption);
  read(): string;
  write(): Promise<never>;
  destroy(): void;
}

/** The `block` option of `middleware()` (opt-in blocking, as Laravel's `block()`). */
export type SessionBlockOption = boolean | { lockSeconds?: number; waitSeconds?: number };
/** A held session lock; `release()` never rejects (a failed release is logged, the lock expires). */
export interface SessionLock { release(): Promise<void>; }
