//! The `Format` seam: a format other than Avro plugged into the library's own producer,
//! consumer, replay and pipeline, with no change to any of them. The test format writes JSON
//! (no registry, no schema id), counting what goes through it, against the local stack.

mod utils;

use std::{
    collections::BTreeMap,
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use avro_events::{Client, Error, Event, Headers, Outputs, PipelineOptions, TraceContext};
use avro_events::{Format, registry::SchemaType};
use local_stack::{Stack, StackOptions};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use uuid::Uuid;

use utils::events::{Alert, PARTITIONS, Reading, alert_for, config, group, reading, stack};

const WAIT: Duration = Duration::from_secs(30);

/// JSON bodies, the event's own key: enough of a second format to show the seam carries one.
/// Its first value encode waits once (as a registry round trip would) before it completes.
#[derive(Debug, Default)]
struct Json {
    encoded: AtomicUsize,
    decoded: AtomicUsize,
    /// Whether a value encode has completed (after which none waits).
    warm: AtomicBool,
    /// Value encodes that had to wait.
    waited: AtomicUsize,
    /// The event type (full name) whose values this format refuses to encode, as a value that
    /// does not fit its schema is refused: the same value every time.
    refuse: Option<&'static str>,
}

fn fault(reader: &str, reason: impl ToString) -> Error {
    Error::Encode {
        reader: reader.to_owned(),
        subject: "(json)".to_owned(),
        reason: reason.to_string(),
    }
}

impl Format for Json {
    fn schema_type(&self) -> SchemaType {
        SchemaType::Json
    }

    fn parse_schema(&self, schema: &str) -> avro_events::Result<()> {
        serde_json::from_str::<serde_json::Value>(schema)
            .map(drop)
            .map_err(|e| Error::InvalidSchema {
                origin: "a JSON schema".into(),
                reason: e.to_string(),
            })
    }

    fn encode_for<E: Event>(
        &self,
        _topic: &str,
        event: &E,
    ) -> impl Future<Output = avro_events::Result<Vec<u8>>> + Send {
        let encoded = if self.refuse == Some(E::FULL_NAME) {
            Err(fault(E::FULL_NAME, "this value does not fit its schema"))
        } else {
            serde_json::to_vec(event).map_err(|e| fault(E::FULL_NAME, e))
        };
        async move {
            if !self.warm.load(Ordering::SeqCst) {
                self.waited.fetch_add(1, Ordering::SeqCst);
                tokio::task::yield_now().await;
                self.warm.store(true, Ordering::SeqCst);
            }
            self.encoded.fetch_add(1, Ordering::SeqCst);
            encoded
        }
    }

    fn encode_event_key<E: Event>(
        &self,
        _topic: &str,
        event: &E,
    ) -> impl Future<Output = avro_events::Result<Vec<u8>>> + Send {
        let key = event.key().into_bytes();
        async move { Ok(key) }
    }

    fn encode_key<E: Event>(
        &self,
        _topic: &str,
        key: &(impl Serialize + Sync + ?Sized),
    ) -> impl Future<Output = avro_events::Result<Vec<u8>>> + Send {
        let key = serde_json::to_vec(key).map_err(|e| fault(E::FULL_NAME, e));
        async move { key }
    }

    fn decode<E: Event>(
        &self,
        payload: &[u8],
    ) -> impl Future<Output = avro_events::Result<E>> + Send {
        self.decoded.fetch_add(1, Ordering::SeqCst);
        let decoded = serde_json::from_slice(payload).map_err(|e| Error::Decode {
            schema_id: 0,
            reader: E::FULL_NAME.to_owned(),
            location: None,
            reason: e.to_string(),
        });
        async move { decoded }
    }

    fn decode_key<E: Event, K: DeserializeOwned + Send>(
        &self,
        key: &[u8],
    ) -> impl Future<Output = avro_events::Result<K>> + Send {
        let key = serde_json::from_slice(key).map_err(|e| Error::Decode {
            schema_id: 0,
            reader: E::FULL_NAME.to_owned(),
            location: None,
            reason: e.to_string(),
        });
        async move { key }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn another_format_goes_through_the_same_producer_and_consumer() {
    let stack = stack().await;
    let client = Client::from_config(config(&stack)).unwrap();
    let topic = stack.unique_topic("json-format", 1).unwrap();
    let json = Arc::new(Json::default());
    assert_eq!(json.schema_type().as_str(), "JSON");
    assert!(json.parse_schema("{\"type\": \"object\"}").is_ok());

    let producer = client.producer_with_format(json.clone()).await.unwrap();
    let order = reading(1);
    producer
        .enqueue_to(&topic, &order)
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!(json.encoded.load(Ordering::SeqCst), 1);

    let consumer = client
        .consumer_with_format::<Reading, _>(group("json-format"), &[topic.as_str()], json.clone())
        .await
        .unwrap();
    let received = tokio::time::timeout(WAIT, consumer.recv())
        .await
        .expect("the JSON record did not arrive")
        .unwrap();
    assert_eq!(received.event, order);
    assert_eq!(received.meta.key.as_deref(), Some(order.key().as_str()));
    assert_eq!(json.decoded.load(Ordering::SeqCst), 1);
    consumer.ack(&received.meta).unwrap();
    // The Avro codec was not involved: nothing was registered for the topic.
    let subjects = client.codec().registry().subjects(false).await.unwrap();
    assert!(
        !subjects.iter().any(|s| s.starts_with(topic.as_str())),
        "{subjects:?}"
    );
}

/// A replay reads through the format it is given: JSON records written to the reading topic by
/// the JSON producer are read back whole, and the replay says it has caught up.
#[tokio::test(flavor = "multi_thread")]
async fn a_replay_decodes_with_the_format_it_is_given() {
    let stack = stack().await;
    let client = Client::from_config(config(&stack)).unwrap();
    let json = Arc::new(Json::default());
    let producer = client.producer_with_format(json.clone()).await.unwrap();
    let sent: Vec<Reading> = (0..5).map(reading).collect();
    for event in &sent {
        producer.send(event).await.unwrap();
    }
    let mut replay = client
        .replay_with_format::<Reading, _>(group("json-replay"), WAIT, json.clone())
        .await
        .unwrap();
    let mut got = Vec::new();
    while let Some(record) = tokio::time::timeout(WAIT, replay.recv_until_caught_up())
        .await
        .expect("the replay did not catch up")
        .unwrap()
    {
        if let avro_events::Record::Event(received) = record {
            got.push(received.event);
        }
    }
    got.sort_by_key(|r| r.id);
    assert_eq!(got, sent);
    assert_eq!(json.decoded.load(Ordering::SeqCst), sent.len());
    assert_eq!(replay.remaining(), 0);
}

/// What a pipeline writes beside each alert: a second event type, on a topic of its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Seen {
    reading_id: Uuid,
    sensor: String,
}

impl Event for Seen {
    const TOPIC: &'static str = "test.format-seam.seen.v1";
    const SCHEMA: &'static str = r#"{"type": "record", "name": "Seen", "namespace": "io.example.test",
        "fields": [
            {"name": "reading_id", "type": {"type": "string", "logicalType": "uuid"}},
            {"name": "sensor", "type": "string"}
        ]}"#;
    const FULL_NAME: &'static str = "io.example.test.Seen";
    fn key(&self) -> String {
        self.reading_id.to_string()
    }
}

/// The mock stack with the readings, their dead-letter topic, alerts and [`Seen`].
async fn pipeline_stack() -> Stack {
    Stack::start_with(StackOptions {
        topics: [
            Reading::TOPIC.to_owned(),
            avro_events::dlq::dead_letter_topic(Reading::TOPIC),
            Alert::TOPIC.to_owned(),
            Seen::TOPIC.to_owned(),
        ]
        .into_iter()
        .map(|topic| (topic, PARTITIONS))
        .collect(),
        ..StackOptions::default()
    })
    .await
    .expect("the local stack starts")
}

/// Reads `count` records of `E` from its topic with a JSON consumer of its own, as a second
/// client (`read_committed`): the events with their trace contexts and headers, by reading id.
async fn read_back<E: Event>(
    client: &Client,
    count: usize,
    reading_id: impl Fn(&E) -> Uuid,
) -> BTreeMap<Uuid, (E, Option<TraceContext>, Headers)> {
    let consumer = client
        .consumer_with_format::<E, _>(group("read-back"), &[E::TOPIC], Arc::new(Json::default()))
        .await
        .unwrap();
    let mut got = BTreeMap::new();
    for _ in 0..count {
        let received = tokio::time::timeout(WAIT, consumer.recv())
            .await
            .unwrap_or_else(|_| panic!("{} of {count} {} arrived", got.len(), E::TOPIC))
            .unwrap();
        let trace = received.trace();
        let previous = got.insert(
            reading_id(&received.event),
            (received.event, trace, received.headers),
        );
        assert!(previous.is_none(), "one {} per reading", E::TOPIC);
    }
    got
}

/// A pipeline made with the JSON format reads JSON inputs and writes JSON outputs of two types
/// (one with headers), each continuing its input's trace; an input the format cannot decode
/// is dead-lettered; the Avro codec is never involved (nothing registered).
async fn pipeline_through_json(transactional: bool) {
    const COUNT: u32 = 12;
    let stack = pipeline_stack().await;
    let mut config = config(&stack);
    if transactional {
        config = config.set(
            "transactional.id",
            format!("format-seam-{}", Uuid::new_v4().simple()),
        );
    }
    let client = Client::from_config(config).unwrap();
    let producer = client
        .producer_with_format(Arc::new(Json::default()))
        .await
        .unwrap();
    let mut sent = BTreeMap::new();
    for n in 0..COUNT {
        let input = reading(n);
        let parent = TraceContext::new_root();
        producer.send_traced(&input, &parent).await.unwrap();
        sent.insert(input.id, (input, parent));
    }
    utils::events::produce_raw(&stack, Reading::TOPIC, "not-json", b"\x00\x00not json").await;

    let json = Arc::new(Json::default());
    let pipeline = Arc::new(
        client
            .pipeline_with_format::<Reading, _>(
                PipelineOptions::new(format!("format-seam-{}", Uuid::new_v4().simple())),
                json.clone(),
            )
            .await
            .unwrap(),
    );
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn({
        let pipeline = pipeline.clone();
        async move {
            pipeline
                .run(
                    |received| {
                        let input = &received.event;
                        let mut outputs = Outputs::new();
                        outputs.push(alert_for(input)).push_with(
                            Seen {
                                reading_id: input.id,
                                sensor: input.sensor.clone(),
                            },
                            Headers::new().with("source", "format-seam"),
                        );
                        outputs
                    },
                    async {
                        let _ = stop_rx.await;
                    },
                )
                .await
        }
    });

    let alerts = read_back::<Alert>(&client, COUNT as usize, |a| a.reading_id).await;
    let seen = read_back::<Seen>(&client, COUNT as usize, |s| s.reading_id).await;
    for (id, (input, parent)) in &sent {
        let (alert, trace, _) = &alerts[id];
        assert_eq!(alert, &alert_for(input));
        let trace = trace.as_ref().expect("the alert carries a traceparent");
        assert_eq!(trace.trace_id(), parent.trace_id(), "the input's trace");
        let (seen, trace, headers) = &seen[id];
        assert_eq!(seen.sensor, input.sensor);
        assert_eq!(headers.get_str("source"), Some("format-seam"));
        let trace = trace
            .as_ref()
            .expect("the second output carries a traceparent");
        assert_eq!(trace.trace_id(), parent.trace_id(), "the input's trace");
    }
    // The undecodable input went to the dead-letter topic with its bytes as they were.
    assert_eq!(read_dead_letter(&stack).await, b"\x00\x00not json");

    // Waiting on the counters the pipeline updates once an input is done.
    let stats = pipeline.stats();
    let done = async {
        while stats.produced_to(Seen::TOPIC) < u64::from(COUNT)
            || pipeline.consumer().dead_lettered() < 1
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(WAIT, done)
        .await
        .expect("the pipeline counted its outputs and its dead letter");
    stop_tx.send(()).unwrap();
    tokio::time::timeout(WAIT, running)
        .await
        .expect("the pipeline stopped")
        .unwrap()
        .unwrap();

    // No batch was aborted (which would read and encode its inputs again).
    assert_eq!(stats.aborted.load(Ordering::SeqCst), 0);
    assert_eq!(stats.produced_to(Alert::TOPIC), u64::from(COUNT));
    assert_eq!(stats.produced_to(Seen::TOPIC), u64::from(COUNT));
    assert_eq!(stats.consumed.load(Ordering::SeqCst), u64::from(COUNT));
    assert_eq!(pipeline.consumer().dead_lettered(), 1);
    // Every input (and the undecodable one) went through the format, and every output.
    assert_eq!(json.decoded.load(Ordering::SeqCst), COUNT as usize + 1);
    assert_eq!(json.encoded.load(Ordering::SeqCst), 2 * COUNT as usize);
    // The first output waited (its attempt without waiting was dropped and made again); none
    // after it did.
    assert_eq!(json.waited.load(Ordering::SeqCst), 2);
    // The Avro codec was not involved: nothing was registered.
    let subjects = client.codec().registry().subjects(false).await.unwrap();
    assert!(subjects.is_empty(), "{subjects:?}");
}

/// The payload on the readings' dead-letter topic, read `read_committed` by a plain client
/// (the dead letter keeps the bytes that did not decode, so it is read raw).
async fn read_dead_letter(stack: &Stack) -> Vec<u8> {
    let dlq = avro_events::dlq::dead_letter_topic(Reading::TOPIC);
    let raw: rdkafka::consumer::StreamConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", stack.bootstrap_servers())
        .set("group.id", format!("dlq-{}", Uuid::new_v4().simple()))
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed")
        .create()
        .unwrap();
    rdkafka::consumer::Consumer::subscribe(&raw, &[dlq.as_str()]).unwrap();
    let message = tokio::time::timeout(WAIT, raw.recv())
        .await
        .expect("the dead letter arrived")
        .unwrap();
    rdkafka::Message::payload(&message)
        .unwrap_or_default()
        .to_vec()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pipeline_reads_and_writes_through_the_format_it_is_given() {
    pipeline_through_json(false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_transactional_pipeline_reads_and_writes_through_the_format_it_is_given() {
    pipeline_through_json(true).await;
}

/// An output that can never be encoded (the format refuses it, as a value that does not fit
/// its schema or a contract rule with the `ERROR` action is refused: the same input makes the
/// same output) ends the run with that error in both modes, instead of its input being read
/// again for ever in transactions.
async fn an_output_that_cannot_be_encoded_ends_the_run(transactional: bool) {
    let stack = pipeline_stack().await;
    let mut config = config(&stack);
    if transactional {
        config = config.set(
            "transactional.id",
            format!("format-seam-refused-{}", Uuid::new_v4().simple()),
        );
    }
    let client = Client::from_config(config).unwrap();
    let producer = client
        .producer_with_format(Arc::new(Json::default()))
        .await
        .unwrap();
    producer.send(&reading(1)).await.unwrap();

    let json = Arc::new(Json {
        refuse: Some(Seen::FULL_NAME),
        ..Json::default()
    });
    let pipeline = client
        .pipeline_with_format::<Reading, _>(
            PipelineOptions::new(format!("format-seam-refused-{}", Uuid::new_v4().simple())),
            json.clone(),
        )
        .await
        .unwrap();
    let run = pipeline.run(
        |received| {
            let input = &received.event;
            let mut outputs = Outputs::new();
            outputs.push(alert_for(input)).push(Seen {
                reading_id: input.id,
                sensor: input.sensor.clone(),
            });
            outputs
        },
        std::future::pending::<()>(),
    );
    let ended = tokio::time::timeout(WAIT, run)
        .await
        .expect("the run ended with the output's error (it read the input again for ever)");
    match ended {
        Err(Error::Encode { reader, .. }) => assert_eq!(reader, Seen::FULL_NAME),
        other => panic!("expected the output's encode error, got {other:?}"),
    }
    // It was not read again: one input, one attempt at its refused output.
    assert_eq!(
        json.encoded.load(Ordering::SeqCst),
        2,
        "the alert and the refused output, once each"
    );
    assert_eq!(pipeline.stats().consumed.load(Ordering::SeqCst), 1);
    assert_eq!(pipeline.stats().produced_to(Seen::TOPIC), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_output_that_cannot_be_encoded_ends_an_at_least_once_run() {
    an_output_that_cannot_be_encoded_ends_the_run(false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_output_that_cannot_be_encoded_ends_a_transactional_run() {
    an_output_that_cannot_be_encoded_ends_the_run(true).await;
}
