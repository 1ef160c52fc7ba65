//! Banned IPs (PROTOCOL.md B16, A7): `blacklist.json` in the data directory, a sorted JSON array
//! of IP strings, written atomically after every effective change. Reads never touch the disk.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use async_trait::async_trait;

use crate::config::canonical_ip;
use crate::util::write_atomic;

/// The blacklist could not be persisted.
#[derive(Debug, thiserror::Error)]
#[error("could not write {path}: {source}")]
pub struct BanError {
    /// The file.
    pub path: PathBuf,
    /// The I/O error.
    #[source]
    pub source: std::io::Error,
}

/// Which IPs are banned.
#[async_trait]
pub trait BanList: Send + Sync + 'static {
    /// Whether `ip` is banned.
    async fn is_banned(&self, ip: IpAddr) -> Result<bool, BanError>;
    /// Bans `ip`; true if it was not banned before.
    async fn ban(&self, ip: IpAddr) -> Result<bool, BanError>;
    /// Lifts a ban; true if `ip` was banned.
    async fn unban(&self, ip: IpAddr) -> Result<bool, BanError>;
    /// Every banned IP, sorted as strings.
    async fn list(&self) -> Result<Vec<String>, BanError>;
    /// Number of banned IPs.
    async fn count(&self) -> Result<usize, BanError>;
}

/// The set, kept sorted by the string form (the order the file and the admin list use).
#[derive(Debug, Default)]
struct BanSet(RwLock<BTreeSet<String>>);

impl BanSet {
    fn contains(&self, ip: IpAddr) -> bool {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&canonical_ip(ip).to_string())
    }

    /// Applies a change; if `persist` fails, the change is rolled back.
    fn change(
        &self,
        ip: IpAddr,
        insert: bool,
        persist: impl FnOnce(&BTreeSet<String>) -> Result<(), BanError>,
    ) -> Result<bool, BanError> {
        let key = canonical_ip(ip).to_string();
        let mut set = self.0.write().unwrap_or_else(|e| e.into_inner());
        let changed = if insert {
            set.insert(key.clone())
        } else {
            set.remove(&key)
        };
        if changed {
            if let Err(e) = persist(&set) {
                if insert {
                    set.remove(&key);
                } else {
                    set.insert(key);
                }
                return Err(e);
            }
        }
        Ok(changed)
    }

    fn list(&self) -> Vec<String> {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect()
    }
}

/// Bans in memory only.
#[derive(Debug, Default)]
pub struct MemoryBanList(BanSet);

#[async_trait]
impl BanList for MemoryBanList {
    async fn is_banned(&self, ip: IpAddr) -> Result<bool, BanError> {
        Ok(self.0.contains(ip))
    }

    async fn ban(&self, ip: IpAddr) -> Result<bool, BanError> {
        self.0.change(ip, true, |_| Ok(()))
    }

    async fn unban(&self, ip: IpAddr) -> Result<bool, BanError> {
        self.0.change(ip, false, |_| Ok(()))
    }

    async fn list(&self) -> Result<Vec<String>, BanError> {
        Ok(self.0.list())
    }

    async fn count(&self) -> Result<usize, BanError> {
        Ok(self.0.list().len())
    }
}

/// Bans in memory, persisted to `blacklist.json`.
#[derive(Debug)]
pub struct FileBanList {
    path: PathBuf,
    set: BanSet,
}

impl FileBanList {
    /// Opens (or starts) `blacklist.json` in `dir`. A file that is not a JSON array of IPs is
    /// reported in the log and ignored (entry by entry where possible), never a failure.
    pub fn open(dir: impl AsRef<Path>) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir.as_ref())?;
        let path = dir.as_ref().join("blacklist.json");
        let mut set = BTreeSet::new();
        match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice::<serde_json::Value>(&bytes) {
                Ok(serde_json::Value::Array(items)) => {
                    for item in items {
                        match item.as_str().and_then(|s| s.trim().parse::<IpAddr>().ok()) {
                            Some(ip) => {
                                set.insert(canonical_ip(ip).to_string());
                            }
                            None => {
                                tracing::warn!(entry = %item, "ignoring an invalid blacklist entry")
                            }
                        }
                    }
                }
                Ok(_) => {
                    tracing::warn!(path = %path.display(), "blacklist is not a JSON array; ignored")
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "blacklist is not valid JSON; ignored")
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        Ok(Self {
            path,
            set: BanSet(RwLock::new(set)),
        })
    }

    fn persist(&self, set: &BTreeSet<String>) -> Result<(), BanError> {
        let list: Vec<&String> = set.iter().collect();
        let json = serde_json::to_vec_pretty(&list).expect("a list of strings serialises");
        write_atomic(&self.path, &json).map_err(|source| BanError {
            path: self.path.clone(),
            source,
        })
    }
}

#[async_trait]
impl BanList for FileBanList {
    async fn is_banned(&self, ip: IpAddr) -> Result<bool, BanError> {
        Ok(self.set.contains(ip))
    }

    async fn ban(&self, ip: IpAddr) -> Result<bool, BanError> {
        self.set.change(ip, true, |set| self.persist(set))
    }

    async fn unban(&self, ip: IpAddr) -> Result<bool, BanError> {
        self.set.change(ip, false, |set| self.persist(set))
    }

    async fn list(&self) -> Result<Vec<String>, BanError> {
        Ok(self.set.list())
    }

    async fn count(&self) -> Result<usize, BanError> {
        Ok(self.set.list().len())
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

    #[tokio::test]
    async fn ban_unban_list() {
        let bans = MemoryBanList::default();
        assert!(bans.ban(ip("9.9.9.9")).await.unwrap());
        assert!(!bans.ban(ip("9.9.9.9")).await.unwrap());
        assert!(bans.ban(ip("10.0.0.1")).await.unwrap());
        assert!(bans.is_banned(ip("::ffff:9.9.9.9")).await.unwrap());
        assert_eq!(bans.list().await.unwrap(), vec!["10.0.0.1", "9.9.9.9"]);
        assert!(bans.unban(ip("9.9.9.9")).await.unwrap());
        assert!(!bans.unban(ip("9.9.9.9")).await.unwrap());
        assert_eq!(bans.count().await.unwrap(), 1);
    }

    #[tokio::test]
    async fn survives_a_restart_and_writes_atomically() {
        let dir = temp_dir("restart");
        {
            let bans = FileBanList::open(&dir).unwrap();
            bans.ban(ip("1.2.3.4")).await.unwrap();
            bans.ban(ip("2001:db8::1")).await.unwrap();
            bans.ban(ip("5.6.7.8")).await.unwrap();
            bans.unban(ip("5.6.7.8")).await.unwrap();
        }
        let text = std::fs::read_to_string(dir.join("blacklist.json")).unwrap();
        assert_eq!(text, "[\n  \"1.2.3.4\",\n  \"2001:db8::1\"\n]");
        let reopened = FileBanList::open(&dir).unwrap();
        assert!(reopened.is_banned(ip("2001:db8::1")).await.unwrap());
        assert_eq!(reopened.count().await.unwrap(), 2);
        let leftovers: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name() != "blacklist.json")
            .collect();
        assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn a_corrupt_file_is_ignored() {
        let dir = temp_dir("corrupt");
        std::fs::write(dir.join("blacklist.json"), "{not json").unwrap();
        assert_eq!(FileBanList::open(&dir).unwrap().count().await.unwrap(), 0);
        std::fs::write(dir.join("blacklist.json"), r#"["1.1.1.1", "nonsense", 7]"#).unwrap();
        assert_eq!(
            FileBanList::open(&dir).unwrap().list().await.unwrap(),
            vec!["1.1.1.1"]
        );
        std::fs::write(dir.join("blacklist.json"), r#"{"a": 1}"#).unwrap();
        assert_eq!(FileBanList::open(&dir).unwrap().count().await.unwrap(), 0);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn a_failed_write_changes_nothing() {
        let dir = temp_dir("readonly");
        let bans = FileBanList::open(&dir).unwrap();
        // Make the target path a directory so the rename fails.
        std::fs::create_dir_all(dir.join("blacklist.json")).unwrap();
        assert!(bans.ban(ip("1.2.3.4")).await.is_err());
        assert!(!bans.is_banned(ip("1.2.3.4")).await.unwrap());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
