//! Session handles: a keyed hash of a session id that can be shown, logged or published
//! (lifecycle events, a user's list of sessions) without leaking the id, which is the bearer
//! secret of the cookie.
//!
//! `hex(HMAC-SHA256(app key, "ostro-session-handle\0" ‖ id))`, first 32 hex digits (128 bits).
//! The label keeps it apart from the cookie signature (`HMAC-SHA256(key, id)`), so a handle
//! never reveals part of a cookie; without the app key a handle cannot be made or checked, so
//! one app's handles cannot be forged for another app.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Hex digits in a handle.
pub const HANDLE_LEN: usize = 32;

const LABEL: &[u8] = b"ostro-session-handle\0";

/// The handle of session `id` under the app key `key` (see the module docs).
pub fn session_handle(key: &str, id: &str) -> String {
    // HMAC accepts keys of any length: this constructor cannot fail.
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(key.as_bytes()) else {
        return String::new();
    };
    mac.update(LABEL);
    mac.update(id.as_bytes());
    let digest = mac.finalize().into_bytes();
    let mut out = String::with_capacity(HANDLE_LEN);
    for b in digest.iter().take(HANDLE_LEN / 2) {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    out
}

const HEX: &[u8; 16] = b"0123456789abcdef";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handle_is_stable_keyed_and_not_the_id() {
        let id = "A".repeat(40);
        let h = session_handle("key-one", &id);
        assert_eq!(h.len(), HANDLE_LEN);
        assert!(h.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(h, session_handle("key-one", &id));
        assert_ne!(
            h,
            session_handle("key-two", &id),
            "another app key, another handle"
        );
        assert_ne!(h, session_handle("key-one", &"B".repeat(40)));
        assert!(!h.contains(&id));
        // Not a prefix of the cookie signature (base64 of HMAC(key, id)) in hex.
        let sig = crate::crypto::signature(&id, "key-one");
        assert!(!sig.contains(&h));
    }
}
