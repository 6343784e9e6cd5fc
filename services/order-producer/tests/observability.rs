//! `/health` and `/metrics` without any flag (a free port, logged), with the client metrics
//! of librdkafka's statistics.

use std::{process::Command, time::Duration};

use test_support::{Output, Process, metric, write_config};

const BIN: &str = env!("CARGO_BIN_EXE_order-producer");
const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulation_serves_health_and_client_metrics_by_default() {
    let stack = grocery_stack::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &stack.client_properties()).unwrap();
    let mut command = Command::new(BIN);
    command
        .arg("--config")
        .arg(&config)
        .args(["--count", "1000000", "--rate", "50"])
        .env("GROCERY_STATISTICS_INTERVAL_MS", "200");
    let mut producer = Process::start("order-producer", &mut command, Output::default()).unwrap();
    let addr = producer.listening_addr(WAIT).unwrap();
    let http = reqwest::Client::new();
    let get = |path: &str| {
        let request = http.get(format!("http://{addr}{path}"));
        async move { request.send().await.unwrap().text().await.unwrap() }
    };
    assert_eq!(get("/health").await, "ok");
    let deadline = tokio::time::Instant::now() + WAIT;
    let metrics = loop {
        let metrics = get("/metrics").await;
        if metric(
            &metrics,
            "kafka_client_tx_messages_total{client=\"producer\"}",
        )
        .is_some_and(|sent| sent > 0.0)
        {
            break metrics;
        }
        assert!(tokio::time::Instant::now() < deadline, "{metrics}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        metrics.contains("order_producer_orders_acked_total"),
        "{metrics}"
    );
    assert!(
        metrics.contains("kafka_client_broker_rtt_avg_seconds{client=\"producer\",broker=\""),
        "{metrics}"
    );
    let status = producer.terminate(WAIT).unwrap();
    assert!(status.success(), "{status}");
}
