//! Reading the session cookie from a `Cookie` request header, in one linear pass, and verifying
//! its signature.
//!
//! The semantics are exactly those of `readCookie` in `lib/cookies.js`, so that moving the
//! parse into the core changes nothing a client can observe:
//! - the header is split at every `;`; in each part, the name is what precedes the first `=`,
//!   trimmed, and must equal `name` exactly (case-sensitive); parts without `=` are skipped;
//! - a name present more than once gives `None`: which one the browser meant is unknowable, and
//!   picking one would let a sibling domain's cookie shadow ours;
//! - the value is trimmed, then loses one pair of surrounding double quotes, then is
//!   percent-decoded as JavaScript's `decodeURIComponent` does (UTF-8; a malformed escape or
//!   byte sequence gives `None`);
//! - "trimmed" means JavaScript's `String.prototype.trim`: ASCII whitespace, U+00A0, U+FEFF,
//!   U+2028/U+2029 and the other space separators, but not U+0085.
//!
//! The header is the string Node hands to JS (`req.headers.cookie`): Node decodes header bytes as
//! latin1, so each byte is one character U+0000..=U+00FF, and napi passes that string to Rust
//! as UTF-8. Parsing the `&str` therefore matches the JS parse character for character.
//!
//! `readCookie` in JS searched for `=` from each `;` to the end of the header, which is
//! quadratic (137 ms on a 256 KB header of `;`); here each byte is looked at a bounded number of
//! times.

use crate::crypto;
use crate::id;
use std::borrow::Cow;

/// The value of cookie `name` in a `Cookie` header, unquoted and percent-decoded; `None` when
/// it is absent, present more than once, or its percent-encoding is malformed.
///
/// The value is borrowed from `header` unless it contained a percent escape.
pub fn find_cookie<'a>(header: &'a str, name: &str) -> Option<Cow<'a, str>> {
    let raw = find_raw(header, name)?;
    decode_uri_component(unquote(raw))
}

/// A session id read from a verified session cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedId {
    /// The id: 40 characters of `[A-Za-z0-9]`, or of `[A-Za-z0-9_-]` when `legacy`.
    pub id: String,
    /// A 1.x id (base64url, with `-` or `_`): load it once, then move the session to a fresh id.
    pub legacy: bool,
}

/// The session id carried by the signed cookie `name` of a `Cookie` header.
///
/// The cookie is found as [`find_cookie`] finds it, then verified as
/// [`crypto::unsign_cookie`] verifies it: `s:<id>.<signature>` under `keys`, the current key
/// first and then previous keys (empty keys are skipped). `None` when the cookie is absent,
/// duplicated, badly encoded, unsigned, signed under no key of `keys`, or when the signed value
/// is not an id shape ([`id::is_valid_id`], or [`id::is_legacy_id`] for 1.x ids). Whether the
/// store knows the id is for the caller to check (strict mode).
pub fn signed_session_id<K: AsRef<str>>(header: &str, name: &str, keys: &[K]) -> Option<SignedId> {
    let value = find_cookie(header, name)?;
    let id = crypto::unsign_cookie(&value, keys)?;
    if id::is_valid_id(id) {
        Some(SignedId {
            id: id.to_owned(),
            legacy: false,
        })
    } else if id::is_legacy_id(id) {
        Some(SignedId {
            id: id.to_owned(),
            legacy: true,
        })
    } else {
        None
    }
}

/// The trimmed raw value of the only `name=` part of `header`.
fn find_raw<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    let mut found = None;
    // `split` and `split_once` each scan forward only: every byte is visited at most twice.
    for part in header.split(';') {
        let Some((key, value)) = part.split_once('=') else {
            continue;
        };
        if js_trim(key) == name {
            if found.is_some() {
                return None;
            }
            found = Some(js_trim(value));
        }
    }
    found
}

/// `String.prototype.trim`.
fn js_trim(s: &str) -> &str {
    s.trim_matches(is_js_whitespace)
}

/// ECMAScript's WhiteSpace and LineTerminator: TAB, VT, FF, ZWNBSP (U+FEFF), the `Zs` space
/// separators, LF, CR, U+2028 and U+2029. Unlike `char::is_whitespace`, U+0085 is not one.
fn is_js_whitespace(c: char) -> bool {
    matches!(c, '\t'..='\r' | ' ' | '\u{a0}' | '\u{1680}' | '\u{feff}')
        || matches!(c, '\u{2000}'..='\u{200a}' | '\u{2028}'..='\u{2029}' | '\u{202f}')
        || matches!(c, '\u{205f}' | '\u{3000}')
}

/// Drops one pair of surrounding double quotes (a lone `"` stays).
fn unquote(s: &str) -> &str {
    if s.len() >= 2 && s.starts_with('"') && s.ends_with('"') {
        &s[1..s.len() - 1]
    } else {
        s
    }
}

/// JavaScript's `decodeURIComponent`: every `%XX` is a byte, each run of escaped bytes must be
/// well-formed UTF-8 (no overlong forms, surrogates or code points past U+10FFFF), and other
/// characters are kept as they are. `None` where JS throws a `URIError`.
fn decode_uri_component(s: &str) -> Option<Cow<'_, str>> {
    if !s.contains('%') {
        return Some(Cow::Borrowed(s));
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    // Start in `out` of the current run of escaped bytes. JS decodes each UTF-8 sequence from
    // consecutive escapes and throws when one is cut short or malformed; validating each maximal
    // run as UTF-8 accepts and rejects exactly the same inputs.
    let mut run = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hi = hex(*bytes.get(i + 1)?)?;
            let lo = hex(*bytes.get(i + 2)?)?;
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            std::str::from_utf8(&out[run..]).ok()?;
            // Copy the literal stretch up to the next escape in one go (it is valid UTF-8, and
            // `%` is ASCII, so the stretch ends on a character boundary).
            let end = bytes[i..]
                .iter()
                .position(|&b| b == b'%')
                .map_or(bytes.len(), |p| i + p);
            out.extend_from_slice(&bytes[i..end]);
            run = out.len();
            i = end;
        }
    }
    String::from_utf8(out).ok().map(Cow::Owned)
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::sign_cookie;

    const NAME: &str = "ostro_session";
    const ID: &str = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcd";
    const KEY: &str = "base64:Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5";
    const OLD_KEY: &str = "an old key, rotated into previous_keys";

    fn find(header: &str) -> Option<String> {
        find_cookie(header, NAME).map(Cow::into_owned)
    }

    /// `encodeURIComponent`, as the `Set-Cookie` line writes the value.
    fn encode(s: &str) -> String {
        let mut out = String::new();
        for b in s.bytes() {
            if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
                out.push(char::from(b));
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        out
    }

    #[test]
    fn finds_the_cookie_among_others() {
        assert_eq!(find("ostro_session=abc").as_deref(), Some("abc"));
        assert_eq!(find("a=1; ostro_session=abc; b=2").as_deref(), Some("abc"));
        assert_eq!(find("a=1;ostro_session=abc;b=2").as_deref(), Some("abc"));
        assert_eq!(find("  ostro_session  =  abc  ;").as_deref(), Some("abc"));
        assert_eq!(find("ostro_session=").as_deref(), Some(""));
        assert_eq!(find("ostro_session=a b").as_deref(), Some("a b"));
        // Names are compared exactly: no prefix, suffix or case folding.
        assert_eq!(find("xostro_session=1; ostro_session_x=2"), None);
        assert_eq!(find("OSTRO_SESSION=1"), None);
        assert_eq!(find(""), None);
        assert_eq!(find("a=1"), None);
        // A value without escapes is borrowed from the header.
        assert!(matches!(
            find_cookie("a=1; ostro_session=abc", NAME),
            Some(Cow::Borrowed("abc"))
        ));
        // Names with a space exist in the wild (APP_NAME "my shop").
        assert_eq!(
            find_cookie("my shop_session=v", "my shop_session").as_deref(),
            Some("v")
        );
    }

    #[test]
    fn duplicate_names_give_none() {
        assert_eq!(find("ostro_session=a; ostro_session=a"), None);
        assert_eq!(find("ostro_session=a; b=1; ostro_session=c"), None);
        // Even when the first occurrence is empty or the second is only spacing apart.
        assert_eq!(find("ostro_session=; ostro_session=b"), None);
        assert_eq!(find("ostro_session=a;  ostro_session =b"), None);
        // Other names may repeat freely.
        assert_eq!(find("b=1; b=2; ostro_session=a").as_deref(), Some("a"));
        // A duplicate after a badly encoded first value still gives none.
        assert_eq!(find("ostro_session=%; ostro_session=a"), None);
    }

    #[test]
    fn quoted_values_are_unquoted_once() {
        assert_eq!(find("ostro_session=\"abc\"").as_deref(), Some("abc"));
        assert_eq!(find("ostro_session= \"abc\" ").as_deref(), Some("abc"));
        assert_eq!(find("ostro_session=\" a \"").as_deref(), Some(" a "));
        assert_eq!(find("ostro_session=\"\"").as_deref(), Some(""));
        assert_eq!(find("ostro_session=\"\"\"\"").as_deref(), Some("\"\""));
        assert_eq!(find("ostro_session=\"").as_deref(), Some("\""));
        assert_eq!(find("ostro_session=\"abc").as_deref(), Some("\"abc"));
        assert_eq!(find("ostro_session=abc\"").as_deref(), Some("abc\""));
        // Unquoted before decoding: an encoded quote stays.
        assert_eq!(find("ostro_session=\"s%3Aa\"").as_deref(), Some("s:a"));
        assert_eq!(find("ostro_session=%22a%22").as_deref(), Some("\"a\""));
        // middleware.test.js "garbage": a quoted, unverifiable value.
        assert_eq!(find("ostro_session=\"s:\"; other=1").as_deref(), Some("s:"));
    }

    #[test]
    fn malformed_pairs_are_skipped_or_refused() {
        // Parts without `=` are skipped.
        assert_eq!(find("ostro_session; a=1"), None);
        assert_eq!(find(";;; ostro_session ;;").as_deref(), None);
        assert_eq!(find(";;;ostro_session=v;;;").as_deref(), Some("v"));
        assert_eq!(find("=; =x; ostro_session=v").as_deref(), Some("v"));
        // The name ends at the first `=`; the value keeps the others.
        assert_eq!(find("ostro_session==x=y").as_deref(), Some("=x=y"));
        assert_eq!(find("ostro_session=a=b; c").as_deref(), Some("a=b"));
        // `=` in another part never makes `ostro_session` a name.
        assert_eq!(find("ostro_session; x=ostro_session=v"), None);
        // An empty name matches only the empty name.
        assert_eq!(find_cookie("=v; a=1", "").as_deref(), Some("v"));
        // Malformed percent-encoding: `None`, as JS's URIError is.
        for bad in [
            "%",
            "%4",
            "%zz",
            "%G0",
            "abc%",
            "s%3A%E0%A4%A",
            "%E0%A4",
            "%C3%28",
            "%80",
            "%C3",
            "%C3x",
            "%F8%88%80%80%80",
        ] {
            assert_eq!(find(&format!("ostro_session={bad}")), None, "{bad}");
        }
        assert_eq!(find("ostro_session=%25").as_deref(), Some("%"));
        assert_eq!(find("ostro_session=%2525").as_deref(), Some("%25"));
        assert_eq!(find("ostro_session=a%3Bb%3Dc").as_deref(), Some("a;b=c"));
        assert_eq!(find("ostro_session=%00").as_deref(), Some("\0"));
        assert_eq!(find("ostro_session=+").as_deref(), Some("+"));
    }

    #[test]
    fn a_4kb_header_is_read_wherever_the_cookie_sits() {
        let signed = encode(&sign_cookie(ID, KEY));
        let mut others = String::new();
        let mut n = 0;
        while others.len() < 4096 - signed.len() - 40 {
            others.push_str(&format!("tracker_{n}={}; ", "x".repeat(37)));
            n += 1;
        }
        let mid = others[2000..].find("; ").map_or(0, |p| 2000 + p + 2);
        for header in [
            format!("{others}{NAME}={signed}"),
            format!("{NAME}={signed}; {others}"),
            format!("{}{NAME}={signed}; {}", &others[..mid], &others[mid..]),
        ] {
            assert!(header.len() > 4000 && header.len() <= 4096 + 40);
            let expected = sign_cookie(ID, KEY);
            assert_eq!(find(&header).as_deref(), Some(expected.as_str()));
            assert_eq!(
                signed_session_id(&header, NAME, &[KEY]),
                Some(SignedId {
                    id: ID.to_owned(),
                    legacy: false
                })
            );
        }
    }

    #[test]
    fn non_ascii_characters_follow_javascript() {
        // Node decodes header bytes as latin1, so byte 0xE9 arrives as U+00E9.
        assert_eq!(
            find("ostro_session=caf\u{e9}").as_deref(),
            Some("caf\u{e9}")
        );
        assert_eq!(
            find("\u{e9}=1; ostro_session=\u{ff}\u{80}").as_deref(),
            Some("\u{ff}\u{80}")
        );
        assert_eq!(find_cookie("\u{e9}=1", "\u{e9}").as_deref(), Some("1"));
        // Byte 0xA0 is U+00A0, which JS's trim() removes; U+0085 (byte 0x85) it keeps.
        assert_eq!(
            find("\u{a0}ostro_session\u{a0}=\u{a0}v\u{a0}").as_deref(),
            Some("v")
        );
        assert_eq!(find("\u{85}ostro_session=v"), None);
        assert_eq!(find("ostro_session=v\u{85}").as_deref(), Some("v\u{85}"));
        assert_eq!(
            find("\u{feff}ostro_session=\u{3000}v\u{2028}").as_deref(),
            Some("v")
        );
        assert_eq!(
            find("\t\n\u{b}\u{c}\rostro_session=v").as_deref(),
            Some("v")
        );
        // Escapes decode as UTF-8; literal non-ASCII characters stay beside them.
        assert_eq!(find("ostro_session=%C3%A9").as_deref(), Some("\u{e9}"));
        assert_eq!(
            find("ostro_session=\u{e9}%C3%A9\u{e9}").as_deref(),
            Some("\u{e9}\u{e9}\u{e9}")
        );
        assert_eq!(find("ostro_session=%F0%9F%98%80").as_deref(), Some("😀"));
        assert_eq!(find("ostro_session=%E2%82%AC%41").as_deref(), Some("€A"));
        // What decodeURIComponent refuses: overlong forms, surrogates, past U+10FFFF, a
        // sequence cut by a literal character.
        for bad in [
            "%C0%AF",
            "%E0%80%AF",
            "%ED%A0%80",
            "%F4%90%80%80",
            "%C3\u{a9}",
            "%E2%82\u{ac}",
        ] {
            assert_eq!(find(&format!("ostro_session={bad}")), None, "{bad}");
        }
        // A signed cookie whose id is not ASCII is not an id.
        let header = format!("{NAME}={}", encode(&sign_cookie("caf\u{e9}", KEY)));
        assert_eq!(
            find(&header).as_deref(),
            Some(sign_cookie("caf\u{e9}", KEY).as_str())
        );
        assert_eq!(signed_session_id(&header, NAME, &[KEY]), None);
    }

    #[test]
    fn signatures_under_a_previous_key_verify() {
        let old = format!("a=1; {NAME}={}", encode(&sign_cookie(ID, OLD_KEY)));
        let current = SignedId {
            id: ID.to_owned(),
            legacy: false,
        };
        assert_eq!(
            signed_session_id(&old, NAME, &[KEY, OLD_KEY]),
            Some(current.clone())
        );
        assert_eq!(signed_session_id(&old, NAME, &[OLD_KEY]), Some(current));
        // Without the previous key, or with no usable key, it is just invalid.
        assert_eq!(signed_session_id(&old, NAME, &[KEY]), None);
        assert_eq!(signed_session_id(&old, NAME, &[""]), None);
        assert_eq!(signed_session_id::<&str>(&old, NAME, &[]), None);
        // The signature is base64 (`+`, `/`): sent percent-encoded, or raw, both verify.
        let signed = sign_cookie(ID, KEY);
        let raw = format!("{NAME}={signed}");
        assert_eq!(
            signed_session_id(&raw, NAME, &[KEY]).map(|s| s.id),
            Some(ID.to_owned())
        );
        // A 1.x id (base64url) is flagged for the move to a fresh id.
        let legacy_id = "Ab-_c1dE2fG3hI4jK5lM6nO7pQ8rS9tU0vWx-y_Z";
        let header = format!("{NAME}={}", encode(&sign_cookie(legacy_id, OLD_KEY)));
        assert_eq!(
            signed_session_id(&header, NAME, &[KEY, OLD_KEY]),
            Some(SignedId {
                id: legacy_id.to_owned(),
                legacy: true
            })
        );
    }

    #[test]
    fn unverifiable_cookies_give_no_id() {
        let signed = sign_cookie(ID, KEY);
        let tampered_sig = format!(
            "{}{}",
            &signed[..signed.len() - 2],
            if signed.ends_with("AA") { "BB" } else { "AA" }
        );
        let other_id = sign_cookie(ID, KEY).replacen("AbC", "ABC", 1);
        let path = sign_cookie("../../../../etc/passwd", KEY);
        let short = sign_cookie("short", KEY);
        for value in [
            tampered_sig.as_str(),
            other_id.as_str(),
            ID,
            &format!("s:{ID}"),
            &format!("{signed}x"),
            &signed[..signed.len() - 1],
            path.as_str(),
            short.as_str(),
            "",
            "s%3A%E0%A4%A",
        ] {
            let header = format!("{NAME}={}", encode(value));
            assert_eq!(signed_session_id(&header, NAME, &[KEY]), None, "{value}");
        }
        let good = format!("{NAME}={}", encode(&signed));
        assert_eq!(
            signed_session_id(&format!("{good}; {good}"), NAME, &[KEY]),
            None,
            "duplicate"
        );
        assert!(signed_session_id(&good, NAME, &[KEY]).is_some());
        assert_eq!(signed_session_id(&good, "other", &[KEY]), None);
    }

    #[test]
    fn a_256kb_adversarial_header_is_parsed_correctly() {
        const SIZE: usize = 256 * 1024;
        let signed = encode(&sign_cookie(ID, KEY));
        let target = format!("{NAME}={signed}");
        let expected = Some(sign_cookie(ID, KEY));
        let fill = |unit: &str| unit.repeat((SIZE - target.len()) / unit.len());
        // The shapes that made the JS parse quadratic (a search for `=` from every `;`), and
        // other separators in bulk: the cookie at the end, at the start, and absent.
        for unit in [
            ";", "=", ";=", "=;", " ; ", "a=", "a=b;", "\u{a0};", "%;", "\"=\";",
        ] {
            let body = fill(unit);
            let at_end = format!("{body}; {target}");
            assert!(at_end.len() >= SIZE - 16, "{unit}");
            assert_eq!(find(&at_end), expected, "{unit} (end)");
            assert_eq!(
                find(&format!("{target};{body}")),
                expected,
                "{unit} (start)"
            );
            assert_eq!(
                signed_session_id(&at_end, NAME, &[KEY]).map(|s| s.id),
                Some(ID.to_owned()),
                "{unit}"
            );
            assert_eq!(find(&body), None, "{unit} (absent)");
        }
        // `=`-heavy parts: a value made of thousands of `=` is still one value.
        let eqs = "=".repeat(SIZE);
        assert_eq!(find(&format!("{NAME}={eqs}")).map(|v| v.len()), Some(SIZE));
        assert_eq!(find(&format!("{eqs}; {target}")), expected);
        // Thousands of occurrences of the name without `=`, then the cookie once.
        let names = format!("{NAME};").repeat(SIZE / (NAME.len() + 1));
        assert_eq!(find(&format!("{names}{target}")), expected);
        // Thousands of duplicates: none.
        let dups = format!("{target};").repeat(SIZE / (target.len() + 1));
        assert_eq!(find(&dups), None);
        // A 256 KB value of escapes decodes in full.
        let escaped = "%41".repeat(SIZE / 3);
        assert_eq!(
            find(&format!("{NAME}={escaped}")).map(|v| v.len()),
            Some(SIZE / 3)
        );
    }
}
