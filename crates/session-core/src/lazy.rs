//! The top level of a session's attributes, decoded lazily. A stored payload is split into its
//! top-level keys, each kept as raw JSON text and parsed only when something reads or changes
//! it; saving copies untouched values verbatim. A request that changes two counters in a 1 KB
//! session then never parses or re-encodes the cart and user objects beside them.

use crate::attributes::{self, Attributes};
use indexmap::IndexMap;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::cell::OnceCell;

/// One top-level attribute.
#[derive(Debug, Clone)]
pub enum Slot {
    /// As stored: the raw JSON text, and its parsed form once something has read it.
    Raw(Box<RawValue>, OnceCell<Value>),
    /// Set or changed in this request.
    Value(Value),
}

fn parse(raw: &RawValue) -> Value {
    // `RawValue` only holds text that already parsed as JSON, within the depth limit.
    serde_json::from_str(raw.get()).unwrap_or(Value::Null)
}

impl Slot {
    /// The value, parsed on first use.
    pub fn value(&self) -> &Value {
        match self {
            Slot::Raw(raw, cell) => cell.get_or_init(|| parse(raw)),
            Slot::Value(v) => v,
        }
    }

    /// The value for changing; the raw text is dropped, since it no longer matches.
    pub fn value_mut(&mut self) -> &mut Value {
        if let Slot::Raw(raw, cell) = self {
            let v = cell.take().unwrap_or_else(|| parse(raw));
            *self = Slot::Value(v);
        }
        match self {
            Slot::Value(v) => v,
            // Just replaced above.
            Slot::Raw(..) => unreachable!("slot was materialised"),
        }
    }

    /// The value, owned.
    pub fn into_value(self) -> Value {
        match self {
            Slot::Raw(raw, cell) => cell.into_inner().unwrap_or_else(|| parse(&raw)),
            Slot::Value(v) => v,
        }
    }
}

/// The top-level attribute map of a session.
#[derive(Debug, Clone, Default)]
pub struct TopMap(IndexMap<String, Slot>);

impl TopMap {
    /// From a payload split at the top level.
    pub fn from_raw(raw: IndexMap<String, Box<RawValue>>) -> Self {
        Self(
            raw.into_iter()
                .map(|(k, v)| (k, Slot::Raw(v, OnceCell::new())))
                .collect(),
        )
    }

    /// Whether there are no attributes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Removes everything.
    pub fn clear(&mut self) {
        self.0.clear();
    }

    /// Whether `key` is a top-level key (no dot notation).
    pub fn contains_key(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    /// Sets a top-level key (no dot notation).
    pub fn insert(&mut self, key: String, value: Value) {
        self.0.insert(key, Slot::Value(value));
    }

    /// Moves every slot of `other` in, replacing keys present in both.
    pub fn extend(&mut self, other: TopMap) {
        self.0.extend(other.0);
    }

    /// Removes a top-level key (no dot notation), keeping the order of the others.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        self.0.shift_remove(key).map(Slot::into_value)
    }

    /// The top-level entries in order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Slot)> {
        self.0.iter()
    }

    /// The stored JSON text of a literal top-level key that nothing has changed.
    pub fn raw(&self, key: &str) -> Option<&str> {
        match self.0.get(key) {
            Some(Slot::Raw(raw, _)) => Some(raw.get()),
            _ => None,
        }
    }

    /// As [`attributes::get`]: the literal top-level key first, then the dot path.
    pub fn get(&self, key: &str) -> Option<&Value> {
        if let Some(slot) = self.0.get(key) {
            return Some(slot.value());
        }
        let (first, rest) = key.split_once('.')?;
        let mut cur = self.0.get(first)?.value();
        for seg in rest.split('.') {
            cur = attributes::child(cur, seg)?;
        }
        Some(cur)
    }

    /// Mutable access along the same rules as [`TopMap::get`].
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        if self.0.contains_key(key) {
            return self.0.get_mut(key).map(Slot::value_mut);
        }
        let (first, rest) = key.split_once('.')?;
        let mut cur = self.0.get_mut(first)?.value_mut();
        for seg in rest.split('.') {
            cur = attributes::child_mut(cur, seg)?;
        }
        Some(cur)
    }

    /// As [`attributes::set`]; returns whether anything changed.
    pub fn set(&mut self, key: &str, value: Value) -> bool {
        let segs: Vec<&str> = key.split('.').collect();
        let Some((first, rest)) = segs.split_first() else {
            return false;
        };
        if rest.is_empty() {
            if self.0.get(*first).is_some_and(|s| *s.value() == value) {
                return false;
            }
            self.0.insert((*first).to_owned(), Slot::Value(value));
            return true;
        }
        match self.0.get_mut(*first) {
            // Reading first keeps an unchanged value's raw text.
            Some(slot) if attributes::get_in(slot.value(), rest) == Some(&value) => false,
            Some(slot) => attributes::set_in_value(slot.value_mut(), rest, value),
            None => {
                let mut m = Map::new();
                attributes::set_in_map(&mut m, rest, value);
                self.0
                    .insert((*first).to_owned(), Slot::Value(Value::Object(m)));
                true
            }
        }
    }

    /// As [`attributes::forget`]: removes the literal key, else the leaf of the dot path.
    pub fn forget(&mut self, key: &str) -> Option<Value> {
        if self.0.contains_key(key) {
            return self.remove(key);
        }
        let (parent, leaf) = key.rsplit_once('.')?;
        // Look before changing, so a miss leaves the raw text intact.
        match self.get(parent)? {
            Value::Object(m) if m.contains_key(leaf) => {}
            Value::Array(a) if leaf.parse::<usize>().is_ok_and(|i| i < a.len()) => {}
            _ => return None,
        }
        match self.get_mut(parent)? {
            Value::Object(m) => m.shift_remove(leaf),
            Value::Array(a) => {
                let i = leaf.parse::<usize>().ok()?;
                (i < a.len()).then(|| a.remove(i))
            }
            _ => None,
        }
    }

    /// A plain copy of every attribute.
    pub fn to_map(&self) -> Attributes {
        self.0
            .iter()
            .map(|(k, s)| (k.clone(), s.value().clone()))
            .collect()
    }

    /// Appends `value` to a literal top-level key whose stored text is an array that nothing
    /// has read or changed, by editing the text: the array is neither parsed nor re-encoded
    /// (a cart pushed to on every request stays raw). Returns `false`, changing nothing, when
    /// the key is not such a slot; the caller then pushes onto the parsed value.
    pub fn push_raw(&mut self, key: &str, value: &Value) -> bool {
        let Some(Slot::Raw(raw, cell)) = self.0.get_mut(key) else {
            return false;
        };
        // A slot whose parsed form exists is read already: push onto that instead.
        if cell.get().is_some() {
            return false;
        }
        let text = raw.get().trim_end();
        let Some(body) = text.strip_suffix(']') else {
            return false;
        };
        if !body.trim_start().starts_with('[') {
            return false;
        }
        let Ok(item) = serde_json::to_string(value) else {
            return false;
        };
        let mut out = String::with_capacity(body.len() + item.len() + 2);
        out.push_str(body.trim_end());
        if !out.ends_with('[') {
            out.push(',');
        }
        out.push_str(&item);
        out.push(']');
        // The text is a valid array with one more element; the check cannot fail on it.
        match RawValue::from_string(out) {
            Ok(r) => {
                *raw = r;
                true
            }
            Err(_) => false,
        }
    }

    /// The JSON text of the whole map: untouched values are copied verbatim.
    pub fn encode(&self) -> String {
        let mut out: Vec<u8> = Vec::with_capacity(256);
        out.push(b'{');
        for (n, (k, slot)) in self.0.iter().enumerate() {
            if n > 0 {
                out.push(b',');
            }
            // Writing strings and JSON values into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut out, k);
            out.push(b':');
            match slot {
                Slot::Raw(raw, _) => out.extend_from_slice(raw.get().as_bytes()),
                Slot::Value(v) => {
                    let _ = serde_json::to_writer(&mut out, v);
                }
            }
        }
        out.push(b'}');
        String::from_utf8(out).unwrap_or_else(|_| String::from("{}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn top(text: &str) -> TopMap {
        TopMap::from_raw(serde_json::from_str(text).unwrap())
    }

    #[test]
    fn untouched_values_are_copied_verbatim() {
        let mut t = top(r#"{"a": {"x": [1, 2]}, "b": 1}"#);
        assert_eq!(t.get("a.x.1"), Some(&json!(2)));
        assert!(t.set("b", json!(2)));
        assert_eq!(t.raw("a"), Some(r#"{"x": [1, 2]}"#));
        assert_eq!(t.encode(), r#"{"a":{"x": [1, 2]},"b":2}"#);
    }

    #[test]
    fn unchanged_sets_and_missed_forgets_keep_raw_text() {
        let mut t = top(r#"{"a": {"x": 1}}"#);
        assert!(!t.set("a.x", json!(1)));
        assert_eq!(t.forget("a.nope"), None);
        assert!(t.raw("a").is_some());
        assert_eq!(t.forget("a.x"), Some(json!(1)));
        assert_eq!(t.raw("a"), None);
        assert_eq!(t.encode(), r#"{"a":{}}"#);
    }

    #[test]
    fn presence_answers_from_raw_text() {
        let mut s = crate::Session::new("n", None, crate::SessionOptions::default()).unwrap();
        s.load(r#"{"_token":"t","n": null ,"z":0,"o":{"a":null}}"#)
            .unwrap();
        assert!(!s.has(&["z", "o", "o.a"]));
        assert!(s.has(&["z", "o"]));
        assert!(!s.has(&["n"]));
        assert!(s.exists(&["n", "o.a"]));
        assert!(s.missing(&["n", "absent"]));
        assert!(
            s.get_raw("o").is_some(),
            "presence checks leave the raw text in place"
        );
    }

    #[test]
    fn push_onto_a_raw_array_edits_the_text() {
        let mut t = top(r#"{"a": [1, {"x": 2}] , "e": [ ], "s": "[x]", "o": {"k": []}}"#);
        assert!(t.push_raw("a", &json!({"y": [3]})));
        assert_eq!(t.raw("a"), Some(r#"[1, {"x": 2},{"y":[3]}]"#));
        assert_eq!(t.get("a.2.y.0"), Some(&json!(3)));
        assert!(t.push_raw("e", &json!("z")));
        assert_eq!(t.raw("e"), Some(r#"["z"]"#));
        assert!(!t.push_raw("s", &json!(1)), "a string is not an array");
        assert!(!t.push_raw("o", &json!(1)));
        assert!(!t.push_raw("o.k", &json!(1)), "only literal top-level keys");
        assert!(!t.push_raw("absent", &json!(1)));
        assert!(
            !t.push_raw("a", &json!(1)),
            "a slot read since is pushed onto as a value"
        );
        assert_eq!(
            t.encode(),
            r#"{"a":[1, {"x": 2},{"y":[3]}],"e":["z"],"s":"[x]","o":{"k": []}}"#
        );
    }

    #[test]
    fn same_rules_as_the_plain_map() {
        let mut t = top(r#"{"a.b": 1, "a": {"b": 2}, "s": "x", "l": [1, {"z": 1}]}"#);
        assert_eq!(t.get("a.b"), Some(&json!(1)));
        assert!(t.set("s.q", json!(1)));
        assert_eq!(t.get("s"), Some(&json!({"q": 1})));
        assert!(t.set("l.1.z", json!(2)));
        assert_eq!(t.get("l"), Some(&json!([1, {"z": 2}])));
        assert!(t.set("new.deep.key", json!(true)));
        assert_eq!(t.get("new"), Some(&json!({"deep": {"key": true}})));
        assert_eq!(t.forget("a.b"), Some(json!(1)));
        assert_eq!(t.get("a.b"), Some(&json!(2)));
    }
}
