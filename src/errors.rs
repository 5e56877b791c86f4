//! The one place where engine errors become JS errors.
//!
//! Sync calls throw a JS `Error` (or `TypeError` for bad input) with `err.code` set to the
//! `ERR_SESSION_*` code. napi-rs gives Promise rejections a fixed status code, so async errors
//! carry the code as a `[ERR_SESSION_*] ` prefix that `lib/errors.js` turns into `err.code`.

use napi::bindgen_prelude::*;
use ostro_session_core::SessionError;

/// Throws `err` into JS now and returns the marker napi-rs expects after a pending exception.
pub fn throw(env: &Env, err: &SessionError) -> Error {
    // SAFETY: `env` is the live env of the current call.
    unsafe { throw_raw(env.raw(), err) }
}

/// [`throw`] for argument conversions, which get the raw env.
///
/// # Safety
/// `env` must be the live env of the current call, on its JS thread.
pub unsafe fn throw_raw(env: napi::sys::napi_env, err: &SessionError) -> Error {
    let msg = err.to_string();
    let e = Error::new(err.code(), msg.clone());
    // SAFETY: the caller passes the live env of the current call.
    unsafe {
        if err.is_type_error() {
            JsTypeError::from(e).throw_into(env);
        } else {
            JsError::from(e).throw_into(env);
        }
    }
    Error::new(Status::PendingException, msg)
}

/// An error for a Promise rejection; `lib/errors.js` restores its code.
pub fn reject(err: &SessionError) -> Error {
    Error::new(Status::GenericFailure, format!("[{}] {}", err.code(), err))
}

/// Maps a core result for a sync call.
pub trait OrThrow<T> {
    /// Throws the error into JS.
    fn or_throw(self, env: &Env) -> Result<T>;
}

impl<T> OrThrow<T> for std::result::Result<T, SessionError> {
    fn or_throw(self, env: &Env) -> Result<T> {
        self.map_err(|e| throw(env, &e))
    }
}
