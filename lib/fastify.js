'use strict';
// `@ostro/session/fastify`: sessions for Fastify, in the shape of `@fastify/session`.
//
//   fastify.register(require('@ostro/session/fastify'), { driver: 'redis', connection, key })
//   fastify.register(require('@ostro/session/fastify'), { manager })
//   fastify.register(require('@ostro/session/fastify'), { manager, api: 'express-session' })
//
// Built on Fastify's own hooks rather than on the Connect middleware: the middleware defers
// Node's writeHead/write/end, which Fastify drives itself, and an `onRequest` hook around it
// either runs routes twice or truncates bodies unless the reply is hijacked. Here:
// - `onRequest` loads the session into `request.session`: the manager's Store, or with
//   `api: 'express-session'` a session in express-session's shape (lib/express-session.js),
//   whose methods also return Promises, as @fastify/session's do;
// - `onSend` (after the route and serialization, before a byte is written) saves it and adds the
//   `Set-Cookie` line with `reply.header`, so a redirect target always sees what the
//   redirecting request wrote;
// - a load or save error goes to Fastify's error handling (`setErrorHandler`, else Fastify's
//   500), as a coded `ERR_SESSION_*` error.
// Replies that bypass `onSend` (`reply.hijack()`, writing to `reply.raw`) are not committed.
//
// Opt-in blocking (Laravel's `block()`, `manager.middleware({ block })`): `block: true |
// { lockSeconds, waitSeconds }` among the plugin's options blocks every route, and a route's
// `config: { session: { block } }` sets it for that route (`block: false` turns it off there).
// The session's lock is taken before the load and released once the save settled (or the
// connection closed first); a wait in vain is ERR_SESSION_LOCKED, which Fastify answers 423.
//
const { SessionManager } = require('./manager');
const { sessionError } = require('./errors');
const { rejectUnknown } = require('./options');
const httpSession = require('./http-session');
const expressSession = require('./express-session');
const blocking = require('./blocking');

// Per request: the Store and whether it existed (or the express-session mode's context), kept
// apart from `request.session` so that an app reassigning that property cannot make the plugin
// save something else.
const kState = Symbol('ostro.session.fastify');

// The express-session API's own options; `resave` and `saveUninitialized` are manager config keys
// (the defaults of that API), and may be given beside `{ manager }` to override them.
const API_KEYS = ['rolling', 'unset', 'migrateFrom'];
const API_OVERRIDES = ['resave', 'saveUninitialized'];

/**
 * An error of this package passes unchanged; anything else (a custom driver's own Error) is
 * wrapped as ERR_SESSION_HANDLER with the original as `cause`, so error handlers can branch on
 * `code` alone.
 */
function coded(err, doing) {
  if (err && typeof err.code === 'string' && err.code.startsWith('ERR_SESSION_')) return err;
  const e = sessionError('ERR_SESSION_HANDLER', `@ostro/session: ${doing} the session failed: ${err && err.message ? err.message : String(err)}`);
  e.cause = err;
  return e;
}

/**
 * The manager the options name, whether the plugin created (and so must close) it, and the
 * express-session API's options (null for the Store API).
 */
function optionsOf(options, log) {
  const o = options === undefined || options === null ? {} : options;
  if (typeof o !== 'object' || Array.isArray(o)) {
    throw sessionError('ERR_SESSION_INVALID_OPTION', '@ostro/session/fastify takes a SessionManager config object or { manager }');
  }
  const api = o.api === undefined ? 'laravel' : o.api;
  if (api !== 'laravel' && api !== 'express-session') {
    throw sessionError('ERR_SESSION_INVALID_OPTION', `@ostro/session/fastify option "api" must be 'laravel' (the default: request.session is the Store) or 'express-session', got ${JSON.stringify(api)}`);
  }
  const rest = {};
  const apiOptions = {};
  for (const k of Object.keys(o)) {
    if (k === 'api' || k === 'block') continue;
    if (API_KEYS.includes(k) || (o.manager !== undefined && API_OVERRIDES.includes(k))) apiOptions[k] = o[k];
    else rest[k] = o[k];
  }
  if (api !== 'express-session') {
    rejectUnknown(apiOptions, [], "@ostro/session/fastify options (rolling, unset and migrateFrom belong to api: 'express-session')");
  }
  let manager;
  let owned;
  if (o.manager === undefined) {
    manager = new SessionManager(rest, { logger: log });
    owned = true;
  } else {
    rejectUnknown(rest, ['manager'], '@ostro/session/fastify options with "manager" (put the config in the manager)');
    if (!(o.manager instanceof SessionManager)) {
      throw sessionError('ERR_SESSION_INVALID_OPTION', '@ostro/session/fastify: "manager" must be a SessionManager');
    }
    manager = o.manager;
    owned = false;
  }
  // Checked now: a typo fails at registration.
  const block = o.block === undefined ? false : o.block;
  if (blocking.blockOptions(block) !== null && api === 'express-session') {
    throw sessionError('ERR_SESSION_INVALID_OPTION', "@ostro/session/fastify option \"block\" works with the Store API only, not with api: 'express-session'");
  }
  return { manager, owned, block, api: api === 'express-session' ? expressSession.expressSessionOptions(manager, apiOptions) : null };
}

/** A route's `config.session.block`, else the plugin's `block`. */
function routeBlock(routeConfig, fallback) {
  const session = routeConfig && routeConfig.session;
  if (session === undefined || session === null) return fallback;
  if (typeof session !== 'object' || Array.isArray(session)) {
    throw sessionError('ERR_SESSION_INVALID_OPTION', '@ostro/session/fastify: a route\'s config.session must be an object such as { block: true }');
  }
  rejectUnknown(session, ['block'], "@ostro/session/fastify: a route's config.session");
  return session.block === undefined ? fallback : session.block;
}

/** Drops a stream payload the response will never send, so it releases its file or socket. */
function discard(payload) {
  if (payload && typeof payload.pipe === 'function' && typeof payload.destroy === 'function') payload.destroy();
}

/** What `onSend` does with the commit's outcome: the cookie line (or null) goes on the reply. */
function finish(reply, payload, line) {
  if (line !== null) {
    reply.header('set-cookie', line); // appended to the app's own cookies
    if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'private');
  }
  return payload;
}

/**
 * The plugin. Registered without encapsulation (as fastify-plugin does), so `request.session`
 * exists on every route of the instance it is registered on, including routes registered before
 * it in child contexts that come later.
 * @param {import('fastify').FastifyInstance} fastify
 * @param {object} options a SessionManager config, or `{ manager }`; either with
 *   `api: 'express-session'` and that API's options
 */
async function ostroSession(fastify, options) {
  const { manager, owned, block, api } = optionsOf(options, fastify.log);
  // Fail at registration, not on the first request, when the driver cannot be built (unknown
  // driver, bad connection option, cookie driver without a key, or the cookie driver with the
  // express-session API).
  manager.driver();
  if (api !== null) expressSession.checkExpressSessionDriver(manager);

  fastify.decorate('sessionManager', manager);
  fastify.decorateRequest('session', null);
  fastify.decorateRequest(kState, null);
  if (api === null) {
    // Blocking: each route's setting is checked as the route is added (a typo, or a driver that
    // cannot lock, fails at start-up) and read per request from the route's config: routes
    // declared before the plugin loaded (a `register()` not awaited) are never shown to onRoute.
    if (blocking.blockOptions(block) !== null) blocking.checkCanLock(manager.driver(), manager.getDefaultDriver());
    fastify.addHook('onRoute', (route) => {
      if (blocking.blockOptions(routeBlock(route.config, block)) === null) return;
      blocking.checkCanLock(manager.driver(), manager.getDefaultDriver());
    });
    fastify.addHook('onRequest', async (request, reply) => {
      const req = request.raw;
      let loaded;
      try {
        const b = routeBlock(request.routeOptions.config, block);
        loaded = b === false || b === null || b === undefined ? await manager.openSession(req) : await manager.openSession(req, { block: b });
      } catch (err) {
        throw coded(err, 'loading');
      }
      // The request-scoped HttpSession is the plugin's whole per-request state.
      const hs = new httpSession.HttpSession(manager, req, loaded.store, loaded.existed);
      if (loaded.lock !== undefined) {
        hs.lock = loaded.lock;
        // A connection that closes before the reply is sent frees the lock at once (also one
        // that closed during the lock and the load).
        blocking.releaseOnClose(reply.raw, hs.lock, () => request[kState] !== hs);
      }
      request[kState] = hs;
      request.session = loaded.store;
    });
    fastify.addHook('onSend', async (request, reply, payload) => {
      const hs = request[kState];
      // No session (the load failed, or an earlier onRequest hook answered first), or already
      // committed: this is then the error reply of a failed save, sent without a cookie.
      if (hs === null) return payload;
      request[kState] = null;
      let line;
      try {
        line = await hs.commit(reply.statusCode);
      } catch (err) {
        discard(payload);
        throw coded(err, 'saving');
      } finally {
        if (hs.lock !== undefined) await hs.lock.release();
      }
      return finish(reply, payload, line);
    });
  } else {
    fastify.addHook('onRoute', (route) => {
      if (blocking.blockOptions(routeBlock(route.config, false)) !== null) {
        throw sessionError('ERR_SESSION_INVALID_OPTION', "@ostro/session/fastify: a route's config.session.block works with the Store API only, not with api: 'express-session'");
      }
    });
    fastify.addHook('onRequest', async (request) => {
      try {
        // A route onRoute did not see (declared before the plugin loaded) is checked here.
        if (blocking.blockOptions(routeBlock(request.routeOptions.config, false)) !== null) {
          throw sessionError('ERR_SESSION_INVALID_OPTION', "@ostro/session/fastify: a route's config.session.block works with the Store API only, not with api: 'express-session'");
        }
        // Sets `request.session` (which regenerate() and reload() replace).
        request[kState] = await expressSession.openExpressSession(manager, api, request.raw, request);
      } catch (err) {
        throw coded(err, 'loading');
      }
    });
    fastify.addHook('onSend', async (request, reply, payload) => {
      const ctx = request[kState];
      if (ctx === null) return payload;
      request[kState] = null;
      let line;
      try {
        line = await expressSession.commitExpressSession(ctx);
      } catch (err) {
        discard(payload);
        throw coded(err, 'saving');
      }
      return finish(reply, payload, line);
    });
  }

  if (owned) fastify.addHook('onClose', () => manager.close());
}

// What fastify-plugin sets, without depending on it: no encapsulation, and a name in errors and
// `fastify.printPlugins()`.
ostroSession[Symbol.for('skip-override')] = true;
ostroSession[Symbol.for('fastify.display-name')] = '@ostro/session';
ostroSession[Symbol.for('plugin-meta')] = { name: '@ostro/session', fastify: '5.x' };

module.exports = ostroSession;
module.exports.default = ostroSession;
module.exports.ostroSession = ostroSession;
