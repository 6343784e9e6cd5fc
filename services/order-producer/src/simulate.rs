//! Simulated customers: `--count` orders at `--rate` per second, many in flight at once, each
//! in a W3C trace of its own; the rate can be changed while it runs (`PUT /rate` on
//! `--listen`, see [`crate::control`]).

use std::{
    fs::File,
    io::{BufWriter, Write},
    net::SocketAddr,
    path::PathBuf,
    process::ExitCode,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context;
use avro_events::PendingDelivery;
use futures::{StreamExt, stream::FuturesUnordered};
use grocery_events::{Event, Order, Producer, TraceContext};
use grocery_store::{Catalog, OrderSimulator};
use serde::Serialize;
use tokio::{
    sync::watch,
    time::{Interval, MissedTickBehavior},
};
use uuid::Uuid;

use service_kit::{Shutdown, now_ms};

use crate::control::{self, Counters};

/// At most this many orders wait for their acknowledgement at once.
const MAX_IN_FLIGHT: usize = 10_000;

/// What to simulate.
#[derive(Debug)]
pub(crate) struct Options {
    pub(crate) count: u64,
    pub(crate) rate: f64,
    pub(crate) seed: u64,
    pub(crate) report: Option<PathBuf>,
    /// Every `invalid_every`-th order is made invalid (its first line's quantity 0), for the
    /// order contract to refuse; 0: none.
    pub(crate) invalid_every: u64,
    /// Serve `/health`, `/metrics` and `PUT /rate` here while the simulation runs.
    pub(crate) listen: SocketAddr,
    /// The guard in front of those endpoints.
    pub(crate) guard: service_kit::web_guard::WebGuard,
}

/// A line of the report.
#[derive(Serialize)]
struct ReportLine {
    order_id: Uuid,
    order_time_ms: i64,
}

/// A ticker for `rate` orders per second; none for 0 (as fast as possible).
fn make_ticker(rate: f64) -> Option<Interval> {
    (rate > 0.0).then(|| {
        let mut t = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
        t.set_missed_tick_behavior(MissedTickBehavior::Burst);
        t
    })
}

/// What ended a wait for the next order's turn.
enum Turn {
    Send,
    RateChanged,
    Stop,
}

/// Sends the simulated orders, writes the report and the summary. Exit status 1 when any
/// order failed (an order the order contract refused and dead-lettered is not a failure; one
/// whose dead letter was not written is); a refusal by the broker (credentials, rights) of an
/// order's own write ends the run with that error.
pub(crate) async fn run(
    options: &Options,
    producer: &Producer,
    catalog: &Catalog,
    shutdown: Shutdown,
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
    let (rate_tx, mut rate) = watch::channel(options.rate);
    let tally = Arc::new(Counters::default());
    let server = control::spawn(
        options.listen,
        tally.clone(),
        Arc::new(rate_tx),
        producer.context().clone(),
        options.guard.clone(),
    )
    .await?;
    let mut ticker = make_ticker(options.rate);
    let shutdown = shutdown.requested();
    tokio::pin!(shutdown);
    let started = Instant::now();
    let mut in_flight = FuturesUnordered::new();
    tracing::info!(
        count = options.count,
        rate = options.rate,
        seed = options.seed,
        "sending simulated orders (--seed {} places these same orders again)",
        options.seed
    );
    let mut attempted = 0;
    while attempted < options.count {
        if in_flight.len() >= MAX_IN_FLIGHT
            && let Some(done) = in_flight.next().await
        {
            record(done, &tally, report.as_mut())?;
        }
        let turn = match ticker.as_mut() {
            Some(ticker) => tokio::select! {
                () = &mut shutdown => Turn::Stop,
                changed = rate.changed() => match changed {
                    Ok(()) => Turn::RateChanged,
                    Err(_) => Turn::Send,
                },
                _ = ticker.tick() => Turn::Send,
            },
            None if rate.has_changed().unwrap_or(false) => Turn::RateChanged,
            None => Turn::Send,
        };
        match turn {
            Turn::Stop => break,
            Turn::RateChanged => {
                let now = *rate.borrow_and_update();
                tracing::info!(rate = now, "order rate changed");
                ticker = make_ticker(now);
                continue;
            }
            Turn::Send => attempted += 1,
        }
        let mut order = simulator.next_order(now_ms());
        if options.invalid_every > 0
            && attempted % options.invalid_every == 0
            && let Some(line) = order.items.first_mut()
        {
            line.quantity = 0;
        }
        // A trace per order: the customer's checkout, which the order record continues.
        let trace = TraceContext::new_root();
        let enqueued = tokio::select! {
            () = &mut shutdown => break,
            enqueued = producer.enqueue_traced(Order::TOPIC, &order, None, Some(&trace)) => enqueued,
        };
        match enqueued {
            Ok(pending) => in_flight.push(acknowledged(
                order.order_id,
                order.order_time,
                trace,
                pending,
            )),
            // The order contract refused it and its dead letter was not written either (its
            // write refused, too large, timed out): the order is on neither topic. Counted as
            // failed (exit status 1) and apart, and logged with the order id; valid orders go on.
            Err(error @ grocery_events::Error::DeadLetterFailed { .. }) => {
                tracing::error!(order_id = %order.order_id, %error, "order refused by the order contract and not dead-lettered: it is on neither topic");
                tally.dead_letter_failed.inc();
                tally.failed.inc();
            }
            // The broker refused the credentials or the rights: every further order would fail
            // the same way, so stop with that error (exit status 3) instead of counting them.
            Err(error) if error.is_refused() => return Err(error.into()),
            // The order contract refused it and the producer sent it to the rule's dead-letter
            // topic.
            Err(
                error @ grocery_events::Error::RuleFailed {
                    dead_letter: Some(_),
                    ..
                },
            ) => {
                tracing::warn!(order_id = %order.order_id, %error, "order refused by the order contract, dead-lettered");
                tally.dead_lettered.inc();
            }
            Err(error) => {
                tracing::error!(order_id = %order.order_id, %error, "order not sent");
                tally.failed.inc();
            }
        }
        while let Some(Some(done)) = futures::FutureExt::now_or_never(in_flight.next()) {
            record(done, &tally, report.as_mut())?;
        }
    }
    while let Some(done) = in_flight.next().await {
        record(done, &tally, report.as_mut())?;
    }
    if let Some(report) = report.as_mut() {
        report.flush().context("cannot write the report")?;
    }
    server.abort();
    let (acked, failed, dead, lost) = (
        tally.acked.get(),
        tally.failed.get(),
        tally.dead_lettered.get(),
        tally.dead_letter_failed.get(),
    );
    let seconds = started.elapsed().as_secs_f64();
    let per_second = if seconds > 0.0 {
        acked as f64 / seconds
    } else {
        0.0
    };
    let mut dead_lettered = if dead > 0 {
        format!(", {dead} refused by the order contract (dead-lettered)")
    } else {
        String::new()
    };
    if lost > 0 {
        dead_lettered.push_str(&format!(
            ", {lost} of the failed refused by the order contract and not dead-lettered (on neither topic)"
        ));
    }
    println!(
        "sent {acked} orders in {seconds:.2} s ({per_second:.1} orders/s), {failed} failed{dead_lettered}"
    );
    tracing::info!(
        sent = acked,
        failed,
        dead_lettered = dead,
        dead_letter_failed = lost,
        seconds,
        "done"
    );
    Ok(if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// An order's outcome: its report line, its trace, and the acknowledgement or error.
type Acknowledged = (
    ReportLine,
    TraceContext,
    grocery_events::Result<grocery_events::Delivered>,
);

/// Waits for the acknowledgement of one order.
async fn acknowledged(
    order_id: Uuid,
    order_time_ms: i64,
    trace: TraceContext,
    pending: PendingDelivery,
) -> Acknowledged {
    let result = pending.await;
    (
        ReportLine {
            order_id,
            order_time_ms,
        },
        trace,
        result,
    )
}

fn record(
    (line, trace, result): Acknowledged,
    tally: &Counters,
    report: Option<&mut BufWriter<File>>,
) -> anyhow::Result<()> {
    match result {
        Ok(delivered) => {
            tally.acked.inc();
            tracing::debug!(order_id = %line.order_id, trace_id = %trace.trace_id(), partition = delivered.partition, offset = delivered.offset, "order acknowledged");
            if let Some(report) = report {
                serde_json::to_writer(&mut *report, &line)?;
                report.write_all(b"\n").context("cannot write the report")?;
            }
        }
        Err(error) if error.is_refused() => return Err(error.into()),
        Err(error) => {
            tally.failed.inc();
            tracing::error!(order_id = %line.order_id, trace_id = %trace.trace_id(), %error, "order not acknowledged");
        }
    }
    Ok(())
}
