//! The services under load, as separate release-built processes on the local stack:
//! fulfillment throughput at saturation, order-to-display latency at fixed rates, and each
//! service's peak resident memory.

use std::{
    collections::HashSet,
    path::Path,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use local_stack::Stack;
use serde::Serialize;
use serde_json::Value;
use xtask::services::{self, Binaries, Service};

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
}

/// Throughput of fulfillment-service at saturation.
#[derive(Debug, Serialize)]
pub(crate) struct Saturation {
    pub(crate) orders: usize,
    /// Orders produced between the first and the last timed scrape.
    pub(crate) timed_orders: usize,
    pub(crate) seconds: f64,
    pub(crate) orders_per_sec: f64,
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
    pub(crate) saturation: Saturation,
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

struct Env {
    bins: Binaries,
    /// Environment overrides (`GROCERY_<KEY>`) given to every service.
    overrides: &'static [(&'static str, &'static str)],
    config: String,
    dir: std::path::PathBuf,
    log: std::path::PathBuf,
}

impl Env {
    fn service(
        &self,
        name: &str,
        program: &Path,
        args: &[&str],
        stdout: bool,
    ) -> anyhow::Result<Service> {
        let mut all = vec!["--config".to_owned(), self.config.clone()];
        all.extend(args.iter().map(|a| (*a).to_owned()));
        let mut env = vec![("RUST_LOG", "warn,grocery_events::context=info")];
        env.extend_from_slice(self.overrides);
        Service::start(name, program, &all, &env, &self.log, stdout)
    }

    /// Runs order-producer to completion, sampling its peak RSS.
    fn produce(
        &self,
        count: usize,
        rate: u32,
        rss: &mut f64,
    ) -> anyhow::Result<std::collections::HashMap<String, i64>> {
        let report = self.dir.join(format!("orders-{count}-{rate}.jsonl"));
        let mut producer = self.service(
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
            false,
        )?;
        let deadline = Instant::now() + Duration::from_secs(300);
        let pid = producer.pid();
        loop {
            if let Some(mib) = peak_rss_mib(pid) {
                *rss = rss.max(mib);
            }
            if let Some(status) = producer.try_wait()? {
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

/// Runs the saturation and latency measurements.
pub(crate) async fn pipeline_bench(
    args: PipelineBenchArgs,
    dir: &Path,
) -> anyhow::Result<PipelineReport> {
    eprintln!("building the services (release)…");
    let bins = tokio::task::spawn_blocking(Binaries::build_release).await??;
    std::fs::create_dir_all(dir)?;
    let mut peak = PeakRss::default();

    // Saturation: a backlog of orders, then one fulfillment-service drains it.
    let stack = Stack::start().await.context("starting the local stack")?;
    let env = run_env(&bins, &stack, dir, "saturation")?;
    let saturation = {
        let args = args.clone();
        let (saturation, producer_rss, fulfillment_rss) = tokio::task::spawn_blocking(move || {
            let mut producer_rss = 0.0;
            let orders = env.produce(args.saturation_orders, 0, &mut producer_rss)?;
            let metrics = format!("127.0.0.1:{}", services::free_port()?);
            let mut fulfillment = env.service(
                "fulfillment-service",
                &env.bins.fulfillment_service,
                &["--listen", &metrics],
                false,
            )?;
            let counter = |name: &str| {
                services::http_get(&metrics, "/metrics")
                    .ok()
                    .and_then(|t| services::metric(&t, name))
                    .unwrap_or(0.0)
            };
            // The rate is measured between the first scrape that shows pick lists produced and
            // the one that shows the backlog drained, so start-up and the group join are not
            // counted.
            let deadline = Instant::now() + Duration::from_secs(300);
            let total = orders.len() as f64;
            let (started, produced_at_start) = loop {
                let produced = counter("fulfillment_picklists_produced_total");
                if produced > 0.0 {
                    break (Instant::now(), produced);
                }
                if Instant::now() > deadline {
                    bail!("fulfillment-service never produced");
                }
                std::thread::sleep(Duration::from_millis(5));
            };
            if produced_at_start > total / 2.0 {
                bail!("backlog of {total} drained before it could be timed; use more --saturation-orders");
            }
            while counter("fulfillment_picklists_produced_total") < total {
                if Instant::now() > deadline {
                    bail!(
                        "fulfillment-service did not drain the backlog: {} of {total} pick lists; see {}",
                        counter("fulfillment_picklists_produced_total"),
                        env.log.display()
                    );
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            let seconds = started.elapsed().as_secs_f64();
            let timed = total - produced_at_start;
            let fulfillment_rss = peak_rss_mib(fulfillment.pid()).unwrap_or_default();
            fulfillment.terminate(Duration::from_secs(30))?;
            Ok((
                Saturation {
                    orders: orders.len(),
                    timed_orders: timed as usize,
                    seconds,
                    orders_per_sec: timed / seconds,
                },
                producer_rss,
                fulfillment_rss,
            ))
        })
        .await??;
        peak.order_producer_mib = peak.order_producer_mib.max(producer_rss);
        peak.fulfillment_service_mib = peak.fulfillment_service_mib.max(fulfillment_rss);
        saturation
    };
    stack.shutdown().await;

    // Latency: all three services, orders at a fixed rate, order time to display time.
    let mut latency = Vec::new();
    for (profile, overrides) in PROFILES {
        for rate in args.rates.clone() {
            let stack = Stack::start().await.context("starting the local stack")?;
            let mut env = run_env(
                &bins,
                &stack,
                dir,
                &format!("latency-{rate}-{}", latency.len()),
            )?;
            env.overrides = overrides;
            let count = (rate * args.seconds) as usize;
            let (mut result, rss) =
                tokio::task::spawn_blocking(move || latency_run(&env, rate, count)).await??;
            result.profile = profile;
            peak.order_producer_mib = peak.order_producer_mib.max(rss.order_producer_mib);
            peak.fulfillment_service_mib = peak
                .fulfillment_service_mib
                .max(rss.fulfillment_service_mib);
            peak.picklist_consumer_mib = peak.picklist_consumer_mib.max(rss.picklist_consumer_mib);
            latency.push(result);
            stack.shutdown().await;
        }
    }
    Ok(PipelineReport {
        saturation,
        latency,
        peak_rss: peak,
    })
}

fn run_env(bins: &Binaries, stack: &Stack, dir: &Path, name: &str) -> anyhow::Result<Env> {
    let run_dir = dir.join(name);
    std::fs::create_dir_all(&run_dir)?;
    let config = run_dir.join("client.properties");
    std::fs::write(&config, stack.client_properties())?;
    let log = run_dir.join("services.log");
    std::fs::write(&log, "")?;
    Ok(Env {
        bins: bins.clone(),
        overrides: &[],
        config: config.display().to_string(),
        dir: run_dir,
        log,
    })
}

fn latency_run(env: &Env, rate: u32, count: usize) -> anyhow::Result<(Latency, PeakRss)> {
    let metrics = format!("127.0.0.1:{}", services::free_port()?);
    let mut fulfillment = env.service(
        "fulfillment-service",
        &env.bins.fulfillment_service,
        &["--listen", &metrics],
        false,
    )?;
    let mut consumer = env.service(
        "picklist-consumer",
        &env.bins.picklist_consumer,
        &["--json"],
        true,
    )?;
    services::wait_for_log(&env.log, "partitions assigned", 2, Duration::from_secs(60))?;
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
    consumer.terminate(Duration::from_secs(30))?;
    fulfillment.terminate(Duration::from_secs(30))?;
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
