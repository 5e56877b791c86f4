//! Stored payloads, as a handler returns them: `payload::decode`, `Reader::decode` with and
//! without a cipher (sealed under the current key, a previous key, or not at all), the 1.x key
//! mapping, the depth limit, and the lazy top-level map.
//!
//! Invariants beyond "no panic":
//! - every reader agrees with the plain decode on the attributes;
//! - decode → encode → decode gives the same attributes, is never "legacy" again, and encoding
//!   is then a fixed point (untouched values are copied verbatim);
//! - after reads and changes through dot paths, the encoded map decodes back to the same
//!   attributes when it is within the depth limit, and to nothing when it is not.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ostro_session_core::crypto::{Cipher, SEALED_PREFIX};
use ostro_session_core::lazy::TopMap;
use ostro_session_core::payload::{self, Decoded, Reader, MAX_DEPTH};
use ostro_session_fuzz::{ID, KEY, OLD_KEY};
use serde_json::{json, Value};
use std::sync::{Arc, LazyLock};

/// `SessionOptions::default().max_payload_bytes`.
const MAX_BYTES: usize = 1_048_576;

static ROTATED: LazyLock<Arc<Cipher>> =
    LazyLock::new(|| Arc::new(Cipher::new(&[KEY, OLD_KEY]).expect("static keys")));
static OLD: LazyLock<Cipher> = LazyLock::new(|| Cipher::new(&[OLD_KEY]).expect("static keys"));

fn reader(cipher: bool, accept_plaintext: bool) -> Reader {
    Reader {
        max_bytes: MAX_BYTES,
        cipher: cipher.then(|| Arc::clone(&ROTATED)),
        ad: ID.to_owned(),
        accept_plaintext,
    }
}

fn map(d: &Decoded) -> Value {
    Value::Object(d.attributes.to_map())
}

/// Bracket depth of JSON text, strings skipped (what the decoder limits).
fn depth(text: &str) -> usize {
    let (mut d, mut max, mut in_str, mut esc) = (0usize, 0usize, false, false);
    for b in text.bytes() {
        if in_str {
            if esc {
                esc = false;
            } else if b == b'\\' {
                esc = true;
            } else if b == b'"' {
                in_str = false;
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'{' | b'[' => {
                d += 1;
                max = max.max(d);
            }
            b'}' | b']' => d = d.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// Dot paths to existing values, built from keys without dots (a key with a dot cannot be
/// addressed below the top level).
fn paths(v: &Value, prefix: Option<&str>, out: &mut Vec<String>, level: usize) {
    if out.len() >= 32 || level > 6 {
        return;
    }
    let children: Vec<(String, &Value)> = match v {
        Value::Object(m) => m
            .iter()
            .filter(|(k, _)| !k.contains('.'))
            .map(|(k, c)| (k.clone(), c))
            .collect(),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .map(|(i, c)| (i.to_string(), c))
            .collect(),
        _ => return,
    };
    for (k, c) in children.into_iter().take(4) {
        // The top-level key "" is the path "", and its child `a` is ".a".
        let p = match prefix {
            None => k,
            Some(prefix) => format!("{prefix}.{k}"),
        };
        out.push(p.clone());
        paths(c, Some(&p), out, level + 1);
    }
}

/// The encoded form of `t` reads back as `t` within the depth limit, and as nothing beyond it.
fn check_round_trip(t: &TopMap, what: &str) {
    let enc = payload::encode(t);
    let back = payload::decode(&enc, usize::MAX);
    if depth(&enc) <= MAX_DEPTH {
        assert_eq!(
            Value::Object(back.attributes.to_map()),
            Value::Object(t.to_map()),
            "{what}: {enc}"
        );
        assert!(!back.legacy, "{what}: 1.x keys survived a decode: {enc}");
        assert_eq!(
            payload::encode(&back.attributes),
            enc,
            "{what}: not a fixed point"
        );
    } else {
        assert!(back.attributes.is_empty(), "{what}: too deep but decoded");
    }
}

fuzz_target!(|data: &[u8]| {
    let raw = String::from_utf8_lossy(data);
    let raw: &str = &raw;

    let plain = payload::decode(raw, MAX_BYTES);
    assert_eq!(plain.missing, raw.is_empty());
    if raw.len() > MAX_BYTES || depth(raw) > MAX_DEPTH {
        assert!(plain.attributes.is_empty());
    }
    let expected = map(&plain);

    // Without a cipher the reader is the plain decode.
    let r = reader(false, false).decode(raw);
    assert_eq!(map(&r), expected);
    assert_eq!((r.missing, r.legacy), (plain.missing, plain.legacy));

    // Sealed under the current key: the same, not stale. Under a previous key: stale.
    if !raw.is_empty() {
        let sealed = ROTATED.seal(raw.as_bytes(), ID.as_bytes()).expect("seal");
        let d = reader(true, false).decode(&sealed);
        assert_eq!(map(&d), expected);
        assert_eq!((d.missing, d.legacy), (false, plain.legacy));
        let stale = OLD.seal(raw.as_bytes(), ID.as_bytes()).expect("seal");
        let d = reader(true, false).decode(&stale);
        assert_eq!(map(&d), expected);
        assert!(d.legacy && !d.missing);
        // Moved to another session: no record.
        let moved = Reader {
            ad: "x".repeat(40),
            ..reader(true, false)
        }
        .decode(&sealed);
        assert!(moved.missing && moved.attributes.is_empty());
    }

    // The raw input given to a sealing reader: opened when it happens to be sealed (it never
    // is, short of forging a tag), else no record, or accepted as plaintext and marked stale.
    let strict = reader(true, false).decode(raw);
    let lenient = reader(true, true).decode(raw);
    if raw.is_empty() {
        assert!(strict.missing && lenient.missing);
    } else if raw.starts_with(SEALED_PREFIX) {
        assert!(strict.missing && strict.attributes.is_empty());
        assert!(lenient.missing && lenient.attributes.is_empty());
    } else {
        assert!(strict.missing && strict.attributes.is_empty());
        assert_eq!(map(&lenient), expected);
        assert!(lenient.legacy && !lenient.missing);
    }

    // decode → encode → decode.
    let mut t = plain.attributes;
    check_round_trip(&t, "decoded");

    // Reads and changes through dot paths, on the lazy map.
    let mut ps = Vec::new();
    paths(&expected, None, &mut ps, 0);
    for p in &ps {
        assert!(t.get(p).is_some(), "path {p} of {expected}");
        let _ = t.raw(p);
    }
    for (n, p) in ps.iter().enumerate() {
        match n % 4 {
            0 => {
                t.set(p, json!(n));
            }
            1 => {
                t.forget(p);
            }
            2 => {
                t.set(&format!("{p}.new"), json!({ "k": [n] }));
            }
            _ => {
                if let Some(v) = t.get_mut(p) {
                    *v = json!([]);
                }
            }
        }
    }
    check_round_trip(&t, "changed");
});
