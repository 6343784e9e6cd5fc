//! What a test reads back from the broker as a second client, to check a guarantee where it
//! holds: the records on a topic as a `read_committed` reader sees them, a group's committed
//! offsets, the records a topic holds, the distinct keys a `read_committed` reader has seen so
//! far while a test runs ([`LiveKeys`]). Every read is bounded in time; a failure panics with
//! what was being read (these are test helpers).

use std::{
    collections::{BTreeMap, BTreeSet, HashSet},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use avro_events::Codec;
use avro_events::Event;
use rdkafka::{
    ClientConfig, Message as _, Offset, TopicPartitionList,
    consumer::{BaseConsumer, Consumer as _},
};
use uuid::Uuid;

/// The longest any read here waits for the broker.
const WAIT: Duration = Duration::from_secs(60);

/// Waits for `condition`, checking every 50 ms for at most two minutes; `what` names it in the
/// panic message. The condition is the event waited on; the pause only spaces the checks.
///
/// # Panics
/// When the condition does not hold within two minutes (or the condition itself panics).
pub async fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !condition() {
        assert!(Instant::now() < deadline, "waited 120 s for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A reader of `topic` outside any group that commits: `read_committed`, from the beginning,
/// subscribed.
///
/// # Panics
/// When the client cannot be made or subscribed.
pub fn read_committed_reader(bootstrap: &str, topic: &str) -> BaseConsumer {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("verify-{}", Uuid::new_v4()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()
        .expect("a read_committed reader");
    consumer
        .subscribe(&[topic])
        .unwrap_or_else(|e| panic!("subscribing to {topic}: {e}"));
    consumer
}

/// The records of `topic` up to its end offsets (taken first), read back `read_committed`:
/// each record's key and value, in each partition's order.
///
/// # Panics
/// When the topic cannot be read, or is not read to its end offsets within `timeout`.
pub fn records_to_end(bootstrap: &str, topic: &str, timeout: Duration) -> Vec<(Vec<u8>, Vec<u8>)> {
    let consumer = read_committed_reader(bootstrap, topic);
    let metadata = consumer
        .fetch_metadata(Some(topic), WAIT)
        .unwrap_or_else(|e| panic!("metadata of {topic}: {e}"));
    let mut ends = Vec::new();
    for partition in metadata.topics()[0].partitions() {
        let (_, high) = consumer
            .fetch_watermarks(topic, partition.id(), WAIT)
            .unwrap_or_else(|e| panic!("watermarks of {topic}[{}]: {e}", partition.id()));
        ends.push((partition.id(), high));
    }
    let mut records = Vec::new();
    let deadline = Instant::now() + timeout;
    loop {
        let position = consumer
            .position()
            .unwrap_or_else(|e| panic!("position on {topic}: {e}"));
        let done = ends.iter().all(|(partition, high)| {
            *high == 0
                || position
                    .find_partition(topic, *partition)
                    .is_some_and(|p| matches!(p.offset(), Offset::Offset(o) if o >= *high))
        });
        if done {
            return records;
        }
        assert!(
            Instant::now() < deadline,
            "{topic} not read to {ends:?}: {} records",
            records.len()
        );
        if let Some(message) = consumer.poll(Duration::from_millis(500)) {
            let message = message.unwrap_or_else(|e| panic!("reading {topic}: {e}"));
            records.push((
                message.key().unwrap_or_default().to_vec(),
                message.payload().unwrap_or_default().to_vec(),
            ));
        }
    }
}

/// Per wanted key, how many records of `E` on its topic a `read_committed` reader sees, read
/// from the beginning until every wanted key is there and the topic stays quiet for two
/// seconds (or three minutes pass). Records of other keys are not counted. Call it from a
/// multi-thread tokio runtime (it decodes through `codec` with `block_in_place`).
///
/// # Panics
/// When the topic cannot be read or a record does not decode as `E`.
pub fn committed_counts<E: Event>(
    bootstrap: &str,
    codec: &Codec,
    wanted: &BTreeSet<Uuid>,
    key: impl Fn(&E) -> Uuid,
) -> BTreeMap<Uuid, u32> {
    let consumer = read_committed_reader(bootstrap, E::TOPIC);
    let runtime = tokio::runtime::Handle::current();
    let mut counts = BTreeMap::<Uuid, u32>::new();
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut quiet = 0;
    while Instant::now() < deadline && quiet < 4 {
        match consumer.poll(Duration::from_millis(500)) {
            Some(Ok(message)) => {
                quiet = 0;
                let payload = message.payload().unwrap_or_default().to_vec();
                let event: E =
                    tokio::task::block_in_place(|| runtime.block_on(codec.decode::<E>(&payload)))
                        .unwrap_or_else(|e| {
                            panic!("a record on {} does not decode: {e}", E::TOPIC)
                        });
                if wanted.contains(&key(&event)) {
                    *counts.entry(key(&event)).or_default() += 1;
                }
            }
            Some(Err(e)) => panic!("reading {}: {e}", E::TOPIC),
            None if counts.len() >= wanted.len() => quiet += 1,
            None => {}
        }
    }
    counts
}

/// The offsets `group` has committed on partitions `0..partitions` of `topic`, as a client
/// that is not a member of the group reads them.
///
/// # Panics
/// When the broker does not answer.
pub fn committed_offsets(
    bootstrap: &str,
    group: &str,
    topic: &str,
    partitions: i32,
) -> Vec<(i32, Offset)> {
    let reader: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("an offsets reader");
    let mut tpl = TopicPartitionList::new();
    for partition in 0..partitions {
        tpl.add_partition(topic, partition);
    }
    reader
        .committed_offsets(tpl, WAIT)
        .unwrap_or_else(|e| panic!("reading {group}'s offsets on {topic}: {e}"))
        .elements()
        .iter()
        .map(|e| (e.partition(), e.offset()))
        .collect()
}

/// The records partitions `0..partitions` of `topic` hold (high minus low watermark).
///
/// # Panics
/// When the broker does not answer.
pub fn records_on(bootstrap: &str, topic: &str, partitions: i32) -> i64 {
    let reader: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("a watermark reader");
    (0..partitions)
        .map(|partition| {
            let (low, high) = reader
                .fetch_watermarks(topic, partition, WAIT)
                .unwrap_or_else(|e| panic!("watermarks of {topic}[{partition}]: {e}"));
            high - low
        })
        .sum()
}

/// The distinct keys of the records a `read_committed` reader of every partition of a topic
/// (from the beginning) has seen so far, read on a thread of its own while a test runs: to
/// wait for progress (e.g. pick lists of `n` orders committed) while checking the processes
/// under test meanwhile. Final checks read the whole topic afresh.
pub struct LiveKeys {
    keys: Arc<Mutex<HashSet<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LiveKeys {
    /// Starts reading partitions `0..partitions` of `topic`.
    ///
    /// # Panics
    /// When the reader cannot be created or assigned.
    pub fn start(bootstrap: &str, topic: &str, partitions: i32) -> Self {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("group.id", format!("live-keys-{}", Uuid::new_v4()))
            .set("enable.auto.commit", "false")
            .set("isolation.level", "read_committed")
            .create()
            .expect("a read_committed reader");
        let mut tpl = TopicPartitionList::new();
        for partition in 0..partitions {
            tpl.add_partition_offset(topic, partition, Offset::Beginning)
                .expect("a partition to read");
        }
        consumer
            .assign(&tpl)
            .expect("the topic's partitions assigned");
        let keys = Arc::new(Mutex::new(HashSet::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::spawn({
            let (keys, stop) = (keys.clone(), stop.clone());
            move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Some(Ok(message)) = consumer.poll(Duration::from_millis(200))
                        && let Some(key) = message.key()
                    {
                        keys.lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .insert(String::from_utf8_lossy(key).into_owned());
                    }
                }
            }
        });
        Self {
            keys,
            stop,
            thread: Some(thread),
        }
    }

    /// How many distinct keys so far.
    pub fn count(&self) -> usize {
        self.keys.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Waits until `n` distinct keys were seen, calling `alive` (which asserts the processes
    /// under test are still running) between checks.
    ///
    /// # Panics
    /// When fewer than `n` are seen within `timeout`, or `alive` panics.
    pub fn wait_for(&self, n: usize, timeout: Duration, mut alive: impl FnMut()) {
        let deadline = Instant::now() + timeout;
        while self.count() < n {
            alive();
            assert!(
                Instant::now() < deadline,
                "only {} of {n} keys after {timeout:?}",
                self.count()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for LiveKeys {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
