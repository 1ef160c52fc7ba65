//! The conformance suite against the axum adapter with every shared store in Redis.

hashpass_tests::conformance_suite!(redis: hashpass_tests::adapters::axum);
