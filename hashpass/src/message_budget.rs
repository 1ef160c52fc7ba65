//! How many frames a player socket may send (docs/protocol.md#message-rate): a token bucket per
//! socket. A socket starts with a full bucket of [`MessageRate::burst`] frames, each frame it
//! sends takes one, and the bucket refills at [`MessageRate::per_second`]; a frame that finds it
//! empty ends the socket (close 1008 `Too many messages`).
//!
//! The bucket runs on the runtime's monotonic clock, not the injected game clock: a client's
//! sending rate is a matter of real time, and a game clock that stands still (as in tests) must
//! not starve an honest page of its budget.

/// A socket's allowance of client frames: a burst, then a steady rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MessageRate {
    /// Frames a socket may send at once (the bucket's size, at least 1).
    pub burst: u32,
    /// Frames per second the bucket refills.
    pub per_second: f64,
}

impl MessageRate {
    /// The default: bursts of 100 frames, 20 a second after that. The miner page sends about one
    /// frame a second (a hashrate report every 2 s, a ping every 10 s, a `mining_stop` and
    /// `mining_start` pair when the puzzle changes or the visitor pauses), so even a visitor
    /// pressing pause or resume ten times a second, for as long as they like, stays within it.
    pub const DEFAULT: Self = Self {
        burst: 100,
        per_second: 20.0,
    };
}

impl Default for MessageRate {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// One socket's bucket, timed in milliseconds of [`monotonic_millis`](crate::clock::monotonic_millis).
#[derive(Debug, Clone)]
pub(crate) struct MessageBudget {
    /// Frames left, as of `counted_at` (fractional: the refill is continuous).
    tokens: f32,
    counted_at: u64,
}

impl MessageBudget {
    /// A full bucket at `now` (milliseconds).
    pub(crate) fn new(rate: MessageRate, now: u64) -> Self {
        Self {
            tokens: size(rate),
            counted_at: now,
        }
    }

    /// Takes one frame's token at `now` (milliseconds); false when the bucket is empty (the
    /// frame is over the rate).
    pub(crate) fn take(&mut self, rate: MessageRate, now: u64) -> bool {
        let elapsed = now.saturating_sub(self.counted_at);
        self.counted_at = now;
        let refill = elapsed as f64 / 1000.0 * rate.per_second.max(0.0);
        self.tokens = (f64::from(self.tokens) + refill).min(f64::from(size(rate))) as f32;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The bucket's size: the burst, at least one frame.
fn size(rate: MessageRate) -> f32 {
    rate.burst.max(1) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: MessageRate = MessageRate {
        burst: 5,
        per_second: 2.0,
    };

    #[test]
    fn a_burst_then_the_steady_rate() {
        let start = 1_000;
        let mut budget = MessageBudget::new(RATE, start);
        for i in 0..5 {
            assert!(budget.take(RATE, start), "frame {i} of the burst");
        }
        assert!(!budget.take(RATE, start), "the sixth frame at once is over");
        assert!(
            !budget.take(RATE, start + 499),
            "not yet a whole token back"
        );
        // Half a second later one more token has come in, not two.
        let later = start + 500;
        assert!(budget.take(RATE, later));
        assert!(!budget.take(RATE, later));
        // A long quiet spell refills the bucket to its size, no more.
        let much_later = later + 3_600_000;
        for i in 0..5 {
            assert!(budget.take(RATE, much_later), "frame {i} after the pause");
        }
        assert!(!budget.take(RATE, much_later));
    }

    #[test]
    fn a_flood_gets_only_the_burst_and_the_rate() {
        // 20,000 frames in 2.4 s: the default lets through its burst and 20 a second.
        let rate = MessageRate::DEFAULT;
        let mut budget = MessageBudget::new(rate, 0);
        let taken = (0..20_000u64)
            .filter(|i| budget.take(rate, i * 120 / 1000))
            .count();
        assert!(
            (100..=100 + 48 + 1).contains(&taken),
            "{taken} frames taken"
        );
    }

    #[test]
    fn the_miner_page_never_runs_dry() {
        // The page's heaviest honest pattern, kept up for ten minutes: a hashrate report every
        // 2 s, a ping every 10 s, a new puzzle (mining_stop + mining_start) every 5 s, and a
        // visitor pressing pause or resume (one mining_stop or mining_start each) ten times a
        // second.
        let rate = MessageRate::DEFAULT;
        let mut budget = MessageBudget::new(rate, 0);
        for tenth in 0..6_000u64 {
            let now = tenth * 100;
            let mut frames = 1;
            if tenth % 20 == 0 {
                frames += 1;
            }
            if tenth % 50 == 0 {
                frames += 2;
            }
            if tenth % 100 == 0 {
                frames += 1;
            }
            for _ in 0..frames {
                assert!(
                    budget.take(rate, now),
                    "refused at {tenth} tenths of a second"
                );
            }
        }
    }

    #[test]
    fn a_zero_burst_still_lets_one_frame_through() {
        let rate = MessageRate {
            burst: 0,
            per_second: 0.0,
        };
        let mut budget = MessageBudget::new(rate, 0);
        assert!(budget.take(rate, 0));
        assert!(!budget.take(rate, 60_000));
    }
}
