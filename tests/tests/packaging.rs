//! What publishing the crates rests on: the browser libraries the core embeds are exactly the
//! npm packages its lock file pins, and the declared minimum Rust version is the dependency
//! tree's own.

use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Each checked-in file under `hashpass/ui/vendor/` and where `npm ci` puts its original.
const VENDORED: &[(&str, &str)] = &[
    ("phi-ag-argon2.js", "@phi-ag/argon2/dist/index.js"),
    ("phi-ag-argon2.wasm", "@phi-ag/argon2/dist/argon2.wasm"),
    ("hash-wasm.esm.min.js", "hash-wasm/dist/index.esm.min.js"),
    (
        "thumbmark.esm.js",
        "@thumbmarkjs/thumbmarkjs/dist/thumbmark.esm.js",
    ),
    ("chart.umd.min.js", "chart.js/dist/chart.umd.min.js"),
    ("licenses/phi-ag-argon2.LICENSE", "@phi-ag/argon2/LICENSE"),
    ("licenses/hash-wasm.LICENSE", "hash-wasm/LICENSE"),
    (
        "licenses/thumbmarkjs.LICENSE",
        "@thumbmarkjs/thumbmarkjs/LICENSE",
    ),
    ("licenses/chart.js.LICENSE.md", "chart.js/LICENSE.md"),
    (
        "licenses/kurkle-color.LICENSE.md",
        "@kurkle/color/LICENSE.md",
    ),
];

#[test]
fn vendored_browser_libraries_are_the_packages_the_lock_file_pins() {
    let ui = workspace().join("hashpass/ui");
    let installed = ui.join("node_modules");
    if !installed.join(".package-lock.json").is_file() {
        let how =
            "run `npm ci --prefix hashpass/ui` (it checks each package against package-lock.json)";
        assert!(
            std::env::var_os("CI").is_none(),
            "the npm packages are not installed: {how}"
        );
        eprintln!("skipped: the npm packages are not installed; {how}");
        return;
    }
    for (vendored, original) in VENDORED {
        let ours = std::fs::read(ui.join("vendor").join(vendored)).unwrap();
        let theirs = std::fs::read(installed.join(original))
            .unwrap_or_else(|e| panic!("{original} missing from node_modules: {e}"));
        assert!(
            ours == theirs,
            "hashpass/ui/vendor/{vendored} differs from node_modules/{original}: copy it again after changing package.json"
        );
    }
    // Every package the lock file installs ships a licence we vendor.
    let lock: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ui.join("package-lock.json")).unwrap()).unwrap();
    let packages: Vec<&str> = lock["packages"]
        .as_object()
        .unwrap()
        .keys()
        .filter_map(|k| k.strip_prefix("node_modules/"))
        .collect();
    for package in packages {
        assert!(
            VENDORED
                .iter()
                .any(|(v, o)| v.starts_with("licenses/") && o.starts_with(&format!("{package}/"))),
            "{package} is installed by the lock file but its licence is not vendored"
        );
    }
}

#[test]
fn rust_version_is_the_highest_the_dependency_tree_declares_and_no_openssl() {
    let output =
        std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .current_dir(workspace())
            .args(["metadata", "--format-version", "1", "--locked", "--offline"])
            .output()
            .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let packages: std::collections::HashMap<&str, &serde_json::Value> = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p))
        .collect();
    let nodes: std::collections::HashMap<&str, &serde_json::Value> = metadata["resolve"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["id"].as_str().unwrap(), n))
        .collect();
    let libraries = ["hashpass", "hashpass-axum", "hashpass-poem"];
    let mut stack: Vec<&str> = packages
        .iter()
        .filter(|(_, p)| libraries.contains(&p["name"].as_str().unwrap()))
        .map(|(id, _)| *id)
        .collect();
    let declared: Vec<&str> = stack
        .iter()
        .map(|id| packages[id]["rust_version"].as_str().unwrap_or("unset"))
        .collect();
    let mut seen = std::collections::HashSet::new();
    let mut highest = ((0u32, 0u32), String::new());
    while let Some(id) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        let package = packages[id];
        if !libraries.contains(&package["name"].as_str().unwrap())
            && let Some(version) = package["rust_version"].as_str()
        {
            let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
            let key = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
            if key > highest.0 {
                highest = (key, format!("{} {}", package["name"], package["version"]));
            }
        }
        for dep in nodes[id]["deps"].as_array().unwrap() {
            let normal_or_build = dep["dep_kinds"]
                .as_array()
                .unwrap()
                .iter()
                .any(|k| k["kind"].is_null() || k["kind"] == "build");
            if normal_or_build {
                stack.push(dep["pkg"].as_str().unwrap());
            }
        }
    }
    // TLS to managed Redis and Postgres goes through rustls: nothing links OpenSSL.
    for id in &seen {
        let name = packages[id]["name"].as_str().unwrap();
        assert!(
            !["openssl-sys", "openssl", "native-tls"].contains(&name),
            "{name} is in the library crates' dependency tree: use the rustls features instead"
        );
    }
    let wanted = format!("{}.{}", highest.0.0, highest.0.1);
    for version in declared {
        assert!(
            version == wanted || version == format!("{wanted}.0"),
            "rust-version is {version}, but {} needs {wanted}: set rust-version = \"{wanted}\" in the workspace Cargo.toml",
            highest.1
        );
    }
}
