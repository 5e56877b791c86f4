#![allow(clippy::unwrap_used)]
//! The absolute timeout and the lifecycle keys (`_created`, `_id_at`), with a manual clock.

use ostro_session_core::clock::{ManualClock, SharedClock};
use ostro_session_core::lifecycle::Expiry;
use ostro_session_core::{
    ArraySessionHandler, SaveOutcome, Session, SessionHandler, SessionOptions, WriteMeta,
};
use serde_json::{json, Value};
use std::sync::Arc;

const MIN: i64 = 60_000;
const T0: i64 = 1_700_000_000_000;

fn opts(clock: &ManualClock, cap_minutes: Option<u64>) -> SessionOptions {
    SessionOptions {
        absolute_lifetime_secs: cap_minutes.map(|m| m * 60),
        clock: Arc::new(clock.clone()),
        ..SessionOptions::default()
    }
}

fn handler(clock: &ManualClock, idle_minutes: f64) -> ArraySessionHandler {
    let c: SharedClock = Arc::new(clock.clone());
    ArraySessionHandler::new(idle_minutes, Some(c)).unwrap()
}

async fn open(h: &ArraySessionHandler, id: Option<&str>, o: &SessionOptions) -> Session {
    let mut s = Session::new("ostro_session", id, o.clone()).unwrap();
    s.start(h).await.unwrap();
    s
}

async fn save(s: &mut Session, h: &ArraySessionHandler) -> SaveOutcome {
    s.save(h, &WriteMeta::default()).await.unwrap()
}

#[tokio::test]
async fn a_session_used_every_minute_still_dies_at_the_absolute_cap() {
    let clock = ManualClock::new(T0);
    let h = handler(&clock, 120.0);
    let o = opts(&clock, Some(60));
    let mut s = open(&h, None, &o).await;
    s.put("user", json!("ada")).unwrap();
    save(&mut s, &h).await;
    let id = s.id().to_owned();
    assert_eq!(s.created_at(), Some(T0 / 1000));

    for minute in 1..=60 {
        clock.advance(MIN);
        let mut s = open(&h, Some(&id), &o).await;
        assert_eq!(s.id(), id, "minute {minute}: still the same session");
        assert_eq!(s.expired(), None);
        s.increment("hits", 1.0).unwrap();
        assert_eq!(save(&mut s, &h).await, SaveOutcome::Written);
    }

    // Exactly 60 minutes old was alive; one second more is not.
    clock.advance(1000);
    let mut s = open(&h, Some(&id), &o).await;
    assert_eq!(s.expired(), Some(Expiry::Absolute));
    assert_ne!(s.id(), id, "a new id");
    assert_eq!(s.get("user"), None, "a new empty session");
    assert!(s.token().is_some(), "with a token, as any new session");
    assert!(!s.record_exists());
    assert_eq!(s.created_at(), Some((T0 + 60 * MIN + 1000) / 1000));
    assert_eq!(
        h.read(&id).await.unwrap(),
        "",
        "the expired record is destroyed"
    );
    assert_eq!(save(&mut s, &h).await, SaveOutcome::Written);
    assert_ne!(h.read(s.id()).await.unwrap(), "");
}

#[tokio::test]
async fn a_young_session_idle_past_the_lifetime_is_gone() {
    let clock = ManualClock::new(T0);
    let h = handler(&clock, 10.0);
    let o = opts(&clock, Some(600));
    let mut s = open(&h, None, &o).await;
    s.put("k", json!(1)).unwrap();
    save(&mut s, &h).await;
    let id = s.id().to_owned();
    clock.advance(10 * MIN + 1000);
    let again = open(&h, Some(&id), &o).await;
    assert!(!again.record_exists(), "the handler's idle timeout applies");
    assert_eq!(again.get("k"), None);
    assert_eq!(again.expired(), None, "not the absolute rule");
}

#[tokio::test]
async fn created_at_survives_migrate_and_regenerate_and_resets_on_invalidate() {
    let clock = ManualClock::new(T0);
    let h = handler(&clock, 120.0);
    let o = opts(&clock, Some(60));
    let mut s = open(&h, None, &o).await;
    s.put("k", json!(1)).unwrap();
    let t0 = T0 / 1000;
    assert_eq!((s.created_at(), s.id_issued_at()), (Some(t0), Some(t0)));

    clock.advance(5 * MIN);
    s.migrate(&h, true).await.unwrap();
    assert_eq!(s.created_at(), Some(t0));
    assert_eq!(s.id_issued_at(), Some(t0 + 300));

    clock.advance(5 * MIN);
    s.regenerate(&h, true).await.unwrap();
    assert_eq!(s.created_at(), Some(t0));
    assert_eq!(s.id_issued_at(), Some(t0 + 600));
    save(&mut s, &h).await;
    let reloaded = open(&h, Some(s.id()), &o).await;
    assert_eq!(
        reloaded.created_at(),
        Some(t0),
        "stored, not only in memory"
    );

    // flush alone keeps the creation time: flushing cannot extend the cap.
    clock.advance(5 * MIN);
    let mut s = reloaded;
    s.flush();
    assert_eq!(s.created_at(), Some(t0));

    s.put("k", json!(2)).unwrap();
    s.invalidate(&h).await.unwrap();
    assert_eq!(s.created_at(), Some(t0 + 900));
    assert_eq!(s.id_issued_at(), Some(t0 + 900));
    assert_eq!(s.all(), serde_json::Map::new());

    // The JS layer's invalidate: flush(), then migrate_id() and regenerate_token().
    clock.advance(MIN);
    s.put("k", json!(3)).unwrap();
    s.flush();
    s.migrate_id().unwrap();
    assert_eq!(s.created_at(), Some(t0 + 960));
}

#[tokio::test]
async fn the_lifecycle_keys_are_hidden_from_listings_and_not_writable() {
    let clock = ManualClock::new(T0);
    let h = handler(&clock, 120.0);
    let mut s = open(&h, None, &opts(&clock, None)).await;
    s.put("a", json!(1)).unwrap();
    let all = s.all();
    assert_eq!(all.keys().collect::<Vec<_>>(), ["_token", "a"]);
    let text: Value = serde_json::from_str(&s.all_json()).unwrap();
    assert_eq!(Value::Object(all), text);
    assert!(s.only(&["_created", "_id_at", "a"]).contains_key("a"));
    assert_eq!(s.only(&["_created", "_id_at"]).len(), 0);
    assert!(!s.except(&["a"]).contains_key("_created"));
    // Naming the key is deliberate: point reads answer.
    assert_eq!(s.get("_created"), Some(&json!(T0 / 1000)));
    assert!(s.has(&["_created"]) && s.exists(&["_id_at"]));

    assert!(s.put("_created", json!(0)).is_err());
    assert!(s.put("_id_at.x", json!(0)).is_err());
    assert!(s.increment("_created", -1000.0).is_err());
    assert!(s.flash("_created", json!(0)).is_err());
    assert_eq!(s.forget("_created"), None);
    assert_eq!(s.created_at(), Some(T0 / 1000));

    // Loaded from storage (raw values), the listings still hide them.
    save(&mut s, &h).await;
    let again = open(&h, Some(s.id()), &opts(&clock, None)).await;
    assert!(!again.all_json().contains("_created"));
    assert!(!again.all().contains_key("_id_at"));
    assert!(h.read(s.id()).await.unwrap().contains("\"_created\""));
}

#[tokio::test]
async fn payloads_without_the_keys_are_treated_as_created_when_loaded() {
    let clock = ManualClock::new(T0);
    let h = handler(&clock, 120.0);
    let id = "L".repeat(40);
    let meta = WriteMeta::default();

    // Without a cap: stamped in memory, a read-only request still only touches.
    let before = r#"{"_token":"t","_flash":{"old":[],"new":[]},"a":1}"#;
    h.write(&id, before, &meta).await.unwrap();
    let mut s = open(&h, Some(&id), &opts(&clock, None)).await;
    assert_eq!(s.created_at(), Some(T0 / 1000));
    assert_eq!(save(&mut s, &h).await, SaveOutcome::Touched);
    assert_eq!(h.read(&id).await.unwrap(), before);

    // With a cap: written at the first save, and counted from there.
    let o = opts(&clock, Some(60));
    let mut s = open(&h, Some(&id), &o).await;
    assert_eq!(save(&mut s, &h).await, SaveOutcome::Written);
    assert!(h
        .read(&id)
        .await
        .unwrap()
        .contains(&format!("\"_created\":{}", T0 / 1000)));
    clock.advance(60 * MIN + 1000);
    let s = open(&h, Some(&id), &o).await;
    assert_eq!(s.expired(), Some(Expiry::Absolute));

    // A 1.x payload (`__token`, `__flash`) is stamped too.
    let v1 = "V".repeat(40);
    h.write(
        &v1,
        r#"{"__token":"old","__flash":{"__old":[],"__new":[]},"n":1}"#,
        &meta,
    )
    .await
    .unwrap();
    let mut s = open(&h, Some(&v1), &o).await;
    assert_eq!(s.token(), Some("old"));
    assert_eq!(s.created_at(), Some(clock_secs(&clock)));
    assert_eq!(save(&mut s, &h).await, SaveOutcome::Written);
    assert!(h.read(&v1).await.unwrap().contains("\"_created\""));
}

fn clock_secs(c: &ManualClock) -> i64 {
    use ostro_session_core::clock::Clock;
    c.now_ms() / 1000
}

#[tokio::test]
async fn a_concurrent_request_does_not_reset_the_creation_time() {
    let clock = ManualClock::new(T0);
    let h = handler(&clock, 120.0);
    let o = opts(&clock, Some(60));
    let id = "C".repeat(40);
    h.write(&id, r#"{"_token":"t","n":0}"#, &WriteMeta::default())
        .await
        .unwrap();

    // A loads (stamping T0), B loads a minute later (stamping T0 + 60 s); A saves first.
    let mut a = open(&h, Some(&id), &o).await;
    clock.advance(MIN);
    let mut b = open(&h, Some(&id), &o).await;
    a.increment("n", 1.0).unwrap();
    b.increment("n", 1.0).unwrap();
    b.flush();
    b.increment("n", 5.0).unwrap();
    assert_eq!(save(&mut a, &h).await, SaveOutcome::Written);
    // B's compare-and-set finds A's record and replays on it.
    assert_eq!(save(&mut b, &h).await, SaveOutcome::Written);
    let stored = open(&h, Some(&id), &o).await;
    assert_eq!(stored.created_at(), Some(T0 / 1000), "A's stamp stays");
    assert_eq!(
        stored.get("n"),
        Some(&json!(5)),
        "B's flush then +5 replayed"
    );

    // A migrate replayed elsewhere keeps the record's creation time too.
    let mut c = open(&h, Some(&id), &o).await;
    clock.advance(MIN);
    c.migrate_id().unwrap();
    let current = format!(
        r#"{{"_token":"t","_created":{},"_id_at":1}}"#,
        T0 / 1000 - 5
    );
    assert!(c.rebase(&current).unwrap());
    assert_eq!(c.created_at(), Some(T0 / 1000 - 5));
    assert_eq!(c.id_issued_at(), Some(T0 / 1000 + 120));
}

#[tokio::test]
async fn the_binding_steps_apply_then_set_base_save_an_expired_session() {
    // The binding reads, decodes off-thread, then applies and sets the base itself.
    let clock = ManualClock::new(T0);
    let h = handler(&clock, 120.0);
    let o = opts(&clock, Some(1));
    let mut s = open(&h, None, &o).await;
    save(&mut s, &h).await;
    let id = s.id().to_owned();
    clock.advance(MIN + 1000);

    let mut s = Session::new("ostro_session", Some(&id), o.clone()).unwrap();
    let raw = h.read(&id).await.unwrap();
    let decoded = s.reader().decode(&raw);
    s.apply(decoded).unwrap();
    s.set_base(raw);
    assert_eq!(s.expired(), Some(Expiry::Absolute));
    assert_eq!(s.base(), "", "the new id has no record");
    let old = s.take_expired_id().unwrap();
    assert_eq!(old, id);
    assert_eq!(s.take_expired_id(), None, "handed over once");
    h.destroy(&old).await.unwrap();
    s.put("fresh", json!(true)).unwrap();
    assert_eq!(save(&mut s, &h).await, SaveOutcome::Written);
    assert_ne!(s.id(), id);
}

/// Why a load found no session under the id it was given, for the `expired` event: the engine
/// reports `Idle` unless it can tell nothing expired (a live tombstone: a logout or a revoke; a
/// renewed id past its grace window).
#[tokio::test]
async fn a_missing_record_is_idle_unless_the_engine_can_tell_it_was_ended() {
    use ostro_session_core::load;
    use std::sync::Mutex;
    let clock = ManualClock::new(T0);
    let h = handler(&clock, 10.0);
    let o = opts(&clock, None);
    let reason = |s: Session| {
        let h = &h;
        async move {
            assert!(!s.record_exists());
            load::missing_reason(h, &Mutex::new(s)).await.unwrap()
        }
    };

    // A logout leaves a tombstone: ended, not expired.
    let mut s = open(&h, None, &o).await;
    s.put("user", json!("ada")).unwrap();
    save(&mut s, &h).await;
    let id = s.id().to_owned();
    let mut out = open(&h, Some(&id), &o).await;
    out.invalidate(&h).await.unwrap();
    clock.advance(MIN);
    assert_eq!(reason(open(&h, Some(&id), &o).await).await, None);
    // A lifetime after the logout the tombstone has expired: nothing tells it apart any more.
    clock.advance(9 * MIN + 1000);
    assert_eq!(
        reason(open(&h, Some(&id), &o).await).await,
        Some(Expiry::Idle)
    );

    // An id the driver never stored cannot be told from a collected one.
    let never = "N".repeat(40);
    assert_eq!(
        reason(open(&h, Some(&never), &o).await).await,
        Some(Expiry::Idle)
    );

    // Idle past the lifetime.
    let mut s = open(&h, None, &o).await;
    s.put("user", json!("bob")).unwrap();
    save(&mut s, &h).await;
    let id = s.id().to_owned();
    clock.advance(10 * MIN + 1000);
    assert_eq!(
        reason(open(&h, Some(&id), &o).await).await,
        Some(Expiry::Idle)
    );

    // A renewed id past its grace window: the session lives on under its new id.
    let renewing = SessionOptions {
        renew_after_secs: Some(60),
        renew_grace_secs: 30,
        ..o.clone()
    };
    let mut s = open(&h, None, &renewing).await;
    s.put("user", json!("cy")).unwrap();
    save(&mut s, &h).await;
    let first = s.id().to_owned();
    clock.advance(MIN + 1000);
    let renewed = open(&h, Some(&first), &renewing).await;
    assert_ne!(renewed.id(), first, "renewed");
    clock.advance(31_000);
    let late = open(&h, Some(&first), &renewing).await;
    assert_eq!(
        late.id(),
        first,
        "past the window the old id is not followed"
    );
    assert!(late.met_stale_forward());
    assert_eq!(reason(late).await, None);
}
