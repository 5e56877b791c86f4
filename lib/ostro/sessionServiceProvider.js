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
    this.registerUserCommands();
  }

  // `session:list`, `session:revoke`, `session:prune` (issue 13), as the framework registers
  // `session:table`: container singletons handed to the assistant by `commands()`.
  registerUserCommands() {
    if (typeof this.commands !== 'function' || typeof this.$app.singleton !== 'function') return;
    const names = {
      'command.session.list': 'SessionListCommand',
      'command.session.revoke': 'SessionRevokeCommand',
      'command.session.prune': 'SessionPruneCommand',
    };
    for (const [key, cls] of Object.entries(names)) {
      this.$app.singleton(key, () => new (require('./console/sessionUserCommands')[cls])());
    }
    this.commands(Object.keys(names));
  }

  boot() {
    this.$app.singleton('session.store', (app) => app['session'].driver());
  }
}

module.exports = SessionServiceProvider;
