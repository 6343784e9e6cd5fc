//! Dev-only support for the workspace's tests, the local stack and `xtask`: the one process
//! harness ([`Process`]: start a program, read its output lines as they come, signal it, wait
//! for its exit status), the jars of JVM tools ([`maven::classpath`]) and small helpers
//! ([`http_get`], [`FreePorts`], [`write_config`]), and the import graph of a crate's modules
//! ([`ImportGraph`], which every crate's `tests/import_graph.rs` checks for circles).
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
mod import_graph;
mod lines;
pub mod maven;
mod ports;
mod process;

pub use http::{http_get, write_config};
pub use import_graph::ImportGraph;
pub use lines::Lines;
pub use nix::sys::signal::Signal;
pub use ports::FreePorts;
pub use process::{Output, Process};

/// The whole number that follows the first `prefix` in `text`, e.g. `number_after(line,
/// "order consumer: ")` is 12 in `... order consumer: 12 inputs not committed`.
pub fn number_after(text: &str, prefix: &str) -> Option<u64> {
    text.split(prefix)
        .nth(1)?
        .split_whitespace()
        .next()?
        .trim_end_matches([',', ';', '.', ')'])
        .parse()
        .ok()
}

/// The value of the sample `series` in Prometheus or OpenMetrics text: `series` is the metric
/// name with its labels as the service prints them (`name` or `name{a="b",c="d"}`), matched
/// whole, so `name` does not match `name_total`. `None` when there is no such sample or its
/// value is not a number.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let (name, rest) = line.split_once(' ')?;
        if name != series {
            return None;
        }
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// Polls `GET /metrics` of the service at `addr` until the sample `series` (as in [`metric`])
/// satisfies `done`, and returns its value: the condition is the event waited on, the pause
/// between requests only spaces them.
///
/// # Errors
/// When the service cannot be reached, or the condition does not hold within `timeout` (the
/// error shows the last `/metrics`).
pub fn wait_metric(
    addr: &str,
    series: &str,
    timeout: std::time::Duration,
    done: impl Fn(f64) -> bool,
) -> anyhow::Result<f64> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let text = http_get(addr, "/metrics")?;
        if let Some(value) = metric(&text, series).filter(|v| done(*v)) {
            return Ok(value);
        }
        if std::time::Instant::now() >= deadline {
            anyhow::bail!(
                "{series} did not reach its condition within {timeout:?}; last /metrics:\n{text}"
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

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

#[cfg(test)]
mod metric_tests {
    use super::metric;

    #[test]
    fn finds_a_sample_by_its_whole_series() {
        let text = "# TYPE a counter\na_total 3\na 1.5\nb{x=\"1\"} 7 1700000000\nc nan?\n";
        assert_eq!(metric(text, "a"), Some(1.5));
        assert_eq!(metric(text, "a_total"), Some(3.0));
        assert_eq!(metric(text, "b{x=\"1\"}"), Some(7.0));
        assert_eq!(metric(text, "b"), None);
        assert_eq!(metric(text, "c"), None);
        assert_eq!(metric(text, "d"), None);
    }
}
