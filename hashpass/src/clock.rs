//! Time, injected: every rule that depends on "now" asks a [`Clock`].
//!
//! Production code uses [`SystemClock`]; tests use [`FakeClock`] and move time by hand, so
//! session grace periods, mining time, timeouts and invite expiry are tested without sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of wall-clock time, as Unix seconds.
pub trait Clock: Send + Sync + 'static {
    /// The current time in seconds since the Unix epoch (fractional).
    fn now(&self) -> f64;
}

/// Shared handle to a clock.
pub type SharedClock = Arc<dyn Clock>;

/// The operating system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> f64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_secs_f64()
    }
}

/// Milliseconds on the runtime's monotonic clock since a fixed moment of this process: the
/// compact time of the per-socket pacing (docs/protocol.md#message-rate), which runs in real time
/// whatever the injected [`Clock`] says, and which every idle socket carries (8 bytes where an
/// `Instant` takes 16).
pub(crate) fn monotonic_millis(at: tokio::time::Instant) -> u64 {
    let since = at.into_std().saturating_duration_since(*monotonic_base());
    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
}

/// The instant of a [`monotonic_millis`] reading.
pub(crate) fn monotonic_instant(millis: u64) -> tokio::time::Instant {
    tokio::time::Instant::from_std(*monotonic_base() + Duration::from_millis(millis))
}

fn monotonic_base() -> &'static std::time::Instant {
    static BASE: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    BASE.get_or_init(std::time::Instant::now)
}

/// A clock that only moves when told to. Cloning shares the same time.
#[derive(Debug, Clone)]
pub struct FakeClock {
    micros: Arc<AtomicU64>,
}

impl FakeClock {
    /// A fake clock standing at `unix_seconds`.
    pub fn new(unix_seconds: f64) -> Self {
        Self {
            micros: Arc::new(AtomicU64::new((unix_seconds * 1e6) as u64)),
        }
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        self.micros
            .fetch_add(by.as_micros() as u64, Ordering::SeqCst);
    }

    /// Moves the clock forward by fractional seconds.
    pub fn advance_secs(&self, secs: f64) {
        self.advance(Duration::from_secs_f64(secs));
    }

    /// Sets the clock to an absolute time.
    pub fn set(&self, unix_seconds: f64) {
        self.micros
            .store((unix_seconds * 1e6) as u64, Ordering::SeqCst);
    }
}

impl Default for FakeClock {
    fn default() -> Self {
        // 2026-01-01T00:00:00Z: an arbitrary, stable starting point.
        Self::new(1_767_225_600.0)
    }
}

impl Clock for FakeClock {
    fn now(&self) -> f64 {
        self.micros.load(Ordering::SeqCst) as f64 / 1e6
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fake_clock_moves_only_when_told() {
        let clock = FakeClock::new(100.0);
        let shared = clock.clone();
        assert_eq!(clock.now(), 100.0);
        shared.advance_secs(2.5);
        assert_eq!(clock.now(), 102.5);
        clock.set(10.0);
        assert_eq!(shared.now(), 10.0);
    }

    #[test]
    fn monotonic_millis_round_trip() {
        // The base is set on first use: read once, so that `now` is after it.
        monotonic_millis(tokio::time::Instant::now());
        let now = tokio::time::Instant::now();
        let millis = monotonic_millis(now);
        let back = monotonic_instant(millis);
        assert!(back <= now && now - back < Duration::from_millis(1));
        let later = now + Duration::from_millis(1500);
        assert_eq!(monotonic_millis(later), millis + 1500);
    }

    #[test]
    fn system_clock_is_after_2020() {
        assert!(SystemClock.now() > 1_577_836_800.0);
    }
}
