//! An order whose schema id the registry does not know (yet) stops the service's progress
//! without dead-lettering it (issue 18): by default fulfillment waits, `/health` answers 503
//! naming the record and the id, and the order gets its pick list once the schema is registered
//! under the id; with `schema.unavailable.action=fail` the service exits 1 naming the id.
//!
//! The local registry gives ids in sequence: the record is framed with the id the next new
//! schema will get, and the schema appears under it when one is registered.

use std::{process::Command, time::Duration};

use grocery_events::{
    Client, Config, ConsumerOptions, Event as _, Order, OrderStatus, PickList, topics,
};
use grocery_store::{Catalog, OrderSimulator};
use local_stack::{Stack, late_schema};
use rdkafka::producer::FutureRecord;
use test_support::{Output, Process, write_config};

const BIN: &str = env!("CARGO_BIN_EXE_fulfillment-service");
const WAIT: Duration = Duration::from_secs(60);

/// Writes `order` framed with the id the next new schema will get (its body followed by a null
/// `late_note`) to the orders topic; returns that id.
async fn send_late(client: &Client, order: &Order) -> u32 {
    let own = client.codec().encode(order).await.unwrap();
    let registry = client.codec().registry();
    // The service's output schemas first, so that its outputs do not take the late id.
    for (topic, schema) in [
        (PickList::TOPIC, PickList::SCHEMA),
        (OrderStatus::TOPIC, OrderStatus::SCHEMA),
    ] {
        registry
            .register(&format!("{topic}-value"), schema)
            .await
            .unwrap();
    }
    let late = late_schema::next_schema_id(registry).await;
    let payload = late_schema::late_record(&own, late);
    let producer = client.producer().await.unwrap();
    let key = order.order_id.to_string();
    producer
        .rdkafka()
        .send(
            FutureRecord::to(topics::ORDERS).key(&key).payload(&payload),
            Duration::from_secs(10),
        )
        .await
        .map_err(|(error, _)| error)
        .unwrap();
    late
}

async fn start(wait_or_fail: &str) -> (Stack, Client, Process, Order, u32, tempfile::TempDir) {
    let stack = grocery_stack::start().await.unwrap();
    let properties = format!(
        "{}schema.unavailable.action={wait_or_fail}\n",
        stack.client_properties()
    );
    let dir = tempfile::tempdir().unwrap();
    let config_file = write_config(dir.path(), &properties).unwrap();
    let client =
        Client::from_config(Config::from_properties_str(&stack.client_properties()).unwrap())
            .unwrap();
    let catalog = Catalog::builtin();
    let order = OrderSimulator::new(5, &catalog).next_order(1_764_000_000_000);
    let late = send_late(&client, &order).await;
    let mut command = Command::new(BIN);
    command
        .arg("--config")
        .arg(&config_file)
        .args(["--listen", "127.0.0.1:0"]);
    let service = Process::start("fulfillment-service", &mut command, Output::default()).unwrap();
    (stack, client, service, order, late, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_says_why_an_order_waits_for_its_schema_then_it_gets_its_pick_list() {
    let (_stack, client, mut service, order, late, _dir) = start("wait").await;
    let addr = service.listening_addr(WAIT).unwrap();
    service
        .stderr()
        .wait_for(WAIT, |line| line.contains("trying the record again"))
        .unwrap();
    let http = reqwest::Client::new();
    let health = http
        .get(format!("http://{addr}/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 503);
    let reason = health.text().await.unwrap();
    println!("/health: {reason}");
    assert!(
        reason.contains(&format!("unknown schema id {late}")),
        "{reason}"
    );
    assert!(reason.contains(topics::ORDERS), "{reason}");

    let registered = client
        .codec()
        .registry()
        .register(
            "late-order-value",
            &late_schema::with_late_note(Order::SCHEMA),
        )
        .await
        .unwrap();
    assert_eq!(registered, late, "the local registry gives ids in sequence");
    let reader = client
        .consumer::<PickList>(ConsumerOptions::new("reader"))
        .await
        .unwrap();
    let pick_list = tokio::time::timeout(WAIT, reader.recv())
        .await
        .expect("the order gets its pick list once its schema is registered")
        .unwrap();
    assert_eq!(pick_list.event.order_id, order.order_id);
    let health = http
        .get(format!("http://{addr}/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.unwrap(), "ok");
    let status = service.terminate(WAIT).unwrap();
    assert!(status.success(), "{status:?}");
    assert!(
        service
            .stderr()
            .all()
            .iter()
            .all(|line| !line.contains("dead-letter topic")),
        "nothing dead-lettered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_fail_the_service_exits_1_naming_the_schema_id() {
    let (_stack, _client, mut service, _order, late, _dir) = start("fail").await;
    let status = service.wait(WAIT).unwrap();
    assert_eq!(status.code(), Some(1), "{status:?}");
    let line = service
        .stderr()
        .wait_for(Duration::from_secs(5), |line| line.contains("error:"))
        .unwrap();
    println!("{line}");
    assert!(
        line.contains(&format!("unknown schema id {late}")),
        "{line}"
    );
}
