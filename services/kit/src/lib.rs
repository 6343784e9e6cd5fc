//! What the three example services share: one start-up skeleton ([`run`]: logging,
//! OTLP export when asked for ([`telemetry`]), configuration loaded and validated once into a
//! [`Client`], signals, a bounded shutdown ([`shutdown`]), exit statuses), their metrics kept
//! and served one way ([`metrics`]: a `prometheus-client` registry, OpenMetrics text) with
//! their client metrics from librdkafka's statistics ([`stats`]), the guard in front of their
//! web servers ([`web_guard`]: `Host`, `Origin` and JSON-only state changes, so that no other
//! web site can drive them) and the one error shape of their HTTP APIs ([`problem`]: RFC 9457
//! problem JSON with a stable `code`), their transport plumbing ([`http`]: bind, serve until
//! the shutdown; [`sse`]: server-sent events to the open pages, bounded; [`retry`]: an attempt
//! retried with backoff until it succeeds or the service stops). Their process tests use the
//! workspace's one process harness, the dev-only `test-support` crate.
//!
//! ```no_run
//! fn main() -> std::process::ExitCode {
//!     let grace = std::time::Duration::from_secs(30);
//!     service_kit::run(None, grace, |service| async move {
//!         let producer = service.client.producer().await?;
//!         service.shutdown.account_producer("producer", &producer);
//!         service.shutdown.requested().await;
//!         producer.flush(std::time::Duration::from_secs(30)).await?;
//!         Ok(std::process::ExitCode::SUCCESS)
//!     })
//! }
//! ```

pub mod http;
pub mod metrics;
pub mod order_state;
pub mod problem;
pub mod retry;
pub mod shutdown;
pub mod sse;
pub mod stats;
pub mod telemetry;
pub mod web_guard;

pub use http::listen;
pub use shutdown::{EXIT_GRACE_EXPIRED, GiveUp, Shutdown, ShutdownArgs};

use std::{fmt, future::Future, io::IsTerminal, path::Path, process::ExitCode, time::Duration};

use avro_events::KafkaOperation;
use grocery_events::{Client, Config};
use tracing_subscriber::EnvFilter;

/// What [`run`] hands a service: its one [`Client`] and its shutdown signal.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Service {
    /// The client every producer, consumer and pipeline of the service comes from.
    pub client: Client,
    /// Turns on at the first SIGINT or SIGTERM, or when the service triggers it; register
    /// the service's clients with it ([`Shutdown::account_producer`], …) so that a forced
    /// exit says what was left undelivered or uncommitted.
    pub shutdown: Shutdown,
}

/// The start-up skeleton of every service: installs the tracing subscriber, reads the
/// configuration (`config`, then the `GROCERY_*` overrides), validates it once into a
/// [`Client`], listens for SIGINT and SIGTERM, runs `service` on a multi-threaded tokio runtime
/// and turns its outcome into the exit status ([`exit_code`]: 0, 1, 2 for bad configuration,
/// 3 when a broker refused the client).
///
/// Stopping is bounded by `grace` (see [`shutdown`]): once the shutdown is requested the
/// service has `grace` to finish; past it, or at a second SIGINT/SIGTERM, a watchdog thread
/// logs the open work of the clients registered with [`Shutdown`] and exits the process at once
/// with [`EXIT_GRACE_EXPIRED`] (4), or 128 + the signal's number.
pub fn run<F, Fut>(config: Option<&Path>, grace: Duration, service: F) -> ExitCode
where
    F: FnOnce(Service) -> Fut,
    Fut: Future<Output = anyhow::Result<ExitCode>>,
{
    init_tracing();
    // Before the clients: they take the global tracer when created.
    let telemetry = telemetry::Telemetry::init();
    let client = match load_config(config).and_then(Client::from_config) {
        Ok(client) => client,
        Err(error) => return config_error(explain_config_error(config, &error)),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let shutdown = match Shutdown::on_signals(grace) {
        Ok(shutdown) => shutdown,
        Err(error) => {
            eprintln!("error: cannot start the shutdown watchdog: {error}");
            return ExitCode::FAILURE;
        }
    };
    let watchdog = shutdown.clone();
    let code =
        runtime.block_on(async move { exit_code(service(Service { client, shutdown }).await) });
    watchdog.finished();
    // The service has stopped in order (offsets committed, records flushed). A blocking
    // librdkafka call still running on the runtime's blocking pool (a synchronous commit or a
    // metadata probe the group coordinator leaves unanswered after a rebalance) must not keep
    // the process alive: dropping the runtime would wait for it without bound.
    runtime.shutdown_timeout(Duration::from_secs(5));
    // Exports the spans still batched.
    drop(telemetry);
    code
}

/// A configuration problem found by a service itself (a flag, a catalog file): exit status 2,
/// as the library's [`grocery_events::Error::Config`].
#[derive(Debug)]
pub struct BadConfig(pub String);

impl fmt::Display for BadConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadConfig {}

/// Installs the tracing subscriber: `RUST_LOG` (default `info`), logs on stderr.
pub fn init_tracing() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

/// Reads `path` (when given) and applies the `GROCERY_*` environment overrides; validation is
/// [`Client::from_config`]'s. `statistics.interval.ms` defaults to
/// [`stats::DEFAULT_STATISTICS_INTERVAL_MS`] (the client metrics on `/metrics` come from it).
///
/// # Errors
/// The library's configuration error, naming the file at fault.
pub fn load_config(path: Option<&Path>) -> grocery_events::Result<Config> {
    let config = match path {
        Some(path) => Config::from_file(path)?,
        None => Config::new(),
    };
    let config = config.with_env_overrides(grocery_events::ENV_PREFIX);
    Ok(if config.get("statistics.interval.ms").is_none() {
        config.set(
            "statistics.interval.ms",
            stats::DEFAULT_STATISTICS_INTERVAL_MS,
        )
    } else {
        config
    })
}

/// A configuration error of the library said so that a newcomer can fix it: which file was
/// read (`path`, given by `--config` / `GROCERY_CONFIG`, or none), and which environment
/// variable sets the key at fault. A file that does not exist is said so, with its path.
pub fn explain_config_error(path: Option<&Path>, error: &grocery_events::Error) -> String {
    let grocery_events::Error::Config { key, reason } = error else {
        return error.to_string();
    };
    if let Some(path) = path
        && key.starts_with("file ")
    {
        return if path.exists() {
            format!(
                "cannot read the configuration file {} (given by --config or GROCERY_CONFIG): {reason}",
                path.display()
            )
        } else {
            format!(
                "configuration file not found: {} (given by --config or GROCERY_CONFIG; the \
                 working directory is {})",
                path.display(),
                std::env::current_dir()
                    .map(|dir| dir.display().to_string())
                    .unwrap_or_else(|_| "unknown".into())
            )
        };
    }
    let variable = env_variable(key);
    match (path, variable) {
        (Some(path), Some(name)) => format!(
            "{error} (read from {}, given by --config or GROCERY_CONFIG; set it there or with \
             the environment variable {name})",
            path.display()
        ),
        (Some(path), None) => format!(
            "{error} (read from {}, given by --config or GROCERY_CONFIG)",
            path.display()
        ),
        (None, Some(name)) => format!(
            "{error}: no configuration file was read; give one with --config PATH (or \
             GROCERY_CONFIG=PATH), e.g. the one `cargo xtask stack` writes, or set the \
             environment variable {name}"
        ),
        (None, None) => format!(
            "{error}: no configuration file was read; give one with --config PATH (or \
             GROCERY_CONFIG=PATH), e.g. the one `cargo xtask stack` writes"
        ),
    }
}

/// The `GROCERY_*` variable that overrides property `key`, when `key` is a property name.
fn env_variable(key: &str) -> Option<String> {
    let is_property = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.');
    is_property.then(|| {
        format!(
            "{}{}",
            grocery_events::ENV_PREFIX,
            key.to_ascii_uppercase().replace('.', "_")
        )
    })
}

/// Bad configuration: one line on stderr, exit status 2.
pub fn config_error(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(2)
}

/// Exit status when a broker refused the client: its credentials (SASL authentication) or its
/// rights (ACLs / RBAC on a topic, group or transactional id).
pub const EXIT_REFUSED: u8 = 3;

/// The exit status for `result`, printing the error (one `error: …` line on stderr, and the
/// log): 0 on success, 2 for bad configuration, 3 when a broker refused the client's
/// credentials or rights ([`EXIT_REFUSED`]), 1 for any other failure.
pub fn exit_code(result: anyhow::Result<ExitCode>) -> ExitCode {
    let error = match result {
        Ok(code) => return code,
        Err(error) => error,
    };
    if is_config_error(&error) {
        return config_error(error);
    }
    let message = describe(&error);
    tracing::error!("{message}");
    eprintln!("error: {message}");
    let refused = error
        .downcast_ref::<grocery_events::Error>()
        .is_some_and(grocery_events::Error::is_refused);
    if refused {
        ExitCode::from(EXIT_REFUSED)
    } else {
        ExitCode::FAILURE
    }
}

/// Whether `error` (from anyhow) is a configuration problem: the library's, or a
/// [`BadConfig`].
pub fn is_config_error(error: &anyhow::Error) -> bool {
    error.downcast_ref::<BadConfig>().is_some()
        || matches!(
            error.downcast_ref::<grocery_events::Error>(),
            Some(grocery_events::Error::Config { .. })
        )
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// The catalog at `path`, or the built-in one.
///
/// # Errors
/// [`BadConfig`] when the catalog file cannot be read or parsed.
pub fn load_catalog(path: Option<&Path>) -> anyhow::Result<grocery_store::Catalog> {
    match path {
        Some(path) => grocery_store::Catalog::load(path)
            .map_err(|error| BadConfig(describe(&anyhow::Error::from(error))).into()),
        None => Ok(grocery_store::Catalog::builtin()),
    }
}

/// A failed final commit at shutdown (typically `RebalanceInProgress`, when another member
/// of the group leaves at the same moment) is logged, not fatal: the records since the last
/// commit are processed again by the group, which at-least-once delivery allows for.
pub fn tolerate_final_commit(
    result: grocery_events::Result<()>,
    stopping: bool,
) -> grocery_events::Result<()> {
    match result {
        Err(grocery_events::Error::Kafka {
            operation: KafkaOperation::Commit,
            source,
            ..
        }) if stopping => {
            tracing::warn!(error = %source, "final offset commit failed; uncommitted records will be processed again");
            Ok(())
        }
        other => other,
    }
}

/// The error and its causes, each cause once (library errors already show their source).
pub fn describe(error: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if !out.contains(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
    }
    out
}
