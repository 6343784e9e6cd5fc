//! The example's generated type through the local stack (mock Kafka + Schema Registry): the core
//! producer and consumer in-process, then the example binary as a process.

use std::time::Duration;

use avro_events::{Client, Config, ConsumerOptions, Event};
use avro_events_example::{Reading, simulated};
use local_stack::{Stack, StackOptions};

const WAIT: Duration = Duration::from_secs(60);

/// A stack with no grocery topics, and the example's topic created.
async fn stack() -> Stack {
    let stack = Stack::start_with(StackOptions::default()).await.unwrap();
    stack
        .mock_kafka()
        .expect("the default stack runs the mock cluster")
        .create_topic(Reading::TOPIC, 3)
        .unwrap();
    stack
}

#[tokio::test]
async fn generated_readings_round_trip_through_producer_and_consumer() {
    let stack = stack().await;
    let config = Config::from_properties_str(&stack.client_properties()).unwrap();
    let client = Client::from_config(config).unwrap();

    let sent: Vec<Reading> = (0..8).map(simulated).collect();
    let producer = client.producer().await.unwrap();
    for reading in &sent {
        let delivered = producer.send(reading).await.unwrap();
        assert_eq!(delivered.topic, "sensor.readings.v1");
    }

    let consumer = client
        .consumer::<Reading>(ConsumerOptions::new("example-round-trip"))
        .await
        .unwrap();
    let mut received = Vec::new();
    while received.len() < sent.len() {
        let record = tokio::time::timeout(WAIT, consumer.recv())
            .await
            .unwrap_or_else(|_| {
                panic!("only {} of {} readings arrived", received.len(), sent.len())
            })
            .unwrap();
        // The generated key() is the record key on the wire.
        assert_eq!(
            record.meta.key.as_deref(),
            Some(record.event.key().as_str())
        );
        consumer.ack(&record.meta).unwrap();
        received.push(record.event);
    }
    consumer.close().await.unwrap();

    // Each sensor's readings stay in order (one key, one partition); all arrive intact.
    received.sort_by_key(|r| r.taken_at);
    assert_eq!(received, sent);
    stack.shutdown().await;
}

#[tokio::test]
async fn the_example_binary_produces_and_consumes_its_readings() {
    let stack = stack().await;
    let dir = tempfile::tempdir().unwrap();
    let properties = dir.path().join("client.properties");
    std::fs::write(&properties, stack.client_properties()).unwrap();

    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_avro-events-example"))
        .arg(&properties)
        .arg("5")
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    assert_eq!(
        stdout
            .lines()
            .filter(|l| l.starts_with("sent reading "))
            .count(),
        5,
        "{stdout}"
    );
    assert_eq!(
        stdout
            .lines()
            .filter(|l| l.starts_with("received sensor-"))
            .count(),
        5,
        "{stdout}"
    );
    stack.shutdown().await;
}

#[tokio::test]
async fn the_example_binary_exits_with_a_usage_error_without_arguments() {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_avro-events-example"))
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("usage: avro-events-example"));
}
