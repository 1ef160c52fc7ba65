//! Serving an app with HashPass's connection edge (docs/protocol.md#connections): what
//! `axum::serve` does, plus a bounded share of connections per client address, the header-read
//! and idle timeouts, and a graceful shutdown that ends within a deadline whatever clients do.

use std::future::Future;
use std::net::SocketAddr;

use axum::Router;
use axum::extract::ConnectInfo;
use hashpass::HashPass;
use hashpass::edge::EdgeListener;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tower::ServiceExt;

/// Serves `app` (HashPass's router, or a host's app with it nested) on `listener` until
/// `signal` resolves, then shuts down gracefully:
/// 1. [`HashPass::shutdown`]: sockets closed with 1001 (their pages reconnect elsewhere),
///    verifications in flight finished; meanwhile connections are still accepted;
/// 2. the listener closes, and open requests get the drain deadline
///    (`HASHPASS_DRAIN_DEADLINE`, 10 s) to finish; connections still open then are closed.
///
/// Every connection is held to `hashpass`'s [`ConnectionLimits`](hashpass::edge::ConnectionLimits):
/// at most `HASHPASS_CONNECTIONS_PER_ADDRESS` per client address (beyond it a 429 and close;
/// a trusted proxy's connections are not counted), the header-read and idle timeouts. Each
/// request carries the peer as [`ConnectInfo<SocketAddr>`], as with
/// `into_make_service_with_connect_info`. HTTP/1.1 only: HTTP/2 belongs at the TLS front.
///
/// ```rust,no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use hashpass_axum::hashpass::{Config, HashPass};
///
/// let hashpass = HashPass::builder(Config::from_env()?).build().await?;
/// let app = axum::Router::new().nest_service("/invite", hashpass_axum::router(hashpass.clone()));
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
/// let ctrl_c = async {
///     let _ = tokio::signal::ctrl_c().await;
/// };
/// hashpass_axum::serve(listener, app, &hashpass, ctrl_c).await?;
/// # Ok(())
/// # }
/// ```
pub async fn serve(
    listener: TcpListener,
    app: Router,
    hashpass: &HashPass,
    signal: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let config = hashpass.config();
    let drain = config.network.connections.drain_deadline;
    let mut listener = EdgeListener::from_config(listener, config);
    let builder = auto::Builder::new(TokioExecutor::new()).http1_only();
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut connections = JoinSet::new();
    let stop = async {
        signal.await;
        hashpass.shutdown(drain).await;
    };
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            (stream, peer) = listener.accept() => {
                let app = app.clone();
                let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
                    request.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
                    app.clone().oneshot(request)
                });
                let connection = builder
                    .serve_connection_with_upgrades(TokioIo::new(stream), service)
                    .into_owned();
                let connection = graceful.watch(connection);
                connections.spawn(async move {
                    let _ = connection.await;
                });
            }
        }
    }
    drop(listener);
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            open = connections.len(),
            deadline_seconds = drain.as_secs(),
            "connections still open at the drain deadline are closed"
        );
    }
    connections.shutdown().await;
    Ok(())
}
