//! Redemptions.
//!
//! A code's hash `invite:<id>` holds max_uses, revoked_at and updated_at; its list
//! `invite:<id>:uses` the uses as JSON, oldest first; the sorted set `invites` indexes codes by
//! their last change.

use std::collections::HashMap;
use std::sync::LazyLock;

use async_trait::async_trait;
use redis::{AsyncCommands, Script};

use super::{RedisBackend, corrupt, unavailable};
use crate::error::StoreError;

static REDEEM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('HEXISTS', KEYS[1], 'revoked_at') == 1 then return 'revoked' end
local max = tonumber(redis.call('HGET', KEYS[1], 'max_uses') or ARGV[4])
if redis.call('LLEN', KEYS[2]) >= max then return 'used' end
redis.call('RPUSH', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[1], 'max_uses', max, 'updated_at', ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[3])
return 'ok'",
    )
});

/// Removes the latest use by ARGV[1] (a JSON `user_id`) from the uses list; 1 if there was one.
static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local uses = redis.call('LRANGE', KEYS[2], 0, -1)
for i = #uses, 1, -1 do
  local ok, use = pcall(cjson.decode, uses[i])
  if ok and type(use) == 'table' and use['user_id'] == ARGV[1] then
    redis.call('LREM', KEYS[2], -1, uses[i])
    redis.call('HSET', KEYS[1], 'updated_at', ARGV[2])
    redis.call('ZADD', KEYS[3], ARGV[2], ARGV[3])
    return 1
  end
end
return 0",
    )
});

static REVOKE_CODE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('HEXISTS', KEYS[1], 'revoked_at') == 1 then return 0 end
local max = tonumber(redis.call('HGET', KEYS[1], 'max_uses') or ARGV[3])
if redis.call('LLEN', KEYS[2]) >= max then return 0 end
redis.call('HSET', KEYS[1], 'max_uses', max, 'revoked_at', ARGV[1], 'updated_at', ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[1], ARGV[2])
return 1",
    )
});

static SET_MAX_USES: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local max = tonumber(ARGV[1])
if max < 1 or redis.call('LLEN', KEYS[2]) > max then return 0 end
redis.call('HSET', KEYS[1], 'max_uses', max, 'updated_at', ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[3])
return 1",
    )
});

/// [`RedemptionStore`](crate::redemption::RedemptionStore) in Redis: each use is one Lua
/// script that checks and counts atomically, so no code signs up more accounts than it allows,
/// whichever instance the sign-ups reach.
#[derive(Debug, Clone)]
pub struct RedisRedemptionStore {
    backend: RedisBackend,
}

impl RedisRedemptionStore {
    /// The store on `backend`.
    pub fn new(backend: RedisBackend) -> Self {
        Self { backend }
    }

    /// The code's hash, its uses list and the index.
    fn keys(&self, code_id: &str) -> [String; 3] {
        [
            self.backend.key(&format!("invite:{code_id}")),
            self.backend.key(&format!("invite:{code_id}:uses")),
            self.backend.key("invites"),
        ]
    }
}

#[async_trait]
impl crate::redemption::RedemptionStore for RedisRedemptionStore {
    async fn redeem(
        &self,
        code_id: &str,
        user_id: &str,
        now: f64,
    ) -> Result<crate::redemption::RedeemOutcome, StoreError> {
        use crate::redemption::{DEFAULT_MAX_USES, RedeemOutcome, Redemption};
        let redemption = Redemption {
            code_id: code_id.into(),
            user_id: user_id.into(),
            used_at: now,
        };
        let json = serde_json::to_string(&redemption).map_err(corrupt)?;
        let mut conn = self.backend.connection();
        let outcome: String = REDEEM
            .key(self.keys(code_id).to_vec())
            .arg(json)
            .arg(now)
            .arg(code_id)
            .arg(DEFAULT_MAX_USES)
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(match outcome.as_str() {
            "ok" => RedeemOutcome::Redeemed(redemption),
            "revoked" => RedeemOutcome::Revoked,
            "used" => RedeemOutcome::UsedUp,
            other => return Err(corrupt(format!("redeem script answered {other:?}"))),
        })
    }

    async fn status(&self, code_id: &str) -> Result<crate::redemption::CodeStatus, StoreError> {
        let [hash, uses, _] = self.keys(code_id);
        let mut conn = self.backend.connection();
        let (fields, uses): (HashMap<String, String>, Vec<String>) = redis::pipe()
            .atomic()
            .hgetall(hash)
            .lrange(uses, 0, -1)
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        code_status(code_id, &fields, &uses)
    }

    async fn release(&self, code_id: &str, user_id: &str, now: f64) -> Result<bool, StoreError> {
        let released: i64 = RELEASE
            .key(self.keys(code_id).to_vec())
            .arg(user_id)
            .arg(now)
            .arg(code_id)
            .invoke_async(&mut self.backend.connection())
            .await
            .map_err(unavailable)?;
        Ok(released == 1)
    }

    async fn revoke(&self, code_id: &str, now: f64) -> Result<bool, StoreError> {
        let mut conn = self.backend.connection();
        let revoked: i64 = REVOKE_CODE
            .key(self.keys(code_id).to_vec())
            .arg(now)
            .arg(code_id)
            .arg(crate::redemption::DEFAULT_MAX_USES)
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(revoked == 1)
    }

    async fn set_max_uses(
        &self,
        code_id: &str,
        max_uses: u32,
        now: f64,
    ) -> Result<Option<crate::redemption::CodeStatus>, StoreError> {
        let mut conn = self.backend.connection();
        let changed: i64 = SET_MAX_USES
            .key(self.keys(code_id).to_vec())
            .arg(max_uses)
            .arg(now)
            .arg(code_id)
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        if changed == 1 {
            Ok(Some(self.status(code_id).await?))
        } else {
            Ok(None)
        }
    }

    async fn list(&self) -> Result<Vec<crate::redemption::CodeStatus>, StoreError> {
        let mut conn = self.backend.connection();
        let ids: Vec<String> = conn
            .zrevrange(self.backend.key("invites"), 0, -1)
            .await
            .map_err(unavailable)?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // One round trip for all of them.
        let mut pipe = redis::pipe();
        for id in &ids {
            let [hash, uses, _] = self.keys(id);
            pipe.hgetall(hash).lrange(uses, 0, -1);
        }
        let found: Vec<(HashMap<String, String>, Vec<String>)> =
            pipe.query_async(&mut conn).await.map_err(unavailable)?;
        ids.iter()
            .zip(&found)
            .map(|(id, (fields, uses))| code_status(id, fields, uses))
            .collect()
    }
}

/// A code's status from its hash fields and its uses list.
fn code_status(
    code_id: &str,
    fields: &HashMap<String, String>,
    uses: &[String],
) -> Result<crate::redemption::CodeStatus, StoreError> {
    let mut status = crate::redemption::CodeStatus::new(code_id);
    let number = |name: &str| -> Result<Option<f64>, StoreError> {
        fields
            .get(name)
            .map(|v| {
                v.parse::<f64>()
                    .map_err(|e| corrupt(format!("{name}: {e}")))
            })
            .transpose()
    };
    if let Some(max) = number("max_uses")? {
        status.max_uses = max as u32;
    }
    status.revoked_at = number("revoked_at")?;
    status.updated_at = number("updated_at")?.unwrap_or(0.0);
    status.uses = uses
        .iter()
        .map(|u| serde_json::from_str(u).map_err(corrupt))
        .collect::<Result<_, _>>()?;
    Ok(status)
}
