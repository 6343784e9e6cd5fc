//! The HTTP Order API as a process against the local stack.

use std::{process::Command, sync::Arc, time::Duration};

use grocery_events::{Codec, Config, Consumer, ConsumerOptions, Order};
use local_stack::Stack;
use serde_json::{Value, json};
use test_support::{Output, Process, write_config};

const BIN: &str = env!("CARGO_BIN_EXE_order-producer");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepts_valid_orders_and_rejects_bad_ones() {
    let stack = Stack::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &stack.client_properties()).unwrap();
    let mut command = Command::new(BIN);
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config);
    let mut server = Process::start("order-producer", &mut command, Output::default()).unwrap();
    let base = format!(
        "http://{}",
        server.listening_addr(Duration::from_secs(60)).unwrap()
    );
    let http = reqwest::Client::new();

    let health = http.get(format!("{base}/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.unwrap(), "ok");

    let sku = grocery_store::Catalog::builtin().items()[0].sku.clone();
    let valid = json!({ "items": [{ "sku": sku, "quantity": 2 }] });
    let response = http
        .post(format!("{base}/orders"))
        .json(&valid)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let accepted: Value = response.json().await.unwrap();
    let order_id = accepted["order_id"].as_str().unwrap().to_owned();
    assert!(accepted["partition"].as_i64().unwrap() >= 0, "{accepted}");
    assert!(accepted["offset"].as_i64().unwrap() >= 0, "{accepted}");

    let bad = [
        (json!({ "items": [] }), "no_items"),
        (
            json!({ "items": [{ "sku": "NO-SUCH-SKU", "quantity": 1 }] }),
            "unknown_sku",
        ),
        (
            json!({ "items": [{ "sku": sku, "quantity": 0 }] }),
            "non_positive_quantity",
        ),
        (
            json!({ "items": [{ "sku": sku, "quantity": -3 }] }),
            "non_positive_quantity",
        ),
    ];
    for (body, code) in bad {
        let response = http
            .post(format!("{base}/orders"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{body}");
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["error"], code, "{problem}");
        assert!(!problem["message"].as_str().unwrap().is_empty());
    }
    let unknown: Value = http
        .post(format!("{base}/orders"))
        .json(&json!({ "items": [{ "sku": "NO-SUCH-SKU", "quantity": 1 }] }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(unknown["message"].as_str().unwrap().contains("NO-SUCH-SKU"));

    for (body, content_type) in [
        ("{not json", "application/json"),
        (r#"{"items": "many"}"#, "application/json"),
        (r#"{"items": []}"#, "text/plain"),
    ] {
        let response = http
            .post(format!("{base}/orders"))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{body}");
        let problem: Value = response.json().await.unwrap();
        assert!(problem["error"].is_string(), "{problem}");
        assert!(!problem["message"].as_str().unwrap().is_empty());
    }

    // The accepted order is on the topic.
    let config = Config::from_properties_str(&stack.client_properties()).unwrap();
    let codec = Arc::new(Codec::from_config(&config).unwrap());
    let consumer = Consumer::<Order>::new(&config, codec, ConsumerOptions::new("api-test"))
        .await
        .unwrap();
    let received = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(received.event.order_id.to_string(), order_id);
    assert_eq!(received.event.items[0].quantity, 2);

    let status = server.terminate(Duration::from_secs(60)).unwrap();
    assert!(status.success(), "{status:?}");
}

/// With the broker down, `POST /orders` answers 503 with a fixed message and `Retry-After`,
/// whether the producer gives up first (`message.timeout.ms`) or the API's deadline expires
/// first; librdkafka's error text stays in the server's log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_down_gives_503_without_internal_text() {
    let stack = Stack::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sku = grocery_store::Catalog::builtin().items()[0].sku.clone();
    let order = json!({ "items": [{ "sku": sku, "quantity": 1 }] });
    let http = reqwest::Client::new();
    let cases = [
        // The producer's own timeout fires first: the send fails with librdkafka's error.
        (
            "message.timeout.ms=1500\n",
            "60000",
            "order not acknowledged",
        ),
        // The API's deadline fires first.
        ("", "800", "within the deadline"),
    ];
    let mut servers = Vec::new();
    for (extra, deadline, _) in cases {
        let config =
            write_config(dir.path(), &format!("{}{extra}", stack.client_properties())).unwrap();
        let mut command = Command::new(BIN);
        command
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--deadline-ms",
                deadline,
            ])
            .arg("--config")
            .arg(&config);
        let server = Process::start("order-producer", &mut command, Output::default()).unwrap();
        let base = format!(
            "http://{}",
            server.listening_addr(Duration::from_secs(60)).unwrap()
        );
        // Warm up: metadata and schema id known while the broker is up.
        let response = http
            .post(format!("{base}/orders"))
            .json(&order)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
        servers.push((server, base));
    }
    stack.kafka().broker_down(1).unwrap();
    for ((server, base), (_, _, logged)) in servers.iter_mut().zip(cases) {
        let response = http
            .post(format!("{base}/orders"))
            .json(&order)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 503);
        assert_eq!(
            response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok()),
            Some("5")
        );
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["error"], "unavailable", "{problem}");
        assert_eq!(
            problem["message"], "the order could not be stored right now; retry later",
            "{problem}"
        );
        server
            .stderr()
            .wait_for(Duration::from_secs(30), |l| l.contains(logged))
            .unwrap();
    }
    // With the broker back, the shutdown flush delivers what is still queued: both exit 0.
    stack.kafka().broker_up(1).unwrap();
    for (server, _) in &mut servers {
        let status = server.terminate(Duration::from_secs(60)).unwrap();
        assert!(status.success(), "{status:?}");
    }
}
