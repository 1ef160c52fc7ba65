//! The connection edge (docs/protocol.md#connections): what one client may hold before it has
//! proved anything, bounded per client address and in time, framework-free so that both
//! adapters' serve helpers (`hashpass_axum::serve`, `hashpass_poem::serve`) give a host the same
//! protection:
//! - [`EdgeListener`] accepts TCP connections with at most
//!   [`ConnectionLimits::per_address`] open per client address (an IPv4 address or an IPv6 /64;
//!   trusted proxies are exempt, they enforce their own) and one descriptor kept in reserve, so
//!   that a refused connection is still answered when every other descriptor is in use;
//! - [`EdgeStream`] closes a connection whose request head does not arrive within
//!   [`ConnectionLimits::header_read_timeout`] and a kept-alive one idle for
//!   [`ConnectionLimits::idle_timeout`] (neither applies once it is a WebSocket);
//! - [`read_body`] reads a request body under the size limit and a time limit, draining a
//!   bounded oversized body before the 413, so a reverse proxy that is still writing it never
//!   sees its write fail and takes the instance out of rotation;
//! - [`ConnectionLimits::drain_deadline`] bounds a graceful shutdown whatever clients do.

mod body;
mod listener;
mod stream;

use std::time::Duration;

pub use body::{BodyRefusal, content_length, read_body};
pub use listener::{AddressPermit, EdgeListener};
pub use stream::EdgeStream;

/// How long and how many connections one client may hold (`Config::network.connections`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// `HASHPASS_CONNECTIONS_PER_ADDRESS`: open TCP connections per client address (64; 0 =
    /// unlimited). Connections from a trusted proxy are not counted.
    pub per_address: u32,
    /// `HASHPASS_HEADER_READ_TIMEOUT`: seconds a request head may take, from the connection's
    /// start for its first request and from the first byte for a later one (10).
    pub header_read_timeout: Duration,
    /// `HASHPASS_IDLE_TIMEOUT`: seconds a kept-alive connection may wait for its next request
    /// (60).
    pub idle_timeout: Duration,
    /// `HASHPASS_BODY_READ_TIMEOUT`: seconds a request body may take to arrive (10); slower is
    /// answered 408 and closed.
    pub body_read_timeout: Duration,
    /// `HASHPASS_DRAIN_DEADLINE`: seconds a graceful shutdown waits for open requests before it
    /// closes their connections (10).
    pub drain_deadline: Duration,
}

impl ConnectionLimits {
    /// The longest any of the times may be (an hour, as its variable allows).
    pub const MAX_TIME: Duration = Duration::from_secs(3_600);

    /// Refuses a time of zero or longer than [`ConnectionLimits::MAX_TIME`] (set in code: the
    /// variables are read within bounds), naming its variable.
    pub fn validate(&self) -> Result<(), crate::ConfigError> {
        for (name, time) in [
            ("HASHPASS_HEADER_READ_TIMEOUT", self.header_read_timeout),
            ("HASHPASS_IDLE_TIMEOUT", self.idle_timeout),
            ("HASHPASS_BODY_READ_TIMEOUT", self.body_read_timeout),
            ("HASHPASS_DRAIN_DEADLINE", self.drain_deadline),
        ] {
            if time.is_zero() || time > Self::MAX_TIME {
                return Err(crate::ConfigError::new(
                    name,
                    format!("{time:?} is out of range: more than zero, at most an hour"),
                ));
            }
        }
        Ok(())
    }
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            per_address: 64,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            body_read_timeout: Duration::from_secs(10),
            drain_deadline: Duration::from_secs(10),
        }
    }
}

/// How much of an oversized body is read and thrown away before the 413 (1 MiB, nginx's default
/// `client_max_body_size`): a proxy forwarding up to that much finishes its write and reads the
/// answer. A body announced larger is answered at once and its connection closed.
pub const MAX_DRAINED_BODY: u64 = 1024 * 1024;
