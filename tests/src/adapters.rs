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
    Box::pin(async move {
        let app = hashpass_examples::standalone_app(hashpass, &hashpass_examples::static_dir());
        let _ = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = stop.await;
        })
        .await;
    })
}

/// The poem adapter, mounted as the example server mounts it (API + pages).
pub fn poem(
    hashpass: HashPass,
    listener: TcpListener,
    stop: oneshot::Receiver<()>,
) -> BoxFuture<'static, ()> {
    Box::pin(async move {
        let app = hashpass_examples::standalone_poem(hashpass, &hashpass_examples::static_dir());
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
    })
}
