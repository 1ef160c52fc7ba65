//! The winners' audit trail (docs/protocol.md#audit-log, with docs/protocol.md#files): `verify.jsonl` in the data
//! directory, one JSON record per line, appended and fsynced before the winner hears back;
//! rotated at 1000 records to `verify_<YYYYMMDD_HHMMSS_mmm>.jsonl`.
//!
//! Archives never change once written, so their statistics are computed once and cached; the
//! current file's are kept up to date on append. A torn last line (a crash mid-write) is skipped
//! when reading, and the next record starts on a line of its own.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::clock::{SharedClock, SystemClock};
use crate::error::StoreError;
use crate::util::{blocking_io, local_datetime, lock, round_dp, write_atomic};

/// The current file's name.
pub const CURRENT_FILE: &str = "verify.jsonl";
/// The original's name for it, accepted as an alias.
pub const LEGACY_FILE: &str = "verify.json";
/// Records per file before rotation.
pub const DEFAULT_ROTATION: usize = 1000;

/// One invite handed out. Reading tolerates unknown fields and fills missing ones with defaults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AuditRecord {
    /// Local time, ISO-8601 without zone (`2026-11-22T15:30:26.123456`).
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

/// The default audit log: [`FileAuditLog`] in `disk` when the instance keeps files there, else
/// [`MemoryAuditLog`], rotating as `config` says, on `clock`.
pub fn from_config(
    config: &crate::config::AdminConfig,
    disk: Option<&Path>,
    clock: SharedClock,
) -> Result<Arc<dyn AuditLog>, StoreError> {
    Ok(match disk {
        Some(dir) => Arc::new(
            FileAuditLog::open(dir)?
                .with_rotation(config.audit_rotation)
                .with_clock(clock),
        ),
        None => Arc::new(
            MemoryAuditLog::default()
                .with_rotation(config.audit_rotation)
                .with_clock(clock),
        ),
    })
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
    /// File name from [`AuditLog::files`] (or `verify.json`, the current file's old name).
    pub file: String,
}

/// One record exactly as the log holds it: every field it was written with, in its order,
/// including those of records older versions wrote (which may lack fields or have others).
///
/// It serialises as the JSON object it wraps, untouched; [`LoggedRecord::invite_code`] reads the
/// one field the admin side needs. A stored entry that is not a JSON object (a torn or foreign
/// line) is skipped when read, in every backend.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(transparent)]
pub struct LoggedRecord(Map<String, Value>);

/// What indexing a missing field gives.
static MISSING: Value = Value::Null;

impl LoggedRecord {
    /// The record an append writes.
    pub(crate) fn from_record(record: &AuditRecord) -> Self {
        match serde_json::to_value(record) {
            Ok(Value::Object(fields)) => Self(fields),
            _ => panic!("an audit record serialises as a JSON object"),
        }
    }

    /// A stored JSON text (a file's line, a stream entry), if it is a JSON object.
    pub(crate) fn from_json(json: &str) -> Option<Self> {
        serde_json::from_str(json).ok().map(Self)
    }

    /// The invite code, when the record has one as a string.
    pub fn invite_code(&self) -> Option<&str> {
        self.get("invite_code").and_then(Value::as_str)
    }

    /// The field `key`, if the record has it.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key)
    }

    /// Every field, in the stored order.
    pub fn fields(&self) -> &Map<String, Value> {
        &self.0
    }

    /// The record's solve time, when it is positive.
    fn positive_solve_time(&self) -> Option<f64> {
        self.get("solve_time")
            .and_then(Value::as_f64)
            .filter(|t| *t > 0.0)
    }
}

/// The field `key`, or `null` when the record lacks it (as indexing a [`Value`] does).
impl std::ops::Index<&str> for LoggedRecord {
    type Output = Value;

    fn index(&self, key: &str) -> &Value {
        self.0.get(key).unwrap_or(&MISSING)
    }
}

/// The record as compact JSON, as it is stored.
impl std::fmt::Display for LoggedRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let json = serde_json::to_string(&self.0).map_err(|_| std::fmt::Error)?;
        f.write_str(&json)
    }
}

/// A page of records, newest first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogPage {
    /// The records.
    pub records: Vec<LoggedRecord>,
    /// Matching records in the file.
    pub total: u64,
    /// This page.
    pub page: u32,
    /// Number of pages: at least 1, or 0 for an unknown file.
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
    /// Mean solve time (2 dp); zero and null skipped.
    pub avg_solve_time: Option<f64>,
    /// Upper median solve time (2 dp); zero and null skipped.
    pub median_solve_time: Option<f64>,
    /// Records per difficulty (zero skipped).
    pub difficulty_distribution: BTreeMap<String, u64>,
}

/// The audit trail.
#[async_trait]
pub trait AuditLog: Send + Sync + 'static {
    /// Appends a record durably.
    async fn append(&self, record: &AuditRecord) -> Result<(), StoreError>;
    /// Every file, current first, then archives newest first.
    async fn files(&self) -> Result<Vec<String>, StoreError>;
    /// A page of one file.
    async fn page(&self, query: &LogQuery) -> Result<LogPage, StoreError>;
    /// Statistics over every file.
    async fn stats(&self) -> Result<LogStats, StoreError>;
    /// The solve times (positive ones) of the last ≤`n` such records, oldest first; seeds the
    /// difficulty average at start-up.
    async fn recent_solve_times(&self, n: usize) -> Result<Vec<f64>, StoreError>;
}

/// `records` as JSONL, the `verify.jsonl` format: one compact JSON object per line, each ending
/// in a newline.
pub fn to_jsonl(records: &[LoggedRecord]) -> String {
    let mut text = String::new();
    for record in records {
        text.push_str(&record.to_string());
        text.push('\n');
    }
    text
}

/// Writes `records` to `path` as JSONL ([`to_jsonl`]) atomically: a temporary file beside it,
/// fsynced, then renamed over it, so a reader sees the old file or the whole new one.
pub async fn write_jsonl(path: &Path, records: &[LoggedRecord]) -> Result<(), StoreError> {
    let text = to_jsonl(records);
    let target = path.to_path_buf();
    blocking_io(path, move || write_atomic(&target, text.as_bytes())).await
}

/// Every record of `log`, oldest first: the archives from the oldest, then the current file,
/// each record exactly as stored — the records [`AuditLog::page`] lists over all of
/// [`AuditLog::files`] (without the `redemption` field the admin endpoint adds), in the order
/// they were appended. For exports (`hashpass-server export-audit`); it only reads.
///
/// A rotation while it reads would move records out of the files listed at the start, so the
/// files are listed again afterwards and the read is repeated (up to three times) until the list
/// held still.
pub async fn all_records(log: &dyn AuditLog) -> Result<Vec<LoggedRecord>, StoreError> {
    let mut files = log.files().await?;
    let mut attempts = 0;
    loop {
        let mut records = Vec::new();
        for file in files.iter().rev() {
            let query = LogQuery {
                page: 1,
                per_page: u32::MAX,
                search: String::new(),
                file: file.clone(),
            };
            records.extend(log.page(&query).await?.records.into_iter().rev());
        }
        attempts += 1;
        let now = log.files().await?;
        if now == files || attempts == 3 {
            return Ok(records);
        }
        files = now;
    }
}

/// The statistics' ingredients for a set of records.
#[derive(Debug, Clone, Default)]
struct Aggregate {
    count: u64,
    visitors: HashSet<String>,
    solve_times: Vec<f64>,
    difficulties: BTreeMap<u64, u64>,
}

impl Aggregate {
    fn of(records: &[LoggedRecord]) -> Self {
        let mut aggregate = Self::default();
        records.iter().for_each(|r| aggregate.add(r));
        aggregate
    }

    fn add(&mut self, record: &LoggedRecord) {
        self.count += 1;
        if let Some(visitor) = record.get("visitor_id").and_then(Value::as_str) {
            self.visitors.insert(visitor.to_string());
        }
        self.solve_times.extend(record.positive_solve_time());
        if let Some(d) = record
            .get("difficulty")
            .and_then(Value::as_u64)
            .filter(|d| *d > 0)
        {
            *self.difficulties.entry(d).or_default() += 1;
        }
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

/// The file a query names, with the original's `verify.json` read as the current file.
fn requested_file(query: &LogQuery) -> &str {
    if query.file == LEGACY_FILE {
        CURRENT_FILE
    } else {
        &query.file
    }
}

/// A page of `records` (oldest first in the input), newest first in the output.
pub(crate) fn paginate(records: &[LoggedRecord], query: &LogQuery, files: Vec<String>) -> LogPage {
    let needle = query.search.to_lowercase();
    let matching: Vec<&LoggedRecord> = records
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

/// The answer for a file that does not exist.
pub(crate) fn unknown_file(query: &LogQuery, files: Vec<String>) -> LogPage {
    LogPage {
        records: Vec::new(),
        total: 0,
        page: query.page,
        pages: 0,
        files,
    }
}

/// Whether `name` is an archive name: `verify_YYYYMMDD_HHMMSS_mmm.jsonl`, or with a `_NNN`
/// suffix when two rotations fall in the same millisecond. Nothing else (no path) passes.
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

/// The archive name for a rotation at `unix_seconds`, local time.
fn archive_name(unix_seconds: f64) -> String {
    use time::format_description::BorrowedFormatItem;
    const FORMAT: &[BorrowedFormatItem<'_>] = time::macros::format_description!(
        "verify_[year][month][day]_[hour][minute][second]_[subsecond digits:3].jsonl"
    );
    local_datetime(unix_seconds)
        .format(FORMAT)
        .unwrap_or_default()
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

/// Records of a JSONL text; lines that are not JSON objects (a torn tail) are skipped.
fn parse_lines(text: &str) -> Vec<LoggedRecord> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(LoggedRecord::from_json)
        .collect()
}

/// The file's bytes; a missing file is empty.
fn read_bytes(path: &Path) -> std::io::Result<Vec<u8>> {
    match std::fs::read(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        other => other,
    }
}

fn read_records(path: &Path) -> std::io::Result<Vec<LoggedRecord>> {
    Ok(parse_lines(&String::from_utf8_lossy(&read_bytes(path)?)))
}

/// Makes a new or renamed directory entry durable (best effort, as `write_atomic` does).
fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// What is known about the current file once read.
#[derive(Debug, Default)]
struct CurrentFile {
    aggregate: Aggregate,
    /// The file ends without a newline (a torn write): the next record starts a new line.
    ends_mid_line: bool,
}

#[derive(Debug, Default)]
struct FileState {
    /// The current file, read lazily once, then kept up to date by appends.
    current: Option<CurrentFile>,
    /// Each archive's aggregate with the file size it was computed at.
    archives: HashMap<String, (u64, Aggregate)>,
}

/// The audit log as files in a directory.
pub struct FileAuditLog {
    dir: PathBuf,
    rotation: usize,
    clock: SharedClock,
    /// Serialises appends and guards the cached aggregates.
    state: tokio::sync::Mutex<FileState>,
}

impl std::fmt::Debug for FileAuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileAuditLog")
            .field("dir", &self.dir)
            .field("rotation", &self.rotation)
            .finish_non_exhaustive()
    }
}

impl FileAuditLog {
    /// The log in `dir` (created 0700 if missing); its files, which hold codes and addresses,
    /// are tightened to 0600 ([`crate::private_files`]) if they were looser.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let dir = dir.into();
        crate::private_files::create_dir(&dir)
            .and_then(|()| {
                crate::private_files::tighten_files_in(&dir, |name| {
                    name == CURRENT_FILE || is_archive_name(name)
                })
            })
            .map_err(|e| StoreError::io(&dir, &e))?;
        Ok(Self {
            dir,
            rotation: DEFAULT_ROTATION,
            clock: Arc::new(SystemClock),
            state: tokio::sync::Mutex::default(),
        })
    }

    /// Rotates once the current file holds `records` records (default 1000).
    pub fn with_rotation(mut self, records: usize) -> Self {
        self.rotation = records.max(1);
        self
    }

    /// Uses `clock` for archive names.
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    async fn read(&self, name: &str) -> Result<Vec<LoggedRecord>, StoreError> {
        let path = self.dir.join(name);
        blocking_io(&path.clone(), move || read_records(&path)).await
    }

    /// Archive names with their sizes, newest first.
    async fn archives(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let dir = self.dir.clone();
        let mut archives = blocking_io(&self.dir, move || {
            let mut archives = Vec::new();
            for entry in std::fs::read_dir(&dir)? {
                let entry = entry?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if is_archive_name(&name) {
                    archives.push((name, entry.metadata()?.len()));
                }
            }
            Ok(archives)
        })
        .await?;
        archives.sort_by(|a, b| b.0.cmp(&a.0));
        Ok(archives)
    }

    async fn current<'a>(
        &self,
        state: &'a mut FileState,
    ) -> Result<&'a mut CurrentFile, StoreError> {
        if state.current.is_none() {
            let path = self.dir.join(CURRENT_FILE);
            let bytes = blocking_io(&path.clone(), move || read_bytes(&path)).await?;
            state.current = Some(CurrentFile {
                aggregate: Aggregate::of(&parse_lines(&String::from_utf8_lossy(&bytes))),
                ends_mid_line: bytes.last().is_some_and(|b| *b != b'\n'),
            });
        }
        Ok(state.current.get_or_insert_default())
    }

    /// Renames the current file to a fresh archive name; returns the name and its size.
    async fn rotate(&self) -> Result<(String, u64), StoreError> {
        let dir = self.dir.clone();
        let name = archive_name(self.clock.now());
        blocking_io(&self.dir, move || {
            let name = unique_archive_name(name, |n| dir.join(n).exists());
            let target = dir.join(&name);
            std::fs::rename(dir.join(CURRENT_FILE), &target)?;
            sync_dir(&dir);
            let size = std::fs::metadata(&target)?.len();
            Ok((name, size))
        })
        .await
    }

    async fn write_line(&self, line: Vec<u8>) -> Result<(), StoreError> {
        let (dir, path) = (self.dir.clone(), self.dir.join(CURRENT_FILE));
        blocking_io(&path.clone(), move || {
            let mut file = crate::private_files::open_append(&path)?;
            let new_file = file.metadata()?.len() == 0;
            file.write_all(&line)?;
            file.sync_data()?;
            if new_file {
                sync_dir(&dir);
            }
            Ok(())
        })
        .await
    }
}

#[async_trait]
impl AuditLog for FileAuditLog {
    async fn append(&self, record: &AuditRecord) -> Result<(), StoreError> {
        let mut state = self.state.lock().await;
        if self.current(&mut state).await?.aggregate.count as usize >= self.rotation {
            let (name, size) = self.rotate().await?;
            let archived = state.current.take().unwrap_or_default().aggregate;
            state.archives.insert(name, (size, archived));
        }
        let current = self.current(&mut state).await?;
        let mut line = Vec::new();
        if current.ends_mid_line {
            line.push(b'\n');
        }
        serde_json::to_writer(&mut line, record).expect("an audit record serialises");
        line.push(b'\n');
        if let Err(e) = self.write_line(line).await {
            // Part of the line may be on disk: read the file afresh next time.
            state.current = None;
            return Err(e);
        }
        current.ends_mid_line = false;
        current.aggregate.add(&LoggedRecord::from_record(record));
        Ok(())
    }

    async fn files(&self) -> Result<Vec<String>, StoreError> {
        let archives = self.archives().await?;
        Ok(std::iter::once(CURRENT_FILE.to_string())
            .chain(archives.into_iter().map(|(name, _)| name))
            .collect())
    }

    async fn page(&self, query: &LogQuery) -> Result<LogPage, StoreError> {
        let files = self.files().await?;
        let name = requested_file(query);
        if !files.iter().any(|f| f == name) {
            return Ok(unknown_file(query, files));
        }
        Ok(paginate(&self.read(name).await?, query, files))
    }

    async fn stats(&self) -> Result<LogStats, StoreError> {
        let archives = self.archives().await?;
        let uncached: Vec<(String, u64)> = {
            let state = self.state.lock().await;
            archives
                .iter()
                .filter(|(name, size)| state.archives.get(name).is_none_or(|(s, _)| s != size))
                .cloned()
                .collect()
        };
        // Read outside the lock, so a first call over many archives never delays a winner.
        let mut computed = Vec::with_capacity(uncached.len());
        for (name, size) in uncached {
            let aggregate = Aggregate::of(&self.read(&name).await?);
            computed.push((name, (size, aggregate)));
        }
        let mut state = self.state.lock().await;
        state.archives.extend(computed);
        state
            .archives
            .retain(|name, _| archives.iter().any(|(a, _)| a == name));
        self.current(&mut state).await?;
        let state = &*state;
        Ok(combine(
            state
                .current
                .iter()
                .map(|c| &c.aggregate)
                .chain(state.archives.values().map(|(_, a)| a)),
        ))
    }

    async fn recent_solve_times(&self, n: usize) -> Result<Vec<f64>, StoreError> {
        let mut newest_first = Vec::new();
        for name in self.files().await? {
            if newest_first.len() >= n {
                break;
            }
            let records = self.read(&name).await?;
            newest_first.extend(
                records
                    .iter()
                    .rev()
                    .filter_map(LoggedRecord::positive_solve_time),
            );
        }
        newest_first.truncate(n);
        newest_first.reverse();
        Ok(newest_first)
    }
}

/// The in-memory files: the current records and the archives, newest first.
#[derive(Debug, Default)]
struct MemoryFiles {
    current: Vec<LoggedRecord>,
    archives: Vec<(String, Vec<LoggedRecord>)>,
}

impl MemoryFiles {
    fn names(&self) -> Vec<String> {
        std::iter::once(CURRENT_FILE.to_string())
            .chain(self.archives.iter().map(|(name, _)| name.clone()))
            .collect()
    }

    /// Every file's records, current first, then archives newest first.
    fn all(&self) -> impl Iterator<Item = &[LoggedRecord]> {
        std::iter::once(self.current.as_slice())
            .chain(self.archives.iter().map(|(_, records)| records.as_slice()))
    }
}

/// The audit log in memory, with the same rotation, paging and statistics as the files.
pub struct MemoryAuditLog {
    rotation: usize,
    clock: SharedClock,
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

impl MemoryAuditLog {
    /// Rotates once the current file holds `records` records (default 1000).
    pub fn with_rotation(mut self, records: usize) -> Self {
        self.rotation = records.max(1);
        self
    }

    /// Uses `clock` for archive names.
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    fn with<R>(&self, f: impl FnOnce(&mut MemoryFiles) -> R) -> R {
        f(&mut lock(&self.files))
    }
}

#[async_trait]
impl AuditLog for MemoryAuditLog {
    async fn append(&self, record: &AuditRecord) -> Result<(), StoreError> {
        let value = LoggedRecord::from_record(record);
        let name = archive_name(self.clock.now());
        self.with(|files| {
            if files.current.len() >= self.rotation {
                let name = unique_archive_name(name, |n| {
                    files.archives.iter().any(|(existing, _)| existing == n)
                });
                let archived = std::mem::take(&mut files.current);
                files.archives.insert(0, (name, archived));
            }
            files.current.push(value);
        });
        Ok(())
    }

    async fn files(&self) -> Result<Vec<String>, StoreError> {
        Ok(self.with(|files| files.names()))
    }

    async fn page(&self, query: &LogQuery) -> Result<LogPage, StoreError> {
        Ok(self.with(|files| {
            let name = requested_file(query);
            let records = if name == CURRENT_FILE {
                Some(&files.current)
            } else {
                files
                    .archives
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, r)| r)
            };
            match records {
                Some(records) => paginate(records, query, files.names()),
                None => unknown_file(query, files.names()),
            }
        }))
    }

    async fn stats(&self) -> Result<LogStats, StoreError> {
        Ok(self.with(|files| {
            let parts: Vec<Aggregate> = files.all().map(Aggregate::of).collect();
            combine(parts.iter())
        }))
    }

    async fn recent_solve_times(&self, n: usize) -> Result<Vec<f64>, StoreError> {
        Ok(self.with(|files| {
            let mut times: Vec<f64> = files
                .all()
                .flat_map(|records| records.iter().rev())
                .filter_map(LoggedRecord::positive_solve_time)
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

    fn nonces(page: &LogPage) -> Vec<u64> {
        page.records
            .iter()
            .map(|r| r["nonce"].as_u64().unwrap())
            .collect()
    }

    #[tokio::test]
    async fn jsonl_exports_are_written_whole() {
        let dir = temp_dir();
        let path = dir.join("export.jsonl");
        let records: Vec<LoggedRecord> = ["{\"a\": 1}", "{\"b\": [1, 2]}"]
            .iter()
            .filter_map(|json| LoggedRecord::from_json(json))
            .collect();
        write_jsonl(&path, &records[..1]).await.unwrap();
        write_jsonl(&path, &records).await.unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"a\":1}\n{\"b\":[1,2]}\n"
        );
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            1,
            "no temporary file left"
        );
        assert_eq!(to_jsonl(&[]), "");
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn temp_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "hashpass-audit-{}",
            hex::encode(crate::util::random_bytes::<6>())
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn fake_clock() -> (FakeClock, SharedClock) {
        let clock = FakeClock::default();
        let shared: SharedClock = Arc::new(clock.clone());
        (clock, shared)
    }

    /// Seven records: nonce i, visitor v(i%3), solve time i (0 → skipped), difficulty 4 or 5.
    async fn pages_and_searches(log: &dyn AuditLog) {
        for i in 0..7 {
            let r = record(
                i,
                &format!("v{}", i % 3),
                Some(i as f64),
                4 + (i % 2) as u32,
            );
            log.append(&r).await.unwrap();
        }
        let first = log.page(&query(1, 3, "", CURRENT_FILE)).await.unwrap();
        assert_eq!((first.total, first.page, first.pages), (7, 1, 3));
        assert_eq!(nonces(&first), vec![6, 5, 4], "newest first");
        assert_eq!(first.files, vec![CURRENT_FILE]);
        let last = log.page(&query(3, 3, "", LEGACY_FILE)).await.unwrap();
        assert_eq!((nonces(&last), last.page, last.pages), (vec![0], 3, 3));
        let beyond = log.page(&query(9, 3, "", CURRENT_FILE)).await.unwrap();
        assert_eq!((beyond.records.len(), beyond.total), (0, 7));

        let found = log.page(&query(1, 50, "hashpass-5", CURRENT_FILE)).await;
        let found = found.unwrap();
        assert_eq!((nonces(&found), found.pages), (vec![5], 1));
        let by_visitor = log.page(&query(1, 50, "\"V1\"", CURRENT_FILE)).await;
        assert_eq!(nonces(&by_visitor.unwrap()), vec![4, 1]);
        let none = log.page(&query(1, 50, "no-such-thing", CURRENT_FILE)).await;
        let none = none.unwrap();
        assert_eq!((none.total, none.pages), (0, 1), "at least one page");

        for file in ["../verify.jsonl", "/etc/passwd", "verify_x.jsonl", ""] {
            let unknown = log.page(&query(2, 50, "", file)).await.unwrap();
            assert_eq!(
                (
                    unknown.records.len(),
                    unknown.total,
                    unknown.page,
                    unknown.pages
                ),
                (0, 0, 2, 0),
                "{file}"
            );
            assert_eq!(unknown.files, vec![CURRENT_FILE]);
        }
    }

    #[tokio::test]
    async fn memory_log_pages_and_searches() {
        pages_and_searches(&MemoryAuditLog::default()).await;
    }

    #[tokio::test]
    async fn file_log_pages_and_searches() {
        let dir = temp_dir();
        pages_and_searches(&FileAuditLog::open(&dir).unwrap()).await;
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// Statistics skip zero and null solve times and zero difficulties; the median is the upper.
    async fn counts(log: &dyn AuditLog) {
        let records = [
            record(1, "a", Some(0.0), 4),
            record(2, "b", None, 4),
            record(3, "a", Some(3.0), 0),
            record(4, "c", Some(1.004), 5),
            record(5, "a", Some(2.0), 4),
            record(6, "b", Some(10.0), 12),
        ];
        for r in &records {
            log.append(r).await.unwrap();
        }
        let stats = log.stats().await.unwrap();
        assert_eq!((stats.total_codes, stats.unique_visitors), (6, 3));
        // Solve times 1.004, 2, 3, 10: mean 4.001 → 4.0; upper median 3.
        assert_eq!(stats.avg_solve_time, Some(4.0));
        assert_eq!(stats.median_solve_time, Some(3.0));
        let expected = [("12", 1), ("4", 3), ("5", 1)].map(|(d, n)| (d.to_string(), n));
        assert_eq!(stats.difficulty_distribution, BTreeMap::from(expected));
        assert_eq!(
            serde_json::to_value(&stats).unwrap()["difficulty_distribution"]["4"],
            3
        );
        assert_eq!(
            log.recent_solve_times(3).await.unwrap(),
            vec![1.004, 2.0, 10.0]
        );
        assert!(log.recent_solve_times(0).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn memory_log_counts() {
        counts(&MemoryAuditLog::default()).await;
        let empty = MemoryAuditLog::default().stats().await.unwrap();
        assert_eq!((empty.total_codes, empty.avg_solve_time), (0, None));
        assert_eq!(empty.median_solve_time, None);
    }

    #[tokio::test]
    async fn file_log_counts() {
        let dir = temp_dir();
        counts(&FileAuditLog::open(&dir).unwrap()).await;
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// Eight records at a rotation of 3: archives [0,1,2] and [3,4,5], current [6,7].
    async fn rotates(log: &dyn AuditLog, clock: &FakeClock) {
        for i in 0..8 {
            clock.advance_secs(1.0);
            log.append(&record(i, "v", Some(1.0 + i as f64), 5))
                .await
                .unwrap();
        }
        let files = log.files().await.unwrap();
        assert_eq!(files.len(), 3, "{files:?}");
        assert_eq!(files[0], CURRENT_FILE);
        assert!(files[1] > files[2], "archives newest first: {files:?}");
        assert!(files[1..].iter().all(|f| is_archive_name(f)));
        let oldest = log.page(&query(1, 2, "", &files[2])).await.unwrap();
        assert_eq!(
            (nonces(&oldest), oldest.total, oldest.pages),
            (vec![2, 1], 3, 2)
        );
        assert_eq!(oldest.files, files);
        let newer = log.page(&query(1, 10, "", &files[1])).await.unwrap();
        assert_eq!(nonces(&newer), vec![5, 4, 3]);
        let current = log.page(&query(1, 10, "", LEGACY_FILE)).await.unwrap();
        assert_eq!(nonces(&current), vec![7, 6]);
        assert_eq!(log.stats().await.unwrap().total_codes, 8);
        assert_eq!(
            log.recent_solve_times(4).await.unwrap(),
            vec![5.0, 6.0, 7.0, 8.0],
            "across a rotation"
        );
        assert_eq!(log.recent_solve_times(100).await.unwrap().len(), 8);
    }

    #[tokio::test]
    async fn memory_log_rotates() {
        let (clock, shared) = fake_clock();
        rotates(
            &MemoryAuditLog::default()
                .with_rotation(3)
                .with_clock(shared),
            &clock,
        )
        .await;
    }

    #[tokio::test]
    async fn file_log_rotates() {
        let dir = temp_dir();
        let (clock, shared) = fake_clock();
        let log = FileAuditLog::open(&dir)
            .unwrap()
            .with_rotation(3)
            .with_clock(shared);
        rotates(&log, &clock).await;
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// `all_records` reads every file, oldest first, in append order (memory and files alike).
    async fn lists_all_records_oldest_first(log: &dyn AuditLog, clock: &FakeClock) {
        assert!(all_records(log).await.unwrap().is_empty());
        for i in 0..8 {
            clock.advance_secs(1.0);
            log.append(&record(i, "v", Some(1.0), 5)).await.unwrap();
        }
        assert_eq!(log.files().await.unwrap().len(), 3, "two archives");
        let all = all_records(log).await.unwrap();
        let nonces: Vec<u64> = all.iter().map(|r| r["nonce"].as_u64().unwrap()).collect();
        assert_eq!(nonces, (0..8).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn all_records_spans_every_file() {
        let (clock, shared) = fake_clock();
        let memory = MemoryAuditLog::default()
            .with_rotation(3)
            .with_clock(shared);
        lists_all_records_oldest_first(&memory, &clock).await;
        let dir = temp_dir();
        let (clock, shared) = fake_clock();
        let files = FileAuditLog::open(&dir)
            .unwrap()
            .with_rotation(3)
            .with_clock(shared);
        lists_all_records_oldest_first(&files, &clock).await;
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn rotations_in_the_same_millisecond_get_distinct_names() {
        let dir = temp_dir();
        let (_, shared) = fake_clock();
        let log = FileAuditLog::open(&dir)
            .unwrap()
            .with_rotation(1)
            .with_clock(shared);
        for i in 0..4 {
            log.append(&record(i, "v", Some(1.0), 5)).await.unwrap();
        }
        let files = log.files().await.unwrap();
        assert_eq!(files.len(), 4, "{files:?}");
        let mut archived = Vec::new();
        for file in &files[1..] {
            archived.extend(nonces(&log.page(&query(1, 10, "", file)).await.unwrap()));
        }
        assert_eq!(archived, vec![2, 1, 0], "name order is rotation order");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn a_restart_continues_the_count_and_reads_archives_once() {
        let dir = temp_dir();
        let (clock, shared) = fake_clock();
        let open = || {
            FileAuditLog::open(&dir)
                .unwrap()
                .with_rotation(3)
                .with_clock(Arc::clone(&shared))
        };
        let log = open();
        for i in 0..5 {
            clock.advance_secs(1.0);
            log.append(&record(i, &format!("v{i}"), Some(1.0), 5))
                .await
                .unwrap();
        }
        drop(log);

        let reopened = open();
        assert_eq!(reopened.stats().await.unwrap().unique_visitors, 5);
        // Archives are immutable: an edit that keeps the size is not seen, the cache answers.
        let archive = dir.join(&reopened.files().await.unwrap()[1]);
        let text = std::fs::read_to_string(&archive).unwrap();
        std::fs::write(&archive, text.replace("\"v0\"", "\"v1\"")).unwrap();
        assert_eq!(reopened.stats().await.unwrap().unique_visitors, 5, "cached");
        assert_eq!(
            open().stats().await.unwrap().unique_visitors,
            4,
            "fresh read"
        );

        // The current file holds 2 records: one more fills it, the next one rotates.
        clock.advance_secs(1.0);
        reopened.append(&record(5, "v5", None, 5)).await.unwrap();
        assert_eq!(reopened.files().await.unwrap().len(), 2);
        clock.advance_secs(1.0);
        reopened.append(&record(6, "v6", None, 5)).await.unwrap();
        assert_eq!(reopened.files().await.unwrap().len(), 3);
        assert_eq!(reopened.stats().await.unwrap().total_codes, 7);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn a_torn_last_line_is_skipped_and_the_next_record_kept() {
        let dir = temp_dir();
        let log = FileAuditLog::open(&dir).unwrap();
        log.append(&record(1, "v", Some(2.0), 3)).await.unwrap();
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(dir.join(CURRENT_FILE))
            .unwrap();
        file.write_all(b"{\"timestamp\": \"2026-").unwrap();

        let reopened = FileAuditLog::open(&dir).unwrap();
        let page = reopened
            .page(&query(1, 10, "", CURRENT_FILE))
            .await
            .unwrap();
        assert_eq!(nonces(&page), vec![1]);
        assert_eq!(reopened.stats().await.unwrap().total_codes, 1);
        reopened
            .append(&record(2, "v", Some(3.0), 3))
            .await
            .unwrap();
        let page = reopened
            .page(&query(1, 10, "", CURRENT_FILE))
            .await
            .unwrap();
        assert_eq!(
            nonces(&page),
            vec![2, 1],
            "the new record is not glued to the torn one"
        );
        assert_eq!(reopened.stats().await.unwrap().total_codes, 2);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn file_records_are_shown_as_stored() {
        let dir = temp_dir();
        // An older version's record: other fields, another order, a number as the code.
        let old = r#"{"zeta":1,"invite_code":"HASHPASS-OLD","nested":{"b":2,"a":1},"alpha":null}"#;
        let odd = r#"{"invite_code":7}"#;
        let text = format!("{old}\n[1,2]\n\"text\"\n{odd}\n");
        std::fs::write(dir.join(CURRENT_FILE), text).unwrap();
        let log = FileAuditLog::open(&dir).unwrap();
        let page = log.page(&query(1, 10, "", CURRENT_FILE)).await.unwrap();
        assert_eq!(page.total, 2, "lines that are not objects are skipped");
        let shown: Vec<String> = page
            .records
            .iter()
            .map(|r| serde_json::to_string(r).unwrap())
            .collect();
        assert_eq!(shown, [odd, old]);
        assert_eq!(page.records[1].to_string(), old);
        assert_eq!(page.records[1].invite_code(), Some("HASHPASS-OLD"));
        assert_eq!(page.records[0].invite_code(), None, "not a string");
        assert_eq!(page.records[1]["zeta"], 1);
        assert_eq!(page.records[1]["missing"], Value::Null);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn appended_records_keep_the_field_order() {
        let full = record(3, "v", Some(1.5), 4);
        let logged = LoggedRecord::from_record(&full);
        assert_eq!(
            serde_json::to_string(&logged).unwrap(),
            serde_json::to_string(&full).unwrap()
        );
        assert_eq!(logged.invite_code(), Some("HASHPASS-3"));
    }

    #[test]
    fn records_read_tolerantly() {
        let r: AuditRecord = serde_json::from_str(
            r#"{"invite_code": "HASHPASS-1", "solve_time": null, "extra": 1}"#,
        )
        .unwrap();
        assert_eq!(
            (r.invite_code.as_str(), r.nonce, r.solve_time),
            ("HASHPASS-1", 0, None)
        );
        let full = record(3, "v", Some(1.5), 4);
        let line = serde_json::to_string(&full).unwrap();
        assert_eq!(serde_json::from_str::<AuditRecord>(&line).unwrap(), full);
    }

    #[test]
    fn only_archive_names_pass() {
        assert!(is_archive_name("verify_20261122_153026_123.jsonl"));
        assert!(is_archive_name("verify_20261122_153026_123_002.jsonl"));
        assert!(is_archive_name(&archive_name(1_767_225_600.5)));
        for bad in [
            "verify_20261122_153026_123-2.jsonl",
            "verify_2026_153026_123.jsonl",
            "verify_20261122_153026_123.json",
            "verify_20261122_153026.jsonl",
            "../verify_20261122_153026_123.jsonl",
            "verify_20261122_153026_123.jsonl/..",
            "verify.jsonl",
        ] {
            assert!(!is_archive_name(bad), "{bad}");
        }
        let taken = [
            "verify_20261122_153026_123.jsonl",
            "verify_20261122_153026_123_001.jsonl",
        ];
        let unique = unique_archive_name(taken[0].into(), |n| taken.contains(&n));
        assert_eq!(unique, "verify_20261122_153026_123_002.jsonl");
        assert!(
            unique.as_str() > taken[1] && taken[1] > taken[0],
            "sorts after"
        );
    }
}
