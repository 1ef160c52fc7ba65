//! A site of its own with HashPass mounted under `/invite`, in poem.
//!
//! Run with: `cargo run --bin embed-poem` then open <http://127.0.0.1:3000/> (the site),
//! <http://127.0.0.1:3000/invite/> (the race) and <http://127.0.0.1:3000/invite/admin> (the
//! console; set `ADMIN_TOKEN`).

use hashpass_poem::hashpass::{Config, HashPass};
use poem::{Route, get, handler};

#[handler]
fn home() -> &'static str {
    "My site. Invite codes are raced for under /invite/."
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The periodic jobs start with the instance and stop when it is dropped.
    let hashpass = HashPass::builder(Config::from_env()?).build().await?;
    let app = Route::new()
        .at("/", get(home))
        .nest("/invite", hashpass_poem::route(hashpass.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    // The serve helper: a bounded share of connections per client address, header-read and
    // idle timeouts, and on Ctrl-C a graceful shutdown within a deadline.
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    hashpass_poem::serve(listener, app, &hashpass, ctrl_c).await?;
    Ok(())
}
