// Types of `@ostro/session/middleware/startSession` (the `web` group's session middleware).
import type { SessionManager } from '../../../index';

/**
 * OstroJS's StartSession: the router sets `prototype.$app`, builds it once and calls `handle()`
 * per request. A missing `session` binding reaches each request as an ERR_SESSION_INVALID_OPTION
 * error passed to `next`, never a throw at boot.
 */
declare class StartSession {
  /**
   * Without parameters, the plain session middleware. With `lockSeconds` (and `waitSeconds`,
   * default 10), a blocking one (Laravel's `block()`): requests on one session run one at a
   * time; OstroJS passes a named middleware's parameters (`'session:10,10'`) as strings.
   */
  constructor(lockSeconds?: number | string, waitSeconds?: number | string);
  /** A blocking StartSession class, for a middleware group's list. */
  static block(lockSeconds?: number, waitSeconds?: number): typeof StartSession;
  /** The app's `session` manager, or null when the provider is missing. */
  readonly $session: SessionManager | null;
  handle(context: { request: object; response: object; next: (err?: unknown) => unknown }): void;
}

export = StartSession;
