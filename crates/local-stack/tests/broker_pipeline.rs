//! The library's `Pipeline` on the real broker with KIP-848 consumer groups
//! (`group.protocol=consumer`, what Confluent recommends): instances join and leave a group
//! while orders flow, in both modes, and the output topic is checked with a `read_committed`
//! reader: every order has its pick list; in transactional mode none twice. And one order
//! becoming events of two types (a pick list and a status): an aborted transaction hides both.
//!
//! Built only with the `real-broker` feature:
//! `cargo test -p local-stack --features real-broker --test broker_pipeline`.

use std::{
    collections::BTreeSet,
    sync::{Arc, atomic::Ordering},
    time::{Duration, Instant},
};

use avro_events::Codec;
use grocery_events::{
    Client, Config, Event, Order, OrderState, OrderStatus, Outputs, PickList, Pipeline,
    PipelineOptions, topics,
};
use local_stack::{BrokerKind, KafkaAuth, Stack, StackOptions, verify::committed_counts};
use rdkafka::{
    ClientConfig, Message,
    consumer::{BaseConsumer, Consumer as _},
};
use tokio::sync::oneshot;
use uuid::Uuid;

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const ORDERS: u32 = 3_000;

fn order(run: Uuid, n: u32) -> Order {
    grocery_stack::sample::milk_order(Uuid::new_v5(&run, &n.to_be_bytes()), run, 1)
}

fn pick_list(order: &Order) -> PickList {
    grocery_stack::sample::pick_list_for(order)
}

/// A pipeline instance running on its own task until stopped.
struct Instance {
    pipeline: Arc<Pipeline<Order>>,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<grocery_events::Result<()>>,
}

impl Instance {
    /// An instance as a fulfillment service runs it: its own client from `config`.
    async fn start(config: Config, group: &str) -> Self {
        let client = Client::from_config(config).unwrap();
        let pipeline = Arc::new(
            client
                .pipeline::<Order>(PipelineOptions::new(group))
                .await
                .unwrap(),
        );
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn({
            let pipeline = pipeline.clone();
            async move {
                pipeline
                    .run(|received| vec![pick_list(&received.event)], async {
                        let _ = stopped.await;
                    })
                    .await
            }
        });
        Self {
            pipeline,
            stop,
            task,
        }
    }

    /// Waits until this instance owns at least one partition.
    async fn wait_assigned(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self
            .pipeline
            .consumer()
            .context()
            .owned_partitions()
            .is_empty()
        {
            assert!(Instant::now() < deadline, "no partition assigned in 60 s");
            assert!(!self.task.is_finished(), "the instance ended");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the instance and returns how many inputs it consumed; it must end cleanly.
    async fn stop(self) -> u64 {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(60), self.task)
            .await
            .expect("the instance stops within a minute")
            .expect("the task did not panic")
            .expect("the instance ends without an error");
        self.pipeline.stats().consumed.load(Ordering::Relaxed)
    }
}

/// Waits until the instances (plus `already` from stopped ones) consumed at least `at_least`.
async fn wait_consumed(instances: &[&Instance], already: u64, at_least: u64) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let consumed: u64 = already
            + instances
                .iter()
                .map(|i| i.pipeline.stats().consumed.load(Ordering::Relaxed))
                .sum::<u64>();
        if consumed >= at_least {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "only {consumed} of {at_least} consumed in 120 s"
        );
        for instance in instances {
            assert!(!instance.task.is_finished(), "an instance ended early");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn scale_run(transactional: bool) {
    let _serial = SERIAL.lock().await;
    let stack = Stack::start_with(StackOptions {
        broker: BrokerKind::Kafka {
            auth: KafkaAuth::None,
        },
        ..grocery_stack::options()
    })
    .await
    .unwrap();
    let run = Uuid::new_v4();
    let base = Config::from_properties_str(&stack.client_properties())
        .unwrap()
        .set("group.protocol", "consumer");
    let client = Client::from_config(base.clone()).unwrap();
    let group = format!("fulfillment-kip848-{}", run.simple());
    let config_for = |instance: u32| {
        if transactional {
            base.clone()
                .set("transactional.id", format!("fulfillment-kip848-{instance}"))
        } else {
            base.clone()
        }
    };

    let producer = client.producer().await.unwrap();
    let send = |range: std::ops::Range<u32>| {
        let producer = &producer;
        async move {
            let mut pending = Vec::new();
            for n in range {
                pending.push(
                    producer
                        .enqueue_to(topics::ORDERS, &order(run, n))
                        .await
                        .unwrap(),
                );
            }
            for delivery in pending {
                delivery.await.unwrap();
            }
        }
    };
    let third_of = ORDERS / 3;

    // Two instances share the group, then a third joins under load, then two leave.
    let first = Instance::start(config_for(1), &group).await;
    let second = Instance::start(config_for(2), &group).await;
    first.wait_assigned().await;
    second.wait_assigned().await;
    send(0..third_of).await;
    wait_consumed(&[&first, &second], 0, u64::from(third_of) / 2).await;
    let third = Instance::start(config_for(3), &group).await;
    third.wait_assigned().await;
    send(third_of..2 * third_of).await;
    wait_consumed(&[&first, &second, &third], 0, u64::from(third_of)).await;
    wait_consumed(&[&third], 0, 1).await;
    let mut stopped = vec![second.stop().await];
    stopped.push(third.stop().await);
    send(2 * third_of..ORDERS).await;
    let wanted: BTreeSet<Uuid> = (0..ORDERS).map(|n| order(run, n).order_id).collect();
    let counts =
        committed_counts::<PickList>(stack.bootstrap_servers(), client.codec(), &wanted, |p| {
            p.order_id
        });
    let consumed_last = first.stop().await;
    let missing = wanted.iter().filter(|id| !counts.contains_key(id)).count();
    let duplicates: u32 = counts.values().map(|c| c - 1).sum();
    eprintln!(
        "KIP-848 scale ({}): {} orders, {} with a pick list, {} missing, {} duplicate pick lists on \
         the topic; consumed by the instances that left: {:?}, by the one that stayed: {}",
        if transactional {
            "transactional"
        } else {
            "at-least-once"
        },
        ORDERS,
        counts.len(),
        missing,
        duplicates,
        stopped,
        consumed_last
    );
    assert_eq!(missing, 0, "every order has its pick list");
    if transactional {
        assert_eq!(
            duplicates, 0,
            "exactly once on the topic in transactional mode"
        );
    }
    assert!(
        stopped.iter().all(|c| *c > 0),
        "each instance that left had processed orders: {stopped:?}"
    );
    drop(producer);
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kip848_group_scales_under_load_at_least_once() {
    scale_run(false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kip848_group_scales_under_load_exactly_once_in_transactions() {
    scale_run(true).await;
}

/// An event whose subject is never registered: the pipeline's client does not register
/// schemas (`auto.register.schemas=false`), so encoding it fails with `SchemaNotRegistered`, an
/// error that may pass, which aborts the transaction it was to join (the batch is read again).
/// An output that can never be encoded (a value that does not fit its schema) would end the
/// run instead.
#[derive(serde::Serialize, serde::Deserialize)]
struct Unregistered {
    n: i32,
}

impl Event for Unregistered {
    const TOPIC: &'static str = "broker-pipeline.unregistered";
    const SCHEMA: &'static str =
        r#"{"type": "record", "name": "Unregistered", "fields": [{"name": "n", "type": "int"}]}"#;
    const FULL_NAME: &'static str = "Unregistered";
    fn key(&self) -> String {
        self.n.to_string()
    }
}

fn received_status(order: &Order) -> OrderStatus {
    OrderStatus {
        status_id: Uuid::new_v5(&order.order_id, b"RECEIVED"),
        order_id: order.order_id,
        state: OrderState::Received,
        time: order.order_time,
        actor: "broker-pipeline-test".into(),
        picklist_id: None,
        lines: Vec::new(),
        note: None,
    }
}

/// The order ids of the records of `run` on `topic` as a reader with `isolation` sees them,
/// read until at least `at_least` are there and the topic stays quiet.
fn order_ids_on<E: Event>(
    stack: &Stack,
    codec: &Codec,
    isolation: &str,
    wanted: &BTreeSet<Uuid>,
    at_least: usize,
    order_id: impl Fn(&E) -> Uuid,
) -> Vec<Uuid> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", stack.bootstrap_servers())
        .set("group.id", format!("verify-{}", Uuid::new_v4()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("isolation.level", isolation)
        .create()
        .unwrap();
    consumer.subscribe(&[E::TOPIC]).unwrap();
    let runtime = tokio::runtime::Handle::current();
    let mut ids = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut quiet = 0;
    while Instant::now() < deadline && quiet < 4 {
        match consumer.poll(Duration::from_millis(500)) {
            Some(Ok(message)) => {
                quiet = 0;
                let payload = message.payload().unwrap_or_default().to_vec();
                let event: E =
                    tokio::task::block_in_place(|| runtime.block_on(codec.decode::<E>(&payload)))
                        .unwrap();
                if wanted.contains(&order_id(&event)) {
                    ids.push(order_id(&event));
                }
            }
            Some(Err(e)) => panic!("reading {}: {e}", E::TOPIC),
            None if ids.len() >= at_least => quiet += 1,
            None => {}
        }
    }
    ids
}

#[tokio::test(flavor = "multi_thread")]
async fn an_aborted_transaction_hides_the_outputs_of_every_type() {
    const COUNT: u32 = 20;
    let _serial = SERIAL.lock().await;
    let stack = Stack::start_with(StackOptions {
        broker: BrokerKind::Kafka {
            auth: KafkaAuth::None,
        },
        ..grocery_stack::options()
    })
    .await
    .unwrap();
    let run = Uuid::new_v4();
    // The outputs' subjects registered beforehand by a client that registers; the pipeline's
    // does not, so the unregistered output's subject stays unregistered.
    let registering =
        Client::from_config(Config::from_properties_str(&stack.client_properties()).unwrap())
            .unwrap();
    for encoded in [
        registering.codec().encode(&pick_list(&order(run, 0))).await,
        registering
            .codec()
            .encode(&received_status(&order(run, 0)))
            .await,
    ] {
        encoded.unwrap();
    }
    let config = Config::from_properties_str(&stack.client_properties())
        .unwrap()
        .set("transactional.id", format!("fulfillment-two-types-{run}"))
        .set("auto.register.schemas", "false");
    let client = Client::from_config(config).unwrap();
    let producer = client.producer().await.unwrap();
    for n in 0..COUNT {
        producer.send(&order(run, n)).await.unwrap();
    }
    // One long transaction: it is still open when its first outputs reach the log.
    let mut options = PipelineOptions::new(format!("fulfillment-{run}"));
    options.batch_linger = Duration::from_secs(20);
    let pipeline = Arc::new(client.pipeline::<Order>(options).await.unwrap());
    let failing = order(run, COUNT).order_id;
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn({
        let pipeline = pipeline.clone();
        async move {
            let mut failed = false;
            pipeline
                .run(
                    move |received| {
                        let order = &received.event;
                        let mut outputs = Outputs::new();
                        outputs.push(received_status(order)).push(pick_list(order));
                        // The last order, the first time only: its batch cannot be written.
                        if order.order_id == failing && !failed {
                            failed = true;
                            outputs.push(Unregistered { n: 1 });
                        }
                        outputs
                    },
                    async {
                        let _ = stopped.await;
                    },
                )
                .await
        }
    });

    // The open transaction's outputs of both types are in the log (read_uncommitted)…
    let first: BTreeSet<Uuid> = (0..COUNT).map(|n| order(run, n).order_id).collect();
    let codec = client.codec();
    let count = COUNT as usize;
    let open_lists =
        order_ids_on::<PickList>(&stack, codec, "read_uncommitted", &first, count, |p| {
            p.order_id
        });
    let open_statuses =
        order_ids_on::<OrderStatus>(&stack, codec, "read_uncommitted", &first, count, |s| {
            s.order_id
        });
    assert_eq!((open_lists.len(), open_statuses.len()), (count, count));
    let stats = pipeline.stats();
    assert_eq!(stats.transactions.load(Ordering::Relaxed), 0, "still open");
    // …when the order that cannot be written joins it: the transaction is aborted, its orders
    // read again and their outputs committed in the next one.
    producer.send(&order(run, COUNT)).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while stats.produced_to(PickList::TOPIC) <= u64::from(COUNT) {
        assert!(
            Instant::now() < deadline,
            "only {} pick lists committed in 120 s",
            stats.produced_to(PickList::TOPIC)
        );
        assert!(!task.is_finished(), "the pipeline ended");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(60), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        stats.aborted.load(Ordering::Relaxed),
        1,
        "one batch aborted"
    );
    assert_eq!(stats.produced_to(OrderStatus::TOPIC), u64::from(COUNT) + 1);

    let all: BTreeSet<Uuid> = (0..=COUNT).map(|n| order(run, n).order_id).collect();
    let mut committed_lists =
        order_ids_on::<PickList>(&stack, codec, "read_committed", &all, count + 1, |p| {
            p.order_id
        });
    let mut committed_statuses =
        order_ids_on::<OrderStatus>(&stack, codec, "read_committed", &all, count + 1, |s| {
            s.order_id
        });
    let logged_lists = order_ids_on::<PickList>(
        &stack,
        codec,
        "read_uncommitted",
        &all,
        2 * count + 1,
        |p| p.order_id,
    );
    eprintln!(
        "two types, one aborted batch: read_committed sees {} pick lists and {} statuses of {} \
         orders; the log holds {} pick lists",
        committed_lists.len(),
        committed_statuses.len(),
        count + 1,
        logged_lists.len()
    );
    committed_lists.sort_unstable();
    committed_statuses.sort_unstable();
    let once: Vec<Uuid> = all.into_iter().collect();
    assert_eq!(committed_lists, once, "each pick list once, none aborted");
    assert_eq!(committed_statuses, once, "each status once, none aborted");
    drop(producer);
    stack.shutdown().await;
}
