//! What users of Confluent's serdes expect of a record, against the local stack: headers on
//! produce and on receive, tombstones delivered as such (never dead-lettered), Avro keys with
//! their own schema under `<topic>-key`, and zstd/lz4 compression.

mod utils;

use std::time::Duration;

use avro_events::{Client, Event, Headers, Record};
use avro_events::{Codec, Received};
use rdkafka::{
    ClientConfig,
    message::{Header, OwnedHeaders},
    producer::{FutureProducer, FutureRecord},
};
use serde::{Deserialize, Serialize};

use utils::events::{self, config, group, stack};

/// The value type of these tests: the made-up sensor reading.
type Order = events::Reading;

const WAIT: Duration = Duration::from_secs(30);

fn order(n: u32) -> Order {
    events::reading(n)
}

async fn next<T>(what: &str, future: impl Future<Output = avro_events::Result<T>>) -> T {
    tokio::time::timeout(WAIT, future)
        .await
        .unwrap_or_else(|_| panic!("{what} did not arrive within {WAIT:?}"))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn headers_go_out_with_the_event_and_come_back_on_received() {
    let stack = stack().await;
    let config = config(&stack);
    let topic = stack.unique_topic("headers", 1).unwrap();
    let client = Client::from_config(config.clone()).unwrap();
    let codec = client.codec().clone();
    let producer = client.producer().await.unwrap();

    let mut headers = Headers::new()
        .with("trace-id", "4bf92f3577b34da6")
        .with("binary", [0u8, 255, 7]);
    headers.push("null-valued", None);
    let pending = producer
        .enqueue_with(&topic, &order(1), Some(&headers))
        .await
        .unwrap();
    pending.await.unwrap();
    // A record another client wrote, with a repeated key.
    let raw: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", stack.bootstrap_servers())
        .create()
        .unwrap();
    let payload = codec.encode_for(&topic, &order(2)).await.unwrap();
    let key = order(2).key();
    let raw_headers = OwnedHeaders::new()
        .insert(Header {
            key: "source",
            value: Some("first"),
        })
        .insert(Header {
            key: "source",
            value: Some("second"),
        });
    raw.send(
        FutureRecord::to(&topic)
            .key(&key)
            .payload(&payload)
            .headers(raw_headers),
        WAIT,
    )
    .await
    .unwrap();
    producer.send_to(&topic, &order(3)).await.unwrap();

    let consumer = client
        .consumer_subscribed_to::<Order>(group("headers"), &[&topic])
        .await
        .unwrap();
    let first = next("first event", consumer.recv()).await;
    assert_eq!(first.event, order(1));
    // The library adds the record's W3C trace context (`traceparent`) after the user's.
    let mut users = first.headers.clone();
    users.retain(|h| h.key != "traceparent");
    assert_eq!(users, headers, "every header, in order, null value kept");
    assert!(first.trace().is_some(), "{:?}", first.headers);
    assert_eq!(first.headers.get_str("trace-id"), Some("4bf92f3577b34da6"));
    assert_eq!(first.headers.get("binary"), Some(&[0u8, 255, 7][..]));
    let second = next("second event", consumer.recv()).await;
    assert_eq!(second.headers.len(), 2);
    assert_eq!(
        second.headers.get_str("source"),
        Some("second"),
        "last one wins"
    );
    let third = next("third event", consumer.recv()).await;
    let keys: Vec<_> = third.headers.iter().map(|h| h.key.as_str()).collect();
    assert_eq!(keys, ["traceparent"], "only the trace context");
    consumer.ack(&third.meta).unwrap();
    consumer.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn tombstones_are_delivered_as_such_and_never_dead_lettered() {
    let stack = stack().await;
    let config = config(&stack);
    let topic = stack.unique_topic("tombstones", 1).unwrap();
    stack
        .kafka()
        .create_topic(&format!("{topic}.dlq"), 1)
        .unwrap();
    let client = Client::from_config(config.clone()).unwrap();
    let producer = client.producer().await.unwrap();

    producer.send_to(&topic, &order(1)).await.unwrap();
    let key = order(1).id.to_string();
    let headers = Headers::new().with("reason", "order cancelled");
    producer
        .enqueue_tombstone::<Order>(&topic, key.as_str(), Some(&headers))
        .await
        .unwrap()
        .await
        .unwrap();
    // A tombstone another client wrote.
    let raw: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", stack.bootstrap_servers())
        .create()
        .unwrap();
    raw.send(FutureRecord::<str, [u8]>::to(&topic).key("raw-key"), WAIT)
        .await
        .unwrap();
    producer.send_to(&topic, &order(2)).await.unwrap();

    // recv_record hands the tombstones out, in place.
    let consumer = client
        .consumer_subscribed_to::<Order>(group("all"), &[&topic])
        .await
        .unwrap();
    let mut records = Vec::new();
    for _ in 0..4 {
        let record = next("record", consumer.recv_record()).await;
        consumer.ack(record.meta()).unwrap();
        records.push(record);
    }
    let [
        Record::Event(first),
        Record::Tombstone(deleted),
        Record::Tombstone(raw_deleted),
        Record::Event(last),
    ] = &records[..]
    else {
        panic!("event, tombstone, tombstone, event: {records:?}");
    };
    assert_eq!(first.event, order(1));
    assert_eq!(deleted.meta.key.as_deref(), Some(key.as_str()));
    assert_eq!(deleted.raw_key.as_deref(), Some(key.as_bytes()));
    assert_eq!(deleted.headers.get_str("reason"), Some("order cancelled"));
    assert_eq!(raw_deleted.meta.key.as_deref(), Some("raw-key"));
    assert_eq!(last.event, order(2));
    assert_eq!(consumer.dead_lettered(), 0);
    consumer.close().await.unwrap();

    // recv passes over them (counted) and dead-letters nothing either.
    let consumer = client
        .consumer_subscribed_to::<Order>(group("events"), &[&topic])
        .await
        .unwrap();
    let events: Vec<Received<Order>> = vec![
        next("event", consumer.recv()).await,
        next("event", consumer.recv()).await,
    ];
    assert_eq!(events[0].event, order(1));
    assert_eq!(events[1].event, order(2));
    assert_eq!(consumer.tombstones_passed(), 2);
    assert_eq!(consumer.dead_lettered(), 0);
    consumer.close().await.unwrap();
}

/// An event keyed by an Avro record, as a Java service with `KafkaAvroSerializer` keys writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Reading {
    site: String,
    sensor: i32,
    celsius: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ReadingKey {
    site: String,
    sensor: i32,
}

const READING_KEY_SCHEMA: &str = r#"{"type": "record", "name": "ReadingKey", "namespace": "io.example",
    "fields": [{"name": "site", "type": "string"}, {"name": "sensor", "type": "int"}]}"#;

impl Event for Reading {
    const TOPIC: &'static str = "io.example.readings";
    const SCHEMA: &'static str = r#"{"type": "record", "name": "Reading", "namespace": "io.example",
        "fields": [{"name": "site", "type": "string"}, {"name": "sensor", "type": "int"},
                   {"name": "celsius", "type": "double"}]}"#;
    const FULL_NAME: &'static str = "io.example.Reading";
    const KEY_SCHEMA: Option<&'static str> = Some(READING_KEY_SCHEMA);

    fn key(&self) -> String {
        format!("{}/{}", self.site, self.sensor)
    }

    fn serialize_key<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        ReadingKey {
            site: self.site.clone(),
            sensor: self.sensor,
        }
        .serialize(serializer)
    }
}

/// A later key schema with a field added (with a default): old keys still decode into it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ReadingKeyV2 {
    site: String,
    sensor: i32,
    zone: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ReadingV2 {
    site: String,
    sensor: i32,
    celsius: f64,
}

impl Event for ReadingV2 {
    const TOPIC: &'static str = Reading::TOPIC;
    const SCHEMA: &'static str = Reading::SCHEMA;
    const FULL_NAME: &'static str = Reading::FULL_NAME;
    const KEY_SCHEMA: Option<&'static str> = Some(
        r#"{"type": "record", "name": "ReadingKey", "namespace": "io.example",
        "fields": [{"name": "site", "type": "string"}, {"name": "sensor", "type": "int"},
                   {"name": "zone", "type": "string", "default": "main"}]}"#,
    );

    fn key(&self) -> String {
        format!("{}/{}", self.site, self.sensor)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn avro_keys_round_trip_under_the_key_subject() {
    let stack = stack().await;
    let config = config(&stack);
    let topic = stack.unique_topic("readings", 3).unwrap();
    let client = Client::from_config(config.clone()).unwrap();
    let codec = client.codec().clone();
    let producer = client.producer().await.unwrap();
    let readings: Vec<Reading> = (0..6)
        .map(|n| Reading {
            site: format!("store-{}", n % 2),
            sensor: n,
            celsius: f64::from(n) / 2.0,
        })
        .collect();
    for reading in &readings {
        producer.send_to(&topic, reading).await.unwrap();
    }
    let deleted = ReadingKey {
        site: "store-0".into(),
        sensor: 0,
    };
    producer
        .enqueue_tombstone::<Reading>(&topic, &deleted, None)
        .await
        .unwrap()
        .await
        .unwrap();

    // The key schema is registered under `<topic>-key`; values stay under `<topic>-value`.
    let key_subject = codec
        .registry()
        .latest(&format!("{topic}-key"))
        .await
        .unwrap();
    assert_eq!(
        apache_avro::Schema::parse_str(&key_subject.schema)
            .unwrap()
            .canonical_form(),
        apache_avro::Schema::parse_str(READING_KEY_SCHEMA)
            .unwrap()
            .canonical_form()
    );
    let value_subject = codec
        .registry()
        .latest(&format!("{topic}-value"))
        .await
        .unwrap();
    assert_ne!(key_subject.id, value_subject.id);

    let consumer = client
        .consumer_subscribed_to::<Reading>(group("keys"), &[&topic])
        .await
        .unwrap();
    let mut events = Vec::new();
    let mut tombstones = Vec::new();
    while events.len() + tombstones.len() < readings.len() + 1 {
        match next("record", consumer.recv_record()).await {
            Record::Event(received) => events.push(received),
            Record::Tombstone(tombstone) => tombstones.push(tombstone),
        }
    }
    events.sort_by_key(|r| r.event.sensor);
    for (received, sent) in events.iter().zip(&readings) {
        assert_eq!(&received.event, sent);
        assert_eq!(received.meta.key, None, "an Avro key is not a string key");
        let raw = received.raw_key.as_deref().unwrap();
        assert_eq!(
            avro_events::wire::split(raw).unwrap().0,
            key_subject.id,
            "Confluent framing with the key schema's id"
        );
        let key: ReadingKey = consumer.decode_key(raw).await.unwrap();
        assert_eq!(
            key,
            ReadingKey {
                site: sent.site.clone(),
                sensor: sent.sensor
            }
        );
        // A reader with a newer key schema resolves the old key (default for the new field).
        let newer: ReadingKeyV2 = codec
            .decode_key::<ReadingV2, ReadingKeyV2>(raw)
            .await
            .unwrap();
        assert_eq!(newer.zone, "main");
        assert_eq!(
            (newer.site.as_str(), newer.sensor),
            (sent.site.as_str(), sent.sensor)
        );
    }
    let [tombstone] = &tombstones[..] else {
        panic!("one tombstone: {tombstones:?}");
    };
    let key: ReadingKey = consumer
        .decode_key(tombstone.raw_key.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(key, deleted);

    // Same key, same partition: the tombstone lands where the key's events are.
    let partition_of_deleted = events
        .iter()
        .find(|r| r.event.site == deleted.site && r.event.sensor == deleted.sensor)
        .unwrap()
        .meta
        .partition;
    assert_eq!(tombstone.meta.partition, partition_of_deleted);

    // A key that does not fit the key schema is an encoding error, not a record.
    let Err(error) = producer
        .enqueue_tombstone::<Reading>(&topic, "not a record", None)
        .await
    else {
        panic!("a string key for a record key schema was queued");
    };
    assert_eq!(error.kind(), "encode", "{error}");
    consumer.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plain_key_must_be_a_string() {
    let stack = stack().await;
    let config = config(&stack);
    let codec = Codec::from_config(&config).unwrap();
    let error = codec.encode_key::<Order>("t", &42).await.unwrap_err();
    assert_eq!(error.kind(), "encode");
    assert!(error.to_string().contains("must be a string"), "{error}");
    assert_eq!(codec.encode_key::<Order>("t", "k").await.unwrap(), b"k");
}

/// Produces and consumes 200 orders with `compression.type=codec`.
async fn round_trip_compressed(codec_name: &str) {
    let stack = stack().await;
    let config = config(&stack).set("compression.type", codec_name);
    config.validate().unwrap();
    let topic = stack.unique_topic(codec_name, 3).unwrap();
    let client = Client::from_config(config.clone()).unwrap();
    let producer = client.producer().await.unwrap();
    // librdkafka refuses a `builtin.features` it was built without.
    ClientConfig::new()
        .set("builtin.features", codec_name)
        .create::<rdkafka::producer::BaseProducer>()
        .unwrap_or_else(|e| panic!("librdkafka built without {codec_name}: {e}"));
    let mut pending = Vec::new();
    for n in 0..200 {
        pending.push(producer.enqueue_to(&topic, &order(n)).await.unwrap());
    }
    for delivery in pending {
        delivery.await.unwrap();
    }
    let consumer = client
        .consumer_subscribed_to::<Order>(group(codec_name), &[&topic])
        .await
        .unwrap();
    let mut seen = std::collections::BTreeSet::new();
    while seen.len() < 200 {
        let received = next("compressed event", consumer.recv()).await;
        assert_eq!(
            received.event,
            order((received.event.taken_at - 1_763_769_600_000) as u32)
        );
        seen.insert(received.event.id);
        consumer.ack(&received.meta).unwrap();
    }
    consumer.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn zstd_compressed_records_round_trip() {
    round_trip_compressed("zstd").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn lz4_compressed_records_round_trip() {
    round_trip_compressed("lz4").await;
}
