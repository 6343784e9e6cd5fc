//! The services under load, as separate release-built processes on one local stack:
//! fulfillment-service beside a pass-through copy (see `passthrough.rs`) at saturation and end
//! to end, order-to-display latency at fixed rates, and each service's peak resident memory.
//! Every run uses fresh consumer groups; runs that must see only their own orders start from
//! offsets committed at the topics' ends.
//!
//! End to end, each round runs three flows: fulfillment-service with picklist-consumer
//! showing its pick lists (`--json` lines through a pipe, parsed here), fulfillment-service
//! with its pick lists read by the pass-through's own key counter, and the pass-through with
//! that key counter. Fulfillment's own ratio (issue 19's target) compares the last two, read
//! alike; the whole chain's compares the first and the last; the first over the second is
//! what the display chain costs.

use std::{
    collections::HashSet,
    path::Path,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use grocery_events::topics;
use local_stack::Stack;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::oneshot;
use xtask::services::{self, Binaries, Process};

use super::passthrough::{self, commit_to_end};

/// Arguments of the pipeline part of `cargo xtask bench`.
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct PipelineBenchArgs {
    /// Orders preloaded for the saturation run. The mock cluster keeps a bounded log per
    /// partition (about 11,000 orders here) and drops the oldest records beyond it, so the
    /// backlog stays under that.
    #[arg(long, default_value_t = 20_000)]
    saturation_orders: usize,
    /// Fixed order rates (orders/s) for the latency runs.
    #[arg(long, value_delimiter = ',', default_value = "100,1000,5000")]
    rates: Vec<u32>,
    /// Seconds each latency run sends orders for.
    #[arg(long, default_value_t = 5)]
    seconds: u32,
    /// Rounds of the pipeline / pass-through comparisons (each runs both, order alternating).
    #[arg(long, default_value_t = 3)]
    pipeline_rounds: usize,
    /// Orders of each end-to-end run (sent as fast as order-producer can).
    #[arg(long, default_value_t = 10_000)]
    e2e_orders: usize,
    /// Set by `--quick`: the services of the current build, and a backlog drained before it
    /// could be timed is reported instead of failing the run.
    #[arg(skip)]
    quick: bool,
}

impl PipelineBenchArgs {
    /// The counts of `cargo xtask bench --quick`: one round, a 2,000-order backlog, 500 orders
    /// end to end, one second at 200 orders/s for latency.
    pub(crate) fn quick(&mut self) {
        self.saturation_orders = 2_000;
        self.rates = vec![200];
        self.seconds = 1;
        self.pipeline_rounds = 1;
        self.e2e_orders = 500;
        self.quick = true;
    }
}

/// One side of a pipeline comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Flow {
    /// fulfillment-service (decode, pick list, encode), the typed pipeline; end to end, its
    /// pick lists shown by picklist-consumer (decode, JSON lines through a pipe, parsed here).
    Typed,
    /// End to end only: fulfillment-service, its pick lists read by the pass-through's own
    /// reader ([`passthrough::count_keys`]), so that both sides are read alike.
    TypedKeys,
    /// rdkafka copying bytes, no decode or encode.
    PassThrough,
}

/// How fulfillment-service (and the pass-through) commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Mode {
    /// Outputs acknowledged, then the input's offset stored and auto-committed.
    AtLeastOnce,
    /// Outputs and input offsets committed together in Kafka transactions (`transactional.id`).
    Transactional,
}

impl Mode {
    pub(crate) const ALL: [Mode; 2] = [Mode::AtLeastOnce, Mode::Transactional];

    pub(crate) fn label(self) -> &'static str {
        match self {
            Mode::AtLeastOnce => "at-least-once",
            Mode::Transactional => "transactional",
        }
    }

    fn tag(self) -> &'static str {
        match self {
            Mode::AtLeastOnce => "alo",
            Mode::Transactional => "txn",
        }
    }
}

/// One delivery mode's comparisons.
#[derive(Debug, Serialize)]
pub(crate) struct ModeReport {
    pub(crate) mode: Mode,
    /// Typed pipeline vs pass-through, backlog drained.
    pub(crate) saturation: Comparison,
    /// Typed services vs pass-through, orders sent → pick lists (copies) shown: the whole
    /// chain, fulfillment-service and picklist-consumer against the pass-through and a key
    /// counter.
    pub(crate) end_to_end: Comparison,
    /// fulfillment-service vs pass-through, orders sent → pick lists (copies) read, both read
    /// by the same key counter: fulfillment's own end-to-end ratio (issue 19's target).
    pub(crate) end_to_end_same_reader: Comparison,
    /// The display chain's share: the whole typed chain's throughput over fulfillment's
    /// read by the key counter (1.0: picklist-consumer costs nothing end to end).
    pub(crate) display_over_key_counter: Comparison,
}

/// One timed run of a comparison.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct FlowRun {
    pub(crate) round: usize,
    pub(crate) flow: Flow,
    pub(crate) orders: usize,
    pub(crate) seconds: f64,
    pub(crate) orders_per_sec: f64,
}

/// One flow over another (typed / pass-through unless said): the median of the per-round
/// ratios, and their range.
#[derive(Debug, Serialize)]
pub(crate) struct Comparison {
    pub(crate) runs: Vec<FlowRun>,
    pub(crate) typed_median_per_sec: f64,
    pub(crate) passthrough_median_per_sec: f64,
    pub(crate) ratio: f64,
    pub(crate) ratio_range: (f64, f64),
}

/// The typed pipeline's throughput should be at least this fraction of the pass-through's.
pub(crate) const PIPELINE_TARGET: f64 = 0.8;

impl Comparison {
    /// `typed` over `base` in each round of `runs` (the runs of other flows left out).
    fn new(runs: &[FlowRun], typed: Flow, base: Flow) -> anyhow::Result<Self> {
        let runs: Vec<FlowRun> = runs
            .iter()
            .filter(|r| r.flow == typed || r.flow == base)
            .cloned()
            .collect();
        let per = |flow: Flow| -> Vec<f64> {
            runs.iter()
                .filter(|r| r.flow == flow)
                .map(|r| r.orders_per_sec)
                .collect()
        };
        let ratios: Vec<f64> = runs
            .iter()
            .filter(|r| r.flow == typed)
            .filter_map(|t| {
                runs.iter()
                    .find(|p| p.flow == base && p.round == t.round)
                    .map(|p| t.orders_per_sec / p.orders_per_sec)
            })
            .collect();
        let median = super::producer::median;
        Ok(Self {
            typed_median_per_sec: median(&per(typed)).context("no typed run")?,
            passthrough_median_per_sec: median(&per(base)).context("no pass-through run")?,
            ratio: median(&ratios).context("no complete round")?,
            ratio_range: (
                ratios.iter().copied().fold(f64::INFINITY, f64::min),
                ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            ),
            runs,
        })
    }
}

/// The flows of round `round`, alternating which goes first.
fn flows(round: usize) -> [Flow; 2] {
    if round.is_multiple_of(2) {
        [Flow::Typed, Flow::PassThrough]
    } else {
        [Flow::PassThrough, Flow::Typed]
    }
}

/// The end-to-end flows of round `round`, rotating which goes first.
fn e2e_flows(round: usize) -> [Flow; 3] {
    let mut flows = [Flow::Typed, Flow::TypedKeys, Flow::PassThrough];
    flows.rotate_left(round % 3);
    flows
}

/// Client settings of a latency run.
const PROFILES: [(&str, &[(&str, &str)]); 2] = [
    // The local client.properties as the demo uses it (librdkafka's linger.ms=5).
    ("local defaults", &[]),
    // Latency over batching: no linger, and the mock broker's fetch wait cut to 2 ms.
    (
        "low latency (linger.ms=0, fetch.wait.max.ms=2)",
        &[
            ("GROCERY_LINGER_MS", "0"),
            ("GROCERY_FETCH_WAIT_MAX_MS", "2"),
        ],
    ),
];

/// Order-to-display latency at one rate.
#[derive(Debug, Serialize)]
pub(crate) struct Latency {
    pub(crate) profile: &'static str,
    pub(crate) rate: u32,
    pub(crate) orders: usize,
    pub(crate) p50_ms: Option<i64>,
    pub(crate) p99_ms: Option<i64>,
    pub(crate) p999_ms: Option<i64>,
}

/// Peak resident set size of each service, in MiB (the largest seen over all runs).
#[derive(Debug, Default, Serialize)]
pub(crate) struct PeakRss {
    pub(crate) order_producer_mib: f64,
    pub(crate) fulfillment_service_mib: f64,
    pub(crate) picklist_consumer_mib: f64,
}

/// Everything the pipeline bench measured.
#[derive(Debug, Serialize)]
pub(crate) struct PipelineReport {
    /// Orders of the saturation backlog.
    pub(crate) backlog: usize,
    /// Bytes of the records each order turns into: pick list, RECEIVED, PICKLIST_CREATED
    /// (the pass-through's, averaged over its pool).
    pub(crate) output_bytes: [usize; 3],
    /// At-least-once, then transactional.
    pub(crate) modes: Vec<ModeReport>,
    pub(crate) latency: Vec<Latency>,
    pub(crate) peak_rss: PeakRss,
}

/// Peak resident set size (`VmHWM`) of a live process, in MiB.
fn peak_rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

#[derive(Clone)]
struct Env {
    bins: Binaries,
    /// Environment overrides (`GROCERY_<KEY>`) given to every service.
    overrides: &'static [(&'static str, &'static str)],
    config: String,
    /// fulfillment-service's own client.properties (with a `transactional.id` in the
    /// transactional mode), else `config`.
    fulfillment_config: Option<String>,
    dir: std::path::PathBuf,
    log: std::path::PathBuf,
}

impl Env {
    /// This environment with fulfillment-service in `mode` (`transactional.id` `id`).
    fn in_mode(mut self, mode: Mode, id: &str) -> anyhow::Result<Self> {
        if mode == Mode::Transactional {
            let properties = std::fs::read_to_string(&self.config)?;
            let path = self.dir.join(format!("fulfillment-{id}.properties"));
            std::fs::write(&path, format!("{properties}\ntransactional.id={id}\n"))?;
            self.fulfillment_config = Some(path.display().to_string());
        }
        Ok(self)
    }

    fn service(&self, name: &str, program: &Path, args: &[&str]) -> anyhow::Result<Process> {
        let config = match (&self.fulfillment_config, name) {
            (Some(config), "fulfillment-service") => config,
            _ => &self.config,
        };
        let mut all = vec!["--config".to_owned(), config.clone()];
        all.extend(args.iter().map(|a| (*a).to_owned()));
        // Assignments (`avro_events::context`) and picklist-consumer's restore at start
        // (`picklist_consumer::staff`) are waited for.
        let log = if name == "picklist-consumer" {
            "warn,avro_events::context=info,picklist_consumer::staff=info"
        } else {
            "warn,avro_events::context=info"
        };
        let mut env = vec![("RUST_LOG", log)];
        env.extend_from_slice(self.overrides);
        services::start(name, program, &all, &env, &self.log)
    }

    /// Runs order-producer to completion, sampling its peak RSS.
    fn produce(
        &self,
        count: usize,
        rate: u32,
        rss: &mut f64,
    ) -> anyhow::Result<std::collections::HashMap<String, i64>> {
        let report = self.dir.join(format!("orders-{count}-{rate}.jsonl"));
        let producer = self.service(
            "order-producer",
            &self.bins.order_producer,
            &[
                "--count",
                &count.to_string(),
                "--rate",
                &rate.to_string(),
                "--report",
                &report.display().to_string(),
            ],
        )?;
        let deadline = Instant::now() + Duration::from_secs(300);
        let pid = producer.pid();
        loop {
            if let Some(mib) = peak_rss_mib(pid) {
                *rss = rss.max(mib);
            }
            if let Some(status) = producer.try_wait() {
                if !status.success() {
                    bail!(
                        "order-producer failed ({status}); see {}",
                        self.log.display()
                    );
                }
                break;
            }
            if Instant::now() > deadline {
                bail!("order-producer did not finish");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        services::read_report(&report)
    }
}

/// Runs the comparisons and the latency measurements on `stack`.
pub(crate) async fn pipeline_bench(
    args: PipelineBenchArgs,
    stack: &Stack,
    dir: &Path,
) -> anyhow::Result<PipelineReport> {
    // Progress lines carry the seconds since the pipeline bench began.
    let began = Instant::now();
    let at = || format!("[{:.0} s]", began.elapsed().as_secs_f64());
    let bins = if args.quick {
        eprintln!("building the services…");
        tokio::task::spawn_blocking(Binaries::build).await??
    } else {
        eprintln!("building the services (release)…");
        tokio::task::spawn_blocking(Binaries::build_release).await??
    };
    std::fs::create_dir_all(dir)?;
    let mut peak = PeakRss::default();
    let properties = stack.client_properties();

    // What the pass-through writes per input: fulfillment's records for simulated orders.
    let pool = output_pool(&properties).await?;
    let output_bytes = [0, 1, 2]
        .map(|i| pool.iter().map(|records| records[i].len()).sum::<usize>() / pool.len().max(1));
    let outputs = |name: &'static str| {
        let pool = pool.clone();
        async move {
            anyhow::Ok(passthrough::Outputs {
                picklists: stack
                    .create_unique_topic(&format!("{name}-picklists"), topics::PARTITIONS)
                    .await?,
                statuses: stack
                    .create_unique_topic(&format!("{name}-statuses"), topics::PARTITIONS)
                    .await?,
                records: pool,
            })
        }
    };

    // Saturation: a backlog of orders, then each round drains all of it once with the typed
    // pipeline and once with the pass-through, each as a new consumer group, in each mode.
    eprintln!(
        "{} saturation: {} orders backlog, {} rounds per mode…",
        at(),
        args.saturation_orders,
        args.pipeline_rounds
    );
    let env = run_env(&bins, &properties, dir, "saturation")?;
    let (env, backlog) = {
        let count = args.saturation_orders;
        let (env, orders, rss) = tokio::task::spawn_blocking(move || {
            let mut rss = 0.0;
            let orders = env.produce(count, 0, &mut rss)?;
            anyhow::Ok((env, orders, rss))
        })
        .await??;
        peak.order_producer_mib = peak.order_producer_mib.max(rss);
        (env, orders.len())
    };
    let mut saturation = Vec::new();
    for mode in Mode::ALL {
        let mut runs = Vec::new();
        for round in 0..args.pipeline_rounds {
            for flow in flows(round) {
                let tag = format!("{}-{round}", mode.tag());
                let seconds = match flow {
                    Flow::Typed => {
                        let env = env.clone().in_mode(mode, &format!("bench-sat-{tag}"))?;
                        let group = format!("bench-saturation-typed-{tag}");
                        let quick = args.quick;
                        let (seconds, rss) = tokio::task::spawn_blocking(move || {
                            drain_typed(&env, &group, backlog, quick)
                        })
                        .await??;
                        peak.fulfillment_service_mib = peak.fulfillment_service_mib.max(rss);
                        seconds
                    }
                    Flow::TypedKeys => unreachable!("an end-to-end flow"),
                    Flow::PassThrough => {
                        let copied = passthrough::copy(
                            properties.clone(),
                            format!("bench-saturation-copy-{tag}"),
                            topics::ORDERS.to_owned(),
                            outputs("bench-copy").await?,
                            backlog as u64,
                            None,
                            (mode == Mode::Transactional).then(|| format!("bench-sat-copy-{tag}")),
                        )
                        .await?;
                        copied.seconds(backlog as u64)
                    }
                };
                // Timed from the first output acknowledged to the last: one output fewer.
                let timed = backlog.saturating_sub(1).max(1);
                runs.push(FlowRun {
                    round,
                    flow,
                    orders: timed,
                    seconds,
                    orders_per_sec: timed as f64 / seconds,
                });
            }
        }
        saturation.push(Comparison::new(&runs, Flow::Typed, Flow::PassThrough)?);
    }

    // End to end: all groups assigned, then orders as fast as order-producer sends them,
    // until every order's pick list (copy) is shown.
    eprintln!(
        "{} end to end: {} orders per run, {} rounds per mode…",
        at(),
        args.e2e_orders,
        args.pipeline_rounds
    );
    let mut modes = Vec::new();
    for (mode, saturation) in Mode::ALL.into_iter().zip(saturation) {
        let mut runs = Vec::new();
        for round in 0..args.pipeline_rounds {
            for flow in e2e_flows(round) {
                let tag = format!("{}-{round}", mode.tag());
                let env = run_env(&bins, &properties, dir, &format!("e2e-{tag}-{flow:?}"))?
                    .in_mode(mode, &format!("bench-e2e-{tag}"))?;
                let count = args.e2e_orders;
                let (orders, seconds) = match flow {
                    Flow::Typed => {
                        let (seconds, rss) =
                            tokio::task::spawn_blocking(move || e2e_typed(&env, &tag, count))
                                .await??;
                        peak.max(&rss);
                        (count, seconds)
                    }
                    Flow::TypedKeys => {
                        let (orders, seconds, rss) = e2e_typed_keys(env, &tag, count).await?;
                        peak.fulfillment_service_mib = peak.fulfillment_service_mib.max(rss);
                        (orders, seconds)
                    }
                    Flow::PassThrough => {
                        let outputs = outputs("bench-e2e-copy").await?;
                        let transactional_id =
                            (mode == Mode::Transactional).then(|| format!("bench-e2e-copy-{tag}"));
                        e2e_passthrough(env, &tag, count, outputs, transactional_id).await?
                    }
                };
                runs.push(FlowRun {
                    round,
                    flow,
                    orders,
                    seconds,
                    orders_per_sec: orders as f64 / seconds,
                });
            }
        }
        modes.push(ModeReport {
            mode,
            saturation,
            end_to_end: Comparison::new(&runs, Flow::Typed, Flow::PassThrough)?,
            end_to_end_same_reader: Comparison::new(&runs, Flow::TypedKeys, Flow::PassThrough)?,
            display_over_key_counter: Comparison::new(&runs, Flow::Typed, Flow::TypedKeys)?,
        });
    }

    // Latency: all three services, orders at a fixed rate, order time to display time.
    let mut latency = Vec::new();
    for (profile, overrides) in PROFILES {
        for rate in args.rates.clone() {
            eprintln!("{} latency: {profile}, {rate} orders/s…", at());
            let mut env = run_env(
                &bins,
                &properties,
                dir,
                &format!("latency-{rate}-{}", latency.len()),
            )?;
            env.overrides = overrides;
            let count = (rate * args.seconds) as usize;
            let run = latency.len();
            let (mut result, rss) =
                tokio::task::spawn_blocking(move || latency_run(&env, run, rate, count)).await??;
            result.profile = profile;
            peak.max(&rss);
            latency.push(result);
        }
    }
    eprintln!("{} pipeline bench done", at());
    Ok(PipelineReport {
        backlog,
        output_bytes,
        modes,
        latency,
        peak_rss: peak,
    })
}

impl PeakRss {
    fn max(&mut self, other: &PeakRss) {
        self.order_producer_mib = self.order_producer_mib.max(other.order_producer_mib);
        self.fulfillment_service_mib = self
            .fulfillment_service_mib
            .max(other.fulfillment_service_mib);
        self.picklist_consumer_mib = self.picklist_consumer_mib.max(other.picklist_consumer_mib);
    }
}

/// fulfillment-service as group `group` drains the backlog of `total` orders: seconds from the
/// first scrape that shows pick lists produced to the one that shows all, scaled to
/// `total - 1` outputs as the pass-through is timed; and its peak RSS. A backlog half drained
/// at the first scrape fails the run, unless `quick` (then it is only reported).
fn drain_typed(env: &Env, group: &str, total: usize, quick: bool) -> anyhow::Result<(f64, f64)> {
    let metrics = format!("127.0.0.1:{}", services::FreePorts::default().pick()?);
    let mut fulfillment = env.service(
        "fulfillment-service",
        &env.bins.fulfillment_service,
        &["--listen", &metrics, "--group", group],
    )?;
    let counter = || {
        services::http_get(&metrics, "/metrics")
            .ok()
            .and_then(|t| services::metric(&t, "fulfillment_picklists_produced_total"))
            .unwrap_or(0.0)
    };
    let deadline = Instant::now() + Duration::from_secs(300);
    let total = total as f64;
    let (started, produced_at_start) = loop {
        let produced = counter();
        if produced > 0.0 {
            break (Instant::now(), produced);
        }
        if Instant::now() > deadline {
            bail!(
                "fulfillment-service never produced; see {}",
                env.log.display()
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    if produced_at_start > total / 2.0 {
        let message = format!(
            "backlog of {total} drained before it could be timed ({produced_at_start} pick lists \
             at the first scrape); use more --saturation-orders"
        );
        if !quick {
            bail!(message);
        }
        eprintln!("{message}");
    }
    while counter() < total {
        if Instant::now() > deadline {
            bail!(
                "fulfillment-service did not drain the backlog: {} of {total} pick lists; see {}",
                counter(),
                env.log.display()
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let seconds =
        started.elapsed().as_secs_f64() * (total - 1.0) / (total - produced_at_start).max(1.0);
    let rss = peak_rss_mib(fulfillment.pid()).unwrap_or_default();
    let status = fulfillment.terminate(Duration::from_secs(30))?;
    anyhow::ensure!(status.success(), "fulfillment-service exited with {status}");
    Ok((seconds, rss))
}

/// Seconds from the first order's time to the last display.
fn span_seconds(orders: &std::collections::HashMap<String, i64>, last_shown_ms: i64) -> f64 {
    let first_sent = orders.values().copied().min().unwrap_or(last_shown_ms);
    ((last_shown_ms - first_sent).max(1)) as f64 / 1000.0
}

/// Typed end to end: fulfillment-service and picklist-consumer (new groups starting at the
/// topics' ends) assigned, then `count` orders at full speed until every pick list is shown.
fn e2e_typed(env: &Env, tag: &str, count: usize) -> anyhow::Result<(f64, PeakRss)> {
    let properties = std::fs::read_to_string(&env.config)?;
    let (fulfillment_group, display_group) = (
        format!("bench-e2e-typed-{tag}"),
        format!("bench-e2e-display-{tag}"),
    );
    commit_to_end(&properties, &fulfillment_group, topics::ORDERS)?;
    commit_to_end(&properties, &display_group, topics::PICKLISTS)?;
    let mut fulfillment = env.service(
        "fulfillment-service",
        &env.bins.fulfillment_service,
        &[
            "--listen",
            &format!("127.0.0.1:{}", services::FreePorts::default().pick()?),
            "--group",
            &fulfillment_group,
        ],
    )?;
    let mut consumer = env.service(
        "picklist-consumer",
        &env.bins.picklist_consumer,
        &["--json", "--group", &display_group],
    )?;
    services::wait_until_assigned(&[&fulfillment, &consumer], Duration::from_secs(60))?;
    wait_until_restored(&consumer)?;
    let mut rss = PeakRss::default();
    let orders = env.produce(count, 0, &mut rss.order_producer_mib)?;
    let (shown, last) = read_pick_lists(&mut consumer, &orders)?;
    if shown < orders.len() {
        bail!(
            "only {shown} of {} pick lists shown end to end",
            orders.len()
        );
    }
    rss.fulfillment_service_mib = peak_rss_mib(fulfillment.pid()).unwrap_or_default();
    rss.picklist_consumer_mib = peak_rss_mib(consumer.pid()).unwrap_or_default();
    for (name, service) in [
        ("picklist-consumer", &mut consumer),
        ("fulfillment-service", &mut fulfillment),
    ] {
        let status = service.terminate(Duration::from_secs(30))?;
        anyhow::ensure!(status.success(), "{name} exited with {status}");
    }
    Ok((span_seconds(&orders, last), rss))
}

/// Waits until picklist-consumer has put back the pick lists of earlier runs (its restore at
/// start reads the whole pick-list and status topics: every earlier run's records), so that a
/// run times the display of its own orders, not the start-up work beside it. Its peak RSS
/// still counts the restore.
fn wait_until_restored(consumer: &Process) -> anyhow::Result<()> {
    consumer
        .stderr()
        .wait_for(Duration::from_secs(300), |line| {
            line.contains("put back on the board")
        })
        .context("picklist-consumer did not finish putting back the earlier pick lists")?;
    Ok(())
}

/// Reads picklist-consumer's JSON lines until every order in `orders` was shown (or 120 s
/// pass): how many were, and the last display time.
fn read_pick_lists(
    consumer: &mut Process,
    orders: &std::collections::HashMap<String, i64>,
) -> anyhow::Result<(usize, i64)> {
    let mut shown = HashSet::new();
    let mut last = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    while shown.len() < orders.len() && Instant::now() < deadline {
        let Some(line) = consumer.next_line(Duration::from_millis(200)) else {
            continue;
        };
        let v: Value = serde_json::from_str(&line)?;
        let id = v["order_id"].as_str().unwrap_or_default().to_owned();
        if orders.contains_key(&id) && shown.insert(id) {
            last = last.max(v["displayed_at_ms"].as_i64().unwrap_or_default());
        }
    }
    Ok((shown.len(), last))
}

/// Pass-through end to end: the pass-through and a reader of its pick lists (new groups, the
/// pass-through's starting at the orders topic's end) assigned, then `count` orders at full
/// speed until every order's pick list was read.
async fn e2e_passthrough(
    env: Env,
    tag: &str,
    count: usize,
    outputs: passthrough::Outputs,
    transactional_id: Option<String>,
) -> anyhow::Result<(usize, f64)> {
    let properties = std::fs::read_to_string(&env.config)?;
    let group = format!("bench-e2e-copy-{tag}");
    {
        let (properties, group) = (properties.clone(), group.clone());
        tokio::task::spawn_blocking(move || commit_to_end(&properties, &group, topics::ORDERS))
            .await??;
    }
    let picklists = outputs.picklists.clone();
    let (copy_ready, copy_assigned) = oneshot::channel();
    let (reader_ready, reader_assigned) = oneshot::channel();
    let (send_keys, keys) = oneshot::channel();
    let copy = tokio::spawn(passthrough::copy(
        properties.clone(),
        group,
        topics::ORDERS.to_owned(),
        outputs,
        count as u64,
        Some(copy_ready),
        transactional_id,
    ));
    let reader = tokio::spawn(passthrough::count_keys(
        properties,
        format!("bench-e2e-reader-{tag}"),
        picklists,
        reader_ready,
        keys,
    ));
    copy_assigned
        .await
        .context("the pass-through ended before its assignment")?;
    reader_assigned
        .await
        .context("the reader ended before its assignment")?;
    let orders = tokio::task::spawn_blocking(move || {
        let mut rss = 0.0;
        env.produce(count, 0, &mut rss)
    })
    .await??;
    let _ = send_keys.send(orders.keys().cloned().collect());
    let limit = Duration::from_secs(120);
    tokio::time::timeout(limit, copy)
        .await
        .context("the pass-through did not write every order's records in 120 s")???;
    let last = tokio::time::timeout(limit, reader)
        .await
        .context("the pass-through's pick lists were not all read in 120 s")???;
    Ok((orders.len(), span_seconds(&orders, last)))
}

/// fulfillment-service end to end, its pick lists read by the pass-through's reader: both
/// (new groups starting at the topics' ends) assigned, then `count` orders at full speed until
/// every order's pick list was read. Returns the orders, the seconds and fulfillment's peak
/// RSS.
async fn e2e_typed_keys(env: Env, tag: &str, count: usize) -> anyhow::Result<(usize, f64, f64)> {
    let properties = std::fs::read_to_string(&env.config)?;
    let (fulfillment_group, reader_group) = (
        format!("bench-e2e-typed-keys-{tag}"),
        format!("bench-e2e-typed-reader-{tag}"),
    );
    {
        let (properties, fulfillment_group, reader_group) = (
            properties.clone(),
            fulfillment_group.clone(),
            reader_group.clone(),
        );
        tokio::task::spawn_blocking(move || {
            commit_to_end(&properties, &fulfillment_group, topics::ORDERS)?;
            commit_to_end(&properties, &reader_group, topics::PICKLISTS)
        })
        .await??;
    }
    let fulfillment = env.service(
        "fulfillment-service",
        &env.bins.fulfillment_service,
        &[
            "--listen",
            &format!("127.0.0.1:{}", services::FreePorts::default().pick()?),
            "--group",
            &fulfillment_group,
        ],
    )?;
    let (reader_ready, reader_assigned) = oneshot::channel();
    let (send_keys, keys) = oneshot::channel();
    let reader = tokio::spawn(passthrough::count_keys(
        properties,
        reader_group,
        topics::PICKLISTS.to_owned(),
        reader_ready,
        keys,
    ));
    reader_assigned
        .await
        .context("the reader ended before its assignment")?;
    let (env, fulfillment, orders) = tokio::task::spawn_blocking(move || {
        services::wait_until_assigned(&[&fulfillment], Duration::from_secs(60))?;
        let mut rss = 0.0;
        let orders = env.produce(count, 0, &mut rss)?;
        anyhow::Ok((env, fulfillment, orders))
    })
    .await??;
    let _ = send_keys.send(orders.keys().cloned().collect());
    let last = tokio::time::timeout(Duration::from_secs(120), reader)
        .await
        .with_context(|| {
            format!(
                "fulfillment-service's pick lists were not all read in 120 s; see {}",
                env.log.display()
            )
        })???;
    let rss = peak_rss_mib(fulfillment.pid()).unwrap_or_default();
    let status = tokio::task::spawn_blocking(move || {
        let mut fulfillment = fulfillment;
        fulfillment.terminate(Duration::from_secs(30))
    })
    .await??;
    anyhow::ensure!(status.success(), "fulfillment-service exited with {status}");
    Ok((orders.len(), span_seconds(&orders, last), rss))
}

/// Encoded (pick list, RECEIVED, PICKLIST_CREATED) records of simulated orders, as
/// fulfillment-service builds and encodes them (same catalog, roster, schemas and ids): what the
/// pass-through writes per input.
async fn output_pool(properties: &str) -> anyhow::Result<std::sync::Arc<Vec<[Vec<u8>; 3]>>> {
    use grocery_store::{Catalog, OrderSimulator, PickListBuilder, PickerRoster};
    const POOL: usize = 2_000;
    let client = grocery_events::Client::from_config(grocery_events::Config::from_properties_str(
        properties,
    )?)?;
    let codec = client.codec();
    let catalog = Catalog::builtin();
    let builder = PickListBuilder::new(&catalog, PickerRoster::default());
    let mut simulator = OrderSimulator::new(19, &catalog);
    let now = passthrough::epoch_ms();
    let mut pool = Vec::with_capacity(POOL);
    for _ in 0..POOL {
        let order = simulator.next_order(now);
        let pick_list = builder.build(&order, now);
        let [received, created] = grocery_store::fulfillment_statuses(&order, &pick_list, now);
        pool.push([
            codec.encode(&pick_list).await?,
            codec.encode(&received).await?,
            codec.encode(&created).await?,
        ]);
    }
    Ok(std::sync::Arc::new(pool))
}

fn run_env(bins: &Binaries, properties: &str, dir: &Path, name: &str) -> anyhow::Result<Env> {
    let run_dir = dir.join(name);
    std::fs::create_dir_all(&run_dir)?;
    let config = run_dir.join("client.properties");
    std::fs::write(&config, properties)?;
    let log = run_dir.join("services.log");
    std::fs::write(&log, "")?;
    Ok(Env {
        bins: bins.clone(),
        overrides: &[],
        config: config.display().to_string(),
        fulfillment_config: None,
        dir: run_dir,
        log,
    })
}

fn latency_run(
    env: &Env,
    run: usize,
    rate: u32,
    count: usize,
) -> anyhow::Result<(Latency, PeakRss)> {
    let properties = std::fs::read_to_string(&env.config)?;
    let (fulfillment_group, display_group) = (
        format!("bench-latency-{run}"),
        format!("bench-latency-display-{run}"),
    );
    commit_to_end(&properties, &fulfillment_group, topics::ORDERS)?;
    commit_to_end(&properties, &display_group, topics::PICKLISTS)?;
    let metrics = format!("127.0.0.1:{}", services::FreePorts::default().pick()?);
    let mut fulfillment = env.service(
        "fulfillment-service",
        &env.bins.fulfillment_service,
        &["--listen", &metrics, "--group", &fulfillment_group],
    )?;
    let mut consumer = env.service(
        "picklist-consumer",
        &env.bins.picklist_consumer,
        &["--json", "--group", &display_group],
    )?;
    services::wait_until_assigned(&[&fulfillment, &consumer], Duration::from_secs(60))?;
    wait_until_restored(&consumer)?;
    let mut rss = PeakRss::default();
    let orders = env.produce(count, rate, &mut rss.order_producer_mib)?;
    let mut shown = HashSet::new();
    let mut latencies = Vec::with_capacity(orders.len());
    let deadline = Instant::now() + Duration::from_secs(120);
    while shown.len() < orders.len() && Instant::now() < deadline {
        let Some(line) = consumer.next_line(Duration::from_millis(200)) else {
            continue;
        };
        let v: Value = serde_json::from_str(&line)?;
        let id = v["order_id"].as_str().unwrap_or_default().to_owned();
        if let (Some(sent), Some(shown_at)) = (orders.get(&id), v["displayed_at_ms"].as_i64())
            && shown.insert(id)
        {
            latencies.push(shown_at - sent);
        }
    }
    if shown.len() < orders.len() {
        bail!(
            "only {} of {} pick lists shown at {rate}/s",
            shown.len(),
            orders.len()
        );
    }
    rss.fulfillment_service_mib = peak_rss_mib(fulfillment.pid()).unwrap_or_default();
    rss.picklist_consumer_mib = peak_rss_mib(consumer.pid()).unwrap_or_default();
    for (name, service) in [
        ("picklist-consumer", &mut consumer),
        ("fulfillment-service", &mut fulfillment),
    ] {
        let status = service.terminate(Duration::from_secs(30))?;
        anyhow::ensure!(status.success(), "{name} exited with {status}");
    }
    latencies.sort_unstable();
    Ok((
        Latency {
            profile: "",
            rate,
            orders: orders.len(),
            p50_ms: services::percentile(&latencies, 50.0),
            p99_ms: services::percentile(&latencies, 99.0),
            p999_ms: services::percentile(&latencies, 99.9),
        },
        rss,
    ))
}
