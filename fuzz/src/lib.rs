//! What the fuzz targets and the seed generator share: the keys, the cookie name, the clock, and
//! the JS encodings the cookie targets compare against.

/// The cookie name every target uses.
pub const NAME: &str = "ostro_session";
/// The current app key.
pub const KEY: &str = "fuzz-current-key-0123456789abcdef";
/// A previous app key (rotated into `previous_keys`).
pub const OLD_KEY: &str = "fuzz-previous-key-0123456789abcd";
/// A session id, the associated data of sealed payloads.
pub const ID: &str = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcd";
/// The time the cookie driver's clock shows (ms since the epoch), so that seeds sealed by
/// `examples/seeds.rs` open inside the target.
pub const NOW: i64 = 1_780_000_000_000;
/// The cookie driver's lifetime in minutes, and in ms.
pub const MINUTES: f64 = 120.0;
/// [`MINUTES`] in milliseconds.
pub const LIFETIME_MS: i64 = 120 * 60_000;

/// `encodeURIComponent` for strings (which hold no lone surrogates).
pub fn encode_uri_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A 40-character id made of the last 40 bytes of `data`: `[A-Za-z0-9]`, or base64url
/// `[A-Za-z0-9_-]` for a 1.x id (then with a `-` first, so it is never a current id).
pub fn id_from(data: &[u8], legacy: bool) -> String {
    const B64URL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let alphabet = if legacy { B64URL } else { &B64URL[..62] };
    let tail = &data[data.len().saturating_sub(40)..];
    let mut id: String = (0..40)
        .map(|i| {
            let b = tail.get(i).copied().unwrap_or(11);
            char::from(alphabet[usize::from(b) % alphabet.len()])
        })
        .collect();
    if legacy {
        id.replace_range(0..1, "-");
    }
    id
}
