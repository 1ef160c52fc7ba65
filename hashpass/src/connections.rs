//! This instance's open sockets: how many per IP (the one-connection-per-IP rule, docs/protocol.md#client-ip, checked
//! atomically by reserving a slot before the handshake completes) and in total.

use crate::util::lock;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Counts of open player and admin sockets.
#[derive(Debug, Default)]
pub struct ConnectionRegistry {
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    players: AtomicUsize,
    admins: AtomicUsize,
}

impl ConnectionRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reserves a player slot for `ip` unless it already holds `limit` (0 = unlimited).
    pub fn reserve(self: &Arc<Self>, ip: IpAddr, limit: u32) -> Option<PlayerSlot> {
        let mut per_ip = lock(&self.per_ip);
        let count = per_ip.entry(ip).or_insert(0);
        if limit != 0 && *count >= limit as usize {
            return None;
        }
        *count += 1;
        self.players.fetch_add(1, Ordering::Relaxed);
        Some(PlayerSlot {
            registry: Arc::clone(self),
            ip,
        })
    }

    /// Reserves a player slot regardless of the limit (a reconnect replacing its own socket).
    pub fn reserve_unlimited(self: &Arc<Self>, ip: IpAddr) -> PlayerSlot {
        self.reserve(ip, 0)
            .expect("an unlimited reservation always succeeds")
    }

    /// Counts an admin socket for as long as the returned guard lives.
    pub fn admin(self: &Arc<Self>) -> AdminSlot {
        self.admins.fetch_add(1, Ordering::Relaxed);
        AdminSlot(Arc::clone(self))
    }

    /// Open player sockets (and reserved handshakes).
    pub fn players(&self) -> usize {
        self.players.load(Ordering::Relaxed)
    }

    /// Open player sockets of one IP.
    pub fn players_of(&self, ip: IpAddr) -> usize {
        let per_ip = lock(&self.per_ip);
        per_ip.get(&ip).copied().unwrap_or(0)
    }

    /// Open admin sockets.
    pub fn admins(&self) -> usize {
        self.admins.load(Ordering::Relaxed)
    }
}

/// A reserved player slot; released on drop.
#[derive(Debug)]
pub struct PlayerSlot {
    registry: Arc<ConnectionRegistry>,
    ip: IpAddr,
}

impl PlayerSlot {
    /// The IP holding the slot.
    pub fn ip(&self) -> IpAddr {
        self.ip
    }
}

impl Drop for PlayerSlot {
    fn drop(&mut self) {
        let mut per_ip = lock(&self.registry.per_ip);
        if let Some(count) = per_ip.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                per_ip.remove(&self.ip);
            }
        }
        self.registry.players.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A counted admin socket; released on drop.
#[derive(Debug)]
pub struct AdminSlot(Arc<ConnectionRegistry>);

impl Drop for AdminSlot {
    fn drop(&mut self) {
        self.0.admins.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_limited_and_released() {
        let reg = Arc::new(ConnectionRegistry::new());
        let ip: IpAddr = "1.2.3.4".parse().unwrap();
        let a = reg.reserve(ip, 1).unwrap();
        assert!(reg.reserve(ip, 1).is_none());
        let b = reg.reserve_unlimited(ip);
        assert_eq!((reg.players(), reg.players_of(ip)), (2, 2));
        drop(a);
        drop(b);
        assert_eq!((reg.players(), reg.players_of(ip)), (0, 0));
        assert!(reg.reserve(ip, 1).is_some());
        let _admin = reg.admin();
        assert_eq!(reg.admins(), 1);
    }
}
