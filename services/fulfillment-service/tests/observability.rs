//! The consumer lag and the client metrics on `/metrics` come from librdkafka's statistics
//! (no watermark polling): per-partition lag lines, the summed lag gauge, and the traffic of
//! the pipeline's consumer and producer.

use std::{process::Command, time::Duration};

use grocery_events::{Event as _, Order};
use test_support::{Output, Process, metric, write_config};
use uuid::Uuid;

const BIN: &str = env!("CARGO_BIN_EXE_fulfillment-service");
const WAIT: Duration = Duration::from_secs(60);
const ORDERS: u128 = 6;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lag_and_client_metrics_come_from_librdkafka_statistics() {
    let stack = grocery_stack::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &stack.client_properties()).unwrap();
    let client = stack.client().unwrap();
    let producer = client.producer().await.unwrap();
    for n in 0..ORDERS {
        let order =
            grocery_stack::sample::milk_order(Uuid::from_u128(n + 900), Uuid::from_u128(1), 1);
        producer.send(&order).await.unwrap();
    }
    let mut command = Command::new(BIN);
    command
        .arg("--config")
        .arg(&config)
        .args(["--listen", "127.0.0.1:0"])
        .env("GROCERY_STATISTICS_INTERVAL_MS", "200");
    let mut service =
        Process::start("fulfillment-service", &mut command, Output::default()).unwrap();
    let addr = service.listening_addr(WAIT).unwrap();
    let http = reqwest::Client::new();
    let lag = |partition: i32| {
        format!(
            "kafka_consumer_lag{{client=\"consumer\",topic=\"{}\",partition=\"{partition}\"}}",
            Order::TOPIC
        )
    };
    let wanted = ORDERS as f64;
    let deadline = tokio::time::Instant::now() + WAIT;
    let metrics = loop {
        let metrics = http
            .get(format!("http://{addr}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let sent = metric(
            &metrics,
            "kafka_client_tx_messages_total{client=\"producer\"}",
        );
        let read = metric(
            &metrics,
            "kafka_client_rx_messages_total{client=\"consumer\"}",
        );
        let drained = (0..3).all(|p| metric(&metrics, &lag(p)) == Some(0.0));
        if sent.is_some_and(|n| n >= wanted) && read.is_some_and(|n| n >= wanted) && drained {
            break metrics;
        }
        assert!(tokio::time::Instant::now() < deadline, "{metrics}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        metric(&metrics, "fulfillment_consumer_lag"),
        Some(0.0),
        "{metrics}"
    );
    assert!(
        metrics.contains("# TYPE kafka_client_tx_messages counter"),
        "OpenMetrics counter family: {metrics}"
    );
    assert!(metrics.trim_end().ends_with("# EOF"), "{metrics}");
    let status = service.terminate(WAIT).unwrap();
    assert!(status.success(), "{status}");
}

/// With `auto.register.schemas=false` and the output subjects not registered yet, the service
/// waits (no order is skipped), `/health` answers 503 naming the missing subject, and once the
/// subjects are registered the pick list is written and `/health` is 200 again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_names_a_missing_output_subject_until_it_is_registered() {
    use grocery_events::{OrderStatus, PickList};

    let stack = grocery_stack::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let properties = format!(
        "{}\nauto.register.schemas=false\n",
        stack.client_properties()
    );
    let config = write_config(dir.path(), &properties).unwrap();
    // Orders come from a client that registers their schema.
    let client = stack.client().unwrap();
    let producer = client.producer().await.unwrap();
    let order = grocery_stack::sample::milk_order(Uuid::from_u128(700), Uuid::from_u128(1), 1);
    producer.send(&order).await.unwrap();
    let mut command = Command::new(BIN);
    command
        .arg("--config")
        .arg(&config)
        .args(["--listen", "127.0.0.1:0"]);
    let mut service =
        Process::start("fulfillment-service", &mut command, Output::default()).unwrap();
    let addr = service.listening_addr(WAIT).unwrap();
    let http = reqwest::Client::new();
    let get = |path: &'static str| {
        let http = http.clone();
        let url = format!("http://{addr}{path}");
        async move {
            let answer = http.get(url).send().await.unwrap();
            (answer.status().as_u16(), answer.text().await.unwrap())
        }
    };
    let subject = format!("{}-value", OrderStatus::TOPIC);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (status, body) = get("/health").await;
        if status == 503 && body.contains(&subject) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{status} {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let registry = client.codec().registry();
    registry
        .register(&subject, OrderStatus::SCHEMA)
        .await
        .unwrap();
    registry
        .register(&format!("{}-value", PickList::TOPIC), PickList::SCHEMA)
        .await
        .unwrap();
    loop {
        let (status, body) = get("/health").await;
        let (_, metrics) = get("/metrics").await;
        if status == 200 && metric(&metrics, "fulfillment_picklists_produced_total") == Some(1.0) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{status} {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let status = service.terminate(WAIT).unwrap();
    assert!(status.success(), "{status}");
}
