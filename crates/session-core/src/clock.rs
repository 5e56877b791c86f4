//! Time, injected so that expiry can be tested at its boundary without sleeping.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// A source of the current time in milliseconds since the Unix epoch.
pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    }
}

/// A clock that only moves when told to; for tests.
#[derive(Debug, Clone, Default)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    /// A clock showing `ms`.
    pub fn new(ms: i64) -> Self {
        Self(Arc::new(AtomicI64::new(ms)))
    }
    /// Moves the clock by `ms` (negative moves it back).
    pub fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
    /// Sets the clock to `ms`.
    pub fn set(&self, ms: i64) {
        self.0.store(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// A shared clock.
pub type SharedClock = Arc<dyn Clock>;

/// The default clock.
pub fn system() -> SharedClock {
    Arc::new(SystemClock)
}

/// Converts a lifetime in (possibly fractional) minutes into whole milliseconds; rejects
/// negative, NaN and infinite values.
pub fn lifetime_ms(minutes: f64) -> crate::Result<i64> {
    if !minutes.is_finite() || minutes <= 0.0 {
        return Err(crate::SessionError::InvalidOption(format!(
            "minutes must be a positive finite number, got {minutes}"
        )));
    }
    let ms = minutes * 60_000.0;
    if ms > 1e15 {
        return Err(crate::SessionError::InvalidOption(format!(
            "minutes is too large: {minutes}"
        )));
    }
    #[allow(clippy::cast_possible_truncation)]
    Ok(ms.round() as i64)
}

/// The TTL in whole seconds for a server that expires keys itself: rounded up, at least 1.
pub fn ttl_seconds(lifetime_ms: i64) -> u64 {
    let secs = (lifetime_ms + 999) / 1000;
    u64::try_from(secs.max(1)).unwrap_or(1)
}
