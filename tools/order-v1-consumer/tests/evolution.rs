//! A schema that evolves in flight, both directions in one run on the local stack (mock
//! cluster and the project's Schema Registry).
//!
//! Onto `grocery.orders.v1` go, in this order: old orders from the fixture
//! (`crates/grocery-events/tests/fixtures/orders-v1/`) written with the version-1 types of this
//! crate, so the version-1 writer schema is registered through the registry as version 1 of
//! `grocery.orders.v1-value`; new orders written with today's `grocery_events::Order`, every one
//! with `substitution` and `delivery_window` set (version 2); one more old order. Then:
//! - (a) the new build reads them all: a `grocery_events::Order` consumer (old ones with the new
//!   fields `None`, new ones as sent), and the real `fulfillment-service` process makes a pick
//!   list for every order, the notes of short lines carrying the substitution preference;
//! - (b) the old build, the `order-v1-consumer` process, reads them all: the old ones as the
//!   fixture has them, the new ones without the fields it does not know.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use grocery_events::{ConsumerOptions, DeliveryWindow, Event, PickList, SubstitutionPreference};
use grocery_store::{Catalog, OrderSimulator, PickListBuilder, PickerRoster, order_total_cents};
use serde_json::Value;
use test_support::{Output, Process, write_config};
use uuid::Uuid;

const OLD_CONSUMER: &str = env!("CARGO_BIN_EXE_order-v1-consumer");
const WAIT: Duration = Duration::from_secs(90);
const NEW_ORDERS: usize = 4;
const SUBJECT: &str = "grocery.orders.v1-value";

fn workspace_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the workspace root")
}

/// Builds `fulfillment-service` into the target directory (and profile) this test was built
/// in, and returns its path.
fn fulfillment_service_binary() -> PathBuf {
    let profile_dir = Path::new(OLD_CONSUMER)
        .parent()
        .expect("a profile directory");
    let target_dir = profile_dir.parent().expect("a target directory");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(workspace_dir())
        .args([
            "build",
            "--quiet",
            "-p",
            "fulfillment-service",
            "--target-dir",
        ])
        .arg(target_dir);
    if profile_dir.file_name() == Some("release".as_ref()) {
        command.arg("--release");
    }
    let status = command.status().expect("running cargo build");
    assert!(
        status.success(),
        "cargo build -p fulfillment-service: {status}"
    );
    profile_dir.join("fulfillment-service")
}

/// `text` parsed as JSON (the registry keeps a schema in its own layout).
fn json(text: &str) -> Value {
    serde_json::from_str(text).expect("JSON")
}

/// The fixture's old orders, as JSON values and as the version-1 type.
fn old_orders() -> Vec<(Value, order_v1_consumer::Order)> {
    let path = workspace_dir().join("crates/grocery-events/tests/fixtures/orders-v1/orders.json");
    let text = std::fs::read_to_string(&path).expect("the fixture orders");
    let values: Vec<Value> = serde_json::from_str(&text).expect("fixture orders are JSON");
    values
        .into_iter()
        .map(|value| {
            let order = serde_json::from_value(value.clone()).expect("a version-1 order");
            (value, order)
        })
        .collect()
}

/// New orders from the simulator, each with both version-2 fields set, and one with a line of
/// an out-of-stock item so that its pick list has a line to substitute.
fn new_orders(catalog: &Catalog) -> Vec<grocery_events::Order> {
    let out_of_stock = catalog
        .items()
        .iter()
        .find(|item| item.stock == 0)
        .expect("the built-in catalog has an out-of-stock item");
    let preferences = [
        SubstitutionPreference::SameBrand,
        SubstitutionPreference::NoSubstitutes,
        SubstitutionPreference::AnyBrand,
    ];
    let mut simulator = OrderSimulator::new(12, catalog);
    (0..NEW_ORDERS)
        .map(|i| {
            let order_time = 1_763_780_400_000 + i as i64 * 60_000;
            let mut order = simulator.next_order(order_time);
            order.substitution = Some(preferences[i % preferences.len()]);
            order.delivery_window.get_or_insert(DeliveryWindow {
                start_time: order_time + 3_600_000,
                end_time: order_time + 7_200_000,
            });
            if i == 0 {
                order.items.retain(|line| line.sku != out_of_stock.sku);
                order.items.push(grocery_events::OrderLine {
                    sku: out_of_stock.sku.clone(),
                    name: out_of_stock.name.clone(),
                    quantity: 1,
                    unit_price_cents: out_of_stock.unit_price_cents,
                });
                order.order_total_cents = order_total_cents(&order.items);
            }
            order
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn old_and_new_orders_flow_through_old_and_new_builds() {
    let fulfillment_service = fulfillment_service_binary();
    // The subject's history is this test's: nothing registered at start (the grocery stack
    // registers today's order schema with its contract, for order-producer).
    let stack = local_stack::Stack::start_with(local_stack::StackOptions {
        schemas: Vec::new(),
        ..grocery_stack::options()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config_file = write_config(dir.path(), &stack.client_properties()).unwrap();
    let client = stack.client().unwrap();
    let registry = client.codec().registry();
    let catalog = Catalog::builtin();

    // Old orders first: the version-1 writer schema becomes version 1 of the subject.
    let old = old_orders();
    let new = new_orders(&catalog);
    let producer = client.producer().await.unwrap();
    for (_, order) in &old[..old.len() - 1] {
        producer.send(order).await.unwrap();
    }
    assert_eq!(registry.versions(SUBJECT).await.unwrap(), [1]);
    let v1 = registry.version(SUBJECT, 1).await.unwrap();
    assert_eq!(json(&v1.schema), json(order_v1_consumer::SCHEMA_V1));

    // New orders: today's schema is registered as version 2 (the registry checks it is
    // BACKWARD compatible with version 1).
    for order in &new {
        producer.send(order).await.unwrap();
    }
    assert_eq!(registry.versions(SUBJECT).await.unwrap(), [1, 2]);
    let v2 = registry.version(SUBJECT, 2).await.unwrap();
    assert_eq!(json(&v2.schema), json(grocery_events::Order::SCHEMA));
    assert_ne!(v1.id, v2.id);

    // And an old writer still running beside the new ones.
    producer.send(&old[old.len() - 1].1).await.unwrap();

    let old_ids: BTreeSet<Uuid> = old.iter().map(|(_, o)| o.order_id).collect();
    let new_ids: BTreeSet<Uuid> = new.iter().map(|o| o.order_id).collect();
    let all_ids: BTreeSet<Uuid> = old_ids.union(&new_ids).copied().collect();
    let total = all_ids.len();
    assert_eq!(total, old.len() + NEW_ORDERS);

    // (a) The new build: the real fulfillment service makes a pick list of every order ...
    let mut command = Command::new(&fulfillment_service);
    command
        .arg("--config")
        .arg(&config_file)
        .args(["--listen", "127.0.0.1:0", "--roster", "Ana"]);
    let mut service =
        Process::start("fulfillment-service", &mut command, Output::default()).unwrap();

    // ... and a consumer of today's Order reads old and new orders.
    let reader = client
        .consumer::<grocery_events::Order>(ConsumerOptions::new("new-build"))
        .await
        .unwrap();
    let mut read_new_build = BTreeMap::new();
    tokio::time::timeout(WAIT, async {
        while read_new_build.len() < total {
            let received = reader.recv().await.unwrap();
            let order = received.event;
            assert!(
                read_new_build.insert(order.order_id, order).is_none(),
                "each order read once"
            );
            reader.ack(&received.meta).unwrap();
        }
    })
    .await
    .expect("the new build reads every order within 90 s");
    reader.close().await.unwrap();
    for (value, _) in &old {
        // An old order as today's type: the fixture's values, the new fields None.
        let expected: grocery_events::Order = serde_json::from_value(value.clone()).unwrap();
        assert_eq!(expected.substitution, None);
        assert_eq!(expected.delivery_window, None);
        assert_eq!(read_new_build[&expected.order_id], expected);
    }
    for order in &new {
        assert!(order.substitution.is_some() && order.delivery_window.is_some());
        assert_eq!(&read_new_build[&order.order_id], order);
    }

    let builder = PickListBuilder::new(&catalog, "Ana".parse::<PickerRoster>().unwrap());
    let pick_lists = client
        .consumer::<PickList>(ConsumerOptions::new("pick-lists"))
        .await
        .unwrap();
    let mut picked = BTreeMap::new();
    tokio::time::timeout(WAIT, async {
        while picked.len() < total {
            let received = pick_lists.recv().await.unwrap();
            let pick_list = received.event;
            assert!(
                picked.insert(pick_list.order_id, pick_list).is_none(),
                "one pick list per order"
            );
        }
    })
    .await
    .expect("a pick list for every order within 90 s");
    assert_eq!(picked.keys().copied().collect::<BTreeSet<_>>(), all_ids);
    for (order_id, order) in &read_new_build {
        let expected = builder.build(order, 0);
        assert_eq!(picked[order_id].items_to_pick, expected.items_to_pick);
    }
    // The out-of-stock line of the first new order says what the customer allows; the old
    // orders' short lines say nothing of it (their orders do not say).
    let substitutable = picked[&new[0].order_id]
        .items_to_pick
        .iter()
        .filter_map(|line| line.note.as_deref())
        .filter(|note| note.ends_with("; substitute: same brand ok"))
        .count();
    assert!(substitutable >= 1, "{:?}", picked[&new[0].order_id]);
    let old_notes: Vec<&str> = old_ids
        .iter()
        .flat_map(|id| &picked[id].items_to_pick)
        .filter_map(|line| line.note.as_deref())
        .collect();
    assert!(!old_notes.is_empty(), "the fixture has short lines");
    assert!(old_notes.iter().all(|note| !note.contains("substitut")));
    let status = service.terminate(Duration::from_secs(30)).unwrap();
    assert!(status.success(), "fulfillment-service exited with {status}");

    // (b) The old build reads every order: the new ones without the fields it does not know.
    let mut command = Command::new(OLD_CONSUMER);
    command.arg("--config").arg(&config_file).args([
        "--group",
        "old-build",
        "--count",
        &total.to_string(),
    ]);
    let mut old_consumer =
        Process::start("order-v1-consumer", &mut command, Output::default()).unwrap();
    let status = old_consumer.wait(WAIT).unwrap();
    assert!(status.success(), "order-v1-consumer exited with {status}");
    let lines = old_consumer.stdout().all();
    assert_eq!(lines.len(), total, "{lines:?}");
    let mut read_old_build = BTreeMap::new();
    for line in &lines {
        let value: Value = serde_json::from_str(line).unwrap();
        let id: Uuid = value["order_id"].as_str().unwrap().parse().unwrap();
        assert!(
            read_old_build.insert(id, value).is_none(),
            "each order read once"
        );
    }
    for (value, order) in &old {
        assert_eq!(&read_old_build[&order.order_id], value);
    }
    for order in &new {
        let mut expected = serde_json::to_value(order).unwrap();
        let fields = expected.as_object_mut().unwrap();
        assert!(fields.remove("substitution").is_some());
        assert!(fields.remove("delivery_window").is_some());
        assert_eq!(read_old_build[&order.order_id], expected);
    }

    println!(
        "evolution: wrote {} version-1 and {} version-2 orders (schema ids {} and {}); \
         the new build read {} ({} with the new fields None), fulfillment-service made {} pick \
         lists; the old build read {} ({} with the new fields dropped)",
        old.len(),
        new.len(),
        v1.id,
        v2.id,
        read_new_build.len(),
        old.len(),
        picked.len(),
        read_old_build.len(),
        new.len(),
    );
}
