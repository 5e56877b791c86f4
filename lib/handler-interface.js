'use strict';

/**
 * The base class of session drivers, built-in and custom. A custom driver implements `read`,
 * `write` and `destroy` (and optionally `gc`, `touch`, `open`, `close`); each may return a value
 * or a Promise. The engine does all (de)serialisation: a driver only stores strings.
 */
class SessionHandlerInterface {
  /** Called once before the first read. */
  open(savePath, sessionName) {} // eslint-disable-line no-unused-vars
  /** Called by the owner of the handler when it is no longer needed. */
  close() {}
  // read(sessionId), write(sessionId, data, meta) and destroy(sessionId) are left to the
  // subclass on purpose: the Store refuses a handler that lacks one of them, naming it.
  //
  // Optional, and also left out on purpose (its presence is what the bridge checks):
  //
  //   writeIfUnchanged(sessionId, data, previousData, meta) -> boolean | Promise<boolean>
  //
  // (`meta` is what write() gets as its third argument: the request's ip, userAgent and userId.)
  // Compare-and-set, so that concurrent requests on one session lose nothing (issue 12): store
  // `data` only if the stored data is still exactly `previousData` (`''` meaning "no record"),
  // as one atomic step in the backend (a transaction, a conditional UPDATE, a script), and
  // resolve `true`; resolve `false`, writing nothing, when it is not. On `false` the engine
  // re-reads with read(), replays the request's changes onto what it finds and tries again; a
  // record that read() reports gone drops the save. To make a logout stick, destroy() may keep a
  // tombstone that read() reports as `''` but that never matches any `previousData`, `''`
  // included. Without this method the driver keeps last-writer-wins (the conformance kit says so).
  //
  //   sessionsOf(userId) -> Array<{ id, payload, lastActivity, ipAddress?, userAgent? }> | Promise
  //   unlinkSessions(userId, ids) -> void | Promise<void>
  //
  // A user's sessions (issue 13): `write(sessionId, data, meta)` gets the session's linked user
  // as `meta.userId`; a driver that indexes sessions by it may implement sessionsOf, returning
  // its index entries for that user with each session's stored payload (`''` when gone) and last
  // activity (ms). The engine keeps only entries whose payload is live and still linked to that
  // user, shows them by handle, and hands the rest to unlinkSessions (optional) to prune. Without
  // sessionsOf, manager.sessionsOf/destroySession/destroyUserSessions reject with
  // ERR_SESSION_UNSUPPORTED naming the driver. Ending a session uses destroy().
  //
  // Optional too, for opt-in blocking (`manager.middleware({ block })`, Laravel's `block()`):
  //
  //   lock(sessionId, ttlMs) -> string | null | Promise<string | null>
  //   unlock(sessionId, token) -> void | Promise<void>
  //
  // lock() takes the session's lock in one atomic step of the backend (SET NX, INSERT of a
  // unique key, ...) that also holds across processes, with an expiry of `ttlMs`, and resolves
  // a token unique to this holder; it resolves null, without waiting, when an unexpired lock is
  // held elsewhere (the middleware waits and tries again). unlock() removes the lock only while
  // it still holds `token`: a lock that expired and was taken by another request stays.
  /** Removes sessions idle for more than `lifetimeSeconds`; returns how many. */
  gc(lifetimeSeconds) { // eslint-disable-line no-unused-vars
    return 0;
  }
}

module.exports = { SessionHandlerInterface };
