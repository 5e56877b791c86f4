//! Cookie signing, CSRF token checks and session encryption options for JS. The algorithms live
//! in `ostro_session_core::{crypto, token}`; this file converts arguments and caches ciphers.

use napi_derive::napi;
use ostro_session_core::crypto::{self, Cipher};
use ostro_session_core::token::{self, TokenFormat};
use ostro_session_core::{SessionError, SessionOptions};
use std::sync::{Arc, Mutex};

/// `s:<value>.<signature>`, the 1.x session cookie value before URL-encoding.
#[napi]
pub fn sign_cookie(value: String, key: String) -> String {
    crypto::sign_cookie(&value, &key)
}

/// The value of a decoded `s:<value>.<signature>` cookie when one of `keys` (current first)
/// signed it; `null` otherwise.
#[napi]
pub fn unsign_cookie(signed: String, keys: Vec<String>) -> Option<String> {
    crypto::unsign_cookie(&signed, &keys).map(str::to_owned)
}

/// Whether `token` is a valid OstroJS CSRF token for `key` (as `require('csrf')().verify`).
#[napi]
pub fn verify_csrf_token(key: String, token: String) -> bool {
    token::verify_ostro_token(&key, &token)
}

// Every Store of an app uses the same keys: building the cipher (HKDF + AES key schedule per key)
// once and sharing it saves that work on every request.
static LAST: Mutex<Option<(Vec<String>, Arc<Cipher>)>> = Mutex::new(None);

/// The cipher for `keys` (current key first), shared while the keys stay the same.
pub fn cipher_for(keys: Vec<String>) -> Result<Arc<Cipher>, SessionError> {
    let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((k, c)) = last.as_ref() {
        if *k == keys {
            return Ok(Arc::clone(c));
        }
    }
    let c = Arc::new(Cipher::new(&keys)?);
    *last = Some((keys, Arc::clone(&c)));
    Ok(c)
}

/// Applies the token and encryption options of `NativeSessionOptions`.
pub fn configure(
    opts: &mut SessionOptions,
    token_format: Option<&str>,
    token_key: Option<String>,
    encrypt_keys: Option<Vec<String>>,
    encrypt_migrate: Option<bool>,
) -> Result<(), SessionError> {
    match token_format {
        None | Some("random") => {}
        Some("ostro") => match token_key {
            Some(key) if !key.is_empty() => opts.token = TokenFormat::Ostro { key },
            _ => {
                return Err(SessionError::InvalidOption(
                    "OstroJS CSRF tokens need the app key (tokenKey)".into(),
                ))
            }
        },
        Some(other) => {
            return Err(SessionError::InvalidOption(format!(
                "tokenFormat must be 'random' or 'ostro', got {other:?}"
            )))
        }
    }
    if let Some(keys) = encrypt_keys {
        opts.cipher = Some(cipher_for(keys)?);
        opts.encrypt_migrate = encrypt_migrate.unwrap_or(false);
    }
    Ok(())
}
