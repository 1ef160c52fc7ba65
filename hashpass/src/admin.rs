//! The admin side (docs/protocol.md#admin-api): authentication with lockout, the status snapshot and
//! every operation. Parameter changes validate the whole body first and change nothing on error
//! (422), then apply in one compare-and-swap of the puzzle state.
//!
//! Nothing here speaks HTTP: each operation returns a typed answer (serialised as the admin
//! API's JSON) or an [`AdminError`]; `crate::api` maps both onto the wire.

use std::net::IpAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::applog::{AppLogPage, AppLogQuery, AppLogReader};
use crate::audit::{LogQuery, LogStats, LoggedRecord};
use crate::config::{Secret, counted_address};
use crate::difficulty::DifficultyState;
use crate::error::StoreError;
use crate::events::Event;
use crate::gate::InviteRejection;
use crate::hashrate::{self, NetworkHashrate};
use crate::invite::{InviteKey, InviteKeyError, code_id};
pub use crate::lockout::{AdminLockout, Attempt, MemoryAdminLockout};
use crate::metrics::Gauges;
use crate::puzzle::{self, Argon2Params};
use crate::puzzle_store::{ChartPoint, MiningTime, PuzzleState};
use crate::redemption::{CodeState, CodeStatus};
use crate::service::{GameError, PuzzleService};
use crate::session::Credential;
use crate::session::preview;
use crate::util::round_dp;

/// Why an admin request or operation was refused. [`AdminError::kind`] classifies it and
/// [`AdminError::detail`] says it for a person; `crate::api` alone turns it into an HTTP answer.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// No admin token is configured, so the admin API is closed.
    #[error("ADMIN_TOKEN not configured")]
    TokenNotConfigured,
    /// The request offered no token.
    #[error("Missing Authorization header")]
    MissingCredential,
    /// The request offered something that is not a bearer token.
    #[error("Invalid Authorization format (expected 'Bearer <token>')")]
    MalformedCredential,
    /// The wrong token (counted towards the lockout).
    #[error("Invalid admin token")]
    InvalidToken,
    /// This IP is locked out for this many more seconds.
    #[error("Too many failed attempts. Try again in {0}s.")]
    LockedOut(u64),
    /// This failure locked the IP out, for this many seconds.
    #[error("Too many failed attempts. Locked out for {0}s.")]
    LockedOutNow(u64),
    /// A parameter out of range or inconsistent with the state; nothing changed.
    #[error("{0}")]
    Invalid(String),
    /// The given HMAC secret is not a usable key.
    #[error("{0}")]
    BadHmacSecret(#[source] InviteKeyError),
    /// The invite code has no use left to withdraw.
    #[error("This invite code is already used up or withdrawn")]
    NothingToWithdraw,
    /// The change would be kept in memory only and undone by a restart: no durable store backs
    /// it, and the host did not opt in to volatile admin state.
    #[error("{}", .0.refusal())]
    NotDurable(VolatileStore),
    /// The invite gate refused the code (its own answer, with a machine-readable code).
    #[error(transparent)]
    Invite(#[from] InviteRejection),
    /// The redemption store is unreachable.
    #[error("The redemption store is unavailable: try again in a moment")]
    Redemptions(#[source] StoreError),
    /// The audit log cannot be read.
    #[error("Could not read the audit log")]
    AuditLog(#[source] StoreError),
    /// The application log cannot be read.
    #[error("Could not read the application log")]
    AppLog(#[source] std::io::Error),
    /// The ban list cannot be changed or read.
    #[error("Could not update the ban list")]
    BanList(#[source] StoreError),
    /// The ban list cannot be counted (for the status snapshot).
    #[error("Service temporarily unavailable, retry")]
    BanCount(#[source] StoreError),
    /// A shared-state backend failed.
    #[error("Service temporarily unavailable, retry")]
    Store(#[source] StoreError),
    /// The game refused, with its own answer (carried through unchanged).
    #[error(transparent)]
    Game(#[from] GameError),
}

/// What kind of refusal an [`AdminError`] is, whatever protocol answers it.
#[derive(Debug, Clone, Copy)]
pub enum AdminErrorKind<'a> {
    /// No usable credential: no admin token configured, none offered, or not in the expected form.
    Unauthenticated,
    /// The wrong admin token.
    Forbidden,
    /// Too many wrong tokens from this IP.
    LockedOut,
    /// A malformed value (an HMAC secret that is not a key).
    Malformed,
    /// A value out of range or inconsistent with the state.
    Invalid,
    /// The operation conflicts with the current state.
    Conflict,
    /// No durable store backs the change (the instance's configuration, not the request).
    NotDurable,
    /// A backend is down: retry later.
    Unavailable,
    /// A refusal of the invite gate, which knows its own answer.
    Invite(&'a InviteRejection),
    /// A refusal of the game, which knows its own kind.
    Game(&'a GameError),
}

impl AdminError {
    /// The kind of refusal.
    pub fn kind(&self) -> AdminErrorKind<'_> {
        match self {
            Self::TokenNotConfigured | Self::MissingCredential | Self::MalformedCredential => {
                AdminErrorKind::Unauthenticated
            }
            Self::InvalidToken => AdminErrorKind::Forbidden,
            Self::LockedOut(_) | Self::LockedOutNow(_) => AdminErrorKind::LockedOut,
            Self::Invalid(_) => AdminErrorKind::Invalid,
            Self::BadHmacSecret(_) => AdminErrorKind::Malformed,
            Self::NothingToWithdraw => AdminErrorKind::Conflict,
            Self::NotDurable(_) => AdminErrorKind::NotDurable,
            Self::Redemptions(_)
            | Self::AuditLog(_)
            | Self::AppLog(_)
            | Self::BanList(_)
            | Self::BanCount(_)
            | Self::Store(_) => AdminErrorKind::Unavailable,
            Self::Invite(rejection) => AdminErrorKind::Invite(rejection),
            Self::Game(error) => AdminErrorKind::Game(error),
        }
    }

    /// The message for a person (the `detail` of an HTTP answer).
    pub fn detail(&self) -> String {
        self.to_string()
    }

    /// Seconds after which the same request may succeed, for a lockout or a backend outage.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Self::LockedOut(seconds) | Self::LockedOutNow(seconds) => Some((*seconds).max(1)),
            Self::Redemptions(_)
            | Self::AuditLog(_)
            | Self::AppLog(_)
            | Self::BanList(_)
            | Self::BanCount(_)
            | Self::Store(_) => Some(1),
            Self::Game(error) => error.retry_after(),
            _ => None,
        }
    }
}

/// A store an admin change would be kept in only in memory (see [`AdminError::NotDurable`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VolatileStore {
    /// The invite key ring (a rotation).
    InviteKeys,
    /// The redemption store (a withdrawal or a change of a code's uses).
    Redemptions,
}

impl VolatileStore {
    /// Why the change is refused and what to configure.
    pub fn refusal(self) -> &'static str {
        match self {
            Self::InviteKeys => {
                "Not rotated: this instance keeps its invite keys in memory only, so a restart would bring the old key back. Build it with a data directory (HashPassBuilder::on_disk) or Redis (HashPassBuilder::redis); for tests and demos, HashPassBuilder::volatile_admin_state allows it."
            }
            Self::Redemptions => {
                "Not changed: this instance keeps redemptions in memory only, so a restart would undo the change. Build it with a data directory (HashPassBuilder::on_disk), Redis (HashPassBuilder::redis) or a SQL redemption store (HashPassBuilder::redemption_store); for tests and demos, HashPassBuilder::volatile_admin_state allows it."
            }
        }
    }
}

impl From<StoreError> for AdminError {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

/// Admin operations over a [`PuzzleService`].
pub struct AdminService {
    service: Arc<PuzzleService>,
    lockout: Arc<dyn AdminLockout>,
    applogs: AppLogReader,
    /// Whether changes may be kept in stores that do not outlive a restart.
    volatile_state: bool,
}

impl std::fmt::Debug for AdminService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminService").finish_non_exhaustive()
    }
}

impl AdminService {
    /// Admin operations over `service`, with lockout counters in `lockout`.
    pub fn new(service: Arc<PuzzleService>, lockout: Arc<dyn AdminLockout>) -> Self {
        let applogs = AppLogReader::new(service.config.admin.log_dir.clone());
        Self {
            service,
            lockout,
            applogs,
            volatile_state: false,
        }
    }

    /// Lets key rotations, withdrawals and changes of a code's uses be kept in stores that do
    /// not outlive a restart (tests and demos; see [`crate::HashPassBuilder::volatile_admin_state`]).
    pub fn allowing_volatile_state(mut self) -> Self {
        self.volatile_state = true;
        self
    }

    /// Refuses a change to `store` unless it is `durable` or volatile state is allowed.
    fn require_durable(&self, durable: bool, store: VolatileStore) -> Result<(), AdminError> {
        if durable || self.volatile_state {
            Ok(())
        } else {
            Err(AdminError::NotDurable(store))
        }
    }

    fn admin_token(&self) -> Result<&str, AdminError> {
        self.service
            .config
            .admin
            .token
            .as_ref()
            .map(Secret::expose)
            .ok_or(AdminError::TokenNotConfigured)
    }

    async fn refuse_if_locked(&self, ip: IpAddr) -> Result<(), AdminError> {
        if let Some(left) = self
            .lockout
            .locked_for(counted_address(ip), self.service.now())
            .await?
        {
            return Err(AdminError::LockedOut(left.ceil() as u64));
        }
        Ok(())
    }

    /// Compares a token, the attempt counted first (docs/protocol.md#admin-api): however many
    /// wrong tokens arrive at once, at most `max_failures` in a row are compared.
    async fn check_token(
        &self,
        ip: IpAddr,
        expected: &str,
        given: &[u8],
    ) -> Result<(), AdminError> {
        let c = &self.service.config;
        let address = counted_address(ip);
        let attempt = self
            .lockout
            .attempt(
                address,
                self.service.now(),
                c.admin.max_failures,
                c.admin.lockout,
            )
            .await?;
        let last = match attempt {
            Attempt::LockedOut(left) => return Err(AdminError::LockedOut(left.ceil() as u64)),
            Attempt::Compare { last } => last,
        };
        if bool::from(given.ct_eq(expected.as_bytes())) {
            self.lockout.clear(address).await?;
            return Ok(());
        }
        if last {
            crate::client_log::client_warn!(%ip, "admin locked out after repeated failures");
            return Err(AdminError::LockedOutNow(c.admin.lockout.as_secs()));
        }
        crate::client_log::client_warn!(%ip, "invalid admin token");
        Err(AdminError::InvalidToken)
    }

    /// The admin ladder: no token configured, locked out, no credential, a malformed one,
    /// the wrong token (counted; the 10th in a row locks out). Any token bytes work.
    pub async fn authenticate(
        &self,
        ip: IpAddr,
        credential: impl Into<Credential<'_>>,
    ) -> Result<(), AdminError> {
        let credential = credential.into();
        let expected = self.admin_token()?;
        self.refuse_if_locked(ip).await?;
        match credential {
            Credential::Missing => Err(AdminError::MissingCredential),
            Credential::Malformed => Err(AdminError::MalformedCredential),
            Credential::Token(token) => self.check_token(ip, expected, token).await,
        }
    }

    /// The admin WebSocket's check (docs/protocol.md#admin-api: counted like HTTP). Any refusal
    /// is [`AdminError::InvalidToken`] except the lockouts.
    pub async fn authenticate_socket(
        &self,
        ip: IpAddr,
        token: Option<&str>,
    ) -> Result<(), AdminError> {
        let expected = self.admin_token().map_err(|_| AdminError::InvalidToken)?;
        self.refuse_if_locked(ip).await?;
        let token = token.ok_or(AdminError::InvalidToken)?;
        self.check_token(ip, expected, token.as_bytes()).await
    }
}

/// The status snapshot of docs/protocol.md#admin-api (`GET /api/admin/status`, and every
/// STATUS_UPDATE of the admin socket).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AdminStatus {
    /// Current difficulty (leading zero bits).
    pub difficulty: u32,
    /// The controller's fractional difficulty (3 dp).
    pub difficulty_float: f64,
    /// Lower bound.
    pub min_difficulty: u32,
    /// Upper bound.
    pub max_difficulty: u32,
    /// Desired solve time (s).
    pub target_time: u64,
    /// Timeout (s).
    pub target_timeout: u64,
    /// Smoothed solve time (2 dp), if any.
    pub ema_solve_time: Option<f64>,
    /// The current seed.
    pub current_seed: String,
    /// When the current puzzle started (Unix seconds).
    pub puzzle_start_time: f64,
    /// Mining time spent on this puzzle (s, 2 dp).
    pub mining_time: f64,
    /// Whether anyone declares mining.
    pub is_mining_active: bool,
    /// The last solve (or timeout) time (2 dp).
    pub last_solve_time: Option<f64>,
    /// The last real solve times (2 dp).
    pub solve_history: Vec<f64>,
    /// Their mean (2 dp).
    pub average_solve_time: Option<f64>,
    /// Miners with a fresh hashrate.
    pub active_miners: usize,
    /// Player sockets on this instance.
    pub active_connections: usize,
    /// Sessions.
    pub session_count: usize,
    /// Argon2 time cost.
    pub argon2_time_cost: u32,
    /// Argon2 memory cost (KiB).
    pub argon2_memory_cost: u32,
    /// Argon2 lanes.
    pub argon2_parallelism: u32,
    /// Browser workers per client.
    pub worker_count: u32,
    /// Speed limit (H/s, 0 = off).
    pub max_nonce_speed: f64,
    /// Banned IPs.
    pub banned_ips_count: usize,
    /// The network hashrate over time.
    pub hashrate_chart_history: Vec<HashratePoint>,
    /// Solve times over time.
    pub solve_time_chart_history: Vec<SolveTimePoint>,
    /// The webhook's outbox.
    pub webhook: WebhookStatus,
    /// Wins this instance could not put on record (no code given out) since it started.
    pub wins_not_recorded: u64,
}

/// The webhook outbox in the status snapshot (docs/protocol.md#webhook-outbox).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WebhookStatus {
    /// Whether a webhook is configured.
    pub configured: bool,
    /// Deliveries waiting.
    pub pending: usize,
    /// Deliveries given up.
    pub failed: usize,
    /// When the oldest waiting delivery was recorded (Unix seconds).
    pub oldest_pending_at: Option<f64>,
}

/// One point of the hashrate chart.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HashratePoint {
    /// When (Unix seconds).
    pub timestamp: f64,
    /// Network hashrate (H/s).
    pub hashrate: f64,
}

/// One point of the solve-time chart.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SolveTimePoint {
    /// When (Unix seconds).
    pub timestamp: f64,
    /// Solve time (s, 2 dp).
    pub solve_time: f64,
}

/// Rounds an optional time to 2 dp.
fn round_time(t: Option<f64>) -> Option<f64> {
    t.map(|t| round_dp(t, 2))
}

/// What one status snapshot reads from the stores.
struct StatusReadings {
    state: PuzzleState,
    mining: MiningTime,
    network: NetworkHashrate,
    session_count: usize,
    banned: usize,
    chart: Vec<ChartPoint>,
    webhook: WebhookStatus,
    wins_not_recorded: u64,
}

impl StatusReadings {
    /// The snapshot, with `active_connections` player sockets on this instance.
    fn into_status(self, active_connections: usize) -> AdminStatus {
        let Self {
            state,
            mining,
            network,
            session_count,
            banned,
            chart,
            webhook,
            wins_not_recorded,
        } = self;
        let d = &state.difficulty;
        AdminStatus {
            difficulty: d.difficulty,
            difficulty_float: round_dp(d.difficulty_float, 3),
            min_difficulty: d.min_difficulty,
            max_difficulty: d.max_difficulty,
            target_time: state.target_time,
            target_timeout: state.target_timeout,
            ema_solve_time: round_time(d.ema_solve_time),
            current_seed: state.seed.clone(),
            puzzle_start_time: state.started_at,
            mining_time: round_dp(mining.seconds, 2),
            is_mining_active: mining.active_miners > 0,
            last_solve_time: round_time(state.last_solve_time),
            solve_history: state
                .solve_history
                .iter()
                .map(|t| round_dp(*t, 2))
                .collect(),
            average_solve_time: round_time(state.average_solve_time()),
            active_miners: network.active_miners,
            active_connections,
            session_count,
            argon2_time_cost: state.params.time_cost,
            argon2_memory_cost: state.params.memory_cost,
            argon2_parallelism: state.params.parallelism,
            worker_count: state.worker_count,
            max_nonce_speed: state.max_nonce_speed,
            banned_ips_count: banned,
            hashrate_chart_history: chart
                .iter()
                .map(|p| HashratePoint {
                    timestamp: p.timestamp,
                    hashrate: p.value,
                })
                .collect(),
            solve_time_chart_history: state
                .solve_time_chart
                .iter()
                .map(|p| SolveTimePoint {
                    timestamp: p.timestamp,
                    solve_time: round_dp(p.value, 2),
                })
                .collect(),
            webhook,
            wins_not_recorded,
        }
    }
}

impl AdminService {
    /// The status snapshot of docs/protocol.md#admin-api (`GET /api/admin/status`).
    pub async fn status(&self) -> Result<AdminStatus, AdminError> {
        Ok(self.status_with_hashrate().await?.0)
    }

    /// The status snapshot and the network hashrate (every STATUS_UPDATE carries both).
    pub async fn status_with_hashrate(&self) -> Result<(AdminStatus, f64), AdminError> {
        let readings = self.status_readings().await?;
        let total_hashrate = readings.network.total_hashrate;
        let status = readings.into_status(self.service.connections.players());
        Ok((status, total_hashrate))
    }

    /// Reads what the status snapshot shows: the puzzle state, its mining time, the fresh
    /// miners, the session and ban counts, then the hashrate chart.
    async fn status_readings(&self) -> Result<StatusReadings, AdminError> {
        let s = &self.service;
        let state = s.state().await?;
        let now = s.now();
        let mining = s.seams.puzzles.mining_time(&state.seed, now).await?;
        let fresh = s
            .seams
            .hashrate
            .fresh(now, s.config.game.hashrate_stale)
            .await?;
        let network = hashrate::network_hashrate(&fresh);
        let session_count = s.seams.sessions.count().await?;
        let banned = s.seams.bans.count().await.map_err(AdminError::BanCount)?;
        let chart = s.seams.hashrate.chart().await?;
        let outbox = s.seams.outbox.summary(0).await?;
        Ok(StatusReadings {
            state,
            mining,
            network,
            session_count,
            banned,
            chart,
            webhook: WebhookStatus {
                configured: s.seams.webhook.is_some(),
                pending: outbox.pending,
                failed: outbox.failed,
                oldest_pending_at: outbox.oldest_pending_at,
            },
            wins_not_recorded: s.metrics.unrecorded_wins(),
        })
    }

    /// Prometheus text of the instance's metrics.
    pub async fn metrics_text(&self) -> Result<String, AdminError> {
        let s = &self.service;
        let state = s.state().await?;
        let now = s.now();
        let fresh = s
            .seams
            .hashrate
            .fresh(now, s.config.game.hashrate_stale)
            .await?;
        let outbox = s.seams.outbox.summary(0).await?;
        Ok(s.metrics.render(Gauges {
            webhook_pending: outbox.pending,
            webhook_failed: outbox.failed,
            webhook_oldest_pending_seconds: outbox
                .oldest_pending_at
                .map_or(0.0, |t| (now - t).max(0.0)),
            sessions: s.seams.sessions.count().await?,
            player_sockets: s.connections.players(),
            admin_sockets: s.connections.admins(),
            verifications: s.verification_queue().gauges(),
            difficulty: state.difficulty.difficulty,
            network_hashrate: hashrate::network_hashrate(&fresh).total_hashrate,
        }))
    }
}

/// A fresh miner (`GET /api/admin/miners`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MinerView {
    /// Its IP.
    pub ip: IpAddr,
    /// Reported hashrate (H/s, 2 dp).
    pub hashrate: f64,
    /// Seconds since its last report (1 dp).
    pub last_seen: f64,
    /// Whole seconds since its first report.
    pub connected_since: u64,
    /// Whether it reports more than the speed limit.
    pub overspeed: bool,
}

/// A session (`GET /api/admin/sessions`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionView {
    /// The token's first characters.
    pub token_preview: String,
    /// The IP it was issued to.
    pub ip: IpAddr,
    /// Issue time (Unix seconds).
    pub created_at: f64,
    /// Whether a socket is attached.
    pub is_connected: bool,
    /// When the last socket ended, if it did.
    pub disconnected_at: Option<f64>,
    /// Revoked by an admin.
    pub revoked: bool,
    /// The bound device fingerprint, if any.
    pub visitor_id: Option<String>,
}

/// A page of the audit log (`GET /api/admin/logs`): [`crate::audit::LogPage`] with each record
/// annotated.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AdminLogPage {
    /// The records, newest first.
    pub records: Vec<AnnotatedRecord>,
    /// Matching records in the file.
    pub total: u64,
    /// This page.
    pub page: u32,
    /// Number of pages: at least 1, or 0 for an unknown file.
    pub pages: u32,
    /// Every file, current first, then archives newest first.
    pub files: Vec<String>,
}

/// An audit record as the log holds it (passed through untouched), followed by where its code
/// stands when that is known.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnnotatedRecord {
    /// The record's own fields.
    #[serde(flatten)]
    pub record: LoggedRecord,
    /// Whether (and by whom) its code was redeemed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redemption: Option<InviteView>,
}

impl AdminService {
    /// Fresh miners, fastest first.
    pub async fn miners(&self) -> Result<Vec<MinerView>, AdminError> {
        let s = &self.service;
        let now = s.now();
        let mut fresh = s
            .seams
            .hashrate
            .fresh(now, s.config.game.hashrate_stale)
            .await?;
        fresh.sort_by(|a, b| b.rate.total_cmp(&a.rate));
        Ok(fresh
            .iter()
            .map(|r| MinerView {
                ip: r.ip,
                hashrate: round_dp(r.rate, 2),
                last_seen: round_dp(now - r.last_seen, 1),
                connected_since: (now - r.first_seen).max(0.0) as u64,
                overspeed: r.overspeed,
            })
            .collect())
    }

    /// Sessions, newest first.
    pub async fn sessions(&self) -> Result<Vec<SessionView>, AdminError> {
        let mut sessions = self.service.seams.sessions.list().await?;
        sessions.sort_by(|a, b| b.created_at.total_cmp(&a.created_at));
        Ok(sessions
            .into_iter()
            .map(|s| SessionView {
                token_preview: preview(&s.token),
                ip: s.ip,
                created_at: s.created_at,
                is_connected: s.connection.is_some(),
                disconnected_at: s.disconnected_at,
                revoked: s.revoked,
                visitor_id: s.visitor_id,
            })
            .collect())
    }

    /// A page of the audit log.
    pub async fn logs(&self, query: &LogQuery) -> Result<AdminLogPage, AdminError> {
        let page = self
            .service
            .seams
            .audit
            .page(query)
            .await
            .map_err(AdminError::AuditLog)?;
        // Each record also says whether (and by whom) its code was redeemed.
        let redemptions = &self.service.seams.redemptions;
        let states = futures_util::future::join_all(page.records.iter().map(|record| async move {
            let code = record.invite_code()?;
            redemptions.status(&code_id(code)?).await.ok()
        }))
        .await;
        let records = page
            .records
            .into_iter()
            .zip(states)
            .map(|(record, status)| AnnotatedRecord {
                record,
                redemption: status.as_ref().map(InviteView::from),
            })
            .collect();
        Ok(AdminLogPage {
            records,
            total: page.total,
            page: page.page,
            pages: page.pages,
            files: page.files,
        })
    }

    /// Statistics over every audit file.
    pub async fn log_stats(&self) -> Result<LogStats, AdminError> {
        self.service
            .seams
            .audit
            .stats()
            .await
            .map_err(AdminError::AuditLog)
    }

    /// A page of the application log.
    pub async fn app_logs(&self, query: &AppLogQuery) -> Result<AppLogPage, AdminError> {
        self.applogs.page(query).await.map_err(AdminError::AppLog)
    }
}

/// The most accounts one code may sign up.
pub const MAX_INVITE_USES: u32 = 10_000;

/// A code's redemption state as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InviteView {
    /// The code's id.
    pub code_id: String,
    /// Where it stands.
    pub state: CodeState,
    /// How many accounts it may sign up.
    pub max_uses: u32,
    /// Uses left (0 once withdrawn).
    pub remaining: u32,
    /// Its uses, oldest first.
    pub uses: Vec<InviteUse>,
    /// When an admin withdrew it, if they did.
    pub revoked_at: Option<f64>,
    /// When it last changed (Unix seconds).
    pub updated_at: f64,
}

/// One use of a code.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InviteUse {
    /// The account that used it.
    pub user_id: String,
    /// When (Unix seconds).
    pub used_at: f64,
}

impl From<&CodeStatus> for InviteView {
    fn from(status: &CodeStatus) -> Self {
        Self {
            code_id: status.code_id.clone(),
            state: status.state(),
            max_uses: status.max_uses,
            remaining: status.remaining(),
            uses: status
                .uses
                .iter()
                .map(|u| InviteUse {
                    user_id: u.user_id.clone(),
                    used_at: u.used_at,
                })
                .collect(),
            revoked_at: status.revoked_at,
            updated_at: status.updated_at,
        }
    }
}

/// A page of codes (`GET /api/admin/invites`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InvitePage {
    /// The codes on this page.
    pub codes: Vec<InviteView>,
    /// Matching codes.
    pub total: usize,
    /// This page.
    pub page: u32,
    /// Number of pages (at least 1).
    pub pages: usize,
}

/// One code (`POST /api/admin/invites/status` and `/max-uses`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InviteAnswer {
    /// Where it stands.
    pub invite: InviteView,
}

/// A withdrawn code (`POST /api/admin/invites/revoke`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InviteWithdrawn {
    /// `Invite code withdrawn`.
    pub message: &'static str,
    /// Where it stands now.
    pub invite: InviteView,
}

impl AdminService {
    /// `GET /api/admin/invites`: a page of the codes redeemed, withdrawn or changed, most
    /// recent first; `state` (unused, partly_used, used, revoked; empty = all) filters them.
    pub async fn invites(
        &self,
        page: u32,
        per_page: u32,
        state: &str,
    ) -> Result<InvitePage, AdminError> {
        let state: Option<CodeState> = (!state.is_empty())
            .then(|| state.parse())
            .transpose()
            .map_err(AdminError::Invalid)?;
        let codes: Vec<CodeStatus> = self
            .service
            .seams
            .redemptions
            .list()
            .await
            .map_err(AdminError::Redemptions)?
            .into_iter()
            .filter(|code| state.is_none_or(|wanted| code.state() == wanted))
            .collect();
        let total = codes.len();
        let per_page = per_page as usize;
        Ok(InvitePage {
            codes: codes
                .iter()
                .skip((page as usize - 1).saturating_mul(per_page))
                .take(per_page)
                .map(InviteView::from)
                .collect(),
            total,
            page,
            pages: total.div_ceil(per_page).max(1),
        })
    }

    /// `POST /api/admin/invites/status`: where one code stands.
    pub async fn invite_status(&self, code: &str) -> Result<InviteAnswer, AdminError> {
        let status = self.service.gate().status(code).await?;
        Ok(InviteAnswer {
            invite: InviteView::from(&status),
        })
    }

    /// `POST /api/admin/invites/revoke`: withdraws a code that has uses left.
    pub async fn revoke_invite(&self, code: &str) -> Result<InviteWithdrawn, AdminError> {
        self.require_redemptions_durable()?;
        let gate = self.service.gate();
        if !gate.revoke(code).await? {
            return Err(AdminError::NothingToWithdraw);
        }
        let status = gate.status(code).await?;
        tracing::info!(code_id = %status.code_id, "admin withdrew an invite code");
        Ok(InviteWithdrawn {
            message: "Invite code withdrawn",
            invite: InviteView::from(&status),
        })
    }

    /// Refuses a change of redemptions the store would not keep across a restart.
    fn require_redemptions_durable(&self) -> Result<(), AdminError> {
        self.require_durable(
            self.service.seams.redemptions.durable(),
            VolatileStore::Redemptions,
        )
    }

    /// `POST /api/admin/invites/max-uses`: lets a code sign up `max_uses` accounts in all.
    pub async fn set_invite_max_uses(
        &self,
        code: &str,
        max_uses: i64,
    ) -> Result<InviteAnswer, AdminError> {
        let max_uses = u32::try_from(max_uses)
            .ok()
            .filter(|m| (1..=MAX_INVITE_USES).contains(m))
            .ok_or_else(|| {
                AdminError::Invalid(format!("max_uses must be between 1 and {MAX_INVITE_USES}"))
            })?;
        self.require_redemptions_durable()?;
        let status = self
            .service
            .gate()
            .set_max_uses(code, max_uses)
            .await?
            .ok_or_else(|| {
                AdminError::Invalid("max_uses cannot be below the uses already made".into())
            })?;
        tracing::info!(code_id = %status.code_id, max_uses, "admin changed an invite code's uses");
        Ok(InviteAnswer {
            invite: InviteView::from(&status),
        })
    }
}

/// Body of `POST /api/admin/difficulty`.
#[derive(Debug, Default, Deserialize)]
pub struct DifficultyChange {
    /// New difficulty.
    pub difficulty: Option<i64>,
    /// New lower bound.
    pub min_difficulty: Option<i64>,
    /// New upper bound.
    pub max_difficulty: Option<i64>,
}

/// The difficulty after a change, and the new seed's start.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DifficultyChanged {
    /// Current difficulty.
    pub difficulty: u32,
    /// Lower bound.
    pub min_difficulty: u32,
    /// Upper bound.
    pub max_difficulty: u32,
    /// The new seed's first characters.
    pub new_seed: String,
}

/// Body of `POST /api/admin/target-time`.
#[derive(Debug, Default, Deserialize)]
pub struct TargetTimeChange {
    /// New target solve time (s).
    pub target_time: Option<i64>,
    /// New timeout (s).
    pub target_timeout: Option<i64>,
}

/// The target times after a change, and the new seed's start.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TargetTimeChanged {
    /// Target solve time (s).
    pub target_time: u64,
    /// Timeout (s).
    pub target_timeout: u64,
    /// The new seed's first characters.
    pub new_seed: String,
}

/// Body of `POST /api/admin/argon2`.
#[derive(Debug, Default, Deserialize)]
pub struct Argon2Change {
    /// New time cost.
    pub time_cost: Option<i64>,
    /// New memory cost (KiB).
    pub memory_cost: Option<i64>,
    /// New parallelism.
    pub parallelism: Option<i64>,
}

/// The Argon2 parameters after a change, and the new seed's start.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Argon2Changed {
    /// Time cost.
    pub time_cost: u32,
    /// Memory cost (KiB).
    pub memory_cost: u32,
    /// Lanes.
    pub parallelism: u32,
    /// The new seed's first characters.
    pub new_seed: String,
}

/// The worker count after a change, and the new seed's start.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkerCountChanged {
    /// Browser workers per client.
    pub worker_count: u32,
    /// The new seed's first characters.
    pub new_seed: String,
}

/// The speed limit after a change (`POST /api/admin/max-nonce-speed`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum MaxNonceSpeedChanged {
    /// The limit is off.
    Disabled {
        /// Always 0 (an integer on the wire).
        max_nonce_speed: u8,
        /// `Speed limit disabled`.
        message: &'static str,
    },
    /// The limit (H/s).
    Limited {
        /// The new limit.
        max_nonce_speed: f64,
    },
}

fn seed_preview(state: &PuzzleState) -> String {
    format!("{}...", &state.seed[..8.min(state.seed.len())])
}

fn in_range(name: &str, value: i64, lo: i64, hi: i64) -> Result<u32, AdminError> {
    if (lo..=hi).contains(&value) {
        Ok(value as u32)
    } else {
        Err(AdminError::Invalid(format!(
            "{name} must be between {lo} and {hi}"
        )))
    }
}

/// Applies new difficulty bounds and difficulty to `d`, or refuses them (nothing changed).
fn apply_difficulty(
    d: &mut DifficultyState,
    min: Option<u32>,
    max: Option<u32>,
    difficulty: Option<u32>,
) -> Result<(), AdminError> {
    let (lo, hi) = (
        min.unwrap_or(d.min_difficulty),
        max.unwrap_or(d.max_difficulty),
    );
    if lo > hi {
        return Err(AdminError::Invalid(format!(
            "min_difficulty ({lo}) must not exceed max_difficulty ({hi})"
        )));
    }
    if let Some(v) = difficulty.filter(|v| !(lo..=hi).contains(v)) {
        return Err(AdminError::Invalid(format!(
            "difficulty must be between {lo} and {hi} (got {v})"
        )));
    }
    d.set_bounds(lo, hi);
    if let Some(v) = difficulty {
        d.set_difficulty(v);
    }
    Ok(())
}

impl AdminService {
    /// Applies `change` to the puzzle state in one compare-and-swap (retried on concurrent
    /// change). With `reset`, the puzzle gets a new seed and, if `broadcast`, sockets hear it;
    /// an admin reset also cancels an open timeout reward window.
    async fn change(
        &self,
        reset: bool,
        broadcast: bool,
        change: impl Fn(&mut PuzzleState) -> Result<(), AdminError>,
    ) -> Result<PuzzleState, AdminError> {
        let s = &self.service;
        let next = loop {
            let state = s.state().await?;
            let mut next = if reset {
                state.reset(puzzle::new_seed(), s.now())
            } else {
                PuzzleState {
                    version: state.version + 1,
                    ..state.clone()
                }
            };
            change(&mut next)?;
            if s.seams
                .puzzles
                .compare_and_swap(state.version, next.clone())
                .await?
            {
                break next;
            }
        };
        if reset {
            s.seams.puzzles.reward_cancel().await?;
            if broadcast {
                s.publish_reset(&next, false).await;
            }
        }
        Ok(next)
    }

    /// `POST /api/admin/difficulty`.
    pub async fn set_difficulty(
        &self,
        body: &DifficultyChange,
    ) -> Result<DifficultyChanged, AdminError> {
        let bounded = |name: &str, v: Option<i64>| v.map(|v| in_range(name, v, 1, 64)).transpose();
        let min = bounded("min_difficulty", body.min_difficulty)?;
        let max = bounded("max_difficulty", body.max_difficulty)?;
        let difficulty = bounded("difficulty", body.difficulty)?;
        let next = self
            .change(true, true, |state| {
                apply_difficulty(&mut state.difficulty, min, max, difficulty)
            })
            .await?;
        let d = &next.difficulty;
        tracing::info!(
            difficulty = d.difficulty,
            min = d.min_difficulty,
            max = d.max_difficulty,
            "admin changed difficulty"
        );
        Ok(DifficultyChanged {
            difficulty: d.difficulty,
            min_difficulty: d.min_difficulty,
            max_difficulty: d.max_difficulty,
            new_seed: seed_preview(&next),
        })
    }

    /// `POST /api/admin/target-time`.
    pub async fn set_target_time(
        &self,
        body: &TargetTimeChange,
    ) -> Result<TargetTimeChanged, AdminError> {
        let positive = |name: &str, v: Option<i64>| match v {
            Some(v) if !(1..=i64::from(u32::MAX)).contains(&v) => {
                Err(AdminError::Invalid(format!("{name} must be >= 1")))
            }
            other => Ok(other.map(|v| v as u64)),
        };
        let target = positive("target_time", body.target_time)?;
        let timeout = positive("target_timeout", body.target_timeout)?;
        let next = self
            .change(true, true, |state| {
                let (t, o) = (
                    target.unwrap_or(state.target_time),
                    timeout.unwrap_or(state.target_timeout),
                );
                if o <= t {
                    return Err(AdminError::Invalid(format!(
                        "target_timeout ({o}) must be greater than target_time ({t})"
                    )));
                }
                state.target_time = t;
                state.target_timeout = o;
                Ok(())
            })
            .await?;
        tracing::info!(
            target_time = next.target_time,
            target_timeout = next.target_timeout,
            "admin changed target time"
        );
        Ok(TargetTimeChanged {
            target_time: next.target_time,
            target_timeout: next.target_timeout,
            new_seed: seed_preview(&next),
        })
    }

    /// `POST /api/admin/argon2`.
    pub async fn set_argon2(&self, body: &Argon2Change) -> Result<Argon2Changed, AdminError> {
        let narrow = |name: &str, v: Option<i64>| match v {
            Some(v) if !(0..=i64::from(u32::MAX)).contains(&v) => {
                Err(AdminError::Invalid(format!("{name} is out of range")))
            }
            other => Ok(other.map(|v| v as u32)),
        };
        let (t, m, p) = (
            narrow("time_cost", body.time_cost)?,
            narrow("memory_cost", body.memory_cost)?,
            narrow("parallelism", body.parallelism)?,
        );
        let next = self
            .change(true, true, |state| {
                let params = Argon2Params {
                    time_cost: t.unwrap_or(state.params.time_cost),
                    memory_cost: m.unwrap_or(state.params.memory_cost),
                    parallelism: p.unwrap_or(state.params.parallelism),
                };
                params.validate().map_err(AdminError::Invalid)?;
                state.params = params;
                Ok(())
            })
            .await?;
        tracing::info!(params = ?next.params, "admin changed Argon2 parameters");
        Ok(Argon2Changed {
            time_cost: next.params.time_cost,
            memory_cost: next.params.memory_cost,
            parallelism: next.params.parallelism,
            new_seed: seed_preview(&next),
        })
    }

    /// `POST /api/admin/worker-count`.
    pub async fn set_worker_count(
        &self,
        worker_count: i64,
    ) -> Result<WorkerCountChanged, AdminError> {
        let count = in_range("worker_count", worker_count, 1, 32)?;
        let next = self
            .change(true, true, |state| {
                state.worker_count = count;
                Ok(())
            })
            .await?;
        Ok(WorkerCountChanged {
            worker_count: next.worker_count,
            new_seed: seed_preview(&next),
        })
    }

    /// `POST /api/admin/max-nonce-speed` (no reset).
    pub async fn set_max_nonce_speed(
        &self,
        speed: f64,
    ) -> Result<MaxNonceSpeedChanged, AdminError> {
        if !(speed.is_finite() && speed >= 0.0) {
            return Err(AdminError::Invalid(
                "max_nonce_speed must be a finite number >= 0".into(),
            ));
        }
        self.change(false, false, |state| {
            state.max_nonce_speed = speed;
            Ok(())
        })
        .await?;
        Ok(if speed == 0.0 {
            MaxNonceSpeedChanged::Disabled {
                max_nonce_speed: 0,
                message: "Speed limit disabled",
            }
        } else {
            MaxNonceSpeedChanged::Limited {
                max_nonce_speed: speed,
            }
        })
    }
}

/// What an operation did, in words.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AdminMessage {
    /// The account of it.
    pub message: String,
}

impl AdminMessage {
    fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

/// What an operation that reset the puzzle did, and the new seed's start.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PuzzleReset {
    /// The account of it.
    pub message: String,
    /// The new seed's first characters.
    pub new_seed: String,
}

impl AdminService {
    /// `POST /api/admin/reset-puzzle`.
    pub async fn reset_puzzle(&self) -> Result<PuzzleReset, AdminError> {
        let next = self.change(true, true, |_| Ok(())).await?;
        tracing::info!("admin reset the puzzle");
        Ok(PuzzleReset {
            message: "Puzzle reset".into(),
            new_seed: seed_preview(&next),
        })
    }

    /// `POST /api/admin/kick-all`: revoke every session, close every player socket, forget
    /// hashrates, reset without broadcast.
    pub async fn kick_all(&self) -> Result<PuzzleReset, AdminError> {
        let s = &self.service;
        let sockets = s.connections.players();
        let revoked = s.seams.sessions.revoke_all().await?.len();
        s.publish(Event::CloseAll {
            code: 1000,
            reason: "Kicked by admin".into(),
        })
        .await;
        s.seams.hashrate.clear().await?;
        let next = self.change(true, false, |_| Ok(())).await?;
        tracing::info!(sockets, revoked, "admin kicked everyone");
        Ok(PuzzleReset {
            message: format!(
                "Kicked {sockets} connections, revoked {revoked} sessions, and reset puzzle"
            ),
            new_seed: seed_preview(&next),
        })
    }

    /// `POST /api/admin/kick`: ban `ip`, revoke its sessions, close all its sockets.
    pub async fn kick(&self, ip: IpAddr) -> Result<AdminMessage, AdminError> {
        let s = &self.service;
        s.seams.bans.ban(ip).await.map_err(AdminError::BanList)?;
        let revoked = s.seams.sessions.revoke_ip(ip).await?.len();
        let sockets = s.connections.players_of(ip);
        s.publish(Event::CloseIp {
            ip,
            code: 1000,
            reason: "Kicked by admin".into(),
        })
        .await;
        tracing::info!(%ip, sockets, revoked, "admin banned and kicked an IP");
        Ok(AdminMessage::new(format!(
            "Banned and kicked {sockets} connections, revoked {revoked} sessions for IP {ip}"
        )))
    }

    /// `POST /api/admin/unban`.
    pub async fn unban(&self, ip: IpAddr) -> Result<AdminMessage, AdminError> {
        let was = self
            .service
            .seams
            .bans
            .unban(ip)
            .await
            .map_err(AdminError::BanList)?;
        Ok(if was {
            tracing::info!(%ip, "admin unbanned an IP");
            AdminMessage::new(format!("Unbanned IP {ip}"))
        } else {
            AdminMessage::new(format!("IP {ip} was not in blacklist"))
        })
    }

    /// `GET /api/admin/blacklist`: the banned IPs.
    pub async fn blacklist(&self) -> Result<Vec<String>, AdminError> {
        self.service
            .seams
            .bans
            .list()
            .await
            .map_err(AdminError::BanList)
    }

    /// `POST /api/admin/clear-sessions`.
    pub async fn clear_sessions(&self) -> Result<AdminMessage, AdminError> {
        let s = &self.service;
        let revoked = s.seams.sessions.revoke_all().await?;
        let closed = revoked
            .iter()
            .filter(|session| session.connection.is_some())
            .count();
        s.publish(Event::CloseAll {
            code: 1000,
            reason: "Session cleared by admin".into(),
        })
        .await;
        Ok(AdminMessage::new(format!(
            "Cleared {} session tokens, closed {closed} connections",
            revoked.len()
        )))
    }

    /// `GET /api/admin/webhooks`: the webhook outbox, with up to `limit` deliveries of each
    /// kind (docs/protocol.md#webhook-outbox).
    pub async fn webhooks(&self, limit: usize) -> Result<crate::outbox::OutboxSummary, AdminError> {
        Ok(self.service.seams.outbox.summary(limit).await?)
    }

    /// `POST /api/admin/webhooks/retry`: every given-up delivery back to pending, due at once.
    pub async fn retry_webhooks(&self) -> Result<AdminMessage, AdminError> {
        let s = &self.service;
        let requeued = s.seams.outbox.retry_failed(s.now()).await?;
        s.wake_outbox();
        Ok(AdminMessage::new(format!(
            "Requeued {requeued} failed webhook deliveries"
        )))
    }

    /// `POST /api/admin/regenerate-hmac`: a given hex key or 256 random bits.
    pub async fn regenerate_hmac(
        &self,
        hmac_secret: Option<&str>,
    ) -> Result<AdminMessage, AdminError> {
        let (key, message) = match hmac_secret {
            Some(hex_key) => {
                let key = InviteKey::from_hex(hex_key).map_err(AdminError::BadHmacSecret)?;
                let message = format!(
                    "HMAC secret updated ({}-bit). All old redemption codes are now invalid.",
                    key.bits()
                );
                (key, message)
            }
            None => (
                InviteKey::random(),
                "HMAC secret regenerated (256-bit random). All old redemption codes are now invalid.".to_string(),
            ),
        };
        // On record first (in the data directory, or the shared state every instance and any
        // started later reads), then here at once, then the other instances.
        let s = &self.service;
        self.require_durable(s.seams.invite_keys.durable(), VolatileStore::InviteKeys)?;
        let ring = s
            .seams
            .invite_keys
            .rotate(&s.seams.invites.ring(), &key)
            .await?;
        s.seams.invites.adopt(&ring);
        s.publish(Event::InviteKeyRotated).await;
        tracing::info!("admin rotated the invite key");
        Ok(AdminMessage::new(message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_annotated_record_shows_the_stored_fields_then_the_redemption() {
        let stored = r#"{"zeta":1,"invite_code":"HASHPASS-X","alpha":null}"#;
        let record = LoggedRecord::from_json(stored).unwrap();
        let plain = AnnotatedRecord {
            record: record.clone(),
            redemption: None,
        };
        assert_eq!(serde_json::to_value(&plain).unwrap().to_string(), stored);
        let annotated = AnnotatedRecord {
            record,
            redemption: Some(InviteView {
                code_id: "id".into(),
                state: CodeState::Unused,
                max_uses: 1,
                remaining: 1,
                uses: Vec::new(),
                revoked_at: None,
                updated_at: 2.0,
            }),
        };
        let expected = concat!(
            r#"{"zeta":1,"invite_code":"HASHPASS-X","alpha":null,"redemption":"#,
            r#"{"code_id":"id","state":"unused","max_uses":1,"remaining":1,"uses":[],"#,
            r#""revoked_at":null,"updated_at":2.0}}"#
        );
        assert_eq!(
            serde_json::to_value(&annotated).unwrap().to_string(),
            expected
        );
    }
}
