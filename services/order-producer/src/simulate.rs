//! Simulated customers: `--count` orders at `--rate` per second, many in flight at once.

use std::{
    fs::File,
    io::{BufWriter, Write},
    path::PathBuf,
    process::ExitCode,
    time::{Duration, Instant},
};

use anyhow::Context;
use futures::{StreamExt, stream::FuturesUnordered};
use grocery_events::{Event, Order, Producer, producer::PendingDelivery};
use grocery_store::{Catalog, OrderSimulator};
use serde::Serialize;
use tokio::time::MissedTickBehavior;
use uuid::Uuid;

use crate::startup::{now_ms, shutdown_signal};

/// At most this many orders wait for their acknowledgement at once.
const MAX_IN_FLIGHT: usize = 10_000;

/// What to simulate.
#[derive(Debug)]
pub(crate) struct Options {
    pub(crate) count: u64,
    pub(crate) rate: f64,
    pub(crate) seed: u64,
    pub(crate) report: Option<PathBuf>,
}

/// A line of the report.
#[derive(Serialize)]
struct ReportLine {
    order_id: Uuid,
    order_time_ms: i64,
}

#[derive(Default)]
struct Tally {
    acked: u64,
    failed: u64,
}

/// Sends the simulated orders, writes the report and the summary. Exit status 1 when any
/// order failed; a refusal by the broker (credentials, rights) ends the run with that error.
pub(crate) async fn run(
    options: &Options,
    producer: &Producer,
    catalog: &Catalog,
) -> anyhow::Result<ExitCode> {
    let mut report = match &options.report {
        Some(path) => {
            Some(BufWriter::new(File::create(path).with_context(|| {
                format!("cannot create {}", path.display())
            })?))
        }
        None => None,
    };
    let mut simulator = OrderSimulator::new(options.seed, catalog);
    let mut ticker = (options.rate > 0.0).then(|| {
        let mut t = tokio::time::interval(Duration::from_secs_f64(1.0 / options.rate));
        t.set_missed_tick_behavior(MissedTickBehavior::Burst);
        t
    });
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    let started = Instant::now();
    let mut tally = Tally::default();
    let mut in_flight = FuturesUnordered::new();
    tracing::info!(
        count = options.count,
        rate = options.rate,
        seed = options.seed,
        "sending simulated orders"
    );
    for _ in 0..options.count {
        if in_flight.len() >= MAX_IN_FLIGHT
            && let Some(done) = in_flight.next().await
        {
            record(done, &mut tally, report.as_mut())?;
        }
        if let Some(ticker) = ticker.as_mut() {
            tokio::select! {
                () = &mut shutdown => break,
                _ = ticker.tick() => {}
            }
        }
        let order = simulator.next_order(now_ms());
        let enqueued = tokio::select! {
            () = &mut shutdown => break,
            enqueued = producer.enqueue_to(Order::TOPIC, &order) => enqueued,
        };
        match enqueued {
            Ok(pending) => in_flight.push(acknowledged(order.order_id, order.order_time, pending)),
            // The broker refused the credentials or the rights: every further order would fail
            // the same way, so stop with that error (exit status 3) instead of counting them.
            Err(error) if error.is_refused() => return Err(error.into()),
            Err(error) => {
                tracing::error!(order_id = %order.order_id, %error, "order not sent");
                tally.failed += 1;
            }
        }
        while let Some(Some(done)) = futures::FutureExt::now_or_never(in_flight.next()) {
            record(done, &mut tally, report.as_mut())?;
        }
    }
    while let Some(done) = in_flight.next().await {
        record(done, &mut tally, report.as_mut())?;
    }
    if let Some(report) = report.as_mut() {
        report.flush().context("cannot write the report")?;
    }
    let seconds = started.elapsed().as_secs_f64();
    let per_second = if seconds > 0.0 {
        tally.acked as f64 / seconds
    } else {
        0.0
    };
    println!(
        "sent {} orders in {seconds:.2} s ({per_second:.1} orders/s), {} failed",
        tally.acked, tally.failed
    );
    tracing::info!(sent = tally.acked, failed = tally.failed, seconds, "done");
    Ok(if tally.failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Waits for the acknowledgement of one order.
async fn acknowledged(
    order_id: Uuid,
    order_time_ms: i64,
    pending: PendingDelivery,
) -> (
    ReportLine,
    grocery_events::Result<grocery_events::Delivered>,
) {
    let result = pending.await;
    (
        ReportLine {
            order_id,
            order_time_ms,
        },
        result,
    )
}

fn record(
    (line, result): (
        ReportLine,
        grocery_events::Result<grocery_events::Delivered>,
    ),
    tally: &mut Tally,
    report: Option<&mut BufWriter<File>>,
) -> anyhow::Result<()> {
    match result {
        Ok(delivered) => {
            tally.acked += 1;
            tracing::debug!(order_id = %line.order_id, partition = delivered.partition, offset = delivered.offset, "order acknowledged");
            if let Some(report) = report {
                serde_json::to_writer(&mut *report, &line)?;
                report.write_all(b"\n").context("cannot write the report")?;
            }
        }
        Err(error) if error.is_refused() => return Err(error.into()),
        Err(error) => {
            tally.failed += 1;
            tracing::error!(order_id = %line.order_id, %error, "order not acknowledged");
        }
    }
    Ok(())
}
