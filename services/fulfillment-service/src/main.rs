//! `fulfillment-service`: turns each order of `grocery.orders.v1` into exactly one pick list
//! on `grocery.picklist.v1`, and records the order's first two states, RECEIVED and
//! PICKLIST_CREATED, on `grocery.order-status.v1`.
//!
//! The wiring of a [`Pipeline`](grocery_events::Pipeline) (run several instances to share the
//! partitions) and one closure: [`PickListBuilder`] builds the pick list (walking order, stock
//! check, a picker from the roster, `picklist_id` derived from the order id so replays yield
//! the same pick list) and [`grocery_store::fulfillment_statuses`] the statuses. An order's
//! three outputs are written together: in Kafka transactions when the configuration has a
//! `transactional.id`, else the order is marked done once all three are acknowledged. Each
//! output continues its order's W3C trace. `/metrics` and `/health`: the `metrics` module.
//!
//! Flags and their environment variables: `--help`. Start-up, configuration errors (exit 2),
//! logging and the bounded shutdown are every service's: [`service_kit::run`].

mod metrics;

/// The allocator: every order's strings, the pick list's and the statuses' are allocations of
/// their own, and mimalloc's are cheaper than the system allocator's (instructions per order:
/// `docs/performance.md`). librdkafka's C allocations stay with the C library's `malloc`:
/// mimalloc's `override` feature would save about 7,600 instructions per order but raised the
/// bench's peak RSS from about 50 to 92-94 MiB (not profiled). A choice of this binary; the
/// libraries impose none.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::{net::SocketAddr, path::PathBuf, process::ExitCode, sync::Arc};

use clap::Parser;
use grocery_events::{Order, Outputs, Received};
use grocery_store::{PickListBuilder, PickerRoster};

/// Turns grocery orders into pick lists.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Confluent client.properties file (Kafka, Schema Registry, credentials).
    #[arg(long, env = "GROCERY_CONFIG")]
    config: Option<PathBuf>,
    /// Consumer group shared by all instances.
    #[arg(long, env = "FULFILLMENT_GROUP", default_value = "fulfillment-service")]
    group: String,
    /// Pickers on shift, comma-separated.
    #[arg(long, env = "FULFILLMENT_ROSTER", default_value_t = PickerRoster::default())]
    roster: PickerRoster,
    /// Store catalog CSV (default: the built-in catalog).
    #[arg(long, env = "GROCERY_CATALOG")]
    catalog: Option<PathBuf>,
    /// Address of the metrics and health endpoints (port 0 picks a free port).
    #[arg(long, env = "FULFILLMENT_LISTEN", default_value = "127.0.0.1:9464")]
    listen: SocketAddr,
    #[command(flatten)]
    shutdown: service_kit::ShutdownArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    service_kit::run(
        cli.config.as_deref(),
        cli.shutdown.grace(),
        |service| async move {
            let catalog = service_kit::load_catalog(cli.catalog.as_deref())?;
            let service_kit::Service {
                client, shutdown, ..
            } = service;
            let pipeline = Arc::new(client.pipeline::<Order>(cli.group.clone()).await?);
            shutdown.account_pipeline_producer("pick-list producer", pipeline.clone());
            shutdown.account_consumer("order consumer", pipeline.consumer().context());
            let metrics = metrics::Metrics::new(&pipeline);
            let server =
                metrics::serve(cli.listen, &metrics, pipeline.clone(), shutdown.receiver()).await?;
            tracing::info!(group = %cli.group, roster = %cli.roster, "fulfillment service running");

            let builder = PickListBuilder::new(&catalog, cli.roster.clone());
            let latency = metrics.latency.clone();
            let transform = |received: &Received<Order>| -> Outputs {
                let now = service_kit::now_ms();
                let order = &received.event;
                latency.observe(metrics::latency_seconds(now, order.order_time));
                let pick_list = builder.build(order, now);
                // Inside the pipeline's `process` span: its `trace_id` is the order's, which the
                // pick list and the statuses continue.
                tracing::debug!(order_id = %order.order_id, trace_id = %received.trace().map(|t| t.trace_id().to_string()).unwrap_or_default(), picker = %pick_list.assigned_picker, "pick list built");
                let [received_status, created] =
                    grocery_store::fulfillment_statuses(order, &pick_list, now);
                Outputs::new()
                    .with(received_status)
                    .with(created)
                    .with(pick_list)
            };
            let outcome = pipeline.run(transform, shutdown.requested()).await;
            let outcome = service_kit::tolerate_final_commit(outcome, shutdown.is_requested());
            shutdown.trigger();
            server.stop().await;
            let stats = pipeline.stats();
            tracing::info!(
                consumed = stats.consumed.load(std::sync::atomic::Ordering::Relaxed),
                produced = stats.produced.load(std::sync::atomic::Ordering::Relaxed),
                dead_lettered = pipeline.consumer().dead_lettered(),
                "fulfillment service stopped"
            );
            outcome?;
            Ok(ExitCode::SUCCESS)
        },
    )
}
