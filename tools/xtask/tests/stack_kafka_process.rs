//! `cargo xtask stack --broker kafka --auth oauth` as a person runs it: a real Apache Kafka
//! broker and its identity provider in a separate process; Confluent's Python client and this
//! library's clients use the written client.properties unchanged; SIGTERM stops everything.
//!
//! Built only with the `real-broker` feature:
//! `cargo test -p xtask --features real-broker --test stack_kafka_process`.

use std::{process::Command, time::Duration};

use grocery_events::{Client, Config, ConsumerOptions, Order};
use test_support::{Output, Process};
use uuid::Uuid;

fn get(text: &str, key: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("{key} missing from {text}"))
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_oauth_real_broker_stack_serves_other_processes_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let props_path = dir.path().join("client.properties");
    let mut stack = Process::start(
        "xtask stack",
        Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args([
                "stack",
                "--broker",
                "kafka",
                "--auth",
                "oauth",
                "--properties-out",
            ])
            .arg(&props_path),
        Output::default(),
    )
    .unwrap();
    // The stack prints the properties once the broker, the IdP and the registry are up.
    stack
        .stdout()
        .wait_for(Duration::from_secs(300), |l| {
            l.starts_with("# Ctrl-C stops the stack")
        })
        .unwrap();
    let printed = stack.stdout().all().join("\n");
    let written = std::fs::read_to_string(&props_path)
        .unwrap_or_else(|e| panic!("no client.properties ({e}); the stack printed:\n{printed}"));
    for (key, want) in [
        ("security.protocol", "SASL_PLAINTEXT"),
        ("sasl.mechanisms", "OAUTHBEARER"),
        ("sasl.oauthbearer.method", "oidc"),
        ("sasl.oauthbearer.client.id", "admin"),
    ] {
        assert_eq!(get(&written, key), want, "{written}");
    }
    let bootstrap = get(&written, "bootstrap.servers");
    let token_url = get(&written, "sasl.oauthbearer.token.endpoint.url");
    let per_service = dir.path().join("client.order-producer.properties");
    assert_eq!(
        get(
            &std::fs::read_to_string(&per_service).unwrap(),
            "sasl.oauthbearer.client.id"
        ),
        "order-producer"
    );

    // Confluent's Python client, with the written file unchanged (its own OIDC client).
    let python = local_stack::python::interop_venv().unwrap();
    let script = local_stack::python::workspace_dir().join("scripts/interop/kafka_roundtrip.py");
    let output = Command::new(&python)
        .arg(&script)
        .arg(&props_path)
        .args(["grocery.orders.v1", "30"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "python client failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(report["produced"], 30);
    assert_eq!(report["consumed"], 30);

    // This library's producer and consumer, with the per-service identities.
    let producer_config = Config::from_file(&per_service).unwrap();
    let client = Client::from_config(producer_config.clone()).unwrap();
    let producer = client.producer().await.unwrap();
    let run = Uuid::new_v4();
    let order = grocery_stack::sample::milk_order(run, run, 1);
    producer.send(&order).await.unwrap();
    let consumer_config =
        Config::from_file(dir.path().join("client.fulfillment-service.properties")).unwrap();
    let consumer = Client::from_config(consumer_config)
        .unwrap()
        .consumer::<Order>(ConsumerOptions::new(format!("fulfillment-xtask-{run}")))
        .await
        .unwrap();
    loop {
        let received = tokio::time::timeout(Duration::from_secs(60), consumer.recv())
            .await
            .expect("the library's order arrives within a minute")
            .unwrap();
        consumer.ack(&received.meta).unwrap();
        if received.event.order_id == run {
            break;
        }
    }
    consumer.close().await.unwrap();
    drop(consumer);
    drop(producer);

    // SIGTERM: exits 0 and leaves nothing behind (files, broker and IdP ports).
    let status = stack.terminate(Duration::from_secs(90)).unwrap();
    assert!(status.success(), "{status:?}");
    assert!(!props_path.exists(), "client.properties removed on exit");
    assert!(
        !per_service.exists(),
        "per-service properties removed on exit"
    );
    for address in [
        bootstrap.clone(),
        token_url
            .trim_start_matches("http://")
            .trim_end_matches("/token")
            .to_owned(),
    ] {
        assert!(
            std::net::TcpStream::connect(&address).is_err(),
            "{address} still accepts connections"
        );
    }
}
