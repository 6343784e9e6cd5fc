//! Support code of `cargo xtask`, shared with the end-to-end tests: building the three
//! service binaries and running them as separate processes against the local stack.

pub mod browser;
pub mod services;
