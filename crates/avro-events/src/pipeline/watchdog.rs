//! The watchdog on a transactional pipeline's blocking transaction calls.
//!
//! librdkafka's transaction calls take a timeout, but a few of its waits do not honour it:
//! `send_offsets_to_transaction` waits for the consumer group's coordinator, and when the
//! broker it cached as coordinator is killed and dropped from the cluster's metadata the
//! request is retried only when some other broker changes state (librdkafka 2.12:
//! confluentinc/librdkafka#5456, #5511). The call then blocks its thread for as long as that
//! takes, possibly for good, and the pipeline never gets an error to abort on.
//!
//! [`Watchdog::run`] runs each call on the blocking pool and stops waiting for it
//! [`GRACE`] after the call's own timeout ([`CALL_TIMEOUT`]). The pipeline then gives up the
//! producer: a new one with the same `transactional.id` fences it (its transaction is ended by
//! the coordinator, and anything the stuck call still sends later is refused as fenced), and
//! the inputs are read again from their committed offsets. The abandoned call keeps its thread
//! and its librdkafka instance until it returns; [`Watchdog::stuck`] counts those, and the
//! pipeline stops with an error rather than abandon more than [`MAX_STUCK`] at a time.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use tokio::sync::watch;
use tracing::info;

use crate::error::KafkaOperation;

/// The timeout handed to each blocking transaction call (librdkafka's own).
pub(super) const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// How long past [`CALL_TIMEOUT`] a call may take before the watchdog gives up on it.
pub(super) const GRACE: Duration = Duration::from_secs(10);

/// At most this many abandoned calls may still be running (each holds a thread of the
/// blocking pool and a whole librdkafka instance); one more stops the pipeline with an error.
/// Two, not one: the two kills of a fail-over can each strand a call before the first one's
/// broker is back (which usually releases it).
pub(super) const MAX_STUCK: usize = 2;

/// A call the watchdog stopped waiting for.
#[derive(Debug)]
pub(super) struct Stuck {
    /// The call.
    pub(super) operation: KafkaOperation,
    /// How long it was waited for.
    pub(super) waited: Duration,
    /// Abandoned calls still running, this one included.
    pub(super) stuck: usize,
}

/// Runs blocking calls with a bound and counts the calls it abandoned that still run.
#[derive(Debug)]
pub(super) struct Watchdog {
    bound: Duration,
    /// Calls started and not returned yet, abandoned or not.
    running: Arc<watch::Sender<usize>>,
}

impl Default for Watchdog {
    fn default() -> Self {
        Self::new(CALL_TIMEOUT + GRACE)
    }
}

/// Counts a call as running until it returns; logs the return of an abandoned one.
struct Running {
    running: Arc<watch::Sender<usize>>,
    abandoned: Arc<AtomicBool>,
    operation: KafkaOperation,
    started: Instant,
}

impl Drop for Running {
    fn drop(&mut self) {
        let mut left = 0;
        self.running.send_modify(|running| {
            *running = running.saturating_sub(1);
            left = *running;
        });
        if self.abandoned.load(Ordering::SeqCst) {
            info!(
                operation = %self.operation,
                after_s = self.started.elapsed().as_secs(),
                still_running = left,
                "an abandoned transaction call returned; its producer is released"
            );
        }
    }
}

impl Watchdog {
    /// A watchdog giving up on calls after `bound`.
    pub(super) fn new(bound: Duration) -> Self {
        Self {
            bound,
            running: Arc::new(watch::Sender::new(0)),
        }
    }

    /// How long a call may take.
    pub(super) fn bound(&self) -> Duration {
        self.bound
    }

    /// Abandoned calls still running (the pipeline waits for one call at a time, so every
    /// running call it is not waiting for was abandoned).
    pub(super) fn stuck(&self) -> usize {
        *self.running.borrow()
    }

    /// Runs `call` on the blocking pool; `late` is called once `late_after` passed without an
    /// answer, and [`Stuck`] returned once the bound passed. `None` when the blocking task
    /// panicked or was cancelled.
    pub(super) async fn run<T, F>(
        &self,
        operation: KafkaOperation,
        call: F,
        late_after: Duration,
        late: impl FnOnce(),
    ) -> Result<Option<T>, Stuck>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let abandoned = Arc::new(AtomicBool::new(false));
        self.running.send_modify(|running| *running += 1);
        let guard = Running {
            running: self.running.clone(),
            abandoned: abandoned.clone(),
            operation,
            started: Instant::now(),
        };
        let mut task = tokio::task::spawn_blocking(move || {
            let _guard = guard;
            call()
        });
        let deadline = tokio::time::Instant::now() + self.bound;
        if late_after < self.bound {
            match tokio::time::timeout(late_after, &mut task).await {
                Ok(joined) => return Ok(joined.ok()),
                Err(_) => late(),
            }
        }
        match tokio::time::timeout_at(deadline, &mut task).await {
            Ok(joined) => Ok(joined.ok()),
            Err(_) => {
                abandoned.store(true, Ordering::SeqCst);
                Err(Stuck {
                    operation,
                    waited: self.bound,
                    stuck: self.stuck(),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;

    #[tokio::test]
    async fn a_call_past_the_bound_is_abandoned_and_counted_until_it_returns() {
        let watchdog = Watchdog::new(Duration::from_millis(200));
        let answered = watchdog
            .run(KafkaOperation::BeginTransaction, || 7, Duration::MAX, || {})
            .await
            .unwrap();
        assert_eq!(answered, Some(7));
        assert_eq!(watchdog.stuck(), 0);

        let (release, blocked) = mpsc::channel::<()>();
        let late = AtomicBool::new(false);
        let stuck = watchdog
            .run(
                KafkaOperation::SendOffsetsToTransaction,
                move || {
                    let _ = blocked.recv();
                },
                Duration::from_millis(50),
                || late.store(true, Ordering::SeqCst),
            )
            .await
            .unwrap_err();
        assert!(late.load(Ordering::SeqCst), "told it was late first");
        assert_eq!(stuck.operation, KafkaOperation::SendOffsetsToTransaction);
        assert_eq!(stuck.waited, Duration::from_millis(200));
        assert_eq!(stuck.stuck, 1);
        assert_eq!(watchdog.stuck(), 1, "still running, still counted");

        let mut running = watchdog.running.subscribe();
        release.send(()).unwrap();
        running.wait_for(|running| *running == 0).await.unwrap();
        assert_eq!(watchdog.stuck(), 0, "released once it returned");
    }
}
