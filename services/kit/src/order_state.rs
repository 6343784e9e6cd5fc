//! The compacted latest-state topic `grocery.order-state.v1`: reading it at start
//! ([`read_state`]) and writing it ([`StateWriter`]), so that a restart reads one record per
//! order instead of every status ever written.
//!
//! **Who writes.** The Order API, whose view folds every status anyway: each status that adds
//! a change to an order's history is followed by the order's [`OrderLatestState`] (its whole
//! history, and the status's partition and offset). Writes go through a transactional
//! producer with one `transactional.id` for all instances (`order-api-state` by default): the
//! instance that starts last fences the earlier ones, whose writer stops at its next write
//! ([`WriterStats::stopped`], an ERROR line saying it was fenced) while their views go on, so
//! there is one writer at a time, and it reads the state topic only after fencing: nothing
//! is written behind its back while it starts. One writer, statuses folded in offset order
//! per partition, the state keyed and partitioned like the statuses: the hand-over argument of
//! [`grocery_store::state::Resume`] holds. A writer that stopped (fenced, or an error) leaves
//! the state topic behind the status topic; that costs the next start time (more statuses to
//! read after the state), never a status.
//!
//! **Who reads.** The Order API (its view) and picklist-consumer (its restore): the state
//! topic to its end, then `grocery.order-status.v1` from [`Resume::next_offsets`]. Both topics'
//! partition counts are compared first: when they differ ([`PartitionMismatch`], e.g. the status
//! topic repartitioned) the state is not read, and the reader reads every status instead.

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use grocery_events::{
    Client, ConsumerOptions, OrderLatestState, OrderStatus, Record, Replay, topics,
};
use grocery_store::{OrderHistory, state::Resume, state::from_state};
use rdkafka::producer::Producer as _;
use tokio::sync::mpsc;

/// The `transactional.id` of the state writer unless configured otherwise.
pub const DEFAULT_TRANSACTIONAL_ID: &str = "order-api-state";

/// State records waiting for the writer, at most; the view waits past it.
const QUEUE: usize = 8192;

/// State records written in one transaction, at most.
const BATCH: usize = 2000;

/// How long a transaction's commit may take.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(30);

/// `grocery.order-state.v1` and `grocery.order-status.v1` have different partition counts
/// (one of them created or repartitioned on its own): the hand-over from the state is exact only
/// when an order's state record lands on the partition number of its statuses, so the state is
/// not used; the reader reads every status instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{state_topic} has {state} partitions and {status_topic} has {status}: the state cannot be \
     handed over exactly with different counts; reading every status of {status_topic} instead \
     (recreate {state_topic}, empty, with {status} partitions to start from the state again)",
    state_topic = topics::ORDER_STATE,
    status_topic = topics::ORDER_STATUS
)]
#[non_exhaustive]
pub struct PartitionMismatch {
    /// Partitions of `grocery.order-state.v1`.
    pub state: usize,
    /// Partitions of `grocery.order-status.v1`.
    pub status: usize,
}

/// What [`read_state`] found.
#[derive(Debug)]
pub enum StateRead {
    /// The state topic was read to its end: follow the statuses from `resume`.
    Read {
        /// Where to follow the status topic from ([`statuses_after`]).
        resume: Resume,
        /// State records read.
        records: u64,
    },
    /// The two topics' partition counts differ: no state record was read (nothing was handed
    /// to `apply`); read every status instead.
    Mismatch(PartitionMismatch),
}

/// Reads `grocery.order-state.v1` to its end (a [`Replay`] in group `group`), handing each
/// order's history to `apply`, and says where to follow the status topic from; first it
/// compares the two topics' partition counts and, when they differ, reads nothing
/// ([`StateRead::Mismatch`], logged at WARN with both counts).
///
/// # Errors
/// When the topic cannot be read (as [`Client::replay`]), or either topic's partition count
/// cannot be read within `timeout`.
pub async fn read_state(
    client: &Client,
    group: &str,
    timeout: Duration,
    mut apply: impl FnMut(OrderHistory),
) -> grocery_events::Result<StateRead> {
    let mut replay = client
        .replay::<OrderLatestState>(ConsumerOptions::new(group), timeout)
        .await?;
    let counts = (
        replay.partition_count(),
        replay
            .consumer()
            .partition_count(topics::ORDER_STATUS, timeout)
            .await?,
    );
    if counts.0 != counts.1 {
        let mismatch = PartitionMismatch {
            state: counts.0,
            status: counts.1,
        };
        tracing::warn!(
            state_partitions = mismatch.state,
            status_partitions = mismatch.status,
            "{mismatch}"
        );
        return Ok(StateRead::Mismatch(mismatch));
    }
    let mut resume = Resume::default();
    let mut records = 0;
    while let Some(record) = replay.recv_until_caught_up().await? {
        // No writer of this project deletes a key; a tombstone would only mean "forget it".
        if let Record::Event(received) = record {
            records += 1;
            resume.note(received.meta.partition, &received.event);
            if let Some(history) = from_state(&received.event) {
                apply(history);
            }
        }
    }
    if resume.misplaced() > 0 {
        tracing::warn!(
            misplaced = resume.misplaced(),
            "state records on another partition number than their statuses: \
             grocery.order-state.v1 must have as many partitions as grocery.order-status.v1"
        );
    }
    Ok(StateRead::Read { resume, records })
}

/// Assigns `replay` the partitions of `grocery.order-status.v1` it does not read yet, from their
/// beginning: partitions added since it started (the topic repartitioned while it runs; a
/// [`Replay`] is assigned its partitions by hand, so it would never see them otherwise).
/// Returns the partition counts before and after when any were added. A caller writing the
/// state should stop: its records of the new partitions' statuses would not land on their
/// partition numbers (see [`PartitionMismatch`]).
///
/// # Errors
/// When the topic's partitions or the assignment cannot be read or changed within `timeout`.
pub async fn follow_new_partitions(
    replay: &Replay<OrderStatus>,
    timeout: Duration,
) -> grocery_events::Result<Option<(usize, usize)>> {
    use rdkafka::consumer::Consumer as _;
    let topic = topics::ORDER_STATUS;
    let fail = |source| grocery_events::Error::Kafka {
        operation: avro_events::KafkaOperation::Assign,
        topic: Some(topic.to_owned()),
        source,
    };
    let count = replay.consumer().partition_count(topic, timeout).await?;
    let native = replay.consumer().rdkafka();
    blocking(|| {
        let assigned = native.assignment().map_err(fail)?;
        let read: std::collections::BTreeSet<i32> = assigned
            .elements_for_topic(topic)
            .iter()
            .map(|element| element.partition())
            .collect();
        let mut added = rdkafka::TopicPartitionList::new();
        for partition in (0..i32::try_from(count).unwrap_or(i32::MAX)).filter(|p| !read.contains(p))
        {
            added
                .add_partition_offset(topic, partition, rdkafka::Offset::Beginning)
                .map_err(fail)?;
        }
        if added.count() == 0 {
            return Ok(None);
        }
        native.incremental_assign(&added).map_err(fail)?;
        Ok(Some((read.len(), count)))
    })
}

/// Runs `work`, which blocks on the network, without stalling the other tasks of a
/// multi-threaded runtime (a current-thread runtime runs it in place).
fn blocking<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(work),
        _ => work(),
    }
}

/// A [`Replay`] of `grocery.order-status.v1` from where `resume` says the state left off
/// (partitions it does not name from their beginning).
///
/// # Errors
/// As [`Client::replay`].
pub async fn statuses_after(
    client: &Client,
    group: &str,
    timeout: Duration,
    resume: &Resume,
) -> grocery_events::Result<Replay<OrderStatus>> {
    let from: BTreeMap<i32, i64> = resume.next_offsets();
    client
        .replay_from::<OrderStatus>(ConsumerOptions::new(group), timeout, from)
        .await
}

/// What the writer has done.
#[derive(Debug, Default)]
pub struct WriterStats {
    /// State records committed (an order's earlier records in one transaction are left out:
    /// its last supersedes them).
    pub written: AtomicU64,
    /// The writer stopped (fenced by a newer instance, its write refused, or another error):
    /// nothing more is written.
    pub stopped: AtomicBool,
}

/// Queues state records for the transactional writer task.
#[derive(Debug, Clone)]
pub struct StateWriter {
    tx: mpsc::Sender<OrderLatestState>,
    stats: Arc<WriterStats>,
}

impl StateWriter {
    /// Creates the transactional producer (fencing earlier writers with `transactional_id`)
    /// and starts the writer task; the task ends once every [`StateWriter`] is dropped and the
    /// records queued are committed.
    ///
    /// # Errors
    /// When the producer cannot be created or its transactions initialised (brokers
    /// unreachable, the transactional id not granted).
    pub async fn start(
        client: &Client,
        transactional_id: &str,
    ) -> grocery_events::Result<(Self, tokio::task::JoinHandle<()>)> {
        let config = client
            .config()
            .clone()
            .set("transactional.id", transactional_id);
        let producer = Client::from_config(config)?
            .transactional_producer()
            .await?;
        // Fences the writer of an instance started earlier and aborts what it left open.
        producer
            .init_transactions(std::time::Duration::from_secs(30))
            .await?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let stats = Arc::new(WriterStats::default());
        let task = tokio::spawn(write(producer, rx, stats.clone()));
        Ok((Self { tx, stats }, task))
    }

    /// Queues `record`, waiting while the queue is full; does nothing once the writer stopped.
    pub async fn push(&self, record: OrderLatestState) {
        // A closed queue: the writer stopped, which it logged.
        let _ = self.tx.send(record).await;
    }

    /// The writer's figures.
    pub fn stats(&self) -> &Arc<WriterStats> {
        &self.stats
    }
}

async fn write(
    producer: grocery_events::Producer,
    mut rx: mpsc::Receiver<OrderLatestState>,
    stats: Arc<WriterStats>,
) {
    let mut batch = Vec::with_capacity(BATCH);
    while let Some(first) = rx.recv().await {
        batch.clear();
        batch.push(first);
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(record) => batch.push(record),
                Err(_) => break,
            }
        }
        let written = match commit(&producer, &batch).await {
            Ok(written) => written,
            Err(error) => {
                stats.stopped.store(true, Ordering::Relaxed);
                let fenced = is_fenced(&error);
                if fenced {
                    tracing::error!(
                        error = %format!("{error:#}"),
                        fenced,
                        "the order state writer stopped: fenced by a newer Order API instance \
                         with the same transactional.id, which writes grocery.order-state.v1 \
                         from now on; this instance's view goes on answering"
                    );
                } else {
                    tracing::error!(
                        error = %format!("{error:#}"),
                        fenced,
                        "the order state writer stopped: grocery.order-state.v1 is no longer \
                         written by this instance (the next start reads more statuses); its \
                         view goes on answering"
                    );
                }
                let native = producer.rdkafka().clone();
                let _ =
                    tokio::task::spawn_blocking(move || native.abort_transaction(COMMIT_TIMEOUT))
                        .await;
                return;
            }
        };
        stats.written.fetch_add(written, Ordering::Relaxed);
    }
}

/// Whether `error` says a newer producer with the same `transactional.id` fenced this one.
fn is_fenced(error: &anyhow::Error) -> bool {
    use rdkafka::types::RDKafkaErrorCode as Code;
    error.chain().any(|cause| {
        let code = if let Some(error) = cause.downcast_ref::<rdkafka::error::KafkaError>() {
            error.rdkafka_error_code()
        } else if let Some(grocery_events::Error::Kafka { source, .. }) =
            cause.downcast_ref::<grocery_events::Error>()
        {
            source.rdkafka_error_code()
        } else if let Some(grocery_events::Error::Fatal { reason, .. }) =
            cause.downcast_ref::<grocery_events::Error>()
        {
            return reason.contains("fenced");
        } else {
            None
        };
        matches!(
            code,
            Some(Code::ProducerFenced | Code::InvalidProducerEpoch | Code::Fenced)
        )
    })
}

/// `batch` with only the last record of each order, in the order of those last records: within
/// one transaction (all or nothing for a reader) an order's earlier records are superseded by
/// its last, and every partition's records keep their status-offset order.
fn coalesce(batch: &[OrderLatestState]) -> Vec<&OrderLatestState> {
    let mut last = std::collections::HashMap::with_capacity(batch.len());
    for (index, record) in batch.iter().enumerate() {
        last.insert(record.order_id, index);
    }
    batch
        .iter()
        .enumerate()
        .filter(|(index, record)| last.get(&record.order_id) == Some(index))
        .map(|(_, record)| record)
        .collect()
}

/// Writes `batch` in one transaction, each order's last record only ([`coalesce`]); returns
/// how many records were written.
async fn commit(
    producer: &grocery_events::Producer,
    batch: &[OrderLatestState],
) -> anyhow::Result<u64> {
    let batch = coalesce(batch);
    producer.rdkafka().begin_transaction()?;
    let mut pending = Vec::with_capacity(batch.len());
    for record in &batch {
        pending.push(producer.enqueue_to(topics::ORDER_STATE, *record).await?);
    }
    let native = producer.rdkafka().clone();
    tokio::task::spawn_blocking(move || native.commit_transaction(COMMIT_TIMEOUT)).await??;
    for delivery in pending {
        delivery.await?;
    }
    Ok(batch.len() as u64)
}

#[cfg(test)]
mod tests {
    use grocery_events::OrderStage;
    use uuid::Uuid;

    use super::*;

    fn record(order: u128, offset: i64) -> OrderLatestState {
        OrderLatestState {
            order_id: Uuid::from_u128(order),
            state: OrderStage::Received,
            history: vec![],
            status_partition: 0,
            status_offset: offset,
        }
    }

    #[test]
    fn a_partition_mismatch_names_both_topics_and_counts() {
        let message = PartitionMismatch {
            state: 3,
            status: 6,
        }
        .to_string();
        assert!(
            message.starts_with(
                "grocery.order-state.v1 has 3 partitions and grocery.order-status.v1 has 6"
            ),
            "{message}"
        );
        assert!(message.contains("with 6 partitions"), "{message}");
    }

    #[test]
    fn a_batch_keeps_each_orders_last_record_in_offset_order() {
        let batch = [record(1, 10), record(2, 11), record(1, 12), record(3, 13)];
        let offsets: Vec<i64> = coalesce(&batch).iter().map(|r| r.status_offset).collect();
        assert_eq!(offsets, [11, 12, 13]);
    }
}
