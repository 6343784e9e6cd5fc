//! [`Process`]: a child program whose output lines, signals and exit status tests wait on.

use std::{
    fs::OpenOptions,
    path::PathBuf,
    process::{Command, ExitStatus, Stdio},
    sync::{Arc, Condvar, Mutex},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use nix::{sys::signal::Signal, unistd::Pid};

use crate::Lines;

/// Where a [`Process`]'s output goes besides memory.
#[derive(Debug, Clone)]
pub struct Output {
    /// Append every stderr line to this file (the services log there).
    pub log: Option<PathBuf>,
    /// Echo every line to this process's stderr, prefixed with the child's name and stream
    /// (the test harness captures it and shows it when a test fails).
    pub echo: bool,
    /// Keep only the last this many lines of each stream in memory (`None`: every line). A
    /// long-running harness (the control room) sets it; the log file still gets every line.
    pub keep: Option<usize>,
}

impl Default for Output {
    /// Echoed, no log file.
    fn default() -> Self {
        Self {
            log: None,
            echo: true,
            keep: None,
        }
    }
}

impl Output {
    /// Not echoed; stderr appended to `log`.
    pub fn log_to(log: impl Into<PathBuf>) -> Self {
        Self {
            log: Some(log.into()),
            echo: false,
            keep: None,
        }
    }

    /// The same, keeping only the last `lines` lines of each stream in memory.
    pub fn keeping(self, lines: usize) -> Self {
        Self {
            keep: Some(lines),
            ..self
        }
    }
}

/// The exit status, set once by the thread that waits for the child.
type Exit = Arc<(Mutex<Option<ExitStatus>>, Condvar)>;

/// A running child program. Its stdout and stderr are collected line by line ([`Lines`]); a
/// thread waits for its exit, so [`Process::wait`] wakes on the exit itself. Killed (SIGKILL)
/// when dropped, unless it already exited.
#[derive(Debug)]
pub struct Process {
    name: String,
    pid: u32,
    stdout: Lines,
    stderr: Lines,
    exit: Exit,
    cursor: usize,
}

impl Process {
    /// Starts `command` (stdin closed, stdout and stderr collected) under `name`.
    ///
    /// # Errors
    /// When the log cannot be opened or the program cannot be started.
    pub fn start(name: &str, command: &mut Command, output: Output) -> anyhow::Result<Self> {
        let log = match &output.log {
            Some(path) => Some(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .with_context(|| format!("opening {}", path.display()))?,
            ),
            None => None,
        };
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {name} ({:?})", command.get_program()))?;
        let pid = child.id();
        let stdout = Lines::collect(
            child.stdout.take().context("stdout is piped")?,
            format!("{name} stdout"),
            output.echo,
            None,
            output.keep,
        );
        let stderr = Lines::collect(
            child.stderr.take().context("stderr is piped")?,
            format!("{name} stderr"),
            output.echo,
            log,
            output.keep,
        );
        let exit: Exit = Arc::default();
        let waiter = exit.clone();
        thread::spawn(move || {
            let status = child.wait();
            let (slot, exited) = &*waiter;
            if let Ok(status) = status {
                *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(status);
            }
            exited.notify_all();
        });
        Ok(Self {
            name: name.to_owned(),
            pid,
            stdout,
            stderr,
            exit,
            cursor: 0,
        })
    }

    /// The name given at start.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Its stdout lines.
    pub fn stdout(&self) -> &Lines {
        &self.stdout
    }

    /// Its stderr lines.
    pub fn stderr(&self) -> &Lines {
        &self.stderr
    }

    /// The next stdout line not yet returned by this method, waiting up to `timeout`; `None`
    /// when none comes in time or stdout has ended.
    pub fn next_line(&mut self, timeout: Duration) -> Option<String> {
        // Lines dropped past `Output::keep` are skipped.
        self.cursor = self.cursor.max(self.stdout.dropped());
        let line = self.stdout.line(self.cursor, timeout)?;
        self.cursor += 1;
        Some(line)
    }

    /// The address from its `listening on http://ADDR` log line.
    ///
    /// # Errors
    /// When no such line comes within `timeout`.
    pub fn listening_addr(&self, timeout: Duration) -> anyhow::Result<String> {
        let line = self
            .stderr
            .wait_for(timeout, |l| l.contains("listening on http://"))
            .with_context(|| format!("{} never said where it listens", self.name))?;
        line.split("listening on http://")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .map(str::to_owned)
            .with_context(|| format!("no address in {line:?}"))
    }

    /// The exit status, if it has exited (never blocks, never signals).
    pub fn try_wait(&self) -> Option<ExitStatus> {
        *self.exit.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sends `signal` (e.g. SIGSTOP/SIGCONT to freeze and thaw it). A process that has
    /// already exited is not signalled.
    ///
    /// # Errors
    /// When the signal cannot be sent.
    pub fn signal(&self, signal: Signal) -> anyhow::Result<()> {
        if self.try_wait().is_some() {
            return Ok(());
        }
        let pid = i32::try_from(self.pid).context("pid out of range")?;
        nix::sys::signal::kill(Pid::from_raw(pid), signal)
            .with_context(|| format!("sending {signal} to {} ({})", self.name, self.pid))
    }

    /// Sends `signal`, then waits up to `timeout` for a line on stderr containing `needle`
    /// (the process saying it got the signal, e.g. `SIGTERM received, shutting down`).
    ///
    /// # Errors
    /// When the signal cannot be sent or no such line comes in time.
    pub fn signal_and_wait_for(
        &self,
        signal: Signal,
        needle: &str,
        timeout: Duration,
    ) -> anyhow::Result<String> {
        self.signal(signal)?;
        self.stderr.wait_for(timeout, |line| line.contains(needle))
    }

    /// SIGKILL, then its exit status.
    ///
    /// # Errors
    /// When the signal cannot be sent or it does not die within 30 s.
    pub fn kill(&mut self) -> anyhow::Result<ExitStatus> {
        self.signal(Signal::SIGKILL)?;
        self.wait(Duration::from_secs(30))
    }

    /// SIGTERM, then waits up to `timeout` for the exit.
    ///
    /// # Errors
    /// When it does not exit in time (it is then killed).
    pub fn terminate(&mut self, timeout: Duration) -> anyhow::Result<ExitStatus> {
        self.signal(Signal::SIGTERM)?;
        self.wait(timeout)
    }

    /// Waits up to `timeout` for the exit, then for its output to be collected to the end.
    ///
    /// # Errors
    /// When it does not exit in time (it is then killed).
    pub fn wait(&mut self, timeout: Duration) -> anyhow::Result<ExitStatus> {
        let deadline = Instant::now() + timeout;
        let (slot, exited) = &*self.exit;
        let mut status = slot.lock().unwrap_or_else(|p| p.into_inner());
        while status.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                drop(status);
                let _ = self.signal(Signal::SIGKILL);
                bail!(
                    "{} did not exit within {timeout:?}; its stderr: {:#?}",
                    self.name,
                    last(&self.stderr.all(), 20)
                );
            }
            status = exited
                .wait_timeout(status, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        let status = status.expect("checked above");
        // The pipes close at exit unless a grandchild inherited them: bounded, not required.
        self.stdout.wait_closed(Duration::from_secs(5));
        self.stderr.wait_closed(Duration::from_secs(5));
        Ok(status)
    }
}

fn last(lines: &[String], n: usize) -> &[String] {
    &lines[lines.len().saturating_sub(n)..]
}

impl Drop for Process {
    fn drop(&mut self) {
        if self.try_wait().is_none() {
            let _ = self.signal(Signal::SIGKILL);
            let (slot, exited) = &*self.exit;
            let guard = slot.lock().unwrap_or_else(|p| p.into_inner());
            let _ = exited.wait_timeout_while(guard, Duration::from_secs(10), |s| s.is_none());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut command = Command::new("sh");
        command.args(["-c", script]);
        command
    }

    #[test]
    fn collects_lines_and_the_exit_status() {
        let mut p = Process::start(
            "sh",
            &mut sh("echo one; echo two >&2; exit 3"),
            Output::default(),
        )
        .unwrap();
        let status = p.wait(Duration::from_secs(10)).unwrap();
        assert_eq!(status.code(), Some(3));
        assert_eq!(p.stdout().all(), ["one"]);
        assert_eq!(p.stderr().all(), ["two"]);
        assert_eq!(p.next_line(Duration::ZERO).as_deref(), Some("one"));
        assert_eq!(p.next_line(Duration::ZERO), None);
    }

    /// With `keep`, 1,000 lines leave only the last 10 in memory; `len` counts them all and
    /// `next_line` goes on from the oldest kept.
    #[test]
    fn a_bounded_output_keeps_the_last_lines() {
        let mut p = Process::start(
            "sh",
            &mut sh("i=1; while [ $i -le 1000 ]; do echo line-$i; i=$((i+1)); done"),
            Output {
                echo: false,
                ..Output::default()
            }
            .keeping(10),
        )
        .unwrap();
        assert!(p.wait(Duration::from_secs(30)).unwrap().success());
        assert!(p.stdout().wait_closed(Duration::from_secs(10)));
        let kept: Vec<String> = (991..=1000).map(|i| format!("line-{i}")).collect();
        assert_eq!(p.stdout().all(), kept);
        assert_eq!(p.stdout().len(), 1000);
        assert_eq!(p.stdout().dropped(), 990);
        assert_eq!(p.stdout().line(0, Duration::ZERO), None);
        assert_eq!(
            p.stdout().line(995, Duration::ZERO).as_deref(),
            Some("line-996")
        );
        assert_eq!(p.next_line(Duration::ZERO).as_deref(), Some("line-991"));
    }

    #[test]
    fn terminate_delivers_sigterm() {
        let mut p = Process::start(
            "sleeper",
            &mut sh("trap 'echo got-term; exit 7' TERM; echo ready; while :; do sleep 0.1; done"),
            Output::default(),
        )
        .unwrap();
        p.stdout()
            .wait_for(Duration::from_secs(10), |l| l == "ready")
            .unwrap();
        let status = p.terminate(Duration::from_secs(10)).unwrap();
        assert_eq!(status.code(), Some(7));
        assert!(p.stdout().all().contains(&"got-term".to_owned()));
    }

    #[test]
    fn kill_reports_the_signal_and_wait_times_out_naming_the_process() {
        use std::os::unix::process::ExitStatusExt as _;
        let mut p = Process::start(
            "idle",
            &mut sh("echo up; exec sleep 600"),
            Output::default(),
        )
        .unwrap();
        p.stdout()
            .wait_for(Duration::from_secs(10), |l| l == "up")
            .unwrap();
        let error = p.wait(Duration::from_millis(10)).unwrap_err().to_string();
        assert!(error.contains("idle did not exit"), "{error}");
        let mut q = Process::start("idle2", &mut sh("exec sleep 600"), Output::default()).unwrap();
        assert_eq!(q.kill().unwrap().signal(), Some(9));
    }

    #[test]
    fn wait_for_fails_when_the_stream_ends_without_the_line() {
        let mut p = Process::start("sh", &mut sh("echo nope"), Output::default()).unwrap();
        p.wait(Duration::from_secs(10)).unwrap();
        let error = p
            .stdout()
            .wait_for(Duration::from_secs(60), |l| l == "yes")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("closed") && error.contains("nope"),
            "{error}"
        );
    }

    #[test]
    fn stderr_goes_to_the_log() {
        let dir = std::env::temp_dir().join(format!("test-support-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("log");
        let mut p = Process::start(
            "sh",
            &mut sh("echo out; echo err >&2"),
            Output::log_to(&log),
        )
        .unwrap();
        p.wait(Duration::from_secs(10)).unwrap();
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "err\n");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
