//! `picklist-consumer`: shows each pick list of `grocery.picklist.v1` to store staff, once,
//! and records the steps staff take on it (PICKING_STARTED, PICKED, READY) on
//! `grocery.order-status.v1`.
//!
//! Wiring only: `show` is the consume-and-show loop (stdout, text or JSON lines; the bounded
//! duplicate check), `staff` the steps and their writes over [`grocery_store::StaffBoard`]
//! (the state machine, its pick order and its bound) with the simulated staff and the restore
//! at start, `live` what the open pages are told (through a `service_kit::sse::Hub`) and
//! `/metrics`' counts, `web` the page and its routes.
//!
//! On start, the lists not yet READY are put back on the page from the pick-list topic and
//! the order states: the latest-state topic `grocery.order-state.v1` and the statuses after it,
//! or every status with `--restore-from history` (`staff::restore`).
//!
//! Flags and their environment variables: `--help`. Start-up, configuration errors (exit 2),
//! logging and the bounded shutdown are every service's: [`service_kit::run`].

mod live;
mod show;
mod staff;
mod web;

use std::{net::SocketAddr, path::PathBuf, process::ExitCode, time::Duration};

use clap::Parser;
use grocery_events::PickList;

/// Shows pick lists to store staff, each once.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Confluent client.properties file (Kafka, Schema Registry, credentials).
    #[arg(long, env = "GROCERY_CONFIG")]
    config: Option<PathBuf>,
    /// Consumer group.
    #[arg(
        long,
        env = "PICKLIST_CONSUMER_GROUP",
        default_value = "picklist-consumer"
    )]
    group: String,
    /// One JSON object per line instead of text blocks.
    #[arg(long, env = "PICKLIST_CONSUMER_JSON")]
    json: bool,
    /// Serve the live web page (the staff page), `/health` and `/metrics` on this address
    /// (port 0 picks a free one; the address is logged as `listening on http://…`). The
    /// default port, 8091, is not the control room's (8080) nor the Order API's (8090).
    #[arg(
        long,
        env = "PICKLIST_CONSUMER_LISTEN",
        default_value = "127.0.0.1:8091"
    )]
    listen: SocketAddr,
    /// The same as `--listen` (its earlier name); wins over it when given.
    #[arg(long, env = "PICKLIST_CONSUMER_HTTP")]
    http: Option<SocketAddr>,
    /// At exit, write `{"shown":…,"duplicates_suppressed":…,"dead_lettered":…}` here.
    #[arg(long, env = "PICKLIST_CONSUMER_STATS_FILE")]
    stats_file: Option<PathBuf>,
    /// Simulated store staff take every new pick list through PICKING_STARTED, PICKED (as
    /// planned) and READY.
    #[arg(long, env = "PICKLIST_SIMULATE_STAFF")]
    simulate_staff: bool,
    /// Simulated staff wait this many milliseconds before each step (0: none).
    #[arg(long, env = "PICKLIST_STAFF_PACE_MS", default_value_t = 1000)]
    staff_pace_ms: u64,
    /// Open pick lists the staff board (the page) holds; past it the list that arrived first
    /// is dropped from the board with a warning and counted in
    /// `picklist_consumer_board_dropped_total` (it stays on the topic).
    #[arg(long, env = "PICKLIST_BOARD_OPEN_LISTS", default_value_t = grocery_store::DEFAULT_OPEN_LISTS as u64, value_parser = clap::value_parser!(u64).range(1..))]
    board_open_lists: u64,
    /// Where a start takes the orders' states from to put the open pick lists back: `state`
    /// reads the compacted latest-state topic grocery.order-state.v1 (one record per order,
    /// written by the Order API), then the statuses after it (when the two topics' partition
    /// counts differ, as `history`, with a warning naming both); `history` reads every status.
    #[arg(long, env = "PICKLIST_RESTORE_FROM", value_enum, default_value_t = RestoreFrom::State)]
    restore_from: RestoreFrom,
    #[command(flatten)]
    web: service_kit::web_guard::WebGuardArgs,
    #[command(flatten)]
    shutdown: service_kit::ShutdownArgs,
}

/// `--restore-from`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum RestoreFrom {
    State,
    History,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    service_kit::run(
        cli.config.as_deref(),
        cli.shutdown.grace(),
        |service| async move {
            let service_kit::Service {
                client, shutdown, ..
            } = service;
            let guard = service_kit::web_guard::WebGuard::from_args(&cli.web)?;
            let consumer = client.consumer::<PickList>(cli.group.clone()).await?;
            shutdown.account_consumer("pick-list consumer", consumer.context());
            let live = live::Live::new();
            let addr = cli.http.unwrap_or(cli.listen);
            // Staff steps (the page's buttons, the simulation) write with a producer of their own.
            let pace = cli
                .simulate_staff
                .then(|| Duration::from_millis(cli.staff_pace_ms));
            let staff_producer = client.producer().await?;
            shutdown.account_producer("staff-step producer", &staff_producer);
            let limits = grocery_store::BoardLimits {
                open: usize::try_from(cli.board_open_lists).unwrap_or(usize::MAX),
                ..grocery_store::BoardLimits::default()
            };
            let board = staff::Board::new(
                staff_producer,
                live.clone(),
                limits,
                pace,
                shutdown.receiver(),
            );
            // The lists shown before a restart, put back from the topics while new ones come.
            let restoring = tokio::spawn(staff::restore_until_done(
                client.clone(),
                board.clone(),
                live.clone(),
                cli.group.clone(),
                cli.restore_from == RestoreFrom::State,
                shutdown.receiver(),
            ));
            let server = web::spawn(
                addr,
                live.clone(),
                consumer.context().clone(),
                board.clone(),
                guard,
                shutdown.receiver(),
            )
            .await?;
            let format = if cli.json {
                show::Format::Json
            } else {
                show::Format::Text
            };
            let outcome = show::run(&consumer, format, &live, &board, shutdown.requested()).await;
            server.stop().await;
            restoring.abort();
            let stats = outcome.stats;
            tracing::info!(
                shown = stats.shown,
                duplicates_suppressed = stats.duplicates_suppressed,
                dead_lettered = stats.dead_lettered,
                "pick-list consumer stopped"
            );
            if let Some(path) = &cli.stats_file {
                std::fs::write(path, serde_json::to_string(&stats)? + "\n")
                    .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
            }
            outcome.result?;
            Ok(ExitCode::SUCCESS)
        },
    )
}
