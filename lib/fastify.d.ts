// Types of `@ostro/session/fastify`: the plugin, its options, and `request.session` /
// `fastify.sessionManager` merged into Fastify's own interfaces.
import type { FastifyPluginAsync } from 'fastify';
import type { HttpStore, SessionConfig, SessionManager } from '../index';
import type { FastifySessionDataOrFree } from './session-data';

declare module 'fastify' {
  interface FastifyRequest {
    /**
     * This request's session, loaded by the plugin's `onRequest` hook and saved (with the
     * `Set-Cookie` line) by its `onSend` hook, before the reply is written. Its data is typed by
     * `FastifySessionData` (augment it in '@ostro/session'); free-form while that is empty.
     */
    session: HttpStore<FastifySessionDataOrFree>;
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

  /**
   * Either a `SessionManager` config (the plugin owns the manager it builds) or `{ manager }`;
   * mixing the two is refused.
   */
  export type OstroSessionOptions = ConfigOption | (ManagerOption & { [K in keyof SessionConfig]?: never });

  export const ostroSession: OstroSessionPlugin;
  export { ostroSession as default };
}

/**
 * Sessions for Fastify: `fastify.register(ostroSession, config | { manager })`. Not
 * encapsulated (like a fastify-plugin plugin): every route of the instance gets `request.session`.
 */
declare function ostroSession(...params: Parameters<OstroSessionPlugin>): ReturnType<OstroSessionPlugin>;

export = ostroSession;
