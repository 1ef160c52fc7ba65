//! The admin side (docs/protocol.md#admin-api): authentication with lockout, the status snapshot and
//! every operation. Parameter changes validate the whole body first and change nothing on error
//! (422), then apply in one compare-and-swap of the puzzle state.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use crate::applog::{AppLogQuery, AppLogReader};
use crate::audit::LogQuery;
use crate::error::{ApiError, StoreError};
use crate::events::Event;
use crate::hashrate;
use crate::invite::{InviteKey, code_id};
use crate::metrics::Gauges;
use crate::puzzle::{self, Argon2Params};
use crate::puzzle_store::PuzzleState;
use crate::redemption::{CodeState, CodeStatus};
use crate::service::PuzzleService;
use crate::session::preview;
use crate::util::{lock, round_dp};

/// Most IPs the memory lockout table tracks; the stalest entries go first beyond it.
const LOCKOUT_TABLE_LIMIT: usize = 10_000;

/// Failed admin logins per IP.
#[async_trait]
pub trait AdminLockout: Send + Sync + 'static {
    /// Seconds left of `ip`'s lockout at `now`, if locked.
    async fn locked_for(&self, ip: IpAddr, now: f64) -> Result<Option<f64>, StoreError>;
    /// Counts a failure; returns true when it locks `ip` out (the `max_failures`-th failure in a
    /// row). Counters older than `lockout` decay.
    async fn record_failure(
        &self,
        ip: IpAddr,
        now: f64,
        max_failures: u32,
        lockout: Duration,
    ) -> Result<bool, StoreError>;
    /// Clears `ip`'s counter (a successful login).
    async fn clear(&self, ip: IpAddr) -> Result<(), StoreError>;
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: f64,
    locked_until: Option<f64>,
}

/// Lockout counters in this process's memory, bounded.
#[derive(Debug, Default)]
pub struct MemoryAdminLockout {
    table: Mutex<HashMap<IpAddr, Failures>>,
}

impl MemoryAdminLockout {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl AdminLockout for MemoryAdminLockout {
    async fn locked_for(&self, ip: IpAddr, now: f64) -> Result<Option<f64>, StoreError> {
        let table = lock(&self.table);
        Ok(table
            .get(&ip)
            .and_then(|f| f.locked_until)
            .filter(|until| *until > now)
            .map(|until| until - now))
    }

    async fn record_failure(
        &self,
        ip: IpAddr,
        now: f64,
        max_failures: u32,
        lockout: Duration,
    ) -> Result<bool, StoreError> {
        let mut table = lock(&self.table);
        let period = lockout.as_secs_f64();
        if table.len() >= LOCKOUT_TABLE_LIMIT && !table.contains_key(&ip) {
            table.retain(|_, f| now - f.last < period || f.locked_until.is_some_and(|u| u > now));
            if table.len() >= LOCKOUT_TABLE_LIMIT
                && let Some(stalest) = table
                    .iter()
                    .min_by(|a, b| a.1.last.total_cmp(&b.1.last))
                    .map(|(ip, _)| *ip)
            {
                table.remove(&stalest);
            }
        }
        let entry = table.entry(ip).or_insert(Failures {
            count: 0,
            last: now,
            locked_until: None,
        });
        if now - entry.last >= period || entry.locked_until.is_some_and(|u| u <= now) {
            *entry = Failures {
                count: 0,
                last: now,
                locked_until: None,
            };
        }
        entry.count += 1;
        entry.last = now;
        if entry.count >= max_failures {
            entry.count = 0;
            entry.locked_until = Some(now + period);
            return Ok(true);
        }
        Ok(false)
    }

    async fn clear(&self, ip: IpAddr) -> Result<(), StoreError> {
        lock(&self.table).remove(&ip);
        Ok(())
    }
}

/// Admin operations over a [`PuzzleService`].
pub struct AdminService {
    service: Arc<PuzzleService>,
    lockout: Arc<dyn AdminLockout>,
    applogs: AppLogReader,
}

impl std::fmt::Debug for AdminService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminService").finish_non_exhaustive()
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

/// Body of `POST /api/admin/target-time`.
#[derive(Debug, Default, Deserialize)]
pub struct TargetTimeChange {
    /// New target solve time (s).
    pub target_time: Option<i64>,
    /// New timeout (s).
    pub target_timeout: Option<i64>,
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

fn seed_preview(state: &PuzzleState) -> String {
    format!("{}...", &state.seed[..8.min(state.seed.len())])
}

fn in_range(name: &str, value: i64, lo: i64, hi: i64) -> Result<u32, ApiError> {
    if (lo..=hi).contains(&value) {
        Ok(value as u32)
    } else {
        Err(ApiError::unprocessable(format!(
            "{name} must be between {lo} and {hi}"
        )))
    }
}

impl AdminService {
    /// Admin operations over `service`, with lockout counters in `lockout`.
    pub fn new(service: Arc<PuzzleService>, lockout: Arc<dyn AdminLockout>) -> Self {
        let applogs = AppLogReader::new(service.config.log_dir.clone());
        Self {
            service,
            lockout,
            applogs,
        }
    }

    fn admin_token(&self) -> Result<&str, ApiError> {
        self.service
            .config
            .admin_token
            .as_deref()
            .ok_or_else(|| ApiError::unauthorized("ADMIN_TOKEN not configured"))
    }

    async fn refuse_if_locked(&self, ip: IpAddr) -> Result<(), ApiError> {
        if let Some(left) = self.lockout.locked_for(ip, self.service.now()).await? {
            return Err(ApiError::too_many(format!(
                "Too many failed attempts. Try again in {}s.",
                left.ceil() as u64
            )));
        }
        Ok(())
    }

    async fn check_token(&self, ip: IpAddr, expected: &str, given: &[u8]) -> Result<(), ApiError> {
        if bool::from(given.ct_eq(expected.as_bytes())) {
            self.lockout.clear(ip).await?;
            return Ok(());
        }
        let c = &self.service.config;
        if self
            .lockout
            .record_failure(
                ip,
                self.service.now(),
                c.admin_max_failures,
                c.admin_lockout,
            )
            .await?
        {
            tracing::warn!(%ip, "admin locked out after repeated failures");
            return Err(ApiError::too_many(format!(
                "Too many failed attempts. Locked out for {}s.",
                c.admin_lockout.as_secs()
            )));
        }
        tracing::warn!(%ip, "invalid admin token");
        Err(ApiError::forbidden("Invalid admin token"))
    }

    /// The admin HTTP ladder: unset token 401, locked 429, missing header 401, not Bearer 401,
    /// wrong token 403 (counted; the 10th in a row locks out with 429). Any header bytes work.
    pub async fn authenticate(
        &self,
        ip: IpAddr,
        authorization: Option<&[u8]>,
    ) -> Result<(), ApiError> {
        let expected = self.admin_token()?;
        self.refuse_if_locked(ip).await?;
        let header =
            authorization.ok_or_else(|| ApiError::unauthorized("Missing Authorization header"))?;
        let token = header.strip_prefix(b"Bearer ").ok_or_else(|| {
            ApiError::unauthorized("Invalid Authorization format (expected 'Bearer <token>')")
        })?;
        self.check_token(ip, expected, token).await
    }

    /// The admin WebSocket's check (docs/protocol.md#admin-api: counted like HTTP). Any refusal is a 403 handshake
    /// rejection except the lockout (429).
    pub async fn authenticate_socket(
        &self,
        ip: IpAddr,
        token: Option<&str>,
    ) -> Result<(), ApiError> {
        let refused = || ApiError::forbidden("Invalid admin token");
        let expected = self.admin_token().map_err(|_| refused())?;
        self.refuse_if_locked(ip).await?;
        let token = token.ok_or_else(refused)?;
        self.check_token(ip, expected, token.as_bytes()).await
    }

    /// The status snapshot of docs/protocol.md#admin-api (`GET /api/admin/status`).
    pub async fn status(&self) -> Result<Value, ApiError> {
        Ok(self.snapshot().await?.0)
    }

    /// The status snapshot and the network hashrate (every STATUS_UPDATE carries both).
    pub async fn snapshot(&self) -> Result<(Value, f64), ApiError> {
        let s = &self.service;
        let state = s.state().await?;
        let now = s.now();
        let mining = s.seams.puzzles.mining_time(&state.seed, now).await?;
        let fresh = s.seams.hashrate.fresh(now, s.config.hashrate_stale).await?;
        let network = hashrate::network_hashrate(&fresh);
        let session_count = s.seams.sessions.count().await?;
        let banned = s.seams.bans.count().await.map_err(|e| {
            tracing::error!(error = %e, "ban list unavailable");
            ApiError::unavailable("Service temporarily unavailable, retry")
        })?;
        let chart = s.seams.hashrate.chart().await?;
        let d = &state.difficulty;
        Ok((
            json!({
                "difficulty": d.difficulty,
                "difficulty_float": round_dp(d.difficulty_float, 3),
                "min_difficulty": d.min_difficulty,
                "max_difficulty": d.max_difficulty,
                "target_time": state.target_time,
                "target_timeout": state.target_timeout,
                "ema_solve_time": d.ema_solve_time.map(|t| round_dp(t, 2)),
                "current_seed": state.seed,
                "puzzle_start_time": state.started_at,
                "mining_time": round_dp(mining.seconds, 2),
                "is_mining_active": mining.active_miners > 0,
                "last_solve_time": state.last_solve_time.map(|t| round_dp(t, 2)),
                "solve_history": state.solve_history.iter().map(|t| round_dp(*t, 2)).collect::<Vec<_>>(),
                "average_solve_time": state.average_solve_time().map(|t| round_dp(t, 2)),
                "active_miners": network.active_miners,
                "active_connections": s.connections.players(),
                "session_count": session_count,
                "argon2_time_cost": state.params.time_cost,
                "argon2_memory_cost": state.params.memory_cost,
                "argon2_parallelism": state.params.parallelism,
                "worker_count": state.worker_count,
                "max_nonce_speed": state.max_nonce_speed,
                "banned_ips_count": banned,
                "hashrate_chart_history": chart.iter().map(|p| json!({"timestamp": p.timestamp, "hashrate": p.value})).collect::<Vec<_>>(),
                "solve_time_chart_history": state.solve_time_chart.iter().map(|p| json!({"timestamp": p.timestamp, "solve_time": round_dp(p.value, 2)})).collect::<Vec<_>>(),
            }),
            network.total_hashrate,
        ))
    }

    /// Fresh miners: `{ip, hashrate, last_seen, connected_since, overspeed}`.
    pub async fn miners(&self) -> Result<Value, ApiError> {
        let s = &self.service;
        let now = s.now();
        let mut fresh = s.seams.hashrate.fresh(now, s.config.hashrate_stale).await?;
        fresh.sort_by(|a, b| b.rate.total_cmp(&a.rate));
        Ok(Value::Array(
            fresh
                .iter()
                .map(|r| {
                    json!({
                        "ip": r.ip.to_string(),
                        "hashrate": round_dp(r.rate, 2),
                        "last_seen": round_dp(now - r.last_seen, 1),
                        "connected_since": (now - r.first_seen).max(0.0) as u64,
                        "overspeed": r.overspeed,
                    })
                })
                .collect(),
        ))
    }

    /// Sessions: `{token_preview, ip, created_at, is_connected, disconnected_at}`.
    pub async fn sessions(&self) -> Result<Value, ApiError> {
        let mut sessions = self.service.seams.sessions.list().await?;
        sessions.sort_by(|a, b| b.created_at.total_cmp(&a.created_at));
        Ok(Value::Array(
            sessions
                .iter()
                .map(|s| {
                    json!({
                        "token_preview": preview(&s.token),
                        "ip": s.ip.to_string(),
                        "created_at": s.created_at,
                        "is_connected": s.connection.is_some(),
                        "disconnected_at": s.disconnected_at,
                        "revoked": s.revoked,
                        "visitor_id": s.visitor_id,
                    })
                })
                .collect(),
        ))
    }

    /// A page of the audit log.
    pub async fn logs(&self, query: &LogQuery) -> Result<Value, ApiError> {
        let mut page = self
            .service
            .seams
            .audit
            .page(query)
            .await
            .map_err(audit_unavailable)?;
        // Each record also says whether (and by whom) its code was redeemed.
        let redemptions = &self.service.seams.redemptions;
        let states = futures_util::future::join_all(page.records.iter().map(|record| async move {
            let id = record["invite_code"].as_str().and_then(code_id)?;
            redemptions.status(&id).await.ok()
        }))
        .await;
        for (record, status) in page.records.iter_mut().zip(states) {
            if let (Some(fields), Some(status)) = (record.as_object_mut(), status) {
                fields.insert("redemption".into(), code_status_json(&status));
            }
        }
        Ok(serde_json::to_value(page).unwrap_or_default())
    }

    /// `GET /api/admin/invites`: a page of the codes redeemed, withdrawn or changed, most
    /// recent first; `state` (unused, partly_used, used, revoked; empty = all) filters them.
    pub async fn invites(&self, page: u32, per_page: u32, state: &str) -> Result<Value, ApiError> {
        let state: Option<CodeState> = (!state.is_empty())
            .then(|| state.parse())
            .transpose()
            .map_err(ApiError::unprocessable)?;
        let codes: Vec<CodeStatus> = self
            .service
            .seams
            .redemptions
            .list()
            .await
            .map_err(redemptions_unavailable)?
            .into_iter()
            .filter(|code| state.is_none_or(|wanted| code.state() == wanted))
            .collect();
        let total = codes.len();
        let per_page = per_page as usize;
        let shown: Vec<Value> = codes
            .iter()
            .skip((page as usize - 1).saturating_mul(per_page))
            .take(per_page)
            .map(code_status_json)
            .collect();
        Ok(json!({
            "codes": shown,
            "total": total,
            "page": page,
            "pages": total.div_ceil(per_page).max(1),
        }))
    }

    /// `POST /api/admin/invites/status`: where one code stands.
    pub async fn invite_status(&self, code: &str) -> Result<Value, ApiError> {
        let status = self.service.gate().status(code).await?;
        Ok(json!({ "invite": code_status_json(&status) }))
    }

    /// `POST /api/admin/invites/revoke`: withdraws a code that has uses left.
    pub async fn revoke_invite(&self, code: &str) -> Result<Value, ApiError> {
        let gate = self.service.gate();
        if !gate.revoke(code).await? {
            return Err(ApiError::conflict(
                "This invite code is already used up or withdrawn",
            ));
        }
        let status = gate.status(code).await?;
        tracing::info!(code_id = %status.code_id, "admin withdrew an invite code");
        Ok(json!({ "message": "Invite code withdrawn", "invite": code_status_json(&status) }))
    }

    /// `POST /api/admin/invites/max-uses`: lets a code sign up `max_uses` accounts in all.
    pub async fn set_invite_max_uses(&self, code: &str, max_uses: i64) -> Result<Value, ApiError> {
        let max_uses = u32::try_from(max_uses)
            .ok()
            .filter(|m| (1..=MAX_INVITE_USES).contains(m))
            .ok_or_else(|| {
                ApiError::unprocessable(format!("max_uses must be between 1 and {MAX_INVITE_USES}"))
            })?;
        let status = self
            .service
            .gate()
            .set_max_uses(code, max_uses)
            .await?
            .ok_or_else(|| {
                ApiError::unprocessable("max_uses cannot be below the uses already made")
            })?;
        tracing::info!(code_id = %status.code_id, max_uses, "admin changed an invite code's uses");
        Ok(json!({ "invite": code_status_json(&status) }))
    }

    /// Statistics over every audit file.
    pub async fn log_stats(&self) -> Result<Value, ApiError> {
        let stats = self
            .service
            .seams
            .audit
            .stats()
            .await
            .map_err(audit_unavailable)?;
        Ok(serde_json::to_value(stats).unwrap_or_default())
    }

    /// A page of the application log.
    pub async fn app_logs(&self, query: &AppLogQuery) -> Result<Value, ApiError> {
        let page = self.applogs.page(query).await.map_err(|e| {
            tracing::error!(error = %e, "could not read the application log");
            ApiError::unavailable("Could not read the application log")
        })?;
        Ok(serde_json::to_value(page).unwrap_or_default())
    }

    /// Applies `change` to the puzzle state in one compare-and-swap (retried on concurrent
    /// change). With `reset`, the puzzle gets a new seed and, if `broadcast`, sockets hear it;
    /// an admin reset also cancels an open timeout reward window.
    async fn change(
        &self,
        reset: bool,
        broadcast: bool,
        change: impl Fn(&mut PuzzleState) -> Result<(), ApiError>,
    ) -> Result<PuzzleState, ApiError> {
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
    pub async fn set_difficulty(&self, body: &DifficultyChange) -> Result<Value, ApiError> {
        let min = body
            .min_difficulty
            .map(|v| in_range("min_difficulty", v, 1, 64))
            .transpose()?;
        let max = body
            .max_difficulty
            .map(|v| in_range("max_difficulty", v, 1, 64))
            .transpose()?;
        let difficulty = body
            .difficulty
            .map(|v| in_range("difficulty", v, 1, 64))
            .transpose()?;
        let next = self
            .change(true, true, |state| {
                let d = &mut state.difficulty;
                let (lo, hi) = (
                    min.unwrap_or(d.min_difficulty),
                    max.unwrap_or(d.max_difficulty),
                );
                if lo > hi {
                    return Err(ApiError::unprocessable(format!(
                        "min_difficulty ({lo}) must not exceed max_difficulty ({hi})"
                    )));
                }
                if let Some(v) = difficulty.filter(|v| !(lo..=hi).contains(v)) {
                    return Err(ApiError::unprocessable(format!(
                        "difficulty must be between {lo} and {hi} (got {v})"
                    )));
                }
                d.set_bounds(lo, hi);
                if let Some(v) = difficulty {
                    d.set_difficulty(v);
                }
                Ok(())
            })
            .await?;
        let d = &next.difficulty;
        tracing::info!(
            difficulty = d.difficulty,
            min = d.min_difficulty,
            max = d.max_difficulty,
            "admin changed difficulty"
        );
        Ok(json!({
            "difficulty": d.difficulty,
            "min_difficulty": d.min_difficulty,
            "max_difficulty": d.max_difficulty,
            "new_seed": seed_preview(&next),
        }))
    }

    /// `POST /api/admin/target-time`.
    pub async fn set_target_time(&self, body: &TargetTimeChange) -> Result<Value, ApiError> {
        let positive = |name: &str, v: Option<i64>| match v {
            Some(v) if !(1..=i64::from(u32::MAX)).contains(&v) => {
                Err(ApiError::unprocessable(format!("{name} must be >= 1")))
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
                    return Err(ApiError::unprocessable(format!(
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
        Ok(json!({
            "target_time": next.target_time,
            "target_timeout": next.target_timeout,
            "new_seed": seed_preview(&next),
        }))
    }

    /// `POST /api/admin/argon2`.
    pub async fn set_argon2(&self, body: &Argon2Change) -> Result<Value, ApiError> {
        let narrow = |name: &str, v: Option<i64>| match v {
            Some(v) if !(0..=i64::from(u32::MAX)).contains(&v) => {
                Err(ApiError::unprocessable(format!("{name} is out of range")))
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
                params.validate().map_err(ApiError::unprocessable)?;
                state.params = params;
                Ok(())
            })
            .await?;
        tracing::info!(params = ?next.params, "admin changed Argon2 parameters");
        Ok(json!({
            "time_cost": next.params.time_cost,
            "memory_cost": next.params.memory_cost,
            "parallelism": next.params.parallelism,
            "new_seed": seed_preview(&next),
        }))
    }

    /// `POST /api/admin/worker-count`.
    pub async fn set_worker_count(&self, worker_count: i64) -> Result<Value, ApiError> {
        let count = in_range("worker_count", worker_count, 1, 32)?;
        let next = self
            .change(true, true, |state| {
                state.worker_count = count;
                Ok(())
            })
            .await?;
        Ok(json!({ "worker_count": next.worker_count, "new_seed": seed_preview(&next) }))
    }

    /// `POST /api/admin/max-nonce-speed` (no reset).
    pub async fn set_max_nonce_speed(&self, speed: f64) -> Result<Value, ApiError> {
        if !(speed.is_finite() && speed >= 0.0) {
            return Err(ApiError::unprocessable(
                "max_nonce_speed must be a finite number >= 0",
            ));
        }
        self.change(false, false, |state| {
            state.max_nonce_speed = speed;
            Ok(())
        })
        .await?;
        Ok(if speed == 0.0 {
            json!({ "max_nonce_speed": 0, "message": "Speed limit disabled" })
        } else {
            json!({ "max_nonce_speed": speed })
        })
    }

    /// `POST /api/admin/reset-puzzle`.
    pub async fn reset_puzzle(&self) -> Result<Value, ApiError> {
        let next = self.change(true, true, |_| Ok(())).await?;
        tracing::info!("admin reset the puzzle");
        Ok(json!({ "message": "Puzzle reset", "new_seed": seed_preview(&next) }))
    }

    /// `POST /api/admin/kick-all`: revoke every session, close every player socket, forget
    /// hashrates, reset without broadcast.
    pub async fn kick_all(&self) -> Result<Value, ApiError> {
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
        Ok(json!({
            "message": format!("Kicked {sockets} connections, revoked {revoked} sessions, and reset puzzle"),
            "new_seed": seed_preview(&next),
        }))
    }

    /// `POST /api/admin/kick`: ban `ip`, revoke its sessions, close all its sockets.
    pub async fn kick(&self, ip: IpAddr) -> Result<Value, ApiError> {
        let s = &self.service;
        s.seams.bans.ban(ip).await.map_err(ban_unavailable)?;
        let revoked = s.seams.sessions.revoke_ip(ip).await?.len();
        let sockets = s.connections.players_of(ip);
        s.publish(Event::CloseIp {
            ip,
            code: 1000,
            reason: "Kicked by admin".into(),
        })
        .await;
        tracing::info!(%ip, sockets, revoked, "admin banned and kicked an IP");
        Ok(
            json!({ "message": format!("Banned and kicked {sockets} connections, revoked {revoked} sessions for IP {ip}") }),
        )
    }

    /// `POST /api/admin/unban`.
    pub async fn unban(&self, ip: IpAddr) -> Result<Value, ApiError> {
        let was = self
            .service
            .seams
            .bans
            .unban(ip)
            .await
            .map_err(ban_unavailable)?;
        Ok(if was {
            tracing::info!(%ip, "admin unbanned an IP");
            json!({ "message": format!("Unbanned IP {ip}") })
        } else {
            json!({ "message": format!("IP {ip} was not in blacklist") })
        })
    }

    /// `GET /api/admin/blacklist`.
    pub async fn blacklist(&self) -> Result<Value, ApiError> {
        Ok(json!(
            self.service
                .seams
                .bans
                .list()
                .await
                .map_err(ban_unavailable)?
        ))
    }

    /// `POST /api/admin/clear-sessions`.
    pub async fn clear_sessions(&self) -> Result<Value, ApiError> {
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
        Ok(
            json!({ "message": format!("Cleared {} session tokens, closed {closed} connections", revoked.len()) }),
        )
    }

    /// `POST /api/admin/regenerate-hmac`: a given hex key or 256 random bits.
    pub async fn regenerate_hmac(&self, hmac_secret: Option<&str>) -> Result<Value, ApiError> {
        let (key, message) = match hmac_secret {
            Some(hex_key) => {
                let key = InviteKey::from_hex(hex_key)
                    .map_err(|e| ApiError::bad_request(e.to_string()))?;
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
        // Into the shared state first, so that every instance (and any started later) issues
        // and checks codes under the new key; then here at once, then the others.
        self.change(false, false, |state| {
            state.invite_key = Some(key.clone());
            Ok(())
        })
        .await?;
        self.service.seams.invites.rotate(&key);
        self.service.publish(Event::InviteKeyRotated).await;
        tracing::info!("admin rotated the invite key");
        Ok(json!({ "message": message }))
    }

    /// Prometheus text of the instance's metrics.
    pub async fn metrics_text(&self) -> Result<String, ApiError> {
        let s = &self.service;
        let state = s.state().await?;
        let now = s.now();
        let fresh = s.seams.hashrate.fresh(now, s.config.hashrate_stale).await?;
        Ok(s.metrics.render(Gauges {
            sessions: s.seams.sessions.count().await?,
            player_sockets: s.connections.players(),
            admin_sockets: s.connections.admins(),
            verify_queue: s.seams.verifier.queued(),
            difficulty: state.difficulty.difficulty,
            network_hashrate: hashrate::network_hashrate(&fresh).total_hashrate,
        }))
    }
}

/// The most accounts one code may sign up.
pub const MAX_INVITE_USES: u32 = 10_000;

/// A code's redemption state as the admin API shows it.
fn code_status_json(status: &CodeStatus) -> Value {
    json!({
        "code_id": status.code_id,
        "state": status.state(),
        "max_uses": status.max_uses,
        "remaining": status.remaining(),
        "uses": status.uses.iter().map(|u| json!({
            "user_id": u.user_id,
            "used_at": u.used_at,
        })).collect::<Vec<_>>(),
        "revoked_at": status.revoked_at,
        "updated_at": status.updated_at,
    })
}

fn redemptions_unavailable(e: StoreError) -> ApiError {
    tracing::error!(error = %e, "redemption store unavailable");
    ApiError::unavailable("The redemption store is unavailable: try again in a moment")
}

fn audit_unavailable(e: crate::audit::AuditError) -> ApiError {
    tracing::error!(error = %e, "audit log unavailable");
    ApiError::unavailable("Could not read the audit log")
}

fn ban_unavailable(e: crate::bans::BanError) -> ApiError {
    tracing::error!(error = %e, "ban list unavailable");
    ApiError::unavailable("Could not update the ban list")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lockout_after_max_failures_and_decay() {
        let l = MemoryAdminLockout::new();
        let ip: IpAddr = "1.2.3.4".parse().unwrap();
        let period = Duration::from_secs(300);
        for i in 0..9 {
            assert!(
                !l.record_failure(ip, f64::from(i), 10, period)
                    .await
                    .unwrap()
            );
        }
        assert!(l.record_failure(ip, 9.0, 10, period).await.unwrap());
        assert_eq!(l.locked_for(ip, 10.0).await.unwrap(), Some(299.0));
        assert_eq!(l.locked_for(ip, 309.0).await.unwrap(), None);
        // Counters decay: 9 failures, a long pause, 9 more do not lock.
        let other: IpAddr = "5.6.7.8".parse().unwrap();
        for i in 0..9 {
            l.record_failure(other, f64::from(i), 10, period)
                .await
                .unwrap();
        }
        for i in 0..9 {
            assert!(
                !l.record_failure(other, 1000.0 + f64::from(i), 10, period)
                    .await
                    .unwrap()
            );
        }
        l.clear(other).await.unwrap();
        assert!(!l.record_failure(other, 2000.0, 10, period).await.unwrap());
    }

    #[tokio::test]
    async fn the_table_stays_bounded() {
        let l = MemoryAdminLockout::new();
        for i in 0..(LOCKOUT_TABLE_LIMIT as u32 + 50) {
            let ip = IpAddr::from(i.to_be_bytes());
            l.record_failure(ip, 0.0, 10, Duration::from_secs(300))
                .await
                .unwrap();
        }
        assert!(l.table.lock().unwrap().len() <= LOCKOUT_TABLE_LIMIT);
    }
}
