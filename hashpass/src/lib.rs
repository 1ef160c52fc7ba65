//! HashPass core (crate docs are completed below).

pub mod clock;
pub mod config;
pub mod connections;
pub mod difficulty;
pub mod error;
pub mod events;
pub mod hashrate;
pub mod metrics;
pub mod puzzle;
pub mod puzzle_store;
pub mod session;
pub mod verify;
pub mod wire;
mod util;
