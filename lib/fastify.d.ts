// Types of `@ostro/session/fastify`: the plugin, its options, and `request.session` /
// `fastify.sessionManager` merged into Fastify's own interfaces.
import type { FastifyPluginAsync } from 'fastify';
import type { HttpStore, SessionBlockOption, SessionConfig, SessionManager } from '../index';
import type { FastifySessionDataOrFree } from './session-data';
import type { ExpressSessionData, ExpressSessionOptions, FastifyExpressSession, FastifySessionApi } from './express-session';

/** `request.session`: the Store, or the express-session shape once the app declared that API. */
type RequestSession = FastifySessionApi extends { api: 'express-session' }
  ? FastifyExpressSession<ExpressSessionData>
  : HttpStore<FastifySessionDataOrFree>;

declare module 'fastify' {
  interface FastifyRequest {
    /**
     * This request's session, loaded by the plugin's `onRequest` hook and saved (with the
     * `Set-Cookie` line) by its `onSend` hook, before the reply is written. The Store, its data
     * typed by `FastifySessionData` (augment it in '@ostro/session'; free-form while that is
     * empty); or, with `api: 'express-session'` declared on `FastifySessionApi`, a session in
     * express-session's shape typed by `ExpressSessionData` (null after `destroy()`).
     */
    session: RequestSession;
  }
  interface FastifyContextConfig {
    /**
     * This route's session options: `block` (Laravel's `block()`) runs the requests of one
     * session one at a time on this route; `false` turns the plugin's `block` off here.
     */
    session?: { block?: SessionBlockOption | false };
  }
  interface FastifyInstance {
    /** The manager behind the plugin: the one passed as `{ manager }`, or the one built from the config. */
    sessionManager: SessionManager;
  }
}

type OstroSessionPlugin = FastifyPluginAsync<ostroSession.OstroSessionOptions>;

declare namespace ostroSession {
  /** A manager the app owns (the plugin never closes it); no config keys beside it. */
  export interface ManagerOption {
    manager: SessionManager;
  }

  /** Config keys only; the plugin builds the manager and closes it with the app. */
  export type ConfigOption = SessionConfig & { manager?: never };

  /** `request.session` is the Store (the default). */
  export interface StoreApiOption {
    api?: 'laravel';
    /** Blocking on every route (README "Blocking"); a route's `config.session.block` overrides it. */
    block?: SessionBlockOption | false;
    rolling?: never;
    unset?: never;
    migrateFrom?: never;
  }

  /**
   * `request.session` in express-session's shape (lib/express-session.js), with that API's
   * options; `resave` and `saveUninitialized` are the manager config's keys, and may be given
   * beside `{ manager }` to override them for this API.
   */
  export type ExpressSessionApiOption = Omit<ExpressSessionOptions, 'api' | 'resave' | 'saveUninitialized'> & { api: 'express-session' };

  /**
   * Either a `SessionManager` config (the plugin owns the manager it builds) or `{ manager }`;
   * mixing the two is refused. Either with `api: 'express-session'` and that API's options.
   */
  export type OstroSessionOptions =
    | (ConfigOption & (StoreApiOption | ExpressSessionApiOption))
    | (ManagerOption & { [K in keyof SessionConfig]?: never } & StoreApiOption)
    | (ManagerOption & { [K in Exclude<keyof SessionConfig, 'resave' | 'saveUninitialized'>]?: never } & ExpressSessionApiOption & Pick<ExpressSessionOptions, 'resave' | 'saveUninitialized'>);

  export const ostroSession: OstroSessionPlugin;
  export { ostroSession as default };
}

/**
 * Sessions for Fastify: `fastify.register(ostroSession, config | { manager })`. Not
 * encapsulated (like a fastify-plugin plugin): every route of the instance gets `request.session`.
 */
declare function ostroSession(...params: Parameters<OstroSessionPlugin>): ReturnType<OstroSessionPlugin>;

export = ostroSession;
