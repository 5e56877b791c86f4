//! What a request did to its session, kept as operations. When a save finds that the stored
//! record is no longer the one the request loaded (a concurrent request saved in between), the
//! engine replays these operations on the latest record instead of overwriting it with a stale
//! copy: last-writer-wins would silently drop the other request's changes.
//!
//! Merge rules, per operation, when replayed on a record changed by someone else:
//! - `put`/`forget` on a dot path: this request's value wins for that path only;
//! - `increment`/`decrement`: an addition to whatever the record holds then (+1 and +1 give +2);
//! - `push`: an append to whatever list the record holds then;
//! - `flush`: empties the record as it is then (the later writer's keys included), keeping its
//!   lifecycle keys;
//! - lifecycle stamps (`_created`, `_id_at`, see [`crate::lifecycle`]): the ones made at load
//!   for a record without them are set only where still absent, so a concurrent request never
//!   resets the creation time another request stamped; a new id's issue time (`migrate`) and a
//!   new lifecycle (`invalidate`) are set as this request made them;
//! - flash ageing: forgets only the old flash keys this request saw, and moves only the new flash
//!   keys it saw to old, so a flash written concurrently survives to the next request;
//! - `setUser`: this request's link wins (see [`crate::users`]).

use crate::error::Result;
use crate::session::Session;
use serde_json::Value;

/// One change a request made, in the order it made them.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// `put(key, value)` (dot-aware).
    Put(String, Value),
    /// `forget(key)` / `pull(key)` (dot-aware).
    Forget(String),
    /// `increment(key, by)`; `decrement` adds a negative number.
    Add(String, f64),
    /// `push(key, value)`.
    Push(String, Value),
    /// `merge(key, value)`: objects merge, arrays concatenate.
    Merge(String, Value),
    /// `flush()`.
    Flush,
    /// `flash(key, value)`.
    Flash(String, Value),
    /// `now(key, value)`.
    Now(String, Value),
    /// `reflash()`.
    Reflash,
    /// `keep(keys)`.
    Keep(Vec<String>),
    /// `flashOnly(keys)`.
    FlashOnly(Vec<String>),
    /// `flashExcept(keys)`.
    FlashExcept(Vec<String>),
    /// Flash ageing as this request saw the flash lists when it aged them.
    Age {
        /// The old flash keys it saw: forgotten, unless flashed again concurrently.
        old: Vec<String>,
        /// The new flash keys it saw: moved to old.
        new: Vec<String>,
    },
    /// The token made at `start()` for a record without one: set only if the record still has
    /// none, so a concurrent request's token is not replaced.
    TokenIfAbsent(String),
    /// The lifecycle stamps made at `start()` for a record without them (unix seconds): each
    /// set only if the record still has none.
    StampIfAbsent(i64),
    /// `migrate`: the new id's issue time (unix seconds).
    IdIssued(i64),
    /// A session with no app data moved to a new id (`invalidate`): both stamps set to this
    /// time (unix seconds).
    Restart(i64),
    /// `setUser(user)`: the session's link to a user (`None` unlinks), see [`crate::users`].
    SetUser(Option<String>),
}

const FLASH_NEW: &str = "_flash.new";
const FLASH_OLD: &str = "_flash.old";

/// Ages flash data as [`Op::Age`] describes, on whatever `s` holds now.
pub(crate) fn age_seen(s: &mut Session, old: &[String], new: &[String]) -> Result<()> {
    let cur_new = s.list(FLASH_NEW);
    // An old key flashed again by someone else is new there now: it must survive.
    for k in old.iter().filter(|k| !cur_new.contains(k)) {
        s.forget(k);
    }
    let mut cur_old: Vec<String> = s
        .list(FLASH_OLD)
        .into_iter()
        .filter(|k| !old.contains(k))
        .collect();
    let rest_new: Vec<String> = cur_new.into_iter().filter(|k| !new.contains(k)).collect();
    for k in new {
        if !cur_old.contains(k) {
            cur_old.push(k.clone());
        }
    }
    s.set_list(FLASH_OLD, cur_old);
    s.set_list(FLASH_NEW, rest_new);
    Ok(())
}

/// Replays `ops` on `s` (a session freshly loaded from the latest record), in order.
///
/// # Errors
/// The same value errors the original calls could give (say, `push` onto what is now a string
/// because another request stored one there): the caller reports a conflict it cannot merge.
pub fn replay(s: &mut Session, ops: &[Op]) -> Result<()> {
    for op in ops {
        match op {
            Op::Put(k, v) => s.put(k, v.clone())?,
            Op::Forget(k) => {
                s.forget(k);
            }
            Op::Add(k, by) => {
                s.increment(k, *by)?;
            }
            Op::Push(k, v) => s.push(k, v.clone())?,
            Op::Merge(k, v) => s.merge(k, v.clone())?,
            Op::Flush => s.flush(),
            Op::Flash(k, v) => s.flash(k, v.clone())?,
            Op::Now(k, v) => s.now(k, v.clone())?,
            Op::Reflash => s.reflash(),
            Op::Keep(keys) => s.keep(keys),
            Op::FlashOnly(keys) => s.flash_only(keys),
            Op::FlashExcept(keys) => s.flash_except(keys),
            Op::Age { old, new } => s.logged(op.clone(), |s| age_seen(s, old, new))?,
            Op::StampIfAbsent(_) | Op::IdIssued(_) | Op::Restart(_) => s.write_stamps(op),
            Op::SetUser(u) => s.set_user(u.as_deref())?,
            Op::TokenIfAbsent(t) => s.logged(op.clone(), |s| {
                if s.token().is_none() {
                    s.put("_token", Value::String(t.clone()))?;
                }
                Ok(())
            })?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SessionOptions;
    use serde_json::json;

    fn loaded(payload: &str) -> Session {
        let mut s = Session::new("n", None, SessionOptions::default()).unwrap();
        s.load(payload).unwrap();
        s
    }

    #[test]
    fn additions_and_appends_merge() {
        let mut latest = loaded(r#"{"_token":"t","visits":5,"cart":["a","b"],"x":1}"#);
        replay(
            &mut latest,
            &[
                Op::Add("visits".into(), 1.0),
                Op::Push("cart".into(), json!("c")),
                Op::Put("y".into(), json!(2)),
            ],
        )
        .unwrap();
        assert_eq!(latest.get("visits"), Some(&json!(6)));
        assert_eq!(latest.get("cart"), Some(&json!(["a", "b", "c"])));
        assert_eq!(
            latest.get("x"),
            Some(&json!(1)),
            "the other writer's key stays"
        );
        assert_eq!(latest.get("y"), Some(&json!(2)));
    }

    #[test]
    fn same_path_put_wins_for_that_path_only() {
        let mut latest = loaded(r#"{"_token":"t","user":{"name":"B","lang":"fr"}}"#);
        replay(&mut latest, &[Op::Put("user.name".into(), json!("A"))]).unwrap();
        assert_eq!(latest.get("user"), Some(&json!({"name":"A","lang":"fr"})));
    }

    #[test]
    fn ageing_keeps_a_concurrent_flash() {
        // This request saw old ["gone"] and new ["mine"]; meanwhile another request flashed "theirs".
        let mut latest = loaded(
            r#"{"_token":"t","gone":1,"mine":2,"theirs":3,"_flash":{"old":["gone"],"new":["mine","theirs"]}}"#,
        );
        replay(
            &mut latest,
            &[Op::Age {
                old: vec!["gone".into()],
                new: vec!["mine".into()],
            }],
        )
        .unwrap();
        assert_eq!(latest.get("gone"), None);
        assert_eq!(latest.get("theirs"), Some(&json!(3)));
        assert_eq!(latest.get("_flash.new"), Some(&json!(["theirs"])));
        assert_eq!(latest.get("_flash.old"), Some(&json!(["mine"])));
    }

    #[test]
    fn ageing_keeps_an_old_key_flashed_again_elsewhere() {
        let mut latest = loaded(r#"{"_token":"t","k":"again","_flash":{"old":[],"new":["k"]}}"#);
        replay(
            &mut latest,
            &[Op::Age {
                old: vec!["k".into()],
                new: vec![],
            }],
        )
        .unwrap();
        assert_eq!(latest.get("k"), Some(&json!("again")));
        assert_eq!(latest.get("_flash.new"), Some(&json!(["k"])));
    }

    #[test]
    fn a_token_is_never_replaced_by_replay() {
        let mut latest = loaded(r#"{"_token":"theirs"}"#);
        replay(&mut latest, &[Op::TokenIfAbsent("mine".into())]).unwrap();
        assert_eq!(latest.token(), Some("theirs"));
        let mut none = loaded(r#"{"a":1}"#);
        none.forget("_token");
        replay(&mut none, &[Op::TokenIfAbsent("mine".into())]).unwrap();
        assert_eq!(none.token(), Some("mine"));
    }

    // Two requests load the same record; A saves first, then B finds A's record and rebases.
    #[test]
    fn a_rebased_session_keeps_both_requests_changes() {
        let stored = r#"{"_token":"t","visits":1,"cart":["a"],"_flash":{"old":[],"new":["note"]},"note":"hi"}"#;
        let mut a = loaded(stored);
        let mut b = loaded(stored);
        a.increment("visits", 1.0).unwrap();
        a.push("cart", json!("from-a")).unwrap();
        a.put("only_a", json!(true)).unwrap();
        a.flash("status", json!("saved by a")).unwrap();
        let _ = a.prepare_save(false).unwrap();
        let a_payload = a.payload().unwrap();

        b.increment("visits", 1.0).unwrap();
        b.push("cart", json!("from-b")).unwrap();
        b.put("only_b", json!(true)).unwrap();
        let _ = b.prepare_save(false).unwrap();
        assert!(b.rebase(&a_payload).unwrap());
        assert_eq!(b.get("visits"), Some(&json!(3)));
        assert_eq!(b.get("cart"), Some(&json!(["a", "from-a", "from-b"])));
        assert_eq!(b.get("only_a"), Some(&json!(true)));
        assert_eq!(b.get("only_b"), Some(&json!(true)));
        // A's flash sits in A's record as old (A aged it, for the next request to read); B
        // never saw it, so B's ageing must not forget it: the next request still sees it.
        assert_eq!(b.get("status"), Some(&json!("saved by a")));
        assert_eq!(b.get("_flash.old"), Some(&json!(["note", "status"])));
        assert_eq!(b.get("_flash.new"), Some(&json!([])));

        // A second conflict replays the same log, not its expansion.
        let log = b.ops().to_vec();
        assert!(b.rebase(&a_payload).unwrap());
        assert_eq!(b.ops(), &log[..]);
        assert_eq!(b.get("visits"), Some(&json!(3)));
    }

    #[test]
    fn a_record_that_is_gone_is_not_rebased_onto() {
        let mut s = loaded(r#"{"_token":"t","a":1}"#);
        s.put("b", json!(2)).unwrap();
        assert!(!s.rebase("").unwrap());
        assert_eq!(s.get("a"), Some(&json!(1)), "nothing changed");
    }

    #[test]
    fn a_failed_rebase_leaves_the_session_as_it_was() {
        let mut s = loaded(r#"{"_token":"t","_created":1,"_id_at":1,"cart":[1]}"#);
        s.push("cart", json!(2)).unwrap();
        assert!(s.rebase(r#"{"_token":"t","cart":"text"}"#).is_err());
        assert_eq!(s.get("cart"), Some(&json!([1, 2])));
        assert_eq!(s.ops().len(), 1);
    }

    #[test]
    fn composite_operations_log_once() {
        let mut s = loaded(r#"{"_token":"t","_created":1,"_id_at":1}"#);
        s.flash("k", json!(1)).unwrap();
        s.merge("m", json!({"a": 1})).unwrap();
        s.age_flash_data();
        assert_eq!(
            s.ops(),
            &[
                Op::Flash("k".into(), json!(1)),
                Op::Merge("m".into(), json!({"a": 1})),
                Op::Age {
                    old: vec![],
                    new: vec!["k".into()]
                },
            ]
        );
    }

    #[test]
    fn an_unmergeable_replay_is_an_error_not_a_silent_loss() {
        let mut latest = loaded(r#"{"_token":"t","cart":"now a string"}"#);
        assert!(replay(&mut latest, &[Op::Push("cart".into(), json!(1))]).is_err());
    }
}
