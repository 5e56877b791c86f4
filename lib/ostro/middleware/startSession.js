'use strict';
// `@ostro/session/middleware/startSession`: the `web` group's session middleware. OstroJS's
// router sets `prototype.$app`, instantiates the class once and calls
// `handle({ request, response, next })` per request; this hands the request to the manager's
// Connect-style middleware, which defines `request.session` (not replaceable), saves before the
// first byte of the response and sets the cookie. Under OstroJS, tokens are in the format the
// framework's VerifyCsrfToken checks.
//
// Opt-in blocking (Laravel's `->block($lockSeconds, $waitSeconds)`, `manager.middleware({ block })`):
// OstroJS passes a named middleware's parameters to its constructor (`'session:10,10'` →
// `new StartSession('10', '10')`), so `new StartSession(lockSeconds, waitSeconds)` is a blocking
// StartSession; `StartSession.block(lockSeconds, waitSeconds)` is the same as a class, for a
// middleware group's list (a group of blocked routes lists it instead of the plain one: the
// session must be locked before it is loaded, so a second StartSession after the `web` group's
// cannot block).
const { sessionError } = require('../../errors');

/** The `block` option from the constructor's parameters (strings from a route, or numbers). */
function blockOf(params) {
  if (params.length === 0 || (params.length === 1 && params[0] === undefined)) return undefined;
  const seconds = (v, name) => {
    const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isFinite(n)) {
      throw sessionError('ERR_SESSION_INVALID_OPTION', `StartSession's ${name} parameter must be a number of seconds (as in 'session:10,10'), got ${JSON.stringify(v)}`);
    }
    return n;
  };
  const block = { lockSeconds: seconds(params[0], 'lockSeconds') };
  if (params[1] !== undefined) block.waitSeconds = seconds(params[1], 'waitSeconds');
  return block;
}

class StartSession {
  /**
   * @param {number|string} [lockSeconds] with it, the session is blocked (one request at a time)
   * for up to `lockSeconds` per request
   * @param {number|string} [waitSeconds] how long a request waits for the lock (default 10)
   */
  constructor(...params) {
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
    let block;
    try {
      block = blockOf(params.length === 0 ? (this.constructor.blockParams || []) : params);
    } catch (err) {
      if (problem === null) problem = err;
    }
    Object.defineProperties(this, {
      $session: { value: manager, writable: true },
      _problem: { value: problem, writable: true },
      _middleware: { value: null, writable: true },
      _block: { value: block },
    });
  }

  handle({ request, response, next }) {
    // `next` is taken now: the router replaces the context's `next` as later middleware run.
    if (this._problem !== null) return next(this._problem);
    if (this._middleware === null) {
      try {
        this._middleware = this._block === undefined ? this.$session.middleware() : this.$session.middleware({ block: this._block });
      } catch (err) {
        // A bad block option, or a driver that cannot lock: every request of the route says so.
        this._problem = err;
        return next(err);
      }
    }
    this._middleware(request, response, next);
    return undefined;
  }

  /**
   * A StartSession class that blocks (see the top of this file), for middleware group lists.
   * @param {number} [lockSeconds=10]
   * @param {number} [waitSeconds=10]
   */
  static block(lockSeconds = 10, waitSeconds = 10) {
    const Base = this;
    return class BlockingStartSession extends Base {
      static get blockParams() {
        return [lockSeconds, waitSeconds];
      }
    };
  }
}

module.exports = StartSession;
