//! `avro-console produce` and `tail` as processes against the local stack (mock broker, local
//! Schema Registry): JSON lines in, the same JSON out with each record's schema id, subject and
//! version; a line that does not fit refused with its number and path; an undecodable record
//! shown, not skipped, on its topic and on the dead-letter topic a library consumer of
//! generic records sent it to.

use std::{path::Path, process::Stdio, time::Duration};

use avro_events::{Client, Config, ConsumerOptions, GenericRecord, dlq::headers as dlq_headers};
use local_stack::Stack;
use rdkafka::{
    ClientConfig,
    producer::{FutureProducer, FutureRecord},
};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt as _;

const CONSOLE: &str = env!("CARGO_BIN_EXE_avro-console");
const WAIT: Duration = Duration::from_secs(60);

const SCHEMA: &str = r#"{"type": "record", "name": "Delivery", "namespace": "io.example.console",
  "fields": [
    {"name": "id", "type": "string"},
    {"name": "qty", "type": "int"},
    {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    {"name": "state", "type": {"type": "enum", "name": "State", "symbols": ["NEW", "DONE"]}},
    {"name": "note", "type": ["null", "string"], "default": null},
    {"name": "proof", "type": "bytes"}
  ]}"#;

fn values() -> Vec<Value> {
    vec![
        json!({"id": "d-1", "qty": 2, "at": 1_763_769_600_123_i64, "state": "NEW",
               "note": {"string": "ring twice — ünïcode"}, "proof": "\u{0}\u{ff}"}),
        json!({"id": "d-2", "qty": -1, "at": 0, "state": "DONE", "note": null, "proof": ""}),
        json!({"id": "d-3", "qty": 0, "at": -5, "state": "NEW", "note": null, "proof": "ab"}),
    ]
}

/// Runs `avro-console --config <config> <args>` with `stdin`; returns (success, stdout,
/// stderr).
async fn console(config: &Path, args: &[&str], stdin: &str) -> (bool, String, String) {
    let mut child = tokio::process::Command::new(CONSOLE)
        .arg("--config")
        .arg(config)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start avro-console");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).await.unwrap();
    drop(input);
    let output = tokio::time::timeout(WAIT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("avro-console {args:?} did not finish"))
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn produce_and_tail_json_lines_and_show_what_does_not_decode() {
    let stack = Stack::start().await.unwrap();
    let topic = stack.unique_topic("console", 1).unwrap();
    let dlq = format!("{topic}.dlq");
    stack.kafka().create_topic(&dlq, 1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("client.properties");
    std::fs::write(&config, stack.client_properties()).unwrap();
    let schema_file = dir.path().join("delivery.avsc");
    std::fs::write(&schema_file, SCHEMA).unwrap();

    // Bytes that are not Avro, first on the topic.
    let raw: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", stack.bootstrap_servers())
        .create()
        .unwrap();
    raw.send(
        FutureRecord::to(&topic).key("garbage").payload(b"not avro"),
        WAIT,
    )
    .await
    .unwrap();

    let input: String = values().iter().map(|v| format!("{v}\n")).collect();
    let schema_path = schema_file.to_str().unwrap();
    let (ok, stdout, stderr) = console(
        &config,
        &[
            "produce",
            "--topic",
            &topic,
            "--schema-file",
            schema_path,
            "--key-field",
            "id",
        ],
        &input,
    )
    .await;
    assert!(ok, "produce failed: {stderr}");
    assert!(stdout.starts_with("produced 3 records"), "{stdout}");
    let subject = format!("{topic}-value");
    let client =
        Client::from_config(Config::from_properties_str(&stack.client_properties()).unwrap())
            .unwrap();
    let registered = client
        .codec()
        .registry()
        .latest_version(&subject)
        .await
        .unwrap();

    // A line that does not fit: refused with its number and the path, nothing produced from it.
    let bad = format!("{}\n{}\n", values()[0], json!({"id": "x", "qty": "two"}));
    let (ok, _, stderr) = console(&config, &["produce", "--topic", &topic], &bad).await;
    assert!(!ok, "a bad line fails the command");
    assert!(
        stderr.contains("line 2") && stderr.contains("$.qty: expected an int, found \"two\""),
        "{stderr}"
    );

    // The topic: the garbage shown with its error, then the values as given (and the one
    // line before the bad one), each with its schema.
    let (ok, stdout, stderr) =
        console(&config, &["tail", "--topic", &topic, "--max", "5"], "").await;
    assert!(ok, "tail failed: {stderr}");
    let lines = json_lines(&stdout);
    assert_eq!(lines.len(), 5, "{stdout}");
    assert_eq!(lines[0]["key"], "garbage");
    assert_eq!(lines[0]["error"]["kind"], "bad_magic_byte");
    assert_eq!(lines[0]["payload_hex"], "6e6f74206176726f");
    let mut expected = values();
    expected.push(values()[0].clone());
    // The first three keyed by --key-field, the last (no --key-field) with an empty key.
    let keys = ["d-1", "d-2", "d-3", ""];
    for ((line, value), key) in lines[1..].iter().zip(&expected).zip(keys) {
        assert_eq!(line["value"], *value, "{line}");
        assert_eq!(line["key"], key);
        assert_eq!(
            line["schema"],
            json!({"id": registered.id, "subject": subject, "version": 1})
        );
        assert_eq!(line["topic"], topic.as_str());
    }

    // A library consumer of generic records reads the same values and dead-letters the garbage.
    let consumer = client
        .consumer_subscribed_to::<GenericRecord>(
            ConsumerOptions::new(format!("console-{}", uuid_like())),
            &[topic.as_str()],
        )
        .await
        .unwrap();
    for value in &expected {
        let received = tokio::time::timeout(WAIT, consumer.recv())
            .await
            .expect("a record within the wait")
            .unwrap();
        assert_eq!(received.event.to_json().unwrap(), *value);
        consumer.ack(&received.meta).unwrap();
    }
    consumer.close().await.unwrap();

    // The dead-letter topic, through the same command.
    let (ok, stdout, stderr) = console(&config, &["tail", "--topic", &dlq, "--max", "1"], "").await;
    assert!(ok, "tail of the DLQ failed: {stderr}");
    let dead = &json_lines(&stdout)[0];
    assert_eq!(dead["key"], "garbage");
    assert_eq!(dead["error"]["kind"], "bad_magic_byte");
    assert_eq!(dead["headers"][dlq_headers::ERROR_KIND], "bad_magic_byte");
    assert_eq!(dead["headers"][dlq_headers::SOURCE_TOPIC], topic.as_str());
}

fn uuid_like() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}
