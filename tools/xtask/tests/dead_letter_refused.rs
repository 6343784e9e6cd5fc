//! A dead-letter write the broker refuses, on a real Apache Kafka broker (SASL PLAIN, the
//! services' least-privilege ACLs without the write on `grocery.orders.v1.dlq`):
//!
//! - **the producer side**: order-producer's simulator (`--invalid-every 4`) sends orders the
//!   order contract's `order_has_lines` rule (`onFailure: DLQ`) refuses; their dead letters
//!   are refused too, so each such order is on neither topic: the send fails with
//!   `Error::DeadLetterFailed` naming the rule and the refused write, and the simulator logs
//!   ERROR with the order id, counts it as failed (and apart) and exits with status 1; the
//!   valid orders are on the orders topic, read back read_committed, and the dead-letter topic
//!   is empty;
//! - **the consumer side**: a record failing a `READ` rule with `DLQ` whose dead letter is
//!   refused: `recv` fails with `Error::DeadLetterFailed` naming both, the group's committed
//!   offset stays at the record (the record before it acknowledged); once the write is
//!   granted, the group's next consumer dead-letters it (one copy, read back read_committed)
//!   and goes on to the next record.
//!
//! Built only with the `real-broker` feature; run it with
//! `cargo test -p xtask --features real-broker --test dead_letter_refused -- --test-threads=1 --nocapture`.

mod order_api_support;

use std::collections::BTreeSet;

use avro_events::rules::{Rule, RuleKind, RuleMode, RuleSet};
use grocery_events::{
    Client, Config, ConsumerOptions, Error, Event as _, Order, OrderLine, topics,
};
use grocery_stack::{FULFILLMENT, ORDER_PRODUCER};
use local_stack::{
    broker::{AclOperation, AclResource, AclRule},
    verify::{committed_offsets, records_to_end},
};
use order_api_support::{WAIT, binaries, kafka_stack_with, properties};
use rdkafka::Offset;
use uuid::Uuid;
use xtask::services;

/// `who`'s write on the orders' dead-letter topic.
fn dead_letter_write(who: &str) -> AclRule {
    AclRule::allow(
        format!("User:{who}"),
        AclResource::Topic,
        topics::dead_letter(topics::ORDERS),
        AclOperation::Write,
    )
}

/// The services' ACLs without `who`'s write on the orders' dead-letter topic.
fn acls_without_dead_letter_write(who: &str) -> Vec<AclRule> {
    let refused = dead_letter_write(who);
    let acls: Vec<AclRule> = grocery_stack::service_acls()
        .into_iter()
        .filter(|rule| *rule != refused)
        .collect();
    assert_eq!(
        acls.len() + 1,
        grocery_stack::service_acls().len(),
        "the services' ACLs grant {who} the dead-letter write"
    );
    acls
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_the_contract_refuses_whose_dead_letters_are_refused_are_failures_logged_with_their_ids()
 {
    let stack = kafka_stack_with(acls_without_dead_letter_write(ORDER_PRODUCER)).await;
    let dir = tempfile::tempdir().unwrap();
    let props = properties(&stack, dir.path(), ORDER_PRODUCER);
    let report = dir.path().join("report.jsonl");
    let args: Vec<String> = [
        "--config",
        props.to_str().unwrap(),
        "--count",
        "12",
        "--rate",
        "0",
        "--invalid-every",
        "4",
        "--report",
        report.to_str().unwrap(),
    ]
    .map(str::to_owned)
    .into();
    let mut producer = services::start(
        "order-producer",
        &binaries().order_producer,
        &args,
        &[("RUST_LOG", "info")],
        &dir.path().join("order-producer.log"),
    )
    .unwrap();
    let status = producer.wait(WAIT).unwrap();
    let log = producer.stderr().all();
    let summary = producer.stdout().all().join("\n");
    assert_eq!(
        status.code(),
        Some(1),
        "orders on neither topic are failures: {status:?}; {summary}; {log:#?}"
    );
    assert!(
        summary.trim_end().ends_with(
            ", 3 failed, 3 of the failed refused by the order contract and not dead-lettered (on neither topic)"
        ),
        "{summary}"
    );

    // Each refused order: one ERROR line with its id, naming the rule and the refused write.
    let lost: Vec<&String> = log
        .iter()
        .filter(|line| line.contains("ERROR") && line.contains("not dead-lettered"))
        .collect();
    assert_eq!(lost.len(), 3, "{log:#?}");
    eprintln!("{}", lost[0]);
    let dlq = topics::dead_letter(topics::ORDERS);
    let mut lost_ids = BTreeSet::new();
    for line in &lost {
        assert!(line.contains("rule 'order_has_lines'"), "{line}");
        assert!(
            line.contains(&format!("could not be written to '{dlq}'")),
            "{line}"
        );
        assert!(line.contains("TopicAuthorizationFailed"), "{line}");
        let id = line
            .split_whitespace()
            .find_map(|word| word.strip_prefix("order_id="))
            .unwrap_or_else(|| panic!("no order_id= in {line}"));
        lost_ids.insert(Uuid::parse_str(id).unwrap());
    }
    assert_eq!(lost_ids.len(), 3, "{lost:#?}");
    assert!(
        log.iter()
            .any(|line| line.contains("done") && line.contains("dead_letter_failed=3")),
        "{log:#?}"
    );

    // The nine acknowledged orders are on the orders topic, read_committed; none of the three.
    let accepted: BTreeSet<Uuid> = std::fs::read_to_string(&report)
        .unwrap()
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            Uuid::parse_str(v["order_id"].as_str().unwrap()).unwrap()
        })
        .collect();
    assert_eq!(accepted.len(), 9, "{accepted:?}");
    let on_topic: BTreeSet<Uuid> = records_to_end(stack.bootstrap_servers(), topics::ORDERS, WAIT)
        .iter()
        .map(|(key, _)| Uuid::try_parse_ascii(key).expect("an order keyed by its id"))
        .collect();
    assert_eq!(on_topic, accepted);
    assert!(on_topic.is_disjoint(&lost_ids), "{on_topic:?} {lost_ids:?}");
    assert!(
        records_to_end(stack.bootstrap_servers(), &dlq, WAIT).is_empty(),
        "nothing reached {dlq}"
    );
    stack.shutdown().await;
}

/// An order of `quantity` bananas placed at `time`. The consumer test's records share the
/// order id, which is the key: one partition, read in the order written.
fn order(quantity: i32, time: i64) -> Order {
    Order {
        order_id: Uuid::from_u128(42),
        customer_id: Uuid::from_u128(7),
        items: vec![OrderLine {
            sku: "PRD-00001".into(),
            name: "Bananas".into(),
            quantity,
            unit_price_cents: 59,
        }],
        order_total_cents: 59 * i64::from(quantity),
        currency: "USD".into(),
        order_time: time,
        substitution: None,
        delivery_window: None,
    }
}

/// The offset `group` committed on `topic`'s `partition` (`None`: none).
fn committed(stack: &local_stack::Stack, group: &str, partition: i32) -> Option<i64> {
    let offsets = committed_offsets(
        stack.bootstrap_servers(),
        group,
        topics::ORDERS,
        partition + 1,
    );
    match offsets.iter().find(|(p, _)| *p == partition).unwrap().1 {
        Offset::Offset(offset) => Some(offset),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_whose_dead_letter_is_refused_is_not_committed_past_and_is_dead_lettered_once_granted()
 {
    let stack = kafka_stack_with(acls_without_dead_letter_write(FULFILLMENT)).await;
    let admin = Client::from_config(
        Config::from_properties_str(&format!(
            "{}\nauto.register.schemas=false\nuse.latest.version=true\n",
            stack.client_properties()
        ))
        .unwrap(),
    )
    .unwrap();
    // A READ rule with the DLQ action on the orders' schema: at most 100 of a line.
    let rules = RuleSet::domain([Rule::new(
        "at_most_100",
        RuleKind::Condition,
        RuleMode::Read,
        "CEL",
        "message.items.all(line, line.quantity <= 100)",
    )
    .on_failure("DLQ")]);
    admin
        .codec()
        .registry()
        .register_contract(
            &format!("{}-value", topics::ORDERS),
            Order::SCHEMA,
            None,
            Some(&rules),
            false,
        )
        .await
        .unwrap();
    let producer = admin.producer().await.unwrap();
    let mut offsets = Vec::new();
    for quantity in [1, 500, 2] {
        let delivered = producer
            .send(&order(quantity, 1_763_769_600_000 + i64::from(quantity)))
            .await
            .unwrap();
        offsets.push((delivered.partition, delivered.offset));
    }
    let partition = offsets[0].0;
    assert!(offsets.iter().all(|(p, _)| *p == partition), "{offsets:?}");
    let poison_offset = offsets[1].1;

    let group = "fulfillment-dead-letter-refused";
    let fulfillment = Client::from_config(
        Config::from_properties_str(&stack.client_properties_for(FULFILLMENT).unwrap()).unwrap(),
    )
    .unwrap();
    let consumer = fulfillment
        .consumer::<Order>(ConsumerOptions::new(group))
        .await
        .unwrap();
    let first = tokio::time::timeout(WAIT, consumer.recv())
        .await
        .expect("the first order")
        .unwrap();
    assert_eq!(first.event.items[0].quantity, 1);
    consumer.ack(&first.meta).unwrap();
    let error = tokio::time::timeout(WAIT, consumer.recv())
        .await
        .expect("an answer for the record the rule fails")
        .expect_err("its dead letter is refused");
    let dlq = topics::dead_letter(topics::ORDERS);
    match &error {
        Error::DeadLetterFailed {
            cause,
            topic,
            source,
        } => {
            assert!(
                matches!(&**cause, Error::RuleFailed { rule, mode: "READ", .. } if rule == "at_most_100"),
                "{error:?}"
            );
            assert_eq!(topic, &dlq);
            assert!(source.is_refused(), "{error:?}");
        }
        other => panic!("expected DeadLetterFailed, got {other:?}"),
    }
    assert!(error.is_refused(), "{error}");
    assert!(error.to_string().contains("at_most_100"), "{error}");
    assert_eq!(consumer.dead_lettered(), 0);
    // Closed: what was acknowledged is committed, and nothing past the record.
    consumer.close().await.unwrap();
    drop(consumer);
    assert_eq!(committed(&stack, group, partition), Some(poison_offset));

    // Granted again: the group's next consumer dead-letters the record and goes on.
    stack
        .kafka_broker()
        .unwrap()
        .allow(vec![dead_letter_write(FULFILLMENT)])
        .await
        .unwrap();
    let consumer = fulfillment
        .consumer::<Order>(ConsumerOptions::new(group))
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    // Until the broker's authorizer has the grant, each receive meets the refusal again.
    let next = loop {
        match tokio::time::timeout(WAIT, consumer.recv()).await.unwrap() {
            Ok(next) => break next,
            Err(error @ Error::DeadLetterFailed { .. }) if error.is_refused() => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the grant never reached the broker: {error}"
                );
            }
            Err(error) => panic!("{error:?}"),
        }
    };
    assert_eq!(next.event.items[0].quantity, 2);
    assert_eq!(consumer.dead_lettered(), 1);
    consumer.ack(&next.meta).unwrap();
    consumer.close().await.unwrap();
    drop(consumer);
    assert_eq!(committed(&stack, group, partition), Some(offsets[2].1 + 1));
    let letters = records_to_end(stack.bootstrap_servers(), &dlq, WAIT);
    assert_eq!(letters.len(), 1, "one dead letter");
    drop((producer, admin, fulfillment));
    stack.shutdown().await;
}
