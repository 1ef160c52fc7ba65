//! Fan-out of what sockets must hear: puzzle resets, network hashrate, targeted messages and
//! admin closes.
//!
//! Messages are serialised once by the publisher and shared (`Arc<str>`) by every socket, so a
//! reset to ten thousand sockets costs ten thousand pointer copies, not ten thousand encodings.
//! Every socket subscribes on its own; the subscription's ring buffer is its bounded queue, and
//! a socket that falls a whole ring behind is closed as too slow instead of holding others up.

use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::error::StoreError;
use crate::session::ConnectionId;

/// How many events a subscriber may lag behind before it is closed as too slow.
pub const EVENT_BUFFER: usize = 256;

/// Something that player sockets must act on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Event {
    /// Send `message` to every player socket (PUZZLE_RESET, NETWORK_HASHRATE).
    Broadcast {
        /// The serialised message.
        message: Arc<str>,
        /// For a PUZZLE_RESET, the version of the puzzle state it announces (`None`: another
        /// message). An instance that sees the shared state ahead of the last reset it heard
        /// of announces the state itself (docs/protocol.md#reset-recovery).
        #[serde(default)]
        puzzle_version: Option<u64>,
        /// When it was published (Unix seconds).
        published_at: f64,
    },
    /// Send `message` to the socket of one session (TIMEOUT_INVITE_CODE).
    ToSession {
        /// The session token.
        token: String,
        /// The serialised message.
        message: Arc<str>,
    },
    /// Close every player socket of `ip`.
    CloseIp {
        /// The IP.
        ip: IpAddr,
        /// WebSocket close code.
        code: u16,
        /// Close reason.
        reason: String,
    },
    /// Close every player socket.
    CloseAll {
        /// WebSocket close code.
        code: u16,
        /// Close reason.
        reason: String,
    },
    /// An admin rotated the invite key: every instance adopts the one in the shared puzzle
    /// state (the key itself never travels in an event).
    InviteKeyRotated,
    /// Close one connection (replaced by a reconnect of the same session).
    CloseConnection {
        /// The connection.
        connection: ConnectionId,
        /// WebSocket close code.
        code: u16,
        /// Close reason.
        reason: String,
    },
}

/// Publishes events to every instance's sockets.
#[async_trait]
pub trait EventBus: Send + Sync + 'static {
    /// Publishes an event to every subscriber (on every instance sharing the bus).
    async fn publish(&self, event: Event) -> Result<(), StoreError>;
    /// Hands an event to this instance's subscribers only (a puzzle this instance found it
    /// missed the reset of).
    fn publish_here(&self, event: Event);
    /// A new subscription, receiving events published from now on.
    fn subscribe(&self) -> broadcast::Receiver<Event>;
}

/// An in-process bus over a tokio broadcast channel.
#[derive(Debug, Clone)]
pub struct MemoryEventBus {
    sender: broadcast::Sender<Event>,
}

impl MemoryEventBus {
    /// A bus whose subscribers may lag [`EVENT_BUFFER`] events.
    pub fn new() -> Self {
        Self::with_capacity(EVENT_BUFFER)
    }

    /// A bus whose subscribers may lag `capacity` events.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            sender: broadcast::channel(capacity.max(1)).0,
        }
    }
}

impl Default for MemoryEventBus {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl EventBus for MemoryEventBus {
    async fn publish(&self, event: Event) -> Result<(), StoreError> {
        // No subscriber is not an error: nobody is connected.
        let _ = self.sender.send(event);
        Ok(())
    }

    fn publish_here(&self, event: Event) {
        let _ = self.sender.send(event);
    }

    fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.sender.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_subscriber_gets_every_event_and_laggards_are_told() {
        let bus = MemoryEventBus::with_capacity(2);
        let mut a = bus.subscribe();
        let mut b = bus.subscribe();
        let msg: Arc<str> = Arc::from("x");
        for _ in 0..3 {
            bus.publish(Event::Broadcast {
                message: msg.clone(),
                puzzle_version: Some(1),
                published_at: 0.0,
            })
            .await
            .unwrap();
        }
        assert!(matches!(
            a.recv().await,
            Err(broadcast::error::RecvError::Lagged(1))
        ));
        assert!(a.recv().await.is_ok());
        assert!(matches!(
            b.recv().await,
            Err(broadcast::error::RecvError::Lagged(1))
        ));
    }
}
