//! The lines a child writes to one stream, collected by a reader thread and waited on.

use std::{
    collections::VecDeque,
    fs::File,
    io::{BufRead, BufReader, Read, Write},
    sync::{Arc, Condvar, Mutex, MutexGuard},
    thread,
    time::{Duration, Instant},
};

use anyhow::bail;

#[derive(Debug, Default)]
struct State {
    /// The lines kept: all of them, or the last `keep`.
    lines: VecDeque<String>,
    /// Lines dropped from the front past `keep` (line `i` of the stream is `lines[i - dropped]`).
    dropped: usize,
    /// Lines kept at most (`None`: every line).
    keep: Option<usize>,
    closed: bool,
}

/// The lines one stream of a child produced so far; cheap to clone (shared).
#[derive(Debug, Clone, Default)]
pub struct Lines(Arc<(Mutex<State>, Condvar)>);

impl Lines {
    /// Starts a thread reading `stream` line by line until its end, optionally echoing each
    /// line to stderr with `label` and appending it to `log`; with `keep`, only the last `keep`
    /// lines stay in memory (the log still gets every line).
    pub(crate) fn collect(
        stream: impl Read + Send + 'static,
        label: String,
        echo: bool,
        mut log: Option<File>,
        keep: Option<usize>,
    ) -> Self {
        let lines = Lines::default();
        lines.lock(&lines.0.0).keep = keep.map(|keep| keep.max(1));
        let sink = lines.clone();
        thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                if echo {
                    eprintln!("[{label}] {line}");
                }
                if let Some(log) = log.as_mut() {
                    // The log is for people; a full disk must not stop the collection.
                    let _ = writeln!(log, "{line}");
                }
                let (state, changed) = &*sink.0;
                let mut state = sink.lock(state);
                state.lines.push_back(line);
                if state.keep.is_some_and(|keep| state.lines.len() > keep) {
                    state.lines.pop_front();
                    state.dropped += 1;
                }
                drop(state);
                changed.notify_all();
            }
            let (state, changed) = &*sink.0;
            sink.lock(state).closed = true;
            changed.notify_all();
        });
        lines
    }

    fn lock<'a>(&self, state: &'a Mutex<State>) -> MutexGuard<'a, State> {
        // A panicking waiter cannot leave the line list half-updated: recover the guard.
        state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Every line so far (with a bound on the lines kept: the last ones).
    pub fn all(&self) -> Vec<String> {
        self.lock(&self.0.0).lines.iter().cloned().collect()
    }

    /// Whether a line so far contains `needle`.
    pub fn contains(&self, needle: &str) -> bool {
        self.find(needle).is_some()
    }

    /// The first line so far that contains `needle`.
    pub fn find(&self, needle: &str) -> Option<String> {
        self.lock(&self.0.0)
            .lines
            .iter()
            .find(|line| line.contains(needle))
            .cloned()
    }

    /// How many lines so far (dropped ones included).
    pub fn len(&self) -> usize {
        let state = self.lock(&self.0.0);
        state.dropped + state.lines.len()
    }

    /// How many of the first lines were dropped past the bound on the lines kept.
    pub fn dropped(&self) -> usize {
        self.lock(&self.0.0).dropped
    }

    /// Whether no line arrived yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the stream has ended (the child closed it, usually by exiting).
    pub fn is_closed(&self) -> bool {
        self.lock(&self.0.0).closed
    }

    /// Waits until the stream has ended and every line is collected; `false` if it is still
    /// open after `timeout`.
    pub fn wait_closed(&self, timeout: Duration) -> bool {
        self.wait_until(timeout, |state| state.closed.then_some(()))
            .is_some()
    }

    /// The line at `index`, waiting up to `timeout` for it; `None` when it does not come in
    /// time, the stream ends first, or it was dropped past the bound on the lines kept.
    pub fn line(&self, index: usize, timeout: Duration) -> Option<String> {
        self.wait_until(timeout, |state| match index.checked_sub(state.dropped) {
            None => Some(None),
            Some(index) => match state.lines.get(index) {
                Some(line) => Some(Some(line.clone())),
                None if state.closed => Some(None),
                None => None,
            },
        })
        .flatten()
    }

    /// Waits until some line satisfies `pred` and returns it.
    ///
    /// # Errors
    /// When no line does within `timeout`, or the stream ends without one; the error lists
    /// the last lines.
    pub fn wait_for(
        &self,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> anyhow::Result<String> {
        let found = self.wait_until(timeout, |state| {
            match state.lines.iter().find(|line| pred(line)) {
                Some(line) => Some(Some(line.clone())),
                None if state.closed => Some(None),
                None => None,
            }
        });
        match found.flatten() {
            Some(line) => Ok(line),
            None => bail!("no such line within {timeout:?}; {}", self.tail()),
        }
    }

    /// Waits until `count` lines satisfy `pred`.
    ///
    /// # Errors
    /// When fewer do within `timeout`, or the stream ends first.
    pub fn wait_count(
        &self,
        timeout: Duration,
        count: usize,
        pred: impl Fn(&str) -> bool,
    ) -> anyhow::Result<()> {
        let mut seen = 0;
        let reached = self.wait_until(timeout, |state| {
            seen = state.lines.iter().filter(|line| pred(line)).count();
            (seen >= count || state.closed).then_some(seen >= count)
        });
        if reached == Some(true) {
            Ok(())
        } else {
            bail!(
                "{seen} of {count} such lines within {timeout:?}; {}",
                self.tail()
            )
        }
    }

    /// Runs `ready` on the state each time it changes until it answers, or `timeout` passes.
    fn wait_until<T>(
        &self,
        timeout: Duration,
        mut ready: impl FnMut(&State) -> Option<T>,
    ) -> Option<T> {
        let deadline = Instant::now() + timeout;
        let (state, changed) = &*self.0;
        let mut guard = self.lock(state);
        loop {
            if let Some(answer) = ready(&guard) {
                return Some(answer);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            guard = changed
                .wait_timeout(guard, left)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
    }

    fn tail(&self) -> String {
        let state = self.lock(&self.0.0);
        let from = state.lines.len().saturating_sub(20);
        format!(
            "the stream is {}; its last lines: {:#?}",
            if state.closed { "closed" } else { "open" },
            state.lines.range(from..).collect::<Vec<_>>()
        )
    }
}
