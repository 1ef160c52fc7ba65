//! The webhook outbox (docs/protocol.md#webhook-outbox): every invite's notice is recorded here
//! before the winner hears back, then delivered at least once by [`deliver_due`], with back-off
//! that survives restarts, until the receiver answers 2xx or the delivery is given up and kept
//! as failed.
//!
//! Stores: [`MemoryOutbox`] (lost with the process, as the in-memory audit log is),
//! [`FileOutbox`] (one file per delivery in the data directory, written atomically) and the
//! Redis outbox (`redis::RedisOutbox`), which every instance of a deployment shares.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::config::WebhookConfig;
use crate::error::StoreError;
use crate::util::{blocking_io, lock, write_atomic};
use crate::webhook::{WebhookEvent, WebhookSink};

/// One notice to deliver, keyed by its invite code (the receiver's idempotency key).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    /// The body to POST.
    pub event: WebhookEvent,
    /// When it was recorded, unix seconds.
    pub created_at: f64,
    /// Attempts made so far.
    pub attempts: u32,
    /// When the next attempt is due, unix seconds.
    pub next_attempt_at: f64,
    /// What the last failed attempt saw.
    pub last_error: Option<String>,
}

impl Delivery {
    /// A new delivery of `event`, due at once.
    pub fn new(event: WebhookEvent, now: f64) -> Self {
        Self {
            event,
            created_at: now,
            attempts: 0,
            next_attempt_at: now,
            last_error: None,
        }
    }

    /// The idempotency key: the invite code.
    pub fn key(&self) -> &str {
        &self.event.invite_code
    }

    /// The delivery as an admin's retry requeues it after it was given up: due at `now`, with
    /// its full schedule again (attempts from zero, so the back-off starts at 1 s, and recorded
    /// at `now`, so it is given up only [`WebhookConfig::give_up_after`] later). The last error
    /// stays for the record.
    pub fn requeued(mut self, now: f64) -> Self {
        self.created_at = now;
        self.attempts = 0;
        self.next_attempt_at = now;
        self
    }
}

/// What the outbox holds, for the admin status, the console and the metrics.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct OutboxSummary {
    /// Deliveries not yet made.
    pub pending: usize,
    /// Deliveries given up (kept until an admin retries them).
    pub failed: usize,
    /// When the oldest pending delivery was recorded, unix seconds.
    pub oldest_pending_at: Option<f64>,
    /// Up to the listing limit of the pending deliveries, soonest due first.
    pub pending_deliveries: Vec<Delivery>,
    /// Up to the listing limit of the failed deliveries, oldest first.
    pub failed_deliveries: Vec<Delivery>,
}

/// Where deliveries wait. Every method is durable when it returns (for the durable stores).
#[async_trait]
pub trait WebhookOutbox: Send + Sync + 'static {
    /// Records a delivery to make.
    async fn enqueue(&self, delivery: Delivery) -> Result<(), StoreError>;
    /// Takes up to `max` deliveries due at `now`, soonest first, hiding them from every taker
    /// until `now + lease` (so a taker that dies mid-delivery hands them on after the lease).
    async fn take_due(
        &self,
        now: f64,
        lease: Duration,
        max: usize,
    ) -> Result<Vec<Delivery>, StoreError>;
    /// The delivery of `key` succeeded: forgets it.
    async fn delivered(&self, key: &str) -> Result<(), StoreError>;
    /// An attempt failed: keeps the updated delivery, due again at its `next_attempt_at`.
    async fn reschedule(&self, delivery: &Delivery) -> Result<(), StoreError>;
    /// Gives the delivery up: moves it to the failed ones.
    async fn give_up(&self, delivery: &Delivery) -> Result<(), StoreError>;
    /// Moves every failed delivery back to pending, [requeued](Delivery::requeued) at `now`;
    /// returns how many.
    async fn retry_failed(&self, now: f64) -> Result<usize, StoreError>;
    /// Counts, and up to `limit` deliveries of each kind.
    async fn summary(&self, limit: usize) -> Result<OutboxSummary, StoreError>;
}

/// The outbox the defaults give: on disk in `dir` when set, else in memory.
pub fn from_disk(dir: Option<&Path>) -> Result<std::sync::Arc<dyn WebhookOutbox>, StoreError> {
    Ok(match dir {
        Some(dir) => std::sync::Arc::new(FileOutbox::open(dir.join(OUTBOX_DIR))?),
        None => std::sync::Arc::new(MemoryOutbox::default()),
    })
}

/// The outbox's directory inside the data directory.
pub const OUTBOX_DIR: &str = "webhook-outbox";

/// How long a taken delivery stays hidden from other takers: longer than one attempt can last.
pub const DELIVERY_LEASE: Duration = Duration::from_secs(15);

/// Deliveries taken per round.
const BATCH: usize = 16;

/// The wait before attempt `attempts + 1` after `attempts` failures: 1 s, 2 s, 4 s … doubling,
/// at most `max`.
pub fn backoff(attempts: u32, max: Duration) -> Duration {
    let doubled = Duration::from_secs(1u64 << attempts.saturating_sub(1).min(20));
    doubled.min(max).max(Duration::from_millis(100))
}

/// What one round of [`deliver_due`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Round {
    /// Delivered and forgotten.
    pub delivered: usize,
    /// Failed and rescheduled.
    pub retried: usize,
    /// Failed and given up.
    pub given_up: usize,
}

/// Delivers the deliveries due at `now` (up to one batch, concurrently): a success is
/// forgotten, a failure rescheduled after its back-off, or given up once older than
/// `config.give_up_after` (zero: never).
pub async fn deliver_due(
    outbox: &dyn WebhookOutbox,
    sink: &dyn WebhookSink,
    config: &WebhookConfig,
    now: f64,
) -> Result<Round, StoreError> {
    let due = outbox.take_due(now, DELIVERY_LEASE, BATCH).await?;
    let attempts = due.into_iter().map(|mut delivery| async move {
        delivery.attempts += 1;
        let result = sink.deliver(&delivery).await;
        (delivery, result)
    });
    let mut round = Round::default();
    for (mut delivery, result) in futures_util::future::join_all(attempts).await {
        match result {
            Ok(()) => {
                outbox.delivered(delivery.key()).await?;
                round.delivered += 1;
            }
            Err(e) => {
                let age = Duration::from_secs_f64((now - delivery.created_at).max(0.0));
                delivery.last_error = Some(e.to_string());
                if !config.give_up_after.is_zero() && age >= config.give_up_after {
                    tracing::error!(attempts = delivery.attempts, error = %e, "webhook delivery given up");
                    outbox.give_up(&delivery).await?;
                    round.given_up += 1;
                } else {
                    let wait = backoff(delivery.attempts, config.max_backoff);
                    tracing::warn!(attempts = delivery.attempts, retry_in = ?wait, error = %e, "webhook attempt failed");
                    delivery.next_attempt_at = now + wait.as_secs_f64();
                    outbox.reschedule(&delivery).await?;
                    round.retried += 1;
                }
            }
        }
    }
    Ok(round)
}

/// Pending deliveries (with the time each is hidden until) and failed ones, by key.
#[derive(Debug, Default)]
struct Deliveries {
    pending: BTreeMap<String, (Delivery, f64)>,
    failed: BTreeMap<String, Delivery>,
}

impl Deliveries {
    fn take_due(&mut self, now: f64, lease: Duration, max: usize) -> Vec<Delivery> {
        let mut due: Vec<(&String, &mut (Delivery, f64))> = self
            .pending
            .iter_mut()
            .filter(|(_, (d, hidden_until))| d.next_attempt_at <= now && *hidden_until <= now)
            .collect();
        due.sort_by(|a, b| a.1.0.next_attempt_at.total_cmp(&b.1.0.next_attempt_at));
        due.into_iter()
            .take(max)
            .map(|(_, (delivery, hidden_until))| {
                *hidden_until = now + lease.as_secs_f64();
                delivery.clone()
            })
            .collect()
    }

    fn summary(&self, limit: usize) -> OutboxSummary {
        let mut pending: Vec<Delivery> = self.pending.values().map(|(d, _)| d.clone()).collect();
        pending.sort_by(|a, b| a.next_attempt_at.total_cmp(&b.next_attempt_at));
        let mut failed: Vec<Delivery> = self.failed.values().cloned().collect();
        failed.sort_by(|a, b| a.created_at.total_cmp(&b.created_at));
        OutboxSummary {
            pending: pending.len(),
            failed: failed.len(),
            oldest_pending_at: pending.iter().map(|d| d.created_at).reduce(f64::min),
            pending_deliveries: pending.into_iter().take(limit).collect(),
            failed_deliveries: failed.into_iter().take(limit).collect(),
        }
    }
}

/// The outbox in memory: lost with the process.
#[derive(Debug, Default)]
pub struct MemoryOutbox {
    deliveries: Mutex<Deliveries>,
}

#[async_trait]
impl WebhookOutbox for MemoryOutbox {
    async fn enqueue(&self, delivery: Delivery) -> Result<(), StoreError> {
        let mut d = lock(&self.deliveries);
        d.pending
            .insert(delivery.key().to_string(), (delivery, 0.0));
        Ok(())
    }

    async fn take_due(
        &self,
        now: f64,
        lease: Duration,
        max: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        Ok(lock(&self.deliveries).take_due(now, lease, max))
    }

    async fn delivered(&self, key: &str) -> Result<(), StoreError> {
        lock(&self.deliveries).pending.remove(key);
        Ok(())
    }

    async fn reschedule(&self, delivery: &Delivery) -> Result<(), StoreError> {
        let mut d = lock(&self.deliveries);
        d.pending
            .insert(delivery.key().to_string(), (delivery.clone(), 0.0));
        Ok(())
    }

    async fn give_up(&self, delivery: &Delivery) -> Result<(), StoreError> {
        let mut d = lock(&self.deliveries);
        d.pending.remove(delivery.key());
        d.failed
            .insert(delivery.key().to_string(), delivery.clone());
        Ok(())
    }

    async fn retry_failed(&self, now: f64) -> Result<usize, StoreError> {
        let mut d = lock(&self.deliveries);
        let failed = std::mem::take(&mut d.failed);
        let n = failed.len();
        for (key, delivery) in failed {
            d.pending.insert(key, (delivery.requeued(now), 0.0));
        }
        Ok(n)
    }

    async fn summary(&self, limit: usize) -> Result<OutboxSummary, StoreError> {
        Ok(lock(&self.deliveries).summary(limit))
    }
}

/// The outbox as files: `pending/<name>.json` and `failed/<name>.json` under its directory
/// ([`file_name`]: never the invite code itself), each written atomically (fsynced, then
/// renamed, private: 0600 in 0700 directories), removed when delivered, with a [`MemoryOutbox`]
/// as their index. One process owns the directory; the deliveries in flight are known to it
/// alone.
#[derive(Debug)]
pub struct FileOutbox {
    dir: PathBuf,
    index: MemoryOutbox,
}

const PENDING: &str = "pending";
const FAILED: &str = "failed";

/// The file name of the delivery keyed `key` (an invite code, which a directory listing must not
/// show): the code's id when `key` is a well-formed code (the id the admin's invite views show;
/// it does not let anyone rebuild the code), else `h-` and the SHA-256 of the key in hex. One
/// name per key, so rewriting a delivery replaces its file.
pub fn file_name(key: &str) -> String {
    match crate::invite::code_id(key) {
        Some(id) => format!("{id}.json"),
        None => {
            use sha2::Digest;
            format!(
                "h-{}.json",
                hex::encode(sha2::Sha256::digest(key.as_bytes()))
            )
        }
    }
}

/// Every delivery stored in `dir`, with its file (a missing directory holds none; an
/// unreadable file is logged and left where it is). Files are tightened to 0600 on the way.
fn read_deliveries(dir: &Path) -> std::io::Result<Vec<(PathBuf, Delivery)>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut deliveries = Vec::new();
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        crate::private_files::tighten_file(&path)?;
        match serde_json::from_slice::<Delivery>(&std::fs::read(&path)?) {
            Ok(delivery) => deliveries.push((path, delivery)),
            Err(e) => {
                tracing::error!(path = %path.display(), error = %e, "unreadable outbox entry")
            }
        }
    }
    Ok(deliveries)
}

impl FileOutbox {
    /// The outbox in `dir` (created 0700 if missing, tightened if looser), with the deliveries
    /// it already holds. A file under an older name (the invite code itself) is renamed to
    /// [`file_name`]'s.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let dir = dir.into();
        let mut index = Deliveries::default();
        crate::private_files::create_owned_dir(&dir).map_err(|e| StoreError::io(&dir, &e))?;
        for kind in [PENDING, FAILED] {
            let sub = dir.join(kind);
            let deliveries = crate::private_files::create_owned_dir(&sub)
                .and_then(|()| read_deliveries(&sub))
                .and_then(|found| rename_to_current_names(&sub, found))
                .map_err(|e| StoreError::io(&sub, &e))?;
            for delivery in deliveries {
                let key = delivery.key().to_string();
                if kind == PENDING {
                    index.pending.insert(key, (delivery, 0.0));
                } else {
                    index.failed.insert(key, delivery);
                }
            }
        }
        Ok(Self {
            dir,
            index: MemoryOutbox {
                deliveries: Mutex::new(index),
            },
        })
    }

    fn path(&self, kind: &str, key: &str) -> PathBuf {
        self.dir.join(kind).join(file_name(key))
    }

    /// Writes `delivery` as a `kind` file, and removes its `stale` file, when given.
    async fn write(
        &self,
        kind: &str,
        delivery: &Delivery,
        stale: Option<&str>,
    ) -> Result<(), StoreError> {
        let path = self.path(kind, delivery.key());
        let json = serde_json::to_vec(delivery).expect("a delivery serialises");
        let stale = stale.map(|other| self.path(other, delivery.key()));
        blocking_io(&path.clone(), move || {
            write_atomic(&path, &json)?;
            stale.map_or(Ok(()), |stale| remove_durably(&stale))
        })
        .await
    }
}

/// Moves each delivery found in `dir` whose file is not named [`file_name`] (an older version
/// named it by the invite code) to its current name: the new file written atomically first, then
/// the old one removed, so a crash in between leaves two copies of one delivery, never none.
fn rename_to_current_names(
    dir: &Path,
    found: Vec<(PathBuf, Delivery)>,
) -> std::io::Result<Vec<Delivery>> {
    let mut deliveries = Vec::with_capacity(found.len());
    for (path, delivery) in found {
        let current = dir.join(file_name(delivery.key()));
        if path != current {
            let json = serde_json::to_vec(&delivery).expect("a delivery serialises");
            write_atomic(&current, &json)?;
            remove_durably(&path)?;
            tracing::info!(file = %current.display(), "outbox entry renamed from its invite code to its id");
        }
        deliveries.push(delivery);
    }
    Ok(deliveries)
}

/// Removes `path` (already gone is fine) and makes the removal durable.
fn remove_durably(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    }
    if let Some(dir) = path.parent()
        && let Ok(d) = std::fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(())
}

#[async_trait]
impl WebhookOutbox for FileOutbox {
    async fn enqueue(&self, delivery: Delivery) -> Result<(), StoreError> {
        self.write(PENDING, &delivery, None).await?;
        self.index.enqueue(delivery).await
    }

    async fn take_due(
        &self,
        now: f64,
        lease: Duration,
        max: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        self.index.take_due(now, lease, max).await
    }

    async fn delivered(&self, key: &str) -> Result<(), StoreError> {
        let path = self.path(PENDING, key);
        blocking_io(&path.clone(), move || remove_durably(&path)).await?;
        self.index.delivered(key).await
    }

    async fn reschedule(&self, delivery: &Delivery) -> Result<(), StoreError> {
        self.write(PENDING, delivery, None).await?;
        self.index.reschedule(delivery).await
    }

    async fn give_up(&self, delivery: &Delivery) -> Result<(), StoreError> {
        self.write(FAILED, delivery, Some(PENDING)).await?;
        self.index.give_up(delivery).await
    }

    async fn retry_failed(&self, now: f64) -> Result<usize, StoreError> {
        let failed: Vec<Delivery> = lock(&self.index.deliveries)
            .failed
            .values()
            .cloned()
            .collect();
        for delivery in &failed {
            self.write(PENDING, &delivery.clone().requeued(now), Some(FAILED))
                .await?;
        }
        // Every file moved: the index follows (after a failure above it lags the files until
        // the next start reads them).
        self.index.retry_failed(now).await?;
        Ok(failed.len())
    }

    async fn summary(&self, limit: usize) -> Result<OutboxSummary, StoreError> {
        self.index.summary(limit).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::WebhookError;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn delivery(code: &str, now: f64) -> Delivery {
        Delivery::new(
            WebhookEvent {
                visitor_id: "v".into(),
                invite_code: code.into(),
            },
            now,
        )
    }

    /// Fails its first `failures` attempts, then succeeds.
    struct Flaky {
        failures: usize,
        seen: AtomicUsize,
    }

    #[async_trait]
    impl WebhookSink for Flaky {
        async fn deliver(&self, _delivery: &Delivery) -> Result<(), WebhookError> {
            if self.seen.fetch_add(1, Ordering::SeqCst) < self.failures {
                Err(WebhookError("HTTP 503".into()))
            } else {
                Ok(())
            }
        }
    }

    fn config(give_up_after: u64) -> WebhookConfig {
        WebhookConfig {
            max_backoff: Duration::from_secs(60),
            give_up_after: Duration::from_secs(give_up_after),
            ..WebhookConfig::default()
        }
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let cap = Duration::from_secs(60);
        let waits: Vec<u64> = (1..=8).map(|n| backoff(n, cap).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(backoff(1000, cap), cap);
    }

    async fn retried_until_delivered(outbox: &dyn WebhookOutbox) {
        let sink = Flaky {
            failures: 2,
            seen: AtomicUsize::new(0),
        };
        outbox.enqueue(delivery("CODE-1", 100.0)).await.unwrap();
        let round = deliver_due(outbox, &sink, &config(0), 100.0).await.unwrap();
        assert_eq!(round.retried, 1);
        // Not due before its back-off (1 s).
        let round = deliver_due(outbox, &sink, &config(0), 100.5).await.unwrap();
        assert_eq!(round, Round::default());
        let round = deliver_due(outbox, &sink, &config(0), 101.0).await.unwrap();
        assert_eq!(round.retried, 1);
        let summary = outbox.summary(10).await.unwrap();
        assert_eq!(summary.pending_deliveries[0].attempts, 2);
        assert_eq!(summary.pending_deliveries[0].next_attempt_at, 103.0);
        assert_eq!(
            summary.pending_deliveries[0].last_error.as_deref(),
            Some("HTTP 503")
        );
        let round = deliver_due(outbox, &sink, &config(0), 103.0).await.unwrap();
        assert_eq!(round.delivered, 1);
        assert_eq!(outbox.summary(10).await.unwrap().pending, 0);
    }

    async fn given_up_then_retried(outbox: &dyn WebhookOutbox) {
        let sink = Flaky {
            failures: usize::MAX,
            seen: AtomicUsize::new(0),
        };
        outbox.enqueue(delivery("CODE-2", 0.0)).await.unwrap();
        let round = deliver_due(outbox, &sink, &config(60), 61.0).await.unwrap();
        assert_eq!(round.given_up, 1);
        let summary = outbox.summary(10).await.unwrap();
        assert_eq!((summary.pending, summary.failed), (0, 1));
        assert_eq!(outbox.retry_failed(70.0).await.unwrap(), 1);
        let summary = outbox.summary(10).await.unwrap();
        assert_eq!((summary.pending, summary.failed), (1, 0));
        // The full schedule again: counted from the retry, attempts from zero.
        assert_eq!(summary.oldest_pending_at, Some(70.0));
        let requeued = &summary.pending_deliveries[0];
        assert_eq!((requeued.attempts, requeued.next_attempt_at), (0, 70.0));
        assert_eq!(requeued.last_error.as_deref(), Some("HTTP 503"));
        // A failure soon after is retried after 1 s, not given up at once …
        let round = deliver_due(outbox, &sink, &config(60), 70.0).await.unwrap();
        assert_eq!((round.retried, round.given_up), (1, 0));
        let round = deliver_due(outbox, &sink, &config(60), 71.0).await.unwrap();
        assert_eq!((round.retried, round.given_up), (1, 0));
        // … and given up once the give-up time has passed since the retry.
        let round = deliver_due(outbox, &sink, &config(60), 130.0)
            .await
            .unwrap();
        assert_eq!(round.given_up, 1);
        assert_eq!(outbox.summary(10).await.unwrap().failed, 1);
    }

    async fn taken_deliveries_are_hidden_for_the_lease(outbox: &dyn WebhookOutbox) {
        outbox.enqueue(delivery("CODE-3", 0.0)).await.unwrap();
        let lease = Duration::from_secs(30);
        assert_eq!(outbox.take_due(1.0, lease, 10).await.unwrap().len(), 1);
        assert!(outbox.take_due(2.0, lease, 10).await.unwrap().is_empty());
        // The taker died: after the lease another one takes it.
        assert_eq!(outbox.take_due(31.0, lease, 10).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn memory_outbox_retries_gives_up_and_leases() {
        retried_until_delivered(&MemoryOutbox::default()).await;
        given_up_then_retried(&MemoryOutbox::default()).await;
        taken_deliveries_are_hidden_for_the_lease(&MemoryOutbox::default()).await;
    }

    #[tokio::test]
    async fn file_outbox_retries_gives_up_and_leases() {
        let dir = std::env::temp_dir().join(format!(
            "hashpass-outbox-{}",
            hex::encode(crate::util::random_bytes::<6>())
        ));
        retried_until_delivered(&FileOutbox::open(dir.join("a")).unwrap()).await;
        given_up_then_retried(&FileOutbox::open(dir.join("b")).unwrap()).await;
        taken_deliveries_are_hidden_for_the_lease(&FileOutbox::open(dir.join("c")).unwrap()).await;
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn file_names_never_show_the_code() {
        let codes = crate::invite::InviteCodes::new(crate::invite::InviteKey::random());
        let code = codes.issue().code;
        let id = codes.verify(&code).unwrap().id;
        assert_eq!(file_name(&code), format!("{id}.json"));
        assert_eq!(file_name(&format!(" {code} ")), file_name(&code));
        let odd = file_name("odd/key");
        assert!(odd.starts_with("h-") && odd.len() == 2 + 64 + 5, "{odd}");
        assert!(!odd.contains("odd"));
        assert_ne!(file_name("CODE-1"), file_name("CODE-2"));
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn files_are_private_and_old_names_are_migrated() {
        use crate::private_files::{DIR_MODE, FILE_MODE, mode_of};
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!(
            "hashpass-outbox-{}",
            hex::encode(crate::util::random_bytes::<6>())
        ));
        let codes = crate::invite::InviteCodes::new(crate::invite::InviteKey::random());
        let (pending_code, failed_code) = (codes.issue().code, codes.issue().code);
        // As an older version left them: named by the code, world-readable, in open directories.
        for (kind, code) in [(PENDING, &pending_code), (FAILED, &failed_code)] {
            let sub = dir.join(kind);
            std::fs::create_dir_all(&sub).unwrap();
            let old = sub.join(format!("{code}.json"));
            std::fs::write(&old, serde_json::to_vec(&delivery(code, 1.0)).unwrap()).unwrap();
            std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o644)).unwrap();
            std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let outbox = FileOutbox::open(&dir).unwrap();
        let summary = outbox.summary(10).await.unwrap();
        assert_eq!((summary.pending, summary.failed), (1, 1));
        let names = |kind: &str| -> Vec<String> {
            std::fs::read_dir(dir.join(kind))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        };
        assert_eq!(names(PENDING), [file_name(&pending_code)]);
        assert_eq!(names(FAILED), [file_name(&failed_code)]);
        for kind in [PENDING, FAILED] {
            assert_eq!(mode_of(&dir.join(kind)).unwrap(), Some(DIR_MODE));
            for name in names(kind) {
                assert_eq!(
                    mode_of(&dir.join(kind).join(name)).unwrap(),
                    Some(FILE_MODE)
                );
            }
        }
        assert_eq!(mode_of(&dir).unwrap(), Some(DIR_MODE));
        // Idempotent by code: the same delivery rewritten replaces its one file.
        let fresh = codes.issue().code;
        outbox.enqueue(delivery(&fresh, 2.0)).await.unwrap();
        outbox.reschedule(&delivery(&fresh, 2.0)).await.unwrap();
        assert_eq!(names(PENDING).len(), 2);
        let path = dir.join(PENDING).join(file_name(&fresh));
        assert_eq!(mode_of(&path).unwrap(), Some(FILE_MODE));
        outbox.delivered(&fresh).await.unwrap();
        outbox.delivered(&pending_code).await.unwrap();
        assert!(names(PENDING).is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn file_outbox_survives_a_restart() {
        let dir = std::env::temp_dir().join(format!(
            "hashpass-outbox-{}",
            hex::encode(crate::util::random_bytes::<6>())
        ));
        let outbox = FileOutbox::open(&dir).unwrap();
        outbox.enqueue(delivery("CODE-A", 1.0)).await.unwrap();
        outbox.enqueue(delivery("odd/key", 2.0)).await.unwrap();
        outbox.give_up(&delivery("CODE-B", 0.5)).await.unwrap();
        // Taken but not finished when the process died.
        assert_eq!(
            outbox.take_due(3.0, DELIVERY_LEASE, 1).await.unwrap().len(),
            1
        );
        drop(outbox);
        let reopened = FileOutbox::open(&dir).unwrap();
        let summary = reopened.summary(10).await.unwrap();
        assert_eq!((summary.pending, summary.failed), (2, 1));
        let keys: Vec<&str> = summary.pending_deliveries.iter().map(|d| d.key()).collect();
        assert_eq!(keys, ["CODE-A", "odd/key"]);
        // Nothing is in flight after a restart: both are due at once.
        assert_eq!(
            reopened
                .take_due(3.0, DELIVERY_LEASE, 10)
                .await
                .unwrap()
                .len(),
            2
        );
        reopened.delivered("odd/key").await.unwrap();
        assert_eq!(
            FileOutbox::open(&dir)
                .unwrap()
                .summary(10)
                .await
                .unwrap()
                .pending,
            1
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
