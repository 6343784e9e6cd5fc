//! Replacing a transactional producer whose transaction call is stuck (see the pipeline's
//! module docs and [`super::watchdog`]).
//!
//! The order matters for exactly-once:
//! 1. A new producer with the same `transactional.id` is created and its transactions
//!    initialised. The coordinator bumps the producer epoch, which fences the stuck producer
//!    (whatever it sends later is refused), and settles its transaction first: aborts it, or
//!    completes it if its commit was already decided. From then on the batch's offsets are
//!    either committed with its outputs or not at all.
//! 2. The batch's partitions (those still under the assignment the batch read them under) are
//!    rewound to their committed offsets, read with `require_stable` (`read_committed`
//!    consumers ask for stable offsets, so a settling transaction is waited for): the inputs
//!    of an aborted batch are read again, those of a batch whose commit went through are not.
//!    A partition with no committed offset yet goes back to the batch's first input.

use std::{sync::Arc, time::Duration};

use backon::Retryable as _;
use rdkafka::{Offset, TopicPartitionList, consumer::Consumer as _};
use tracing::{info, warn};

use super::{Pipeline, transactional::Batch, watchdog};
use crate::{Error, Event, Format, Producer, Result, error::KafkaOperation};

/// The timeout of each committed-offsets request while rewinding.
const COMMITTED_TIMEOUT: Duration = Duration::from_secs(10);

impl<In: Event, F: Format> Pipeline<In, F> {
    /// Replaces `stuck_producer`, whose call `stuck` did not return, with a new transactional
    /// producer, and rewinds the batch's partitions to their committed offsets.
    ///
    /// # Errors
    /// [`Error::Fatal`] when more than [`watchdog::MAX_STUCK`] abandoned calls are still
    /// running; the new producer's error when it is refused for good (credentials, rights).
    pub(super) async fn replace_producer(
        &self,
        stuck: watchdog::Stuck,
        batch: &Batch,
    ) -> Result<()> {
        let transactional_id = self.shared.config.transactional_id().unwrap_or_default();
        if stuck.stuck > watchdog::MAX_STUCK {
            let error = stuck.into_error();
            tracing::error!(%error, transactional_id, "stopping: too many transaction calls are stuck");
            return Err(error);
        }
        warn!(
            operation = %stuck.operation,
            waited_s = stuck.waited.as_secs(),
            stuck_calls = stuck.stuck,
            transactional_id,
            partitions = batch.first.len(),
            "a transaction call did not return; replacing the transactional producer (the new \
             one fences it and its transaction is settled) and reading the batch's inputs \
             again from the committed offsets"
        );
        self.set_stall(Some(format!(
            "the transaction call '{}' did not return within {} s; replacing the transactional \
             producer",
            stuck.operation,
            stuck.waited.as_secs()
        )));
        let producer = (|| Producer::create_with(&self.shared, self.format.clone(), true))
            .retry(self.output_backoff())
            .when(|error| {
                !matches!(
                    error,
                    Error::Authentication { .. } | Error::Fatal { .. } | Error::Config { .. }
                )
            })
            .notify(|error, wait| {
                warn!(%error, backoff_ms = wait.as_millis() as u64, "cannot create the replacement transactional producer yet");
            })
            .await?;
        // Only the transactional loop replaces, one batch at a time: the producer replaced
        // here is the one whose call was stuck. It is dropped once the lock is released.
        let stuck_producer = std::mem::replace(
            &mut *self.producer.write().unwrap_or_else(|p| p.into_inner()),
            Arc::new(producer),
        );
        drop(stuck_producer);
        self.stats
            .producers_replaced
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.rewind_to_committed(batch).await?;
        info!(
            transactional_id,
            "transactional producer replaced; the batch's inputs are read again from the \
             committed offsets"
        );
        Ok(())
    }

    /// Seeks the batch's partitions still under the batch's assignment to their committed
    /// offsets (the batch's first input where none is committed), retrying the offset fetch
    /// with backoff while the group coordinator cannot answer.
    async fn rewind_to_committed(&self, batch: &Batch) -> Result<()> {
        let context = self.consumer.context();
        let targets =
            batch.rewind_targets(|topic, partition| context.assignment_of(topic, partition));
        if targets.is_empty() {
            return Ok(());
        }
        let mut tpl = TopicPartitionList::new();
        for ((topic, partition), _, _) in &targets {
            tpl.add_partition(topic, *partition);
        }
        let fetch = || {
            let consumer = self.consumer.rdkafka_arc();
            let tpl = tpl.clone();
            async move {
                tokio::task::spawn_blocking(move || {
                    consumer.committed_offsets(tpl, COMMITTED_TIMEOUT)
                })
                .await
                .map_err(|_| rdkafka::error::KafkaError::Canceled)?
            }
        };
        let committed = fetch
            .retry(self.output_backoff())
            .notify(|error, wait| {
                warn!(%error, backoff_ms = wait.as_millis() as u64, "cannot read the committed offsets to rewind to yet");
            })
            .await
            .map_err(|source| Error::Kafka {
                operation: KafkaOperation::Seek,
                topic: None,
                source,
            })?;
        let to = targets
            .into_iter()
            .map(|((topic, partition), first, assignment)| {
                let offset = match committed
                    .find_partition(&topic, partition)
                    .map(|element| element.offset())
                {
                    Some(Offset::Offset(offset)) => offset,
                    _ => first,
                };
                info!(
                    topic,
                    partition,
                    offset,
                    batch_first = first,
                    "rewound to the committed offset after replacing the producer"
                );
                ((topic, partition), offset, assignment)
            })
            .collect();
        self.consumer.rewind(to).await
    }
}
