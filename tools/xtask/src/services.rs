//! The three services as child processes: build them, start them against a `client.properties`,
//! read what they print, stop them with SIGTERM or SIGKILL.

use std::{
    collections::HashMap,
    io::{BufRead, BufReader},
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::mpsc::{self, Receiver},
    thread,
    time::{Duration, Instant},
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

/// A free TCP port on 127.0.0.1 (bound and released; good enough for a child to bind next).
///
/// # Errors
/// When no port can be bound.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A running service. Killed (SIGKILL) when dropped, unless it already exited.
#[derive(Debug)]
pub struct Service {
    name: String,
    child: Child,
    lines: Option<Receiver<String>>,
}

impl Service {
    /// Starts `program` with `args`, its stderr going to `log` (appended) and, when
    /// `capture_stdout`, its stdout lines readable with [`Service::next_line`].
    ///
    /// # Errors
    /// When the process cannot be started.
    pub fn start(
        name: &str,
        program: &Path,
        args: &[String],
        env: &[(&str, &str)],
        log: &Path,
        capture_stdout: bool,
    ) -> anyhow::Result<Self> {
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("opening {}", log.display()))?;
        let mut command = Command::new(program);
        command.args(args).stderr(log_file).stdin(Stdio::null());
        for (k, v) in env {
            command.env(k, v);
        }
        command.stdout(if capture_stdout {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {}", program.display()))?;
        let lines = child.stdout.take().map(|stdout| {
            let (tx, rx) = mpsc::channel();
            thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
            rx
        });
        Ok(Self {
            name: name.to_owned(),
            child,
            lines,
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The next stdout line, or `None` after `timeout` or at end of output.
    pub fn next_line(&mut self, timeout: Duration) -> Option<String> {
        self.lines.as_ref()?.recv_timeout(timeout).ok()
    }

    fn signal(&self, signal: &str) -> anyhow::Result<()> {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()?;
        if !status.success() {
            bail!("kill {signal} {} failed", self.name);
        }
        Ok(())
    }

    /// SIGKILL, then waits for the process.
    ///
    /// # Errors
    /// When the signal cannot be sent.
    pub fn kill(&mut self) -> anyhow::Result<ExitStatus> {
        self.signal("-KILL")?;
        Ok(self.child.wait()?)
    }

    /// SIGTERM, then waits up to `timeout` for a graceful exit.
    ///
    /// # Errors
    /// When the process does not exit in time (it is then killed).
    pub fn terminate(&mut self, timeout: Duration) -> anyhow::Result<ExitStatus> {
        if let Some(status) = self.child.try_wait()? {
            return Ok(status);
        }
        self.signal("-TERM")?;
        self.wait(timeout)
    }

    /// The exit status, if the process has exited (never blocks, never kills).
    ///
    /// # Errors
    /// When the status cannot be read.
    pub fn try_wait(&mut self) -> anyhow::Result<Option<ExitStatus>> {
        Ok(self.child.try_wait()?)
    }

    /// Waits up to `timeout` for the process to exit; kills it if it does not.
    ///
    /// # Errors
    /// When it does not exit in time (it is then killed).
    pub fn wait(&mut self, timeout: Duration) -> anyhow::Result<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                let _ = self.kill();
                bail!("{} did not exit within {timeout:?}", self.name);
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
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

/// Waits until `log` contains `needle` at least `times` times.
///
/// # Errors
/// When it does not within `timeout`.
pub fn wait_for_log(
    log: &Path,
    needle: &str,
    times: usize,
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.matches(needle).count() >= times {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "'{needle}' seen {} of {times} times in {}",
                text.matches(needle).count(),
                log.display()
            );
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// Reads a Prometheus counter or gauge value from `/metrics` text.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (key, value) = l.rsplit_once(' ')?;
        let key = key.split('{').next()?;
        (key == name).then(|| value.parse().ok()).flatten()
    })
}

/// `GET http://addr/path` over a plain TCP connection, returning the body (read up to its
/// `Content-Length`, since some servers keep the connection open).
///
/// # Errors
/// When the server cannot be reached or answers with something other than 200.
pub fn http_get(addr: &str, path: &str) -> anyhow::Result<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut reader = BufReader::new(stream);
    let mut status = String::new();
    reader.read_line(&mut status)?;
    let mut content_length = None;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.trim().eq_ignore_ascii_case("content-length")
        {
            content_length = value.trim().parse::<usize>().ok();
        }
    }
    if !status.starts_with("HTTP/1.1 200") && !status.starts_with("HTTP/1.0 200") {
        bail!("GET {path} on {addr}: {}", status.trim());
    }
    let mut body = Vec::new();
    match content_length {
        Some(len) => {
            body.resize(len, 0);
            reader.read_exact(&mut body)?;
        }
        None => {
            reader.read_to_end(&mut body)?;
        }
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
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
