//! The only place that knows the stored format: JSON text of the attribute map, with the keys
//! of `@ostro/session` 1.x (`__token`, `__flash.{__old,__new}`) mapped to Laravel's on read.

use crate::crypto::{self, Cipher};
use crate::lazy::TopMap;
use indexmap::IndexMap;
use serde_json::value::RawValue;
use serde_json::Value;
use std::sync::Arc;

/// Deepest nesting a stored payload may have; deeper payloads are treated as corrupt.
pub const MAX_DEPTH: usize = 64;

/// A payload decoded from storage.
#[derive(Debug, Default)]
pub struct Decoded {
    /// The attributes, empty for a missing or corrupt payload; parsed lazily per top-level key.
    pub attributes: TopMap,
    /// Whether the handler had nothing stored (`''`): a later `touch` would find no record.
    pub missing: bool,
    /// Whether 1.x keys were mapped, so the stored form is stale and must be rewritten.
    pub legacy: bool,
}

/// Decodes a stored payload. Never fails: anything that is not a JSON object within the size and
/// depth limits yields an empty map, exactly like a missing session.
pub fn decode(raw: &str, max_bytes: usize) -> Decoded {
    if raw.is_empty() {
        return Decoded {
            missing: true,
            ..Decoded::default()
        };
    }
    if raw.len() > max_bytes || !depth_within(raw.as_bytes(), MAX_DEPTH) {
        return Decoded::default();
    }
    // Split at the top level only; each value is parsed when the app first touches it.
    let Ok(split) = serde_json::from_str::<IndexMap<String, Box<RawValue>>>(raw) else {
        return Decoded::default();
    };
    let mut attributes = TopMap::from_raw(split);
    let legacy = map_legacy_keys(&mut attributes);
    Decoded {
        attributes,
        missing: false,
        legacy,
    }
}

/// How to decode what a handler returned for one session: the size limit and, when payloads are
/// sealed, the cipher and associated data. Detached from the session so that decoding can run
/// off the JS thread.
#[derive(Debug, Clone)]
pub struct Reader {
    /// Largest plaintext payload accepted.
    pub max_bytes: usize,
    /// Set when payloads are sealed at rest.
    pub cipher: Option<Arc<Cipher>>,
    /// Associated data of the seal: the session id.
    pub ad: String,
    /// With a cipher: accept an unsealed payload (and mark it for re-sealing) instead of
    /// reading it as no record.
    pub accept_plaintext: bool,
}

impl Reader {
    /// Decodes `raw`. With a cipher, a payload that does not open (tampered, moved to another
    /// id, sealed under an unknown key), and an unsealed one unless `accept_plaintext`, read as
    /// no record; a payload opened with a previous key or accepted as plaintext is marked stale
    /// so that the next save seals it under the current key.
    pub fn decode(&self, raw: &str) -> Decoded {
        let Some(cipher) = &self.cipher else {
            return decode(raw, self.max_bytes);
        };
        if raw.is_empty() {
            return decode(raw, self.max_bytes);
        }
        let no_record = || Decoded {
            missing: true,
            ..Decoded::default()
        };
        if crypto::is_sealed(raw) {
            return match cipher.open_str(raw, self.ad.as_bytes()) {
                Some((plain, stale_key)) if !plain.is_empty() => {
                    let mut d = decode(&plain, self.max_bytes);
                    d.legacy |= stale_key;
                    d
                }
                _ => no_record(),
            };
        }
        if self.accept_plaintext {
            let mut d = decode(raw, self.max_bytes);
            d.legacy = true;
            return d;
        }
        no_record()
    }
}

/// Encodes attributes for storage.
pub fn encode(attributes: &TopMap) -> String {
    attributes.encode()
}

/// Whether `v` nests at most `max` containers deep (a scalar is 0, `[]` is 1). Iterative, so a
/// value of any depth is measured without recursion.
pub fn value_depth_within(v: &Value, max: usize) -> bool {
    let mut stack: Vec<(&Value, usize)> = vec![(v, 0)];
    while let Some((v, above)) = stack.pop() {
        let children: Box<dyn Iterator<Item = &Value>> = match v {
            Value::Array(a) => Box::new(a.iter()),
            Value::Object(m) => Box::new(m.values()),
            _ => continue,
        };
        let depth = above + 1;
        if depth > max {
            return false;
        }
        stack.extend(children.map(|c| (c, depth)));
    }
    true
}

/// For JSON text arriving from JS: `None` when its brackets nest at most `max` deep, else
/// `Some(key)`, the top-level key under which the limit was crossed (`None` inside when the text
/// is not an object). Scans without parsing, so text of any depth is refused before serde's
/// recursion limit turns it into an error that names no key.
pub fn too_deep(text: &str, max: usize) -> Option<Option<String>> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut in_str = false;
    let mut escaped = false;
    let mut str_start = 0usize;
    let mut last_key: Option<(usize, usize)> = None;
    let mut pending: Option<(usize, usize)> = None;
    for (i, &b) in bytes.iter().enumerate() {
        if in_str {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_str = false;
                if depth == 1 {
                    pending = Some((str_start, i + 1));
                }
            }
            continue;
        }
        match b {
            b'"' => {
                in_str = true;
                str_start = i;
            }
            b':' if depth == 1 => last_key = pending.take(),
            b'{' | b'[' => {
                depth += 1;
                if depth > max {
                    let key = last_key
                        .filter(|_| bytes.first() == Some(&b'{'))
                        .and_then(|(a, z)| serde_json::from_str::<String>(&text[a..z]).ok());
                    return Some(key);
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            b if b.is_ascii_whitespace() => {}
            _ => pending = None,
        }
    }
    None
}

/// Scans JSON text for bracket depth without parsing it, so that a hostile payload is refused
/// before serde's recursion ever sees it.
fn depth_within(bytes: &[u8], max: usize) -> bool {
    let mut depth = 0usize;
    let mut in_str = false;
    let mut escaped = false;
    for &b in bytes {
        if in_str {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_str = false;
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > max {
                    return false;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    true
}

fn map_legacy_keys(attrs: &mut TopMap) -> bool {
    let mut legacy = false;
    if let Some(token) = attrs.remove("__token") {
        legacy = true;
        if attrs.get("_token").is_none_or(Value::is_null) {
            attrs.insert("_token".to_owned(), token);
        }
    }
    if let Some(flash) = attrs.remove("__flash") {
        legacy = true;
        if !attrs.contains_key("_flash") {
            let mut f = serde_json::Map::new();
            let pick = |k: &str| match flash.get(k) {
                Some(Value::Array(a)) => Value::Array(a.clone()),
                _ => Value::Array(Vec::new()),
            };
            f.insert("old".to_owned(), pick("__old"));
            f.insert("new".to_owned(), pick("__new"));
            attrs.insert("_flash".to_owned(), Value::Object(f));
        }
    }
    legacy
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn corrupt_and_odd_payloads_are_empty() {
        for raw in ["{", "[1,2]", "3", "null", "\"x\"", "{\"a\":1}}", "\u{0}"] {
            let d = decode(raw, 1 << 20);
            assert!(d.attributes.is_empty(), "{raw}");
            assert!(!d.missing);
        }
        assert!(decode("", 10).missing);
        assert!(decode("{\"a\":\"0123456789\"}", 10).attributes.is_empty());
    }

    #[test]
    fn depth_limit_is_64() {
        let ok = format!("{}{}", "{\"a\":".repeat(63) + "{", "}".repeat(64));
        assert_eq!(decode(&ok, 1 << 20).attributes.to_map().len(), 1);
        let deep = format!("{}{}", "{\"a\":".repeat(64) + "{", "}".repeat(65));
        assert!(decode(&deep, 1 << 20).attributes.is_empty());
        // Brackets inside strings do not count.
        let s = format!("{{\"a\":\"{}\"}}", "[".repeat(100));
        assert_eq!(decode(&s, 1 << 20).attributes.to_map().len(), 1);
    }

    #[test]
    fn depth_of_values_and_texts() {
        let mut v = json!(1);
        for _ in 0..20_000 {
            v = Value::Array(vec![v]);
        }
        assert!(!value_depth_within(&v, 64));
        assert!(value_depth_within(&json!({"a": [1]}), 2));
        assert!(!value_depth_within(&json!({"a": [1]}), 1));
        assert!(value_depth_within(&json!(1), 0));
        // Leak rather than drop: serde_json drops nested values recursively.
        std::mem::forget(v);

        let deep = format!("{}{}", "[".repeat(20_000), "]".repeat(20_000));
        assert_eq!(too_deep(&deep, 64), Some(None));
        let obj = format!(
            r#"{{"ok":[1],"bad\"key":{}{}}}"#,
            "[".repeat(70),
            "]".repeat(70)
        );
        assert_eq!(too_deep(&obj, 64), Some(Some("bad\"key".into())));
        assert_eq!(too_deep(r#"{"a":"[[[[[["}"#, 2), None);
        assert_eq!(too_deep("[[1]]", 2), None);
    }

    #[test]
    fn legacy_keys_are_mapped() {
        let d = decode(
            r#"{"__token":"t","__flash":{"__old":["a"],"__new":["b"]},"x":1}"#,
            1 << 20,
        );
        assert!(d.legacy);
        assert_eq!(
            Value::Object(d.attributes.to_map()),
            json!({"x":1,"_token":"t","_flash":{"old":["a"],"new":["b"]}})
        );
    }
}
