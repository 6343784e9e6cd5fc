//! The simulation mode against the local stack: report, summary, reproducibility, bad
//! configuration and secrets in logs.

use std::{collections::BTreeSet, process::Command};

use test_support::write_config;

const BIN: &str = env!("CARGO_BIN_EXE_order-producer");

fn report_ids(path: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert!(v["order_time_ms"].as_i64().unwrap() > 1_700_000_000_000);
            v["order_id"].as_str().unwrap().to_owned()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_reports_and_summarises_reproducibly() {
    let stack = grocery_stack::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &stack.client_properties()).unwrap();
    let mut runs = Vec::new();
    for (run, rate) in [(1, "0"), (2, "200")] {
        let report = dir.path().join(format!("report-{run}.jsonl"));
        let out = Command::new(BIN)
            .arg("--config")
            .arg(&config)
            .args(["--count", "25", "--rate", rate, "--seed", "7", "--report"])
            .arg(&report)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{out:?}");
        assert!(stdout.starts_with("sent 25 orders in "), "{stdout}");
        assert!(stdout.trim_end().ends_with(", 0 failed"), "{stdout}");
        let ids = report_ids(&report);
        assert_eq!(ids.len(), 25);
        runs.push(ids.into_iter().collect::<BTreeSet<_>>());
    }
    assert_eq!(runs[0].len(), 25, "order ids are unique");
    assert_eq!(runs[0], runs[1], "same seed, same orders");
}

/// Without `--seed` each run draws its own seed, so a second run places new orders (with a
/// fixed default seed it placed the same order ids again, which fulfillment then suppressed as
/// duplicates); the seed is logged, and giving it back places the same orders.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_seed_each_run_places_new_orders_and_logs_its_seed() {
    let stack = grocery_stack::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &stack.client_properties()).unwrap();
    let run = |name: &str, seed: Option<&str>| {
        let report = dir.path().join(format!("{name}.jsonl"));
        let mut command = Command::new(BIN);
        command
            .arg("--config")
            .arg(&config)
            .args(["--count", "5", "--rate", "0", "--report"])
            .arg(&report)
            .env_remove("ORDER_PRODUCER_SEED")
            .env("RUST_LOG", "info");
        if let Some(seed) = seed {
            command.args(["--seed", seed]);
        }
        let out = command.output().unwrap();
        assert!(out.status.success(), "{out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let seed = stderr
            .split_whitespace()
            .find_map(|word| word.strip_prefix("seed="))
            .unwrap_or_else(|| panic!("no seed=N in the log: {stderr}"))
            .to_owned();
        assert!(
            stderr.contains(&format!("--seed {seed} places these same orders again")),
            "{stderr}"
        );
        (
            seed,
            report_ids(&report).into_iter().collect::<BTreeSet<_>>(),
        )
    };
    let (first_seed, first) = run("first", None);
    let (second_seed, second) = run("second", None);
    assert_ne!(first_seed, second_seed);
    assert!(first.is_disjoint(&second), "{first:?} {second:?}");
    let (again_seed, again) = run("again", Some(&first_seed));
    assert_eq!((again_seed, again), (first_seed, first));
}

/// A configuration error says which file was read (or that none was) and which flag or
/// environment variable would give the key; a missing file is said to be missing, with its
/// path.
#[test]
fn configuration_errors_name_the_file_and_the_flag_or_variable() {
    let dir = tempfile::tempdir().unwrap();
    let no_key = write_config(dir.path(), "schema.registry.url=http://127.0.0.1:1\n").unwrap();
    let missing = dir.path().join("missing.properties");
    let cases: [(Option<&std::path::Path>, &[&str]); 3] = [
        (
            None,
            &[
                "'bootstrap.servers': missing",
                "no configuration file was read",
                "--config PATH",
                "GROCERY_CONFIG",
                "GROCERY_BOOTSTRAP_SERVERS",
            ],
        ),
        (
            Some(&missing),
            &[
                "configuration file not found: ",
                &missing.display().to_string(),
            ],
        ),
        (
            Some(&no_key),
            &[
                "'bootstrap.servers': missing",
                &format!("read from {}", no_key.display()),
                "GROCERY_BOOTSTRAP_SERVERS",
            ],
        ),
    ];
    for (config, named) in cases {
        let mut command = Command::new(BIN);
        if let Some(config) = config {
            command.arg("--config").arg(config);
        }
        let out = command
            .args(["--count", "1"])
            .env_remove("GROCERY_CONFIG")
            .env_remove("GROCERY_BOOTSTRAP_SERVERS")
            .env("RUST_LOG", "off")
            .output()
            .unwrap();
        for text in named {
            test_support::assert_config_refused(&out, text);
        }
    }
}

#[test]
fn bad_configuration_exits_2_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("", "missing.properties"),
        (
            "schema.registry.url=http://127.0.0.1:1\n",
            "bootstrap.servers",
        ),
        (
            "bootstrap.servers=127.0.0.1:1\nschema.registry.url=http://127.0.0.1:1\nauto.register.schemas=maybe\n",
            "auto.register.schemas",
        ),
        // Mistyped librdkafka properties: exit 2 naming the key, not exit 1 at client creation.
        (
            "bootstrap.server=127.0.0.1:1\nbootstrap.servers=127.0.0.1:1\nschema.registry.url=http://127.0.0.1:1\n",
            "'bootstrap.server'",
        ),
        (
            "bootstrap.servers=127.0.0.1:1\nschema.registry.url=http://127.0.0.1:1\nlinger.mss=5\n",
            "'linger.mss'",
        ),
    ];
    for (properties, named) in cases {
        let config = if properties.is_empty() {
            dir.path().join("missing.properties")
        } else {
            write_config(dir.path(), properties).unwrap()
        };
        for args in [&["--count", "1"][..], &["serve", "--listen", "127.0.0.1:0"]] {
            let out = Command::new(BIN)
                .arg("--config")
                .arg(&config)
                .args(args)
                .env_remove("GROCERY_CONFIG")
                .env("RUST_LOG", "off")
                .output()
                .unwrap();
            test_support::assert_config_refused(&out, named);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_the_output() {
    let stack = grocery_stack::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let properties = format!(
        "{}basic.auth.credentials.source=USER_INFO\nbasic.auth.user.info=KEY:SuperSecret123\n",
        stack.client_properties()
    );
    let config = write_config(dir.path(), &properties).unwrap();
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .args(["--count", "3", "--rate", "0"])
        .env("RUST_LOG", "trace")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(all.len() > 1000, "trace logging produced output");
    assert!(!all.contains("SuperSecret123"), "secret leaked");
    // Base64 of "KEY:SuperSecret123", as an Authorization header would carry it.
    assert!(!all.contains("S0VZOlN1cGVyU2VjcmV0MTIz"), "secret leaked");
}

/// `GROCERY_*` variables the binary reads itself (here `GROCERY_CATALOG`) are not taken for
/// Kafka properties.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grocery_catalog_variable_is_not_a_kafka_property() {
    let stack = grocery_stack::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &stack.client_properties()).unwrap();
    let catalog = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/catalog.csv");
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .args(["--count", "3", "--rate", "0"])
        .env("GROCERY_CATALOG", catalog)
        .env("GROCERY_REAL_KAFKA_CONFIG", "/nonexistent/real.properties")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(stdout.starts_with("sent 3 orders in "), "{stdout}");
}

/// `--listen`: `/health`, `/metrics`, and the rate changed at run time through `PUT /rate`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rate_changes_while_it_runs() {
    use std::time::{Duration, Instant};

    let stack = grocery_stack::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &stack.client_properties()).unwrap();
    let mut producer = test_support::Process::start(
        "order-producer",
        Command::new(BIN).arg("--config").arg(&config).args([
            "--count",
            "1000000",
            "--rate",
            "1",
            "--listen",
            "127.0.0.1:0",
        ]),
        test_support::Output::default(),
    )
    .unwrap();
    let addr = producer.listening_addr(Duration::from_secs(60)).unwrap();
    let http = reqwest::Client::new();
    let get = |path: &str| {
        let request = http.get(format!("http://{addr}{path}"));
        async move { request.send().await.unwrap().text().await.unwrap() }
    };
    assert_eq!(get("/health").await, "ok");
    let metrics = get("/metrics").await;
    assert_eq!(
        test_support::metric(&metrics, "order_producer_rate"),
        Some(1.0),
        "{metrics}"
    );
    let put = |body: &'static str| {
        http.put(format!("http://{addr}/rate"))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    for bad in [r#"{"rate": -1}"#, r#"{"rate": "fast"}"#, "rate=5"] {
        let status = put(bad).await.unwrap().status();
        assert_eq!(status, 400, "{bad}");
    }
    assert_eq!(put(r#"{"rate": 500}"#).await.unwrap().status(), 200);
    // At 1 order/s, 300 orders would take 5 minutes.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let metrics = get("/metrics").await;
        let acked: u64 = counter(&metrics, "order_producer_orders_acked_total");
        if acked >= 300 {
            assert_eq!(
                test_support::metric(&metrics, "order_producer_rate"),
                Some(500.0),
                "{metrics}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "rate unchanged: {metrics}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let status = producer.terminate(Duration::from_secs(30)).unwrap();
    assert!(status.success(), "{status}");
    let summary = producer.stdout().all().join("\n");
    assert!(summary.starts_with("sent "), "{summary}");
    assert!(summary.trim_end().ends_with(", 0 failed"), "{summary}");
}

fn counter(text: &str, name: &str) -> u64 {
    test_support::metric(text, name).unwrap_or(0.0) as u64
}

/// The order contract runs in the producer: order-producer writes orders with the schema
/// registered under `grocery.orders.v1-value` with its contract (the local stack registers it,
/// as Terraform does), so an order without lines or with a quantity below 1 is refused by
/// `order_has_lines` and goes to `grocery.orders.v1.dlq` with Confluent's `__rule.*` headers,
/// never to the orders topic. The Order API refuses such an order before it reaches the
/// producer (400), so the simulator makes them: `--invalid-every 4` zeroes the first line's
/// quantity of every fourth order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_the_contract_refuses_go_to_the_dead_letter_topic() {
    use grocery_events::{Client, Config, ConsumerOptions, Order, topics};
    use rdkafka::{
        Message as _,
        consumer::{BaseConsumer, Consumer as _},
        message::Headers as _,
    };

    let stack = grocery_stack::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &stack.client_properties()).unwrap();
    let report = dir.path().join("report.jsonl");
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .args(["--count", "12", "--rate", "0", "--invalid-every", "4"])
        .arg("--report")
        .arg(&report)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout
            .trim_end()
            .ends_with(", 0 failed, 3 refused by the order contract (dead-lettered)"),
        "{stdout}"
    );
    let accepted: BTreeSet<String> = report_ids(&report).into_iter().collect();
    assert_eq!(
        accepted.len(),
        9,
        "the report lists the orders acknowledged"
    );

    // The orders topic holds the nine, every line with a positive quantity.
    let client =
        Client::from_config(Config::from_properties_str(&stack.client_properties()).unwrap())
            .unwrap();
    let consumer = client
        .consumer::<Order>(ConsumerOptions::new("contract-orders"))
        .await
        .unwrap();
    let mut on_topic = BTreeSet::new();
    while on_topic.len() < accepted.len() {
        let received = tokio::time::timeout(std::time::Duration::from_secs(30), consumer.recv())
            .await
            .expect("the acknowledged orders on the topic")
            .unwrap();
        assert!(
            !received.event.items.is_empty()
                && received.event.items.iter().all(|line| line.quantity > 0),
            "{:?}",
            received.event
        );
        on_topic.insert(received.event.order_id.to_string());
        consumer.ack(&received.meta).unwrap();
    }
    assert_eq!(on_topic, accepted);
    consumer.close().await.unwrap();

    // The three refused ones are on the dead-letter topic, as JSON with the rule's headers.
    let dlq: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", stack.bootstrap_servers())
        .set("group.id", "contract-dlq")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    dlq.subscribe(&[&topics::dead_letter(topics::ORDERS)])
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut refused = BTreeSet::new();
    while refused.len() < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "three dead letters, got {refused:?}"
        );
        let Some(message) = dlq.poll(std::time::Duration::from_millis(200)) else {
            continue;
        };
        let message = message.unwrap();
        let header = |name: &str| {
            message
                .headers()
                .and_then(|h| h.iter().find(|h| h.key == name))
                .and_then(|h| h.value)
                .map(|v| String::from_utf8_lossy(v).into_owned())
        };
        assert_eq!(header("__rule.name").as_deref(), Some("order_has_lines"));
        assert_eq!(header("__rule.topic").as_deref(), Some(topics::ORDERS));
        let value: serde_json::Value = serde_json::from_slice(message.payload().unwrap()).unwrap();
        assert_eq!(value["items"][0]["quantity"], 0, "{value}");
        let id = value["order_id"].as_str().unwrap().to_owned();
        assert!(!accepted.contains(&id), "{id} is not on the orders topic");
        refused.insert(id);
    }
}

/// Without the order schema registered no order can be written with the contract: a
/// configuration error at start (exit status 2) naming the subject and how to register it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unregistered_order_schema_is_a_configuration_error() {
    let stack = local_stack::Stack::start_with(local_stack::StackOptions {
        schemas: Vec::new(),
        ..grocery_stack::options()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &stack.client_properties()).unwrap();
    for serve in [false, true] {
        let mut command = Command::new(BIN);
        command.arg("--config").arg(&config);
        if serve {
            command.args(["serve", "--listen", "127.0.0.1:0"]);
        } else {
            command.args(["--count", "1", "--rate", "0"]);
        }
        let out = command.output().unwrap();
        test_support::assert_config_refused(&out, "'grocery.orders.v1-value'");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("grocery.orders.v1.contract.json"),
            "{stderr}"
        );
    }
}
