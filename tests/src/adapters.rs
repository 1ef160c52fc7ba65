//! How each adapter serves a HashPass instance on a listener until told to stop.

use futures_util::future::BoxFuture;
use hashpass::HashPass;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// The axum adapter, mounted as the example server mounts it (API + pages).
pub fn axum(
    hashpass: HashPass,
    listener: TcpListener,
    stop: oneshot::Receiver<()>,
) -> BoxFuture<'static, ()> {
    let app = hashpass_examples::standalone_app(hashpass.clone());
    Box::pin(async move { serve_axum(app, &hashpass, listener, stop).await })
}

/// The poem adapter, mounted as the example server mounts it (API + pages).
pub fn poem(
    hashpass: HashPass,
    listener: TcpListener,
    stop: oneshot::Receiver<()>,
) -> BoxFuture<'static, ()> {
    let app = hashpass_examples::standalone_poem(hashpass.clone());
    Box::pin(async move { serve_poem(app, &hashpass, listener, stop).await })
}

/// Serves an axum `app` on `listener` with the adapter's serve helper (the connection edge,
/// the peer address) until `stop` fires, then shuts `hashpass` down as a host would.
pub async fn serve_axum(
    app: axum::Router,
    hashpass: &HashPass,
    listener: TcpListener,
    stop: oneshot::Receiver<()>,
) {
    let _ = hashpass_axum::serve(listener, app, hashpass, async move {
        let _ = stop.await;
    })
    .await;
}

/// Serves a poem `app` on `listener` with the adapter's serve helper until `stop` fires, then
/// shuts `hashpass` down as a host would.
pub async fn serve_poem(
    app: impl poem::Endpoint + 'static,
    hashpass: &HashPass,
    listener: TcpListener,
    stop: oneshot::Receiver<()>,
) {
    let _ = hashpass_poem::serve(listener, app, hashpass, async move {
        let _ = stop.await;
    })
    .await;
}
