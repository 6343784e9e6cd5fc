//! The "Done when": a 1,000-order run through the three services as processes
//! (order-producer serve, fulfillment-service, picklist-consumer --simulate-staff) on the local
//! stack; `GET /orders/{id}` gives the full history RECEIVED → PICKLIST_CREATED →
//! PICKING_STARTED → PICKED → READY for every order, again after the Order API restarts, and
//! the shorts in each history are those the catalog's stock levels give.
//!
//! `ORDER_RUN_COUNT` sets another number of orders.

use std::{
    collections::{BTreeMap, HashMap},
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use futures::StreamExt as _;
use grocery_store::{Catalog, OrderSimulator};
use serde_json::{Value, json};
use test_support::{Output, Process, write_config};
use uuid::Uuid;
use xtask::services::Binaries;

/// An order's lines as requested: SKU and quantity.
type Lines = Vec<(String, i64)>;

const STATES: [&str; 5] = [
    "RECEIVED",
    "PICKLIST_CREATED",
    "PICKING_STARTED",
    "PICKED",
    "READY",
];

/// Starts the Order API (`order-producer serve`) on a free port; returns it and its base URL.
fn start_api(binaries: &Binaries, name: &str, config: &Path) -> (Process, String) {
    let mut command = Command::new(&binaries.order_producer);
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(config);
    let api = Process::start(name, &mut command, Output::default()).unwrap();
    let base = format!(
        "http://{}",
        api.listening_addr(Duration::from_secs(60)).unwrap()
    );
    (api, base)
}

/// Waits for the Order API's log line saying its history view is rebuilt.
fn wait_rebuilt(api: &Process, timeout: Duration) {
    api.stderr()
        .wait_for(timeout, |line| line.contains("order history rebuilt"))
        .unwrap();
}

/// Units short per SKU for an order of `lines`, from the catalog's stock levels alone
/// (a snapshot: every order sees the full stock; lines of one SKU share it).
fn expected_shorts(catalog: &Catalog, lines: &[(String, i64)]) -> BTreeMap<String, i64> {
    let mut wanted: BTreeMap<String, i64> = BTreeMap::new();
    for (sku, quantity) in lines {
        *wanted.entry(sku.clone()).or_default() += quantity;
    }
    wanted
        .into_iter()
        .map(|(sku, quantity)| {
            let stock = catalog.get(&sku).map_or(0, |item| i64::from(item.stock));
            (sku, (quantity - stock).max(0))
        })
        .collect()
}

/// Units short per SKU in one history entry's lines.
fn shorts_in(entry: &Value) -> BTreeMap<String, i64> {
    let mut shorts: BTreeMap<String, i64> = BTreeMap::new();
    for line in entry["lines"].as_array().unwrap() {
        let sku = line["sku"].as_str().unwrap().to_owned();
        let short = line["short"].as_i64().unwrap();
        assert_eq!(
            line["picked"].as_i64().unwrap() + short,
            line["quantity"].as_i64().unwrap(),
            "{line}"
        );
        *shorts.entry(sku).or_default() += short;
    }
    shorts
}

async fn get_json(http: &reqwest::Client, url: &str) -> (u16, Value) {
    let response = http.get(url).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn metric(text: &str, name: &str) -> u64 {
    test_support::metric(text, name).unwrap_or(0.0) as u64
}

fn assert_running(processes: &[&Process]) {
    for process in processes {
        assert!(
            process.try_wait().is_none(),
            "{} exited: {:?}",
            process.name(),
            process.try_wait()
        );
    }
}

/// Checks every order's history; returns the histories and the units short seen.
async fn check_histories(
    http: &reqwest::Client,
    base: &str,
    orders: &HashMap<Uuid, Lines>,
    catalog: &Catalog,
) -> (HashMap<Uuid, Value>, i64) {
    let mut histories = HashMap::new();
    let mut shorts_seen = 0;
    for (order_id, lines) in orders {
        let (status, history) = get_json(http, &format!("{base}/orders/{order_id}")).await;
        assert_eq!(status, 200, "{order_id}: {history}");
        assert_eq!(history["state"], "READY", "{history}");
        let entries = history["history"].as_array().unwrap();
        let states: Vec<&str> = entries
            .iter()
            .map(|entry| entry["state"].as_str().unwrap())
            .collect();
        assert_eq!(states, STATES, "{history}");
        let expected = expected_shorts(catalog, lines);
        // The stock check's plan and what (simulated) staff picked: both as the stock says.
        assert_eq!(shorts_in(&entries[1]), expected, "planned: {history}");
        assert_eq!(shorts_in(&entries[3]), expected, "picked: {history}");
        shorts_seen += expected.values().sum::<i64>();
        histories.insert(*order_id, history);
    }
    (histories, shorts_seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_orders_have_their_full_history() {
    let count: usize = std::env::var("ORDER_RUN_COUNT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let binaries = Binaries::build().unwrap();
    let run = Instant::now();
    let stack = grocery_stack::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &stack.client_properties()).unwrap();
    let catalog = Catalog::builtin();

    let (mut api, base) = start_api(&binaries, "order-api", &config);
    let mut fulfillment = Process::start(
        "fulfillment-service",
        Command::new(&binaries.fulfillment_service)
            .args(["--listen", "127.0.0.1:0", "--config"])
            .arg(&config),
        Output::default(),
    )
    .unwrap();
    let mut staff = Process::start(
        "picklist-consumer",
        Command::new(&binaries.picklist_consumer)
            .args([
                "--json",
                "--listen",
                "127.0.0.1:0",
                "--simulate-staff",
                "--staff-pace-ms",
                "0",
                "--config",
            ])
            .arg(&config),
        Output::default(),
    )
    .unwrap();
    wait_rebuilt(&api, Duration::from_secs(60));

    // 1,000 simulated customers' orders, placed through POST /orders with a key each;
    // a 503 (a slow moment) is retried with the same key, as a client would.
    let mut simulator = OrderSimulator::new(7, &catalog);
    let requests: Vec<(String, Value)> = (0..count)
        .map(|i| {
            let order = simulator.next_order(0);
            let items: Vec<Value> = order
                .items
                .iter()
                .map(|line| json!({ "sku": line.sku, "quantity": line.quantity }))
                .collect();
            (
                format!("run-{i}-{}", order.order_id),
                json!({ "items": items }),
            )
        })
        .collect();
    let http = reqwest::Client::new();
    let placing = Instant::now();
    let placed: Vec<(Uuid, Lines, u32)> = futures::stream::iter(&requests)
        .map(|(key, body)| {
            let http = http.clone();
            let base = base.clone();
            async move {
                let mut retries = 0;
                loop {
                    let response = http
                        .post(format!("{base}/orders"))
                        .header("idempotency-key", key)
                        .json(body)
                        .send()
                        .await
                        .unwrap();
                    let status = response.status().as_u16();
                    let answer: Value = response.json().await.unwrap();
                    match status {
                        200 | 202 => {
                            let order_id = answer["order_id"].as_str().unwrap().parse().unwrap();
                            let lines = body["items"]
                                .as_array()
                                .unwrap()
                                .iter()
                                .map(|item| {
                                    (
                                        item["sku"].as_str().unwrap().to_owned(),
                                        item["quantity"].as_i64().unwrap(),
                                    )
                                })
                                .collect();
                            return (order_id, lines, retries);
                        }
                        409 | 503 if retries < 20 => retries += 1,
                        _ => panic!("{status} {answer}"),
                    }
                }
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let placing_ms = placing.elapsed().as_millis();
    let retries: u32 = placed.iter().map(|(_, _, r)| r).sum();
    let orders: HashMap<Uuid, Lines> = placed
        .into_iter()
        .map(|(id, lines, _)| (id, lines))
        .collect();
    assert_eq!(orders.len(), count, "one order per key");

    // Wait for every order's five changes to reach the Order API's view.
    let mut check = tokio::time::interval(Duration::from_millis(250));
    let all_ready = Instant::now();
    loop {
        check.tick().await;
        assert_running(&[&api, &fulfillment, &staff]);
        let metrics = http
            .get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let changes = metric(&metrics, "order_api_view_changes");
        if changes >= 5 * count as u64 {
            assert_eq!(changes, 5 * count as u64, "{metrics}");
            break;
        }
        assert!(
            all_ready.elapsed() < Duration::from_secs(600),
            "{changes} of {} changes after 10 minutes",
            5 * count
        );
    }
    let ready_ms = all_ready.elapsed().as_millis();
    let (before, shorts) = check_histories(&http, &base, &orders, &catalog).await;
    let short_orders = before
        .values()
        .filter(|h| shorts_in(&h["history"][3]).values().any(|s| *s > 0))
        .count();
    assert!(shorts > 0, "the catalog has items short of stock");

    // Restart the Order API: the same histories, rebuilt from the topic.
    let status = api.terminate(Duration::from_secs(60)).unwrap();
    assert!(status.success(), "order-api: {status:?}");
    let restart = Instant::now();
    let (mut api, base) = start_api(&binaries, "order-api-restarted", &config);
    wait_rebuilt(&api, Duration::from_secs(300));
    let restart_ms = restart.elapsed().as_millis();
    let (after, shorts_after) = check_histories(&http, &base, &orders, &catalog).await;
    assert_eq!(shorts_after, shorts);
    assert!(after == before, "histories differ after the restart");

    for process in [&mut api, &mut fulfillment, &mut staff] {
        let status = process.terminate(Duration::from_secs(60)).unwrap();
        assert!(status.success(), "{}: {status:?}", process.name());
    }
    println!(
        "orders: {count} placed in {placing_ms} ms ({retries} retried with their key); \
         all {} changes in the view {ready_ms} ms later; histories checked: {} before and {} \
         after the restart; units short: {shorts} on {short_orders} orders; \
         restart to rebuilt view: {restart_ms} ms; whole run {} s",
        5 * count,
        before.len(),
        after.len(),
        run.elapsed().as_secs()
    );
}
