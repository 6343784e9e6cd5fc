//! The fulfillment service as a process against the local stack: one pick list and two
//! statuses (RECEIVED, PICKLIST_CREATED) per order, the pick list carrying the order's delivery
//! window; metrics, transactions, bad configuration.

use std::{
    collections::{BTreeMap, BTreeSet},
    process::Command,
    time::Duration,
};

use grocery_events::{Client, Config, ConsumerOptions, OrderState, OrderStatus, PickList};
use grocery_store::{Catalog, OrderSimulator};
use test_support::{Output, Process, metric, write_config};

const BIN: &str = env!("CARGO_BIN_EXE_fulfillment-service");
const WAIT: Duration = Duration::from_secs(60);
const ORDERS: usize = 12;

async fn one_pick_list_per_order(extra_properties: &str) {
    let stack = grocery_stack::start().await.unwrap();
    let properties = format!("{}{extra_properties}", stack.client_properties());
    let dir = tempfile::tempdir().unwrap();
    let config_file = write_config(dir.path(), &properties).unwrap();
    let config = Config::from_properties_str(&stack.client_properties()).unwrap();
    let client = Client::from_config(config.clone()).unwrap();

    let catalog = Catalog::builtin();
    let mut simulator = OrderSimulator::new(3, &catalog);
    let producer = client.producer().await.unwrap();
    let mut order_ids = BTreeSet::new();
    let mut windows = BTreeMap::new();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    for _ in 0..ORDERS {
        let order = simulator.next_order(now);
        order_ids.insert(order.order_id);
        windows.insert(
            order.order_id,
            order
                .delivery_window
                .as_ref()
                .map(|w| (w.start_time, w.end_time)),
        );
        producer.send(&order).await.unwrap();
    }

    let mut command = Command::new(BIN);
    command.arg("--config").arg(&config_file).args([
        "--listen",
        "127.0.0.1:0",
        "--roster",
        "Ana, Ben",
    ]);
    let mut service =
        Process::start("fulfillment-service", &mut command, Output::default()).unwrap();
    let base = format!(
        "http://{}",
        service.listening_addr(Duration::from_secs(60)).unwrap()
    );

    let reader = client
        .consumer::<PickList>(ConsumerOptions::new("reader"))
        .await
        .unwrap();
    let mut seen = BTreeMap::new();
    let mut records = 0;
    tokio::time::timeout(WAIT, async {
        while seen.len() < ORDERS {
            let received = reader.recv().await.unwrap();
            let pick_list = received.event;
            assert_eq!(
                pick_list.picklist_id,
                grocery_store::picklist_id(pick_list.order_id)
            );
            assert!(["Ana", "Ben"].contains(&pick_list.assigned_picker.as_str()));
            assert!(!pick_list.items_to_pick.is_empty());
            seen.insert(pick_list.order_id, pick_list);
            records += 1;
        }
    })
    .await
    .expect("a pick list for every order");
    assert_eq!(seen.keys().copied().collect::<BTreeSet<_>>(), order_ids);
    // Nothing more arrives: exactly one pick list per order.
    let extra = tokio::time::timeout(Duration::from_secs(2), reader.recv()).await;
    assert!(extra.is_err(), "unexpected extra pick list: {extra:?}");
    assert_eq!(records, ORDERS);
    // Each pick list carries its order's delivery window (pick-list schema version 2).
    assert!(
        windows.values().any(Option::is_some),
        "the simulator gives most orders a delivery window"
    );
    for (order_id, window) in &windows {
        let carried = seen[order_id]
            .delivery_window
            .as_ref()
            .map(|w| (w.start_time, w.end_time));
        assert_eq!(&carried, window, "the delivery window of order {order_id}");
    }

    // With each pick list, RECEIVED and PICKLIST_CREATED (the stock check's plan) for its order.
    let statuses = client
        .consumer::<OrderStatus>(ConsumerOptions::new("status-reader"))
        .await
        .unwrap();
    let mut by_id = BTreeMap::new();
    tokio::time::timeout(WAIT, async {
        while by_id.len() < 2 * ORDERS {
            let status = statuses.recv().await.unwrap().event;
            by_id.insert(status.status_id, status);
        }
    })
    .await
    .expect("two statuses for every order");
    for order_id in &order_ids {
        let pick_list = &seen[order_id];
        let received = &by_id[&grocery_store::status_id(*order_id, OrderState::Received)];
        assert_eq!(
            (received.order_id, received.state, received.actor.as_str()),
            (*order_id, OrderState::Received, "fulfillment-service")
        );
        let created = &by_id[&grocery_store::status_id(*order_id, OrderState::PicklistCreated)];
        assert_eq!(created.state, OrderState::PicklistCreated);
        assert_eq!(created.picklist_id, Some(pick_list.picklist_id));
        assert_eq!(created.time, pick_list.created_time);
        assert!(received.time <= created.time);
        let plan: Vec<_> = pick_list
            .items_to_pick
            .iter()
            .map(|l| {
                (
                    l.sku.clone(),
                    l.quantity_to_pick,
                    l.quantity - l.quantity_to_pick,
                )
            })
            .collect();
        let lines: Vec<_> = created
            .lines
            .iter()
            .map(|l| (l.sku.clone(), l.quantity_picked, l.quantity_short))
            .collect();
        assert_eq!(lines, plan);
        let short = plan.iter().any(|(_, _, short)| *short > 0);
        assert_eq!(created.note.is_some(), short, "{created:?}");
    }

    let http = reqwest::Client::new();
    let mut text = String::new();
    let wanted = ORDERS as f64;
    let deadline = tokio::time::Instant::now() + WAIT;
    while tokio::time::Instant::now() < deadline {
        text = http
            .get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if metric(&text, "fulfillment_picklists_produced_total") == Some(wanted)
            && metric(&text, "fulfillment_statuses_produced_total") == Some(2.0 * wanted)
            && metric(&text, "fulfillment_consumer_lag") == Some(0.0)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(
        metric(&text, "fulfillment_orders_consumed_total"),
        Some(wanted),
        "{text}"
    );
    assert_eq!(
        metric(&text, "fulfillment_picklists_produced_total"),
        Some(wanted),
        "{text}"
    );
    assert_eq!(
        metric(&text, "fulfillment_statuses_produced_total"),
        Some(2.0 * wanted),
        "{text}"
    );
    assert_eq!(
        metric(&text, "fulfillment_dead_lettered_total"),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        metric(&text, "fulfillment_processing_latency_seconds_count"),
        Some(wanted),
        "{text}"
    );
    assert_eq!(
        metric(&text, "fulfillment_consumer_lag"),
        Some(0.0),
        "{text}"
    );
    let health = http.get(format!("{base}/health")).send().await.unwrap();
    assert_eq!(health.text().await.unwrap(), "ok");

    let status = service.terminate(Duration::from_secs(60)).unwrap();
    assert!(status.success(), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_pick_list_per_order_with_metrics() {
    one_pick_list_per_order("").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_pick_list_per_order_in_transactions() {
    one_pick_list_per_order("transactional.id=fulfillment-test\n").await;
}

#[test]
fn bad_configuration_exits_2_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "bootstrap.servers=127.0.0.1:1\nschema.registry.url=http://127.0.0.1:1\n\
         basic.auth.credentials.source=USER_INFO\nbasic.auth.user.info=nocolon\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    test_support::assert_config_refused(&out, "basic.auth.user.info");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("nocolon"), "{stderr}");
}
