//! How each adapter serves a HashPass instance on a listener until told to stop.

use std::net::SocketAddr;

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
    let app = hashpass_examples::standalone_app(hashpass);
    Box::pin(serve_axum(app, listener, stop))
}

/// The poem adapter, mounted as the example server mounts it (API + pages).
pub fn poem(
    hashpass: HashPass,
    listener: TcpListener,
    stop: oneshot::Receiver<()>,
) -> BoxFuture<'static, ()> {
    let app = hashpass_examples::standalone_poem(hashpass);
    Box::pin(serve_poem(app, listener, stop))
}

/// Serves an axum `app` (with the peer address) on `listener` until `stop` fires.
pub async fn serve_axum(app: axum::Router, listener: TcpListener, stop: oneshot::Receiver<()>) {
    let _ = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        let _ = stop.await;
    })
    .await;
}

/// Serves a poem `app` on `listener` until `stop` fires (in-flight requests get 5 s).
pub async fn serve_poem(
    app: impl poem::Endpoint + 'static,
    listener: TcpListener,
    stop: oneshot::Receiver<()>,
) {
    let acceptor = poem::listener::TcpAcceptor::from_tokio(listener).expect("acceptor");
    let _ = poem::Server::new_with_acceptor(acceptor)
        .run_with_graceful_shutdown(
            app,
            async move {
                let _ = stop.await;
            },
            Some(std::time::Duration::from_secs(5)),
        )
        .await;
}
