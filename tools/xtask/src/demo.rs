//! `cargo xtask demo`: the whole flow on a laptop. Starts the local stack, runs the three
//! services as separate processes wired by a generated client.properties, sends orders, shows
//! the pick lists as they arrive and prints a summary.

use std::{
    collections::HashSet,
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use local_stack::KafkaAuth;
use serde_json::Value;
use xtask::services::{self, Binaries};

use crate::broker::{BrokerArg, start_stack};

/// Arguments of `cargo xtask demo`.
#[derive(clap::Args)]
pub(crate) struct DemoArgs {
    /// Number of orders to send.
    #[arg(long, default_value_t = 100)]
    orders: usize,
    /// Orders per second.
    #[arg(long, default_value_t = 50)]
    rate: u32,
    /// Seed of the simulated customers (same seed, same orders).
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Print every pick list in full instead of one line each.
    #[arg(long)]
    full: bool,
    /// Where the run's files go (client.properties, logs, reports).
    #[arg(long, default_value = "target/demo")]
    dir: PathBuf,
    /// The broker: the mock cluster or a real Apache Kafka broker (Java 17, Maven).
    #[arg(long, value_enum, default_value = "mock")]
    broker: BrokerArg,
    /// With `--broker kafka`: how the services authenticate (none, oauth, plain).
    #[arg(long, default_value = "none")]
    auth: KafkaAuth,
}

pub(crate) async fn run(args: DemoArgs) -> anyhow::Result<()> {
    eprintln!("building the services…");
    let bins = tokio::task::spawn_blocking(Binaries::build).await??;
    let dir = services::workspace_dir().join(&args.dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let label = args.broker.label(args.auth);
    let stack = start_stack(args.broker, args.auth).await?;
    let config = dir.join("client.properties");
    std::fs::write(&config, stack.client_properties())?;
    eprintln!(
        "local stack: {label} {} · Schema Registry {} · config {}",
        stack.bootstrap_servers(),
        stack.registry_url(),
        config.display()
    );
    let summary =
        tokio::task::spawn_blocking(move || run_services(&args, &bins, &dir, &config)).await;
    // The stack stops whatever the services did (a real broker is a child JVM).
    stack.shutdown().await;
    let mut summary = summary??;
    summary.broker = label;
    println!("{summary}");
    if summary.missing > 0 {
        bail!("{} order(s) have no pick list", summary.missing);
    }
    Ok(())
}

/// What the demo observed.
struct Summary {
    broker: String,
    sent: usize,
    shown: usize,
    duplicates_suppressed: u64,
    dead_lettered: f64,
    missing: usize,
    p50: Option<i64>,
    p99: Option<i64>,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = |v: Option<i64>| v.map_or_else(|| "n/a".into(), |v| format!("{v} ms"));
        writeln!(f, "\n── demo summary ──────────────────────────────")?;
        writeln!(f, "broker                    {}", self.broker)?;
        writeln!(f, "orders sent               {}", self.sent)?;
        writeln!(f, "pick lists shown          {}", self.shown)?;
        writeln!(
            f,
            "duplicates suppressed     {}",
            self.duplicates_suppressed
        )?;
        writeln!(f, "dead-lettered records     {}", self.dead_lettered)?;
        writeln!(f, "orders without pick list  {}", self.missing)?;
        write!(
            f,
            "order → display latency   p50 {} · p99 {}",
            ms(self.p50),
            ms(self.p99)
        )
    }
}

fn run_services(
    args: &DemoArgs,
    bins: &Binaries,
    dir: &std::path::Path,
    config: &std::path::Path,
) -> anyhow::Result<Summary> {
    let log = dir.join("services.log");
    std::fs::write(&log, "")?;
    let config_arg = config.display().to_string();
    let metrics_addr = format!("127.0.0.1:{}", services::free_port()?);
    let stats = dir.join("picklist-consumer.stats.json");
    let report = dir.join("orders.jsonl");
    let _ = std::fs::remove_file(&stats);
    // Rebalances are logged at info by the library's client context: the demo waits for both
    // consumer groups to have their partitions before it sends orders.
    let env = [("RUST_LOG", "warn,avro_events::context=info")];

    let mut fulfillment = services::start(
        "fulfillment-service",
        &bins.fulfillment_service,
        &[
            "--config".into(),
            config_arg.clone(),
            "--listen".into(),
            metrics_addr.clone(),
        ],
        &env,
        &log,
    )?;
    let mut consumer = services::start(
        "picklist-consumer",
        &bins.picklist_consumer,
        &[
            "--config".into(),
            config_arg.clone(),
            "--json".into(),
            "--stats-file".into(),
            stats.display().to_string(),
        ],
        &env,
        &log,
    )?;
    services::wait_until_assigned(&[&fulfillment, &consumer], Duration::from_secs(60))
        .context("waiting for the services to join their consumer groups")?;
    eprintln!("sending {} orders at {}/s…", args.orders, args.rate);
    let mut producer = services::start(
        "order-producer",
        &bins.order_producer,
        &[
            "--config".into(),
            config_arg,
            "--count".into(),
            args.orders.to_string(),
            "--rate".into(),
            args.rate.to_string(),
            "--seed".into(),
            args.seed.to_string(),
            "--report".into(),
            report.display().to_string(),
        ],
        &env,
        &log,
    )?;
    let timeout = Duration::from_secs(60)
        + Duration::from_secs_f64(args.orders as f64 / f64::from(args.rate.max(1)));
    let status = producer.wait(timeout)?;
    while let Some(line) = producer.next_line(Duration::from_millis(100)) {
        eprintln!("order-producer: {line}");
    }
    if !status.success() {
        eprintln!("order-producer exited with {status}; see {}", log.display());
    }
    let orders = services::read_report(&report)?;

    let mut shown = HashSet::new();
    let mut latencies = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while shown.len() < orders.len() && Instant::now() < deadline {
        let Some(line) = consumer.next_line(Duration::from_millis(500)) else {
            continue;
        };
        let pick_list: Value =
            serde_json::from_str(&line).context("picklist-consumer --json line")?;
        let order_id = pick_list["order_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if let (Some(order_time), Some(displayed)) =
            (orders.get(&order_id), pick_list["displayed_at_ms"].as_i64())
        {
            latencies.push(displayed - order_time);
        }
        print_pick_list(&pick_list, args.full);
        shown.insert(order_id);
    }
    let dead_lettered = services::http_get(&metrics_addr, "/metrics")
        .ok()
        .and_then(|text| services::metric(&text, "fulfillment_dead_lettered_total"))
        .unwrap_or(0.0);
    consumer.terminate(Duration::from_secs(20))?;
    fulfillment.terminate(Duration::from_secs(20))?;
    let duplicates_suppressed = std::fs::read_to_string(&stats)
        .ok()
        .and_then(|s| serde_json::from_str::<Value>(&s).ok())
        .and_then(|v| v["duplicates_suppressed"].as_u64())
        .unwrap_or(0);
    latencies.sort_unstable();
    let missing = orders.keys().filter(|id| !shown.contains(*id)).count()
        + args.orders.saturating_sub(orders.len());
    Ok(Summary {
        broker: String::new(),
        sent: orders.len(),
        shown: shown.len(),
        duplicates_suppressed,
        dead_lettered,
        missing,
        p50: services::percentile(&latencies, 50.0),
        p99: services::percentile(&latencies, 99.0),
    })
}

fn print_pick_list(pick_list: &Value, full: bool) {
    let lines = pick_list["items_to_pick"].as_array().map_or(0, Vec::len);
    let flagged = pick_list["items_to_pick"].as_array().map_or(0, |l| {
        l.iter().filter(|l| l["stock_status"] != "IN_STOCK").count()
    });
    println!(
        "pick list for order {} · picker {} · {lines} lines{}",
        pick_list["order_id"].as_str().unwrap_or("?"),
        pick_list["assigned_picker"].as_str().unwrap_or("?"),
        if flagged > 0 {
            format!(" · {flagged} flagged")
        } else {
            String::new()
        }
    );
    if full {
        for line in pick_list["items_to_pick"].as_array().into_iter().flatten() {
            println!(
                "    {:>2}. {:<28} {:>3} × {} [{}]",
                line["walk_sequence"],
                line["aisle"].as_str().unwrap_or("?"),
                line["quantity_to_pick"],
                line["name"].as_str().unwrap_or("?"),
                line["stock_status"].as_str().unwrap_or("?"),
            );
        }
    }
}
