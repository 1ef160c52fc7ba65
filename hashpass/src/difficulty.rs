//! The difficulty rule (docs/protocol.md#difficulty-adjustment), as pure functions over a small state.
//!
//! An exponential moving average (α = 1/3) of solve times drives a step of
//! `clamp(log2(target / max(ema, 0.1)), ±4)` bits, applied to a float difficulty clamped to
//! `[min, max]`; the integer difficulty is that float rounded half to even.

use serde::{Deserialize, Serialize};

/// Smoothing factor of the solve-time average: 2 / (5 + 1).
pub const EMA_ALPHA: f64 = 1.0 / 3.0;

/// Largest change of one adjustment, in bits.
pub const MAX_STEP: f64 = 4.0;

/// The difficulty controller's state.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DifficultyState {
    /// Required leading zero bits of the current puzzle.
    pub difficulty: u32,
    /// The unrounded difficulty the controller steers.
    pub difficulty_float: f64,
    /// Lower bound of automatic adjustment.
    pub min_difficulty: u32,
    /// Upper bound of automatic adjustment.
    pub max_difficulty: u32,
    /// Moving average of solve times, once there is one.
    pub ema_solve_time: Option<f64>,
}

/// What one adjustment did, for the audit record.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Adjustment {
    /// Difficulty before.
    pub old_difficulty: u32,
    /// Difficulty after.
    pub new_difficulty: u32,
    /// The average after folding in the sample.
    pub ema: f64,
    /// The applied step in bits (before clamping to the bounds).
    pub step: f64,
}

impl Adjustment {
    /// A human-readable account of the adjustment, as the audit log's `adjustment_reason`.
    pub fn reason(&self, target_time: f64) -> String {
        format!(
            "EMA {:.2}s vs target {:.0}s: step {:+.2} bits, difficulty {} -> {}",
            self.ema, target_time, self.step, self.old_difficulty, self.new_difficulty
        )
    }
}

impl DifficultyState {
    /// Start-up state: difficulty as configured (not clamped, as the original), no average yet.
    pub fn new(difficulty: u32, min_difficulty: u32, max_difficulty: u32) -> Self {
        Self {
            difficulty,
            difficulty_float: f64::from(difficulty),
            min_difficulty,
            max_difficulty,
            ema_solve_time: None,
        }
    }

    /// Folds one solve time into the average without changing the difficulty
    /// (used to seed the average from the audit log at start-up).
    pub fn fold_sample(&mut self, sample: f64) -> f64 {
        let ema = match self.ema_solve_time {
            None => sample,
            Some(ema) => EMA_ALPHA * sample + (1.0 - EMA_ALPHA) * ema,
        };
        self.ema_solve_time = Some(ema);
        ema
    }

    /// Adjusts after a solve (or a timeout, with `target_timeout` as the sample).
    pub fn adjust(&mut self, sample: f64, target_time: f64) -> Adjustment {
        let old_difficulty = self.difficulty;
        let ema = self.fold_sample(sample);
        let step = adjustment_step(ema, target_time);
        self.difficulty_float = (self.difficulty_float + step).clamp(
            f64::from(self.min_difficulty),
            f64::from(self.max_difficulty.max(self.min_difficulty)),
        );
        self.difficulty = round_half_even(self.difficulty_float);
        Adjustment {
            old_difficulty,
            new_difficulty: self.difficulty,
            ema,
            step,
        }
    }

    /// Sets the difficulty by hand (admin), float included.
    pub fn set_difficulty(&mut self, difficulty: u32) {
        self.difficulty = difficulty;
        self.difficulty_float = f64::from(difficulty);
    }

    /// Sets the bounds (admin) and clamps the current difficulty into them (docs/protocol.md#admin-api).
    pub fn set_bounds(&mut self, min_difficulty: u32, max_difficulty: u32) {
        self.min_difficulty = min_difficulty;
        self.max_difficulty = max_difficulty;
        if self.difficulty < min_difficulty || self.difficulty > max_difficulty {
            self.set_difficulty(self.difficulty.clamp(min_difficulty, max_difficulty));
        } else {
            self.difficulty_float = self
                .difficulty_float
                .clamp(f64::from(min_difficulty), f64::from(max_difficulty));
        }
    }
}

/// The step in bits for an average solve time: `clamp(log2(target / max(ema, 0.1)), ±4)`.
pub fn adjustment_step(ema: f64, target_time: f64) -> f64 {
    let ratio = target_time / ema.max(0.1);
    let step = ratio.log2();
    if step.is_nan() {
        0.0
    } else {
        step.clamp(-MAX_STEP, MAX_STEP)
    }
}

/// Rounds half to even, as Python's `round()` (2.5 → 2, 3.5 → 4); negative values give 0.
pub fn round_half_even(value: f64) -> u32 {
    let value = value.max(0.0);
    let floor = value.floor();
    let diff = value - floor;
    // Up when past the half, or exactly at it from an odd floor.
    let up = diff > 0.5 || (diff == 0.5 && floor % 2.0 != 0.0);
    let rounded = if up { floor + 1.0 } else { floor };
    rounded.min(f64::from(u32::MAX)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rounding_is_half_to_even() {
        assert_eq!(round_half_even(2.5), 2);
        assert_eq!(round_half_even(3.5), 4);
        assert_eq!(round_half_even(0.5), 0);
        assert_eq!(round_half_even(2.4999), 2);
        assert_eq!(round_half_even(2.5001), 3);
        assert_eq!(round_half_even(7.0), 7);
    }

    #[test]
    fn known_sequence() {
        let mut s = DifficultyState::new(12, 4, 24);
        // First sample seeds the average: 75 s against a 75 s target is a zero step.
        let a = s.adjust(75.0, 75.0);
        assert_eq!((a.ema, a.step, s.difficulty), (75.0, 0.0, 12));
        // 9.375 s: ema = 75·2/3 + 9.375/3 = 53.125; step = log2(75/53.125) ≈ 0.4975.
        let a = s.adjust(9.375, 75.0);
        assert!((a.ema - 53.125).abs() < 1e-9);
        assert!((s.difficulty_float - 12.4975).abs() < 1e-3);
        assert_eq!(s.difficulty, 12);
        // A very fast solve is clamped to +4 bits.
        let a = s.adjust(0.0, 75.0);
        assert!(a.step <= 4.0);
    }

    #[test]
    fn bounds_clamp_the_current_difficulty() {
        let mut s = DifficultyState::new(12, 4, 24);
        s.set_bounds(14, 20);
        assert_eq!(s.difficulty, 14);
        s.set_bounds(1, 10);
        assert_eq!(s.difficulty, 10);
        assert_eq!(s.difficulty_float, 10.0);
    }

    proptest! {
        #[test]
        fn step_is_clamped_and_signed(ema in 0.0f64..1e7, target in 1.0f64..1e5) {
            let step = adjustment_step(ema, target);
            prop_assert!((-MAX_STEP..=MAX_STEP).contains(&step));
            let effective = ema.max(0.1);
            if effective < target { prop_assert!(step > 0.0); }
            if effective > target { prop_assert!(step < 0.0); }
        }

        #[test]
        fn adjusted_difficulty_stays_in_bounds(
            start in 1u32..64, min in 1u32..32, span in 0u32..32,
            samples in proptest::collection::vec(0.0f64..10_000.0, 1..40),
            target in 1.0f64..600.0,
        ) {
            let max = min + span;
            let mut s = DifficultyState::new(start, min, max);
            for sample in samples {
                let before = s.difficulty_float;
                let a = s.adjust(sample, target);
                prop_assert!(s.difficulty >= min && s.difficulty <= max);
                prop_assert!(s.difficulty_float >= f64::from(min) && s.difficulty_float <= f64::from(max));
                prop_assert_eq!(s.difficulty, round_half_even(s.difficulty_float));
                // The float never moves more than 4 bits, except when pulled into bounds.
                let pulled = before < f64::from(min) || before > f64::from(max);
                prop_assert!(pulled || (s.difficulty_float - before).abs() <= MAX_STEP + 1e-9);
                prop_assert!(a.ema.is_finite() && a.ema >= 0.0);
            }
        }

        #[test]
        fn ema_lies_between_old_average_and_sample(first in 0.1f64..1000.0, second in 0.1f64..1000.0) {
            let mut s = DifficultyState::new(10, 1, 32);
            s.adjust(first, 60.0);
            let a = s.adjust(second, 60.0);
            let (lo, hi) = if first < second { (first, second) } else { (second, first) };
            prop_assert!(a.ema >= lo - 1e-9 && a.ema <= hi + 1e-9);
            prop_assert!((a.ema - (first * 2.0 / 3.0 + second / 3.0)).abs() < 1e-9);
        }

        #[test]
        fn round_half_even_matches_definition(n in 0u32..1000, frac in 0.0f64..1.0) {
            let v = f64::from(n) + frac;
            let r = round_half_even(v);
            prop_assert!((f64::from(r) - v).abs() <= 0.5);
            if frac == 0.5 { prop_assert_eq!(r % 2, 0); }
        }
    }
}
