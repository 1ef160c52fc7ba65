//! The application log's files: one a day, `hashpass.log.YYYY-MM-DD` in the log directory (UTC
//! days, 30 kept), each capped in size (`HASHPASS_LOG_MAX_FILE_MB`). Once a day's file is full,
//! one notice line says so and the rest of that day's lines go to standard output only; the next
//! day starts a new file. So the files never hold more than 30 × the cap, whatever a client
//! makes the server log.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use hashpass::applog::LOG_FILE_PREFIX;
use tracing_appender::rolling::{Builder, RollingFileAppender, Rotation};

use crate::LogFormat;

/// Daily log files kept.
pub const LOG_FILES_KEPT: usize = 30;

/// Room kept at the end of a full file for the notice line (which is shorter).
const NOTICE_ROOM: u64 = 512;

/// The daily files, with each day's bytes capped.
#[derive(Debug)]
pub struct CappedDailyLog {
    files: RollingFileAppender,
    dir: PathBuf,
    format: LogFormat,
    max_file_bytes: u64,
    /// The UTC day (days since the Unix epoch) of the file being written.
    day: u64,
    /// Bytes in that day's file.
    written: u64,
    /// Whether that day's file is full (its notice written).
    full: bool,
    /// Whether that day's file was made private (0600: the logs name client addresses) since
    /// it was opened or created.
    private: bool,
}

impl CappedDailyLog {
    /// The daily files in `dir`, at most `max_file_bytes` each (at least room for the notice);
    /// today's file, if it exists, counts with what it already holds. The logs name client
    /// addresses and sessions: `dir` is made private (0700), the files already in it 0600, and
    /// each day's file 0600 once it exists.
    pub fn open(dir: &Path, format: LogFormat, max_file_bytes: u64) -> std::io::Result<Self> {
        hashpass::private_files::create_owned_dir(dir)?;
        hashpass::private_files::tighten_files_in(dir, |name| name.starts_with(LOG_FILE_PREFIX))?;
        let files = Builder::new()
            .rotation(Rotation::DAILY)
            .filename_prefix(LOG_FILE_PREFIX)
            .max_log_files(LOG_FILES_KEPT)
            .build(dir)
            .map_err(std::io::Error::other)?;
        let mut log = Self {
            files,
            dir: dir.to_path_buf(),
            format,
            max_file_bytes: max_file_bytes.max(NOTICE_ROOM),
            day: 0,
            written: 0,
            full: false,
            private: false,
        };
        log.start_day(unix_now() / 86_400);
        Ok(log)
    }

    /// Moves on to `day`'s file, counting what it already holds.
    fn start_day(&mut self, day: u64) {
        let name = format!("{LOG_FILE_PREFIX}.{}", utc_date(day));
        self.day = day;
        self.written = std::fs::metadata(self.dir.join(name)).map_or(0, |m| m.len());
        self.full = self.written + NOTICE_ROOM >= self.max_file_bytes;
        self.private = false;
    }

    /// Makes the day's file private once it exists (the appender creates it on its first line
    /// as the umask says).
    fn make_private(&mut self) {
        if !self.private {
            let name = format!("{LOG_FILE_PREFIX}.{}", utc_date(self.day));
            self.private = hashpass::private_files::tighten_file(&self.dir.join(name)).is_ok();
        }
    }

    /// The line that says the day's file is full.
    fn notice(&self) -> String {
        let message = format!(
            "this log file reached its size cap of {} bytes (HASHPASS_LOG_MAX_FILE_MB): the rest of the day's lines go to standard output only",
            self.max_file_bytes
        );
        let timestamp = crate::operator::utc(unix_now());
        match self.format {
            LogFormat::Text => {
                format!("{timestamp}  WARN hashpass_examples::log_file: {message}\n")
            }
            LogFormat::Json => {
                let line = serde_json::json!({
                    "timestamp": timestamp,
                    "level": "WARN",
                    "fields": { "message": message },
                    "target": "hashpass_examples::log_file",
                });
                format!("{line}\n")
            }
        }
    }
}

impl Write for CappedDailyLog {
    /// Writes one line (the log writes each line in one call) to the day's file, or drops it
    /// once the file is full.
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        let day = unix_now() / 86_400;
        if day != self.day {
            self.start_day(day);
        }
        if self.full {
            return Ok(line.len());
        }
        let size = line.len() as u64;
        if self.written + size + NOTICE_ROOM > self.max_file_bytes {
            self.full = true;
            let notice = self.notice();
            self.files.write_all(notice.as_bytes())?;
            self.written += notice.len() as u64;
            return Ok(line.len());
        }
        self.files.write_all(line)?;
        self.written += size;
        self.make_private();
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.files.flush()
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `YYYY-MM-DD` of a UTC day (days since the Unix epoch), as the daily files are named.
fn utc_date(day: u64) -> String {
    crate::operator::utc(day * 86_400)[..10].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_in(dir: &Path) -> Vec<String> {
        let mut lines = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            lines.extend(text.lines().map(String::from));
        }
        lines
    }

    #[test]
    fn a_full_file_takes_one_notice_and_nothing_more() {
        let dir = hashpass_tests::server::temp_dir("capped-log");
        let cap = 64 * 1024;
        let mut log = CappedDailyLog::open(&dir, LogFormat::Text, cap).unwrap();
        let line = format!("{}\n", "x".repeat(99));
        for _ in 0..10_000 {
            log.write_all(line.as_bytes()).unwrap();
        }
        log.flush().unwrap();
        let today = dir.join(format!(
            "{LOG_FILE_PREFIX}.{}",
            utc_date(unix_now() / 86_400)
        ));
        let size = std::fs::metadata(&today).unwrap().len();
        assert!(size <= cap, "{size} bytes in a file capped at {cap}");
        assert!(size > cap - 2 * NOTICE_ROOM, "the file is filled: {size}");
        let lines = lines_in(&dir);
        assert_eq!(
            lines.last().map(|l| l.contains("size cap")),
            Some(true),
            "{lines:?}"
        );
        assert_eq!(lines.iter().filter(|l| l.contains("size cap")).count(), 1);
        // A restart on the same day counts what the file holds: nothing more is written.
        drop(log);
        let mut again = CappedDailyLog::open(&dir, LogFormat::Text, cap).unwrap();
        again.write_all(line.as_bytes()).unwrap();
        again.flush().unwrap();
        assert_eq!(std::fs::metadata(&today).unwrap().len(), size);
    }

    #[test]
    fn the_json_notice_is_a_json_line() {
        let dir = hashpass_tests::server::temp_dir("capped-json-log");
        let mut log = CappedDailyLog::open(&dir, LogFormat::Json, 2048).unwrap();
        for _ in 0..100 {
            log.write_all(b"{\"level\":\"INFO\",\"fields\":{\"message\":\"m\"}}\n")
                .unwrap();
        }
        log.flush().unwrap();
        let lines = lines_in(&dir);
        let notice: serde_json::Value = serde_json::from_str(lines.last().unwrap()).unwrap();
        assert_eq!(notice["level"], "WARN");
        assert!(
            notice["fields"]["message"]
                .as_str()
                .unwrap()
                .contains("HASHPASS_LOG_MAX_FILE_MB")
        );
    }

    #[test]
    fn file_names_follow_the_utc_day() {
        assert_eq!(utc_date(0), "1970-01-01");
        assert_eq!(utc_date(20_454), "2026-01-01");
    }
}
