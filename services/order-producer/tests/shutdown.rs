//! A bounded shutdown when the broker goes away: after SIGTERM the simulation drains its
//! orders in flight for at most the grace period (`GROCERY_SHUTDOWN_GRACE_MS`), then says how
//! many it could not deliver and exits with status 4; a second SIGTERM during the drain exits
//! at once (143).

use std::{process::Command, time::Duration};

use local_stack::Stack;
use test_support::{Output, Process, Signal, number_after, write_config};

const BIN: &str = env!("CARGO_BIN_EXE_order-producer");
/// The bound of every wait: far past the short grace period, far below the broker's own
/// delivery timeout (300 s), which the old drain waited for.
const WAIT: Duration = Duration::from_secs(60);

fn wait_metric(addr: &str, series: &str, done: impl Fn(f64) -> bool) -> f64 {
    test_support::wait_metric(addr, series, WAIT, done).unwrap()
}

/// Starts the stack and the simulation (1,000 orders/s, `grace_ms`), waits for the broker to
/// acknowledge orders, then holds the broker's answers so that orders stay in flight, and
/// waits until many are queued. Returns the stack and the running process.
async fn producing_into_a_stalled_broker(grace_ms: u64) -> (Stack, Process, tempfile::TempDir) {
    let stack = grocery_stack::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let properties = format!("{}statistics.interval.ms=100\n", stack.client_properties());
    let config = write_config(dir.path(), &properties).unwrap();
    let mut command = Command::new(BIN);
    command
        .arg("--config")
        .arg(&config)
        .args([
            "--count",
            "1000000",
            "--rate",
            "1000",
            "--listen",
            "127.0.0.1:0",
        ])
        // The environment fallback of `--shutdown-grace-ms`.
        .env("GROCERY_SHUTDOWN_GRACE_MS", grace_ms.to_string());
    let producer = Process::start("order-producer", &mut command, Output::default()).unwrap();
    let addr = producer.listening_addr(WAIT).unwrap();
    wait_metric(&addr, "order_producer_orders_acked_total", |acked| {
        acked > 0.0
    });
    // Every answer of the broker is now held for 10 minutes: the orders sent from here on are
    // in flight until the process gives up on them.
    stack
        .kafka()
        .set_round_trip_time(1, Duration::from_secs(600))
        .unwrap();
    // At 1,000 orders/s a healthy broker keeps a handful queued; hundreds queued means the
    // held answers.
    wait_metric(
        &addr,
        "kafka_client_queued_messages{client=\"producer\"}",
        |queued| queued >= 300.0,
    );
    (stack, producer, dir)
}

/// The count in `... order producer: N records not delivered ...` of the give-up line.
fn undelivered(process: &Process) -> u64 {
    let line = process
        .stderr()
        .find("records not delivered")
        .unwrap_or_else(|| {
            panic!(
                "no count of undelivered records in {:#?}",
                process.stderr().all()
            )
        });
    number_after(&line, "order producer: ").unwrap_or_else(|| panic!("no count in {line:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_gone_after_sigterm_exits_4_after_the_grace_naming_the_undelivered() {
    let (stack, mut producer, _dir) = producing_into_a_stalled_broker(2_000).await;
    producer
        .signal_and_wait_for(Signal::SIGTERM, "SIGTERM received, shutting down", WAIT)
        .unwrap();
    // The broker goes away for good.
    stack.shutdown().await;
    let status = producer.wait(WAIT).unwrap();
    assert_eq!(status.code(), Some(4), "{status:?}");
    assert!(
        producer.stderr().contains("grace period (2000 ms) expired"),
        "the log says why"
    );
    let left = undelivered(&producer);
    assert!(left > 0, "orders were in flight: {left}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sigterm_during_the_drain_exits_at_once() {
    // A grace period far longer than the test's bound: only the second signal ends it.
    let (stack, mut producer, _dir) = producing_into_a_stalled_broker(3_600_000).await;
    producer
        .signal_and_wait_for(Signal::SIGTERM, "SIGTERM received, shutting down", WAIT)
        .unwrap();
    stack.shutdown().await;
    assert!(producer.try_wait().is_none(), "still draining");
    producer.signal(Signal::SIGTERM).unwrap();
    let status = producer.wait(WAIT).unwrap();
    assert_eq!(status.code(), Some(143), "{status:?}");
    assert!(
        producer
            .stderr()
            .contains("SIGTERM received again during shutdown"),
        "the log says why"
    );
    assert!(undelivered(&producer) > 0);
}
