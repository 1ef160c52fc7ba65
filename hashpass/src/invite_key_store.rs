//! Where the invite key ring is kept (docs/protocol.md#key-and-rotation): the current key and
//! the keys rotated away, so that an admin's rotation outlives a restart and reaches every
//! instance of a deployment.
//!
//! Two homes: [`FileInviteKeys`], `invite-keys.json` in the data directory
//! ([`crate::HashPassBuilder::on_disk`]); and [`InPuzzleState`], the shared puzzle state — in
//! Redis durable and shared by every instance ([`crate::HashPassBuilder::redis`]), in memory
//! lost at a restart. [`restore`] reconciles the configured key with the ring on record when an
//! instance starts.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use async_trait::async_trait;

use crate::config::ConfigError;
use crate::error::StoreError;
use crate::invite::{InviteCodes, InviteKey, InviteKeyRing};
use crate::puzzle_store::{PuzzleState, PuzzleStore};
use crate::util::{blocking_io, read_lock, write_atomic, write_lock};

/// The ring's file in the data directory.
pub const INVITE_KEYS_FILE: &str = "invite-keys.json";

/// Where the invite key ring is kept.
#[async_trait]
pub trait InviteKeyStore: Send + Sync + 'static {
    /// The ring on record; `None` until a rotation was recorded.
    async fn load(&self) -> Result<Option<InviteKeyRing>, StoreError>;
    /// Records a rotation to `key`, atomically against concurrent rotations: applied to the
    /// ring on record, or to `base` (this instance's ring) when none is. Returns the ring now on
    /// record.
    async fn rotate(
        &self,
        base: &InviteKeyRing,
        key: &InviteKey,
    ) -> Result<InviteKeyRing, StoreError>;
    /// Whether the ring on record outlives a restart of this process.
    fn durable(&self) -> bool;
    /// The ring `state` carries, when this store keeps it in the puzzle state (an instance
    /// that has just read the state adopts it without another read).
    fn ring_in(&self, _state: &PuzzleState) -> Option<InviteKeyRing> {
        None
    }
}

/// The default store: [`FileInviteKeys`] in `disk` when the instance keeps files there, else
/// the puzzle state in memory (not durable: rotations are refused unless the host opts in to
/// volatile admin state).
pub fn from_config(
    disk: Option<&Path>,
    puzzles: &Arc<dyn PuzzleStore>,
) -> Result<Arc<dyn InviteKeyStore>, StoreError> {
    Ok(match disk {
        Some(dir) => Arc::new(
            FileInviteKeys::open(dir)
                .map_err(|e| StoreError::io(&dir.join(INVITE_KEYS_FILE), &e))?,
        ),
        None => Arc::new(InPuzzleState::in_memory(Arc::clone(puzzles))),
    })
}

/// The ring in the shared puzzle state ([`PuzzleState::invite_key`] and
/// [`PuzzleState::retired_invite_keys`]), changed by compare-and-swap like the rest of it.
pub struct InPuzzleState {
    puzzles: Arc<dyn PuzzleStore>,
    durable: bool,
}

impl std::fmt::Debug for InPuzzleState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InPuzzleState")
            .field("durable", &self.durable)
            .finish_non_exhaustive()
    }
}

impl InPuzzleState {
    /// In a puzzle store that outlives restarts and is shared by the deployment (Redis).
    pub fn durable(puzzles: Arc<dyn PuzzleStore>) -> Self {
        Self {
            puzzles,
            durable: true,
        }
    }

    /// In a puzzle store in this process's memory.
    pub fn in_memory(puzzles: Arc<dyn PuzzleStore>) -> Self {
        Self {
            puzzles,
            durable: false,
        }
    }
}

/// The ring a puzzle state carries (state written before retired keys were kept has none).
fn ring_of(state: &PuzzleState) -> Option<InviteKeyRing> {
    state.invite_key.as_ref().map(|current| {
        InviteKeyRing::with_retired(current.clone(), state.retired_invite_keys.iter().cloned())
    })
}

#[async_trait]
impl InviteKeyStore for InPuzzleState {
    async fn load(&self) -> Result<Option<InviteKeyRing>, StoreError> {
        Ok(self.puzzles.load().await?.as_ref().and_then(ring_of))
    }

    async fn rotate(
        &self,
        base: &InviteKeyRing,
        key: &InviteKey,
    ) -> Result<InviteKeyRing, StoreError> {
        loop {
            let state = self.puzzles.load().await?.ok_or_else(|| {
                StoreError::Unavailable("the puzzle state is not initialised".into())
            })?;
            let ring = ring_of(&state).unwrap_or_else(|| base.clone()).rotated(key);
            let next = PuzzleState {
                version: state.version + 1,
                invite_key: Some(ring.current().clone()),
                retired_invite_keys: ring.retired().to_vec(),
                ..state.clone()
            };
            if self.puzzles.compare_and_swap(state.version, next).await? {
                return Ok(ring);
            }
        }
    }

    fn durable(&self) -> bool {
        self.durable
    }

    fn ring_in(&self, state: &PuzzleState) -> Option<InviteKeyRing> {
        ring_of(state)
    }
}

/// The ring in `invite-keys.json` (0600, written atomically and fsynced), read once at start.
/// A rotation is in force only once it is on disk; a failed write changes nothing.
#[derive(Debug)]
pub struct FileInviteKeys {
    path: PathBuf,
    ring: RwLock<Option<InviteKeyRing>>,
    /// Serialises rotations, so each write starts from the ring the last one wrote.
    writer: tokio::sync::Mutex<()>,
}

impl FileInviteKeys {
    /// Opens `invite-keys.json` in `dir` (the directory is created, 0700, if missing). A file
    /// that is not a key ring is an error: starting without it would bring rotated-away keys
    /// back.
    pub fn open(dir: impl AsRef<Path>) -> std::io::Result<Self> {
        crate::private_files::create_dir(dir.as_ref())?;
        let path = dir.as_ref().join(INVITE_KEYS_FILE);
        let ring = match std::fs::read(&path) {
            Ok(bytes) => Some(serde_json::from_slice(&bytes).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("not an invite key ring ({e}): restore it from a backup"),
                )
            })?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        Ok(Self {
            path,
            ring: RwLock::new(ring),
            writer: tokio::sync::Mutex::default(),
        })
    }
}

#[async_trait]
impl InviteKeyStore for FileInviteKeys {
    async fn load(&self) -> Result<Option<InviteKeyRing>, StoreError> {
        Ok(read_lock(&self.ring).clone())
    }

    async fn rotate(
        &self,
        base: &InviteKeyRing,
        key: &InviteKey,
    ) -> Result<InviteKeyRing, StoreError> {
        let _writer = self.writer.lock().await;
        let on_record = read_lock(&self.ring).clone();
        let ring = on_record.unwrap_or_else(|| base.clone()).rotated(key);
        let json = serde_json::to_vec_pretty(&ring).expect("a key ring serialises");
        let path = self.path.clone();
        blocking_io(&self.path, move || write_atomic(&path, &json)).await?;
        *write_lock(&self.ring) = Some(ring.clone());
        Ok(ring)
    }

    fn durable(&self) -> bool {
        true
    }
}

/// The variable a refused key is reported under.
const KEY_VARIABLE: &str = "HASHPASS_HMAC_SECRET";

/// Reconciles `codes` with the ring on record when an instance starts. `configured` is the key
/// the operator chose (`HASHPASS_HMAC_SECRET`, or the key of invite codes the host passed in);
/// `None` when `codes` hold a key drawn at random.
///
/// - Nothing on record: `codes` keep their key (a random one is warned about).
/// - `configured` is a retired key of the ring: refused, naming `HASHPASS_HMAC_SECRET` (it was
///   rotated away, often because it leaked).
/// - Otherwise `codes` adopt the ring. A `configured` key other than the current one is not
///   used (a warning says so): the key on record came from an admin's rotation, and a
///   configured key may be the one it replaced — in a ring written before retired keys were
///   kept, it cannot be told apart from a new one — so the configured key only ever seeds the
///   first ring; to move to a new key, rotate to it through the admin API.
pub async fn restore(
    codes: &InviteCodes,
    configured: Option<&InviteKey>,
    store: &dyn InviteKeyStore,
) -> Result<(), crate::BuildError> {
    let Some(ring) = store.load().await? else {
        if configured.is_none() {
            tracing::warn!(
                "HASHPASS_HMAC_SECRET is not set: invite codes are signed with a random key, so codes won before a restart stop verifying after it (set it to 32+ random bytes in hex: openssl rand -hex 32)"
            );
        }
        return Ok(());
    };
    match configured {
        Some(key) if ring.is_retired(key) => {
            return Err(ConfigError::new(
                KEY_VARIABLE,
                "this invite key was rotated away (it is among the retired keys on record), so codes signed with it are refused: set the variable to the current key, or unset it to use the key on record",
            )
            .into());
        }
        Some(key) if key != ring.current() => {
            tracing::warn!(
                "HASHPASS_HMAC_SECRET differs from the invite key on record (an admin's rotation): the key on record is used; set the variable to it, or rotate to the new key through the admin API (POST api/admin/regenerate-hmac with hmac_secret)"
            );
        }
        _ => {}
    }
    codes.adopt(&ring);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::invite::InviteError;

    fn temp_dir(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!(
            "hashpass-invite-keys-{name}-{}",
            hex::encode(crate::util::random_bytes::<6>())
        ))
    }

    fn key(byte: u8) -> InviteKey {
        InviteKey::from_hex(&hex::encode([byte; 16])).unwrap()
    }

    #[tokio::test]
    async fn a_rotation_on_file_outlives_the_store_and_stays_private() {
        let dir = temp_dir("restart").join("data");
        let store = FileInviteKeys::open(&dir).unwrap();
        assert_eq!(store.load().await.unwrap(), None, "nothing on record yet");
        let configured = key(1);
        let codes = InviteCodes::new(configured.clone());
        let before = codes.issue().code;
        let ring = store.rotate(&codes.ring(), &key(2)).await.unwrap();
        assert_eq!((ring.current(), ring.retired()), (&key(2), &[key(1)][..]));
        let ring = store.rotate(&codes.ring(), &key(3)).await.unwrap();
        assert_eq!(
            ring.retired(),
            &[key(2), key(1)],
            "the ring on record, not the base, is rotated"
        );
        drop(store);

        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&dir.join(INVITE_KEYS_FILE)), 0o600);
            assert_eq!(mode(&dir), 0o700);
        }
        let leftovers: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|name| name != INVITE_KEYS_FILE)
            .collect();
        assert!(leftovers.is_empty(), "no temporary files: {leftovers:?}");

        // A restart: the ring is read back, the configured key (now retired) is refused by
        // name, and without it the codes adopt the ring.
        let reopened = FileInviteKeys::open(&dir).unwrap();
        assert_eq!(reopened.load().await.unwrap(), Some(ring.clone()));
        let restarted = InviteCodes::new(configured.clone());
        let refused = restore(&restarted, Some(&configured), &reopened)
            .await
            .unwrap_err();
        assert!(
            refused.to_string().contains("HASHPASS_HMAC_SECRET"),
            "{refused}"
        );
        let random = InviteCodes::new(InviteKey::random());
        restore(&random, None, &reopened).await.unwrap();
        assert_eq!(random.ring().current(), &key(3));
        assert_eq!(random.verify(&before), Err(InviteError::KeyRotated));
        let current = InviteCodes::new(key(3));
        restore(&current, Some(&key(3)), &reopened).await.unwrap();
        assert_eq!(current.ring().retired(), &[key(2), key(1)]);
    }

    /// A puzzle store holding a state written before retired keys were kept: `current` as the
    /// rotated key, nothing retired.
    async fn old_state_with(current: InviteKey) -> Arc<dyn PuzzleStore> {
        let puzzles: Arc<dyn PuzzleStore> = Arc::new(crate::puzzle_store::MemoryPuzzleStore::new());
        let old = serde_json::json!({
            "version": 3, "seed": "00", "started_at": 0.0,
            "difficulty": crate::difficulty::DifficultyState::new(1, 1, 1),
            "params": crate::puzzle::Argon2Params::new(1, 8, 1),
            "worker_count": 1, "target_time": 300, "target_timeout": 600,
            "max_nonce_speed": 0.0, "last_solve_time": null, "solve_history": [],
            "solve_time_chart": [], "invite_key": serde_json::to_value(&current).unwrap(),
        });
        let state: PuzzleState = serde_json::from_value(old).unwrap();
        puzzles.init(state).await.unwrap();
        puzzles
    }

    #[tokio::test]
    async fn a_configured_key_never_overrides_the_key_on_record() {
        let dir = temp_dir("new-key");
        let store = FileInviteKeys::open(&dir).unwrap();
        let ring = store
            .rotate(&InviteKeyRing::new(key(1)), &key(2))
            .await
            .unwrap();
        // Another key than the current one: the ring on record is used, and stays as it was.
        let codes = InviteCodes::new(key(9));
        restore(&codes, Some(&key(9)), &store).await.unwrap();
        assert_eq!(codes.ring().current(), &key(2));
        assert!(codes.ring().is_retired(&key(1)));
        drop(store);
        let reopened = FileInviteKeys::open(&dir).unwrap();
        assert_eq!(reopened.load().await.unwrap(), Some(ring.clone()));

        // A ring written before retired keys were kept (a rotated Redis state of an older
        // version): the configured key, the one rotated away, does not come back.
        let shared = InPuzzleState::durable(old_state_with(key(2)).await);
        let leaked = InviteCodes::new(key(1));
        let before = leaked.issue().code;
        restore(&leaked, Some(&key(1)), &shared).await.unwrap();
        assert_eq!(leaked.ring().current(), &key(2));
        assert!(
            leaked.verify(&before).is_err(),
            "the leaked key's codes are refused"
        );
    }

    #[test]
    fn a_damaged_file_stops_the_start() {
        let dir = temp_dir("damaged");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(INVITE_KEYS_FILE), b"{\"current\": \"zz\"}").unwrap();
        let error = FileInviteKeys::open(&dir).unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
    }

    #[tokio::test]
    async fn in_the_puzzle_state_the_ring_is_shared_and_old_states_read() {
        let puzzles = old_state_with(key(2)).await;
        let store = InPuzzleState::durable(Arc::clone(&puzzles));
        assert!(store.durable());
        assert_eq!(
            store.load().await.unwrap(),
            Some(InviteKeyRing::new(key(2)))
        );
        let ring = store
            .rotate(&InviteKeyRing::new(key(7)), &key(3))
            .await
            .unwrap();
        assert_eq!(ring, InviteKeyRing::with_retired(key(3), [key(2)]));
        let state = puzzles.load().await.unwrap().unwrap();
        assert_eq!(state.version, 4);
        assert_eq!(store.ring_in(&state), Some(ring));
        assert!(!InPuzzleState::in_memory(puzzles).durable());
    }
}
