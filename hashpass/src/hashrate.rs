//! Miners' hashrate reports and the network total (docs/protocol.md#messages-from-the-client, docs/protocol.md#speed-limit, docs/protocol.md#how-a-solution-is-checked).
//!
//! Reports are validated before they are stored (finite, 0..=1e9), so the total can never become
//! non-finite. A report above what the puzzle's Argon2 parameters make plausible
//! ([`plausible_ceiling`], docs/protocol.md#plausible-hashrate) is cut to that ceiling and, like a
//! report at or above `max_nonce_speed`, kept apart as overspeed: shown to the admin, excluded from
//! the network total, never a reason to refuse anyone.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::puzzle::Argon2Params;
use crate::puzzle_store::{CHART_HISTORY, ChartPoint};
use crate::session::ConnectionId;
use crate::util::lock;

/// Largest hashrate a report may claim.
pub const MAX_REPORTED_RATE: f64 = 1e9;

/// Accepts a reported rate only if it is a finite number in `[0, 1e9]`.
pub fn validate_rate(value: &serde_json::Value) -> Option<f64> {
    // Booleans are not numbers here (docs/protocol.md#how-a-solution-is-checked), unlike the original's Python check.
    let rate = value.as_f64()?;
    (rate.is_finite() && (0.0..=MAX_REPORTED_RATE).contains(&rate)).then_some(rate)
}

/// Bytes of Argon2 memory one CPU core can plausibly process per second, generously: 16 GiB/s.
/// Every Argon2 pass reads and writes each of the `memory_cost` KiB blocks, so a hash costs at
/// least `memory_cost × 1024 × time_cost` bytes of block processing; the fastest native
/// implementations manage a few GiB/s per core, and a browser's WebAssembly less.
pub const CORE_BYTES_PER_SECOND: f64 = 16.0 * 1024.0 * 1024.0 * 1024.0;

/// The most workers one page can run: the upper bound of `worker_count`
/// (`HASHPASS_WORKER_COUNT`, the admin's worker-count setting), each a thread on its own core.
pub const MAX_WORKERS: u32 = 32;

/// The highest hashrate one socket can plausibly report for a puzzle with `params`:
/// [`CORE_BYTES_PER_SECOND`] divided by the bytes one hash processes, times [`MAX_WORKERS`], and
/// never above [`MAX_REPORTED_RATE`]. The defaults (64 MiB, 3 passes) give 85⅓ H/s per core,
/// 2730⅔ H/s per socket, where an honest browser reports a few H/s per worker. Lanes
/// (`parallelism`) split the same memory, so they do not change the bound.
pub fn plausible_ceiling(params: Argon2Params) -> f64 {
    let bytes_per_hash =
        f64::from(params.memory_cost.max(1)) * 1024.0 * f64::from(params.time_cost.max(1));
    (CORE_BYTES_PER_SECOND / bytes_per_hash * f64::from(MAX_WORKERS)).min(MAX_REPORTED_RATE)
}

/// A valid report's rate as stored, and whether it counts as overspeed: a rate above the
/// [`plausible_ceiling`] is cut to it and flagged; one at or above `max_nonce_speed` (when that
/// is not 0) is flagged.
pub fn judge_rate(rate: f64, params: Argon2Params, max_nonce_speed: f64) -> (f64, bool) {
    let ceiling = plausible_ceiling(params);
    let implausible = rate > ceiling;
    let rate = rate.min(ceiling);
    let overspeed = implausible || (max_nonce_speed > 0.0 && rate >= max_nonce_speed);
    (rate, overspeed)
}

/// One connection's latest report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MinerReport {
    /// The reporting connection.
    pub connection: ConnectionId,
    /// Its effective IP.
    pub ip: IpAddr,
    /// Reported hashes per second.
    pub rate: f64,
    /// When the report arrived.
    pub last_seen: f64,
    /// When this connection first reported.
    pub first_seen: f64,
    /// At or above the max nonce speed.
    pub overspeed: bool,
}

/// The network's hashrate at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct NetworkHashrate {
    /// Sum of fresh, non-overspeed reports.
    pub total_hashrate: f64,
    /// Number of fresh, non-overspeed reports.
    pub active_miners: usize,
}

/// Where reports live.
#[async_trait]
pub trait HashrateStore: Send + Sync + 'static {
    /// Records a connection's report (replacing its previous one, keeping its first-seen time).
    async fn report(
        &self,
        connection: ConnectionId,
        ip: IpAddr,
        rate: f64,
        overspeed: bool,
        now: f64,
    ) -> Result<(), StoreError>;
    /// Forgets a connection (disconnect).
    async fn remove(&self, connection: ConnectionId) -> Result<(), StoreError>;
    /// Reports no older than `stale` at `now`.
    async fn fresh(&self, now: f64, stale: Duration) -> Result<Vec<MinerReport>, StoreError>;
    /// Forgets every report (kick-all).
    async fn clear(&self) -> Result<(), StoreError>;
    /// Appends a network-total sample to the chart (keeps the last 50).
    async fn push_chart(&self, point: ChartPoint) -> Result<(), StoreError>;
    /// The chart samples, oldest first.
    async fn chart(&self) -> Result<Vec<ChartPoint>, StoreError>;
}

/// Sums fresh reports into the network figure.
pub fn network_hashrate(reports: &[MinerReport]) -> NetworkHashrate {
    let normal = reports.iter().filter(|r| !r.overspeed);
    NetworkHashrate {
        total_hashrate: normal.clone().map(|r| r.rate).sum(),
        active_miners: normal.count(),
    }
}

/// Reports in this process's memory.
#[derive(Debug, Default)]
pub struct MemoryHashrateStore {
    reports: Mutex<HashMap<ConnectionId, MinerReport>>,
    chart: Mutex<Vec<ChartPoint>>,
}

impl MemoryHashrateStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl HashrateStore for MemoryHashrateStore {
    async fn report(
        &self,
        connection: ConnectionId,
        ip: IpAddr,
        rate: f64,
        overspeed: bool,
        now: f64,
    ) -> Result<(), StoreError> {
        let mut reports = lock(&self.reports);
        let first_seen = reports.get(&connection).map_or(now, |r| r.first_seen);
        reports.insert(
            connection,
            MinerReport {
                connection,
                ip,
                rate,
                last_seen: now,
                first_seen,
                overspeed,
            },
        );
        Ok(())
    }

    async fn remove(&self, connection: ConnectionId) -> Result<(), StoreError> {
        lock(&self.reports).remove(&connection);
        Ok(())
    }

    async fn fresh(&self, now: f64, stale: Duration) -> Result<Vec<MinerReport>, StoreError> {
        let stale = stale.as_secs_f64();
        Ok(lock(&self.reports)
            .values()
            .filter(|r| now - r.last_seen <= stale)
            .cloned()
            .collect())
    }

    async fn clear(&self) -> Result<(), StoreError> {
        lock(&self.reports).clear();
        Ok(())
    }

    async fn push_chart(&self, point: ChartPoint) -> Result<(), StoreError> {
        let mut chart = lock(&self.chart);
        chart.push(point);
        if chart.len() > CHART_HISTORY {
            let excess = chart.len() - CHART_HISTORY;
            chart.drain(..excess);
        }
        Ok(())
    }

    async fn chart(&self) -> Result<Vec<ChartPoint>, StoreError> {
        Ok(lock(&self.chart).clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_finite_bounded_numbers_count() {
        assert_eq!(validate_rate(&json!(12.5)), Some(12.5));
        assert_eq!(validate_rate(&json!(0)), Some(0.0));
        assert_eq!(validate_rate(&json!(1e9)), Some(1e9));
        for bad in [
            json!(-1),
            json!(1e10),
            json!(true),
            json!("5"),
            json!(null),
            json!([1]),
        ] {
            assert_eq!(validate_rate(&bad), None, "{bad}");
        }
        // 1e400 does not parse as a finite f64 in JSON; serde_json yields an error, not inf.
        assert!(serde_json::from_str::<serde_json::Value>("1e400").is_err());
    }

    #[test]
    fn the_ceiling_follows_the_parameters() {
        // Defaults: 64 MiB × 3 passes = 192 MiB a hash; 16 GiB/s ÷ 192 MiB = 85⅓ H/s a core.
        let defaults = plausible_ceiling(Argon2Params::default());
        // × 32 workers = 8192/3 ≈ 2730.67 H/s.
        assert!((defaults - 8192.0 / 3.0).abs() < 1e-9, "{defaults}");
        // Twice the memory or twice the passes halve it; lanes change nothing.
        assert!(
            (plausible_ceiling(Argon2Params::new(3, 131_072, 1)) - defaults / 2.0).abs() < 1e-9
        );
        assert!((plausible_ceiling(Argon2Params::new(6, 65_536, 1)) - defaults / 2.0).abs() < 1e-9);
        assert_eq!(plausible_ceiling(Argon2Params::new(3, 65_536, 4)), defaults);
        // The smallest puzzle (8 KiB, one pass) is capped by the largest report accepted.
        let tiny = plausible_ceiling(Argon2Params::new(1, 8, 1));
        assert_eq!(tiny, 16.0 * 1024.0 * 1024.0 / 8.0 * 32.0);
        assert!(tiny <= MAX_REPORTED_RATE);
    }

    #[test]
    fn implausible_reports_are_cut_and_flagged() {
        let params = Argon2Params::default();
        let ceiling = plausible_ceiling(params);
        // An honest browser's rate passes untouched.
        assert_eq!(judge_rate(6.5, params, 0.0), (6.5, false));
        assert_eq!(judge_rate(ceiling, params, 0.0), (ceiling, false));
        // One socket claiming 1e9 H/s is cut to the ceiling and left out of the total.
        assert_eq!(judge_rate(1e9, params, 0.0), (ceiling, true));
        // The speed limit still flags on its own.
        assert_eq!(judge_rate(50.0, params, 40.0), (50.0, true));
        assert_eq!(judge_rate(30.0, params, 40.0), (30.0, false));
        let flagged = [
            MinerReport {
                connection: 1,
                ip: "192.0.2.1".parse().unwrap(),
                rate: 6.5,
                last_seen: 0.0,
                first_seen: 0.0,
                overspeed: false,
            },
            MinerReport {
                connection: 2,
                ip: "192.0.2.2".parse().unwrap(),
                rate: ceiling,
                last_seen: 0.0,
                first_seen: 0.0,
                overspeed: judge_rate(1e9, params, 0.0).1,
            },
        ];
        let network = network_hashrate(&flagged);
        assert_eq!((network.total_hashrate, network.active_miners), (6.5, 1));
    }
}
