#![doc = include_str!("../README.md")]
//!
//! ## The seams
//! Each is a trait held as `Arc<dyn …>`, with an in-memory default:
//! [`puzzle_store::PuzzleStore`] (the single-winner compare-and-swap),
//! [`session::SessionStore`], [`verify::Verifier`] (Argon2d under a
//! memory budget), [`captcha::CaptchaProvider`],
//! [`webhook::WebhookSink`], [`events::EventBus`],
//! [`bans::BanList`], [`audit::AuditLog`],
//! [`hashrate::HashrateStore`], [`admin::AdminLockout`],
//! [`RedemptionStore`] (which codes signed up whom),
//! [`invite_key_store::InviteKeyStore`] (the invite key ring on record) and the [`clock::Clock`].
//!
//! ## The path of one request
//! A winning `POST /api/verify`, from the socket to the stores and back:
//! 1. The adapter (`hashpass-axum`, `hashpass-poem`) routed the row of
//!    [`adapter::ENDPOINTS`], read the body under the size limit and hands
//!    [`HashPass::handle`] the [`adapter::Endpoint`] and an [`adapter::ApiRequest`] (peer
//!    address, headers, query, body).
//! 2. `api` applies what every request shares — the User-Agent filter, the body limit, the
//!    effective client IP behind trusted proxies — then matches the endpoint: a player endpoint
//!    parses its JSON body and authenticates the session token ([`session::SessionStore`]).
//! 3. [`PuzzleService::verify`] runs the cheap checks first (token bound to this IP and visitor,
//!    current seed, enough leading zero bits, the per-session rate), then recomputes Argon2d on
//!    the [`verify::Verifier`]'s bounded blocking pool, outside any lock.
//! 4. The single-winner claim is one [`puzzle_store::PuzzleStore::compare_and_swap`] on the
//!    puzzle's version (one Lua script in Redis); the loser of a race gets 409.
//! 5. The winner's invite code comes from [`InviteCodes`]; its record is appended to the
//!    [`audit::AuditLog`] (fsynced) before the answer, the [`webhook::WebhookSink`] is told in
//!    the background, and the reset goes out on the [`events::EventBus`] to every socket.
//! 6. The result (or an [`ApiError`] that knows its status and JSON body) goes back to the
//!    adapter as an [`adapter::ApiResponse`], which it sends with the security headers.

use std::sync::Arc;

pub mod adapter;
pub mod admin;
pub(crate) mod api;
pub mod applog;
pub mod audit;
pub mod bans;
pub mod captcha;
pub(crate) mod client_log;
pub mod clock;
pub(crate) mod coalesce;
pub mod config;
pub(crate) mod connections;
pub mod difficulty;
pub mod edge;
pub(crate) mod endpoint;
pub mod error;
pub mod events;
pub mod game_error;
pub mod gate;
pub mod hashrate;
pub mod instances;
pub mod invite;
pub mod invite_key_store;
pub mod lockout;
pub mod message_budget;
pub mod metrics;
pub mod openapi;
pub mod outbox;
pub mod private_files;
pub mod puzzle;
pub mod puzzle_store;
pub mod redemption;
#[cfg(feature = "redis")]
pub mod redis;
pub(crate) mod request;
pub mod service;
pub mod session;
#[cfg(feature = "sql")]
pub mod sql;
#[cfg(test)]
mod test_http;
#[cfg(feature = "ui")]
pub mod ui;
mod util;
pub mod verification_queue;
pub mod verify;
pub mod webhook;
pub(crate) mod wire;
pub(crate) mod ws;

pub use config::{Config, ConfigError};
pub use error::{ApiError, StoreError};
pub use gate::{InviteGate, InviteRejection};
pub use invite::{InviteCodes, InviteError, InviteKey, VerifiedInvite};
pub use redemption::{FileRedemptionStore, MemoryRedemptionStore, RedemptionStore};
#[cfg(feature = "redis")]
pub use redis::{RedisBackend, RedisRedemptionStore};
pub use service::{BackgroundJobs, PuzzleService, Seams};
#[cfg(feature = "sql")]
pub use sql::SqlRedemptionStore;

use admin::{AdminLockout, AdminService, MemoryAdminLockout};
use audit::AuditLog;
use bans::BanList;
use captcha::CaptchaProvider;
use clock::{SharedClock, SystemClock};
use events::{EventBus, MemoryEventBus};
use hashrate::{HashrateStore, MemoryHashrateStore};
use puzzle_store::{MemoryPuzzleStore, PuzzleStore};
use session::{MemorySessionStore, SessionStore};
use verify::{Argon2Verifier, Verifier};
use webhook::WebhookSink;

/// One HashPass instance: the game and its admin, ready to be mounted by an adapter.
/// Cloning is cheap and shares the instance.
#[derive(Clone, Debug)]
pub struct HashPass {
    service: Arc<PuzzleService>,
    admin: Arc<AdminService>,
    /// The periodic jobs, running while any clone of this instance lives.
    jobs: Option<Arc<BackgroundJobs>>,
}

/// Why an instance could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A setting is invalid.
    #[error("configuration: {0}")]
    Config(#[from] config::ConfigError),
    /// A store could not be reached.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A file-backed store could not be opened.
    #[error("could not open {what}: {message}")]
    Files {
        /// Which store.
        what: &'static str,
        /// Why.
        message: String,
    },
}

impl HashPass {
    /// A builder with in-memory defaults for every seam.
    pub fn builder(config: Config) -> HashPassBuilder {
        HashPassBuilder {
            config,
            clock: None,
            puzzles: None,
            sessions: None,
            verifier: None,
            invites: None,
            captcha: None,
            webhook: None,
            outbox: None,
            events: None,
            bans: None,
            audit: None,
            hashrate: None,
            lockout: None,
            lease: None,
            instances: None,
            redemptions: None,
            invite_keys: None,
            disk: None,
            volatile_admin_state: false,
            jobs: true,
        }
    }

    /// The game.
    pub fn service(&self) -> &Arc<PuzzleService> {
        &self.service
    }

    /// The admin operations.
    pub fn admin(&self) -> &Arc<AdminService> {
        &self.admin
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.service.config
    }

    /// The invite codes (issue, verify, rotate).
    pub fn invites(&self) -> &Arc<InviteCodes> {
        &self.service.seams.invites
    }

    /// The invite gate for a host site's sign-up: these codes, checked against the redemption
    /// store (see [`HashPassBuilder::redemption_store`]).
    pub fn gate(&self) -> gate::InviteGate {
        self.service.gate()
    }

    /// Whether this instance runs its periodic jobs (timeouts, timeout rewards, hashrate,
    /// clean-up, events from other instances). They start with [`HashPassBuilder::build`] and
    /// stop when the last clone of the instance is dropped, unless the builder was told
    /// [`HashPassBuilder::without_background_jobs`].
    pub fn runs_background_jobs(&self) -> bool {
        self.jobs.is_some()
    }

    /// Shuts the instance down gracefully before the host's server stops
    /// ([`PuzzleService::shutdown`], docs/protocol.md#graceful-shutdown): new sockets are
    /// refused, open ones closed with 1001 after their clean-up, verifications in flight
    /// finish, and the instance leaves the deployment. Call it when the shutdown signal
    /// arrives, then let the server finish its requests. Waits at most `deadline` per step;
    /// returns whether everything finished in time.
    pub async fn shutdown(&self, deadline: std::time::Duration) -> bool {
        self.service.shutdown(deadline).await
    }

    /// Starts a second set of the periodic jobs, stopped when the handle is dropped: for an
    /// instance built [`HashPassBuilder::without_background_jobs`] whose owner wants them after
    /// all (a test that first drives the game by hand).
    pub fn spawn_jobs(&self) -> BackgroundJobs {
        self.service.spawn_jobs()
    }
}

/// Builds a [`HashPass`]; every seam not set gets its in-memory default.
#[must_use]
pub struct HashPassBuilder {
    config: Config,
    clock: Option<SharedClock>,
    puzzles: Option<Arc<dyn PuzzleStore>>,
    sessions: Option<Arc<dyn SessionStore>>,
    verifier: Option<Arc<dyn Verifier>>,
    invites: Option<Arc<InviteCodes>>,
    captcha: Option<Arc<dyn CaptchaProvider>>,
    webhook: Option<Arc<dyn WebhookSink>>,
    outbox: Option<Arc<dyn outbox::WebhookOutbox>>,
    events: Option<Arc<dyn EventBus>>,
    bans: Option<Arc<dyn BanList>>,
    audit: Option<Arc<dyn AuditLog>>,
    hashrate: Option<Arc<dyn HashrateStore>>,
    lockout: Option<Arc<dyn AdminLockout>>,
    lease: Option<Arc<dyn service::JobLease>>,
    instances: Option<Arc<dyn instances::InstanceRegistry>>,
    redemptions: Option<Arc<dyn redemption::RedemptionStore>>,
    invite_keys: Option<Arc<dyn invite_key_store::InviteKeyStore>>,
    disk: Option<std::path::PathBuf>,
    volatile_admin_state: bool,
    jobs: bool,
}

impl std::fmt::Debug for HashPassBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashPassBuilder")
            .field("config", &self.config)
            .field("disk", &self.disk)
            .field("volatile_admin_state", &self.volatile_admin_state)
            .field("jobs", &self.jobs)
            .finish_non_exhaustive()
    }
}

macro_rules! seam_setters {
    ($($(#[$doc:meta])* $name:ident: $field:ident: $ty:ty;)*) => {
        impl HashPassBuilder {
            $(
                $(#[$doc])*
                pub fn $name(mut self, value: $ty) -> Self {
                    self.$field = Some(value);
                    self
                }
            )*
        }
    };
}

seam_setters! {
    /// Uses this clock (a fake one in tests).
    clock: clock: SharedClock;
    /// Uses this puzzle store.
    puzzle_store: puzzles: Arc<dyn PuzzleStore>;
    /// Uses this session store.
    session_store: sessions: Arc<dyn SessionStore>;
    /// Uses this verifier.
    verifier: verifier: Arc<dyn Verifier>;
    /// Uses these invite codes.
    invite_codes: invites: Arc<InviteCodes>;
    /// Uses this captcha provider.
    captcha: captcha: Arc<dyn CaptchaProvider>;
    /// Uses this webhook sink (instead of the `WEBHOOK_URL` one).
    webhook: webhook: Arc<dyn WebhookSink>;
    /// Keeps the webhook's deliveries in this outbox.
    webhook_outbox: outbox: Arc<dyn outbox::WebhookOutbox>;
    /// Uses this event bus.
    event_bus: events: Arc<dyn EventBus>;
    /// Uses this ban list.
    ban_list: bans: Arc<dyn BanList>;
    /// Uses this audit log.
    audit_log: audit: Arc<dyn AuditLog>;
    /// Uses this hashrate store.
    hashrate_store: hashrate: Arc<dyn HashrateStore>;
    /// Uses this admin lockout table.
    admin_lockout: lockout: Arc<dyn AdminLockout>;
    /// Uses this lease to decide who runs the periodic jobs.
    job_lease: lease: Arc<dyn service::JobLease>;
    /// Registers this instance's liveness and sockets here.
    instance_registry: instances: Arc<dyn instances::InstanceRegistry>;
    /// Uses this redemption store (the host site's record of used codes).
    redemption_store: redemptions: Arc<dyn redemption::RedemptionStore>;
    /// Keeps the invite key ring (the current key and the keys rotated away) here.
    invite_key_store: invite_keys: Arc<dyn invite_key_store::InviteKeyStore>;
}

impl HashPassBuilder {
    /// Shares every store that must be shared between instances through Redis: puzzle state
    /// (with the invite key ring), sessions, bans, admin lockout, hashrate, the audit log, the
    /// webhook outbox, events, redemptions, the instances' liveness and the periodic jobs' lease.
    ///
    /// Call it before [`HashPassBuilder::redemption_store`] to keep redemptions elsewhere (in SQL,
    /// say).
    #[cfg(feature = "redis")]
    pub async fn redis(self, backend: redis::RedisBackend) -> Result<Self, StoreError> {
        backend.check_persistence().await;
        let events = redis::RedisEventBus::new(backend.clone()).await?;
        let puzzles: Arc<dyn PuzzleStore> = Arc::new(redis::RedisPuzzleStore::new(backend.clone()));
        Ok(self
            .invite_key_store(Arc::new(invite_key_store::InPuzzleState::durable(
                Arc::clone(&puzzles),
            )))
            .puzzle_store(puzzles)
            .session_store(Arc::new(redis::RedisSessionStore::new(backend.clone())))
            .ban_list(Arc::new(redis::RedisBanList::new(backend.clone())))
            .admin_lockout(Arc::new(redis::RedisAdminLockout::new(backend.clone())))
            .hashrate_store(Arc::new(redis::RedisHashrateStore::new(backend.clone())))
            .audit_log(Arc::new(redis::RedisAuditLog::new(backend.clone())))
            .redemption_store(Arc::new(redis::RedisRedemptionStore::new(backend.clone())))
            .webhook_outbox(Arc::new(redis::RedisOutbox::new(backend.clone())))
            .event_bus(events)
            .instance_registry(Arc::new(redis::RedisInstanceRegistry::new(
                backend.clone(),
                instances::LIVENESS_LEASE,
            )))
            .job_lease(Arc::new(redis::RedisLease::new(
                backend,
                "jobs",
                std::time::Duration::from_secs(3),
            ))))
    }

    /// Keeps the audit log (`verify.jsonl`), the blacklist (`blacklist.json`), the webhook
    /// outbox (`webhook-outbox/`), the invite key ring (`invite-keys.json`) and the redemptions
    /// (`redemptions.json`) as files in `dir` (created if missing) instead of memory, unless
    /// those seams are set explicitly ([`HashPassBuilder::redis`] sets all but the first two).
    pub fn on_disk(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.disk = Some(dir.into());
        self
    }

    /// For tests and demos only: lets an admin rotate the invite key, withdraw a code or change
    /// its uses on an instance that keeps them in memory (neither [`HashPassBuilder::on_disk`],
    /// [`HashPassBuilder::redis`] nor a durable redemption store), where a restart undoes the
    /// change. Without it such changes are refused with 409
    /// (docs/protocol.md#admin-changes-that-must-outlive-a-restart).
    pub fn volatile_admin_state(mut self) -> Self {
        self.volatile_admin_state = true;
        self
    }

    /// Builds an instance that does not start its periodic jobs: nothing times the puzzle out
    /// or hands out a timeout reward until the owner calls [`HashPass::spawn_jobs`] or drives
    /// the game itself (as the core's tests do on a fake clock).
    pub fn without_background_jobs(mut self) -> Self {
        self.jobs = false;
        self
    }

    /// Validates the configuration, fills the unset seams with the defaults their modules
    /// build from it, initialises the puzzle state (or joins the one a shared store already
    /// holds) and starts the periodic jobs, which run until the last clone of the instance is
    /// dropped.
    pub async fn build(self) -> Result<HashPass, BuildError> {
        let config = self.config;
        config.validate()?;
        let clock: SharedClock = self.clock.unwrap_or_else(|| Arc::new(SystemClock));
        // The key the operator chose, which the ring on record must not have retired.
        let (invites, configured_key) = match self.invites {
            Some(invites) => {
                let key = invites.ring().current().clone();
                (invites, Some(key))
            }
            None => (
                Arc::new(InviteCodes::from_config(
                    &config.invites,
                    Arc::clone(&clock),
                )?),
                config.invites.key()?,
            ),
        };
        let disk = self.disk.as_deref();
        let files_error = |what: &'static str| {
            move |e: StoreError| BuildError::Files {
                what,
                message: e.to_string(),
            }
        };
        let bans = match self.bans {
            Some(bans) => bans,
            None => bans::from_config(disk).map_err(files_error("blacklist.json"))?,
        };
        let audit = match self.audit {
            Some(audit) => audit,
            None => audit::from_config(&config.admin, disk, Arc::clone(&clock))
                .map_err(files_error("verify.jsonl"))?,
        };
        let outbox = match self.outbox {
            Some(outbox) => outbox,
            None => outbox::from_disk(disk).map_err(files_error("the webhook outbox"))?,
        };
        let puzzles = self
            .puzzles
            .unwrap_or_else(|| Arc::new(MemoryPuzzleStore::new()));
        let invite_keys = match self.invite_keys {
            Some(store) => store,
            None => invite_key_store::from_config(disk, &puzzles)
                .map_err(files_error(invite_key_store::INVITE_KEYS_FILE))?,
        };
        let redemptions = match self.redemptions {
            Some(store) => store,
            None => {
                redemption::from_disk(disk).map_err(files_error(redemption::REDEMPTIONS_FILE))?
            }
        };
        let seams = Seams {
            clock,
            puzzles,
            sessions: self
                .sessions
                .unwrap_or_else(|| Arc::new(MemorySessionStore::new())),
            verifier: self
                .verifier
                .unwrap_or_else(|| Arc::new(Argon2Verifier::from_config(&config.limits))),
            invites,
            captcha: self
                .captcha
                .unwrap_or_else(|| captcha::from_config(&config.captcha)),
            webhook: self
                .webhook
                .or_else(|| webhook::from_config(&config.webhook)),
            outbox,
            events: self
                .events
                .unwrap_or_else(|| Arc::new(MemoryEventBus::new())),
            bans,
            audit,
            hashrate: self
                .hashrate
                .unwrap_or_else(|| Arc::new(MemoryHashrateStore::new())),
            lease: self
                .lease
                .unwrap_or_else(|| Arc::new(service::SoleInstance)),
            instances: self
                .instances
                .unwrap_or_else(|| Arc::new(service::SoleInstance)),
            redemptions,
            invite_keys,
        };
        let lockout = self
            .lockout
            .unwrap_or_else(|| Arc::new(MemoryAdminLockout::new()));
        let service = Arc::new(PuzzleService::new(config, seams));
        service.initialise().await?;
        invite_key_store::restore(
            &service.seams.invites,
            configured_key.as_ref(),
            service.seams.invite_keys.as_ref(),
        )
        .await?;
        let mut admin = AdminService::new(Arc::clone(&service), lockout);
        if self.volatile_admin_state {
            admin = admin.allowing_volatile_state();
        }
        let admin = Arc::new(admin);
        let jobs = self.jobs.then(|| Arc::new(service.spawn_jobs()));
        Ok(HashPass {
            service,
            admin,
            jobs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn jobs_start_with_the_instance_and_stop_with_its_last_clone() {
        let hashpass = HashPass::builder(Config::default().with_turnstile_test_mode(true))
            .build()
            .await
            .unwrap();
        assert!(hashpass.runs_background_jobs());
        let service = Arc::downgrade(hashpass.service());
        let clone = hashpass.clone();
        drop(hashpass);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(service.upgrade().is_some(), "a clone still runs the jobs");
        drop(clone);
        for _ in 0..200 {
            if service.upgrade().is_none() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(
            service.upgrade().is_none(),
            "the jobs were stopped and let go of the instance"
        );
        let manual = HashPass::builder(Config::default().with_turnstile_test_mode(true))
            .without_background_jobs()
            .build()
            .await
            .unwrap();
        assert!(!manual.runs_background_jobs());
    }
}
