//! Shared state in Redis, so several instances behind a load balancer keep the guarantees of
//! one (behind the `redis` feature).
//!
//! Every store shares one [`RedisBackend`]: a reconnecting connection manager and a key prefix,
//! so several deployments can share a Redis. Every multi-step mutation is one Lua script, so it
//! is atomic across instances; in particular the single-winner claim is one compare-and-swap on
//! the puzzle's version. While Redis is unreachable every call fails with
//! [`StoreError::Unavailable`] (HTTP 503) and nothing is half-written; the manager reconnects on
//! its own when Redis returns.
//!
//! One file per store, named after the core module it implements, beside its scripts. Each
//! multi-step change is one Lua script (atomic on the server, hashed once per process and sent by
//! its SHA after the first load); numbers cross as decimal strings, so nothing is rounded on the
//! way.

mod admin;
mod audit;
mod bans;
mod events;
mod hashrate;
mod lease;
mod outbox;
mod puzzle_store;
mod redemption;
mod session;

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::error::StoreError;

pub use admin::RedisAdminLockout;
pub use audit::RedisAuditLog;
pub use bans::RedisBanList;
pub use events::RedisEventBus;
pub use hashrate::RedisHashrateStore;
pub use lease::RedisLease;
pub use outbox::RedisOutbox;
pub use puzzle_store::RedisPuzzleStore;
pub use redemption::RedisRedemptionStore;
pub use session::RedisSessionStore;

/// A Redis connection and the key prefix of one deployment.
#[derive(Clone)]
pub struct RedisBackend {
    client: redis::Client,
    connection: ConnectionManager,
    prefix: String,
}

impl std::fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBackend")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

pub(crate) fn unavailable(e: redis::RedisError) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

/// A stored value that does not parse.
pub(crate) fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

impl RedisBackend {
    /// Connects to `url` (`redis://host:port/db`); keys start with `prefix` (e.g. `hashpass:`).
    pub async fn connect(url: &str, prefix: impl Into<String>) -> Result<Self, StoreError> {
        let client = redis::Client::open(url).map_err(unavailable)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(1));
        let connection = client
            .get_connection_manager_with_config(config)
            .await
            .map_err(unavailable)?;
        Ok(Self {
            client,
            connection,
            prefix: prefix.into(),
        })
    }

    /// The full key of `name`.
    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub(crate) fn connection(&self) -> ConnectionManager {
        self.connection.clone()
    }

    pub(crate) fn client(&self) -> &redis::Client {
        &self.client
    }

    /// Deletes every key of this prefix (tests, and resetting a deployment).
    pub async fn flush_prefix(&self) -> Result<(), StoreError> {
        let mut conn = self.connection();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}*", self.prefix))
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        if !keys.is_empty() {
            redis::cmd("DEL")
                .arg(keys)
                .query_async::<()>(&mut conn)
                .await
                .map_err(unavailable)?;
        }
        Ok(())
    }
}
