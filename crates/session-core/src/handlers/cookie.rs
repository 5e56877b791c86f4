//! The cookie driver: the whole session lives in the client's cookie, sealed.
//!
//! A [`CookieCodec`] is shared by all requests (the cipher, the cookie name, the lifetime). Each
//! request builds its own [`CookieSessionHandler`] from its own cookie value, so no request
//! state ever sits on a shared handler. The cookie value is `v1.` + base64url(nonce ‖ ciphertext
//! ‖ tag) as [`crate::crypto`] seals it, with the cookie name as associated data; the sealed
//! plaintext is `<expiry ms>.<session id>.<payload>`, so a copied cookie stops working after the
//! lifetime even if the browser keeps it.
//!
//! A cookie-driver session cannot be revoked server-side before it expires: the server keeps
//! nothing, so an old cookie stays valid until its sealed expiry.

use crate::clock::{self, SharedClock};
use crate::crypto::Cipher;
use crate::error::{Result, SessionError};
use crate::handler::{SessionHandler, WriteMeta};
use crate::id;
use async_trait::async_trait;
use std::sync::{Arc, Mutex, MutexGuard};

/// Largest `name=value` a browser is required to keep (RFC 6265 §6.1).
pub const MAX_COOKIE_BYTES: usize = 4096;

/// Seals and opens cookie values for one cookie name; shared by all requests.
pub struct CookieCodec {
    cipher: Arc<Cipher>,
    name: String,
    lifetime_ms: i64,
    clock: SharedClock,
    max_bytes: usize,
}

impl std::fmt::Debug for CookieCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CookieCodec")
            .field("name", &self.name)
            .field("lifetime_ms", &self.lifetime_ms)
            .field("max_bytes", &self.max_bytes)
            .finish_non_exhaustive()
    }
}

impl CookieCodec {
    /// A codec for the cookie `name`, sealing with `cipher`; values expire `minutes` after
    /// they were sealed.
    ///
    /// # Errors
    /// [`SessionError::InvalidOption`] for an empty name or a bad lifetime.
    pub fn new(
        name: &str,
        cipher: Arc<Cipher>,
        minutes: f64,
        clock: Option<SharedClock>,
    ) -> Result<Self> {
        if name.is_empty() {
            return Err(SessionError::InvalidOption(
                "the cookie driver needs a cookie name".into(),
            ));
        }
        Ok(Self {
            cipher,
            name: name.to_owned(),
            lifetime_ms: clock::lifetime_ms(minutes)?,
            clock: clock.unwrap_or_else(clock::system),
            max_bytes: MAX_COOKIE_BYTES,
        })
    }

    /// Replaces the `name=value` size limit (4096 by default).
    #[must_use]
    pub fn with_max_bytes(mut self, max: usize) -> Self {
        self.max_bytes = max;
        self
    }

    /// The cookie name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The cookie value carrying `payload` for session `id`, expiring one lifetime from now.
    ///
    /// # Errors
    /// [`SessionError::TooLarge`] when `name=value` would exceed the limit (nothing is
    /// truncated); [`SessionError::InvalidId`] for an id outside the allowed shapes.
    pub fn seal(&self, id: &str, payload: &str) -> Result<String> {
        id::check_storage_id(id)?;
        let expires = self.clock.now_ms().saturating_add(self.lifetime_ms);
        let plaintext = format!("{expires}.{id}.{payload}");
        let value = self
            .cipher
            .seal(plaintext.as_bytes(), self.name.as_bytes())?;
        let size = self.name.len() + 1 + value.len();
        if size > self.max_bytes {
            return Err(SessionError::TooLarge(format!(
                "the session cookie would be {size} bytes, over the cookie driver's limit of {} bytes; nothing was sent (use a server-side driver for larger sessions)",
                self.max_bytes
            )));
        }
        Ok(value)
    }

    /// The session id and payload sealed in `value`; `None` when it does not open (tampered,
    /// another key or cookie name, not sealed) or has expired.
    pub fn open(&self, value: &str) -> Option<(String, String)> {
        let (plain, _) = self.cipher.open_str(value, self.name.as_bytes())?;
        let (expires, rest) = plain.split_once('.')?;
        let expires: i64 = expires.parse().ok()?;
        if self.clock.now_ms() > expires {
            return None;
        }
        let (id, payload) = rest.split_once('.')?;
        id::check_storage_id(id).ok()?;
        Some((id.to_owned(), payload.to_owned()))
    }
}

/// What the response must do with the session cookie after a save.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CookieOut {
    /// Nothing was written: leave the cookie as it is.
    Unchanged,
    /// Send this value.
    Set(String),
    /// The session was destroyed and not written again: expire the cookie.
    Clear,
}

#[derive(Debug)]
struct State {
    // The session this request holds: the incoming one, then whatever was written.
    current: Option<(String, String)>,
    out: CookieOut,
}

/// The cookie driver for one request. Build one per request from that request's cookie value.
#[derive(Debug)]
pub struct CookieSessionHandler {
    codec: Arc<CookieCodec>,
    incoming_id: Option<String>,
    state: Mutex<State>,
}

impl CookieSessionHandler {
    /// A handler for a request whose session cookie value is `cookie` (already URL-decoded).
    pub fn new(codec: Arc<CookieCodec>, cookie: Option<&str>) -> Self {
        let current = cookie.and_then(|c| codec.open(c));
        Self {
            codec,
            incoming_id: current.as_ref().map(|(id, _)| id.clone()),
            state: Mutex::new(State {
                current,
                out: CookieOut::Unchanged,
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The session id sealed in the request's cookie, when it opened and had not expired.
    pub fn incoming_id(&self) -> Option<&str> {
        self.incoming_id.as_deref()
    }

    /// What to do with the response cookie.
    pub fn outgoing(&self) -> CookieOut {
        self.state().out.clone()
    }
}

#[async_trait]
impl SessionHandler for CookieSessionHandler {
    async fn read(&self, id: &str) -> Result<String> {
        Ok(match &self.state().current {
            Some((cid, payload)) if cid == id => payload.clone(),
            _ => String::new(),
        })
    }

    async fn write(&self, id: &str, data: &str, _meta: &WriteMeta) -> Result<()> {
        let value = self.codec.seal(id, data)?;
        let mut st = self.state();
        st.current = Some((id.to_owned(), data.to_owned()));
        st.out = CookieOut::Set(value);
        Ok(())
    }

    async fn destroy(&self, id: &str) -> Result<()> {
        let mut st = self.state();
        if st.current.as_ref().is_some_and(|(cid, _)| cid == id) {
            st.current = None;
            st.out = CookieOut::Clear;
        }
        Ok(())
    }

    async fn gc(&self, _max_lifetime_secs: u64) -> Result<u64> {
        // Expired cookies die in the browser or fail to open; there is nothing to collect.
        Ok(0)
    }

    async fn touch(&self, id: &str) -> Result<bool> {
        // The expiry is sealed inside the value, so refreshing it means sealing again.
        let current = match &self.state().current {
            Some((cid, payload)) if cid == id => payload.clone(),
            _ => return Ok(false),
        };
        let value = self.codec.seal(id, &current)?;
        self.state().out = CookieOut::Set(value);
        Ok(true)
    }

    fn is_inline(&self) -> bool {
        true
    }

    fn keeps_records(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::{Session, SessionOptions};
    use serde_json::json;

    fn codec(clock: &ManualClock) -> Arc<CookieCodec> {
        let cipher = Arc::new(Cipher::new(&["cookie-test-key-0123456789abcdefghij"]).unwrap());
        Arc::new(
            CookieCodec::new("ostro_session", cipher, 1.0, Some(Arc::new(clock.clone()))).unwrap(),
        )
    }

    fn value(h: &CookieSessionHandler) -> String {
        match h.outgoing() {
            CookieOut::Set(v) => v,
            other => panic!("expected a cookie, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_session_round_trips_through_the_cookie() {
        let clock = ManualClock::new(1_000_000);
        let c = codec(&clock);
        let h = CookieSessionHandler::new(Arc::clone(&c), None);
        assert_eq!(h.outgoing(), CookieOut::Unchanged);
        let mut s = Session::new("ostro_session", None, SessionOptions::default()).unwrap();
        s.start(&h).await.unwrap();
        s.put("cart", json!(["pear"])).unwrap();
        s.save(&h, &WriteMeta::default()).await.unwrap();
        let v = value(&h);
        assert!(v.starts_with("v1.") && !v.contains("pear"));

        let h2 = CookieSessionHandler::new(Arc::clone(&c), Some(&v));
        assert_eq!(h2.incoming_id(), Some(s.id()));
        let mut s2 =
            Session::new("ostro_session", h2.incoming_id(), SessionOptions::default()).unwrap();
        s2.start(&h2).await.unwrap();
        assert_eq!(s2.get("cart"), Some(&json!(["pear"])));
        // An unchanged session is touched: re-sealed with a fresh expiry.
        s2.save(&h2, &WriteMeta::default()).await.unwrap();
        assert_ne!(value(&h2), v);
    }

    #[tokio::test]
    async fn expiry_is_sealed_inside() {
        let clock = ManualClock::new(0);
        let c = codec(&clock);
        let h = CookieSessionHandler::new(Arc::clone(&c), None);
        h.write(&id::generate_id().unwrap(), "{}", &WriteMeta::default())
            .await
            .unwrap();
        let v = value(&h);
        clock.set(60_000);
        assert!(c.open(&v).is_some(), "alive at exactly the lifetime");
        clock.set(60_001);
        assert!(c.open(&v).is_none(), "dead just after");
    }

    #[tokio::test]
    async fn other_names_keys_and_tampering_do_not_open() {
        let clock = ManualClock::new(0);
        let c = codec(&clock);
        let h = CookieSessionHandler::new(Arc::clone(&c), None);
        h.write(
            &id::generate_id().unwrap(),
            "{\"a\":1}",
            &WriteMeta::default(),
        )
        .await
        .unwrap();
        let v = value(&h);
        let cipher = Arc::new(Cipher::new(&["cookie-test-key-0123456789abcdefghij"]).unwrap());
        let other_name =
            CookieCodec::new("other", cipher, 1.0, Some(Arc::new(clock.clone()))).unwrap();
        assert!(other_name.open(&v).is_none());
        let mut t = v.clone().into_bytes();
        t[10] = if t[10] == b'a' { b'b' } else { b'a' };
        assert!(c.open(&String::from_utf8(t).unwrap()).is_none());
        let h2 = CookieSessionHandler::new(Arc::clone(&c), Some("garbage"));
        assert_eq!(h2.incoming_id(), None);
        assert_eq!(h2.read(&id::generate_id().unwrap()).await.unwrap(), "");
    }

    #[tokio::test]
    async fn oversized_payloads_fail_and_destroy_clears() {
        let clock = ManualClock::new(0);
        let c = codec(&clock);
        let h = CookieSessionHandler::new(Arc::clone(&c), None);
        let id = id::generate_id().unwrap();
        let big = format!("{{\"a\":\"{}\"}}", "x".repeat(4000));
        let err = h.write(&id, &big, &WriteMeta::default()).await.unwrap_err();
        assert_eq!(err.code(), "ERR_SESSION_TOO_LARGE");
        assert_eq!(h.outgoing(), CookieOut::Unchanged);
        h.write(&id, "{}", &WriteMeta::default()).await.unwrap();
        h.destroy(&id).await.unwrap();
        assert_eq!(h.outgoing(), CookieOut::Clear);
        assert!(!h.touch(&id).await.unwrap());
        assert!(h.write("../x", "{}", &WriteMeta::default()).await.is_err());
    }
}
