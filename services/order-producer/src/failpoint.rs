//! Test-only failpoints: `ORDER_API_FAILPOINT=<name>` makes the Order API abort the process
//! (SIGABRT, no cleanup, like a crash) when a request reaches the point `<name>`, so that a
//! test can restart it at an exact point of a request's life and check what a retry gets
//! (`tools/xtask/tests/order_idempotency.rs`); `ORDER_API_FAILPOINT=hold:<name>` holds the
//! sender there the first time it gets there, until the process gets SIGUSR1 (logging
//! `failpoint <name> holding`), so that a test can act while a transaction is open
//! (`tools/xtask/tests/order_sender_failures.rs`: the client leaves before the commit; orders
//! queue up meanwhile and go out in one transaction). Compiled only into debug builds
//! (`debug_assertions`): a release build has no failpoints and ignores the variable.
//!
//! The points, in the order a keyed request meets them:
//! - `before-send`: the key is claimed, the order not yet handed to the producer;
//! - `before-commit`: the broker has acknowledged the order's record inside its open
//!   transaction, which is not committed;
//! - `after-commit`: the transaction is committed, the HTTP answer not yet written.
//!
//! And `before-init` (for `hold:` only): the API listens, its transactions not yet initialised.

/// The environment variable naming the failpoint to abort at.
#[cfg(debug_assertions)]
const VARIABLE: &str = "ORDER_API_FAILPOINT";

/// Aborts the process when `ORDER_API_FAILPOINT` names `point` (debug builds only), after
/// logging `failpoint <point> reached`.
#[cfg(debug_assertions)]
pub(crate) fn hit(point: &str) {
    if std::env::var_os(VARIABLE).is_some_and(|armed| armed == point) {
        tracing::error!("failpoint {point} reached: aborting the process ({VARIABLE})");
        std::process::abort();
    }
}

/// Waits for SIGUSR1 the first time it is called when `ORDER_API_FAILPOINT` is
/// `hold:<point>` (debug builds only), after logging `failpoint <point> holding until SIGUSR1`.
#[cfg(debug_assertions)]
pub(crate) async fn hold(point: &str) {
    static HELD: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    let armed = std::env::var(VARIABLE).ok();
    if armed.as_deref().and_then(|v| v.strip_prefix("hold:")) != Some(point)
        || HELD.swap(true, std::sync::atomic::Ordering::SeqCst)
    {
        return;
    }
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::user_defined1()) {
        Ok(mut released) => {
            tracing::warn!("failpoint {point} holding until SIGUSR1 ({VARIABLE})");
            released.recv().await;
            tracing::warn!("failpoint {point} released");
        }
        Err(error) => tracing::error!(%error, "failpoint {point}: cannot wait for SIGUSR1"),
    }
}

/// Failpoints are compiled only into debug builds.
#[cfg(not(debug_assertions))]
pub(crate) fn hit(_point: &str) {}

/// Failpoints are compiled only into debug builds.
#[cfg(not(debug_assertions))]
pub(crate) async fn hold(_point: &str) {}
