'use strict';
// The `database` driver for OstroJS apps whose database is not SQLite (MySQL, Postgres, SQL
// Server, …): a JS handler over the app's `db` query builder, run by the engine through the
// custom-driver bridge. It uses the table of `node assistant session:table` (sid, ip_address,
// user_agent, payload, last_activity, user_id) with the sqlite driver's rules:
// `last_activity` is unix seconds; a row is alive while now - last_activity <= lifetime; a row
// with a NULL last_activity (written by 1.x, which never set it) counts as alive.
// Only portable query-builder calls are used (no dialect-specific upsert).
//
// Compare-and-set (issue 12): writeIfUnchanged() is one conditional UPDATE whose WHERE holds the
// payload the request loaded (the payload is its own version, so rows written by the native
// driver or 1.x compare the same way and the table needs no extra column); a request that loaded
// nothing inserts, or replaces only an expired row. On MySQL/MariaDB the payloads are compared as
// utf8mb4 bytes: the migration's table has a case-insensitive, PAD SPACE collation there. (The
// MySQL clients report matched rows, FOUND_ROWS, so an update that changes no byte still counts.)
// destroy() leaves a tombstone, as the native drivers do: the row with an empty payload and a
// fresh last_activity, which reads as no session, is never touched, never matches, and is
// deleted by gc after the lifetime. With `tombstoneSeconds` its last_activity is set that much
// less than a lifetime before now, as the native drivers do, so the same lifetime rule (of every
// reader of the table) ends it that long after the destroy.
const { SessionHandlerInterface } = require('../handler-interface');
const { sessionError } = require('../errors');
const { tombstoneRange } = require('../config');

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Sessions as rows of a table reached through OstroJS's query builder. */
class DatabaseSessionHandler extends SessionHandlerInterface {
  /**
   * @param {object|(() => object)} connection an OstroJS database connection (anything with
   *   `table(name)` returning a query builder), or a function returning one; a function is
   *   called on every operation, so the app's connection manager may reconnect in between
   * @param {{ table?: string, minutes?: number, tombstoneSeconds?: number, now?: () => number }} [options]
   *   `table` (default `'sessions'`), `minutes` lifetime (default 120), `tombstoneSeconds` how
   *   long a destroyed session's tombstone row refuses late saves (1 to the lifetime; default the
   *   lifetime), `now` ms clock (tests)
   */
  constructor(connection, options) {
    super();
    const o = options || {};
    if (connection === null || (typeof connection !== 'object' && typeof connection !== 'function')) {
      throw sessionError('ERR_SESSION_INVALID_OPTION', 'DatabaseSessionHandler needs a database connection (or a function returning one)');
    }
    const table = o.table === undefined || o.table === null ? 'sessions' : o.table;
    if (typeof table !== 'string' || !IDENTIFIER.test(table) || table.length > 64) {
      throw sessionError('ERR_SESSION_INVALID_OPTION', 'the database driver table must be a plain SQL identifier ([A-Za-z_][A-Za-z0-9_]*)');
    }
    const minutes = o.minutes === undefined || o.minutes === null ? 120 : Number(o.minutes);
    if (!Number.isFinite(minutes) || minutes <= 0) {
      throw sessionError('ERR_SESSION_INVALID_OPTION', `the database driver lifetime must be a positive number of minutes, got ${String(o.minutes)}`);
    }
    const tomb = o.tombstoneSeconds === undefined || o.tombstoneSeconds === null ? null : o.tombstoneSeconds;
    const why = tomb === null ? null : tombstoneRange(tomb, minutes);
    if (why !== null) {
      throw sessionError('ERR_SESSION_INVALID_OPTION', `the database driver tombstoneSeconds ${why}, got ${JSON.stringify(tomb) ?? typeof tomb}`);
    }
    if (o.now !== undefined && typeof o.now !== 'function') {
      throw sessionError('ERR_SESSION_INVALID_OPTION', 'the now option must be a function returning milliseconds');
    }
    Object.defineProperties(this, {
      _connection: { value: connection },
      _table: { value: table },
      _lifetimeSecs: { value: Math.max(1, Math.ceil(minutes * 60)) },
      // How much earlier than the destroy a tombstone is stamped (0: kept for the lifetime).
      _tombstoneBackdate: { value: tomb === null ? 0 : Math.max(0, Math.ceil(minutes * 60) - tomb) },
      _now: { value: o.now || Date.now },
      _userIdColumn: { value: true, writable: true },
    });
  }

  /** The table name. */
  get table() { return this._table; }

  _query() {
    const c = typeof this._connection === 'function' ? this._connection() : this._connection;
    if (!c || typeof c.table !== 'function') {
      throw sessionError('ERR_SESSION_UNAVAILABLE', 'the database driver has no usable database connection (is DatabaseServiceProvider registered?)');
    }
    return c.table(this._table);
  }

  _seconds() {
    return Math.floor(this._now() / 1000);
  }

  /** Rows that have not expired: last_activity within the lifetime, or NULL (1.x rows). */
  _alive(q, now) {
    const cutoff = now - this._lifetimeSecs;
    return q.where(function alive() {
      this.where('last_activity', '>=', cutoff).orWhereNull('last_activity');
    });
  }

  /** @returns {Promise<string>} the payload, or `''` when there is none or it expired. */
  async read(sessionId) {
    const row = await this._alive(this._query().where('sid', sessionId), this._seconds()).first('payload');
    if (!row || row.payload === null || row.payload === undefined) return '';
    // Drivers that hand back TEXT as a Buffer (some MySQL column types) are decoded here.
    return Buffer.isBuffer(row.payload) ? row.payload.toString('utf8') : String(row.payload);
  }

  /** Writes the payload and metadata; an insert racing another request's insert becomes an update. */
  async write(sessionId, data, meta) {
    const row = this._row(data, meta, this._seconds());
    if (await this._update(sessionId, row)) return;
    try {
      await this._query().insert({ sid: sessionId, ...row });
    } catch (err) {
      // Another request inserted the same id first, or MySQL reported 0 changed rows for an
      // identical update: the row exists, so update it (again) and succeed.
      const exists = await this._query().where('sid', sessionId).first('sid');
      if (!exists) throw err;
      await this._update(sessionId, row);
    }
  }

  async _update(sessionId, row) {
    const n = await this._query().where('sid', sessionId).update(row);
    return Number(n) > 0;
  }

  /** The columns of a write: the payload, the time and the request's metadata. */
  _row(data, meta, now) {
    const row = { payload: data, last_activity: now };
    if (meta) {
      if (typeof meta.ip === 'string') row.ip_address = meta.ip.slice(0, 45);
      if (typeof meta.userAgent === 'string') row.user_agent = meta.userAgent;
      if (meta.userId !== undefined && meta.userId !== null) row.user_id = String(meta.userId);
    }
    return row;
  }

  /**
   * Writes `data` only if the stored payload is still `previousData` (`''`: no live record), in
   * one statement; `false`, writing nothing, when it is not (a tombstone never matches).
   * @returns {Promise<boolean>}
   */
  async writeIfUnchanged(sessionId, data, previousData, meta) {
    const now = this._seconds();
    const row = this._row(data, meta, now);
    if (previousData === '') {
      try {
        await this._query().insert({ sid: sessionId, ...row });
        return true;
      } catch (err) {
        // The id exists: it is "no record" only when it expired (a NULL last_activity is alive).
        const revived = await this._query().where('sid', sessionId).where('last_activity', '<', now - this._lifetimeSecs)
          .update({ ip_address: null, user_agent: null, ...row });
        if (Number(revived) > 0) return true;
        if (!(await this._query().where('sid', sessionId).first('sid'))) throw err;
        return false;
      }
    }
    const q = this._alive(this._query().where('sid', sessionId), now);
    const n = await payloadIs(q, previousData).update(row);
    return Number(n) > 0;
  }

  /** Leaves a tombstone (see the top of this file) where the session's row was. */
  async destroy(sessionId) {
    const tomb = { payload: '', last_activity: this._seconds() - this._tombstoneBackdate };
    if (this._userIdColumn) {
      try {
        await this._query().where('sid', sessionId).update({ ...tomb, user_id: null });
        return;
      } catch (err) {
        // A 1.x table has no user_id (writes only set it when the app passes a user).
        if (await this._query().where('sid', sessionId).update(tomb).then(() => true, () => false)) {
          this._userIdColumn = false;
          return;
        }
        throw err;
      }
    }
    await this._query().where('sid', sessionId).update(tomb);
  }

  /** Deletes rows idle for longer than `lifetimeSeconds`; returns how many. */
  async gc(lifetimeSeconds) {
    const n = await this._query().where('last_activity', '<', this._seconds() - Number(lifetimeSeconds)).delete();
    return Number(n) || 0;
  }

  /**
   * The live rows linked to `userId` (by the indexed user_id column), for `manager.sessionsOf()`:
   * the engine checks each payload's link and reads the creation time from it.
   */
  async sessionsOf(userId) {
    const now = this._seconds();
    const q = this._alive(this._query().where('user_id', String(userId)), now);
    const rows = await q.select('sid', 'payload', 'last_activity', 'ip_address', 'user_agent').get();
    const text = (v) => (v === null || v === undefined ? undefined : Buffer.isBuffer(v) ? v.toString('utf8') : String(v));
    return Array.from(rows || [], (r) => ({
      id: String(r.sid),
      payload: text(r.payload) || '',
      lastActivity: (r.last_activity === null || r.last_activity === undefined ? now : Number(r.last_activity)) * 1000,
      ipAddress: text(r.ip_address),
      userAgent: text(r.user_agent),
    }));
  }

  /** Refreshes `last_activity` of a live row; `false` when there is none (or a tombstone). */
  async touch(sessionId) {
    const now = this._seconds();
    const n = await this._alive(this._query().where('sid', sessionId), now).where('payload', '<>', '').update({ last_activity: now });
    return Number(n) > 0;
  }

  /** The app owns the connection: nothing to close here. */
  close() {}
}

/**
 * Whether a query builder talks to MySQL or MariaDB: knex's (its `client`), or OstroJS's, which
 * wraps knex's (`getQueryBuilder()`) and has no `client` of its own (its connection knows its
 * driver too). Missing it would compare payloads in the table's collation.
 */
function isMysql(q) {
  const k = q && typeof q.getQueryBuilder === 'function' ? q.getQueryBuilder() : q;
  const c = k && k.client;
  const dialect = c && (c.dialect || (c.config && c.config.client));
  if (typeof dialect === 'string') return /mysql|maria/i.test(dialect);
  const conn = q && q.$connection;
  const driver = conn && typeof conn.getDriverName === 'function' ? conn.getDriverName() : undefined;
  return typeof driver === 'string' && /mysql|maria/i.test(driver);
}

/** `q` narrowed to rows whose payload is exactly `payload`, byte for byte. */
function payloadIs(q, payload) {
  if (isMysql(q)) return q.whereRaw('CAST(CONVERT(?? USING utf8mb4) AS BINARY) = CAST(? AS BINARY)', ['payload', payload]);
  // PostgreSQL and SQLite compare text byte for byte.
  return q.where('payload', payload);
}

module.exports = { DatabaseSessionHandler };
