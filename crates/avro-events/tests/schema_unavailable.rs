//! A record whose writer schema the registry does not have (yet) is an outage, not poison
//! (issue 18): it is never dead-lettered nor committed past. By default the consumer waits,
//! saying why, and decodes the record once the schema is registered under its id; with
//! `schema.unavailable.action=fail` it returns an error naming the id, and a pipeline ends with
//! it. Such records used to go to the dead-letter topic, their offsets committed.
//!
//! The local registry gives ids in sequence, so the id the next registration will get is known
//! before it exists: records are framed with that id, and the schema appears under it when a new
//! schema is registered.

mod utils;

use std::{sync::Arc, time::Duration};

use avro_events::SchemaUnavailable;
use utils::events::{self, PARTITIONS, config, group, produce_raw, stack};
/// The made-up events of these tests: a reading in, an alert out.
type Order = events::Reading;
type PickList = events::Alert;

use avro_events::{Client, Consumer, Error, Event as _, PipelineOptions};
use local_stack::{Stack, late_schema, verify};
use rdkafka::{Offset, consumer::Consumer as _};

const WAIT: Duration = Duration::from_secs(30);

/// Records on `topic` (partitions `0..partitions`), from the watermarks.
fn records_on(stack: &Stack, topic: &str, partitions: i32) -> i64 {
    verify::records_on(stack.bootstrap_servers(), topic, partitions)
}

/// A record of `order` written with the late schema under `id`, which the registry does not
/// have yet.
async fn framed_late(client: &Client, order: &Order, id: u32) -> Vec<u8> {
    let own = client.codec().encode(order).await.unwrap();
    late_schema::late_record(&own, id)
}

/// The id the registry will give the next new schema (it has no schema under it now).
async fn next_schema_id(client: &Client) -> u32 {
    late_schema::next_schema_id(client.codec().registry()).await
}

/// Registers the late schema, which must get `id`.
async fn register_late(client: &Client, id: u32) {
    let registered = client
        .codec()
        .registry()
        .register(
            "late-order-value",
            &late_schema::with_late_note(Order::SCHEMA),
        )
        .await
        .unwrap();
    assert_eq!(
        registered, id,
        "the local registry no longer gives ids in sequence; this test relies on it"
    );
}

/// Waits until `consumer` says it is waiting (failing at once if it dead-letters instead).
async fn wait_until_waiting(consumer: &Consumer<Order>) -> String {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        assert_eq!(
            consumer.dead_lettered(),
            0,
            "a record whose schema is not registered yet was dead-lettered"
        );
        if let Some(reason) = consumer.waiting_on() {
            return reason;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the consumer never said it was waiting"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Default (`wait`): the record is tried again with backoff, the consumer says why it waits
/// (naming the record and the id), nothing is dead-lettered or committed past it, and once the
/// schema is registered under the id the record is decoded and handed out, first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_with_an_unregistered_schema_id_is_waited_for_not_dead_lettered() {
    let stack = stack().await;
    let topic = stack.unique_topic("schema-wait", 1).unwrap();
    let dlq = format!("{topic}.dlq");
    stack.kafka().create_topic(&dlq, 1).unwrap();
    let client = Client::from_config(config(&stack)).unwrap();
    // (Encoding registers the order schema: the late id is taken after it.)
    let mut payload = framed_late(&client, &events::reading(1), 0).await;
    let late = next_schema_id(&client).await;
    payload[1..5].copy_from_slice(&late.to_be_bytes());
    produce_raw(&stack, &topic, "late", &payload).await;
    client
        .producer()
        .await
        .unwrap()
        .send_to(&topic, &events::reading(2))
        .await
        .unwrap();

    let options = group("schema-wait").with_initial_backoff(Duration::from_millis(20));
    let consumer = Arc::new(
        client
            .consumer_subscribed_to::<Order>(options, &[&topic])
            .await
            .unwrap(),
    );
    let receiving = tokio::spawn({
        let consumer = consumer.clone();
        async move { consumer.recv().await }
    });
    let reason = wait_until_waiting(&consumer).await;
    println!("waiting: {reason}");
    assert!(
        reason.contains(&format!("unknown schema id {late}")),
        "{reason}"
    );
    assert!(reason.contains(&format!("{topic}[0]@0")), "{reason}");
    // Nothing acknowledged: a commit now commits nothing, the group has no offset.
    consumer.commit().await.unwrap();
    let committed = tokio::task::spawn_blocking({
        let consumer = consumer.clone();
        move || consumer.rdkafka().committed(Duration::from_secs(10))
    })
    .await
    .unwrap()
    .unwrap();
    let offset = committed
        .find_partition(&topic, 0)
        .map_or(Offset::Invalid, |p| p.offset());
    assert_eq!(offset, Offset::Invalid, "nothing committed past the record");
    assert_eq!(records_on(&stack, &dlq, 1), 0, "nothing on {dlq}");
    assert!(!receiving.is_finished());

    register_late(&client, late).await;
    let received = tokio::time::timeout(WAIT, receiving)
        .await
        .expect("the record is decoded once its schema is registered")
        .unwrap()
        .unwrap();
    assert_eq!(received.event, events::reading(1));
    assert_eq!(received.meta.offset, 0);
    assert_eq!(consumer.waiting_on(), None);
    consumer.ack(&received.meta).unwrap();
    let second = tokio::time::timeout(WAIT, consumer.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(second.event, events::reading(2));
    assert_eq!(consumer.dead_lettered(), 0);
    assert_eq!(records_on(&stack, &dlq, 1), 0);
}

/// `schema.unavailable.action=fail`: `recv` returns a typed error naming the schema id, again on
/// the next call (the record is not skipped), nothing is dead-lettered; once the schema exists
/// the record is decoded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_fail_an_unregistered_schema_id_is_an_error_naming_it() {
    let stack = stack().await;
    let topic = stack.unique_topic("schema-fail", 1).unwrap();
    let dlq = format!("{topic}.dlq");
    stack.kafka().create_topic(&dlq, 1).unwrap();
    let client =
        Client::from_config(config(&stack).set("schema.unavailable.action", "fail")).unwrap();
    let mut payload = framed_late(&client, &events::reading(1), 0).await;
    let late = next_schema_id(&client).await;
    payload[1..5].copy_from_slice(&late.to_be_bytes());
    produce_raw(&stack, &topic, "late", &payload).await;
    client
        .producer()
        .await
        .unwrap()
        .send_to(&topic, &events::reading(2))
        .await
        .unwrap();

    let consumer = client
        .consumer_subscribed_to::<Order>(group("schema-fail"), &[&topic])
        .await
        .unwrap();
    for call in 1..=2 {
        let err = tokio::time::timeout(WAIT, consumer.recv())
            .await
            .unwrap()
            .unwrap_err();
        println!("call {call}: {err}");
        assert!(
            matches!(err, Error::UnknownSchemaId { id, .. } if id == late),
            "call {call}: {err:?}"
        );
        assert!(err.to_string().contains(&late.to_string()), "{err}");
        assert!(err.is_schema_unavailable() && !err.is_poison());
    }
    assert_eq!(consumer.dead_lettered(), 0);
    assert_eq!(records_on(&stack, &dlq, 1), 0, "nothing on {dlq}");

    register_late(&client, late).await;
    let received = tokio::time::timeout(WAIT, consumer.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(received.event, events::reading(1));
    assert_eq!(received.meta.offset, 0);

    // ConsumerOptions wins over the configuration.
    let waiting = client
        .consumer_subscribed_to::<Order>(
            group("schema-fail").with_schema_unavailable(SchemaUnavailable::Wait),
            &[&topic],
        )
        .await
        .unwrap();
    let first = tokio::time::timeout(WAIT, waiting.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.event, events::reading(1));
}

/// The pipeline polls through the same classification: an order with an unregistered schema id
/// is not dead-lettered; with `fail` a transactional pipeline ends with the error naming the id
/// (instead of aborting and reading the batch again forever); with `wait` the pipeline says why
/// it waits and makes the pick list once the schema is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pipeline_waits_or_fails_on_an_unregistered_schema_id() {
    let stack = stack().await;
    let client = Client::from_config(config(&stack)).unwrap();
    let producer = client.producer().await.unwrap();
    // The pipeline's output schema is registered first, so that its first output does not take
    // the late id.
    client
        .codec()
        .encode(&events::alert_for(&events::reading(1)))
        .await
        .unwrap();
    let mut payload = framed_late(&client, &events::reading(1), 0).await;
    let late = next_schema_id(&client).await;
    payload[1..5].copy_from_slice(&late.to_be_bytes());
    // Good orders before the late one (a batch under way when it comes), then the late one.
    for n in 10..20 {
        producer.send(&events::reading(n)).await.unwrap();
    }
    produce_raw(&stack, Order::TOPIC, "late", &payload).await;

    let failing = Client::from_config(
        config(&stack)
            .set("schema.unavailable.action", "fail")
            .set("transactional.id", "schema-unavailable-test"),
    )
    .unwrap();
    let pipeline = failing
        .pipeline::<Order>(PipelineOptions::new("fulfillment-fail"))
        .await
        .unwrap();
    let err = tokio::time::timeout(
        WAIT,
        pipeline.run(
            |received| vec![events::alert_for(&received.event)],
            std::future::pending(),
        ),
    )
    .await
    .expect("the pipeline ends with the error")
    .unwrap_err();
    println!("transactional pipeline with fail: {err}");
    assert!(
        matches!(err, Error::UnknownSchemaId { id, .. } if id == late),
        "{err:?}"
    );
    assert_eq!(pipeline.consumer().dead_lettered(), 0);
    drop(pipeline);

    let mut options = PipelineOptions::new("fulfillment-wait");
    options.consumer.initial_backoff = Duration::from_millis(20);
    let pipeline = Arc::new(client.pipeline::<Order>(options).await.unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn({
        let pipeline = pipeline.clone();
        async move {
            pipeline
                .run(|received| vec![events::alert_for(&received.event)], async {
                    let _ = stopped.await;
                })
                .await
        }
    });
    let deadline = tokio::time::Instant::now() + WAIT;
    let reason = loop {
        if let Some(reason) = pipeline.consumer().waiting_on() {
            break reason;
        }
        assert_eq!(pipeline.consumer().dead_lettered(), 0);
        assert!(!running.is_finished(), "the pipeline stopped");
        assert!(tokio::time::Instant::now() < deadline, "never waited");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        reason.contains(&format!("unknown schema id {late}")),
        "{reason}"
    );
    register_late(&client, late).await;

    let reader = client
        .consumer::<PickList>(group("pick-lists"))
        .await
        .unwrap();
    let mut orders = std::collections::BTreeSet::new();
    while orders.len() < 11 {
        let received = tokio::time::timeout(WAIT, reader.recv())
            .await
            .unwrap_or_else(|_| panic!("{} of 11 pick lists", orders.len()))
            .unwrap();
        orders.insert(received.event.reading_id);
    }
    assert!(orders.contains(&events::reading(1).id));
    assert_eq!(pipeline.consumer().waiting_on(), None);
    assert_eq!(pipeline.consumer().dead_lettered(), 0);
    assert_eq!(
        records_on(
            &stack,
            &avro_events::dlq::dead_letter_topic(Order::TOPIC),
            PARTITIONS
        ),
        0
    );
    stop.send(()).unwrap();
    tokio::time::timeout(WAIT, running)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
