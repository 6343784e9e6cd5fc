//! `fulfillment-service`: turns each order of `grocery.orders.v1` into exactly one pick list
//! on `grocery.picklist.v1`, and records the order's first two states, RECEIVED and
//! PICKLIST_CREATED (with the stock check's per-line plan and shorts), on
//! `grocery.order-status.v1`.
//!
//! A [`Pipeline`](grocery_events::Pipeline) reads orders in consumer group `--group` (run
//! several instances to share the partitions) and builds each pick list with
//! [`PickListBuilder`]: walking order, stock check against the catalog, a picker from
//! `--roster`, and `picklist_id` derived from the order id so replays yield the same pick list.
//! The statuses come from [`grocery_store::fulfillment_statuses`] (ids derived from the order id
//! and the state). An order's three outputs are written together: with `transactional.id` in
//! the configuration outputs and offsets are committed in Kafka transactions (the library does
//! it); without, the order is marked done only once all three are acknowledged.
//!
//! `--listen` serves `GET /metrics` (Prometheus/OpenMetrics text: the service's counters, the
//! consumer lag and the client metrics from librdkafka's statistics) and `GET /health` (`ok`;
//! `503` while no broker answers or while the pipeline is stalled, e.g. replacing a stuck
//! transactional producer; `200 ok; degraded: not connected to <broker> …` while some brokers
//! of a cluster are lost, named from the clients' error callback as soon as a connection fails
//! and from librdkafka's statistics). Each
//! pick list (and each status) continues its order's W3C trace (`traceparent` header); with
//! `RUST_LOG=info,fulfillment_service=debug` each order's `trace_id` is logged.
//! Configuration as for every service: `--config` (env `GROCERY_CONFIG`) and `GROCERY_*`
//! overrides; bad configuration prints one `error: …` line and exits with status 2. Logs go
//! to stderr (`RUST_LOG`, default `info`); SIGINT or SIGTERM stop gracefully, within
//! `--shutdown-grace-ms` (env `GROCERY_SHUTDOWN_GRACE_MS`, default 30 s; past it, or at a second
//! signal, the records not delivered and the orders not committed are counted in the log and
//! the exit status is non-zero: see [`service_kit::shutdown`]).

mod metrics;

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
            let _ = server.await;
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
