//! Id renewal (`renew_after`) and the forward markers it leaves, with a manual clock, on every
//! driver that stores records (array, file, sqlite on temp files; redis and memcached on real
//! servers started for the test), and the load steps the JS bridge follows.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use ostro_session_core::clock::ManualClock;
use ostro_session_core::crypto::Cipher;
use ostro_session_core::lifecycle::Event;
use ostro_session_core::load::LoadStep;
use ostro_session_core::{
    session_handle, ArraySessionHandler, SaveOutcome, Session, SessionHandler, SessionOptions,
    WriteMeta,
};
use serde_json::json;
use std::sync::Arc;

const MIN: i64 = 60_000;
const T0: i64 = 1_700_000_000_000;

type Handler = Arc<dyn SessionHandler>;

struct Fixture {
    name: &'static str,
    handler: Handler,
    _keep: Box<dyn std::any::Any + Send>,
}

fn opts(clock: &ManualClock, renew_min: u64, grace: u64) -> SessionOptions {
    SessionOptions {
        renew_after_secs: Some(renew_min * 60),
        renew_grace_secs: grace,
        clock: Arc::new(clock.clone()),
        ..SessionOptions::default()
    }
}

async fn open(h: &dyn SessionHandler, id: Option<&str>, o: &SessionOptions) -> Session {
    let mut s = Session::new("ostro_session", id, o.clone()).unwrap();
    s.start(h).await.unwrap();
    s
}

async fn save(s: &mut Session, h: &dyn SessionHandler) -> SaveOutcome {
    s.save(h, &WriteMeta::default()).await.unwrap()
}

fn fixtures(clock: &ManualClock) -> Vec<Fixture> {
    use ostro_session_core::handlers::memcached::MemcachedOptions;
    use ostro_session_core::handlers::redis::{RedisConnection, RedisOptions};
    let shared = || Some(Arc::new(clock.clone()) as ostro_session_core::clock::SharedClock);
    let dir = tempfile::tempdir().unwrap();
    let file =
        ostro_session_core::FileSessionHandler::new(dir.path().join("s"), 600.0, shared()).unwrap();
    let db = dir.path().join("s.db");
    let sqlite = ostro_session_core::SqliteSessionHandler::new(
        db.to_str().unwrap(),
        "sessions",
        600.0,
        5000,
        shared(),
    )
    .unwrap();
    let redis_server = support::servers::RedisServer::start();
    let redis = ostro_session_core::RedisSessionHandler::new(
        &RedisConnection::Url(redis_server.url()),
        RedisOptions::default(),
    )
    .unwrap();
    let mc_server = support::servers::MemcachedServer::start();
    let memcached = ostro_session_core::MemcachedSessionHandler::new(
        &[mc_server.addr()],
        MemcachedOptions::default(),
    )
    .unwrap();
    vec![
        Fixture {
            name: "array",
            handler: Arc::new(ArraySessionHandler::new(600.0, shared()).unwrap()),
            _keep: Box::new(()),
        },
        Fixture {
            name: "file",
            handler: Arc::new(file),
            _keep: Box::new(()),
        },
        Fixture {
            name: "sqlite",
            handler: Arc::new(sqlite),
            _keep: Box::new(dir),
        },
        Fixture {
            name: "redis",
            handler: Arc::new(redis),
            _keep: Box::new(redis_server),
        },
        Fixture {
            name: "memcached",
            handler: Arc::new(memcached),
            _keep: Box::new(mc_server),
        },
    ]
}

#[tokio::test]
async fn renewal_keeps_data_and_token_and_forwards_the_old_id_for_the_grace_window_only() {
    let clock = ManualClock::new(T0);
    for f in fixtures(&clock) {
        clock.set(T0);
        let h = &*f.handler;
        let o = opts(&clock, 15, 30);
        let mut s = open(h, None, &o).await;
        s.put("user", json!("ada")).unwrap();
        assert_eq!(save(&mut s, h).await, SaveOutcome::Written);
        let old = s.id().to_owned();
        let token = s.token().unwrap().to_owned();

        // Exactly 15 minutes after the id was issued: not yet.
        clock.advance(15 * MIN);
        let mut s = open(h, Some(&old), &o).await;
        assert_eq!(s.id(), old, "{}: not renewed at the boundary", f.name);
        assert_eq!(s.take_events(), [Event::Loaded]);
        save(&mut s, h).await;

        clock.advance(1000);
        let mut s = open(h, Some(&old), &o).await;
        let new = s.id().to_owned();
        assert_ne!(new, old, "{}: renewed one second later", f.name);
        assert_eq!(s.take_events(), [Event::Loaded, Event::Renewed]);
        assert_eq!(s.get("user"), Some(&json!("ada")), "{}: data kept", f.name);
        assert_eq!(s.token(), Some(token.as_str()), "{}: token kept", f.name);
        assert!(
            s.record_exists() && !s.is_dirty(),
            "{}: already written",
            f.name
        );
        s.increment("visits", 1.0).unwrap();
        assert_eq!(save(&mut s, h).await, SaveOutcome::Written);

        // A request still carrying the old id, 30 s later: the new session.
        clock.advance(30 * 1000);
        let mut late = open(h, Some(&old), &o).await;
        assert_eq!(late.id(), new, "{}: forwarded inside the window", f.name);
        assert_eq!(late.take_events(), [Event::Forwarded]);
        assert_eq!(late.get("visits"), Some(&json!(1)));
        assert_eq!(late.token(), Some(token.as_str()));
        late.put("late", json!(true)).unwrap();
        assert_eq!(save(&mut late, h).await, SaveOutcome::Written);
        let again = open(h, Some(&new), &o).await;
        assert_eq!(
            again.get("late"),
            Some(&json!(true)),
            "{}: the forwarded request saved into the new session",
            f.name
        );

        // One second past the window: the old id loads nothing.
        clock.advance(1000);
        let mut gone = open(h, Some(&old), &o).await;
        assert!(!gone.record_exists(), "{}: no longer forwarded", f.name);
        assert_eq!(gone.get("user"), None);
        assert_eq!(gone.take_events(), [Event::Created]);
        // ... and the new session carries on.
        let cont = open(h, Some(&new), &o).await;
        assert_eq!(cont.get("user"), Some(&json!("ada")), "{}", f.name);
    }
}

#[tokio::test]
async fn regenerate_and_invalidate_never_forward() {
    let clock = ManualClock::new(T0);
    for f in fixtures(&clock) {
        clock.set(T0);
        let h = &*f.handler;
        let o = opts(&clock, 15, 30);
        let mut s = open(h, None, &o).await;
        s.put("user", json!("ada")).unwrap();
        save(&mut s, h).await;
        let before_login = s.id().to_owned();
        // Login: regenerate(true).
        s.regenerate(h, true).await.unwrap();
        save(&mut s, h).await;
        let logged_in = s.id().to_owned();
        let fixated = open(h, Some(&before_login), &o).await;
        assert!(
            !fixated.record_exists(),
            "{}: the pre-login id loads nothing",
            f.name
        );
        assert_ne!(fixated.id(), logged_in);
        // Logout: invalidate().
        let mut s = open(h, Some(&logged_in), &o).await;
        s.invalidate(h).await.unwrap();
        save(&mut s, h).await;
        let stale = open(h, Some(&logged_in), &o).await;
        assert!(
            !stale.record_exists(),
            "{}: the logged-out id loads nothing",
            f.name
        );
        assert_eq!(stale.get("user"), None);
        // migrate(false) keeps the old record as it is: a copy, never a forward.
        let mut s = open(h, Some(s.id()), &o).await;
        s.put("x", json!(1)).unwrap();
        save(&mut s, h).await;
        let kept = s.id().to_owned();
        s.migrate(h, false).await.unwrap();
        save(&mut s, h).await;
        let old = open(h, Some(&kept), &o).await;
        assert_eq!(
            old.id(),
            kept,
            "{}: migrate(false) does not forward",
            f.name
        );
    }
}

#[tokio::test]
async fn two_requests_renewing_at_once_end_in_one_session() {
    let clock = ManualClock::new(T0);
    let h = ArraySessionHandler::new(600.0, Some(Arc::new(clock.clone()))).unwrap();
    let o = opts(&clock, 15, 30);
    let mut s = open(&h, None, &o).await;
    s.put("n", json!(0)).unwrap();
    save(&mut s, &h).await;
    let old = s.id().to_owned();
    clock.advance(16 * MIN);

    // Both read the old record before either renews (the bridge's steps, interleaved).
    let mut a = Session::new("ostro_session", Some(&old), o.clone()).unwrap();
    let mut b = Session::new("ostro_session", Some(&old), o.clone()).unwrap();
    let _ = a.begin_load(true);
    let _ = b.begin_load(true);
    let raw = h.read(&old).await.unwrap();
    let step_a = a.after_read(raw.clone()).unwrap();
    let step_b = b.after_read(raw).unwrap();
    let run = |step: LoadStep| async {
        let LoadStep::Renew {
            new_id,
            payload,
            old_id,
            marker,
            base,
        } = step
        else {
            panic!("expected a renewal, got {step:?}");
        };
        h.write(&new_id, &payload, &WriteMeta::default())
            .await
            .unwrap();
        let o = h
            .write_if_unchanged(&old_id, &marker, &base, &WriteMeta::default())
            .await
            .unwrap();
        (new_id, o)
    };
    let (a_new, a_out) = run(step_a).await;
    let (b_new, b_out) = run(step_b).await;
    assert_eq!(a_out, ostro_session_core::CasOutcome::Written);
    assert!(matches!(b_out, ostro_session_core::CasOutcome::Conflict(_)));
    assert_eq!(a.after_renew(true, String::new()).unwrap(), LoadStep::Done);
    assert_eq!(a.id(), a_new);
    let ostro_session_core::CasOutcome::Conflict(current) = b_out else {
        unreachable!()
    };
    // B lost: its own new record is destroyed, then it follows A's forward.
    assert_eq!(
        b.after_renew(false, current).unwrap(),
        LoadStep::Destroy(b_new.clone())
    );
    h.destroy(&b_new).await.unwrap();
    assert_eq!(b.after_destroy().unwrap(), LoadStep::Read(a_new.clone()));
    let raw = h.read(&a_new).await.unwrap();
    assert_eq!(b.after_read(raw).unwrap(), LoadStep::Done);
    assert_eq!(b.id(), a_new, "both requests are on the winner's session");
    assert_eq!(b.take_events(), [Event::Loaded, Event::Forwarded]);
    a.increment("n", 1.0).unwrap();
    b.increment("n", 1.0).unwrap();
    save(&mut a, &h).await;
    save(&mut b, &h).await;
    let end = open(&h, Some(&a_new), &o).await;
    assert_eq!(end.get("n"), Some(&json!(2)), "no update lost");
    assert_eq!(
        h.read(&b_new).await.unwrap(),
        "",
        "the loser's copy is gone"
    );
}

#[tokio::test]
async fn sealed_payloads_renew_and_a_planted_marker_does_not_forward() {
    let clock = ManualClock::new(T0);
    let h = ArraySessionHandler::new(600.0, Some(Arc::new(clock.clone()))).unwrap();
    let cipher = Arc::new(Cipher::new(&["renewal-test-key-0123456789abcdefghijkl"]).unwrap());
    let o = SessionOptions {
        cipher: Some(cipher),
        ..opts(&clock, 15, 30)
    };
    let mut s = open(&h, None, &o).await;
    s.put("secret", json!("s3")).unwrap();
    save(&mut s, &h).await;
    let old = s.id().to_owned();
    clock.advance(16 * MIN);
    let s = open(&h, Some(&old), &o).await;
    let new = s.id().to_owned();
    assert_ne!(new, old);
    assert_eq!(
        s.get("secret"),
        Some(&json!("s3")),
        "resealed under the new id"
    );
    let marker = h.read(&old).await.unwrap();
    assert!(
        marker.starts_with('>') && !marker.contains(&new),
        "the target is sealed"
    );
    assert_eq!(open(&h, Some(&old), &o).await.id(), new);

    // Someone who can write to the store but has no key plants a plain marker.
    let victim = "V".repeat(40);
    h.write(
        &victim,
        &format!(">{new}.{}", T0 / 1000 + 9999),
        &WriteMeta::default(),
    )
    .await
    .unwrap();
    let planted = open(&h, Some(&victim), &o).await;
    assert!(
        !planted.record_exists(),
        "a marker that does not open forwards nowhere"
    );
    assert_ne!(planted.id(), new);
}

#[tokio::test]
async fn the_absolute_cap_counts_across_renewals_and_an_expired_record_is_destroyed() {
    let clock = ManualClock::new(T0);
    let h = ArraySessionHandler::new(600.0, Some(Arc::new(clock.clone()))).unwrap();
    let o = SessionOptions {
        absolute_lifetime_secs: Some(60 * 60),
        ..opts(&clock, 15, 30)
    };
    let mut s = open(&h, None, &o).await;
    s.put("user", json!("ada")).unwrap();
    save(&mut s, &h).await;
    let mut id = s.id().to_owned();
    let mut renewals = 0;
    for _ in 0..60 {
        clock.advance(MIN);
        let mut s = open(&h, Some(&id), &o).await;
        if s.id() != id {
            renewals += 1;
        }
        assert_eq!(s.get("user"), Some(&json!("ada")));
        assert_eq!(
            s.created_at(),
            Some(T0 / 1000),
            "renewal keeps the creation time"
        );
        s.increment("hits", 1.0).unwrap();
        save(&mut s, &h).await;
        id = s.id().to_owned();
    }
    assert_eq!(renewals, 3, "renewed every 16 minutes within the hour");
    clock.advance(1000);
    let mut s = open(&h, Some(&id), &o).await;
    assert_eq!(
        s.take_events(),
        [
            Event::Expired(ostro_session_core::lifecycle::Expiry::Absolute),
            Event::Created
        ]
    );
    assert_ne!(s.id(), id);
    assert_eq!(s.get("user"), None);
    assert_eq!(
        h.read(&id).await.unwrap(),
        "",
        "the expired record is destroyed"
    );
}

#[test]
fn handles_are_keyed_hashes() {
    let id = "Q".repeat(40);
    let a = session_handle("app-key-one-0123456789abcdefghijkl", &id);
    assert_eq!(a.len(), 32);
    assert_ne!(a, session_handle("app-key-two-0123456789abcdefghijkl", &id));
}

/// A session saved at T0 whose id is one second short of renewal, and its id.
async fn nearly_due(h: &dyn SessionHandler, clock: &ManualClock, o: &SessionOptions) -> String {
    clock.set(T0);
    let mut s = open(h, None, o).await;
    s.put("user", json!("ada")).unwrap();
    s.put("cart", json!(["apple"])).unwrap();
    assert_eq!(save(&mut s, h).await, SaveOutcome::Written);
    clock.advance(15 * MIN);
    s.id().to_owned()
}

#[tokio::test]
async fn a_request_that_loaded_the_old_id_before_a_renewal_saves_into_the_renewed_session() {
    let clock = ManualClock::new(T0);
    for f in fixtures(&clock) {
        let h = &*f.handler;
        let o = opts(&clock, 15, 30);
        let old = nearly_due(h, &clock, &o).await;
        // A (a writer) and R (read-only) load the old id while it is not yet due.
        let mut a = open(h, Some(&old), &o).await;
        let mut r = open(h, Some(&old), &o).await;
        assert_eq!(a.id(), old, "{}: not renewed yet", f.name);
        // B arrives once it is due and renews it.
        clock.advance(1000);
        let mut b = open(h, Some(&old), &o).await;
        let new = b.id().to_owned();
        assert_ne!(new, old, "{}: B renewed", f.name);
        b.push("cart", json!("pear")).unwrap();
        assert_eq!(save(&mut b, h).await, SaveOutcome::Written);

        // A saves after the renewal, inside the grace window.
        clock.advance(10 * 1000);
        a.put("theme", json!("dark")).unwrap();
        a.push("cart", json!("fig")).unwrap();
        assert_eq!(
            save(&mut a, h).await,
            SaveOutcome::Written,
            "{}: not dropped",
            f.name
        );
        assert_eq!(a.id(), new, "{}: A's id is now the renewed one", f.name);
        // R changed nothing: it is not touched under the old id, it moves too.
        assert_ne!(save(&mut r, h).await, SaveOutcome::Dropped, "{}", f.name);
        assert_eq!(r.id(), new, "{}: the read-only request moves too", f.name);

        let marker = h.read(&old).await.unwrap();
        assert!(
            marker.starts_with('>'),
            "{}: the old id still only forwards, got {marker:?}",
            f.name
        );
        let check = open(h, Some(&new), &o).await;
        assert_eq!(check.get("theme"), Some(&json!("dark")), "{}", f.name);
        assert_eq!(
            check.get("cart"),
            Some(&json!(["apple", "pear", "fig"])),
            "{}: both requests' pushes kept",
            f.name
        );
        assert_eq!(check.get("user"), Some(&json!("ada")), "{}", f.name);
        let via_old = open(h, Some(&old), &o).await;
        assert_eq!(via_old.id(), new, "{}: the old id forwards", f.name);
        assert_eq!(via_old.get("theme"), Some(&json!("dark")));
    }
}

#[tokio::test]
async fn a_save_that_finds_the_marker_past_its_window_is_dropped_and_leaves_it_alone() {
    let clock = ManualClock::new(T0);
    for f in fixtures(&clock) {
        let h = &*f.handler;
        let o = opts(&clock, 15, 30);
        let old = nearly_due(h, &clock, &o).await;
        let mut a = open(h, Some(&old), &o).await;
        clock.advance(1000);
        let b = open(h, Some(&old), &o).await;
        let new = b.id().to_owned();
        assert_ne!(new, old);
        let marker = h.read(&old).await.unwrap();
        // One second past the window.
        clock.advance(31 * 1000);
        a.put("theme", json!("dark")).unwrap();
        assert_eq!(
            save(&mut a, h).await,
            SaveOutcome::Dropped,
            "{}: too late",
            f.name
        );
        assert_eq!(
            h.read(&old).await.unwrap(),
            marker,
            "{}: the marker is not overwritten with a partial session",
            f.name
        );
        let check = open(h, Some(&new), &o).await;
        assert_eq!(check.get("theme"), None, "{}", f.name);
        assert_eq!(check.get("user"), Some(&json!("ada")), "{}", f.name);
    }
}

#[tokio::test]
async fn a_save_racing_a_logout_is_dropped_whether_before_or_after_a_renewal() {
    let clock = ManualClock::new(T0);
    for f in fixtures(&clock) {
        let h = &*f.handler;
        let o = opts(&clock, 15, 30);

        // Logout of the renewed session: the marker leads to its tombstone.
        let old = nearly_due(h, &clock, &o).await;
        let mut a = open(h, Some(&old), &o).await;
        clock.advance(1000);
        let b = open(h, Some(&old), &o).await;
        let new = b.id().to_owned();
        let mut logout = open(h, Some(&new), &o).await;
        logout.invalidate(h).await.unwrap();
        save(&mut logout, h).await;
        a.put("theme", json!("dark")).unwrap();
        assert_eq!(save(&mut a, h).await, SaveOutcome::Dropped, "{}", f.name);
        for id in [&old, &new] {
            let s = open(h, Some(id), &o).await;
            assert!(
                !s.record_exists(),
                "{}: nothing comes back from the dead",
                f.name
            );
        }

        // Logout of the old id itself (the request renewing it came second and found nothing,
        // or there was no renewal): a tombstone, never forwarded.
        let old = nearly_due(h, &clock, &o).await;
        let mut a = open(h, Some(&old), &o).await;
        let mut logout = open(h, Some(&old), &o).await;
        logout.invalidate(h).await.unwrap();
        save(&mut logout, h).await;
        let after_logout = logout.id().to_owned();
        clock.advance(1000);
        a.put("theme", json!("dark")).unwrap();
        assert_eq!(save(&mut a, h).await, SaveOutcome::Dropped, "{}", f.name);
        assert_ne!(a.id(), after_logout, "{}: never to the new session", f.name);
        assert!(!open(h, Some(&old), &o).await.record_exists(), "{}", f.name);
    }
}

#[tokio::test]
async fn the_save_steps_the_bridge_follows() {
    use ostro_session_core::AfterConflict;
    let clock = ManualClock::new(T0);
    let h = ArraySessionHandler::new(600.0, Some(Arc::new(clock.clone()))).unwrap();
    let cipher = Arc::new(Cipher::new(&["renewal-test-key-0123456789abcdefghijkl"]).unwrap());
    let o = SessionOptions {
        cipher: Some(cipher),
        ..opts(&clock, 15, 30)
    };
    let old = nearly_due(&h, &clock, &o).await;
    let mut a = open(&h, Some(&old), &o).await;
    clock.advance(1000);
    let new = open(&h, Some(&old), &o).await.id().to_owned();
    a.put("theme", json!("dark")).unwrap();
    let base = a.base().to_owned();
    let ostro_session_core::SaveAction::Write(p) = a.prepare_save_for(false, true).unwrap() else {
        panic!("a change writes");
    };
    let current = match h
        .write_if_unchanged(&old, &p, &base, &WriteMeta::default())
        .await
    {
        Ok(ostro_session_core::CasOutcome::Conflict(c)) => c,
        other => panic!("the marker refuses the write: {other:?}"),
    };
    assert_eq!(
        a.after_conflict(current).unwrap(),
        AfterConflict::Follow(new.clone())
    );
    assert_eq!(a.id(), new);
    let raw = h.read(&new).await.unwrap();
    let AfterConflict::Retry(p) = a.after_conflict(raw.clone()).unwrap() else {
        panic!("rebased onto the renewed record");
    };
    assert_eq!(
        h.write_if_unchanged(&new, &p, &raw, &WriteMeta::default())
            .await
            .unwrap(),
        ostro_session_core::CasOutcome::Written
    );
    a.saved_as(p);
    let check = open(&h, Some(&new), &o).await;
    assert_eq!(
        check.get("theme"),
        Some(&json!("dark")),
        "sealed for the new id"
    );
    assert_eq!(check.get("user"), Some(&json!("ada")));

    // An unchanged session whose id was not due when it loaded, due now: a compare-and-set
    // write on a driver that compares, a touch on one that does not.
    let old = nearly_due(&h, &clock, &o).await;
    let mut r = open(&h, Some(&old), &o).await;
    let mut t = open(&h, Some(&old), &o).await;
    clock.advance(1000);
    assert!(matches!(
        r.prepare_save_for(false, true).unwrap(),
        ostro_session_core::SaveAction::Write(_)
    ));
    assert_eq!(
        t.prepare_save_for(false, false).unwrap(),
        ostro_session_core::SaveAction::Touch
    );
    // Not due: a touch either way.
    let mut u = open(&h, Some(&old), &o).await;
    clock.set(T0 + MIN);
    assert_eq!(
        u.prepare_save_for(false, true).unwrap(),
        ostro_session_core::SaveAction::Touch
    );
}
