//! `/health` and `/metrics` without `--http` (a free port, logged), with the client metrics of
//! librdkafka's statistics: messages received and the consumer lag per assigned partition.

use std::{process::Command, time::Duration};

use grocery_events::{Event as _, PickList};
use test_support::{Output, Process, metric, write_config};
use uuid::Uuid;

const BIN: &str = env!("CARGO_BIN_EXE_picklist-consumer");
const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_health_and_client_metrics_by_default() {
    let stack = grocery_stack::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &stack.client_properties()).unwrap();
    let client = stack.client().unwrap();
    let producer = client.producer().await.unwrap();
    for n in 0..3 {
        let order =
            grocery_stack::sample::milk_order(Uuid::from_u128(n + 500), Uuid::from_u128(1), 1);
        producer
            .send(&grocery_stack::sample::pick_list_for(&order))
            .await
            .unwrap();
    }
    let mut command = Command::new(BIN);
    command
        .arg("--config")
        .arg(&config)
        .args(["--json", "--listen", "127.0.0.1:0"])
        .env("GROCERY_STATISTICS_INTERVAL_MS", "200");
    let mut consumer =
        Process::start("picklist-consumer", &mut command, Output::default()).unwrap();
    let addr = consumer.listening_addr(WAIT).unwrap();
    let http = reqwest::Client::new();
    let get = |path: &str| {
        let request = http.get(format!("http://{addr}{path}"));
        async move { request.send().await.unwrap().text().await.unwrap() }
    };
    assert_eq!(get("/health").await, "ok");
    let lag = |partition: i32| {
        format!(
            "kafka_consumer_lag{{client=\"consumer\",topic=\"{}\",partition=\"{partition}\"}}",
            PickList::TOPIC
        )
    };
    let deadline = tokio::time::Instant::now() + WAIT;
    let metrics = loop {
        let metrics = get("/metrics").await;
        let received = metric(
            &metrics,
            "kafka_client_rx_messages_total{client=\"consumer\"}",
        );
        let drained = (0..3).all(|p| metric(&metrics, &lag(p)) == Some(0.0));
        if received.is_some_and(|n| n >= 3.0) && drained {
            break metrics;
        }
        assert!(tokio::time::Instant::now() < deadline, "{metrics}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        metric(&metrics, "picklist_consumer_shown_total"),
        Some(3.0),
        "{metrics}"
    );
    let status = consumer.terminate(WAIT).unwrap();
    assert!(status.success(), "{status}");
}
