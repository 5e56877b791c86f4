'use strict';
// Reading the session cookie from a `Cookie` header and writing its `Set-Cookie` line.

// Printable ASCII without `;`, `=` or `,`, and no space at either end. RFC 6265 asks for a token
// (no spaces at all), but OstroJS's skeleton names the cookie after APP_NAME, so 'my shop_session'
// exists in the wild, and 1.x (the `cookie` package) sent it; browsers keep such names.
const NAME = /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/;

/** Whether `name` can be a cookie name. */
function isToken(name) {
  return typeof name === 'string' && NAME.test(name) && !/[;=,]/.test(name);
}

/**
 * The value of cookie `name` in a `Cookie` header, URL-decoded; `null` when it is absent, when
 * it appears more than once (which one the browser meant is unknowable), or when its
 * percent-encoding is malformed.
 * @param {string|string[]|undefined} header
 * @param {string} name
 * @returns {string|null}
 */
function readCookie(header, name) {
  if (Array.isArray(header)) header = header.join('; ');
  if (typeof header !== 'string' || header === '') return null;
  let found = null;
  let start = 0;
  const len = header.length;
  // The next '=' at or after `start`, found once and reused while the pairs before it have none:
  // searching from each pair anew made a header of many '='-less pairs quadratic.
  let eq = header.indexOf('=');
  while (start < len) {
    let end = header.indexOf(';', start);
    if (end === -1) end = len;
    if (eq !== -1 && eq < start) eq = header.indexOf('=', start);
    if (eq === -1) break; // no pair after this point has a value
    if (eq < end && header.slice(start, eq).trim() === name) {
      if (found !== null) return null;
      found = header.slice(eq + 1, end).trim();
    }
    start = end + 1;
  }
  if (found === null) return null;
  if (found.length >= 2 && found.charCodeAt(0) === 34 && found.charCodeAt(found.length - 1) === 34) found = found.slice(1, -1);
  if (found.indexOf('%') === -1) return found;
  try {
    return decodeURIComponent(found);
  } catch {
    return null;
  }
}

/** The attributes that do not change per response, computed once per manager. */
function attributes(config) {
  const maxAge = Math.max(1, Math.ceil(config.lifetime * 60));
  let tail = `; Path=${config.path}`;
  if (config.domain) tail += `; Domain=${config.domain}`;
  let flags = '';
  if (config.http_only) flags += '; HttpOnly';
  let sameSite = '';
  if (config.same_site) sameSite = `; SameSite=${config.same_site[0].toUpperCase()}${config.same_site.slice(1)}`;
  return { maxAge, expireOnClose: config.expire_on_close, tail, flags, sameSite };
}

// Formatting a date costs more than the rest of the line; it changes once a second.
let lastSecond = -1;
let lastExpires = '';
function expires(ms) {
  const sec = Math.floor(ms / 1000);
  if (sec !== lastSecond) {
    lastSecond = sec;
    lastExpires = new Date(sec * 1000).toUTCString();
  }
  return lastExpires;
}

/**
 * A `Set-Cookie` line. `value` is URL-encoded as the `cookie` package (and so 1.x) encodes it;
 * `null` writes an expired cookie that makes the browser drop it.
 */
function serialize(name, value, attrs, secure, now) {
  let out;
  if (value === null) {
    out = `${name}=${attrs.tail}; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT`;
  } else {
    out = `${name}=${encodeURIComponent(value)}${attrs.tail}`;
    if (!attrs.expireOnClose) {
      out += `; Max-Age=${attrs.maxAge}; Expires=${expires(now + attrs.maxAge * 1000)}`;
    }
  }
  out += attrs.flags;
  if (secure) out += '; Secure';
  return out + attrs.sameSite;
}

module.exports = { isToken, readCookie, attributes, serialize };
