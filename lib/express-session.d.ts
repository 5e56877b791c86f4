// Types of the express-session API (lib/express-session.js): `req.session` in
// express-session's shape over @ostro/session's engine, its options and the migration option.
import type { SessionManager } from '../index';

/**
 * The session data of an app, to be augmented by the app:
 *
 *   declare module '@ostro/session' {
 *     interface ExpressSessionData { views: number; passport: { user: number } }
 *   }
 *
 * (index.d.ts re-exports these types, so the augmentation names '@ostro/session'; this file is
 * not a subpath export of its own.)
 */
export interface ExpressSessionData {}

/**
 * `req.session.cookie`, as express-session's Cookie: `maxAge` (ms from now) and `expires` are
 * two views of one expiry, and setting either changes the `Set-Cookie` line. Stored with the
 * session; a new session's cookie comes from the manager's config (`lifetime`, `path`,
 * `domain`, `secure`, `http_only`, `same_site`, `expire_on_close`).
 */
export interface SessionCookie {
  /** Milliseconds until expiry, or null for a cookie that ends with the browser. */
  maxAge: number | null;
  /** The expiry, or null for a cookie that ends with the browser. */
  expires: Date | null;
  /** The maxAge the session started with; `touch()` resets `maxAge` to it. */
  originalMaxAge: number | null;
  path: string;
  httpOnly: boolean;
  secure?: boolean;
  domain?: string;
  sameSite?: boolean | 'lax' | 'strict' | 'none';
  /** The attributes as stored with the session. */
  readonly data: {
    originalMaxAge: number | null;
    expires: Date | null | undefined;
    secure?: boolean;
    httpOnly: boolean;
    domain?: string;
    path: string;
    sameSite?: boolean | 'lax' | 'strict' | 'none';
  };
  toJSON(): SessionCookie['data'];
}

/** `cb(err)` of the session methods: called once the I/O settled; `err` is the driver's own error. */
export type SessionCallback = (err?: unknown) => void;

/**
 * The methods and fixed properties of `req.session`. Each callback method returns the session;
 * without a callback, an error fails the request (it reaches `next(err)`).
 */
export interface ExpressSessionMethods {
  /** The session id (read-only): 40 characters of [A-Za-z0-9]. */
  readonly id: string;
  cookie: SessionCookie;
  /** Resets `cookie.maxAge` to `cookie.originalMaxAge` (every response does this too). */
  touch(): this;
  resetMaxAge(): this;
  /** Writes the session now, even unchanged. */
  save(callback?: SessionCallback): this;
  /**
   * Reads the session again from its driver into a new `req.session`. The error has code
   * `ERR_SESSION_INVALID_ID` when the record is gone.
   */
  reload(callback?: SessionCallback): this;
  /** Removes the record and `req.session` (at once); no cookie is sent for this request. */
  destroy(callback?: SessionCallback): this;
  /** Destroys the record; `req.session` becomes a new, empty session under a fresh id. */
  regenerate(callback?: SessionCallback): this;
}

/**
 * `req.session`: the app's data as plain properties (JSON values: what `JSON.stringify` keeps
 * is stored; Dates come back as ISO strings), plus express-session's methods. Top-level names
 * may not contain '.', and `_token`, `_flash`, `_previous` are the engine's (ERR_SESSION_VALUE).
 */
export type ExpressSession<Data extends object = ExpressSessionData> = ExpressSessionMethods & Partial<Data> & { [key: string]: unknown };

/**
 * What the middleware adds to a request. Opt in for Express (one session API per app):
 *
 *   declare global { namespace Express { interface Request extends ExpressSessionRequest {} } }
 */
export interface ExpressSessionRequest<Data extends object = ExpressSessionData> {
  /** Absent after `destroy()`; the app may set it to null (see `unset`). */
  session: ExpressSession<Data>;
  /** The current session id (updated by `regenerate()`). */
  sessionID: string;
}

/** Migration from express-session: `{ secret, store }` of the app before the switch. */
export interface ExpressSessionMigration {
  /**
   * The express-session `secret` (or list of them). Used only to verify old cookies, never to
   * sign, verify or decrypt anything of ours.
   */
  secret: string | string[];
  /** The old express-session store, e.g. connect-redis's `new RedisStore({ client })`: only `get` is called. */
  store: { get(sid: string, callback: (err: unknown, session?: object | null) => void): unknown };
}

export interface ExpressSessionOptions {
  /** Selects this API in `manager.middleware({ api: 'express-session' })`. */
  api?: 'express-session';
  /** Write an unchanged session back on every request (default: the manager's `resave`, false). */
  resave?: boolean;
  /** Save and cookie a new session nobody changed (default: the manager's `saveUninitialized`, true). */
  saveUninitialized?: boolean;
  /** Send the cookie on every response, its expiry reset (default false). */
  rolling?: boolean;
  /** When the app sets `req.session` to null: 'keep' the record (default) or 'destroy' it. */
  unset?: 'keep' | 'destroy';
  /** Read express-session cookies and records once, and save them in our format under a fresh id. */
  migrateFrom?: ExpressSessionMigration;
}

/** Connect-style middleware; without `next` it resolves to true once `req.session` is ready (false after answering 500). */
export type ExpressSessionMiddleware = (req: any, res: any, next?: (err?: unknown) => void) => Promise<boolean>;

/**
 * The middleware giving `req.session` in express-session's shape, backed by the manager's
 * driver, cookie and payload format. The cookie driver is refused (ERR_SESSION_INVALID_OPTION).
 */
export declare function createExpressSessionMiddleware(manager: SessionManager, options?: ExpressSessionOptions): ExpressSessionMiddleware;

/** The 32-character id shape of express-session (uid-safe, 24 bytes), accepted only for migration. */
export declare const EXPRESS_SESSION_ID: RegExp;

// ----- Fastify -----------------------------------------------------------------------------------

/**
 * Which API `request.session` has in a Fastify app. Empty (the default): the Store
 * (`HttpStore`). An app that registers the plugin with `api: 'express-session'` says so once:
 *
 *   declare module '@ostro/session' {
 *     interface FastifySessionApi { api: 'express-session' }
 *   }
 *
 * and `request.session` is then `FastifyExpressSession<ExpressSessionData>`.
 */
export interface FastifySessionApi {}

/**
 * The methods of `request.session` under Fastify with `api: 'express-session'`: express-session's,
 * where a call without a callback returns a Promise (as @fastify/session's do), plus
 * @fastify/session's `sessionId`, `get`, `set` and `regenerate(keys)`.
 */
export interface FastifyExpressSessionMethods extends Omit<ExpressSessionMethods, 'save' | 'reload' | 'destroy' | 'regenerate'> {
  /** The session id (@fastify/session's name for `id`). */
  readonly sessionId: string;
  /** `session[key]`. */
  get<K extends string>(key: K): unknown;
  /** `session[key] = value`. */
  set(key: string, value: unknown): void;
  /** Writes the session now, even unchanged. */
  save(): Promise<void>;
  save(callback: SessionCallback): this;
  /** Reads the session again into a new `request.session` (`ERR_SESSION_INVALID_ID` when the record is gone). */
  reload(): Promise<void>;
  reload(callback: SessionCallback): this;
  /** Removes the record; `request.session` becomes null at once; no cookie is sent. */
  destroy(): Promise<void>;
  destroy(callback: SessionCallback): this;
  /**
   * Destroys the record; `request.session` becomes a new session under a fresh id, empty but for
   * the properties `keys` lists.
   */
  regenerate(keys?: string[]): Promise<void>;
  regenerate(callback: SessionCallback): this;
  regenerate(keys: string[], callback: SessionCallback): this;
}

/** `request.session` under Fastify with `api: 'express-session'`: the data as plain properties. */
export type FastifyExpressSession<Data extends object = ExpressSessionData> = FastifyExpressSessionMethods & Partial<Data> & { [key: string]: unknown };
