//! `cargo xtask demo --broker kafka` as a person runs it: the three services on a real Apache
//! Kafka broker, every order's pick list shown, exit status 0.
//!
//! Built only with the `real-broker` feature:
//! `cargo test -p xtask --features real-broker --test demo_kafka_process`.

use std::process::Command;

fn field<'a>(summary: &'a str, name: &str) -> &'a str {
    summary
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .unwrap_or_else(|| panic!("no '{name}' in the summary:\n{summary}"))
        .trim()
}

#[test]
fn the_demo_runs_on_a_real_kafka_broker() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args([
            "demo", "--broker", "kafka", "--orders", "40", "--rate", "40", "--dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "demo failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    assert_eq!(
        field(&stdout, "broker "),
        "Apache Kafka 4.1.1 (KRaft, 1 node, PLAINTEXT)"
    );
    assert_eq!(field(&stdout, "orders sent "), "40");
    assert_eq!(field(&stdout, "pick lists shown "), "40");
    assert_eq!(field(&stdout, "orders without pick list "), "0");
    assert_eq!(field(&stdout, "dead-lettered records "), "0");
    // Every order's pick list was printed as it arrived.
    assert_eq!(
        stdout
            .lines()
            .filter(|l| l.starts_with("pick list for order "))
            .count(),
        40,
        "{stdout}"
    );
    assert!(dir.path().join("services.log").exists());
}
