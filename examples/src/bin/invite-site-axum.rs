//! An invite-only site in axum that mounts HashPass and gates its own sign-up with the codes won
//! in the race (the twin of `invite-site-poem`; the site itself is `hashpass_examples::site`).
//!
//! Run with: `SITE_JWT_SECRET=$(openssl rand -hex 32) cargo run --bin invite-site-axum`, win a
//! code at <http://127.0.0.1:8000/>, then sign up at <http://127.0.0.1:8000/join>. Accounts go to
//! `SITE_DATABASE_URL` (default: `invite-site.db`, SQLite); HashPass reads its usual settings.

use hashpass_examples::site::{launch_from_env, with_axum};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    hashpass_examples::exit_code("invite-site-axum", run().await)
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let launch = launch_from_env().await?;
    let app = with_axum::app(launch.site.clone(), launch.hashpass.clone());
    hashpass_examples::serve(app, &launch.hashpass, launch.addr).await?;
    Ok(())
}
