//! A bounded shutdown when the broker goes away: after SIGTERM the pipeline drains its
//! outputs in flight for at most the grace period (`GROCERY_SHUTDOWN_GRACE_MS`), then the
//! service says what it could not deliver or commit and exits with status 4; a second SIGTERM
//! during the drain exits at once (143).

use std::{process::Command, time::Duration};

use grocery_events::{Event, Order};
use grocery_store::{Catalog, OrderSimulator};
use local_stack::Stack;
use test_support::{Output, Process, Signal, number_after, wait_metric, write_config};

const BIN: &str = env!("CARGO_BIN_EXE_fulfillment-service");
/// The bound of every wait: far past the short grace period, far below the broker's own
/// delivery timeout (300 s), which the old drain waited for.
const WAIT: Duration = Duration::from_secs(60);
/// Orders waiting before the service starts: more than it gets through before the broker
/// stalls.
const ORDERS: u64 = 20_000;

/// Starts the stack with `ORDERS` orders on the topic and the service (`grace_ms`), waits
/// until it processes them, then holds the broker's answers, so that its outputs stay in
/// flight.
async fn fulfilling_into_a_stalled_broker(grace_ms: u64) -> (Stack, Process, tempfile::TempDir) {
    let stack = grocery_stack::start().await.unwrap();
    let client = stack.client().unwrap();
    let producer = client.producer().await.unwrap();
    let catalog = Catalog::builtin();
    let mut simulator = OrderSimulator::new(11, &catalog);
    let mut pending = Vec::new();
    for _ in 0..ORDERS {
        let order = simulator.next_order(service_kit::now_ms());
        pending.push(producer.enqueue_to(Order::TOPIC, &order).await.unwrap());
    }
    for delivery in pending {
        delivery.await.unwrap();
    }

    let dir = tempfile::tempdir().unwrap();
    let properties = format!("{}statistics.interval.ms=100\n", stack.client_properties());
    let config = write_config(dir.path(), &properties).unwrap();
    let mut command = Command::new(BIN);
    command
        .arg("--config")
        .arg(&config)
        .args(["--listen", "127.0.0.1:0"])
        // The environment fallback of `--shutdown-grace-ms`.
        .env("GROCERY_SHUTDOWN_GRACE_MS", grace_ms.to_string());
    let service = Process::start("fulfillment-service", &mut command, Output::default()).unwrap();
    let addr = service.listening_addr(WAIT).unwrap();
    wait_metric(&addr, "fulfillment_picklists_produced_total", WAIT, |n| {
        n > 0.0
    })
    .unwrap();
    // Every answer of the broker is now held for 10 minutes.
    stack
        .kafka()
        .set_round_trip_time(1, Duration::from_secs(600))
        .unwrap();
    let consumed = wait_metric(&addr, "fulfillment_orders_consumed_total", WAIT, |_| true).unwrap();
    assert!(
        (consumed as u64) < ORDERS,
        "the service got through every order before the broker stalled: no drain to test"
    );
    // Outputs queued that the broker does not answer.
    wait_metric(
        &addr,
        "kafka_client_queued_messages{client=\"producer\"}",
        WAIT,
        |queued| queued >= 1.0,
    )
    .unwrap();
    (stack, service, dir)
}

/// The counts of the give-up line: (records not delivered, inputs not committed).
fn left_over(process: &Process) -> (u64, u64) {
    let line = process
        .stderr()
        .find("records not delivered")
        .unwrap_or_else(|| {
            panic!(
                "no account of the open work in {:#?}",
                process.stderr().all()
            )
        });
    let count = |prefix: &str| {
        number_after(&line, prefix).unwrap_or_else(|| panic!("no {prefix:?} count in {line:?}"))
    };
    (count("pick-list producer: "), count("order consumer: "))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_gone_after_sigterm_exits_4_after_the_grace_naming_the_open_work() {
    let (stack, mut service, _dir) = fulfilling_into_a_stalled_broker(2_000).await;
    service
        .signal_and_wait_for(Signal::SIGTERM, "SIGTERM received, shutting down", WAIT)
        .unwrap();
    stack.shutdown().await;
    let status = service.wait(WAIT).unwrap();
    assert_eq!(status.code(), Some(4), "{status:?}");
    assert!(
        service.stderr().contains("grace period (2000 ms) expired"),
        "the log says why"
    );
    // Both are named; the orders read past the last commit depend on when the consumer last
    // committed, so only the outputs in flight are sure to be there.
    let (undelivered, uncommitted) = left_over(&service);
    assert!(undelivered > 0, "outputs were in flight");
    println!(
        "left at the end of the grace: {undelivered} records not delivered, {uncommitted} orders not committed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sigterm_during_the_drain_exits_at_once() {
    let (stack, mut service, _dir) = fulfilling_into_a_stalled_broker(3_600_000).await;
    service
        .signal_and_wait_for(Signal::SIGTERM, "SIGTERM received, shutting down", WAIT)
        .unwrap();
    stack.shutdown().await;
    assert!(service.try_wait().is_none(), "still draining");
    service.signal(Signal::SIGTERM).unwrap();
    let status = service.wait(WAIT).unwrap();
    assert_eq!(status.code(), Some(143), "{status:?}");
    assert!(
        service
            .stderr()
            .contains("SIGTERM received again during shutdown"),
        "the log says why"
    );
    let (undelivered, _) = left_over(&service);
    assert!(undelivered > 0, "outputs were in flight");
}
