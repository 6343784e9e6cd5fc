//! `cargo xtask restart-bench`: how long the Order API and picklist-consumer take from start to
//! a complete view, reading every status (`--view-from history`, `--restore-from history`: how
//! every start worked before grocery.order-state.v1) and reading the latest-state topic then
//! the statuses after it (the default).
//!
//! Puts `--records` status records on `grocery.order-status.v1` (order `i` gets the first
//! `1 + i % 5` states, so some three records per order on average, READY for a fifth of them),
//! then times, from spawning the process to its log line saying the view is complete: the
//! Order API from history; picklist-consumer from history; the Order API from state on an
//! empty state topic (it reads every status and writes one state record per order: waited for
//! on its `/metrics`); the Order API from state; picklist-consumer from state. The pick-list
//! topic is left empty: picklist-consumer's restore reads it whole either way, so what differs
//! is the statuses' part. Figures are printed (a table, then one JSON line; each start also as
//! it is measured); nothing is asserted about them. The state topic then holds about one
//! record per order (the first start folds an order's changes read together into one record
//! per transaction): the steady state that compaction gives a live topic, whose records older
//! than `min.compaction.lag.ms` are one per order. On the mock cluster the status topic keeps
//! only its last ~4 MB per partition: use `--broker kafka` (the default) for real figures.

use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use futures::{StreamExt as _, stream::FuturesUnordered};
use grocery_events::OrderStatus;
use grocery_store::lifecycle::{STATES, status};
use local_stack::KafkaAuth;
use test_support::{Output, Process};
use uuid::Uuid;
use xtask::services::Binaries;

use crate::broker::{self, BrokerArg};

/// `cargo xtask restart-bench` options.
#[derive(clap::Args, Debug)]
pub(crate) struct RestartArgs {
    /// Status records to put on grocery.order-status.v1.
    #[arg(long, default_value_t = 1_000_000)]
    records: u64,
    /// The broker: a real Apache Kafka broker (default) or the mock cluster.
    #[arg(long, value_enum, default_value_t = BrokerArg::Kafka)]
    broker: BrokerArg,
    /// Time the debug builds of the services instead of the release builds.
    #[arg(long)]
    debug: bool,
    /// Longest wait for one start.
    #[arg(long, default_value_t = 1800)]
    timeout_seconds: u64,
}

/// Records in flight while producing.
const IN_FLIGHT: usize = 20_000;

/// The statuses of order `i`: its first `1 + i % 5` states.
fn statuses(i: u64) -> impl Iterator<Item = OrderStatus> {
    let order_id = Uuid::from_u128(0x5eed_0000_0000_0000_0000_0000_0000_0000 | u128::from(i));
    let count = 1 + (i % 5) as usize;
    STATES
        .into_iter()
        .take(count)
        .enumerate()
        .map(move |(n, state)| {
            let actor = if n < 2 {
                "fulfillment-service"
            } else {
                "staff:Bench"
            };
            status(order_id, state, 1_700_000_000_000 + n as i64, actor)
        })
}

/// One timed start: spawns `bin args`, waits for a stderr line containing `complete`, returns
/// the time from spawn to it and the process (still running).
fn timed_start(
    name: &str,
    bin: &Path,
    args: &[&str],
    complete: &str,
    timeout: Duration,
) -> anyhow::Result<(Duration, Process)> {
    let started = Instant::now();
    let process = Process::start(
        name,
        Command::new(bin).args(args),
        Output {
            echo: false,
            ..Output::default()
        }
        .keeping(2000),
    )?;
    process
        .stderr()
        .wait_for(timeout, |line| line.contains(complete))
        .with_context(|| format!("{name} did not complete its view"))?;
    let elapsed = started.elapsed();
    println!(
        "  {name}: {:.2} s to a complete view",
        elapsed.as_secs_f64()
    );
    Ok((elapsed, process))
}

pub(crate) async fn run(args: RestartArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.records > 0, "--records must be at least 1");
    let binaries = if args.debug {
        Binaries::build()?
    } else {
        Binaries::build_release()?
    };
    let stack = broker::start_stack(args.broker, KafkaAuth::None).await?;
    let dir = tempfile::tempdir()?;
    let config = test_support::write_config(dir.path(), &stack.client_properties())?;
    let config = config
        .to_str()
        .context("a UTF-8 temporary path")?
        .to_owned();
    let timeout = Duration::from_secs(args.timeout_seconds);

    // The status records.
    let client = stack.client()?;
    let producer = client.producer().await?;
    let started = Instant::now();
    let (mut written, mut orders, mut i) = (0u64, 0u64, 0u64);
    let mut pending = FuturesUnordered::new();
    while written < args.records {
        for change in statuses(i).take((args.records - written) as usize) {
            pending.push(
                producer
                    .enqueue_to(grocery_events::topics::ORDER_STATUS, &change)
                    .await?,
            );
            written += 1;
            while pending.len() >= IN_FLIGHT {
                pending.next().await.context("a delivery")??;
            }
        }
        orders += 1;
        i += 1;
    }
    while let Some(delivered) = pending.next().await {
        delivered?;
    }
    println!(
        "restart bench: {written} status records ({orders} orders) on grocery.order-status.v1 in {:.1} s ({})",
        started.elapsed().as_secs_f64(),
        if args.debug {
            "debug builds"
        } else {
            "release builds"
        }
    );

    let api_args = |from: &'static str| {
        vec![
            "--config",
            config.as_str(),
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--view-from",
            from,
        ]
    };
    let picklist_args = |from: &'static str| {
        vec![
            "--config",
            config.as_str(),
            "--json",
            "--listen",
            "127.0.0.1:0",
            "--group",
            "picklist-consumer-restart-bench",
            "--restore-from",
            from,
        ]
    };
    let api_complete = "order history rebuilt";
    let picklist_complete = "pick lists not yet ready put back on the board";
    let stop = |mut process: Process| -> anyhow::Result<()> {
        let status = process.terminate(Duration::from_secs(60))?;
        anyhow::ensure!(status.success(), "{} exited with {status}", process.name());
        Ok(())
    };

    let (api_history, process) = timed_start(
        "order-api (history)",
        &binaries.order_producer,
        &api_args("history"),
        api_complete,
        timeout,
    )?;
    stop(process)?;
    let (picklist_history, process) = timed_start(
        "picklist-consumer (history)",
        &binaries.picklist_consumer,
        &picklist_args("history"),
        picklist_complete,
        timeout,
    )?;
    stop(process)?;

    // The first start from state: the state topic is empty, so it reads every status and
    // writes each order's state; wait for the last one, committed.
    let (first_state, process) = timed_start(
        "order-api (state, first)",
        &binaries.order_producer,
        &api_args("state"),
        api_complete,
        timeout,
    )?;
    let addr = process.listening_addr(Duration::from_secs(10))?;
    test_support::wait_metric(&addr, "order_api_state_written_total", timeout, |n| {
        n >= orders as f64
    })?;
    stop(process)?;

    let (api_state, process) = timed_start(
        "order-api (state)",
        &binaries.order_producer,
        &api_args("state"),
        api_complete,
        timeout,
    )?;
    stop(process)?;
    let (picklist_state, process) = timed_start(
        "picklist-consumer (state)",
        &binaries.picklist_consumer,
        &picklist_args("state"),
        picklist_complete,
        timeout,
    )?;
    stop(process)?;

    let secs = |d: Duration| d.as_secs_f64();
    println!(
        "{:<20} {:>16} {:>16}",
        "start to a complete view", "all statuses", "latest state"
    );
    println!(
        "{:<20} {:>14.2} s {:>14.2} s",
        "Order API",
        secs(api_history),
        secs(api_state)
    );
    println!(
        "{:<20} {:>14.2} s {:>14.2} s",
        "picklist-consumer",
        secs(picklist_history),
        secs(picklist_state)
    );
    println!(
        "(the Order API's first start on an empty state topic, writing {orders} state records: {:.2} s)",
        secs(first_state)
    );
    println!(
        "{}",
        serde_json::json!({
            "status_records": written,
            "orders": orders,
            "profile": if args.debug { "debug" } else { "release" },
            "order_api_history_s": secs(api_history),
            "order_api_state_s": secs(api_state),
            "order_api_first_state_s": secs(first_state),
            "picklist_consumer_history_s": secs(picklist_history),
            "picklist_consumer_state_s": secs(picklist_state),
        })
    );
    drop(producer);
    stack.shutdown().await;
    Ok(())
}
