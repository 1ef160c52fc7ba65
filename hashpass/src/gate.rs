//! Invite-only sign-up for a host site: a code must verify (authentic, unexpired, current key)
//! and be unredeemed; redeeming marks it used by the new account, once. Each refusal is a
//! distinct 4xx with a message that tells the user what to do.
//!
//! ```
//! use std::sync::Arc;
//! use hashpass::{InviteCodes, InviteGate, InviteKey, InviteRejection, MemoryRedemptionStore};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let codes = Arc::new(InviteCodes::new(InviteKey::random()));
//! let gate = InviteGate::new(codes.clone(), Arc::new(MemoryRedemptionStore::new()));
//! let code = codes.issue().code;
//!
//! // Sign-up: check first (cheap, offline), create the account, then redeem once.
//! assert!(gate.check(&code).await.is_ok());
//! assert!(gate.redeem(&code, "alice").await.is_ok());
//!
//! // The same code again, a forgery and garbage each get their own refusal.
//! let used = gate.redeem(&code, "bob").await.unwrap_err();
//! assert_eq!((used.status().as_u16(), used.code()), (409, "already_used"));
//! let other_site = InviteCodes::new(InviteKey::random()).issue().code;
//! let forged = gate.check(&other_site).await.unwrap_err();
//! assert_eq!((forged.status().as_u16(), forged.code()), (403, "bad_signature"));
//! assert!(matches!(gate.check("not a code").await, Err(InviteRejection::Invalid(_))));
//!
//! // An admin can withdraw a code that still has uses left.
//! let spare = codes.issue().code;
//! assert!(gate.revoke(&spare).await.unwrap());
//! assert_eq!(gate.check(&spare).await.unwrap_err().code(), "revoked");
//! # }
//! ```

use std::sync::Arc;

use http::StatusCode;
use serde_json::json;

use crate::clock::{SharedClock, SystemClock};
use crate::error::{ApiError, StoreError};
use crate::invite::{InviteCodes, InviteError, VerifiedInvite};
use crate::redemption::{CodeState, CodeStatus, RedeemOutcome, Redemption, RedemptionStore};

/// Why an invite code was refused at sign-up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InviteRejection {
    /// Not a code, forged, expired or from a rotated-away key (see [`InviteError`]).
    #[error(transparent)]
    Invalid(#[from] InviteError),
    /// Withdrawn by an admin.
    #[error("This invite code was withdrawn: ask for a new one")]
    Revoked,
    /// Every use already taken (by default a code signs up one account).
    #[error("This invite code has already been used up: ask for a new one")]
    AlreadyUsed,
    /// The redemption store is unreachable.
    #[error("Invite codes cannot be checked right now: try again in a moment")]
    Unavailable,
}

impl InviteRejection {
    /// A short machine-readable code (`malformed`, `bad_signature`, `key_rotated`, `expired`,
    /// `revoked`, `already_used`, `unavailable`).
    pub fn code(&self) -> &'static str {
        match self {
            InviteRejection::Invalid(e) => e.code(),
            InviteRejection::Revoked => "revoked",
            InviteRejection::AlreadyUsed => "already_used",
            InviteRejection::Unavailable => "unavailable",
        }
    }

    /// The HTTP status: 400 malformed, 403 bad signature, 410 expired, rotated away or revoked,
    /// 409 used up, 503 store unreachable.
    pub fn status(&self) -> StatusCode {
        match self {
            InviteRejection::Invalid(InviteError::Malformed) => StatusCode::BAD_REQUEST,
            InviteRejection::Invalid(InviteError::BadSignature) => StatusCode::FORBIDDEN,
            InviteRejection::Invalid(InviteError::Expired | InviteError::KeyRotated)
            | InviteRejection::Revoked => StatusCode::GONE,
            InviteRejection::AlreadyUsed => StatusCode::CONFLICT,
            InviteRejection::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl From<StoreError> for InviteRejection {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "redemption store unavailable");
        InviteRejection::Unavailable
    }
}

impl From<InviteRejection> for ApiError {
    fn from(r: InviteRejection) -> Self {
        ApiError::new(
            r.status(),
            json!({ "detail": r.to_string(), "code": r.code() }),
        )
    }
}

/// Checks and redeems invite codes for a host site's sign-up.
#[derive(Clone)]
pub struct InviteGate {
    codes: Arc<InviteCodes>,
    redemptions: Arc<dyn RedemptionStore>,
    clock: SharedClock,
}

impl std::fmt::Debug for InviteGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InviteGate").finish_non_exhaustive()
    }
}

impl InviteGate {
    /// A gate over `codes` (holding the HashPass key) and `redemptions`.
    pub fn new(codes: Arc<InviteCodes>, redemptions: Arc<dyn RedemptionStore>) -> Self {
        Self {
            codes,
            redemptions,
            clock: Arc::new(SystemClock),
        }
    }

    /// Uses `clock` for redemption times.
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// The redemption store behind the gate.
    pub fn redemptions(&self) -> &Arc<dyn RedemptionStore> {
        &self.redemptions
    }

    /// Whether `code` may sign up an account now (valid and unredeemed); does not redeem it.
    pub async fn check(&self, code: &str) -> Result<VerifiedInvite, InviteRejection> {
        let invite = self.codes.verify(code)?;
        match self.redemptions.status(&invite.id).await?.state() {
            CodeState::Revoked => Err(InviteRejection::Revoked),
            CodeState::Used => Err(InviteRejection::AlreadyUsed),
            CodeState::Unused | CodeState::PartlyUsed => Ok(invite),
        }
    }

    /// Redeems `code` for `user_id`: of any number of concurrent sign-ups with one code, exactly
    /// as many succeed as it has uses left (one, by default).
    pub async fn redeem(&self, code: &str, user_id: &str) -> Result<Redemption, InviteRejection> {
        let invite = self.codes.verify(code)?;
        match self
            .redemptions
            .redeem(&invite.id, user_id, self.clock.now())
            .await?
        {
            RedeemOutcome::Redeemed(redemption) => Ok(redemption),
            RedeemOutcome::UsedUp => Err(InviteRejection::AlreadyUsed),
            RedeemOutcome::Revoked => Err(InviteRejection::Revoked),
        }
    }

    /// Withdraws a code that has uses left (admin); false if it was used up or already
    /// withdrawn.
    pub async fn revoke(&self, code: &str) -> Result<bool, InviteRejection> {
        let invite = self.codes.verify(code)?;
        Ok(self
            .redemptions
            .revoke(&invite.id, self.clock.now())
            .await?)
    }

    /// Where `code` stands: its uses (who, when), how many it allows, whether withdrawn.
    pub async fn status(&self, code: &str) -> Result<CodeStatus, InviteRejection> {
        let invite = self.codes.verify(code)?;
        Ok(self.redemptions.status(&invite.id).await?)
    }

    /// Lets `code` sign up `max_uses` accounts in all (admin); `None` when `max_uses` is 0 or
    /// below the uses already made.
    pub async fn set_max_uses(
        &self,
        code: &str,
        max_uses: u32,
    ) -> Result<Option<CodeStatus>, InviteRejection> {
        let invite = self.codes.verify(code)?;
        Ok(self
            .redemptions
            .set_max_uses(&invite.id, max_uses, self.clock.now())
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FakeClock;
    use crate::invite::InviteKey;
    use crate::redemption::MemoryRedemptionStore;

    fn gate(clock: &FakeClock) -> (InviteGate, Arc<InviteCodes>) {
        let codes = Arc::new(
            InviteCodes::new(InviteKey::from_hex("000102030405060708090a0b0c0d0e0f").unwrap())
                .with_ttl(3600)
                .with_clock(Arc::new(clock.clone())),
        );
        let gate = InviteGate::new(Arc::clone(&codes), Arc::new(MemoryRedemptionStore::new()))
            .with_clock(Arc::new(clock.clone()));
        (gate, codes)
    }

    #[tokio::test]
    async fn each_refusal_is_distinct() {
        let clock = FakeClock::default();
        let (gate, codes) = gate(&clock);
        let code = codes.issue().code;
        assert!(gate.check(&code).await.is_ok());
        let used = gate.redeem(&code, "alice").await.unwrap();
        assert_eq!(used.user_id, "alice");
        let statuses = |r: InviteRejection| (r.status().as_u16(), r.code());
        assert_eq!(
            statuses(gate.redeem(&code, "bob").await.unwrap_err()),
            (409, "already_used")
        );
        assert_eq!(
            statuses(gate.check(&code).await.unwrap_err()),
            (409, "already_used")
        );
        assert_eq!(
            statuses(gate.redeem("HASHPASS-nope", "bob").await.unwrap_err()),
            (400, "malformed")
        );
        // One character inside the id changed (not the version byte in front, nor the last
        // character, whose spare bit must stay zero).
        let mut tampered = codes.issue().code;
        let replacement = if &tampered[20..21] == "0" { "1" } else { "0" };
        tampered.replace_range(20..21, replacement);
        assert_eq!(
            statuses(gate.redeem(&tampered, "bob").await.unwrap_err()),
            (403, "bad_signature")
        );
        let api: ApiError = gate.check(&code).await.unwrap_err().into();
        assert_eq!(api.body["code"], "already_used");
        assert!(api.message().unwrap().contains("already been used"));
        let withdrawn = codes.issue().code;
        assert!(gate.revoke(&withdrawn).await.unwrap());
        assert_eq!(
            statuses(gate.redeem(&withdrawn, "bob").await.unwrap_err()),
            (410, "revoked")
        );
        let old = codes.issue().code;
        clock.advance_secs(3601.0);
        assert_eq!(
            statuses(gate.redeem(&old, "bob").await.unwrap_err()),
            (410, "expired")
        );
        let before_rotation = codes.issue().code;
        codes.rotate(&InviteKey::random());
        assert_eq!(
            statuses(gate.redeem(&before_rotation, "bob").await.unwrap_err()),
            (410, "key_rotated")
        );
        // A well-formed code this site never issued (another deployment's key).
        let elsewhere = InviteCodes::new(InviteKey::random()).issue().code;
        assert_eq!(
            statuses(gate.redeem(&elsewhere, "bob").await.unwrap_err()),
            (403, "bad_signature")
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_hundred_concurrent_sign_ups_one_account() {
        let clock = FakeClock::default();
        let (gate, codes) = gate(&clock);
        let code = codes.issue().code;
        let mut tasks = Vec::new();
        for i in 0..100 {
            let (gate, code) = (gate.clone(), code.clone());
            tasks.push(tokio::spawn(async move {
                gate.redeem(&code, &format!("user-{i}")).await
            }));
        }
        let mut ok = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(_) => ok += 1,
                Err(e) => assert_eq!(e, InviteRejection::AlreadyUsed),
            }
        }
        assert_eq!(ok, 1);
    }
}
