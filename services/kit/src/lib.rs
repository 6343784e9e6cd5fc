//! What the three example services share: start-up and shutdown plumbing (logging,
//! configuration with exit status 2 on bad configuration, signals). Their process tests use the
//! workspace's one process harness, the dev-only `test-support` crate.

use std::{io::IsTerminal, path::Path, process::ExitCode};

use grocery_events::Config;
use tracing_subscriber::EnvFilter;

/// Installs the tracing subscriber: `RUST_LOG` (default `info`), logs on stderr.
pub fn init_tracing() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

/// Reads `path` (when given), applies the `GROCERY_*` environment overrides, and validates.
///
/// # Errors
/// The library's configuration error, naming the file or key at fault.
pub fn load_config(path: Option<&Path>) -> grocery_events::Result<Config> {
    let config = match path {
        Some(path) => Config::from_file(path)?,
        None => Config::new(),
    }
    .with_env_overrides();
    config.validate()?;
    Ok(config)
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

/// Whether `error` (from anyhow) is a configuration problem of the library.
pub fn is_config_error(error: &anyhow::Error) -> bool {
    matches!(
        error.downcast_ref::<grocery_events::Error>(),
        Some(grocery_events::Error::Config { .. })
    )
}

/// Resolves at the first SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT received, shutting down"),
        () = term => tracing::info!("SIGTERM received, shutting down"),
    }
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
/// When the catalog file cannot be read or parsed.
pub fn load_catalog(path: Option<&Path>) -> anyhow::Result<grocery_store::Catalog> {
    match path {
        Some(path) => Ok(grocery_store::Catalog::load(path)?),
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
            operation: "commit",
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
