//! `picklist-consumer`: shows each pick list of `grocery.picklist.v1` to store staff, once.
//!
//! Pick lists are read with the typed consumer of group `--group`; a pick list delivered
//! twice (same `picklist_id`) is shown once, and every record is acknowledged after it has
//! been shown. Output on stdout: a text block per pick list, or with `--json` one flat JSON
//! object per line (the pick list's fields plus `displayed_at_ms`, and the record's W3C trace
//! as `trace_id` and `traceparent`); each pick list shown is logged with its `trace_id`.
//! `--listen ADDR` (or its earlier name `--http`; default `127.0.0.1:8091`; port 0 picks a free
//! one; logged)
//! serves a live page at `/` fed by server-sent events at `/events` (the same JSON), with
//! `/health` and `/metrics` (OpenMetrics text, with the client metrics of librdkafka's
//! statistics). On SIGINT or SIGTERM the counts go to the log and to `--stats-file`.
//!
//! Store staff move each pick list on from the page: "Start picking", "Picked" (with the
//! quantity picked per line) and "Ready" write PICKING_STARTED, PICKED (per-line picked and
//! short quantities) and READY to `grocery.order-status.v1` (actor `staff:<picker>`), through
//! JSON endpoints (see the `web` module) that answer once the broker acknowledged the record;
//! steps out of order are refused. `--simulate-staff` has simulated staff take the three
//! steps on every new pick list, `--staff-pace-ms` before each (0: at once). The statuses
//! continue the pick list's trace. On start, the lists not yet READY are put back on the page
//! from the pick-list topic and the order states (the latest-state topic and the statuses after
//! it, or every status with `--restore-from history`; see [`staff::restore`]), so a restarted
//! screen loses no work.
//!
//! The page shows the open lists as a picker takes them: earliest delivery window first (pick
//! lists carry their order's window since version 2 of the pick-list schema), then arrival.
//! Memory is bounded: the staff board holds at most `--board-open-lists` open lists (default
//! 10,000; past it the list that arrived first leaves the page with a warning and
//! `picklist_consumer_board_dropped_total` counts it; it stays on the topic) and the last
//! 1,000 finished ones, and the duplicate check the last 100,000 pick list ids (see `show`).
//!
//! Configuration as for every service: `--config` (env `GROCERY_CONFIG`) and `GROCERY_*`
//! overrides; bad configuration prints one `error: …` line and exits with status 2. Logs go
//! to stderr (`RUST_LOG`, default `info`). SIGINT or SIGTERM stop gracefully, within
//! `--shutdown-grace-ms` (env `GROCERY_SHUTDOWN_GRACE_MS`, default 30 s; past it, or at a
//! second signal, the staff steps not delivered and the pick lists not committed are counted in
//! the log and the exit status is non-zero: see [`service_kit::shutdown`]).

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
    /// written by the Order API), then the statuses after it; `history` reads every status.
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
