//! `cargo xtask bench --quick --broker kafka` as CI runs it: the bench's short form on a real
//! Apache Kafka broker exits 0 and reports every run (see `tests/bench_process.rs`).
//!
//! Built only with the `real-broker` feature:
//! `cargo test -p xtask --features real-broker --test bench_kafka_process`.

mod bench_support;

#[test]
fn the_quick_bench_runs_on_a_real_kafka_broker() {
    let report = bench_support::run_quick(&["--broker", "kafka"]);
    assert_eq!(
        report["broker"],
        "Apache Kafka 4.1.1 (KRaft, 1 node, PLAINTEXT)"
    );
}
