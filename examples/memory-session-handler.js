'use strict';
// A custom session driver kept in a Map: the smallest complete SessionHandlerInterface.
// Every method returns a plain value; the Store accepts plain values and Promises alike.
const { SessionHandlerInterface } = require('@ostro/session');

class MemorySessionHandler extends SessionHandlerInterface {
  /**
   * @param {{ minutes?: number, now?: () => number }} [options] lifetime after the last write or
   *   touch (default 120 minutes); `now` replaces `Date.now` (tests)
   */
  constructor(options = {}) {
    super();
    this.lifetimeMs = (options.minutes ?? 120) * 60 * 1000;
    this.now = options.now || Date.now;
    this.sessions = new Map(); // id -> { data, at }
  }

  read(sessionId) {
    const rec = this.sessions.get(sessionId);
    if (rec === undefined || this.now() - rec.at > this.lifetimeMs) return '';
    return rec.data;
  }

  write(sessionId, data) {
    this.sessions.set(sessionId, { data, at: this.now() });
  }

  destroy(sessionId) {
    this.sessions.delete(sessionId);
  }

  /** Refreshes the expiry of an unchanged session; `false` tells the Store to write instead. */
  touch(sessionId) {
    const rec = this.sessions.get(sessionId);
    if (rec === undefined || this.now() - rec.at > this.lifetimeMs) return false;
    rec.at = this.now();
    return true;
  }

  gc(lifetimeSeconds) {
    const oldest = this.now() - lifetimeSeconds * 1000;
    let removed = 0;
    for (const [id, rec] of this.sessions) {
      if (rec.at < oldest) {
        this.sessions.delete(id);
        removed++;
      }
    }
    return removed;
  }

  close() {
    this.sessions.clear();
  }
}

module.exports = { MemorySessionHandler };
