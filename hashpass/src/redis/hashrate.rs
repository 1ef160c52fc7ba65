//! Hashrate.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use async_trait::async_trait;
use redis::AsyncCommands;

use super::{RedisBackend, corrupt, unavailable};
use crate::error::StoreError;
use crate::hashrate::{HashrateStore, MinerReport};
use crate::puzzle_store::{CHART_HISTORY, ChartPoint};
use crate::session::ConnectionId;

/// How long a report may sit before a reader drops it (an instance died without cleaning up).
const REPORT_EXPIRY: f64 = 300.0;

/// [`HashrateStore`] in Redis: one hash of reports by connection, one capped list for the chart.
#[derive(Debug, Clone)]
pub struct RedisHashrateStore {
    backend: RedisBackend,
}

impl RedisHashrateStore {
    /// The store on `backend`.
    pub fn new(backend: RedisBackend) -> Self {
        Self { backend }
    }
}

#[async_trait]
impl HashrateStore for RedisHashrateStore {
    async fn report(
        &self,
        connection: ConnectionId,
        ip: IpAddr,
        rate: f64,
        overspeed: bool,
        now: f64,
    ) -> Result<(), StoreError> {
        let key = self.backend.key("hashrate");
        let mut conn = self.backend.connection();
        let previous: Option<String> = conn
            .hget(&key, connection.to_string())
            .await
            .map_err(unavailable)?;
        let first_seen = previous
            .and_then(|p| serde_json::from_str::<MinerReport>(&p).ok())
            .map_or(now, |r| r.first_seen);
        let report = MinerReport {
            connection,
            ip,
            rate,
            last_seen: now,
            first_seen,
            overspeed,
        };
        let json = serde_json::to_string(&report).map_err(corrupt)?;
        conn.hset(&key, connection.to_string(), json)
            .await
            .map_err(unavailable)
    }

    async fn remove(&self, connection: ConnectionId) -> Result<(), StoreError> {
        let mut conn = self.backend.connection();
        conn.hdel(self.backend.key("hashrate"), connection.to_string())
            .await
            .map_err(unavailable)
    }

    async fn fresh(&self, now: f64, stale: Duration) -> Result<Vec<MinerReport>, StoreError> {
        let key = self.backend.key("hashrate");
        let mut conn = self.backend.connection();
        let all: HashMap<String, String> = conn.hgetall(&key).await.map_err(unavailable)?;
        let reports: Vec<MinerReport> = all
            .values()
            .filter_map(|v| serde_json::from_str(v).ok())
            .collect();
        let expired: Vec<String> = reports
            .iter()
            .filter(|r| now - r.last_seen > REPORT_EXPIRY)
            .map(|r| r.connection.to_string())
            .collect();
        if !expired.is_empty() {
            conn.hdel::<_, _, ()>(&key, expired)
                .await
                .map_err(unavailable)?;
        }
        let stale = stale.as_secs_f64();
        Ok(reports
            .into_iter()
            .filter(|r| now - r.last_seen <= stale)
            .collect())
    }

    async fn clear(&self) -> Result<(), StoreError> {
        let mut conn = self.backend.connection();
        conn.del(self.backend.key("hashrate"))
            .await
            .map_err(unavailable)
    }

    async fn push_chart(&self, point: ChartPoint) -> Result<(), StoreError> {
        let key = self.backend.key("hashrate:chart");
        let mut conn = self.backend.connection();
        redis::pipe()
            .atomic()
            .rpush(&key, serde_json::to_string(&point).map_err(corrupt)?)
            .ltrim(&key, -(CHART_HISTORY as isize), -1)
            .query_async::<()>(&mut conn)
            .await
            .map_err(unavailable)
    }

    async fn chart(&self) -> Result<Vec<ChartPoint>, StoreError> {
        let mut conn = self.backend.connection();
        let points: Vec<String> = conn
            .lrange(self.backend.key("hashrate:chart"), 0, -1)
            .await
            .map_err(unavailable)?;
        Ok(points
            .iter()
            .filter_map(|p| serde_json::from_str(p).ok())
            .collect())
    }
}
