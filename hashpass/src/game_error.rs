//! Why the game refuses a request: [`GameError`], one variant per refusal, whose message is the
//! `detail` a client reads, and [`GameErrorKind`], the class `api` turns into an HTTP status.

use crate::error::StoreError;

/// Why the game refused a request. Each variant's message is the `detail` a client reads;
/// [`GameError::kind`] classifies it, and `api` alone turns that into an HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GameError {
    /// The client's IP is banned.
    #[error("Access denied")]
    Banned,
    /// The ban list cannot be read.
    #[error("Service temporarily unavailable, retry")]
    BanListUnavailable,
    /// No `Authorization` header.
    #[error("Missing Authorization header")]
    MissingAuthorization,
    /// An `Authorization` header that is not `Bearer <token>`.
    #[error("Invalid Authorization header format (expected 'Bearer <token>')")]
    MalformedAuthorization,
    /// Unknown, revoked or expired session token.
    #[error("Invalid or expired session token")]
    InvalidSession,
    /// The session belongs to another IP.
    #[error("Session token is bound to another IP")]
    BoundToAnotherIp,
    /// The session is bound to another device fingerprint.
    #[error("Device fingerprint mismatch")]
    FingerprintMismatch,
    /// The solution's trace names another IP than the request's.
    #[error("Identity mismatch: TraceData IP doesn't match request IP")]
    TraceIpMismatch,
    /// The per-session or per-address submission limit.
    #[error("Too many submissions")]
    TooManySubmissions {
        /// Seconds until the limit admits another.
        retry_after: u64,
    },
    /// This address already has as many verifications waiting as it may.
    #[error("Too many verifications waiting from your address, retry")]
    AddressQueueFull {
        /// Seconds until a retry may find room.
        retry_after: u64,
    },
    /// The verification queue is full.
    #[error("Server busy, retry")]
    Busy {
        /// Seconds until a retry may find room.
        retry_after: u64,
    },
    /// The verifier could not hash the solution.
    #[error("Hash verification failed: {0}")]
    VerificationFailed(String),
    /// The recomputed hash differs from the submitted one.
    #[error("Hash mismatch")]
    HashMismatch,
    /// The puzzle was solved (or reset) before this solution.
    #[error("Puzzle already solved by someone else")]
    AlreadySolved,
    /// The hash has fewer leading zero bits than required.
    #[error(
        "Hash does not meet difficulty requirement ({required} leading zero bits, found {found})"
    )]
    NotEnoughZeros {
        /// Required leading zero bits.
        required: u32,
        /// Found leading zero bits.
        found: u32,
    },
    /// A timeout submission claiming no leading zero bit.
    #[error("Leading zeros must be >= 1")]
    LeadingZerosTooLow,
    /// No timeout reward window is open.
    #[error("No active timeout collection window")]
    NoRewardWindow,
    /// A timeout submission for another seed than the timed-out one.
    #[error("Seed does not match timed-out puzzle")]
    RewardSeedMismatch,
    /// A player socket from a scripted client.
    #[error("Access denied")]
    UserAgentRefused,
    /// A player socket without `?token=`.
    #[error("Missing token in query parameter")]
    MissingQueryToken,
    /// A second player socket from one IP.
    #[error("Duplicate connection from same IP")]
    DuplicateConnection,
    /// The captcha provider refused the token.
    #[error("{0}")]
    CaptchaRefused(String),
    /// A shared-state backend failed.
    #[error("Service temporarily unavailable, retry")]
    Store(StoreError),
    /// This instance is shutting down and takes no new sockets.
    #[error("Server shutting down, reconnect")]
    ShuttingDown,
    /// The solution won, but the win could not be put on record, so no code was given out
    /// (docs/protocol.md#an-answered-win-is-on-record).
    #[error("Your solution won, but the win could not be recorded, so no invite code was issued")]
    WinNotRecorded,
}

/// What kind of refusal a [`GameError`] is, whatever protocol answers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GameErrorKind {
    /// No valid credential.
    Unauthenticated,
    /// Refused for who the client is or where it comes from.
    Forbidden,
    /// Too many requests.
    RateLimited,
    /// The request itself is wrong.
    Invalid,
    /// The request lost to the state (solved, no window).
    Conflict,
    /// Try again later.
    Unavailable,
}

impl GameError {
    /// The kind of refusal.
    pub fn kind(&self) -> GameErrorKind {
        use GameError as E;
        match self {
            E::MissingAuthorization | E::MalformedAuthorization | E::InvalidSession => {
                GameErrorKind::Unauthenticated
            }
            E::Banned
            | E::BoundToAnotherIp
            | E::FingerprintMismatch
            | E::TraceIpMismatch
            | E::UserAgentRefused
            | E::MissingQueryToken
            | E::DuplicateConnection
            | E::CaptchaRefused(_) => GameErrorKind::Forbidden,
            E::TooManySubmissions { .. } | E::AddressQueueFull { .. } => GameErrorKind::RateLimited,
            E::VerificationFailed(_)
            | E::HashMismatch
            | E::NotEnoughZeros { .. }
            | E::LeadingZerosTooLow => GameErrorKind::Invalid,
            E::AlreadySolved | E::NoRewardWindow | E::RewardSeedMismatch => GameErrorKind::Conflict,
            E::BanListUnavailable
            | E::Busy { .. }
            | E::Store(_)
            | E::WinNotRecorded
            | E::ShuttingDown => GameErrorKind::Unavailable,
        }
    }

    /// Seconds after which the same request may succeed, for the refusals that pass.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Self::TooManySubmissions { retry_after }
            | Self::AddressQueueFull { retry_after }
            | Self::Busy { retry_after } => Some(*retry_after),
            Self::BanListUnavailable | Self::Store(_) | Self::ShuttingDown => Some(1),
            _ => None,
        }
    }
}

impl From<StoreError> for GameError {
    fn from(error: StoreError) -> Self {
        tracing::error!(error = %error, "state store error");
        GameError::Store(error)
    }
}
