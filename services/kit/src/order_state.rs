//! The compacted latest-state topic `grocery.order-state.v1`: reading it at start
//! ([`read_state`]) and writing it ([`StateWriter`]), so that a restart reads one record per
//! order instead of every status ever written.
//!
//! **Who writes.** The Order API, whose view folds every status anyway: each status that adds
//! a change to an order's history is followed by the order's [`OrderLatestState`] (its whole
//! history, and the status's partition and offset). Writes go through a transactional
//! producer with one `transactional.id` for all instances (`order-api-state` by default): the
//! instance that starts last fences the earlier ones, whose writer stops (logged, counted),
//! so there is one writer at a time, and it reads the state topic only after fencing: nothing
//! is written behind its back while it starts. One writer, statuses folded in offset order
//! per partition, the state keyed and partitioned like the statuses: the hand-over argument of
//! [`grocery_store::state::Resume`] holds. A writer that stopped (fenced, or an error) leaves
//! the state topic behind the status topic; that costs the next start time (more statuses to
//! read after the state), never a status.
//!
//! **Who reads.** The Order API (its view) and picklist-consumer (its restore): the state
//! topic to its end, then `grocery.order-status.v1` from [`Resume::next_offsets`].

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

/// Reads `grocery.order-state.v1` to its end (a [`Replay`] in group `group`), handing each
/// order's history to `apply`, and returns where to follow the status topic from.
///
/// # Errors
/// When the topic cannot be read (as [`Client::replay`]).
pub async fn read_state(
    client: &Client,
    group: &str,
    timeout: Duration,
    mut apply: impl FnMut(OrderHistory),
) -> grocery_events::Result<(Resume, u64)> {
    let mut replay = client
        .replay::<OrderLatestState>(ConsumerOptions::new(group), timeout)
        .await?;
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
    Ok((resume, records))
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
    /// The writer stopped (fenced by a newer instance, or an error): nothing more is written.
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
                tracing::error!(
                    %error,
                    "the order state writer stopped (another Order API instance may have taken over \
                     with the same transactional.id); grocery.order-state.v1 is no longer written \
                     by this instance"
                );
                stats.stopped.store(true, Ordering::Relaxed);
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
    fn a_batch_keeps_each_orders_last_record_in_offset_order() {
        let batch = [record(1, 10), record(2, 11), record(1, 12), record(3, 13)];
        let offsets: Vec<i64> = coalesce(&batch).iter().map(|r| r.status_offset).collect();
        assert_eq!(offsets, [11, 12, 13]);
    }
}
