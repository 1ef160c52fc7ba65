//! Log lines a client can trigger (a refused User-Agent, a wrong admin token, a refused captcha,
//! a token used from another address, a socket closed for flooding; and the notices of a player
//! connecting, reconnecting or having a session revoked), rate-limited per call site so that no
//! client can flood the log: at most [`BURST`] lines per [`WINDOW`] at each site, and the first
//! line after a quiet spell says how many were suppressed (`suppressed = N`). An honest load of
//! up to one line a second at a site loses nothing.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::util::lock;

/// Lines one call site may write per window.
pub(crate) const BURST: u32 = 10;
/// The window.
pub(crate) const WINDOW: Duration = Duration::from_secs(10);

/// One call site's budget.
#[derive(Debug)]
pub(crate) struct SiteBudget {
    state: Mutex<Option<Budget>>,
}

#[derive(Debug, Clone, Copy)]
struct Budget {
    window_started: Instant,
    written: u32,
    suppressed: u64,
}

impl SiteBudget {
    /// A fresh budget (for a `static`).
    pub(crate) const fn new() -> Self {
        Self {
            state: Mutex::new(None),
        }
    }

    /// Whether a line may be written now, and if so how many were suppressed before it.
    pub(crate) fn admit(&self, now: Instant) -> Option<u64> {
        let mut state = lock(&self.state);
        let budget = state.get_or_insert(Budget {
            window_started: now,
            written: 0,
            suppressed: 0,
        });
        if now.duration_since(budget.window_started) >= WINDOW {
            budget.window_started = now;
            budget.written = 0;
        }
        if budget.written >= BURST {
            budget.suppressed += 1;
            return None;
        }
        budget.written += 1;
        Some(std::mem::take(&mut budget.suppressed))
    }
}

/// A `tracing` event at `level` that a client can trigger, rate-limited at this call site (each
/// expansion has its own budget); the line carries `suppressed`, the count of lines dropped
/// since the last one written.
macro_rules! client_log {
    ($level:expr, $($arg:tt)+) => {{
        static BUDGET: $crate::client_log::SiteBudget = $crate::client_log::SiteBudget::new();
        if let Some(suppressed) = BUDGET.admit(std::time::Instant::now()) {
            tracing::event!($level, suppressed, $($arg)+);
        }
    }};
}
pub(crate) use client_log;

/// [`client_log!`] at `WARN`: a warning a client can trigger.
macro_rules! client_warn {
    ($($arg:tt)+) => {
        $crate::client_log::client_log!(tracing::Level::WARN, $($arg)+)
    };
}
pub(crate) use client_warn;

/// [`client_log!`] at `INFO`: a notice a client can trigger.
macro_rules! client_info {
    ($($arg:tt)+) => {
        $crate::client_log::client_log!(tracing::Level::INFO, $($arg)+)
    };
}
pub(crate) use client_info;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_silence_then_the_count() {
        let site = SiteBudget::new();
        let start = Instant::now();
        for _ in 0..BURST {
            assert_eq!(site.admit(start), Some(0));
        }
        for _ in 0..1000 {
            assert_eq!(site.admit(start + Duration::from_secs(1)), None);
        }
        assert_eq!(site.admit(start + WINDOW), Some(1000));
        assert_eq!(site.admit(start + WINDOW), Some(0));
    }
}
