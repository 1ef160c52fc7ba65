//! Admin lockout.

use std::net::IpAddr;
use std::sync::LazyLock;
use std::time::Duration;

use async_trait::async_trait;
use redis::{AsyncCommands, Script};

use super::{RedisBackend, unavailable};
use crate::admin::AdminLockout;
use crate::error::StoreError;

static RECORD_FAILURE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local now = tonumber(ARGV[1])
local max = tonumber(ARGV[2])
local period = tonumber(ARGV[3])
local count = tonumber(redis.call('HGET', KEYS[1], 'count') or '0')
local last = tonumber(redis.call('HGET', KEYS[1], 'last') or '0')
local locked = redis.call('HGET', KEYS[1], 'until')
if now - last >= period or (locked and tonumber(locked) <= now) then
  count = 0
  redis.call('HDEL', KEYS[1], 'until')
end
count = count + 1
redis.call('HSET', KEYS[1], 'count', tostring(count), 'last', ARGV[1])
redis.call('EXPIRE', KEYS[1], math.ceil(period) * 2 + 1)
if count >= max then
  redis.call('HSET', KEYS[1], 'count', '0', 'until', ARGV[4])
  return 1
end
return 0",
    )
});

/// [`AdminLockout`] in Redis: one expiring hash per IP.
#[derive(Debug, Clone)]
pub struct RedisAdminLockout {
    backend: RedisBackend,
}

impl RedisAdminLockout {
    /// The table on `backend`.
    pub fn new(backend: RedisBackend) -> Self {
        Self { backend }
    }

    fn key(&self, ip: IpAddr) -> String {
        self.backend.key(&format!("lockout:{ip}"))
    }
}

#[async_trait]
impl AdminLockout for RedisAdminLockout {
    async fn locked_for(&self, ip: IpAddr, now: f64) -> Result<Option<f64>, StoreError> {
        let mut conn = self.backend.connection();
        let until: Option<f64> = conn
            .hget(self.key(ip), "until")
            .await
            .map_err(unavailable)?;
        Ok(until.filter(|u| *u > now).map(|u| u - now))
    }

    async fn record_failure(
        &self,
        ip: IpAddr,
        now: f64,
        max_failures: u32,
        lockout: Duration,
    ) -> Result<bool, StoreError> {
        let mut conn = self.backend.connection();
        let period = lockout.as_secs_f64();
        let locked: i64 = RECORD_FAILURE
            .key(self.key(ip))
            .arg(format!("{now:.6}"))
            .arg(max_failures.to_string())
            .arg(format!("{period:.6}"))
            .arg(format!("{:.6}", now + period))
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(locked == 1)
    }

    async fn clear(&self, ip: IpAddr) -> Result<(), StoreError> {
        let mut conn = self.backend.connection();
        conn.del(self.key(ip)).await.map_err(unavailable)
    }
}
