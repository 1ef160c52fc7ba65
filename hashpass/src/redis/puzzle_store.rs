//! Puzzle state, mining time, reward window.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use async_trait::async_trait;
use redis::{AsyncCommands, Script};

use super::{RedisBackend, corrupt, unavailable};
use crate::error::StoreError;
use crate::puzzle_store::{
    MiningTime, PuzzleState, PuzzleStore, RewardEntry, RewardOffer, RewardWindow,
};
use crate::session::ConnectionId;

static INIT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('HSETNX', KEYS[1], 'version', ARGV[1]) == 1 then
  redis.call('HSET', KEYS[1], 'state', ARGV[2])
end
return redis.call('HGET', KEYS[1], 'state')",
    )
});

static CAS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('HGET', KEYS[1], 'version') == ARGV[1] then
  redis.call('HSET', KEYS[1], 'version', ARGV[2], 'state', ARGV[3])
  return 1
end
return 0",
    )
});

static MINING_START: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('HGET', KEYS[1], 'seed') ~= ARGV[1] then
  redis.call('DEL', KEYS[1], KEYS[2])
  redis.call('HSET', KEYS[1], 'seed', ARGV[1], 'total', '0')
end
if redis.call('SADD', KEYS[2], ARGV[2]) == 1 and redis.call('SCARD', KEYS[2]) == 1 then
  redis.call('HSET', KEYS[1], 'start', ARGV[3])
end
return 1",
    )
});

static MINING_STOP: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('SREM', KEYS[2], ARGV[1]) == 1 and redis.call('SCARD', KEYS[2]) == 0 then
  local start = redis.call('HGET', KEYS[1], 'start')
  if start then
    local elapsed = tonumber(ARGV[2]) - tonumber(start)
    if elapsed < 0 then elapsed = 0 end
    local total = tonumber(redis.call('HGET', KEYS[1], 'total') or '0')
    redis.call('HSET', KEYS[1], 'total', string.format('%.6f', total + elapsed))
    redis.call('HDEL', KEYS[1], 'start')
  end
end
return 1",
    )
});

static REWARD_OFFER: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local seed = redis.call('HGET', KEYS[1], 'seed')
if not seed then return 'none' end
if tonumber(redis.call('HGET', KEYS[1], 'closes_at')) <= tonumber(ARGV[3]) then return 'none' end
if seed ~= ARGV[1] then return 'mismatch' end
if redis.call('SISMEMBER', KEYS[2], ARGV[2]) == 1 then return 'already' end
if ARGV[4] == '' then return 'ok' end
redis.call('SADD', KEYS[2], ARGV[2])
local zeros = tonumber(ARGV[5])
local nonce = tonumber(ARGV[6])
local best_zeros = redis.call('HGET', KEYS[1], 'best_zeros')
local better = not best_zeros
if best_zeros then
  local bz = tonumber(best_zeros)
  local bn = tonumber(redis.call('HGET', KEYS[1], 'best_nonce'))
  better = zeros > bz or (zeros == bz and nonce < bn)
end
if better then
  redis.call('HSET', KEYS[1], 'best_zeros', ARGV[5], 'best_nonce', ARGV[6], 'best', ARGV[4])
end
return 'ok'",
    )
});

static REWARD_TAKE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('HGET', KEYS[1], 'seed') ~= ARGV[1] then return false end
local out = { redis.call('HGET', KEYS[1], 'meta'), redis.call('HGET', KEYS[1], 'best') or '' }
for _, ip in ipairs(redis.call('SMEMBERS', KEYS[2])) do table.insert(out, ip) end
redis.call('DEL', KEYS[1], KEYS[2])
return out",
    )
});

/// [`PuzzleStore`] in Redis: the state as one hash (version + JSON), the claim as a Lua
/// compare-and-swap on the version.
#[derive(Debug, Clone)]
pub struct RedisPuzzleStore {
    backend: RedisBackend,
}

impl RedisPuzzleStore {
    /// The store on `backend`.
    pub fn new(backend: RedisBackend) -> Self {
        Self { backend }
    }

    fn keys(&self) -> (String, String, String, String, String) {
        let b = &self.backend;
        (
            b.key("puzzle"),
            b.key("mining"),
            b.key("mining:active"),
            b.key("reward"),
            b.key("reward:ips"),
        )
    }
}

fn window_from(meta: &str, best: &str, ips: &[String]) -> Result<RewardWindow, StoreError> {
    let mut window: RewardWindow = serde_json::from_str(meta).map_err(corrupt)?;
    window.submitted_ips = ips.iter().cloned().collect::<BTreeSet<_>>();
    window.best = if best.is_empty() {
        None
    } else {
        Some(serde_json::from_str::<RewardEntry>(best).map_err(corrupt)?)
    };
    Ok(window)
}

#[async_trait]
impl PuzzleStore for RedisPuzzleStore {
    async fn load(&self) -> Result<Option<PuzzleState>, StoreError> {
        let mut conn = self.backend.connection();
        let state: Option<String> = conn
            .hget(self.keys().0, "state")
            .await
            .map_err(unavailable)?;
        state
            .map(|s| serde_json::from_str(&s).map_err(corrupt))
            .transpose()
    }

    async fn init(&self, state: PuzzleState) -> Result<PuzzleState, StoreError> {
        let mut conn = self.backend.connection();
        let json = serde_json::to_string(&state).map_err(corrupt)?;
        let stored: String = INIT
            .key(self.keys().0)
            .arg(state.version.to_string())
            .arg(json)
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        serde_json::from_str(&stored).map_err(corrupt)
    }

    async fn compare_and_swap(
        &self,
        expected_version: u64,
        next: PuzzleState,
    ) -> Result<bool, StoreError> {
        let mut conn = self.backend.connection();
        let json = serde_json::to_string(&next).map_err(corrupt)?;
        let swapped: i64 = CAS
            .key(self.keys().0)
            .arg(expected_version.to_string())
            .arg(next.version.to_string())
            .arg(json)
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(swapped == 1)
    }

    async fn mining_start(
        &self,
        seed: &str,
        miner: ConnectionId,
        now: f64,
    ) -> Result<(), StoreError> {
        let (_, mining, active, _, _) = self.keys();
        let mut conn = self.backend.connection();
        MINING_START
            .key(mining)
            .key(active)
            .arg(seed)
            .arg(miner.to_string())
            .arg(format!("{now:.6}"))
            .invoke_async::<i64>(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn mining_stop(&self, miner: ConnectionId, now: f64) -> Result<(), StoreError> {
        let (_, mining, active, _, _) = self.keys();
        let mut conn = self.backend.connection();
        MINING_STOP
            .key(mining)
            .key(active)
            .arg(miner.to_string())
            .arg(format!("{now:.6}"))
            .invoke_async::<i64>(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn mining_time(&self, seed: &str, now: f64) -> Result<MiningTime, StoreError> {
        let (_, mining, active, _, _) = self.keys();
        let mut conn = self.backend.connection();
        let ((stored_seed, total, start), miners): (
            (Option<String>, Option<f64>, Option<f64>),
            usize,
        ) = redis::pipe()
            .atomic()
            .cmd("HMGET")
            .arg(&mining)
            .arg("seed")
            .arg("total")
            .arg("start")
            .scard(&active)
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        if stored_seed.as_deref() != Some(seed) {
            return Ok(MiningTime::default());
        }
        let open = start.map_or(0.0, |s| (now - s).max(0.0));
        Ok(MiningTime {
            seconds: total.unwrap_or(0.0) + open,
            active_miners: miners,
        })
    }

    async fn reward_open(&self, window: RewardWindow) -> Result<(), StoreError> {
        let (_, _, _, reward, ips) = self.keys();
        let meta = RewardWindow {
            submitted_ips: BTreeSet::new(),
            best: None,
            ..window.clone()
        };
        let mut conn = self.backend.connection();
        redis::pipe()
            .atomic()
            .del(&reward)
            .del(&ips)
            .hset_multiple(
                &reward,
                &[
                    ("seed", window.seed.clone()),
                    ("closes_at", format!("{:.6}", window.closes_at)),
                    ("meta", serde_json::to_string(&meta).map_err(corrupt)?),
                ],
            )
            .query_async::<()>(&mut conn)
            .await
            .map_err(unavailable)
    }

    async fn reward_window(&self) -> Result<Option<RewardWindow>, StoreError> {
        let (_, _, _, reward, ips) = self.keys();
        let mut conn = self.backend.connection();
        let ((meta, best), members): ((Option<String>, Option<String>), Vec<String>) =
            redis::pipe()
                .atomic()
                .cmd("HMGET")
                .arg(&reward)
                .arg("meta")
                .arg("best")
                .smembers(&ips)
                .query_async(&mut conn)
                .await
                .map_err(unavailable)?;
        meta.map(|meta| window_from(&meta, best.as_deref().unwrap_or(""), &members))
            .transpose()
    }

    async fn reward_offer(
        &self,
        seed: &str,
        ip: &str,
        entry: Option<RewardEntry>,
        now: f64,
    ) -> Result<RewardOffer, StoreError> {
        let (_, _, _, reward, ips) = self.keys();
        let mut conn = self.backend.connection();
        let (json, zeros, nonce) = match &entry {
            Some(e) => (
                serde_json::to_string(e).map_err(corrupt)?,
                e.leading_zeros.to_string(),
                e.nonce.to_string(),
            ),
            None => (String::new(), String::new(), String::new()),
        };
        let answer: String = REWARD_OFFER
            .key(reward)
            .key(ips)
            .arg(seed)
            .arg(ip)
            .arg(format!("{now:.6}"))
            .arg(json)
            .arg(zeros)
            .arg(nonce)
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(match answer.as_str() {
            "mismatch" => RewardOffer::SeedMismatch,
            "already" => RewardOffer::AlreadySubmitted,
            "ok" => RewardOffer::Accepted,
            _ => RewardOffer::NoWindow,
        })
    }

    async fn reward_take(&self, seed: &str) -> Result<Option<RewardWindow>, StoreError> {
        let (_, _, _, reward, ips) = self.keys();
        let mut conn = self.backend.connection();
        let taken: Option<Vec<String>> = REWARD_TAKE
            .key(reward)
            .key(ips)
            .arg(seed)
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        match taken {
            Some(parts) if parts.len() >= 2 => {
                window_from(&parts[0], &parts[1], &parts[2..]).map(Some)
            }
            _ => Ok(None),
        }
    }

    async fn reward_cancel(&self) -> Result<(), StoreError> {
        let (_, _, _, reward, ips) = self.keys();
        let mut conn = self.backend.connection();
        conn.del::<_, ()>(&[reward, ips]).await.map_err(unavailable)
    }
}
