//! [`AuditLog`] in Redis: every instance appends to one stream, so the admin sees every win of
//! the deployment; statistics are counters kept beside it (never a re-read of the stream), and
//! [`RedisAuditLog::export_jsonl`] writes the stream out as the JSONL file the file log uses.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use async_trait::async_trait;
use redis::AsyncCommands;

use super::{RedisBackend, unavailable};
use crate::audit::{
    AuditLog, AuditRecord, CURRENT_FILE, LEGACY_FILE, LogPage, LogQuery, LogStats, LoggedRecord,
    paginate, unknown_file,
};
use crate::error::StoreError;
use crate::util::round_dp;

/// The audit trail as a Redis stream with running statistics.
#[derive(Debug, Clone)]
pub struct RedisAuditLog {
    backend: RedisBackend,
}

impl RedisAuditLog {
    /// The log on `backend`.
    pub fn new(backend: RedisBackend) -> Self {
        Self { backend }
    }

    /// Every record, oldest first: each entry's JSON as stored (an entry that is not JSON is
    /// skipped).
    async fn records(&self) -> Result<Vec<LoggedRecord>, StoreError> {
        let mut conn = self.backend.connection();
        let entries: redis::streams::StreamRangeReply = conn
            .xrange_all(self.backend.key("audit"))
            .await
            .map_err(unavailable)?;
        Ok(entries
            .ids
            .iter()
            .filter_map(|entry| entry.get::<String>("record"))
            .filter_map(|json| LoggedRecord::from_json(&json))
            .collect())
    }

    /// Writes every record to `path` as JSONL (one compact record per line), atomically.
    pub async fn export_jsonl(&self, path: &Path) -> Result<usize, StoreError> {
        let records = self.records().await?;
        crate::audit::write_jsonl(path, &records).await?;
        Ok(records.len())
    }
}

#[async_trait]
impl AuditLog for RedisAuditLog {
    async fn append(&self, record: &AuditRecord) -> Result<(), StoreError> {
        let b = &self.backend;
        let json = serde_json::to_string(record).expect("an audit record serialises");
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("XADD")
            .arg(b.key("audit"))
            .arg("*")
            .arg("record")
            .arg(json)
            .ignore()
            .sadd(b.key("audit:visitors"), &record.visitor_id)
            .ignore();
        if let Some(t) = record.solve_time.filter(|t| *t > 0.0) {
            pipe.rpush(b.key("audit:solve_times"), t).ignore();
        }
        if record.difficulty > 0 {
            pipe.hincr(b.key("audit:difficulty"), record.difficulty, 1)
                .ignore();
        }
        let mut conn = b.connection();
        pipe.query_async::<()>(&mut conn).await.map_err(unavailable)
    }

    async fn files(&self) -> Result<Vec<String>, StoreError> {
        Ok(vec![CURRENT_FILE.to_string()])
    }

    async fn page(&self, query: &LogQuery) -> Result<LogPage, StoreError> {
        let files = self.files().await?;
        if query.file != CURRENT_FILE && query.file != LEGACY_FILE {
            return Ok(unknown_file(query, files));
        }
        Ok(paginate(&self.records().await?, query, files))
    }

    async fn stats(&self) -> Result<LogStats, StoreError> {
        let b = &self.backend;
        let mut conn = b.connection();
        let (total, visitors, mut times, difficulties): (u64, u64, Vec<f64>, HashMap<String, u64>) =
            redis::pipe()
                .atomic()
                .xlen(b.key("audit"))
                .scard(b.key("audit:visitors"))
                .lrange(b.key("audit:solve_times"), 0, -1)
                .hgetall(b.key("audit:difficulty"))
                .query_async(&mut conn)
                .await
                .map_err(unavailable)?;
        times.sort_by(f64::total_cmp);
        Ok(LogStats {
            total_codes: total,
            unique_visitors: visitors,
            avg_solve_time: (!times.is_empty())
                .then(|| round_dp(times.iter().sum::<f64>() / times.len() as f64, 2)),
            median_solve_time: times.get(times.len() / 2).map(|t| round_dp(*t, 2)),
            difficulty_distribution: difficulties.into_iter().collect::<BTreeMap<_, _>>(),
        })
    }

    async fn recent_solve_times(&self, n: usize) -> Result<Vec<f64>, StoreError> {
        if n == 0 {
            return Ok(Vec::new());
        }
        let b = &self.backend;
        let mut conn = b.connection();
        conn.lrange(b.key("audit:solve_times"), -(n as isize), -1)
            .await
            .map_err(unavailable)
    }
}
