//! A consumer's librdkafka client, closed on drop within a bound.
//!
//! Dropping rdkafka's consumer closes it: librdkafka commits what was stored, leaves the group
//! and revokes the assignment, and rdkafka polls until that is done, with no time limit. With
//! the brokers gone that takes the group's session timeout (45 s by default) with the classic
//! protocol and never ends with KIP-848's (`group.protocol=consumer`), so a consumer dropped
//! after its cluster shut down held the dropping thread (a runtime worker, or the end of
//! `main`) for that long, or forever. The close now runs on a thread of its own, and the
//! drop waits for it at most [`CLOSE_WAIT`]: with the brokers there nothing changes (the
//! close takes milliseconds and the group is left before the drop returns); without them the
//! drop returns after [`CLOSE_WAIT`] and the close goes on in the background, ending the
//! librdkafka client if it ever completes (a process exiting meanwhile does not wait for it).

use std::{ops::Deref, sync::Arc, time::Duration};

use rdkafka::consumer::StreamConsumer;

use crate::context::KafkaContext;

/// How long dropping a consumer waits for librdkafka to close it.
pub(crate) const CLOSE_WAIT: Duration = Duration::from_secs(10);

/// The consumer's rdkafka client; see the module documentation.
pub(crate) struct ClosingConsumer(Option<Arc<StreamConsumer<KafkaContext>>>);

impl ClosingConsumer {
    pub(crate) fn new(consumer: Arc<StreamConsumer<KafkaContext>>) -> Self {
        Self(Some(consumer))
    }
}

impl Deref for ClosingConsumer {
    type Target = Arc<StreamConsumer<KafkaContext>>;

    fn deref(&self) -> &Self::Target {
        // `None` only inside `drop`.
        self.0
            .as_ref()
            .expect("a consumer's client is there until it is dropped")
    }
}

impl Drop for ClosingConsumer {
    fn drop(&mut self) {
        let Some(consumer) = self.0.take() else {
            return;
        };
        // Another holder (a blocking call still running) closes it when it lets go.
        let Some(consumer) = Arc::into_inner(consumer) else {
            return;
        };
        let (closed, wait) = std::sync::mpsc::channel::<()>();
        let spawned = std::thread::Builder::new()
            .name("consumer-close".into())
            .spawn(move || {
                drop(consumer);
                drop(closed);
            });
        if let Err(error) = spawned {
            // The closure, consumer and all, was dropped here: closed on this thread.
            tracing::warn!(%error, "no thread to close the consumer on; it was closed in place");
            return;
        }
        if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = wait.recv_timeout(CLOSE_WAIT) {
            tracing::warn!(
                wait_ms = CLOSE_WAIT.as_millis() as u64,
                "the consumer did not close in time (brokers unreachable?): its close goes on in \
                 the background, the group may keep it as a member until its session times out"
            );
        }
    }
}
