//! The latest-state writer and readers when things go wrong, on a real Apache Kafka broker
//! (SASL PLAIN, each service under its own identity and the ACLs of
//! `grocery_stack::service_acls`):
//!
//! - a second Order API fences the first one's state writer: the first says so (an ERROR line
//!   naming the fencing, `order_api_state_writer_stopped` 1) and its view goes on answering
//!   every order as the second's does; the second writes the state from then on;
//! - an Order API whose state `transactional.id` the brokers refuse (never granted) stays up:
//!   its view starts from the state, it says why it writes none, and the running writer is not
//!   disturbed;
//! - after `grocery.order-status.v1` is repartitioned (3 → 6 partitions, the state topic left at
//!   3), an Order API running across it finds the new partitions and reads them (its writer
//!   stops), and the Order API and picklist-consumer started afterwards see the two counts
//!   differ, say so naming both, and read every status instead of the state: their views equal
//!   those of instances asked to read every status, and no state is written.
//!
//! Built only with the `real-broker` feature:
//! `cargo test -p xtask --features real-broker --test order_state_failures`.

mod order_api_support;

use std::time::Duration;

use grocery_events::{Client, Config, topics};
use grocery_stack::{ADMIN, ORDER_PRODUCER, PICKLIST_CONSUMER};
use grocery_store::{Catalog, OrderSimulator, PickListBuilder, PickerRoster};
use order_api_support::{
    WAIT, binaries, histories, kafka_stack, properties, shown_board, start, start_picklist, stop,
    walk,
};
use test_support::{http_get, metric, wait_metric};
use uuid::Uuid;

/// The Order API's arguments: its own orders' `transactional.id`, the view's start, and the
/// state writer's `transactional.id`.
fn api_args(props: &std::path::Path, id: &str, from: &str, state_id: &str) -> Vec<String> {
    [
        "--config",
        props.to_str().unwrap(),
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--transactional-id",
        id,
        "--view-from",
        from,
        "--state-transactional-id",
        state_id,
    ]
    .map(str::to_owned)
    .into()
}

/// Orders and what sends their records.
struct Shop<'a> {
    orders: Vec<grocery_events::Order>,
    builder: PickListBuilder<'a>,
    producer: grocery_events::Producer,
    /// Status records sent so far.
    sent: u64,
}

impl<'a> Shop<'a> {
    async fn new(admin: &Client, catalog: &'a Catalog, orders: usize) -> Self {
        let mut simulator = OrderSimulator::new(11, catalog);
        let orders = (0..orders)
            .map(|i| simulator.next_order(1_700_000_000_000 + i as i64 * 1000))
            .collect();
        Self {
            orders,
            builder: PickListBuilder::new(catalog, PickerRoster::default()),
            producer: admin.producer().await.unwrap(),
            sent: 0,
        }
    }

    fn ids(&self) -> Vec<Uuid> {
        self.orders.iter().map(|o| o.order_id).collect()
    }

    /// Sends the pick list (when `pick_list`) and the statuses of orders `range`, each walked
    /// to `steps(i)` staff steps; statuses sent before are sent again (repeats).
    async fn send(
        &mut self,
        range: std::ops::Range<usize>,
        pick_list: bool,
        steps: impl Fn(usize) -> usize,
    ) {
        for i in range {
            let (list, statuses) = walk(&self.orders[i], &self.builder, steps(i));
            if pick_list {
                self.producer.send(&list).await.unwrap();
            }
            for status in statuses {
                self.producer.send(&status).await.unwrap();
                self.sent += 1;
            }
        }
    }
}

/// Waits until the Order API at `addr` is ready, then returns how many status records it has
/// read (those on the topic at its start that the state did not cover).
fn ready(addr: &str) -> f64 {
    wait_metric(addr, "order_api_view_ready", WAIT, |v| v == 1.0).unwrap();
    value(addr, "order_api_status_records_total")
}

/// Waits until the Order API at `addr` has read `count` status records in all.
fn read(addr: &str, count: f64) {
    wait_metric(addr, "order_api_status_records_total", WAIT, |n| n >= count).unwrap();
}

fn value(addr: &str, series: &str) -> f64 {
    let text = http_get(addr, "/metrics").unwrap();
    metric(&text, series).unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fenced_or_refused_state_writer_stops_visibly_and_its_view_goes_on_answering() {
    const ORDERS: usize = 30;
    /// Orders placed only once the third instance is up.
    const LATE: usize = 5;
    let stack = kafka_stack().await;
    let dir = tempfile::tempdir().unwrap();
    let api_props = properties(&stack, dir.path(), ORDER_PRODUCER);
    let admin_props = properties(&stack, dir.path(), ADMIN);
    let admin = Client::from_config(Config::from_file(&admin_props).unwrap()).unwrap();
    let binaries = binaries();
    let catalog = Catalog::builtin();
    let mut shop = Shop::new(&admin, &catalog, ORDERS + LATE).await;
    let all = shop.ids();
    let ids = &all[..ORDERS];
    shop.send(0..ORDERS / 2, true, |i| i % 3).await;

    // The first instance writes the state of every order it has seen (the state topic is
    // empty: it reads every status).
    let args = api_args(&api_props, "order-api-a", "state", "order-api-state");
    let (first, first_addr) = start("order-api-first", &binaries.order_producer, &args);
    ready(&first_addr);
    read(&first_addr, shop.sent as f64);
    wait_metric(&first_addr, "order_api_state_written_total", WAIT, |n| {
        n >= (ORDERS / 2) as f64
    })
    .unwrap();
    assert_eq!(value(&first_addr, "order_api_state_writer_stopped"), 0.0);

    // The second, with the same state transactional.id, fences the first's writer as it
    // starts; the first notices at its next write, which the statuses sent now cause.
    let args = api_args(&api_props, "order-api-b", "state", "order-api-state");
    let (second, second_addr) = start("order-api-second", &binaries.order_producer, &args);
    let bases = [ready(&first_addr), ready(&second_addr)];
    let written_before = value(&second_addr, "order_api_state_written_total");
    let sent_before = shop.sent;
    shop.send(ORDERS / 3..ORDERS, true, |_| 3).await;
    let tail = (shop.sent - sent_before) as f64;
    wait_metric(&first_addr, "order_api_state_writer_stopped", WAIT, |v| {
        v == 1.0
    })
    .unwrap();
    let line = first
        .stderr()
        .wait_for(WAIT, |l| l.contains("the order state writer stopped"))
        .unwrap();
    assert!(
        line.contains("ERROR") && line.contains("fenced by a newer Order API instance"),
        "{line}"
    );
    // The first's view goes on: it reads every status and answers as the second does.
    read(&first_addr, bases[0] + tail);
    read(&second_addr, bases[1] + tail);
    wait_metric(&second_addr, "order_api_state_written_total", WAIT, |n| {
        n > written_before
    })
    .unwrap();
    assert_eq!(value(&second_addr, "order_api_state_writer_stopped"), 0.0);
    let want = histories(&second_addr, ids);
    assert_eq!(histories(&first_addr, ids), want);
    // The statuses sent after the fencing are in the first's view: those orders are READY.
    for id in &ids[ORDERS / 3..] {
        assert_eq!(want[id]["state"], "READY", "{}", want[id]);
    }

    // A third whose state transactional.id is not granted (outside `order-api-`): its writer
    // cannot start, it says so, and the instance stays up, its view from the state.
    let args = api_args(&api_props, "order-api-c", "state", "state-not-granted");
    let (third, third_addr) = start("order-api-refused", &binaries.order_producer, &args);
    let line = third
        .stderr()
        .wait_for(WAIT, |l| l.contains("the order state writer cannot start"))
        .unwrap();
    assert!(
        line.contains("ERROR") && line.contains("state-not-granted"),
        "{line}"
    );
    ready(&third_addr);
    assert_eq!(value(&third_addr, "order_api_state_writer_stopped"), 1.0);
    assert!(value(&third_addr, "order_api_state_records_total") > 0.0);
    assert_eq!(value(&third_addr, "order_api_view_from_history"), 0.0);
    assert_eq!(histories(&third_addr, ids), want);
    // The refused writer fenced no one: the second still writes the state of new orders, and
    // every view follows them.
    let addrs = [&first_addr, &second_addr, &third_addr];
    let bases = addrs.map(|addr| ready(addr));
    let written = value(&second_addr, "order_api_state_written_total");
    let sent_before = shop.sent;
    shop.send(ORDERS..ORDERS + LATE, true, |i| i % 4).await;
    let late = (shop.sent - sent_before) as f64;
    wait_metric(&second_addr, "order_api_state_written_total", WAIT, |n| {
        n >= written + LATE as f64
    })
    .unwrap();
    assert_eq!(value(&second_addr, "order_api_state_writer_stopped"), 0.0);
    for (addr, base) in addrs.iter().zip(bases) {
        read(addr, base + late);
    }
    let want = histories(&second_addr, &all);
    assert_eq!(histories(&first_addr, &all), want);
    assert_eq!(histories(&third_addr, &all), want);
    stop(third);
    stop(second);
    stop(first);
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repartitioned_status_topic_is_read_whole_not_handed_over_from_the_state() {
    use rdkafka::{
        ClientConfig,
        admin::{AdminClient, AdminOptions, NewPartitions},
        client::DefaultClientContext,
    };

    const ORDERS: usize = 40;
    let stack = kafka_stack().await;
    let dir = tempfile::tempdir().unwrap();
    let api_props = properties(&stack, dir.path(), ORDER_PRODUCER);
    let picklist_props = properties(&stack, dir.path(), PICKLIST_CONSUMER);
    let admin_props = properties(&stack, dir.path(), ADMIN);
    let admin = Client::from_config(Config::from_file(&admin_props).unwrap()).unwrap();
    let binaries = binaries();
    let catalog = Catalog::builtin();
    let mut shop = Shop::new(&admin, &catalog, ORDERS).await;
    let ids = shop.ids();
    shop.send(0..ORDERS / 2, true, |i| i % 3).await;

    // The state written while both topics have 3 partitions, by an instance that goes on
    // running across the repartition.
    let args = api_args(&api_props, "order-api-a", "state", "order-api-state");
    let (live, live_addr) = start("order-api-live", &binaries.order_producer, &args);
    ready(&live_addr);
    read(&live_addr, shop.sent as f64);
    wait_metric(&live_addr, "order_api_state_written_total", WAIT, |n| {
        n >= (ORDERS / 2) as f64
    })
    .unwrap();

    // The status topic grows to 6 partitions; the state topic stays at 3.
    let kafka: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", stack.bootstrap_servers())
        .create()
        .unwrap();
    let grown = kafka
        .create_partitions(
            [&NewPartitions::new(topics::ORDER_STATUS, 6)],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
        )
        .await
        .unwrap();
    assert!(grown.iter().all(Result::is_ok), "{grown:?}");
    // A new producer, which sees the 6 partitions at once.
    shop.producer = admin.producer().await.unwrap();
    // Statuses after the repartition: old orders moving on and new orders, some on the new
    // partitions.
    shop.send(ORDERS / 4..ORDERS, true, |i| (i + 1) % 4).await;
    let on_new: i64 = {
        use rdkafka::consumer::{BaseConsumer, Consumer as _};
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", stack.bootstrap_servers())
            .create()
            .unwrap();
        (3..6)
            .map(|p| {
                let (low, high) = consumer
                    .fetch_watermarks(topics::ORDER_STATUS, p, Duration::from_secs(30))
                    .unwrap();
                high - low
            })
            .sum()
    };
    assert!(on_new > 0, "no status on the new partitions");

    // The instance that ran across the repartition finds the new partitions and reads them;
    // its writer stops (its records of their statuses would not land on their numbers).
    let line = live
        .stderr()
        .wait_for(WAIT, |l| {
            l.contains("grocery.order-status.v1 now has 6 partitions")
        })
        .unwrap();
    assert!(line.contains("WARN"), "{line}");
    read(&live_addr, shop.sent as f64);
    assert!(
        live.stderr()
            .contains("the order state writer stopped: grocery.order-status.v1 was repartitioned")
    );
    assert_eq!(value(&live_addr, "order_api_state_writer_stopped"), 1.0);

    // From state and from history, side by side.
    let args = api_args(&api_props, "order-api-b", "state", "order-api-state");
    let (from_state, state_addr) = start("order-api-state", &binaries.order_producer, &args);
    let args = api_args(&api_props, "order-api-c", "history", "order-api-state");
    let (from_history, history_addr) = start("order-api-history", &binaries.order_producer, &args);
    let line = from_state
        .stderr()
        .wait_for(WAIT, |l| {
            l.contains("partitions and grocery.order-status.v1 has")
        })
        .unwrap();
    assert!(
        line.contains("WARN")
            && line.contains(
                "grocery.order-state.v1 has 3 partitions and grocery.order-status.v1 has 6"
            ),
        "{line}"
    );
    // Both read every status: the one asked to start from the state too.
    for addr in [&state_addr, &history_addr] {
        ready(addr);
        read(addr, shop.sent as f64);
    }
    assert_eq!(value(&state_addr, "order_api_view_from_history"), 1.0);
    assert_eq!(value(&state_addr, "order_api_state_writer_stopped"), 1.0);
    assert_eq!(value(&state_addr, "order_api_state_records_total"), 0.0);
    assert_eq!(value(&state_addr, "order_api_state_written_total"), 0.0);
    let want = histories(&history_addr, &ids);
    assert_eq!(histories(&state_addr, &ids), want);
    assert_eq!(histories(&live_addr, &ids), want);
    stop(from_state);
    stop(from_history);
    stop(live);

    // picklist-consumer: the same check at its restore, the board equal to a history restore.
    let mut boards = Vec::new();
    for from in ["state", "history"] {
        let (consumer, addr, restored) = start_picklist(&picklist_props, from);
        if from == "state" {
            assert!(
                consumer.stderr().contains(
                    "grocery.order-state.v1 has 3 partitions and grocery.order-status.v1 has 6"
                ),
                "{restored}"
            );
        }
        boards.push(shown_board(&addr, ids.len()).await);
        stop(consumer);
    }
    assert_eq!(boards[0].len(), ids.len(), "{:?}", boards[0]);
    assert_eq!(boards[0], boards[1]);
    stack.shutdown().await;
}
