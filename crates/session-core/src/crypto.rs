//! Cookie signatures and payload sealing.
//!
//! - **Signatures** are byte-compatible with `@ostro/session` 1.x, which signed with the
//!   `cookie-signature` package: `s:<id>.<sig>`, where `sig` is standard base64 (padding
//!   stripped) of HMAC-SHA256 keyed with the literal app key string (a `base64:` prefix included)
//!   over the id. Existing 1.x cookies therefore verify unchanged.
//! - **Sealing** is AES-256-GCM under a key derived with HKDF-SHA256 from the app key, so the
//!   encryption key is never the cookie HMAC key. The stored form is
//!   `v1.` + base64url(nonce ‖ ciphertext ‖ tag) with a random 96-bit nonce per seal; the caller's
//!   associated data (the session id, or the cookie name for the cookie driver) binds a ciphertext
//!   to its place.

use crate::error::{Result, SessionError};
use crate::id;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD_NO_PAD};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;
use subtle::ConstantTimeEq;

/// Prefix of every sealed payload; the version lets a later format coexist.
pub const SEALED_PREFIX: &str = "v1.";

/// HKDF `info` of the payload encryption key: ties the derived key to this purpose and version.
pub const ENC_INFO: &[u8] = b"ostro-session/v1/enc";

const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// base64url without padding when writing; padding tolerated when reading.
const B64URL: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

// ----- cookie signatures ---------------------------------------------------------------------

/// The `cookie-signature` signature of `value`: base64 (no padding) of HMAC-SHA256 keyed with
/// the UTF-8 bytes of `key`.
pub fn signature(value: &str, key: &str) -> String {
    STANDARD_NO_PAD.encode(hmac_sha256(key.as_bytes(), value.as_bytes()))
}

fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length, so this constructor cannot fail.
    match <Hmac<Sha256> as Mac>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(msg);
            mac.finalize().into_bytes().into()
        }
        Err(_) => [0u8; 32],
    }
}

/// The session cookie value before URL-encoding: `s:<value>.<signature>`.
pub fn sign_cookie(value: &str, key: &str) -> String {
    let sig = signature(value, key);
    let mut out = String::with_capacity(3 + value.len() + sig.len());
    out.push_str("s:");
    out.push_str(value);
    out.push('.');
    out.push_str(&sig);
    out
}

/// Verifies a decoded `s:<value>.<sig>` cookie value against each key in turn (the current key
/// first, then previous keys) and returns the value. `None` for an unsigned value, a bad
/// signature or no non-empty key. Signatures are compared in constant time.
pub fn unsign_cookie<'a, K: AsRef<str>>(signed: &'a str, keys: &[K]) -> Option<&'a str> {
    let rest = signed.strip_prefix("s:")?;
    // As cookie-signature does: the signature follows the last dot.
    let (value, sig) = rest.rsplit_once('.')?;
    let mut found = false;
    for key in keys {
        let key = key.as_ref();
        if key.is_empty() {
            continue;
        }
        let expected = signature(value, key);
        // `ct_eq` on slices of different lengths is false; only the length can leak, and the
        // length of a valid signature is public.
        if bool::from(expected.as_bytes().ct_eq(sig.as_bytes())) {
            found = true;
            break;
        }
    }
    found.then_some(value)
}

// ----- sealing -------------------------------------------------------------------------------

/// AES-256-GCM sealing under keys derived from the app key (first) and previous app keys.
pub struct Cipher {
    keys: Vec<Aes256Gcm>,
}

impl fmt::Debug for Cipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material.
        f.debug_struct("Cipher")
            .field("keys", &self.keys.len())
            .finish()
    }
}

/// What [`Cipher::open`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// The plaintext.
    pub plaintext: Vec<u8>,
    /// Whether a previous key opened it, so it should be sealed again under the current key.
    pub stale_key: bool,
}

/// Derives the AES-256 key of an app key: HKDF-SHA256 over the UTF-8 bytes of the literal key
/// string (the same string the cookie HMAC uses), no salt, `info` = [`ENC_INFO`].
fn derive(app_key: &str) -> Result<Aes256Gcm> {
    let hk = Hkdf::<Sha256>::new(None, app_key.as_bytes());
    let mut okm = [0u8; 32];
    hk.expand(ENC_INFO, &mut okm)
        .map_err(|_| SessionError::InvalidOption("could not derive the encryption key".into()))?;
    Aes256Gcm::new_from_slice(&okm)
        .map_err(|_| SessionError::InvalidOption("could not build the encryption key".into()))
}

impl Cipher {
    /// A cipher sealing under `keys[0]` and opening with each key in turn.
    ///
    /// # Errors
    /// [`SessionError::InvalidOption`] when there is no key or a key is empty.
    pub fn new<K: AsRef<str>>(keys: &[K]) -> Result<Self> {
        if keys.is_empty() {
            return Err(SessionError::InvalidOption(
                "encryption needs the app key (`key`)".into(),
            ));
        }
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            let k = k.as_ref();
            if k.is_empty() {
                return Err(SessionError::InvalidOption(
                    "an encryption key is empty: set the app key (`key`) and non-empty `previous_keys`"
                        .into(),
                ));
            }
            out.push(derive(k)?);
        }
        Ok(Self { keys: out })
    }

    /// Seals `plaintext` under the current key with `ad` as associated data:
    /// `v1.` + base64url(nonce ‖ ciphertext ‖ tag). Each call takes a fresh random nonce.
    ///
    /// # Errors
    /// [`SessionError::Io`] when the OS random generator fails; [`SessionError::TooLarge`] for
    /// a plaintext beyond what AES-GCM can seal.
    pub fn seal(&self, plaintext: &[u8], ad: &[u8]) -> Result<String> {
        let Some(key) = self.keys.first() else {
            return Err(SessionError::InvalidOption("no encryption key".into()));
        };
        let mut nonce = [0u8; NONCE_LEN];
        id::random_bytes(&mut nonce)?;
        let ct = key
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: ad,
                },
            )
            .map_err(|_| SessionError::TooLarge("the payload is too large to encrypt".into()))?;
        let mut raw = Vec::with_capacity(NONCE_LEN + ct.len());
        raw.extend_from_slice(&nonce);
        raw.extend_from_slice(&ct);
        let mut out = String::with_capacity(SEALED_PREFIX.len() + (raw.len() * 4).div_ceil(3));
        out.push_str(SEALED_PREFIX);
        B64URL.encode_string(&raw, &mut out);
        Ok(out)
    }

    /// Opens a sealed string with each key in turn. `None` when it is not in the sealed form, was
    /// tampered with, was sealed under another associated data, or no key opens it.
    pub fn open(&self, sealed: &str, ad: &[u8]) -> Option<Opened> {
        let body = sealed.strip_prefix(SEALED_PREFIX)?;
        let raw = B64URL.decode(body).ok()?;
        if raw.len() < NONCE_LEN + TAG_LEN {
            return None;
        }
        let (nonce, ct) = raw.split_at(NONCE_LEN);
        self.keys.iter().enumerate().find_map(|(i, key)| {
            key.decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad: ad })
                .ok()
                .map(|plaintext| Opened {
                    plaintext,
                    stale_key: i > 0,
                })
        })
    }

    /// [`Cipher::open`] for UTF-8 plaintexts; a plaintext that is not UTF-8 gives `None`.
    pub fn open_str(&self, sealed: &str, ad: &[u8]) -> Option<(String, bool)> {
        let o = self.open(sealed, ad)?;
        String::from_utf8(o.plaintext)
            .ok()
            .map(|s| (s, o.stale_key))
    }
}

/// Whether a stored string is in the sealed form (it may still fail to open).
pub fn is_sealed(raw: &str) -> bool {
    raw.starts_with(SEALED_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "base64:Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5";

    #[test]
    fn signature_matches_cookie_signature() {
        // Computed independently with node:
        //   crypto.createHmac('sha256', KEY).update(ID).digest('base64').replace(/=+$/, '')
        let id = "a-b_c1234567890ABCDEFGHIJKLMNOPQRSTUVWXY";
        assert_eq!(id.len(), 40);
        assert_eq!(
            signature(id, KEY),
            "uoCabqg+wC+/KRHJgeemBfR/X8A2ZurunHHO7jNvO4Q"
        );
        // cookie-signature's own test vector: sign('hello', 'tobiiscool').
        assert_eq!(
            sign_cookie("hello", "tobiiscool"),
            "s:hello.DGDUkGlIkCzPz+C0B064FNgHdEjox7ch8tOBGslZ5QI"
        );
    }

    #[test]
    fn unsign_checks_every_key_and_rejects_tampering() {
        let c = sign_cookie("session-id", "new-key");
        assert_eq!(unsign_cookie(&c, &["new-key"]), Some("session-id"));
        assert_eq!(unsign_cookie(&c, &["other", "new-key"]), Some("session-id"));
        assert_eq!(unsign_cookie(&c, &["other"]), None);
        assert_eq!(unsign_cookie(&c, &[""]), None);
        assert_eq!(unsign_cookie::<&str>(&c, &[]), None);
        assert_eq!(unsign_cookie("session-id", &["new-key"]), None);
        assert_eq!(unsign_cookie("s:session-id", &["new-key"]), None);
        let tampered = c.replacen("session", "sessiom", 1);
        assert_eq!(unsign_cookie(&tampered, &["new-key"]), None);
        let truncated = &c[..c.len() - 1];
        assert_eq!(unsign_cookie(truncated, &["new-key"]), None);
        // A value containing dots: the signature follows the last one.
        let d = sign_cookie("a.b.c", "k");
        assert_eq!(unsign_cookie(&d, &["k"]), Some("a.b.c"));
    }

    #[test]
    fn seal_round_trip_and_fresh_nonces() {
        let c = Cipher::new(&[KEY]).unwrap();
        let a = c.seal(b"{\"a\":1}", b"id1").unwrap();
        let b = c.seal(b"{\"a\":1}", b"id1").unwrap();
        assert!(a.starts_with(SEALED_PREFIX) && is_sealed(&a));
        assert_ne!(a, b, "two seals of the same data must differ");
        assert!(!a.contains("\"a\""));
        assert!(a[3..]
            .bytes()
            .all(|x| x.is_ascii_alphanumeric() || x == b'-' || x == b'_'));
        let o = c.open(&a, b"id1").unwrap();
        assert_eq!(o.plaintext, b"{\"a\":1}");
        assert!(!o.stale_key);
        assert_eq!(c.open_str(&b, b"id1").unwrap().0, "{\"a\":1}");
    }

    #[test]
    fn open_fails_on_other_ad_tampering_and_garbage() {
        let c = Cipher::new(&[KEY]).unwrap();
        let s = c.seal(b"payload", b"id1").unwrap();
        assert!(c.open(&s, b"id2").is_none(), "moved to another id");
        let mut bytes = s.clone().into_bytes();
        let last = bytes.len() - 2;
        bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
        assert!(c.open(&String::from_utf8(bytes).unwrap(), b"id1").is_none());
        for junk in [
            "",
            "v1.",
            "v1.AAAA",
            "v1.!!!!",
            "{\"a\":1}",
            "v2.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        ] {
            assert!(c.open(junk, b"id1").is_none(), "{junk}");
        }
        let other = Cipher::new(&["another key, also long enough to pass"]).unwrap();
        assert!(other.open(&s, b"id1").is_none());
    }

    #[test]
    fn previous_keys_open_and_are_flagged_stale() {
        let old = Cipher::new(&["old-key"]).unwrap();
        let s = old.seal(b"x", b"ad").unwrap();
        let rotated = Cipher::new(&["new-key", "old-key"]).unwrap();
        let o = rotated.open(&s, b"ad").unwrap();
        assert_eq!(o.plaintext, b"x");
        assert!(o.stale_key);
        assert!(Cipher::new(&["new-key"]).unwrap().open(&s, b"ad").is_none());
        assert!(Cipher::new::<&str>(&[]).is_err());
        assert!(Cipher::new(&["k", ""]).is_err());
    }

    #[test]
    fn derived_key_matches_an_independent_hkdf() {
        // The derived key is HKDF-SHA256(ikm = key bytes, salt = none, info = ENC_INFO); check
        // it by sealing with a cipher built from a key computed by hand from HMAC (RFC 5869).
        let prk = hmac_sha256(&[0u8; 32], KEY.as_bytes());
        let mut t1_input = ENC_INFO.to_vec();
        t1_input.push(1);
        let okm = hmac_sha256(&prk, &t1_input);
        let manual = Aes256Gcm::new_from_slice(&okm).unwrap();
        let c = Cipher::new(&[KEY]).unwrap();
        let s = c.seal(b"hello", b"ad").unwrap();
        let raw = B64URL.decode(&s[3..]).unwrap();
        let (n, ct) = raw.split_at(NONCE_LEN);
        let pt = manual
            .decrypt(
                Nonce::from_slice(n),
                Payload {
                    msg: ct,
                    aad: b"ad",
                },
            )
            .unwrap();
        assert_eq!(pt, b"hello");
    }
}
