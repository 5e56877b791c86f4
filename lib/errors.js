'use strict';
// Coded errors, with the same ERR_SESSION_* codes as the Rust engine.

const TYPE_ERROR_CODES = new Set(['ERR_SESSION_INVALID_OPTION', 'ERR_SESSION_VALUE', 'ERR_SESSION_PROPERTY', 'ERR_SESSION_CALLBACK']);
const PREFIX = /^\[(ERR_SESSION_[A-Z_]+)\] ([\s\S]*)$/;

/** An `Error` (or `TypeError` for bad input) carrying `code`. */
function sessionError(code, message) {
  const Ctor = TYPE_ERROR_CODES.has(code) ? TypeError : Error;
  const err = new Ctor(message);
  err.code = code;
  return err;
}

// Libraries written for express-session (connect-flash, passport, …) keep data as
// `req.session.<name>` and pass callbacks; both messages name the way out.
const COMPAT = "mount the middleware in express-session compatibility mode: manager.middleware({ api: 'express-session' })";

function quoted(key) {
  const k = String(key);
  return /^[\x20-\x26\x28-\x7e]*$/.test(k) ? `'${k}'` : JSON.stringify(k);
}

/**
 * `ERR_SESSION_PROPERTY`: a property write, definition or deletion on a Store. A Store keeps its
 * data only through its methods; a property set on it would either be shared by every session
 * (when the name is a method's) or never saved.
 * @param {string|symbol} key
 * @param {'set'|'define'|'delete'|'setPrototypeOf'} verb
 */
function propertyError(key, verb) {
  if (verb === 'setPrototypeOf') {
    return sessionError('ERR_SESSION_PROPERTY', `Cannot change the prototype of a session Store; for libraries written for express-session, ${COMPAT}.`);
  }
  const name = typeof key === 'symbol' ? key.toString() : quoted(key);
  const arg = typeof key === 'symbol' ? 'key' : name;
  return sessionError('ERR_SESSION_PROPERTY', `Cannot ${verb} property ${name} of a session Store: session data is not kept in properties (it would never be saved, or be shared with every other session when the name is a Store method's). Use session.put(${arg}, value) and session.get(${arg}); for libraries written for express-session (connect-flash, passport, …), ${COMPAT}.`);
}

/**
 * `ERR_SESSION_CALLBACK`: a function passed to a Store method that takes a boolean or nothing.
 * Laravel's API never calls a callback, so a caller waiting for one would wait forever.
 * @param {string} method
 * @param {boolean} async whether the method returns a Promise
 */
function callbackError(method, async) {
  const how = async ? `\`await session.${method}()\`` : `session.${method}() without a callback (it completes before returning)`;
  return sessionError('ERR_SESSION_CALLBACK', `session.${method}() was given a callback, but this Store has Laravel's API and never calls callbacks (the caller would wait forever). Use ${how}; for libraries written for express-session (passport, …), ${COMPAT}.`);
}

/**
 * Turns a rejection from the addon into a coded error. napi-rs gives rejections a fixed status,
 * so the binding puts the code in a `[ERR_SESSION_X] ` prefix; anything else passes unchanged.
 */
function fromNative(err) {
  if (err && typeof err.message === 'string') {
    const m = PREFIX.exec(err.message);
    if (m) return sessionError(m[1], m[2]);
  }
  return err;
}

/** Rethrows a native rejection as a coded error. */
function rethrow(err) {
  throw fromNative(err);
}

module.exports = { sessionError, propertyError, callbackError, fromNative, rethrow };
