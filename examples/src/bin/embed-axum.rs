//! A site of its own, with state of its own, and HashPass mounted under `/invite`, in axum.
//!
//! Run with: `cargo run --bin embed-axum` then open <http://127.0.0.1:3000/> (the site),
//! <http://127.0.0.1:3000/invite/> (the race) and <http://127.0.0.1:3000/invite/admin> (the
//! console; set `ADMIN_TOKEN`).

use axum::{Router, extract::State, routing::get};
use hashpass_axum::hashpass::{Config, HashPass};

/// The host site's own state: HashPass nests into a `Router<AppState>` unchanged.
#[derive(Clone)]
struct AppState {
    greeting: &'static str,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The periodic jobs start with the instance and stop when it is dropped.
    let hashpass = HashPass::builder(Config::from_env()?).build().await?;
    let app = Router::new()
        .route(
            "/",
            get(|State(state): State<AppState>| async move { state.greeting }),
        )
        // nest_service rather than nest: axum then answers /invite/ as well as /invite.
        .nest_service("/invite", hashpass_axum::router(hashpass.clone()))
        .with_state(AppState {
            greeting: "My site. Invite codes are raced for under /invite/.",
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    // The serve helper: each client's address, a bounded share of connections per address,
    // header-read and idle timeouts, and on Ctrl-C a graceful shutdown within a deadline.
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    hashpass_axum::serve(listener, app, &hashpass, ctrl_c).await?;
    Ok(())
}
