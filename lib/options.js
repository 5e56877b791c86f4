'use strict';
// The one owner of "an options object names only keys we know": a mistyped key (say `cluster`
// or `sentinel` on a redis connection before they existed) must never be ignored silently,
// because the defaults it falls back to may point somewhere nobody configured.
const { sessionError } = require('./errors');

/**
 * Throws `ERR_SESSION_INVALID_OPTION` naming the first own key of `obj` that `allowed` lacks.
 * @param {object|null|undefined} obj the options object (nullish passes)
 * @param {Iterable<string>|Set<string>} allowed the known keys
 * @param {string} what what the object is, for the message (e.g. 'RedisSessionHandler options')
 */
function rejectUnknown(obj, allowed, what) {
  if (obj === undefined || obj === null || typeof obj !== 'object') return;
  const set = allowed instanceof Set ? allowed : new Set(allowed);
  for (const k of Object.keys(obj)) {
    if (!set.has(k)) {
      const known = [...set].sort().join(', ');
      throw sessionError('ERR_SESSION_INVALID_OPTION', `${what}: unknown option "${k}" (known: ${known})`);
    }
  }
}

module.exports = { rejectUnknown };
