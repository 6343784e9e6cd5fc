//! Stopping a service in bounded time: the [`Shutdown`] signal its tasks share, the grace
//! period that bounds the drain after it ([`ShutdownArgs`]: `--shutdown-grace-ms`, env
//! `GROCERY_SHUTDOWN_GRACE_MS`, 30 s by default), and the account of the work still open when
//! the process gives up (records not delivered, inputs not committed).
//!
//! The first SIGINT or SIGTERM (or [`Shutdown::trigger`]) asks the service to stop: it stops
//! taking work and drains what is in flight. If it has not finished when the grace period
//! ends (a broker that went away leaves acknowledgements and commits unanswered), a watchdog
//! thread logs what it could not deliver or commit and exits with [`EXIT_GRACE_EXPIRED`]. A
//! second SIGINT or SIGTERM while the drain runs exits at once, with 128 + the signal's number
//! (130 for SIGINT, 143 for SIGTERM), after the same account. Neither path waits for the
//! service or its clients' destructors (a producer's final flush, a consumer's close): those
//! are what is stuck. [`run`](crate::run) sets this up for every service.

use std::{
    fmt,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use avro_events::KafkaContext;
use grocery_events::{Event, Pipeline, Producer};
use rdkafka::producer::Producer as _;
use tokio::sync::watch;

/// The default grace period between the shutdown request and a forced exit.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(30);

/// Exit status when the grace period ended before the service stopped.
pub const EXIT_GRACE_EXPIRED: u8 = 4;

/// The shutdown flag shared by the three services (flattened into their command lines).
#[derive(Debug, Clone, clap::Args)]
pub struct ShutdownArgs {
    /// Milliseconds a service may take to stop after SIGINT/SIGTERM (delivering what it has
    /// queued, committing what it processed); past them it logs what it could not deliver or
    /// commit and exits with status 4. A second signal exits at once.
    #[arg(
        long = "shutdown-grace-ms",
        env = "GROCERY_SHUTDOWN_GRACE_MS",
        default_value_t = DEFAULT_GRACE.as_millis() as u64,
        global = true
    )]
    pub shutdown_grace_ms: u64,
}

impl ShutdownArgs {
    /// The grace period.
    pub fn grace(&self) -> Duration {
        Duration::from_millis(self.shutdown_grace_ms)
    }
}

impl Default for ShutdownArgs {
    fn default() -> Self {
        Self {
            shutdown_grace_ms: DEFAULT_GRACE.as_millis() as u64,
        }
    }
}

/// A shutdown signal shared by a service's tasks, and the clients whose open work is
/// accounted for if the service does not stop within its grace period.
#[derive(Clone)]
pub struct Shutdown {
    inner: Arc<Inner>,
}

struct Inner {
    requested: watch::Sender<bool>,
    grace: Duration,
    accounts: Mutex<Vec<Account>>,
    /// The service returned: the watchdog stands down.
    finished: AtomicBool,
}

/// Open work of one client, counted when the process gives up.
enum Account {
    /// Records queued or in flight, not acknowledged (live from librdkafka).
    Producer(&'static str, Box<dyn Fn() -> u64 + Send + Sync>),
    /// Inputs read past the last committed offset (from the latest statistics).
    Consumer(&'static str, KafkaContext),
    /// A count the service keeps itself.
    Count(&'static str, Box<dyn Fn() -> u64 + Send + Sync>),
}

impl fmt::Debug for Shutdown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shutdown")
            .field("requested", &self.is_requested())
            .field("grace", &self.inner.grace)
            .finish_non_exhaustive()
    }
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

/// Why the process gives up on an orderly stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GiveUp {
    /// The grace period ended.
    GraceExpired(Duration),
    /// A second SIGINT/SIGTERM (its number) arrived during the drain.
    Signal(i32),
}

impl GiveUp {
    /// The exit status: [`EXIT_GRACE_EXPIRED`], or 128 + the signal's number.
    pub fn exit_status(self) -> u8 {
        match self {
            Self::GraceExpired(_) => EXIT_GRACE_EXPIRED,
            Self::Signal(number) => u8::try_from(128 + number).unwrap_or(u8::MAX),
        }
    }
}

impl fmt::Display for GiveUp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::GraceExpired(grace) => write!(
                f,
                "the shutdown grace period ({} ms) expired before the service stopped",
                grace.as_millis()
            ),
            Self::Signal(number) => write!(
                f,
                "{} received again during shutdown: exiting at once",
                signal_name(*number)
            ),
        }
    }
}

impl Shutdown {
    /// A signal that turns on only when [`Shutdown::trigger`]ed, with the default grace
    /// period.
    pub fn new() -> Self {
        Self::with_grace(DEFAULT_GRACE)
    }

    /// A signal that turns on only when [`Shutdown::trigger`]ed, with grace period `grace`.
    pub fn with_grace(grace: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                requested: watch::Sender::new(false),
                grace,
                accounts: Mutex::new(Vec::new()),
                finished: AtomicBool::new(false),
            }),
        }
    }

    /// A signal that also turns on at the first SIGINT or SIGTERM, and the watchdog that
    /// bounds the stop: once the signal is on (by a signal or [`Shutdown::trigger`]), it gives
    /// the service `grace`, then [reports](Shutdown::report) the open work and exits the
    /// process with [`EXIT_GRACE_EXPIRED`]; a further SIGINT or SIGTERM exits at once (128 +
    /// its number). The watchdog runs on a thread of its own, with its own small runtime, so a
    /// service stuck in a blocking call cannot hold it up.
    ///
    /// # Errors
    /// When the watchdog's thread or runtime cannot be started.
    pub fn on_signals(grace: Duration) -> std::io::Result<Self> {
        let shutdown = Self::with_grace(grace);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let watchdog = shutdown.clone();
        std::thread::Builder::new()
            .name("shutdown-watchdog".into())
            .spawn(move || {
                let why = runtime.block_on(watchdog.watch());
                if watchdog.inner.finished.load(Ordering::SeqCst) {
                    return;
                }
                let status = watchdog.report(why);
                // Not a return to the service: its clients' destructors (a producer's final
                // flush, a consumer's close) are what is stuck.
                std::process::exit(i32::from(status));
            })?;
        Ok(shutdown)
    }

    /// The grace period.
    pub fn grace(&self) -> Duration {
        self.inner.grace
    }

    /// Stands the watchdog down: the service has returned and the process is exiting with its
    /// own status.
    pub fn finished(&self) {
        self.inner.finished.store(true, Ordering::SeqCst);
    }

    /// Turns the signal on.
    pub fn trigger(&self) {
        self.inner.requested.send_replace(true);
    }

    /// Whether the signal is on.
    pub fn is_requested(&self) -> bool {
        *self.inner.requested.borrow()
    }

    /// Resolves once the signal is on.
    pub fn requested(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut receiver = self.inner.requested.subscribe();
        async move {
            let _ = receiver.wait_for(|stop| *stop).await;
        }
    }

    /// A receiver of the signal, for tasks that watch it themselves.
    pub fn receiver(&self) -> watch::Receiver<bool> {
        self.inner.requested.subscribe()
    }

    /// Counts `producer`'s records not yet acknowledged when the process gives up, under
    /// `name`.
    pub fn account_producer(&self, name: &'static str, producer: &Producer) {
        let producer = producer.rdkafka().clone();
        self.push(Account::Producer(
            name,
            Box::new(move || u64::try_from(producer.in_flight_count()).unwrap_or(0)),
        ));
    }

    /// Counts the records of `pipeline`'s producer not yet acknowledged when the process gives
    /// up, under `name`, as [`Shutdown::account_producer`] does: the producer the pipeline
    /// uses then (a transactional pipeline replaces a producer whose transaction call is
    /// stuck).
    pub fn account_pipeline_producer<In: Event>(
        &self,
        name: &'static str,
        pipeline: Arc<Pipeline<In>>,
    ) {
        self.push(Account::Producer(
            name,
            Box::new(move || {
                u64::try_from(pipeline.producer().rdkafka().in_flight_count()).unwrap_or(0)
            }),
        ));
    }

    /// Counts the inputs the consumer of `context` read past its last committed offset when
    /// the process gives up, under `name` (from its latest statistics: `statistics.interval.ms`
    /// must be on, as it is in the services by default).
    pub fn account_consumer(&self, name: &'static str, context: &KafkaContext) {
        self.push(Account::Consumer(name, context.clone()));
    }

    /// Reports `count()` under `what` (e.g. "orders not acknowledged") when the process gives
    /// up.
    pub fn account(&self, what: &'static str, count: impl Fn() -> u64 + Send + Sync + 'static) {
        self.push(Account::Count(what, Box::new(count)));
    }

    fn push(&self, account: Account) {
        self.inner
            .accounts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(account);
    }

    /// The open work of every accounted client, one `name: count what` entry each, e.g.
    /// `producer: 120 records not delivered`.
    pub fn open_work(&self) -> Vec<String> {
        let accounts = self
            .inner
            .accounts
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        accounts
            .iter()
            .map(|account| match account {
                Account::Producer(name, in_flight) => {
                    format!("{name}: {} records not delivered", in_flight())
                }
                Account::Consumer(name, context) => match crate::stats::uncommitted(context) {
                    Some(count) => format!("{name}: {count} inputs not committed"),
                    None => format!("{name}: inputs not committed unknown (no statistics)"),
                },
                Account::Count(what, count) => format!("{}: {what}", count()),
            })
            .collect()
    }

    /// Logs why the process gives up and its open work (and one `error:` line on stderr);
    /// returns the exit status.
    pub fn report(&self, why: GiveUp) -> u8 {
        let open = self.open_work();
        let open = if open.is_empty() {
            "nothing accounted for".to_owned()
        } else {
            open.join(", ")
        };
        let status = why.exit_status();
        tracing::error!(status, "{why}; left: {open}");
        eprintln!("error: {why}; left: {open}; exit status {status}");
        status
    }

    /// Listens for SIGINT and SIGTERM (the first turns the signal on) until the service
    /// should be given up on: `grace` after the signal turned on, or at a further signal.
    async fn watch(&self) -> GiveUp {
        let mut signals = match Signals::new() {
            Ok(signals) => Some(signals),
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGINT/SIGTERM");
                None
            }
        };
        let listen = async {
            let Some(signals) = signals.as_mut() else {
                return std::future::pending().await;
            };
            loop {
                let number = signals.next().await;
                if self.is_requested() {
                    return number;
                }
                tracing::info!(
                    grace_ms = self.inner.grace.as_millis() as u64,
                    "{} received, shutting down",
                    signal_name(number)
                );
                self.trigger();
            }
        };
        let expired = async {
            self.requested().await;
            tokio::time::sleep(self.inner.grace).await;
        };
        tokio::select! {
            number = listen => GiveUp::Signal(number),
            () = expired => GiveUp::GraceExpired(self.inner.grace),
        }
    }
}

const SIGINT: i32 = 2;
const SIGTERM: i32 = 15;

fn signal_name(number: i32) -> &'static str {
    match number {
        SIGINT => "SIGINT",
        SIGTERM => "SIGTERM",
        _ => "signal",
    }
}

/// SIGINT and SIGTERM, each as often as it comes.
struct Signals {
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Self {
                int: signal(SignalKind::interrupt())?,
                term: signal(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    /// The number of the next signal.
    async fn next(&mut self) -> i32 {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.int.recv() => SIGINT,
                _ = self.term.recv() => SIGTERM,
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            SIGINT
        }
    }
}
