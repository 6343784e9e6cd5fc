//! A pick list whose schema id the registry does not know (yet) is waited for, not
//! dead-lettered (issue 18): `/health` answers 503 naming the record and the id until the
//! schema is registered under the id, then the pick list is shown.
//!
//! The local registry gives ids in sequence: the record is framed with the id the next new
//! schema will get, and the schema appears under it when one is registered.

use std::{process::Command, time::Duration};

use grocery_events::{Event as _, OrderStatus, PickList, topics};
use local_stack::late_schema;
use rdkafka::producer::FutureRecord;
use test_support::{Output, Process, write_config};
use uuid::Uuid;

const BIN: &str = env!("CARGO_BIN_EXE_picklist-consumer");
const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_says_why_a_pick_list_waits_for_its_schema_then_it_is_shown() {
    let stack = grocery_stack::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &stack.client_properties()).unwrap();
    let client = stack.client().unwrap();
    let order = grocery_stack::sample::milk_order(Uuid::from_u128(900), Uuid::from_u128(1), 2);
    let pick_list = grocery_stack::sample::pick_list_for(&order);
    let registry = client.codec().registry();
    let own = client.codec().encode(&pick_list).await.unwrap();
    registry
        .register(
            &format!("{}-value", OrderStatus::TOPIC),
            OrderStatus::SCHEMA,
        )
        .await
        .unwrap();
    let late = late_schema::next_schema_id(registry).await;
    let payload = late_schema::late_record(&own, late);
    let key = order.order_id.to_string();
    client
        .producer()
        .await
        .unwrap()
        .rdkafka()
        .send(
            FutureRecord::to(topics::PICKLISTS)
                .key(&key)
                .payload(&payload),
            Duration::from_secs(10),
        )
        .await
        .map_err(|(error, _)| error)
        .unwrap();

    let mut command = Command::new(BIN);
    command
        .arg("--config")
        .arg(&config)
        .args(["--json", "--listen", "127.0.0.1:0"]);
    let mut consumer =
        Process::start("picklist-consumer", &mut command, Output::default()).unwrap();
    let addr = consumer.listening_addr(WAIT).unwrap();
    // The restore's replay meets the record too and waits for it as well; `/health` speaks
    // for the live consumer, which meets it once it has joined its group.
    let http = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    let reason = loop {
        let health = http
            .get(format!("http://{addr}/health"))
            .send()
            .await
            .unwrap();
        if health.status() == 503 {
            break health.text().await.unwrap();
        }
        assert_eq!(health.status(), 200);
        assert!(
            tokio::time::Instant::now() < deadline,
            "/health never said the consumer waits"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    println!("/health: {reason}");
    assert!(
        reason.contains(&format!("unknown schema id {late}")),
        "{reason}"
    );
    assert!(reason.contains(topics::PICKLISTS), "{reason}");

    let registered = registry
        .register(
            &format!("late-{}-value", PickList::TOPIC),
            &late_schema::with_late_note(PickList::SCHEMA),
        )
        .await
        .unwrap();
    assert_eq!(registered, late, "the local registry gives ids in sequence");
    consumer
        .stdout()
        .wait_for(WAIT, |line| line.contains(&key))
        .expect("the pick list is shown once its schema is registered");
    let health = http
        .get(format!("http://{addr}/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.unwrap(), "ok");
    let status = consumer.terminate(WAIT).unwrap();
    assert!(status.success(), "{status:?}");
}
