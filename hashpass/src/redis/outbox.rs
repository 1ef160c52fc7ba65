//! Webhook outbox: one shared by every instance, so a delivery recorded by an instance that
//! died is made by another.

use std::sync::LazyLock;
use std::time::Duration;

use async_trait::async_trait;
use redis::{AsyncCommands, Script};

use super::{RedisBackend, unavailable};
use crate::error::StoreError;
use crate::outbox::{Delivery, OutboxSummary, WebhookOutbox};

/// Takes up to ARGV[3] deliveries due at ARGV[1], hiding each until ARGV[2]: their JSON.
static TAKE_DUE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local keys = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
local taken = {}
for _, key in ipairs(keys) do
  local json = redis.call('HGET', KEYS[2], key)
  if json then
    redis.call('ZADD', KEYS[1], ARGV[2], key)
    table.insert(taken, json)
  else
    redis.call('ZREM', KEYS[1], key)
  end
end
return taken",
    )
});

/// The outbox in Redis: `outbox:pending` (key → delivery JSON), `outbox:due` (key → when it is
/// next due, or hidden until while taken), `outbox:created` (key → when it was recorded) and
/// `outbox:failed` (key → delivery JSON). Each change is one transaction.
#[derive(Debug, Clone)]
pub struct RedisOutbox {
    backend: RedisBackend,
}

impl RedisOutbox {
    /// The outbox on `backend`.
    pub fn new(backend: RedisBackend) -> Self {
        Self { backend }
    }

    fn keys(&self) -> [String; 4] {
        ["pending", "due", "created", "failed"].map(|k| self.backend.key(&format!("outbox:{k}")))
    }

    /// Stores `delivery` as pending, due at its `next_attempt_at`.
    async fn put_pending(&self, delivery: &Delivery) -> Result<(), StoreError> {
        let [pending, due, created, _] = self.keys();
        let json = serde_json::to_string(delivery).expect("a delivery serialises");
        let key = delivery.key();
        let () = redis::pipe()
            .atomic()
            .hset(&pending, key, json)
            .ignore()
            .zadd(&due, key, delivery.next_attempt_at.to_string())
            .ignore()
            .zadd(&created, key, delivery.created_at.to_string())
            .ignore()
            .query_async(&mut self.backend.connection())
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// Removes `key` from the pending deliveries and, when `failed` is given, keeps that JSON
    /// as its failed delivery — one transaction.
    async fn forget_pending(&self, key: &str, failed: Option<&str>) -> Result<(), StoreError> {
        let [pending, due, created, failed_key] = self.keys();
        let mut pipe = redis::pipe();
        pipe.atomic()
            .hdel(&pending, key)
            .ignore()
            .zrem(&due, key)
            .ignore()
            .zrem(&created, key)
            .ignore();
        if let Some(json) = failed {
            pipe.hset(&failed_key, key, json).ignore();
        }
        let () = pipe
            .query_async(&mut self.backend.connection())
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}

fn parse(json: &str) -> Option<Delivery> {
    serde_json::from_str(json)
        .inspect_err(|e| tracing::error!(error = %e, "unreadable outbox entry"))
        .ok()
}

#[async_trait]
impl WebhookOutbox for RedisOutbox {
    async fn enqueue(&self, delivery: Delivery) -> Result<(), StoreError> {
        self.put_pending(&delivery).await
    }

    async fn take_due(
        &self,
        now: f64,
        lease: Duration,
        max: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let [pending, due, _, _] = self.keys();
        let taken: Vec<String> = TAKE_DUE
            .key(due)
            .key(pending)
            .arg(now.to_string())
            .arg((now + lease.as_secs_f64()).to_string())
            .arg(max)
            .invoke_async(&mut self.backend.connection())
            .await
            .map_err(unavailable)?;
        Ok(taken.iter().filter_map(|json| parse(json)).collect())
    }

    async fn delivered(&self, key: &str) -> Result<(), StoreError> {
        self.forget_pending(key, None).await
    }

    async fn reschedule(&self, delivery: &Delivery) -> Result<(), StoreError> {
        self.put_pending(delivery).await
    }

    async fn give_up(&self, delivery: &Delivery) -> Result<(), StoreError> {
        let json = serde_json::to_string(delivery).expect("a delivery serialises");
        self.forget_pending(delivery.key(), Some(&json)).await
    }

    async fn retry_failed(&self, now: f64) -> Result<usize, StoreError> {
        let [_, _, _, failed] = self.keys();
        let mut conn = self.backend.connection();
        let entries: Vec<(String, String)> = conn.hgetall(&failed).await.map_err(unavailable)?;
        let mut moved = 0;
        for (key, json) in entries {
            let Some(delivery) = parse(&json) else {
                continue;
            };
            self.put_pending(&delivery.requeued(now)).await?;
            let _: () = conn.hdel(&failed, &key).await.map_err(unavailable)?;
            moved += 1;
        }
        Ok(moved)
    }

    async fn summary(&self, limit: usize) -> Result<OutboxSummary, StoreError> {
        let [pending, due, created, failed] = self.keys();
        let mut conn = self.backend.connection();
        let (pending_count, failed_count, oldest): (usize, usize, Vec<(String, f64)>) =
            redis::pipe()
                .hlen(&pending)
                .hlen(&failed)
                .zrange_withscores(&created, 0, 0)
                .query_async(&mut conn)
                .await
                .map_err(unavailable)?;
        let mut summary = OutboxSummary {
            pending: pending_count,
            failed: failed_count,
            oldest_pending_at: oldest.first().map(|(_, t)| *t),
            ..OutboxSummary::default()
        };
        if limit == 0 {
            return Ok(summary);
        }
        let soonest: Vec<String> = conn
            .zrange(&due, 0, limit as isize - 1)
            .await
            .map_err(unavailable)?;
        if !soonest.is_empty() {
            let jsons: Vec<Option<String>> = redis::cmd("HMGET")
                .arg(&pending)
                .arg(&soonest)
                .query_async(&mut conn)
                .await
                .map_err(unavailable)?;
            summary.pending_deliveries = jsons.iter().flatten().filter_map(|j| parse(j)).collect();
        }
        let failed_jsons: Vec<String> = conn.hvals(&failed).await.map_err(unavailable)?;
        let mut failed: Vec<Delivery> = failed_jsons.iter().filter_map(|j| parse(j)).collect();
        failed.sort_by(|a, b| a.created_at.total_cmp(&b.created_at));
        failed.truncate(limit);
        summary.failed_deliveries = failed;
        Ok(summary)
    }
}
