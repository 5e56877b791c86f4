//! CSRF token formats.

use crate::error::Result;
use crate::id;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha1::{Digest, Sha1};
use std::fmt;
use subtle::ConstantTimeEq;

/// Salt length of OstroJS tokens (`require('csrf')({ saltLength: 30 })` in 1.x).
pub const OSTRO_SALT_LENGTH: usize = 30;

/// How `token()` values are generated.
#[derive(Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenFormat {
    /// Laravel-style: 40 random `[A-Za-z0-9]`.
    #[default]
    Random,
    /// The `csrf` npm package's format that OstroJS's `VerifyCsrfToken` checks against the app
    /// key: a random 30-character alphanumeric salt, `-`, and base64url (no padding) of
    /// SHA1(salt + `-` + key). Such a token is valid for every session of the app: the framework
    /// never compares it with the session.
    Ostro {
        /// The app key, as the literal string OstroJS reads from `APP_KEY`.
        key: String,
    },
}

impl fmt::Debug for TokenFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The key stays out of logs and debug output.
        match self {
            Self::Random => f.write_str("Random"),
            Self::Ostro { .. } => f.write_str("Ostro { key: <redacted> }"),
        }
    }
}

impl TokenFormat {
    /// A fresh token.
    pub fn generate(&self) -> Result<String> {
        match self {
            Self::Random => id::random_alnum(id::ID_LENGTH),
            Self::Ostro { key } => {
                let salt = id::random_alnum(OSTRO_SALT_LENGTH)?;
                Ok(ostro_tokenize(&salt, key))
            }
        }
    }
}

/// `salt + '-' + base64url(SHA1(salt + '-' + key))`, as the `csrf` package's `_tokenize` builds it.
fn ostro_tokenize(salt: &str, key: &str) -> String {
    let mut h = Sha1::new();
    // csrf hashes with `update(str, 'ascii')`, which Node writes as latin1: each UTF-16 code unit
    // truncated to its low byte. Identical to UTF-8 for the ASCII keys OstroJS generates.
    let bytes: Vec<u8> = salt
        .encode_utf16()
        .chain("-".encode_utf16())
        .chain(key.encode_utf16())
        .map(|u| u.to_le_bytes()[0])
        .collect();
    h.update(&bytes);
    let digest = h.finalize();
    let mut out = String::with_capacity(salt.len() + 28);
    out.push_str(salt);
    out.push('-');
    URL_SAFE_NO_PAD.encode_string(digest, &mut out);
    out
}

/// Verifies a token the way the `csrf` package's `verify(key, token)` does: the salt is
/// everything before the first `-`, and the whole token must equal the one rebuilt from it.
/// Compared in constant time. False for an empty key or token.
pub fn verify_ostro_token(key: &str, token: &str) -> bool {
    if key.is_empty() || token.is_empty() {
        return false;
    }
    let Some((salt, _)) = token.split_once('-') else {
        return false;
    };
    let expected = ostro_tokenize(salt, key);
    bool::from(expected.as_bytes().ct_eq(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "base64:Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5";

    #[test]
    fn ostro_tokens_match_the_csrf_package() {
        // Computed with node's crypto exactly as csrf 3.1.0 does, and checked with
        // `new (require('csrf'))({ saltLength: 30 }).verify(key, token) === true`.
        let salt = "abcdefghijklmnopqrstuvwxyz0123";
        assert_eq!(
            ostro_tokenize(salt, KEY),
            "abcdefghijklmnopqrstuvwxyz0123-xo75IyYRhcHcZFo1LjPQB7-Gx-g"
        );
        assert_eq!(
            ostro_tokenize(salt, "k€y"),
            "abcdefghijklmnopqrstuvwxyz0123-Av0YAMdsRJmBcoqrWfFfjR0YgXE"
        );
        // A token minted by the csrf package itself (salt length 30) with key "k".
        assert!(verify_ostro_token(
            "k",
            "0Mn8X8jYmkWTqDt3MqAraWZYBPAjao-oAglM8qbS5Jemq-COb-LQD0dsF8"
        ));
    }

    #[test]
    fn generated_ostro_tokens_verify_and_differ() {
        let f = TokenFormat::Ostro { key: KEY.into() };
        let a = f.generate().unwrap();
        let b = f.generate().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 58);
        assert!(a[..30].bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_eq!(&a[30..31], "-");
        assert!(verify_ostro_token(KEY, &a));
        assert!(!verify_ostro_token("another key", &a));
        assert!(!verify_ostro_token(KEY, &a[..57]));
        assert!(!verify_ostro_token(KEY, "nodash"));
        assert!(!verify_ostro_token("", &a));
        assert!(!verify_ostro_token(KEY, ""));
        assert!(!format!("{f:?}").contains("Zm9v"));
    }

    #[test]
    fn random_tokens_are_40_alnum() {
        let t = TokenFormat::Random.generate().unwrap();
        assert!(id::is_valid_id(&t));
    }
}
