//! Bans.

use std::net::IpAddr;

use async_trait::async_trait;
use redis::AsyncCommands;

use super::RedisBackend;
use super::unavailable;
use crate::bans::BanList;
use crate::config::canonical_ip;
use crate::error::StoreError;

/// [`BanList`] in Redis: one set of IP strings.
#[derive(Debug, Clone)]
pub struct RedisBanList {
    backend: RedisBackend,
}

impl RedisBanList {
    /// The list on `backend`.
    pub fn new(backend: RedisBackend) -> Self {
        Self { backend }
    }
}

#[async_trait]
impl BanList for RedisBanList {
    async fn is_banned(&self, ip: IpAddr) -> Result<bool, StoreError> {
        let mut conn = self.backend.connection();
        conn.sismember(self.backend.key("bans"), canonical_ip(ip).to_string())
            .await
            .map_err(unavailable)
    }

    async fn ban(&self, ip: IpAddr) -> Result<bool, StoreError> {
        let mut conn = self.backend.connection();
        let added: i64 = conn
            .sadd(self.backend.key("bans"), canonical_ip(ip).to_string())
            .await
            .map_err(unavailable)?;
        Ok(added == 1)
    }

    async fn unban(&self, ip: IpAddr) -> Result<bool, StoreError> {
        let mut conn = self.backend.connection();
        let removed: i64 = conn
            .srem(self.backend.key("bans"), canonical_ip(ip).to_string())
            .await
            .map_err(unavailable)?;
        Ok(removed == 1)
    }

    async fn list(&self) -> Result<Vec<String>, StoreError> {
        let mut conn = self.backend.connection();
        let mut list: Vec<String> = conn
            .smembers(self.backend.key("bans"))
            .await
            .map_err(unavailable)?;
        list.sort();
        Ok(list)
    }

    async fn count(&self) -> Result<usize, StoreError> {
        let mut conn = self.backend.connection();
        conn.scard(self.backend.key("bans"))
            .await
            .map_err(unavailable)
    }
}
