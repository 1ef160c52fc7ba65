//! An invite-only site in axum that mounts HashPass and gates its own sign-up with the codes won
//! in the race (the twin of `invite-site-poem`; the site itself is `hashpass_examples::site`).
//!
//! Run with: `SITE_JWT_SECRET=$(openssl rand -hex 32) cargo run --bin invite-site-axum`, win a
//! code at <http://127.0.0.1:8000/>, then sign up at <http://127.0.0.1:8000/join>. Accounts go to
//! `SITE_DATABASE_URL` (default: `invite-site.db`, SQLite); HashPass reads its usual settings.

use std::net::SocketAddr;

use hashpass::{Config, HashPass};
use hashpass_examples::site::{Site, SiteConfig, with_axum};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let _ = dotenvy::dotenv();
    let site_config = SiteConfig::from_env()?;
    let config = Config::from_env()?;
    let _log_guard = hashpass_examples::init_logging(&config)?;
    if config.hmac_secret.is_none() {
        tracing::warn!(
            "HASHPASS_HMAC_SECRET is not set: codes won now will not verify after a restart"
        );
    }
    let hashpass = HashPass::builder(config.clone())
        .persist_to_data_dir()
        .build()
        .await?;
    let _jobs = hashpass.spawn_jobs();
    let site = Site::open(site_config, &hashpass).await?;
    let app = with_axum::app(site, hashpass, &hashpass_examples::static_dir());
    let addr = SocketAddr::from(([0, 0, 0, 0], config.port));
    hashpass_examples::serve(app, addr).await?;
    Ok(())
}
