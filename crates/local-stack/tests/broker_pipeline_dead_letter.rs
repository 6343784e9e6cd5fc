//! A `Pipeline` whose input must be dead-lettered while its identity may not write the
//! dead-letter topic, on the real broker (SASL PLAIN, the services' ACLs without fulfillment's
//! write on `grocery.orders.v1.dlq`), in both modes. Three records on one partition of the
//! orders topic: an order, bytes that are not Avro, another order. The pipeline stops with
//! `Error::DeadLetterFailed` (naming why the input was dead-lettered and the refused write);
//! the group has not committed past the poison record and its dead letter is not on the
//! dead-letter topic (read back `read_committed`); once the write is granted, a new pipeline of
//! the same group (and `transactional.id`) dead-letters it exactly once and writes the second
//! order's pick list.
//!
//! Built only with the `real-broker` feature:
//! `cargo test -p local-stack --features real-broker --test broker_pipeline_dead_letter -- --test-threads=1`.

use std::{
    collections::BTreeSet,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use grocery_events::{Client, Config, Error, Order, PickList, Pipeline, Received, Result, topics};
use grocery_stack::FULFILLMENT;
use local_stack::{
    BrokerKind, KafkaAuth, Stack, StackOptions,
    broker::{AclOperation, AclResource, AclRule},
    verify::{committed_counts, committed_offsets, records_to_end},
};
use rdkafka::{
    ClientConfig, Offset,
    producer::{FutureProducer, FutureRecord},
};
use uuid::Uuid;

mod pipelines;
use pipelines::{plaintext, run_until};

/// Fulfillment's write on the orders' dead-letter topic.
fn dead_letter_write() -> AclRule {
    AclRule::allow(
        format!("User:{FULFILLMENT}"),
        AclResource::Topic,
        topics::dead_letter(topics::ORDERS),
        AclOperation::Write,
    )
}

/// The committed offset of `group` on `partition` of the orders topic, if any.
fn committed(stack: &Stack, group: &str, partition: i32) -> Option<i64> {
    let offsets = committed_offsets(&plaintext(stack), group, topics::ORDERS, topics::PARTITIONS);
    match offsets.iter().find(|(p, _)| *p == partition).unwrap().1 {
        Offset::Offset(offset) => Some(offset),
        _ => None,
    }
}

/// The values on the orders' dead-letter topic, read back `read_committed` up to its end.
fn dead_letters(stack: &Stack) -> Vec<Vec<u8>> {
    let topic = topics::dead_letter(topics::ORDERS);
    records_to_end(&plaintext(stack), &topic, Duration::from_secs(60))
        .into_iter()
        .map(|(_, value)| value)
        .collect()
}

/// Runs a pipeline of `group` writing each order's pick list until it ends by itself (an
/// error) or, once it has dead-lettered one input and transformed the order `last`, is stopped
/// (which commits what it read); returns how it ended.
async fn run(client: &Client, group: &str, last: Option<Uuid>) -> Result<Arc<Pipeline<Order>>> {
    let saw_last = Arc::new(AtomicBool::new(false));
    let seen = saw_last.clone();
    run_until(
        client,
        group,
        Duration::from_secs(120),
        move |received: &Received<Order>| {
            if Some(received.event.order_id) == last {
                seen.store(true, Ordering::SeqCst);
            }
            vec![grocery_stack::sample::pick_list_for(&received.event)]
        },
        |pipeline| saw_last.load(Ordering::SeqCst) && pipeline.consumer().dead_lettered() == 1,
    )
    .await
}

async fn refused_dead_letter(transactional: bool) {
    let mode = if transactional {
        "transactional"
    } else {
        "at-least-once"
    };
    let acls: Vec<AclRule> = grocery_stack::service_acls()
        .into_iter()
        .filter(|rule| *rule != dead_letter_write())
        .collect();
    assert_eq!(acls.len() + 1, grocery_stack::service_acls().len());
    let stack = Stack::start_with(StackOptions {
        broker: BrokerKind::Kafka {
            auth: KafkaAuth::Plain,
        },
        acls,
        ..grocery_stack::options()
    })
    .await
    .unwrap();
    let admin = stack.client().unwrap();
    let run_id = Uuid::new_v4();
    let orders = [1, 2].map(|n| {
        grocery_stack::sample::milk_order(Uuid::new_v5(&run_id, &[n]), run_id, i32::from(n))
    });

    // An order, bytes that are not Avro, another order: one partition, in that order.
    let partition = 0;
    let raw: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", plaintext(&stack))
        .create()
        .unwrap();
    let mut payloads = Vec::new();
    for order in &orders {
        payloads.push((
            order.order_id.to_string(),
            admin
                .codec()
                .encode_for(topics::ORDERS, order)
                .await
                .unwrap(),
        ));
    }
    payloads.insert(1, ("poison".into(), b"not Confluent-framed Avro".to_vec()));
    let mut offsets = Vec::new();
    for (key, payload) in &payloads {
        let delivery = raw
            .send(
                FutureRecord::to(topics::ORDERS)
                    .partition(partition)
                    .key(key.as_str())
                    .payload(payload.as_slice()),
                Duration::from_secs(30),
            )
            .await
            .unwrap();
        offsets.push(delivery.offset);
    }
    let poison_offset = offsets[1];

    let mut config =
        Config::from_properties_str(&stack.client_properties_for(FULFILLMENT).unwrap()).unwrap();
    if transactional {
        config = config.set("transactional.id", format!("fulfillment-dlq-{run_id}"));
    }
    let client = Client::from_config(config).unwrap();
    let group = format!("fulfillment-dlq-{mode}-{run_id}");

    // Refused: the pipeline stops, naming the poison record's error and the refused write.
    let error = run(&client, &group, None)
        .await
        .expect_err("the pipeline stops when the dead letter is refused");
    eprintln!("{mode}: the pipeline stopped: {error}");
    let dlq = topics::dead_letter(topics::ORDERS);
    match &error {
        Error::DeadLetterFailed {
            cause,
            topic,
            source,
        } => {
            assert!(cause.is_poison(), "{error:?}");
            assert_eq!(topic, &dlq);
            assert!(source.is_refused(), "{error:?}");
        }
        other => panic!("{mode}: expected DeadLetterFailed, got {other:?}"),
    }
    assert!(error.is_refused(), "{error}");
    let committed_after_refusal = committed(&stack, &group, partition);
    eprintln!("{mode}: committed after the refusal: {committed_after_refusal:?}");
    assert!(
        committed_after_refusal.is_none_or(|offset| offset <= poison_offset),
        "{mode}: committed {committed_after_refusal:?}, past the poison record at {poison_offset}"
    );
    assert!(
        dead_letters(&stack).is_empty(),
        "{mode}: no dead letter yet"
    );

    // Granted: a new pipeline of the group dead-letters it once and goes on. Until the broker's
    // authorizer has the grant, a run meets the refusal again and stops as above.
    stack
        .kafka_broker()
        .unwrap()
        .allow(vec![dead_letter_write()])
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let wanted: BTreeSet<Uuid> = orders.iter().map(|o| o.order_id).collect();
    let mut runs = 1;
    let pipeline = loop {
        runs += 1;
        match run(&client, &group, Some(orders[1].order_id)).await {
            Ok(pipeline) => break pipeline,
            Err(error @ Error::DeadLetterFailed { .. }) if error.is_refused() => assert!(
                std::time::Instant::now() < deadline,
                "{mode}: the grant never reached the broker: {error}"
            ),
            Err(error) => panic!("{mode}: {error:?}"),
        }
    };
    assert_eq!(pipeline.consumer().dead_lettered(), 1);
    let letters = dead_letters(&stack);
    assert_eq!(
        letters,
        vec![b"not Confluent-framed Avro".to_vec()],
        "{mode}: one dead letter, the poison record's bytes"
    );
    assert_eq!(committed(&stack, &group, partition), Some(offsets[2] + 1));
    let counts =
        committed_counts::<PickList>(&plaintext(&stack), admin.codec(), &wanted, |p| p.order_id);
    eprintln!(
        "{mode}: {runs} runs; pick lists per order (read_committed): {counts:?}; dead letters: {}",
        letters.len()
    );
    assert_eq!(counts.len(), 2, "{mode}: both orders have their pick list");
    if transactional {
        assert!(
            counts.values().all(|c| *c == 1),
            "{mode}: exactly one each: {counts:?}"
        );
    }
    drop((pipeline, client, admin));
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_dead_letter_stops_the_at_least_once_pipeline_and_loses_nothing() {
    refused_dead_letter(false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_dead_letter_stops_the_transactional_pipeline_and_loses_nothing() {
    refused_dead_letter(true).await;
}
