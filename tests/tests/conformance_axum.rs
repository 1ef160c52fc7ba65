//! The conformance suite against the axum adapter.

hashpass_tests::conformance_suite!(hashpass_tests::adapters::axum);
