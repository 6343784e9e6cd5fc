//! The typed producer and consumer against the local stack: round trip, consumer groups,
//! committed offsets, dead-letter handling, broker faults and the registry going away.

mod utils;

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
    time::Duration,
};

use avro_events::{Client, Config, Consumer, ConsumerOptions, Error, Producer, Received};
use avro_events::{Codec, dlq::headers as dlq_headers};
use local_stack::{Stack, StackOptions, registry::SchemaRegistry};
use rdkafka::{
    ClientConfig, Message,
    consumer::{BaseConsumer, Consumer as _},
    message::Headers,
    producer::{FutureProducer, FutureRecord},
};
use uuid::Uuid;

use utils::events::{self, config, group, stack};
/// The made-up event of these tests.
type Order = events::Reading;

const WAIT: Duration = Duration::from_secs(30);

fn order(n: u32) -> Order {
    events::reading(n)
}

async fn consumer(client: &Client, options: ConsumerOptions, topic: &str) -> Consumer<Order> {
    client
        .consumer_subscribed_to(options, &[topic])
        .await
        .unwrap()
}

/// Receives `n` events (acknowledging each), failing after [`WAIT`].
async fn receive(consumer: &Consumer<Order>, n: usize) -> Vec<Received<Order>> {
    let mut out = Vec::new();
    while out.len() < n {
        let received = tokio::time::timeout(WAIT, consumer.recv())
            .await
            .unwrap_or_else(|_| panic!("only {} of {n} events arrived", out.len()))
            .unwrap();
        consumer.ack(&received.meta).unwrap();
        out.push(received);
    }
    out
}

/// Asserts nothing more arrives within `quiet`.
async fn assert_quiet(consumer: &Consumer<Order>, quiet: Duration) {
    if let Ok(extra) = tokio::time::timeout(quiet, consumer.recv()).await {
        panic!("unexpected extra event: {:?}", extra.map(|r| r.meta));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn typed_round_trip_with_metadata() {
    let stack = stack().await;
    let config = config(&stack);
    let topic = stack.unique_topic("orders", 3).unwrap();
    let client = Client::from_config(config.clone()).unwrap();
    let producer = client.producer().await.unwrap();
    let mut delivered = BTreeMap::new();
    for n in 0..30 {
        let d = producer.send_to(&topic, &order(n)).await.unwrap();
        assert_eq!(d.topic, topic);
        delivered.insert(order(n).id, (d.partition, d.offset));
    }
    let partitions: BTreeSet<i32> = delivered.values().map(|(p, _)| *p).collect();
    assert!(
        partitions.len() > 1,
        "keys spread over partitions: {partitions:?}"
    );

    let consumer = consumer(&client, group("round-trip"), &topic).await;
    let received: Vec<Received<Order>> = {
        use futures::StreamExt as _;
        let stream = consumer.stream().take(30);
        tokio::time::timeout(WAIT, stream.collect::<Vec<_>>())
            .await
            .expect("30 events within the wait")
            .into_iter()
            .map(Result::unwrap)
            .collect()
    };
    for r in &received {
        consumer.ack(&r.meta).unwrap();
    }
    for r in &received {
        let (partition, offset) = delivered[&r.event.id];
        assert_eq!((r.meta.partition, r.meta.offset), (partition, offset));
        assert_eq!(r.meta.key.as_deref(), Some(r.event.id.to_string().as_str()));
        assert!(r.meta.timestamp_ms.is_some());
        let n = r.event.taken_at - 1_763_769_600_000;
        assert_eq!(r.event, order(n as u32));
    }
    consumer.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn two_consumers_in_a_group_split_the_partitions_without_duplicates() {
    let stack = stack().await;
    let config = config(&stack);
    let topic = stack.unique_topic("orders", 3).unwrap();
    let client = Client::from_config(config.clone()).unwrap();
    let options = group("split");
    let a = consumer(&client, options.clone(), &topic).await;
    let b = consumer(&client, options, &topic).await;
    // A clean run: both members hold their partitions before records arrive. (A rebalance in
    // the middle of consumption may hand acknowledged-but-uncommitted records to the next
    // owner: at-least-once allows that.)
    let deadline = tokio::time::Instant::now() + WAIT;
    let assigned = |c: &Consumer<Order>| c.rdkafka().assignment().map_or(0, |a| a.count());
    while assigned(&a) + assigned(&b) < 3 || assigned(&a) == 0 || assigned(&b) == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "group never settled"
        );
        let _ = tokio::time::timeout(Duration::from_millis(100), a.recv()).await;
        let _ = tokio::time::timeout(Duration::from_millis(100), b.recv()).await;
    }
    let producer = client.producer().await.unwrap();
    for n in 0..300 {
        producer.send_to(&topic, &order(n)).await.unwrap();
    }

    let mut seen: BTreeMap<Uuid, &str> = BTreeMap::new();
    let mut per_consumer: BTreeMap<&str, BTreeSet<i32>> = BTreeMap::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while seen.len() < 300 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} of 300 arrived",
            seen.len()
        );
        let (name, received) = tokio::select! {
            r = a.recv() => ("a", r.unwrap()),
            r = b.recv() => ("b", r.unwrap()),
        };
        let consumer = if name == "a" { &a } else { &b };
        consumer.ack(&received.meta).unwrap();
        per_consumer
            .entry(name)
            .or_default()
            .insert(received.meta.partition);
        if let Some(first) = seen.insert(received.event.id, name) {
            panic!("order read twice, by {first} and {name}");
        }
    }
    assert_eq!(
        per_consumer.len(),
        2,
        "both consumers did part of the work: {per_consumer:?}"
    );
    let a_parts = &per_consumer["a"];
    let b_parts = &per_consumer["b"];
    assert!(a_parts.is_disjoint(b_parts), "{a_parts:?} vs {b_parts:?}");
    assert_eq!(a_parts.len() + b_parts.len(), 3);
    a.close().await.unwrap();
    b.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_consumer_resumes_from_committed_offsets() {
    let stack = stack().await;
    let config = config(&stack);
    let topic = stack.unique_topic("orders", 3).unwrap();
    let client = Client::from_config(config.clone()).unwrap();
    let producer = client.producer().await.unwrap();
    for n in 0..40 {
        producer.send_to(&topic, &order(n)).await.unwrap();
    }
    let options = group("resume");
    let first = consumer(&client, options.clone(), &topic).await;
    let mut ids: BTreeSet<Uuid> = receive(&first, 40)
        .await
        .into_iter()
        .map(|r| r.event.id)
        .collect();
    first.close().await.unwrap();
    drop(first);

    for n in 40..60 {
        producer.send_to(&topic, &order(n)).await.unwrap();
    }
    let second = consumer(&client, options, &topic).await;
    for r in receive(&second, 20).await {
        assert!(
            ids.insert(r.event.id),
            "{} read again after restart",
            r.event.id
        );
    }
    assert_quiet(&second, Duration::from_secs(2)).await;
    assert_eq!(ids.len(), 60);
    second.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn poison_records_go_to_the_dead_letter_topic_and_good_ones_are_processed() {
    let stack = stack().await;
    let config = config(&stack);
    let topic = stack.unique_topic("orders", 1).unwrap();
    let dlq = format!("{topic}.dlq");
    stack.kafka().create_topic(&dlq, 1).unwrap();
    let client = Client::from_config(config.clone()).unwrap();
    let producer = client.producer().await.unwrap();

    let raw: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", stack.bootstrap_servers())
        .create()
        .unwrap();
    let send_raw = |payload: Vec<u8>, key: &'static str| {
        let raw = raw.clone();
        let topic = topic.clone();
        async move {
            raw.send(FutureRecord::to(&topic).key(key).payload(&payload), WAIT)
                .await
                .unwrap()
        }
    };
    producer.send_to(&topic, &order(1)).await.unwrap();
    send_raw(b"not avro at all".to_vec(), "garbage").await;
    producer.send_to(&topic, &order(2)).await.unwrap();
    send_raw(vec![1, 0, 0, 0, 1, 2, 3], "wrong-magic").await;
    // A registered schema id (the order schema's) with a body that ends inside its first
    // field: bytes that can never decode. (An id the registry does not know is not poison: the
    // consumer waits for the schema, tests/schema_unavailable.rs.)
    let order_id = client.codec().encode(&order(1)).await.unwrap()[1..5].to_vec();
    let mut truncated = vec![0];
    truncated.extend_from_slice(&order_id);
    truncated.push(0xff);
    send_raw(truncated.clone(), "truncated").await;
    producer.send_to(&topic, &order(3)).await.unwrap();

    let consumer = consumer(&client, group("dlq"), &topic).await;
    let good: Vec<u32> = receive(&consumer, 3)
        .await
        .iter()
        .map(|r| (r.event.taken_at - 1_763_769_600_000) as u32)
        .collect();
    assert_eq!(
        good,
        [1, 2, 3],
        "good records in order around the poison ones"
    );

    let reader: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", stack.bootstrap_servers())
        .set("group.id", format!("dlq-reader-{}", Uuid::new_v4()))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    reader.subscribe(&[&dlq]).unwrap();
    let mut dead = Vec::new();
    let deadline = std::time::Instant::now() + WAIT;
    while dead.len() < 3 && std::time::Instant::now() < deadline {
        if let Some(message) = reader.poll(Duration::from_millis(200)) {
            let message = message.unwrap();
            let headers: BTreeMap<String, String> = message
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|h| {
                            (
                                h.key.to_owned(),
                                String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            dead.push((
                String::from_utf8_lossy(message.key().unwrap()).into_owned(),
                message.payload().unwrap().to_vec(),
                headers,
            ));
        }
    }
    assert_eq!(dead.len(), 3, "three poison records in the DLQ");
    let expected = [
        ("garbage", b"not avro at all".to_vec(), "bad_magic_byte"),
        ("wrong-magic", vec![1, 0, 0, 0, 1, 2, 3], "bad_magic_byte"),
        ("truncated", truncated, "decode"),
    ];
    for ((key, payload, headers), (want_key, want_payload, want_kind)) in dead.iter().zip(expected)
    {
        assert_eq!(key, want_key);
        assert_eq!(payload, &want_payload, "original bytes kept");
        assert_eq!(headers[dlq_headers::ERROR_KIND], want_kind);
        assert_eq!(headers[dlq_headers::SOURCE_TOPIC], topic);
        assert_eq!(headers[dlq_headers::SOURCE_PARTITION], "0");
        assert!(!headers[dlq_headers::ERROR_MESSAGE].is_empty());
        assert!(headers[dlq_headers::SOURCE_OFFSET].parse::<i64>().is_ok());
    }
    let schema_id = u32::from_be_bytes(order_id.try_into().unwrap());
    assert!(
        dead[2].2[dlq_headers::ERROR_MESSAGE].contains(&format!("schema id {schema_id}")),
        "names the schema id"
    );
    consumer.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn every_acknowledged_event_survives_a_broker_going_down_and_up() {
    let stack = Stack::start_with(StackOptions {
        brokers: 3,
        ..StackOptions::default()
    })
    .await
    .unwrap();
    let config = config(&stack)
        .set("message.timeout.ms", "20000")
        .set("retry.backoff.ms", "50");
    let topic = stack.unique_topic("orders", 3).unwrap();
    let client = Client::from_config(config.clone()).unwrap();
    let producer = Arc::new(client.producer().await.unwrap());

    let sender = {
        let producer = producer.clone();
        let topic = topic.clone();
        tokio::spawn(async move {
            let mut acked = BTreeSet::new();
            let mut failed = 0;
            for n in 0..400 {
                match producer.send_to(&topic, &order(n)).await {
                    Ok(_) => {
                        acked.insert(order(n).id);
                    }
                    Err(_) => failed += 1,
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            (acked, failed)
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    stack.kafka().broker_down(1).unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    stack.kafka().broker_up(1).unwrap();
    let (acked, failed) = sender.await.unwrap();
    assert!(!acked.is_empty());
    eprintln!(
        "acknowledged {} of 400 ({failed} failed) across the outage",
        acked.len()
    );

    let fresh = consumer(&client, group("after-fault"), &topic).await;
    let mut read = BTreeSet::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while !acked.is_subset(&read) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} acknowledged events missing",
            acked.difference(&read).count()
        );
        if let Ok(r) = tokio::time::timeout(Duration::from_secs(1), fresh.recv()).await {
            read.insert(r.unwrap().event.id);
        }
    }
    fresh.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn clients_keep_working_when_the_registry_goes_down_after_warm_up() {
    let stack = stack().await;
    // A registry of its own, so it can be stopped while the broker runs.
    let registry = SchemaRegistry::start(([127, 0, 0, 1], 0).into(), None)
        .await
        .unwrap();
    let config = Config::new()
        .bootstrap_servers(stack.bootstrap_servers())
        .schema_registry_url(registry.url());
    let topic = stack.unique_topic("orders", 3).unwrap();
    let client = Client::from_config(config.clone()).unwrap();
    let producer = client.producer().await.unwrap();
    producer.send_to(&topic, &order(0)).await.unwrap();
    let consumer = consumer(&client, group("warm"), &topic).await;
    receive(&consumer, 1).await;

    registry.shutdown().await.unwrap();
    for n in 1..11 {
        producer.send_to(&topic, &order(n)).await.unwrap();
    }
    assert_eq!(receive(&consumer, 10).await.len(), 10);
    consumer.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cold_consumer_retries_until_the_registry_is_back() {
    let stack = stack().await;
    let registry = SchemaRegistry::start(([127, 0, 0, 1], 0).into(), None)
        .await
        .unwrap();
    let url = registry.url();
    let addr: std::net::SocketAddr = url.trim_start_matches("http://").parse().unwrap();
    let config = Config::new()
        .bootstrap_servers(stack.bootstrap_servers())
        .schema_registry_url(&url);
    let topic = stack.unique_topic("orders", 1).unwrap();
    let producer = Client::from_config(config.clone())
        .unwrap()
        .producer()
        .await
        .unwrap();
    producer.send_to(&topic, &order(5)).await.unwrap();
    registry.shutdown().await.unwrap();

    // A cold codec: the first decode meets a dead registry.
    let cold = Client::from_config(config.clone()).unwrap();
    let err = cold
        .codec()
        .decode::<Order>(&cold_bytes(&producer, &topic).await)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::RegistryUnreachable { .. }), "{err:?}");

    let mut options = group("cold");
    options.initial_backoff = Duration::from_millis(100);
    options.max_retries = 50;
    let consumer = consumer(&cold, options, &topic).await;
    let receiving = tokio::spawn(async move {
        let r = consumer.recv().await;
        (consumer, r)
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    // The registry comes back on the same address; its first schema gets id 1 again.
    let registry = SchemaRegistry::start(addr, None).await.unwrap();
    Codec::from_config(&config)
        .unwrap()
        .encode(&order(5))
        .await
        .unwrap();
    let (consumer, received) = tokio::time::timeout(WAIT, receiving)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(received.unwrap().event, order(5));
    consumer.close().await.unwrap();
    registry.shutdown().await.unwrap();
}

/// Encodes with the producer's (warm) codec, standing in for bytes already on the topic.
async fn cold_bytes(producer: &Producer, topic: &str) -> Vec<u8> {
    producer.codec().encode_for(topic, &order(5)).await.unwrap()
}
