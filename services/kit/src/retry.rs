//! Retry until shutdown: an attempt repeated with jittered exponential backoff (`backon`)
//! until it succeeds, meets an error that will not pass, or the service is asked to stop.
//! Each failed attempt is logged at WARN with the error and the wait before the next one.
//!
//! For work a service cannot do without but that may not be possible yet at start (a topic
//! not created, brokers not reachable): the Order API's view reading `grocery.order-status.v1`,
//! picklist-consumer putting back the pick lists shown before a restart.

use std::{fmt::Display, future::Future, time::Duration};

use backon::{ExponentialBuilder, Retryable as _};

/// Exponential backoff from `first`, doubling up to `max`, jittered, with no limit on the
/// number of attempts (the shutdown ends the retries).
pub fn backoff(first: Duration, max: Duration) -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_factor(2.0)
        .with_min_delay(first)
        .with_max_delay(max)
        .with_jitter()
        .without_max_times()
}

/// Runs `attempt` until it succeeds (`Ok(Some(value))`), fails with an error `permanent` says
/// will not pass by retrying (`Err`), or `shutdown` resolves first (`Ok(None)`; the attempt
/// under way is dropped). Between attempts it waits as `backoff` says and logs `failed` (what
/// could not be done yet) at WARN with the error and `retry_in`.
///
/// # Errors
/// The first error `permanent` says will not pass.
pub async fn until_shutdown<T, E, F, Fut>(
    failed: &str,
    backoff: ExponentialBuilder,
    permanent: impl Fn(&E) -> bool,
    shutdown: impl Future<Output = ()>,
    attempt: F,
) -> Result<Option<T>, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: Display,
{
    let retried = attempt
        .retry(backoff)
        .when(|error| !permanent(error))
        .notify(|error, wait| {
            tracing::warn!(error = %error, retry_in = ?wait, "{failed}");
        });
    tokio::select! {
        () = shutdown => Ok(None),
        outcome = retried => outcome.map(Some),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn quick() -> ExponentialBuilder {
        backoff(Duration::from_millis(1), Duration::from_millis(2))
    }

    /// Errors that may pass are retried until the attempt succeeds.
    #[tokio::test]
    async fn retries_until_the_attempt_succeeds() {
        let attempts = AtomicUsize::new(0);
        let outcome = until_shutdown(
            "not yet",
            quick(),
            |_: &String| false,
            std::future::pending(),
            || async {
                match attempts.fetch_add(1, Ordering::SeqCst) {
                    0..3 => Err("unreachable".to_owned()),
                    n => Ok(n),
                }
            },
        )
        .await;
        assert_eq!(outcome, Ok(Some(3)));
    }

    /// A permanent error ends the retries at once and is returned.
    #[tokio::test]
    async fn stops_at_a_permanent_error() {
        let attempts = AtomicUsize::new(0);
        let outcome: Result<Option<()>, String> = until_shutdown(
            "not yet",
            quick(),
            |e: &String| e == "refused",
            std::future::pending(),
            || async {
                attempts.fetch_add(1, Ordering::SeqCst);
                Err("refused".to_owned())
            },
        )
        .await;
        assert_eq!(outcome, Err("refused".to_owned()));
        assert_eq!(attempts.load(Ordering::SeqCst), 1);
    }

    /// The shutdown ends an attempt that never succeeds: `Ok(None)`.
    #[tokio::test]
    async fn the_shutdown_ends_the_retries() {
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let attempts = AtomicUsize::new(0);
        let outcome = until_shutdown(
            "not yet",
            quick(),
            |_: &String| false,
            async move {
                let _ = stopped.wait_for(|s| *s).await;
            },
            || {
                // The third attempt asks for the shutdown; the retries end there.
                if attempts.fetch_add(1, Ordering::SeqCst) == 2 {
                    stop.send_replace(true);
                }
                async { Err::<(), _>("unreachable".to_owned()) }
            },
        )
        .await;
        assert_eq!(outcome, Ok(None));
        assert!(attempts.load(Ordering::SeqCst) >= 3);
    }
}
