//! Which instances of a deployment are alive (docs/protocol.md#instance-liveness): each holds a
//! liveness lease it renews every [`HEARTBEAT_PERIOD`] and registers its player sockets under
//! it; when an instance stops renewing (killed, frozen, cut off), the lease lapses after
//! [`LIVENESS_LEASE`] and whoever runs the periodic jobs treats its sockets as closed at the
//! lapse, so their sessions' grace starts then and their mining stops counting.
//!
//! A single instance needs none of this (its sockets and its memory die together):
//! [`SoleInstance`](crate::service::SoleInstance) registers nothing.

use std::time::Duration;

use async_trait::async_trait;

use crate::error::StoreError;
use crate::session::ConnectionId;

/// How often each instance renews its liveness lease.
pub const HEARTBEAT_PERIOD: Duration = Duration::from_secs(5);

/// How long a liveness lease lasts without renewal.
pub const LIVENESS_LEASE: Duration = Duration::from_secs(15);

/// An instance whose lease lapsed, and the sockets it had open.
#[derive(Debug, Clone, PartialEq)]
pub struct LapsedInstance {
    /// Its id.
    pub id: String,
    /// When its lease lapsed (its last renewal plus the lease), Unix seconds on the clock of the
    /// caller of [`InstanceRegistry::take_lapsed`].
    pub lapsed_at: f64,
    /// Its open player sockets: connection and session token.
    pub sockets: Vec<(ConnectionId, String)>,
}

/// The instances of a deployment and their sockets.
#[async_trait]
pub trait InstanceRegistry: Send + Sync + 'static {
    /// Renews this instance's liveness lease, timed by the registry's own clock (the Redis
    /// server's: the instances' clocks may disagree); true when the registry did not know the
    /// instance (its first renewal, or its lease lapsed and its sockets were taken as closed).
    async fn heartbeat(&self) -> Result<bool, StoreError>;
    /// A player socket of this instance joined session `token`.
    async fn socket_opened(&self, connection: ConnectionId, token: &str) -> Result<(), StoreError>;
    /// A player socket of this instance closed.
    async fn socket_closed(&self, connection: ConnectionId) -> Result<(), StoreError>;
    /// Takes the other instances whose lease lapsed, by the registry's clock, out of the
    /// registry (each is taken once, by one caller), with their sockets. The caller is alive, so
    /// never among them. `now` is the caller's clock, on which each [`LapsedInstance::lapsed_at`]
    /// is given (the registry tells how long ago the lease lapsed).
    async fn take_lapsed(&self, now: f64) -> Result<Vec<LapsedInstance>, StoreError>;
    /// This instance leaves the deployment (a graceful shutdown, after its sockets closed).
    async fn leave(&self) -> Result<(), StoreError>;
}

#[async_trait]
impl InstanceRegistry for crate::service::SoleInstance {
    async fn heartbeat(&self) -> Result<bool, StoreError> {
        Ok(false)
    }

    async fn socket_opened(
        &self,
        _connection: ConnectionId,
        _token: &str,
    ) -> Result<(), StoreError> {
        Ok(())
    }

    async fn socket_closed(&self, _connection: ConnectionId) -> Result<(), StoreError> {
        Ok(())
    }

    async fn take_lapsed(&self, _now: f64) -> Result<Vec<LapsedInstance>, StoreError> {
        Ok(Vec::new())
    }

    async fn leave(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
