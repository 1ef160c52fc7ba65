//! A site of its own with HashPass mounted under `/invite`, in axum.
//!
//! Run with: `cargo run --bin embed-axum` then open <http://127.0.0.1:3000/> and
//! `curl -A 'Mozilla/5.0' http://127.0.0.1:3000/invite/api/health`.

use std::net::SocketAddr;

use axum::{Router, routing::get};
use hashpass::{Config, HashPass};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let hashpass = HashPass::builder(Config::from_env()?).build().await?;
    let app = Router::new()
        .route(
            "/",
            get(|| async { "My site. Invite codes are raced for under /invite." }),
        )
        .nest("/invite", hashpass_axum::router(hashpass));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await?;
    Ok(())
}
