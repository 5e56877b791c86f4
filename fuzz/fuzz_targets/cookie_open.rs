//! The cookie driver's sealed values: `CookieCodec::open`, `Cipher::open` / `open_str` on any
//! input, and seal → open.
//!
//! Invariants beyond "no panic":
//! - whatever opens yields an id of an allowed shape (no `../` reaches a handler);
//! - a sealed value opens under the keys that include its key, with its cookie name, until its
//!   expiry (inclusive), and under nothing else; any changed character makes it not open;
//! - sealing refuses ids outside the allowed shapes and values over the 4096-byte cookie limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ostro_session_core::clock::ManualClock;
use ostro_session_core::crypto::{Cipher, SEALED_PREFIX};
use ostro_session_core::handlers::cookie::{CookieCodec, MAX_COOKIE_BYTES};
use ostro_session_core::id;
use ostro_session_core::SessionError;
use ostro_session_fuzz::{id_from, KEY, LIFETIME_MS, MINUTES, NAME, NOW, OLD_KEY};
use std::sync::{Arc, LazyLock};

static CLOCK: LazyLock<ManualClock> = LazyLock::new(|| ManualClock::new(NOW));

fn codec(name: &str, keys: &[&str]) -> CookieCodec {
    let cipher = Arc::new(Cipher::new(keys).expect("static keys"));
    let clock = Arc::new(CLOCK.clone());
    CookieCodec::new(name, cipher, MINUTES, Some(clock)).expect("static options")
}

static ROTATED: LazyLock<CookieCodec> = LazyLock::new(|| codec(NAME, &[KEY, OLD_KEY]));
static CURRENT: LazyLock<CookieCodec> = LazyLock::new(|| codec(NAME, &[KEY]));
static OLD: LazyLock<CookieCodec> = LazyLock::new(|| codec(NAME, &[OLD_KEY]));
static OTHER_NAME: LazyLock<CookieCodec> = LazyLock::new(|| codec("other", &[KEY, OLD_KEY]));
static CIPHER: LazyLock<Cipher> = LazyLock::new(|| Cipher::new(&[KEY, OLD_KEY]).expect("keys"));

fn check_opened(what: &str, opened: Option<(String, String)>) {
    if let Some((sid, _)) = opened {
        assert!(
            id::check_storage_id(&sid).is_ok(),
            "{what}: opened with id {sid:?}"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    CLOCK.set(NOW);
    let text = String::from_utf8_lossy(data);
    let text: &str = &text;

    // Anything a client sends.
    check_opened("raw", ROTATED.open(text));
    let prefixed = format!("{SEALED_PREFIX}{text}");
    check_opened("prefixed", ROTATED.open(&prefixed));
    let _ = CIPHER.open(text, NAME.as_bytes());
    let _ = CIPHER.open_str(&prefixed, NAME.as_bytes());

    // Sealing checks the id shape.
    let sealed_bad = CURRENT.seal(text, "x");
    if !id::is_legacy_id(text) {
        assert!(matches!(sealed_bad, Err(SessionError::InvalidId(_))));
    }

    // seal → open.
    let legacy = data.first().is_some_and(|b| b & 1 == 1);
    let sid = id_from(data, legacy);
    let payload = text;
    let sealed = match CURRENT.seal(&sid, payload) {
        Ok(v) => v,
        Err(SessionError::TooLarge(_)) => {
            // Only when the cookie would not fit: the plaintext is `<expiry>.<id>.<payload>`,
            // sealed with a 12-byte nonce and a 16-byte tag, base64url without padding.
            let plain = format!("{}.{sid}.{payload}", NOW + LIFETIME_MS).len();
            let value =
                SEALED_PREFIX.len() + (12 + plain + 16).div_ceil(3) * 4 - pad(12 + plain + 16);
            assert!(
                NAME.len() + 1 + value > MAX_COOKIE_BYTES,
                "{value} bytes refused"
            );
            return;
        }
        Err(e) => panic!("seal failed: {e}"),
    };
    assert!(NAME.len() + 1 + sealed.len() <= MAX_COOKIE_BYTES);
    let expected = Some((sid.clone(), payload.to_owned()));
    assert_eq!(ROTATED.open(&sealed), expected);
    assert_eq!(CURRENT.open(&sealed), expected);
    assert_eq!(OLD.open(&sealed), None, "opened without its key");
    assert_eq!(
        OTHER_NAME.open(&sealed),
        None,
        "opened under another cookie name"
    );
    // Sealed under a key that was rotated out: still opens with previous keys.
    let stale = OLD
        .seal(&sid, payload)
        .expect("fits, as under the current key");
    assert_eq!(ROTATED.open(&stale), expected);
    assert_eq!(CURRENT.open(&stale), None);

    // Any changed character: no longer opens.
    let body = sealed.len() - SEALED_PREFIX.len();
    let at = SEALED_PREFIX.len() + usize::from(data.get(1).copied().unwrap_or(0)) * 7 % body;
    let mut tampered = sealed.clone().into_bytes();
    tampered[at] = match tampered[at] {
        b'A' => b'B',
        b'-' => b'_',
        _ => b'A',
    };
    let tampered = String::from_utf8(tampered).expect("ASCII");
    assert_eq!(ROTATED.open(&tampered), None, "tampered at {at}");
    let cut = &sealed[..sealed.len() - 1 - usize::from(data.get(2).copied().unwrap_or(0)) % body];
    assert_eq!(ROTATED.open(cut), None, "truncated");

    // Expiry: still valid at the sealed expiry, gone one millisecond later.
    CLOCK.advance(LIFETIME_MS);
    assert_eq!(ROTATED.open(&sealed), expected);
    CLOCK.advance(1);
    assert_eq!(ROTATED.open(&sealed), None, "expired");
    CLOCK.set(NOW);
});

/// The `=` padding that unpadded base64 leaves out for `n` bytes.
fn pad(n: usize) -> usize {
    (3 - n % 3) % 3
}
