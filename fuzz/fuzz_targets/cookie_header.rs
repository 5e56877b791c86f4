//! The `Cookie` header parser and cookie signatures: `cookie_header::find_cookie`,
//! `cookie_header::signed_session_id`, `crypto::sign_cookie` / `unsign_cookie`.
//!
//! The input is read twice: as Node sees header bytes (latin1, one character per byte) and,
//! when it is UTF-8, as a string from JS. Invariants beyond "no panic":
//! - `find_cookie` gives exactly what `readCookie` in lib/cookies.js gives, checked against a
//!   line-by-line transcription of it (the quadratic `indexOf` loop, `decodeURIComponent` as the
//!   ECMAScript spec words it over UTF-16 code units);
//! - a value found without escapes is a slice of the header;
//! - a value written as the `Set-Cookie` line writes it (`encodeURIComponent`) reads back;
//! - a value signed with a key unsigns with that key among others, and not without it; an input
//!   that unsigns is exactly a signature under one of the keys;
//! - a signed id appended to any header is found unless the header already names the cookie.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ostro_session_core::cookie_header::{find_cookie, signed_session_id, SignedId};
use ostro_session_core::crypto::{sign_cookie, unsign_cookie};
use ostro_session_fuzz::{encode_uri_component, id_from, KEY, NAME, OLD_KEY};
use std::borrow::Cow;

// ----- readCookie, transcribed ---------------------------------------------------------------

/// `String.prototype.trim`: WhiteSpace and LineTerminator code points (ECMA-262 §12.2, §12.3).
fn js_trim(s: &str) -> &str {
    const WS: &[u32] = &[
        0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0xA0, 0x1680, 0x2000, 0x2001, 0x2002, 0x2003, 0x2004,
        0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000,
        0xFEFF,
    ];
    s.trim_matches(|c: char| WS.contains(&u32::from(c)))
}

fn hex_unit(u: u16) -> Option<u8> {
    let c = char::from_u32(u32::from(u))?;
    c.to_digit(16).and_then(|d| u8::try_from(d).ok())
}

/// ECMA-262 `Decode(string, "")` (decodeURIComponent), over UTF-16 code units.
fn decode_uri_component(s: &str) -> Option<String> {
    let u: Vec<u16> = s.encode_utf16().collect();
    let len = u.len();
    let byte_at = |k: usize| -> Option<u8> { Some(hex_unit(u[k + 1])? << 4 | hex_unit(u[k + 2])?) };
    let mut out: Vec<u16> = Vec::new();
    let mut k = 0;
    while k < len {
        if u[k] != u16::from(b'%') {
            out.push(u[k]);
        } else {
            if k + 2 >= len {
                return None;
            }
            let b = byte_at(k)?;
            k += 2;
            let n = b.leading_ones() as usize;
            if n == 0 {
                out.push(u16::from(b));
            } else {
                if n == 1 || n > 4 {
                    return None;
                }
                let mut octets = vec![b];
                if k + 3 * (n - 1) >= len {
                    return None;
                }
                for _ in 1..n {
                    k += 1;
                    if u[k] != u16::from(b'%') {
                        return None;
                    }
                    octets.push(byte_at(k)?);
                    k += 2;
                }
                let c = std::str::from_utf8(&octets).ok()?;
                out.extend(c.encode_utf16());
            }
        }
        k += 1;
    }
    String::from_utf16(&out).ok()
}

/// `readCookie(header, name)` of lib/cookies.js, statement by statement. Also returns how many
/// parts named `name` it saw before stopping.
fn read_cookie(header: &str, name: &str) -> (usize, Option<String>) {
    if header.is_empty() {
        return (0, None);
    }
    let mut seen = 0;
    let mut found: Option<&str> = None;
    let mut start = 0;
    let len = header.len();
    // `;` and `=` are ASCII, so byte offsets split where JS's UTF-16 offsets do.
    while start < len {
        let end = header[start..].find(';').map_or(len, |i| start + i);
        let eq = header[start..].find('=').map(|i| start + i);
        if let Some(eq) = eq {
            if eq < end && js_trim(&header[start..eq]) == name {
                seen += 1;
                if found.is_some() {
                    return (seen, None);
                }
                found = Some(js_trim(&header[eq + 1..end]));
            }
        }
        start = end + 1;
    }
    let Some(mut found) = found else {
        return (seen, None);
    };
    let units: Vec<u16> = found.encode_utf16().collect();
    if units.len() >= 2 && units[0] == 34 && units[units.len() - 1] == 34 {
        found = &found[1..found.len() - 1];
    }
    if !found.contains('%') {
        return (seen, Some(found.to_owned()));
    }
    (seen, decode_uri_component(found))
}

// ----- checks --------------------------------------------------------------------------------

fn check_find(header: &str, name: &str) {
    let got = find_cookie(header, name);
    let (_, expected) = read_cookie(header, name);
    assert_eq!(
        got.as_deref(),
        expected.as_deref(),
        "find_cookie({header:?}, {name:?})"
    );
    if let Some(Cow::Borrowed(v)) = got {
        let range = header.as_bytes().as_ptr_range();
        let start = v.as_ptr();
        assert!(
            range.start <= start && start.wrapping_add(v.len()) <= range.end,
            "a borrowed value lies outside the header"
        );
        assert!(!v.contains('%'));
    }
}

fn check(header: &str, data: &[u8]) {
    // The session cookie, the empty name, and the names the header itself uses.
    check_find(header, NAME);
    check_find(header, "");
    for part in header.split(';').take(3) {
        if let Some((n, _)) = part.split_once('=') {
            check_find(header, js_trim(n));
            check_find(header, n);
        }
    }

    // What the Set-Cookie line writes reads back.
    let written = format!("{NAME}={}", encode_uri_component(header));
    assert_eq!(
        find_cookie(&written, NAME).as_deref(),
        Some(header),
        "{written:?}"
    );

    // Signatures: round trip, rotation, and no forgery.
    let signed = sign_cookie(header, OLD_KEY);
    assert_eq!(unsign_cookie(&signed, &[KEY, OLD_KEY]), Some(header));
    assert_eq!(unsign_cookie(&signed, &[KEY]), None);
    if let Some(v) = unsign_cookie(header, &[KEY, OLD_KEY]) {
        assert!(header == sign_cookie(v, KEY) || header == sign_cookie(v, OLD_KEY));
    }
    let _ = signed_session_id(header, NAME, &[KEY, OLD_KEY]);

    // A signed id appended to the header: found unless the header names the cookie already.
    let legacy = data.first().is_some_and(|b| b & 1 == 1);
    let key = if data.last().is_some_and(|b| b & 1 == 1) {
        KEY
    } else {
        OLD_KEY
    };
    let id = id_from(data, legacy);
    let cookie = encode_uri_component(&sign_cookie(&id, key));
    let full = format!("{header}; {NAME}={cookie}");
    let (seen, _) = read_cookie(header, NAME);
    let expected = (seen == 0).then(|| SignedId {
        id: id.clone(),
        legacy,
    });
    assert_eq!(signed_session_id(&full, NAME, &[KEY, OLD_KEY]), expected);
    assert_eq!(signed_session_id(&full, NAME, &["another key"]), None);
}

fuzz_target!(|data: &[u8]| {
    // As Node hands `req.headers.cookie` to JS: latin1, one character per byte.
    let latin1: String = data.iter().map(|&b| char::from(b)).collect();
    check(&latin1, data);
    // As any JS string (e.g. a header passed to loadSession by hand).
    if let Ok(s) = std::str::from_utf8(data) {
        if s != latin1 {
            check(s, data);
        }
    }
});
