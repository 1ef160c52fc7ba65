//! Miners' hashrate reports and the network total (docs/protocol.md#messages-from-the-client, docs/protocol.md#speed-limit, docs/protocol.md#how-a-solution-is-checked).
//!
//! Reports are validated before they are stored (finite, 0..=1e9), so the total can never become
//! non-finite. Reports at or above `max_nonce_speed` are kept apart as overspeed: shown to the
//! admin, excluded from the network total, never a reason to refuse anyone.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
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
}
