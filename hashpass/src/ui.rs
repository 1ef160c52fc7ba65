//! The miner page and the admin console, embedded in the crate at compile time (the `ui`
//! feature), with their browser libraries (@phi-ag/argon2, hash-wasm, ThumbmarkJS, Chart.js) and
//! those libraries' licences. Adapters route three paths relative to the mount point — `/` (the
//! miner), `/admin` (the console) and `/static/{*path}` (every other file) — and turn a
//! [`UiResponse`] into their framework's response. The pages use relative URLs only, so they work
//! under any prefix a host nests HashPass at.

use std::borrow::Cow;
use std::sync::LazyLock;

use http::StatusCode;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, HeaderName, HeaderValue};
use sha2::{Digest, Sha256};

/// One embedded file.
#[derive(Debug)]
struct Asset {
    /// Path under `ui/`, as served under `static/`.
    path: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

macro_rules! assets {
    ($($path:literal => $content_type:expr,)*) => {
        &[$(Asset {
            path: $path,
            content_type: $content_type,
            bytes: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/ui/", $path)),
        },)*]
    };
}

const HTML: &str = "text/html; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";
const WASM: &str = "application/wasm";

/// Every embedded file (a test checks that this list and the `ui/` directory agree).
static ASSETS: &[Asset] = assets! {
    "index.html" => HTML,
    "admin.html" => HTML,
    "css/base.css" => CSS,
    "css/miner.css" => CSS,
    "css/admin.css" => CSS,
    "js/page.js" => JS,
    "js/i18n.js" => JS,
    "js/miner.js" => JS,
    "js/miner-worker.js" => JS,
    "js/admin.js" => JS,
    "vendor/phi-ag-argon2.js" => JS,
    "vendor/phi-ag-argon2.wasm" => WASM,
    "vendor/hash-wasm.esm.min.js" => JS,
    "vendor/thumbmark.esm.js" => JS,
    "vendor/chart.umd.min.js" => JS,
    "vendor/licenses/phi-ag-argon2.LICENSE" => TEXT,
    "vendor/licenses/hash-wasm.LICENSE" => TEXT,
    "vendor/licenses/thumbmarkjs.LICENSE" => TEXT,
    "vendor/licenses/chart.js.LICENSE.md" => TEXT,
    "vendor/licenses/kurkle-color.LICENSE.md" => TEXT,
};

/// Each asset's strong ETag: the first 16 bytes of its SHA-256, computed once.
static ETAGS: LazyLock<Vec<String>> =
    LazyLock::new(|| ASSETS.iter().map(|asset| etag_of(&[asset.bytes])).collect());

fn etag_of(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    format!("\"{}\"", hex::encode(&hasher.finalize()[..16]))
}

/// The two pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    /// The miner page, at the mount point (`/`).
    Miner,
    /// The admin console, at `/admin`.
    Admin,
}

impl Page {
    fn file(self) -> &'static str {
        match self {
            Page::Miner => "index.html",
            Page::Admin => "admin.html",
        }
    }
}

/// An answer for a page or file: status, headers and body, for an adapter to send.
#[derive(Debug)]
pub struct UiResponse {
    /// 200, 304 (not modified) or 404.
    pub status: StatusCode,
    /// Content type, ETag and cache policy (the security headers are the adapter's layer).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The body (empty for 304).
    pub body: Cow<'static, [u8]>,
}

/// The `<base>` element every page starts with; see [`page`].
const BASE_TAG: &str = "<base href=\"./\">";

/// Answers `page`. `original_path` is the path the browser asked for, before the host stripped
/// its prefix: the pages resolve their relative URLs against their `<base>`, which must name the
/// mount directory. Asked for as `/invite/` or `/invite/admin`, that is `./`; asked for as
/// `/invite` (the mount point without its slash: axum routes a nested `/` there) it is
/// `invite/`, so the page works at either address. `if_none_match` is the request's header.
pub fn page(page: Page, original_path: &str, if_none_match: Option<&HeaderValue>) -> UiResponse {
    let index = index_of(page.file()).expect("both pages are embedded");
    let asset = &ASSETS[index];
    let base = match page {
        Page::Miner if !original_path.ends_with('/') => {
            let last = original_path.rsplit('/').next().unwrap_or_default();
            Some(format!("<base href=\"{}/\">", escape_attribute(last)))
        }
        _ => None,
    };
    match base {
        None => answer(asset, ETAGS[index].clone(), if_none_match, None),
        Some(base) => {
            let html = String::from_utf8_lossy(asset.bytes).replacen(BASE_TAG, &base, 1);
            let etag = etag_of(&[asset.bytes, base.as_bytes()]);
            answer(asset, etag, if_none_match, Some(html.into_bytes()))
        }
    }
}

/// Answers a file under `static/` (`path` is what follows `static/`), or 404.
pub fn file(path: &str, if_none_match: Option<&HeaderValue>) -> UiResponse {
    match index_of(path) {
        Some(index) if !path.ends_with(".html") => {
            answer(&ASSETS[index], ETAGS[index].clone(), if_none_match, None)
        }
        _ => UiResponse {
            status: StatusCode::NOT_FOUND,
            headers: vec![(CONTENT_TYPE, HeaderValue::from_static(TEXT))],
            body: Cow::Borrowed(b"Not Found"),
        },
    }
}

fn index_of(path: &str) -> Option<usize> {
    ASSETS.iter().position(|asset| asset.path == path)
}

fn answer(
    asset: &'static Asset,
    etag: String,
    if_none_match: Option<&HeaderValue>,
    rewritten: Option<Vec<u8>>,
) -> UiResponse {
    let etag_value = HeaderValue::from_str(&etag).expect("hex ETag is a valid header");
    // The files are not fingerprinted in their names, so a browser revalidates each time; an
    // unchanged file costs a 304 without a body.
    let mut headers = vec![
        (CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (ETAG, etag_value),
    ];
    let matches = if_none_match
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|tag| tag.trim() == etag || tag.trim() == "*")
        });
    if matches {
        return UiResponse {
            status: StatusCode::NOT_MODIFIED,
            headers,
            body: Cow::Borrowed(b""),
        };
    }
    headers.insert(
        0,
        (CONTENT_TYPE, HeaderValue::from_static(asset.content_type)),
    );
    UiResponse {
        status: StatusCode::OK,
        headers,
        body: match rewritten {
            Some(bytes) => Cow::Owned(bytes),
            None => Cow::Borrowed(asset.bytes),
        },
    }
}

/// `text` as an HTML attribute value: the browser decodes the entities back.
fn escape_attribute(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '"' => escaped.push_str("&quot;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_under_ui_is_embedded_and_nothing_else() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("ui");
        let mut on_disk = Vec::new();
        let mut stack = vec![root.clone()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                if path.is_dir() {
                    if name != "node_modules" {
                        stack.push(path);
                    }
                } else if !name.starts_with("package") {
                    let relative = path.strip_prefix(&root).unwrap();
                    on_disk.push(relative.to_string_lossy().replace('\\', "/"));
                }
            }
        }
        on_disk.sort();
        let mut embedded: Vec<String> = ASSETS.iter().map(|a| a.path.to_string()).collect();
        embedded.sort();
        assert_eq!(on_disk, embedded);
    }

    #[test]
    fn pages_start_with_a_relative_base() {
        for page in [Page::Miner, Page::Admin] {
            let html = std::str::from_utf8(ASSETS[index_of(page.file()).unwrap()].bytes).unwrap();
            assert!(html.contains(BASE_TAG), "{page:?} has {BASE_TAG}");
        }
    }

    #[test]
    fn the_miner_page_names_its_directory_when_asked_without_the_slash() {
        let body = |r: UiResponse| String::from_utf8(r.body.into_owned()).unwrap();
        assert!(body(page(Page::Miner, "/", None)).contains(BASE_TAG));
        assert!(body(page(Page::Miner, "/invite/", None)).contains(BASE_TAG));
        let nested = body(page(Page::Miner, "/site/invite", None));
        assert!(nested.contains("<base href=\"invite/\">"), "{nested}");
        assert!(!nested.contains(BASE_TAG));
        assert!(body(page(Page::Admin, "/invite/admin", None)).contains(BASE_TAG));
        assert!(body(page(Page::Miner, "/a&b", None)).contains("<base href=\"a&amp;b/\">"));
    }

    #[test]
    fn etags_revalidate() {
        let first = file("js/miner.js", None);
        assert_eq!(first.status, StatusCode::OK);
        let etag = first
            .headers
            .iter()
            .find(|(n, _)| n == ETAG)
            .unwrap()
            .1
            .clone();
        let again = file("js/miner.js", Some(&etag));
        assert_eq!(again.status, StatusCode::NOT_MODIFIED);
        assert!(again.body.is_empty());
        // The rewritten page has an ETag of its own.
        let plain = page(Page::Miner, "/", None);
        let nested = page(Page::Miner, "/invite", Some(&etag));
        assert_eq!(nested.status, StatusCode::OK);
        let tag = |r: &UiResponse| r.headers.iter().find(|(n, _)| n == ETAG).unwrap().1.clone();
        assert_ne!(tag(&plain), tag(&nested));
    }

    #[test]
    fn unknown_files_and_pages_under_static_are_not_found() {
        assert_eq!(file("js/nope.js", None).status, StatusCode::NOT_FOUND);
        assert_eq!(file("index.html", None).status, StatusCode::NOT_FOUND);
        assert_eq!(file("../Cargo.toml", None).status, StatusCode::NOT_FOUND);
        assert_eq!(
            file("vendor/licenses/hash-wasm.LICENSE", None).status,
            StatusCode::OK
        );
    }
}
