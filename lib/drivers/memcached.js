'use strict';
// The memcached driver: sessions as memcached items that the server expires itself, spread
// over several servers by consistent hashing. The Rust driver is the client (memcached's meta
// protocol over TCP): no npm memcached package is needed.
const native = require('../native');
const { NativeSessionHandler, tombstoneSecondsOf, minutesOf } = require('../handlers');
const { sessionError } = require('../errors');
const { rejectUnknown } = require('../options');

const OPTION_KEYS = ['prefix', 'minutes', 'timeoutMs', 'tombstoneSeconds'];

const invalid = (message) => sessionError('ERR_SESSION_INVALID_OPTION', message);

function serversOf(servers) {
  const list = Array.isArray(servers) ? servers : [servers];
  if (list.length === 0 || !list.every((s) => typeof s === 'string' && s !== '')) {
    throw invalid("MemcachedSessionHandler needs 'host:port' or an array of them");
  }
  return list;
}

/** Sessions in memcached. */
class MemcachedSessionHandler extends NativeSessionHandler {
  /**
   * Nothing is connected here: the first operation connects. While a server is down, the
   * operations on its keys reject within `timeoutMs` (+0.5 s) with `ERR_SESSION_UNAVAILABLE`.
   * A payload over the server's item size limit rejects with `ERR_SESSION_TOO_LARGE`.
   * @param {string | string[]} servers `'host:port'`, or several (keys spread by consistent hashing)
   * @param {{ prefix?: string, minutes?: number, timeoutMs?: number, tombstoneSeconds?: number }} [options]
   *   `prefix` of every key: printable ASCII without spaces, at most 210 bytes (default
   *   `'ostro_session:'`); `minutes` lifetime (default 120); `timeoutMs` per operation
   *   (default 2000); `tombstoneSeconds` the expiry of a destroyed session's tombstone (1 to the
   *   lifetime; default the lifetime). SASL credentials are not supported and are refused.
   */
  constructor(servers, options) {
    if (options !== undefined && options !== null && (typeof options !== 'object' || Array.isArray(options))) {
      throw invalid('MemcachedSessionHandler options must be an object');
    }
    const o = options || {};
    for (const key of ['username', 'password', 'sasl', 'credentials']) {
      if (o[key] !== undefined && o[key] !== null) {
        throw invalid(`memcached credentials (SASL) are not supported over the text protocol; remove the ${key} option, or secure the server by network instead`);
      }
    }
    rejectUnknown(o, OPTION_KEYS, 'MemcachedSessionHandler options');
    if (o.prefix !== undefined && typeof o.prefix !== 'string') throw invalid('prefix must be a string');
    const t = o.timeoutMs;
    if (t !== undefined && t !== null && (typeof t !== 'number' || !Number.isFinite(t) || t < 1 || t > 600000)) {
      throw invalid(`timeoutMs must be a number of milliseconds from 1 to 600000, got ${String(t)}`);
    }
    const handle = native.createMemcachedHandler(serversOf(servers), {
      prefix: o.prefix,
      minutes: minutesOf(o.minutes),
      timeoutMs: t === null ? undefined : t,
      tombstoneSeconds: tombstoneSecondsOf(o.tombstoneSeconds, minutesOf(o.minutes)),
    });
    super(handle, null);
  }
}

module.exports = { MemcachedSessionHandler };
