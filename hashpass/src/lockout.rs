//! The admin lockout (docs/protocol.md#admin-api): wrong admin tokens are counted per client
//! address (an IPv6 /64 is one), and the `max_failures`-th in a row locks the address out.
//!
//! An attempt is counted *before* its token is compared, in one atomic step
//! ([`AdminLockout::attempt`]; one script in Redis), so however many wrong tokens arrive at once,
//! at most `max_failures` of them are ever compared. A right token clears the count.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;

use crate::error::StoreError;
use crate::util::lock;

/// What the table says of an attempt it has just counted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Attempt {
    /// The token may be compared; `last` when it is the last allowed in a row, so a wrong one
    /// leaves the address locked out (the lock is already in place while it is compared).
    Compare {
        /// This attempt used up the allowance.
        last: bool,
    },
    /// Locked out for this many more seconds: nothing is compared.
    LockedOut(f64),
}

/// Admin attempts per client address.
#[async_trait]
pub trait AdminLockout: Send + Sync + 'static {
    /// Seconds left of `address`'s lockout at `now`, if locked.
    async fn locked_for(&self, address: IpAddr, now: f64) -> Result<Option<f64>, StoreError>;
    /// Counts an attempt of `address` before its token is compared, atomically: the
    /// `max_failures`-th in a row locks the address for `lockout` (lifted by [`clear`] if its
    /// token was right); later ones are refused uncompared. Counts older than `lockout` decay.
    ///
    /// [`clear`]: AdminLockout::clear
    async fn attempt(
        &self,
        address: IpAddr,
        now: f64,
        max_failures: u32,
        lockout: Duration,
    ) -> Result<Attempt, StoreError>;
    /// A right token: `address`'s count and lock go.
    async fn clear(&self, address: IpAddr) -> Result<(), StoreError>;
}

/// Most addresses the memory table tracks while any is evictable: the stalest unlocked entries
/// go first beyond it, and a locked one never does.
const TABLE_LIMIT: usize = 10_000;

/// Most addresses held at all: locked entries past [`TABLE_LIMIT`] (an attacker with that many
/// addresses) are kept up to here; beyond it new addresses are refused, failing closed.
const HARD_LIMIT: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Attempts {
    count: u32,
    last: f64,
    locked_until: Option<f64>,
}

impl Attempts {
    fn locked_at(&self, now: f64) -> bool {
        self.locked_until.is_some_and(|until| until > now)
    }
}

/// Lockout counters in this process's memory, bounded.
#[derive(Debug, Default)]
pub struct MemoryAdminLockout {
    table: Mutex<HashMap<IpAddr, Attempts>>,
}

impl MemoryAdminLockout {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }
}

/// Makes room for a new address: drops decayed entries, then the stalest unlocked one; false if
/// every entry is locked and the hard limit is reached.
fn make_room(table: &mut HashMap<IpAddr, Attempts>, now: f64, period: f64) -> bool {
    if table.len() < TABLE_LIMIT {
        return true;
    }
    table.retain(|_, a| now - a.last < period || a.locked_at(now));
    if table.len() < TABLE_LIMIT {
        return true;
    }
    let stalest_unlocked = table
        .iter()
        .filter(|(_, a)| !a.locked_at(now))
        .min_by(|a, b| a.1.last.total_cmp(&b.1.last))
        .map(|(address, _)| *address);
    match stalest_unlocked {
        Some(address) => {
            table.remove(&address);
            true
        }
        None => table.len() < HARD_LIMIT,
    }
}

#[async_trait]
impl AdminLockout for MemoryAdminLockout {
    async fn locked_for(&self, address: IpAddr, now: f64) -> Result<Option<f64>, StoreError> {
        let table = lock(&self.table);
        Ok(table
            .get(&address)
            .and_then(|a| a.locked_until)
            .filter(|until| *until > now)
            .map(|until| until - now))
    }

    async fn attempt(
        &self,
        address: IpAddr,
        now: f64,
        max_failures: u32,
        lockout: Duration,
    ) -> Result<Attempt, StoreError> {
        let period = lockout.as_secs_f64();
        let mut table = lock(&self.table);
        if !table.contains_key(&address) && !make_room(&mut table, now, period) {
            return Ok(Attempt::LockedOut(period));
        }
        let entry = table.entry(address).or_insert(Attempts {
            count: 0,
            last: now,
            locked_until: None,
        });
        if let Some(until) = entry.locked_until.filter(|until| *until > now) {
            return Ok(Attempt::LockedOut(until - now));
        }
        if now - entry.last >= period || entry.locked_until.is_some() {
            *entry = Attempts {
                count: 0,
                last: now,
                locked_until: None,
            };
        }
        entry.count += 1;
        entry.last = now;
        let last = entry.count >= max_failures;
        if last {
            entry.locked_until = Some(now + period);
        }
        Ok(Attempt::Compare { last })
    }

    async fn clear(&self, address: IpAddr) -> Result<(), StoreError> {
        lock(&self.table).remove(&address);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PERIOD: Duration = Duration::from_secs(300);

    #[tokio::test]
    async fn the_table_stays_bounded_and_keeps_every_lock() {
        let l = MemoryAdminLockout::new();
        let locked: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..10 {
            l.attempt(locked, 0.0, 10, PERIOD).await.unwrap();
        }
        assert!(l.locked_for(locked, 1.0).await.unwrap().is_some());
        for i in 0..(TABLE_LIMIT as u32 + 50) {
            let address = IpAddr::from((i + 1).to_be_bytes());
            l.attempt(address, 1.0, 10, PERIOD).await.unwrap();
        }
        assert!(l.table.lock().unwrap().len() <= TABLE_LIMIT);
        assert!(
            l.locked_for(locked, 2.0).await.unwrap().is_some(),
            "table pressure never evicts a locked address"
        );
    }

    #[tokio::test]
    async fn when_every_entry_is_locked_new_addresses_fail_closed_at_the_hard_limit() {
        let l = MemoryAdminLockout::new();
        {
            let mut table = l.table.lock().unwrap();
            for i in 0..HARD_LIMIT as u32 {
                table.insert(
                    IpAddr::from(i.to_be_bytes()),
                    Attempts {
                        count: 10,
                        last: 0.0,
                        locked_until: Some(300.0),
                    },
                );
            }
        }
        let newcomer: IpAddr = "2001:db8::1".parse().unwrap();
        assert!(matches!(
            l.attempt(newcomer, 1.0, 10, PERIOD).await.unwrap(),
            Attempt::LockedOut(_)
        ));
    }
}
