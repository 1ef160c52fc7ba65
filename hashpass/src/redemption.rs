//! Single-use redemption of invite codes (the host site's side): a code that verifies (see
//! [`crate::invite::InviteCodes::verify`]) is redeemed at most once, atomically, recording who
//! used it and when.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::StoreError;

/// A code's use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Redemption {
    /// The code's id (from [`crate::invite::VerifiedInvite::id`]).
    pub code_id: String,
    /// The account that used it.
    pub user_id: String,
    /// When (Unix seconds).
    pub used_at: f64,
}

/// Where a code stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum CodeState {
    /// Never used.
    Unused,
    /// Used once, by this account.
    Used(Redemption),
    /// Withdrawn by an admin.
    Revoked,
}

/// What an attempt to redeem did.
#[derive(Debug, Clone, PartialEq)]
pub enum RedeemOutcome {
    /// This call redeemed the code.
    Redeemed(Redemption),
    /// Someone redeemed it before (the earlier use).
    AlreadyUsed(Redemption),
    /// The code was revoked.
    Revoked,
}

/// Single-use redemptions.
#[async_trait]
pub trait RedemptionStore: Send + Sync + 'static {
    /// Marks `code_id` used by `user_id` at `now` unless it is used or revoked — atomically: of
    /// any number of concurrent calls for one code, exactly one gets `Redeemed`.
    async fn redeem(
        &self,
        code_id: &str,
        user_id: &str,
        now: f64,
    ) -> Result<RedeemOutcome, StoreError>;
    /// Where `code_id` stands.
    async fn state(&self, code_id: &str) -> Result<CodeState, StoreError>;
    /// Revokes an unused code; false if it was already used or revoked.
    async fn revoke(&self, code_id: &str) -> Result<bool, StoreError>;
    /// Every used or revoked code.
    async fn list(&self) -> Result<Vec<(String, CodeState)>, StoreError>;
}

/// Redemptions in this process's memory.
#[derive(Debug, Default)]
pub struct MemoryRedemptionStore {
    codes: Mutex<HashMap<String, CodeState>>,
}

impl MemoryRedemptionStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<R>(&self, f: impl FnOnce(&mut HashMap<String, CodeState>) -> R) -> R {
        f(&mut self.codes.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

#[async_trait]
impl RedemptionStore for MemoryRedemptionStore {
    async fn redeem(
        &self,
        code_id: &str,
        user_id: &str,
        now: f64,
    ) -> Result<RedeemOutcome, StoreError> {
        Ok(self.with(|codes| match codes.get(code_id) {
            Some(CodeState::Used(earlier)) => RedeemOutcome::AlreadyUsed(earlier.clone()),
            Some(CodeState::Revoked) => RedeemOutcome::Revoked,
            Some(CodeState::Unused) | None => {
                let redemption = Redemption {
                    code_id: code_id.into(),
                    user_id: user_id.into(),
                    used_at: now,
                };
                codes.insert(code_id.into(), CodeState::Used(redemption.clone()));
                RedeemOutcome::Redeemed(redemption)
            }
        }))
    }

    async fn state(&self, code_id: &str) -> Result<CodeState, StoreError> {
        Ok(self.with(|codes| codes.get(code_id).cloned().unwrap_or(CodeState::Unused)))
    }

    async fn revoke(&self, code_id: &str) -> Result<bool, StoreError> {
        Ok(self.with(|codes| match codes.get(code_id) {
            Some(CodeState::Used(_) | CodeState::Revoked) => false,
            _ => {
                codes.insert(code_id.into(), CodeState::Revoked);
                true
            }
        }))
    }

    async fn list(&self) -> Result<Vec<(String, CodeState)>, StoreError> {
        Ok(self.with(|codes| codes.iter().map(|(k, v)| (k.clone(), v.clone())).collect()))
    }
}
