//! Small shared helpers: randomness, atomic file writes, rounding.

use std::io::Write;
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Locks `mutex`, carrying on past a poisoned lock: no value guarded in this crate has an
/// invariant a panic can leave half-made (each update is one assignment or one collection call),
/// so one panicked request must not take every later one down with it.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// [`lock`] for reading an `RwLock`.
pub(crate) fn read_lock<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

/// [`lock`] for writing an `RwLock`.
pub(crate) fn write_lock<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

/// Fills a fixed-size array with operating-system randomness.
pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).expect("the operating system's random source failed");
    buf
}

/// Runs blocking file I/O on the blocking pool, its error tagged with `path`.
pub(crate) async fn blocking_io<T: Send + 'static>(
    path: &Path,
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T, crate::error::StoreError> {
    use crate::error::StoreError;
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::io(path, &std::io::Error::other(e)))?
        .map_err(|e| StoreError::io(path, &e))
}

/// Writes `contents` to `path` atomically: a temp file beside it, fsync, rename, fsync the directory.
/// A crash leaves either the old file or the new one, never a torn mix. The file is private
/// (0600, [`crate::private_files`]) whatever the mode of the one it replaces, and a missing
/// directory is created 0700.
pub(crate) fn write_atomic(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    crate::private_files::create_dir(dir)?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "state".into());
    let tmp = dir.join(format!(
        ".{file_name}.{}.tmp",
        hex::encode(random_bytes::<6>())
    ));
    let result = (|| {
        let mut file = crate::private_files::create_new(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, path)?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Rounds to `dp` decimal places (half away from zero, as the wire figures only display).
pub(crate) fn round_dp(value: f64, dp: i32) -> f64 {
    let factor = 10f64.powi(dp);
    (value * factor).round() / factor
}

/// The local date and time of a Unix timestamp (UTC when the local offset is unknown).
pub(crate) fn local_datetime(unix_seconds: f64) -> time::OffsetDateTime {
    let nanos = (unix_seconds * 1e9) as i128;
    let utc = time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let offset = time::UtcOffset::local_offset_at(utc).unwrap_or(time::UtcOffset::UTC);
    utc.to_offset(offset)
}

/// Local ISO-8601 time without zone and with microseconds (`2026-11-22T15:30:26.123456`),
/// the audit log's timestamp format.
pub(crate) fn local_timestamp(unix_seconds: f64) -> String {
    const FORMAT: &[time::format_description::BorrowedFormatItem<'_>] = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]"
    );
    local_datetime(unix_seconds)
        .format(FORMAT)
        .unwrap_or_default()
}
