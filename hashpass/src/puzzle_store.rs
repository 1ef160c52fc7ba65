//! The shared puzzle state and its store.
//!
//! [`PuzzleState`] is one versioned record: the seed, difficulty controller, parameters and solve
//! history. Every change is a read followed by [`PuzzleStore::compare_and_swap`] on the version,
//! so exactly one of any number of concurrent winners for a seed succeeds — on one instance or,
//! with a shared backend, on many. Mining-time accounting and the timeout reward window have
//! calls of their own, each atomic, so frequent miner messages never contend with the claim.

use std::collections::{BTreeSet, HashSet};
use std::sync::Mutex;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::difficulty::DifficultyState;
use crate::error::StoreError;
use crate::puzzle::Argon2Params;
use crate::session::ConnectionId;
use crate::util::lock;

/// How many solve times the history keeps (docs/protocol.md#difficulty-adjustment).
pub const SOLVE_HISTORY: usize = 5;
/// How many points the solve-time chart keeps (docs/protocol.md#difficulty-adjustment).
pub const CHART_HISTORY: usize = 50;

/// One point of a chart.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ChartPoint {
    /// When (Unix seconds).
    pub timestamp: f64,
    /// The value.
    pub value: f64,
}

/// The current puzzle and everything the rules need to judge it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PuzzleState {
    /// Incremented by every successful swap.
    pub version: u64,
    /// The current seed (32 hex chars).
    pub seed: String,
    /// When the current puzzle started (Unix seconds).
    pub started_at: f64,
    /// The difficulty controller.
    pub difficulty: DifficultyState,
    /// Argon2 parameters of the puzzle.
    pub params: Argon2Params,
    /// Browser workers per client.
    pub worker_count: u32,
    /// Desired solve time (s).
    pub target_time: u64,
    /// Mining time after which the puzzle times out (s).
    pub target_timeout: u64,
    /// Flagging threshold for hashrate reports and solve speeds, H/s (0 = off).
    pub max_nonce_speed: f64,
    /// The last solve (or timeout) time.
    pub last_solve_time: Option<f64>,
    /// The last ≤5 real solve times.
    pub solve_history: Vec<f64>,
    /// The last ≤50 real solves, for the admin chart.
    pub solve_time_chart: Vec<ChartPoint>,
    /// The invite key an admin rotated to, which every instance sharing this state adopts
    /// (`None`: each instance's configured key), when the key ring lives here
    /// ([`crate::invite_key_store::InPuzzleState`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invite_key: Option<crate::invite::InviteKey>,
    /// The keys rotated away before `invite_key`, newest first (absent from states written
    /// before they were kept).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retired_invite_keys: Vec<crate::invite::InviteKey>,
}

impl PuzzleState {
    /// Mean of the solve history, if any.
    pub fn average_solve_time(&self) -> Option<f64> {
        (!self.solve_history.is_empty())
            .then(|| self.solve_history.iter().sum::<f64>() / self.solve_history.len() as f64)
    }

    /// Records a real solve time in the history and chart.
    pub fn record_solve(&mut self, solve_time: f64, now: f64) {
        self.last_solve_time = Some(solve_time);
        self.solve_history.push(solve_time);
        trim_front(&mut self.solve_history, SOLVE_HISTORY);
        self.solve_time_chart.push(ChartPoint {
            timestamp: now,
            value: solve_time,
        });
        trim_front(&mut self.solve_time_chart, CHART_HISTORY);
    }

    /// The successor state with a fresh seed starting at `now` (same settings, next version).
    pub fn reset(&self, seed: String, now: f64) -> Self {
        Self {
            version: self.version + 1,
            seed,
            started_at: now,
            ..self.clone()
        }
    }
}

fn trim_front<T>(list: &mut Vec<T>, keep: usize) {
    if list.len() > keep {
        list.drain(..list.len() - keep);
    }
}

/// Mining time of the current puzzle (docs/protocol.md#difficulty-adjustment).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct MiningTime {
    /// Accumulated seconds during which at least one miner declared mining.
    pub seconds: f64,
    /// Miners currently declaring.
    pub active_miners: usize,
}

/// A verified best-hash entry of a timeout reward window (docs/protocol.md#difficulty-adjustment).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RewardEntry {
    /// Submitter's fingerprint.
    pub visitor_id: String,
    /// The nonce.
    pub nonce: u64,
    /// The verified hash, hex.
    pub hash: String,
    /// Verified leading zero bits.
    pub leading_zeros: u32,
    /// Submitter's effective IP.
    pub ip: String,
    /// Submitter's trace data.
    pub trace_data: String,
    /// Submitter's session token (the reward goes to that session's socket).
    pub session_token: String,
}

impl RewardEntry {
    /// Ranking: more leading zeros first, then the smaller nonce.
    pub fn beats(&self, other: &RewardEntry) -> bool {
        (self.leading_zeros, std::cmp::Reverse(self.nonce))
            > (other.leading_zeros, std::cmp::Reverse(other.nonce))
    }
}

/// The collection window opened by a timeout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RewardWindow {
    /// The timed-out seed.
    pub seed: String,
    /// Difficulty the timed-out puzzle had.
    pub difficulty: u32,
    /// Its Argon2 parameters.
    pub params: Argon2Params,
    /// The difficulty after the timeout adjustment (for the audit record).
    pub new_difficulty: u32,
    /// When submissions stop being accepted (Unix seconds).
    pub closes_at: f64,
    /// IPs that submitted.
    pub submitted_ips: BTreeSet<String>,
    /// The best verified entry so far.
    pub best: Option<RewardEntry>,
}

/// What happened to a reward submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RewardOffer {
    /// No window is open, or it has closed.
    NoWindow,
    /// The window is for another seed.
    SeedMismatch,
    /// This IP already submitted in this window.
    AlreadySubmitted,
    /// Accepted (checked only, or recorded).
    Accepted,
}

/// Where the puzzle state lives.
#[async_trait]
pub trait PuzzleStore: Send + Sync + 'static {
    /// The current state, if initialised.
    async fn load(&self) -> Result<Option<PuzzleState>, StoreError>;
    /// Stores `state` unless a state exists; returns the state in force.
    async fn init(&self, state: PuzzleState) -> Result<PuzzleState, StoreError>;
    /// Replaces the state with `next` iff the stored version is `expected_version`.
    /// `next.version` must be `expected_version + 1`. Returns whether it swapped.
    async fn compare_and_swap(
        &self,
        expected_version: u64,
        next: PuzzleState,
    ) -> Result<bool, StoreError>;

    /// Marks `miner` as mining the puzzle `seed` (a different seed than the record's starts a
    /// fresh record: a reset clears the accounting).
    async fn mining_start(
        &self,
        seed: &str,
        miner: ConnectionId,
        now: f64,
    ) -> Result<(), StoreError>;
    /// Marks `miner` as no longer mining (stop or disconnect).
    async fn mining_stop(&self, miner: ConnectionId, now: f64) -> Result<(), StoreError>;
    /// Mining time accumulated for `seed` up to `now` (zero for any other seed).
    async fn mining_time(&self, seed: &str, now: f64) -> Result<MiningTime, StoreError>;

    /// Opens a reward window, replacing any earlier one.
    async fn reward_open(&self, window: RewardWindow) -> Result<(), StoreError>;
    /// The open window, if any.
    async fn reward_window(&self) -> Result<Option<RewardWindow>, StoreError>;
    /// Checks (`entry` = None) or records (`Some`) a submission for `seed` from `ip`,
    /// atomically: one per IP, before `closes_at`; a recorded entry replaces the best if it beats it.
    async fn reward_offer(
        &self,
        seed: &str,
        ip: &str,
        entry: Option<RewardEntry>,
        now: f64,
    ) -> Result<RewardOffer, StoreError>;
    /// Removes and returns the window for `seed`, if it is the open one.
    async fn reward_take(&self, seed: &str) -> Result<Option<RewardWindow>, StoreError>;
    /// Cancels any open window.
    async fn reward_cancel(&self) -> Result<(), StoreError>;
}

#[derive(Debug, Default)]
struct MiningRecord {
    seed: String,
    active: HashSet<ConnectionId>,
    segment_start: Option<f64>,
    total: f64,
}

impl MiningRecord {
    fn time(&self, now: f64) -> f64 {
        self.total + self.segment_start.map_or(0.0, |s| (now - s).max(0.0))
    }
}

/// Puzzle state in this process's memory.
#[derive(Debug, Default)]
pub struct MemoryPuzzleStore {
    state: Mutex<Option<PuzzleState>>,
    mining: Mutex<MiningRecord>,
    reward: Mutex<Option<RewardWindow>>,
}

impl MemoryPuzzleStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl PuzzleStore for MemoryPuzzleStore {
    async fn load(&self) -> Result<Option<PuzzleState>, StoreError> {
        Ok(lock(&self.state).clone())
    }

    async fn init(&self, state: PuzzleState) -> Result<PuzzleState, StoreError> {
        Ok(lock(&self.state).get_or_insert(state).clone())
    }

    async fn compare_and_swap(
        &self,
        expected_version: u64,
        next: PuzzleState,
    ) -> Result<bool, StoreError> {
        let mut current = lock(&self.state);
        match current.as_ref() {
            Some(s) if s.version == expected_version => {
                *current = Some(next);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn mining_start(
        &self,
        seed: &str,
        miner: ConnectionId,
        now: f64,
    ) -> Result<(), StoreError> {
        let mut m = lock(&self.mining);
        if m.seed != seed {
            *m = MiningRecord {
                seed: seed.to_string(),
                ..MiningRecord::default()
            };
        }
        if m.active.insert(miner) && m.active.len() == 1 {
            m.segment_start = Some(now);
        }
        Ok(())
    }

    async fn mining_stop(&self, miner: ConnectionId, now: f64) -> Result<(), StoreError> {
        let mut m = lock(&self.mining);
        if m.active.remove(&miner)
            && m.active.is_empty()
            && let Some(start) = m.segment_start.take()
        {
            m.total += (now - start).max(0.0);
        }
        Ok(())
    }

    async fn mining_time(&self, seed: &str, now: f64) -> Result<MiningTime, StoreError> {
        let m = lock(&self.mining);
        Ok(if m.seed == seed {
            MiningTime {
                seconds: m.time(now),
                active_miners: m.active.len(),
            }
        } else {
            MiningTime::default()
        })
    }

    async fn reward_open(&self, window: RewardWindow) -> Result<(), StoreError> {
        *lock(&self.reward) = Some(window);
        Ok(())
    }

    async fn reward_window(&self) -> Result<Option<RewardWindow>, StoreError> {
        Ok(lock(&self.reward).clone())
    }

    async fn reward_offer(
        &self,
        seed: &str,
        ip: &str,
        entry: Option<RewardEntry>,
        now: f64,
    ) -> Result<RewardOffer, StoreError> {
        let mut guard = lock(&self.reward);
        let Some(window) = guard.as_mut().filter(|w| now < w.closes_at) else {
            return Ok(RewardOffer::NoWindow);
        };
        if window.seed != seed {
            return Ok(RewardOffer::SeedMismatch);
        }
        if window.submitted_ips.contains(ip) {
            return Ok(RewardOffer::AlreadySubmitted);
        }
        if let Some(entry) = entry {
            window.submitted_ips.insert(ip.to_string());
            if window.best.as_ref().is_none_or(|best| entry.beats(best)) {
                window.best = Some(entry);
            }
        }
        Ok(RewardOffer::Accepted)
    }

    async fn reward_take(&self, seed: &str) -> Result<Option<RewardWindow>, StoreError> {
        let mut guard = lock(&self.reward);
        if guard.as_ref().is_some_and(|w| w.seed == seed) {
            Ok(guard.take())
        } else {
            Ok(None)
        }
    }

    async fn reward_cancel(&self) -> Result<(), StoreError> {
        *lock(&self.reward) = None;
        Ok(())
    }
}

// The store's behaviour is tested once for every backend: tests/tests/stores.rs.
