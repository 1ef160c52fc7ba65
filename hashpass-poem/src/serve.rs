//! Serving an endpoint with HashPass's connection edge (docs/protocol.md#connections): poem's
//! server on an acceptor that gives each client address a bounded share of connections and
//! holds them to the header-read and idle timeouts, with a graceful shutdown that ends within a
//! deadline whatever clients do.

use std::future::Future;
use std::io;

use hashpass::HashPass;
use hashpass::edge::{EdgeListener, EdgeStream};
use poem::http::uri::Scheme;
use poem::listener::Acceptor;
use poem::web::{LocalAddr, RemoteAddr};
use tokio::net::TcpListener;

/// Serves `app` (HashPass's [`route`](crate::route), or a host's app with it nested) on
/// `listener` until `signal` resolves, then shuts down gracefully:
/// 1. [`HashPass::shutdown`]: sockets closed with 1001 (their pages reconnect elsewhere),
///    verifications in flight finished; meanwhile connections are still accepted;
/// 2. the listener closes, and open requests get the drain deadline
///    (`HASHPASS_DRAIN_DEADLINE`, 10 s) to finish; connections still open then are closed.
///
/// Every connection is held to `hashpass`'s [`ConnectionLimits`](hashpass::edge::ConnectionLimits):
/// at most `HASHPASS_CONNECTIONS_PER_ADDRESS` per client address (beyond it a 429 and close;
/// a trusted proxy's connections are not counted), the header-read and idle timeouts.
///
/// ```rust,no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use hashpass_poem::hashpass::{Config, HashPass};
///
/// let hashpass = HashPass::builder(Config::from_env()?).build().await?;
/// let app = poem::Route::new().nest("/invite", hashpass_poem::route(hashpass.clone()));
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
/// let ctrl_c = async {
///     let _ = tokio::signal::ctrl_c().await;
/// };
/// hashpass_poem::serve(listener, app, &hashpass, ctrl_c).await?;
/// # Ok(())
/// # }
/// ```
pub async fn serve(
    listener: TcpListener,
    app: impl poem::Endpoint + 'static,
    hashpass: &HashPass,
    signal: impl Future<Output = ()>,
) -> io::Result<()> {
    let config = hashpass.config();
    let drain = config.network.connections.drain_deadline;
    let local = LocalAddr(listener.local_addr()?.into());
    let acceptor = EdgeAcceptor {
        listener: EdgeListener::from_config(listener, config),
        local,
    };
    let stop = async {
        signal.await;
        hashpass.shutdown(drain).await;
    };
    poem::Server::new_with_acceptor(acceptor)
        .run_with_graceful_shutdown(app, stop, Some(drain))
        .await
}

/// The edge listener as a poem acceptor.
struct EdgeAcceptor {
    listener: EdgeListener,
    local: LocalAddr,
}

impl Acceptor for EdgeAcceptor {
    type Io = EdgeStream;

    fn local_addr(&self) -> Vec<LocalAddr> {
        vec![self.local.clone()]
    }

    async fn accept(&mut self) -> io::Result<(Self::Io, LocalAddr, RemoteAddr, Scheme)> {
        let (stream, peer) = self.listener.accept().await;
        Ok((
            stream,
            self.local.clone(),
            RemoteAddr(peer.into()),
            Scheme::HTTP,
        ))
    }
}
