//! `cargo xtask demo`: the whole flow on a laptop. Starts the local stack, runs the three
//! services as separate processes wired by a generated client.properties, sends orders, shows
//! the pick lists as they arrive and prints a summary, with the order status funnel: simulated
//! store staff (picklist-consumer `--simulate-staff`) take every pick list to READY, and the
//! demo reads `grocery.order-status.v1` back.

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
    /// Instead of a terminal run: the control room (`cargo xtask control`) with this demo's
    /// broker, rate and seed, its page on `--listen`.
    #[arg(long)]
    ui: bool,
    /// With `--ui`: the page's address (loopback only).
    #[arg(long, default_value = "127.0.0.1:8080", requires = "ui")]
    listen: std::net::SocketAddr,
    #[command(flatten)]
    web: service_kit::web_guard::WebGuardArgs,
}

pub(crate) async fn run(args: DemoArgs) -> anyhow::Result<()> {
    if args.ui {
        return crate::control::run(crate::control::ControlArgs {
            listen: args.listen,
            rate: f64::from(args.rate),
            seed: args.seed,
            dir: args.dir,
            broker: args.broker,
            auth: args.auth,
            web: args.web,
        })
        .await;
    }
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
    /// Orders by the latest state read from the status topic, in lifecycle order.
    funnel: Vec<(&'static str, usize)>,
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
        writeln!(
            f,
            "order → display latency   p50 {} · p99 {}",
            ms(self.p50),
            ms(self.p99)
        )?;
        let funnel: Vec<String> = self
            .funnel
            .iter()
            .map(|(state, orders)| format!("{state} {orders}"))
            .collect();
        write!(f, "orders by latest state    {}", funnel.join(" · "))
    }
}

/// Reads `grocery.order-status.v1` from the start until `ready` orders are READY (or 30 s pass
/// without a new status): orders by the latest state they reached.
async fn read_funnel(
    config: &std::path::Path,
    ready: usize,
) -> anyhow::Result<Vec<(&'static str, usize)>> {
    use grocery_events::{Client, Config, ConsumerOptions, OrderState, OrderStatus};
    use std::collections::HashMap;
    let client = Client::from_config(Config::from_file(config)?)?;
    let group = format!("xtask-demo-funnel-{}", uuid::Uuid::new_v4().simple());
    let consumer = client
        .consumer::<OrderStatus>(ConsumerOptions::new(group))
        .await?;
    let mut ids = HashSet::new();
    let mut latest: HashMap<uuid::Uuid, OrderState> = HashMap::new();
    let count_ready = |latest: &HashMap<_, OrderState>| {
        latest.values().filter(|s| **s == OrderState::Ready).count()
    };
    while count_ready(&latest) < ready {
        let Ok(received) = tokio::time::timeout(Duration::from_secs(30), consumer.recv()).await
        else {
            eprintln!("no order status for 30 s; the funnel shows what was read");
            break;
        };
        let status = received?.event;
        if ids.insert(status.status_id) {
            let state = latest.entry(status.order_id).or_insert(status.state);
            *state = (*state).max(status.state);
        }
    }
    consumer.close().await?;
    Ok(grocery_store::lifecycle::STATES
        .iter()
        .map(|state| {
            let orders = latest.values().filter(|s| *s == state).count();
            (grocery_store::state_name(*state), orders)
        })
        .collect())
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
    let metrics_addr = format!("127.0.0.1:{}", services::FreePorts::default().pick()?);
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
            "--simulate-staff".into(),
            "--staff-pace-ms".into(),
            "0".into(),
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
    // Simulated staff take each shown pick list to READY before the services stop.
    let funnel = tokio::runtime::Handle::current()
        .block_on(read_funnel(config, shown.len()))
        .context("reading the order status funnel")?;
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
        funnel,
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
