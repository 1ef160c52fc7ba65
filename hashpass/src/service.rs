//! The game: who may get a puzzle, what a valid solution is, the single-winner claim,
//! difficulty adjustment, timeouts and their rewards (docs/protocol.md#get-the-puzzle–docs/protocol.md#submit-a-best-hash-after-a-timeout, docs/protocol.md#sessions, docs/protocol.md#difficulty-adjustment, docs/protocol.md#how-a-solution-is-checked, docs/protocol.md#difficulty-adjustment).
//!
//! Order of a verification (docs/protocol.md#how-a-solution-is-checked): identity checks, seed is current, the submitted hash meets the
//! difficulty, per-session rate — all cheap — then the Argon2 recomputation on the bounded
//! [`Verifier`] with no lock held, then one compare-and-swap of the puzzle state. The first swap
//! for a seed wins; every other solution for that seed gets 409.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use subtle::ConstantTimeEq;

use crate::audit::{AuditLog, AuditRecord};
use crate::bans::BanList;
use crate::captcha::CaptchaProvider;
use crate::clock::SharedClock;
use crate::config::Config;
use crate::connections::{ConnectionRegistry, PlayerSlot};
use crate::difficulty::{Adjustment, DifficultyState};
use crate::error::StoreError;
use crate::events::{Event, EventBus};
use crate::hashrate::{self, HashrateStore, NetworkHashrate};
use crate::invite::InviteCodes;
use crate::metrics::{Metrics, Outcome};
use crate::outbox::{Delivery, WebhookOutbox};
use crate::puzzle::{self, PuzzleHash, leading_zero_bits};
use crate::puzzle_store::{
    ChartPoint, PuzzleState, PuzzleStore, RewardEntry, RewardOffer, RewardWindow,
};
use crate::session::{
    ConnectionId, Credential, Session, SessionStore, new_connection_id, new_session_token, preview,
};
use crate::util::{local_timestamp, lock, round_dp};
use crate::verification_queue::{QueueLimits, Refusal, Turn, VerificationQueue};
use crate::verify::{Verifier, VerifyError};
use crate::webhook::{WebhookEvent, WebhookSink};
use crate::wire;

pub use crate::game_error::{GameError, GameErrorKind};

/// A solve time is never reported as 0 (docs/protocol.md#difficulty-adjustment): at least 0.01 s, the smallest value the wire's
/// two decimals show.
const MIN_SOLVE_TIME: f64 = 0.01;

/// Who runs the periodic jobs: with several instances exactly one should (timeouts, awards,
/// aggregation, clean-up), so they hold a lease with expiry.
#[async_trait::async_trait]
pub trait JobLease: Send + Sync + 'static {
    /// Takes or renews the lease; true while this instance holds it.
    async fn hold(&self) -> Result<bool, StoreError>;
}

/// The lease of a single instance: always held.
#[derive(Debug, Default, Clone, Copy)]
pub struct SoleInstance;

#[async_trait::async_trait]
impl JobLease for SoleInstance {
    async fn hold(&self) -> Result<bool, StoreError> {
        Ok(true)
    }
}

/// The pluggable parts a service runs on.
#[derive(Clone)]
pub struct Seams {
    /// Time.
    pub clock: SharedClock,
    /// The puzzle state.
    pub puzzles: Arc<dyn PuzzleStore>,
    /// Session tokens.
    pub sessions: Arc<dyn SessionStore>,
    /// Argon2 recomputation.
    pub verifier: Arc<dyn Verifier>,
    /// Invite codes.
    pub invites: Arc<InviteCodes>,
    /// Captcha at connect.
    pub captcha: Arc<dyn CaptchaProvider>,
    /// Win notifications; `None` = no webhook.
    pub webhook: Option<Arc<dyn WebhookSink>>,
    /// The webhook's deliveries to make.
    pub outbox: Arc<dyn WebhookOutbox>,
    /// Socket fan-out.
    pub events: Arc<dyn EventBus>,
    /// Banned IPs.
    pub bans: Arc<dyn BanList>,
    /// Winners' audit trail.
    pub audit: Arc<dyn AuditLog>,
    /// Hashrate reports.
    pub hashrate: Arc<dyn HashrateStore>,
    /// Who runs the periodic jobs.
    pub lease: Arc<dyn JobLease>,
    /// Which instances are alive, and their sockets.
    pub instances: Arc<dyn crate::instances::InstanceRegistry>,
    /// Which invite codes were used, by whom, when (the host site's side).
    pub redemptions: Arc<dyn crate::redemption::RedemptionStore>,
    /// Where the invite key ring is kept.
    pub invite_keys: Arc<dyn crate::invite_key_store::InviteKeyStore>,
}

impl std::fmt::Debug for Seams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The seams are trait objects; which implementation each is shows in the builder's use.
        f.debug_struct("Seams").finish_non_exhaustive()
    }
}

/// A solution as submitted to `/api/verify` or `/api/submit`, after field validation.
#[derive(Debug, Clone, PartialEq)]
pub struct Solution {
    /// Device fingerprint.
    pub visitor_id: String,
    /// The nonce (0..=2^53).
    pub nonce: u64,
    /// The seed the client mined.
    pub submitted_seed: String,
    /// Cloudflare-style trace text (its `ip=` line must match the caller).
    pub trace_data: String,
    /// The claimed hash.
    pub hash: PuzzleHash,
}

/// The answer of `POST /api/puzzle`: the current puzzle and its recent solve times.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PuzzleAnswer {
    /// The seed to mine.
    pub seed: String,
    /// Required leading zero bits.
    pub difficulty: u32,
    /// Argon2 memory, KiB.
    pub memory_cost: u32,
    /// Argon2 passes.
    pub time_cost: u32,
    /// Argon2 lanes.
    pub parallelism: u32,
    /// Web Workers each browser runs.
    pub worker_count: u32,
    /// When the puzzle started, Unix seconds.
    pub puzzle_start_time: f64,
    /// The last solve time, seconds (two decimals).
    pub last_solve_time: Option<f64>,
    /// The average of the recent solve times, seconds (two decimals).
    pub average_solve_time: Option<f64>,
}

/// What a winning verification returns.
#[derive(Debug, Clone, PartialEq)]
pub struct Win {
    /// The invite code in text form.
    pub invite_code: String,
    /// The audit record written for it.
    pub record: AuditRecord,
}

/// The one field of a PUZZLE_RESET the reset watch reads.
#[derive(serde::Deserialize)]
struct ResetSeed {
    seed: String,
}

/// A won claim: the solved puzzle, the one that replaced it, how the difficulty moved and the
/// solve time it moved on.
struct Claim {
    solved: PuzzleState,
    next: PuzzleState,
    adjustment: Adjustment,
    solve_time: f64,
}

/// How a player socket was admitted (docs/protocol.md#player-socket-admission).
#[derive(Debug)]
pub struct PlayerAdmission {
    /// The effective client IP.
    pub ip: IpAddr,
    /// The connection's id.
    pub connection: ConnectionId,
    /// The session token to attach (reconnect), or `None` to issue a new session on accept.
    pub reconnect_token: Option<String>,
    /// The reserved per-IP slot.
    pub slot: PlayerSlot,
}

/// A limit on verify/submit calls per key (a session token, a client address): at most `limit`
/// in any `window`.
#[derive(Debug)]
struct SubmissionLimiter {
    limit: u32,
    window: f64,
    calls: Mutex<HashMap<String, VecDeque<f64>>>,
}

impl SubmissionLimiter {
    fn new(limit: u32, window: std::time::Duration) -> Self {
        Self {
            limit,
            window: window.as_secs_f64(),
            calls: Mutex::default(),
        }
    }

    /// Counts a call of `key`, or refuses it with the whole seconds until one is allowed.
    fn allow(&self, key: &str, now: f64) -> Result<(), u64> {
        if self.limit == 0 {
            return Ok(());
        }
        let mut calls = lock(&self.calls);
        let recent = calls.entry(key.to_string()).or_default();
        while recent.front().is_some_and(|t| now - t >= self.window) {
            recent.pop_front();
        }
        if let Some(oldest) = recent
            .front()
            .filter(|_| recent.len() >= self.limit as usize)
        {
            return Err((oldest + self.window - now).ceil().max(1.0) as u64);
        }
        recent.push_back(now);
        Ok(())
    }

    fn forget_idle(&self, now: f64) {
        let mut calls = lock(&self.calls);
        calls.retain(|_, recent| recent.back().is_some_and(|t| now - t < self.window));
    }
}

/// The rules of the game over the [`Seams`].
pub struct PuzzleService {
    pub(crate) config: Config,
    pub(crate) seams: Seams,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) connections: Arc<ConnectionRegistry>,
    limiter: SubmissionLimiter,
    address_limiter: SubmissionLimiter,
    verifications: Arc<VerificationQueue>,
    /// The highest puzzle version whose reset this instance's sockets were sent (from
    /// [`PuzzleService::initialise`] on: a socket that joins later is told the puzzle it asks for).
    announced: AtomicU64,
    /// The seed of that version.
    announced_seed: Mutex<String>,
    /// Wakes the outbox worker when a delivery is recorded.
    outbox_ready: tokio::sync::Notify,
    /// Held by the outbox worker through each round: a graceful shutdown takes it to wait for
    /// the round under way, after which the worker starts no other.
    outbox_round: tokio::sync::Mutex<()>,
    /// True from the start of a graceful shutdown on.
    draining: tokio::sync::watch::Sender<bool>,
    /// Verifications under way (a graceful shutdown waits for them).
    in_flight: AtomicUsize,
}

/// Counts one verification under way until dropped (answered, or its request abandoned).
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl std::fmt::Debug for PuzzleService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PuzzleService")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The session token of an `Authorization` header (a token must be text).
fn session_token(authorization: Option<&[u8]>) -> Result<&str, GameError> {
    match Credential::from(authorization) {
        Credential::Missing => Err(GameError::MissingAuthorization),
        Credential::Malformed => Err(GameError::MalformedAuthorization),
        Credential::Token(token) => {
            std::str::from_utf8(token).map_err(|_| GameError::MalformedAuthorization)
        }
    }
}

/// The answer of `POST /api/submit` for the reward window's verdict on an entry.
fn reward_answer(offer: RewardOffer) -> Result<&'static str, GameError> {
    match offer {
        RewardOffer::NoWindow => Err(GameError::NoRewardWindow),
        RewardOffer::SeedMismatch => Err(GameError::RewardSeedMismatch),
        RewardOffer::AlreadySubmitted => Ok("already_submitted"),
        RewardOffer::Accepted => Ok("submitted"),
    }
}

impl PuzzleService {
    /// A service over `seams`; call [`PuzzleService::initialise`] before use.
    pub fn new(config: Config, seams: Seams) -> Self {
        let limits = &config.limits;
        let limiter = SubmissionLimiter::new(limits.submit_limit, limits.submit_window);
        let address_limiter =
            SubmissionLimiter::new(limits.address_submit_limit, limits.address_submit_window);
        let verifications = Arc::new(VerificationQueue::new(
            QueueLimits::from_config(limits),
            Arc::clone(&seams.clock),
        ));
        Self {
            config,
            seams,
            metrics: Arc::new(Metrics::default()),
            connections: Arc::new(ConnectionRegistry::new()),
            limiter,
            address_limiter,
            verifications,
            announced: AtomicU64::new(0),
            announced_seed: Mutex::default(),
            outbox_ready: tokio::sync::Notify::new(),
            outbox_round: tokio::sync::Mutex::new(()),
            draining: tokio::sync::watch::Sender::new(false),
            in_flight: AtomicUsize::new(0),
        }
    }

    /// Creates the puzzle state from the configuration unless the store already holds one
    /// (another instance, or a restart on a persistent store). The difficulty average is seeded
    /// from the audit log's last ≤5 solve times (docs/protocol.md#difficulty-adjustment).
    pub async fn initialise(&self) -> Result<PuzzleState, StoreError> {
        if let Some(state) = self.seams.puzzles.load().await? {
            self.note_announced(state.version, &state.seed);
            return Ok(state);
        }
        let c = &self.config;
        let mut difficulty = DifficultyState::new(
            c.game.difficulty,
            c.game.min_difficulty,
            c.game.max_difficulty,
        );
        match self.seams.audit.recent_solve_times(5).await {
            Ok(times) => times.into_iter().for_each(|t| {
                difficulty.fold_sample(t);
            }),
            Err(e) => {
                tracing::warn!(error = %e, "could not read recent solve times from the audit log")
            }
        }
        let state = PuzzleState {
            version: 0,
            seed: puzzle::new_seed(),
            started_at: self.now(),
            difficulty,
            params: c.game.argon2,
            worker_count: c.game.worker_count,
            target_time: c.game.target_time,
            target_timeout: c.game.target_timeout,
            max_nonce_speed: c.game.max_nonce_speed,
            last_solve_time: None,
            solve_history: Vec::new(),
            solve_time_chart: Vec::new(),
            invite_key: None,
            retired_invite_keys: Vec::new(),
        };
        let state = self.seams.puzzles.init(state).await?;
        self.note_announced(state.version, &state.seed);
        Ok(state)
    }

    /// The invite gate over these codes and the redemption store.
    pub fn gate(&self) -> crate::gate::InviteGate {
        crate::gate::InviteGate::new(
            Arc::clone(&self.seams.invites),
            Arc::clone(&self.seams.redemptions),
        )
        .with_clock(Arc::clone(&self.seams.clock))
    }

    /// Adopts the invite key ring on record, if an admin rotated the key (here or on another
    /// instance sharing the store).
    async fn resync_invite_key(&self) {
        match self.seams.invite_keys.load().await {
            Ok(Some(ring)) => self.seams.invites.adopt(&ring),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "could not read the shared invite key"),
        }
    }

    /// Issues codes under the invite key an admin rotated to on any instance sharing `state`,
    /// when the key ring lives in the puzzle state.
    pub(crate) fn adopt_invite_key(&self, state: &PuzzleState) {
        if let Some(ring) = self.seams.invite_keys.ring_in(state) {
            self.seams.invites.adopt(&ring);
        }
    }

    /// The fair queue of verifications (docs/protocol.md#fair-verification).
    pub fn verification_queue(&self) -> &VerificationQueue {
        &self.verifications
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The seams.
    pub fn seams(&self) -> &Seams {
        &self.seams
    }

    /// The instance's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The instance's socket registry.
    pub fn connections(&self) -> &Arc<ConnectionRegistry> {
        &self.connections
    }

    pub(crate) fn now(&self) -> f64 {
        self.seams.clock.now()
    }

    /// The current puzzle state.
    pub async fn state(&self) -> Result<PuzzleState, GameError> {
        match self.seams.puzzles.load().await? {
            Some(state) => Ok(state),
            None => Ok(self.initialise().await?),
        }
    }

    pub(crate) async fn ensure_not_banned(&self, ip: IpAddr) -> Result<(), GameError> {
        match self.seams.bans.is_banned(ip).await {
            Ok(false) => Ok(()),
            Ok(true) => Err(GameError::Banned),
            Err(e) => {
                tracing::error!(error = %e, "ban list unavailable");
                Err(GameError::BanListUnavailable)
            }
        }
    }

    /// The session-token ladder of docs/protocol.md#session-token-check, with docs/protocol.md#client-ip: 401 missing / malformed header,
    /// 403 banned, 401 unknown, 403 bound to another IP (not revoked), 401 revoked or expired.
    pub async fn authenticate(
        &self,
        ip: IpAddr,
        authorization: Option<&[u8]>,
    ) -> Result<Session, GameError> {
        let token = session_token(authorization)?;
        self.ensure_not_banned(ip).await?;
        let invalid = || GameError::InvalidSession;
        let session = self.seams.sessions.get(token).await?.ok_or_else(invalid)?;
        if session.ip != ip {
            crate::client_log::client_warn!(token = %preview(token), %ip, bound = %session.ip, "session token used from another IP");
            return Err(GameError::BoundToAnotherIp);
        }
        if !session.is_live(self.now(), self.config.game.session_grace) {
            return Err(invalid());
        }
        Ok(session)
    }

    /// `POST /api/puzzle`: binds the session to `visitor_id` (first call) and returns the puzzle.
    pub async fn puzzle(
        &self,
        session: &Session,
        visitor_id: &str,
    ) -> Result<PuzzleAnswer, GameError> {
        let bound = self
            .seams
            .sessions
            .bind_visitor(&session.token, visitor_id)
            .await?;
        if bound.as_deref() != Some(visitor_id) {
            return Err(GameError::FingerprintMismatch);
        }
        let state = self.state().await?;
        Ok(PuzzleAnswer {
            last_solve_time: state.last_solve_time.map(|t| round_dp(t, 2)),
            average_solve_time: state.average_solve_time().map(|t| round_dp(t, 2)),
            difficulty: state.difficulty.difficulty,
            memory_cost: state.params.memory_cost,
            time_cost: state.params.time_cost,
            parallelism: state.params.parallelism,
            worker_count: state.worker_count,
            puzzle_start_time: state.started_at,
            seed: state.seed,
        })
    }

    /// Trace IP and device binding (docs/protocol.md#verify-a-solution steps 4–5).
    fn check_identity(
        &self,
        ip: IpAddr,
        session: &Session,
        solution: &Solution,
    ) -> Result<(), GameError> {
        let traced = puzzle::trace_ip(&solution.trace_data);
        if traced
            .and_then(|t| t.parse::<IpAddr>().ok())
            .map(crate::config::canonical_ip)
            != Some(ip)
        {
            return Err(GameError::TraceIpMismatch);
        }
        if session
            .visitor_id
            .as_deref()
            .is_some_and(|v| v != solution.visitor_id)
        {
            return Err(GameError::FingerprintMismatch);
        }
        Ok(())
    }

    /// The per-session, then the per-address submission limit.
    fn rate_limit(&self, ip: IpAddr, session: &Session) -> Result<(), GameError> {
        let now = self.now();
        let address = crate::config::counted_address(ip).to_string();
        self.limiter
            .allow(&session.token, now)
            .and_then(|()| self.address_limiter.allow(&address, now))
            .map_err(|retry_after| GameError::TooManySubmissions { retry_after })
    }

    /// Flags (never refuses, docs/protocol.md#difficulty-adjustment) a solution found faster than `max_nonce_speed` allows.
    async fn flag_speed(&self, state: &PuzzleState, ip: IpAddr, nonce: u64, elapsed: f64) {
        if state.max_nonce_speed > 0.0 && elapsed > 0.0 {
            let speed = nonce as f64 / elapsed;
            if speed > state.max_nonce_speed {
                crate::client_log::client_warn!(%ip, speed = round_dp(speed, 1), limit = state.max_nonce_speed, "solution faster than max_nonce_speed");
            }
        }
    }

    /// Recomputes a solution's hash under `params` and compares it in constant time.
    async fn recompute(
        &self,
        params: puzzle::Argon2Params,
        seed: &str,
        ip: IpAddr,
        solution: &Solution,
    ) -> Result<(), GameError> {
        let salt = puzzle::salt(seed, &solution.visitor_id, &ip.to_string());
        let password = puzzle::password(solution.nonce);
        let (verifier, queue, metrics) = (
            Arc::clone(&self.seams.verifier),
            Arc::clone(&self.verifications),
            Arc::clone(&self.metrics),
        );
        let submitted = solution.hash;
        // One task the client cannot cancel: a request dropped mid-hash must neither hand its
        // turn back while Argon2 still runs nor escape being flagged for a wrong hash.
        let judged = tokio::spawn(async move {
            let turn = take_turn(&queue, &metrics, ip, params).await?;
            let computed = verifier.compute(params, &password, &salt).await;
            drop(turn);
            let computed = match computed {
                Ok(c) => c,
                Err(VerifyError::Busy) => {
                    metrics.verification(Outcome::Busy);
                    return Err(GameError::Busy { retry_after: 1 });
                }
                Err(e) => return Err(GameError::VerificationFailed(e.to_string())),
            };
            metrics
                .verification_seconds
                .observe(computed.hashed_for.as_secs_f64());
            if bool::from(computed.hash.ct_eq(&submitted)) {
                Ok(())
            } else {
                metrics.verification(Outcome::Mismatch);
                queue.record_failure(ip);
                Err(GameError::HashMismatch)
            }
        });
        judged
            .await
            .unwrap_or_else(|e| Err(GameError::VerificationFailed(e.to_string())))
    }
}

/// `write` tried up to three times, 100 ms and 400 ms apart, so a store's passing hiccup does not
/// cost a win.
async fn retried<F, Fut>(mut write: F) -> Result<(), StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), StoreError>>,
{
    let mut result = write().await;
    for wait in [100, 400] {
        if result.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(wait)).await;
        result = write().await;
    }
    result
}

/// Waits for `ip`'s address's turn at the verification budget (docs/protocol.md#fair-verification).
async fn take_turn(
    queue: &VerificationQueue,
    metrics: &Metrics,
    ip: IpAddr,
    params: puzzle::Argon2Params,
) -> Result<Turn, GameError> {
    let needed_mib = params.memory_cost.div_ceil(1024).max(1);
    match queue.turn(ip, needed_mib).await {
        Ok(turn) => {
            metrics
                .verification_queue_seconds
                .observe(turn.queued_for().as_secs_f64());
            Ok(turn)
        }
        // Counted as `rejected` by `verify`, like the other refusals of a client's pace.
        Err(Refusal::AddressQueueFull { retry_after }) => {
            Err(GameError::AddressQueueFull { retry_after })
        }
        Err(Refusal::Busy { retry_after }) => {
            metrics.verification(Outcome::Busy);
            Err(GameError::Busy { retry_after })
        }
    }
}

impl PuzzleService {
    /// `POST /api/verify` after authentication and field validation.
    pub async fn verify(
        &self,
        ip: IpAddr,
        session: &Session,
        solution: &Solution,
    ) -> Result<Win, GameError> {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let _done = InFlight(&self.in_flight);
        let result = self.verify_inner(ip, session, solution).await;
        if let Err(e) = &result
            && e.kind() != GameErrorKind::Unavailable
            && *e != GameError::HashMismatch
        {
            self.metrics.verification(Outcome::Rejected);
        }
        result
    }

    async fn verify_inner(
        &self,
        ip: IpAddr,
        session: &Session,
        solution: &Solution,
    ) -> Result<Win, GameError> {
        self.check_solution(ip, session, solution).await?;
        let claim = self.claim(solution).await?;
        self.metrics.verification(Outcome::Win);
        self.metrics.solved();
        self.publish_reset(&claim.next, false).await;
        self.award(ip, solution, claim).await
    }

    /// The checks before the claim, in order: identity, the seed (still current), the leading
    /// zeros, the rate limit, the speed flag (a warning only) and the recomputed hash.
    async fn check_solution(
        &self,
        ip: IpAddr,
        session: &Session,
        solution: &Solution,
    ) -> Result<(), GameError> {
        self.check_identity(ip, session, solution)?;
        let state = self.state().await?;
        if solution.submitted_seed != state.seed {
            return Err(GameError::AlreadySolved);
        }
        let required = state.difficulty.difficulty;
        let found = leading_zero_bits(&solution.hash);
        if found < required {
            return Err(GameError::NotEnoughZeros { required, found });
        }
        self.rate_limit(ip, session)?;
        self.flag_speed(&state, ip, solution.nonce, self.now() - state.started_at)
            .await;
        self.recompute(state.params, &state.seed, ip, solution)
            .await
    }

    /// The claim: one compare-and-swap per attempt; retried only while the seed is unchanged
    /// (an unrelated settings change bumped the version).
    async fn claim(&self, solution: &Solution) -> Result<Claim, GameError> {
        loop {
            let state = self.state().await?;
            if state.seed != solution.submitted_seed {
                self.metrics.verification(Outcome::Late);
                return Err(GameError::AlreadySolved);
            }
            let now = self.now();
            let mining = self.seams.puzzles.mining_time(&state.seed, now).await?;
            let solve_time = if mining.seconds > 0.0 {
                mining.seconds
            } else {
                now - state.started_at
            }
            .max(MIN_SOLVE_TIME);
            let mut next = state.reset(puzzle::new_seed(), now);
            let adjustment = next.difficulty.adjust(solve_time, state.target_time as f64);
            next.record_solve(solve_time, now);
            if self
                .seams
                .puzzles
                .compare_and_swap(state.version, next.clone())
                .await?
            {
                return Ok(Claim {
                    solved: state,
                    next,
                    adjustment,
                    solve_time,
                });
            }
        }
    }

    /// Issues the winner's invite under the new puzzle's key and puts it on record; the code
    /// is the winner's only once it is.
    async fn award(&self, ip: IpAddr, solution: &Solution, claim: Claim) -> Result<Win, GameError> {
        let Claim {
            solved,
            next,
            adjustment,
            solve_time,
        } = claim;
        self.adopt_invite_key(&next);
        let invite = self.seams.invites.issue();
        let record = AuditRecord {
            timestamp: local_timestamp(self.now()),
            invite_code: invite.code.clone(),
            visitor_id: solution.visitor_id.clone(),
            nonce: solution.nonce,
            hash: hex::encode(solution.hash),
            seed: solved.seed.clone(),
            real_ip: ip.to_string(),
            trace_data: solution.trace_data.clone(),
            difficulty: solved.difficulty.difficulty,
            solve_time: Some(round_dp(solve_time, 2)),
            new_difficulty: next.difficulty.difficulty,
            adjustment_reason: adjustment.reason(solved.target_time as f64),
        };
        tracing::info!(%ip, visitor = %record.visitor_id, difficulty = record.difficulty, solve_time = round_dp(solve_time, 2), new_difficulty = record.new_difficulty, "puzzle solved");
        self.record_invite(&record).await?;
        Ok(Win {
            invite_code: invite.code,
            record,
        })
    }

    /// Puts an invite on record before anyone hears of it (docs/protocol.md#an-answered-win-is-on-record):
    /// its audit record and, with a webhook, its delivery in the outbox, each durable when
    /// written and tried three times over about a second. When either cannot be written the
    /// code must not be given out: the failure is counted, logged as an error, and answered
    /// with [`GameError::WinNotRecorded`].
    async fn record_invite(&self, record: &AuditRecord) -> Result<(), GameError> {
        let audit = retried(|| self.seams.audit.append(record)).await;
        let outbox = match (&audit, &self.seams.webhook) {
            (Ok(()), Some(_)) => {
                let event = WebhookEvent {
                    visitor_id: record.visitor_id.clone(),
                    invite_code: record.invite_code.clone(),
                };
                let delivery = Delivery::new(event, self.now());
                let result = retried(|| self.seams.outbox.enqueue(delivery.clone())).await;
                self.wake_outbox();
                result
            }
            _ => Ok(()),
        };
        if let Err(e) = audit.and(outbox) {
            self.metrics.unrecorded_win();
            tracing::error!(error = %e, code = %preview(&record.invite_code), "an invite could not be put on record and was not given out");
            return Err(GameError::WinNotRecorded);
        }
        Ok(())
    }

    /// Tells every socket about a new puzzle.
    pub(crate) async fn publish_reset(&self, state: &PuzzleState, is_timeout: bool) {
        self.note_announced(state.version, &state.seed);
        self.publish(self.reset_event(state, is_timeout)).await;
    }

    /// The PUZZLE_RESET of `state`.
    fn reset_event(&self, state: &PuzzleState, is_timeout: bool) -> Event {
        let message = wire::puzzle_reset(
            &state.seed,
            state.difficulty.difficulty,
            state.last_solve_time,
            state.average_solve_time(),
            state.started_at,
            is_timeout,
        );
        Event::Broadcast {
            message: message.into(),
            puzzle_version: Some(state.version),
            published_at: self.now(),
        }
    }

    /// Publishes `event`; a failed publish is retried in the background (three more tries over
    /// about two seconds), and a reset that is lost still reaches every socket through
    /// [`PuzzleService::announce_missed_reset`].
    pub(crate) async fn publish(&self, event: Event) {
        let Err(e) = self.seams.events.publish(event.clone()).await else {
            return;
        };
        tracing::warn!(error = %e, "could not publish an event; retrying");
        let events = Arc::clone(&self.seams.events);
        tokio::spawn(async move {
            for wait in [100, 400, 1600] {
                tokio::time::sleep(Duration::from_millis(wait)).await;
                match events.publish(event.clone()).await {
                    Ok(()) => return,
                    Err(e) => tracing::warn!(error = %e, "could not publish an event"),
                }
            }
            tracing::error!("an event was lost after four tries");
        });
    }

    /// Announces the shared puzzle to this instance's sockets when the state is ahead of the
    /// last reset they heard of, two checks in a row (a reset event lost on the way, or still
    /// on it at the first check); returns whether it did.
    pub(crate) async fn announce_missed_reset(&self, behind_before: &mut bool) -> bool {
        let Ok(Some(state)) = self.seams.puzzles.load().await else {
            return false;
        };
        let announced = self.announced.load(Ordering::SeqCst);
        if state.version > announced && lock(&self.announced_seed).as_str() == state.seed {
            // Updated without a new puzzle (a setting, a key rotation): nothing to announce.
            self.announced.fetch_max(state.version, Ordering::SeqCst);
            *behind_before = false;
            return false;
        }
        let behind = state.version > announced;
        if !(behind && *behind_before) {
            *behind_before = behind;
            return false;
        }
        *behind_before = false;
        tracing::warn!(
            version = state.version,
            announced,
            "a puzzle reset was missed; announcing the current puzzle"
        );
        self.note_announced(state.version, &state.seed);
        self.seams
            .events
            .publish_here(self.reset_event(&state, false));
        true
    }

    /// Records that this instance's sockets were told of puzzle `version` with `seed`.
    fn note_announced(&self, version: u64, seed: &str) {
        let mut announced_seed = lock(&self.announced_seed);
        if version >= self.announced.load(Ordering::SeqCst) {
            self.announced.store(version, Ordering::SeqCst);
            seed.clone_into(&mut announced_seed);
        }
    }

    /// `POST /api/submit`: a best hash for the timed-out puzzle, verified on arrival (docs/protocol.md#difficulty-adjustment).
    /// Returns the status text (`submitted` or `already_submitted`).
    pub async fn submit(
        &self,
        ip: IpAddr,
        session: &Session,
        solution: &Solution,
        leading_zeros: u32,
    ) -> Result<&'static str, GameError> {
        self.check_identity(ip, session, solution)?;
        if leading_zeros < 1 {
            return Err(GameError::LeadingZerosTooLow);
        }
        let ip_text = ip.to_string();
        let check = self
            .seams
            .puzzles
            .reward_offer(&solution.submitted_seed, &ip_text, None, self.now())
            .await?;
        if reward_answer(check)? == "already_submitted" {
            return Ok("already_submitted");
        }
        let found = self
            .check_reward_entry(ip, session, solution, leading_zeros)
            .await?;
        let recorded = self
            .record_reward_entry(&ip_text, session, solution, found)
            .await?;
        reward_answer(recorded)
    }

    /// The checks of a reward entry, in order: an open window, at least `leading_zeros` leading
    /// zeros, the rate limit and the hash recomputed on the window's puzzle. Returns the leading
    /// zero bits found.
    async fn check_reward_entry(
        &self,
        ip: IpAddr,
        session: &Session,
        solution: &Solution,
        leading_zeros: u32,
    ) -> Result<u32, GameError> {
        let window = self
            .seams
            .puzzles
            .reward_window()
            .await?
            .ok_or(GameError::NoRewardWindow)?;
        // Hashed under the window's seed only when it is the one submitted: an entry for an
        // older window must not count as a wrong hash against its address.
        if solution.submitted_seed != window.seed {
            return Err(GameError::RewardSeedMismatch);
        }
        let found = leading_zero_bits(&solution.hash);
        if found < leading_zeros {
            return Err(GameError::NotEnoughZeros {
                required: leading_zeros,
                found,
            });
        }
        self.rate_limit(ip, session)?;
        self.recompute(window.params, &window.seed, ip, solution)
            .await?;
        Ok(found)
    }

    /// Offers the checked entry (`found` leading zero bits) to the reward window, counting it
    /// when accepted; returns the window's answer.
    async fn record_reward_entry(
        &self,
        ip_text: &str,
        session: &Session,
        solution: &Solution,
        found: u32,
    ) -> Result<RewardOffer, GameError> {
        let entry = RewardEntry {
            visitor_id: solution.visitor_id.clone(),
            nonce: solution.nonce,
            hash: hex::encode(solution.hash),
            leading_zeros: found,
            ip: ip_text.to_string(),
            trace_data: solution.trace_data.clone(),
            session_token: session.token.clone(),
        };
        let recorded = self
            .seams
            .puzzles
            .reward_offer(&solution.submitted_seed, ip_text, Some(entry), self.now())
            .await?;
        if recorded == RewardOffer::Accepted {
            self.metrics.verification(Outcome::RewardEntry);
        }
        Ok(recorded)
    }

    /// Resets the puzzle if its mining time reached the timeout, opening a reward window for the
    /// old seed (docs/protocol.md#difficulty-adjustment). Returns whether it did.
    pub async fn check_timeout(&self) -> Result<bool, StoreError> {
        let Some(state) = self.seams.puzzles.load().await? else {
            return Ok(false);
        };
        let now = self.now();
        let mining = self.seams.puzzles.mining_time(&state.seed, now).await?;
        if mining.seconds < state.target_timeout as f64 {
            return Ok(false);
        }
        let mut next = state.reset(puzzle::new_seed(), now);
        let sample = state.target_timeout as f64;
        next.difficulty.adjust(sample, state.target_time as f64);
        next.last_solve_time = Some(sample);
        if !self
            .seams
            .puzzles
            .compare_and_swap(state.version, next.clone())
            .await?
        {
            return Ok(false);
        }
        self.metrics.timed_out();
        self.seams
            .puzzles
            .reward_open(RewardWindow {
                seed: state.seed.clone(),
                difficulty: state.difficulty.difficulty,
                params: state.params,
                new_difficulty: next.difficulty.difficulty,
                closes_at: now + self.config.game.reward_window.as_secs_f64(),
                submitted_ips: Default::default(),
                best: None,
            })
            .await?;
        tracing::info!(seed = %&state.seed[..8], mining_time = round_dp(mining.seconds, 2), new_difficulty = next.difficulty.difficulty, "puzzle timed out");
        self.publish_reset(&next, true).await;
        Ok(true)
    }

    /// Awards a closed reward window to its best verified entry. Returns the code, if any.
    pub async fn award_if_due(&self) -> Result<Option<String>, StoreError> {
        let Some(window) = self.seams.puzzles.reward_window().await? else {
            return Ok(None);
        };
        if window.closes_at > self.now() {
            return Ok(None);
        }
        let Some(window) = self.seams.puzzles.reward_take(&window.seed).await? else {
            return Ok(None);
        };
        let Some(best) = window.best else {
            return Ok(None);
        };
        if let Some(state) = self.seams.puzzles.load().await? {
            self.adopt_invite_key(&state);
        }
        let invite = self.seams.invites.issue();
        let record = AuditRecord {
            timestamp: local_timestamp(self.now()),
            invite_code: invite.code.clone(),
            visitor_id: best.visitor_id.clone(),
            nonce: best.nonce,
            hash: best.hash.clone(),
            seed: window.seed.clone(),
            real_ip: best.ip.clone(),
            trace_data: best.trace_data.clone(),
            difficulty: window.difficulty,
            solve_time: None,
            new_difficulty: window.new_difficulty,
            adjustment_reason: "timeout_reward".into(),
        };
        if self.record_invite(&record).await.is_err() {
            return Err(StoreError::Unavailable(
                "the timeout reward could not be put on record".into(),
            ));
        }
        tracing::info!(ip = %best.ip, leading_zeros = best.leading_zeros, "timeout reward awarded");
        self.publish(Event::ToSession {
            token: best.session_token.clone(),
            message: wire::timeout_invite_code(&invite.code, best.leading_zeros).into(),
        })
        .await;
        Ok(Some(invite.code))
    }

    /// Aggregates fresh hashrate reports, records a chart sample and broadcasts
    /// NETWORK_HASHRATE (every 5 s).
    pub async fn aggregate_hashrate(&self) -> Result<NetworkHashrate, StoreError> {
        let now = self.now();
        let fresh = self
            .seams
            .hashrate
            .fresh(now, self.config.game.hashrate_stale)
            .await?;
        let network = hashrate::network_hashrate(&fresh);
        self.seams
            .hashrate
            .push_chart(ChartPoint {
                timestamp: now,
                value: round_dp(network.total_hashrate, 2),
            })
            .await?;
        self.publish(Event::Broadcast {
            message: wire::network_hashrate(network.total_hashrate, network.active_miners, now)
                .into(),
            puzzle_version: None,
            published_at: now,
        })
        .await;
        Ok(network)
    }

    /// Wakes this instance's outbox worker: a delivery is due now.
    pub(crate) fn wake_outbox(&self) {
        self.outbox_ready.notify_one();
    }

    /// Whether a graceful shutdown has begun ([`PuzzleService::shutdown`]).
    pub fn is_draining(&self) -> bool {
        *self.draining.borrow()
    }

    /// Watches for the graceful shutdown: true once it began.
    pub(crate) fn draining(&self) -> tokio::sync::watch::Receiver<bool> {
        self.draining.subscribe()
    }

    /// Shuts this instance down gracefully (docs/protocol.md#graceful-shutdown): refuses new
    /// sockets, closes the open ones with 1001 (their pages reconnect, behind a balancer to
    /// another instance) and waits until their clean-up ran (each session's grace starts),
    /// waits for the verifications in flight (a win is answered and on record) and for the
    /// outbox worker's round under way (a delivery's attempt and its record finish; no other
    /// round starts), then leaves the deployment's instance registry. All of it within
    /// `deadline` (leaving the registry gets at most a second more); the outbox keeps what is
    /// not yet delivered for the next instance. Returns whether everything finished in time.
    pub async fn shutdown(&self, deadline: Duration) -> bool {
        let until = tokio::time::Instant::now() + deadline;
        // Draining first, then the event: a socket subscribed too late for the event finds the
        // flag set when it starts serving.
        self.draining.send_replace(true);
        tracing::info!(
            sockets = self.connections.players(),
            "shutting down: closing the sockets"
        );
        self.seams.events.publish_here(Event::CloseAll {
            code: wire::CLOSE_GOING_AWAY,
            reason: wire::SHUTTING_DOWN.into(),
        });
        let sockets_closed = Self::wait_until(until, || {
            self.connections.players() == 0 && self.connections.admins() == 0
        })
        .await;
        let verified = Self::wait_until(until, || self.in_flight.load(Ordering::SeqCst) == 0).await;
        let outbox_settled = tokio::time::timeout_at(until, self.outbox_round.lock())
            .await
            .is_ok();
        // Leaving is worth a moment past the deadline (the others then see the sockets go at
        // once, not after the lease): at most a second, even when the store does not answer.
        let left = tokio::time::timeout_at(
            until.max(tokio::time::Instant::now()) + Duration::from_secs(1),
            self.seams.instances.leave(),
        )
        .await;
        match left {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "could not leave the instance registry"),
            Err(_) => tracing::warn!("the instance registry did not answer in time to leave it"),
        }
        let finished = sockets_closed && verified && outbox_settled;
        if !finished {
            tracing::warn!(
                sockets_closed,
                verified,
                outbox_settled,
                "shutdown did not finish in time"
            );
        }
        finished
    }

    /// Polls `done` every 20 ms until `until`; whether it came true.
    async fn wait_until(until: tokio::time::Instant, done: impl Fn() -> bool) -> bool {
        while !done() {
            if tokio::time::Instant::now() >= until {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }

    /// Treats the sockets of every instance whose liveness lease lapsed as closed at the lapse
    /// (docs/protocol.md#instance-liveness): their sessions' grace starts then, their mining
    /// and hashrate stop counting. Returns how many sockets it closed so (every 5 s, on the
    /// instance holding the jobs lease).
    pub async fn reap_lapsed_instances(&self) -> Result<usize, StoreError> {
        let mut closed = 0;
        for instance in self.seams.instances.take_lapsed(self.now()).await? {
            tracing::warn!(instance = %instance.id, sockets = instance.sockets.len(), "an instance's liveness lease lapsed; its sockets count as closed");
            for (connection, token) in &instance.sockets {
                self.forget_socket(*connection, token, instance.lapsed_at)
                    .await;
                closed += 1;
            }
        }
        Ok(closed)
    }

    /// Deletes dead sessions (every 60 s, on the instance holding the jobs lease).
    pub async fn cleanup(&self) -> Result<usize, StoreError> {
        let now = self.now();
        self.seams
            .sessions
            .cleanup(now, self.config.game.session_grace)
            .await
    }

    /// Runs the periodic jobs until the returned handle is dropped or aborted: timeout check and
    /// reward award every second, hashrate every 5 s, cleanup every 60 s — each tick only while
    /// this instance holds the jobs lease.
    pub fn spawn_jobs(self: &Arc<Self>) -> BackgroundJobs {
        let tasks = vec![
            self.spawn_leased(Duration::from_secs(1), |s| {
                Box::pin(async move {
                    if let Err(e) = s.check_timeout().await {
                        tracing::error!(error = %e, "timeout check failed");
                    }
                    if let Err(e) = s.award_if_due().await {
                        tracing::error!(error = %e, "timeout award failed");
                    }
                })
            }),
            self.spawn_leased(Duration::from_secs(5), |s| {
                Box::pin(async move {
                    if let Err(e) = s.aggregate_hashrate().await {
                        tracing::error!(error = %e, "hashrate aggregation failed");
                    }
                    if let Err(e) = s.reap_lapsed_instances().await {
                        tracing::error!(error = %e, "could not check the instances' leases");
                    }
                })
            }),
            self.spawn_leased(Duration::from_secs(60), |s| {
                Box::pin(async move {
                    match s.cleanup().await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(removed = n, "expired sessions removed"),
                        Err(e) => tracing::error!(error = %e, "session cleanup failed"),
                    }
                })
            }),
            self.spawn_bookkeeping(),
            self.spawn_heartbeat(),
            self.spawn_outbox_worker(),
            self.spawn_key_listener(),
            self.spawn_reset_watch(),
        ];
        BackgroundJobs { tasks }
    }

    /// Runs `job` every `period` while this instance holds the jobs lease (with several
    /// instances, exactly one runs it).
    fn spawn_leased(
        self: &Arc<Self>,
        period: Duration,
        job: fn(Arc<Self>) -> futures_util::future::BoxFuture<'static, ()>,
    ) -> tokio::task::JoinHandle<()> {
        let service = Arc::clone(self);
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(period);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                match service.seams.lease.hold().await {
                    Ok(true) => job(Arc::clone(&service)).await,
                    Ok(false) => {}
                    Err(e) => tracing::warn!(error = %e, "could not renew the jobs lease"),
                }
            }
        })
    }

    /// This instance's own bookkeeping, lease or not, every minute: the submit limiter's
    /// clean-up, and the invite key an admin rotated to on any instance (in case its event was
    /// lost).
    fn spawn_bookkeeping(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let local = Arc::clone(self);
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(Duration::from_secs(60));
            loop {
                interval.tick().await;
                local.limiter.forget_idle(local.now());
                local.address_limiter.forget_idle(local.now());
                local.resync_invite_key().await;
            }
        })
    }

    /// Renews this instance's liveness lease every [`crate::instances::HEARTBEAT_PERIOD`]. When
    /// the registry had lost the instance after its first renewal (its lease lapsed: a pause,
    /// a partition), the other instances took its sockets as closed, so it closes them with
    /// 1001 and their pages reconnect and re-register.
    fn spawn_heartbeat(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let service = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(crate::instances::HEARTBEAT_PERIOD);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut known = false;
            loop {
                tick.tick().await;
                match service.seams.instances.heartbeat().await {
                    Ok(unknown) => {
                        if unknown && known {
                            tracing::warn!(
                                "this instance's liveness lease had lapsed; closing its sockets so they reconnect"
                            );
                            service.seams.events.publish_here(Event::CloseAll {
                                code: wire::CLOSE_GOING_AWAY,
                                reason: wire::RECONNECT.into(),
                            });
                        }
                        known = true;
                    }
                    Err(e) => tracing::warn!(error = %e, "could not renew the liveness lease"),
                }
            }
        })
    }

    /// Delivers the outbox's due deliveries: at once when one is recorded here, and every second
    /// (a retry come due, or one recorded on another instance). Every instance runs it; a
    /// shared outbox hands each delivery to one taker at a time.
    fn spawn_outbox_worker(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let worker = Arc::clone(self);
        tokio::spawn(async move {
            let Some(sink) = worker.seams.webhook.clone() else {
                return;
            };
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    () = worker.outbox_ready.notified() => {}
                }
                let _round = worker.outbox_round.lock().await;
                if *worker.draining.borrow() {
                    // What is left stays in the outbox for the next instance.
                    break;
                }
                let outbox = &*worker.seams.outbox;
                let config = &worker.config.webhook;
                match crate::outbox::deliver_due(outbox, &*sink, config, worker.now()).await {
                    Ok(round) => worker.metrics.webhook_round(round),
                    Err(e) => tracing::warn!(error = %e, "could not read the webhook outbox"),
                }
            }
        })
    }

    /// Follows the resets this instance's sockets hear of, and twice a second checks the shared
    /// state for one they missed (docs/protocol.md#reset-recovery).
    fn spawn_reset_watch(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let watcher = Arc::clone(self);
        let mut events = self.seams.events.subscribe();
        tokio::spawn(async move {
            use tokio::sync::broadcast::error::RecvError;
            let mut check = tokio::time::interval(Duration::from_millis(500));
            check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut behind_before = false;
            loop {
                tokio::select! {
                    event = events.recv() => match event {
                        Ok(Event::Broadcast { puzzle_version: Some(version), message, .. }) => {
                            if let Ok(reset) = serde_json::from_str::<ResetSeed>(&message) {
                                watcher.note_announced(version, &reset.seed);
                            }
                        }
                        Ok(_) | Err(RecvError::Lagged(_)) => {}
                        Err(RecvError::Closed) => break,
                    },
                    _ = check.tick() => {
                        watcher.announce_missed_reset(&mut behind_before).await;
                    }
                }
            }
        })
    }

    /// Adopts a rotated invite key as soon as its event arrives (or events were lost).
    fn spawn_key_listener(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let listener = Arc::clone(self);
        let mut events = self.seams.events.subscribe();
        tokio::spawn(async move {
            use tokio::sync::broadcast::error::RecvError;
            loop {
                match events.recv().await {
                    Ok(Event::InviteKeyRotated) | Err(RecvError::Lagged(_)) => {
                        listener.resync_invite_key().await;
                    }
                    Ok(_) => {}
                    Err(RecvError::Closed) => break,
                }
            }
        })
    }

    /// Admits a player socket (docs/protocol.md#player-socket-admission with docs/protocol.md#client-ip/docs/protocol.md#captcha): refusals are errors to answer with HTTP 403
    /// before the upgrade. `user_agent_ok` is the UA filter's verdict.
    pub async fn admit_player(
        &self,
        ip: IpAddr,
        token: Option<&str>,
        user_agent_ok: bool,
    ) -> Result<PlayerAdmission, GameError> {
        if *self.draining.borrow() {
            return Err(GameError::ShuttingDown);
        }
        if !user_agent_ok {
            return Err(GameError::UserAgentRefused);
        }
        let token = token
            .filter(|t| !t.is_empty())
            .ok_or(GameError::MissingQueryToken)?;
        self.ensure_not_banned(ip).await?;
        if let Some(session) = self.seams.sessions.get(token).await?
            && session.is_live(self.now(), self.config.game.session_grace)
        {
            if session.ip != ip {
                return Err(GameError::BoundToAnotherIp);
            }
            return Ok(PlayerAdmission {
                ip,
                connection: new_connection_id(),
                reconnect_token: Some(session.token),
                slot: self.connections.reserve_unlimited(ip),
            });
        }
        let slot = self
            .connections
            .reserve(ip, self.config.limits.max_connections_per_ip)
            .ok_or(GameError::DuplicateConnection)?;
        if let Err(e) = self.seams.captcha.verify(token, ip).await {
            crate::client_log::client_warn!(%ip, error = %e, "captcha refused");
            return Err(GameError::CaptchaRefused(e.to_string()));
        }
        Ok(PlayerAdmission {
            ip,
            connection: new_connection_id(),
            reconnect_token: None,
            slot,
        })
    }

    /// A player's socket joined (docs/protocol.md#player-socket-admission): a reconnect takes
    /// over its session, and the socket it replaces is closed with 1008; a new player gets a
    /// session. Returns the token, and for a new player the SESSION_TOKEN greeting to send.
    pub(crate) async fn player_joined(
        &self,
        ip: IpAddr,
        connection: ConnectionId,
        reconnect_token: Option<String>,
    ) -> Result<(String, Option<String>), StoreError> {
        let sessions = &self.seams.sessions;
        let Some(token) = reconnect_token else {
            let token = new_session_token();
            sessions
                .insert(Session::new(token.clone(), ip, self.now(), connection))
                .await?;
            self.seams
                .instances
                .socket_opened(connection, &token)
                .await?;
            crate::client_log::client_info!(%ip, token = %preview(&token), "player connected");
            self.enforce_session_budget(ip).await?;
            let greeting = wire::session_token(&token);
            return Ok((token, Some(greeting)));
        };
        self.seams
            .instances
            .socket_opened(connection, &token)
            .await?;
        if let Some(previous) = sessions.attach(&token, connection).await? {
            self.publish(Event::CloseConnection {
                connection: previous,
                code: wire::CLOSE_POLICY,
                reason: "Replaced by new connection".into(),
            })
            .await;
        }
        crate::client_log::client_info!(%ip, token = %preview(&token), "player reconnected");
        Ok((token, None))
    }

    /// Keeps at most `sessions_per_address` live sessions for `ip`'s address: beyond it, the
    /// disconnected ones go first, oldest first, then the oldest connected ones, whose sockets
    /// are closed (docs/protocol.md#session-budget). So a miner who stays connected outlives
    /// sessions opened and left behind on the same address.
    async fn enforce_session_budget(&self, ip: IpAddr) -> Result<(), StoreError> {
        let limit = self.config.limits.sessions_per_address;
        if limit == 0 {
            return Ok(());
        }
        let (now, grace) = (self.now(), self.config.game.session_grace);
        let address = crate::config::counted_address(ip);
        let mut live: Vec<Session> = self
            .seams
            .sessions
            .of_address(address)
            .await?
            .into_iter()
            .filter(|s| s.is_live(now, grace))
            .collect();
        if live.len() <= limit {
            return Ok(());
        }
        live.sort_by(|a, b| {
            let connected = a.connection.is_some().cmp(&b.connection.is_some());
            connected.then(a.created_at.total_cmp(&b.created_at))
        });
        for surplus in &live[..live.len() - limit] {
            let Some(revoked) = self.seams.sessions.revoke(&surplus.token).await? else {
                continue;
            };
            crate::client_log::client_info!(%address, token = %preview(&revoked.token), "session revoked: too many sessions from one address");
            if let Some(connection) = revoked.connection {
                self.publish(Event::CloseConnection {
                    connection,
                    code: wire::CLOSE_POLICY,
                    reason: wire::TOO_MANY_SESSIONS.into(),
                })
                .await;
            }
        }
        Ok(())
    }

    /// The player started mining the current puzzle: its mining time counts from now. (A socket
    /// writes its declarations at most once a second: docs/protocol.md#message-rate.)
    pub(crate) async fn mining_started(&self, connection: ConnectionId) {
        let result = match self.seams.puzzles.load().await {
            Ok(Some(state)) => {
                self.seams
                    .puzzles
                    .mining_start(&state.seed, connection, self.now())
                    .await
            }
            Ok(None) => Ok(()),
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "could not record mining_start");
        }
    }

    /// The player stopped mining.
    pub(crate) async fn mining_stopped(&self, connection: ConnectionId) {
        if let Err(e) = self.seams.puzzles.mining_stop(connection, self.now()).await {
            tracing::warn!(error = %e, "could not record mining_stop");
        }
    }

    /// A player's hashrate report: above the puzzle's plausible ceiling it is cut to it, and it
    /// is flagged as overspeed when cut or at or above the speed limit (flagged only, never
    /// refused: docs/protocol.md#speed-limit, docs/protocol.md#plausible-hashrate).
    pub(crate) async fn hashrate_reported(&self, connection: ConnectionId, ip: IpAddr, rate: f64) {
        let (params, limit) = match self.seams.puzzles.load().await {
            Ok(Some(state)) => (state.params, state.max_nonce_speed),
            _ => (self.config.game.argon2, 0.0),
        };
        let (rate, overspeed) = hashrate::judge_rate(rate, params, limit);
        let now = self.now();
        if let Err(e) = self
            .seams
            .hashrate
            .report(connection, ip, rate, overspeed, now)
            .await
        {
            tracing::warn!(error = %e, "could not record a hashrate report");
        }
    }

    /// The player's socket closed (docs/protocol.md#close-codes): its hashrate and mining are
    /// forgotten and its session marked disconnected (usable again within the grace period).
    pub(crate) async fn player_left(&self, connection: ConnectionId, token: &str) {
        if let Err(e) = self.seams.instances.socket_closed(connection).await {
            tracing::warn!(error = %e, "could not unregister a socket");
        }
        self.forget_socket(connection, token, self.now()).await;
    }

    /// A socket closed at `at`: its hashrate and mining are forgotten and its session marked
    /// disconnected from then.
    async fn forget_socket(&self, connection: ConnectionId, token: &str, at: f64) {
        let seams = &self.seams;
        if let Err(e) = seams.hashrate.remove(connection).await {
            tracing::warn!(error = %e, "could not remove a hashrate entry");
        }
        if let Err(e) = seams.puzzles.mining_stop(connection, at).await {
            tracing::warn!(error = %e, "could not stop mining accounting");
        }
        if let Err(e) = seams.sessions.detach(token, connection, at).await {
            tracing::warn!(error = %e, "could not mark a session disconnected");
        }
    }
}

/// The periodic jobs of one instance; dropping the handle stops them.
#[derive(Debug)]
#[must_use = "the periodic jobs stop when this handle is dropped"]
pub struct BackgroundJobs {
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for BackgroundJobs {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}
