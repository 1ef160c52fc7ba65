//! Reading the application log for the admin `applogs` endpoint (PROTOCOL.md B14, B18): the
//! daily files `hashpass.log.YYYY-MM-DD` in the log directory, newest line first, with paging,
//! search and a level filter. Only names from the directory listing are ever opened.

use std::path::PathBuf;

use serde::Serialize;

/// Which page of which file to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppLogQuery {
    /// 1-based page.
    pub page: u32,
    /// Lines per page (1..=500).
    pub per_page: u32,
    /// Case-insensitive substring.
    pub search: String,
    /// File name from the listing; unknown → the newest file.
    pub file: String,
    /// `""`/`ALL`, or a level such as `INFO`: lines containing ` LEVEL `.
    pub level: String,
}

/// A page of log lines, newest first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AppLogPage {
    /// The lines.
    pub lines: Vec<String>,
    /// Matching lines.
    pub total: u64,
    /// This page.
    pub page: u32,
    /// Number of pages (0 when there is no log).
    pub pages: u32,
    /// Log files, name-descending.
    pub files: Vec<String>,
}

/// Reads the log directory.
#[derive(Debug, Clone)]
pub struct AppLogReader {
    dir: PathBuf,
}

impl AppLogReader {
    /// A reader of `log_dir`.
    pub fn new(log_dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: log_dir.into(),
        }
    }

    /// Log files, name-descending (empty when the directory does not exist).
    pub fn files(&self) -> std::io::Result<Vec<String>> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("hashpass.log"))
            .collect();
        names.sort_by(|a, b| b.cmp(a));
        Ok(names)
    }

    /// One page of one file.
    pub async fn page(&self, query: &AppLogQuery) -> std::io::Result<AppLogPage> {
        let reader = self.clone();
        let query = query.clone();
        tokio::task::spawn_blocking(move || reader.page_blocking(&query))
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))?
    }

    fn page_blocking(&self, query: &AppLogQuery) -> std::io::Result<AppLogPage> {
        let files = self.files()?;
        let Some(name) = files
            .iter()
            .find(|f| **f == query.file)
            .or(files.first())
            .cloned()
        else {
            return Ok(AppLogPage {
                lines: Vec::new(),
                total: 0,
                page: query.page,
                pages: 0,
                files,
            });
        };
        let text = String::from_utf8_lossy(&std::fs::read(self.dir.join(&name))?).into_owned();
        let needle = query.search.to_lowercase();
        let level = query.level.trim().to_ascii_uppercase();
        let level = (!level.is_empty() && level != "ALL").then(|| format!(" {level} "));
        let matching: Vec<&str> = text
            .lines()
            .rev()
            .filter(|l| !l.trim().is_empty())
            .filter(|l| level.as_ref().is_none_or(|lv| l.contains(lv.as_str())))
            .filter(|l| needle.is_empty() || l.to_lowercase().contains(&needle))
            .collect();
        let per_page = query.per_page.max(1) as usize;
        let start = (query.page.max(1) as usize - 1).saturating_mul(per_page);
        let total = matching.len() as u64;
        Ok(AppLogPage {
            lines: matching
                .into_iter()
                .skip(start)
                .take(per_page)
                .map(str::to_string)
                .collect(),
            total,
            page: query.page,
            pages: (total.div_ceil(per_page as u64) as u32).max(1),
            files,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(page: u32, per_page: u32, search: &str, file: &str, level: &str) -> AppLogQuery {
        AppLogQuery {
            page,
            per_page,
            search: search.into(),
            file: file.into(),
            level: level.into(),
        }
    }

    #[tokio::test]
    async fn pages_filters_and_files() {
        let dir = std::env::temp_dir().join(format!(
            "hashpass-applog-{}",
            hex::encode(crate::util::random_bytes::<6>())
        ));
        let reader = AppLogReader::new(&dir);
        let empty = reader.page(&query(1, 10, "", "", "")).await.unwrap();
        assert_eq!((empty.total, empty.pages, empty.files.len()), (0, 0, 0));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("hashpass.log.2026-11-21"),
            "2026-11-21T10:00:00Z  INFO hashpass: old\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("hashpass.log.2026-11-22"),
            "2026-11-22T10:00:00Z  INFO hashpass: started\n\n2026-11-22T10:00:01Z  WARN hashpass: Slow client\n2026-11-22T10:00:02Z  INFO hashpass: puzzle solved\n",
        )
        .unwrap();
        std::fs::write(dir.join("other.txt"), "secret").unwrap();
        let page = reader.page(&query(1, 2, "", "nope", "")).await.unwrap();
        assert_eq!(
            page.files,
            vec!["hashpass.log.2026-11-22", "hashpass.log.2026-11-21"]
        );
        assert_eq!((page.total, page.pages), (3, 2));
        assert!(page.lines[0].ends_with("puzzle solved"), "newest first");
        let warn = reader
            .page(&query(1, 10, "", "hashpass.log.2026-11-22", "warn"))
            .await
            .unwrap();
        assert_eq!(warn.total, 1);
        let all = reader
            .page(&query(1, 10, "", "hashpass.log.2026-11-22", "ALL"))
            .await
            .unwrap();
        assert_eq!(all.total, 3);
        let search = reader
            .page(&query(1, 10, "SLOW", "hashpass.log.2026-11-22", ""))
            .await
            .unwrap();
        assert_eq!(search.total, 1);
        let old = reader
            .page(&query(1, 10, "", "hashpass.log.2026-11-21", ""))
            .await
            .unwrap();
        assert_eq!(old.lines.len(), 1);
        let traversal = reader
            .page(&query(1, 10, "", "../other.txt", ""))
            .await
            .unwrap();
        assert!(traversal.lines.iter().all(|l| !l.contains("secret")));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
