'use strict';
// `@ostro/session/fastify`: sessions for Fastify, in the shape of `@fastify/session`.
//
//   fastify.register(require('@ostro/session/fastify'), { driver: 'redis', connection, key })
//   fastify.register(require('@ostro/session/fastify'), { manager })
//
// Built on Fastify's own hooks rather than on the Connect middleware: the middleware defers
// Node's writeHead/write/end, which Fastify drives itself, and an `onRequest` hook around it
// either runs routes twice or truncates bodies unless the reply is hijacked. Here:
// - `onRequest` loads the session into `request.session` (the manager's Store);
// - `onSend` (after the route and serialization, before a byte is written) saves it and adds the
//   `Set-Cookie` line with `reply.header`, so a redirect target always sees what the
//   redirecting request wrote;
// - a load or save error goes to Fastify's error handling (`setErrorHandler`, else Fastify's
//   500), as a coded `ERR_SESSION_*` error.
// Replies that bypass `onSend` (`reply.hijack()`, writing to `reply.raw`) are not committed.
const { SessionManager } = require('./manager');
const { sessionError } = require('./errors');
const { rejectUnknown } = require('./options');
const httpSession = require('./http-session');

// Per request: the Store and whether it existed, kept apart from `request.session` so that an
// app reassigning that property cannot make the plugin save something else.
const kState = Symbol('ostro.session.fastify');

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

/** The manager the options name, and whether the plugin created (and so must close) it. */
function managerOf(options, log) {
  const o = options === undefined || options === null ? {} : options;
  if (typeof o !== 'object' || Array.isArray(o)) {
    throw sessionError('ERR_SESSION_INVALID_OPTION', '@ostro/session/fastify takes a SessionManager config object or { manager }');
  }
  if (o.manager === undefined) return { manager: new SessionManager(o, { logger: log }), owned: true };
  rejectUnknown(o, ['manager'], '@ostro/session/fastify options with "manager" (put the config in the manager)');
  if (!(o.manager instanceof SessionManager)) {
    throw sessionError('ERR_SESSION_INVALID_OPTION', '@ostro/session/fastify: "manager" must be a SessionManager');
  }
  return { manager: o.manager, owned: false };
}

/** Drops a stream payload the response will never send, so it releases its file or socket. */
function discard(payload) {
  if (payload && typeof payload.pipe === 'function' && typeof payload.destroy === 'function') payload.destroy();
}

/**
 * The plugin. Registered without encapsulation (as fastify-plugin does), so `request.session`
 * exists on every route of the instance it is registered on, including routes registered before
 * it in child contexts that come later.
 * @param {import('fastify').FastifyInstance} fastify
 * @param {object} options a SessionManager config, or `{ manager }`
 */
async function ostroSession(fastify, options) {
  const { manager, owned } = managerOf(options, fastify.log);
  // Fail at registration, not on the first request, when the driver cannot be built (unknown
  // driver, bad connection option, cookie driver without a key).
  manager.driver();

  fastify.decorate('sessionManager', manager);
  fastify.decorateRequest('session', null);
  fastify.decorateRequest(kState, null);

  fastify.addHook('onRequest', async (request) => {
    let loaded;
    try {
      loaded = await httpSession.open(manager, request.raw);
    } catch (err) {
      throw coded(err, 'loading');
    }
    request[kState] = { store: loaded.store, existed: loaded.existed, committed: false };
    request.session = loaded.store;
  });

  fastify.addHook('onSend', async (request, reply, payload) => {
    const st = request[kState];
    // No session (the load failed, or an earlier onRequest hook answered first), or already
    // committed: this is then the error reply of a failed save, sent without a cookie.
    if (st === null || st.committed) return payload;
    st.committed = true;
    let line;
    try {
      line = await httpSession.commit(manager, request.raw, reply.statusCode, st.store, st.existed);
    } catch (err) {
      discard(payload);
      throw coded(err, 'saving');
    }
    if (line !== null) {
      reply.header('set-cookie', line); // appended to the app's own cookies
      if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'private');
    }
    return payload;
  });

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
