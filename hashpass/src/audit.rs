//! The winners' audit trail (PROTOCOL.md B15 as amended by A7): `verify.jsonl` in the data
//! directory, one JSON record per line, appended and fsynced before the winner hears back;
//! rotated at 1000 records to `verify_<YYYYMMDD_HHMMSS_mmm>.jsonl`.
//!
//! Archives never change once written, so their statistics are computed once and cached; the
//! current file's are kept up to date on append. A torn last line (a crash mid-write) is skipped.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::clock::{SharedClock, SystemClock};
use crate::util::{local_datetime, round_dp};

/// The current file's name.
pub const CURRENT_FILE: &str = "verify.jsonl";
/// The original's name for it, accepted as an alias.
pub const LEGACY_FILE: &str = "verify.json";
/// Records per file before rotation.
pub const DEFAULT_ROTATION: usize = 1000;

/// One invite handed out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Local time, ISO-8601 without zone.
    pub timestamp: String,
    /// The invite code (text form).
    pub invite_code: String,
    /// The winner's fingerprint.
    pub visitor_id: String,
    /// The winning nonce.
    pub nonce: u64,
    /// The winning hash (hex).
    pub hash: String,
    /// The puzzle's seed.
    pub seed: String,
    /// The winner's effective IP.
    pub real_ip: String,
    /// The winner's trace data.
    pub trace_data: String,
    /// The puzzle's difficulty.
    pub difficulty: u32,
    /// Solve time in seconds (2 dp); `null` for timeout rewards.
    pub solve_time: Option<f64>,
    /// Difficulty after the adjustment.
    pub new_difficulty: u32,
    /// Why the difficulty changed (`timeout_reward` for rewards).
    pub adjustment_reason: String,
}

/// The audit log could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("audit log {path}: {source}")]
pub struct AuditError {
    /// The file involved.
    pub path: PathBuf,
    /// The I/O error.
    #[source]
    pub source: std::io::Error,
}

/// Which page of which file to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogQuery {
    /// 1-based page.
    pub page: u32,
    /// Records per page (1..=200).
    pub per_page: u32,
    /// Case-insensitive substring of a record's JSON.
    pub search: String,
    /// File name from [`AuditLog::files`] (or `verify.json`).
    pub file: String,
}

/// A page of records, newest first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogPage {
    /// The records.
    pub records: Vec<Value>,
    /// Matching records in the file.
    pub total: u64,
    /// This page.
    pub page: u32,
    /// Number of pages (0 for an unknown file).
    pub pages: u32,
    /// Every file, current first, then archives newest first.
    pub files: Vec<String>,
}

/// Statistics over every file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogStats {
    /// Records.
    pub total_codes: u64,
    /// Distinct visitor ids.
    pub unique_visitors: u64,
    /// Mean solve time (2 dp), zero and null skipped.
    pub avg_solve_time: Option<f64>,
    /// Upper median solve time (2 dp).
    pub median_solve_time: Option<f64>,
    /// Records per difficulty.
    pub difficulty_distribution: BTreeMap<String, u64>,
}

/// The audit trail.
#[async_trait]
pub trait AuditLog: Send + Sync + 'static {
    /// Appends a record durably.
    async fn append(&self, record: &AuditRecord) -> Result<(), AuditError>;
    /// Every file, current first, then archives newest first.
    async fn files(&self) -> Result<Vec<String>, AuditError>;
    /// A page of one file.
    async fn page(&self, query: &LogQuery) -> Result<LogPage, AuditError>;
    /// Statistics over every file.
    async fn stats(&self) -> Result<LogStats, AuditError>;
    /// The last ≤`n` positive solve times, oldest first (seeds the difficulty average).
    async fn recent_solve_times(&self, n: usize) -> Result<Vec<f64>, AuditError>;
}

/// Sums over a set of records.
#[derive(Debug, Clone, Default)]
struct Aggregate {
    count: u64,
    visitors: HashSet<String>,
    solve_times: Vec<f64>,
    difficulties: BTreeMap<u64, u64>,
}

impl Aggregate {
    fn add(&mut self, record: &Value) {
        self.count += 1;
        if let Some(v) = record.get("visitor_id").and_then(Value::as_str) {
            self.visitors.insert(v.to_string());
        }
        if let Some(t) = record
            .get("solve_time")
            .and_then(Value::as_f64)
            .filter(|t| *t > 0.0)
        {
            self.solve_times.push(t);
        }
        if let Some(d) = record
            .get("difficulty")
            .and_then(Value::as_u64)
            .filter(|d| *d > 0)
        {
            *self.difficulties.entry(d).or_default() += 1;
        }
    }

    fn of(records: &[Value]) -> Self {
        let mut a = Self::default();
        records.iter().for_each(|r| a.add(r));
        a
    }
}

fn combine<'a>(parts: impl Iterator<Item = &'a Aggregate>) -> LogStats {
    let mut total = 0;
    let mut visitors = HashSet::new();
    let mut times = Vec::new();
    let mut distribution = BTreeMap::new();
    for part in parts {
        total += part.count;
        visitors.extend(part.visitors.iter().map(String::as_str));
        times.extend_from_slice(&part.solve_times);
        for (d, n) in &part.difficulties {
            *distribution.entry(d.to_string()).or_default() += n;
        }
    }
    times.sort_by(f64::total_cmp);
    LogStats {
        total_codes: total,
        unique_visitors: visitors.len() as u64,
        avg_solve_time: (!times.is_empty())
            .then(|| round_dp(times.iter().sum::<f64>() / times.len() as f64, 2)),
        median_solve_time: times.get(times.len() / 2).map(|t| round_dp(*t, 2)),
        difficulty_distribution: distribution,
    }
}

/// A page of `records` (oldest first in the input), newest first in the output.
pub(crate) fn paginate(records: &[Value], query: &LogQuery, files: Vec<String>) -> LogPage {
    let needle = query.search.to_lowercase();
    let matching: Vec<&Value> = records
        .iter()
        .rev()
        .filter(|r| needle.is_empty() || r.to_string().to_lowercase().contains(&needle))
        .collect();
    let per_page = query.per_page.max(1);
    let total = matching.len() as u64;
    let start = (query.page.max(1) as usize - 1).saturating_mul(per_page as usize);
    LogPage {
        records: matching
            .into_iter()
            .skip(start)
            .take(per_page as usize)
            .cloned()
            .collect(),
        total,
        page: query.page,
        pages: (total.div_ceil(u64::from(per_page)) as u32).max(1),
        files,
    }
}

pub(crate) fn unknown_file(query: &LogQuery, files: Vec<String>) -> LogPage {
    LogPage {
        records: Vec::new(),
        total: 0,
        page: query.page,
        pages: 0,
        files,
    }
}

/// Whether `name` is an archive name: `verify_YYYYMMDD_HHMMSS_mmm.jsonl`, or with a
/// `_NNN` uniqueness suffix when two rotations fall in the same millisecond.
fn is_archive_name(name: &str) -> bool {
    let Some(stem) = name
        .strip_prefix("verify_")
        .and_then(|s| s.strip_suffix(".jsonl"))
    else {
        return false;
    };
    let parts: Vec<&str> = stem.split('_').collect();
    (parts.len() == 3 || parts.len() == 4)
        && [8, 6, 3, 3]
            .iter()
            .zip(&parts)
            .all(|(len, p)| p.len() == *len && p.bytes().all(|b| b.is_ascii_digit()))
}

fn archive_name(unix_seconds: f64) -> String {
    const FORMAT: &[time::format_description::BorrowedFormatItem<'_>] = time::macros::format_description!(
        "verify_[year][month][day]_[hour][minute][second]_[subsecond digits:3].jsonl"
    );
    local_datetime(unix_seconds)
        .format(FORMAT)
        .unwrap_or_default()
}

/// Records of a JSONL text; lines that are not JSON objects (a torn tail) are skipped.
fn parse_lines(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| {
            serde_json::from_str::<Value>(l)
                .ok()
                .filter(Value::is_object)
        })
        .collect()
}

#[derive(Debug, Default)]
struct FileState {
    /// Aggregate and record count of the current file, once read.
    current: Option<Aggregate>,
    /// Aggregates of archives, keyed by name, with the size they were computed at.
    archives: HashMap<String, (u64, Aggregate)>,
}

/// The audit log as files in a directory.
pub struct FileAuditLog {
    dir: PathBuf,
    rotation: usize,
    clock: SharedClock,
    state: Arc<tokio::sync::Mutex<FileState>>,
    /// How many times an archive was read from disk (to prove the cache works).
    archive_reads: Arc<Mutex<u64>>,
}

impl std::fmt::Debug for FileAuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileAuditLog")
            .field("dir", &self.dir)
            .field("rotation", &self.rotation)
            .finish()
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> AuditError + '_ {
    move |source| AuditError {
        path: path.to_path_buf(),
        source,
    }
}

async fn blocking<T: Send + 'static>(
    path: &Path,
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T, AuditError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| AuditError {
            path: path.to_path_buf(),
            source: std::io::Error::other(e.to_string()),
        })?
        .map_err(io_err(path))
}

fn read_records(path: &Path) -> std::io::Result<Vec<Value>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(parse_lines(&String::from_utf8_lossy(&bytes))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

impl FileAuditLog {
    /// The log in `dir` (created if missing).
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, AuditError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        Ok(Self {
            dir,
            rotation: DEFAULT_ROTATION,
            clock: Arc::new(SystemClock),
            state: Arc::default(),
            archive_reads: Arc::default(),
        })
    }

    /// Rotates after `records` records (default 1000).
    pub fn with_rotation(mut self, records: usize) -> Self {
        self.rotation = records.max(1);
        self
    }

    /// Uses `clock` for archive names.
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    fn current_path(&self) -> PathBuf {
        self.dir.join(CURRENT_FILE)
    }

    async fn archive_names(&self) -> Result<Vec<String>, AuditError> {
        let dir = self.dir.clone();
        let mut names = blocking(&self.dir, move || {
            let mut names = Vec::new();
            for entry in std::fs::read_dir(&dir)? {
                let name = entry?.file_name().to_string_lossy().into_owned();
                if is_archive_name(&name) {
                    names.push(name);
                }
            }
            Ok(names)
        })
        .await?;
        names.sort_by(|a, b| b.cmp(a));
        Ok(names)
    }

    async fn current_aggregate<'a>(
        &self,
        state: &'a mut FileState,
    ) -> Result<&'a mut Aggregate, AuditError> {
        if state.current.is_none() {
            let path = self.current_path();
            let records = blocking(&path.clone(), move || read_records(&path)).await?;
            state.current = Some(Aggregate::of(&records));
        }
        Ok(state.current.get_or_insert_with(Aggregate::default))
    }

    /// Times an archive was read to compute statistics (tests use it to see the cache work).
    pub fn archive_reads(&self) -> u64 {
        *self.archive_reads.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl AuditLog for FileAuditLog {
    async fn append(&self, record: &AuditRecord) -> Result<(), AuditError> {
        let mut state = self.state.lock().await;
        let count = self.current_aggregate(&mut state).await?.count;
        let current = self.current_path();
        if count as usize >= self.rotation {
            let name = unique_archive_name(archive_name(self.clock.now()), |n| {
                self.dir.join(n).exists()
            });
            let target = self.dir.join(&name);
            let (from, to) = (current.clone(), target.clone());
            blocking(&current, move || std::fs::rename(&from, &to)).await?;
            let size = std::fs::metadata(&target).map(|m| m.len()).unwrap_or(0);
            let archived = state.current.take().unwrap_or_default();
            state.archives.insert(name, (size, archived));
            state.current = Some(Aggregate::default());
        }
        let mut line = serde_json::to_vec(record).expect("an audit record serialises");
        line.push(b'\n');
        let path = current.clone();
        blocking(&current, move || {
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)?;
            file.write_all(&line)?;
            file.sync_data()
        })
        .await?;
        let value = serde_json::to_value(record).expect("an audit record serialises");
        self.current_aggregate(&mut state).await?.add(&value);
        Ok(())
    }

    async fn files(&self) -> Result<Vec<String>, AuditError> {
        let mut files = vec![CURRENT_FILE.to_string()];
        files.extend(self.archive_names().await?);
        Ok(files)
    }

    async fn page(&self, query: &LogQuery) -> Result<LogPage, AuditError> {
        let files = self.files().await?;
        let name = if query.file == LEGACY_FILE {
            CURRENT_FILE
        } else {
            query.file.as_str()
        };
        if !files.iter().any(|f| f == name) {
            return Ok(unknown_file(query, files));
        }
        let path = self.dir.join(name);
        let records = blocking(&path.clone(), move || read_records(&path)).await?;
        Ok(paginate(&records, query, files))
    }

    async fn stats(&self) -> Result<LogStats, AuditError> {
        let names = self.archive_names().await?;
        let mut state = self.state.lock().await;
        self.current_aggregate(&mut state).await?;
        for name in &names {
            let path = self.dir.join(name);
            let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            if state
                .archives
                .get(name)
                .is_some_and(|(cached, _)| *cached == size)
            {
                continue;
            }
            let p = path.clone();
            let records = blocking(&path, move || read_records(&p)).await?;
            *self.archive_reads.lock().unwrap_or_else(|e| e.into_inner()) += 1;
            state
                .archives
                .insert(name.clone(), (size, Aggregate::of(&records)));
        }
        state.archives.retain(|name, _| names.contains(name));
        Ok(combine(
            state
                .current
                .iter()
                .chain(state.archives.values().map(|(_, a)| a)),
        ))
    }

    async fn recent_solve_times(&self, n: usize) -> Result<Vec<f64>, AuditError> {
        let mut files = vec![CURRENT_FILE.to_string()];
        files.extend(self.archive_names().await?);
        let mut newest_first = Vec::new();
        for name in files {
            let path = self.dir.join(&name);
            let records = blocking(&path.clone(), move || read_records(&path)).await?;
            newest_first.extend(
                records
                    .iter()
                    .rev()
                    .filter_map(|r| r.get("solve_time").and_then(Value::as_f64))
                    .filter(|t| *t > 0.0),
            );
            if newest_first.len() >= n {
                break;
            }
        }
        newest_first.truncate(n);
        newest_first.reverse();
        Ok(newest_first)
    }
}

/// Records of the current file, then `(name, records)` of each archive, newest first.
type MemoryFiles = (Vec<Value>, Vec<(String, Vec<Value>)>);

/// The audit log in memory (same rotation, paging and statistics).
pub struct MemoryAuditLog {
    rotation: usize,
    clock: SharedClock,
    /// The current records, then archives newest first.
    files: Mutex<MemoryFiles>,
}

impl Default for MemoryAuditLog {
    fn default() -> Self {
        Self {
            rotation: DEFAULT_ROTATION,
            clock: Arc::new(SystemClock),
            files: Mutex::default(),
        }
    }
}

impl std::fmt::Debug for MemoryAuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryAuditLog")
            .field("rotation", &self.rotation)
            .finish_non_exhaustive()
    }
}

/// `name` made unique among `taken` by a `_NNN` suffix, which sorts after the plain name.
fn unique_archive_name(name: String, taken: impl Fn(&str) -> bool) -> String {
    let base = name.trim_end_matches(".jsonl").to_string();
    let mut candidate = name;
    let mut n = 1;
    while taken(&candidate) {
        candidate = format!("{base}_{n:03}.jsonl");
        n += 1;
    }
    candidate
}

impl MemoryAuditLog {
    /// Uses `clock` for archive names.
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Rotates after `records` records.
    pub fn with_rotation(mut self, records: usize) -> Self {
        self.rotation = records.max(1);
        self
    }

    fn with<R>(&self, f: impl FnOnce(&mut MemoryFiles) -> R) -> R {
        f(&mut self.files.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn names(files: &MemoryFiles) -> Vec<String> {
        std::iter::once(CURRENT_FILE.to_string())
            .chain(files.1.iter().map(|(n, _)| n.clone()))
            .collect()
    }
}

#[async_trait]
impl AuditLog for MemoryAuditLog {
    async fn append(&self, record: &AuditRecord) -> Result<(), AuditError> {
        let value = serde_json::to_value(record).expect("an audit record serialises");
        let name = archive_name(self.clock.now());
        self.with(|(current, archives)| {
            if current.len() >= self.rotation {
                let unique = unique_archive_name(name, |n| {
                    archives.iter().any(|(existing, _)| existing == n)
                });
                archives.insert(0, (unique, std::mem::take(current)));
            }
            current.push(value);
        });
        Ok(())
    }

    async fn files(&self) -> Result<Vec<String>, AuditError> {
        Ok(self.with(|files| Self::names(files)))
    }

    async fn page(&self, query: &LogQuery) -> Result<LogPage, AuditError> {
        Ok(self.with(|files| {
            let names = Self::names(files);
            let name = if query.file == LEGACY_FILE {
                CURRENT_FILE
            } else {
                query.file.as_str()
            };
            if name == CURRENT_FILE {
                return paginate(&files.0, query, names);
            }
            match files.1.iter().find(|(n, _)| n == name) {
                Some((_, records)) => paginate(records, query, names),
                None => unknown_file(query, names),
            }
        }))
    }

    async fn stats(&self) -> Result<LogStats, AuditError> {
        Ok(self.with(|(current, archives)| {
            let parts: Vec<Aggregate> = std::iter::once(&*current)
                .chain(archives.iter().map(|(_, r)| r))
                .map(|r| Aggregate::of(r))
                .collect();
            combine(parts.iter())
        }))
    }

    async fn recent_solve_times(&self, n: usize) -> Result<Vec<f64>, AuditError> {
        Ok(self.with(|(current, archives)| {
            let mut times: Vec<f64> = std::iter::once(&*current)
                .chain(archives.iter().map(|(_, r)| r))
                .flat_map(|records| records.iter().rev())
                .filter_map(|r| r.get("solve_time").and_then(Value::as_f64))
                .filter(|t| *t > 0.0)
                .take(n)
                .collect();
            times.reverse();
            times
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FakeClock;

    fn record(i: u64, visitor: &str, solve_time: Option<f64>, difficulty: u32) -> AuditRecord {
        AuditRecord {
            timestamp: format!("2026-01-01T00:00:{i:02}.000000"),
            invite_code: format!("HASHPASS-{i}"),
            visitor_id: visitor.into(),
            nonce: i,
            hash: "00ff".into(),
            seed: "seed".into(),
            real_ip: "1.2.3.4".into(),
            trace_data: "ip=1.2.3.4".into(),
            difficulty,
            solve_time,
            new_difficulty: difficulty,
            adjustment_reason: "EMA".into(),
        }
    }

    fn query(page: u32, per_page: u32, search: &str, file: &str) -> LogQuery {
        LogQuery {
            page,
            per_page,
            search: search.into(),
            file: file.into(),
        }
    }

    fn temp_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "hashpass-audit-{}",
            hex::encode(crate::util::random_bytes::<6>())
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    async fn paging_and_stats(log: &dyn AuditLog) {
        for i in 0..7 {
            log.append(&record(
                i,
                &format!("v{}", i % 3),
                Some(i as f64),
                4 + (i % 2) as u32,
            ))
            .await
            .unwrap();
        }
        let page = log.page(&query(1, 3, "", "verify.jsonl")).await.unwrap();
        assert_eq!((page.total, page.pages, page.records.len()), (7, 3, 3));
        assert_eq!(page.records[0]["nonce"], 6, "newest first");
        let last = log.page(&query(3, 3, "", "verify.json")).await.unwrap();
        assert_eq!(last.records.len(), 1);
        assert_eq!(last.records[0]["nonce"], 0);
        let found = log
            .page(&query(1, 50, "hashpass-5", "verify.jsonl"))
            .await
            .unwrap();
        assert_eq!((found.total, found.pages), (1, 1));
        let none = log
            .page(&query(1, 50, "nothing-matches", "verify.jsonl"))
            .await
            .unwrap();
        assert_eq!((none.total, none.pages), (0, 1));
        let unknown = log.page(&query(1, 50, "", "../etc/passwd")).await.unwrap();
        assert_eq!(
            (unknown.total, unknown.pages, unknown.records.len()),
            (0, 0, 0)
        );
        let stats = log.stats().await.unwrap();
        assert_eq!((stats.total_codes, stats.unique_visitors), (7, 3));
        // Solve times 1..6 (0 skipped): mean 3.5, upper median 4.
        assert_eq!(
            (stats.avg_solve_time, stats.median_solve_time),
            (Some(3.5), Some(4.0))
        );
        assert_eq!(stats.difficulty_distribution.get("4"), Some(&4));
        assert_eq!(
            log.recent_solve_times(3).await.unwrap(),
            vec![4.0, 5.0, 6.0]
        );
    }

    #[tokio::test]
    async fn memory_log_pages_and_counts() {
        paging_and_stats(&MemoryAuditLog::default()).await;
    }

    #[tokio::test]
    async fn file_log_pages_and_counts() {
        let dir = temp_dir();
        paging_and_stats(&FileAuditLog::open(&dir).unwrap()).await;
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn rotation_archives_and_caches() {
        let dir = temp_dir();
        let clock = FakeClock::default();
        let log = FileAuditLog::open(&dir)
            .unwrap()
            .with_rotation(3)
            .with_clock(Arc::new(clock.clone()));
        for i in 0..8 {
            clock.advance_secs(1.0);
            log.append(&record(i, "v", Some(1.0 + i as f64), 5))
                .await
                .unwrap();
        }
        let files = log.files().await.unwrap();
        assert_eq!(files.len(), 3, "{files:?}");
        assert_eq!(files[0], CURRENT_FILE);
        assert!(files[1] > files[2] && files[1..].iter().all(|f| is_archive_name(f)));
        let oldest = log.page(&query(1, 10, "", &files[2])).await.unwrap();
        assert_eq!(
            oldest
                .records
                .iter()
                .map(|r| r["nonce"].as_u64().unwrap())
                .collect::<Vec<_>>(),
            vec![2, 1, 0]
        );
        assert_eq!(
            log.page(&query(1, 10, "", CURRENT_FILE))
                .await
                .unwrap()
                .total,
            2
        );
        // Statistics span every file; archives are read at most once.
        assert_eq!(log.stats().await.unwrap().total_codes, 8);
        assert_eq!(log.stats().await.unwrap().total_codes, 8);
        assert_eq!(
            log.archive_reads(),
            0,
            "archives rotated by this process are already aggregated"
        );
        let reopened = FileAuditLog::open(&dir)
            .unwrap()
            .with_rotation(3)
            .with_clock(Arc::new(clock.clone()));
        assert_eq!(reopened.stats().await.unwrap().total_codes, 8);
        assert_eq!(reopened.archive_reads(), 2);
        reopened.stats().await.unwrap();
        assert_eq!(reopened.archive_reads(), 2, "cached");
        assert_eq!(
            reopened.recent_solve_times(5).await.unwrap(),
            vec![4.0, 5.0, 6.0, 7.0, 8.0]
        );
        // Counting continues after a restart: one more record completes the current file's 3...
        clock.advance_secs(1.0);
        reopened.append(&record(8, "v", None, 5)).await.unwrap();
        clock.advance_secs(1.0);
        reopened.append(&record(9, "v", None, 5)).await.unwrap();
        assert_eq!(reopened.files().await.unwrap().len(), 4);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn a_torn_last_line_is_skipped() {
        let dir = temp_dir();
        let log = FileAuditLog::open(&dir).unwrap();
        log.append(&record(1, "v", Some(2.0), 3)).await.unwrap();
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(dir.join(CURRENT_FILE))
            .unwrap();
        file.write_all(b"{\"timestamp\": \"2026-").unwrap();
        let reopened = FileAuditLog::open(&dir).unwrap();
        assert_eq!(
            reopened
                .page(&query(1, 10, "", CURRENT_FILE))
                .await
                .unwrap()
                .total,
            1
        );
        assert_eq!(reopened.stats().await.unwrap().total_codes, 1);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn archive_names() {
        assert!(is_archive_name("verify_20261122_153026_123.jsonl"));
        assert!(is_archive_name("verify_20261122_153026_123_002.jsonl"));
        assert!(!is_archive_name("verify_20261122_153026_123-2.jsonl"));
        assert!(
            unique_archive_name("verify_20261122_153026_123.jsonl".into(), |n| !n
                .contains("_00"))
            .as_str()
                > "verify_20261122_153026_123.jsonl"
        );
        assert!(!is_archive_name("verify_2026_153026_123.jsonl"));
        assert!(!is_archive_name("verify_20261122_153026_123.json"));
        assert!(!is_archive_name("../verify_20261122_153026_123.jsonl"));
        assert!(is_archive_name(&archive_name(1_767_225_600.5)));
    }
}
