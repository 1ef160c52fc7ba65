//! The complete standalone HashPass system: public API, admin API, both WebSockets, the miner
//! page and the admin console (embedded in the binary: it runs from any directory), on
//! in-memory state with the audit log and blacklist on disk.
//!
//! Run with: `cargo run --release --bin hashpass-server` (reads `.env`, then the environment;
//! see `.env.example`). `--framework poem` (or `HASHPASS_FRAMEWORK=poem`) serves it with poem
//! instead of axum.

use hashpass::HashPass;
use hashpass_examples::{Framework, ServerSettings};

/// `--framework NAME` on the command line, else `HASHPASS_FRAMEWORK`, else axum.
fn framework() -> Result<Framework, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let from_args = match args.as_slice() {
        [] => None,
        [flag, name] if flag == "--framework" => Some(name.as_str()),
        [flag] if flag.starts_with("--framework=") => flag.strip_prefix("--framework="),
        _ => {
            return Err(format!(
                "unknown arguments {args:?} (usage: hashpass-server [--framework axum|poem])"
            ));
        }
    };
    let from_env = std::env::var("HASHPASS_FRAMEWORK")
        .ok()
        .filter(|name| !name.trim().is_empty());
    from_args
        .map(str::to_string)
        .or(from_env)
        .map_or(Ok(Framework::Axum), |name| name.parse())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    hashpass_examples::exit_code("hashpass-server", run().await)
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    // `.env` never overrides the real environment (as python-dotenv in the original).
    let _ = dotenvy::dotenv();
    let framework = framework()?;
    let (settings, config) = ServerSettings::from_env()?;
    let _log_guard = hashpass_examples::init_logging(&config.admin.log_dir, &settings.log_level)?;
    tracing::info!(?settings, ?config, "starting HashPass");
    let hashpass = settings
        .stores(HashPass::builder(config))
        .await?
        .build()
        .await?;
    let addr = settings.addr();
    hashpass_examples::serve_standalone(framework, hashpass, addr).await?;
    tracing::info!("stopped");
    Ok(())
}
