//! An invite-only site of its own that mounts HashPass: visitors race for an invite code, then
//! sign up with a username, a password and that code; logging in issues a signed token that the
//! protected `/me` requires. This module is the site's logic, with no web framework in it;
//! [`with_axum`] and [`with_poem`] are the same site in each framework.
//!
//! - Accounts live in SQL (SQLite by default, any `postgres://` URL too), passwords as salted
//!   Argon2id PHC strings, verified in constant time; an unknown username costs the same work as
//!   a wrong password.
//! - Password hashing is bounded and shared fairly by client address (IPv6 by /64), through
//!   HashPass's own [`VerificationQueue`]: at most [`SiteConfig::hash_concurrency`] hashes run
//!   at once, one per address, and addresses take turns, so logins from many addresses cannot
//!   push one visitor's login back by more than a turn each. An address may have
//!   [`HASHES_WAITING_PER_ADDRESS`] hashes waiting (beyond, 429 with `Retry-After`); at most
//!   [`SiteConfig::hash_queue`] wait in all (beyond, 503 with `Retry-After` at once, never
//!   queued without end), except that an address whose recent login failed waits behind the
//!   others and gives its place up to a newcomer when the queue is full. Each client address may
//!   attempt [`SiteConfig::login_attempts`] logins per [`SiteConfig::login_window_secs`]; the
//!   next is answered 429 with `Retry-After`.
//! - The forms are JSON only: a body sent as anything but `Content-Type: application/json` (a
//!   cross-site HTML form's `text/plain`, say, which needs no CORS preflight) is answered 415.
//! - A code signs up one account, and is claimed before any password is hashed: the account is
//!   written pending, tagged with a random id of this sign-up attempt, the code is redeemed
//!   (exactly one of any number of racers wins; the others are answered 409 at once, without
//!   touching the hashing queue), then the password is hashed and that very row gets the hash
//!   and is activated. If the code was refused, the row is removed again, freeing the username;
//!   if hashing or the database fails after the claim, the row is removed and the code's use
//!   released, so no code is lost. A row that a crash left pending frees its username after a
//!   minute (and releases its claim on the code, also when the code is presented again); a
//!   sign-up that stalled past that minute and had its row taken over never activates the row
//!   that replaced it.
//! - Tokens are HS256 JWTs checked for signature, issuer, audience and expiry with no leeway.
//! - Every secret comes from the environment ([`SiteConfig::from_env`]).

pub mod with_axum;
pub mod with_poem;

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use hashpass::HashPass;
use hashpass::config::{ConfigError, NetworkConfig, Variables, counted_address};
use hashpass::gate::{InviteGate, InviteRejection};
use hashpass::invite::VerifiedInvite;
use hashpass::sql::SqlRedemptionStore;
use hashpass::verification_queue::{QueueLimits, Refusal, VerificationQueue};
use http::{HeaderMap, StatusCode, header};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::{Value, json};
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Row};

/// The site's settings.
#[derive(Clone)]
pub struct SiteConfig {
    /// Where accounts and redemptions live (`SITE_DATABASE_URL`; default
    /// `sqlite://invite-site.db?mode=rwc`).
    pub database_url: String,
    /// The HS256 signing secret (`SITE_JWT_SECRET`, required, at least 32 bytes).
    pub jwt_secret: Vec<u8>,
    /// The tokens' `iss` (`SITE_JWT_ISSUER`; default `hashpass-invite-site`).
    pub issuer: String,
    /// The tokens' `aud` (`SITE_JWT_AUDIENCE`; default `hashpass-invite-site:accounts`).
    pub audience: String,
    /// Seconds a token stays valid (`SITE_TOKEN_TTL_SECS`; default 3600).
    pub token_ttl_secs: u64,
    /// Logins one client address may attempt per window (`SITE_LOGIN_ATTEMPTS`; default 10);
    /// the next is answered 429 with `Retry-After`. The address is the one HashPass sees (the
    /// TCP peer, or a trusted proxy's client-IP header); IPv6 addresses count by their /64.
    pub login_attempts: u32,
    /// The sliding window those attempts are counted in, in seconds
    /// (`SITE_LOGIN_WINDOW_SECS`; default 60).
    pub login_window_secs: u64,
    /// Password hashes (Argon2id: 19 MiB and a core each) run at once, for sign-ups and logins
    /// alike, one per client address (`SITE_HASH_CONCURRENCY`; default: one per core, at most
    /// [`MAX_HASH_CONCURRENCY`]).
    pub hash_concurrency: usize,
    /// Password hashes that may wait for one of those, all addresses together (a waiting one
    /// holds no memory to speak of); a sign-up or login beyond them is answered 503 with
    /// `Retry-After` at once (`SITE_HASH_QUEUE`; default 1024, 0 for none, at most
    /// [`MAX_HASH_QUEUE`]).
    pub hash_queue: usize,
}

impl std::fmt::Debug for SiteConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SiteConfig")
            .field("database_url", &self.database_url)
            .field("jwt_secret", &"<redacted>")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("token_ttl_secs", &self.token_ttl_secs)
            .field("login_attempts", &self.login_attempts)
            .field("login_window_secs", &self.login_window_secs)
            .field("hash_concurrency", &self.hash_concurrency)
            .field("hash_queue", &self.hash_queue)
            .finish()
    }
}

/// The shortest signing secret accepted (256 bits, the HS256 key size).
pub const MIN_SECRET_LEN: usize = 32;

/// The default for [`SiteConfig::login_attempts`].
pub const DEFAULT_LOGIN_ATTEMPTS: u32 = 10;
/// The default for [`SiteConfig::login_window_secs`].
pub const DEFAULT_LOGIN_WINDOW_SECS: u64 = 60;
/// The default for [`SiteConfig::hash_queue`]: room for one waiting login from each of a
/// thousand addresses.
pub const DEFAULT_HASH_QUEUE: usize = 1024;
/// The largest [`SiteConfig::hash_concurrency`].
pub const MAX_HASH_CONCURRENCY: usize = 1024;
/// The largest [`SiteConfig::hash_queue`].
pub const MAX_HASH_QUEUE: usize = 1_000_000;
/// Password hashes one client address may have waiting; the next is answered 429.
pub const HASHES_WAITING_PER_ADDRESS: usize = 2;
/// The memory of one password hash, MiB (Argon2id's default, 19 MiB): the unit of the hashing
/// queue's budget.
const PASSWORD_HASH_MIB: u32 = argon2::Params::DEFAULT_M_COST.div_ceil(1024);

impl SiteConfig {
    /// Settings with `jwt_secret` and the defaults for the rest.
    pub fn new(jwt_secret: impl Into<Vec<u8>>) -> Result<Self, String> {
        let jwt_secret = jwt_secret.into();
        if jwt_secret.len() < MIN_SECRET_LEN {
            return Err(format!(
                "the token signing secret must be at least {MIN_SECRET_LEN} bytes \
                 (try: openssl rand -hex 32)"
            ));
        }
        Ok(Self {
            database_url: "sqlite://invite-site.db?mode=rwc".into(),
            jwt_secret,
            issuer: "hashpass-invite-site".into(),
            audience: "hashpass-invite-site:accounts".into(),
            token_ttl_secs: 3600,
            login_attempts: DEFAULT_LOGIN_ATTEMPTS,
            login_window_secs: DEFAULT_LOGIN_WINDOW_SECS,
            hash_concurrency: std::thread::available_parallelism().map_or(2, |n| n.get()),
            hash_queue: DEFAULT_HASH_QUEUE,
        })
    }

    /// Whether the settings can run a site: the limits positive, the hashing queue's within
    /// bounds.
    pub fn validate(&self) -> Result<(), String> {
        if self.login_attempts == 0 {
            return Err("login_attempts (SITE_LOGIN_ATTEMPTS) must be at least 1".into());
        }
        if self.login_window_secs == 0 {
            return Err("login_window_secs (SITE_LOGIN_WINDOW_SECS) must be at least 1".into());
        }
        if self.hash_concurrency == 0 {
            return Err("hash_concurrency (SITE_HASH_CONCURRENCY) must be at least 1".into());
        }
        if self.hash_concurrency > MAX_HASH_CONCURRENCY {
            return Err(format!(
                "hash_concurrency (SITE_HASH_CONCURRENCY) is too large: at most \
                 {MAX_HASH_CONCURRENCY}, and one per core is plenty"
            ));
        }
        if self.hash_queue > MAX_HASH_QUEUE {
            return Err(format!(
                "hash_queue (SITE_HASH_QUEUE) is too large: at most {MAX_HASH_QUEUE}"
            ));
        }
        Ok(())
    }

    /// Reads the `SITE_*` variables of the process environment; `SITE_JWT_SECRET` must be set.
    pub fn from_env() -> Result<Self, String> {
        Self::read(&Variables::from_env())
    }

    /// Reads the `SITE_*` variables from `vars`: `SITE_JWT_SECRET` must be set, and each number
    /// lie within its bounds (README's table); an error names the variable.
    pub fn read<F: Fn(&str) -> Option<String>>(vars: &Variables<F>) -> Result<Self, String> {
        let secret = vars.text("SITE_JWT_SECRET").ok_or(
            "SITE_JWT_SECRET is not set: give the site a signing secret of at least 32 bytes \
             (try: export SITE_JWT_SECRET=$(openssl rand -hex 32))",
        )?;
        let mut config = Self::new(secret)?;
        if let Some(url) = vars.text("SITE_DATABASE_URL") {
            config.database_url = url;
        }
        if let Some(issuer) = vars.text("SITE_JWT_ISSUER") {
            config.issuer = issuer;
        }
        if let Some(audience) = vars.text("SITE_JWT_AUDIENCE") {
            config.audience = audience;
        }
        config.read_numbers(vars).map_err(|e| e.to_string())?;
        config.validate()?;
        Ok(config)
    }

    /// The numbers of [`SiteConfig::read`], each within its bounds.
    fn read_numbers<F: Fn(&str) -> Option<String>>(
        &mut self,
        vars: &Variables<F>,
    ) -> Result<(), ConfigError> {
        self.token_ttl_secs = vars
            .whole("SITE_TOKEN_TTL_SECS", 1..=31_536_000)?
            .unwrap_or(self.token_ttl_secs);
        self.login_attempts = vars
            .whole("SITE_LOGIN_ATTEMPTS", 1..=10_000)?
            .unwrap_or(self.login_attempts);
        self.login_window_secs = vars
            .whole("SITE_LOGIN_WINDOW_SECS", 1..=86_400)?
            .unwrap_or(self.login_window_secs);
        self.hash_concurrency = vars
            .whole("SITE_HASH_CONCURRENCY", 1..=MAX_HASH_CONCURRENCY)?
            .unwrap_or(self.hash_concurrency);
        self.hash_queue = vars
            .whole("SITE_HASH_QUEUE", 0..=MAX_HASH_QUEUE)?
            .unwrap_or(self.hash_queue);
        Ok(())
    }
}

/// A sign-up form.
#[derive(Debug, Deserialize)]
pub struct SignUp {
    /// 3 to 32 characters: letters, digits, `_`, `-`, `.` (kept in lower case).
    pub username: String,
    /// 8 to 256 characters.
    pub password: String,
    /// The invite code won in the race.
    pub invite_code: String,
}

/// A login form.
#[derive(Debug, Deserialize)]
pub struct LogIn {
    /// The account's username.
    pub username: String,
    /// Its password.
    pub password: String,
}

/// An account, as the site shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Account {
    /// The username.
    pub username: String,
    /// The id of the invite code it signed up with.
    pub invite_id: String,
    /// When it was created (Unix seconds).
    pub created_at: f64,
}

/// A login's answer.
#[derive(Debug, Serialize)]
pub struct IssuedToken {
    /// The signed token.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until it expires.
    pub expires_in: u64,
}

/// A token's claims.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    /// The username.
    pub sub: String,
    /// The issuer.
    pub iss: String,
    /// The audience.
    pub aud: String,
    /// Issued at (Unix seconds).
    pub iat: u64,
    /// Expires at (Unix seconds).
    pub exp: u64,
}

/// Why the site refused a request; each has its own status and a message saying what to do.
#[derive(Debug, thiserror::Error)]
pub enum SiteError {
    /// The invite code was refused (see [`InviteRejection`]).
    #[error(transparent)]
    Invite(#[from] InviteRejection),
    /// The body is not the form expected.
    #[error("{0}")]
    BadForm(String),
    /// The username belongs to another account.
    #[error("This username is taken: choose another one")]
    UsernameTaken,
    /// Unknown username or wrong password (deliberately not told apart).
    #[error("Wrong username or password")]
    BadCredentials,
    /// No token, or one that is forged, expired, or for another issuer or audience.
    #[error("{0}")]
    BadToken(String),
    /// The database is unreachable.
    #[error("The site cannot reach its database right now: try again in a moment")]
    Unavailable,
    /// The body was not sent as `Content-Type: application/json`.
    #[error("This form takes JSON: send it with the header 'Content-Type: application/json'")]
    NotJson,
    /// This client address attempted too many logins lately.
    #[error("Too many login attempts from your address: try again in {retry_after_secs} s")]
    TooManyLogins {
        /// Seconds until the next attempt is allowed.
        retry_after_secs: u64,
    },
    /// The password-hashing queue is full.
    #[error("The site is busy checking other passwords: try again in {retry_after_secs} s")]
    Busy {
        /// Seconds to wait before trying again.
        retry_after_secs: u64,
    },
    /// This client address has as many passwords waiting to be checked as it may.
    #[error(
        "Too many passwords from your address are waiting to be checked: try again in \
         {retry_after_secs} s"
    )]
    AddressBusy {
        /// Seconds to wait before trying again.
        retry_after_secs: u64,
    },
    /// The server was set up without each client's address, which the login limit counts by.
    #[error(
        "The server is misconfigured: the site needs each client's address (serve the axum app \
         with `into_make_service_with_connect_info::<SocketAddr>()`, the poem app on a TCP \
         listener)"
    )]
    NoClientAddress,
}

impl SiteError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            SiteError::Invite(rejection) => rejection.status(),
            SiteError::BadForm(_) => StatusCode::UNPROCESSABLE_ENTITY,
            SiteError::UsernameTaken => StatusCode::CONFLICT,
            SiteError::BadCredentials | SiteError::BadToken(_) => StatusCode::UNAUTHORIZED,
            SiteError::Unavailable | SiteError::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            SiteError::NotJson => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            SiteError::TooManyLogins { .. } | SiteError::AddressBusy { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            SiteError::NoClientAddress => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A short machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            SiteError::Invite(rejection) => rejection.code(),
            SiteError::BadForm(_) => "bad_form",
            SiteError::UsernameTaken => "username_taken",
            SiteError::BadCredentials => "bad_credentials",
            SiteError::BadToken(_) => "bad_token",
            SiteError::Unavailable => "unavailable",
            SiteError::NotJson => "unsupported_media_type",
            SiteError::TooManyLogins { .. } => "too_many_logins",
            SiteError::Busy { .. } => "busy",
            SiteError::AddressBusy { .. } => "address_busy",
            SiteError::NoClientAddress => "misconfigured",
        }
    }

    /// The JSON body: `{"detail": …, "code": …}`, and `"retry_after"` (seconds) when the
    /// answer carries a `Retry-After`.
    pub fn body(&self) -> Value {
        let mut body = json!({ "detail": self.to_string(), "code": self.code() });
        if let Some(secs) = self.retry_after() {
            body["retry_after"] = secs.into();
        }
        body
    }

    /// The headers the error's answer carries: `WWW-Authenticate: Bearer` for token errors,
    /// `Retry-After` for the refusals that pass with time.
    pub fn headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if self.wants_bearer() {
            headers.insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        if let Some(secs) = self.retry_after() {
            headers.insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
        }
        headers
    }

    /// The `Retry-After` header's seconds, for the refusals that pass with time.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            SiteError::TooManyLogins { retry_after_secs }
            | SiteError::Busy { retry_after_secs }
            | SiteError::AddressBusy { retry_after_secs } => Some(*retry_after_secs),
            _ => None,
        }
    }

    /// Whether the answer should carry `WWW-Authenticate: Bearer`.
    pub fn wants_bearer(&self) -> bool {
        matches!(self, SiteError::BadToken(_))
    }
}

fn unavailable(e: sqlx::Error) -> SiteError {
    tracing::error!(error = %e, "site database unavailable");
    SiteError::Unavailable
}

/// The site's forms, each posted as JSON (`Content-Type: application/json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// `POST /signup`: [`SignUp`] → 201 [`Account`].
    SignUp,
    /// `POST /login`: [`LogIn`] → 200 [`IssuedToken`].
    LogIn,
}

/// The largest form body read (larger ones are refused with a JSON 422).
pub const FORM_LIMIT: usize = 64 * 1024;

/// A successful answer: status and JSON body.
pub type Answer = (StatusCode, Value);

/// A posted form as a web framework hands it over.
#[derive(Debug)]
pub struct FormRequest<'a> {
    /// The TCP peer's address (`None` when the server was set up without it).
    pub peer: Option<IpAddr>,
    /// The request's headers.
    pub headers: &'a HeaderMap,
    /// The body (at most [`FORM_LIMIT`] bytes), or why it could not be read.
    pub body: Result<&'a [u8], String>,
}

/// Refuses a body not declared as JSON: exactly one `Content-Type`, `application/json` in any
/// case, parameters (`; charset=utf-8`) allowed. A cross-site HTML form can post `text/plain`,
/// `multipart/form-data` or `application/x-www-form-urlencoded` without a CORS preflight, but
/// never `application/json`.
pub fn require_json(headers: &HeaderMap) -> Result<(), SiteError> {
    let mut values = headers.get_all(header::CONTENT_TYPE).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(SiteError::NotJson);
    };
    let essence = value
        .to_str()
        .ok()
        .and_then(|v| v.split(';').next())
        .map(str::trim);
    match essence {
        Some(essence) if essence.eq_ignore_ascii_case("application/json") => Ok(()),
        _ => Err(SiteError::NotJson),
    }
}

/// Whole seconds to wait, rounded up, at least one.
fn retry_secs(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

/// Login attempts per client address over a sliding window: one instant per allowed attempt
/// within the window (refused ones are not logged, so waiting `Retry-After` is enough).
struct LoginLimiter {
    attempts: usize,
    window: Duration,
    state: Mutex<LimiterState>,
}

struct LimiterState {
    clients: HashMap<IpAddr, VecDeque<Instant>>,
    /// Past this many clients, those with no attempt in the window are forgotten.
    sweep_at: usize,
}

/// The fewest clients tracked before forgetting the quiet ones.
const LIMITER_SWEEP_MIN: usize = 1024;

impl LoginLimiter {
    fn new(attempts: u32, window: Duration) -> Self {
        Self {
            attempts: attempts as usize,
            window,
            state: Mutex::new(LimiterState {
                clients: HashMap::new(),
                sweep_at: LIMITER_SWEEP_MIN,
            }),
        }
    }

    /// Counts an attempt by `client` at `now`, or says how long until it would be allowed.
    fn attempt(&self, client: IpAddr, now: Instant) -> Result<(), Duration> {
        let mut guard = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let state = &mut *guard;
        let window = self.window;
        let current = |t: &Instant| now.saturating_duration_since(*t) < window;
        if state.clients.len() >= state.sweep_at {
            state
                .clients
                .retain(|_, log| log.back().is_some_and(current));
            state.sweep_at = (state.clients.len() * 2).max(LIMITER_SWEEP_MIN);
        }
        let log = state.clients.entry(counted_address(client)).or_default();
        while log.front().is_some_and(|t| !current(t)) {
            log.pop_front();
        }
        if let Some(oldest) = log.front()
            && log.len() >= self.attempts
        {
            return Err(window.saturating_sub(now.saturating_duration_since(*oldest)));
        }
        log.push_back(now);
        Ok(())
    }
}

/// The hashing queue's limits for `config`: a budget of `hash_concurrency` hashes, one running
/// per address, [`HASHES_WAITING_PER_ADDRESS`] waiting per address and `hash_queue` in all; an
/// address whose login failed waits behind the others for the login window.
fn hashing_limits(config: &SiteConfig) -> QueueLimits {
    QueueLimits {
        budget_mib: PASSWORD_HASH_MIB * config.hash_concurrency.min(MAX_HASH_CONCURRENCY) as u32,
        max_waiting: config.hash_queue,
        per_address_running: 1,
        per_address_waiting: HASHES_WAITING_PER_ADDRESS,
        failure_memory: Duration::from_secs(config.login_window_secs),
    }
}

/// Parses a JSON body into a form, with a message that says what is wrong.
pub fn parse_form<T: DeserializeOwned>(body: &[u8]) -> Result<T, SiteError> {
    serde_json::from_slice(body)
        .map_err(|e| SiteError::BadForm(format!("Send a JSON object with the form's fields ({e})")))
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

fn check_username(username: &str) -> Result<String, SiteError> {
    let name = username.trim().to_lowercase();
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
    if !(3..=32).contains(&name.len()) || !name.chars().all(allowed) {
        return Err(SiteError::BadForm(
            "A username is 3 to 32 characters: letters, digits, '_', '-' or '.'".into(),
        ));
    }
    Ok(name)
}

fn check_password(password: &str) -> Result<(), SiteError> {
    let chars = password.chars().count();
    if !(8..=256).contains(&chars) {
        return Err(SiteError::BadForm(
            "A password is 8 to 256 characters".into(),
        ));
    }
    Ok(())
}

/// The site: accounts, passwords, tokens and the invite gate.
#[derive(Clone)]
pub struct Site {
    inner: Arc<Inner>,
}

struct Inner {
    gate: InviteGate,
    db: AnyPool,
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    config: SiteConfig,
    /// HashPass's view of the network: which proxies' client-IP header to believe.
    network: NetworkConfig,
    /// Login attempts per client address.
    logins: LoginLimiter,
    /// Argon2id runs (each takes 19 MiB and a core), bounded in number running and waiting and
    /// shared by client address.
    hashing: VerificationQueue,
    /// A hash of nothing anyone knows, verified for unknown usernames.
    decoy_hash: String,
}

impl std::fmt::Debug for Site {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Site")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// How long a pending account row (its code claimed, its password being hashed) holds its
/// username and its code before a new sign-up may take them over: a sign-up that crashed
/// midway. Longer than any live sign-up waits for its turn in the hashing queue under load,
/// and than any client waits for its answer.
pub const PENDING_GRACE_SECS: f64 = 300.0;

/// The accounts table; `active` is 0 while the account's invite code is being redeemed;
/// `attempt` is the random id of the sign-up that wrote the row, so that it activates or
/// removes that row and no other (`''` in rows from before it was recorded).
const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS site_accounts (
    username TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    invite_id TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    active BIGINT NOT NULL,
    attempt TEXT NOT NULL DEFAULT ''
)";

/// Adds `attempt` to a table made before it existed.
const ADD_ATTEMPT: &str = "ALTER TABLE site_accounts ADD COLUMN attempt TEXT NOT NULL DEFAULT ''";

/// A fresh sign-up attempt's id: 128 random bits, in hex.
fn new_attempt_id() -> Result<String, SiteError> {
    argon2::password_hash::try_generate_salt()
        .map(hex::encode)
        .map_err(|e| {
            tracing::error!(error = %e, "the system's random number generator failed");
            SiteError::Unavailable
        })
}

impl Site {
    /// The redemption store to build the site's HashPass with: in the site's own database, so
    /// that accounts and the codes they used live (and are backed up) together.
    pub async fn redemption_store(
        config: &SiteConfig,
    ) -> Result<Arc<SqlRedemptionStore>, Box<dyn std::error::Error>> {
        Ok(Arc::new(
            SqlRedemptionStore::connect(&config.database_url).await?,
        ))
    }

    /// Opens the site's database (creating its tables) next to `hashpass`, whose invite codes
    /// and redemption store (see [`Site::redemption_store`]) it uses.
    pub async fn open(
        config: SiteConfig,
        hashpass: &HashPass,
    ) -> Result<Self, Box<dyn std::error::Error>> {
        config.validate()?;
        install_default_drivers();
        let db = AnyPoolOptions::new()
            .max_connections(8)
            .connect(&config.database_url)
            .await?;
        sqlx::query(SCHEMA).execute(&db).await?;
        // Accounts and password hashes: private (0600), like HashPass's own files.
        hashpass::sql::tighten_sqlite_files(&config.database_url)?;
        if sqlx::query("SELECT attempt FROM site_accounts WHERE 1 = 0")
            .execute(&db)
            .await
            .is_err()
        {
            sqlx::query(ADD_ATTEMPT).execute(&db).await?;
        }
        let gate = hashpass.gate();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.validate_exp = true;
        validation.set_issuer(&[&config.issuer]);
        validation.set_audience(&[&config.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let decoy_hash = hash_password("not anyone's password".into())?;
        Ok(Self {
            inner: Arc::new(Inner {
                gate,
                db,
                encoding: EncodingKey::from_secret(&config.jwt_secret)?,
                decoding: DecodingKey::from_secret(&config.jwt_secret)?,
                validation,
                network: hashpass.config().network.clone(),
                logins: LoginLimiter::new(
                    config.login_attempts,
                    Duration::from_secs(config.login_window_secs),
                ),
                hashing: VerificationQueue::new(
                    hashing_limits(&config),
                    Arc::new(hashpass::clock::SystemClock),
                ),
                config,
                decoy_hash,
            }),
        })
    }

    /// Answers a posted `form`: refuses a body not sent as JSON (415), counts a login against
    /// its client address's limit (429), then parses the body and signs up or logs in.
    pub async fn post(&self, form: Form, request: FormRequest<'_>) -> Result<Answer, SiteError> {
        require_json(request.headers)?;
        let peer = request.peer.ok_or(SiteError::NoClientAddress)?;
        let client = self.inner.network.client_ip(peer, request.headers);
        if form == Form::LogIn {
            self.inner
                .logins
                .attempt(client, Instant::now())
                .map_err(|wait| SiteError::TooManyLogins {
                    retry_after_secs: retry_secs(wait),
                })?;
        }
        let body = request
            .body
            .map_err(|e| SiteError::BadForm(format!("The form could not be read ({e})")))?;
        Ok(match form {
            Form::SignUp => (
                StatusCode::CREATED,
                json!(self.sign_up(client, parse_form(body)?).await?),
            ),
            Form::LogIn => (
                StatusCode::OK,
                json!(self.log_in(client, parse_form(body)?).await?),
            ),
        })
    }

    /// Answers `GET /me` with this `Authorization` header.
    pub async fn get_me(&self, authorization: Option<&str>) -> Result<Answer, SiteError> {
        Ok((StatusCode::OK, json!(self.me(authorization).await?)))
    }

    /// Creates an account with a valid, unused invite code for a sign-up from `client`; of any
    /// number of concurrent sign-ups with one code, exactly one creates an account, and the
    /// others are refused (409) before any password is hashed.
    pub async fn sign_up(&self, client: IpAddr, form: SignUp) -> Result<Account, SiteError> {
        let username = check_username(&form.username)?;
        check_password(&form.password)?;
        let code = form.invite_code.trim();
        // Refuse a bad or used code before anything else.
        let invite = self.checked_invite(code).await?;
        let attempt = new_attempt_id()?;
        let created_at = now_secs();
        let row = PendingRow {
            username: &username,
            attempt: &attempt,
            invite_id: &invite.id,
            created_at,
        };
        let reserved = self.reserve(&row).await?
            || (self.reclaim_abandoned(&username).await? && self.reserve(&row).await?);
        if !reserved {
            return Err(SiteError::UsernameTaken);
        }
        // The claim: redeeming the code, before any hashing.
        if let Err(rejection) = self.inner.gate.redeem(code, &username).await {
            self.remove_pending(&username, &attempt).await?;
            return Err(rejection.into());
        }
        match self
            .complete_sign_up(client, &username, &attempt, form.password)
            .await
        {
            Ok(true) => Ok(Account {
                username,
                invite_id: invite.id,
                created_at,
            }),
            Ok(false) => {
                // Stalled past the grace period, this sign-up's row was taken over by another
                // one for the same name: not ours to activate.
                tracing::warn!(
                    %username,
                    invite_id = %invite.id,
                    "a sign-up finished after its pending row was taken over"
                );
                self.release_claim_unless_held(&username, &invite.id).await;
                Err(SiteError::UsernameTaken)
            }
            Err(e) => {
                self.abandon_claim(&username, &attempt, &invite.id).await;
                Err(e)
            }
        }
    }

    /// `code` if it may sign up an account now. A code refused as used up may be held by a
    /// sign-up that a crash left pending past the grace period: those claims are released and
    /// the code checked again.
    async fn checked_invite(&self, code: &str) -> Result<VerifiedInvite, SiteError> {
        match self.inner.gate.check(code).await {
            Err(InviteRejection::AlreadyUsed) => {
                let Some(id) = hashpass::invite::code_id(code) else {
                    return Err(InviteRejection::AlreadyUsed.into());
                };
                if self.release_abandoned_claims(&id).await? == 0 {
                    return Err(InviteRejection::AlreadyUsed.into());
                }
                Ok(self.inner.gate.check(code).await?)
            }
            checked => Ok(checked?),
        }
    }

    /// Hashes the password of the sign-up that claimed its code (through the fair queue), then
    /// stores the hash and activates the row it wrote, in one statement; false if that row is
    /// no longer there.
    async fn complete_sign_up(
        &self,
        client: IpAddr,
        username: &str,
        attempt: &str,
        password: String,
    ) -> Result<bool, SiteError> {
        let password_hash = self.hashed(client, password).await?;
        let updated = sqlx::query(
            "UPDATE site_accounts SET password_hash = $3, active = 1 \
             WHERE username = $1 AND attempt = $2 AND active = 0",
        )
        .bind(username)
        .bind(attempt)
        .bind(&password_hash)
        .execute(&self.inner.db)
        .await
        .map_err(unavailable)?;
        Ok(updated.rows_affected() == 1)
    }

    /// A sign-up that claimed `invite_id` failed before its account was made: removes its row
    /// and then gives the code's use back; if the removal fails, the row stays for
    /// [`Site::reclaim_abandoned`] to release later.
    async fn abandon_claim(&self, username: &str, attempt: &str, invite_id: &str) {
        match self.remove_pending(username, attempt).await {
            Ok(true) => self.release_claim(username, invite_id).await,
            Ok(false) => self.release_claim_unless_held(username, invite_id).await,
            Err(_) => {
                tracing::warn!(%username, %invite_id, "a failed sign-up's claim is kept until its row is reclaimed")
            }
        }
    }

    /// A sign-up whose row was taken over (it stalled past the grace period) after it claimed
    /// `invite_id`: the use of that code by `username` is this sign-up's and is given back —
    /// unless the row now holding the name claims the same code, whose use it then is (the
    /// takeover released this one's if it was made by then).
    async fn release_claim_unless_held(&self, username: &str, invite_id: &str) {
        let holder = sqlx::query_scalar::<_, String>(
            "SELECT invite_id FROM site_accounts WHERE username = $1",
        )
        .bind(username)
        .fetch_optional(&self.inner.db)
        .await;
        match holder {
            Ok(holder) if holder.as_deref() != Some(invite_id) => {
                self.release_claim(username, invite_id).await;
            }
            Ok(_) => {}
            Err(e) => {
                tracing::error!(%username, %invite_id, error = %e, "could not tell whether a stalled sign-up's claim is held");
            }
        }
    }

    /// Gives back `username`'s use of the code `invite_id` (its row already removed).
    async fn release_claim(&self, username: &str, invite_id: &str) {
        let released = self
            .inner
            .gate
            .redemptions()
            .release(invite_id, username, now_secs())
            .await;
        match released {
            Ok(true) => {
                tracing::info!(%username, %invite_id, "released the claim of a sign-up that did not finish")
            }
            Ok(false) => {}
            Err(e) => {
                tracing::error!(%username, %invite_id, error = %e, "could not release the claim of a sign-up that did not finish")
            }
        }
    }

    /// Releases the claims on `invite_id` of sign-ups that a crash left pending, with no
    /// password stored, past the grace period; how many rows were removed.
    async fn release_abandoned_claims(&self, invite_id: &str) -> Result<usize, SiteError> {
        let rows = sqlx::query(
            "SELECT username, attempt FROM site_accounts WHERE invite_id = $1 AND active = 0 \
             AND password_hash = '' AND created_at < $2",
        )
        .bind(invite_id)
        .bind(now_secs() - PENDING_GRACE_SECS)
        .fetch_all(&self.inner.db)
        .await
        .map_err(unavailable)?;
        let mut removed = 0;
        for row in rows {
            let username: String = row.try_get("username").map_err(unavailable)?;
            let attempt: String = row.try_get("attempt").map_err(unavailable)?;
            if self.remove_pending(&username, &attempt).await? {
                self.release_claim(&username, invite_id).await;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Checks a username and password from `client` and issues a token. A wrong one puts
    /// `client` behind the others in the hashing queue for the login window.
    pub async fn log_in(&self, client: IpAddr, form: LogIn) -> Result<IssuedToken, SiteError> {
        let username = form.username.trim().to_lowercase();
        let row = sqlx::query(
            "SELECT password_hash, invite_id, active, attempt FROM site_accounts \
             WHERE username = $1",
        )
        .bind(&username)
        .fetch_optional(&self.inner.db)
        .await
        .map_err(unavailable)?;
        let Some(row) = row else {
            // The same work as a wrong password, through the same bounded queue, so neither
            // timing nor a 503 tells which names exist.
            self.verified(client, form.password, self.inner.decoy_hash.clone())
                .await?;
            return Err(self.failed_login(client));
        };
        let stored: String = row.try_get("password_hash").map_err(unavailable)?;
        if !self.verified(client, form.password, stored).await? {
            return Err(self.failed_login(client));
        }
        let active: i64 = row.try_get("active").map_err(unavailable)?;
        if active == 0 && !self.finish_interrupted_sign_up(&username, &row).await? {
            return Err(SiteError::BadCredentials);
        }
        let now = now_secs() as u64;
        let claims = Claims {
            sub: username,
            iss: self.inner.config.issuer.clone(),
            aud: self.inner.config.audience.clone(),
            iat: now,
            exp: now + self.inner.config.token_ttl_secs,
        };
        let access_token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &self.inner.encoding,
        )
        .map_err(|e| {
            tracing::error!(error = %e, "token signing failed");
            SiteError::Unavailable
        })?;
        Ok(IssuedToken {
            access_token,
            token_type: "Bearer",
            expires_in: self.inner.config.token_ttl_secs,
        })
    }

    /// A login from `client` failed: its next hashes wait behind other addresses' for a while.
    fn failed_login(&self, client: IpAddr) -> SiteError {
        self.inner.hashing.record_failure(client);
        SiteError::BadCredentials
    }

    /// The account an `Authorization: Bearer …` header's token names.
    pub async fn me(&self, authorization: Option<&str>) -> Result<Account, SiteError> {
        let token = authorization
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                SiteError::BadToken(
                    "Log in first: send the token from /login as 'Authorization: Bearer <token>'"
                        .into(),
                )
            })?;
        let claims = self.claims(token)?;
        let row = sqlx::query(
            "SELECT invite_id, created_at FROM site_accounts WHERE username = $1 AND active = 1",
        )
        .bind(&claims.sub)
        .fetch_optional(&self.inner.db)
        .await
        .map_err(unavailable)?
        .ok_or_else(|| SiteError::BadToken("This token's account no longer exists".into()))?;
        Ok(Account {
            username: claims.sub,
            invite_id: row.try_get("invite_id").map_err(unavailable)?,
            created_at: row.try_get("created_at").map_err(unavailable)?,
        })
    }

    /// A token's claims, if it is authentic, current and meant for this site.
    pub fn claims(&self, token: &str) -> Result<Claims, SiteError> {
        use jsonwebtoken::errors::ErrorKind;
        jsonwebtoken::decode::<Claims>(token, &self.inner.decoding, &self.inner.validation)
            .map(|data| data.claims)
            .map_err(|e| {
                SiteError::BadToken(
                    match e.kind() {
                        ErrorKind::ExpiredSignature => "Your login has expired: log in again",
                        ErrorKind::InvalidAudience => {
                            "This token was issued for another service: log in here"
                        }
                        ErrorKind::InvalidIssuer => {
                            "This token was issued by someone else: log in here"
                        }
                        ErrorKind::InvalidSignature => {
                            "This token's signature is wrong: log in again"
                        }
                        _ => "This is not a valid login token: log in again",
                    }
                    .into(),
                )
            })
    }

    /// Writes the pending account row; false if the username has a row already.
    async fn reserve(&self, row: &PendingRow<'_>) -> Result<bool, SiteError> {
        let inserted = sqlx::query(
            "INSERT INTO site_accounts
                 (username, password_hash, invite_id, created_at, active, attempt)
             VALUES ($1, $2, $3, $4, 0, $5) ON CONFLICT (username) DO NOTHING",
        )
        .bind(row.username)
        .bind("")
        .bind(row.invite_id)
        .bind(row.created_at)
        .bind(row.attempt)
        .execute(&self.inner.db)
        .await
        .map_err(unavailable)?;
        Ok(inserted.rows_affected() == 1)
    }

    /// Removes the pending row that sign-up `attempt` wrote, if it is still there and pending;
    /// true if it was.
    async fn remove_pending(&self, username: &str, attempt: &str) -> Result<bool, SiteError> {
        let removed = sqlx::query(
            "DELETE FROM site_accounts WHERE username = $1 AND attempt = $2 AND active = 0",
        )
        .bind(username)
        .bind(attempt)
        .execute(&self.inner.db)
        .await
        .map_err(unavailable)?;
        Ok(removed.rows_affected() == 1)
    }

    /// Frees a username held by a pending row that a crash left behind (older than
    /// [`PENDING_GRACE_SECS`]), releasing its claim on its code if it made one — or, for a row
    /// written with its password before it redeemed (by an earlier version of the site) whose
    /// code was redeemed, activates the account instead. True if the username is free now.
    async fn reclaim_abandoned(&self, username: &str) -> Result<bool, SiteError> {
        let row = sqlx::query(
            "SELECT invite_id, created_at, active, attempt, password_hash FROM site_accounts \
             WHERE username = $1",
        )
        .bind(username)
        .fetch_optional(&self.inner.db)
        .await
        .map_err(unavailable)?;
        let Some(row) = row else {
            return Ok(true);
        };
        let active: i64 = row.try_get("active").map_err(unavailable)?;
        let created_at: f64 = row.try_get("created_at").map_err(unavailable)?;
        if active != 0 || created_at > now_secs() - PENDING_GRACE_SECS {
            return Ok(false);
        }
        if self.finish_interrupted_sign_up(username, &row).await? {
            return Ok(false);
        }
        let attempt: String = row.try_get("attempt").map_err(unavailable)?;
        if self.remove_pending(username, &attempt).await? {
            tracing::info!(%username, "freed a username held by an abandoned sign-up");
            let invite_id: String = row.try_get("invite_id").map_err(unavailable)?;
            self.release_claim(username, &invite_id).await;
        }
        Ok(true)
    }

    /// A sign-up of an earlier version of the site (which stored the password before it
    /// redeemed) whose code was redeemed but that stopped before activating the account (a
    /// crash in between) is completed when its owner logs in: the row read (`invite_id`,
    /// `attempt`, `password_hash`) is activated, if it is still there. True if it was. A row
    /// with no password yet (a claim whose hashing never finished) is never activated.
    async fn finish_interrupted_sign_up(
        &self,
        username: &str,
        row: &sqlx::any::AnyRow,
    ) -> Result<bool, SiteError> {
        let password_hash: String = row.try_get("password_hash").map_err(unavailable)?;
        if password_hash.is_empty() {
            return Ok(false);
        }
        let invite_id: String = row.try_get("invite_id").map_err(unavailable)?;
        let redeemed_by_them = self
            .inner
            .gate
            .redemptions()
            .status(&invite_id)
            .await
            .is_ok_and(|status| status.uses.iter().any(|u| u.user_id == username));
        if !redeemed_by_them {
            return Ok(false);
        }
        let attempt: String = row.try_get("attempt").map_err(unavailable)?;
        self.activate(username, &attempt).await
    }

    /// Activates the row that sign-up `attempt` wrote for `username` — never another sign-up's
    /// row for the same name; false if that row is no longer there.
    async fn activate(&self, username: &str, attempt: &str) -> Result<bool, SiteError> {
        let updated =
            sqlx::query("UPDATE site_accounts SET active = 1 WHERE username = $1 AND attempt = $2")
                .bind(username)
                .bind(attempt)
                .execute(&self.inner.db)
                .await
                .map_err(unavailable)?;
        Ok(updated.rows_affected() == 1)
    }

    /// Runs a password hash or check for `client` on the blocking pool when the fair queue
    /// gives it a turn ([`hashing_limits`]), or refuses at once: [`SiteError::AddressBusy`]
    /// when the address has its share waiting, [`SiteError::Busy`] when the whole queue is
    /// full. The turn goes with the work, so a client that hangs up mid-hash frees its slot
    /// only when the hash is done.
    async fn on_hashing_pool<R: Send + 'static>(
        &self,
        client: IpAddr,
        work: impl FnOnce() -> R + Send + 'static,
    ) -> Result<R, SiteError> {
        let turn = self
            .inner
            .hashing
            .turn(client, PASSWORD_HASH_MIB)
            .await
            .map_err(|refusal| match refusal {
                Refusal::AddressQueueFull { retry_after } => SiteError::AddressBusy {
                    retry_after_secs: retry_after,
                },
                Refusal::Busy { retry_after } => SiteError::Busy {
                    retry_after_secs: retry_after,
                },
            })?;
        tokio::task::spawn_blocking(move || {
            let _turn = turn;
            work()
        })
        .await
        .map_err(|_| SiteError::Unavailable)
    }

    async fn hashed(&self, client: IpAddr, password: String) -> Result<String, SiteError> {
        self.on_hashing_pool(client, move || hash_password(password))
            .await?
            .map_err(|e| {
                tracing::error!(error = %e, "password hashing failed");
                SiteError::Unavailable
            })
    }

    async fn verified(
        &self,
        client: IpAddr,
        password: String,
        stored: String,
    ) -> Result<bool, SiteError> {
        self.on_hashing_pool(client, move || {
            PasswordHash::new(&stored).is_ok_and(|hash| {
                argon2::Argon2::default()
                    .verify_password(password.as_bytes(), &hash)
                    .is_ok()
            })
        })
        .await
    }
}

/// A pending account row, as a sign-up writes it (with no password until its code is claimed).
struct PendingRow<'a> {
    username: &'a str,
    attempt: &'a str,
    invite_id: &'a str,
    created_at: f64,
}

/// Argon2id (the crate's defaults: 19 MiB, t=2) with a fresh random salt, as a PHC string.
fn hash_password(password: String) -> Result<String, argon2::password_hash::Error> {
    Ok(argon2::Argon2::default()
        .hash_password(password.as_bytes())?
        .to_string())
}

/// The site and its HashPass, built from the environment as the `invite-site-*` binaries run
/// them; the log writer lives as long as it does.
pub struct Launch {
    /// The site.
    pub site: Site,
    /// Its HashPass.
    pub hashpass: HashPass,
    /// Where to listen (`HASHPASS_HOST`, `PORT`).
    pub addr: std::net::SocketAddr,
    _log_guard: tracing_appender::non_blocking::WorkerGuard,
}

impl std::fmt::Debug for Launch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Launch")
            .field("hashpass", &self.hashpass)
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// Reads `.env` and the environment (the `SITE_*` and the usual HashPass settings), starts
/// logging, and builds HashPass with its redemptions in the site's database and its other state
/// (the audit log, the invite key ring an admin rotates) in `HASHPASS_DATA_DIR`, then the site.
pub async fn launch_from_env() -> Result<Launch, Box<dyn std::error::Error>> {
    let _ = dotenvy::dotenv();
    let site_config = SiteConfig::from_env()?;
    let (settings, config) = crate::ServerSettings::from_env()?;
    let log_guard = crate::init_logging(
        &config.admin.log_dir,
        &settings.log_level,
        settings.log_format,
        settings.log_max_file_bytes,
    )?;
    let hashpass = HashPass::builder(config)
        .on_disk(&settings.data_dir)
        .redemption_store(Site::redemption_store(&site_config).await?)
        .build()
        .await?;
    let site = Site::open(site_config, &hashpass).await?;
    Ok(Launch {
        site,
        hashpass,
        addr: settings.addr(),
        _log_guard: log_guard,
    })
}

/// The sign-up page.
pub const JOIN_HTML: &str = include_str!("join.html");
/// The sign-up page's script.
pub const JOIN_JS: &str = include_str!("join.js");
/// The sign-up page's style sheet.
pub const JOIN_CSS: &str = include_str!("join.css");

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "a-signing-secret-of-at-least-32-bytes";

    fn read(pairs: &[(&str, &str)]) -> Result<SiteConfig, String> {
        let map: HashMap<&str, &str> = pairs.iter().copied().collect();
        SiteConfig::read(&Variables::new(|k: &str| {
            map.get(k)
                .map(|v| v.to_string())
                .or_else(|| (k == "SITE_JWT_SECRET").then(|| SECRET.to_string()))
        }))
    }

    #[test]
    fn site_numbers_out_of_bounds_name_the_variable() {
        for (name, value) in [
            ("SITE_TOKEN_TTL_SECS", "0"),
            ("SITE_TOKEN_TTL_SECS", "18446744073709551615"),
            ("SITE_LOGIN_ATTEMPTS", "0"),
            ("SITE_LOGIN_WINDOW_SECS", "18446744073709551615"),
            ("SITE_HASH_CONCURRENCY", "0"),
            ("SITE_HASH_CONCURRENCY", "4294967296"),
            ("SITE_HASH_QUEUE", "-1"),
            ("SITE_HASH_QUEUE", "1000001"),
        ] {
            let e = read(&[(name, value)]).unwrap_err();
            assert!(e.starts_with(&format!("{name}: ")), "{name}={value}: {e}");
        }
        let edge = read(&[
            ("SITE_TOKEN_TTL_SECS", "31536000"),
            ("SITE_HASH_CONCURRENCY", "1024"),
            ("SITE_HASH_QUEUE", "1000000"),
        ])
        .unwrap();
        assert_eq!(edge.token_ttl_secs, 31_536_000);
    }

    proptest::proptest! {
        /// No text in any `SITE_*` variable panics: reading answers settings or an error naming
        /// the variable.
        #[test]
        fn no_site_variable_panics(
            name in proptest::sample::select(vec![
                "SITE_TOKEN_TTL_SECS", "SITE_LOGIN_ATTEMPTS", "SITE_LOGIN_WINDOW_SECS",
                "SITE_HASH_CONCURRENCY", "SITE_HASH_QUEUE", "SITE_JWT_SECRET",
                "SITE_DATABASE_URL", "SITE_JWT_ISSUER", "SITE_JWT_AUDIENCE",
            ]),
            value in proptest::prop_oneof![
                proptest::prelude::any::<String>(),
                "-?[0-9]{1,22}",
            ],
        ) {
            if let Err(e) = read(&[(name, value.as_str())]) {
                proptest::prop_assert!(e.starts_with(name) || e.contains("signing secret"), "{e}");
            }
        }
    }

    #[test]
    fn only_json_bodies_are_accepted() {
        let with = |value: Option<&str>| {
            let mut headers = HeaderMap::new();
            if let Some(value) = value {
                headers.insert(header::CONTENT_TYPE, value.parse().unwrap());
            }
            require_json(&headers).is_ok()
        };
        for accepted in [
            "application/json",
            "Application/JSON",
            "application/json; charset=utf-8",
            " application/json ;charset=UTF-8",
        ] {
            assert!(with(Some(accepted)), "{accepted}");
        }
        for refused in [
            "text/plain",
            "text/plain; charset=utf-8",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/jsonx",
            "application/json-patch+json",
            "",
        ] {
            assert!(!with(Some(refused)), "{refused}");
        }
        assert!(!with(None));
        let mut two = HeaderMap::new();
        two.append(header::CONTENT_TYPE, "application/json".parse().unwrap());
        two.append(header::CONTENT_TYPE, "text/plain".parse().unwrap());
        assert!(require_json(&two).is_err());
        assert_eq!(
            SiteError::NotJson.status(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
    }

    #[test]
    fn the_login_limit_slides_and_does_not_count_refusals() {
        let limiter = LoginLimiter::new(3, Duration::from_secs(60));
        let (client, other) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let t0 = Instant::now();
        let at = |secs: u64| t0 + Duration::from_secs(secs);
        for secs in [0, 10, 20] {
            assert_eq!(limiter.attempt(client, at(secs)), Ok(()));
        }
        assert_eq!(
            limiter.attempt(client, at(30)),
            Err(Duration::from_secs(30))
        );
        assert_eq!(limiter.attempt(other, at(30)), Ok(()));
        assert_eq!(limiter.attempt(client, at(59)), Err(Duration::from_secs(1)));
        // The first attempt has left the window; the refused ones were never in it.
        assert_eq!(limiter.attempt(client, at(60)), Ok(()));
        assert_eq!(limiter.attempt(client, at(61)), Err(Duration::from_secs(9)));
        assert_eq!(retry_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_secs(Duration::from_millis(1500)), 2);
        assert_eq!(retry_secs(Duration::ZERO), 1);
    }

    #[test]
    fn quiet_clients_are_forgotten() {
        let limiter = LoginLimiter::new(1, Duration::from_secs(60));
        let t0 = Instant::now();
        for n in 0..LIMITER_SWEEP_MIN as u32 {
            let ip = IpAddr::from(n.to_be_bytes());
            assert_eq!(limiter.attempt(ip, t0), Ok(()));
        }
        let later = t0 + Duration::from_secs(61);
        assert_eq!(limiter.attempt("192.0.2.1".parse().unwrap(), later), Ok(()));
        let state = limiter.state.lock().unwrap();
        assert_eq!(state.clients.len(), 1);
    }

    #[test]
    fn the_limits_are_read_and_checked() {
        assert_eq!(read(&[]).unwrap().login_attempts, DEFAULT_LOGIN_ATTEMPTS);
        assert_eq!(
            read(&[("SITE_LOGIN_ATTEMPTS", " 12 ")])
                .unwrap()
                .login_attempts,
            12
        );
        assert_eq!(read(&[("SITE_HASH_QUEUE", "0")]).unwrap().hash_queue, 0);
        assert!(
            read(&[("SITE_LOGIN_ATTEMPTS", "0")])
                .unwrap_err()
                .contains("from 1 to 10000")
        );
        assert!(read(&[("SITE_LOGIN_ATTEMPTS", "ten")]).is_err());
        let mut config = SiteConfig::new([7u8; MIN_SECRET_LEN]).unwrap();
        assert_eq!(config.login_attempts, 10);
        assert_eq!(config.login_window_secs, 60);
        assert_eq!(config.hash_queue, DEFAULT_HASH_QUEUE);
        assert!(config.hash_concurrency >= 1);
        assert_eq!(config.validate(), Ok(()));
        config.hash_concurrency = 0;
        assert!(config.validate().is_err());
        config.hash_concurrency = usize::MAX;
        assert!(config.validate().is_err());
        config.hash_concurrency = MAX_HASH_CONCURRENCY;
        assert_eq!(config.validate(), Ok(()));
        config.hash_queue = MAX_HASH_QUEUE + 1;
        assert!(config.validate().is_err());
    }
}
