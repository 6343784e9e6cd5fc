//! `cargo xtask bench --quick` on the mock cluster, as CI runs it: the bench's short form (one
//! small round of every measurement) exits 0 and reports every run, so a bench that no longer
//! runs (an anchor that cannot encode the current schemas, a service that does not start)
//! fails the build. The figures are printed, not asserted: speed is not a test's business.
//!
//! The real-broker form is `tests/bench_kafka_process.rs`.

mod bench_support;

#[test]
fn the_quick_bench_runs_on_the_mock_cluster() {
    let report = bench_support::run_quick(&[]);
    assert_eq!(report["broker"], "librdkafka mock cluster");
}
