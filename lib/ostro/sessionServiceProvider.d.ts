// Types of `@ostro/session/sessionServiceProvider` (listed in an OstroJS app's config/app.js).

/**
 * The OstroJS service provider: `register()` binds the `session` singleton (the OstroJS
 * SessionManager), `boot()` binds `session.store` (the default driver's shared handler). It
 * extends `@ostro/support/serviceProvider` when the app has it.
 */
declare class SessionServiceProvider {
  constructor($app: unknown);
  /** The OstroJS application. */
  $app: unknown;
  register(): void;
  boot(): void;
}

export = SessionServiceProvider;
