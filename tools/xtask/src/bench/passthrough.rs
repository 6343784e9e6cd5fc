//! The pipeline's own limit: records copied from one topic to another by rdkafka alone, with
//! no decode and no encode, at the pipeline's batching and commit cadence (the same
//! librdkafka configuration, at most [`MAX_IN_FLIGHT`] records awaiting their copies'
//! acknowledgements, an input's offset stored once its copy is acknowledged, auto commit).

use std::{
    collections::HashSet,
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
    producer::{FutureProducer, FutureRecord},
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

/// What a copy run saw.
#[derive(Debug)]
pub(crate) struct Copied {
    /// When the first copy was acknowledged.
    pub(crate) first: Instant,
    /// When the last one was.
    pub(crate) last: Instant,
}

/// Copies `total` records from `from` to `to` as consumer group `group`. With `ready`, the
/// group's assignment is awaited (and signalled) before the first record is read.
///
/// # Errors
/// Client errors, or a copy not acknowledged.
pub(crate) async fn copy(
    properties: String,
    group: String,
    from: String,
    to: String,
    total: u64,
    ready: Option<oneshot::Sender<()>>,
) -> anyhow::Result<Copied> {
    let config = Config::from_properties_str(&properties)?;
    let consumer = consumer(&config, &group)?;
    consumer.subscribe(&[&from])?;
    let producer: FutureProducer = {
        let mut rd = config.rdkafka_config_for(ClientRole::Producer);
        if config.get("enable.idempotence").is_none() {
            rd.set("enable.idempotence", "true");
        }
        rd.create().context("creating the pass-through producer")?
    };
    if let Some(ready) = ready {
        wait_for_assignment(&consumer).await?;
        let _ = ready.send(());
    }
    let mut in_flight = FuturesOrdered::new();
    let (mut done, mut first) = (0u64, None);
    loop {
        tokio::select! {
            message = consumer.recv(), if in_flight.len() < MAX_IN_FLIGHT => {
                let message = message.context("pass-through consumer")?.detach();
                let delivery = loop {
                    let mut record = FutureRecord::to(&to);
                    if let Some(key) = message.key() {
                        record = record.key(key);
                    }
                    if let Some(payload) = message.payload() {
                        record = record.payload(payload);
                    }
                    match producer.send_result(record) {
                        Ok(delivery) => break delivery,
                        Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                        Err((error, _)) => return Err(error).context("queueing a copy"),
                    }
                };
                let (partition, offset) = (message.partition(), message.offset());
                in_flight.push_back(async move { (partition, offset, delivery.await) });
            }
            Some((partition, offset, delivery)) = in_flight.next() => {
                match delivery {
                    Ok(Ok(_)) => {}
                    Ok(Err((error, _))) => return Err(error).context("copy not acknowledged"),
                    Err(_) => bail!("copy delivery canceled"),
                }
                consumer.store_offset(&from, partition, offset)?;
                done += 1;
                let now = Instant::now();
                let first = *first.get_or_insert(now);
                if done == total {
                    return Ok(Copied { first, last: now });
                }
            }
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
