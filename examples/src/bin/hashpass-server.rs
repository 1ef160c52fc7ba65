//! The complete standalone HashPass system: public API, admin API, both WebSockets, the miner
//! page and the admin console, on in-memory state with the audit log and blacklist on disk.
//!
//! Run with: `cargo run --release --bin hashpass-server` (reads `.env`, then the environment;
//! see `.env.example`).

use std::net::SocketAddr;

use hashpass::{Config, HashPass};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `.env` never overrides the real environment (as python-dotenv in the original).
    let _ = dotenvy::dotenv();
    let config = Config::from_env()?;
    let _log_guard = hashpass_examples::init_logging(&config)?;
    tracing::info!(?config, "starting HashPass");
    let port = config.port;
    let hashpass = HashPass::builder(config)
        .persist_to_data_dir()
        .build()
        .await?;
    let _jobs = hashpass.spawn_jobs();
    let app = hashpass_examples::standalone_app(hashpass, &hashpass_examples::static_dir());
    hashpass_examples::serve(app, SocketAddr::from(([0, 0, 0, 0], port))).await?;
    tracing::info!("stopped");
    Ok(())
}
