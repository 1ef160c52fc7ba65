//! Shared code of the HashPass examples: logging set-up, the standalone server's app on axum or
//! poem, the sub-commands of `hashpass-server` ([`operator`]: serving, exporting the audit
//! trail, verifying an invite code offline), and the invite-only example site ([`site`]).

use std::net::SocketAddr;

use axum::Router;
use hashpass::HashPass;
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::prelude::*;

pub mod listener;
pub mod log_file;
pub mod operator;
mod settings;
pub mod site;

pub use settings::{LogFormat, ServerSettings};

/// Logs at `level` (unless `RUST_LOG` says otherwise), in `format`, to stdout and to a
/// daily-rotated `hashpass.log.YYYY-MM-DD` in `log_dir` (30 kept, each at most
/// `max_file_bytes`: [`log_file`]), where the admin `applogs` endpoint reads it. The returned
/// guard flushes the file on drop. The logs name client addresses and sessions, so `log_dir`
/// is made private (0700) and its log files 0600.
pub fn init_logging(
    log_dir: &std::path::Path,
    level: &str,
    format: LogFormat,
    max_file_bytes: u64,
) -> Result<WorkerGuard, Box<dyn std::error::Error>> {
    let files = log_file::CappedDailyLog::open(log_dir, format, max_file_bytes)?;
    let (file, guard) = tracing_appender::non_blocking(files);
    let level = level.to_ascii_lowercase();
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{level},hyper=warn,tower_http=warn")));
    let stdout_is_terminal = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let registry = tracing_subscriber::registry().with(filter);
    match format {
        LogFormat::Text => registry
            .with(tracing_subscriber::fmt::layer().with_ansi(stdout_is_terminal))
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(false)
                    .with_writer(file),
            )
            .try_init()?,
        LogFormat::Json => registry
            .with(tracing_subscriber::fmt::layer().json())
            .with(tracing_subscriber::fmt::layer().json().with_writer(file))
            .try_init()?,
    }
    Ok(guard)
}

/// The standalone system on axum: every HashPass route, the miner page at `/` and the admin
/// console at `/admin` (embedded in the crate), mounted at the root.
pub fn standalone_app(hashpass: HashPass) -> Router {
    hashpass_axum::router(hashpass)
}

/// The standalone system on poem: the same routes and pages as [`standalone_app`].
pub fn standalone_poem(hashpass: HashPass) -> impl poem::Endpoint<Output = poem::Response> + use<> {
    hashpass_poem::route(hashpass)
}

/// [`standalone_poem`] with a host site's own routes (`site`) beside HashPass's, under the same
/// security headers.
pub fn standalone_poem_with(
    hashpass: HashPass,
    site: poem::Route,
) -> impl poem::Endpoint<Output = poem::Response> + use<> {
    hashpass_poem::with_security_headers(
        hashpass.clone(),
        hashpass_poem::add_routes(&hashpass, site),
    )
}

/// CPU seconds (user + system) of process `pid` (or `self`) so far, from `/proc/PID/stat`; for
/// reporting a load client's CPU beside the server's.
pub fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// How a binary ends: success, or its error on standard error (`program: message`, the message
/// naming the variable for a bad setting) and exit status 2.
pub fn exit_code(
    program: &str,
    result: Result<(), Box<dyn std::error::Error>>,
) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error}");
            eprintln!("{program}: {error}");
            std::process::ExitCode::from(2)
        }
    }
}

/// Which web framework serves the standalone system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framework {
    /// axum (the default).
    Axum,
    /// poem.
    Poem,
}

impl std::str::FromStr for Framework {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "axum" => Ok(Framework::Axum),
            "poem" => Ok(Framework::Poem),
            other => Err(format!("unknown framework {other:?} (use axum or poem)")),
        }
    }
}

/// Serves the standalone system with `framework` on `addr` until SIGINT/SIGTERM.
pub async fn serve_standalone(
    framework: Framework,
    hashpass: HashPass,
    addr: SocketAddr,
) -> std::io::Result<()> {
    match framework {
        Framework::Axum => serve(standalone_app(hashpass.clone()), &hashpass, addr).await,
        Framework::Poem => serve_poem(standalone_poem(hashpass.clone()), &hashpass, addr).await,
    }
}

/// Serves a poem `app` on `addr` with the adapter's serve helper ([`hashpass_poem::serve`]:
/// the connection edge, docs/protocol.md#connections) until SIGINT/SIGTERM, then shuts
/// `hashpass` down gracefully ([`HashPass::shutdown`]) and drains the open requests within
/// `HASHPASS_DRAIN_DEADLINE`.
pub async fn serve_poem(
    app: impl poem::Endpoint + 'static,
    hashpass: &HashPass,
    addr: SocketAddr,
) -> std::io::Result<()> {
    listener::raise_open_files_limit();
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, "HashPass listening (poem)");
    hashpass_poem::serve(listener, app, hashpass, shutdown_signal()).await
}

/// Serves `app` on `addr` with the adapter's serve helper ([`hashpass_axum::serve`]: the
/// connection edge, docs/protocol.md#connections) until SIGINT/SIGTERM, then shuts `hashpass`
/// down gracefully ([`HashPass::shutdown`]: sockets closed with 1001, verifications in flight
/// finished) and drains the open requests within `HASHPASS_DRAIN_DEADLINE`.
pub async fn serve(app: Router, hashpass: &HashPass, addr: SocketAddr) -> std::io::Result<()> {
    listener::raise_open_files_limit();
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, "HashPass listening");
    hashpass_axum::serve(listener, app, hashpass, shutdown_signal()).await
}

async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {}
        _ = terminate => {}
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
