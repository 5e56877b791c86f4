//! The session's lifecycle metadata, kept inside the payload, and the absolute timeout.
//!
//! Two reserved top-level keys hold unix seconds:
//! - `_created`: when the session was created. The absolute timeout
//!   ([`crate::SessionOptions::absolute_lifetime_secs`]) counts from it.
//! - `_id_at`: when the current id was issued (for id renewal).
//!
//! Rules (see also [`crate::Session`]):
//! - The enumerating readers (`all`, `all_json`, `only`, `except`) never show these keys, so what
//!   an app lists or dumps is unchanged. Point reads (`get`, `has`, `exists`) of the literal key
//!   answer truthfully: naming a reserved key is deliberate.
//! - The app cannot write them: `put` (and every writer built on it: `put_many`, `push`,
//!   `increment`, `merge`, `flash`, `now`) refuses a reserved key with
//!   [`crate::SessionError::Value`], and `forget`/`pull` of one does nothing. `flush` empties the
//!   app's data but keeps them, so that flushing cannot extend the absolute cap.
//! - `migrate`/`regenerate` keep `_created` and set `_id_at` to now. Moving a session that holds
//!   no app data (`flush` then `migrate`, which is what `invalidate` is) starts a new lifecycle:
//!   both keys are set to now.
//! - A payload without `_created` (written by 1.x, or before this feature) is treated as created
//!   when it is loaded; with an absolute timeout set, that stamp is written at the save of that
//!   request (a touch becomes a write, once), otherwise it rides along with the next write.
//! - Stamps are replayed on a concurrent record only where absent (see [`crate::ops`]): a
//!   concurrent request never resets another's creation time.
//!
//! Idle expiry is the handlers' work (they stop returning a record idle for longer than
//! `lifetime`); [`Expiry::Idle`] exists so that callers report both reasons the same way.
//!
//! Id renewal ([`crate::SessionOptions::renew_after_secs`]) moves a session whose id is older
//! than that to a new id at load, as `migrate(true)` would, and leaves a *forward marker* under
//! the old id (see [`forward_marker`]): for `renew_grace_secs` a request still carrying the old
//! id (sent before the new cookie arrived) loads the new session and gets the new cookie. After
//! that the marker reads as no session. `regenerate`/`invalidate` never leave one: forwarding a
//! login's or logout's old id would hand the session to whoever holds it (session fixation).
//!
//! A request that loaded the old id before the renewal and saves after it finds the marker in
//! its compare-and-set; inside the window the save follows it to the renewed id, replays its
//! operations there and the session (and so the cookie) takes that id (see
//! [`crate::Session::after_conflict`]). Past the window the marker reads as no session there too:
//! the save is dropped, and the marker is never overwritten.

use crate::crypto::Cipher;
use crate::error::Result;
use crate::lazy::{Slot, TopMap};
use serde_json::Value;

/// The reserved key holding the creation time (unix seconds).
pub const CREATED: &str = "_created";
/// The reserved key holding the time the current id was issued (unix seconds).
pub const ID_AT: &str = "_id_at";
/// Every reserved lifecycle key.
pub const RESERVED: [&str; 2] = [CREATED, ID_AT];

/// Why a loaded session was expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// Idle for longer than `lifetime` (the handler no longer held the record).
    Idle,
    /// Older than `absolute_lifetime` since it was created.
    Absolute,
}

impl Expiry {
    /// `'idle'` or `'absolute'`, the `reason` of an `expired` event.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::Absolute => "absolute",
        }
    }
}

/// A lifecycle event of a load, recorded by the engine for the binding to publish (channels
/// `ostro:session:<name>`, with [`Event::reason`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A new session: no record was found (or the one found had expired).
    Created,
    /// The record was found and loaded.
    Loaded,
    /// The record was found by following a renewed id's forward marker.
    Forwarded,
    /// The record found had expired; the session started over.
    Expired(Expiry),
    /// The id was renewed (`renew_after`).
    Renewed,
}

impl Event {
    /// The channel's event name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Loaded | Self::Forwarded => "loaded",
            Self::Expired(_) => "expired",
            Self::Renewed => "renewed",
        }
    }

    /// The message's `reason`, if any.
    pub fn reason(self) -> Option<&'static str> {
        match self {
            Self::Forwarded => Some("forwarded"),
            Self::Expired(e) => Some(e.as_str()),
            Self::Renewed => Some("renew_after"),
            Self::Created | Self::Loaded => None,
        }
    }
}

/// Whether `key` (a dot path allowed) names a reserved key or something inside one.
pub fn is_reserved(key: &str) -> bool {
    let top = key.split_once('.').map_or(key, |(t, _)| t);
    RESERVED.contains(&top) || top == crate::users::USER
}

/// Whether top-level `key` is kept out of what the enumerating readers show: the lifecycle keys
/// and the user link ([`crate::users::USER`], which unlike them `flush` clears).
pub fn is_hidden(key: &str) -> bool {
    RESERVED.contains(&key) || key == crate::users::USER
}

/// Decides, at load time, whether a session created at `created_secs` is past the absolute cap
/// at `now_secs`. Exactly `absolute_lifetime_secs` old is still alive; one second more is not.
/// No cap, or no creation time, never expires.
pub fn check_absolute(
    created_secs: Option<i64>,
    now_secs: i64,
    absolute_lifetime_secs: Option<u64>,
) -> Option<Expiry> {
    let cap = i64::try_from(absolute_lifetime_secs?).unwrap_or(i64::MAX);
    let age = now_secs.saturating_sub(created_secs?);
    (age > cap).then_some(Expiry::Absolute)
}

/// Decides, at load time, whether the id issued at `id_at_secs` is due for renewal at
/// `now_secs`: strictly older than `renew_after_secs`. No renewal set, or no issue time, never.
pub fn renewal_due(id_at_secs: Option<i64>, now_secs: i64, renew_after_secs: Option<u64>) -> bool {
    let (Some(after), Some(at)) = (renew_after_secs, id_at_secs) else {
        return false;
    };
    let after = i64::try_from(after).unwrap_or(i64::MAX);
    now_secs.saturating_sub(at) > after
}

/// First character of a forward marker. No payload starts with it (a payload is a JSON object,
/// sealed `v1.` text or a 1.x format), nor is it the tombstone, so every driver stores it as an
/// opaque record and an engine that does not know markers reads it as no session.
pub const FORWARD: char = '>';

/// The record a renewal leaves under the old id: `>` + the new id + `.` + the unix second the
/// grace window ends. With a cipher the part after `>` is sealed with the old id as associated
/// data, so someone able to write to the store (but without the key) cannot plant a marker that
/// forwards a victim's id to a session of their choosing.
///
/// # Errors
/// As [`Cipher::seal`].
pub fn forward_marker(
    target: &str,
    until_secs: i64,
    cipher: Option<&Cipher>,
    old_id: &str,
) -> Result<String> {
    let body = format!("{target}.{until_secs}");
    Ok(match cipher {
        Some(c) => format!("{FORWARD}{}", c.seal(body.as_bytes(), &forward_ad(old_id))?),
        None => format!("{FORWARD}{body}"),
    })
}

/// The new id and the end of the grace window of a forward marker read under `old_id`, or `None`
/// when `raw` is not a marker or does not open (tampered, or planted without the key).
pub fn parse_forward(raw: &str, cipher: Option<&Cipher>, old_id: &str) -> Option<(String, i64)> {
    let rest = raw.strip_prefix(FORWARD)?;
    let body = match cipher {
        Some(c) => c.open_str(rest, &forward_ad(old_id))?.0,
        None => rest.to_owned(),
    };
    let (target, until) = body.split_once('.')?;
    if !crate::id::is_valid_id(target) || target == old_id {
        return None;
    }
    Some((target.to_owned(), until.parse().ok()?))
}

fn forward_ad(old_id: &str) -> Vec<u8> {
    let mut ad = b"forward:".to_vec();
    ad.extend_from_slice(old_id.as_bytes());
    ad
}

/// Unix seconds from a clock's milliseconds (rounded down).
pub fn secs(now_ms: i64) -> i64 {
    now_ms.div_euclid(1000)
}

/// A stamp's value as stored: a whole number of seconds (a float or numeric string written by
/// hand is accepted; anything else reads as absent).
pub fn stamp(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Number(n) => n.as_i64().or_else(|| {
            #[allow(clippy::cast_possible_truncation)]
            n.as_f64().filter(|f| f.is_finite()).map(|f| f as i64)
        }),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The attributes as JSON text without the reserved keys; untouched values copied verbatim.
pub(crate) fn encode_visible(map: &TopMap) -> String {
    let mut out: Vec<u8> = Vec::with_capacity(256);
    out.push(b'{');
    let mut first = true;
    for (k, slot) in map.iter() {
        if is_hidden(k) {
            continue;
        }
        if !first {
            out.push(b',');
        }
        first = false;
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
    String::from_utf8(out).unwrap_or_else(|_| "{}".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_cap_is_inclusive_at_the_boundary() {
        assert_eq!(check_absolute(Some(100), 160, Some(60)), None);
        assert_eq!(
            check_absolute(Some(100), 161, Some(60)),
            Some(Expiry::Absolute)
        );
        assert_eq!(check_absolute(Some(100), 10_000, None), None);
        assert_eq!(check_absolute(None, 10_000, Some(1)), None);
        assert_eq!(check_absolute(Some(0), i64::MAX, Some(u64::MAX)), None);
    }

    #[test]
    fn renewal_is_due_strictly_after_the_period() {
        assert!(!renewal_due(Some(100), 160, Some(60)));
        assert!(renewal_due(Some(100), 161, Some(60)));
        assert!(!renewal_due(Some(100), 10_000, None));
        assert!(!renewal_due(None, 10_000, Some(1)));
    }

    #[test]
    fn forward_markers_round_trip_and_refuse_forgeries() {
        let (old, new) = ("A".repeat(40), "B".repeat(40));
        let m = forward_marker(&new, 130, None, &old).unwrap();
        assert_eq!(m, format!(">{new}.130"));
        assert_eq!(parse_forward(&m, None, &old), Some((new.clone(), 130)));
        assert_eq!(parse_forward("{\"a\":1}", None, &old), None);
        assert_eq!(parse_forward(">short.1", None, &old), None);
        assert_eq!(
            parse_forward(&format!(">{old}.1"), None, &old),
            None,
            "never to itself"
        );

        let c = Cipher::new(&["forward-test-key-0123456789abcdefghij"]).unwrap();
        let sealed = forward_marker(&new, 130, Some(&c), &old).unwrap();
        assert!(sealed.starts_with('>') && !sealed.contains(&new));
        assert_eq!(
            parse_forward(&sealed, Some(&c), &old),
            Some((new.clone(), 130))
        );
        assert_eq!(
            parse_forward(&sealed, Some(&c), &"C".repeat(40)),
            None,
            "moved to another id"
        );
        assert_eq!(
            parse_forward(&m, Some(&c), &old),
            None,
            "a plain marker planted without the key"
        );
    }

    #[test]
    fn reserved_keys_and_stamps() {
        assert!(is_reserved("_created"));
        assert!(is_reserved("_id_at.x"));
        assert!(!is_reserved("created"));
        assert!(!is_reserved("_token"));
        assert_eq!(stamp(Some(&json!(5))), Some(5));
        assert_eq!(stamp(Some(&json!(5.9))), Some(5));
        assert_eq!(stamp(Some(&json!("7"))), Some(7));
        assert_eq!(stamp(Some(&json!([1]))), None);
        assert_eq!(stamp(None), None);
        assert_eq!(secs(1999), 1);
        assert_eq!(secs(-1), -1);
    }
}
