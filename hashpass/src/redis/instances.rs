//! Instance liveness: `instances` (instance id → its last renewal, Unix seconds) and, per
//! instance, `instance:<id>:sockets` (connection id → session token).

use std::sync::LazyLock;
use std::time::Duration;

use async_trait::async_trait;
use redis::{AsyncCommands, Script};

use super::{RedisBackend, unavailable};
use crate::error::StoreError;
use crate::instances::{InstanceRegistry, LapsedInstance};
use crate::session::ConnectionId;

/// Takes every instance but the caller (ARGV[3]) renewed before ARGV[1] (now − lease) out of
/// KEYS[1], with its sockets (the hash ARGV[2] .. id .. ':sockets', deleted):
/// `{id, renewed_at, {connection, token, …}}` per instance. One script, so each lapsed instance
/// is taken by one caller.
static TAKE_LAPSED: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local lapsed = {}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local id, renewed = all[i], all[i + 1]
  if id ~= ARGV[3] and tonumber(renewed) < tonumber(ARGV[1]) then
    local sockets_key = ARGV[2] .. id .. ':sockets'
    local sockets = redis.call('HGETALL', sockets_key)
    redis.call('DEL', sockets_key)
    redis.call('HDEL', KEYS[1], id)
    table.insert(lapsed, {id, renewed, sockets})
  end
end
return lapsed",
    )
});

/// This instance's liveness lease and socket registry in Redis.
#[derive(Debug, Clone)]
pub struct RedisInstanceRegistry {
    backend: RedisBackend,
    id: String,
    lease: Duration,
}

impl RedisInstanceRegistry {
    /// A new instance (a random id) on `backend`, its lease lasting `lease` per renewal.
    pub fn new(backend: RedisBackend, lease: Duration) -> Self {
        Self {
            backend,
            id: hex::encode(crate::util::random_bytes::<8>()),
            lease,
        }
    }

    /// This instance's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    fn instances(&self) -> String {
        self.backend.key("instances")
    }

    fn sockets(&self) -> String {
        self.backend.key(&format!("instance:{}:sockets", self.id))
    }
}

#[async_trait]
impl InstanceRegistry for RedisInstanceRegistry {
    async fn heartbeat(&self, now: f64) -> Result<bool, StoreError> {
        let mut conn = self.backend.connection();
        let added: usize = conn
            .hset(self.instances(), &self.id, now.to_string())
            .await
            .map_err(unavailable)?;
        Ok(added == 1)
    }

    async fn socket_opened(&self, connection: ConnectionId, token: &str) -> Result<(), StoreError> {
        let mut conn = self.backend.connection();
        let () = conn
            .hset(self.sockets(), connection.to_string(), token)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn socket_closed(&self, connection: ConnectionId) -> Result<(), StoreError> {
        let mut conn = self.backend.connection();
        let () = conn
            .hdel(self.sockets(), connection.to_string())
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn take_lapsed(&self, now: f64) -> Result<Vec<LapsedInstance>, StoreError> {
        type Taken = (String, String, Vec<String>);
        let taken: Vec<Taken> = TAKE_LAPSED
            .key(self.instances())
            .arg((now - self.lease.as_secs_f64()).to_string())
            .arg(self.backend.key("instance:"))
            .arg(&self.id)
            .invoke_async(&mut self.backend.connection())
            .await
            .map_err(unavailable)?;
        Ok(taken
            .into_iter()
            .map(|(id, renewed, sockets)| LapsedInstance {
                id,
                lapsed_at: renewed.parse::<f64>().unwrap_or(now) + self.lease.as_secs_f64(),
                sockets: sockets
                    .chunks_exact(2)
                    .filter_map(|pair| Some((pair[0].parse().ok()?, pair[1].clone())))
                    .collect(),
            })
            .collect())
    }

    async fn leave(&self) -> Result<(), StoreError> {
        let () = redis::pipe()
            .atomic()
            .hdel(self.instances(), &self.id)
            .ignore()
            .del(self.sockets())
            .ignore()
            .query_async(&mut self.backend.connection())
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}
