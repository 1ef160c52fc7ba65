//! A site of its own with HashPass mounted under `/invite`, in poem.
//!
//! Run with: `cargo run --bin embed-poem` then open <http://127.0.0.1:3000/> and
//! `curl -A 'Mozilla/5.0' http://127.0.0.1:3000/invite/api/health`.

use hashpass::{Config, HashPass};
use poem::{Route, Server, get, handler, listener::TcpListener};

#[handler]
fn home() -> &'static str {
    "My site. Invite codes are raced for under /invite."
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let hashpass = HashPass::builder(Config::from_env()?).build().await?;
    let app = Route::new()
        .at("/", get(home))
        .nest("/invite", hashpass_poem::route(hashpass));
    Server::new(TcpListener::bind("127.0.0.1:3000"))
        .run(app)
        .await?;
    Ok(())
}
