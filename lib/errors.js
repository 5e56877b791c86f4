'use strict';
// Coded errors, with the same ERR_SESSION_* codes as the Rust engine.

const TYPE_ERROR_CODES = new Set(['ERR_SESSION_INVALID_OPTION', 'ERR_SESSION_VALUE']);
const PREFIX = /^\[(ERR_SESSION_[A-Z_]+)\] ([\s\S]*)$/;

/** An `Error` (or `TypeError` for bad input) carrying `code`. */
function sessionError(code, message) {
  const Ctor = TYPE_ERROR_CODES.has(code) ? TypeError : Error;
  const err = new Ctor(message);
  err.code = code;
  return err;
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

module.exports = { sessionError, fromNative, rethrow };
