//! Configuration, grouped by concern ([`GameConfig`], [`CaptchaConfig`], [`NetworkConfig`],
//! [`LimitsConfig`], [`AdminConfig`], [`InviteConfig`], [`WebhookConfig`]), each with its
//! defaults, and [`Config::from_lookup`], the one function that reads them from variables (the
//! original's names, docs/protocol.md#environment-variables, plus ours,
//! docs/protocol.md#differences-from-the-original). Secrets are [`Secret`]s and URLs that may
//! carry credentials [`SecretUrl`]s, so a derived `Debug` never shows them.

use std::net::IpAddr;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::puzzle::Argon2Params;

mod bounded;

pub use bounded::RateBounds;

/// A secret setting (a token, a key): its `Debug` shows `<redacted>`, never the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The secret itself, for the one place that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_string())
    }
}

/// A URL that may carry a credential in its user info, path or query: its `Debug` shows the
/// scheme, host and port only (see [`redact_url`]).
#[derive(Clone, PartialEq, Eq)]
pub struct SecretUrl(String);

impl SecretUrl {
    /// The whole URL, for the one place that connects to it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&redact_url(&self.0))
    }
}

impl From<String> for SecretUrl {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for SecretUrl {
    fn from(value: &str) -> Self {
        Self(value.to_string())
    }
}

/// Every setting of a HashPass instance, by concern.
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// The puzzle: difficulty, timing, Argon2 cost, the browsers' workers.
    pub game: GameConfig,
    /// The captcha that gates a new session.
    pub captcha: CaptchaConfig,
    /// What the server believes about its clients' connections.
    pub network: NetworkConfig,
    /// How much any one client may ask of the server.
    pub limits: LimitsConfig,
    /// The admin API and what it reads.
    pub admin: AdminConfig,
    /// The invite codes.
    pub invites: InviteConfig,
    /// The webhook told of every invite.
    pub webhook: WebhookConfig,
}

/// The puzzle and its timing.
#[derive(Clone, Debug)]
pub struct GameConfig {
    /// `HASHPASS_DIFFICULTY`: starting difficulty in leading zero bits.
    pub difficulty: u32,
    /// `HASHPASS_MIN_DIFFICULTY`: lower bound of automatic adjustment.
    pub min_difficulty: u32,
    /// `HASHPASS_MAX_DIFFICULTY`: upper bound of automatic adjustment.
    pub max_difficulty: u32,
    /// `HASHPASS_TARGET_TIME`: desired solve time, seconds.
    pub target_time: u64,
    /// `HASHPASS_TARGET_TIMEOUT`: mining time after which the puzzle times out, seconds.
    pub target_timeout: u64,
    /// `HASHPASS_ARGON2_TIME_COST` / `_MEMORY_COST` / `_PARALLELISM`.
    pub argon2: Argon2Params,
    /// `HASHPASS_WORKER_COUNT`: Web Workers each browser runs.
    pub worker_count: u32,
    /// `HASHPASS_MAX_NONCE_SPEED`: H/s above which a miner is flagged; 0 = off.
    pub max_nonce_speed: f64,
    /// A timeout's reward collection window (10 s).
    pub reward_window: Duration,
    /// Disconnected sessions stay usable this long (300 s).
    pub session_grace: Duration,
    /// Hashrate reports older than this are stale (10 s).
    pub hashrate_stale: Duration,
}

impl Default for GameConfig {
    /// The original's code defaults (docs/protocol.md#environment-variables).
    fn default() -> Self {
        Self {
            difficulty: 12,
            min_difficulty: 4,
            max_difficulty: 24,
            target_time: 75,
            target_timeout: 120,
            argon2: Argon2Params::default(),
            worker_count: 1,
            max_nonce_speed: 0.0,
            reward_window: Duration::from_secs(10),
            session_grace: Duration::from_secs(300),
            hashrate_stale: Duration::from_secs(10),
        }
    }
}

/// The captcha that gates a new session: Cloudflare Turnstile, or the offline one.
#[derive(Clone, Debug, Default)]
pub struct CaptchaConfig {
    /// `TURNSTILE_TEST_MODE`: offline captcha that accepts any non-empty token.
    pub test_mode: bool,
    /// `TURNSTILE_SITE_KEY`.
    pub site_key: Option<String>,
    /// `TURNSTILE_SECRET_KEY`.
    pub secret_key: Option<Secret>,
    /// `TURNSTILE_SITEVERIFY_URL`: where Turnstile tokens are checked.
    pub siteverify_url: Option<String>,
}

impl CaptchaConfig {
    /// Whether captchas are checked offline: test mode, or no Turnstile key pair configured
    /// (the standalone system then runs without Cloudflare, and `/api/dev/trace` is served).
    pub fn offline(&self) -> bool {
        self.test_mode || self.site_key.is_none() || self.secret_key.is_none()
    }
}

/// What the server believes about its clients' connections.
#[derive(Clone, Debug)]
pub struct NetworkConfig {
    /// `HASHPASS_TRUSTED_PROXIES`: peers whose client-IP header is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// `HASHPASS_CLIENT_IP_HEADER`: the header a trusted proxy sets (`CF-Connecting-IP`).
    pub client_ip_header: String,
    /// `HASHPASS_UA_FILTER`: refuse scripted clients on the public API
    /// (docs/protocol.md#user-agent-filter).
    pub ua_filter: bool,
    /// `HASHPASS_DEV_TRACE`: serve `/api/dev/trace` outside test mode.
    pub dev_trace: bool,
    /// A socket whose send does not complete in this time is closed as too slow (10 s).
    pub ws_send_timeout: Duration,
    /// What one client may hold of the connection edge, and the shutdown's drain deadline
    /// (docs/protocol.md#connections).
    pub connections: crate::edge::ConnectionLimits,
    /// The frames a player socket may send (docs/protocol.md#message-rate); beyond them it is
    /// closed with 1008. `None`: no limit (a host or test that meters clients itself).
    pub ws_message_rate: Option<crate::message_budget::MessageRate>,
}

impl NetworkConfig {
    /// The effective client IP (docs/protocol.md#client-ip): the TCP peer, unless the peer is a
    /// trusted proxy and the configured header names a valid address. For `X-Forwarded-For` every
    /// line of the header is one list, in order (RFC 9110 §5.3), and the right-most untrusted hop
    /// wins (an entry that is not an address stops the walk at the nearest trusted hop); any other
    /// header must be sent exactly once.
    pub fn client_ip(&self, peer: IpAddr, headers: &http::HeaderMap) -> IpAddr {
        let peer = canonical_ip(peer);
        let trusted = |ip: IpAddr| self.trusted_proxies.iter().any(|net| net.contains(ip));
        if !trusted(peer) {
            return peer;
        }
        let header = self.client_ip_header.as_str();
        let lines: Vec<&[u8]> = headers
            .get_all(header)
            .iter()
            .map(|v| v.as_bytes())
            .collect();
        if !header.eq_ignore_ascii_case("x-forwarded-for") {
            return match lines.as_slice() {
                [one] => hop_address(one).unwrap_or(peer),
                _ => peer,
            };
        }
        // Each element on its own: a client's bytes in one element never hide the proxy's.
        let hops: Vec<&[u8]> = lines
            .iter()
            .flat_map(|line| line.split(|b| *b == b','))
            .collect();
        let mut nearest = peer;
        for hop in hops.into_iter().rev() {
            match hop_address(hop) {
                Some(ip) if trusted(ip) => nearest = ip,
                Some(ip) => return ip,
                None => return nearest,
            }
        }
        nearest
    }
}

/// One hop of a client-IP header: an address, or an address with a port (`192.0.2.1:4711`,
/// `[2001:db8::1]:4711`, as some proxies write it); `None` for anything else.
fn hop_address(hop: &[u8]) -> Option<IpAddr> {
    let text = std::str::from_utf8(hop).ok()?.trim();
    text.parse::<IpAddr>()
        .ok()
        .or_else(|| text.parse::<std::net::SocketAddr>().ok().map(|a| a.ip()))
        .map(canonical_ip)
}

impl Default for NetworkConfig {
    fn default() -> Self {
        Self {
            trusted_proxies: Vec::new(),
            client_ip_header: "CF-Connecting-IP".into(),
            ua_filter: true,
            dev_trace: false,
            ws_send_timeout: Duration::from_secs(10),
            connections: crate::edge::ConnectionLimits::default(),
            ws_message_rate: Some(crate::message_budget::MessageRate::DEFAULT),
        }
    }
}

/// How much any one client may ask of the server.
#[derive(Clone, Debug)]
pub struct LimitsConfig {
    /// `HASHPASS_MAX_BODY_BYTES`: largest request body accepted.
    pub max_body_bytes: usize,
    /// `HASHPASS_MAX_CONNECTIONS_PER_IP`: player sockets per IP; 0 = unlimited.
    pub max_connections_per_ip: u32,
    /// `HASHPASS_VERIFY_MEMORY_BUDGET_MB`: Argon2 memory of concurrent verifications.
    pub verify_memory_budget_mb: u32,
    /// `HASHPASS_VERIFY_QUEUE`: verifications that may wait for memory before 503.
    pub verify_queue: usize,
    /// `HASHPASS_SUBMIT_RATE`: verify/submit calls per session per window ("4/10" = 4 per
    /// 10 s; 0 = off).
    pub submit_limit: u32,
    /// Window of the per-session submission limit.
    pub submit_window: Duration,
    /// `HASHPASS_ADDRESS_SUBMIT_RATE`: verify/submit calls per client address (an IPv6 /64
    /// counts as one) per window, all its sessions together ("12/10"; 0 = off).
    pub address_submit_limit: u32,
    /// Window of the per-address submission limit.
    pub address_submit_window: Duration,
    /// `HASHPASS_SESSIONS_PER_ADDRESS`: sessions of one client address that count as alive,
    /// disconnected ones in their grace period included; a new one beyond it revokes the
    /// oldest (4; 0 = unlimited).
    pub sessions_per_address: usize,
    /// `HASHPASS_VERIFY_RUNNING_PER_ADDRESS`: verifications of one address that run at once (1).
    pub verify_running_per_address: u32,
    /// `HASHPASS_VERIFY_WAITING_PER_ADDRESS`: verifications of one address that may wait; more
    /// are answered 429 at once (2).
    pub verify_waiting_per_address: usize,
    /// `HASHPASS_VERIFY_FAILURE_MEMORY`: seconds a failed Argon2 verification keeps its address
    /// behind those with a clean record (600).
    pub verify_failure_memory: Duration,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 16 * 1024,
            max_connections_per_ip: 1,
            verify_memory_budget_mb: crate::verify::Argon2Verifier::default_budget_mib(),
            verify_queue: 64,
            submit_limit: 4,
            submit_window: Duration::from_secs(10),
            address_submit_limit: 12,
            address_submit_window: Duration::from_secs(10),
            sessions_per_address: 4,
            verify_running_per_address: 1,
            verify_waiting_per_address: 2,
            verify_failure_memory: Duration::from_secs(600),
        }
    }
}

/// The admin API and what it reads.
#[derive(Clone, Debug)]
pub struct AdminConfig {
    /// `ADMIN_TOKEN`: bearer token of the admin API; `None` disables it (401).
    pub token: Option<Secret>,
    /// Failures from one address before it is locked out (10).
    pub max_failures: u32,
    /// Length of a lockout (300 s).
    pub lockout: Duration,
    /// `HASHPASS_METRICS_PUBLIC`: serve `/api/metrics` without the admin token.
    pub metrics_public: bool,
    /// `HASHPASS_LOG_DIR`: the application logs the `applogs` endpoint reads.
    pub log_dir: PathBuf,
    /// `HASHPASS_AUDIT_ROTATION`: audit records per file before rotation (1000).
    pub audit_rotation: usize,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            token: None,
            max_failures: 10,
            lockout: Duration::from_secs(300),
            metrics_public: false,
            log_dir: PathBuf::from("log"),
            audit_rotation: 1000,
        }
    }
}

/// The invite codes.
#[derive(Clone, Debug, Default)]
pub struct InviteConfig {
    /// `HASHPASS_HMAC_SECRET`: hex key of invite codes; `None` = 32 random bytes per start.
    pub hmac_secret: Option<Secret>,
    /// `HASHPASS_INVITE_TTL`: seconds an invite code stays valid; 0 = forever.
    pub ttl: u64,
}

impl InviteConfig {
    /// The configured signing key, `None` when unset.
    pub fn key(&self) -> Result<Option<crate::invite::InviteKey>, ConfigError> {
        self.hmac_secret
            .as_ref()
            .map(|hex_key| {
                crate::invite::InviteKey::from_hex(hex_key.expose())
                    .map_err(|e| ConfigError::new("HASHPASS_HMAC_SECRET", e.to_string()))
            })
            .transpose()
    }
}

/// The webhook told of every invite, and its outbox's retries.
#[derive(Clone, Debug)]
pub struct WebhookConfig {
    /// `WEBHOOK_URL`: POSTed after every invite; `None` = no webhook.
    pub url: Option<SecretUrl>,
    /// `WEBHOOK_TOKEN`: bearer token of webhook calls.
    pub token: Option<Secret>,
    /// `WEBHOOK_SECRET`: signs webhook bodies (`X-HashPass-Signature` and
    /// `X-HashPass-Timestamped-Signature`).
    pub secret: Option<Secret>,
    /// `HASHPASS_WEBHOOK_MAX_BACKOFF`: the longest wait between two attempts (60 s).
    pub max_backoff: Duration,
    /// `HASHPASS_WEBHOOK_GIVE_UP_AFTER`: a delivery still failing this long after its invite is
    /// given up and kept as failed (24 h); zero = never.
    pub give_up_after: Duration,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            url: None,
            token: None,
            secret: None,
            max_backoff: Duration::from_secs(60),
            give_up_after: Duration::from_secs(24 * 3600),
        }
    }
}

macro_rules! with {
    ($(#[$doc:meta] $name:ident: $group:ident.$field:ident: $ty:ty),* $(,)?) => {
        impl Config {
            $(
                #[$doc]
                pub fn $name(mut self, value: $ty) -> Self {
                    self.$group.$field = value;
                    self
                }
            )*
        }
    };
}

with! {
    /// Sets the starting difficulty.
    with_difficulty: game.difficulty: u32,
    /// Sets the lower difficulty bound.
    with_min_difficulty: game.min_difficulty: u32,
    /// Sets the upper difficulty bound.
    with_max_difficulty: game.max_difficulty: u32,
    /// Sets the target solve time in seconds.
    with_target_time: game.target_time: u64,
    /// Sets the timeout in seconds of mining time.
    with_target_timeout: game.target_timeout: u64,
    /// Sets the Argon2 parameters.
    with_argon2: game.argon2: Argon2Params,
    /// Sets the number of browser workers.
    with_worker_count: game.worker_count: u32,
    /// Sets the max nonce speed (0 = off).
    with_max_nonce_speed: game.max_nonce_speed: f64,
    /// Sets the timeout reward window.
    with_reward_window: game.reward_window: Duration,
    /// Sets the session reconnect grace.
    with_session_grace: game.session_grace: Duration,
    /// Switches the offline test captcha on or off.
    with_turnstile_test_mode: captcha.test_mode: bool,
    /// Sets the trusted proxies.
    with_trusted_proxies: network.trusted_proxies: Vec<IpNet>,
    /// Sets the client-IP header name.
    with_client_ip_header: network.client_ip_header: String,
    /// Switches the User-Agent filter.
    with_ua_filter: network.ua_filter: bool,
    /// Serves `/api/dev/trace` even outside test mode.
    with_dev_trace: network.dev_trace: bool,
    /// Sets the socket send timeout.
    with_ws_send_timeout: network.ws_send_timeout: Duration,
    /// Sets the frames a player socket may send (`None`: no limit).
    with_ws_message_rate: network.ws_message_rate: Option<crate::message_budget::MessageRate>,
    /// Sets the largest accepted body.
    with_max_body_bytes: limits.max_body_bytes: usize,
    /// Sets the player sockets allowed per IP (0 = unlimited).
    with_max_connections_per_ip: limits.max_connections_per_ip: u32,
    /// Sets the verification memory budget in MiB.
    with_verify_memory_budget_mb: limits.verify_memory_budget_mb: u32,
    /// Sets how many verifications may wait.
    with_verify_queue: limits.verify_queue: usize,
    /// Sets the submissions allowed per session per window (0 = unlimited).
    with_submit_limit: limits.submit_limit: u32,
    /// Sets the submission-limit window.
    with_submit_window: limits.submit_window: Duration,
    /// Sets the submissions allowed per client address per window (0 = unlimited).
    with_address_submit_limit: limits.address_submit_limit: u32,
    /// Sets the sessions of one client address that count as alive (0 = unlimited).
    with_sessions_per_address: limits.sessions_per_address: usize,
    /// Sets the verifications of one address that may wait.
    with_verify_waiting_per_address: limits.verify_waiting_per_address: usize,
    /// Sets the verifications of one address that run at once.
    with_verify_running_per_address: limits.verify_running_per_address: u32,
    /// Sets how long a failed verification keeps its address behind the clean ones.
    with_verify_failure_memory: limits.verify_failure_memory: Duration,
    /// Sets the admin token (`None` disables the admin API).
    with_admin_token: admin.token: Option<Secret>,
    /// Serves metrics without the admin token.
    with_metrics_public: admin.metrics_public: bool,
    /// Sets the directory of the application logs.
    with_log_dir: admin.log_dir: PathBuf,
    /// Sets the audit records per file before rotation.
    with_audit_rotation: admin.audit_rotation: usize,
    /// Sets the invite HMAC key (hex).
    with_hmac_secret: invites.hmac_secret: Option<Secret>,
    /// Sets the invite TTL in seconds (0 = forever).
    with_invite_ttl: invites.ttl: u64,
    /// Sets the webhook URL.
    with_webhook_url: webhook.url: Option<SecretUrl>,
    /// Sets the webhook bearer token.
    with_webhook_token: webhook.token: Option<Secret>,
    /// Sets the webhook signing secret.
    with_webhook_secret: webhook.secret: Option<Secret>,
    /// Sets the longest wait between two webhook attempts.
    with_webhook_max_backoff: webhook.max_backoff: Duration,
    /// Sets how long a failing webhook delivery is retried before it is given up (zero: never).
    with_webhook_give_up_after: webhook.give_up_after: Duration,
}

/// Every variable [`Config::read`] reads (`hashpass_examples::ServerSettings` reads a few more for
/// the example servers).
pub const VARIABLES: &[&str] = &[
    "ADMIN_TOKEN",
    "HASHPASS_ADDRESS_SUBMIT_RATE",
    "HASHPASS_ARGON2_MEMORY_COST",
    "HASHPASS_ARGON2_PARALLELISM",
    "HASHPASS_ARGON2_TIME_COST",
    "HASHPASS_AUDIT_ROTATION",
    "HASHPASS_BODY_READ_TIMEOUT",
    "HASHPASS_CLIENT_IP_HEADER",
    "HASHPASS_CONNECTIONS_PER_ADDRESS",
    "HASHPASS_DEV_TRACE",
    "HASHPASS_DIFFICULTY",
    "HASHPASS_DRAIN_DEADLINE",
    "HASHPASS_HEADER_READ_TIMEOUT",
    "HASHPASS_HMAC_SECRET",
    "HASHPASS_IDLE_TIMEOUT",
    "HASHPASS_INVITE_TTL",
    "HASHPASS_LOG_DIR",
    "HASHPASS_MAX_BODY_BYTES",
    "HASHPASS_MAX_CONNECTIONS_PER_IP",
    "HASHPASS_MAX_DIFFICULTY",
    "HASHPASS_MAX_NONCE_SPEED",
    "HASHPASS_METRICS_PUBLIC",
    "HASHPASS_MIN_DIFFICULTY",
    "HASHPASS_SESSIONS_PER_ADDRESS",
    "HASHPASS_SUBMIT_RATE",
    "HASHPASS_TARGET_TIME",
    "HASHPASS_TARGET_TIMEOUT",
    "HASHPASS_TRUSTED_PROXIES",
    "HASHPASS_UA_FILTER",
    "HASHPASS_VERIFY_FAILURE_MEMORY",
    "HASHPASS_VERIFY_MEMORY_BUDGET_MB",
    "HASHPASS_VERIFY_QUEUE",
    "HASHPASS_VERIFY_RUNNING_PER_ADDRESS",
    "HASHPASS_VERIFY_WAITING_PER_ADDRESS",
    "HASHPASS_WEBHOOK_GIVE_UP_AFTER",
    "HASHPASS_WEBHOOK_MAX_BACKOFF",
    "HASHPASS_WORKER_COUNT",
    "TURNSTILE_SECRET_KEY",
    "TURNSTILE_SITEVERIFY_URL",
    "TURNSTILE_SITE_KEY",
    "TURNSTILE_TEST_MODE",
    "WEBHOOK_SECRET",
    "WEBHOOK_TOKEN",
    "WEBHOOK_URL",
];

/// The longest invite lifetime `HASHPASS_INVITE_TTL` accepts: ten years.
pub const MAX_INVITE_TTL_SECS: u64 = 10 * 365 * 24 * 3600;

/// The shortest admin token accepted.
pub const MIN_ADMIN_TOKEN_CHARS: usize = 16;

/// The admin token `.env.example` shows, refused as a real one.
pub const EXAMPLE_ADMIN_TOKEN: &str = "change-me-to-a-long-random-string";

/// A URL as logs may show it: scheme, host and port; credentials, path and query (which often
/// carry a token) replaced by `…`.
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit('@').next().unwrap_or_default();
    let hidden = authority.contains('@') || rest.len() > authority.len();
    match (scheme.is_empty(), hidden) {
        (true, _) => "…".into(),
        (false, true) => format!("{scheme}://{host}/…"),
        (false, false) => format!("{scheme}://{host}"),
    }
}

/// A configuration value that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name}: {message}")]
pub struct ConfigError {
    /// The environment variable.
    pub name: String,
    /// What is wrong with it.
    pub message: String,
}

impl ConfigError {
    /// The variable `name` is wrong: `message` says how.
    pub fn new(name: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            message: message.into(),
        }
    }
}

/// Typed reads of named settings from a lookup (the environment, a map in tests): values are
/// trimmed, empty ones count as unset, numbers are read only within the bounds the caller gives
/// (one bounded parser per kind: whole numbers, seconds, decimals, rates; never a panic on any
/// text), and every error names its variable. A host or an example server reads its own
/// settings with it beside [`Config::read`].
pub struct Variables<F> {
    lookup: F,
}

impl<F> std::fmt::Debug for Variables<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Variables").finish_non_exhaustive()
    }
}

impl Variables<fn(&str) -> Option<String>> {
    /// The process environment.
    pub fn from_env() -> Self {
        Self::new(|name| std::env::var(name).ok())
    }
}

impl<F: Fn(&str) -> Option<String>> Variables<F> {
    /// Reads through `lookup` (a variable name → its value).
    pub fn new(lookup: F) -> Self {
        Self { lookup }
    }

    /// The variable's text, `None` when unset or empty.
    pub fn text(&self, name: &str) -> Option<String> {
        (self.lookup)(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    /// A whole number within `bounds`, `None` when unset. Every number is read with its bounds
    /// (here, [`Variables::seconds`], [`Variables::decimal`] or [`Variables::rate`]), so no value
    /// can overflow what is computed from it.
    pub fn whole<T>(&self, name: &str, bounds: RangeInclusive<T>) -> Result<Option<T>, ConfigError>
    where
        T: FromStr + PartialOrd + std::fmt::Display,
    {
        self.text(name)
            .map(|v| bounded::whole(name, &v, &bounds))
            .transpose()
    }

    /// A whole number of seconds within `bounds`, `None` when unset.
    pub fn seconds(
        &self,
        name: &str,
        bounds: RangeInclusive<u64>,
    ) -> Result<Option<Duration>, ConfigError> {
        self.text(name)
            .map(|v| bounded::seconds(name, &v, &bounds))
            .transpose()
    }

    /// A finite decimal number within `bounds`, `None` when unset.
    pub fn decimal(
        &self,
        name: &str,
        bounds: RangeInclusive<f64>,
    ) -> Result<Option<f64>, ConfigError> {
        self.text(name)
            .map(|v| bounded::decimal(name, &v, &bounds))
            .transpose()
    }

    /// A rate `N/S` (N calls per S seconds) or `N` (per 10 s) within `bounds`, as the count and
    /// the window; `None` when unset.
    pub fn rate(
        &self,
        name: &str,
        bounds: &RateBounds,
    ) -> Result<Option<(u32, Duration)>, ConfigError> {
        self.text(name)
            .map(|v| bounded::rate(name, &v, bounds))
            .transpose()
    }

    /// Comma-separated networks whose client-IP header is believed, `None` when unset; a list
    /// that trusts every address of IPv4 or IPv6 is refused.
    pub fn trusted_networks(&self, name: &str) -> Result<Option<Vec<IpNet>>, ConfigError> {
        self.text(name)
            .map(|v| bounded::trusted_networks(name, &v))
            .transpose()
    }

    /// A boolean: true/false, 1/0, yes/no, on/off (any case), `None` when unset; anything else
    /// is an error, so a typo never silently means "off".
    pub fn flag(&self, name: &str) -> Result<Option<bool>, ConfigError> {
        let Some(value) = self.text(name) else {
            return Ok(None);
        };
        match value.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(Some(true)),
            "false" | "0" | "no" | "off" => Ok(Some(false)),
            _ => Err(ConfigError::new(
                name,
                format!("{value:?} is not a boolean (use true/false, 1/0, yes/no or on/off)"),
            )),
        }
    }
}

impl Config {
    /// Reads the process environment (see [`Config::from_lookup`]).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::read(&Variables::from_env())
    }

    /// Reads every setting through `lookup` (a variable name → its value), starting from the
    /// defaults. Empty values count as unset. Unknown variables are ignored.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Self::read(&Variables::new(lookup))
    }

    /// Reads every setting from `vars`, starting from the defaults, and validates the result.
    pub fn read<F: Fn(&str) -> Option<String>>(vars: &Variables<F>) -> Result<Self, ConfigError> {
        let mut config = Config::default();
        config.game.read(vars)?;
        config.captcha.read(vars)?;
        config.network.read(vars)?;
        config.limits.read(vars)?;
        config.admin.read(vars)?;
        config.invites.read(vars)?;
        config.webhook.read(vars)?;
        config.validate()?;
        Ok(config)
    }

    /// Checks the settings against each other; start-up refuses a configuration that fails.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.game.validate()?;
        self.captcha.validate()?;
        bounded::refuse_trusting_everyone(
            "HASHPASS_TRUSTED_PROXIES",
            &self.network.trusted_proxies,
        )?;
        self.limits.validate()?;
        self.network.connections.validate()?;
        self.admin.validate()?;
        self.invites.key()?;
        Ok(())
    }
}

impl GameConfig {
    fn read<F: Fn(&str) -> Option<String>>(
        &mut self,
        vars: &Variables<F>,
    ) -> Result<(), ConfigError> {
        let argon2 = &mut self.argon2;
        self.difficulty = vars
            .whole("HASHPASS_DIFFICULTY", 1..=256)?
            .unwrap_or(self.difficulty);
        self.min_difficulty = vars
            .whole("HASHPASS_MIN_DIFFICULTY", 1..=64)?
            .unwrap_or(self.min_difficulty);
        self.max_difficulty = vars
            .whole("HASHPASS_MAX_DIFFICULTY", 1..=64)?
            .unwrap_or(self.max_difficulty);
        self.target_time = vars
            .whole("HASHPASS_TARGET_TIME", 1..=86_400)?
            .unwrap_or(self.target_time);
        self.target_timeout = vars
            .whole("HASHPASS_TARGET_TIMEOUT", 2..=604_800)?
            .unwrap_or(self.target_timeout);
        argon2.time_cost = vars
            .whole("HASHPASS_ARGON2_TIME_COST", 1..=16)?
            .unwrap_or(argon2.time_cost);
        argon2.memory_cost = vars
            .whole("HASHPASS_ARGON2_MEMORY_COST", 8..=1_048_576)?
            .unwrap_or(argon2.memory_cost);
        argon2.parallelism = vars
            .whole("HASHPASS_ARGON2_PARALLELISM", 1..=16)?
            .unwrap_or(argon2.parallelism);
        self.worker_count = vars
            .whole("HASHPASS_WORKER_COUNT", 1..=32)?
            .unwrap_or(self.worker_count);
        self.max_nonce_speed = vars
            .decimal("HASHPASS_MAX_NONCE_SPEED", 0.0..=1e12)?
            .unwrap_or(self.max_nonce_speed);
        Ok(())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.argon2.validate().map_err(|m| {
            let a = &self.argon2;
            let name = if !(1..=16).contains(&a.time_cost) {
                "HASHPASS_ARGON2_TIME_COST"
            } else if !(1..=16).contains(&a.parallelism) {
                "HASHPASS_ARGON2_PARALLELISM"
            } else {
                "HASHPASS_ARGON2_MEMORY_COST"
            };
            ConfigError::new(name, m)
        })?;
        let fail = |name: &str, message: &str| Err(ConfigError::new(name, message));
        if !(1..=64).contains(&self.min_difficulty) {
            return fail("HASHPASS_MIN_DIFFICULTY", "must lie in 1..64");
        }
        if !(1..=64).contains(&self.max_difficulty) {
            return fail("HASHPASS_MAX_DIFFICULTY", "must lie in 1..64");
        }
        if self.min_difficulty > self.max_difficulty {
            return fail(
                "HASHPASS_MIN_DIFFICULTY",
                "must not exceed HASHPASS_MAX_DIFFICULTY",
            );
        }
        if !(1..=256).contains(&self.difficulty) {
            return fail("HASHPASS_DIFFICULTY", "must lie in 1..256");
        }
        if self.target_time == 0 || self.target_timeout <= self.target_time {
            return fail(
                "HASHPASS_TARGET_TIMEOUT",
                "target_time must be >= 1 and target_timeout greater than target_time",
            );
        }
        if !(1..=32).contains(&self.worker_count) {
            return fail("HASHPASS_WORKER_COUNT", "must lie in 1..32");
        }
        if !(self.max_nonce_speed.is_finite() && self.max_nonce_speed >= 0.0) {
            return fail("HASHPASS_MAX_NONCE_SPEED", "must be a finite number >= 0");
        }
        Ok(())
    }
}

impl CaptchaConfig {
    fn read<F: Fn(&str) -> Option<String>>(
        &mut self,
        vars: &Variables<F>,
    ) -> Result<(), ConfigError> {
        let test_mode = vars.flag("TURNSTILE_TEST_MODE")?;
        self.test_mode = test_mode.unwrap_or(false);
        self.site_key = vars.text("TURNSTILE_SITE_KEY");
        self.secret_key = vars.text("TURNSTILE_SECRET_KEY").map(Secret);
        self.siteverify_url = vars.text("TURNSTILE_SITEVERIFY_URL");
        if test_mode == Some(false) {
            // Test mode switched off on purpose: the real captcha or nothing, never the offline
            // one that lets any token pass.
            for (name, set) in [
                ("TURNSTILE_SITE_KEY", self.site_key.is_some()),
                ("TURNSTILE_SECRET_KEY", self.secret_key.is_some()),
            ] {
                if !set {
                    return Err(ConfigError::new(
                        name,
                        "is required with TURNSTILE_TEST_MODE=false (set both Turnstile keys, or TURNSTILE_TEST_MODE=true for the offline captcha)",
                    ));
                }
            }
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.test_mode {
            return self.validate_test_mode();
        }
        if self.site_key.is_some() == self.secret_key.is_some() {
            return Ok(());
        }
        let missing = if self.site_key.is_none() {
            "TURNSTILE_SITE_KEY"
        } else {
            "TURNSTILE_SECRET_KEY"
        };
        Err(ConfigError::new(
            missing,
            "is required when the other Turnstile key is set (set both, or neither for the offline captcha)",
        ))
    }
}

impl CaptchaConfig {
    /// Test mode runs the offline captcha, which lets any token pass: refused beside a key that
    /// is not one of Cloudflare's published test keys, since real keys mean a production site
    /// that would then be open to anyone. Test mode alone (the offline default) and test mode
    /// with the test keys (the original's development settings) are accepted.
    fn validate_test_mode(&self) -> Result<(), ConfigError> {
        use crate::captcha::{TEST_SECRET_KEYS, TEST_SITE_KEYS};
        let real = |key: Option<&str>, tests: &[&str]| key.is_some_and(|k| !tests.contains(&k));
        let which = if real(self.site_key.as_deref(), &TEST_SITE_KEYS) {
            "TURNSTILE_SITE_KEY"
        } else if real(
            self.secret_key.as_ref().map(Secret::expose),
            &TEST_SECRET_KEYS,
        ) {
            "TURNSTILE_SECRET_KEY"
        } else {
            return Ok(());
        };
        Err(ConfigError::new(
            "TURNSTILE_TEST_MODE",
            format!(
                "is on while {which} is a real Turnstile key: test mode runs the offline captcha, \
                 which lets any token pass, so this site would be open to every script. Unset \
                 TURNSTILE_TEST_MODE (or set it to false) to use Turnstile with these keys; for \
                 development, leave the keys unset or use Cloudflare's published test keys"
            ),
        ))
    }
}

impl NetworkConfig {
    fn read<F: Fn(&str) -> Option<String>>(
        &mut self,
        vars: &Variables<F>,
    ) -> Result<(), ConfigError> {
        if let Some(networks) = vars.trusted_networks("HASHPASS_TRUSTED_PROXIES")? {
            self.trusted_proxies = networks;
        }
        if let Some(header) = vars.text("HASHPASS_CLIENT_IP_HEADER") {
            if http::HeaderName::from_bytes(header.as_bytes()).is_err() {
                return Err(ConfigError::new(
                    "HASHPASS_CLIENT_IP_HEADER",
                    format!("{header:?} is not a valid header name"),
                ));
            }
            self.client_ip_header = header;
        }
        self.ua_filter = vars.flag("HASHPASS_UA_FILTER")?.unwrap_or(true);
        self.dev_trace = vars.flag("HASHPASS_DEV_TRACE")?.unwrap_or(false);
        let edge = &mut self.connections;
        if let Some(n) = vars.whole("HASHPASS_CONNECTIONS_PER_ADDRESS", 0..=1_000_000)? {
            edge.per_address = n;
        }
        for (name, slot) in [
            (
                "HASHPASS_HEADER_READ_TIMEOUT",
                &mut edge.header_read_timeout,
            ),
            ("HASHPASS_IDLE_TIMEOUT", &mut edge.idle_timeout),
            ("HASHPASS_BODY_READ_TIMEOUT", &mut edge.body_read_timeout),
            ("HASHPASS_DRAIN_DEADLINE", &mut edge.drain_deadline),
        ] {
            if let Some(duration) = vars.seconds(name, 1..=3_600)? {
                *slot = duration;
            }
        }
        Ok(())
    }
}

impl LimitsConfig {
    fn read<F: Fn(&str) -> Option<String>>(
        &mut self,
        vars: &Variables<F>,
    ) -> Result<(), ConfigError> {
        self.max_body_bytes = vars
            .whole("HASHPASS_MAX_BODY_BYTES", 1024..=16 * 1024 * 1024)?
            .unwrap_or(self.max_body_bytes);
        self.max_connections_per_ip = vars
            .whole("HASHPASS_MAX_CONNECTIONS_PER_IP", 0..=10_000)?
            .unwrap_or(self.max_connections_per_ip);
        self.verify_memory_budget_mb = vars
            .whole("HASHPASS_VERIFY_MEMORY_BUDGET_MB", 1..=1_048_576)?
            .unwrap_or(self.verify_memory_budget_mb);
        self.verify_queue = vars
            .whole("HASHPASS_VERIFY_QUEUE", 0..=100_000)?
            .unwrap_or(self.verify_queue);
        self.sessions_per_address = vars
            .whole("HASHPASS_SESSIONS_PER_ADDRESS", 0..=10_000)?
            .unwrap_or(self.sessions_per_address);
        self.verify_running_per_address = vars
            .whole("HASHPASS_VERIFY_RUNNING_PER_ADDRESS", 1..=1_000)?
            .unwrap_or(self.verify_running_per_address);
        self.verify_waiting_per_address = vars
            .whole("HASHPASS_VERIFY_WAITING_PER_ADDRESS", 1..=1_000)?
            .unwrap_or(self.verify_waiting_per_address);
        self.verify_failure_memory = vars
            .seconds("HASHPASS_VERIFY_FAILURE_MEMORY", 0..=604_800)?
            .unwrap_or(self.verify_failure_memory);
        if let Some(rate) = vars.rate("HASHPASS_SUBMIT_RATE", &SUBMIT_RATE_BOUNDS)? {
            (self.submit_limit, self.submit_window) = rate;
        }
        if let Some(rate) = vars.rate("HASHPASS_ADDRESS_SUBMIT_RATE", &SUBMIT_RATE_BOUNDS)? {
            (self.address_submit_limit, self.address_submit_window) = rate;
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.verify_running_per_address == 0 {
            return Err(ConfigError::new(
                "HASHPASS_VERIFY_RUNNING_PER_ADDRESS",
                "must be at least 1",
            ));
        }
        if self.verify_waiting_per_address == 0 {
            return Err(ConfigError::new(
                "HASHPASS_VERIFY_WAITING_PER_ADDRESS",
                "must be at least 1 (0 would refuse every verification)",
            ));
        }
        Ok(())
    }
}

/// The bounds of `HASHPASS_SUBMIT_RATE` and `HASHPASS_ADDRESS_SUBMIT_RATE`: up to a million
/// calls (0 = no limit) per window of a millisecond to a day.
const SUBMIT_RATE_BOUNDS: RateBounds = RateBounds {
    count: 0..=1_000_000,
    window_secs: 0.001..=86_400.0,
};

impl AdminConfig {
    fn read<F: Fn(&str) -> Option<String>>(
        &mut self,
        vars: &Variables<F>,
    ) -> Result<(), ConfigError> {
        self.token = vars.text("ADMIN_TOKEN").map(Secret);
        self.metrics_public = vars.flag("HASHPASS_METRICS_PUBLIC")?.unwrap_or(false);
        if let Some(dir) = vars.text("HASHPASS_LOG_DIR") {
            self.log_dir = dir.into();
        }
        self.audit_rotation = vars
            .whole("HASHPASS_AUDIT_ROTATION", 1..=10_000_000)?
            .unwrap_or(self.audit_rotation);
        Ok(())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let Some(token) = &self.token else {
            return Ok(());
        };
        if token.expose().chars().count() < MIN_ADMIN_TOKEN_CHARS {
            return Err(ConfigError::new(
                "ADMIN_TOKEN",
                format!(
                    "is shorter than {MIN_ADMIN_TOKEN_CHARS} characters; use a long random string (openssl rand -hex 32)"
                ),
            ));
        }
        if token.expose() == EXAMPLE_ADMIN_TOKEN {
            return Err(ConfigError::new(
                "ADMIN_TOKEN",
                "is still the placeholder from .env.example; set a long random string of your own (openssl rand -hex 32)",
            ));
        }
        Ok(())
    }
}

impl InviteConfig {
    fn read<F: Fn(&str) -> Option<String>>(
        &mut self,
        vars: &Variables<F>,
    ) -> Result<(), ConfigError> {
        self.hmac_secret = vars.text("HASHPASS_HMAC_SECRET").map(Secret);
        self.ttl = vars
            .whole("HASHPASS_INVITE_TTL", 0..=MAX_INVITE_TTL_SECS)?
            .unwrap_or(self.ttl);
        Ok(())
    }
}

impl WebhookConfig {
    fn read<F: Fn(&str) -> Option<String>>(
        &mut self,
        vars: &Variables<F>,
    ) -> Result<(), ConfigError> {
        self.url = vars.text("WEBHOOK_URL").map(SecretUrl);
        self.token = vars.text("WEBHOOK_TOKEN").map(Secret);
        self.secret = vars.text("WEBHOOK_SECRET").map(Secret);
        self.max_backoff = vars
            .seconds("HASHPASS_WEBHOOK_MAX_BACKOFF", 1..=86_400)?
            .unwrap_or(self.max_backoff);
        self.give_up_after = vars
            .seconds("HASHPASS_WEBHOOK_GIVE_UP_AFTER", 0..=31_536_000)?
            .unwrap_or(self.give_up_after);
        Ok(())
    }
}

/// An IP network in CIDR notation (`10.0.0.0/8`, `::1/128`; a bare address is a single host).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// Whether `ip` lies inside this network (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical_ip(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for IpNet {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let written: IpAddr = addr
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address or CIDR network"))?;
        let max = if written.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?} has an invalid prefix length"))?,
        };
        let addr = canonical_ip(written);
        if addr == written {
            return Ok(Self { addr, prefix });
        }
        // An IPv4-mapped network (`::ffff:10.0.0.0/104`) is the IPv4 network it maps.
        let prefix = prefix.checked_sub(96).ok_or_else(|| {
            format!("{s:?} is an IPv4-mapped address with a prefix shorter than /96; write the IPv4 network instead")
        })?;
        Ok(Self { addr, prefix })
    }
}

/// The address a client is counted as for fairness and limits: its IPv4 address, or the /64
/// network of its IPv6 address (one subscriber's usual allocation), as `…::` with the host bits
/// zeroed. IPv4-mapped addresses count as IPv4.
pub fn counted_address(ip: IpAddr) -> IpAddr {
    match canonical_ip(ip) {
        IpAddr::V6(v6) => IpAddr::V6(std::net::Ipv6Addr::from(u128::from(v6) & (u128::MAX << 64))),
        v4 => v4,
    }
}

/// Folds an IPv4-mapped IPv6 address (`::ffff:1.2.3.4`) to plain IPv4.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    /// Text a variable may hold: anything, and the shapes that reach deeper into the parsers
    /// (numbers, signs, exponents, rates, networks, keys, the published test keys).
    fn any_value() -> impl Strategy<Value = String> {
        let special = prop::sample::select(vec![
            "NaN",
            "inf",
            "-inf",
            "0",
            "1",
            "-1",
            "1e30",
            "4/1e30",
            "4/0",
            "0/0",
            "true",
            "false",
            "0.0.0.0/0",
            "::/0",
            "::ffff:0.0.0.0/96",
            "18446744073709551616",
            "1x00000000000000000000AA",
            "1x0000000000000000000000000000000AA",
            "00112233445566778899aabbccddeeff",
        ])
        .prop_map(String::from);
        prop_oneof![
            any::<String>(),
            "[ 0-9.eE+-]{0,24}",
            "-?[0-9]{1,25}(/ ?-?[0-9.eE+-]{0,10})?",
            "[0-9a-f:./, ]{0,40}",
            special,
        ]
    }

    /// Text that is often a value some variable accepts (small numbers, rates, booleans), so
    /// that many variables at once get past their parsers, and sometimes anything.
    fn likely_value() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => "[0-9]{1,4}",
            1 => "[0-9]{1,3}/[0-9]{1,3}(\\.[0-9])?",
            1 => prop::sample::select(vec!["true", "false"]).prop_map(String::from),
            1 => any_value(),
        ]
    }

    /// Reads `vars`: a configuration, which must then be valid and build, or an error naming
    /// one of the variables.
    fn read_and_build(vars: &HashMap<String, String>) -> Result<(), TestCaseError> {
        match Config::from_lookup(|k| vars.get(k).cloned()) {
            Err(e) => prop_assert!(VARIABLES.contains(&e.name.as_str()), "{e}"),
            Ok(config) => {
                prop_assert!(config.validate().is_ok());
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                let built = runtime.block_on(
                    crate::HashPass::builder(config)
                        .without_background_jobs()
                        .build(),
                );
                prop_assert!(built.is_ok(), "{vars:?}: {:?}", built.err());
            }
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// No text in any one variable panics, from reading to building the instance.
        #[test]
        fn no_value_of_any_variable_panics(
            name in prop::sample::select(VARIABLES),
            value in any_value(),
        ) {
            read_and_build(&HashMap::from([(name.to_string(), value)]))?;
        }

        /// Nor do many variables at once, each likely to pass its own parser.
        #[test]
        fn no_environment_panics(vars in prop::collection::hash_map(
            prop::sample::select(VARIABLES).prop_map(String::from),
            likely_value(),
            0..16,
        )) {
            read_and_build(&vars)?;
        }

        /// Each kind's parser takes any text without panicking.
        #[test]
        fn no_text_panics_a_parser(text in any_value()) {
            let _ = bounded::whole("N", &text, &(0u64..=u64::MAX));
            let _ = bounded::whole("N", &text, &(1u32..=64));
            let _ = bounded::seconds("S", &text, &(0..=604_800));
            let _ = bounded::decimal("D", &text, &(0.0..=1e12));
            let _ = bounded::rate("R", &text, &SUBMIT_RATE_BOUNDS);
            let _ = bounded::trusted_networks("T", &text);
            let _ = text.parse::<IpNet>();
        }
    }

    #[test]
    fn every_variable_read_here_is_in_the_property_test() {
        let source = include_str!("config.rs");
        let mut named: Vec<&str> = source
            .split('"')
            .filter(|s| {
                ["HASHPASS_", "TURNSTILE_", "WEBHOOK_", "ADMIN_TOKEN"]
                    .iter()
                    .any(|p| s.starts_with(p))
                    && s.chars()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
                    && !s.ends_with('_')
            })
            .collect();
        named.sort_unstable();
        named.dedup();
        let missing: Vec<&&str> = named.iter().filter(|n| !VARIABLES.contains(n)).collect();
        assert!(missing.is_empty(), "add to VARIABLES: {missing:?}");
    }

    fn env(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn reads_the_originals_names_and_ours() {
        let c = env(&[
            ("ADMIN_TOKEN", "secret-0123456789"),
            ("TURNSTILE_TEST_MODE", "TRUE"),
            ("HASHPASS_DIFFICULTY", "3"),
            ("HASHPASS_MIN_DIFFICULTY", "1"),
            ("HASHPASS_MAX_DIFFICULTY", "6"),
            ("HASHPASS_TARGET_TIME", "60"),
            ("HASHPASS_TARGET_TIMEOUT", "300"),
            ("HASHPASS_ARGON2_MEMORY_COST", "1024"),
            ("HASHPASS_WORKER_COUNT", "4"),
            ("HASHPASS_TRUSTED_PROXIES", "10.0.0.0/8, ::1"),
            ("HASHPASS_SUBMIT_RATE", "8/5"),
            ("HASHPASS_UA_FILTER", "false"),
        ])
        .unwrap();
        assert_eq!(
            c.admin.token.as_ref().map(Secret::expose),
            Some("secret-0123456789")
        );
        assert_eq!(
            (
                c.game.difficulty,
                c.game.min_difficulty,
                c.game.max_difficulty
            ),
            (3, 1, 6)
        );
        assert_eq!((c.game.target_time, c.game.target_timeout), (60, 300));
        assert_eq!(c.game.argon2, Argon2Params::new(3, 1024, 1));
        assert_eq!(c.game.worker_count, 4);
        assert!(c.captcha.test_mode && !c.network.ua_filter);
        assert_eq!(c.network.trusted_proxies.len(), 2);
        assert_eq!(
            (c.limits.submit_limit, c.limits.submit_window),
            (8, Duration::from_secs(5))
        );
    }

    #[test]
    fn bad_values_name_the_variable() {
        let e = env(&[
            ("TURNSTILE_TEST_MODE", "true"),
            ("HASHPASS_DIFFICULTY", "eighty"),
        ])
        .unwrap_err();
        assert_eq!(e.name, "HASHPASS_DIFFICULTY");
        let e = env(&[
            ("TURNSTILE_TEST_MODE", "true"),
            ("HASHPASS_HMAC_SECRET", "zz"),
        ])
        .unwrap_err();
        assert_eq!(e.name, "HASHPASS_HMAC_SECRET");
        // No Turnstile keys: runs with the offline captcha.
        assert!(env(&[]).unwrap().captcha.offline());
        let keyed = env(&[("TURNSTILE_SITE_KEY", "s"), ("TURNSTILE_SECRET_KEY", "k")]).unwrap();
        assert!(!keyed.captcha.offline());
        let e = env(&[
            ("TURNSTILE_TEST_MODE", "true"),
            ("HASHPASS_TRUSTED_PROXIES", "1.2.3.4/40"),
        ])
        .unwrap_err();
        assert_eq!(e.name, "HASHPASS_TRUSTED_PROXIES");
    }

    #[test]
    fn misconfigurations_fail_closed_naming_the_variable() {
        let name = |pairs: &[(&str, &str)]| env(pairs).unwrap_err().name;
        // Test mode off on purpose needs both keys: no silent fall-back to the offline captcha.
        assert_eq!(
            name(&[("TURNSTILE_TEST_MODE", "false")]),
            "TURNSTILE_SITE_KEY"
        );
        assert_eq!(
            name(&[
                ("TURNSTILE_TEST_MODE", "false"),
                ("TURNSTILE_SITE_KEY", "site")
            ]),
            "TURNSTILE_SECRET_KEY"
        );
        assert_eq!(
            name(&[
                ("TURNSTILE_TEST_MODE", "off"),
                ("TURNSTILE_SECRET_KEY", "s")
            ]),
            "TURNSTILE_SITE_KEY"
        );
        // Half a key pair is refused whatever the test mode says, unless test mode is on.
        assert_eq!(
            name(&[("TURNSTILE_SITE_KEY", "site")]),
            "TURNSTILE_SECRET_KEY"
        );
        assert!(
            env(&[
                ("TURNSTILE_TEST_MODE", "true"),
                ("TURNSTILE_SITE_KEY", crate::captcha::TEST_SITE_KEY)
            ])
            .is_ok()
        );
        let real = env(&[
            ("TURNSTILE_TEST_MODE", "false"),
            ("TURNSTILE_SITE_KEY", "site"),
            ("TURNSTILE_SECRET_KEY", "secret"),
        ])
        .unwrap();
        assert!(!real.captcha.offline());
        // Weak or placeholder admin tokens.
        assert_eq!(name(&[("ADMIN_TOKEN", "x")]), "ADMIN_TOKEN");
        assert_eq!(name(&[("ADMIN_TOKEN", "fifteen-chars-x")]), "ADMIN_TOKEN");
        assert!(env(&[("ADMIN_TOKEN", "sixteen-chars-xx")]).is_ok());
        let e = env(&[("ADMIN_TOKEN", EXAMPLE_ADMIN_TOKEN)]).unwrap_err();
        assert_eq!(e.name, "ADMIN_TOKEN");
        assert!(e.message.contains(".env.example"), "{e}");
        // Booleans are strict.
        for var in [
            "TURNSTILE_TEST_MODE",
            "HASHPASS_DEV_TRACE",
            "HASHPASS_METRICS_PUBLIC",
            "HASHPASS_UA_FILTER",
        ] {
            let e = env(&[(var, "ture")]).unwrap_err();
            assert_eq!(e.name, var);
            assert!(e.to_string().starts_with(var), "{e}");
        }
        for (text, value) in [
            ("Yes", true),
            ("ON", true),
            ("1", true),
            ("no", false),
            ("Off", false),
            ("0", false),
        ] {
            assert_eq!(
                env(&[("HASHPASS_UA_FILTER", text)])
                    .unwrap()
                    .network
                    .ua_filter,
                value,
                "{text}"
            );
        }
    }

    #[test]
    fn debug_output_shows_no_secret() {
        let c = env(&[
            ("ADMIN_TOKEN", "admin-token-0123456789"),
            ("HASHPASS_HMAC_SECRET", "00112233445566778899aabbccddeeff"),
            (
                "WEBHOOK_URL",
                "https://hooks.example.org/notify/T0K3N?key=abc",
            ),
            ("WEBHOOK_TOKEN", "webhook-token-value"),
            ("WEBHOOK_SECRET", "webhook-secret-value"),
            ("TURNSTILE_SITE_KEY", "site"),
            ("TURNSTILE_SECRET_KEY", "turnstile-secret-value"),
        ])
        .unwrap();
        let redis = SecretUrl::from("rediss://user:redis-password@redis.example.org:6380/0");
        let shown = format!("{c:?} {redis:?}");
        for secret in [
            "admin-token-0123456789",
            "00112233445566778899aabbccddeeff",
            "T0K3N",
            "key=abc",
            "webhook-token-value",
            "webhook-secret-value",
            "turnstile-secret-value",
            "redis-password",
        ] {
            assert!(!shown.contains(secret), "{secret} shown in {shown}");
        }
        assert!(shown.contains("https://hooks.example.org/…"), "{shown}");
        assert!(
            shown.contains("rediss://redis.example.org:6380/…"),
            "{shown}"
        );
        assert_eq!(redact_url("http://127.0.0.1:9000"), "http://127.0.0.1:9000");
        assert_eq!(redact_url("no scheme at all"), "…");
    }

    #[test]
    fn clients_count_by_ipv4_address_and_ipv6_64() {
        let key = |s: &str| counted_address(s.parse().unwrap());
        assert_eq!(key("2001:db8:1:2:3:4:5:6"), key("2001:db8:1:2::"));
        assert_eq!(
            key("2001:db8:1:2:ffff:ffff:ffff:ffff").to_string(),
            "2001:db8:1:2::"
        );
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("::ffff:192.0.2.7"), key("192.0.2.7"));
        assert_ne!(key("192.0.2.7"), key("192.0.2.8"));
    }

    #[test]
    fn test_mode_with_real_turnstile_keys_is_refused() {
        let real_site = ("TURNSTILE_SITE_KEY", "0x4AAAAAAAB5nJ3Yx1mL0Ej2");
        let real_secret = (
            "TURNSTILE_SECRET_KEY",
            "0x4AAAAAAAB5nJ3YxSecretKey0123456789",
        );
        let test_site = ("TURNSTILE_SITE_KEY", "1x00000000000000000000AA");
        let test_secret = (
            "TURNSTILE_SECRET_KEY",
            "1x0000000000000000000000000000000AA",
        );
        for on in ["true", "1", "yes", "ON"] {
            let mode = ("TURNSTILE_TEST_MODE", on);
            for keys in [
                vec![real_site, real_secret],
                vec![real_site],
                vec![real_secret],
                vec![test_site, real_secret],
                vec![real_site, test_secret],
            ] {
                let mut pairs = vec![mode];
                pairs.extend(keys.iter().copied());
                let e = env(&pairs).unwrap_err();
                assert_eq!(e.name, "TURNSTILE_TEST_MODE", "{pairs:?}");
                assert!(e.message.contains("any token pass"), "{e}");
            }
        }
        // The original's development settings still start, offline.
        let dev = env(&[("TURNSTILE_TEST_MODE", "true"), test_site, test_secret]).unwrap();
        assert!(dev.captcha.offline());
        // Every published test key is accepted in test mode.
        for site in crate::captcha::TEST_SITE_KEYS {
            for secret in crate::captcha::TEST_SECRET_KEYS {
                let pairs = [
                    ("TURNSTILE_TEST_MODE", "true"),
                    ("TURNSTILE_SITE_KEY", site),
                    ("TURNSTILE_SECRET_KEY", secret),
                ];
                assert!(env(&pairs).is_ok(), "{pairs:?}");
            }
        }
        // Test mode alone, and nothing at all: the offline laptop default.
        assert!(
            env(&[("TURNSTILE_TEST_MODE", "true")])
                .unwrap()
                .captcha
                .offline()
        );
        assert!(env(&[]).unwrap().captcha.offline());
        // Real keys without test mode: Turnstile.
        assert!(!env(&[real_site, real_secret]).unwrap().captcha.offline());
        // A host configuring the library in code is held to the same rule at build time.
        let mut coded = Config::default().with_turnstile_test_mode(true);
        coded.captcha.site_key = Some(real_site.1.into());
        coded.captcha.secret_key = Some(real_secret.1.into());
        assert_eq!(coded.validate().unwrap_err().name, "TURNSTILE_TEST_MODE");
    }

    #[test]
    fn a_host_trusting_everyone_in_code_is_refused_at_build() {
        let everyone = Config::default().with_trusted_proxies(vec!["::/0".parse().unwrap()]);
        let e = everyone.validate().unwrap_err();
        assert_eq!(e.name, "HASHPASS_TRUSTED_PROXIES");
        let proxies = Config::default().with_trusted_proxies(vec!["127.0.0.0/8".parse().unwrap()]);
        assert!(proxies.validate().is_ok());
    }

    #[test]
    fn out_of_range_numbers_stop_start_up_naming_the_variable() {
        for (name, value) in [
            ("HASHPASS_SUBMIT_RATE", "4/1e30"),
            ("HASHPASS_SUBMIT_RATE", "4/0"),
            ("HASHPASS_SUBMIT_RATE", "4/NaN"),
            ("HASHPASS_ADDRESS_SUBMIT_RATE", "12/-10"),
            ("HASHPASS_ADDRESS_SUBMIT_RATE", "99999999999/10"),
            ("HASHPASS_DIFFICULTY", "0"),
            ("HASHPASS_DIFFICULTY", "257"),
            ("HASHPASS_MIN_DIFFICULTY", "65"),
            ("HASHPASS_MAX_DIFFICULTY", "0"),
            ("HASHPASS_TARGET_TIME", "0"),
            ("HASHPASS_TARGET_TIME", "18446744073709551615"),
            ("HASHPASS_TARGET_TIMEOUT", "604801"),
            ("HASHPASS_ARGON2_TIME_COST", "17"),
            ("HASHPASS_ARGON2_MEMORY_COST", "4294967296"),
            ("HASHPASS_ARGON2_PARALLELISM", "0"),
            ("HASHPASS_WORKER_COUNT", "33"),
            ("HASHPASS_MAX_NONCE_SPEED", "inf"),
            ("HASHPASS_MAX_NONCE_SPEED", "-1"),
            ("HASHPASS_MAX_NONCE_SPEED", "NaN"),
            ("HASHPASS_MAX_BODY_BYTES", "0"),
            ("HASHPASS_MAX_BODY_BYTES", "18446744073709551615"),
            ("HASHPASS_MAX_CONNECTIONS_PER_IP", "-1"),
            ("HASHPASS_VERIFY_MEMORY_BUDGET_MB", "0"),
            ("HASHPASS_VERIFY_QUEUE", "1e6"),
            ("HASHPASS_SESSIONS_PER_ADDRESS", "10001"),
            ("HASHPASS_VERIFY_RUNNING_PER_ADDRESS", "0"),
            ("HASHPASS_VERIFY_WAITING_PER_ADDRESS", "0"),
            ("HASHPASS_VERIFY_FAILURE_MEMORY", "18446744073709551615"),
            ("HASHPASS_AUDIT_ROTATION", "0"),
            ("HASHPASS_INVITE_TTL", "18446744073709551615"),
            ("HASHPASS_WEBHOOK_MAX_BACKOFF", "0"),
            ("HASHPASS_WEBHOOK_GIVE_UP_AFTER", "99999999999"),
            ("HASHPASS_TRUSTED_PROXIES", "0.0.0.0/0"),
            ("HASHPASS_TRUSTED_PROXIES", "::/0"),
            (
                "HASHPASS_TRUSTED_PROXIES",
                "10.0.0.0/8, 0.0.0.0/1, 128.0.0.0/1",
            ),
        ] {
            let e = env(&[(name, value)]).unwrap_err();
            assert_eq!(e.name, name, "{name}={value}: {e}");
        }
        // Contradictions between two variables name the one to change.
        let e = env(&[
            ("HASHPASS_MIN_DIFFICULTY", "9"),
            ("HASHPASS_MAX_DIFFICULTY", "8"),
        ]);
        assert_eq!(e.unwrap_err().name, "HASHPASS_MIN_DIFFICULTY");
        let e = env(&[
            ("HASHPASS_ARGON2_PARALLELISM", "4"),
            ("HASHPASS_ARGON2_MEMORY_COST", "16"),
        ]);
        assert_eq!(e.unwrap_err().name, "HASHPASS_ARGON2_MEMORY_COST");
        // The bounds themselves are accepted.
        let edge = env(&[
            ("HASHPASS_SUBMIT_RATE", "1000000/86400"),
            ("HASHPASS_ADDRESS_SUBMIT_RATE", "0/0.001"),
            ("HASHPASS_INVITE_TTL", &MAX_INVITE_TTL_SECS.to_string()),
            ("HASHPASS_VERIFY_FAILURE_MEMORY", "604800"),
            ("HASHPASS_MAX_NONCE_SPEED", "1e12"),
            ("HASHPASS_TARGET_TIME", "86400"),
            ("HASHPASS_TARGET_TIMEOUT", "604800"),
        ])
        .unwrap();
        assert_eq!(edge.limits.submit_window, Duration::from_secs(86_400));
        assert_eq!(edge.limits.address_submit_window, Duration::from_millis(1));
    }

    #[test]
    fn cidr_matching() {
        let net: IpNet = "10.1.0.0/16".parse().unwrap();
        assert!(net.contains("10.1.200.3".parse().unwrap()));
        assert!(net.contains("::ffff:10.1.0.9".parse().unwrap()));
        assert!(!net.contains("10.2.0.1".parse().unwrap()));
        let all: IpNet = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
        let host: IpNet = "::1".parse().unwrap();
        assert!(host.contains("::1".parse().unwrap()));
        assert!(!host.contains("127.0.0.1".parse().unwrap()));
        assert!("nonsense".parse::<IpNet>().is_err());
    }
}
