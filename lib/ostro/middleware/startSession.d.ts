// Types of `@ostro/session/middleware/startSession` (the `web` group's session middleware).
import type { SessionManager } from '../../../index';

/**
 * OstroJS's StartSession: the router sets `prototype.$app`, builds it once and calls `handle()`
 * per request. A missing `session` binding reaches each request as an ERR_SESSION_INVALID_OPTION
 * error passed to `next`, never a throw at boot.
 */
declare class StartSession {
  constructor();
  /** The app's `session` manager, or null when the provider is missing. */
  readonly $session: SessionManager | null;
  handle(context: { request: object; response: object; next: (err?: unknown) => unknown }): void;
}

export = StartSession;
