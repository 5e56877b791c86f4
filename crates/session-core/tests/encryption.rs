//! Sealed payloads through a real handler: what reaches storage, what opens, and what reads as
//! no record.
#![allow(clippy::unwrap_used)]

use ostro_session_core::crypto::{self, Cipher};
use ostro_session_core::token::{verify_ostro_token, TokenFormat};
use ostro_session_core::{ArraySessionHandler, Session, SessionHandler, SessionOptions, WriteMeta};
use serde_json::json;
use std::sync::Arc;

const KEY: &str = "base64:dGhpcyBpcyBhIHRlc3Qga2V5IG9mIDMyIGJ5dGVzIQ==";
const OLD: &str = "base64:b2xkIGtleSBvZiB0aGlydHktdHdvIGJ5dGVzIGxvbmc=";

fn opts(keys: &[&str], migrate: bool) -> SessionOptions {
    SessionOptions {
        cipher: Some(Arc::new(Cipher::new(keys).unwrap())),
        encrypt_migrate: migrate,
        ..SessionOptions::default()
    }
}

async fn saved(h: &ArraySessionHandler, o: SessionOptions) -> Session {
    let mut s = Session::new("ostro_session", None, o).unwrap();
    s.start(h).await.unwrap();
    s.put("secret", json!("swordfish")).unwrap();
    s.save(h, &WriteMeta::default()).await.unwrap();
    s
}

#[tokio::test]
async fn payloads_are_unreadable_at_rest_and_open_again() {
    let h = ArraySessionHandler::new(120.0, None).unwrap();
    let s = saved(&h, opts(&[KEY], false)).await;
    let raw = h.read(s.id()).await.unwrap();
    assert!(crypto::is_sealed(&raw));
    assert!(!raw.contains("swordfish") && !raw.contains("secret"));

    let mut again = Session::new("ostro_session", Some(s.id()), opts(&[KEY], false)).unwrap();
    again.start(&h).await.unwrap();
    assert!(again.record_exists());
    assert_eq!(again.get("secret"), Some(&json!("swordfish")));
    assert!(!again.is_dirty());
}

#[tokio::test]
async fn two_seals_of_the_same_data_differ() {
    let h = ArraySessionHandler::new(120.0, None).unwrap();
    let mut s = saved(&h, opts(&[KEY], false)).await;
    let first = h.read(s.id()).await.unwrap();
    s.start(&h).await.unwrap();
    s.mark_dirty();
    s.save(&h, &WriteMeta::default()).await.unwrap();
    let second = h.read(s.id()).await.unwrap();
    assert_ne!(first, second);
}

#[tokio::test]
async fn a_ciphertext_moved_to_another_id_opens_as_empty() {
    let h = ArraySessionHandler::new(120.0, None).unwrap();
    let a = saved(&h, opts(&[KEY], false)).await;
    let b = saved(&h, opts(&[KEY], false)).await;
    let stolen = h.read(a.id()).await.unwrap();
    h.write(b.id(), &stolen, &WriteMeta::default())
        .await
        .unwrap();
    let mut s = Session::new("ostro_session", Some(b.id()), opts(&[KEY], false)).unwrap();
    s.start(&h).await.unwrap();
    assert_eq!(s.get("secret"), None);
    assert!(
        !s.record_exists(),
        "an unopenable payload reads as no record"
    );
}

#[tokio::test]
async fn plaintext_reads_as_empty_unless_migrating_then_is_resealed() {
    let h = ArraySessionHandler::new(120.0, None).unwrap();
    let plain = saved(&h, SessionOptions::default()).await;
    assert!(h.read(plain.id()).await.unwrap().contains("swordfish"));

    let mut strict = Session::new("ostro_session", Some(plain.id()), opts(&[KEY], false)).unwrap();
    strict.start(&h).await.unwrap();
    assert_eq!(strict.get("secret"), None);
    assert!(!strict.record_exists());

    let mut m = Session::new("ostro_session", Some(plain.id()), opts(&[KEY], true)).unwrap();
    m.start(&h).await.unwrap();
    assert_eq!(m.get("secret"), Some(&json!("swordfish")));
    assert!(m.is_dirty(), "accepted plaintext must be re-sealed");
    m.save(&h, &WriteMeta::default()).await.unwrap();
    let raw = h.read(plain.id()).await.unwrap();
    assert!(crypto::is_sealed(&raw) && !raw.contains("swordfish"));
}

#[tokio::test]
async fn previous_keys_open_and_the_payload_moves_to_the_current_key() {
    let h = ArraySessionHandler::new(120.0, None).unwrap();
    let s = saved(&h, opts(&[OLD], false)).await;
    let old_raw = h.read(s.id()).await.unwrap();

    let mut without = Session::new("ostro_session", Some(s.id()), opts(&[KEY], false)).unwrap();
    without.start(&h).await.unwrap();
    assert_eq!(without.get("secret"), None);

    let mut rotated =
        Session::new("ostro_session", Some(s.id()), opts(&[KEY, OLD], false)).unwrap();
    rotated.start(&h).await.unwrap();
    assert_eq!(rotated.get("secret"), Some(&json!("swordfish")));
    assert!(rotated.is_dirty());
    rotated.save(&h, &WriteMeta::default()).await.unwrap();
    let new_raw = h.read(s.id()).await.unwrap();
    assert_ne!(new_raw, old_raw);
    let mut current_only =
        Session::new("ostro_session", Some(s.id()), opts(&[KEY], false)).unwrap();
    current_only.start(&h).await.unwrap();
    assert_eq!(current_only.get("secret"), Some(&json!("swordfish")));
}

#[tokio::test]
async fn a_migrated_id_is_sealed_under_the_new_id() {
    let h = ArraySessionHandler::new(120.0, None).unwrap();
    let mut s = saved(&h, opts(&[KEY], false)).await;
    s.start(&h).await.unwrap();
    s.regenerate(&h, true).await.unwrap();
    s.save(&h, &WriteMeta::default()).await.unwrap();
    let mut again = Session::new("ostro_session", Some(s.id()), opts(&[KEY], false)).unwrap();
    again.start(&h).await.unwrap();
    assert_eq!(again.get("secret"), Some(&json!("swordfish")));
}

#[tokio::test]
async fn ostro_tokens_verify_against_the_key() {
    let h = ArraySessionHandler::new(120.0, None).unwrap();
    let o = SessionOptions {
        token: TokenFormat::Ostro { key: KEY.into() },
        ..SessionOptions::default()
    };
    let mut s = Session::new("ostro_session", None, o).unwrap();
    s.start(&h).await.unwrap();
    let t = s.token().unwrap().to_owned();
    assert!(verify_ostro_token(KEY, &t));
    let t2 = s.regenerate_token().unwrap();
    assert_ne!(t, t2);
    assert!(verify_ostro_token(KEY, &t2));
}
