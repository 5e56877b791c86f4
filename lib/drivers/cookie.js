'use strict';
// The cookie driver: the whole session lives in the client's cookie, sealed with AES-256-GCM
// (the cookie name as associated data, an expiry sealed inside). The shared handler keeps no
// request state: `forRequest(cookieValue)` builds a handler for one request from that request's
// own cookie, and the Store of that request uses it.
//
// A cookie-driver session cannot be revoked server-side before it expires: the server keeps
// nothing, so a copied cookie keeps working until its sealed expiry (one lifetime after the
// response that set it).
const native = require('../native');
const { NativeSessionHandler, minutesOf, clockOf } = require('../handlers');
const { SessionHandlerInterface } = require('../handler-interface');
const { sessionError } = require('../errors');
const { rejectUnknown } = require('../options');

const OPTION_KEYS = ['name', 'keys', 'minutes', 'maxBytes', 'now', 'clock'];

/** The cookie driver for one request; its Store reads and writes the sealed cookie value. */
class CookieRequestHandler extends NativeSessionHandler {
  constructor(request, codec, now) {
    super(request.handler(), now);
    Object.defineProperty(this, '_req', { value: request });
    Object.defineProperty(this, '_codec', { value: codec });
  }

  /** Feeds the test clock of the codec, which seals the expiry. */
  _tick() {
    if (this._now !== null) this._codec.setNow(this._now());
  }

  /** The id sealed in the request's cookie, or null when it did not open or has expired. */
  incomingId() {
    return this._req.incomingId() ?? null;
  }

  /**
   * What the response must send after a save: the new cookie value, `''` to expire the cookie,
   * or `null` to leave it alone.
   */
  outgoing() {
    return this._req.outgoing() ?? null;
  }
}

/** The cookie driver, shared by all requests: it only knows the cookie name, keys and lifetime. */
class CookieSessionHandler extends SessionHandlerInterface {
  /**
   * @param {{ name: string, keys: string[], minutes?: number, maxBytes?: number, now?: () => number }} options
   *   `name` the cookie name (the associated data of every seal), `keys` the app key then previous
   *   keys, `maxBytes` the limit of the encoded `name=value` (4096)
   */
  constructor(options) {
    super();
    rejectUnknown(options, OPTION_KEYS, 'CookieSessionHandler options');
    const o = options || {};
    if (typeof o.name !== 'string' || o.name === '') throw sessionError('ERR_SESSION_INVALID_OPTION', 'the cookie driver needs the cookie name');
    if (!Array.isArray(o.keys) || o.keys.length === 0 || o.keys.some((k) => typeof k !== 'string' || k === '')) {
      throw sessionError('ERR_SESSION_INVALID_OPTION', 'the cookie driver needs the app key (and non-empty previous keys)');
    }
    const maxBytes = o.maxBytes === undefined ? 4096 : o.maxBytes;
    if (!Number.isInteger(maxBytes) || maxBytes < 64) throw sessionError('ERR_SESSION_INVALID_OPTION', 'maxBytes must be an integer of at least 64');
    const now = clockOf(o);
    Object.defineProperty(this, '_now', { value: now });
    Object.defineProperty(this, '_codec', { value: new native.NativeCookieCodec(o.name, o.keys, minutesOf(o.minutes), maxBytes, now !== null) });
    Object.defineProperty(this, 'name', { value: o.name, enumerable: true });
  }

  /**
   * A handler for one request.
   * @param {string|null|undefined} cookieValue the request's session cookie, URL-decoded
   * @returns {CookieRequestHandler}
   */
  forRequest(cookieValue) {
    if (this._now !== null) this._codec.setNow(this._now());
    const value = typeof cookieValue === 'string' && cookieValue !== '' ? cookieValue : null;
    return new CookieRequestHandler(new native.NativeCookieRequest(this._codec, value), this._codec, this._now);
  }

  // The shared handler stores nothing: sessions live in each request's cookie.
  read() { return ''; }
  write() {
    return Promise.reject(sessionError('ERR_SESSION_HANDLER', 'the cookie driver stores each session in its response cookie: use manager.createStore() or the middleware, which give every request its own handler'));
  }
  destroy() {}
  gc() { return 0; }
  touch() { return false; }
  close() {}
}

module.exports = { CookieSessionHandler, CookieRequestHandler };
