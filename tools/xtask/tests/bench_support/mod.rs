//! Runs `cargo xtask bench --quick` as a process and checks its report.

use std::process::Command;

use serde_json::Value;

/// Runs `xtask bench --quick` with `args`, prints its output (the figures), checks its exit
/// status, table and JSON report (every run of the quick form, with the counts it asked for),
/// and returns the report.
pub(crate) fn run_quick(args: &[&str]) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report.json");
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["bench", "--quick", "--out"])
        .arg(&out)
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}\n{stderr}");
    assert!(
        output.status.success(),
        "the quick bench failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    for row in [
        "| producer msgs/s (1 rounds × 200 msgs",
        "| producer: typed / anchor (rdkafka + schema_registry_converter) |",
        "| saturation, at-least-once (2000 orders backlog)",
        "| saturation, transactional (2000 orders backlog)",
        "| end to end, at-least-once (500 orders, sent → shown)",
        "| end to end, transactional (500 orders, sent → shown)",
        "| end to end, at-least-once (500 orders, sent → read by the same key counter)",
        "| end to end, transactional (500 orders, sent → read by the same key counter)",
        "| end to end, at-least-once (500 orders): shown by picklist-consumer / read by the key counter",
        "| order → display, local defaults, 200 orders/s (200 orders)",
        "| peak RSS:",
    ] {
        assert!(stdout.contains(row), "no '{row}' in the table:\n{stdout}");
    }
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(report["quick"], true);
    let producer = &report["producer"];
    let sides: Vec<&str> = producer["runs"]
        .as_array()
        .unwrap()
        .iter()
        .inspect(|run| assert_eq!(run["messages"], 200, "{run}"))
        .map(|run| run["side"].as_str().unwrap())
        .collect();
    assert_eq!(sides, ["typed", "anchor", "raw"]);
    let pipeline = &report["pipeline"];
    assert_eq!(pipeline["backlog"], 2000);
    let modes = pipeline["modes"].as_array().unwrap();
    let names: Vec<&str> = modes.iter().map(|m| m["mode"].as_str().unwrap()).collect();
    assert_eq!(names, ["at_least_once", "transactional"]);
    for mode in modes {
        // Each comparison holds its two flows' runs, the one compared first.
        for (comparison, expected) in [
            ("saturation", ["typed", "pass_through"]),
            ("end_to_end", ["typed", "pass_through"]),
            ("end_to_end_same_reader", ["typed_keys", "pass_through"]),
            ("display_over_key_counter", ["typed", "typed_keys"]),
        ] {
            let flows: Vec<&str> = mode[comparison]["runs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|run| run["flow"].as_str().unwrap())
                .collect();
            assert_eq!(flows, expected, "{comparison}");
        }
    }
    // The pass-through writes a pick list and two statuses per order.
    for bytes in pipeline["output_bytes"].as_array().unwrap() {
        assert!(bytes.as_u64().unwrap() > 0, "{}", pipeline["output_bytes"]);
    }
    let latency = pipeline["latency"].as_array().unwrap();
    assert_eq!(latency.len(), 2, "{latency:?}");
    for run in latency {
        assert_eq!(run["orders"], 200, "{run}");
    }
    for service in [
        "order_producer_mib",
        "fulfillment_service_mib",
        "picklist_consumer_mib",
    ] {
        assert!(
            pipeline["peak_rss"][service].as_f64().unwrap() > 0.0,
            "{service}: {}",
            pipeline["peak_rss"]
        );
    }
    report
}
