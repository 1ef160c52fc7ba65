//! Instance liveness: `instances` (instance id → its last renewal, Unix seconds by the Redis
//! server's clock) and, per instance, `instance:<id>:sockets` (connection id → session token).
//!
//! Renewals and lapse checks both read the time inside their script (`TIME`), so the instances'
//! own clocks, which may disagree by more than a lease, never enter the comparison; only the
//! durations the scripts return are put on the caller's clock.

use std::sync::LazyLock;
use std::time::Duration;

use async_trait::async_trait;
use redis::{AsyncCommands, Script};

use super::{RedisBackend, unavailable};
use crate::error::StoreError;
use crate::instances::{InstanceRegistry, LapsedInstance};
use crate::session::ConnectionId;

/// The Redis server's time as Unix seconds, `now`, at the start of a script; effects replication
/// first, which Redis before 5 needs for a script that reads the time and then writes (later
/// versions always replicate effects).
const SERVER_NOW: &str = r"
if redis.replicate_commands then redis.replicate_commands() end
local time = redis.call('TIME')
local now = tonumber(time[1]) + tonumber(time[2]) / 1000000
";

/// Renews instance ARGV[1]'s lease in KEYS[1] at the server's time; 1 if it was not there.
static HEARTBEAT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{SERVER_NOW}
return redis.call('HSET', KEYS[1], ARGV[1], string.format('%.6f', now))"
    ))
});

/// Takes every instance but the caller (ARGV[3]) whose last renewal is more than ARGV[1]
/// seconds (the lease) before the server's time out of KEYS[1], with its sockets (the hash
/// ARGV[2] .. id .. ':sockets', deleted): `{id, seconds since it lapsed, {connection, token,
/// …}}` per instance. One script, so each lapsed instance is taken by one caller.
static TAKE_LAPSED: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{SERVER_NOW}
local lease = tonumber(ARGV[1])
local lapsed = {{}}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local id, renewed = all[i], tonumber(all[i + 1])
  if id ~= ARGV[3] and (renewed == nil or renewed + lease < now) then
    local sockets_key = ARGV[2] .. id .. ':sockets'
    local sockets = redis.call('HGETALL', sockets_key)
    redis.call('DEL', sockets_key)
    redis.call('HDEL', KEYS[1], id)
    local ago = 0
    if renewed then ago = now - renewed - lease end
    table.insert(lapsed, {{id, string.format('%.6f', ago), sockets}})
  end
end
return lapsed"
    ))
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
    async fn heartbeat(&self) -> Result<bool, StoreError> {
        let added: usize = HEARTBEAT
            .key(self.instances())
            .arg(&self.id)
            .invoke_async(&mut self.backend.connection())
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
            .arg(format!("{:.6}", self.lease.as_secs_f64()))
            .arg(self.backend.key("instance:"))
            .arg(&self.id)
            .invoke_async(&mut self.backend.connection())
            .await
            .map_err(unavailable)?;
        Ok(taken
            .into_iter()
            .map(|(id, ago, sockets)| LapsedInstance {
                id,
                lapsed_at: now - ago.parse::<f64>().unwrap_or(0.0).max(0.0),
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
