//! Admin lockout.

use std::net::IpAddr;
use std::sync::LazyLock;
use std::time::Duration;

use async_trait::async_trait;
use redis::{AsyncCommands, Script};

use super::{RedisBackend, corrupt, unavailable};
use crate::error::StoreError;
use crate::lockout::{AdminLockout, Attempt};

/// Counts an attempt before its token is compared: `{0, left}` when locked (nothing is
/// compared), `{1, 0}` when it may be compared, `{2, 0}` when it may and is the last allowed
/// (the lock is already set).
static ATTEMPT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local now = tonumber(ARGV[1])
local max = tonumber(ARGV[2])
local period = tonumber(ARGV[3])
local locked = redis.call('HGET', KEYS[1], 'until')
if locked and tonumber(locked) > now then
  return {0, tostring(tonumber(locked) - now)}
end
local count = tonumber(redis.call('HGET', KEYS[1], 'count') or '0')
local last = tonumber(redis.call('HGET', KEYS[1], 'last') or '0')
if now - last >= period or locked then
  count = 0
  redis.call('HDEL', KEYS[1], 'until')
end
count = count + 1
redis.call('HSET', KEYS[1], 'count', tostring(count), 'last', ARGV[1])
redis.call('EXPIRE', KEYS[1], math.ceil(period) * 2 + 1)
if count >= max then
  redis.call('HSET', KEYS[1], 'until', ARGV[4])
  return {2, '0'}
end
return {1, '0'}",
    )
});

/// [`AdminLockout`] in Redis: one expiring hash per client address.
#[derive(Debug, Clone)]
pub struct RedisAdminLockout {
    backend: RedisBackend,
}

impl RedisAdminLockout {
    /// The table on `backend`.
    pub fn new(backend: RedisBackend) -> Self {
        Self { backend }
    }

    fn key(&self, address: IpAddr) -> String {
        self.backend.key(&format!("lockout:{address}"))
    }
}

#[async_trait]
impl AdminLockout for RedisAdminLockout {
    async fn locked_for(&self, address: IpAddr, now: f64) -> Result<Option<f64>, StoreError> {
        let mut conn = self.backend.connection();
        let until: Option<f64> = conn
            .hget(self.key(address), "until")
            .await
            .map_err(unavailable)?;
        Ok(until.filter(|u| *u > now).map(|u| u - now))
    }

    async fn attempt(
        &self,
        address: IpAddr,
        now: f64,
        max_failures: u32,
        lockout: Duration,
    ) -> Result<Attempt, StoreError> {
        let mut conn = self.backend.connection();
        let period = lockout.as_secs_f64();
        let (state, left): (i64, String) = ATTEMPT
            .key(self.key(address))
            .arg(format!("{now:.6}"))
            .arg(max_failures.to_string())
            .arg(format!("{period:.6}"))
            .arg(format!("{:.6}", now + period))
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(match state {
            0 => Attempt::LockedOut(left.parse().map_err(corrupt)?),
            2 => Attempt::Compare { last: true },
            _ => Attempt::Compare { last: false },
        })
    }

    async fn clear(&self, address: IpAddr) -> Result<(), StoreError> {
        let mut conn = self.backend.connection();
        conn.del(self.key(address)).await.map_err(unavailable)
    }
}
