//! A `Pipeline` whose writes the broker refuses while its identity may still describe the
//! topic, on the real broker (SASL PLAIN, the services' ACLs), in both modes. Describe without
//! Write is what a transaction meets worst: the broker refuses the topic's partition to the
//! transaction, which becomes abortable, and its records come back only as purged.
//! - An output topic (`grocery.picklist.v1`, fulfillment's Write removed; each pick list
//!   queued after an output to a topic fulfillment may write): the run ends with an error that
//!   names the refused topic and is a refusal; the group has not committed past the
//!   orders and no pick list is visible `read_committed`; once Write is granted, a new run of
//!   the same group writes each pick list (transactional: exactly once).
//! - An output a data-contract rule refuses (a WRITE `CONDITION` with `onFailure: DLQ`) whose
//!   dead-letter topic the identity may describe but not write: the run ends with
//!   `Error::DeadLetterFailed` naming the rule and the refused write, nothing committed past
//!   it and nothing on either topic; once Write is granted, a new run dead-letters the output
//!   once, writes the other order's output and goes on past both.
//!
//! Also: a transactional pipeline that aborts and retries for a reason that may pass (its
//! output topic does not exist yet) says so through `Pipeline::stalled` while the loop lasts,
//! and stops saying it at the next commit.
//!
//! Built only with the `real-broker` feature:
//! `cargo test -p local-stack --features real-broker --test broker_pipeline_refused_writes -- --test-threads=1`.

use std::{
    collections::BTreeSet,
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use avro_events::rules::Contract;
use grocery_events::{
    Client, Config, Error, Event, Order, Outputs, PickList, Pipeline, PipelineOptions, Received,
    topics,
};
use grocery_stack::FULFILLMENT;
use local_stack::{
    BrokerKind, KafkaAuth, Stack, StackOptions,
    broker::{AclOperation, AclResource, AclRule},
    verify::{committed_counts, committed_offsets, records_to_end, wait_for},
};
use rdkafka::Offset;
use tokio::sync::oneshot;
use uuid::Uuid;

mod pipelines;
use pipelines::{plaintext, run_until};

/// An output of each order that its topic's contract checks: `lines` must be positive.
#[derive(serde::Serialize, serde::Deserialize)]
struct Checked {
    order_id: Uuid,
    lines: i32,
}

impl Event for Checked {
    const TOPIC: &'static str = "broker-pipeline.checked";
    const SCHEMA: &'static str = r#"{"type": "record", "name": "Checked", "fields": [
        {"name": "order_id", "type": {"type": "string", "logicalType": "uuid"}},
        {"name": "lines", "type": "int"}]}"#;
    const FULL_NAME: &'static str = "Checked";
    fn key(&self) -> String {
        self.order_id.to_string()
    }
}

/// An output fulfillment may write, queued before each pick list: in a transaction its record
/// is purged too when the pick lists' partition is refused.
#[derive(serde::Serialize, serde::Deserialize)]
struct Noted {
    order_id: Uuid,
}

impl Event for Noted {
    const TOPIC: &'static str = "broker-pipeline.noted";
    const SCHEMA: &'static str = r#"{"type": "record", "name": "Noted", "fields": [
        {"name": "order_id", "type": {"type": "string", "logicalType": "uuid"}}]}"#;
    const FULL_NAME: &'static str = "Noted";
    fn key(&self) -> String {
        self.order_id.to_string()
    }
}

/// Where the contract's rule sends the outputs it refuses.
const CHECKED_DLQ: &str = "broker-pipeline.checked.dlq";

/// The contract of `Checked`'s subject: a WRITE condition whose failures are dead-lettered.
const CHECKED_CONTRACT: &str = r#"{"ruleSet": {"domainRules": [{
    "name": "has_lines", "kind": "CONDITION", "mode": "WRITE", "type": "CEL",
    "expr": "message.lines > 0",
    "params": {"dlq.topic": "broker-pipeline.checked.dlq"},
    "onFailure": "DLQ"}]}}"#;

/// `operation` of fulfillment's on topic `topic`.
fn fulfillment_may(operation: AclOperation, topic: &str) -> AclRule {
    AclRule::allow(
        format!("User:{FULFILLMENT}"),
        AclResource::Topic,
        topic,
        operation,
    )
}

/// Runs pipelines of `group` until one gets through: each run meets `refused` until the
/// broker's authorizer has the grant the test just made.
async fn run_once_granted<O, T>(
    client: &Client,
    group: &str,
    transform: impl Fn() -> T,
    done: impl Fn(&Pipeline<Order>) -> bool + Copy,
    refused: impl Fn(&Error) -> bool,
) -> Arc<Pipeline<Order>>
where
    O: avro_events::IntoOutputs + 'static,
    T: FnMut(&Received<Order>) -> O + Send + 'static,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        match run_until(client, group, Duration::from_secs(90), transform(), done).await {
            Ok(pipeline) => return pipeline,
            Err(error) if refused(&error) => assert!(
                std::time::Instant::now() < deadline,
                "the grant never reached the broker: {error}"
            ),
            Err(error) => panic!("{error:?}"),
        }
    }
}

/// Sends `orders` (keyed by their ids) and returns where each landed: partition, offset.
async fn send_orders(admin: &Client, orders: &[Order]) -> Vec<(i32, i64)> {
    let producer = admin.producer().await.unwrap();
    let mut landed = Vec::new();
    for order in orders {
        let delivered = producer.send(order).await.unwrap();
        landed.push((delivered.partition, delivered.offset));
    }
    landed
}

/// Whether `group` has committed past none of `landed` (an order's partition and offset).
fn committed_past_none(stack: &Stack, group: &str, landed: &[(i32, i64)]) -> bool {
    let offsets = committed_offsets(&plaintext(stack), group, topics::ORDERS, topics::PARTITIONS);
    landed.iter().all(|(partition, offset)| {
        match offsets.iter().find(|(p, _)| p == partition).unwrap().1 {
            Offset::Offset(committed) => committed <= *offset,
            _ => true,
        }
    })
}

/// Whether `group` has committed past every one of `landed`.
fn committed_past_all(stack: &Stack, group: &str, landed: &[(i32, i64)]) -> bool {
    let offsets = committed_offsets(&plaintext(stack), group, topics::ORDERS, topics::PARTITIONS);
    landed.iter().all(|(partition, offset)| {
        matches!(offsets.iter().find(|(p, _)| p == partition).unwrap().1,
            Offset::Offset(committed) if committed > *offset)
    })
}

/// The values on `topic`, read back `read_committed` up to its end.
fn values_on(stack: &Stack, topic: &str) -> Vec<Vec<u8>> {
    records_to_end(&plaintext(stack), topic, Duration::from_secs(60))
        .into_iter()
        .map(|(_, value)| value)
        .collect()
}

async fn refused_writes(transactional: bool) {
    let mode = if transactional {
        "transactional"
    } else {
        "at-least-once"
    };
    // The services' ACLs without fulfillment's Write on the pick lists; fulfillment may write
    // the checked outputs and only describe their dead-letter topic.
    let picklist_write = fulfillment_may(AclOperation::Write, topics::PICKLISTS);
    let dlq_write = fulfillment_may(AclOperation::Write, CHECKED_DLQ);
    let mut acls: Vec<AclRule> = grocery_stack::service_acls()
        .into_iter()
        .filter(|rule| *rule != picklist_write)
        .collect();
    assert_eq!(acls.len() + 1, grocery_stack::service_acls().len());
    acls.extend([
        fulfillment_may(AclOperation::Write, Noted::TOPIC),
        fulfillment_may(AclOperation::Describe, Noted::TOPIC),
        fulfillment_may(AclOperation::Write, Checked::TOPIC),
        fulfillment_may(AclOperation::Describe, Checked::TOPIC),
        fulfillment_may(AclOperation::Describe, CHECKED_DLQ),
    ]);
    let stack = Stack::start_with(StackOptions {
        broker: BrokerKind::Kafka {
            auth: KafkaAuth::Plain,
        },
        acls,
        ..grocery_stack::options()
    })
    .await
    .unwrap();
    let broker = stack.kafka_broker().unwrap();
    broker.create_topic(Noted::TOPIC, 1).await.unwrap();
    broker.create_topic(Checked::TOPIC, 1).await.unwrap();
    broker.create_topic(CHECKED_DLQ, 1).await.unwrap();
    let admin = stack.client().unwrap();
    let run_id = Uuid::new_v4();
    let mut config =
        Config::from_properties_str(&stack.client_properties_for(FULFILLMENT).unwrap()).unwrap();
    if transactional {
        config = config.set("transactional.id", format!("fulfillment-refused-{run_id}"));
    }

    // 1. The output topic: fulfillment may describe the pick lists' topic, not write it.
    let orders =
        [1u8, 2].map(|n| grocery_stack::sample::milk_order(Uuid::new_v5(&run_id, &[n]), run_id, 1));
    let landed = send_orders(&admin, &orders).await;
    let client = Client::from_config(config.clone()).unwrap();
    let group = format!("fulfillment-refused-output-{mode}-{run_id}");
    // A record fulfillment may write goes first: the error must name the refused topic,
    // not the first record the failed transaction lost.
    let pick_lists = || {
        |received: &Received<Order>| {
            let order = &received.event;
            Outputs::new()
                .with(Noted {
                    order_id: order.order_id,
                })
                .with(grocery_stack::sample::pick_list_for(order))
        }
    };
    let error = run_until(
        &client,
        &group,
        Duration::from_secs(90),
        pick_lists(),
        |_| false,
    )
    .await
    .expect_err("the pipeline stops when its output topic is refused");
    eprintln!("{mode}, output topic refused: the pipeline stopped: {error}");
    assert!(error.is_refused(), "{mode}: a refusal: {error:?}");
    assert!(
        !error.is_purged(),
        "{mode}: the transaction's reason, not the purge: {error:?}"
    );
    assert!(
        error.to_string().contains(topics::PICKLISTS) && !error.to_string().contains(Noted::TOPIC),
        "{mode}: the error names the refused topic: {error}"
    );
    assert!(
        committed_past_none(&stack, &group, &landed),
        "{mode}: nothing committed past the orders"
    );
    assert!(
        values_on(&stack, topics::PICKLISTS).is_empty(),
        "{mode}: no pick list visible"
    );

    broker.allow(vec![picklist_write]).await.unwrap();
    let pipeline = run_once_granted(
        &client,
        &group,
        pick_lists,
        |pipeline| pipeline.stats().produced_to(PickList::TOPIC) >= 2,
        |error| error.is_refused(),
    )
    .await;
    drop(pipeline);
    assert!(
        committed_past_all(&stack, &group, &landed),
        "{mode}: committed past both orders once granted"
    );
    let wanted: BTreeSet<Uuid> = orders.iter().map(|o| o.order_id).collect();
    let counts =
        committed_counts::<PickList>(&plaintext(&stack), admin.codec(), &wanted, |p| p.order_id);
    eprintln!("{mode}, output topic granted: pick lists per order (read_committed): {counts:?}");
    assert_eq!(counts.len(), 2, "{mode}: both orders have their pick list");
    if transactional {
        assert!(
            counts.values().all(|c| *c == 1),
            "{mode}: exactly one each: {counts:?}"
        );
    }

    // 2. An output the contract refuses: its dead letter goes to a topic fulfillment may
    // describe, not write. Outputs are written with the registered contract.
    let contract = Contract::from_json(CHECKED_CONTRACT, "the test's contract").unwrap();
    admin
        .codec()
        .registry()
        .register_contract(
            &format!("{}-value", Checked::TOPIC),
            Checked::SCHEMA,
            contract.metadata.as_ref(),
            contract.rule_set.as_ref(),
            false,
        )
        .await
        .unwrap();
    let checked_config = config
        .set("use.latest.version", "true")
        .set("auto.register.schemas", "false");
    let client = Client::from_config(checked_config).unwrap();
    let orders =
        [3u8, 4].map(|n| grocery_stack::sample::milk_order(Uuid::new_v5(&run_id, &[n]), run_id, 1));
    let (checked_order, refused_order) = (orders[0].order_id, orders[1].order_id);
    let landed = send_orders(&admin, &orders).await;
    let group = format!("fulfillment-refused-rule-dlq-{mode}-{run_id}");
    let checked = || {
        // The group reads the first part's orders too: they have no output here.
        move |received: &Received<Order>| {
            let order = &received.event;
            let mut outputs = Outputs::new();
            if [checked_order, refused_order].contains(&order.order_id) {
                let lines = if order.order_id == refused_order {
                    0
                } else {
                    1
                };
                outputs.push(Checked {
                    order_id: order.order_id,
                    lines,
                });
            }
            outputs
        }
    };
    let error = run_until(&client, &group, Duration::from_secs(90), checked(), |_| {
        false
    })
    .await
    .expect_err("the pipeline stops when an output's dead letter is refused");
    eprintln!("{mode}, rule dead letter refused: the pipeline stopped: {error}");
    match &error {
        Error::DeadLetterFailed {
            cause,
            topic,
            source,
        } => {
            assert!(
                matches!(&**cause, Error::RuleFailed { rule, mode: "WRITE", .. } if rule == "has_lines"),
                "{mode}: the rule: {error:?}"
            );
            assert_eq!(topic, CHECKED_DLQ);
            assert!(source.is_refused(), "{mode}: {error:?}");
        }
        other => panic!("{mode}: expected DeadLetterFailed, got {other:?}"),
    }
    assert!(
        committed_past_none(&stack, &group, &landed[1..]),
        "{mode}: nothing committed past the refused order"
    );
    assert!(
        values_on(&stack, CHECKED_DLQ).is_empty(),
        "{mode}: no dead letter yet"
    );
    if transactional {
        assert!(
            values_on(&stack, Checked::TOPIC).is_empty(),
            "{mode}: nothing of the aborted batch visible"
        );
    }

    broker.allow(vec![dlq_write]).await.unwrap();
    let pipeline = run_once_granted(
        &client,
        &group,
        checked,
        |pipeline| {
            let stats = pipeline.stats();
            stats.produced_to(Checked::TOPIC) >= 1
                && stats.outputs_dead_lettered.load(Ordering::Relaxed) >= 1
        },
        |error| matches!(error, Error::DeadLetterFailed { .. }) && error.is_refused(),
    )
    .await;
    assert_eq!(
        pipeline
            .stats()
            .outputs_dead_lettered
            .load(Ordering::Relaxed),
        1
    );
    drop(pipeline);
    assert!(
        committed_past_all(&stack, &group, &landed),
        "{mode}: committed past both orders once granted"
    );
    let letters = values_on(&stack, CHECKED_DLQ);
    let outputs = values_on(&stack, Checked::TOPIC);
    eprintln!(
        "{mode}, rule dead letter granted: {} dead letters, {} checked outputs (read_committed)",
        letters.len(),
        outputs.len()
    );
    assert!(
        !letters.is_empty(),
        "{mode}: the refused output is dead-lettered"
    );
    let letter: serde_json::Value = serde_json::from_slice(&letters[0]).unwrap();
    assert_eq!(
        letter["order_id"],
        refused_order.to_string(),
        "{mode}: {letter}"
    );
    assert_eq!(letter["lines"], 0, "{mode}: {letter}");
    for output in &outputs {
        let output: Checked = admin.codec().decode(output).await.unwrap();
        assert_eq!(
            output.order_id, checked_order,
            "{mode}: only the other order's output"
        );
    }
    assert!(
        !outputs.is_empty(),
        "{mode}: the other order's output is written"
    );
    if transactional {
        assert_eq!(letters.len(), 1, "{mode}: dead-lettered exactly once");
        assert_eq!(
            outputs.len(),
            1,
            "{mode}: the other order's output exactly once"
        );
    }
    drop((client, admin));
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_writes_stop_the_at_least_once_pipeline_and_lose_nothing() {
    refused_writes(false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_writes_stop_the_transactional_pipeline_and_lose_nothing() {
    refused_writes(true).await;
}

/// An output to a topic that does not exist until the test creates it.
#[derive(serde::Serialize, serde::Deserialize)]
struct Late {
    order_id: Uuid,
}

impl Event for Late {
    const TOPIC: &'static str = "broker-pipeline.late";
    const SCHEMA: &'static str = r#"{"type": "record", "name": "Late", "fields": [
        {"name": "order_id", "type": {"type": "string", "logicalType": "uuid"}}]}"#;
    const FULL_NAME: &'static str = "Late";
    fn key(&self) -> String {
        self.order_id.to_string()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_aborting_transactional_pipeline_says_why_until_the_next_commit() {
    let stack = Stack::start_with(StackOptions {
        broker: BrokerKind::Kafka {
            auth: KafkaAuth::None,
        },
        ..grocery_stack::options()
    })
    .await
    .unwrap();
    let admin = stack.client().unwrap();
    let run_id = Uuid::new_v4();
    // librdkafka marks the missing topic as such after a second and looks again every second.
    let config = Config::from_properties_str(&stack.client_properties())
        .unwrap()
        .set(
            "transactional.id",
            format!("fulfillment-late-topic-{run_id}"),
        )
        .set("topic.metadata.propagation.max.ms", "1000")
        .set("topic.metadata.refresh.interval.ms", "1000")
        .set("message.timeout.ms", "5000");
    let client = Client::from_config(config).unwrap();
    let mut options = PipelineOptions::new(format!("fulfillment-late-topic-{run_id}"));
    options.consumer.initial_backoff = Duration::from_millis(100);
    let pipeline = Arc::new(client.pipeline::<Order>(options).await.unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn({
        let pipeline = pipeline.clone();
        async move {
            pipeline
                .run(
                    |received| {
                        vec![Late {
                            order_id: received.event.order_id,
                        }]
                    },
                    async {
                        let _ = stopped.await;
                    },
                )
                .await
        }
    });
    let orders: Vec<Order> = (0..3u8)
        .map(|n| grocery_stack::sample::milk_order(Uuid::new_v5(&run_id, &[n]), run_id, 1))
        .collect();
    send_orders(&admin, &orders).await;
    let stats = pipeline.stats();
    let mut reason = String::new();
    wait_for("the aborting pipeline to say why", || {
        assert!(!task.is_finished(), "the pipeline ended");
        match pipeline.stalled() {
            Some(stalled) if stats.aborted.load(Ordering::Relaxed) >= 2 => {
                reason = stalled;
                true
            }
            _ => false,
        }
    })
    .await;
    eprintln!(
        "{} transactions aborted; stalled: {reason}",
        stats.aborted.load(Ordering::Relaxed)
    );
    assert!(
        reason.contains(Late::TOPIC),
        "the reason names the topic: {reason}"
    );
    assert_eq!(stats.produced_to(Late::TOPIC), 0);

    stack
        .kafka_broker()
        .unwrap()
        .create_topic(Late::TOPIC, 1)
        .await
        .unwrap();
    wait_for("the three outputs committed", || {
        assert!(!task.is_finished(), "the pipeline ended");
        stats.produced_to(Late::TOPIC) >= 3
    })
    .await;
    assert_eq!(
        pipeline.stalled(),
        None,
        "no longer stalled after the commit"
    );
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(60), task)
        .await
        .expect("the pipeline stops within a minute")
        .expect("the task did not panic")
        .expect("the pipeline ends without an error");
    let wanted: BTreeSet<Uuid> = orders.iter().map(|o| o.order_id).collect();
    let counts = committed_counts::<Late>(stack.bootstrap_servers(), admin.codec(), &wanted, |l| {
        l.order_id
    });
    assert_eq!(counts.len(), 3, "every order has its output: {counts:?}");
    assert!(
        counts.values().all(|c| *c == 1),
        "exactly one each: {counts:?}"
    );
    drop((pipeline, client, admin));
    stack.shutdown().await;
}
