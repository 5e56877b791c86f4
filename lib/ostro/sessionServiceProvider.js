'use strict';
// `@ostro/session/sessionServiceProvider`: listed in an OstroJS app's `config/app.js` providers.
// register() binds the `session` singleton (the SessionManager, built from config('session') and
// config('app.key') when first resolved; drivers resolve later still, on first use, so that
// `extend()` in a provider's boot() works). boot() binds `session.store`: the default driver's
// handler, as 1.x did (a handler shared by all requests, never a per-request Store).
const { requireFromApp, linkSessionContract } = require('./resolve');

/** Used when the app has no `@ostro/support` (the provider is then only a plain object). */
class FallbackServiceProvider {
  constructor($app) {
    this.$app = $app;
  }

  register() {}

  boot() {}

  callBootingCallbacks() {}

  callBootedCallbacks() {}

  provides() {
    return [];
  }

  isDeferred() {
    return false;
  }
}

const ServiceProvider = requireFromApp('@ostro/support/serviceProvider') || FallbackServiceProvider;

class SessionServiceProvider extends ServiceProvider {
  register() {
    linkSessionContract();
    this.$app.singleton('session', (app) => {
      const OstroSessionManager = require('./sessionManager');
      return new OstroSessionManager(app);
    });
  }

  boot() {
    this.$app.singleton('session.store', (app) => app['session'].driver());
  }
}

module.exports = SessionServiceProvider;
