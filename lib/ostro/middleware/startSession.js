'use strict';
// `@ostro/session/middleware/startSession`: the `web` group's session middleware. OstroJS's
// router sets `prototype.$app`, instantiates the class once and calls
// `handle({ request, response, next })` per request; this hands the request to the manager's
// Connect-style middleware, which defines `request.session` (not replaceable), saves before the
// first byte of the response and sets the cookie. Under OstroJS, tokens are in the format the
// framework's VerifyCsrfToken checks.
const { sessionError } = require('../../errors');

class StartSession {
  constructor() {
    // Never throws: the router builds every middleware at boot, and a session config error
    // should reach the requests that need a session as an error, not stop the whole app.
    let manager = null;
    let problem = null;
    try {
      manager = this.$app ? this.$app['session'] : null;
    } catch (err) {
      problem = err;
    }
    if (problem === null && (!manager || typeof manager.middleware !== 'function')) {
      problem = sessionError('ERR_SESSION_INVALID_OPTION', 'StartSession needs the `session` manager: add @ostro/session/sessionServiceProvider to the providers of config/app.js');
      manager = null;
    }
    Object.defineProperties(this, {
      $session: { value: manager, writable: true },
      _problem: { value: problem, writable: true },
      _middleware: { value: null, writable: true },
    });
  }

  handle({ request, response, next }) {
    // `next` is taken now: the router replaces the context's `next` as later middleware run.
    if (this._problem !== null) return next(this._problem);
    if (this._middleware === null) this._middleware = this.$session.middleware();
    this._middleware(request, response, next);
    return undefined;
  }
}

module.exports = StartSession;
