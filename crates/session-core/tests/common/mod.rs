//! The handler conformance suite: one set of cases that every built-in driver must pass.
//!
//! A test file declares `mod common; mod support;` and stamps the suite out per driver:
//!
//! ```ignore
//! handler_conformance!(array, Fixture::clocked(|minutes, clock| {
//!     Arc::new(ArraySessionHandler::new(minutes, Some(clock)).unwrap())
//! }));
//! ```
//!
//! Drivers that compute expiry themselves get a [`ManualClock`] and are checked exactly at the
//! lifetime and one second past it, without sleeping. Servers that expire keys on their own
//! clock (redis, memcached) get a 2 s lifetime and a polling deadline instead.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ostro_session_core::clock::{ManualClock, SharedClock};
use ostro_session_core::{Session, SessionHandler, SessionOptions, WriteMeta};
use serde_json::json;
use std::any::Any;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A fixed start time (ms) for manual clocks: 2023-11-14T22:13:20Z.
pub const T0: i64 = 1_700_000_000_000;

type Make = dyn Fn(f64) -> Arc<dyn SessionHandler> + Send + Sync;

/// How to build handlers of one driver, all sharing one storage (dir, server, database).
pub struct Fixture {
    make: Box<Make>,
    /// The clock handed to every handler, for drivers that compute expiry themselves.
    pub clock: Option<ManualClock>,
    /// The payload size the driver must round-trip.
    pub max_payload: usize,
    /// Whether `gc` removes and counts expired records (servers expire on their own: 0).
    pub gc_counts: bool,
    /// Whether two handlers from this fixture see the same records (not so for `array`).
    pub shared_storage: bool,
    // Keeps a temp dir or a server process alive as long as the fixture.
    _keep: Box<dyn Any + Send + Sync>,
}

impl Fixture {
    /// A driver that computes expiry itself, driven by a manual clock starting at [`T0`].
    pub fn clocked(
        make: impl Fn(f64, SharedClock) -> Arc<dyn SessionHandler> + Send + Sync + 'static,
    ) -> Self {
        let clock = ManualClock::new(T0);
        let shared = clock.clone();
        Self {
            make: Box::new(move |m| make(m, Arc::new(shared.clone()) as SharedClock)),
            clock: Some(clock),
            max_payload: 1 << 20,
            gc_counts: true,
            shared_storage: true,
            _keep: Box::new(()),
        }
    }

    /// A server that expires keys itself; `keep` (the server process, a temp dir) lives as long
    /// as the fixture.
    pub fn server(
        keep: impl Any + Send + Sync,
        make: impl Fn(f64) -> Arc<dyn SessionHandler> + Send + Sync + 'static,
    ) -> Self {
        Self {
            make: Box::new(make),
            clock: None,
            max_payload: 1 << 20,
            gc_counts: false,
            shared_storage: true,
            _keep: Box::new(keep),
        }
    }

    /// Keeps `keep` alive with the fixture (a temp dir the handler writes to).
    pub fn keeping(mut self, keep: impl Any + Send + Sync) -> Self {
        self._keep = Box::new(keep);
        self
    }

    /// For drivers whose handlers each hold their own records (in memory).
    pub fn unshared(mut self) -> Self {
        self.shared_storage = false;
        self
    }

    /// Sets the payload size to round-trip.
    pub fn with_max_payload(mut self, bytes: usize) -> Self {
        self.max_payload = bytes;
        self
    }

    /// A handler whose sessions live `minutes`.
    pub fn handler(&self, minutes: f64) -> Arc<dyn SessionHandler> {
        (self.make)(minutes)
    }

    fn advance(&self, ms: i64) {
        if let Some(c) = &self.clock {
            c.advance(ms);
        }
    }
}

/// Stamps out one `#[tokio::test]` per conformance case in a module named `$name`, each with a
/// fresh fixture from `$fixture` (an expression, evaluated once per test).
#[macro_export]
macro_rules! handler_conformance {
    ($name:ident, $fixture:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            $crate::handler_conformance!(@cases $fixture;
                unknown_id_reads_empty,
                write_read_overwrite_destroy,
                sessions_are_independent,
                touch_extends_life,
                touch_on_a_missing_record_reports_no_record,
                tombstones_are_told_apart,
                expires_at_the_lifetime,
                gc_counts,
                large_payloads_round_trip,
                unicode_and_every_json_string_char,
                a_thousand_concurrent_sessions,
                session_start_save_start,
            );
        }
    };
    (@cases $fixture:expr; $($case:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let fixture = $fixture;
                $crate::common::$case(&fixture).await;
            }
        )+
    };
}

/// A distinct valid id per `n`, unique per process run so that server tests never collide.
pub fn sid(tag: &str, n: usize) -> String {
    let mut s = format!("{tag}{n}");
    s.retain(|c| c.is_ascii_alphanumeric());
    format!("{s:A>40}")
}

fn meta() -> WriteMeta {
    WriteMeta::default()
}

pub async fn unknown_id_reads_empty(f: &Fixture) {
    let h = f.handler(120.0);
    h.open().await.unwrap();
    assert_eq!(h.read(&sid("unknown", 1)).await.unwrap(), "");
    h.close().await.unwrap();
}

pub async fn write_read_overwrite_destroy(f: &Fixture) {
    let h = f.handler(120.0);
    let id = sid("wrod", 1);
    h.write(&id, r#"{"a":1}"#, &meta()).await.unwrap();
    assert_eq!(h.read(&id).await.unwrap(), r#"{"a":1}"#);
    h.write(&id, r#"{"a":2,"b":[true]}"#, &meta())
        .await
        .unwrap();
    assert_eq!(h.read(&id).await.unwrap(), r#"{"a":2,"b":[true]}"#);
    h.destroy(&id).await.unwrap();
    assert_eq!(h.read(&id).await.unwrap(), "");
    // Destroying what is not there is not an error.
    h.destroy(&id).await.unwrap();
    h.destroy(&sid("wrod", 2)).await.unwrap();
}

pub async fn sessions_are_independent(f: &Fixture) {
    let h = f.handler(120.0);
    let (a, b) = (sid("indep", 1), sid("indep", 2));
    h.write(&a, "\"a\"", &meta()).await.unwrap();
    h.write(&b, "\"b\"", &meta()).await.unwrap();
    h.destroy(&a).await.unwrap();
    assert_eq!(h.read(&a).await.unwrap(), "");
    assert_eq!(h.read(&b).await.unwrap(), "\"b\"");
    if f.shared_storage {
        // A second handler on the same storage (another process, say) sees the same records.
        let h2 = f.handler(120.0);
        assert_eq!(h2.read(&b).await.unwrap(), "\"b\"");
    }
}

async fn sleep_until(t: Instant) {
    tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await;
}

pub async fn touch_extends_life(f: &Fixture) {
    let id = sid("touch", 1);
    if f.clock.is_some() {
        let h = f.handler(2.0);
        h.write(&id, "{}", &meta()).await.unwrap();
        f.advance(100_000);
        assert!(h.touch(&id).await.unwrap());
        // Past the original expiry (120 s after the write), alive thanks to the touch.
        f.advance(120_000);
        assert_eq!(h.read(&id).await.unwrap(), "{}");
        f.advance(1_000);
        assert_eq!(
            h.read(&id).await.unwrap(),
            "",
            "expired one second past the touched lifetime"
        );
        assert!(!h.touch(&id).await.unwrap(), "touch of an expired record");
        return;
    }
    // A server's expiry is only known to a second (memcached keeps time in whole seconds, so a
    // key with a ttl of L s expires between L-1 and L+1 s after it was set). With L = 5: touched
    // at 3 s (still alive) it must be alive at 6.5 s, when the original would certainly be gone.
    let h = f.handler(5.0 / 60.0);
    let t0 = Instant::now();
    h.write(&id, "{}", &meta()).await.unwrap();
    sleep_until(t0 + Duration::from_secs(3)).await;
    assert!(h.touch(&id).await.unwrap(), "touch of a live record");
    sleep_until(t0 + Duration::from_millis(6500)).await;
    assert_eq!(
        h.read(&id).await.unwrap(),
        "{}",
        "alive after its first lifetime thanks to touch"
    );
}

pub async fn touch_on_a_missing_record_reports_no_record(f: &Fixture) {
    let h = f.handler(120.0);
    let id = sid("touchmiss", 1);
    assert!(!h.touch(&id).await.unwrap());
    h.write(&id, "{}", &meta()).await.unwrap();
    assert!(h.touch(&id).await.unwrap());
    h.destroy(&id).await.unwrap();
    assert!(!h.touch(&id).await.unwrap());
    // A touch must not create a record.
    assert_eq!(h.read(&id).await.unwrap(), "");
}

/// `is_tombstone` tells a destroyed session (its live tombstone) from a live record and from an
/// id with no record, and a tombstone lasts the lifetime (drivers with a clock: exactly at it,
/// not one second past it).
pub async fn tombstones_are_told_apart(f: &Fixture) {
    let h = f.handler(2.0);
    let (live, gone, never) = (sid("tomb", 1), sid("tomb", 2), sid("tomb", 3));
    h.write(&live, "{}", &meta()).await.unwrap();
    h.write(&gone, "{}", &meta()).await.unwrap();
    assert!(!h.is_tombstone(&gone).await.unwrap(), "a live record");
    h.destroy(&gone).await.unwrap();
    // Destroying an id that has no record leaves nothing behind.
    h.destroy(&never).await.unwrap();
    assert_eq!(
        h.read(&gone).await.unwrap(),
        "",
        "a tombstone reads as no session"
    );
    assert!(
        h.is_tombstone(&gone).await.unwrap(),
        "the destroyed session"
    );
    assert!(!h.is_tombstone(&live).await.unwrap(), "a live record");
    assert!(
        !h.is_tombstone(&never).await.unwrap(),
        "an id with no record"
    );
    if f.clock.is_some() {
        f.advance(120_000);
        assert!(
            h.is_tombstone(&gone).await.unwrap(),
            "alive exactly at the lifetime"
        );
        f.advance(1_000);
        assert!(
            !h.is_tombstone(&gone).await.unwrap(),
            "expired one second past the lifetime"
        );
    }
}

pub async fn expires_at_the_lifetime(f: &Fixture) {
    let id = sid("expiry", 1);
    if f.clock.is_some() {
        let h = f.handler(2.0);
        h.write(&id, "{}", &meta()).await.unwrap();
        f.advance(120_000);
        assert_eq!(
            h.read(&id).await.unwrap(),
            "{}",
            "alive exactly at the lifetime"
        );
        f.advance(1_000);
        assert_eq!(
            h.read(&id).await.unwrap(),
            "",
            "gone one second past the lifetime"
        );
        return;
    }
    // 2 s lifetime on the server's clock: present at once, gone by lifetime + 1 s.
    let h = f.handler(2.0 / 60.0);
    let t0 = Instant::now();
    h.write(&id, "{}", &meta()).await.unwrap();
    assert_eq!(h.read(&id).await.unwrap(), "{}");
    assert!(
        t0.elapsed() < Duration::from_secs(1),
        "the first read was too slow to mean anything"
    );
    let deadline = t0 + Duration::from_millis(3500);
    loop {
        if h.read(&id).await.unwrap().is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still present more than 1 s past its 2 s lifetime"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Never before lifetime - 1 s (memcached's whole-second clock), so the TTL was not 0 or 1.
    assert!(
        t0.elapsed() >= Duration::from_millis(1000),
        "expired after {:?}",
        t0.elapsed()
    );
}

pub async fn gc_counts(f: &Fixture) {
    let h = f.handler(2.0);
    let (a, b, c) = (sid("gc", 1), sid("gc", 2), sid("gc", 3));
    h.write(&a, "1", &meta()).await.unwrap();
    h.write(&b, "2", &meta()).await.unwrap();
    if !f.gc_counts {
        assert_eq!(h.gc(120).await.unwrap(), 0);
        assert_eq!(
            h.read(&a).await.unwrap(),
            "1",
            "gc must not remove live records"
        );
        return;
    }
    f.advance(120_000);
    h.write(&c, "3", &meta()).await.unwrap();
    assert_eq!(
        h.gc(120).await.unwrap(),
        0,
        "nothing is idle strictly longer than 120 s yet"
    );
    f.advance(1_000);
    assert_eq!(h.gc(120).await.unwrap(), 2);
    assert_eq!(h.gc(120).await.unwrap(), 0, "already collected");
    assert_eq!(h.read(&c).await.unwrap(), "3");
    f.advance(-121_000);
    assert_eq!(
        h.read(&a).await.unwrap(),
        "",
        "collected records are gone for good"
    );
}

fn payload_of_size(n: usize, fill: char) -> String {
    let head = r#"{"big":""#;
    let tail = r#""}"#;
    let mut s = String::with_capacity(n);
    s.push_str(head);
    while s.len() < n - tail.len() {
        s.push(fill);
    }
    s.push_str(tail);
    assert_eq!(s.len(), n);
    s
}

pub async fn large_payloads_round_trip(f: &Fixture) {
    let h = f.handler(120.0);
    let id = sid("large", 1);
    let big = payload_of_size(f.max_payload, 'x');
    h.write(&id, &big, &meta()).await.unwrap();
    assert!(
        h.read(&id).await.unwrap() == big,
        "the large payload came back different"
    );
    let big2 = payload_of_size(f.max_payload, 'y');
    h.write(&id, &big2, &meta()).await.unwrap();
    assert!(h.read(&id).await.unwrap() == big2);
    h.write(&id, "{}", &meta()).await.unwrap();
    assert_eq!(h.read(&id).await.unwrap(), "{}");
}

/// Every scalar value of the Basic Multilingual Plane (control characters, NUL, CR/LF and
/// U+FFFF included) and every 64th astral one up to U+10FFFF.
pub fn every_char() -> String {
    let bmp = (0u32..=0xFFFF).filter_map(char::from_u32);
    let astral = (0x1_0000u32..=0x10_FFFF)
        .step_by(64)
        .chain([0x10_FFFF])
        .filter_map(char::from_u32);
    bmp.chain(astral).collect()
}

pub async fn unicode_and_every_json_string_char(f: &Fixture) {
    let h = f.handler(120.0);
    let text = "Grüße, 你好, مرحبا, 👋🏽 👨‍👩‍👧‍👦 🇫🇷, e\u{301}, \u{200d}\u{feff}";
    let doc = serde_json::to_string(&json!({ "text": text, "all": every_char() })).unwrap();
    let raw = every_char();
    for (n, payload) in [(1, text.to_owned()), (2, doc.clone()), (3, raw.clone())] {
        let id = sid("unicode", n);
        h.write(&id, &payload, &meta()).await.unwrap();
        let back = h.read(&id).await.unwrap();
        assert!(
            back == payload,
            "payload {n} came back different ({} vs {} bytes)",
            back.len(),
            payload.len()
        );
    }
    let back: serde_json::Value =
        serde_json::from_str(&h.read(&sid("unicode", 2)).await.unwrap()).unwrap();
    assert_eq!(back["all"].as_str().unwrap(), raw);
    assert_eq!(back["text"].as_str().unwrap(), text);
}

pub async fn a_thousand_concurrent_sessions(f: &Fixture) {
    let h = f.handler(120.0);
    let payload = |i: usize| format!(r#"{{"n":{i},"s":"{}"}}"#, "é".repeat(i % 50));
    let mut writes = tokio::task::JoinSet::new();
    for i in 0..1000 {
        let h = Arc::clone(&h);
        writes.spawn(async move {
            h.write(&sid("conc", i), &payload(i), &WriteMeta::default())
                .await
        });
    }
    while let Some(r) = writes.join_next().await {
        r.unwrap().unwrap();
    }
    let mut reads = tokio::task::JoinSet::new();
    for i in 0..1000 {
        let h = Arc::clone(&h);
        reads.spawn(async move { (i, h.read(&sid("conc", i)).await) });
    }
    let mut seen = 0;
    while let Some(r) = reads.join_next().await {
        let (i, got) = r.unwrap();
        assert_eq!(got.unwrap(), payload(i), "session {i}");
        seen += 1;
    }
    assert_eq!(seen, 1000);
}

pub async fn session_start_save_start(f: &Fixture) {
    let h = f.handler(120.0);
    let mut s = Session::new("ostro_session", None, SessionOptions::default()).unwrap();
    s.start(h.as_ref()).await.unwrap();
    s.put("user.name", json!("Ada 👩‍💻")).unwrap();
    s.save(h.as_ref(), &meta()).await.unwrap();
    let mut again = Session::new("ostro_session", Some(s.id()), SessionOptions::default()).unwrap();
    again.start(h.as_ref()).await.unwrap();
    assert_eq!(again.get("user.name"), Some(&json!("Ada 👩‍💻")));
}
