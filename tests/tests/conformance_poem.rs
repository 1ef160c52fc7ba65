//! The conformance suite against the poem adapter: the very same cases as for axum.

hashpass_tests::conformance_suite!(hashpass_tests::adapters::poem);
