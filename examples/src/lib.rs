//! Shared code of the HashPass examples: logging set-up, the standalone server's app on axum or
//! poem, and the invite-only example site ([`site`]).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use axum::Router;
use axum::response::IntoResponse;
use axum::routing::get_service;
use hashpass::{Config, HashPass};
use tower_http::services::{ServeDir, ServeFile};
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::prelude::*;

pub mod site;

/// Logs to stdout and to a daily-rotated `hashpass.log.YYYY-MM-DD` in `log_dir` (30 kept).
/// The returned guard flushes the file on drop.
pub fn init_logging(config: &Config) -> Result<WorkerGuard, Box<dyn std::error::Error>> {
    std::fs::create_dir_all(&config.log_dir)?;
    let appender = tracing_appender::rolling::Builder::new()
        .rotation(tracing_appender::rolling::Rotation::DAILY)
        .filename_prefix("hashpass.log")
        .max_log_files(30)
        .build(&config.log_dir)?;
    let (file, guard) = tracing_appender::non_blocking(appender);
    let level = config.log_level.to_ascii_lowercase();
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{level},hyper=warn,tower_http=warn")));
    let stdout_is_terminal = std::io::IsTerminal::is_terminal(&std::io::stdout());
    tracing_subscriber::registry()
        .with(filter)
        .with(tracing_subscriber::fmt::layer().with_ansi(stdout_is_terminal))
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(file),
        )
        .try_init()?;
    Ok(guard)
}

/// Where the browser files live: `HASHPASS_STATIC_DIR`, else `static/` beside the workspace.
pub fn static_dir() -> PathBuf {
    std::env::var_os("HASHPASS_STATIC_DIR")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../static"))
}

/// The browser libraries, from the npm packages installed in `static/node_modules`, each served
/// at `/static/vendor/<name>`: (name, path under `node_modules`).
pub const VENDOR_FILES: &[(&str, &str)] = &[
    ("hash-wasm.esm.min.js", "hash-wasm/dist/index.esm.min.js"),
    (
        "thumbmark.esm.js",
        "@thumbmarkjs/thumbmarkjs/dist/thumbmark.esm.js",
    ),
    ("chart.umd.min.js", "chart.js/dist/chart.umd.min.js"),
];

/// Checks that the npm packages are installed; the message says how to install them.
pub fn check_vendor_files(static_dir: &Path) -> Result<(), String> {
    let missing: Vec<&str> = VENDOR_FILES
        .iter()
        .filter(|(_, file)| !static_dir.join("node_modules").join(file).is_file())
        .map(|(_, file)| *file)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(format!(
        "the browser libraries are not installed ({}); run `npm ci --prefix {}` (needs Node.js and npm)",
        missing.join(", "),
        static_dir.display()
    ))
}

/// Whether a request path points into `node_modules` (served only through `/static/vendor/`).
fn is_node_modules(path: &str) -> bool {
    path.split('/').any(|segment| segment == "node_modules")
}

/// The standalone system: HashPass's routes plus the miner page at `/`, the admin console at
/// `/admin`, the files under `/static/` and the browser libraries under `/static/vendor/`.
pub fn standalone_app(hashpass: HashPass, static_dir: &Path) -> Router {
    let page = |file: &str| get_service(ServeFile::new(static_dir.join(file)));
    let mut pages = Router::new()
        .route_service("/", page("index.html"))
        .route_service("/admin", page("admin.html"));
    for (name, file) in VENDOR_FILES {
        let path = static_dir.join("node_modules").join(file);
        pages = pages.route_service(
            &format!("/static/vendor/{name}"),
            get_service(ServeFile::new(path)),
        );
    }
    let pages = pages
        .nest_service("/static", ServeDir::new(static_dir))
        .layer(axum::middleware::from_fn(
            |request: axum::extract::Request, next: axum::middleware::Next| async move {
                if is_node_modules(request.uri().path()) {
                    return axum::http::StatusCode::NOT_FOUND.into_response();
                }
                next.run(request).await
            },
        ));
    let pages = hashpass_axum::with_security_headers(hashpass.clone(), pages.with_state(()));
    hashpass_axum::router(hashpass).merge(pages)
}

/// The standalone system on poem: the same routes and pages as [`standalone_app`].
pub fn standalone_poem(
    hashpass: HashPass,
    static_dir: &Path,
) -> impl poem::Endpoint<Output = poem::Response> + use<> {
    standalone_poem_with(hashpass, static_dir, poem::Route::new())
}

/// [`standalone_poem`] with a host site's own routes (`site`) beside HashPass's, under the same
/// security headers.
pub fn standalone_poem_with(
    hashpass: HashPass,
    static_dir: &Path,
    site: poem::Route,
) -> impl poem::Endpoint<Output = poem::Response> + use<> {
    use poem::endpoint::{StaticFileEndpoint, StaticFilesEndpoint};
    let mut pages = site
        .at("/", StaticFileEndpoint::new(static_dir.join("index.html")))
        .at(
            "/admin",
            StaticFileEndpoint::new(static_dir.join("admin.html")),
        );
    for (name, file) in VENDOR_FILES {
        let path = static_dir.join("node_modules").join(file);
        pages = pages.at(
            format!("/static/vendor/{name}"),
            StaticFileEndpoint::new(path),
        );
    }
    let files = poem::EndpointExt::before(
        StaticFilesEndpoint::new(static_dir),
        |request: poem::Request| async move {
            if is_node_modules(request.uri().path()) {
                return Err(poem::Error::from_status(poem::http::StatusCode::NOT_FOUND));
            }
            Ok(request)
        },
    );
    let pages = pages.nest("/static", files);
    hashpass_poem::with_security_headers(
        hashpass.clone(),
        hashpass_poem::add_routes(&hashpass, pages),
    )
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
    static_dir: &Path,
    addr: SocketAddr,
) -> std::io::Result<()> {
    match framework {
        Framework::Axum => serve(standalone_app(hashpass, static_dir), addr).await,
        Framework::Poem => serve_poem(standalone_poem(hashpass, static_dir), addr).await,
    }
}

/// Serves a poem `app` on `addr` until SIGINT/SIGTERM, then finishes in-flight requests.
pub async fn serve_poem(
    app: impl poem::Endpoint + 'static,
    addr: SocketAddr,
) -> std::io::Result<()> {
    tracing::info!(%addr, "HashPass listening (poem)");
    poem::Server::new(poem::listener::TcpListener::bind(addr))
        .run_with_graceful_shutdown(
            app,
            shutdown_signal(),
            Some(std::time::Duration::from_secs(10)),
        )
        .await
}

/// Serves `app` on `addr` until SIGINT/SIGTERM, then finishes in-flight requests.
pub async fn serve(app: Router, addr: SocketAddr) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, "HashPass listening");
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await
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
