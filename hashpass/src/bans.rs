//! Banned IPs (docs/protocol.md#bans, docs/protocol.md#files): `blacklist.json` in the data directory, a sorted JSON array
//! of IP strings, written atomically after every effective change. Reads never touch the disk.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use async_trait::async_trait;

use crate::config::canonical_ip;
use crate::error::StoreError;
use crate::util::{blocking_io, read_lock, write_atomic, write_lock};

/// The file's name in the data directory.
pub const BLACKLIST_FILE: &str = "blacklist.json";

/// The default ban list: [`FileBanList`] in `disk` when the instance keeps files there, else
/// [`MemoryBanList`].
pub fn from_config(disk: Option<&Path>) -> Result<std::sync::Arc<dyn BanList>, StoreError> {
    Ok(match disk {
        Some(dir) => std::sync::Arc::new(
            FileBanList::open(dir).map_err(|e| StoreError::io(&dir.join(BLACKLIST_FILE), &e))?,
        ),
        None => std::sync::Arc::new(MemoryBanList::default()),
    })
}

/// Which IPs are banned. IPv4-mapped IPv6 addresses count as their IPv4 address.
#[async_trait]
pub trait BanList: Send + Sync + 'static {
    /// Whether `ip` is banned.
    async fn is_banned(&self, ip: IpAddr) -> Result<bool, StoreError>;
    /// Bans `ip`; true if it was not banned before.
    async fn ban(&self, ip: IpAddr) -> Result<bool, StoreError>;
    /// Lifts a ban; true if `ip` was banned.
    async fn unban(&self, ip: IpAddr) -> Result<bool, StoreError>;
    /// Every banned IP, sorted as strings.
    async fn list(&self) -> Result<Vec<String>, StoreError>;
    /// Number of banned IPs.
    async fn count(&self) -> Result<usize, StoreError>;
}

/// The key of `ip` in the set: its canonical string form.
fn key(ip: IpAddr) -> String {
    canonical_ip(ip).to_string()
}

/// The banned IPs, sorted by string form (the order of the file and of the admin list).
#[derive(Debug, Default)]
struct BanSet(RwLock<BTreeSet<String>>);

impl BanSet {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeSet<String>> {
        read_lock(&self.0)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeSet<String>> {
        write_lock(&self.0)
    }

    fn contains(&self, ip: IpAddr) -> bool {
        self.read().contains(&key(ip))
    }

    fn list(&self) -> Vec<String> {
        self.read().iter().cloned().collect()
    }

    fn len(&self) -> usize {
        self.read().len()
    }
}

/// Bans in memory only.
#[derive(Debug, Default)]
pub struct MemoryBanList(BanSet);

#[async_trait]
impl BanList for MemoryBanList {
    async fn is_banned(&self, ip: IpAddr) -> Result<bool, StoreError> {
        Ok(self.0.contains(ip))
    }

    async fn ban(&self, ip: IpAddr) -> Result<bool, StoreError> {
        Ok(self.0.write().insert(key(ip)))
    }

    async fn unban(&self, ip: IpAddr) -> Result<bool, StoreError> {
        Ok(self.0.write().remove(&key(ip)))
    }

    async fn list(&self) -> Result<Vec<String>, StoreError> {
        Ok(self.0.list())
    }

    async fn count(&self) -> Result<usize, StoreError> {
        Ok(self.0.len())
    }
}

/// Bans in memory, persisted to `blacklist.json`. A change is visible only once it is on disk,
/// and a failed write changes nothing.
#[derive(Debug)]
pub struct FileBanList {
    path: PathBuf,
    set: BanSet,
    /// Serialises changes, so each write holds every change acknowledged before it.
    writer: tokio::sync::Mutex<()>,
}

/// The IPs of a blacklist file's text; anything else in it is logged and ignored.
fn parse_blacklist(path: &Path, bytes: &[u8]) -> BTreeSet<String> {
    let file = path.display();
    let items = match serde_json::from_slice::<serde_json::Value>(bytes) {
        Ok(serde_json::Value::Array(items)) => items,
        Ok(_) => {
            tracing::warn!(%file, "blacklist is not a JSON array; ignored");
            return BTreeSet::new();
        }
        Err(e) => {
            tracing::warn!(%file, error = %e, "blacklist is not valid JSON; ignored");
            return BTreeSet::new();
        }
    };
    items
        .into_iter()
        .filter_map(|item| {
            let ip = item.as_str().and_then(|s| s.trim().parse::<IpAddr>().ok());
            if ip.is_none() {
                tracing::warn!(%file, entry = %item, "ignoring an invalid blacklist entry");
            }
            ip.map(key)
        })
        .collect()
}

impl FileBanList {
    /// Opens (or starts) `blacklist.json` in `dir`, created if missing. A file that is not a
    /// JSON array of IPs is logged and ignored (entry by entry where possible), never a failure;
    /// only an unreadable file or directory is.
    pub fn open(dir: impl AsRef<Path>) -> std::io::Result<Self> {
        crate::private_files::create_dir(dir.as_ref())?;
        let path = dir.as_ref().join(BLACKLIST_FILE);
        // It holds client addresses: private, like every file written after (write_atomic).
        crate::private_files::tighten_file(&path)?;
        let set = match std::fs::read(&path) {
            Ok(bytes) => parse_blacklist(&path, &bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeSet::new(),
            Err(e) => return Err(e),
        };
        Ok(Self {
            path,
            set: BanSet(RwLock::new(set)),
            writer: tokio::sync::Mutex::default(),
        })
    }

    /// Applies `change` to a copy of the set; if it changed anything, writes the copy and then
    /// publishes it. Returns whether anything changed.
    async fn change(
        &self,
        change: impl FnOnce(&mut BTreeSet<String>) -> bool,
    ) -> Result<bool, StoreError> {
        let _writer = self.writer.lock().await;
        let mut next = self.set.read().clone();
        if !change(&mut next) {
            return Ok(false);
        }
        let json = serde_json::to_vec_pretty(&next).expect("a set of strings serialises");
        let path = self.path.clone();
        blocking_io(&self.path, move || write_atomic(&path, &json)).await?;
        *self.set.write() = next;
        Ok(true)
    }
}

#[async_trait]
impl BanList for FileBanList {
    async fn is_banned(&self, ip: IpAddr) -> Result<bool, StoreError> {
        Ok(self.set.contains(ip))
    }

    async fn ban(&self, ip: IpAddr) -> Result<bool, StoreError> {
        self.change(|set| set.insert(key(ip))).await
    }

    async fn unban(&self, ip: IpAddr) -> Result<bool, StoreError> {
        self.change(|set| set.remove(&key(ip))).await
    }

    async fn list(&self) -> Result<Vec<String>, StoreError> {
        Ok(self.set.list())
    }

    async fn count(&self) -> Result<usize, StoreError> {
        Ok(self.set.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "hashpass-bans-{name}-{}",
            hex::encode(crate::util::random_bytes::<6>())
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    async fn bans_and_unbans(bans: &dyn BanList) {
        assert!(bans.ban(ip("9.9.9.9")).await.unwrap());
        assert!(!bans.ban(ip("9.9.9.9")).await.unwrap(), "already banned");
        assert!(bans.ban(ip("10.0.0.1")).await.unwrap());
        assert!(
            !bans.ban(ip("::ffff:10.0.0.1")).await.unwrap(),
            "mapped = IPv4"
        );
        assert!(bans.ban(ip("2001:db8::1")).await.unwrap());
        assert!(bans.is_banned(ip("::ffff:9.9.9.9")).await.unwrap());
        assert!(!bans.is_banned(ip("9.9.9.8")).await.unwrap());
        assert_eq!(
            bans.list().await.unwrap(),
            vec!["10.0.0.1", "2001:db8::1", "9.9.9.9"],
            "sorted as strings"
        );
        assert!(bans.unban(ip("::ffff:9.9.9.9")).await.unwrap());
        assert!(
            !bans.unban(ip("9.9.9.9")).await.unwrap(),
            "not banned any more"
        );
        assert!(!bans.is_banned(ip("9.9.9.9")).await.unwrap());
        assert_eq!(bans.count().await.unwrap(), 2);
    }

    #[tokio::test]
    async fn memory_list_bans_and_unbans() {
        bans_and_unbans(&MemoryBanList::default()).await;
    }

    #[tokio::test]
    async fn file_list_bans_and_unbans() {
        let dir = temp_dir("rules");
        bans_and_unbans(&FileBanList::open(&dir).unwrap()).await;
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn survives_a_restart_and_writes_atomically() {
        let dir = temp_dir("restart");
        {
            let bans = FileBanList::open(&dir).unwrap();
            bans.ban(ip("5.6.7.8")).await.unwrap();
            bans.ban(ip("2001:db8::1")).await.unwrap();
            bans.ban(ip("1.2.3.4")).await.unwrap();
            bans.unban(ip("5.6.7.8")).await.unwrap();
        }
        let text = std::fs::read_to_string(dir.join(BLACKLIST_FILE)).unwrap();
        assert_eq!(text, "[\n  \"1.2.3.4\",\n  \"2001:db8::1\"\n]");
        let reopened = FileBanList::open(&dir).unwrap();
        assert!(reopened.is_banned(ip("2001:db8::1")).await.unwrap());
        assert_eq!(reopened.count().await.unwrap(), 2);
        reopened.unban(ip("1.2.3.4")).await.unwrap();
        reopened.unban(ip("2001:db8::1")).await.unwrap();
        let text = std::fs::read_to_string(dir.join(BLACKLIST_FILE)).unwrap();
        assert_eq!(text, "[]");
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![BLACKLIST_FILE], "no temp files left");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn a_corrupt_file_is_ignored() {
        let dir = temp_dir("corrupt");
        let file = dir.join(BLACKLIST_FILE);
        std::fs::write(&file, "{not json").unwrap();
        assert_eq!(FileBanList::open(&dir).unwrap().count().await.unwrap(), 0);
        std::fs::write(&file, r#"{"1.1.1.1": true}"#).unwrap();
        assert_eq!(FileBanList::open(&dir).unwrap().count().await.unwrap(), 0);
        std::fs::write(
            &file,
            r#"["1.1.1.1", "nonsense", 7, null, " ::ffff:2.2.2.2 "]"#,
        )
        .unwrap();
        let bans = FileBanList::open(&dir).unwrap();
        assert_eq!(bans.list().await.unwrap(), vec!["1.1.1.1", "2.2.2.2"]);
        // The next change rewrites the file cleanly.
        bans.ban(ip("3.3.3.3")).await.unwrap();
        let text = std::fs::read_to_string(&file).unwrap();
        let saved: Vec<String> = serde_json::from_str(&text).unwrap();
        assert_eq!(saved, vec!["1.1.1.1", "2.2.2.2", "3.3.3.3"]);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn a_failed_write_changes_nothing() {
        let dir = temp_dir("failing");
        let bans = FileBanList::open(&dir).unwrap();
        bans.ban(ip("1.1.1.1")).await.unwrap();
        // A directory where the file should be: the rename fails.
        std::fs::remove_file(dir.join(BLACKLIST_FILE)).unwrap();
        std::fs::create_dir(dir.join(BLACKLIST_FILE)).unwrap();
        let error = bans.ban(ip("1.2.3.4")).await.unwrap_err();
        assert!(error.to_string().contains(BLACKLIST_FILE), "{error}");
        assert!(!bans.is_banned(ip("1.2.3.4")).await.unwrap());
        assert!(bans.unban(ip("1.1.1.1")).await.is_err());
        assert!(bans.is_banned(ip("1.1.1.1")).await.unwrap());
        assert_eq!(bans.list().await.unwrap(), vec!["1.1.1.1"]);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
