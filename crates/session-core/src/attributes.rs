//! Dot-notation access over an insertion-ordered JSON map, with the rules of Laravel's `Arr`:
//! a literal top-level key wins on read, `set` replaces scalars in the way with objects, and
//! `forget` leaves parent containers in place.

use serde_json::{Map, Value};

/// The attribute map of a session.
pub type Attributes = Map<String, Value>;

pub(crate) fn child<'a>(v: &'a Value, seg: &str) -> Option<&'a Value> {
    match v {
        Value::Object(m) => m.get(seg),
        Value::Array(a) => seg.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => None,
    }
}

pub(crate) fn child_mut<'a>(v: &'a mut Value, seg: &str) -> Option<&'a mut Value> {
    match v {
        Value::Object(m) => m.get_mut(seg),
        Value::Array(a) => seg.parse::<usize>().ok().and_then(|i| a.get_mut(i)),
        _ => None,
    }
}

/// The value at the path `segs` below `v`.
pub(crate) fn get_in<'a>(v: &'a Value, segs: &[&str]) -> Option<&'a Value> {
    let mut cur = v;
    for seg in segs {
        cur = child(cur, seg)?;
    }
    Some(cur)
}

/// The value at `key`: the literal top-level key first, then the dot path. A stored `null` is
/// `Some(&Value::Null)`; an absent key is `None`.
pub fn get<'a>(map: &'a Attributes, key: &str) -> Option<&'a Value> {
    if let Some(v) = map.get(key) {
        return Some(v);
    }
    let mut segs = key.split('.');
    let first = segs.next()?;
    if first.len() == key.len() {
        return None;
    }
    let mut cur = map.get(first)?;
    for seg in segs {
        cur = child(cur, seg)?;
    }
    Some(cur)
}

/// Mutable access along the same rules as [`get`].
pub fn get_mut<'a>(map: &'a mut Attributes, key: &str) -> Option<&'a mut Value> {
    if map.contains_key(key) {
        return map.get_mut(key);
    }
    let mut segs = key.split('.');
    let first = segs.next()?;
    if first.len() == key.len() {
        return None;
    }
    let mut cur = map.get_mut(first)?;
    for seg in segs {
        cur = child_mut(cur, seg)?;
    }
    Some(cur)
}

/// Sets `key` (dot path) to `value`, creating objects on the way and replacing anything that is
/// not a container. Arrays are walked by an in-range index. Returns whether the map changed.
pub fn set(map: &mut Attributes, key: &str, value: Value) -> bool {
    let segs: Vec<&str> = key.split('.').collect();
    set_in_map(map, &segs, value)
}

pub(crate) fn set_in_map(map: &mut Attributes, segs: &[&str], value: Value) -> bool {
    let Some((first, rest)) = segs.split_first() else {
        return false;
    };
    if rest.is_empty() {
        return match map.get_mut(*first) {
            Some(old) if *old == value => false,
            Some(old) => {
                *old = value;
                true
            }
            None => {
                map.insert((*first).to_owned(), value);
                true
            }
        };
    }
    match map.get_mut(*first) {
        Some(slot) => set_in_value(slot, rest, value),
        None => {
            let mut m = Map::new();
            set_in_map(&mut m, rest, value);
            map.insert((*first).to_owned(), Value::Object(m));
            true
        }
    }
}

pub(crate) fn set_in_value(slot: &mut Value, segs: &[&str], value: Value) -> bool {
    match slot {
        Value::Object(m) => return set_in_map(m, segs, value),
        Value::Array(a) => {
            if let Some(i) = segs.first().and_then(|s| s.parse::<usize>().ok()) {
                if let Some(item) = a.get_mut(i) {
                    if segs.len() == 1 {
                        if *item == value {
                            return false;
                        }
                        *item = value;
                        return true;
                    }
                    return set_in_value(item, &segs[1..], value);
                }
            }
        }
        _ => {}
    }
    let mut m = Map::new();
    set_in_map(&mut m, segs, value);
    *slot = Value::Object(m);
    true
}

/// Removes `key`: the literal top-level key if present, else the leaf of the dot path. Parents
/// stay. Returns the removed value.
pub fn forget(map: &mut Attributes, key: &str) -> Option<Value> {
    if map.contains_key(key) {
        return map.shift_remove(key);
    }
    let (parent, leaf) = key.rsplit_once('.')?;
    match get_mut(map, parent)? {
        Value::Object(m) => m.shift_remove(leaf),
        Value::Array(a) => {
            let i = leaf.parse::<usize>().ok()?;
            (i < a.len()).then(|| a.remove(i))
        }
        _ => None,
    }
}

/// Deep merge as OstroJS 1.x did it: objects merge key by key, arrays concatenate, anything else
/// is replaced by the incoming value.
pub fn merge_values(target: &mut Value, incoming: Value) {
    match (target, incoming) {
        (Value::Object(t), Value::Object(i)) => {
            for (k, v) in i {
                match t.get_mut(&k) {
                    Some(existing) => merge_values(existing, v),
                    None => {
                        t.insert(k, v);
                    }
                }
            }
        }
        (Value::Array(t), Value::Array(i)) => t.extend(i),
        (t, i) => *t = i,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Attributes {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn literal_key_wins_over_path() {
        let m = map(json!({"a.b": 1, "a": {"b": 2}}));
        assert_eq!(get(&m, "a.b"), Some(&json!(1)));
    }

    #[test]
    fn paths_through_scalars_and_nulls_are_absent() {
        let m = map(json!({"a": "x", "n": null, "l": [10, {"z": 1}]}));
        assert_eq!(get(&m, "a.b"), None);
        assert_eq!(get(&m, "n.b"), None);
        assert_eq!(get(&m, "n"), Some(&Value::Null));
        assert_eq!(get(&m, "l.1.z"), Some(&json!(1)));
        assert_eq!(get(&m, "l.5"), None);
    }

    #[test]
    fn set_replaces_scalars_and_creates_nesting() {
        let mut m = map(json!({"a": "x"}));
        assert!(set(&mut m, "a.b.c", json!(1)));
        assert_eq!(Value::Object(m.clone()), json!({"a": {"b": {"c": 1}}}));
        assert!(!set(&mut m, "a.b.c", json!(1)));
        assert!(set(&mut m, "n.x", json!(true)));
        assert_eq!(get(&m, "n.x"), Some(&json!(true)));
    }

    #[test]
    fn set_walks_arrays_by_index() {
        let mut m = map(json!({"l": [1, {"a": 1}]}));
        assert!(set(&mut m, "l.1.a", json!(2)));
        assert!(set(&mut m, "l.0", json!(9)));
        assert_eq!(Value::Object(m.clone()), json!({"l": [9, {"a": 2}]}));
        assert!(set(&mut m, "l.7.q", json!(1)));
        assert_eq!(Value::Object(m), json!({"l": {"7": {"q": 1}}}));
    }

    #[test]
    fn forget_leaves_parents() {
        let mut m = map(json!({"a": {"b": 1}, "x.y": 2}));
        assert_eq!(forget(&mut m, "a.b"), Some(json!(1)));
        assert_eq!(forget(&mut m, "x.y"), Some(json!(2)));
        assert_eq!(forget(&mut m, "nope.z"), None);
        assert_eq!(Value::Object(m), json!({"a": {}}));
    }

    #[test]
    fn merge_concatenates_arrays_and_deep_merges() {
        let mut t = json!({"a": [1], "o": {"x": 1, "y": {"z": 1}}, "s": 1});
        merge_values(&mut t, json!({"a": [2], "o": {"y": {"w": 2}}, "s": "two"}));
        assert_eq!(
            t,
            json!({"a": [1, 2], "o": {"x": 1, "y": {"z": 1, "w": 2}}, "s": "two"})
        );
    }
}
