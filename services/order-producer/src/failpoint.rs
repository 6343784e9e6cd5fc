//! Test-only failpoints: `ORDER_API_FAILPOINT=<name>` makes the Order API abort the process
//! (SIGABRT, no cleanup, like a crash) when a request reaches the point `<name>`, so that a
//! test can restart it at an exact point of a request's life and check what a retry gets
//! (`tools/xtask/tests/order_idempotency.rs`). Compiled only into debug builds
//! (`debug_assertions`): a release build has no failpoints and ignores the variable.
//!
//! The points, in the order a keyed request meets them:
//! - `before-send`: the key is claimed, the order not yet handed to the producer;
//! - `before-commit`: the broker has acknowledged the order's record inside its open
//!   transaction, which is not committed;
//! - `after-commit`: the transaction is committed, the HTTP answer not yet written.

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

/// Failpoints are compiled only into debug builds.
#[cfg(not(debug_assertions))]
pub(crate) fn hit(_point: &str) {}
