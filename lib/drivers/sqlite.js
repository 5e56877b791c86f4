'use strict';
// The sqlite driver: sessions as rows of a SQLite table (the one OstroJS's `session:table`
// migration creates), shareable by several processes. All SQLite work runs on one Rust thread
// per handler; no JS SQLite package is involved.
const native = require('../native');
const { NativeSessionHandler, tombstoneSecondsOf, minutesOf, clockOf } = require('../handlers');
const { sessionError } = require('../errors');
const { rejectUnknown } = require('../options');

const OPTION_KEYS = ['table', 'minutes', 'busyTimeoutMs', 'timeoutMs', 'tombstoneSeconds', 'now', 'clock'];

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

function tableOf(table) {
  if (table === undefined || table === null) return 'sessions';
  // Rust checks again; this names the option in the message before any native call.
  if (typeof table !== 'string' || !IDENTIFIER.test(table) || table.length > 64) {
    throw sessionError('ERR_SESSION_INVALID_OPTION', 'the sqlite table option must be a plain SQL identifier ([A-Za-z_][A-Za-z0-9_]*, at most 64 characters)');
  }
  return table;
}

function busyTimeoutOf(ms) {
  if (ms === undefined || ms === null) return 5000;
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0 || ms > 2147483647) {
    throw sessionError('ERR_SESSION_INVALID_OPTION', `busyTimeoutMs must be a number of milliseconds from 0 to 2147483647, got ${String(ms)}`);
  }
  return ms;
}

function timeoutOf(ms) {
  if (ms === undefined || ms === null) return undefined;
  if (typeof ms !== 'number' || !Number.isInteger(ms) || ms < 1 || ms > 600000) {
    throw sessionError('ERR_SESSION_INVALID_OPTION', `timeoutMs must be a whole number of milliseconds from 1 to 600000, got ${String(ms)}`);
  }
  return ms;
}

/** Sessions in a SQLite table; several processes may share one database file. */
class SqliteSessionHandler extends NativeSessionHandler {
  /**
   * Nothing is opened here: the first operation opens the database and creates (or adopts) the
   * table, and reports a bad file.
   * @param {string} path database file, or `':memory:'` for a private in-memory database
   * @param {{ table?: string, minutes?: number, busyTimeoutMs?: number, timeoutMs?: number, tombstoneSeconds?: number, now?: () => number }} [options]
   *   `table` (default `'sessions'`), `minutes` lifetime after the last write or touch (default
   *   120), `busyTimeoutMs` how long to wait for another connection's lock before
   *   `ERR_SESSION_BUSY` (default 5000), `timeoutMs` deadline of one operation before
   *   `ERR_SESSION_TIMEOUT` (default 30000), `tombstoneSeconds` how long a destroyed session's
   *   tombstone row refuses late saves (1 to the lifetime; default the lifetime), `now`/`clock`
   *   replaces the clock (tests)
   */
  constructor(path, options) {
    if (typeof path !== 'string' || path === '') throw sessionError('ERR_SESSION_INVALID_OPTION', "SqliteSessionHandler needs a database path string (or ':memory:')");
    if (options !== undefined && options !== null && typeof options !== 'object') {
      throw sessionError('ERR_SESSION_INVALID_OPTION', 'SqliteSessionHandler options must be an object');
    }
    rejectUnknown(options, OPTION_KEYS, 'SqliteSessionHandler options');
    const o = options || {};
    const now = clockOf(o);
    const handle = native.createSqliteHandler(
      path,
      { table: tableOf(o.table), minutes: minutesOf(o.minutes), busyTimeoutMs: busyTimeoutOf(o.busyTimeoutMs), timeoutMs: timeoutOf(o.timeoutMs), tombstoneSeconds: tombstoneSecondsOf(o.tombstoneSeconds, minutesOf(o.minutes)) },
      now !== null,
    );
    super(handle, now);
  }
}

module.exports = { SqliteSessionHandler };
