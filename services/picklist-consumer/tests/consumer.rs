//! The pick-list consumer as a process against the local stack: each pick list shown once,
//! stats at exit, the live page.

use std::{process::Command, time::Duration};

use grocery_events::{Client, Config, PickLine, PickList, Producer, StockStatus};
use local_stack::Stack;
use serde_json::Value;
use test_support::{Output, Process, write_config};
use uuid::Uuid;

const BIN: &str = env!("CARGO_BIN_EXE_picklist-consumer");
const WAIT: Duration = Duration::from_secs(60);

fn pick_list(n: u128) -> PickList {
    PickList {
        picklist_id: Uuid::from_u128(1000 + n),
        order_id: Uuid::from_u128(n),
        items_to_pick: vec![
            PickLine {
                sku: "PRD-00002".into(),
                name: "Whole milk 1L".into(),
                quantity: 3,
                quantity_to_pick: 1,
                aisle: "Dairy".into(),
                walk_sequence: 2,
                stock_status: StockStatus::Short,
                note: Some("only 1 in stock".into()),
            },
            PickLine {
                sku: "PRD-00001".into(),
                name: "Bananas".into(),
                quantity: 2,
                quantity_to_pick: 2,
                aisle: "Produce".into(),
                walk_sequence: 1,
                stock_status: StockStatus::InStock,
                note: None,
            },
        ],
        assigned_picker: "Ana".into(),
        created_time: 1_763_769_600_000,
        delivery_window: None,
    }
}

async fn producer(stack: &Stack) -> Producer {
    let config = Config::from_properties_str(&stack.client_properties()).unwrap();
    let client = Client::from_config(config.clone()).unwrap();
    client.producer().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_lines_show_each_pick_list_once() {
    let stack = grocery_stack::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &stack.client_properties()).unwrap();
    let stats_file = dir.path().join("stats.json");
    let producer = producer(&stack).await;
    let (first, second) = (pick_list(1), pick_list(2));
    for p in [&first, &first, &second, &first] {
        producer.send(p).await.unwrap();
    }
    let mut command = Command::new(BIN);
    command
        .arg("--config")
        .arg(&config)
        .args([
            "--json",
            "--listen",
            "127.0.0.1:0",
            "--group",
            "json-test",
            "--stats-file",
        ])
        .arg(&stats_file);
    let mut consumer =
        Process::start("picklist-consumer", &mut command, Output::default()).unwrap();
    consumer
        .stderr()
        .wait_count(WAIT, 2, |l| l.contains("duplicate pick list suppressed"))
        .unwrap();
    consumer.stdout().wait_count(WAIT, 2, |_| true).unwrap();
    let status = consumer.terminate(Duration::from_secs(60)).unwrap();
    assert!(status.success(), "{status:?}");

    let lines = consumer.stdout().all();
    assert_eq!(lines.len(), 2, "{lines:#?}");
    let shown: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut ids: Vec<&str> = shown
        .iter()
        .map(|v| v["picklist_id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    assert_eq!(
        ids,
        [
            first.picklist_id.to_string(),
            second.picklist_id.to_string()
        ]
    );
    for v in &shown {
        assert!(v["displayed_at_ms"].as_i64().unwrap() > 1_700_000_000_000);
        assert_eq!(v["assigned_picker"], "Ana");
        assert_eq!(v["items_to_pick"].as_array().unwrap().len(), 2);
    }
    let stats: Value =
        serde_json::from_str(&std::fs::read_to_string(&stats_file).unwrap()).unwrap();
    assert_eq!(
        stats,
        serde_json::json!({"shown": 2, "duplicates_suppressed": 2, "dead_lettered": 0})
    );
    assert!(
        consumer
            .stderr()
            .all()
            .iter()
            .any(|l| l.contains("shown=2") && l.contains("duplicates_suppressed=2"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_view_and_live_page() {
    let stack = grocery_stack::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &stack.client_properties()).unwrap();
    let producer = producer(&stack).await;
    let early = pick_list(7);
    producer.send(&early).await.unwrap();
    let mut command = Command::new(BIN);
    command
        .arg("--config")
        .arg(&config)
        .args(["--http", "127.0.0.1:0"]);
    let mut consumer =
        Process::start("picklist-consumer", &mut command, Output::default()).unwrap();
    let base = format!(
        "http://{}",
        consumer.listening_addr(Duration::from_secs(60)).unwrap()
    );
    let http = reqwest::Client::new();

    let page = http.get(&base).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("EventSource(\"events\")"), "{page}");
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "no external resources"
    );
    let health = http.get(format!("{base}/health")).send().await.unwrap();
    assert_eq!(health.text().await.unwrap(), "ok");

    // The text view shows the early pick list; the page gets it as a recent one.
    consumer
        .stdout()
        .wait_for(WAIT, |l| l.contains(&early.order_id.to_string()))
        .unwrap();
    let mut events = http.get(format!("{base}/events")).send().await.unwrap();
    assert_eq!(events.status(), 200);
    let late = pick_list(8);
    producer.send(&late).await.unwrap();
    let mut received = String::new();
    tokio::time::timeout(WAIT, async {
        while !(received.contains(&early.picklist_id.to_string())
            && received.contains(&late.picklist_id.to_string()))
        {
            let chunk = events.chunk().await.unwrap().expect("stream open");
            received.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await
    .unwrap_or_else(|_| panic!("events so far: {received}"));
    assert!(received.contains("event: picklist"), "{received}");
    let text = consumer.stdout().all().join("\n");
    assert!(
        text.contains("Bananas") && text.contains("Whole milk 1L"),
        "{text}"
    );
    assert!(text.contains("Ana"), "{text}");
    // `/metrics` counts both (the count follows the page's event by a moment: polled).
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let metrics = http.get(format!("{base}/metrics")).send().await.unwrap();
        let metrics = metrics.text().await.unwrap();
        if metrics.contains("\npicklist_consumer_shown_total 2\n") {
            assert!(
                metrics.contains("\npicklist_consumer_duplicates_suppressed_total 0\n"),
                "{metrics}"
            );
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{metrics}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // SIGTERM stops the process even with a page still connected.
    let status = consumer.terminate(Duration::from_secs(60)).unwrap();
    assert!(status.success(), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_the_output_even_at_trace_level() {
    let stack = grocery_stack::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let properties = format!(
        "{}basic.auth.credentials.source=USER_INFO\nbasic.auth.user.info=KEY:SuperSecret123\n",
        stack.client_properties()
    );
    let config = write_config(dir.path(), &properties).unwrap();
    producer(&stack).await.send(&pick_list(5)).await.unwrap();
    let mut command = Command::new(BIN);
    command
        .arg("--config")
        .arg(&config)
        .args(["--json", "--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "trace");
    let mut consumer =
        Process::start("picklist-consumer", &mut command, Output::default()).unwrap();
    // Decoding fetched the writer schema from the registry with the credentials.
    consumer
        .stdout()
        .wait_for(WAIT, |l| l.contains("picklist_id"))
        .unwrap();
    assert!(
        consumer
            .terminate(Duration::from_secs(60))
            .unwrap()
            .success()
    );
    let all = [consumer.stdout().all(), consumer.stderr().all()]
        .concat()
        .join("\n");
    assert!(all.len() > 1000, "trace logging produced output");
    assert!(!all.contains("SuperSecret123"), "secret leaked");
    assert!(
        !all.contains("S0VZOlN1cGVyU2VjcmV0MTIz"),
        "secret leaked (base64)"
    );
}

#[test]
fn bad_configuration_exits_2_with_one_line() {
    let out = Command::new(BIN)
        .args(["--config", "/nonexistent/client.properties"])
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    test_support::assert_config_refused(&out, "/nonexistent/client.properties");
}
