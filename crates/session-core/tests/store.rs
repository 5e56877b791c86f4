#![allow(clippy::unwrap_used)]
//! Scenario tests of the Store semantics over the array handler, with a manual clock.

use ostro_session_core::clock::{ManualClock, SharedClock};
use ostro_session_core::{
    AfterTouch, ArraySessionHandler, SaveAction, SaveOutcome, Session, SessionError,
    SessionHandler, SessionOptions, WriteMeta,
};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

fn session(id: Option<&str>) -> Session {
    Session::new("ostro_session", id, SessionOptions::default()).unwrap()
}

fn array() -> ArraySessionHandler {
    ArraySessionHandler::new(120.0, None).unwrap()
}

#[test]
fn invalid_ids_are_replaced() {
    let s = session(Some("../../etc/passwd"));
    assert!(ostro_session_core::id::is_valid_id(s.id()));
    let good = "a".repeat(40);
    assert_eq!(session(Some(&good)).id(), good);
}

#[tokio::test]
async fn start_generates_token_that_is_not_dirty() {
    let h = array();
    let mut s = session(None);
    s.start(&h).await.unwrap();
    assert_eq!(s.token().map(str::len), Some(40));
    assert!(!s.is_dirty());
    assert!(s.is_started());
}

#[tokio::test]
async fn keys_put_before_start_survive_unless_stored() {
    let h = array();
    let id = "b".repeat(40);
    h.write(&id, r#"{"a":1,"_token":"t"}"#, &WriteMeta::default())
        .await
        .unwrap();
    let mut s = session(Some(&id));
    s.put("a", json!(0)).unwrap();
    s.put("b", json!(2)).unwrap();
    s.start(&h).await.unwrap();
    assert_eq!(s.get("a"), Some(&json!(1)));
    assert_eq!(s.get("b"), Some(&json!(2)));
    assert_eq!(s.token(), Some("t"));
}

#[tokio::test]
async fn null_token_is_regenerated() {
    let h = array();
    let id = "c".repeat(40);
    h.write(&id, r#"{"_token":null}"#, &WriteMeta::default())
        .await
        .unwrap();
    let mut s = session(Some(&id));
    s.start(&h).await.unwrap();
    assert_eq!(s.token().map(str::len), Some(40));
}

#[test]
fn has_exists_missing() {
    let mut s = session(None);
    s.put("z", json!(0)).unwrap();
    s.put("e", json!("")).unwrap();
    s.put("f", json!(false)).unwrap();
    s.put("l", json!([])).unwrap();
    s.put("n", Value::Null).unwrap();
    assert!(s.has(&["z", "e", "f", "l"]));
    assert!(!s.has(&["z", "n"]));
    assert!(s.exists(&["z", "n"]));
    assert!(!s.exists(&["nope"]));
    assert!(s.missing(&["n", "nope"]));
    assert!(!s.missing(&["n", "z"]));
    assert!(s.has_any(&["n", "z"]));
    assert!(!s.has_any(&["n", "nope"]));
    assert!(s.has::<&str>(&[]));
}

#[test]
fn only_is_top_level_and_except_is_dot_aware() {
    let mut s = session(None);
    s.put("a.b", json!(1)).unwrap();
    s.put("a.c", json!(2)).unwrap();
    s.put("d", json!(3)).unwrap();
    assert_eq!(Value::Object(s.only(&["a.b", "d"])), json!({"d": 3}));
    assert_eq!(
        Value::Object(s.except(&["a.b", "d"])),
        json!({"a": {"c": 2}})
    );
}

#[test]
fn push_increment_and_their_errors() {
    let mut s = session(None);
    s.push("user.teams", json!("x")).unwrap();
    s.push("user.teams", json!("y")).unwrap();
    assert_eq!(s.get("user.teams"), Some(&json!(["x", "y"])));
    s.put("str", json!("abc")).unwrap();
    assert!(matches!(
        s.push("str", json!(1)),
        Err(SessionError::Value(_))
    ));
    assert_eq!(s.get("str"), Some(&json!("abc")));
    assert_eq!(s.increment("n", 1.0).unwrap(), json!(1));
    assert_eq!(s.increment("n", 2.0).unwrap(), json!(3));
    assert_eq!(s.increment("n", -5.0).unwrap(), json!(-2));
    assert_eq!(s.increment("f", 0.5).unwrap(), json!(0.5));
    s.put("num", json!("5")).unwrap();
    assert_eq!(s.increment("num", 1.0).unwrap(), json!(6));
    assert!(matches!(
        s.increment("str", 1.0),
        Err(SessionError::Value(_))
    ));
    assert!(matches!(
        s.increment("user", 1.0),
        Err(SessionError::Value(_))
    ));
    assert_eq!(s.get("str"), Some(&json!("abc")));
}

#[test]
fn flash_ages_over_requests() {
    let mut s = session(None);
    s.flash("msg", json!("saved")).unwrap();
    assert_eq!(s.get("msg"), Some(&json!("saved")));
    s.age_flash_data(); // end of request 1
    assert_eq!(s.get("msg"), Some(&json!("saved"))); // visible in request 2
    s.age_flash_data(); // end of request 2
    assert_eq!(s.get("msg"), None);
    assert_eq!(s.get("_flash"), Some(&json!({"new": [], "old": []})));
}

#[test]
fn now_after_flash_is_deleted_at_next_age() {
    let mut s = session(None);
    s.flash("k", json!(1)).unwrap();
    s.now("k", json!(2)).unwrap();
    s.age_flash_data();
    assert_eq!(s.get("k"), None);
}

#[test]
fn keep_on_a_plain_key_makes_it_flash() {
    let mut s = session(None);
    s.put("plain", json!(1)).unwrap();
    s.keep(&["plain"]);
    s.age_flash_data();
    assert_eq!(s.get("plain"), Some(&json!(1)));
    s.age_flash_data();
    assert_eq!(s.get("plain"), None);
}

#[test]
fn reflash_keeps_old_for_one_more_request() {
    let mut s = session(None);
    s.flash("a", json!(1)).unwrap();
    s.age_flash_data();
    s.reflash();
    s.age_flash_data();
    assert_eq!(s.get("a"), Some(&json!(1)));
    s.age_flash_data();
    assert_eq!(s.get("a"), None);
}

#[test]
fn flash_only_and_except() {
    let mut s = session(None);
    s.flash("a", json!(1)).unwrap();
    s.flash("b", json!(2)).unwrap();
    s.flash("c", json!(3)).unwrap();
    s.flash_only(&["a", "b"]);
    assert_eq!(s.get("c"), None);
    s.flash_except(&["a"]);
    assert_eq!(s.get("a"), None);
    assert_eq!(s.get("b"), Some(&json!(2)));
    assert_eq!(s.get("_flash.new"), Some(&json!(["b"])));
}

#[test]
fn old_input() {
    let mut s = session(None);
    assert!(!s.has_old_input(None));
    s.flash_input(json!({"email": "a@b", "n": null, "z": 0}))
        .unwrap();
    assert!(s.has_old_input(None));
    assert!(s.has_old_input(Some("email")));
    assert!(!s.has_old_input(Some("n")));
    assert!(s.has_old_input(Some("z")));
    assert_eq!(s.get_old_input(Some("email")), Some(&json!("a@b")));
}

#[test]
fn flush_drops_token_and_regenerate_token_changes_it() {
    let mut s = session(None);
    let t1 = s.regenerate_token().unwrap();
    let t2 = s.regenerate_token().unwrap();
    assert_ne!(t1, t2);
    s.flush();
    assert_eq!(s.token(), None);
    assert!(s.all().is_empty());
}

#[test]
fn previous_url_is_nested() {
    let mut s = session(None);
    s.set_previous_url("/cart?x=1");
    assert_eq!(s.get("_previous"), Some(&json!({"url": "/cart?x=1"})));
    assert_eq!(s.previous_url(), Some("/cart?x=1"));
}

#[test]
fn merge_and_pull() {
    let mut s = session(None);
    s.put("cfg", json!({"a": [1], "b": {"x": 1}})).unwrap();
    s.merge("cfg", json!({"a": [2], "b": {"y": 2}})).unwrap();
    assert_eq!(
        s.get("cfg"),
        Some(&json!({"a": [1, 2], "b": {"x": 1, "y": 2}}))
    );
    assert_eq!(s.pull("cfg.b.x"), Some(json!(1)));
    assert_eq!(s.get("cfg.b"), Some(&json!({"y": 2})));
}

#[tokio::test]
async fn migrate_regenerate_invalidate() {
    let h = array();
    let mut s = session(None);
    s.start(&h).await.unwrap();
    s.put("k", json!(1)).unwrap();
    s.save(&h, &WriteMeta::default()).await.unwrap();
    let old = s.id().to_owned();
    let token = s.token().unwrap().to_owned();

    s.regenerate(&h, true).await.unwrap();
    assert_ne!(s.id(), old);
    assert_ne!(s.token().unwrap(), token);
    assert_eq!(s.get("k"), Some(&json!(1)));
    assert_eq!(h.read(&old).await.unwrap(), "");

    s.save(&h, &WriteMeta::default()).await.unwrap();
    let before = s.id().to_owned();
    s.invalidate(&h).await.unwrap();
    assert!(s.all().is_empty());
    assert_ne!(s.id(), before);
    assert_eq!(h.read(&before).await.unwrap(), "");
}

/// Records calls, to show that an unchanged session is touched, not written.
struct Recorder {
    inner: ArraySessionHandler,
    calls: Mutex<Vec<&'static str>>,
}

#[async_trait::async_trait]
impl SessionHandler for Recorder {
    async fn read(&self, id: &str) -> ostro_session_core::Result<String> {
        self.calls.lock().unwrap().push("read");
        self.inner.read(id).await
    }
    async fn write(&self, id: &str, d: &str, m: &WriteMeta) -> ostro_session_core::Result<()> {
        self.calls.lock().unwrap().push("write");
        self.inner.write(id, d, m).await
    }
    async fn destroy(&self, id: &str) -> ostro_session_core::Result<()> {
        self.inner.destroy(id).await
    }
    async fn gc(&self, s: u64) -> ostro_session_core::Result<u64> {
        self.inner.gc(s).await
    }
    async fn touch(&self, id: &str) -> ostro_session_core::Result<bool> {
        self.calls.lock().unwrap().push("touch");
        self.inner.touch(id).await
    }
}

#[tokio::test]
async fn unchanged_session_is_touched_not_written() {
    let h = Recorder {
        inner: array(),
        calls: Mutex::new(Vec::new()),
    };
    let mut s = session(None);
    s.start(&h).await.unwrap();
    s.save(&h, &WriteMeta::default()).await.unwrap(); // new: written
    let mut again = session(Some(s.id()));
    again.start(&h).await.unwrap();
    again.save(&h, &WriteMeta::default()).await.unwrap(); // unchanged: touched
    again.start(&h).await.unwrap();
    again.put("x", json!(1)).unwrap();
    again.save(&h, &WriteMeta::default()).await.unwrap(); // changed: written
    assert_eq!(
        *h.calls.lock().unwrap(),
        vec!["read", "write", "read", "touch", "read", "write"]
    );
}

#[tokio::test]
async fn an_unchanged_session_whose_record_expired_meanwhile_is_dropped_not_rewritten() {
    // Was `touch_that_finds_no_record_writes`: the old "touch, else write" rule wrote the stale
    // session back. A record that is gone stays gone unless the request changed something.
    let clock = ManualClock::new(1_000_000);
    let h = ArraySessionHandler::new(1.0, Some(Arc::new(clock.clone()) as SharedClock)).unwrap();
    let mut s = session(None);
    s.start(&h).await.unwrap();
    s.put("k", json!(1)).unwrap();
    assert_eq!(
        s.save(&h, &WriteMeta::default()).await.unwrap(),
        SaveOutcome::Written
    );
    s.start(&h).await.unwrap();
    clock.advance(61_000);
    assert_eq!(
        s.save(&h, &WriteMeta::default()).await.unwrap(),
        SaveOutcome::Dropped
    );
    assert_eq!(h.read(s.id()).await.unwrap(), "");
}

#[tokio::test]
async fn a_read_only_request_does_not_undo_a_logout_in_another() {
    let h = array();
    let mut login = session(None);
    login.start(&h).await.unwrap();
    login.put("user", json!("alice")).unwrap();
    login.save(&h, &WriteMeta::default()).await.unwrap();
    let id = login.id().to_owned();

    // Request A loads the session and only reads.
    let mut a = session(Some(&id));
    a.start(&h).await.unwrap();
    assert_eq!(a.get("user"), Some(&json!("alice")));
    // Request B logs out meanwhile.
    let mut b = session(Some(&id));
    b.start(&h).await.unwrap();
    b.invalidate(&h).await.unwrap();
    b.save(&h, &WriteMeta::default()).await.unwrap();
    // A ends: nothing written, for save and for resave alike.
    assert_eq!(
        a.save(&h, &WriteMeta::default()).await.unwrap(),
        SaveOutcome::Dropped
    );
    assert_eq!(h.read(&id).await.unwrap(), "");
    let mut c = session(Some(&id));
    c.load(r#"{"_token":"t","user":"alice","_flash":{"old":[],"new":[]}}"#)
        .unwrap();
    assert_eq!(
        c.save_with(&h, true, &WriteMeta::default()).await.unwrap(),
        SaveOutcome::Dropped
    );
    assert_eq!(h.read(&id).await.unwrap(), "", "resave must not resurrect");
}

#[tokio::test]
async fn resave_rewrites_a_live_record_and_new_sessions_are_written() {
    let h = Recorder {
        inner: array(),
        calls: Mutex::new(Vec::new()),
    };
    let mut s = session(None);
    s.start(&h).await.unwrap();
    assert_eq!(
        s.save(&h, &WriteMeta::default()).await.unwrap(),
        SaveOutcome::Written,
        "a new session, even unchanged, is written"
    );
    s.start(&h).await.unwrap();
    assert_eq!(
        s.save_with(&h, true, &WriteMeta::default()).await.unwrap(),
        SaveOutcome::Written
    );
    s.start(&h).await.unwrap();
    assert_eq!(
        s.save(&h, &WriteMeta::default()).await.unwrap(),
        SaveOutcome::Touched
    );
    assert_eq!(
        *h.calls.lock().unwrap(),
        vec!["read", "write", "read", "touch", "write", "read", "touch"]
    );
}

#[test]
fn values_deeper_than_the_payload_limit_are_refused_with_the_key() {
    let mut s = session(None);
    s.load(r#"{"_token":"t","keep":1}"#).unwrap();
    let mut v = json!(1);
    for _ in 0..70 {
        v = json!({ "a": v });
    }
    let deep_key = vec!["k"; 65].join(".");
    let shallow_key = vec!["k"; 64].join(".");
    type Op<'a> = Box<dyn Fn(&mut Session) -> ostro_session_core::Result<()> + 'a>;
    let cases: Vec<(&str, Op)> = vec![
        ("put", Box::new(|s: &mut Session| s.put("deep", v.clone()))),
        (
            "dot key",
            Box::new(|s: &mut Session| s.put(&deep_key, json!(1))),
        ),
        (
            "flash",
            Box::new(|s: &mut Session| s.flash("deep", v.clone())),
        ),
        ("now", Box::new(|s: &mut Session| s.now("deep", v.clone()))),
        (
            "merge",
            Box::new(|s: &mut Session| s.merge("deep", v.clone())),
        ),
        (
            "push",
            Box::new(|s: &mut Session| s.push("deep", v.clone())),
        ),
        (
            "flash_input",
            Box::new(|s: &mut Session| s.flash_input(v.clone())),
        ),
        (
            "put_many",
            Box::new(|s: &mut Session| {
                let mut m = serde_json::Map::new();
                m.insert("fine".into(), json!(1));
                m.insert("deep".into(), v.clone());
                s.put_many(m)
            }),
        ),
    ];
    for (what, f) in cases {
        match f(&mut s) {
            Err(SessionError::Value(msg)) => {
                assert!(
                    msg.contains("\"deep\"") || msg.contains("\"k.k") || msg.contains("_old_input"),
                    "{what}: {msg}"
                )
            }
            other => panic!("{what}: {other:?}"),
        }
        assert!(!s.is_dirty(), "{what}: nothing stored");
    }
    assert_eq!(
        s.get("fine"),
        None,
        "put_many stores nothing when one pair is refused"
    );
    assert!(
        matches!(s.increment(&deep_key, 1.0), Err(SessionError::Value(m)) if m.contains("\"k.k")),
        "increment on a 65-segment key"
    );
    assert!(!s.is_dirty());
    // Exactly at the limit is fine and reads back.
    s.put(&shallow_key, json!(1)).unwrap();
    let mut again = session(Some(s.id()));
    again.load(&s.payload().unwrap()).unwrap();
    assert_eq!(again.get(&shallow_key), Some(&json!(1)));
    assert_eq!(again.get("keep"), Some(&json!(1)));
}

#[test]
fn too_large_payload_is_refused() {
    let mut s = Session::new(
        "n",
        None,
        SessionOptions {
            max_payload_bytes: 64,
            ..SessionOptions::default()
        },
    )
    .unwrap();
    s.put("big", json!("x".repeat(100))).unwrap();
    assert!(matches!(
        s.prepare_save(false),
        Err(SessionError::TooLarge(_))
    ));
}

#[test]
fn unchanged_started_session_saves_as_touch() {
    let mut s = session(None);
    s.load(r#"{"_token":"t","_flash":{"old":[],"new":[]}}"#)
        .unwrap();
    assert_eq!(s.prepare_save(false).unwrap(), SaveAction::Touch);
    s.load(r#"{"_token":"t","_flash":{"old":[],"new":[]}}"#)
        .unwrap();
    // resave touches first too, and rewrites only a record the touch found.
    assert_eq!(s.prepare_save(true).unwrap(), SaveAction::Touch);
    assert!(matches!(s.after_touch(true).unwrap(), AfterTouch::Write(_)));
}

#[test]
fn legacy_payload_is_mapped_and_marked_for_rewrite() {
    let mut s = session(None);
    s.load(
        r#"{"__token":"legacy","__flash":{"__old":[],"__new":["m"]},"m":"hi","cartItem":"pear"}"#,
    )
    .unwrap();
    assert_eq!(s.token(), Some("legacy"));
    assert_eq!(s.get("cartItem"), Some(&json!("pear")));
    assert!(s.is_dirty());
    s.age_flash_data();
    assert_eq!(s.get("m"), Some(&json!("hi")));
    s.age_flash_data();
    assert_eq!(s.get("m"), None);
}

#[tokio::test]
async fn array_expiry_boundary_and_gc() {
    let clock = ManualClock::new(0);
    let h = ArraySessionHandler::new(1.0, Some(Arc::new(clock.clone()) as SharedClock)).unwrap();
    let id = "d".repeat(40);
    h.write(&id, "{}", &WriteMeta::default()).await.unwrap();
    clock.set(60_000);
    assert_eq!(h.read(&id).await.unwrap(), "{}");
    assert_eq!(h.gc(60).await.unwrap(), 0);
    clock.set(61_000);
    assert_eq!(h.read(&id).await.unwrap(), "");
    assert_eq!(h.gc(60).await.unwrap(), 1);
    assert!(h.is_empty());
}

// ----- opening a request's session in one step (Session::open) -------------------------------

use ostro_session_core::cookie_header::SignedId;

fn claim(id: &str, legacy: bool) -> SignedId {
    SignedId {
        id: id.to_owned(),
        legacy,
    }
}

#[tokio::test]
async fn open_without_a_claim_starts_the_fresh_id_empty_without_reading() {
    let h = Recorder {
        inner: array(),
        calls: Mutex::new(Vec::new()),
    };
    let mut s = session(None);
    let fresh = s.id().to_owned();
    assert!(!s.open(&h, None).await.unwrap());
    assert_eq!(s.id(), fresh);
    assert!(s.is_started());
    assert!(
        h.calls.lock().unwrap().is_empty(),
        "a fresh id has no record to read"
    );
}

#[tokio::test]
async fn open_loads_a_known_claimed_id_and_keeps_it() {
    let h = array();
    let mut first = session(None);
    first.start(&h).await.unwrap();
    first.put("user", json!("ada")).unwrap();
    first.save(&h, &WriteMeta::default()).await.unwrap();

    let mut s = session(None);
    assert!(s.open(&h, Some(&claim(first.id(), false))).await.unwrap());
    assert_eq!(s.id(), first.id());
    assert_eq!(s.get("user"), Some(&json!("ada")));
}

#[tokio::test]
async fn open_never_adopts_an_unknown_claimed_id() {
    let h = array();
    let planted = "F".repeat(40);
    let mut s = session(None);
    assert!(!s.open(&h, Some(&claim(&planted, false))).await.unwrap());
    assert_ne!(
        s.id(),
        planted,
        "session fixation: an id the store does not know is replaced"
    );
    assert!(ostro_session_core::id::is_valid_id(s.id()));
    s.put("k", json!(1)).unwrap();
    s.save(&h, &WriteMeta::default()).await.unwrap();
    assert_eq!(
        h.read(&planted).await.unwrap(),
        "",
        "nothing was written under the planted id"
    );
}

#[tokio::test]
async fn open_moves_a_known_legacy_id_to_a_fresh_one_and_keeps_the_old_record() {
    let h = array();
    let legacy = format!("{}-_", "a".repeat(38));
    h.write(&legacy, r#"{"user":"ada"}"#, &WriteMeta::default())
        .await
        .unwrap();
    let mut s = session(None);
    assert!(s.open(&h, Some(&claim(&legacy, true))).await.unwrap());
    assert!(ostro_session_core::id::is_valid_id(s.id()));
    assert_ne!(s.id(), legacy);
    assert_eq!(s.get("user"), Some(&json!("ada")));
    s.save(&h, &WriteMeta::default()).await.unwrap();
    assert!(h.read(s.id()).await.unwrap().contains("ada"));
    assert!(
        h.read(&legacy).await.unwrap().contains("ada"),
        "the 1.x record is left to expire, for parallel requests during the upgrade"
    );
}

/// An array handler whose compare-and-set writes fail while `fail` is set.
struct FailingWrites {
    inner: ArraySessionHandler,
    fail: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl SessionHandler for FailingWrites {
    async fn read(&self, id: &str) -> ostro_session_core::Result<String> {
        self.inner.read(id).await
    }
    async fn write(&self, id: &str, d: &str, m: &WriteMeta) -> ostro_session_core::Result<()> {
        self.inner.write(id, d, m).await
    }
    async fn destroy(&self, id: &str) -> ostro_session_core::Result<()> {
        self.inner.destroy(id).await
    }
    async fn gc(&self, s: u64) -> ostro_session_core::Result<u64> {
        self.inner.gc(s).await
    }
    async fn touch(&self, id: &str) -> ostro_session_core::Result<bool> {
        self.inner.touch(id).await
    }
    async fn write_if_unchanged(
        &self,
        id: &str,
        data: &str,
        previous: &str,
        meta: &WriteMeta,
    ) -> ostro_session_core::Result<ostro_session_core::CasOutcome> {
        if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(SessionError::Handler("disk full".into()));
        }
        self.inner
            .write_if_unchanged(id, data, previous, meta)
            .await
    }
    fn supports_cas(&self) -> bool {
        true
    }
}

#[tokio::test]
async fn a_failed_write_keeps_the_base_so_a_retry_compares_against_the_loaded_record() {
    let h = FailingWrites {
        inner: array(),
        fail: std::sync::atomic::AtomicBool::new(false),
    };
    let mut s = session(None);
    s.start(&h).await.unwrap();
    s.put("n", json!(1)).unwrap();
    s.save(&h, &WriteMeta::default()).await.unwrap();
    let loaded = h.read(s.id()).await.unwrap();

    s.start(&h).await.unwrap();
    s.put("n", json!(2)).unwrap();
    h.fail.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(s.save(&h, &WriteMeta::default()).await.is_err());
    assert_eq!(s.base(), loaded, "the base taken for the write is put back");

    h.fail.store(false, std::sync::atomic::Ordering::SeqCst);
    s.start(&h).await.unwrap();
    s.put("n", json!(3)).unwrap();
    assert_eq!(
        s.save(&h, &WriteMeta::default()).await.unwrap(),
        SaveOutcome::Written
    );
    assert!(h.read(s.id()).await.unwrap().contains("\"n\":3"));
}
