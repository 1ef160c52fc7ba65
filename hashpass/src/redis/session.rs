//! Sessions.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::LazyLock;
use std::time::Duration;

use async_trait::async_trait;
use redis::{AsyncCommands, Script};

use super::{RedisBackend, unavailable};
use crate::config::counted_address;
use crate::error::StoreError;
use crate::session::{ConnectionId, Session, SessionStore};

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

/// Revokes one session if it exists and is not revoked; returns its token then.
static REVOKE_ONE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 1 and redis.call('HGET', KEYS[1], 'revoked') ~= '1' then
  redis.call('HSET', KEYS[1], 'revoked', '1')
  return {ARGV[1]}
end
return {}",
    )
});

/// [`SessionStore`] in Redis: one hash per session, plus sets indexing all tokens, the tokens of
/// each IP and those of each client address (an IPv6 /64 is one).
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

    fn address_key(&self, ip: IpAddr) -> String {
        self.backend
            .key(&format!("sessions:address:{}", counted_address(ip)))
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
            .sadd(self.address_key(session.ip), &session.token)
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

    async fn revoke(&self, token: &str) -> Result<Option<Session>, StoreError> {
        let mut conn = self.backend.connection();
        let revoked: Vec<String> = REVOKE_ONE
            .key(self.session_key(token))
            .arg(token)
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(self.fetch(&revoked).await?.pop())
    }

    async fn of_address(&self, address: IpAddr) -> Result<Vec<Session>, StoreError> {
        let mut conn = self.backend.connection();
        let tokens: Vec<String> = conn
            .smembers(self.address_key(address))
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
                .srem(self.address_key(s.ip), &s.token)
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
