//! Test helpers of the services' process tests: the local stack as a config file, and child processes whose output lines
//! can be waited for.

use std::{
    io::{BufRead, BufReader, Read},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Condvar, Mutex},
    thread,
    time::{Duration, Instant},
};

/// Writes `properties` to `client.properties` in `dir`.
pub fn write_config(dir: &Path, properties: &str) -> PathBuf {
    let path = dir.join("client.properties");
    std::fs::write(&path, properties).unwrap();
    path
}

/// Lines a child wrote to one stream so far.
#[derive(Clone, Default)]
pub struct Lines(Arc<(Mutex<Vec<String>>, Condvar)>);

impl Lines {
    fn collect(stream: impl Read + Send + 'static, label: &'static str) -> Self {
        let lines = Lines::default();
        let sink = lines.clone();
        thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                eprintln!("[{label}] {line}");
                let (all, ready) = &*sink.0;
                all.lock().unwrap().push(line);
                ready.notify_all();
            }
        });
        lines
    }

    /// Every line so far.
    pub fn all(&self) -> Vec<String> {
        self.0.0.lock().unwrap().clone()
    }

    /// Waits until some line satisfies `pred` and returns it.
    pub fn wait_for(&self, timeout: Duration, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        let (all, ready) = &*self.0;
        let mut guard = all.lock().unwrap();
        loop {
            if let Some(line) = guard.iter().find(|l| pred(l)) {
                return line.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "timed out; lines so far: {:#?}", *guard);
            guard = ready.wait_timeout(guard, left).unwrap().0;
        }
    }

    /// Waits until `count` lines satisfy `pred`.
    pub fn wait_count(&self, timeout: Duration, count: usize, pred: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + timeout;
        let (all, ready) = &*self.0;
        let mut guard = all.lock().unwrap();
        while guard.iter().filter(|l| pred(l)).count() < count {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "timed out; lines so far: {:#?}", *guard);
            guard = ready.wait_timeout(guard, left).unwrap().0;
        }
    }
}

/// A running binary; killed when dropped.
pub struct Running {
    /// The process.
    pub child: Child,
    /// Its stdout lines.
    pub stdout: Lines,
    /// Its stderr lines.
    pub stderr: Lines,
}

impl Running {
    /// Starts `command` with piped output.
    pub fn start(mut command: Command) -> Self {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = Lines::collect(child.stdout.take().unwrap(), "stdout");
        let stderr = Lines::collect(child.stderr.take().unwrap(), "stderr");
        Running {
            child,
            stdout,
            stderr,
        }
    }

    /// The address from the `listening on http://ADDR` log line.
    pub fn listening_addr(&self) -> String {
        let line = self.stderr.wait_for(Duration::from_secs(60), |l| {
            l.contains("listening on http://")
        });
        let rest = line.split("listening on http://").nth(1).unwrap();
        rest.split_whitespace().next().unwrap().to_owned()
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the reader threads drain the pipes.
                thread::sleep(Duration::from_millis(200));
                return status;
            }
            assert!(Instant::now() < deadline, "did not stop after SIGTERM");
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
