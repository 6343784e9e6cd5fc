//! One trace id across the three services, as processes on the local stack: an order placed
//! with a known W3C `traceparent` (`POST /orders`) is followed by its trace id through
//! order-producer's log, the order record's `traceparent` header, fulfillment-service's log,
//! the pick list's header, picklist-consumer's log and JSON output, and the headers of the
//! order's five status records (two by fulfillment, three by simulated staff); and the spans of the
//! three services (send, process and send, display) reach an OTLP receiver (a small HTTP
//! server here counting POSTs to `/v1/traces`) with that trace id in their protobuf.

use std::{
    path::Path,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{Router, body::Bytes, extract::State, routing::post};
use grocery_events::{ConsumerOptions, Order, OrderStatus, PickList, TraceContext};
use serde_json::{Value, json};
use uuid::Uuid;
use xtask::services::{self, Binaries, Process};

const WAIT: Duration = Duration::from_secs(60);
/// The trace the order is placed in (W3C's example trace id, a span id of the caller's).
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// The bodies of the OTLP export requests received.
type Exports = Arc<Mutex<Vec<Vec<u8>>>>;

async fn otlp_receiver() -> (String, Exports) {
    let exports = Exports::default();
    let app = Router::new()
        .route(
            "/v1/traces",
            post(|State(exports): State<Exports>, body: Bytes| async move {
                exports.lock().unwrap().push(body.to_vec());
                ""
            }),
        )
        .with_state(exports.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), exports)
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// The first stderr line of `process` containing every one of `needles`, waited for.
fn log_line(process: &Process, needles: &[&str]) -> String {
    process
        .stderr()
        .wait_for(WAIT, |line| needles.iter().all(|n| line.contains(n)))
        .unwrap_or_else(|e| panic!("{}: no log line with {needles:?}: {e}", process.name()))
}

fn start(
    name: &str,
    program: &Path,
    args: &[&str],
    env: &[(&'static str, String)],
    log: &Path,
) -> Process {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    services::start(name, program, &args, &env, log).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn one_trace_id_across_the_three_services() {
    let bins = tokio::task::spawn_blocking(Binaries::build)
        .await
        .unwrap()
        .unwrap();
    let stack = grocery_stack::start().await.unwrap();
    let dir = services::workspace_dir().join(format!("target/e2e/traces-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config_path = dir.join("client.properties");
    std::fs::write(&config_path, stack.client_properties()).unwrap();
    let config = config_path.display().to_string();
    let log = dir.join("services.log");
    let (endpoint, exports) = otlp_receiver().await;
    let otel = |name: &'static str| -> Vec<(&'static str, String)> {
        vec![
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.clone()),
            ("OTEL_SERVICE_NAME", name.to_owned()),
            // Each order is logged by fulfillment-service at DEBUG.
            ("RUST_LOG", "info,fulfillment_service=debug".to_owned()),
        ]
    };
    let (f_env, p_env, o_env) = (
        otel("fulfillment-service"),
        otel("picklist-consumer"),
        otel("order-producer"),
    );

    let mut fulfillment = start(
        "fulfillment-service",
        &bins.fulfillment_service,
        &["--config", &config, "--listen", "127.0.0.1:0"],
        &f_env,
        &log,
    );
    let mut consumer = start(
        "picklist-consumer",
        &bins.picklist_consumer,
        &[
            "--config",
            &config,
            "--json",
            "--simulate-staff",
            "--staff-pace-ms",
            "0",
        ],
        &p_env,
        &log,
    );
    let mut producer = start(
        "order-producer",
        &bins.order_producer,
        &["--config", &config, "serve", "--listen", "127.0.0.1:0"],
        &o_env,
        &log,
    );
    let api = producer.listening_addr(WAIT).unwrap();
    services::wait_until_assigned(&[&fulfillment, &consumer], WAIT).unwrap();

    // One order, placed in a known trace.
    let sku = grocery_store::Catalog::builtin().items()[0].sku.clone();
    let response = reqwest::Client::new()
        .post(format!("http://{api}/orders"))
        .header("traceparent", TRACEPARENT)
        .json(&json!({ "items": [{ "sku": sku, "quantity": 2 }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let accepted: Value = response.json().await.unwrap();
    assert_eq!(accepted["trace_id"], TRACE_ID, "{accepted}");
    let order_id = accepted["order_id"].as_str().unwrap().to_owned();

    let mut matched = Vec::new();
    let producer_line = log_line(&producer, &["order accepted", &order_id, TRACE_ID]);
    matched.push(format!("order-producer log:     {producer_line}"));

    // The records' headers, read back from the topics.
    let client = stack.client().unwrap();
    let group = |name: &str| ConsumerOptions::new(format!("{name}-{}", Uuid::new_v4().simple()));
    let orders = client
        .consumer::<Order>(group("traces-orders"))
        .await
        .unwrap();
    let order = tokio::time::timeout(WAIT, orders.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(order.event.order_id.to_string(), order_id);
    let order_trace = order
        .trace()
        .expect("the order record carries a traceparent");
    assert_eq!(order_trace.trace_id().to_string(), TRACE_ID);
    assert_ne!(
        order_trace.span_id().to_string(),
        "00f067aa0ba902b7",
        "a span of its own"
    );
    matched.push(format!(
        "order record header:    traceparent: {}",
        order.headers.get_str("traceparent").unwrap()
    ));

    let fulfillment_line = log_line(&fulfillment, &["pick list built", &order_id, TRACE_ID]);
    matched.push(format!("fulfillment-service log: {fulfillment_line}"));

    let pick_lists = client
        .consumer::<PickList>(group("traces-picklists"))
        .await
        .unwrap();
    let pick_list = tokio::time::timeout(WAIT, pick_lists.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(pick_list.event.order_id.to_string(), order_id);
    let pick_trace: TraceContext = pick_list
        .trace()
        .expect("the pick list carries a traceparent");
    assert_eq!(pick_trace.trace_id().to_string(), TRACE_ID);
    assert_ne!(pick_trace.span_id(), order_trace.span_id());
    matched.push(format!(
        "pick list header:       traceparent: {}",
        pick_list.headers.get_str("traceparent").unwrap()
    ));

    let shown = consumer
        .next_line(WAIT)
        .expect("picklist-consumer shows the pick list");
    let shown_json: Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(shown_json["order_id"], order_id.as_str());
    assert_eq!(shown_json["trace_id"], TRACE_ID, "{shown}");
    assert_eq!(
        shown_json["traceparent"].as_str(),
        pick_list.headers.get_str("traceparent")
    );
    let consumer_line = log_line(&consumer, &["pick list shown", &order_id, TRACE_ID]);
    matched.push(format!("picklist-consumer log:  {consumer_line}"));
    matched.push(format!(
        "picklist-consumer out:  trace_id={} traceparent={}",
        shown_json["trace_id"], shown_json["traceparent"]
    ));

    // The order's states, from fulfillment and (simulated) store staff, continue the trace.
    let statuses = client
        .consumer::<OrderStatus>(group("traces-statuses"))
        .await
        .unwrap();
    let mut states = Vec::new();
    while states.len() < 5 {
        let status = tokio::time::timeout(WAIT, statuses.recv())
            .await
            .unwrap_or_else(|_| panic!("only the statuses {states:?}"))
            .unwrap();
        assert_eq!(status.event.order_id.to_string(), order_id);
        let trace = status.trace().expect("a status carries a traceparent");
        assert_eq!(trace.trace_id().to_string(), TRACE_ID, "{:?}", status.event);
        states.push(grocery_store::state_name(status.event.state));
    }
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
    statuses.close().await.unwrap();
    matched.push(format!(
        "status records headers: {} with trace id {TRACE_ID}",
        states.join(", ")
    ));

    // Every process stops cleanly, which flushes the spans still batched.
    for process in [&mut producer, &mut fulfillment, &mut consumer] {
        let status = process.terminate(WAIT).unwrap();
        assert!(status.success(), "{}: {status:?}", process.name());
    }
    orders.close().await.unwrap();
    pick_lists.close().await.unwrap();

    let trace_id = hex(TRACE_ID);
    let exports = exports.lock().unwrap().clone();
    let with_trace: Vec<&Vec<u8>> = exports
        .iter()
        .filter(|body| body.windows(16).any(|w| w == trace_id.as_slice()))
        .collect();
    for service in ["order-producer", "fulfillment-service", "picklist-consumer"] {
        assert!(
            with_trace
                .iter()
                .any(|body| body.windows(service.len()).any(|w| w == service.as_bytes())),
            "no OTLP export from {service} with the trace id ({} POSTs to /v1/traces)",
            exports.len()
        );
    }
    // The exported `send` spans are the records' spans: their span ids are the headers'.
    for (what, span_id) in [
        ("order", order_trace.span_id().to_string()),
        ("pick list", pick_trace.span_id().to_string()),
    ] {
        let span_id = hex(&span_id);
        assert!(
            with_trace
                .iter()
                .any(|body| body.windows(8).any(|w| w == span_id.as_slice())),
            "the {what} record's span is exported"
        );
    }
    matched.push(format!(
        "OTLP receiver:          {} POSTs to /v1/traces, {} with trace id {TRACE_ID} (from all three services)",
        exports.len(),
        with_trace.len()
    ));

    println!("one trace id across the three services: {TRACE_ID}");
    for line in &matched {
        println!("  {line}");
    }
}
