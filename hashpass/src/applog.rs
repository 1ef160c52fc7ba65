//! Reading the application log for the admin `applogs` endpoint (docs/protocol.md#admin-api, docs/protocol.md#application-log): the
//! daily files `hashpass.log.YYYY-MM-DD` in the log directory, newest line first, with paging,
//! search and a level filter, in the text format or the JSON one (`HASHPASS_LOG_FORMAT=json`).
//! Only names from the directory listing are ever opened.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// Log file names start with this.
pub const LOG_FILE_PREFIX: &str = "hashpass.log";

/// Which page of which file to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppLogQuery {
    /// 1-based page.
    pub page: u32,
    /// Lines per page (1..=500).
    pub per_page: u32,
    /// Case-insensitive substring.
    pub search: String,
    /// File name from the listing; unknown or empty → the first listed (the newest).
    pub file: String,
    /// `""`/`ALL` (any case) for every line, or a level such as `INFO`: lines containing
    /// ` INFO `.
    pub level: String,
}

/// A page of log lines, newest first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AppLogPage {
    /// The lines.
    pub lines: Vec<String>,
    /// Matching lines in the file.
    pub total: u64,
    /// This page.
    pub page: u32,
    /// Number of pages: at least 1, or 0 when there is no log file.
    pub pages: u32,
    /// Log files, name-descending.
    pub files: Vec<String>,
}

/// Reads the log directory.
#[derive(Debug, Clone)]
pub struct AppLogReader {
    dir: PathBuf,
}

/// Which lines a query keeps.
struct LineFilter {
    needle: String,
    /// The level as a text line shows it (` INFO `) and as a JSON line does (`"level":"INFO"`).
    level: Option<(String, String)>,
}

impl LineFilter {
    fn new(query: &AppLogQuery) -> Self {
        let level = query.level.trim().to_uppercase();
        Self {
            needle: query.search.to_lowercase(),
            level: (!level.is_empty() && level != "ALL")
                .then(|| (format!(" {level} "), format!("\"level\":\"{level}\""))),
        }
    }

    fn keeps(&self, line: &str) -> bool {
        !line.trim().is_empty()
            && self
                .level
                .as_ref()
                .is_none_or(|(text, json)| line.contains(text) || line.contains(json))
            && (self.needle.is_empty() || line.to_lowercase().contains(&self.needle))
    }
}

impl AppLogReader {
    /// A reader of `log_dir`.
    pub fn new(log_dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: log_dir.into(),
        }
    }

    /// Log files (regular files named `hashpass.log*`), name-descending; none when the
    /// directory does not exist.
    pub fn files(&self) -> std::io::Result<Vec<String>> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(LOG_FILE_PREFIX) && entry.file_type()?.is_file() {
                names.push(name);
            }
        }
        names.sort_by(|a, b| b.cmp(a));
        Ok(names)
    }

    /// One page of one file.
    pub async fn page(&self, query: &AppLogQuery) -> std::io::Result<AppLogPage> {
        let (reader, query) = (self.clone(), query.clone());
        tokio::task::spawn_blocking(move || reader.page_blocking(&query))
            .await
            .map_err(std::io::Error::other)?
    }

    fn page_blocking(&self, query: &AppLogQuery) -> std::io::Result<AppLogPage> {
        let files = self.files()?;
        let Some(name) = files.iter().find(|f| **f == query.file).or(files.first()) else {
            return Ok(AppLogPage {
                lines: Vec::new(),
                total: 0,
                page: query.page,
                pages: 0,
                files,
            });
        };
        let per_page = query.per_page.max(1) as u64;
        let skip = u64::from(query.page.max(1) - 1).saturating_mul(per_page);
        let path = self.dir.join(name);
        let filter = LineFilter::new(query);
        // Two passes, so memory holds one page whatever the page number: count the matching
        // lines, then keep those of the page (newest first).
        let mut total = 0u64;
        for_each_line(&path, |line| {
            if filter.keeps(line) {
                total += 1;
            }
        })?;
        let end = total.saturating_sub(skip);
        let start = end.saturating_sub(per_page);
        let mut lines = Vec::new();
        let mut index = 0u64;
        if end > 0 {
            for_each_line(&path, |line| {
                if filter.keeps(line) {
                    if (start..end).contains(&index) {
                        lines.push(line.to_string());
                    }
                    index += 1;
                }
            })?;
        }
        lines.reverse();
        Ok(AppLogPage {
            lines,
            total,
            page: query.page,
            pages: (total.div_ceil(per_page) as u32).max(1),
            files,
        })
    }
}

/// Calls `f` with each line of the file at `path` (lossy UTF-8, without its line ending).
fn for_each_line(path: &Path, mut f: impl FnMut(&str)) -> std::io::Result<()> {
    let file = std::fs::File::open(path)?;
    for line in std::io::BufReader::new(file).split(b'\n') {
        let line = line?;
        let line = String::from_utf8_lossy(&line);
        f(line.strip_suffix('\r').unwrap_or(&line));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TODAY: &str = "hashpass.log.2026-11-22";
    const YESTERDAY: &str = "hashpass.log.2026-11-21";

    fn query(page: u32, per_page: u32, search: &str, file: &str, level: &str) -> AppLogQuery {
        AppLogQuery {
            page,
            per_page,
            search: search.into(),
            file: file.into(),
            level: level.into(),
        }
    }

    /// A log directory with two days of logs and a file that must never be shown.
    fn log_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "hashpass-applog-{}",
            hex::encode(crate::util::random_bytes::<6>())
        ));
        std::fs::create_dir_all(dir.join("hashpass.log.dir")).unwrap();
        std::fs::write(
            dir.join(YESTERDAY),
            "2026-11-21T10:00:00Z  INFO hashpass: yesterday\n",
        )
        .unwrap();
        std::fs::write(
            dir.join(TODAY),
            b"2026-11-22T10:00:00Z  INFO hashpass: started\n\
             \n   \n\
             2026-11-22T10:00:01Z  WARN hashpass: Slow client\r\n\
             2026-11-22T10:00:02Z ERROR hashpass: INFO lost\n\
             2026-11-22T10:00:03Z  INFO hashpass: puzzle solved \xff\n\
             2026-11-22T10:00:04Z  INFO hashpass: torn",
        )
        .unwrap();
        std::fs::write(dir.join("secret.txt"), "secret").unwrap();
        dir
    }

    async fn lines(reader: &AppLogReader, query: AppLogQuery) -> (Vec<String>, u64, u32) {
        let page = reader.page(&query).await.unwrap();
        (page.lines, page.total, page.pages)
    }

    fn ends(lines: &[String]) -> Vec<&str> {
        lines
            .iter()
            .map(|l| l.rsplit(": ").next().unwrap())
            .collect()
    }

    #[tokio::test]
    async fn no_directory_no_files() {
        let reader = AppLogReader::new(std::env::temp_dir().join("hashpass-applog-none"));
        let page = reader.page(&query(3, 10, "", "", "")).await.unwrap();
        assert_eq!(
            (page.lines.len(), page.total, page.page, page.pages),
            (0, 0, 3, 0)
        );
        assert!(page.files.is_empty());
        let empty_dir = log_dir();
        std::fs::remove_file(empty_dir.join(TODAY)).unwrap();
        std::fs::remove_file(empty_dir.join(YESTERDAY)).unwrap();
        let page = AppLogReader::new(&empty_dir)
            .page(&query(1, 10, "", "", ""))
            .await;
        assert_eq!(page.unwrap().pages, 0);
        std::fs::remove_dir_all(empty_dir).unwrap();
    }

    #[tokio::test]
    async fn lists_log_files_only_newest_first() {
        let dir = log_dir();
        let page = AppLogReader::new(&dir)
            .page(&query(1, 10, "", "", ""))
            .await;
        assert_eq!(page.unwrap().files, vec![TODAY, YESTERDAY]);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn newest_first_in_pages_without_blank_lines() {
        let dir = log_dir();
        let reader = AppLogReader::new(&dir);
        let (first, total, pages) = lines(&reader, query(1, 2, "", TODAY, "")).await;
        assert_eq!(
            (ends(&first), total, pages),
            (vec!["torn", "puzzle solved \u{fffd}"], 5, 3)
        );
        let (second, ..) = lines(&reader, query(2, 2, "", TODAY, "")).await;
        assert_eq!(
            ends(&second),
            vec!["INFO lost", "Slow client"],
            "\\r stripped"
        );
        let (third, ..) = lines(&reader, query(3, 2, "", TODAY, "")).await;
        assert_eq!(ends(&third), vec!["started"]);
        let (beyond, total, _) = lines(&reader, query(4, 2, "", TODAY, "")).await;
        assert_eq!((beyond.len(), total), (0, 5));
        let (far, total, _) = lines(&reader, query(u32::MAX, 200, "", TODAY, "")).await;
        assert_eq!(
            (far.len(), total),
            (0, 5),
            "any page number, one page of memory"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn unknown_files_read_the_newest() {
        let dir = log_dir();
        let reader = AppLogReader::new(&dir);
        for file in [
            "",
            "hashpass.log",
            "../secret.txt",
            "secret.txt",
            "hashpass.log.dir",
        ] {
            let (lines, total, _) = lines(&reader, query(1, 10, "", file, "")).await;
            assert_eq!(total, 5, "{file}");
            assert!(lines.iter().all(|l| !l.contains("secret")));
        }
        let (old, ..) = lines(&reader, query(1, 10, "", YESTERDAY, "")).await;
        assert_eq!(ends(&old), vec!["yesterday"]);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn json_lines_filter_by_level_too() {
        let dir = log_dir();
        std::fs::write(
            dir.join(TODAY),
            "{\"timestamp\":\"2026-11-22T10:00:00Z\",\"level\":\"WARN\",\"fields\":{\"message\":\"Slow client\"},\"target\":\"hashpass\"}\n\
             {\"timestamp\":\"2026-11-22T10:00:01Z\",\"level\":\"INFO\",\"fields\":{\"message\":\"started\"},\"target\":\"hashpass\"}\n",
        )
        .unwrap();
        let reader = AppLogReader::new(&dir);
        let (warn, total, _) = lines(&reader, query(1, 10, "", TODAY, "warn")).await;
        assert_eq!(total, 1);
        assert!(warn[0].contains("Slow client"));
        let (slow, ..) = lines(&reader, query(1, 10, "slow", TODAY, "")).await;
        assert_eq!(slow.len(), 1);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn filters_by_level_and_search() {
        let dir = log_dir();
        let reader = AppLogReader::new(&dir);
        let (warn, ..) = lines(&reader, query(1, 10, "", TODAY, "warn")).await;
        assert_eq!(ends(&warn), vec!["Slow client"]);
        let (info, total, _) = lines(&reader, query(1, 10, "", TODAY, "INFO")).await;
        assert_eq!(total, 4, "` INFO ` in a message counts too: {info:?}");
        for all in ["", "ALL", "all"] {
            assert_eq!(lines(&reader, query(1, 10, "", TODAY, all)).await.1, 5);
        }
        let (slow, ..) = lines(&reader, query(1, 10, "sLOW", TODAY, "")).await;
        assert_eq!(ends(&slow), vec!["Slow client"]);
        let (both, total, pages) = lines(&reader, query(1, 10, "puzzle", TODAY, "warn")).await;
        assert_eq!((both.len(), total, pages), (0, 0, 1));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
