//! Fair scheduling of verifications across client addresses (docs/protocol.md#fair-verification).
//!
//! Recomputing Argon2d is the one expensive step, so whoever can queue verifications could push
//! an honest winner back. [`VerificationQueue`] hands out the memory budget in turns instead of
//! first come, first served:
//! - each client address (an IPv4 address, or an IPv6 /64: [`counted_address`]) has its own small
//!   queue, and at most `per_address_running` of its jobs run at once (one by default);
//! - ready addresses take turns round-robin, so a thousand queued jobs from one address delay
//!   another address by at most one job;
//! - an address whose recent submission failed Argon2 verification (which an honest miner never
//!   sends: its solutions are right by construction) is served only when no address with a clean
//!   record waits, so a clean address waits at most for the jobs already running;
//! - an address's queue overflowing is answered at once ([`Refusal::AddressQueueFull`], HTTP 429)
//!   without taking anyone's place, and when the whole queue is full a clean arrival displaces the
//!   newest job of a flagged address rather than being refused.
//!
//! The memory budget still caps how many run at once (a job larger than the whole budget runs
//! alone). Everything is in memory and per instance: the budget is this machine's.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::clock::SharedClock;
use crate::config::{LimitsConfig, counted_address};
use crate::util::lock;

/// Why a verification was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// This address already has as many verifications waiting as it may: retry after this many
    /// seconds (HTTP 429).
    AddressQueueFull {
        /// Seconds until a retry may find room.
        retry_after: u64,
    },
    /// Every waiting place is taken, or this job's place went to a clean address: retry after
    /// this many seconds (HTTP 503).
    Busy {
        /// Seconds until a retry may find room.
        retry_after: u64,
    },
}

/// The queue's figures for the metrics page.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueGauges {
    /// Verifications running.
    pub running: usize,
    /// Verifications waiting from addresses with a clean record.
    pub waiting_clean: usize,
    /// Verifications waiting from addresses with a recent failed verification.
    pub waiting_flagged: usize,
    /// Refusals so far because an address's own queue was full.
    pub refused_address_full: u64,
    /// Refusals so far because the whole queue was full.
    pub refused_busy: u64,
    /// Waiting jobs of flagged addresses displaced by clean arrivals so far.
    pub displaced: u64,
}

/// The settings of a [`VerificationQueue`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QueueLimits {
    /// MiB of Argon2 memory the running jobs may hold together.
    pub budget_mib: u32,
    /// Jobs that may wait, all addresses together.
    pub max_waiting: usize,
    /// Jobs of one address that may run at once.
    pub per_address_running: u32,
    /// Jobs of one address that may wait.
    pub per_address_waiting: usize,
    /// How long a failed verification keeps an address behind the clean ones.
    pub failure_memory: Duration,
}

impl QueueLimits {
    /// The limits `config` sets.
    pub fn from_config(config: &LimitsConfig) -> Self {
        Self {
            budget_mib: config.verify_memory_budget_mb.max(1),
            max_waiting: config.verify_queue,
            per_address_running: config.verify_running_per_address.max(1),
            per_address_waiting: config.verify_waiting_per_address,
            failure_memory: config.verify_failure_memory,
        }
    }
}

/// Schedules verifications fairly across client addresses under a memory budget.
pub struct VerificationQueue {
    shared: Arc<Shared>,
}

/// What the queue, its waiting jobs and their turns share.
struct Shared {
    limits: QueueLimits,
    clock: SharedClock,
    state: Mutex<State>,
}

impl Shared {
    /// Runs `f` on the state, then starts what may start.
    fn update<T>(&self, f: impl FnOnce(&mut State, f64, &QueueLimits) -> T) -> T {
        let now = self.clock.now();
        let mut state = lock(&self.state);
        let out = f(&mut state, now, &self.limits);
        state.dispatch(now, &self.limits);
        out
    }
}

impl std::fmt::Debug for VerificationQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerificationQueue")
            .field("limits", &self.shared.limits)
            .field("gauges", &self.gauges())
            .finish()
    }
}

/// How many failed addresses are remembered at most; beyond it, the oldest are forgotten first.
const MAX_REMEMBERED_FAILURES: usize = 100_000;

/// A turn of the budget: the job may run while it is held.
pub struct Turn {
    shared: Arc<Shared>,
    address: IpAddr,
    needed_mib: u32,
    started: Instant,
    queued_for: Duration,
    started_ahead: u64,
}

impl Turn {
    /// How long the job waited for its turn.
    pub fn queued_for(&self) -> Duration {
        self.queued_for
    }

    /// How many other jobs started between this one's arrival and its turn.
    pub fn started_ahead(&self) -> u64 {
        self.started_ahead
    }
}

impl std::fmt::Debug for Turn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Turn")
            .field("address", &self.address)
            .field("needed_mib", &self.needed_mib)
            .field("queued_for", &self.queued_for)
            .finish_non_exhaustive()
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        let held = self.started.elapsed();
        self.shared.update(|state, now, limits| {
            state.note_duration(held);
            state.finish(self.address, self.needed_mib, now, limits);
        });
    }
}

impl VerificationQueue {
    /// An empty queue with these limits, telling flagged addresses' age by `clock`.
    pub fn new(limits: QueueLimits, clock: SharedClock) -> Self {
        Self {
            shared: Arc::new(Shared {
                limits,
                clock,
                state: Mutex::new(State::default()),
            }),
        }
    }

    /// Waits for a turn of `needed_mib` MiB for a job of `client` (grouped by
    /// [`counted_address`]), or refuses at once. Dropping the future gives up the place.
    pub async fn turn(&self, client: IpAddr, needed_mib: u32) -> Result<Turn, Refusal> {
        let address = counted_address(client);
        let arrived = Instant::now();
        let (id, granted) = self.shared.update(|state, now, limits| {
            let flagged = state.is_flagged(address, now, limits);
            state.enqueue(address, needed_mib, flagged, now, limits)
        })?;
        let waiting = Waiting {
            shared: Arc::clone(&self.shared),
            address,
            id,
            granted: Some(granted),
        };
        let grant = waiting.wait().await?;
        Ok(Turn {
            shared: Arc::clone(&self.shared),
            address,
            needed_mib,
            started: Instant::now(),
            queued_for: arrived.elapsed(),
            started_ahead: grant.started_ahead,
        })
    }

    /// Records that a job of `client` failed verification: the address is served after the clean
    /// ones for the configured time.
    pub fn record_failure(&self, client: IpAddr) {
        self.shared.update(|state, now, limits| {
            state.remember_failure(counted_address(client), now, limits);
        });
    }

    /// Whether `client`'s address has a recent failed verification.
    pub fn is_flagged(&self, client: IpAddr) -> bool {
        self.shared
            .update(|state, now, limits| state.is_flagged(counted_address(client), now, limits))
    }

    /// The queue's figures now.
    pub fn gauges(&self) -> QueueGauges {
        let now = self.shared.clock.now();
        let state = lock(&self.shared.state);
        let (clean, flagged) = state.waiting_by_record(now, &self.shared.limits);
        QueueGauges {
            running: state.running,
            waiting_clean: clean,
            waiting_flagged: flagged,
            refused_address_full: state.refused_address_full,
            refused_busy: state.refused_busy,
            displaced: state.displaced,
        }
    }
}

/// A job's place in the queue while it waits; dropping it gives the place up (or, if the turn
/// was granted meanwhile, the turn back).
struct Waiting {
    shared: Arc<Shared>,
    address: IpAddr,
    id: u64,
    granted: Option<oneshot::Receiver<Result<Grant, Refusal>>>,
}

impl Waiting {
    async fn wait(mut self) -> Result<Grant, Refusal> {
        let Some(receiver) = self.granted.as_mut() else {
            return Err(Refusal::Busy { retry_after: 1 });
        };
        let answer = receiver
            .await
            .unwrap_or(Err(Refusal::Busy { retry_after: 1 }));
        // Answered: the grant (if any) now belongs to the caller's Turn.
        self.granted = None;
        answer
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        let Some(mut receiver) = self.granted.take() else {
            return;
        };
        let address = self.address;
        let id = self.id;
        self.shared.update(|state, now, limits| {
            if state.withdraw(address, id) {
                return;
            }
            // Granted between the last poll and this drop: hand the turn back.
            if let Ok(Ok(grant)) = receiver.try_recv() {
                state.finish(address, grant.needed_mib, now, limits);
            }
        });
    }
}

/// What a waiting job is told when its turn comes.
#[derive(Debug)]
struct Grant {
    started_ahead: u64,
    needed_mib: u32,
}

/// One waiting job.
#[derive(Debug)]
struct Waiter {
    id: u64,
    needed_mib: u32,
    /// Jobs started before this one arrived.
    started_before: u64,
    answer: oneshot::Sender<Result<Grant, Refusal>>,
}

/// One address's jobs.
#[derive(Debug, Default)]
struct AddressJobs {
    waiting: VecDeque<Waiter>,
    running: u32,
    /// Whether the address is in one of the ready rings.
    in_ring: bool,
}

#[derive(Debug, Default)]
struct State {
    next_id: u64,
    started: u64,
    running: usize,
    running_mib: u64,
    waiting: usize,
    addresses: HashMap<IpAddr, AddressJobs>,
    /// Addresses with a job ready to start and a clean record, in turn order.
    clean: VecDeque<IpAddr>,
    /// Addresses with a job ready to start and a recent failed verification, in turn order.
    flagged: VecDeque<IpAddr>,
    /// When each flagged address last failed verification.
    failures: HashMap<IpAddr, f64>,
    /// Moving average of how long a job holds its turn, seconds.
    average_secs: f64,
    refused_address_full: u64,
    refused_busy: u64,
    displaced: u64,
}

impl State {
    fn is_flagged(&self, address: IpAddr, now: f64, limits: &QueueLimits) -> bool {
        self.failures
            .get(&address)
            .is_some_and(|at| now - at < limits.failure_memory.as_secs_f64())
    }

    fn remember_failure(&mut self, address: IpAddr, now: f64, limits: &QueueLimits) {
        if self.failures.len() >= MAX_REMEMBERED_FAILURES {
            let memory = limits.failure_memory.as_secs_f64();
            self.failures.retain(|_, at| now - *at < memory);
        }
        if self.failures.len() >= MAX_REMEMBERED_FAILURES {
            let mut ages: Vec<(IpAddr, f64)> = self.failures.drain().collect();
            ages.sort_by(|a, b| b.1.total_cmp(&a.1));
            ages.truncate(MAX_REMEMBERED_FAILURES / 2);
            self.failures.extend(ages);
        }
        self.failures.insert(address, now);
    }

    /// Seconds a refused client should wait: about as long as the jobs ahead of a retry take.
    fn retry_after(&self, jobs_ahead: usize) -> u64 {
        let slots = self.running.max(1) as f64;
        let estimate = self.average_secs.max(0.25) * (jobs_ahead as f64 + 1.0) / slots;
        (estimate.ceil() as u64).clamp(1, 30)
    }

    /// Puts a job in `address`'s queue, refusing it (or displacing a flagged job) when full.
    fn enqueue(
        &mut self,
        address: IpAddr,
        needed_mib: u32,
        flagged: bool,
        now: f64,
        limits: &QueueLimits,
    ) -> Result<(u64, oneshot::Receiver<Result<Grant, Refusal>>), Refusal> {
        let own = self.addresses.get(&address).map_or(0, |a| a.waiting.len());
        if own >= limits.per_address_waiting {
            self.refused_address_full += 1;
            return Err(Refusal::AddressQueueFull {
                retry_after: self.retry_after(own),
            });
        }
        // A job that starts at once never waits, whatever the waiting limit.
        let starts_now = self.waiting == 0
            && (self.running == 0
                || self.running_mib + u64::from(needed_mib) <= u64::from(limits.budget_mib))
            && self
                .addresses
                .get(&address)
                .is_none_or(|jobs| jobs.running < limits.per_address_running);
        if !starts_now
            && self.waiting >= limits.max_waiting
            && (flagged || !self.displace_flagged(now, limits))
        {
            self.refused_busy += 1;
            return Err(Refusal::Busy {
                retry_after: self.retry_after(self.waiting),
            });
        }
        let (answer, receiver) = oneshot::channel();
        let id = self.next_id;
        self.next_id += 1;
        let started_before = self.started;
        let jobs = self.addresses.entry(address).or_default();
        jobs.waiting.push_back(Waiter {
            id,
            needed_mib,
            started_before,
            answer,
        });
        self.waiting += 1;
        self.make_ready(address, flagged, limits);
        Ok((id, receiver))
    }

    /// Refuses the newest waiting job of any flagged address (in a ring or not: one at its
    /// running limit waits outside them) to make room; false if no flagged address has a job
    /// waiting.
    fn displace_flagged(&mut self, now: f64, limits: &QueueLimits) -> bool {
        let victim = self
            .addresses
            .iter()
            .filter(|(address, jobs)| {
                !jobs.waiting.is_empty() && self.is_flagged(**address, now, limits)
            })
            .max_by_key(|(_, jobs)| jobs.waiting.back().map(|w| w.id))
            .map(|(address, _)| *address);
        let Some(address) = victim else {
            return false;
        };
        let retry_after = self.retry_after(self.waiting);
        let Some(waiter) = self
            .addresses
            .get_mut(&address)
            .and_then(|jobs| jobs.waiting.pop_back())
        else {
            return false;
        };
        self.waiting -= 1;
        self.displaced += 1;
        let _ = waiter.answer.send(Err(Refusal::Busy { retry_after }));
        true
    }

    /// Puts `address` in its ring if it has a job that may start and is not in one yet.
    fn make_ready(&mut self, address: IpAddr, flagged: bool, limits: &QueueLimits) {
        let Some(jobs) = self.addresses.get_mut(&address) else {
            return;
        };
        if jobs.in_ring || jobs.waiting.is_empty() || jobs.running >= limits.per_address_running {
            return;
        }
        self.requeue(address, flagged, false);
    }

    /// Removes a job that gave up waiting; false if it is no longer waiting (it was granted).
    fn withdraw(&mut self, address: IpAddr, id: u64) -> bool {
        let Some(jobs) = self.addresses.get_mut(&address) else {
            return false;
        };
        let Some(at) = jobs.waiting.iter().position(|w| w.id == id) else {
            return false;
        };
        jobs.waiting.remove(at);
        self.waiting -= 1;
        self.forget_if_idle(address);
        true
    }

    /// A running job of `address` ended: its next job (if any) may take a turn again.
    fn finish(&mut self, address: IpAddr, needed_mib: u32, now: f64, limits: &QueueLimits) {
        self.running -= 1;
        self.running_mib -= u64::from(needed_mib);
        if let Some(jobs) = self.addresses.get_mut(&address) {
            jobs.running -= 1;
        }
        let flagged = self.is_flagged(address, now, limits);
        self.make_ready(address, flagged, limits);
        self.forget_if_idle(address);
    }

    fn note_duration(&mut self, held: Duration) {
        let secs = held.as_secs_f64();
        self.average_secs = if self.average_secs == 0.0 {
            secs
        } else {
            0.8 * self.average_secs + 0.2 * secs
        };
    }

    /// Drops the entry of an address with nothing waiting or running (its ring slot, if any,
    /// is skipped when reached).
    fn forget_if_idle(&mut self, address: IpAddr) {
        if self
            .addresses
            .get(&address)
            .is_some_and(|jobs| jobs.waiting.is_empty() && jobs.running == 0 && !jobs.in_ring)
        {
            self.addresses.remove(&address);
        }
    }

    /// The next address whose turn it is: clean ones first, then flagged ones.
    fn next_ready(&mut self) -> Option<(IpAddr, bool)> {
        if let Some(address) = self.clean.pop_front() {
            return Some((address, false));
        }
        self.flagged.pop_front().map(|address| (address, true))
    }

    /// Starts waiting jobs while the budget allows, in turn order.
    fn dispatch(&mut self, now: f64, limits: &QueueLimits) {
        while let Some((address, was_flagged)) = self.next_ready() {
            let Some(jobs) = self.addresses.get_mut(&address) else {
                continue;
            };
            jobs.in_ring = false;
            let Some(needed_mib) = jobs.waiting.front().map(|w| w.needed_mib) else {
                self.forget_if_idle(address);
                continue;
            };
            if jobs.running >= limits.per_address_running {
                // Back in a ring when one of its running jobs ends.
                continue;
            }
            // An address flagged since it joined the clean ring goes behind the clean ones.
            if !was_flagged && self.is_flagged(address, now, limits) && !self.clean.is_empty() {
                self.requeue(address, true, false);
                continue;
            }
            let fits = self.running == 0
                || self.running_mib + u64::from(needed_mib) <= u64::from(limits.budget_mib);
            if !fits {
                self.requeue(address, was_flagged, true);
                break;
            }
            self.start(address);
            self.requeue_if_more(address, was_flagged, limits);
        }
    }

    /// Grants the turn of `address`'s first waiting job.
    fn start(&mut self, address: IpAddr) {
        let Some(jobs) = self.addresses.get_mut(&address) else {
            return;
        };
        let Some(waiter) = jobs.waiting.pop_front() else {
            return;
        };
        jobs.running += 1;
        self.waiting -= 1;
        self.running += 1;
        self.running_mib += u64::from(waiter.needed_mib);
        let grant = Grant {
            started_ahead: self.started - waiter.started_before,
            needed_mib: waiter.needed_mib,
        };
        self.started += 1;
        // The receiver lives in the job's `Waiting`, which takes this lock before it goes: the
        // send cannot fail.
        let _ = waiter.answer.send(Ok(grant));
    }

    /// Puts `address` in its ring: at the back (its turn comes after everyone's) or at the front
    /// (it keeps the turn it could not use yet).
    fn requeue(&mut self, address: IpAddr, flagged: bool, at_front: bool) {
        let Some(jobs) = self.addresses.get_mut(&address) else {
            return;
        };
        jobs.in_ring = true;
        let ring = if flagged {
            &mut self.flagged
        } else {
            &mut self.clean
        };
        if at_front {
            ring.push_front(address);
        } else {
            ring.push_back(address);
        }
    }

    /// After a start: back to the end of its ring if the address has another job that may start.
    fn requeue_if_more(&mut self, address: IpAddr, flagged: bool, limits: &QueueLimits) {
        let more = self.addresses.get(&address).is_some_and(|jobs| {
            !jobs.waiting.is_empty() && jobs.running < limits.per_address_running
        });
        if more {
            self.requeue(address, flagged, false);
        }
    }

    fn waiting_by_record(&self, now: f64, limits: &QueueLimits) -> (usize, usize) {
        let mut clean = 0;
        let mut flagged = 0;
        for (address, jobs) in &self.addresses {
            if self.is_flagged(*address, now, limits) {
                flagged += jobs.waiting.len();
            } else {
                clean += jobs.waiting.len();
            }
        }
        (clean, flagged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FakeClock;
    use tokio::task::JoinHandle;

    fn queue(budget_mib: u32, max_waiting: usize) -> Arc<VerificationQueue> {
        let limits = QueueLimits {
            budget_mib,
            max_waiting,
            per_address_running: 1,
            per_address_waiting: 2,
            failure_memory: Duration::from_secs(600),
        };
        Arc::new(VerificationQueue::new(
            limits,
            Arc::new(FakeClock::default()),
        ))
    }

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, n])
    }

    /// Lets spawned tasks run until they wait.
    async fn settle() {
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
    }

    /// A job of `client` asking for a 1 MiB turn, queued before this returns.
    async fn job(
        queue: &Arc<VerificationQueue>,
        client: IpAddr,
    ) -> JoinHandle<Result<Turn, Refusal>> {
        let queue = Arc::clone(queue);
        let handle = tokio::spawn(async move { queue.turn(client, 1).await });
        settle().await;
        handle
    }

    /// The one job of `jobs` that has its turn now (panics unless exactly one).
    async fn started(
        jobs: &mut Vec<(IpAddr, JoinHandle<Result<Turn, Refusal>>)>,
    ) -> (IpAddr, Turn) {
        settle().await;
        let at: Vec<usize> = (0..jobs.len())
            .filter(|i| jobs[*i].1.is_finished())
            .collect();
        assert_eq!(at.len(), 1, "exactly one job starts per finished one");
        let (address, handle) = jobs.remove(at[0]);
        (address, handle.await.unwrap().expect("granted"))
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_clean_address_waits_only_for_the_running_jobs() {
        let q = queue(2, 64);
        for n in 1..=6 {
            q.record_failure(ip(n));
        }
        // Two flagged jobs run; six flagged addresses queue two each.
        let running = [
            q.turn(ip(1), 1).await.unwrap(),
            q.turn(ip(2), 1).await.unwrap(),
        ];
        let mut jobs = Vec::new();
        for n in 1..=6 {
            for _ in 0..2 {
                jobs.push((ip(n), job(&q, ip(n)).await));
            }
        }
        let honest = job(&q, ip(99)).await;
        assert!(!honest.is_finished());
        drop(running);
        settle().await;
        let turn = honest.await.unwrap().expect("the clean job starts first");
        assert_eq!(turn.started_ahead(), 0, "nothing started ahead of it");
        // The other freed slot went to a flagged job.
        assert_eq!(q.gauges().waiting_flagged, 11);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn flagged_addresses_take_turns_one_job_each() {
        let q = queue(1, 64);
        for n in 1..=4 {
            q.record_failure(ip(n));
        }
        let first = q.turn(ip(9), 1).await.unwrap();
        let mut jobs = Vec::new();
        for n in 1..=4 {
            for _ in 0..2 {
                jobs.push((ip(n), job(&q, ip(n)).await));
            }
        }
        drop(first);
        let mut order = Vec::new();
        while !jobs.is_empty() {
            let (address, turn) = started(&mut jobs).await;
            order.push(address);
            drop(turn);
        }
        let rounds: Vec<&[IpAddr]> = order.chunks(4).collect();
        for round in rounds {
            let mut seen: Vec<IpAddr> = round.to_vec();
            seen.sort();
            seen.dedup();
            assert_eq!(seen.len(), 4, "each address once per round: {order:?}");
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn an_overflowing_address_is_refused_without_delaying_anyone() {
        let q = queue(1, 64);
        let running = q.turn(ip(1), 1).await.unwrap();
        let own = [job(&q, ip(1)).await, job(&q, ip(1)).await];
        let refused = q.turn(ip(1), 1).await.unwrap_err();
        assert!(matches!(refused, Refusal::AddressQueueFull { retry_after } if retry_after >= 1));
        // Another address arriving after the overflow is served next: the address whose job just
        // ran goes to the back of the turn order.
        let other = job(&q, ip(2)).await;
        drop(running);
        let [own_first, own_second] = own;
        let mut jobs = vec![(ip(1), own_first), (ip(2), other)];
        let (first, turn) = started(&mut jobs).await;
        assert_eq!(first, ip(2), "the overflow took no one's place");
        drop(turn);
        let (second, turn) = started(&mut jobs).await;
        assert_eq!(second, ip(1));
        drop(turn);
        assert!(
            own_second.await.unwrap().is_ok(),
            "its own waiting jobs are kept"
        );
        assert_eq!(q.gauges().refused_address_full, 1);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_full_queue_makes_room_for_a_clean_address() {
        let q = queue(1, 2);
        q.record_failure(ip(1));
        q.record_failure(ip(2));
        let running = q.turn(ip(3), 1).await.unwrap();
        let flagged = [job(&q, ip(1)).await, job(&q, ip(2)).await];
        // Full: a flagged arrival is refused, a clean one displaces the newest flagged job.
        assert!(matches!(
            q.turn(ip(1), 1).await,
            Err(Refusal::AddressQueueFull { .. }) | Err(Refusal::Busy { .. })
        ));
        let clean = job(&q, ip(4)).await;
        let [a, b] = flagged;
        settle().await;
        assert!(b.is_finished(), "the newest flagged job was answered");
        assert!(matches!(b.await.unwrap(), Err(Refusal::Busy { .. })));
        drop(running);
        settle().await;
        assert!(clean.is_finished() && !a.is_finished());
        assert_eq!(q.gauges().displaced, 1);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn no_waiting_places_still_runs_what_fits_at_once() {
        let q = queue(1, 0);
        let running = q
            .turn(ip(1), 1)
            .await
            .expect("an idle queue starts it at once");
        assert!(matches!(q.turn(ip(2), 1).await, Err(Refusal::Busy { .. })));
        drop(running);
        assert!(q.turn(ip(2), 1).await.is_ok());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_flagged_address_at_its_running_limit_can_still_be_displaced() {
        let q = queue(2, 2);
        q.record_failure(ip(1));
        // Its one running job keeps it out of the turn order; its two jobs wait outside it.
        let _running = q.turn(ip(1), 1).await.unwrap();
        let _other = q.turn(ip(3), 1).await.unwrap();
        let flagged = [job(&q, ip(1)).await, job(&q, ip(1)).await];
        let clean = job(&q, ip(4)).await;
        settle().await;
        let [first, newest] = flagged;
        assert!(newest.is_finished(), "the newest flagged job made room");
        assert!(matches!(newest.await.unwrap(), Err(Refusal::Busy { .. })));
        assert!(!first.is_finished() && !clean.is_finished());
        assert_eq!(q.gauges().displaced, 1);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_job_that_gives_up_frees_its_place() {
        let q = queue(1, 64);
        let running = q.turn(ip(1), 1).await.unwrap();
        let gone = job(&q, ip(2)).await;
        gone.abort();
        settle().await;
        assert_eq!(q.gauges().waiting_clean, 0);
        let next = job(&q, ip(3)).await;
        drop(running);
        settle().await;
        assert!(next.is_finished());
        drop(next.await.unwrap().unwrap());
        assert_eq!(q.gauges().running, 0);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn an_ipv6_64_is_one_address() {
        let q = queue(1, 64);
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let _running = q.turn(a, 1).await.unwrap();
        let _w = [job(&q, a).await, job(&q, b).await];
        assert!(matches!(
            q.turn(b, 1).await,
            Err(Refusal::AddressQueueFull { .. })
        ));
        q.record_failure(a);
        assert!(q.is_flagged(b));
        assert!(!q.is_flagged("2001:db8:1:3::1".parse().unwrap()));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_failure_is_forgotten_after_the_configured_time() {
        let clock = FakeClock::default();
        let limits = QueueLimits {
            budget_mib: 1,
            max_waiting: 8,
            per_address_running: 1,
            per_address_waiting: 2,
            failure_memory: Duration::from_secs(60),
        };
        let q = VerificationQueue::new(limits, Arc::new(clock.clone()));
        q.record_failure(ip(1));
        assert!(q.is_flagged(ip(1)));
        clock.advance_secs(61.0);
        assert!(!q.is_flagged(ip(1)));
    }
}
