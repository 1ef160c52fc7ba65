//! Installs the browser libraries (`npm ci` in `static/`) when they are missing, so that
//! `cargo run --bin hashpass-server` on a fresh clone serves a working miner page.

use std::path::Path;
use std::process::Command;

fn main() {
    let static_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../static");
    println!(
        "cargo:rerun-if-changed={}",
        static_dir.join("package-lock.json").display()
    );
    println!(
        "cargo:rerun-if-changed={}",
        static_dir.join("node_modules/.package-lock.json").display()
    );
    if static_dir.join("node_modules/.package-lock.json").is_file() {
        return;
    }
    let npm = if cfg!(windows) { "npm.cmd" } else { "npm" };
    match Command::new(npm)
        .args(["ci", "--no-audit", "--no-fund", "--prefix"])
        .arg(&static_dir)
        .status()
    {
        Ok(status) if status.success() => {}
        Ok(status) => println!(
            "cargo:warning=`npm ci` in static/ failed ({status}): the miner page needs its libraries; run `npm ci --prefix static`"
        ),
        Err(e) => println!(
            "cargo:warning=npm not found ({e}): install Node.js and npm, then run `npm ci --prefix static`, or the miner page will not work"
        ),
    }
}
