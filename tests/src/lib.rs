//! The conformance harness: start a real HashPass server (any adapter) on 127.0.0.1, talk to it
//! over HTTP and WebSocket from distinct 127.x.y.z source addresses (Linux routes all of 127/8
//! to loopback), and check the wire contract of docs/protocol.md#overview.
//!
//! Every case in [`cases`] takes the adapter's serve function, and [`conformance_suite!`]
//! instantiates the whole list for one adapter, so each adapter runs the very same cases.

pub mod adapters;
pub mod cases;
pub mod client;
pub mod postgres_server;
pub mod process;
pub mod redis_server;
pub mod server;
pub mod tls;
pub mod webhook_receiver;

pub use client::{Http, Player, solve_for};

/// Every Rust block of the README, compiled (and run, unless marked `no_run`) as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
pub use server::{Serve, TestServer, test_config};

/// Instantiates every conformance case as a `#[tokio::test]` for one adapter; with `redis:`
/// the servers keep their shared state in a real `redis-server` instead of memory.
///
/// ```ignore
/// hashpass_tests::conformance_suite!(hashpass_tests::adapters::axum);
/// hashpass_tests::conformance_suite!(redis: hashpass_tests::adapters::axum);
/// ```
#[macro_export]
macro_rules! conformance_suite {
    (redis: $serve:path) => {
        $crate::conformance_suite!(@all $serve, $crate::server::use_redis_for_shared_state());
    };
    ($serve:path) => {
        $crate::conformance_suite!(@all $serve, ());
    };
    (@all $serve:path, $setup:expr) => {
        $crate::conformance_suite!(@cases $serve, $setup;
            full_round,
            concurrent_solvers_one_winner_per_round,
            reconnect_within_grace,
            session_ladder,
            public_errors,
            bad_input_never_5xx,
            oversize_and_binary_frames,
            admin_endpoints,
            admin_validation,
            admin_lockout,
            parallel_admin_guesses,
            forwarded_for_lines,
            session_budget_per_address,
            admin_socket,
            kick_closes_idle_sockets,
            kick_all_and_clear_sessions,
            timeout_reset_and_reward,
            webhook_delivery,
            webhook_outbox_survives_restart,
            failed_webhooks_are_retried_on_request,
            unrecorded_win_is_not_acknowledged,
            graceful_shutdown_hands_over,
            audit_log_written_and_rotated,
            blacklist_survives_restart,
            slow_reader_does_not_delay_others,
            ua_filter_and_headers,
            metrics_endpoint,
            embedded_pages,
            browser_miner,
            browser_admin,
        );
    };
    (@cases $serve:path, $setup:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let () = $setup;
                $crate::cases::$case($serve).await;
            }
        )*
    };
}
