//! `GET /orders/{id}`: the history view rebuilt from grocery.order-status.v1 on start, after a
//! restart, and while the broker is away; undecodable records passed over and counted, never
//! dead-lettered (a replay does not write to the dead-letter topic).

mod common;

use std::time::Duration;

use common::{start_api, wait_rebuilt};
use grocery_events::{OrderState, OrderStatus, StatusLine, topics};
use rdkafka::producer::{FutureRecord, Producer as _};
use serde_json::{Value, json};
use test_support::write_config;
use uuid::Uuid;

fn change(order_id: Uuid, state: OrderState, time: i64) -> OrderStatus {
    let (actor, picklist_id, lines) = match state {
        OrderState::Received => ("fulfillment-service", None, vec![]),
        OrderState::PicklistCreated => (
            "fulfillment-service",
            Some(Uuid::new_v5(&order_id, b"picklist")),
            vec![StatusLine {
                sku: "PRD-00001".into(),
                quantity: 3,
                quantity_picked: 2,
                quantity_short: 1,
            }],
        ),
        OrderState::Picked => (
            "staff:Aisha Patel",
            Some(Uuid::new_v5(&order_id, b"picklist")),
            vec![StatusLine {
                sku: "PRD-00001".into(),
                quantity: 3,
                quantity_picked: 1,
                quantity_short: 2,
            }],
        ),
        _ => (
            "staff:Aisha Patel",
            Some(Uuid::new_v5(&order_id, b"picklist")),
            vec![],
        ),
    };
    OrderStatus {
        status_id: Uuid::new_v5(&order_id, format!("{state:?}").as_bytes()),
        order_id,
        state,
        time,
        actor: actor.into(),
        picklist_id,
        lines,
        note: (state == OrderState::Picked).then(|| "one bottle broken".to_owned()),
    }
}

async fn get(http: &reqwest::Client, base: &str, path: &str) -> (u16, Option<String>, Value) {
    let response = http.get(format!("{base}{path}")).send().await.unwrap();
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, retry_after, body)
}

fn metric(text: &str, name: &str) -> u64 {
    test_support::metric(text, name).unwrap_or_else(|| panic!("no {name} in {text}")) as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_is_rebuilt_from_the_topic_and_survives_a_restart() {
    let stack = grocery_stack::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config_path = write_config(dir.path(), &stack.client_properties()).unwrap();
    let client = stack.client().unwrap();
    let producer = client.producer().await.unwrap();
    let http = reqwest::Client::new();

    // Order a's changes, out of order and one twice; an undecodable record among them.
    let a = Uuid::new_v4();
    for (state, time) in [
        (OrderState::Received, 1_000),
        (OrderState::PicklistCreated, 2_000),
        (OrderState::Picked, 4_000),
        (OrderState::PickingStarted, 3_000),
        (OrderState::Received, 1_000),
        (OrderState::Ready, 5_000),
    ] {
        producer.send(&change(a, state, time)).await.unwrap();
    }
    let garbage = a.to_string();
    producer
        .rdkafka()
        .send(
            FutureRecord::to(topics::ORDER_STATUS)
                .key(&garbage)
                .payload(b"not avro".as_slice()),
            Duration::from_secs(10),
        )
        .await
        .map_err(|(error, _)| error)
        .unwrap();

    let (mut server, base) = start_api("order-api", &config_path, &[]);
    wait_rebuilt(&server, Duration::from_secs(60));
    let (status, _, health) = get(&http, &base, "/health").await;
    assert_eq!((status, health), (200, json!("ok")));

    let (status, _, history) = get(&http, &base, &format!("/orders/{a}")).await;
    assert_eq!(status, 200, "{history}");
    assert_eq!(history["order_id"], a.to_string());
    assert_eq!(history["state"], "READY");
    let states: Vec<&str> = history["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["state"].as_str().unwrap())
        .collect();
    assert_eq!(
        states,
        [
            "RECEIVED",
            "PICKLIST_CREATED",
            "PICKING_STARTED",
            "PICKED",
            "READY"
        ]
    );
    let picked = &history["history"][3];
    assert_eq!(picked["actor"], "staff:Aisha Patel");
    assert_eq!(picked["time"], 4_000);
    assert_eq!(picked["note"], "one bottle broken");
    assert_eq!(
        picked["picklist_id"],
        Uuid::new_v5(&a, b"picklist").to_string()
    );
    assert_eq!(
        picked["lines"],
        json!([{ "sku": "PRD-00001", "quantity": 3, "picked": 1, "short": 2 }])
    );
    assert_eq!(history["history"][0]["picklist_id"], Value::Null);

    // The undecodable record is counted, not dead-lettered; the repeat is counted too.
    let (_, _, metrics) = get(&http, &base, "/metrics").await;
    let metrics = metrics.as_str().unwrap();
    assert_eq!(
        metric(metrics, "order_api_status_undecodable_total"),
        1,
        "{metrics}"
    );
    assert_eq!(metric(metrics, "order_api_status_repeats_total"), 1);
    assert_eq!(metric(metrics, "order_api_view_ready"), 1);
    let dlq = topics::dead_letter(topics::ORDER_STATUS);
    let mut dead = 0;
    for partition in 0..topics::PARTITIONS {
        let (low, high) = producer
            .rdkafka()
            .client()
            .fetch_watermarks(&dlq, partition, Duration::from_secs(10))
            .unwrap();
        dead += high - low;
    }
    assert_eq!(dead, 0, "records on {dlq}");

    // Unknown and malformed ids.
    let (status, _, problem) = get(&http, &base, &format!("/orders/{}", Uuid::new_v4())).await;
    assert_eq!((status, &problem["code"]), (404, &json!("unknown_order")));
    let (status, _, problem) = get(&http, &base, "/orders/not-an-id").await;
    assert_eq!(
        (status, &problem["code"]),
        (400, &json!("malformed_order_id"))
    );

    // An order placed here shows PLACED until fulfillment receives it.
    let sku = grocery_store::Catalog::builtin().items()[0].sku.clone();
    let placed: Value = http
        .post(format!("{base}/orders"))
        .json(&json!({ "items": [{ "sku": sku, "quantity": 1 }] }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let b: Uuid = placed["order_id"].as_str().unwrap().parse().unwrap();
    let (status, _, history) = get(&http, &base, &format!("/orders/{b}")).await;
    assert_eq!(status, 200, "{history}");
    assert_eq!(history["state"], "PLACED");
    assert_eq!(history["history"][0]["actor"], "order-api");

    // Changes arriving while it runs are followed.
    producer
        .send(&change(b, OrderState::Received, 6_000))
        .await
        .unwrap();
    let history = loop {
        let (_, _, history) = get(&http, &base, &format!("/orders/{b}")).await;
        if history["state"] == "RECEIVED" {
            break history;
        }
        assert_eq!(history["state"], "PLACED", "{history}");
        tokio::task::yield_now().await;
    };
    let (_, _, a_before) = get(&http, &base, &format!("/orders/{a}")).await;
    let status = server.terminate(Duration::from_secs(60)).unwrap();
    assert!(status.success(), "{status:?}");

    // Restarted while the broker is away: no partial history, 503 with Retry-After.
    stack.kafka().broker_down(1).unwrap();
    let (mut server, base) = start_api("order-api-restarted", &config_path, &[]);
    let (status, retry_after, health) = get(&http, &base, "/health").await;
    assert_eq!(status, 503, "{health}");
    assert!(retry_after.is_some());
    assert!(health.as_str().unwrap().contains("rebuilding"), "{health}");
    let (status, retry_after, problem) = get(&http, &base, &format!("/orders/{a}")).await;
    assert_eq!(
        (status, retry_after.as_deref(), &problem["code"]),
        (503, Some("5"), &json!("history_loading"))
    );
    let started = std::time::Instant::now();
    stack.kafka().broker_up(1).unwrap();
    wait_rebuilt(&server, Duration::from_secs(120));
    println!(
        "history rebuilt {} ms after the broker came back",
        started.elapsed().as_millis()
    );
    let (_, _, a_after) = get(&http, &base, &format!("/orders/{a}")).await;
    assert_eq!(a_after, a_before);
    let (_, _, b_after) = get(&http, &base, &format!("/orders/{b}")).await;
    assert_eq!(b_after, history);
    let status = server.terminate(Duration::from_secs(60)).unwrap();
    assert!(status.success(), "{status:?}");
}
