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

/// Most addresses whose failures the memory table counts at once: beyond it the decayed counts
/// go first, then the stalest. Locked addresses are held apart and never evicted.
const COUNTING_LIMIT: usize = 10_000;

/// An address's failures in a row, not (or no longer) locked.
#[derive(Debug, Clone, Copy)]
struct Counting {
    count: u32,
    last: f64,
}

/// The memory table: counts, bounded, and locks, kept until they lapse.
#[derive(Debug)]
struct Table {
    /// Most entries of `counting`.
    counting_limit: usize,
    counting: HashMap<IpAddr, Counting>,
    /// Locked addresses and when each lock ends. Never evicted: each took `max_failures`
    /// wrong tokens in a row, and lapsed ones are swept, so it holds at most the failures of
    /// the last lockout period divided by `max_failures` (twice that between sweeps).
    locked: HashMap<IpAddr, f64>,
    /// The size of `locked` at which lapsed locks are swept next.
    sweep_locked_at: usize,
}

impl Table {
    fn new(counting_limit: usize) -> Self {
        Self {
            counting_limit,
            counting: HashMap::new(),
            locked: HashMap::new(),
            sweep_locked_at: counting_limit,
        }
    }

    /// Makes room for one more counting address: the decayed counts go, then the stalest. It
    /// never fails, never touches a lock, and never refuses an address.
    fn make_room(&mut self, now: f64, period: f64) {
        if self.counting.len() < self.counting_limit {
            return;
        }
        self.counting.retain(|_, c| now - c.last < period);
        if self.counting.len() < self.counting_limit {
            return;
        }
        let stalest = self
            .counting
            .iter()
            .min_by(|a, b| a.1.last.total_cmp(&b.1.last))
            .map(|(address, _)| *address);
        if let Some(address) = stalest {
            self.counting.remove(&address);
        }
    }

    fn lock(&mut self, address: IpAddr, until: f64, now: f64) {
        if self.locked.len() >= self.sweep_locked_at {
            self.locked.retain(|_, until| *until > now);
            self.sweep_locked_at = (self.locked.len() * 2).max(self.counting_limit);
        }
        self.locked.insert(address, until);
    }
}

/// Lockout counters in this process's memory: the counts of at most 10000 addresses (beyond,
/// the stalest count is forgotten), and every lock until it lapses — a full table never evicts a
/// lock and never refuses an address that has not failed.
#[derive(Debug)]
pub struct MemoryAdminLockout {
    table: Mutex<Table>,
}

impl Default for MemoryAdminLockout {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryAdminLockout {
    /// An empty table.
    pub fn new() -> Self {
        Self::with_counting_limit(COUNTING_LIMIT)
    }

    /// An empty table counting at most `limit` addresses at once (at least one).
    fn with_counting_limit(limit: usize) -> Self {
        Self {
            table: Mutex::new(Table::new(limit.max(1))),
        }
    }
}

#[async_trait]
impl AdminLockout for MemoryAdminLockout {
    async fn locked_for(&self, address: IpAddr, now: f64) -> Result<Option<f64>, StoreError> {
        let table = lock(&self.table);
        Ok(table
            .locked
            .get(&address)
            .filter(|until| **until > now)
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
        if let Some(until) = table.locked.get(&address).copied() {
            if until > now {
                return Ok(Attempt::LockedOut(until - now));
            }
            // The lock lapsed: counting starts again.
            table.locked.remove(&address);
        }
        if !table.counting.contains_key(&address) {
            table.make_room(now, period);
        }
        let entry = table.counting.entry(address).or_insert(Counting {
            count: 0,
            last: now,
        });
        if now - entry.last >= period {
            entry.count = 0;
        }
        entry.count += 1;
        entry.last = now;
        if entry.count < max_failures {
            return Ok(Attempt::Compare { last: false });
        }
        table.counting.remove(&address);
        table.lock(address, now + period, now);
        Ok(Attempt::Compare { last: true })
    }

    async fn clear(&self, address: IpAddr) -> Result<(), StoreError> {
        let mut table = lock(&self.table);
        table.counting.remove(&address);
        table.locked.remove(&address);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const PERIOD: Duration = Duration::from_secs(300);

    fn address(n: u32) -> IpAddr {
        IpAddr::from(n.to_be_bytes())
    }

    #[tokio::test]
    async fn the_counts_stay_bounded_and_every_lock_is_kept() {
        let l = MemoryAdminLockout::new();
        let locked = address(u32::MAX);
        for _ in 0..10 {
            l.attempt(locked, 0.0, 10, PERIOD).await.unwrap();
        }
        assert!(l.locked_for(locked, 1.0).await.unwrap().is_some());
        for i in 0..(COUNTING_LIMIT as u32 + 50) {
            l.attempt(address(i), 1.0, 10, PERIOD).await.unwrap();
        }
        assert!(l.table.lock().unwrap().counting.len() <= COUNTING_LIMIT);
        assert!(
            l.locked_for(locked, 2.0).await.unwrap().is_some(),
            "table pressure never evicts a locked address"
        );
    }

    #[tokio::test]
    async fn a_table_full_of_locks_still_compares_a_new_address() {
        let l = MemoryAdminLockout::with_counting_limit(100);
        // Far more locked addresses than the table counts.
        for i in 0..1000 {
            for _ in 0..10 {
                l.attempt(address(i), 1.0, 10, PERIOD).await.unwrap();
            }
        }
        assert_eq!(l.table.lock().unwrap().locked.len(), 1000);
        let admin: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(
            l.attempt(admin, 2.0, 10, PERIOD).await.unwrap(),
            Attempt::Compare { last: false },
            "the real admin from a new address is not locked out"
        );
        for i in 0..1000 {
            assert!(l.locked_for(address(i), 2.0).await.unwrap().is_some());
        }
        // Lapsed locks are swept as new ones come.
        for i in 1000..3000 {
            for _ in 0..10 {
                l.attempt(address(i), 400.0, 10, PERIOD).await.unwrap();
            }
        }
        assert!(l.table.lock().unwrap().locked.len() <= 2 * 2000);
    }

    #[derive(Debug, Clone)]
    enum Op {
        /// An attempt by address n, a wrong token (true) or the right one.
        Attempt(u8, bool),
        /// Time passes, seconds.
        Wait(u16),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            8 => (0u8..40, prop::bool::weighted(0.9)).prop_map(|(a, wrong)| Op::Attempt(a, wrong)),
            1 => (0u16..400).prop_map(Op::Wait),
        ]
    }

    proptest! {
        /// Against a model of unbounded counts: a small table (8 addresses counted at once, 40
        /// in play) never refuses an address that has not failed `max` times in a row within
        /// the period, never loses or shortens a lock, and never compares an address's token
        /// while it is locked.
        #[test]
        fn eviction_never_locks_out_the_innocent_nor_frees_the_locked(
            ops in prop::collection::vec(op(), 1..400),
        ) {
            const MAX: u32 = 3;
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let l = MemoryAdminLockout::with_counting_limit(8);
            let period = PERIOD.as_secs_f64();
            let mut now = 0.0;
            // The model: when each address's lock ends, and its failures in a row.
            let mut locked_until: HashMap<IpAddr, f64> = HashMap::new();
            let mut failures: HashMap<IpAddr, (u32, f64)> = HashMap::new();
            for op in ops {
                match op {
                    Op::Wait(secs) => now += f64::from(secs),
                    Op::Attempt(n, wrong) => {
                        let who = address(u32::from(n));
                        let attempt = runtime
                            .block_on(l.attempt(who, now, MAX, PERIOD))
                            .unwrap();
                        let model_locked = locked_until.get(&who).is_some_and(|u| *u > now);
                        match attempt {
                            Attempt::LockedOut(left) => {
                                prop_assert!(model_locked, "{who} refused without a lock");
                                prop_assert_eq!(left, locked_until[&who] - now);
                                continue;
                            }
                            Attempt::Compare { last } => {
                                prop_assert!(!model_locked, "{who} compared while locked");
                                let (count, at) = failures.get(&who).copied().unwrap_or((0, now));
                                let count = if now - at >= period { 0 } else { count };
                                // Eviction may forget failures (so a lock may come later than
                                // the model's), never invent them.
                                prop_assert!(!last || count + 1 >= MAX, "{who} locked early");
                                if last {
                                    locked_until.insert(who, now + period);
                                    failures.remove(&who);
                                } else {
                                    failures.insert(who, (count + 1, now));
                                }
                            }
                        }
                        if !wrong {
                            runtime.block_on(l.clear(who)).unwrap();
                            locked_until.remove(&who);
                            failures.remove(&who);
                        }
                    }
                }
                for (who, until) in &locked_until {
                    let left = runtime.block_on(l.locked_for(*who, now)).unwrap();
                    prop_assert_eq!(left, (*until > now).then(|| until - now));
                }
            }
        }
    }
}
