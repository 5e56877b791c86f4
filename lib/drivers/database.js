'use strict';
// The native database driver: sessions as rows of a PostgreSQL or MySQL/MariaDB table (the one
// OstroJS's `session:table` migration creates), for apps served by several processes or
// machines. The Rust driver is the client: no npm pg or mysql package is needed. For OstroJS
// apps that keep sessions through their query builder, see lib/ostro/databaseHandler.js; both
// use the same table, so an app may switch between them.
const native = require('../native');
const { NativeSessionHandler, tombstoneSecondsOf, minutesOf, clockOf } = require('../handlers');
const { sessionError } = require('../errors');
const { rejectUnknown } = require('../options');

const OPTION_KEYS = ['table', 'minutes', 'pool', 'connectTimeoutMs', 'commandTimeoutMs', 'tombstoneSeconds', 'now', 'clock'];
const SCHEMES = /^(postgres|postgresql|mysql|mariadb):\/\//i;
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

const invalid = (message) => sessionError('ERR_SESSION_INVALID_OPTION', message);

function tableOf(table) {
  if (table === undefined || table === null) return 'sessions';
  // Rust checks again; this names the option before any native call.
  if (typeof table !== 'string' || !IDENTIFIER.test(table) || table.length > 64) {
    throw invalid('the database table option must be a plain SQL identifier ([A-Za-z_][A-Za-z0-9_]*, at most 64 characters)');
  }
  return table;
}

function wholeOf(name, v, min, max) {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw invalid(`${name} must be a whole number from ${min} to ${max}, got ${String(v)}`);
  }
  return v;
}

/** Sessions in a PostgreSQL or MySQL/MariaDB table, shared by every process that reaches it. */
class DatabaseSessionHandler extends NativeSessionHandler {
  /**
   * Nothing is connected here: the first operation connects and creates (or adopts) the table.
   * While the server is down, unreachable or frozen every operation rejects within
   * `commandTimeoutMs` (+0.5 s) with `ERR_SESSION_UNAVAILABLE` naming host:port, and the handler
   * recovers by itself once the server is back. No TLS.
   * @param {string} url `postgres://user[:password]@host[:port]/db` (or `postgresql://`), or
   *   `mysql://…` / `mariadb://…`
   * @param {{ table?: string, minutes?: number, pool?: number, connectTimeoutMs?: number, commandTimeoutMs?: number, tombstoneSeconds?: number, now?: () => number }} [options]
   *   `table` (default `'sessions'`), `minutes` lifetime after the last write or touch (default
   *   120), `pool` connections at most (default 4 for Postgres, 8 for MySQL/MariaDB), timeouts in ms (default 2000 each),
   *   `tombstoneSeconds` how long a destroyed session's tombstone row refuses late saves (1 to
   *   the lifetime; default the lifetime), `now` replaces the clock (tests)
   */
  constructor(url, options) {
    if (typeof url !== 'string' || !SCHEMES.test(url)) {
      throw invalid('DatabaseSessionHandler needs a postgres://, postgresql://, mysql:// or mariadb:// URL');
    }
    if (options !== undefined && options !== null && (typeof options !== 'object' || Array.isArray(options))) {
      throw invalid('DatabaseSessionHandler options must be an object');
    }
    rejectUnknown(options, OPTION_KEYS, 'DatabaseSessionHandler options');
    const o = options || {};
    const now = clockOf(o);
    const handle = native.createDatabaseHandler(
      url,
      {
        table: tableOf(o.table),
        minutes: minutesOf(o.minutes),
        pool: wholeOf('pool', o.pool, 1, 64),
        connectTimeoutMs: wholeOf('connectTimeoutMs', o.connectTimeoutMs, 1, 600000),
        commandTimeoutMs: wholeOf('commandTimeoutMs', o.commandTimeoutMs, 1, 600000),
        tombstoneSeconds: tombstoneSecondsOf(o.tombstoneSeconds, minutesOf(o.minutes)),
      },
      now !== null,
    );
    super(handle, now);
  }
}

module.exports = { DatabaseSessionHandler };
