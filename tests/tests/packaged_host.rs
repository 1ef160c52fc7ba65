//! HashPass as another Rust site adopts it: a scratch host crate outside the workspace, built
//! against the packaged crates (the `.crate` files `cargo package` writes, unpacked — never path
//! dependencies into the workspace), with its own state and route, nests the whole system under
//! `/invite` in axum (`nest_service`, so that `/invite/` answers too) and in poem. Headless Chromium then mines and wins a code on the embedded
//! miner page there, and finds it in the embedded admin console.

use hashpass_tests::process::{
    browser_scripts, check_embedded_pages, free_port, quick_game_env, wait_until_answers,
};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::process::{Child, Command};

const ADMIN_TOKEN: &str = "packaged-host-admin-token-0123456789";
const HOME_TEXT: &str = "A host site with state of its own";

const HOST_MANIFEST: &str = r#"[package]
name = "packaged-host"
version = "0.0.0"
edition = "2024"
publish = false

[dependencies]
hashpass-axum = "0.1.0"
hashpass-poem = "0.1.0"
axum = "0.8"
poem = "3.1"
tokio = { version = "1", features = ["macros", "rt-multi-thread", "net"] }

# As if from the registry: the dependencies above resolve to the unpacked `.crate` files.
[patch.crates-io]
hashpass = { path = "../crates/hashpass-0.1.0" }
hashpass-axum = { path = "../crates/hashpass-axum-0.1.0" }
hashpass-poem = { path = "../crates/hashpass-poem-0.1.0" }

[workspace]
"#;

/// The axum host: the embedding contract, as a host writes it.
const HOST_AXUM: &str = r#"use std::net::SocketAddr;

use axum::{Router, extract::State, routing::get};
use hashpass_axum::hashpass::{Config, HashPass};

#[derive(Clone)]
struct AppState {
    home: &'static str,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let hashpass = HashPass::builder(Config::from_env()?).build().await?;
    let app = Router::new()
        .route("/", get(|State(state): State<AppState>| async move { state.home }))
        // nest_service: axum then answers both /invite and /invite/.
        .nest_service("/invite", hashpass_axum::router(hashpass))
        .with_state(AppState { home: "__HOME__" });
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", std::env::var("PORT")?.parse()?)).await?;
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await?;
    Ok(())
}
"#;

/// The poem host.
const HOST_POEM: &str = r#"use hashpass_poem::hashpass::{Config, HashPass};
use poem::{EndpointExt, Route, Server, get, handler, listener::TcpListener, web::Data};

struct AppState {
    home: &'static str,
}

#[handler]
fn home(state: Data<&std::sync::Arc<AppState>>) -> &'static str {
    state.home
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let hashpass = HashPass::builder(Config::from_env()?).build().await?;
    let app = Route::new()
        .at("/", get(home))
        .nest("/invite", hashpass_poem::route(hashpass))
        .data(std::sync::Arc::new(AppState { home: "__HOME__" }));
    let port: u16 = std::env::var("PORT")?.parse()?;
    Server::new(TcpListener::bind(("127.0.0.1", port))).run(app).await?;
    Ok(())
}
"#;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

async fn run(what: &str, command: &mut Command) {
    let output = command
        .output()
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Packages the three library crates, unpacks them beside a fresh host crate, and builds it.
/// Returns the directory of the host's binaries.
async fn build_host() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"))
        .join("packaged-host");
    let scratch = target.join("scratch");
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(scratch.join("crates")).unwrap();
    run(
        "cargo package",
        cargo()
            .current_dir(workspace())
            .args(["package", "--no-verify", "--allow-dirty"])
            .args([
                "-p",
                "hashpass",
                "-p",
                "hashpass-axum",
                "-p",
                "hashpass-poem",
            ])
            .arg("--target-dir")
            .arg(target.join("package")),
    )
    .await;
    for name in ["hashpass", "hashpass-axum", "hashpass-poem"] {
        let file = target.join(format!("package/package/{name}-0.1.0.crate"));
        run(
            &format!("unpacking {}", file.display()),
            Command::new("tar")
                .arg("-xzf")
                .arg(&file)
                .arg("-C")
                .arg(scratch.join("crates")),
        )
        .await;
    }
    let host = scratch.join("host");
    std::fs::create_dir_all(host.join("src/bin")).unwrap();
    std::fs::write(host.join("Cargo.toml"), HOST_MANIFEST).unwrap();
    std::fs::write(
        host.join("src/bin/host-axum.rs"),
        HOST_AXUM.replace("__HOME__", HOME_TEXT),
    )
    .unwrap();
    std::fs::write(
        host.join("src/bin/host-poem.rs"),
        HOST_POEM.replace("__HOME__", HOME_TEXT),
    )
    .unwrap();
    // The workspace's lock file pins the same dependency versions the workspace was tested with.
    std::fs::copy(workspace().join("Cargo.lock"), host.join("Cargo.lock")).unwrap();
    run(
        "building the host crate against the packaged crates",
        cargo()
            .current_dir(&host)
            .args(["build", "--bins"])
            .env("CARGO_TARGET_DIR", target.join("build")),
    )
    .await;
    target.join("build/debug")
}

async fn start(binary: &Path, port: u16) -> Child {
    let dir = binary.with_extension("data");
    std::fs::create_dir_all(&dir).unwrap();
    let port_text = port.to_string();
    let mut child = Command::new(binary)
        .current_dir(&dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(quick_game_env(&port_text, ADMIN_TOKEN))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    wait_until_answers(
        &mut child,
        &format!("http://127.0.0.1:{port}/invite/api/health"),
    )
    .await;
    child
}

async fn win_under_the_prefix(binary: &Path, name: &str) {
    let port = free_port();
    let child = start(binary, port).await;
    let base = format!("http://127.0.0.1:{port}/invite/");
    let home = format!("http://127.0.0.1:{port}/");
    let out = workspace().join("tests/output/packaged-host").join(name);
    let extra = ["--home", home.as_str(), "--home-text", HOME_TEXT];
    check_embedded_pages(child, name, &base, ADMIN_TOKEN, &out, &extra).await;
}

#[tokio::test]
async fn a_host_crate_built_from_the_packaged_crates_serves_the_whole_system_under_a_prefix() {
    browser_scripts();
    let bin = build_host().await;
    win_under_the_prefix(&bin.join("host-axum"), "axum").await;
    win_under_the_prefix(&bin.join("host-poem"), "poem").await;
}
