//! The HTTP Order API as a process against the local stack.

mod common;

use std::{process::Command, time::Duration};

use common::{BIN, read_all, start_api, wait_rebuilt};
use grocery_events::{Client, Config, ConsumerOptions, Order, OrderState, OrderStatus};
use serde_json::{Value, json};
use test_support::{Output, Process, write_config};
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepts_valid_orders_and_rejects_bad_ones() {
    let stack = grocery_stack::start().await.unwrap();
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

    wait_rebuilt(&server, Duration::from_secs(60));
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
        assert_eq!(problem["code"], code, "{problem}");
        assert!(!problem["detail"].as_str().unwrap().is_empty());
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
    assert!(unknown["detail"].as_str().unwrap().contains("NO-SUCH-SKU"));
    // One order acknowledged; rejected requests are not orders.
    let metrics = http.get(format!("{base}/metrics")).send().await.unwrap();
    let metrics = metrics.text().await.unwrap();
    assert!(
        metrics.contains("\norder_producer_orders_acked_total 1\n")
            && metrics.contains("\norder_producer_orders_failed_total 0\n"),
        "{metrics}"
    );

    // A script that says it is one (X-Requested-With) but sends no JSON: the API's own 400.
    for (body, content_type) in [
        ("{not json", "application/json"),
        (r#"{"items": "many"}"#, "application/json"),
        (r#"{"items": []}"#, "text/plain"),
    ] {
        let response = http
            .post(format!("{base}/orders"))
            .header("content-type", content_type)
            .header("x-requested-with", "test")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{body}");
        let problem: Value = response.json().await.unwrap();
        assert!(problem["code"].is_string(), "{problem}");
        assert!(!problem["detail"].as_str().unwrap().is_empty());
    }

    // The accepted order is on the topic.
    let config = Config::from_properties_str(&stack.client_properties()).unwrap();
    let client = Client::from_config(config.clone()).unwrap();
    let consumer = client
        .consumer::<Order>(ConsumerOptions::new("api-test"))
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

/// Requests another web site's page can make are refused (403, problem JSON naming why) and
/// place no order: a form's `text/plain` post, a JSON post from a foreign `Origin`, a read
/// under a foreign `Host` (DNS rebinding). The API's own clients go on working. (A JSON
/// `POST /orders` with `Origin: http://evil.example` used to be accepted, 202.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_another_site_can_make_are_refused() {
    let stack = grocery_stack::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &stack.client_properties()).unwrap();
    let (mut server, base) = start_api("order-producer", &config, &[]);
    wait_rebuilt(&server, Duration::from_secs(60));
    let sku = grocery_store::Catalog::builtin().items()[0].sku.clone();
    let order = json!({ "items": [{ "sku": sku, "quantity": 1 }] }).to_string();
    let http = reqwest::Client::new();
    let refused = async |request: reqwest::RequestBuilder, code: &str| {
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let problem: Value = response.json().await.unwrap();
        assert_eq!(
            (status, problem["code"].as_str()),
            (403, Some(code)),
            "{problem}"
        );
        assert!(!problem["detail"].as_str().unwrap().is_empty());
    };
    let orders = format!("{base}/orders");
    refused(
        http.post(&orders)
            .header("content-type", "application/json")
            .header("origin", "http://evil.example")
            .body(order.clone()),
        "origin_not_allowed",
    )
    .await;
    refused(
        http.post(&orders)
            .header("content-type", "text/plain")
            .body(order.clone()),
        "json_required",
    )
    .await;
    refused(
        http.post(&orders)
            .header("origin", "null")
            .header("content-type", "application/json")
            .body(order.clone()),
        "origin_not_allowed",
    )
    .await;
    for path in [
        "/health",
        "/metrics",
        "/orders/00000000-0000-0000-0000-000000000001",
    ] {
        refused(
            http.get(format!("{base}{path}"))
                .header("host", "rebound.evil.example"),
            "host_not_allowed",
        )
        .await;
    }
    // Its own clients: JSON, under the address or localhost, from the same origin.
    let port = base.rsplit(':').next().unwrap();
    let response = http
        .post(&orders)
        .header("content-type", "application/json")
        .header("origin", &base)
        .header("host", format!("localhost:{port}"))
        .body(order.clone())
        .send()
        .await;
    // The Origin names 127.0.0.1 and the Host localhost: not the same origin.
    assert_eq!(response.unwrap().status(), 403);
    let response = http
        .post(&orders)
        .header("content-type", "application/json")
        .header("origin", &base)
        .body(order)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let accepted: Value = response.json().await.unwrap();

    // One order placed: the refused requests placed none.
    let client = stack.client().unwrap();
    let orders: Vec<Order> = read_all(&client).await;
    let ids: Vec<String> = orders.iter().map(|o| o.order_id.to_string()).collect();
    assert_eq!(ids, [accepted["order_id"].as_str().unwrap()]);
    let status = server.terminate(Duration::from_secs(60)).unwrap();
    assert!(status.success(), "{status:?}");
    let refusals = server
        .stderr()
        .all()
        .into_iter()
        .filter(|l| l.contains("request refused"))
        .count();
    assert_eq!(refusals, 7, "each refusal is logged");
}

/// With the broker down, `POST /orders` answers 503 with a fixed message and `Retry-After`,
/// whether the producer gives up first (`message.timeout.ms`) or the API's deadline expires
/// first; librdkafka's error text stays in the server's log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_down_gives_503_without_internal_text() {
    let stack = grocery_stack::start().await.unwrap();
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
    for (instance, &(extra, deadline, _)) in cases.iter().enumerate() {
        let config =
            write_config(dir.path(), &format!("{}{extra}", stack.client_properties())).unwrap();
        let mut command = Command::new(BIN);
        command
            // Two instances on one broker: each its own transactional id (the same one would
            // fence the other).
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--deadline-ms",
                deadline,
                "--transactional-id",
                &format!("order-api-{instance}"),
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
    for ((server, base), (_, deadline, logged)) in servers.iter_mut().zip(cases) {
        let sent = std::time::Instant::now();
        let response = http
            .post(format!("{base}/orders"))
            .json(&order)
            .send()
            .await
            .unwrap();
        let elapsed = sent.elapsed();
        assert_eq!(response.status(), 503);
        // Within the deadline (or message.timeout.ms, when shorter) plus a wide slack for a
        // loaded machine; librdkafka's own default would have held it for 5 minutes.
        let bound = Duration::from_millis(deadline.parse::<u64>().unwrap().min(1500))
            + Duration::from_secs(20);
        assert!(elapsed < bound, "answered after {elapsed:?}");
        assert_eq!(
            response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok()),
            Some("5")
        );
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["code"], "unavailable", "{problem}");
        assert_eq!(
            problem["detail"], "the order could not be stored right now; retry later",
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

/// The namespace of order ids made from idempotency keys, as documented in docs/services.md.
const KEY_NAMESPACE: Uuid = uuid::uuid!("6f1d1c2e-3b0a-4c55-9e44-8d3a1f0b7c21");

async fn post_keyed(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    body: &Value,
) -> (u16, bool, Value) {
    let response = http
        .post(format!("{base}/orders"))
        .header("idempotency-key", key)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let replayed = response
        .headers()
        .get("idempotent-replayed")
        .is_some_and(|v| v == "true");
    (status, replayed, response.json().await.unwrap())
}

fn count(orders: &[Order], order_id: Uuid) -> usize {
    orders.iter().filter(|o| o.order_id == order_id).count()
}

/// Retries with one `Idempotency-Key` make one order: sequential and concurrent retries get
/// the first answer, another body is refused, bad keys are refused, and after a restart the
/// key (read back from the orders topic) is not produced again. The real-broker form, with a
/// restart at each point of a request's life, is `tools/xtask/tests/order_idempotency.rs`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_key_makes_one_order() {
    let stack = grocery_stack::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config_path = write_config(dir.path(), &stack.client_properties()).unwrap();
    let client = stack.client().unwrap();
    let (mut server, base) = start_api("order-api", &config_path, &[]);
    wait_rebuilt(&server, Duration::from_secs(60));
    let http = reqwest::Client::new();
    let catalog = grocery_store::Catalog::builtin();
    let items = catalog.items();
    let body = json!({ "items": [{ "sku": items[0].sku, "quantity": 2 }] });
    let other = json!({ "items": [{ "sku": items[1].sku, "quantity": 1 }] });

    let key = format!("retry-{}", Uuid::new_v4());
    let order_id = Uuid::new_v5(&KEY_NAMESPACE, key.as_bytes());
    let (status, replayed, first) = post_keyed(&http, &base, &key, &body).await;
    assert_eq!((status, replayed), (202, false), "{first}");
    assert_eq!(first["order_id"], order_id.to_string());
    const RETRIES: usize = 5;
    for _ in 0..RETRIES {
        let (status, replayed, again) = post_keyed(&http, &base, &key, &body).await;
        assert_eq!((status, replayed), (200, true), "{again}");
        assert_eq!(again, first);
    }
    let (status, _, problem) = post_keyed(&http, &base, &key, &other).await;
    assert_eq!(
        (status, &problem["code"]),
        (422, &json!("idempotency_key_reused"))
    );

    // Concurrent retries: one 202, the rest replays (or 409 while the first is in flight).
    let concurrent_key = format!("burst-{}", Uuid::new_v4());
    let concurrent_id = Uuid::new_v5(&KEY_NAMESPACE, concurrent_key.as_bytes());
    let answers =
        futures::future::join_all((0..8).map(|_| post_keyed(&http, &base, &concurrent_key, &body)))
            .await;
    let accepted = answers.iter().filter(|(status, ..)| *status == 202).count();
    assert_eq!(accepted, 1, "{answers:?}");
    for (status, replayed, answer) in &answers {
        match status {
            202 | 200 => assert_eq!(answer["order_id"], concurrent_id.to_string()),
            409 => assert_eq!(answer["code"], "request_in_flight"),
            _ => panic!("{status} {answer}"),
        }
        assert_eq!(*replayed, *status == 200);
    }

    for bad in ["has space", &"k".repeat(256), ""] {
        let (status, _, problem) = post_keyed(&http, &base, bad, &body).await;
        assert_eq!(
            (status, &problem["code"]),
            (400, &json!("bad_idempotency_key")),
            "{bad:?}"
        );
    }

    let orders = read_all::<Order>(&client).await;
    assert_eq!(count(&orders, order_id), 1, "retries of one key");
    assert_eq!(count(&orders, concurrent_id), 1, "concurrent retries");
    println!(
        "{} sequential and {} concurrent requests: {} records on {}",
        RETRIES + 1,
        answers.len(),
        count(&orders, order_id) + count(&orders, concurrent_id),
        grocery_events::topics::ORDERS
    );

    // Fulfillment received the order; after a restart the key maps to it again.
    let received = OrderStatus {
        status_id: Uuid::new_v5(&order_id, b"RECEIVED"),
        order_id,
        state: OrderState::Received,
        time: 1,
        actor: "fulfillment-service".into(),
        picklist_id: None,
        lines: vec![],
        note: None,
    };
    client
        .producer()
        .await
        .unwrap()
        .send(&received)
        .await
        .unwrap();
    let status = server.terminate(Duration::from_secs(60)).unwrap();
    assert!(status.success(), "{status:?}");
    let (mut server, base) = start_api("order-api-restarted", &config_path, &[]);
    wait_rebuilt(&server, Duration::from_secs(60));
    let (status, replayed, again) = post_keyed(&http, &base, &key, &body).await;
    assert_eq!((status, replayed), (200, true), "{again}");
    assert_eq!(again["order_id"], order_id.to_string());
    let orders = read_all::<Order>(&client).await;
    assert_eq!(count(&orders, order_id), 1, "a retry after the restart");
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("\norder_producer_orders_replayed_total 1\n"),
        "{metrics}"
    );
    let status = server.terminate(Duration::from_secs(60)).unwrap();
    assert!(status.success(), "{status:?}");
}

/// An order sent with a key while the broker is down gets 503 at the deadline; it is
/// delivered once the broker is back, and a retry with the key gets that order, not a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_delivery_answers_the_retry() {
    let stack = grocery_stack::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config_path = write_config(dir.path(), &stack.client_properties()).unwrap();
    let client = stack.client().unwrap();
    let (mut server, base) = start_api("order-api", &config_path, &["--deadline-ms", "800"]);
    wait_rebuilt(&server, Duration::from_secs(60));
    let http = reqwest::Client::new();
    let sku = grocery_store::Catalog::builtin().items()[0].sku.clone();
    let body = json!({ "items": [{ "sku": sku, "quantity": 1 }] });
    // Warm up: metadata and schema id known while the broker is up.
    let (status, _, _) = post_keyed(&http, &base, "warm-up", &body).await;
    assert_eq!(status, 202);

    stack.kafka().broker_down(1).unwrap();
    let key = format!("late-{}", Uuid::new_v4());
    let order_id = Uuid::new_v5(&KEY_NAMESPACE, key.as_bytes());
    let sent = std::time::Instant::now();
    let response = http
        .post(format!("{base}/orders"))
        .header("idempotency-key", &key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let elapsed = sent.elapsed();
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    let problem: Value = response.json().await.unwrap();
    assert_eq!(
        problem,
        json!({
            "type": "tag:grocery-events,2026:problem:unavailable",
            "title": "Service Unavailable",
            "status": 503,
            "detail": "the order could not be stored right now; retry later",
            "code": "unavailable",
        })
    );
    assert!(
        elapsed < Duration::from_millis(800) + Duration::from_secs(20),
        "{elapsed:?}"
    );

    stack.kafka().broker_up(1).unwrap();
    // Each retry waits up to the deadline for the first send: 409 while it is in flight.
    let mut in_flight = 0;
    let answer = loop {
        let (status, replayed, answer) = post_keyed(&http, &base, &key, &body).await;
        match status {
            409 => in_flight += 1,
            200 => {
                assert!(replayed);
                break answer;
            }
            _ => panic!("{status} {answer}"),
        }
        assert!(in_flight < 200, "the first send never finished");
    };
    assert_eq!(answer["order_id"], order_id.to_string());
    let orders = read_all::<Order>(&client).await;
    assert_eq!(count(&orders, order_id), 1);
    println!("retried {in_flight} times (409) before the late delivery was the answer");
    let status = server.terminate(Duration::from_secs(60)).unwrap();
    assert!(status.success(), "{status:?}");
}

/// An order the registered order contract refuses is answered `422 order_refused_by_contract`
/// and stored nowhere, while the orders sent with it are accepted. The API's own validation
/// answers 400 for what the order contract checks today, so the test registers a stricter
/// version (at most 50 of a line, dead-lettered) before the API starts. (The refused order
/// used to be answered `503 unavailable`, as if a retry could succeed.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_the_registered_contract_refuses_is_unprocessable_and_not_stored() {
    let stack = grocery_stack::start().await.unwrap();
    let config = Config::from_properties_str(&stack.client_properties()).unwrap();
    let client = Client::from_config(config).unwrap();
    let stricter = avro_events::rules::Contract::from_json(
        r#"{"ruleSet": {"domainRules": [{
            "name": "at_most_50", "kind": "CONDITION", "mode": "WRITE", "type": "CEL",
            "expr": "message.items.all(line, line.quantity <= 50)",
            "params": {"dlq.topic": "grocery.orders.v1.dlq"}, "onFailure": "DLQ"}]}}"#,
        "the test's stricter order contract",
    )
    .unwrap();
    client
        .codec()
        .registry()
        .register_contract(
            "grocery.orders.v1-value",
            <Order as grocery_events::Event>::SCHEMA,
            stricter.metadata.as_ref(),
            stricter.rule_set.as_ref(),
            false,
        )
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config_file = write_config(dir.path(), &stack.client_properties()).unwrap();
    let (mut server, base) = start_api("order-producer", &config_file, &[]);
    wait_rebuilt(&server, Duration::from_secs(60));
    let http = reqwest::Client::new();
    let sku = grocery_store::Catalog::builtin().items()[0].sku.clone();

    // Sent together, so that they may share a transaction: the refused order is told so, the
    // others are accepted.
    let quantities = [2, 60, 3, 4];
    let answers = futures::future::join_all(quantities.map(|quantity| {
        let request = http
            .post(format!("{base}/orders"))
            .json(&json!({ "items": [{ "sku": sku, "quantity": quantity }] }));
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    }))
    .await;
    let mut accepted = Vec::new();
    for (quantity, (status, body)) in quantities.iter().zip(&answers) {
        if *quantity > 50 {
            assert_eq!(status, &422, "{body}");
            assert_eq!(body["code"], "order_refused_by_contract", "{body}");
            assert!(
                body["detail"].as_str().unwrap().contains("not stored"),
                "{body}"
            );
        } else {
            assert_eq!(status, &202, "quantity {quantity}: {body}");
            accepted.push(body["order_id"].as_str().unwrap().to_owned());
        }
    }
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("\norder_producer_orders_failed_total 1\n"),
        "{metrics}"
    );
    // The mock broker keeps an aborted transaction's records visible (the transaction that
    // met the refused order, when the others shared it, is aborted and its orders sent again):
    // the orders on the topic are the accepted ones, the refused one is not among them.
    // Exactly once read_committed is the real broker's to show (order_sender_failures, whose
    // too-large orders take the same path).
    let on_topic: std::collections::BTreeSet<String> = read_all::<Order>(&client)
        .await
        .iter()
        .map(|order| order.order_id.to_string())
        .collect();
    let accepted: std::collections::BTreeSet<String> = accepted.into_iter().collect();
    assert_eq!(on_topic, accepted, "the accepted orders only");
    let status = server.terminate(Duration::from_secs(60)).unwrap();
    assert!(status.success(), "{status:?}");
}
