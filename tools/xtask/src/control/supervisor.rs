//! The three services as the processes they are: started and stopped on request, their state
//! (running, stopped, exited with status N), every run's exit status kept for the end, and the
//! tail of each service's log (its stderr, bounded: [`LOG_TAIL_LINES`]) with each line's level
//! for the page's log view.

use std::{
    os::unix::process::ExitStatusExt as _,
    path::PathBuf,
    process::ExitStatus,
    sync::{
        Mutex as StdMutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use anyhow::{Context as _, bail};
use serde::Serialize;
use serde_json::json;
use test_support::Lines;
use tokio::sync::Mutex;
use xtask::services::{self, Binaries, Process};

/// Lines of each stream of a service the control room keeps in memory (the last ones; about
/// 1 MiB per service at the services' line lengths).
const LOG_TAIL_LINES: usize = 2_000;
/// Log lines of a service the page is sent (the last ones of the tail).
const LOG_PAGE_LINES: usize = 300;
/// The levels of the services' log lines (`tracing_subscriber`'s format: time, level, target).
const LEVELS: [&str; 5] = ["ERROR", "WARN", "INFO", "DEBUG", "TRACE"];
/// How long a service has to stop after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a service has to say where it listens.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The services, in the order "start all" starts them (consumers first, so they are in their
/// groups when orders come).
pub(crate) const NAMES: [&str; 3] = ["fulfillment-service", "picklist-consumer", "order-producer"];

/// One service's slot: the running process and how its last run ended.
#[derive(Default)]
struct Slot {
    process: Option<Process>,
    addr: Option<String>,
    /// How the last run ended: by a stop from the page, or on its own.
    ended: Option<(bool, ExitStatus)>,
    runs: u64,
}

/// A service's state as the page shows it.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct ServiceState {
    pub(crate) name: &'static str,
    /// `running`, `stopped`, `exited`, `starting`, `stopping` or `not started`.
    pub(crate) state: &'static str,
    /// The text shown, e.g. `exited with status 1`.
    text: String,
    /// Its HTTP address while it runs.
    addr: Option<String>,
    pid: Option<u32>,
}

/// Every run of every service, ended: (service, stopped from the page, exit status).
pub(crate) type Ended = Vec<(&'static str, bool, ExitStatus)>;

/// Starts and stops the services.
pub(crate) struct Supervisor {
    bins: Binaries,
    config: PathBuf,
    log: PathBuf,
    seed: u64,
    /// Orders per second the producer is started with, and asked to keep.
    rate: StdMutex<f64>,
    slots: [Mutex<Slot>; 3],
    /// What a slot is busy with while its lock is held (`starting` / `stopping`).
    busy: [StdMutex<Option<&'static str>>; 3],
    ended: StdMutex<Ended>,
    /// Each service's stderr of its last run (a bounded tail), kept after it ends.
    logs: [StdMutex<Option<Lines>>; 3],
    http: reqwest::Client,
    orders_started: AtomicU64,
}

/// `exit status N` or `signal N`.
pub(crate) fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("status {code}"),
        (None, Some(signal)) => format!("signal {signal}"),
        _ => status.to_string(),
    }
}

fn index(name: &str) -> anyhow::Result<usize> {
    NAMES
        .iter()
        .position(|n| *n == name)
        .with_context(|| format!("no service named {name:?}; the services are {NAMES:?}"))
}

impl Supervisor {
    pub(crate) fn new(bins: Binaries, config: PathBuf, log: PathBuf, seed: u64, rate: f64) -> Self {
        Self {
            bins,
            config,
            log,
            seed,
            rate: StdMutex::new(rate),
            slots: Default::default(),
            busy: Default::default(),
            ended: StdMutex::default(),
            logs: Default::default(),
            http: reqwest::Client::new(),
            orders_started: AtomicU64::new(0),
        }
    }

    /// The rate the producer runs at (or will start with).
    pub(crate) fn rate(&self) -> f64 {
        *self.rate.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set_busy(&self, i: usize, what: Option<&'static str>) {
        *self.busy[i].lock().unwrap_or_else(|p| p.into_inner()) = what;
    }

    /// Starts service `name` unless it runs; waits until it says where it listens.
    ///
    /// # Errors
    /// An unknown name, or the service cannot be started or exits at once.
    pub(crate) async fn start(&self, name: &str) -> anyhow::Result<()> {
        let i = index(name)?;
        let mut slot = self.slots[i].lock().await;
        if slot
            .process
            .as_ref()
            .is_some_and(|p| p.try_wait().is_none())
        {
            return Ok(());
        }
        self.record_exit(NAMES[i], &mut slot, false);
        self.set_busy(i, Some("starting"));
        slot.runs += 1;
        let config = self.config.display().to_string();
        let mut args = vec!["--config".to_owned(), config];
        match NAMES[i] {
            "order-producer" => {
                // Each run its own seed: the same seed would send the same order ids again.
                let run = self.orders_started.fetch_add(1, Ordering::Relaxed);
                args.extend([
                    "--count".into(),
                    u64::MAX.to_string(),
                    "--rate".into(),
                    self.rate().to_string(),
                    "--seed".into(),
                    (self.seed + run).to_string(),
                    "--listen".into(),
                    "127.0.0.1:0".into(),
                ]);
            }
            "fulfillment-service" => args.extend(["--listen".into(), "127.0.0.1:0".into()]),
            // Simulated store staff walk each pick list to READY, so the funnel moves.
            _ => args.extend(
                [
                    "--json",
                    "--listen",
                    "127.0.0.1:0",
                    "--simulate-staff",
                    "--staff-pace-ms",
                    "1000",
                ]
                .map(String::from),
            ),
        }
        let program = match NAMES[i] {
            "order-producer" => &self.bins.order_producer,
            "fulfillment-service" => &self.bins.fulfillment_service,
            _ => &self.bins.picklist_consumer,
        };
        // The control room runs for hours: only a tail of each service's output stays in
        // memory (every line still goes to the log file).
        let output = services::Output::log_to(&self.log).keeping(LOG_TAIL_LINES);
        let started =
            services::start_with(NAMES[i], program, &args, &[("RUST_LOG", "info")], output);
        let result = match started {
            Ok(process) => {
                *self.logs[i].lock().unwrap_or_else(|p| p.into_inner()) =
                    Some(process.stderr().clone());
                let (process, addr) = tokio::task::spawn_blocking(move || {
                    let addr = process.listening_addr(START_TIMEOUT);
                    (process, addr)
                })
                .await?;
                slot.process = Some(process);
                slot.addr = addr.as_ref().ok().cloned();
                addr.map(drop)
            }
            Err(error) => Err(error),
        };
        self.set_busy(i, None);
        result.with_context(|| format!("starting {}; its log is {}", NAMES[i], self.log.display()))
    }

    /// Stops service `name` (SIGTERM, then its exit status; killed if it takes too long).
    ///
    /// # Errors
    /// An unknown name, or the service does not stop.
    pub(crate) async fn stop(&self, name: &str) -> anyhow::Result<()> {
        let i = index(name)?;
        let mut slot = self.slots[i].lock().await;
        let Some(mut process) = slot.process.take() else {
            return Ok(());
        };
        slot.addr = None;
        if process.try_wait().is_some() {
            slot.process = Some(process);
            self.record_exit(NAMES[i], &mut slot, false);
            return Ok(());
        }
        self.set_busy(i, Some("stopping"));
        let (process, status) = tokio::task::spawn_blocking(move || {
            // Not stopped in time: killed, and its status (signal 9) is what it ended with.
            let status = process
                .terminate(STOP_TIMEOUT)
                .or_else(|late| process.kill().map_err(|_| late));
            (process, status)
        })
        .await?;
        self.set_busy(i, None);
        slot.process = Some(process);
        status?;
        self.record_exit(NAMES[i], &mut slot, true);
        Ok(())
    }

    /// Moves an exited process's status into `ended` and the slot's last state.
    fn record_exit(&self, name: &'static str, slot: &mut Slot, stopped: bool) {
        if let Some(status) = slot.process.as_ref().and_then(Process::try_wait) {
            slot.process = None;
            slot.ended = Some((stopped, status));
            self.ended
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((name, stopped, status));
        }
    }

    /// Sets the order rate: kept for the next start, and sent to a running producer.
    ///
    /// # Errors
    /// A rate that is not a positive number, or the running producer refuses it.
    pub(crate) async fn set_rate(&self, rate: f64) -> anyhow::Result<()> {
        if !(rate.is_finite() && rate > 0.0) {
            bail!("the order rate must be a number of orders per second above 0, got {rate}");
        }
        *self.rate.lock().unwrap_or_else(|p| p.into_inner()) = rate;
        let slot = self.slots[index("order-producer")?].lock().await;
        if let (Some(addr), Some(process)) = (&slot.addr, &slot.process)
            && process.try_wait().is_none()
        {
            let response = self
                .http
                .put(format!("http://{addr}/rate"))
                .json(&json!({ "rate": rate }))
                .send()
                .await
                .context("asking order-producer to change its rate")?;
            if !response.status().is_success() {
                bail!("order-producer refused the rate: {}", response.status());
            }
        }
        Ok(())
    }

    /// The last [`LOG_PAGE_LINES`] lines of service `name`'s log (its last run's stderr), each
    /// with its level, and how many lines the tail holds.
    ///
    /// # Errors
    /// An unknown name.
    pub(crate) fn log_tail(&self, name: &str) -> anyhow::Result<(Vec<LogLine>, usize)> {
        let lines = self.logs[index(name)?]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(Lines::all)
            .unwrap_or_default();
        let kept = lines.len();
        let shown = lines[kept.saturating_sub(LOG_PAGE_LINES)..]
            .iter()
            .map(|text| LogLine::parse(text))
            .collect();
        Ok((shown, kept))
    }

    /// Every service's state.
    pub(crate) fn states(&self) -> Vec<ServiceState> {
        NAMES
            .iter()
            .enumerate()
            .map(|(i, &name)| {
                let busy = *self.busy[i].lock().unwrap_or_else(|p| p.into_inner());
                let Ok(slot) = self.slots[i].try_lock() else {
                    let state = busy.unwrap_or("busy");
                    return ServiceState {
                        name,
                        state,
                        text: format!("{state}…"),
                        addr: None,
                        pid: None,
                    };
                };
                let (state, text) = match (&slot.process, slot.ended) {
                    (Some(p), _) => match p.try_wait() {
                        None => ("running", "running".to_owned()),
                        Some(status) => ("exited", format!("exited with {}", describe(status))),
                    },
                    (None, Some((true, status))) => {
                        ("stopped", format!("stopped (exit {})", describe(status)))
                    }
                    (None, Some((false, status))) => {
                        ("exited", format!("exited with {}", describe(status)))
                    }
                    (None, None) => ("not started", "not started".to_owned()),
                };
                let running = state == "running";
                ServiceState {
                    name,
                    state,
                    text,
                    addr: slot.addr.clone().filter(|_| running),
                    pid: slot.process.as_ref().filter(|_| running).map(Process::pid),
                }
            })
            .collect()
    }

    /// Stops every running service and returns how every run of every service ended.
    pub(crate) async fn stop_all(&self) -> Ended {
        for name in NAMES.iter().rev() {
            if let Err(error) = self.stop(name).await {
                eprintln!("control room: {error:#}");
            }
        }
        std::mem::take(&mut *self.ended.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// One line of a service's log as the page shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct LogLine {
    /// `ERROR`, `WARN`, `INFO`, `DEBUG`, `TRACE`, or `OTHER` for a line without one (a panic
    /// message, a line of a multi-line error).
    pub(crate) level: &'static str,
    pub(crate) text: String,
}

impl LogLine {
    /// The level is the second word of a `tracing_subscriber` line (after the time).
    fn parse(text: &str) -> Self {
        let level = text
            .split_whitespace()
            .nth(1)
            .and_then(|word| LEVELS.iter().find(|level| **level == word))
            .copied()
            .unwrap_or("OTHER");
        LogLine {
            level,
            text: text.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_line_has_the_level_its_subscriber_wrote() {
        let line = "2026-12-07T07:00:00.123456Z  WARN avro_events::context: record sent to \
                    dead-letter topic topic=grocery.orders.v1";
        assert_eq!(LogLine::parse(line).level, "WARN");
        let line = "2026-12-07T07:00:00.123456Z  INFO picklist_consumer: listening on http://x";
        assert_eq!(LogLine::parse(line).level, "INFO");
        assert_eq!(
            LogLine::parse("thread 'main' panicked at INFO").level,
            "OTHER"
        );
        assert_eq!(LogLine::parse("").level, "OTHER");
    }
}
