//! `docs/openapi.json` is exactly what `hashpass::openapi::document()` generates.
//!
//! After changing the API, rewrite it with
//! `UPDATE_OPENAPI=1 cargo test -p hashpass-tests --test openapi`.

use std::path::{Path, PathBuf};

fn checked_in() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json")
}

fn generated() -> String {
    serde_json::to_string_pretty(&hashpass::openapi::document()).expect("the document serialises")
        + "\n"
}

/// Writes `text` to `path` through a temporary file in the same directory and a rename, so a
/// reader never sees half a file.
fn write_atomically(path: &Path, text: &str) {
    let dir = path.parent().expect("the file has a directory");
    std::fs::create_dir_all(dir).expect("create docs/");
    let tmp = dir.join(format!(".openapi.json.{}.tmp", std::process::id()));
    std::fs::write(&tmp, text).expect("write the temporary file");
    std::fs::rename(&tmp, path).expect("rename the temporary file over docs/openapi.json");
}

#[test]
fn docs_openapi_json_is_current() {
    let path = checked_in();
    let expected = generated();
    if std::env::var("UPDATE_OPENAPI").is_ok_and(|v| v == "1") {
        write_atomically(&path, &expected);
        return;
    }
    let actual = std::fs::read_to_string(&path).unwrap_or_default();
    if actual != expected {
        let line = actual
            .lines()
            .zip(expected.lines())
            .position(|(a, e)| a != e)
            .unwrap_or_else(|| actual.lines().count().min(expected.lines().count()))
            + 1;
        panic!(
            "{} is not the document hashpass::openapi::document() generates (first difference at line {line}); \
             run `UPDATE_OPENAPI=1 cargo test -p hashpass-tests --test openapi` to rewrite it",
            path.display()
        );
    }
}
