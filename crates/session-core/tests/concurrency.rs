//! Overlapping requests on one session: saves compare-and-set and replay (issue 12), on the
//! array driver and on a handler whose record changes on every read.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use async_trait::async_trait;
use ostro_session_core::session::SaveOutcome;
use ostro_session_core::{
    ArraySessionHandler, CasOutcome, Result, Session, SessionHandler, SessionOptions, WriteMeta,
};
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};

fn open(id: Option<&str>) -> Session {
    Session::new("ostro_session", id, SessionOptions::default()).unwrap()
}

async fn seeded(h: &ArraySessionHandler) -> String {
    let mut s = open(None);
    s.start(h).await.unwrap();
    s.put("visits", json!(0)).unwrap();
    s.put("cart", json!([])).unwrap();
    s.save(h, &WriteMeta::default()).await.unwrap();
    s.id().to_owned()
}

#[tokio::test]
async fn interleaved_requests_lose_nothing() {
    let h = ArraySessionHandler::new(120.0, None).unwrap();
    let id = seeded(&h).await;
    // Fifty requests all load before any saves: the worst interleaving.
    let mut reqs = Vec::new();
    for n in 0..50 {
        let mut s = open(Some(&id));
        s.start(&h).await.unwrap();
        s.increment("visits", 1.0).unwrap();
        s.push("cart", json!(n)).unwrap();
        s.put(&format!("k{n}"), json!(n)).unwrap();
        reqs.push(s);
    }
    for s in &mut reqs {
        assert_eq!(
            s.save(&h, &WriteMeta::default()).await.unwrap(),
            SaveOutcome::Written
        );
    }
    let mut after = open(Some(&id));
    after.start(&h).await.unwrap();
    assert_eq!(after.get("visits"), Some(&json!(50)));
    assert_eq!(after.get("cart").unwrap().as_array().unwrap().len(), 50);
    for n in 0..50 {
        assert_eq!(after.get(&format!("k{n}")), Some(&json!(n)), "key k{n}");
    }
}

#[tokio::test]
async fn a_logout_sticks_against_writers_that_loaded_before_it() {
    let h = ArraySessionHandler::new(120.0, None).unwrap();
    let id = seeded(&h).await;
    let mut writer = open(Some(&id));
    writer.start(&h).await.unwrap();
    writer.put("user", json!("alice")).unwrap();
    let mut reader = open(Some(&id));
    reader.start(&h).await.unwrap();

    let mut logout = open(Some(&id));
    logout.start(&h).await.unwrap();
    logout.invalidate(&h).await.unwrap();
    logout.save(&h, &WriteMeta::default()).await.unwrap();

    assert_eq!(
        writer.save(&h, &WriteMeta::default()).await.unwrap(),
        SaveOutcome::Dropped
    );
    assert_eq!(
        reader.save(&h, &WriteMeta::default()).await.unwrap(),
        SaveOutcome::Dropped
    );
    assert_eq!(h.read(&id).await.unwrap(), "", "the old id stays gone");
}

#[tokio::test]
async fn a_concurrent_flash_survives_another_requests_ageing() {
    let h = ArraySessionHandler::new(120.0, None).unwrap();
    let id = seeded(&h).await;
    let mut slow = open(Some(&id));
    slow.start(&h).await.unwrap();
    slow.put("seen", json!(true)).unwrap();
    let mut flasher = open(Some(&id));
    flasher.start(&h).await.unwrap();
    flasher.flash("status", json!("saved")).unwrap();
    flasher.save(&h, &WriteMeta::default()).await.unwrap();
    slow.save(&h, &WriteMeta::default()).await.unwrap();

    let mut next = open(Some(&id));
    next.start(&h).await.unwrap();
    assert_eq!(next.get("status"), Some(&json!("saved")));
    assert_eq!(next.get("seen"), Some(&json!(true)));
}

/// A store whose record changes on every read and never matches: a save must end in a
/// clear error after the bound, writing nothing.
struct Churning(AtomicU64);

#[async_trait]
impl SessionHandler for Churning {
    async fn read(&self, _id: &str) -> Result<String> {
        let n = self.0.fetch_add(1, Ordering::SeqCst);
        Ok(format!(r#"{{"_token":"t","n":{n}}}"#))
    }
    async fn write(&self, _: &str, _: &str, _: &WriteMeta) -> Result<()> {
        // An unconditional write must never happen on a handler that compares.
        Err(ostro_session_core::SessionError::Handler(
            "unconditional write".into(),
        ))
    }
    async fn destroy(&self, _: &str) -> Result<()> {
        Ok(())
    }
    async fn gc(&self, _: u64) -> Result<u64> {
        Ok(0)
    }
    async fn touch(&self, _: &str) -> Result<bool> {
        Ok(true)
    }
    async fn write_if_unchanged(
        &self,
        id: &str,
        _: &str,
        _: &str,
        _: &WriteMeta,
    ) -> Result<CasOutcome> {
        Ok(CasOutcome::Conflict(self.read(id).await?))
    }
    fn supports_cas(&self) -> bool {
        true
    }
}

#[tokio::test]
async fn a_record_that_never_settles_ends_in_a_conflict_error() {
    let h = Churning(AtomicU64::new(0));
    let mut s = open(None);
    s.start(&h).await.unwrap();
    s.increment("n", 1.0).unwrap();
    let err = s.save(&h, &WriteMeta::default()).await.unwrap_err();
    assert_eq!(err.code(), "ERR_SESSION_CONFLICT");
    assert!(err.to_string().contains("attempts"), "{err}");
}
