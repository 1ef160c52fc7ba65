//! An invite-only site of its own that mounts HashPass: visitors race for an invite code, then
//! sign up with a username, a password and that code; logging in issues a signed token that the
//! protected `/me` requires. This module is the site's logic, with no web framework in it;
//! [`with_axum`] and [`with_poem`] are the same site in each framework.
//!
//! - Accounts live in SQL (SQLite by default, any `postgres://` URL too), passwords as salted
//!   Argon2id PHC strings, verified in constant time; an unknown username costs the same work as
//!   a wrong password.
//! - A code signs up one account: the account is written pending, the code is redeemed (exactly
//!   one of any number of racers wins), then the account is activated — or, if the code was
//!   refused, removed again, freeing the username. A row that a crash left pending becomes the
//!   account if its code was redeemed, and otherwise frees its username after a minute.
//! - Tokens are HS256 JWTs checked for signature, issuer, audience and expiry with no leeway.
//! - Every secret comes from the environment ([`SiteConfig::from_env`]).

pub mod with_axum;
pub mod with_poem;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use hashpass::HashPass;
use hashpass::gate::{InviteGate, InviteRejection};
use hashpass::sql::SqlRedemptionStore;
use http::StatusCode;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::{Value, json};
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Row};
use tokio::sync::Semaphore;

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
}

impl std::fmt::Debug for SiteConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SiteConfig")
            .field("database_url", &self.database_url)
            .field("jwt_secret", &"<redacted>")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("token_ttl_secs", &self.token_ttl_secs)
            .finish()
    }
}

/// The shortest signing secret accepted (256 bits, the HS256 key size).
pub const MIN_SECRET_LEN: usize = 32;

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
        })
    }

    /// Reads the `SITE_*` variables; `SITE_JWT_SECRET` must be set.
    pub fn from_env() -> Result<Self, String> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let secret = var("SITE_JWT_SECRET").ok_or(
            "SITE_JWT_SECRET is not set: give the site a signing secret of at least 32 bytes \
             (try: export SITE_JWT_SECRET=$(openssl rand -hex 32))",
        )?;
        let mut config = Self::new(secret)?;
        if let Some(url) = var("SITE_DATABASE_URL") {
            config.database_url = url;
        }
        if let Some(issuer) = var("SITE_JWT_ISSUER") {
            config.issuer = issuer;
        }
        if let Some(audience) = var("SITE_JWT_AUDIENCE") {
            config.audience = audience;
        }
        if let Some(ttl) = var("SITE_TOKEN_TTL_SECS") {
            config.token_ttl_secs = ttl
                .parse()
                .ok()
                .filter(|t| *t > 0)
                .ok_or("SITE_TOKEN_TTL_SECS must be a positive whole number of seconds")?;
        }
        Ok(config)
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
}

impl SiteError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            SiteError::Invite(rejection) => rejection.status(),
            SiteError::BadForm(_) => StatusCode::UNPROCESSABLE_ENTITY,
            SiteError::UsernameTaken => StatusCode::CONFLICT,
            SiteError::BadCredentials | SiteError::BadToken(_) => StatusCode::UNAUTHORIZED,
            SiteError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
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
        }
    }

    /// The JSON body: `{"detail": …, "code": …}`.
    pub fn body(&self) -> Value {
        json!({ "detail": self.to_string(), "code": self.code() })
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

/// The site's forms, each posted as JSON.
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
    /// Argon2id runs at most this many at once (each takes 19 MiB and a core).
    hashing: Semaphore,
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

/// How long a pending account row (its code being redeemed) holds its username before a new
/// sign-up may take it over, if its code was never redeemed: a sign-up that crashed midway.
pub const PENDING_GRACE_SECS: f64 = 60.0;

/// The accounts table; `active` is 0 while the account's invite code is being redeemed.
const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS site_accounts (
    username TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    invite_id TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    active BIGINT NOT NULL
)";

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
        install_default_drivers();
        let db = AnyPoolOptions::new()
            .max_connections(8)
            .connect(&config.database_url)
            .await?;
        sqlx::query(SCHEMA).execute(&db).await?;
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
                config,
                hashing: Semaphore::new(
                    std::thread::available_parallelism().map_or(2, |n| n.get()),
                ),
                decoy_hash,
            }),
        })
    }

    /// Answers a posted `form` (the JSON `body`).
    pub async fn post(&self, form: Form, body: &[u8]) -> Result<Answer, SiteError> {
        Ok(match form {
            Form::SignUp => (
                StatusCode::CREATED,
                json!(self.sign_up(parse_form(body)?).await?),
            ),
            Form::LogIn => (StatusCode::OK, json!(self.log_in(parse_form(body)?).await?)),
        })
    }

    /// Answers `GET /me` with this `Authorization` header.
    pub async fn get_me(&self, authorization: Option<&str>) -> Result<Answer, SiteError> {
        Ok((StatusCode::OK, json!(self.me(authorization).await?)))
    }

    /// Creates an account with a valid, unused invite code; of any number of concurrent
    /// sign-ups with one code, exactly one creates an account.
    pub async fn sign_up(&self, form: SignUp) -> Result<Account, SiteError> {
        let username = check_username(&form.username)?;
        check_password(&form.password)?;
        // Refuse a bad code before spending a password hash on it.
        let invite = self.inner.gate.check(form.invite_code.trim()).await?;
        let password_hash = self.hashed(form.password).await?;
        let created_at = now_secs();
        let reserved = self
            .reserve(&username, &password_hash, &invite.id, created_at)
            .await?
            || (self.reclaim_abandoned(&username).await?
                && self
                    .reserve(&username, &password_hash, &invite.id, created_at)
                    .await?);
        if !reserved {
            return Err(SiteError::UsernameTaken);
        }
        match self
            .inner
            .gate
            .redeem(form.invite_code.trim(), &username)
            .await
        {
            Ok(_) => {
                self.activate(&username).await?;
                Ok(Account {
                    username,
                    invite_id: invite.id,
                    created_at,
                })
            }
            Err(rejection) => {
                sqlx::query(
                    "DELETE FROM site_accounts \
                     WHERE username = $1 AND active = 0 AND created_at = $2",
                )
                .bind(&username)
                .bind(created_at)
                .execute(&self.inner.db)
                .await
                .map_err(unavailable)?;
                Err(rejection.into())
            }
        }
    }

    /// Checks a username and password and issues a token.
    pub async fn log_in(&self, form: LogIn) -> Result<IssuedToken, SiteError> {
        let username = form.username.trim().to_lowercase();
        let row = sqlx::query(
            "SELECT password_hash, invite_id, active FROM site_accounts WHERE username = $1",
        )
        .bind(&username)
        .fetch_optional(&self.inner.db)
        .await
        .map_err(unavailable)?;
        let Some(row) = row else {
            // The same work as a wrong password, so timing does not tell which names exist.
            let _ = self
                .verified(form.password, self.inner.decoy_hash.clone())
                .await;
            return Err(SiteError::BadCredentials);
        };
        let stored: String = row.try_get("password_hash").map_err(unavailable)?;
        if !self.verified(form.password, stored).await? {
            return Err(SiteError::BadCredentials);
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
    async fn reserve(
        &self,
        username: &str,
        password_hash: &str,
        invite_id: &str,
        created_at: f64,
    ) -> Result<bool, SiteError> {
        let inserted = sqlx::query(
            "INSERT INTO site_accounts (username, password_hash, invite_id, created_at, active)
             VALUES ($1, $2, $3, $4, 0) ON CONFLICT (username) DO NOTHING",
        )
        .bind(username)
        .bind(password_hash)
        .bind(invite_id)
        .bind(created_at)
        .execute(&self.inner.db)
        .await
        .map_err(unavailable)?;
        Ok(inserted.rows_affected() == 1)
    }

    /// Frees a username held by a pending row that a crash left behind (older than
    /// [`PENDING_GRACE_SECS`], its code never redeemed by it) — or, if its code was redeemed,
    /// activates the account instead. True if the username is free now.
    async fn reclaim_abandoned(&self, username: &str) -> Result<bool, SiteError> {
        let row = sqlx::query(
            "SELECT invite_id, created_at, active FROM site_accounts WHERE username = $1",
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
        let removed = sqlx::query(
            "DELETE FROM site_accounts WHERE username = $1 AND active = 0 AND created_at = $2",
        )
        .bind(username)
        .bind(created_at)
        .execute(&self.inner.db)
        .await
        .map_err(unavailable)?;
        if removed.rows_affected() == 1 {
            tracing::info!(%username, "freed a username held by an abandoned sign-up");
        }
        Ok(true)
    }

    /// A sign-up whose code was redeemed but that stopped before activating the account (a
    /// crash in between) is completed when its owner logs in.
    async fn finish_interrupted_sign_up(
        &self,
        username: &str,
        row: &sqlx::any::AnyRow,
    ) -> Result<bool, SiteError> {
        let invite_id: String = row.try_get("invite_id").map_err(unavailable)?;
        let redeemed_by_them = self
            .inner
            .gate
            .redemptions()
            .status(&invite_id)
            .await
            .is_ok_and(|status| status.uses.iter().any(|u| u.user_id == username));
        if redeemed_by_them {
            self.activate(username).await?;
        }
        Ok(redeemed_by_them)
    }

    async fn activate(&self, username: &str) -> Result<(), SiteError> {
        sqlx::query("UPDATE site_accounts SET active = 1 WHERE username = $1")
            .bind(username)
            .execute(&self.inner.db)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// Runs a password hash or check on the blocking pool, at most one per core at a time.
    async fn on_hashing_pool<R: Send + 'static>(
        &self,
        work: impl FnOnce() -> R + Send + 'static,
    ) -> Result<R, SiteError> {
        let _permit = self
            .inner
            .hashing
            .acquire()
            .await
            .map_err(|_| SiteError::Unavailable)?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|_| SiteError::Unavailable)
    }

    async fn hashed(&self, password: String) -> Result<String, SiteError> {
        self.on_hashing_pool(move || hash_password(password))
            .await?
            .map_err(|e| {
                tracing::error!(error = %e, "password hashing failed");
                SiteError::Unavailable
            })
    }

    async fn verified(&self, password: String, stored: String) -> Result<bool, SiteError> {
        self.on_hashing_pool(move || {
            PasswordHash::new(&stored).is_ok_and(|hash| {
                argon2::Argon2::default()
                    .verify_password(password.as_bytes(), &hash)
                    .is_ok()
            })
        })
        .await
    }
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
/// logging, and builds HashPass with its redemptions in the site's database, then the site.
pub async fn launch_from_env() -> Result<Launch, Box<dyn std::error::Error>> {
    let _ = dotenvy::dotenv();
    let site_config = SiteConfig::from_env()?;
    let (settings, config) = crate::ServerSettings::from_env()?;
    let log_guard = crate::init_logging(&config.admin.log_dir, &settings.log_level)?;
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
