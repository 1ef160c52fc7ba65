//! The complete standalone HashPass system: public API, admin API, both WebSockets, the miner
//! page and the admin console (embedded in the binary: it runs from any directory), on
//! in-memory state with the audit log and blacklist on disk — and the operator's tools beside it.
//!
//! Run with: `cargo run --release --bin hashpass-server` (reads `.env`, then the environment;
//! see `.env.example`). `--framework poem` (or `HASHPASS_FRAMEWORK=poem`) serves it with poem
//! instead of axum. `hashpass-server help` lists the sub-commands: `serve` (the default),
//! `export-audit [--out FILE]`, `verify-code CODE [--key HEX]` and `outbox [--limit N]`
//! ([`hashpass_examples::operator`]).

/// jemalloc, purging in a background thread (its `background_threads` feature), returns the
/// memory of closed sockets to the system within seconds (about one: its decay times are set in
/// `.cargo/config.toml`); glibc's allocator keeps it.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    hashpass_examples::operator::run(std::env::args().skip(1)).await
}
