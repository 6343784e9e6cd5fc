//! `order-producer`: places grocery orders on `grocery.orders.v1`, each in a W3C trace of
//! its own (or the caller's).
//!
//! Two modes, each a module: simulated customers ([`grocery_store::OrderSimulator`]) at a
//! rate (`simulate`, with its control endpoints in `control`), or `serve`, the HTTP Order API
//! (`api`: `POST /orders` with `Idempotency-Key` through `idempotency`, `GET /orders/{id}`
//! from the status history `view`, which starts from the latest-state topic
//! `grocery.order-state.v1` and writes it). The Order API's orders go out in Kafka transactions
//! and its keys are read back from `grocery.orders.v1` on start: `docs/guarantees.md`, "No
//! second order". Both modes write orders with the order schema registered with its data
//! contract (`contract`), so its rule `order_has_lines` runs in the producer.
//!
//! Flags and their environment variables: `--help`. Start-up, configuration errors (exit 2),
//! logging and the bounded shutdown are every service's: [`service_kit::run`].

mod api;
mod contract;
mod control;
mod failpoint;
mod failure;
mod idempotency;
mod restore;
mod sender;
mod simulate;
mod view;

use std::{net::SocketAddr, path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};

/// Places grocery orders: simulated customers, or the HTTP Order API (`serve`).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Confluent client.properties file (Kafka, Schema Registry, credentials).
    #[arg(long, env = "GROCERY_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Store catalog CSV (default: the built-in catalog).
    #[arg(long, env = "GROCERY_CATALOG", global = true)]
    catalog: Option<PathBuf>,
    /// Number of simulated orders to send.
    #[arg(long, env = "ORDER_PRODUCER_COUNT", default_value_t = 100)]
    count: u64,
    /// Orders per second; 0 sends as fast as possible.
    #[arg(long, env = "ORDER_PRODUCER_RATE", default_value_t = 50.0)]
    rate: f64,
    /// Seed of the simulation: the same seed gives the same orders (and order ids). Default: a
    /// random seed, so that every run places new orders; the seed used is logged at start.
    #[arg(long, env = "ORDER_PRODUCER_SEED")]
    seed: Option<u64>,
    /// Make every N-th simulated order invalid (its first line's quantity 0), to see the order
    /// contract at work: the producer's `order_has_lines` rule refuses such an order and sends
    /// it to grocery.orders.v1.dlq (counted as dead-lettered, not failed; when that write fails
    /// too, the order is on neither topic: logged at ERROR and counted as failed). 0, the
    /// default: every order is valid.
    #[arg(long, env = "ORDER_PRODUCER_INVALID_EVERY", default_value_t = 0)]
    invalid_every: u64,
    /// Write `{"order_id":…,"order_time_ms":…}` per acknowledged order to this file.
    #[arg(long, env = "ORDER_PRODUCER_REPORT")]
    report: Option<PathBuf>,
    /// Serve `/health`, `/metrics` and `PUT /rate` on this address while simulating (the
    /// default port 0 picks a free one; the address is logged as `listening on http://…`).
    #[arg(long, env = "ORDER_PRODUCER_LISTEN", default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    #[command(flatten)]
    web: service_kit::web_guard::WebGuardArgs,
    #[command(flatten)]
    shutdown: service_kit::ShutdownArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serves the HTTP Order API.
    Serve {
        /// Address to listen on (port 0 picks a free port). The default port, 8090, is not
        /// the control room's (8080) nor the staff page's (8091).
        #[arg(long, env = "ORDER_API_LISTEN", default_value = DEFAULT_ORDER_API_LISTEN)]
        listen: SocketAddr,
        /// Milliseconds an order may wait for its transaction to commit before the API
        /// answers 503 (with `Retry-After`).
        #[arg(long, env = "ORDER_API_DEADLINE_MS", default_value_t = 5000)]
        deadline_ms: u64,
        /// The `transactional.id` of this instance's orders: one per instance, the same across
        /// its restarts (a restart then aborts the transaction the previous run left open, and
        /// fences it). Terraform grants the prefix `order-api-`.
        #[arg(
            long,
            env = "ORDER_API_TRANSACTIONAL_ID",
            default_value = "order-api-0"
        )]
        transactional_id: String,
        /// Hours an `Idempotency-Key` is honoured across restarts: how far back the keys of
        /// accepted orders are read from grocery.orders.v1 on start (at least 1).
        #[arg(long, env = "ORDER_API_IDEMPOTENCY_WINDOW_HOURS", default_value_t = 24)]
        idempotency_window_hours: u64,
        /// Orders whose history `GET /orders/{id}` answers from memory, at most: past it the
        /// view forgets the order finished longest ago (the oldest open one when none is
        /// finished) and answers it 404 `unknown_order`.
        #[arg(long, env = "ORDER_API_VIEW_ORDERS", default_value_t = grocery_store::DEFAULT_VIEW_ORDERS as u64, value_parser = clap::value_parser!(u64).range(1..))]
        view_orders: u64,
        /// Where the history view starts: `state` reads the compacted latest-state topic
        /// grocery.order-state.v1 (one record per order), then the statuses after it, and
        /// writes the state as statuses arrive (when the two topics' partition counts differ,
        /// as `history`, with a warning naming both); `history` reads every status from the
        /// beginning and writes no state.
        #[arg(long, env = "ORDER_API_VIEW_FROM", value_enum, default_value_t = ViewFrom::State)]
        view_from: ViewFrom,
        /// `transactional.id` of the latest-state writer: the same for every instance, so the
        /// one started last fences the others and writes alone (a fenced writer stops, its
        /// view goes on; an id the brokers refuse leaves the instance up, writing no state).
        #[arg(long, env = "ORDER_API_STATE_TRANSACTIONAL_ID", default_value = service_kit::order_state::DEFAULT_TRANSACTIONAL_ID)]
        state_transactional_id: String,
    },
}

/// `--view-from`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ViewFrom {
    State,
    History,
}

/// Where `serve` listens unless told otherwise.
const DEFAULT_ORDER_API_LISTEN: &str = "127.0.0.1:8090";

/// A seed for a run without `--seed`: random, below 2³² so that it is short to type back.
fn random_seed() -> u64 {
    u64::from(uuid::Uuid::new_v4().as_u64_pair().0 as u32)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    service_kit::run(
        cli.config.as_deref(),
        cli.shutdown.grace(),
        |service| async move {
            if !control::valid_rate(cli.rate) {
                return Err(service_kit::BadConfig(format!(
                    "--rate must be a number of orders per second ≥ 0, got {}",
                    cli.rate
                ))
                .into());
            }
            let catalog = service_kit::load_catalog(cli.catalog.as_deref())?;
            let guard = service_kit::web_guard::WebGuard::from_args(&cli.web)?;
            let service_kit::Service {
                client, shutdown, ..
            } = service;
            match cli.command {
                Some(Command::Serve {
                    listen,
                    deadline_ms,
                    transactional_id,
                    idempotency_window_hours,
                    view_orders,
                    view_from,
                    state_transactional_id,
                }) => {
                    if idempotency_window_hours == 0 {
                        return Err(service_kit::BadConfig(
                            "--idempotency-window-hours must be at least 1".to_owned(),
                        )
                        .into());
                    }
                    let transactional = grocery_events::Client::from_config(
                        contract::orders_config(client.config())
                            .set("transactional.id", transactional_id.clone()),
                    )?;
                    contract::check_registered(&transactional).await?;
                    // Initialised by the API once it listens (it waits for the brokers).
                    let producer = transactional.transactional_producer().await?;
                    shutdown.account_producer("order producer", &producer);
                    let options = api::Options {
                        listen,
                        deadline: std::time::Duration::from_millis(deadline_ms),
                        key_window: std::time::Duration::from_secs(
                            idempotency_window_hours.saturating_mul(3600),
                        ),
                        view_orders: usize::try_from(view_orders).unwrap_or(usize::MAX),
                        view_from: match view_from {
                            ViewFrom::State => view::Start::State {
                                transactional_id: state_transactional_id,
                            },
                            ViewFrom::History => view::Start::History,
                        },
                        guard,
                    };
                    api::serve(options, client, producer, catalog, shutdown).await
                }
                None => {
                    let orders = grocery_events::Client::from_config(contract::orders_config(
                        client.config(),
                    ))?;
                    contract::check_registered(&orders).await?;
                    let producer = orders.producer().await?;
                    shutdown.account_producer("order producer", &producer);
                    let options = simulate::Options {
                        count: cli.count,
                        rate: cli.rate,
                        seed: cli.seed.unwrap_or_else(random_seed),
                        report: cli.report,
                        invalid_every: cli.invalid_every,
                        listen: cli.listen,
                        guard,
                    };
                    simulate::run(&options, &producer, &catalog, shutdown).await
                }
            }
        },
    )
}
