//! The pipeline's own limit: for each input, rdkafka alone writes the records
//! fulfillment-service writes for an order (a pick list and two statuses of the same sizes,
//! encoded beforehand: [`Outputs`]), with no decode, no pick list built and no encode, at the
//! pipeline's cadence and with the same librdkafka configuration: at-least-once (at most
//! [`MAX_IN_FLIGHT`] inputs awaiting their outputs' acknowledgements, an input's offset stored
//! once its outputs are acknowledged, auto commit) or transactional (batches of up to 500
//! inputs or 100 ms, every output acknowledged, then the inputs' offsets committed in the
//! transaction).

use std::{
    collections::{BTreeMap, HashSet},
    time::{Duration, Instant, SystemTime},
};

use anyhow::{Context as _, bail};
use avro_events::config::ClientRole;
use futures::{StreamExt as _, stream::FuturesOrdered};
use grocery_events::Config;
use rdkafka::{
    Message as _, Offset, TopicPartitionList,
    consumer::{BaseConsumer, CommitMode, Consumer as _, StreamConsumer},
    error::{KafkaError, RDKafkaErrorCode},
    message::OwnedMessage,
    producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer as _},
};
use tokio::sync::oneshot;

/// As `PipelineOptions::max_in_flight`'s default.
const MAX_IN_FLIGHT: usize = 1000;

/// The consumer of group `group`, configured as the library's consumer configures its own.
fn consumer(config: &Config, group: &str) -> anyhow::Result<StreamConsumer> {
    // The library's own consumer settings: the pass-through differs only in what it does.
    config
        .rdkafka_consumer_config(group)
        .create()
        .context("creating a pass-through consumer")
}

/// Waits until `consumer` has partitions, reading nothing (none may arrive before).
async fn wait_for_assignment(consumer: &StreamConsumer) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        // The group join is driven by polling; the assignment is checked between polls.
        tokio::select! {
            message = consumer.recv() => {
                let message = message.context("pass-through consumer")?;
                bail!(
                    "a record (partition {}, offset {}) arrived before the run began",
                    message.partition(),
                    message.offset()
                );
            }
            () = tokio::time::sleep(Duration::from_millis(10)) => {}
        }
        if consumer.assignment()?.count() > 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the pass-through consumer got no partitions in 60 s");
        }
    }
}

/// What the pass-through writes per input instead of decoding it and building outputs: the
/// records fulfillment-service writes for an order (a pick list and two statuses), encoded
/// beforehand from simulated orders, so that both sides write records of the same sizes and
/// count. Input `i` gets `records[i % records.len()]`, with the input's key and headers (its
/// `traceparent`).
#[derive(Debug, Clone)]
pub(crate) struct Outputs {
    /// Where the pick lists go.
    pub(crate) picklists: String,
    /// Where the statuses go.
    pub(crate) statuses: String,
    /// Encoded (pick list, RECEIVED, PICKLIST_CREATED) triples.
    pub(crate) records: std::sync::Arc<Vec<[Vec<u8>; 3]>>,
}

impl Outputs {
    /// Queues input `index`'s three records (key and headers of `message`); a full queue is
    /// waited out without blocking the runtime, as the library's producer does.
    async fn send(
        &self,
        producer: &FutureProducer,
        message: &OwnedMessage,
        index: u64,
    ) -> Result<Vec<DeliveryFuture>, KafkaError> {
        let records = &self.records[(index % self.records.len() as u64) as usize];
        let topics = [&self.picklists, &self.statuses, &self.statuses];
        let mut deliveries = Vec::with_capacity(3);
        for (topic, payload) in topics.into_iter().zip(records) {
            deliveries.push(loop {
                let mut record = FutureRecord::to(topic).payload(payload);
                if let Some(key) = message.key() {
                    record = record.key(key);
                }
                if let Some(headers) = message.headers() {
                    record = record.headers(headers.clone());
                }
                match producer.send_result(record) {
                    Ok(delivery) => break delivery,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                        // librdkafka's queue is full: its own thread drains it meanwhile.
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    Err((error, _)) => return Err(error),
                }
            });
        }
        Ok(deliveries)
    }
}

/// What a copy run saw.
#[derive(Debug)]
pub(crate) struct Copied {
    /// When the first inputs were done (outputs acknowledged, or their transaction committed).
    pub(crate) first: Instant,
    /// Inputs done at `first` (one, or a transaction's batch).
    pub(crate) done_at_first: u64,
    /// When the last one was.
    pub(crate) last: Instant,
}

impl Copied {
    /// Seconds for `total - 1` inputs at the rate seen from `first` to `last`, as
    /// fulfillment-service's drain is timed.
    pub(crate) fn seconds(&self, total: u64) -> f64 {
        (self.last - self.first).as_secs_f64() * (total.saturating_sub(1)) as f64
            / (total.saturating_sub(self.done_at_first)).max(1) as f64
    }
}

/// The pipeline's transactional cadence (`PipelineOptions::batch_size`, `batch_linger`).
const BATCH_SIZE: usize = 500;
const BATCH_LINGER: Duration = Duration::from_millis(100);

/// Reads `total` records of `from` as consumer group `group` and writes `outputs` for each,
/// at-least-once (an input's offset stored once its three records are acknowledged, auto
/// commit) or, with `transactional_id`, in transactions of up to [`BATCH_SIZE`] inputs
/// ([`BATCH_LINGER`]) committing the inputs' offsets with them, as the pipeline does. With
/// `ready`, the group's assignment is awaited (and signalled) before the first record is read.
///
/// # Errors
/// Client errors, or a record not acknowledged.
pub(crate) async fn copy(
    properties: String,
    group: String,
    from: String,
    outputs: Outputs,
    total: u64,
    ready: Option<oneshot::Sender<()>>,
    transactional_id: Option<String>,
) -> anyhow::Result<Copied> {
    let config = Config::from_properties_str(&properties)?;
    let mut consumer_config = config.rdkafka_consumer_config(&group);
    if transactional_id.is_some() {
        consumer_config.set("enable.auto.commit", "false");
    }
    let consumer: StreamConsumer = consumer_config
        .create()
        .context("creating a pass-through consumer")?;
    consumer.subscribe(&[&from])?;
    let producer: FutureProducer = {
        let mut rd = config.rdkafka_config_for(ClientRole::Producer);
        if config.get("enable.idempotence").is_none() {
            rd.set("enable.idempotence", "true");
        }
        if let Some(id) = &transactional_id {
            rd.set("transactional.id", id);
        }
        rd.create().context("creating the pass-through producer")?
    };
    if transactional_id.is_some() {
        blocking(&producer, |p| p.init_transactions(Duration::from_secs(30)))
            .await
            .context("initializing the pass-through's transactions")?;
    }
    if let Some(ready) = ready {
        wait_for_assignment(&consumer).await?;
        let _ = ready.send(());
    }
    if transactional_id.is_some() {
        copy_transactional(&consumer, &producer, &from, &outputs, total).await
    } else {
        copy_pipelined(&consumer, &producer, &from, &outputs, total).await
    }
}

async fn copy_pipelined(
    consumer: &StreamConsumer,
    producer: &FutureProducer,
    from: &str,
    outputs: &Outputs,
    total: u64,
) -> anyhow::Result<Copied> {
    let mut in_flight = FuturesOrdered::new();
    let (mut read, mut done, mut first) = (0u64, 0u64, None);
    loop {
        tokio::select! {
            message = consumer.recv(), if in_flight.len() < MAX_IN_FLIGHT => {
                let message = message.context("pass-through consumer")?.detach();
                let deliveries = outputs.send(producer, &message, read).await.context("queueing outputs")?;
                read += 1;
                let (partition, offset) = (message.partition(), message.offset());
                in_flight.push_back(async move {
                    let mut result = Ok(());
                    for delivery in deliveries {
                        match delivery.await {
                            Ok(Ok(_)) => {}
                            Ok(Err((error, _))) => result = Err(anyhow::Error::new(error).context("output not acknowledged")),
                            Err(_) => result = Err(anyhow::anyhow!("output delivery canceled")),
                        }
                    }
                    (partition, offset, result)
                });
            }
            Some((partition, offset, delivered)) = in_flight.next() => {
                delivered?;
                consumer.store_offset(from, partition, offset)?;
                done += 1;
                let now = Instant::now();
                let first = *first.get_or_insert(now);
                if done == total {
                    return Ok(Copied { first, done_at_first: 1, last: now });
                }
            }
        }
    }
}

/// Runs one of librdkafka's blocking transaction calls on tokio's blocking pool, as the
/// pipeline does (`pipeline/watchdog.rs`), so that the pass-through's task does not hold a
/// runtime thread while the coordinator answers: the consumer's and the deliveries' wakeups
/// keep being served meanwhile.
async fn blocking<T: Send + 'static>(
    producer: &FutureProducer,
    call: impl FnOnce(&FutureProducer) -> Result<T, KafkaError> + Send + 'static,
) -> anyhow::Result<T> {
    let producer = producer.clone();
    Ok(tokio::task::spawn_blocking(move || call(&producer))
        .await
        .context("a transaction call of the pass-through did not finish")??)
}

async fn copy_transactional(
    consumer: &StreamConsumer,
    producer: &FutureProducer,
    from: &str,
    outputs: &Outputs,
    total: u64,
) -> anyhow::Result<Copied> {
    let (mut done, mut first) = (0u64, None);
    let timeout = Duration::from_secs(30);
    loop {
        // The first input of a batch opens its transaction.
        let message = consumer
            .recv()
            .await
            .context("pass-through consumer")?
            .detach();
        blocking(producer, |p| p.begin_transaction()).await?;
        let linger = Instant::now() + BATCH_LINGER;
        let mut offsets: BTreeMap<i32, i64> = BTreeMap::new();
        let mut deliveries = Vec::with_capacity(3 * BATCH_SIZE);
        let mut batch = 0u64;
        let mut next = Some(message);
        while let Some(message) = next.take() {
            deliveries.extend(outputs.send(producer, &message, done + batch).await?);
            offsets.insert(message.partition(), message.offset() + 1);
            batch += 1;
            if batch as usize >= BATCH_SIZE || done + batch >= total {
                break;
            }
            let left = linger.saturating_duration_since(Instant::now());
            if let Ok(message) = tokio::time::timeout(left, consumer.recv()).await {
                next = Some(message.context("pass-through consumer")?.detach());
            }
        }
        // Every output acknowledged before the offsets and the commit, as the pipeline waits
        // (`fill_batch`): rdkafka's `commit_transaction` first flushes the producer, and with
        // a delivery still outstanding its flush polls the producer for a whole 100 ms
        // (`BaseProducer::flush` polls with `min(remaining, 100 ms)`, and `poll` returns only
        // at its deadline), whatever the broker's speed. On Kafka, offsets sent while the
        // batch's partitions are still being registered (`AddPartitionsToTxn`) are answered
        // `CONCURRENT_TRANSACTIONS` and retried after `retry.backoff.ms` (100 ms).
        for delivery in deliveries {
            match delivery.await {
                Ok(Ok(_)) => {}
                Ok(Err((error, _))) => return Err(error).context("output not acknowledged"),
                Err(_) => bail!("output delivery canceled"),
            }
        }
        let mut list = TopicPartitionList::new();
        for (partition, offset) in &offsets {
            // The next offset to read, as the pipeline commits it.
            list.add_partition_offset(from, *partition, Offset::Offset(*offset))?;
        }
        let metadata = consumer
            .group_metadata()
            .context("the pass-through consumer's group metadata")?;
        blocking(producer, move |p| {
            p.send_offsets_to_transaction(&list, &metadata, timeout)?;
            p.commit_transaction(timeout)
        })
        .await?;
        done += batch;
        let now = Instant::now();
        let (first, done_at_first) = *first.get_or_insert((now, done));
        if done >= total {
            return Ok(Copied {
                first,
                done_at_first,
                last: now,
            });
        }
    }
}

/// Reads `to` as group `group` until every key in `keys` was seen; returns when (wall clock,
/// ms since the epoch), like picklist-consumer's `displayed_at_ms`.
///
/// # Errors
/// Client errors.
pub(crate) async fn count_keys(
    properties: String,
    group: String,
    topic: String,
    ready: oneshot::Sender<()>,
    keys: oneshot::Receiver<HashSet<String>>,
) -> anyhow::Result<i64> {
    let config = Config::from_properties_str(&properties)?;
    let consumer = consumer(&config, &group)?;
    consumer.subscribe(&[&topic])?;
    wait_for_assignment(&consumer).await?;
    let _ = ready.send(());
    let mut seen = HashSet::new();
    let mut keys = keys;
    let mut expected: Option<HashSet<String>> = None;
    loop {
        tokio::select! {
            message = consumer.recv() => {
                let message = message.context("pass-through reader")?;
                if let Some(key) = message.key() {
                    seen.insert(String::from_utf8_lossy(key).into_owned());
                }
                // Offsets stored as picklist-consumer stores them.
                consumer.store_offset_from_message(&message)?;
            }
            sent = &mut keys, if expected.is_none() => {
                expected = Some(sent.context("the sender's keys never came")?);
            }
        }
        if let Some(expected) = &expected
            && expected.iter().all(|k| seen.contains(k))
        {
            return Ok(epoch_ms());
        }
    }
}

/// Milliseconds since the Unix epoch.
pub(crate) fn epoch_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Commits group `group`'s offsets on every partition of `topic` at the partition's end, so
/// that a group started afterwards reads only what is written after this call.
///
/// # Errors
/// Client errors.
pub(crate) fn commit_to_end(properties: &str, group: &str, topic: &str) -> anyhow::Result<()> {
    let config = Config::from_properties_str(properties)?;
    let mut rd = config.rdkafka_config_for(ClientRole::Consumer);
    rd.set("group.id", group);
    let consumer: BaseConsumer = rd.create().context("creating an offset committer")?;
    let timeout = Duration::from_secs(10);
    let metadata = consumer.fetch_metadata(Some(topic), timeout)?;
    let mut list = TopicPartitionList::new();
    for partition in metadata
        .topics()
        .iter()
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
    {
        let (_, high) = consumer.fetch_watermarks(topic, partition, timeout)?;
        list.add_partition_offset(topic, partition, Offset::Offset(high))?;
    }
    anyhow::ensure!(list.count() > 0, "topic {topic} has no partitions");
    consumer
        .commit(&list, CommitMode::Sync)
        .with_context(|| format!("committing group {group}'s offsets on {topic} at the end"))
}
