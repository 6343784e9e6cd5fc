//! Dev-only support for the workspace's tests, the local stack and `xtask`: the one process
//! harness ([`Process`]: start a program, read its output lines as they come, signal it, wait
//! for its exit status), the jars of JVM tools ([`maven::classpath`]) and small helpers
//! ([`http_get`], [`free_port`], [`write_config`]).
//!
//! Waiting is on events, never on sleeps: a line arriving, a stream closing, the child exiting.
//!
//! ```
//! use std::{process::Command, time::Duration};
//!
//! use test_support::{Output, Process};
//!
//! let mut echo = Process::start("echo", Command::new("echo").arg("ready"), Output::default())?;
//! echo.stdout().wait_for(Duration::from_secs(10), |line| line == "ready")?;
//! assert!(echo.wait(Duration::from_secs(10))?.success());
//! # Ok::<(), anyhow::Error>(())
//! ```

mod http;
mod lines;
pub mod maven;
mod process;

pub use http::{free_port, http_get, write_config};
pub use lines::Lines;
pub use nix::sys::signal::Signal;
pub use process::{Output, Process};

/// Asserts how a service refuses bad configuration at start-up: exit status 2 and exactly one
/// line on stderr, `error: …`, naming `named` (the key or file at fault).
///
/// # Panics
/// When the output is otherwise (the message shows stderr).
pub fn assert_config_refused(output: &std::process::Output, named: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(stderr.contains(named), "{stderr} should name {named}");
}
