//! Shared code for the HashPass examples.
