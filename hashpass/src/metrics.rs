//! The figures `/api/metrics` exposes (docs/protocol.md#metrics), in Prometheus text format.
//!
//! Counters are plain atomics owned by the instance (no global recorder), so several instances in
//! one process — as in tests — never mix their figures.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::verification_queue::QueueGauges;

/// Upper bounds (seconds) of the latency histograms' buckets.
const BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// How a verification ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It won the puzzle.
    Win,
    /// Correct hash, but another solution had already claimed the seed.
    Late,
    /// The recomputed hash differed from the submitted one.
    Mismatch,
    /// Refused by a cheap check before hashing (stale seed, too few zeros, rate, auth...).
    Rejected,
    /// Refused because the verification queue was full.
    Busy,
    /// A timeout-window submission was verified and recorded.
    RewardEntry,
}

impl Outcome {
    const ALL: [Outcome; 6] = [
        Outcome::Win,
        Outcome::Late,
        Outcome::Mismatch,
        Outcome::Rejected,
        Outcome::Busy,
        Outcome::RewardEntry,
    ];

    fn label(self) -> &'static str {
        match self {
            Outcome::Win => "win",
            Outcome::Late => "late",
            Outcome::Mismatch => "mismatch",
            Outcome::Rejected => "rejected",
            Outcome::Busy => "busy",
            Outcome::RewardEntry => "reward_entry",
        }
    }
}

/// A cumulative histogram over fixed latency buckets.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    /// Sum in microseconds.
    sum_micros: AtomicU64,
}

impl Histogram {
    /// Records one observation in seconds.
    pub fn observe(&self, seconds: f64) {
        let seconds = seconds.max(0.0);
        for (bound, bucket) in BUCKETS.iter().zip(&self.buckets) {
            if seconds <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
    }

    /// Number of observations.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (bound, bucket) in BUCKETS.iter().zip(&self.buckets) {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{bound}\"}} {}",
                bucket.load(Ordering::Relaxed)
            );
        }
        let count = self.count();
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {count}");
    }
}

/// The instance's counters and histograms.
#[derive(Debug, Default)]
pub struct Metrics {
    puzzles_solved: AtomicU64,
    puzzles_timed_out: AtomicU64,
    verifications: [AtomicU64; Outcome::ALL.len()],
    /// Argon2 time of each verification.
    pub verification_seconds: Histogram,
    /// Time verifications waited for a slot.
    pub verification_queue_seconds: Histogram,
    /// Delay between publishing a PUZZLE_RESET and handing it to a socket.
    pub broadcast_lag_seconds: Histogram,
    sockets_closed_slow: AtomicU64,
    sockets_closed_flooding: AtomicU64,
    wins_not_recorded: AtomicU64,
    webhook_delivered: AtomicU64,
    webhook_failed_attempts: AtomicU64,
    webhook_given_up: AtomicU64,
}

/// Gauges read at render time.
#[derive(Debug, Clone, Copy, Default)]
pub struct Gauges {
    /// Stored sessions.
    pub sessions: usize,
    /// Open player sockets on this instance.
    pub player_sockets: usize,
    /// Open admin sockets on this instance.
    pub admin_sockets: usize,
    /// The fair verification queue's figures.
    pub verifications: QueueGauges,
    /// Current difficulty.
    pub difficulty: u32,
    /// Network hashrate.
    pub network_hashrate: f64,
    /// Webhook deliveries waiting in the outbox.
    pub webhook_pending: usize,
    /// Webhook deliveries given up.
    pub webhook_failed: usize,
    /// Age of the oldest pending webhook delivery, seconds (0 when none).
    pub webhook_oldest_pending_seconds: f64,
}

impl Metrics {
    /// Counts a verification outcome.
    pub fn verification(&self, outcome: Outcome) {
        let i = Outcome::ALL.iter().position(|o| *o == outcome).unwrap_or(0);
        self.verifications[i].fetch_add(1, Ordering::Relaxed);
    }

    /// How many verifications ended with `outcome`.
    pub fn verifications(&self, outcome: Outcome) -> u64 {
        let i = Outcome::ALL.iter().position(|o| *o == outcome).unwrap_or(0);
        self.verifications[i].load(Ordering::Relaxed)
    }

    /// Counts a solved puzzle.
    pub fn solved(&self) {
        self.puzzles_solved.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a timed-out puzzle.
    pub fn timed_out(&self) {
        self.puzzles_timed_out.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a socket closed for not keeping up.
    pub fn slow_socket(&self) {
        self.sockets_closed_slow.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a socket closed for sending more frames than its budget.
    pub fn flooding_socket(&self) {
        self.sockets_closed_flooding.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a win that could not be put on record (no code given out).
    pub fn unrecorded_win(&self) {
        self.wins_not_recorded.fetch_add(1, Ordering::Relaxed);
    }

    /// Wins that could not be put on record so far.
    pub fn unrecorded_wins(&self) -> u64 {
        self.wins_not_recorded.load(Ordering::Relaxed)
    }

    /// Counts one round of webhook deliveries.
    pub fn webhook_round(&self, round: crate::outbox::Round) {
        let add = |counter: &AtomicU64, n: usize| counter.fetch_add(n as u64, Ordering::Relaxed);
        add(&self.webhook_delivered, round.delivered);
        add(
            &self.webhook_failed_attempts,
            round.retried + round.given_up,
        );
        add(&self.webhook_given_up, round.given_up);
    }

    /// Puzzles solved so far.
    pub fn puzzles_solved(&self) -> u64 {
        self.puzzles_solved.load(Ordering::Relaxed)
    }

    /// Renders everything in Prometheus text exposition format.
    pub fn render(&self, gauges: Gauges) -> String {
        let mut out = String::with_capacity(4096);
        for (name, help, reading) in self.families().into_iter().chain(gauges.families()) {
            reading.render(&mut out, name, help);
        }
        out
    }

    /// The counter and histogram families, in page order (the gauges follow them).
    fn families(&self) -> [Family<'_>; 12] {
        [
            (
                "hashpass_puzzles_solved_total",
                "Puzzles won by a valid solution.",
                Reading::Counter(self.puzzles_solved()),
            ),
            (
                "hashpass_puzzles_timed_out_total",
                "Puzzles reset by the timeout.",
                Reading::Counter(self.puzzles_timed_out.load(Ordering::Relaxed)),
            ),
            (
                "hashpass_verifications_total",
                "Solutions judged, by outcome.",
                Reading::ByOutcome(Outcome::ALL.map(|outcome| self.verifications(outcome))),
            ),
            (
                "hashpass_verification_seconds",
                "Argon2 recomputation time per verification.",
                Reading::Histogram(&self.verification_seconds),
            ),
            (
                "hashpass_verification_queue_seconds",
                "Time a verification waited for memory.",
                Reading::Histogram(&self.verification_queue_seconds),
            ),
            (
                "hashpass_broadcast_lag_seconds",
                "Delay from a puzzle reset to its delivery to a socket.",
                Reading::Histogram(&self.broadcast_lag_seconds),
            ),
            (
                "hashpass_sockets_closed_slow_total",
                "Sockets closed because they did not keep up.",
                Reading::Counter(self.sockets_closed_slow.load(Ordering::Relaxed)),
            ),
            (
                "hashpass_sockets_closed_flooding_total",
                "Sockets closed because they sent more messages than their budget.",
                Reading::Counter(self.sockets_closed_flooding.load(Ordering::Relaxed)),
            ),
            (
                "hashpass_wins_not_recorded_total",
                "Wins whose audit record or webhook delivery could not be written (no code given out).",
                Reading::Counter(self.unrecorded_wins()),
            ),
            (
                "hashpass_webhook_delivered_total",
                "Webhook deliveries the receiver accepted.",
                Reading::Counter(self.webhook_delivered.load(Ordering::Relaxed)),
            ),
            (
                "hashpass_webhook_failed_attempts_total",
                "Webhook attempts that failed.",
                Reading::Counter(self.webhook_failed_attempts.load(Ordering::Relaxed)),
            ),
            (
                "hashpass_webhook_given_up_total",
                "Webhook deliveries given up after failing for too long.",
                Reading::Counter(self.webhook_given_up.load(Ordering::Relaxed)),
            ),
        ]
    }
}

impl Gauges {
    /// The gauge families, in page order.
    fn families<'a>(self) -> impl Iterator<Item = Family<'a>> {
        let general = [
            (
                "hashpass_sessions",
                "Stored session tokens.",
                Reading::Gauge(self.sessions as f64),
            ),
            (
                "hashpass_player_sockets",
                "Open player WebSockets on this instance.",
                Reading::Gauge(self.player_sockets as f64),
            ),
            (
                "hashpass_admin_sockets",
                "Open admin WebSockets on this instance.",
                Reading::Gauge(self.admin_sockets as f64),
            ),
            (
                "hashpass_difficulty",
                "Current difficulty in leading zero bits.",
                Reading::Gauge(f64::from(self.difficulty)),
            ),
            (
                "hashpass_network_hashrate",
                "Reported network hashrate (H/s).",
                Reading::Gauge(self.network_hashrate),
            ),
            (
                "hashpass_webhook_pending",
                "Webhook deliveries waiting in the outbox.",
                Reading::Gauge(self.webhook_pending as f64),
            ),
            (
                "hashpass_webhook_failed",
                "Webhook deliveries given up and kept as failed.",
                Reading::Gauge(self.webhook_failed as f64),
            ),
            (
                "hashpass_webhook_oldest_pending_seconds",
                "Age of the oldest pending webhook delivery.",
                Reading::Gauge(self.webhook_oldest_pending_seconds),
            ),
        ];
        general
            .into_iter()
            .chain(verification_families(self.verifications))
    }
}

/// The fair verification queue's families, in page order.
fn verification_families<'a>(q: QueueGauges) -> [Family<'a>; 7] {
    [
        (
            "hashpass_verification_queue",
            "Verifications waiting for their turn.",
            Reading::Gauge((q.waiting_clean + q.waiting_flagged) as f64),
        ),
        (
            "hashpass_verifications_running",
            "Verifications running.",
            Reading::Gauge(q.running as f64),
        ),
        (
            "hashpass_verification_waiting_clean",
            "Verifications waiting from addresses with a clean record.",
            Reading::Gauge(q.waiting_clean as f64),
        ),
        (
            "hashpass_verification_waiting_flagged",
            "Verifications waiting from addresses with a recent failed verification.",
            Reading::Gauge(q.waiting_flagged as f64),
        ),
        (
            "hashpass_verification_refused_address_full_total",
            "Verifications refused because their address's queue was full (429).",
            Reading::Counter(q.refused_address_full),
        ),
        (
            "hashpass_verification_refused_busy_total",
            "Verifications refused because the whole queue was full (503).",
            Reading::Counter(q.refused_busy),
        ),
        (
            "hashpass_verification_displaced_total",
            "Waiting verifications of flagged addresses displaced by clean arrivals (503).",
            Reading::Counter(q.displaced),
        ),
    ]
}

/// One metric family of the page: its name, its help text and what it reads.
type Family<'a> = (&'static str, &'static str, Reading<'a>);

/// What a metric family reads, which decides how it is rendered.
#[derive(Debug, Clone, Copy)]
enum Reading<'a> {
    /// A single counter.
    Counter(u64),
    /// A single gauge.
    Gauge(f64),
    /// One counter per verification outcome, in [`Outcome::ALL`] order.
    ByOutcome([u64; Outcome::ALL.len()]),
    /// A latency histogram.
    Histogram(&'a Histogram),
}

impl Reading<'_> {
    /// Appends the family `name`, with its HELP and TYPE lines, to `out`.
    fn render(self, out: &mut String, name: &str, help: &str) {
        match self {
            Reading::Counter(value) => {
                let _ = writeln!(
                    out,
                    "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
                );
            }
            Reading::Gauge(value) => {
                let _ = writeln!(
                    out,
                    "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
                );
            }
            Reading::ByOutcome(counts) => {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
                for (outcome, count) in Outcome::ALL.iter().zip(counts) {
                    let _ = writeln!(out, "{name}{{outcome=\"{}\"}} {count}", outcome.label());
                }
            }
            Reading::Histogram(histogram) => histogram.render(out, name, help),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histograms() {
        let m = Metrics::default();
        m.solved();
        m.verification(Outcome::Mismatch);
        m.verification_seconds.observe(0.2);
        let text = m.render(Gauges {
            sessions: 2,
            ..Gauges::default()
        });
        assert!(text.contains("hashpass_puzzles_solved_total 1"));
        assert!(text.contains("hashpass_verifications_total{outcome=\"mismatch\"} 1"));
        assert!(text.contains("hashpass_verification_seconds_bucket{le=\"0.25\"} 1"));
        assert!(text.contains("hashpass_verification_seconds_bucket{le=\"0.1\"} 0"));
        assert!(text.contains("hashpass_sessions 2"));
    }
}
