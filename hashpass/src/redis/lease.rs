//! Job lease.

use std::sync::LazyLock;
use std::time::Duration;

use async_trait::async_trait;
use redis::Script;

use super::{RedisBackend, unavailable};
use crate::error::StoreError;

static LEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0",
    )
});

/// A lease with expiry: at most one instance at a time holds it (the periodic jobs' runner).
#[derive(Debug, Clone)]
pub struct RedisLease {
    backend: RedisBackend,
    name: String,
    owner: String,
    ttl: Duration,
}

impl RedisLease {
    /// The lease `name` on `backend`, held for `ttl` per renewal, owned by a random id.
    pub fn new(backend: RedisBackend, name: &str, ttl: Duration) -> Self {
        Self {
            name: backend.key(&format!("lease:{name}")),
            backend,
            owner: hex::encode(crate::util::random_bytes::<12>()),
            ttl,
        }
    }
}

#[async_trait]
impl crate::service::JobLease for RedisLease {
    /// Takes or renews the lease; true while this instance holds it.
    async fn hold(&self) -> Result<bool, StoreError> {
        let mut conn = self.backend.connection();
        let held: i64 = LEASE
            .key(&self.name)
            .arg(&self.owner)
            .arg(self.ttl.as_millis().to_string())
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(held == 1)
    }
}
