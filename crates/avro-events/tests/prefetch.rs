//! How far a consumer fetches ahead of the application: the library's defaults bound
//! librdkafka's prefetch queue (`queued.min.messages`, `queued.max.messages.kbytes`), so a
//! consumer behind a backlog stops fetching at the bound instead of holding the backlog in
//! memory. Checked on librdkafka's own fetch decisions (`debug=fetch`): a consumer assigned a
//! backlog whose records are never read logs "not fetchable: <bound> exceeded" once its
//! queue is full.

mod utils;

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use avro_events::Config;
use local_stack::Stack;
use rdkafka::{
    ClientContext, Offset, TopicPartitionList,
    config::RDKafkaLogLevel,
    consumer::{BaseConsumer, Consumer as _, ConsumerContext, base_consumer::PartitionQueue},
    producer::{BaseRecord, DefaultProducerContext, Producer as _, ThreadedProducer},
};

use utils::events::{config, stack};

/// librdkafka's log lines (delivered when the consumer is polled).
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<String>>>);

impl ClientContext for Logs {
    fn log(&self, _level: RDKafkaLogLevel, facility: &str, message: &str) {
        self.0.lock().unwrap().push(format!("{facility} {message}"));
    }
}

impl ConsumerContext for Logs {}

/// A consumer whose partition's records go to a queue of their own that nobody reads: polling
/// the consumer serves its events and log lines only.
struct Lagging {
    consumer: Arc<BaseConsumer<Logs>>,
    _records: PartitionQueue<Logs>,
    logs: Logs,
}

impl Lagging {
    /// The first log line `pred` accepts, polling for it up to `timeout`; `None` past it.
    fn wait_for(&self, timeout: Duration, pred: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = self.logs.0.lock().unwrap().iter().find(|line| pred(line)) {
                return Some(line.clone());
            }
            if Instant::now() > deadline {
                return None;
            }
            if let Some(message) = self.consumer.poll(Duration::from_millis(100)) {
                panic!("a record came through the main queue: {message:?}");
            }
        }
    }

    /// The last lines about `topic`'s fetches (what the consumer did last).
    fn fetch_lines(&self, topic: &str) -> Vec<String> {
        let lines = self.logs.0.lock().unwrap();
        let about: Vec<String> = lines
            .iter()
            .filter(|line| line.contains(topic))
            .cloned()
            .collect();
        about[about.len().saturating_sub(3)..].to_vec()
    }
}

/// Writes `count` records of `size` bytes to partition 0 of a new one-partition topic.
fn backlog(stack: &Stack, count: usize, size: usize) -> String {
    let topic = stack.unique_topic("prefetch", 1).unwrap();
    let producer: ThreadedProducer<DefaultProducerContext> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", stack.bootstrap_servers())
        .set("linger.ms", "20")
        .create()
        .unwrap();
    let payload = vec![b'x'; size];
    for _ in 0..count {
        let mut record = BaseRecord::<(), [u8]>::to(&topic).payload(&payload[..]);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                // A full local queue: the producer's thread drains it meanwhile.
                Err((_, back)) => {
                    record = back;
                    producer.flush(Duration::from_millis(100)).ok();
                }
            }
        }
    }
    producer.flush(Duration::from_secs(30)).unwrap();
    topic
}

/// A consumer with the library's settings (and `debug=fetch`) assigned `topic` from its
/// first offset, its records never read: it fetches ahead until its queue's bound.
fn lagging_consumer(config: &Config, topic: &str) -> Lagging {
    let logs = Logs::default();
    let consumer: Arc<BaseConsumer<Logs>> = Arc::new(
        config
            .rdkafka_consumer_config(&format!("prefetch-{}", uuid::Uuid::new_v4().simple()))
            .set("debug", "fetch")
            .set_log_level(RDKafkaLogLevel::Debug)
            .create_with_context(logs.clone())
            .unwrap(),
    );
    let records = consumer
        .split_partition_queue(topic, 0)
        .expect("a queue of its own for the partition");
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&assignment).unwrap();
    Lagging {
        consumer,
        _records: records,
        logs,
    }
}

/// How many records and kilobytes were queued when librdkafka stopped fetching, from its
/// line `… (<msgs>/<min> msgs, <kb>/<max> kb queued, …) is not fetchable: <bound> exceeded`.
fn stopped_at(line: &str) -> (u64, u64) {
    let end = line
        .find(" kb queued")
        .unwrap_or_else(|| panic!("no queue figures in {line}"));
    let start = line[..end].rfind('(').unwrap() + 1;
    let (msgs, kb) = line[start..end].split_once(" msgs, ").unwrap();
    let first = |pair: &str| {
        pair.split('/')
            .next()
            .unwrap()
            .trim()
            .parse::<u64>()
            .unwrap()
    };
    (first(msgs), first(kb))
}

const WAIT: Duration = Duration::from_secs(60);

/// Small records: the record count bounds the queue (10,000 records; librdkafka's default,
/// 100,000 per partition, would have queued the whole backlog of 30,000).
#[tokio::test(flavor = "multi_thread")]
async fn a_lagging_consumer_stops_fetching_small_records_at_the_record_bound() {
    let stack = stack().await;
    let topic = backlog(&stack, 30_000, 100);
    let lagging = lagging_consumer(&config(&stack), &topic);
    let Some(line) = lagging.wait_for(WAIT, |line| {
        line.contains(&topic) && line.contains("not fetchable: queued.")
    }) else {
        panic!(
            "the consumer never stopped fetching ahead: the backlog of 30,000 records is \
             queued whole; last fetch lines: {:?}",
            lagging.fetch_lines(&topic)
        );
    };
    assert!(line.contains("queued.min.messages exceeded"), "{line}");
    let (msgs, _) = stopped_at(&line);
    // The bound, overshot by at most the last fetch (1 MiB of 100-byte records).
    assert!(
        (10_000..30_000).contains(&msgs),
        "{msgs} records queued: {line}"
    );
}

/// A `client.properties` that sets the prefetch keeps its values.
#[test]
fn the_configuration_s_prefetch_settings_win() {
    let config = Config::from_properties_str(
        "bootstrap.servers=127.0.0.1:9092\nqueued.min.messages=500\n\
         queued.max.messages.kbytes=1024\nfetch.queue.backoff.ms=1000\n",
    )
    .unwrap();
    let rd = config.rdkafka_consumer_config("g");
    assert_eq!(rd.get("queued.min.messages"), Some("500"));
    assert_eq!(rd.get("queued.max.messages.kbytes"), Some("1024"));
    assert_eq!(rd.get("fetch.queue.backoff.ms"), Some("1000"));
}
