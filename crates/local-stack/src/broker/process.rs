//! The broker's JVM as a child process: spawned from a dedicated thread (so that
//! `PR_SET_PDEATHSIG` kills it when this process dies, whatever thread asked for the spawn), in a
//! process group of its own, with stdout and stderr captured into a [`LogBook`] and a log file.

use std::{
    fs::File,
    io::{BufRead, BufReader, Read, Write},
    os::unix::process::CommandExt,
    path::Path,
    process::{Child, Command, Stdio},
    sync::{
        Arc, Condvar, Mutex,
        mpsc::{self, Sender},
    },
    thread,
    time::{Duration, Instant},
};

/// Lines the broker printed, shared by the reader threads and the handle.
#[derive(Debug, Default)]
pub(crate) struct LogBook {
    state: Mutex<LogState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct LogState {
    lines: Vec<String>,
    /// Reader threads still attached to a running JVM.
    open_streams: usize,
}

/// Keeps at most this many lines in memory (the file keeps everything).
const MAX_LINES: usize = 400_000;

impl LogBook {
    /// Number of lines so far (a position to search from).
    pub(crate) fn len(&self) -> usize {
        self.lock().lines.len()
    }

    /// Lines containing `needle`, from line `from` on.
    pub(crate) fn count(&self, needle: &str, from: usize) -> usize {
        let state = self.lock();
        state
            .lines
            .iter()
            .skip(from)
            .filter(|l| l.contains(needle))
            .count()
    }

    /// The last `n` lines, joined.
    pub(crate) fn tail(&self, n: usize) -> String {
        let state = self.lock();
        state.lines[state.lines.len().saturating_sub(n)..].join("\n")
    }

    /// The lines from `from` on that report a problem (`ERROR`, `FATAL`, an exception or a
    /// stack frame), at most `n` of them, joined: what a failed start is explained by, which
    /// the tail of a start log (its configuration dump) does not show.
    pub(crate) fn problems(&self, from: usize, n: usize) -> String {
        let state = self.lock();
        state
            .lines
            .iter()
            .skip(from)
            .filter(|l| {
                l.contains(" ERROR ")
                    || l.contains(" FATAL ")
                    || l.contains("Exception")
                    || l.trim_start().starts_with("at ")
                    || l.trim_start().starts_with("Caused by")
            })
            .take(n)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Waits until `count` lines from `from` on contain `needle` (true), or until the JVM's
    /// output closed or `timeout` passed (false).
    pub(crate) fn wait_for(
        &self,
        needle: &str,
        count: usize,
        from: usize,
        timeout: Duration,
    ) -> bool {
        let deadline = Instant::now() + timeout;
        let mut state = self.lock();
        loop {
            let seen = state
                .lines
                .iter()
                .skip(from)
                .filter(|l| l.contains(needle))
                .count();
            if seen >= count {
                return true;
            }
            let now = Instant::now();
            if state.open_streams == 0 || now >= deadline {
                return false;
            }
            state = self
                .changed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Waits until no JVM output stream is open (true) or `timeout` passed (false).
    pub(crate) fn wait_closed(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut state = self.lock();
        while state.open_streams > 0 {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            state = self
                .changed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        true
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LogState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, line: String) {
        let mut state = self.lock();
        if state.lines.len() >= MAX_LINES {
            state.lines.drain(..MAX_LINES / 4);
        }
        state.lines.push(line);
        self.changed.notify_all();
    }

    fn stream_opened(&self) {
        self.lock().open_streams += 1;
    }

    fn stream_closed(&self) {
        self.lock().open_streams -= 1;
        self.changed.notify_all();
    }
}

type SpawnRequest = (Command, Sender<std::io::Result<Child>>);

/// A thread that spawns the JVMs of one broker and lives as long as the broker handle, so the
/// parent-death signal (which Linux ties to the spawning thread) only fires when it should.
#[derive(Debug)]
pub(crate) struct Spawner {
    requests: Option<Sender<SpawnRequest>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Spawner {
    pub(crate) fn new() -> std::io::Result<Self> {
        let (requests, inbox) = mpsc::channel::<SpawnRequest>();
        let thread = thread::Builder::new()
            .name("kafka-broker-spawner".into())
            .spawn(move || {
                for (mut command, reply) in inbox {
                    let _ = reply.send(command.spawn());
                }
            })?;
        Ok(Self {
            requests: Some(requests),
            thread: Some(thread),
        })
    }

    /// Spawns `command` in its own process group, killed by the kernel if this process dies,
    /// its output read into `log` and appended to `log_file`.
    pub(crate) fn spawn(
        &self,
        mut command: Command,
        log: &Arc<LogBook>,
        log_file: &Path,
    ) -> std::io::Result<Child> {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        // SAFETY: the closure only calls prctl(2), which is async-signal-safe, and touches no
        // memory of the parent.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let (reply, answer) = mpsc::channel();
        self.requests
            .as_ref()
            .ok_or_else(|| std::io::Error::other("spawner stopped"))?
            .send((command, reply))
            .map_err(|_| std::io::Error::other("spawner thread stopped"))?;
        let mut child = answer
            .recv()
            .map_err(|_| std::io::Error::other("spawner thread stopped"))??;
        let file = Arc::new(Mutex::new(
            File::options().create(true).append(true).open(log_file)?,
        ));
        if let Some(out) = child.stdout.take() {
            read_into(out, log.clone(), file.clone())?;
        }
        if let Some(err) = child.stderr.take() {
            read_into(err, log.clone(), file)?;
        }
        Ok(child)
    }
}

impl Drop for Spawner {
    fn drop(&mut self) {
        drop(self.requests.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn read_into(
    stream: impl Read + Send + 'static,
    log: Arc<LogBook>,
    file: Arc<Mutex<File>>,
) -> std::io::Result<()> {
    log.stream_opened();
    let spawned = thread::Builder::new()
        .name("kafka-broker-log".into())
        .spawn({
            let log = log.clone();
            move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    if let Ok(mut file) = file.lock() {
                        let _ = writeln!(file, "{line}");
                    }
                    log.push(line);
                }
                log.stream_closed();
            }
        });
    if let Err(e) = spawned {
        log.stream_closed();
        return Err(e);
    }
    Ok(())
}

/// Sends `signal` to the process `pid`.
pub(crate) fn signal(pid: u32, signal: libc::c_int) -> std::io::Result<()> {
    let pid = libc::pid_t::try_from(pid).map_err(std::io::Error::other)?;
    // SAFETY: kill(2) with a pid we spawned and still own (not yet reaped).
    if unsafe { libc::kill(pid, signal) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Waits up to `timeout` for `child` to exit, which its closed output streams announce
/// (`None` if it is still running then).
pub(crate) fn wait_timeout(
    child: &mut Child,
    log: &LogBook,
    timeout: Duration,
) -> std::io::Result<Option<std::process::ExitStatus>> {
    if log.wait_closed(timeout) {
        child.wait().map(Some)
    } else {
        child.try_wait()
    }
}

#[cfg(test)]
mod tests {
    use super::LogBook;

    #[test]
    fn problems_are_the_error_lines_and_stack_frames_after_the_start() {
        let log = LogBook::default();
        log.push("[2026-12-07 14:35:15,000] ERROR an earlier run (kafka.Kafka)".into());
        let from = log.len();
        for line in [
            "\tsocket.send.buffer.bytes = 102400",
            "[2026-12-07 14:35:15,380] ERROR Disk error while locking directory /d (x)",
            "java.io.IOException: No space left on device",
            "\tat kafka.log.LogManager.lockLogDirs(LogManager.scala:1)",
            "[2026-12-07 14:35:15,381] INFO loading (kafka.log.LogManager)",
        ] {
            log.push(line.into());
        }
        assert_eq!(
            log.problems(from, 40),
            "[2026-12-07 14:35:15,380] ERROR Disk error while locking directory /d (x)\n\
             java.io.IOException: No space left on device\n\
             \tat kafka.log.LogManager.lockLogDirs(LogManager.scala:1)"
        );
        assert_eq!(log.problems(from, 1).lines().count(), 1);
    }
}
