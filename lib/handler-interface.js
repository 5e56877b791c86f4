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
  /** Removes sessions idle for more than `lifetimeSeconds`; returns how many. */
  gc(lifetimeSeconds) { // eslint-disable-line no-unused-vars
    return 0;
  }
}

module.exports = { SessionHandlerInterface };
