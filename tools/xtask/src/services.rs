//! The three services as child processes: build them and start them against a
//! `client.properties` as [`Process`]es (the workspace's one process harness, from
//! `test-support`), and read what they report.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use anyhow::{Context as _, bail};
use serde_json::Value;

/// The workspace root.
pub fn workspace_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .parent()
        .expect("xtask lives in tools/ of the workspace")
        .to_path_buf()
}

/// Paths of the built service binaries.
#[derive(Debug, Clone)]
pub struct Binaries {
    /// `order-producer`.
    pub order_producer: PathBuf,
    /// `fulfillment-service`.
    pub fulfillment_service: PathBuf,
    /// `picklist-consumer`.
    pub picklist_consumer: PathBuf,
}

impl Binaries {
    /// Builds the three binaries (dev profile) with cargo and returns their paths.
    ///
    /// # Errors
    /// When the build fails.
    pub fn build() -> anyhow::Result<Self> {
        Self::build_profile(false)
    }

    /// Builds the three binaries with the release profile (for benchmarks).
    ///
    /// # Errors
    /// When the build fails.
    pub fn build_release() -> anyhow::Result<Self> {
        Self::build_profile(true)
    }

    fn build_profile(release: bool) -> anyhow::Result<Self> {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut args = vec!["build", "--quiet"];
        if release {
            args.push("--release");
        }
        for package in ["order-producer", "fulfillment-service", "picklist-consumer"] {
            args.extend(["-p", package]);
        }
        let status = Command::new(cargo)
            .current_dir(workspace_dir())
            .args(&args)
            .status()
            .context("running cargo build")?;
        if !status.success() {
            bail!("cargo build of the services failed ({status})");
        }
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace_dir().join("target"))
            .join(if release { "release" } else { "debug" });
        Ok(Self {
            order_producer: target.join("order-producer"),
            fulfillment_service: target.join("fulfillment-service"),
            picklist_consumer: target.join("picklist-consumer"),
        })
    }
}

pub use test_support::{FreePorts, Output, Process, Signal, http_get};

/// Starts the service binary `program` with `args` and `env` as a [`Process`] named `name`,
/// its stderr (the service's log) appended to `log`.
///
/// # Errors
/// When the log cannot be opened or the program cannot be started.
pub fn start(
    name: &str,
    program: &Path,
    args: &[String],
    env: &[(&str, &str)],
    log: &Path,
) -> anyhow::Result<Process> {
    start_with(name, program, args, env, Output::log_to(log))
}

/// [`start`] with the output handled as `output` says (e.g. only a bounded tail of the lines
/// kept in memory: [`Output::keeping`]).
///
/// # Errors
/// When the log cannot be opened or the program cannot be started.
pub fn start_with(
    name: &str,
    program: &Path,
    args: &[String],
    env: &[(&str, &str)],
    output: Output,
) -> anyhow::Result<Process> {
    let mut command = Command::new(program);
    // Several runs may be under way at once (tests, a bench beside a demo): the staff page and
    // the Order API bind a free port unless `args` or `env` name one (their defaults, 8091 and
    // 8090, are for a person running one of each).
    command
        .env("PICKLIST_CONSUMER_LISTEN", "127.0.0.1:0")
        .env("ORDER_API_LISTEN", "127.0.0.1:0")
        .args(args);
    for (key, value) in env {
        command.env(key, value);
    }
    Process::start(name, &mut command, output)
}

/// Waits until each of `services` has logged that its consumer group assigned it partitions
/// (the library's client context logs `partitions assigned` at info).
///
/// # Errors
/// When one has not within `timeout`; the error names it.
pub fn wait_until_assigned(services: &[&Process], timeout: Duration) -> anyhow::Result<()> {
    for service in services {
        service
            .stderr()
            .wait_for(timeout, |line| line.contains("partitions assigned"))
            .with_context(|| format!("{} was assigned no partitions", service.name()))?;
    }
    Ok(())
}

/// The orders `order-producer --report` says were acknowledged: order id → order time (ms).
///
/// # Errors
/// When the report cannot be read or a line is not the expected JSON.
pub fn read_report(path: &Path) -> anyhow::Result<HashMap<String, i64>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let v: Value =
                serde_json::from_str(line).with_context(|| format!("report line {line}"))?;
            let id = v["order_id"].as_str().context("order_id")?.to_owned();
            let time = v["order_time_ms"].as_i64().context("order_time_ms")?;
            Ok((id, time))
        })
        .collect()
}

/// Reads a Prometheus counter or gauge value from `/metrics` text.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (key, value) = l.rsplit_once(' ')?;
        let key = key.split('{').next()?;
        (key == name).then(|| value.parse().ok()).flatten()
    })
}

/// Percentile `p` (0–100) of sorted `values`, nearest-rank.
pub fn percentile(sorted: &[i64], p: f64) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<i64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), Some(50));
        assert_eq!(percentile(&v, 99.0), Some(99));
        assert_eq!(percentile(&v, 100.0), Some(100));
        assert_eq!(percentile(&[7], 99.9), Some(7));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn reads_prometheus_values() {
        let text = "# HELP x y\n# TYPE a counter\na_total 12\nb{le=\"1\"} 3\nlag 0.5\n";
        assert_eq!(metric(text, "a_total"), Some(12.0));
        assert_eq!(metric(text, "b"), Some(3.0));
        assert_eq!(metric(text, "lag"), Some(0.5));
        assert_eq!(metric(text, "missing"), None);
    }
}
