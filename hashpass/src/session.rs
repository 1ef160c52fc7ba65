//! Session tokens (docs/protocol.md#sessions + docs/protocol.md#client-ip): issued at the first socket connection after the
//! captcha, bound to the client IP and, at the first puzzle request, to a device fingerprint.
//!
//! [`SessionStore`] keeps them; every mutation is one atomic call so a shared backend can
//! implement it with single commands or scripts.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::config::counted_address;
use crate::error::StoreError;
use crate::util::{lock, random_bytes};

/// Identifies one accepted WebSocket connection, unique across instances.
pub type ConnectionId = u64;

/// A fresh connection id.
pub fn new_connection_id() -> ConnectionId {
    u64::from_le_bytes(random_bytes::<8>())
}

/// A fresh session token: 32 random bytes, URL-safe base64 without padding (43 characters).
pub fn new_session_token() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<32>())
}

/// The first 8 characters of a secret followed by `...`, for logs and admin views.
pub fn preview(secret: &str) -> String {
    let head: String = secret.chars().take(8).collect();
    format!("{head}...")
}

/// One session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    /// The bearer token.
    pub token: String,
    /// The effective client IP it was issued to.
    pub ip: IpAddr,
    /// Issue time (Unix seconds).
    pub created_at: f64,
    /// The connection currently attached, if any.
    pub connection: Option<ConnectionId>,
    /// When the last connection ended, if it did.
    pub disconnected_at: Option<f64>,
    /// The device fingerprint bound at the first puzzle request.
    pub visitor_id: Option<String>,
    /// Revoked by an admin; no longer usable.
    pub revoked: bool,
}

impl Session {
    /// A new, connected session.
    pub fn new(token: String, ip: IpAddr, now: f64, connection: ConnectionId) -> Self {
        Self {
            token,
            ip,
            created_at: now,
            connection: Some(connection),
            disconnected_at: None,
            visitor_id: None,
            revoked: false,
        }
    }

    /// Whether the session is still usable at `now`: not revoked, and connected or
    /// disconnected for at most `grace`. (The IP is checked separately.)
    pub fn is_live(&self, now: f64, grace: Duration) -> bool {
        !self.revoked
            && match self.disconnected_at {
                None => true,
                Some(at) => now - at <= grace.as_secs_f64(),
            }
    }
}

/// Where sessions live.
#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// Stores a new session.
    async fn insert(&self, session: Session) -> Result<(), StoreError>;
    /// Looks a session up by token.
    async fn get(&self, token: &str) -> Result<Option<Session>, StoreError>;
    /// Binds `visitor_id` unless one is bound already; returns the bound id (`None`: no session).
    async fn bind_visitor(
        &self,
        token: &str,
        visitor_id: &str,
    ) -> Result<Option<String>, StoreError>;
    /// Attaches a connection (reconnect): clears `disconnected_at` and returns the connection it
    /// replaces, if any. `Ok(None)` also when the session does not exist.
    async fn attach(
        &self,
        token: &str,
        connection: ConnectionId,
    ) -> Result<Option<ConnectionId>, StoreError>;
    /// Detaches `connection` if it is still the attached one, marking the session disconnected.
    async fn detach(
        &self,
        token: &str,
        connection: ConnectionId,
        now: f64,
    ) -> Result<(), StoreError>;
    /// Revokes every session of `ip`; returns the sessions revoked now.
    async fn revoke_ip(&self, ip: IpAddr) -> Result<Vec<Session>, StoreError>;
    /// Revokes the session `token`; returns it if it was revoked now.
    async fn revoke(&self, token: &str) -> Result<Option<Session>, StoreError>;
    /// Every stored session of a client address ([`crate::config::counted_address`]: an IPv4
    /// address, or an IPv6 /64), revoked or not.
    async fn of_address(&self, address: IpAddr) -> Result<Vec<Session>, StoreError>;
    /// Revokes every session; returns the sessions revoked now.
    async fn revoke_all(&self) -> Result<Vec<Session>, StoreError>;
    /// Every stored session.
    async fn list(&self) -> Result<Vec<Session>, StoreError>;
    /// Number of stored sessions.
    async fn count(&self) -> Result<usize, StoreError>;
    /// Deletes revoked sessions and those disconnected for longer than `grace`; returns how many.
    async fn cleanup(&self, now: f64, grace: Duration) -> Result<usize, StoreError>;
}

/// Sessions in this process's memory.
#[derive(Debug, Default)]
pub struct MemorySessionStore {
    sessions: Mutex<HashMap<String, Session>>,
}

impl MemorySessionStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<R>(&self, f: impl FnOnce(&mut HashMap<String, Session>) -> R) -> R {
        f(&mut lock(&self.sessions))
    }

    /// Revokes the unrevoked sessions matching `which`; returns them.
    fn revoke_where(&self, which: impl Fn(&Session) -> bool) -> Vec<Session> {
        self.with(|m| {
            m.values_mut()
                .filter(|s| !s.revoked && which(s))
                .map(|s| {
                    s.revoked = true;
                    s.clone()
                })
                .collect()
        })
    }
}

#[async_trait]
impl SessionStore for MemorySessionStore {
    async fn insert(&self, session: Session) -> Result<(), StoreError> {
        self.with(|m| m.insert(session.token.clone(), session));
        Ok(())
    }

    async fn get(&self, token: &str) -> Result<Option<Session>, StoreError> {
        Ok(self.with(|m| m.get(token).cloned()))
    }

    async fn bind_visitor(
        &self,
        token: &str,
        visitor_id: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(self.with(|m| {
            m.get_mut(token).map(|s| {
                s.visitor_id
                    .get_or_insert_with(|| visitor_id.to_string())
                    .clone()
            })
        }))
    }

    async fn attach(
        &self,
        token: &str,
        connection: ConnectionId,
    ) -> Result<Option<ConnectionId>, StoreError> {
        Ok(self.with(|m| {
            m.get_mut(token).and_then(|s| {
                s.disconnected_at = None;
                s.connection.replace(connection)
            })
        }))
    }

    async fn detach(
        &self,
        token: &str,
        connection: ConnectionId,
        now: f64,
    ) -> Result<(), StoreError> {
        self.with(|m| {
            if let Some(s) = m
                .get_mut(token)
                .filter(|s| s.connection == Some(connection))
            {
                s.connection = None;
                s.disconnected_at = Some(now);
            }
        });
        Ok(())
    }

    async fn revoke_ip(&self, ip: IpAddr) -> Result<Vec<Session>, StoreError> {
        Ok(self.revoke_where(|s| s.ip == ip))
    }

    async fn revoke_all(&self) -> Result<Vec<Session>, StoreError> {
        Ok(self.revoke_where(|_| true))
    }

    async fn revoke(&self, token: &str) -> Result<Option<Session>, StoreError> {
        Ok(self.revoke_where(|s| s.token == token).pop())
    }

    async fn of_address(&self, address: IpAddr) -> Result<Vec<Session>, StoreError> {
        Ok(self.with(|m| {
            m.values()
                .filter(|s| counted_address(s.ip) == address)
                .cloned()
                .collect()
        }))
    }

    async fn list(&self) -> Result<Vec<Session>, StoreError> {
        Ok(self.with(|m| m.values().cloned().collect()))
    }

    async fn count(&self) -> Result<usize, StoreError> {
        Ok(self.with(|m| m.len()))
    }

    async fn cleanup(&self, now: f64, grace: Duration) -> Result<usize, StoreError> {
        Ok(self.with(|m| {
            let before = m.len();
            m.retain(|_, s| s.is_live(now, grace));
            before - m.len()
        }))
    }
}

/// What a request's `Authorization` header offers: nothing, something that is not
/// `Bearer <token>`, or the token's bytes. Read once here for both the session ladder and the
/// admin ladder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential<'a> {
    /// No header.
    Missing,
    /// A header, but not in the `Bearer <token>` form.
    Malformed,
    /// The token (any bytes).
    Token(&'a [u8]),
}

impl<'a> From<Option<&'a [u8]>> for Credential<'a> {
    fn from(header: Option<&'a [u8]>) -> Self {
        match header {
            None => Credential::Missing,
            Some(header) => header
                .strip_prefix(b"Bearer ")
                .map_or(Credential::Malformed, Credential::Token),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, FakeClock};

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn tokens_look_like_the_originals() {
        let t = new_session_token();
        assert_eq!(t.len(), 43);
        assert!(
            t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(preview("abcdefghijk"), "abcdefgh...");
        assert_eq!(preview("ab"), "ab...");
    }

    #[tokio::test]
    async fn grace_period_after_disconnect() {
        let clock = FakeClock::default();
        let store = MemorySessionStore::new();
        let grace = Duration::from_secs(300);
        store
            .insert(Session::new("t".into(), ip("1.1.1.1"), clock.now(), 1))
            .await
            .unwrap();
        clock.advance_secs(10_000.0);
        // Connected: no absolute lifetime.
        assert!(
            store
                .get("t")
                .await
                .unwrap()
                .unwrap()
                .is_live(clock.now(), grace)
        );
        store.detach("t", 1, clock.now()).await.unwrap();
        clock.advance_secs(300.0);
        assert!(
            store
                .get("t")
                .await
                .unwrap()
                .unwrap()
                .is_live(clock.now(), grace)
        );
        assert_eq!(store.cleanup(clock.now(), grace).await.unwrap(), 0);
        clock.advance_secs(0.5);
        assert!(
            !store
                .get("t")
                .await
                .unwrap()
                .unwrap()
                .is_live(clock.now(), grace)
        );
        assert_eq!(store.cleanup(clock.now(), grace).await.unwrap(), 1);
        assert!(store.get("t").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn reconnect_within_grace_keeps_the_session() {
        let clock = FakeClock::default();
        let store = MemorySessionStore::new();
        let grace = Duration::from_secs(300);
        store
            .insert(Session::new("t".into(), ip("1.1.1.1"), clock.now(), 1))
            .await
            .unwrap();
        store.detach("t", 1, clock.now()).await.unwrap();
        clock.advance_secs(299.0);
        assert_eq!(store.attach("t", 2).await.unwrap(), None);
        clock.advance_secs(3600.0);
        assert!(
            store
                .get("t")
                .await
                .unwrap()
                .unwrap()
                .is_live(clock.now(), grace)
        );
        // A stale detach of the old connection does not disconnect the new one.
        store.detach("t", 1, clock.now()).await.unwrap();
        assert_eq!(store.get("t").await.unwrap().unwrap().connection, Some(2));
        // Attaching a third replaces the second.
        assert_eq!(store.attach("t", 3).await.unwrap(), Some(2));
    }

    #[tokio::test]
    async fn visitor_binding_is_first_come() {
        let store = MemorySessionStore::new();
        store
            .insert(Session::new("t".into(), ip("1.1.1.1"), 0.0, 1))
            .await
            .unwrap();
        assert_eq!(
            store.bind_visitor("t", "a").await.unwrap().as_deref(),
            Some("a")
        );
        assert_eq!(
            store.bind_visitor("t", "b").await.unwrap().as_deref(),
            Some("a")
        );
        assert_eq!(store.bind_visitor("nope", "b").await.unwrap(), None);
    }

    #[tokio::test]
    async fn revocation_by_ip_and_all() {
        let store = MemorySessionStore::new();
        for (t, a) in [("a", "1.1.1.1"), ("b", "1.1.1.1"), ("c", "2.2.2.2")] {
            store
                .insert(Session::new(t.into(), ip(a), 0.0, 1))
                .await
                .unwrap();
        }
        assert_eq!(store.revoke_ip(ip("1.1.1.1")).await.unwrap().len(), 2);
        assert_eq!(store.revoke_ip(ip("1.1.1.1")).await.unwrap().len(), 0);
        assert!(
            !store
                .get("a")
                .await
                .unwrap()
                .unwrap()
                .is_live(0.0, Duration::from_secs(300))
        );
        assert_eq!(store.revoke_all().await.unwrap().len(), 1);
        assert_eq!(store.count().await.unwrap(), 3);
        assert_eq!(
            store.cleanup(0.0, Duration::from_secs(300)).await.unwrap(),
            3
        );
    }
}
