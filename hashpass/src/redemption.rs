//! Redemption of invite codes (the host site's side): a code that verifies (see
//! [`crate::invite::InviteCodes::verify`]) signs up at most `max_uses` accounts (one unless an
//! admin allows more), counted atomically, each use recording who and when; an admin may
//! withdraw a code that still has uses left — in the manner of Mastodon's and Discourse's invites,
//! whose expiry our codes carry themselves.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::util::lock;

/// How many accounts a code signs up unless an admin changes it.
pub const DEFAULT_MAX_USES: u32 = 1;

/// One use of a code.
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
pub struct CodeStatus {
    /// The code's id.
    pub code_id: String,
    /// How many accounts it may sign up.
    pub max_uses: u32,
    /// Its uses, oldest first (never more than `max_uses`).
    pub uses: Vec<Redemption>,
    /// When an admin withdrew it, if they did.
    pub revoked_at: Option<f64>,
    /// When it last changed (Unix seconds; 0 for a code never seen).
    pub updated_at: f64,
}

impl CodeStatus {
    /// A code never used, withdrawn or changed.
    pub fn new(code_id: &str) -> Self {
        Self {
            code_id: code_id.to_string(),
            max_uses: DEFAULT_MAX_USES,
            uses: Vec::new(),
            revoked_at: None,
            updated_at: 0.0,
        }
    }

    /// Uses left (0 once revoked).
    pub fn remaining(&self) -> u32 {
        if self.revoked_at.is_some() {
            return 0;
        }
        self.max_uses.saturating_sub(self.uses.len() as u32)
    }

    /// Where it stands, derived from its uses, limit and withdrawal.
    pub fn state(&self) -> CodeState {
        if self.revoked_at.is_some() {
            CodeState::Revoked
        } else if self.uses.len() as u32 >= self.max_uses {
            CodeState::Used
        } else if self.uses.is_empty() {
            CodeState::Unused
        } else {
            CodeState::PartlyUsed
        }
    }
}

/// Where a code stands (`unused`, `partly_used`, `used`, `revoked` on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CodeState {
    /// No use yet.
    Unused,
    /// Some uses, some left.
    PartlyUsed,
    /// No use left.
    Used,
    /// Withdrawn by an admin.
    Revoked,
}

impl CodeState {
    /// Every state, in the order above.
    pub const ALL: [CodeState; 4] = [
        CodeState::Unused,
        CodeState::PartlyUsed,
        CodeState::Used,
        CodeState::Revoked,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            CodeState::Unused => "unused",
            CodeState::PartlyUsed => "partly_used",
            CodeState::Used => "used",
            CodeState::Revoked => "revoked",
        }
    }
}

impl std::str::FromStr for CodeState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|s| s.as_str()).collect();
                format!("state must be one of {}", names.join(", "))
            })
    }
}

/// What an attempt to redeem did.
#[derive(Debug, Clone, PartialEq)]
pub enum RedeemOutcome {
    /// This call used the code.
    Redeemed(Redemption),
    /// Every use was taken before.
    UsedUp,
    /// The code was withdrawn.
    Revoked,
}

/// Redemptions, counted atomically.
#[async_trait]
pub trait RedemptionStore: Send + Sync + 'static {
    /// Records a use of `code_id` by `user_id` at `now` unless it is used up or withdrawn —
    /// atomically: of any number of concurrent calls, exactly `remaining` get `Redeemed`.
    async fn redeem(
        &self,
        code_id: &str,
        user_id: &str,
        now: f64,
    ) -> Result<RedeemOutcome, StoreError>;
    /// Where `code_id` stands ([`CodeStatus::new`] for a code never seen).
    async fn status(&self, code_id: &str) -> Result<CodeStatus, StoreError>;
    /// Gives back the latest use of `code_id` by `user_id` — a sign-up that redeemed the code
    /// (its claim on it) and then failed to create the account — so that the place is free
    /// again; false if `user_id` had no use of it.
    async fn release(&self, code_id: &str, user_id: &str, now: f64) -> Result<bool, StoreError>;
    /// Withdraws a code that has uses left; false if it was used up or already withdrawn.
    async fn revoke(&self, code_id: &str, now: f64) -> Result<bool, StoreError>;
    /// Lets `code_id` sign up `max_uses` accounts in all; `None` (nothing changed) when
    /// `max_uses` is 0 or below the uses already made.
    async fn set_max_uses(
        &self,
        code_id: &str,
        max_uses: u32,
        now: f64,
    ) -> Result<Option<CodeStatus>, StoreError>;
    /// Every code used, withdrawn or changed, most recently changed first.
    async fn list(&self) -> Result<Vec<CodeStatus>, StoreError>;
}

/// Redemptions in this process's memory.
#[derive(Debug, Default)]
pub struct MemoryRedemptionStore {
    codes: Mutex<HashMap<String, CodeStatus>>,
}

impl MemoryRedemptionStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<R>(&self, code_id: &str, f: impl FnOnce(&mut CodeStatus) -> R) -> R {
        let mut codes = lock(&self.codes);
        let fresh = CodeStatus::new(code_id);
        let mut status = codes.get(code_id).cloned().unwrap_or_else(|| fresh.clone());
        let result = f(&mut status);
        if status != fresh {
            codes.insert(code_id.to_string(), status);
        }
        result
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
        Ok(self.with(code_id, |status| {
            if status.revoked_at.is_some() {
                return RedeemOutcome::Revoked;
            }
            if status.remaining() == 0 {
                return RedeemOutcome::UsedUp;
            }
            let redemption = Redemption {
                code_id: code_id.into(),
                user_id: user_id.into(),
                used_at: now,
            };
            status.uses.push(redemption.clone());
            status.updated_at = now;
            RedeemOutcome::Redeemed(redemption)
        }))
    }

    async fn status(&self, code_id: &str) -> Result<CodeStatus, StoreError> {
        Ok(self.with(code_id, |status| status.clone()))
    }

    async fn release(&self, code_id: &str, user_id: &str, now: f64) -> Result<bool, StoreError> {
        Ok(self.with(code_id, |status| {
            let Some(at) = status.uses.iter().rposition(|u| u.user_id == user_id) else {
                return false;
            };
            status.uses.remove(at);
            status.updated_at = now;
            true
        }))
    }

    async fn revoke(&self, code_id: &str, now: f64) -> Result<bool, StoreError> {
        Ok(self.with(code_id, |status| {
            if status.remaining() == 0 {
                return false;
            }
            status.revoked_at = Some(now);
            status.updated_at = now;
            true
        }))
    }

    async fn set_max_uses(
        &self,
        code_id: &str,
        max_uses: u32,
        now: f64,
    ) -> Result<Option<CodeStatus>, StoreError> {
        Ok(self.with(code_id, |status| {
            if max_uses == 0 || (max_uses as usize) < status.uses.len() {
                return None;
            }
            status.max_uses = max_uses;
            status.updated_at = now;
            Some(status.clone())
        }))
    }

    async fn list(&self) -> Result<Vec<CodeStatus>, StoreError> {
        let codes = lock(&self.codes);
        let mut all: Vec<CodeStatus> = codes.values().cloned().collect();
        all.sort_by(|a, b| b.updated_at.total_cmp(&a.updated_at));
        Ok(all)
    }
}
