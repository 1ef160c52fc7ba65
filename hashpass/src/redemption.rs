//! Redemption of invite codes (the host site's side): a code that verifies (see
//! [`crate::invite::InviteCodes::verify`]) signs up at most `max_uses` accounts (one unless an
//! admin allows more), counted atomically, each use recording who and when; an admin may
//! withdraw a code that still has uses left — in the manner of Mastodon's and Discourse's invites,
//! whose expiry our codes carry themselves.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::util::{blocking_io, lock, write_atomic};

/// The file of [`FileRedemptionStore`] in the data directory.
pub const REDEMPTIONS_FILE: &str = "redemptions.json";

/// The default redemption store: [`FileRedemptionStore`] in `disk` when the instance keeps
/// files there, else [`MemoryRedemptionStore`].
pub fn from_disk(disk: Option<&Path>) -> Result<Arc<dyn RedemptionStore>, StoreError> {
    Ok(match disk {
        Some(dir) => Arc::new(
            FileRedemptionStore::open(dir)
                .map_err(|e| StoreError::io(&dir.join(REDEMPTIONS_FILE), &e))?,
        ),
        None => Arc::new(MemoryRedemptionStore::new()),
    })
}

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

    /// Records a use by `user_id` at `now` unless it is used up or withdrawn (the rule every
    /// store applies, atomically).
    fn redeem(&mut self, user_id: &str, now: f64) -> RedeemOutcome {
        if self.revoked_at.is_some() {
            return RedeemOutcome::Revoked;
        }
        if self.remaining() == 0 {
            return RedeemOutcome::UsedUp;
        }
        let redemption = Redemption {
            code_id: self.code_id.clone(),
            user_id: user_id.into(),
            used_at: now,
        };
        self.uses.push(redemption.clone());
        self.updated_at = now;
        RedeemOutcome::Redeemed(redemption)
    }

    /// Gives back `user_id`'s latest use at `now`; false if it had none.
    fn release(&mut self, user_id: &str, now: f64) -> bool {
        let Some(at) = self.uses.iter().rposition(|u| u.user_id == user_id) else {
            return false;
        };
        self.uses.remove(at);
        self.updated_at = now;
        true
    }

    /// Withdraws it at `now` if it has uses left.
    fn revoke(&mut self, now: f64) -> bool {
        if self.remaining() == 0 {
            return false;
        }
        self.revoked_at = Some(now);
        self.updated_at = now;
        true
    }

    /// Sets its limit, unless `max_uses` is 0 or below the uses made.
    fn set_max_uses(&mut self, max_uses: u32, now: f64) -> Option<CodeStatus> {
        if max_uses == 0 || (max_uses as usize) < self.uses.len() {
            return None;
        }
        self.max_uses = max_uses;
        self.updated_at = now;
        Some(self.clone())
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
    /// Whether what it records outlives a restart of this process (an admin's withdrawals and
    /// limit changes are refused on a store that does not, see
    /// [`crate::HashPassBuilder::volatile_admin_state`]). True unless a store says otherwise.
    fn durable(&self) -> bool {
        true
    }
}

/// Every code's status by id, most recently changed first.
fn listed(codes: &HashMap<String, CodeStatus>) -> Vec<CodeStatus> {
    let mut all: Vec<CodeStatus> = codes.values().cloned().collect();
    all.sort_by(|a, b| b.updated_at.total_cmp(&a.updated_at));
    all
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
        Ok(self.with(code_id, |status| status.redeem(user_id, now)))
    }

    async fn status(&self, code_id: &str) -> Result<CodeStatus, StoreError> {
        Ok(self.with(code_id, |status| status.clone()))
    }

    async fn release(&self, code_id: &str, user_id: &str, now: f64) -> Result<bool, StoreError> {
        Ok(self.with(code_id, |status| status.release(user_id, now)))
    }

    async fn revoke(&self, code_id: &str, now: f64) -> Result<bool, StoreError> {
        Ok(self.with(code_id, |status| status.revoke(now)))
    }

    async fn set_max_uses(
        &self,
        code_id: &str,
        max_uses: u32,
        now: f64,
    ) -> Result<Option<CodeStatus>, StoreError> {
        Ok(self.with(code_id, |status| status.set_max_uses(max_uses, now)))
    }

    async fn list(&self) -> Result<Vec<CodeStatus>, StoreError> {
        Ok(listed(&lock(&self.codes)))
    }

    fn durable(&self) -> bool {
        false
    }
}

/// Redemptions in `redemptions.json` in the data directory (a JSON array of code statuses,
/// 0600, rewritten atomically and fsynced on every change), read once at start. A change is
/// answered only once it is on disk; a failed write changes nothing. One process owns the
/// file: instances that share redemptions use Redis or SQL.
#[derive(Debug)]
pub struct FileRedemptionStore {
    path: PathBuf,
    /// What the file holds; changes are made to a copy, written, then put here, all under
    /// this lock (so concurrent redemptions of one code are counted one by one).
    codes: tokio::sync::Mutex<HashMap<String, CodeStatus>>,
}

impl FileRedemptionStore {
    /// Opens `redemptions.json` in `dir` (the directory is created, 0700, if missing). A file
    /// that cannot be read as redemptions is an error: starting without it would make withdrawn
    /// and used codes usable again.
    pub fn open(dir: impl AsRef<Path>) -> std::io::Result<Self> {
        crate::private_files::create_dir(dir.as_ref())?;
        let path = dir.as_ref().join(REDEMPTIONS_FILE);
        let codes = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice::<Vec<CodeStatus>>(&bytes)
                .map_err(|e| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("not a list of redemptions ({e}): restore it from a backup"),
                    )
                })?
                .into_iter()
                .map(|status| (status.code_id.clone(), status))
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => HashMap::new(),
            Err(e) => return Err(e),
        };
        Ok(Self {
            path,
            codes: tokio::sync::Mutex::new(codes),
        })
    }

    /// Applies `change` to `code_id`'s status; if that changed it, writes the file with the
    /// change and only then keeps it.
    async fn change<R>(
        &self,
        code_id: &str,
        change: impl FnOnce(&mut CodeStatus) -> R,
    ) -> Result<R, StoreError> {
        let mut codes = self.codes.lock().await;
        let before = codes
            .get(code_id)
            .cloned()
            .unwrap_or_else(|| CodeStatus::new(code_id));
        let mut status = before.clone();
        let result = change(&mut status);
        if status != before {
            let mut next = codes.clone();
            next.insert(code_id.to_string(), status);
            let json = serde_json::to_vec(&listed(&next)).expect("code statuses serialise");
            let path = self.path.clone();
            blocking_io(&self.path, move || write_atomic(&path, &json)).await?;
            *codes = next;
        }
        Ok(result)
    }
}

#[async_trait]
impl RedemptionStore for FileRedemptionStore {
    async fn redeem(
        &self,
        code_id: &str,
        user_id: &str,
        now: f64,
    ) -> Result<RedeemOutcome, StoreError> {
        self.change(code_id, |status| status.redeem(user_id, now))
            .await
    }

    async fn status(&self, code_id: &str) -> Result<CodeStatus, StoreError> {
        let codes = self.codes.lock().await;
        Ok(codes
            .get(code_id)
            .cloned()
            .unwrap_or_else(|| CodeStatus::new(code_id)))
    }

    async fn release(&self, code_id: &str, user_id: &str, now: f64) -> Result<bool, StoreError> {
        self.change(code_id, |status| status.release(user_id, now))
            .await
    }

    async fn revoke(&self, code_id: &str, now: f64) -> Result<bool, StoreError> {
        self.change(code_id, |status| status.revoke(now)).await
    }

    async fn set_max_uses(
        &self,
        code_id: &str,
        max_uses: u32,
        now: f64,
    ) -> Result<Option<CodeStatus>, StoreError> {
        self.change(code_id, |status| status.set_max_uses(max_uses, now))
            .await
    }

    async fn list(&self) -> Result<Vec<CodeStatus>, StoreError> {
        Ok(listed(&*self.codes.lock().await))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!(
            "hashpass-redemptions-{name}-{}",
            hex::encode(crate::util::random_bytes::<6>())
        ))
    }

    #[tokio::test]
    async fn withdrawals_limits_and_uses_outlive_a_restart() {
        let dir = temp_dir("restart").join("data");
        let store = FileRedemptionStore::open(&dir).unwrap();
        assert!(store.durable());
        assert!(store.revoke("withdrawn", 10.0).await.unwrap());
        assert!(
            store
                .set_max_uses("shared", 3, 11.0)
                .await
                .unwrap()
                .is_some()
        );
        assert!(matches!(
            store.redeem("shared", "alice", 12.0).await.unwrap(),
            RedeemOutcome::Redeemed(_)
        ));
        assert!(
            store
                .set_max_uses("shared", 0, 13.0)
                .await
                .unwrap()
                .is_none(),
            "a refused change"
        );
        let before = store.list().await.unwrap();
        drop(store);

        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&dir.join(REDEMPTIONS_FILE)), 0o600);
            assert_eq!(mode(&dir), 0o700);
        }

        let reopened = FileRedemptionStore::open(&dir).unwrap();
        assert_eq!(reopened.list().await.unwrap(), before);
        assert_eq!(
            reopened.status("withdrawn").await.unwrap().state(),
            CodeState::Revoked
        );
        assert_eq!(
            reopened.redeem("withdrawn", "bob", 14.0).await.unwrap(),
            RedeemOutcome::Revoked
        );
        let shared = reopened.status("shared").await.unwrap();
        assert_eq!((shared.max_uses, shared.remaining()), (3, 2));
        assert_eq!(shared.uses[0].user_id, "alice");
        assert_eq!(
            reopened.status("never-seen").await.unwrap(),
            CodeStatus::new("never-seen")
        );
    }

    #[tokio::test]
    async fn concurrent_redemptions_are_counted_one_by_one() {
        let store = Arc::new(FileRedemptionStore::open(temp_dir("race")).unwrap());
        let outcomes = futures_util::future::join_all((0..20).map(|i| {
            let store = Arc::clone(&store);
            async move {
                store
                    .redeem("code", &format!("user{i}"), 1.0)
                    .await
                    .unwrap()
            }
        }))
        .await;
        let redeemed = outcomes
            .iter()
            .filter(|o| matches!(o, RedeemOutcome::Redeemed(_)))
            .count();
        assert_eq!(redeemed, 1, "{outcomes:?}");
    }

    #[test]
    fn a_damaged_file_stops_the_start() {
        let dir = temp_dir("damaged");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(REDEMPTIONS_FILE), b"{").unwrap();
        let error = FileRedemptionStore::open(&dir).unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
        assert!(!MemoryRedemptionStore::new().durable());
    }
}
