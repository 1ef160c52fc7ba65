//! Recomputing a submitted solution's Argon2d hash: the one expensive step of the game.
//!
//! [`Argon2Verifier`] runs hashes on tokio's blocking pool under a memory budget: each job takes
//! as many MiB of permits as its `memory_cost` needs from a fair (FIFO) semaphore, so concurrent
//! verifications never hold more memory than the budget, and jobs start in arrival order. At most
//! `max_queue` jobs wait; beyond that [`VerifyError::Busy`] answers at once (HTTP 503). Argon2's
//! 64 MiB working memory is taken from a pool of reusable buffers instead of a fresh allocation
//! per hash (fewer page faults: see the `verify` benchmark).
//!
//! The game does not call a verifier first come, first served: the
//! [`VerificationQueue`](crate::verification_queue::VerificationQueue) in front of it hands out
//! turns fairly across client addresses under the same budget, so this one's own queue stays
//! empty and only guards a verifier used on its own.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::{Algorithm, Argon2, Block, Params, Version};
use async_trait::async_trait;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::puzzle::{Argon2Params, HASH_LEN, PuzzleHash};
use crate::util::lock;

/// Why a hash could not be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The wait queue is full; the client should retry.
    #[error("Server busy, retry")]
    Busy,
    /// Argon2 refused the inputs or parameters.
    #[error("{0}")]
    Argon2(String),
    /// The verification task failed unexpectedly.
    #[error("verification task failed: {0}")]
    Internal(String),
}

/// A computed hash, with how the job fared in the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Computed {
    /// The Argon2d output.
    pub hash: PuzzleHash,
    /// How many other verifications started between this job's arrival and its own start.
    pub started_ahead: u64,
    /// Time spent waiting for a slot.
    pub queued_for: Duration,
    /// Time spent hashing.
    pub hashed_for: Duration,
}

/// Computes puzzle hashes. Implementations must bound their memory use.
#[async_trait]
pub trait Verifier: Send + Sync + 'static {
    /// Computes Argon2d (v0x13, 32-byte output) of `password` and `salt` under `params`.
    async fn compute(
        &self,
        params: Argon2Params,
        password: &[u8],
        salt: &[u8],
    ) -> Result<Computed, VerifyError>;

    /// Verifications waiting for a slot right now (for the metrics).
    fn queued(&self) -> usize {
        0
    }
}

/// Computes an Argon2d hash synchronously with a fresh allocation (reference path, benchmarks).
pub fn argon2d(
    params: Argon2Params,
    password: &[u8],
    salt: &[u8],
) -> Result<PuzzleHash, VerifyError> {
    let argon = argon2_context(params)?;
    let mut out = [0u8; HASH_LEN];
    argon
        .hash_password_into(password, salt, &mut out)
        .map_err(|e| VerifyError::Argon2(e.to_string()))?;
    Ok(out)
}

/// Finds the smallest nonce ≥ `from` whose hash (for `seed`, `visitor_id`, `ip`) has at least
/// `zeros` leading zero bits — what a miner does, for tests, load tools and scripted clients.
/// Errors only if Argon2 refuses the parameters.
pub fn solve(
    params: Argon2Params,
    seed: &str,
    visitor_id: &str,
    ip: &str,
    zeros: u32,
    from: u64,
) -> Result<(u64, PuzzleHash), VerifyError> {
    let salt = crate::puzzle::salt(seed, visitor_id, ip);
    for nonce in from..=crate::puzzle::MAX_NONCE {
        let hash = argon2d(params, &crate::puzzle::password(nonce), &salt)?;
        if crate::puzzle::leading_zero_bits(&hash) >= zeros {
            return Ok((nonce, hash));
        }
    }
    Err(VerifyError::Argon2(format!(
        "no nonce up to 2^53 reaches {zeros} leading zero bits"
    )))
}

fn argon2_context(params: Argon2Params) -> Result<Argon2<'static>, VerifyError> {
    let params = Params::new(
        params.memory_cost,
        params.time_cost,
        params.parallelism,
        Some(HASH_LEN),
    )
    .map_err(|e| VerifyError::Argon2(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2d, Version::V0x13, params))
}

/// Reusable Argon2 working memory, keyed by block count.
#[derive(Default)]
struct BufferPool {
    free: Mutex<HashMap<usize, Vec<Vec<Block>>>>,
    /// How many buffers of any size may be kept idle.
    keep: usize,
}

impl BufferPool {
    fn take(&self, blocks: usize) -> Vec<Block> {
        let reused = lock(&self.free).get_mut(&blocks).and_then(Vec::pop);
        reused.unwrap_or_else(|| vec![Block::new(); blocks])
    }

    fn give_back(&self, buffer: Vec<Block>) {
        let mut free = lock(&self.free);
        let idle: usize = free.values().map(Vec::len).sum();
        if idle < self.keep {
            free.entry(buffer.len()).or_default().push(buffer);
        } else {
            // Parameters changed or the pool is full: drop the oldest size first.
            free.retain(|size, list| *size == buffer.len() && !list.is_empty());
            let list = free.entry(buffer.len()).or_default();
            if list.len() < self.keep {
                list.push(buffer);
            }
        }
    }
}

/// Argon2d on tokio's blocking pool under a memory budget, with a bounded FIFO queue.
pub struct Argon2Verifier {
    budget_mib: u32,
    slots: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_queue: usize,
    started: AtomicU64,
    buffers: Arc<BufferPool>,
    reuse_buffers: bool,
}

impl std::fmt::Debug for Argon2Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Argon2Verifier")
            .field("budget_mib", &self.budget_mib)
            .field("max_queue", &self.max_queue)
            .field("waiting", &self.waiting.load(Ordering::Relaxed))
            .finish()
    }
}

impl Argon2Verifier {
    /// A verifier allowed `budget_mib` MiB of concurrent Argon2 memory and `max_queue` waiting jobs.
    ///
    /// A job larger than the whole budget still runs, alone.
    pub fn new(budget_mib: u32, max_queue: usize) -> Self {
        let budget_mib = budget_mib.max(1);
        Self {
            budget_mib,
            slots: Arc::new(Semaphore::new(budget_mib as usize)),
            waiting: AtomicUsize::new(0),
            max_queue,
            started: AtomicU64::new(0),
            buffers: Arc::new(BufferPool {
                free: Mutex::default(),
                keep: 64,
            }),
            reuse_buffers: true,
        }
    }

    /// Turns buffer reuse off (each hash allocates afresh): for benchmarks comparing the two.
    pub fn without_buffer_reuse(mut self) -> Self {
        self.reuse_buffers = false;
        self
    }

    /// The memory budget in MiB.
    pub fn budget_mib(&self) -> u32 {
        self.budget_mib
    }

    /// Jobs currently waiting for a slot.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Total jobs started since creation.
    pub fn started(&self) -> u64 {
        self.started.load(Ordering::Relaxed)
    }

    /// The verifier `limits` describe: its memory budget and queue.
    pub fn from_config(limits: &crate::config::LimitsConfig) -> Self {
        Self::new(limits.verify_memory_budget_mb, limits.verify_queue)
    }

    /// The default budget: one 64 MiB verification per available core.
    pub fn default_budget_mib() -> u32 {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        (cores as u32) * 64
    }

    /// Waits in the FIFO queue for `needed_mib` MiB of the budget; [`VerifyError::Busy`] at once
    /// when the queue is full and the memory is not free right now.
    async fn wait_for_memory(&self, needed_mib: u32) -> Result<OwnedSemaphorePermit, VerifyError> {
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.max_queue
            && self.slots.available_permits() < needed_mib as usize
        {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(VerifyError::Busy);
        }
        let _waiting = WaitingGuard(&self.waiting);
        Arc::clone(&self.slots)
            .acquire_many_owned(needed_mib)
            .await
            .map_err(|e| VerifyError::Internal(e.to_string()))
    }
}

/// Decrements the waiting count when a queued job stops waiting, however it ends.
struct WaitingGuard<'a>(&'a AtomicUsize);

impl Drop for WaitingGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[async_trait]
impl Verifier for Argon2Verifier {
    fn queued(&self) -> usize {
        self.waiting()
    }

    async fn compute(
        &self,
        params: Argon2Params,
        password: &[u8],
        salt: &[u8],
    ) -> Result<Computed, VerifyError> {
        let argon = argon2_context(params)?;
        let blocks = argon.params().block_count();
        let needed_mib = params.memory_cost.div_ceil(1024).clamp(1, self.budget_mib);

        let arrived = Instant::now();
        let started_before = self.started.load(Ordering::Acquire);
        let permit = self.wait_for_memory(needed_mib).await?;
        let started_ahead = self.started.fetch_add(1, Ordering::AcqRel) - started_before;
        let queued_for = arrived.elapsed();

        let password = password.to_vec();
        let salt = salt.to_vec();
        let buffers = self.reuse_buffers.then(|| Arc::clone(&self.buffers));
        let (hash, hashed_for) = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            timed_hash(&argon, blocks, buffers.as_deref(), &password, &salt)
        })
        .await
        .map_err(|e| VerifyError::Internal(e.to_string()))??;

        Ok(Computed {
            hash,
            started_ahead,
            queued_for,
            hashed_for,
        })
    }
}

/// Hashes `password` and `salt` with `argon`, in `blocks` blocks of memory from `buffers` if
/// given (a fresh allocation otherwise); returns the hash and how long hashing took.
fn timed_hash(
    argon: &Argon2<'_>,
    blocks: usize,
    buffers: Option<&BufferPool>,
    password: &[u8],
    salt: &[u8],
) -> Result<(PuzzleHash, Duration), VerifyError> {
    let began = Instant::now();
    let mut out = [0u8; HASH_LEN];
    let result = match buffers {
        Some(pool) => {
            let mut memory = pool.take(blocks);
            let r = argon.hash_password_into_with_memory(password, salt, &mut out, &mut memory[..]);
            pool.give_back(memory);
            r
        }
        None => argon.hash_password_into(password, salt, &mut out),
    };
    result
        .map(|()| (out, began.elapsed()))
        .map_err(|e| VerifyError::Argon2(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Salt of DESIGN.md's known answers.
    const KAT_SALT: &str =
        "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff|visitor-abc123|127.0.0.1";

    #[tokio::test]
    async fn pooled_and_fresh_paths_agree() {
        let verifier = Argon2Verifier::new(64, 8);
        let params = Argon2Params::new(1, 1024, 1);
        let fresh = argon2d(params, b"123456", KAT_SALT.as_bytes()).unwrap();
        for _ in 0..3 {
            let pooled = verifier
                .compute(params, b"123456", KAT_SALT.as_bytes())
                .await
                .unwrap();
            assert_eq!(pooled.hash, fresh);
        }
        assert_eq!(verifier.started(), 3);
        assert_eq!(verifier.waiting(), 0);
    }

    #[tokio::test]
    async fn full_queue_answers_busy() {
        // Budget 1 MiB, queue 1: one runs, one waits, the third is refused.
        let verifier = Arc::new(Argon2Verifier::new(1, 1));
        let params = Argon2Params::new(16, 1024, 1);
        let mut tasks = Vec::new();
        for i in 0..6u32 {
            let v = Arc::clone(&verifier);
            tasks.push(tokio::spawn(async move {
                v.compute(params, i.to_string().as_bytes(), KAT_SALT.as_bytes())
                    .await
            }));
        }
        let results: Vec<_> = futures_join(tasks).await;
        assert!(results.iter().any(|r| r.is_ok()));
        assert!(results.contains(&Err(VerifyError::Busy)), "{results:?}");
    }

    async fn futures_join(
        tasks: Vec<tokio::task::JoinHandle<Result<Computed, VerifyError>>>,
    ) -> Vec<Result<Computed, VerifyError>> {
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    }

    #[tokio::test]
    async fn bad_parameters_are_an_argon2_error() {
        let verifier = Argon2Verifier::new(64, 8);
        let err = verifier
            .compute(Argon2Params::new(1, 1, 1), b"1", KAT_SALT.as_bytes())
            .await;
        assert!(matches!(err, Err(VerifyError::Argon2(_))));
        let err = verifier
            .compute(Argon2Params::new(1, 1024, 1), b"1", b"short")
            .await;
        assert!(matches!(err, Err(VerifyError::Argon2(_))));
    }
}
