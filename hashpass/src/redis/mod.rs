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
mod instances;
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
pub use instances::RedisInstanceRegistry;
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

/// What a Redis keeps across its own restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Persistence {
    /// An append-only file, fsynced as `appendfsync` says (`always`, `everysec` or `no`).
    AppendOnly {
        /// The `appendfsync` setting.
        fsync: String,
    },
    /// No append-only file: at best the last snapshot survives a restart.
    NotAppendOnly,
    /// `CONFIG GET` is not allowed or failed (managed Redis often renames it).
    Unknown(String),
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

    /// What this Redis keeps across its own restart, as `CONFIG GET` reports it
    /// (docs/protocol.md#redis-persistence).
    pub async fn persistence(&self) -> Persistence {
        let mut conn = self.connection();
        let read: Result<Vec<String>, _> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("append*")
            .query_async(&mut conn)
            .await;
        let settings: std::collections::HashMap<String, String> = match read {
            Ok(pairs) => pairs
                .chunks_exact(2)
                .map(|p| (p[0].clone(), p[1].clone()))
                .collect(),
            Err(e) => return Persistence::Unknown(e.to_string()),
        };
        match settings.get("appendonly").map(String::as_str) {
            Some("yes") => Persistence::AppendOnly {
                fsync: settings.get("appendfsync").cloned().unwrap_or_default(),
            },
            Some(_) => Persistence::NotAppendOnly,
            None => Persistence::Unknown("CONFIG GET returned no appendonly".into()),
        }
    }

    /// Logs what [`RedisBackend::persistence`] finds: an error when Redis would lose
    /// acknowledged wins on a restart.
    pub async fn check_persistence(&self) -> Persistence {
        let persistence = self.persistence().await;
        match &persistence {
            Persistence::AppendOnly { fsync } if fsync == "always" || fsync == "everysec" => {
                tracing::info!(appendfsync = %fsync, "Redis keeps an append-only file");
            }
            Persistence::AppendOnly { fsync } => {
                tracing::warn!(appendfsync = %fsync, "Redis keeps an append-only file but leaves its fsync to the OS: set appendfsync everysec or always")
            }
            Persistence::NotAppendOnly => tracing::error!(
                "Redis runs without appendonly: a Redis restart loses acknowledged wins' audit records and webhook deliveries. Set appendonly yes (appendfsync everysec or always)"
            ),
            Persistence::Unknown(why) => {
                tracing::warn!(error = %why, "could not read Redis's persistence settings; make sure appendonly is yes")
            }
        }
        persistence
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
