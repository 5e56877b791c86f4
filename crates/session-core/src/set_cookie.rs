//! The `Set-Cookie` line of the session cookie, built in one pass.
//!
//! The output is byte for byte what `serialize` in `lib/cookies.js` writes (and so what 1.x
//! wrote through the `cookie` package):
//! - `name=<value>`, the value percent-encoded as JavaScript's `encodeURIComponent` encodes it;
//! - `; Path=<path>`, then `; Domain=<domain>` when there is one;
//! - unless the cookie ends with the browser: `; Max-Age=<s>; Expires=<HTTP date>`, where the
//!   Max-Age is the lifetime in whole seconds (rounded up, at least 1) and the date is
//!   `Date#toUTCString` of now plus that many seconds, to the second;
//! - `; HttpOnly`, then `; Secure` when the response asks for it, then `; SameSite=Lax|Strict|None`.
//!
//! A cleared cookie (no value) is `name=; Path=…; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00
//! GMT` with the same trailing flags, whatever the lifetime.

use crate::crypto;
use std::fmt::Write as _;

/// The attributes of a session cookie, as the session config gives them.
#[derive(Debug, Clone, PartialEq)]
pub struct CookieAttributes {
    /// Lifetime in minutes (a positive number).
    pub lifetime_minutes: f64,
    /// No Max-Age/Expires: the cookie ends with the browser.
    pub expire_on_close: bool,
    /// `Path`.
    pub path: String,
    /// `Domain`, when set.
    pub domain: Option<String>,
    /// `HttpOnly`.
    pub http_only: bool,
    /// `SameSite`: `lax`, `strict` or `none` (any case); `None` for no attribute.
    pub same_site: Option<String>,
}

/// A session cookie's name and attributes, prepared once, that writes `Set-Cookie` lines.
#[derive(Debug, Clone, PartialEq)]
pub struct SetCookie {
    name: String,
    max_age: f64,
    expire_on_close: bool,
    // `; Path=…[; Domain=…]`
    tail: String,
    http_only: bool,
    // `; SameSite=…` or empty
    same_site: String,
}

impl SetCookie {
    /// Prepares the lines of cookie `name` under `attrs`.
    pub fn new(name: &str, attrs: &CookieAttributes) -> Self {
        let mut tail = String::with_capacity(16 + attrs.path.len());
        tail.push_str("; Path=");
        tail.push_str(&attrs.path);
        if let Some(d) = attrs.domain.as_deref().filter(|d| !d.is_empty()) {
            tail.push_str("; Domain=");
            tail.push_str(d);
        }
        let same_site = match attrs.same_site.as_deref().filter(|s| !s.is_empty()) {
            Some(s) => {
                // As JS: the first character upper-cased, the rest kept.
                let mut out = String::from("; SameSite=");
                let mut chars = s.chars();
                if let Some(c) = chars.next() {
                    out.extend(c.to_uppercase());
                }
                out.push_str(chars.as_str());
                out
            }
            None => String::new(),
        };
        Self {
            name: name.to_owned(),
            max_age: (attrs.lifetime_minutes * 60.0).ceil().max(1.0),
            expire_on_close: attrs.expire_on_close,
            tail,
            http_only: attrs.http_only,
            same_site,
        }
    }

    /// The cookie name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The line carrying `value` (before URL-encoding), or clearing the cookie when `None`.
    /// `now_ms` is the current time in milliseconds since the Unix epoch.
    pub fn line(&self, value: Option<&str>, secure: bool, now_ms: f64) -> String {
        let mut out = String::with_capacity(
            self.name.len() + self.tail.len() + value.map_or(0, |v| v.len() + 8) + 96,
        );
        out.push_str(&self.name);
        out.push('=');
        match value {
            None => {
                out.push_str(&self.tail);
                out.push_str("; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT");
            }
            Some(v) => {
                encode_uri_component(v, &mut out);
                out.push_str(&self.tail);
                if !self.expire_on_close {
                    out.push_str("; Max-Age=");
                    push_js_number(&mut out, self.max_age);
                    out.push_str("; Expires=");
                    let sec = ((now_ms + self.max_age * 1000.0) / 1000.0).floor();
                    push_utc_string(&mut out, sec);
                }
            }
        }
        if self.http_only {
            out.push_str("; HttpOnly");
        }
        if secure {
            out.push_str("; Secure");
        }
        out.push_str(&self.same_site);
        out
    }

    /// The line carrying session `id` signed under `key` (`s:<id>.<signature>`).
    pub fn signed_line(&self, id: &str, key: &str, secure: bool, now_ms: f64) -> String {
        self.line(Some(&crypto::sign_cookie(id, key)), secure, now_ms)
    }
}

/// Appends `s` percent-encoded as JavaScript's `encodeURIComponent` does: everything but
/// `A-Z a-z 0-9 - _ . ! ~ * ' ( )` becomes `%XX` per UTF-8 byte, upper-case hex.
pub fn encode_uri_component(s: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')'
            )
        {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
    }
}

/// Appends an integral number as JavaScript prints it (`String(n)`).
fn push_js_number(out: &mut String, n: f64) {
    if n < 1e21 {
        let _ = write!(out, "{n}");
    } else {
        // JS switches to exponent notation at 1e21: `1e+21`.
        let s = format!("{n:e}");
        out.push_str(&s.replacen('e', "e+", 1));
    }
}

const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Appends `new Date(sec * 1000).toUTCString()`: `Thu, 01 Jan 1970 00:00:00 GMT`, or
/// `Invalid Date` beyond JavaScript's date range (±8.64e15 ms).
fn push_utc_string(out: &mut String, sec: f64) {
    if !sec.is_finite() || (sec * 1000.0).abs() > 8.64e15 {
        out.push_str("Invalid Date");
        return;
    }
    #[allow(clippy::cast_possible_truncation)]
    let secs = sec as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let wd = DAYS[usize::try_from(days.rem_euclid(7)).unwrap_or(0)];
    let month = MONTHS[usize::try_from(m - 1).unwrap_or(0)];
    let (hh, mm, ss) = (rem / 3600, rem / 60 % 60, rem % 60);
    if y < 0 {
        let _ = write!(
            out,
            "{wd}, {d:02} {month} -{:04} {hh:02}:{mm:02}:{ss:02} GMT",
            -y
        );
    } else {
        let _ = write!(
            out,
            "{wd}, {d:02} {month} {y:04} {hh:02}:{mm:02}:{ss:02} GMT"
        );
    }
}

/// (year, month 1..=12, day 1..=31) of a count of days since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs() -> CookieAttributes {
        CookieAttributes {
            lifetime_minutes: 120.0,
            expire_on_close: false,
            path: "/".into(),
            domain: None,
            http_only: true,
            same_site: Some("lax".into()),
        }
    }

    const ID: &str = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcd";
    const KEY: &str = "base64:Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5";

    #[test]
    fn default_line_matches_js() {
        let c = SetCookie::new("ostro_session", &attrs());
        // 2026-12-04T17:00:00.500Z + 7200 s
        let now = 1_796_403_600_500.0;
        assert_eq!(
            c.line(Some("s:abc.d+e/f"), false, now),
            "ostro_session=s%3Aabc.d%2Be%2Ff; Path=/; Max-Age=7200; Expires=Fri, 04 Dec 2026 19:00:00 GMT; HttpOnly; SameSite=Lax"
        );
    }

    #[test]
    fn cleared_line_ignores_lifetime_and_keeps_flags() {
        let mut a = attrs();
        a.domain = Some("example.com".into());
        a.same_site = Some("none".into());
        let c = SetCookie::new("s", &a);
        assert_eq!(
            c.line(None, true, 0.0),
            "s=; Path=/; Domain=example.com; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; Secure; SameSite=None"
        );
    }

    #[test]
    fn expire_on_close_has_no_max_age() {
        let mut a = attrs();
        a.expire_on_close = true;
        a.http_only = false;
        a.same_site = None;
        a.path = "/app".into();
        let c = SetCookie::new("my shop_session", &a);
        assert_eq!(
            c.line(Some("v"), false, 0.0),
            "my shop_session=v; Path=/app"
        );
    }

    #[test]
    fn max_age_rounds_up_to_at_least_one_second() {
        let mut a = attrs();
        a.lifetime_minutes = 0.001; // 0.06 s
        let c = SetCookie::new("s", &a);
        assert!(c
            .line(Some("v"), false, 0.0)
            .contains("; Max-Age=1; Expires=Thu, 01 Jan 1970 00:00:01 GMT"));
        a.lifetime_minutes = 1.5;
        let c = SetCookie::new("s", &a);
        assert!(c
            .line(Some("v"), false, 999.0)
            .contains("; Max-Age=90; Expires=Thu, 01 Jan 1970 00:01:30 GMT"));
    }

    #[test]
    fn signed_line_is_the_signed_id_url_encoded() {
        let c = SetCookie::new("ostro_session", &attrs());
        let signed = crypto::sign_cookie(ID, KEY);
        let mut enc = String::new();
        encode_uri_component(&signed, &mut enc);
        assert!(enc.starts_with("s%3A"));
        assert_eq!(
            c.signed_line(ID, KEY, false, 0.0),
            c.line(Some(&signed), false, 0.0)
        );
        assert!(c
            .signed_line(ID, KEY, false, 0.0)
            .starts_with(&format!("ostro_session={enc}; Path=/")));
    }

    #[test]
    fn encode_uri_component_matches_js() {
        let mut out = String::new();
        encode_uri_component("aZ09-_.!~*'() ;,/?:@&=+$#%\u{e9}\u{1f600}", &mut out);
        assert_eq!(
            out,
            "aZ09-_.!~*'()%20%3B%2C%2F%3F%3A%40%26%3D%2B%24%23%25%C3%A9%F0%9F%98%80"
        );
    }

    #[test]
    fn utc_strings() {
        let mut s = String::new();
        push_utc_string(&mut s, 951_782_400.0); // 2000-02-29
        assert_eq!(s, "Tue, 29 Feb 2000 00:00:00 GMT");
        s.clear();
        push_utc_string(&mut s, 253_402_300_799.0);
        assert_eq!(s, "Fri, 31 Dec 9999 23:59:59 GMT");
        s.clear();
        push_utc_string(&mut s, 253_402_300_800.0);
        assert_eq!(s, "Sat, 01 Jan 10000 00:00:00 GMT");
        s.clear();
        push_utc_string(&mut s, 8.64e12 + 1.0);
        assert_eq!(s, "Invalid Date");
    }

    #[test]
    fn js_numbers() {
        let mut s = String::new();
        push_js_number(&mut s, 7200.0);
        push_js_number(&mut s, 1e21);
        assert_eq!(s, "72001e+21");
    }
}
