//! The Redis stores. Each multi-step change is one Lua script (atomic on the server, hashed once
//! per process and sent by its SHA after the first load); numbers cross as decimal strings, so
//! nothing is rounded on the way.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::LazyLock;
use std::time::Duration;

use async_trait::async_trait;
use redis::{AsyncCommands, Script};

use super::{RedisBackend, unavailable};
use crate::admin::AdminLockout;
use crate::bans::{BanError, BanList};
use crate::config::canonical_ip;
use crate::error::StoreError;
use crate::hashrate::{HashrateStore, MinerReport};
use crate::puzzle_store::{
    CHART_HISTORY, ChartPoint, MiningTime, PuzzleState, PuzzleStore, RewardEntry, RewardOffer,
    RewardWindow,
};
use crate::session::{ConnectionId, Session, SessionStore};

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

// ---------------------------------------------------------------------------------------------
// Puzzle state, mining time, reward window

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

// ---------------------------------------------------------------------------------------------
// Sessions

static BIND_VISITOR: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
redis.call('HSETNX', KEYS[1], 'visitor_id', ARGV[1])
return redis.call('HGET', KEYS[1], 'visitor_id')",
    )
});

static ATTACH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local previous = redis.call('HGET', KEYS[1], 'connection')
redis.call('HSET', KEYS[1], 'connection', ARGV[1])
redis.call('HDEL', KEYS[1], 'disconnected_at')
return previous",
    )
});

static DETACH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('HGET', KEYS[1], 'connection') == ARGV[1] then
  redis.call('HDEL', KEYS[1], 'connection')
  redis.call('HSET', KEYS[1], 'disconnected_at', ARGV[2])
end
return 1",
    )
});

static REVOKE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local out = {}
for _, token in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local key = ARGV[1] .. token
  if redis.call('EXISTS', key) == 1 and redis.call('HGET', key, 'revoked') ~= '1' then
    redis.call('HSET', key, 'revoked', '1')
    table.insert(out, token)
  end
end
return out",
    )
});

/// [`SessionStore`] in Redis: one hash per session, plus sets indexing all tokens and the
/// tokens of each IP.
#[derive(Debug, Clone)]
pub struct RedisSessionStore {
    backend: RedisBackend,
}

impl RedisSessionStore {
    /// The store on `backend`.
    pub fn new(backend: RedisBackend) -> Self {
        Self { backend }
    }

    fn session_key(&self, token: &str) -> String {
        self.backend.key(&format!("session:{token}"))
    }

    fn ip_key(&self, ip: IpAddr) -> String {
        self.backend.key(&format!("sessions:ip:{ip}"))
    }

    async fn fetch(&self, tokens: &[String]) -> Result<Vec<Session>, StoreError> {
        if tokens.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for token in tokens {
            pipe.hgetall(self.session_key(token));
        }
        let mut conn = self.backend.connection();
        let maps: Vec<HashMap<String, String>> =
            pipe.query_async(&mut conn).await.map_err(unavailable)?;
        Ok(tokens
            .iter()
            .zip(maps)
            .filter_map(|(token, map)| session_from(token, &map))
            .collect())
    }
}

fn session_from(token: &str, map: &HashMap<String, String>) -> Option<Session> {
    let number = |name: &str| map.get(name).and_then(|v| v.parse::<f64>().ok());
    Some(Session {
        token: token.to_string(),
        ip: map.get("ip")?.parse().ok()?,
        created_at: number("created_at")?,
        connection: map.get("connection").and_then(|v| v.parse().ok()),
        disconnected_at: number("disconnected_at"),
        visitor_id: map.get("visitor_id").cloned(),
        revoked: map.get("revoked").is_some_and(|v| v == "1"),
    })
}

#[async_trait]
impl SessionStore for RedisSessionStore {
    async fn insert(&self, session: Session) -> Result<(), StoreError> {
        let mut fields = vec![
            ("ip", session.ip.to_string()),
            ("created_at", format!("{:.6}", session.created_at)),
            (
                "revoked",
                if session.revoked { "1" } else { "0" }.to_string(),
            ),
        ];
        if let Some(c) = session.connection {
            fields.push(("connection", c.to_string()));
        }
        if let Some(at) = session.disconnected_at {
            fields.push(("disconnected_at", format!("{at:.6}")));
        }
        if let Some(v) = &session.visitor_id {
            fields.push(("visitor_id", v.clone()));
        }
        let mut conn = self.backend.connection();
        redis::pipe()
            .atomic()
            .hset_multiple(self.session_key(&session.token), &fields)
            .sadd(self.backend.key("sessions"), &session.token)
            .sadd(self.ip_key(session.ip), &session.token)
            .query_async::<()>(&mut conn)
            .await
            .map_err(unavailable)
    }

    async fn get(&self, token: &str) -> Result<Option<Session>, StoreError> {
        let mut conn = self.backend.connection();
        let map: HashMap<String, String> = conn
            .hgetall(self.session_key(token))
            .await
            .map_err(unavailable)?;
        Ok(session_from(token, &map))
    }

    async fn bind_visitor(
        &self,
        token: &str,
        visitor_id: &str,
    ) -> Result<Option<String>, StoreError> {
        let mut conn = self.backend.connection();
        BIND_VISITOR
            .key(self.session_key(token))
            .arg(visitor_id)
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)
    }

    async fn attach(
        &self,
        token: &str,
        connection: ConnectionId,
    ) -> Result<Option<ConnectionId>, StoreError> {
        let mut conn = self.backend.connection();
        let previous: Option<String> = ATTACH
            .key(self.session_key(token))
            .arg(connection.to_string())
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(previous.and_then(|p| p.parse().ok()))
    }

    async fn detach(
        &self,
        token: &str,
        connection: ConnectionId,
        now: f64,
    ) -> Result<(), StoreError> {
        let mut conn = self.backend.connection();
        DETACH
            .key(self.session_key(token))
            .arg(connection.to_string())
            .arg(format!("{now:.6}"))
            .invoke_async::<i64>(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn revoke_ip(&self, ip: IpAddr) -> Result<Vec<Session>, StoreError> {
        let mut conn = self.backend.connection();
        let tokens: Vec<String> = REVOKE
            .key(self.ip_key(ip))
            .arg(self.backend.key("session:"))
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        self.fetch(&tokens).await
    }

    async fn revoke_all(&self) -> Result<Vec<Session>, StoreError> {
        let mut conn = self.backend.connection();
        let tokens: Vec<String> = REVOKE
            .key(self.backend.key("sessions"))
            .arg(self.backend.key("session:"))
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        self.fetch(&tokens).await
    }

    async fn list(&self) -> Result<Vec<Session>, StoreError> {
        let mut conn = self.backend.connection();
        let tokens: Vec<String> = conn
            .smembers(self.backend.key("sessions"))
            .await
            .map_err(unavailable)?;
        self.fetch(&tokens).await
    }

    async fn count(&self) -> Result<usize, StoreError> {
        let mut conn = self.backend.connection();
        conn.scard(self.backend.key("sessions"))
            .await
            .map_err(unavailable)
    }

    async fn cleanup(&self, now: f64, grace: Duration) -> Result<usize, StoreError> {
        let mut conn = self.backend.connection();
        let tokens: Vec<String> = conn
            .smembers(self.backend.key("sessions"))
            .await
            .map_err(unavailable)?;
        let sessions = self.fetch(&tokens).await?;
        let live: std::collections::HashSet<&str> = sessions
            .iter()
            .filter(|s| s.is_live(now, grace))
            .map(|s| s.token.as_str())
            .collect();
        let dead: Vec<&Session> = sessions
            .iter()
            .filter(|s| !live.contains(s.token.as_str()))
            .collect();
        let vanished: Vec<&String> = tokens
            .iter()
            .filter(|t| !sessions.iter().any(|s| &s.token == *t))
            .collect();
        if dead.is_empty() && vanished.is_empty() {
            return Ok(0);
        }
        let mut pipe = redis::pipe();
        for s in &dead {
            pipe.del(self.session_key(&s.token))
                .srem(self.ip_key(s.ip), &s.token)
                .srem(self.backend.key("sessions"), &s.token);
        }
        for token in &vanished {
            pipe.srem(self.backend.key("sessions"), *token);
        }
        pipe.query_async::<()>(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(dead.len())
    }
}

// ---------------------------------------------------------------------------------------------
// Bans, admin lockout, hashrate, job lease

fn ban_error(backend: &RedisBackend, e: redis::RedisError) -> BanError {
    BanError {
        path: backend.key("bans").into(),
        source: std::io::Error::other(e.to_string()),
    }
}

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
    async fn is_banned(&self, ip: IpAddr) -> Result<bool, BanError> {
        let mut conn = self.backend.connection();
        conn.sismember(self.backend.key("bans"), canonical_ip(ip).to_string())
            .await
            .map_err(|e| ban_error(&self.backend, e))
    }

    async fn ban(&self, ip: IpAddr) -> Result<bool, BanError> {
        let mut conn = self.backend.connection();
        let added: i64 = conn
            .sadd(self.backend.key("bans"), canonical_ip(ip).to_string())
            .await
            .map_err(|e| ban_error(&self.backend, e))?;
        Ok(added == 1)
    }

    async fn unban(&self, ip: IpAddr) -> Result<bool, BanError> {
        let mut conn = self.backend.connection();
        let removed: i64 = conn
            .srem(self.backend.key("bans"), canonical_ip(ip).to_string())
            .await
            .map_err(|e| ban_error(&self.backend, e))?;
        Ok(removed == 1)
    }

    async fn list(&self) -> Result<Vec<String>, BanError> {
        let mut conn = self.backend.connection();
        let mut list: Vec<String> = conn
            .smembers(self.backend.key("bans"))
            .await
            .map_err(|e| ban_error(&self.backend, e))?;
        list.sort();
        Ok(list)
    }

    async fn count(&self) -> Result<usize, BanError> {
        let mut conn = self.backend.connection();
        conn.scard(self.backend.key("bans"))
            .await
            .map_err(|e| ban_error(&self.backend, e))
    }
}

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

/// How long a report may sit before a reader drops it (an instance died without cleaning up).
const REPORT_EXPIRY: f64 = 300.0;

/// [`HashrateStore`] in Redis: one hash of reports by connection, one capped list for the chart.
#[derive(Debug, Clone)]
pub struct RedisHashrateStore {
    backend: RedisBackend,
}

impl RedisHashrateStore {
    /// The store on `backend`.
    pub fn new(backend: RedisBackend) -> Self {
        Self { backend }
    }
}

#[async_trait]
impl HashrateStore for RedisHashrateStore {
    async fn report(
        &self,
        connection: ConnectionId,
        ip: IpAddr,
        rate: f64,
        overspeed: bool,
        now: f64,
    ) -> Result<(), StoreError> {
        let key = self.backend.key("hashrate");
        let mut conn = self.backend.connection();
        let previous: Option<String> = conn
            .hget(&key, connection.to_string())
            .await
            .map_err(unavailable)?;
        let first_seen = previous
            .and_then(|p| serde_json::from_str::<MinerReport>(&p).ok())
            .map_or(now, |r| r.first_seen);
        let report = MinerReport {
            connection,
            ip,
            rate,
            last_seen: now,
            first_seen,
            overspeed,
        };
        let json = serde_json::to_string(&report).map_err(corrupt)?;
        conn.hset(&key, connection.to_string(), json)
            .await
            .map_err(unavailable)
    }

    async fn remove(&self, connection: ConnectionId) -> Result<(), StoreError> {
        let mut conn = self.backend.connection();
        conn.hdel(self.backend.key("hashrate"), connection.to_string())
            .await
            .map_err(unavailable)
    }

    async fn fresh(&self, now: f64, stale: Duration) -> Result<Vec<MinerReport>, StoreError> {
        let key = self.backend.key("hashrate");
        let mut conn = self.backend.connection();
        let all: HashMap<String, String> = conn.hgetall(&key).await.map_err(unavailable)?;
        let reports: Vec<MinerReport> = all
            .values()
            .filter_map(|v| serde_json::from_str(v).ok())
            .collect();
        let expired: Vec<String> = reports
            .iter()
            .filter(|r| now - r.last_seen > REPORT_EXPIRY)
            .map(|r| r.connection.to_string())
            .collect();
        if !expired.is_empty() {
            conn.hdel::<_, _, ()>(&key, expired)
                .await
                .map_err(unavailable)?;
        }
        let stale = stale.as_secs_f64();
        Ok(reports
            .into_iter()
            .filter(|r| now - r.last_seen <= stale)
            .collect())
    }

    async fn clear(&self) -> Result<(), StoreError> {
        let mut conn = self.backend.connection();
        conn.del(self.backend.key("hashrate"))
            .await
            .map_err(unavailable)
    }

    async fn push_chart(&self, point: ChartPoint) -> Result<(), StoreError> {
        let key = self.backend.key("hashrate:chart");
        let mut conn = self.backend.connection();
        redis::pipe()
            .atomic()
            .rpush(&key, serde_json::to_string(&point).map_err(corrupt)?)
            .ltrim(&key, -(CHART_HISTORY as isize), -1)
            .query_async::<()>(&mut conn)
            .await
            .map_err(unavailable)
    }

    async fn chart(&self) -> Result<Vec<ChartPoint>, StoreError> {
        let mut conn = self.backend.connection();
        let points: Vec<String> = conn
            .lrange(self.backend.key("hashrate:chart"), 0, -1)
            .await
            .map_err(unavailable)?;
        Ok(points
            .iter()
            .filter_map(|p| serde_json::from_str(p).ok())
            .collect())
    }
}

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

#[async_trait]
impl crate::service::JobLease for RedisLease {
    async fn hold(&self) -> Result<bool, StoreError> {
        RedisLease::hold(self).await
    }
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

    /// Takes or renews the lease; true while this instance holds it.
    pub async fn hold(&self) -> Result<bool, StoreError> {
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

// ---------------------------------------------------------------------------------------------
// Redemptions

// A code's hash `invite:<id>` holds max_uses, revoked_at and updated_at; its list
// `invite:<id>:uses` the uses as JSON, oldest first; the sorted set `invites` indexes codes by
// their last change.

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
