//! Configuration: a plain struct with defaults and `with_*` builders, and the one function that
//! reads the environment (the original's variable names, docs/protocol.md#environment-variables, plus ours, docs/protocol.md#differences-from-the-original).

use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::puzzle::Argon2Params;

/// Every setting of a HashPass instance.
#[derive(Clone)]
pub struct Config {
    /// `ADMIN_TOKEN`: bearer token of the admin API; `None` disables it (401).
    pub admin_token: Option<String>,
    /// `HASHPASS_HMAC_SECRET`: hex key of invite codes; `None` = 32 random bytes per start.
    pub hmac_secret: Option<String>,
    /// `HASHPASS_HOST`: the address the example server binds (`0.0.0.0`, every IPv4 interface).
    pub host: IpAddr,
    /// `PORT`: where the example server listens.
    pub port: u16,
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
    /// `TURNSTILE_TEST_MODE`: offline captcha that accepts any non-empty token.
    pub turnstile_test_mode: bool,
    /// `TURNSTILE_SITE_KEY`.
    pub turnstile_site_key: Option<String>,
    /// `TURNSTILE_SECRET_KEY`.
    pub turnstile_secret_key: Option<String>,
    /// `TURNSTILE_SITEVERIFY_URL`: where Turnstile tokens are checked.
    pub turnstile_siteverify_url: Option<String>,
    /// `WEBHOOK_URL`: POSTed after every invite.
    pub webhook_url: Option<String>,
    /// `WEBHOOK_TOKEN`: bearer token of webhook calls.
    pub webhook_token: Option<String>,
    /// `WEBHOOK_SECRET`: signs webhook bodies (`X-HashPass-Signature`).
    pub webhook_secret: Option<String>,
    /// `HASHPASS_LOG_LEVEL`.
    pub log_level: String,
    /// `HASHPASS_DATA_DIR`: audit log and blacklist.
    pub data_dir: PathBuf,
    /// `HASHPASS_LOG_DIR`: application logs.
    pub log_dir: PathBuf,
    /// `HASHPASS_TRUSTED_PROXIES`: peers whose client-IP header is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// `HASHPASS_CLIENT_IP_HEADER`: the header a trusted proxy sets.
    pub client_ip_header: String,
    /// `HASHPASS_DEV_TRACE`: serve `/api/dev/trace` outside test mode.
    pub dev_trace: bool,
    /// `HASHPASS_MAX_CONNECTIONS_PER_IP`: player sockets per IP; 0 = unlimited.
    pub max_connections_per_ip: u32,
    /// `HASHPASS_VERIFY_MEMORY_BUDGET_MB`: Argon2 memory of concurrent verifications.
    pub verify_memory_budget_mb: u32,
    /// `HASHPASS_VERIFY_QUEUE`: verifications that may wait for memory before 503.
    pub verify_queue: usize,
    /// `HASHPASS_SUBMIT_RATE`: verify/submit calls per session per window ("4/10" = 4 per 10 s; 0 = off).
    pub submit_limit: u32,
    /// Window of the per-session submission limit.
    pub submit_window: Duration,
    /// `HASHPASS_INVITE_TTL`: seconds an invite code stays valid; 0 = forever.
    pub invite_ttl: u64,
    /// `HASHPASS_AUDIT_ROTATION`: audit records per file before rotation (1000).
    pub audit_rotation: usize,
    /// `REDIS_URL` or `HASHPASS_REDIS_URL`: share state through Redis (several instances).
    pub redis_url: Option<String>,
    /// `HASHPASS_REDIS_PREFIX`: prefix of every key, so deployments can share a Redis.
    pub redis_prefix: String,
    /// `HASHPASS_METRICS_PUBLIC`: serve `/api/metrics` without the admin token.
    pub metrics_public: bool,
    /// `HASHPASS_UA_FILTER`: refuse scripted clients on the public API (docs/protocol.md#user-agent-filter).
    pub ua_filter: bool,
    /// `HASHPASS_MAX_BODY_BYTES`: largest request body accepted.
    pub max_body_bytes: usize,
    /// Disconnected sessions stay usable this long (300 s).
    pub session_grace: Duration,
    /// A timeout's reward collection window (10 s).
    pub reward_window: Duration,
    /// Hashrate reports older than this are stale (10 s).
    pub hashrate_stale: Duration,
    /// Admin lockout: failures before lockout (10) and its length (300 s).
    pub admin_max_failures: u32,
    /// Length of an admin lockout.
    pub admin_lockout: Duration,
    /// A socket whose send does not complete in this time is closed as too slow.
    pub ws_send_timeout: Duration,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secret = |s: &Option<String>| s.as_ref().map(|_| "<set>");
        f.debug_struct("Config")
            .field("admin_token", &secret(&self.admin_token))
            .field("hmac_secret", &secret(&self.hmac_secret))
            .field("host", &self.host)
            .field("port", &self.port)
            .field("difficulty", &self.difficulty)
            .field("min_difficulty", &self.min_difficulty)
            .field("max_difficulty", &self.max_difficulty)
            .field("target_time", &self.target_time)
            .field("target_timeout", &self.target_timeout)
            .field("argon2", &self.argon2)
            .field("worker_count", &self.worker_count)
            .field("max_nonce_speed", &self.max_nonce_speed)
            .field("turnstile_test_mode", &self.turnstile_test_mode)
            .field("turnstile_secret_key", &secret(&self.turnstile_secret_key))
            .field("webhook_url", &self.webhook_url.as_deref().map(redact_url))
            .field("webhook_token", &secret(&self.webhook_token))
            .field("webhook_secret", &secret(&self.webhook_secret))
            .field("data_dir", &self.data_dir)
            .field("log_dir", &self.log_dir)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("client_ip_header", &self.client_ip_header)
            .field("redis", &self.redis_url.as_deref().map(redact_url))
            .field("redis_prefix", &self.redis_prefix)
            .finish_non_exhaustive()
    }
}

impl Default for Config {
    /// The original's code defaults (docs/protocol.md#environment-variables), with docs/protocol.md#differences-from-the-original's additions.
    fn default() -> Self {
        Self {
            admin_token: None,
            hmac_secret: None,
            host: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            port: 8000,
            difficulty: 12,
            min_difficulty: 4,
            max_difficulty: 24,
            target_time: 75,
            target_timeout: 120,
            argon2: Argon2Params::default(),
            worker_count: 1,
            max_nonce_speed: 0.0,
            turnstile_test_mode: false,
            turnstile_site_key: None,
            turnstile_secret_key: None,
            turnstile_siteverify_url: None,
            webhook_url: None,
            webhook_token: None,
            webhook_secret: None,
            log_level: "INFO".into(),
            data_dir: PathBuf::from("."),
            log_dir: PathBuf::from("log"),
            trusted_proxies: Vec::new(),
            client_ip_header: "CF-Connecting-IP".into(),
            dev_trace: false,
            max_connections_per_ip: 1,
            verify_memory_budget_mb: crate::verify::Argon2Verifier::default_budget_mib(),
            verify_queue: 64,
            submit_limit: 4,
            submit_window: Duration::from_secs(10),
            invite_ttl: 0,
            audit_rotation: 1000,
            redis_url: None,
            redis_prefix: "hashpass:".into(),
            metrics_public: false,
            ua_filter: true,
            max_body_bytes: 16 * 1024,
            session_grace: Duration::from_secs(300),
            reward_window: Duration::from_secs(10),
            hashrate_stale: Duration::from_secs(10),
            admin_max_failures: 10,
            admin_lockout: Duration::from_secs(300),
            ws_send_timeout: Duration::from_secs(10),
        }
    }
}

macro_rules! with {
    ($(#[$doc:meta] $name:ident: $field:ident: $ty:ty),* $(,)?) => {
        impl Config {
            $(
                #[$doc]
                pub fn $name(mut self, value: impl Into<$ty>) -> Self {
                    self.$field = value.into();
                    self
                }
            )*
        }
    };
}

with! {
    /// Sets the admin token.
    with_admin_token: admin_token: Option<String>,
    /// Sets the invite HMAC key (hex).
    with_hmac_secret: hmac_secret: Option<String>,
    /// Sets the address the example server binds.
    with_host: host: IpAddr,
    /// Sets the listening port.
    with_port: port: u16,
    /// Sets the starting difficulty.
    with_difficulty: difficulty: u32,
    /// Sets the lower difficulty bound.
    with_min_difficulty: min_difficulty: u32,
    /// Sets the upper difficulty bound.
    with_max_difficulty: max_difficulty: u32,
    /// Sets the target solve time in seconds.
    with_target_time: target_time: u64,
    /// Sets the timeout in seconds of mining time.
    with_target_timeout: target_timeout: u64,
    /// Sets the Argon2 parameters.
    with_argon2: argon2: Argon2Params,
    /// Sets the number of browser workers.
    with_worker_count: worker_count: u32,
    /// Sets the max nonce speed (0 = off).
    with_max_nonce_speed: max_nonce_speed: f64,
    /// Switches the offline test captcha on or off.
    with_turnstile_test_mode: turnstile_test_mode: bool,
    /// Sets the webhook URL.
    with_webhook_url: webhook_url: Option<String>,
    /// Sets the webhook bearer token.
    with_webhook_token: webhook_token: Option<String>,
    /// Sets the webhook signing secret.
    with_webhook_secret: webhook_secret: Option<String>,
    /// Sets the data directory.
    with_data_dir: data_dir: PathBuf,
    /// Sets the log directory.
    with_log_dir: log_dir: PathBuf,
    /// Sets the trusted proxies.
    with_trusted_proxies: trusted_proxies: Vec<IpNet>,
    /// Sets the client-IP header name.
    with_client_ip_header: client_ip_header: String,
    /// Serves `/api/dev/trace` even outside test mode.
    with_dev_trace: dev_trace: bool,
    /// Sets the player sockets allowed per IP (0 = unlimited).
    with_max_connections_per_ip: max_connections_per_ip: u32,
    /// Sets the verification memory budget in MiB.
    with_verify_memory_budget_mb: verify_memory_budget_mb: u32,
    /// Sets how many verifications may wait.
    with_verify_queue: verify_queue: usize,
    /// Sets the submissions allowed per session per window (0 = unlimited).
    with_submit_limit: submit_limit: u32,
    /// Sets the submission-limit window.
    with_submit_window: submit_window: Duration,
    /// Sets the invite TTL in seconds (0 = forever).
    with_invite_ttl: invite_ttl: u64,
    /// Sets the audit records per file before rotation.
    with_audit_rotation: audit_rotation: usize,
    /// Serves metrics without the admin token.
    with_metrics_public: metrics_public: bool,
    /// Switches the User-Agent filter.
    with_ua_filter: ua_filter: bool,
    /// Sets the largest accepted body.
    with_max_body_bytes: max_body_bytes: usize,
    /// Sets the session reconnect grace.
    with_session_grace: session_grace: Duration,
    /// Sets the timeout reward window.
    with_reward_window: reward_window: Duration,
    /// Sets the socket send timeout.
    with_ws_send_timeout: ws_send_timeout: Duration,
}

/// The shortest admin token accepted.
pub const MIN_ADMIN_TOKEN_CHARS: usize = 16;

/// The admin token `.env.example` shows, refused as a real one.
pub const EXAMPLE_ADMIN_TOKEN: &str = "change-me-to-a-long-random-string";

/// Reads a boolean variable: true/false, 1/0, yes/no, on/off (any case); anything else is an
/// error naming the variable, so a typo never silently means "off".
fn parse_bool(name: &str, value: &str) -> Result<bool, ConfigError> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(ConfigError {
            name: name.into(),
            message: format!("{value:?} is not a boolean (use true/false, 1/0, yes/no or on/off)"),
        }),
    }
}

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

impl Config {
    /// Reads the process environment (see [`Config::from_lookup`]).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads every setting through `lookup` (a variable name → its value), starting from the
    /// defaults. Empty values count as unset. Unknown variables are ignored.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let mut c = Config::default();
        fn parse<T: FromStr>(name: &str, value: String) -> Result<T, ConfigError>
        where
            T::Err: std::fmt::Display,
        {
            value.parse().map_err(|e: T::Err| ConfigError {
                name: name.into(),
                message: format!("cannot read {value:?}: {e}"),
            })
        }
        let flag = |name: &str| get(name).map(|v| parse_bool(name, &v)).transpose();
        macro_rules! num {
            ($name:literal => $target:expr) => {
                if let Some(v) = get($name) {
                    $target = parse($name, v)?;
                }
            };
        }
        c.admin_token = get("ADMIN_TOKEN");
        if let Some(host) = get("HASHPASS_HOST") {
            c.host = host.parse().map_err(|_| ConfigError {
                name: "HASHPASS_HOST".into(),
                message: format!(
                    "{host:?} is not an IP address (0.0.0.0 for every interface, 127.0.0.1 behind a local proxy)"
                ),
            })?;
        }
        c.hmac_secret = get("HASHPASS_HMAC_SECRET");
        if let Some(hex_key) = &c.hmac_secret {
            crate::invite::InviteKey::from_hex(hex_key).map_err(|e| ConfigError {
                name: "HASHPASS_HMAC_SECRET".into(),
                message: e.to_string(),
            })?;
        }
        num!("PORT" => c.port);
        num!("HASHPASS_DIFFICULTY" => c.difficulty);
        num!("HASHPASS_MIN_DIFFICULTY" => c.min_difficulty);
        num!("HASHPASS_MAX_DIFFICULTY" => c.max_difficulty);
        num!("HASHPASS_TARGET_TIME" => c.target_time);
        num!("HASHPASS_TARGET_TIMEOUT" => c.target_timeout);
        num!("HASHPASS_ARGON2_TIME_COST" => c.argon2.time_cost);
        num!("HASHPASS_ARGON2_MEMORY_COST" => c.argon2.memory_cost);
        num!("HASHPASS_ARGON2_PARALLELISM" => c.argon2.parallelism);
        num!("HASHPASS_WORKER_COUNT" => c.worker_count);
        num!("HASHPASS_MAX_NONCE_SPEED" => c.max_nonce_speed);
        let test_mode = flag("TURNSTILE_TEST_MODE")?;
        c.turnstile_test_mode = test_mode.unwrap_or(false);
        c.turnstile_site_key = get("TURNSTILE_SITE_KEY");
        c.turnstile_secret_key = get("TURNSTILE_SECRET_KEY");
        if test_mode == Some(false) {
            // Test mode switched off on purpose: the real captcha or nothing, never the offline
            // one that lets any token pass.
            for (name, key) in [
                ("TURNSTILE_SITE_KEY", &c.turnstile_site_key),
                ("TURNSTILE_SECRET_KEY", &c.turnstile_secret_key),
            ] {
                if key.is_none() {
                    return Err(ConfigError {
                        name: name.into(),
                        message: "is required with TURNSTILE_TEST_MODE=false (set both Turnstile keys, or TURNSTILE_TEST_MODE=true for the offline captcha)".into(),
                    });
                }
            }
        }
        c.turnstile_siteverify_url = get("TURNSTILE_SITEVERIFY_URL");
        c.webhook_url = get("WEBHOOK_URL");
        c.webhook_token = get("WEBHOOK_TOKEN");
        c.webhook_secret = get("WEBHOOK_SECRET");
        if let Some(level) = get("HASHPASS_LOG_LEVEL") {
            c.log_level = level;
        }
        if let Some(dir) = get("HASHPASS_DATA_DIR") {
            c.data_dir = dir.into();
        }
        if let Some(dir) = get("HASHPASS_LOG_DIR") {
            c.log_dir = dir.into();
        }
        if let Some(list) = get("HASHPASS_TRUSTED_PROXIES") {
            c.trusted_proxies = list
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| parse("HASHPASS_TRUSTED_PROXIES", s.to_string()))
                .collect::<Result<_, _>>()?;
        }
        if let Some(header) = get("HASHPASS_CLIENT_IP_HEADER") {
            if http::HeaderName::from_bytes(header.as_bytes()).is_err() {
                return Err(ConfigError {
                    name: "HASHPASS_CLIENT_IP_HEADER".into(),
                    message: format!("{header:?} is not a valid header name"),
                });
            }
            c.client_ip_header = header;
        }
        c.dev_trace = flag("HASHPASS_DEV_TRACE")?.unwrap_or(false);
        num!("HASHPASS_MAX_CONNECTIONS_PER_IP" => c.max_connections_per_ip);
        num!("HASHPASS_VERIFY_MEMORY_BUDGET_MB" => c.verify_memory_budget_mb);
        num!("HASHPASS_VERIFY_QUEUE" => c.verify_queue);
        if let Some(rate) = get("HASHPASS_SUBMIT_RATE") {
            let (count, secs) = rate.split_once('/').unwrap_or((rate.as_str(), "10"));
            c.submit_limit = parse("HASHPASS_SUBMIT_RATE", count.trim().to_string())?;
            let secs: f64 = parse("HASHPASS_SUBMIT_RATE", secs.trim().to_string())?;
            if !(secs.is_finite() && secs > 0.0) {
                return Err(ConfigError {
                    name: "HASHPASS_SUBMIT_RATE".into(),
                    message: "the window must be a positive number of seconds".into(),
                });
            }
            c.submit_window = Duration::from_secs_f64(secs);
        }
        num!("HASHPASS_INVITE_TTL" => c.invite_ttl);
        num!("HASHPASS_AUDIT_ROTATION" => c.audit_rotation);
        c.redis_url = get("HASHPASS_REDIS_URL").or_else(|| get("REDIS_URL"));
        if let Some(prefix) = get("HASHPASS_REDIS_PREFIX") {
            c.redis_prefix = prefix;
        }
        c.metrics_public = flag("HASHPASS_METRICS_PUBLIC")?.unwrap_or(false);
        c.ua_filter = flag("HASHPASS_UA_FILTER")?.unwrap_or(true);
        num!("HASHPASS_MAX_BODY_BYTES" => c.max_body_bytes);
        c.validate()?;
        Ok(c)
    }

    /// Whether captchas are checked offline: test mode, or no Turnstile key pair configured
    /// (the standalone system then runs without Cloudflare, and `/api/dev/trace` is served).
    pub fn captcha_offline(&self) -> bool {
        self.turnstile_test_mode
            || self.turnstile_site_key.is_none()
            || self.turnstile_secret_key.is_none()
    }

    /// Checks the settings against each other; start-up refuses a configuration that fails.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |name: &str, message: String| ConfigError {
            name: name.into(),
            message,
        };
        if let Some(token) = &self.admin_token {
            if token.chars().count() < MIN_ADMIN_TOKEN_CHARS {
                return Err(err(
                    "ADMIN_TOKEN",
                    format!(
                        "is shorter than {MIN_ADMIN_TOKEN_CHARS} characters; use a long random string (openssl rand -hex 32)"
                    ),
                ));
            }
            if token == EXAMPLE_ADMIN_TOKEN {
                return Err(err(
                    "ADMIN_TOKEN",
                    "is still the placeholder from .env.example; set a long random string of your own (openssl rand -hex 32)".into(),
                ));
            }
        }
        if !self.turnstile_test_mode
            && self.turnstile_site_key.is_some() != self.turnstile_secret_key.is_some()
        {
            let missing = if self.turnstile_site_key.is_none() {
                "TURNSTILE_SITE_KEY"
            } else {
                "TURNSTILE_SECRET_KEY"
            };
            return Err(err(
                missing,
                "is required when the other Turnstile key is set (set both, or neither for the offline captcha)".into(),
            ));
        }
        self.argon2
            .validate()
            .map_err(|m| err("HASHPASS_ARGON2_*", m))?;
        if !(1..=64).contains(&self.min_difficulty) || !(1..=64).contains(&self.max_difficulty) {
            return Err(err(
                "HASHPASS_MIN/MAX_DIFFICULTY",
                "bounds must lie in 1..64".into(),
            ));
        }
        if self.min_difficulty > self.max_difficulty {
            return Err(err(
                "HASHPASS_MIN_DIFFICULTY",
                "must not exceed HASHPASS_MAX_DIFFICULTY".into(),
            ));
        }
        if !(1..=256).contains(&self.difficulty) {
            return Err(err("HASHPASS_DIFFICULTY", "must lie in 1..256".into()));
        }
        if self.target_time == 0 || self.target_timeout <= self.target_time {
            return Err(err(
                "HASHPASS_TARGET_TIMEOUT",
                "target_time must be >= 1 and target_timeout greater than target_time".into(),
            ));
        }
        if !(1..=32).contains(&self.worker_count) {
            return Err(err("HASHPASS_WORKER_COUNT", "must lie in 1..32".into()));
        }
        if !(self.max_nonce_speed.is_finite() && self.max_nonce_speed >= 0.0) {
            return Err(err(
                "HASHPASS_MAX_NONCE_SPEED",
                "must be a finite number >= 0".into(),
            ));
        }
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
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address or CIDR network"))?;
        let addr = canonical_ip(addr);
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?} has an invalid prefix length"))?,
        };
        Ok(Self { addr, prefix })
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
    use std::collections::HashMap;

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
            ("PORT", "9000"),
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
        assert_eq!(c.admin_token.as_deref(), Some("secret-0123456789"));
        assert_eq!(
            (c.port, c.difficulty, c.min_difficulty, c.max_difficulty),
            (9000, 3, 1, 6)
        );
        assert_eq!((c.target_time, c.target_timeout), (60, 300));
        assert_eq!(c.argon2, Argon2Params::new(3, 1024, 1));
        assert_eq!(c.worker_count, 4);
        assert!(c.turnstile_test_mode && !c.ua_filter);
        assert_eq!(c.trusted_proxies.len(), 2);
        assert_eq!(
            (c.submit_limit, c.submit_window),
            (8, Duration::from_secs(5))
        );
    }

    #[test]
    fn bad_values_name_the_variable() {
        let e = env(&[("TURNSTILE_TEST_MODE", "true"), ("PORT", "eighty")]).unwrap_err();
        assert_eq!(e.name, "PORT");
        let e = env(&[
            ("TURNSTILE_TEST_MODE", "true"),
            ("HASHPASS_HMAC_SECRET", "zz"),
        ])
        .unwrap_err();
        assert_eq!(e.name, "HASHPASS_HMAC_SECRET");
        // No Turnstile keys: runs with the offline captcha.
        assert!(env(&[]).unwrap().captcha_offline());
        let keyed = env(&[("TURNSTILE_SITE_KEY", "s"), ("TURNSTILE_SECRET_KEY", "k")]).unwrap();
        assert!(!keyed.captcha_offline());
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
        assert!(env(&[("TURNSTILE_TEST_MODE", "true"), ("TURNSTILE_SITE_KEY", "s")]).is_ok());
        let real = env(&[
            ("TURNSTILE_TEST_MODE", "false"),
            ("TURNSTILE_SITE_KEY", "site"),
            ("TURNSTILE_SECRET_KEY", "secret"),
        ])
        .unwrap();
        assert!(!real.captcha_offline());
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
                env(&[("HASHPASS_UA_FILTER", text)]).unwrap().ua_filter,
                value,
                "{text}"
            );
        }
        assert_eq!(name(&[("HASHPASS_HOST", "localhost:80")]), "HASHPASS_HOST");
        assert_eq!(
            env(&[("HASHPASS_HOST", "::1")]).unwrap().host.to_string(),
            "::1"
        );
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
            (
                "REDIS_URL",
                "rediss://user:redis-password@redis.example.org:6380/0",
            ),
        ])
        .unwrap();
        let shown = format!("{c:?}");
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
