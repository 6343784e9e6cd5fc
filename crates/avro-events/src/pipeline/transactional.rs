//! The transactional loop (with `transactional.id`): each batch's outputs, dead-letter
//! records and input offsets committed together in one Kafka transaction, aborted and read
//! again on failure, as Kafka classifies the failure.

use std::{
    collections::{BTreeMap, btree_map},
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use backon::{BackoffBuilder as _, Retryable as _};
use rdkafka::{
    Offset, TopicPartitionList, consumer::Consumer as _, error::KafkaError, producer::Producer as _,
};
use tracing::{debug, error, warn};

use super::{
    MAX_OUTPUT_BACKOFF, Pipeline,
    failure::{Failure, dead_lettered_by_rule, may_pass, on_record, refused_for_good, unencodable},
    watchdog,
};
use crate::{
    Error, Event, Format, IntoOutputs, Producer, Received, RecordMeta, Result,
    consumer::{Polled, dead_letter_failed},
    context::{DeadLettered, KafkaContext},
    error::KafkaOperation,
    outputs,
};

impl watchdog::Stuck {
    /// The error of a stuck call the pipeline cannot recover from.
    pub(super) fn into_error(self) -> Error {
        Error::Fatal {
            operation: self.operation,
            reason: format!(
                "did not return within {} s; {} abandoned transaction calls still running \
                 (at most {} are allowed): restart the process",
                self.waited.as_secs(),
                self.stuck,
                watchdog::MAX_STUCK
            ),
        }
    }
}

/// The inputs and outputs of one transaction.
#[derive(Default)]
pub(super) struct Batch {
    /// Per partition: the first input read under the partition's latest assignment, and that
    /// assignment: where an abort rewinds it to, while the assignment lasts.
    pub(super) first: BTreeMap<(String, i32), (i64, Option<u64>)>,
    /// A partition was revoked and assigned again while the batch was filled: the batch must
    /// not commit (another member may have committed the same inputs meanwhile).
    reassigned: bool,
    /// Per partition: the offset to commit (last input + 1).
    next: BTreeMap<(String, i32), i64>,
    /// The topic of each output queued in the transaction.
    produced: Vec<&'static str>,
    dead_lettered: u64,
    /// Outputs a data-contract rule sent to its dead-letter topic in the transaction.
    outputs_dead_lettered: u64,
}

impl Batch {
    /// Enters the input at `offset` of `partition`, read under `assignment`, before anything
    /// is written for it: whatever happens next, an abort rewinds its partition.
    fn enter(&mut self, topic: &str, partition: i32, offset: i64, assignment: Option<u64>) {
        // A partition already in the batch (nearly every input) is updated in place: found by
        // a scan of the batch's few partitions, with no owned key made for the lookup.
        let entered = |(t, p): &&(String, i32)| t == topic && *p == partition;
        if let Some((_, next)) = self.next.iter_mut().find(|(tp, _)| entered(tp))
            && let Some((_, first)) = self.first.iter_mut().find(|(tp, _)| entered(tp))
        {
            if first.1 != assignment {
                self.reassigned = true;
                *first = (offset, assignment);
            }
            *next = offset + 1;
            return;
        }
        let key = (topic.to_owned(), partition);
        match self.first.entry(key.clone()) {
            btree_map::Entry::Vacant(entry) => {
                entry.insert((offset, assignment));
            }
            btree_map::Entry::Occupied(mut entry) => {
                if entry.get().1 != assignment {
                    self.reassigned = true;
                    entry.insert((offset, assignment));
                }
            }
        }
        self.next.insert(key, offset + 1);
    }

    /// Whether the batch may commit: each partition still has the assignment its inputs were
    /// read under, and none was reassigned in between.
    fn still_owned(
        &self,
        assignment_of: impl Fn(&str, i32) -> Option<u64>,
    ) -> Option<&(String, i32)> {
        if self.reassigned {
            return self.first.keys().next();
        }
        self.first.iter().find_map(|(tp, (_, assignment))| {
            (assignment_of(&tp.0, tp.1) != *assignment).then_some(tp)
        })
    }

    /// The partitions an abort rewinds, with their offsets and assignments: those whose
    /// assignment is still the one the batch read them under. A partition revoked since, or
    /// revoked and assigned again, starts from its committed offset instead (another member
    /// may have committed past the batch's first input meanwhile).
    pub(super) fn rewind_targets(
        &self,
        assignment_of: impl Fn(&str, i32) -> Option<u64>,
    ) -> Vec<((String, i32), i64, u64)> {
        self.first
            .iter()
            .filter_map(|(tp, (offset, assignment))| {
                let assignment = (*assignment)?;
                (assignment_of(&tp.0, tp.1) == Some(assignment))
                    .then(|| (tp.clone(), *offset, assignment))
            })
            .collect()
    }
}

impl<In: Event, F: Format> Pipeline<In, F> {
    pub(super) async fn run_transactional<O, T, S>(
        &self,
        mut transform: T,
        shutdown: S,
    ) -> Result<()>
    where
        O: IntoOutputs<F>,
        T: FnMut(&Received<In>) -> O,
        S: Future<Output = ()>,
    {
        tokio::pin!(shutdown);
        let mut backoff = self.output_backoff().build();
        loop {
            // Wait for the first record of a batch (or shutdown) before opening a transaction.
            let first = tokio::select! {
                () = &mut shutdown => break,
                polled = self.consumer.poll() => polled?,
            };
            // One producer per batch: a replacement takes effect with the next one.
            let producer = self.producer();
            let mut batch = Batch::default();
            let begun = self
                .txn(&producer, KafkaOperation::BeginTransaction, |p| {
                    p.begin_transaction()
                })
                .await;
            let outcome = match begun {
                Err(Failure::Stuck(stuck)) => {
                    let meta = polled_meta(&first);
                    batch.enter(
                        &meta.topic,
                        meta.partition,
                        meta.offset,
                        self.consumer
                            .context()
                            .assignment_of(&meta.topic, meta.partition),
                    );
                    Err(Failure::Stuck(stuck))
                }
                Err(failure) => return Err(failure.into_error()),
                Ok(()) => {
                    let filled = self
                        .fill_batch(&producer, first, &mut transform, &mut batch)
                        .await;
                    match filled {
                        Ok(()) => self.commit_batch(&producer, &batch).await,
                        // An input whose schema cannot be fetched or used, with
                        // `schema.unavailable.action=fail`, ends the pipeline as it ends a
                        // consumer.
                        // An output that can never be encoded ends it too: its input would make it
                        // again.
                        Err(error)
                            if refused_for_good(&error)
                                || unencodable(&error)
                                || error.is_schema_unavailable()
                                || matches!(error, Error::Fatal { .. }) =>
                        {
                            Err(Failure::Fatal(error))
                        }
                        Err(error) => Err(Failure::Abort(error)),
                    }
                }
            };
            match outcome {
                Ok(()) => {
                    self.stats.count_produced(&batch.produced);
                    self.stats.transactions.fetch_add(1, Ordering::Relaxed);
                    for _ in 0..batch.dead_lettered {
                        self.consumer.count_dead_lettered();
                    }
                    self.stats
                        .outputs_dead_lettered
                        .fetch_add(batch.outputs_dead_lettered, Ordering::Relaxed);
                    self.set_stall(None);
                    backoff = self.output_backoff().build();
                    debug!(
                        partitions = batch.next.len(),
                        produced = batch.produced.len(),
                        "transaction committed"
                    );
                }
                Err(Failure::Abort(error) | Failure::Retry(error)) => {
                    // Abort and rewind first: no transaction stays open through the wait.
                    let aborted = tokio::select! {
                        aborted = self.abort(&producer, &batch) => aborted,
                        () = &mut shutdown => break,
                    };
                    aborted?;
                    let wait = backoff.next().unwrap_or(MAX_OUTPUT_BACKOFF);
                    warn!(%error, backoff_ms = wait.as_millis() as u64, "transaction aborted; its inputs are read again after the backoff");
                    // Said until the next commit; a partition revoked during the batch is no
                    // failure (its new owner reads the inputs).
                    if may_pass(&error) {
                        self.set_stall(Some(format!("outputs cannot be written: {error}")));
                    } else if !matches!(
                        &error,
                        Error::Kafka {
                            source: KafkaError::Rebalance(_),
                            ..
                        }
                    ) {
                        self.set_stall(Some(format!(
                            "transaction aborted, its inputs are read again after {} ms: {error}",
                            wait.as_millis()
                        )));
                    }
                    tokio::select! {
                        () = &mut shutdown => break,
                        () = tokio::time::sleep(wait) => {}
                    }
                }
                Err(Failure::Stuck(stuck)) => {
                    // Shutdown meanwhile: nothing was committed past the batch's inputs.
                    let replaced = tokio::select! {
                        replaced = self.replace_producer(stuck, &batch) => replaced,
                        () = &mut shutdown => break,
                    };
                    replaced?;
                }
                Err(Failure::Fatal(error)) => {
                    error!(%error, "stopping: the transaction is aborted and nothing is committed past its inputs");
                    let _ = self.abort(&producer, &batch).await;
                    return Err(error);
                }
            }
        }
        self.consumer.close().await
    }

    /// Reads up to `batch_size` inputs (or for `batch_linger`) into `batch`, queues their
    /// outputs and dead-letter records in `producer`'s open transaction, and waits for the
    /// acknowledgements. Each input's partition is entered in `batch` before anything is
    /// written for it, so that an abort after any error rewinds it.
    async fn fill_batch<O, T>(
        &self,
        producer: &Producer<F>,
        first: Polled<In>,
        transform: &mut T,
        batch: &mut Batch,
    ) -> Result<()>
    where
        O: IntoOutputs<F>,
        T: FnMut(&Received<In>) -> O,
    {
        let deadline = tokio::time::Instant::now() + self.options.batch_linger;
        let context = self.consumer.context();
        let mut next = Some(first);
        let mut count = 0;
        let mut deliveries = Vec::with_capacity(self.options.batch_size);
        while let Some(polled) = next.take() {
            count += 1;
            let meta = polled_meta(&polled);
            batch.enter(
                &meta.topic,
                meta.partition,
                meta.offset,
                context.assignment_of(&meta.topic, meta.partition),
            );
            match polled {
                Polled::Event(received) => {
                    self.stats.consumed.fetch_add(1, Ordering::Relaxed);
                    let (parent, outputs) = self.transform_traced(producer, &received, transform);
                    for out in outputs.into_records() {
                        // No waiting inside the transaction: an error that may pass aborts the
                        // batch, which is read again after a backoff.
                        match outputs::enqueue(out.as_ref(), producer, parent.as_ref()).await {
                            Ok(delivery) => {
                                deliveries.push(delivery);
                                batch.produced.push(out.topic());
                            }
                            // Its dead letter is in the transaction: the output is done.
                            Err(error) if dead_lettered_by_rule(&error) => {
                                warn!(%error, topic = out.topic(), "an output refused by its contract is dead-lettered");
                                batch.outputs_dead_lettered += 1;
                            }
                            Err(error) => {
                                return Err(self.why_purged(producer, batch, error).await);
                            }
                        }
                    }
                }
                Polled::Tombstone(tombstone) => {
                    // Nothing to transform: its offset goes with the transaction.
                    debug!(topic = %tombstone.meta.topic, partition = tombstone.meta.partition, offset = tombstone.meta.offset, "tombstone passed over");
                }
                Polled::Poison {
                    message,
                    meta,
                    error,
                } => {
                    let dlq_topic = self.consumer.dead_letter_topic(&meta.topic);
                    context.hooks().dead_lettered(&DeadLettered {
                        meta: &meta,
                        dlq_topic: &dlq_topic,
                        error: &error,
                        transactional: true,
                    });
                    // Acknowledged before the next input. A dead-letter topic the identity
                    // may describe but not write makes the transaction abortable (its partition
                    // is refused to the transaction) and the record is purged: the transaction
                    // says why, and the batch stops there.
                    let written = match producer
                        .enqueue_dead_letter(&dlq_topic, &message, &meta.location(), &error)
                        .await
                    {
                        Ok(delivery) => delivery.await.map(drop),
                        Err(source) => Err(source),
                    };
                    if let Err(source) = written {
                        let source = self.why_purged(producer, batch, source).await;
                        return Err(dead_letter_failed(error, dlq_topic, source));
                    }
                    batch.dead_lettered += 1;
                }
            }
            if count < self.options.batch_size {
                next = tokio::select! {
                    () = tokio::time::sleep_until(deadline) => None,
                    polled = self.consumer.poll() => Some(polled?),
                };
            }
        }
        // Every delivery settles (an abortable transaction fails the rest); the error reported
        // is the one that decides what happens next: a refusal for good before any other.
        let mut failed: Option<Error> = None;
        for delivery in deliveries {
            if let Err(error) = delivery.await {
                match &failed {
                    Some(first) if refused_for_good(first) || !refused_for_good(&error) => {}
                    _ => failed = Some(error),
                }
            }
        }
        match failed {
            None => Ok(()),
            Some(error) => Err(self.why_purged(producer, batch, error).await),
        }
    }

    /// `error` as it is, or, when it is a record lost because the open transaction had failed
    /// for another reason ([`Error::is_purged`]: e.g. the broker refused one of its partitions,
    /// which a topic the identity may describe but not write does), the transaction's own
    /// error in its place, kept on the record's topic: a refusal for good then stops the run.
    async fn why_purged(&self, producer: &Producer<F>, batch: &Batch, error: Error) -> Error {
        if !error.is_purged() {
            return error;
        }
        let Some(cause) = self.abortable_cause(producer, batch).await else {
            return error;
        };
        // The transaction's error does not name the partition it refused; librdkafka's log
        // line does (the purged record may be another topic's).
        let refused = producer
            .context()
            .take_refused_partition()
            .filter(|_| cause.is_refused())
            .map(|(topic, _)| topic);
        debug!(%error, %cause, ?refused, "a record was purged; the transaction names why");
        match error {
            Error::DeadLetterFailed {
                cause: why,
                topic,
                source,
            } => Error::DeadLetterFailed {
                cause: why,
                topic,
                source: Box::new(on_record(*source, cause, refused)),
            },
            purged => on_record(purged, cause, refused),
        }
    }

    /// Sends the batch's offsets to the transaction and commits it; aborts instead when one of
    /// its partitions was revoked (or revoked and assigned again) while it was filled.
    async fn commit_batch(&self, producer: &Producer<F>, batch: &Batch) -> Result<(), Failure> {
        let context = self.consumer.context();
        if let Some((topic, partition)) =
            batch.still_owned(|topic, partition| context.assignment_of(topic, partition))
        {
            return Err(Failure::Abort(Error::Kafka {
                operation: KafkaOperation::CommitTransaction,
                topic: Some(format!("{topic}[{partition}]")),
                source: KafkaError::Rebalance(
                    rdkafka::types::RDKafkaErrorCode::RebalanceInProgress,
                ),
            }));
        }
        let metadata = self.consumer.rdkafka().group_metadata().ok_or_else(|| {
            Failure::Fatal(Error::Kafka {
                operation: KafkaOperation::SendOffsetsToTransaction,
                topic: None,
                source: KafkaError::Canceled,
            })
        })?;
        let tpl = offsets_tpl(&batch.next).map_err(Failure::Fatal)?;
        let metadata = Arc::new(metadata);
        self.retrying(
            producer,
            KafkaOperation::SendOffsetsToTransaction,
            move |p| p.send_offsets_to_transaction(&tpl, &metadata, watchdog::CALL_TIMEOUT),
        )
        .await?;
        self.retrying(producer, KafkaOperation::CommitTransaction, |p| {
            p.commit_transaction(watchdog::CALL_TIMEOUT)
        })
        .await
    }

    /// Aborts the open transaction and rewinds the consumer to the batch's first inputs, in the
    /// partitions whose assignment is still the one the batch read them under. An abort that
    /// does not return in time replaces the producer instead.
    async fn abort(&self, producer: &Producer<F>, batch: &Batch) -> Result<()> {
        let aborted = self
            .retrying(producer, KafkaOperation::AbortTransaction, |p| {
                p.abort_transaction(watchdog::CALL_TIMEOUT)
            })
            .await;
        match aborted {
            Ok(()) => {}
            Err(Failure::Stuck(stuck)) => {
                return self.replace_producer(stuck, batch).await;
            }
            Err(failure) => return Err(failure.into_error()),
        }
        self.stats.aborted.fetch_add(1, Ordering::Relaxed);
        let context = self.consumer.context();
        let to = batch.rewind_targets(|topic, partition| context.assignment_of(topic, partition));
        self.consumer.rewind(to).await
    }

    /// Runs a transaction call, retrying it while Kafka calls its failure retriable.
    async fn retrying<C>(
        &self,
        producer: &Producer<F>,
        operation: KafkaOperation,
        call: C,
    ) -> Result<(), Failure>
    where
        C: Fn(&TxnProducer) -> rdkafka::error::KafkaResult<()> + Send + Sync + 'static,
    {
        let call = Arc::new(call);
        (|| {
            let call = call.clone();
            self.txn(producer, operation, move |p| call(p))
        })
        .retry(crate::retry::exponential(
            Duration::from_millis(100),
            Duration::from_secs(5),
            None,
        ))
        .when(|failure| matches!(failure, Failure::Retry(_)))
        .notify(|failure, _| {
            if let Failure::Retry(error) = failure {
                warn!(%error, %operation, "transaction call failed; retrying");
            }
        })
        .await
    }

    /// Why `producer`'s open transaction can no longer commit, when it cannot (a partition was
    /// refused to it): asked by sending it the batch's offsets, which go nowhere since the
    /// caller aborts the transaction.
    async fn abortable_cause(&self, producer: &Producer<F>, batch: &Batch) -> Option<Error> {
        let metadata = self.consumer.rdkafka().group_metadata()?;
        let tpl = offsets_tpl(&batch.next).ok()?;
        let asked = self
            .txn(
                producer,
                KafkaOperation::SendOffsetsToTransaction,
                move |p| p.send_offsets_to_transaction(&tpl, &metadata, watchdog::CALL_TIMEOUT),
            )
            .await;
        match asked {
            Err(Failure::Abort(error) | Failure::Retry(error) | Failure::Fatal(error)) => {
                Some(error)
            }
            Ok(()) | Err(Failure::Stuck(_)) => None,
        }
    }

    /// Runs a blocking transaction call of `producer` on the blocking pool, under the
    /// watchdog, and classifies its failure.
    async fn txn<T, C>(
        &self,
        producer: &Producer<F>,
        operation: KafkaOperation,
        call: C,
    ) -> Result<T, Failure>
    where
        T: Send + 'static,
        C: FnOnce(&TxnProducer) -> rdkafka::error::KafkaResult<T> + Send + 'static,
    {
        let native = producer.rdkafka().clone();
        let late = || {
            let reason = format!(
                "the transaction call '{operation}' has not returned for {} s; the producer is \
                 replaced if it has not after {} s",
                watchdog::CALL_TIMEOUT.as_secs(),
                self.watchdog.bound().as_secs()
            );
            warn!(%operation, timeout_s = watchdog::CALL_TIMEOUT.as_secs(), "a transaction call is late");
            self.set_stall(Some(reason));
        };
        let result = self
            .watchdog
            .run(
                operation,
                move || call(&native),
                watchdog::CALL_TIMEOUT,
                late,
            )
            .await
            .map_err(Failure::Stuck)?
            .ok_or_else(|| {
                Failure::Fatal(Error::Kafka {
                    operation,
                    topic: None,
                    source: KafkaError::Canceled,
                })
            })?;
        result.map_err(|source| {
            let (fatal, abort, retry) = match &source {
                KafkaError::Transaction(e) => {
                    (e.is_fatal(), e.txn_requires_abort(), e.is_retriable())
                }
                _ => (true, false, false),
            };
            let context = producer.context();
            if fatal && let Some(refusal) = context.refusal() {
                return Failure::Fatal(context.refusal_error(refusal, operation));
            }
            let error = Error::Kafka {
                operation,
                topic: None,
                source,
            };
            if fatal {
                Failure::Fatal(error)
            } else if abort {
                Failure::Abort(error)
            } else if retry {
                Failure::Retry(error)
            } else {
                Failure::Fatal(error)
            }
        })
    }
}

/// Where `polled` was read.
fn polled_meta<In>(polled: &Polled<In>) -> &RecordMeta {
    match polled {
        Polled::Event(received) => &received.meta,
        Polled::Tombstone(tombstone) => &tombstone.meta,
        Polled::Poison { meta, .. } => meta,
    }
}

type TxnProducer = rdkafka::producer::FutureProducer<KafkaContext>;

fn offsets_tpl(offsets: &BTreeMap<(String, i32), i64>) -> Result<TopicPartitionList> {
    let mut tpl = TopicPartitionList::new();
    for ((topic, partition), offset) in offsets {
        tpl.add_partition_offset(topic, *partition, Offset::Offset(*offset))
            .map_err(|source| Error::Kafka {
                operation: KafkaOperation::SendOffsetsToTransaction,
                topic: Some(topic.clone()),
                source,
            })?;
    }
    Ok(tpl)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(partition: i32) -> (String, i32) {
        ("orders".to_owned(), partition)
    }

    /// The assignment of each partition now, as `KafkaContext::assignment_of` answers.
    fn owned(now: &[(i32, u64)]) -> impl Fn(&str, i32) -> Option<u64> + '_ {
        move |_, partition| {
            now.iter()
                .find(|(p, _)| *p == partition)
                .map(|(_, assignment)| *assignment)
        }
    }

    #[test]
    fn an_abort_rewinds_only_partitions_still_under_the_batch_assignment() {
        let mut batch = Batch::default();
        batch.enter("orders", 0, 10, Some(1));
        batch.enter("orders", 0, 11, Some(1));
        batch.enter("orders", 1, 20, Some(2));
        batch.enter("orders", 2, 30, Some(3));
        // Partition 0 still owned through assignment 1; 1 revoked; 2 revoked and given back
        // (assignment 7), after which another member may have committed past offset 30.
        let now = [(0, 1), (2, 7)];
        assert_eq!(batch.rewind_targets(owned(&now)), vec![(tp(0), 10, 1)]);
        assert!(batch.still_owned(owned(&now)).is_some(), "must not commit");
        assert_eq!(batch.still_owned(owned(&[(0, 1), (1, 2), (2, 3)])), None);
    }

    #[test]
    fn inputs_are_entered_per_topic_and_partition() {
        let mut batch = Batch::default();
        batch.enter("orders", 0, 10, Some(1));
        batch.enter("returns", 0, 40, Some(2));
        batch.enter("orders", 0, 11, Some(1));
        batch.enter("returns", 0, 41, Some(2));
        batch.enter("orders", 1, 7, Some(1));
        assert!(!batch.reassigned);
        assert_eq!(batch.next[&tp(0)], 12);
        assert_eq!(batch.next[&("returns".to_owned(), 0)], 42);
        assert_eq!(batch.next[&tp(1)], 8);
        assert_eq!(batch.first[&tp(0)], (10, Some(1)));
        assert_eq!(batch.first[&("returns".to_owned(), 0)], (40, Some(2)));
    }

    #[test]
    fn a_partition_read_again_under_a_new_assignment_is_rewound_to_its_new_first_input() {
        let mut batch = Batch::default();
        batch.enter("orders", 0, 10, Some(1));
        // Revoked and given back within the batch: read on from the committed offset, 14.
        batch.enter("orders", 0, 14, Some(5));
        batch.enter("orders", 0, 15, Some(5));
        assert!(batch.reassigned);
        assert_eq!(batch.next[&tp(0)], 16);
        // The inputs of the aborted batch read under assignment 5 are read again; offset 10
        // (before the other member's commit) is not.
        assert_eq!(batch.rewind_targets(owned(&[(0, 5)])), vec![(tp(0), 14, 5)]);
        // The batch never commits, although the assignment now matches its last entry.
        assert_eq!(batch.still_owned(owned(&[(0, 5)])), Some(&tp(0)));
    }
}
