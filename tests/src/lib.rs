//! Test harness for the workspace-level HashPass suites.
