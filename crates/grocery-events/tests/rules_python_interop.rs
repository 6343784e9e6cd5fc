//! Data-contract rules against Confluent's Python client with its `rules` extra
//! (`confluent-kafka[rules]`: `CelExecutor`, `CelFieldExecutor`, `DlqAction`), both ways,
//! through the local Schema Registry and the mock cluster: the order contract's
//! `order_has_lines` condition (error and dead letter on both sides), transforms giving the same
//! bytes, READ conditions failing on both sides, `use.latest.with.metadata`, and migration
//! rules refused. The Python side is `scripts/interop/rules_check.py`, run with the interpreter
//! of `local_stack::python::rules_venv()`.

mod common;

use std::path::Path;

use avro_events::{
    registry::{RegistryClient, RegistryConfig},
    rules::{Metadata, Rule, RuleKind, RuleMode, RuleSet},
};
use grocery_events::{Client, Config, Error, Event, Order, contracts::order_contract};
use local_stack::{
    Stack,
    python::{rules_venv, workspace_dir},
};
use serde_json::{Value, json};

const SCRIPT: &str = "scripts/interop/rules_check.py";

/// Runs `rules_check.py` with `args`; its exit status must be 0.
async fn python(args: &[&str]) {
    let python = tokio::task::spawn_blocking(rules_venv)
        .await
        .expect("venv task")
        .expect("the rules interop virtual environment (python3 -m venv + pip install)");
    let output = tokio::process::Command::new(&python)
        .arg(workspace_dir().join(SCRIPT))
        .args(args)
        .output()
        .await
        .expect("run rules_check.py");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("rules_check: OK"),
        "rules_check.py {args:?} failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
}

fn write_json(path: &Path, value: &Value) -> String {
    std::fs::write(path, serde_json::to_vec(value).unwrap()).unwrap();
    path.to_str().unwrap().to_owned()
}

fn read_json(path: &Path) -> Vec<Value> {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Python serializes `orders` for `topic` with the latest version (and its rules), or the
/// latest with `metadata` when given: per order `Ok(payload)` or `Err(message)`.
async fn python_writes(
    stack: &Stack,
    topic: &str,
    orders: &[&Order],
    metadata: Option<&Value>,
) -> Vec<Result<Vec<u8>, String>> {
    let dir = tempfile::Builder::new()
        .prefix("write")
        .tempdir()
        .expect("temp dir");
    let input = write_json(
        &dir.path().join("in.json"),
        &serde_json::to_value(orders).unwrap(),
    );
    let output = dir.path().join("out.json");
    let url = stack.registry_url();
    let mut args = vec![
        "write",
        &url,
        stack.bootstrap_servers(),
        topic,
        &input,
        output.to_str().unwrap(),
    ];
    let metadata = metadata.map(Value::to_string);
    args.extend(metadata.as_deref());
    python(&args).await;
    read_json(&output)
        .into_iter()
        .map(|r| match (&r["ok"], &r["error"]) {
            (Value::String(hex), _) => Ok(from_hex(hex)),
            (_, Value::String(error)) => Err(error.clone()),
            _ => panic!("unexpected result {r}"),
        })
        .collect()
}

/// Python deserializes `payloads` (writer schema and its READ rules): per payload the value as
/// JSON or the error message.
async fn python_reads(
    stack: &Stack,
    topic: &str,
    payloads: &[&[u8]],
) -> Vec<Result<Value, String>> {
    python_reads_with(stack, topic, payloads, false).await
}

/// [`python_reads`], with a DLQ action sending to the stack's broker when `dlq`.
async fn python_reads_with(
    stack: &Stack,
    topic: &str,
    payloads: &[&[u8]],
    dlq: bool,
) -> Vec<Result<Value, String>> {
    let dir = tempfile::Builder::new()
        .prefix("read")
        .tempdir()
        .expect("temp dir");
    let hex: Vec<String> = payloads.iter().map(|p| to_hex(p)).collect();
    let input = write_json(&dir.path().join("in.json"), &json!(hex));
    let output = dir.path().join("out.json");
    let url = stack.registry_url();
    let mut args = vec!["read", &url, topic, &input, output.to_str().unwrap()];
    if dlq {
        args.push(stack.bootstrap_servers());
    }
    python(&args).await;
    read_json(&output)
        .into_iter()
        .map(|r| match (&r["ok"], &r["error"]) {
            (Value::Null, Value::String(error)) => Err(error.clone()),
            (ok, _) => Ok(ok.clone()),
        })
        .collect()
}

/// The first `count` records of `topic`, read by Python's consumer.
async fn dead_letters(stack: &Stack, topic: &str, count: usize) -> Vec<Value> {
    let dir = tempfile::Builder::new()
        .prefix("dlq")
        .tempdir()
        .expect("temp dir");
    let output = dir.path().join("dlq.json");
    let count_text = count.to_string();
    python(&[
        "dlq",
        stack.bootstrap_servers(),
        topic,
        &count_text,
        output.to_str().unwrap(),
    ])
    .await;
    let records = read_json(&output);
    assert_eq!(records.len(), count, "dead letters on {topic}: {records:?}");
    records
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn from_hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

fn registry(stack: &Stack) -> RegistryClient {
    RegistryClient::new(&RegistryConfig::new(stack.registry_url())).unwrap()
}

/// A client writing with the latest registered version (and its rules), plus `extra`
/// properties.
fn latest_client(stack: &Stack, extra: &str) -> Client {
    let text = format!(
        "{}\nauto.register.schemas=false\nuse.latest.version=true\n{extra}\n",
        stack.client_properties()
    );
    Client::from_config(Config::from_properties_str(&text).unwrap()).unwrap()
}

fn without_lines(n: u32) -> Order {
    let mut order = common::bananas_order(n, 1);
    order.items.clear();
    order
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_order_condition_errors_and_dead_letters_the_order_on_both_sides() {
    let stack = Stack::start().await.unwrap();
    let topic = stack.unique_topic("rules-orders", 1).unwrap();
    let dlq = format!("{topic}.dlq");
    stack.kafka().create_topic(&dlq, 1).unwrap();
    // The grocery order contract, with the test's own dead-letter topic.
    let mut contract = order_contract();
    let rules = contract.rule_set.as_mut().unwrap();
    rules.domain_rules[0]
        .params
        .insert("dlq.topic".into(), dlq.clone());
    registry(&stack)
        .register_contract(
            &format!("{topic}-value"),
            Order::SCHEMA,
            contract.metadata.as_ref(),
            contract.rule_set.as_ref(),
            false,
        )
        .await
        .unwrap();
    let good = common::bananas_order(1, 2);
    let empty = without_lines(2);
    let zero = common::bananas_order(3, 0);

    // Python: the good order is written, the two others fail (and go to the DLQ topic).
    let written = python_writes(&stack, &topic, &[&good, &empty, &zero], None).await;
    let python_good = written[0].clone().expect("Python writes the good order");
    for failed in &written[1..] {
        let message = failed.as_ref().expect_err("Python refuses the order");
        assert!(message.contains("order_has_lines"), "{message}");
    }

    // Rust: the same three through the producer.
    let client = latest_client(&stack, "");
    let producer = client.producer().await.unwrap();
    producer.send_to(&topic, &good).await.unwrap();
    for order in [&empty, &zero] {
        let err = producer.send_to(&topic, order).await.unwrap_err();
        assert!(
            matches!(
                &err,
                Error::RuleFailed { rule, mode: "WRITE", dlq: true, dead_letter: Some(_), .. }
                    if rule == "order_has_lines"
            ),
            "{err:?}"
        );
    }

    // Each side reads what the other wrote.
    let codec = client.codec();
    assert_eq!(codec.decode::<Order>(&python_good).await.unwrap(), good);
    let rust_good = codec.encode_for(&topic, &good).await.unwrap();
    assert_eq!(rust_good, python_good, "same schema id, same body");
    let read = python_reads(&stack, &topic, &[&rust_good]).await;
    assert_eq!(
        read[0].as_ref().unwrap(),
        &serde_json::to_value(&good).unwrap()
    );

    // The dead-letter topic: Python's two, then Rust's two, alike.
    let letters = dead_letters(&stack, &dlq, 4).await;
    for (python, rust) in letters[..2].iter().zip(&letters[2..]) {
        for header in [
            "__rule.name",
            "__rule.mode",
            "__rule.subject",
            "__rule.topic",
        ] {
            assert_eq!(
                python["headers"][header], rust["headers"][header],
                "{header}"
            );
        }
        assert_eq!(python["headers"]["__rule.name"], "order_has_lines");
        assert_eq!(python["headers"]["__rule.mode"], "WRITE");
        assert_eq!(python["headers"]["__rule.topic"], topic.as_str());
        assert_eq!(python["key"], rust["key"]);
        let value =
            |r: &Value| -> Value { serde_json::from_str(r["value"].as_str().unwrap()).unwrap() };
        assert_eq!(value(python), value(rust));
    }
    assert_eq!(
        serde_json::from_str::<Value>(letters[3]["value"].as_str().unwrap()).unwrap(),
        serde_json::to_value(&zero).unwrap()
    );
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn transforms_give_the_same_bytes_and_read_conditions_fail_on_both_sides() {
    let stack = Stack::start().await.unwrap();
    let topic = stack.unique_topic("rules-transform", 1).unwrap();
    let whole = "{'order_id': message.order_id, 'customer_id': message.customer_id, \
                 'items': message.items, 'order_total_cents': message.order_total_cents + 1, \
                 'currency': message.currency, 'order_time': message.order_time, \
                 'substitution': message.substitution, 'delivery_window': message.delivery_window}";
    let rules = RuleSet::domain([
        Rule::new("total", RuleKind::Transform, RuleMode::Write, "CEL", whole),
        Rule::new(
            "sku",
            RuleKind::Transform,
            RuleMode::Write,
            "CEL_FIELD",
            "name == 'sku' ; 'SKU-' + value",
        ),
        Rule::new(
            "small",
            RuleKind::Condition,
            RuleMode::Read,
            "CEL_FIELD",
            "name == 'quantity' ; value < 100",
        ),
        Rule::new(
            "usd",
            RuleKind::Condition,
            RuleMode::WriteRead,
            "CEL",
            "message.currency == 'USD'",
        )
        .on_failure("NONE,ERROR"),
    ]);
    registry(&stack)
        .register_contract(
            &format!("{topic}-value"),
            Order::SCHEMA,
            None,
            Some(&rules),
            false,
        )
        .await
        .unwrap();
    let plain = common::bananas_order(1, 2);
    let big = common::bananas_order(2, 500);
    let mut euro = common::bananas_order(3, 1);
    euro.currency = "EUR".into();

    let python_written: Vec<Vec<u8>> = python_writes(&stack, &topic, &[&plain, &big, &euro], None)
        .await
        .into_iter()
        .map(|r| r.expect("every order passes the WRITE rules"))
        .collect();
    let client = latest_client(&stack, "");
    let codec = client.codec();
    let mut rust_written = Vec::new();
    for order in [&plain, &big, &euro] {
        rust_written.push(codec.encode_for(&topic, order).await.unwrap());
    }
    assert_eq!(
        rust_written, python_written,
        "the transforms give the same bytes"
    );

    // Rust reads Python's: the transformed order, and READ failures for the others.
    let read = codec.decode::<Order>(&python_written[0]).await.unwrap();
    assert_eq!(read.items[0].sku, format!("SKU-{}", plain.items[0].sku));
    assert_eq!(read.order_total_cents, plain.order_total_cents + 1);
    for (payload, rule) in [(&python_written[1], "small"), (&python_written[2], "usd")] {
        let err = codec.decode::<Order>(payload).await.unwrap_err();
        assert!(
            matches!(&err, Error::RuleFailed { rule: r, mode: "READ", dlq: false, .. } if r == rule),
            "{err:?}"
        );
        assert!(!err.is_poison());
    }
    // Python reads Rust's alike.
    let payloads: Vec<&[u8]> = rust_written.iter().map(Vec::as_slice).collect();
    let read_by_python = python_reads(&stack, &topic, &payloads).await;
    assert_eq!(
        read_by_python[0].as_ref().unwrap(),
        &serde_json::to_value(&read).unwrap()
    );
    assert!(
        read_by_python[1].is_err() && read_by_python[2].is_err(),
        "{read_by_python:?}"
    );
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn latest_with_metadata_picks_the_version_with_the_contract_on_both_sides() {
    let stack = Stack::start().await.unwrap();
    let topic = stack.unique_topic("rules-metadata", 1).unwrap();
    let subject = format!("{topic}-value");
    let contract = order_contract();
    let registry = registry(&stack);
    let with_rules = registry
        .register_contract(
            &subject,
            Order::SCHEMA,
            contract.metadata.as_ref(),
            contract.rule_set.as_ref(),
            false,
        )
        .await
        .unwrap();
    // A later version of the same schema, other metadata, no rules: the latest.
    let relaxed = registry
        .register_contract(
            &subject,
            Order::SCHEMA,
            Some(&Metadata::with_properties([("contract", "none")])),
            Some(&RuleSet::default()),
            false,
        )
        .await
        .unwrap();
    assert_ne!(with_rules, relaxed);
    let empty = without_lines(1);

    // use.latest.version: the relaxed version, the empty order passes on both sides.
    let latest = latest_client(&stack, "")
        .codec()
        .encode_for(&topic, &empty)
        .await
        .unwrap();
    let python = python_writes(&stack, &topic, &[&empty], None).await;
    assert_eq!(python[0].as_ref().unwrap(), &latest);
    assert_eq!(latest[1..5], relaxed.to_be_bytes());

    // use.latest.with.metadata=contract=order-lines: the contract's version, which refuses it
    // (its DLQ topic, grocery.orders.v1.dlq, is auto-created by the mock cluster).
    let client = latest_client(&stack, "use.latest.with.metadata=contract=order-lines");
    let err = client.codec().encode_for(&topic, &empty).await.unwrap_err();
    assert!(
        matches!(&err, Error::RuleFailed { rule, .. } if rule == "order_has_lines"),
        "{err:?}"
    );
    let good = common::bananas_order(2, 1);
    let rust_good = client.codec().encode_for(&topic, &good).await.unwrap();
    assert_eq!(rust_good[1..5], with_rules.to_be_bytes());
    let metadata = json!({"contract": "order-lines"});
    let python = python_writes(&stack, &topic, &[&empty, &good], Some(&metadata)).await;
    assert!(
        python[0]
            .as_ref()
            .is_err_and(|e| e.contains("order_has_lines")),
        "{python:?}"
    );
    assert_eq!(python[1].as_ref().unwrap(), &rust_good);
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn migration_rules_are_refused_with_an_error_that_says_so() {
    let stack = Stack::start().await.unwrap();
    let topic = stack.unique_topic("rules-migration", 1).unwrap();
    let subject = format!("{topic}-value");
    let mut rules = RuleSet::default();
    rules.migration_rules.push(Rule::new(
        "rename",
        RuleKind::Transform,
        RuleMode::Upgrade,
        "JSONATA",
        "$merge([$sift($, function($v, $k) {$k != 'currency'}), {'money': $.currency}])",
    ));
    registry(&stack)
        .register_contract(&subject, Order::SCHEMA, None, Some(&rules), false)
        .await
        .unwrap();
    let order = common::bananas_order(1, 1);
    let err = latest_client(&stack, "")
        .codec()
        .encode_for(&topic, &order)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::UnsupportedRule { rule, .. } if rule == "rename"),
        "{err:?}"
    );
    assert!(err.to_string().contains("migration rules"), "{err}");
    // Python writes it (a migration only runs between major versions on read): Rust refuses
    // to read it rather than ignore the rule.
    let python = python_writes(&stack, &topic, &[&order], None).await;
    let payload = python[0].clone().unwrap();
    let err = latest_client(&stack, "")
        .codec()
        .decode::<Order>(&payload)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::UnsupportedRule { .. }), "{err:?}");
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_read_condition_with_dlq_dead_letters_the_original_bytes_on_both_sides() {
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let stack = Stack::start().await.unwrap();
    let topic = stack.unique_topic("rules-read-dlq", 1).unwrap();
    let dlq = format!("{topic}.dlq");
    stack.kafka().create_topic(&dlq, 1).unwrap();
    let rules = RuleSet::domain([Rule::new(
        "small",
        RuleKind::Condition,
        RuleMode::Read,
        "CEL",
        "message.items.all(line, line.quantity < 100)",
    )
    .on_failure("DLQ")
    .param("dlq.topic", dlq.clone())]);
    registry(&stack)
        .register_contract(
            &format!("{topic}-value"),
            Order::SCHEMA,
            None,
            Some(&rules),
            false,
        )
        .await
        .unwrap();
    let big = common::bananas_order(1, 500);
    let fine = common::bananas_order(2, 1);
    let written: Vec<Vec<u8>> = python_writes(&stack, &topic, &[&big, &fine], None)
        .await
        .into_iter()
        .map(|r| r.expect("no WRITE rule"))
        .collect();

    // Python reads them: the big order fails and its bytes go to the rule's dlq.topic.
    let payloads: Vec<&[u8]> = written.iter().map(Vec::as_slice).collect();
    let read = python_reads_with(&stack, &topic, &payloads, true).await;
    assert!(
        read[0].as_ref().is_err_and(|e| e.contains("small")),
        "{read:?}"
    );
    assert_eq!(
        read[1].as_ref().unwrap(),
        &serde_json::to_value(&fine).unwrap()
    );

    // The Rust consumer reads the same records from the topic: the big one is poison and is
    // dead-lettered with its original bytes (to <topic>.dlq, the consumer's dead-letter topic),
    // the fine one is handed out.
    let raw: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", stack.bootstrap_servers())
        .create()
        .unwrap();
    for (order, payload) in [&big, &fine].into_iter().zip(&written) {
        let key = order.key();
        raw.send(
            FutureRecord::to(&topic).key(&key).payload(payload),
            std::time::Duration::from_secs(30),
        )
        .await
        .unwrap();
    }
    let client = latest_client(&stack, "");
    let consumer = client
        .consumer_subscribed_to::<Order>(common::group("rules-read"), &[&topic])
        .await
        .unwrap();
    let received = tokio::time::timeout(std::time::Duration::from_secs(60), consumer.recv())
        .await
        .expect("a record within 60 s")
        .unwrap();
    assert_eq!(received.event, fine);
    assert_eq!(consumer.dead_lettered(), 1);
    consumer.ack(&received.meta).unwrap();
    consumer.close().await.unwrap();

    let letters = dead_letters(&stack, &dlq, 2).await;
    for letter in &letters {
        assert_eq!(
            letter["value_hex"],
            to_hex(&written[0]).as_str(),
            "{letter}"
        );
    }
    assert_eq!(letters[0]["headers"]["__rule.name"], "small");
    assert_eq!(letters[0]["headers"]["__rule.mode"], "READ");
    assert_eq!(letters[1]["headers"]["dlq.error.kind"], "rule_failed");
    // The clients go before the broker: a consumer or producer dropped after it may wait for
    // it forever.
    drop((consumer, raw, client));
    stack.shutdown().await;
}
