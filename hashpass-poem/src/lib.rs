//! poem adapter for HashPass: mounts the public and admin routes (issue #5).
