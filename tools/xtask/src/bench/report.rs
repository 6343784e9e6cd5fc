//! `cargo xtask bench`: runs the producer comparison and the pipeline bench, prints a table and
//! writes the figures as JSON.

use std::path::PathBuf;

use anyhow::Context as _;
use serde::Serialize;

use local_stack::KafkaAuth;

use super::{
    pipeline::{Comparison, PIPELINE_TARGET, PipelineBenchArgs, PipelineReport, pipeline_bench},
    producer::{ProducerBenchArgs, ProducerReport, Ratio, producer_bench},
};
use crate::broker::{BrokerArg, start_stack};

/// Arguments of `cargo xtask bench`.
#[derive(clap::Args, Debug)]
pub(crate) struct BenchArgs {
    #[command(flatten)]
    producer: ProducerBenchArgs,
    #[command(flatten)]
    pipeline: PipelineBenchArgs,
    /// Where the JSON report goes (default: `target/bench/report-<broker>.json`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// The broker: the mock cluster or a real Apache Kafka broker (Java 17, Maven).
    #[arg(long, value_enum, default_value = "mock")]
    broker: BrokerArg,
    /// With `--broker kafka`: how the clients authenticate (none, oauth, plain).
    #[arg(long, default_value = "none")]
    auth: KafkaAuth,
    /// The short form CI runs so that a broken bench fails the build: one round of every
    /// measurement with small counts (they replace the count flags), in the build it is run
    /// from (no release re-run or release services). Figures are printed but are not
    /// measurements, and nothing is compared with the targets.
    #[arg(long)]
    quick: bool,
}

#[derive(Serialize)]
struct Report {
    /// The short form (`--quick`): figures of one small round, not measurements.
    quick: bool,
    broker: String,
    command: String,
    machine: Machine,
    producer: ProducerReport,
    pipeline: PipelineReport,
}

#[derive(Serialize)]
struct Machine {
    cpus: usize,
    cpu_model: String,
    kernel: String,
}

fn machine() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    Machine {
        cpus: std::thread::available_parallelism().map_or(0, usize::from),
        cpu_model: cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|l| l.split(':').nth(1))
            .unwrap_or("unknown")
            .trim()
            .to_owned(),
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
            .to_owned(),
    }
}

pub(crate) async fn run(mut args: BenchArgs) -> anyhow::Result<()> {
    if args.quick {
        args.producer.quick();
        args.pipeline.quick();
    }
    // `cargo xtask` builds xtask unoptimized; the producer comparison runs in this process, so
    // it re-runs itself from a release build (the quick form runs where it is).
    if cfg!(debug_assertions) && !args.quick {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = std::process::Command::new(cargo)
            .current_dir(xtask::services::workspace_dir())
            .args(["run", "--release", "--quiet", "-p", "xtask", "--"])
            .args(std::env::args_os().skip(1))
            .status()
            .context("re-running cargo xtask bench from a release build")?;
        anyhow::ensure!(
            status.success(),
            "cargo xtask bench (release) failed: {status}"
        );
        return Ok(());
    }
    let broker = args.broker.label(args.auth);
    let name = format!("{:?}", args.broker).to_lowercase();
    let dir = xtask::services::workspace_dir()
        .join("target/bench")
        .join(&name);
    let started = std::time::Instant::now();
    let stack = start_stack(args.broker, args.auth).await?;
    eprintln!(
        "{broker} up in {:.1} s; producer: typed vs anchor vs raw rdkafka…",
        started.elapsed().as_secs_f64()
    );
    let result = async {
        let producer = producer_bench(args.producer, &stack)
            .await
            .context("producer comparison")?;
        let pipeline = pipeline_bench(args.pipeline, &stack, &dir)
            .await
            .context("pipeline bench")?;
        anyhow::Ok((producer, pipeline))
    }
    .await;
    stack.shutdown().await;
    let (producer, pipeline) = result?;
    let report = Report {
        quick: args.quick,
        broker,
        command: format!(
            "cargo xtask {}",
            std::env::args().skip(1).collect::<Vec<_>>().join(" ")
        ),
        machine: machine(),
        producer,
        pipeline,
    };
    print(&report);
    eprintln!("bench took {:.0} s", started.elapsed().as_secs_f64());
    let out = xtask::services::workspace_dir().join(
        args.out
            .unwrap_or_else(|| PathBuf::from(format!("target/bench/report-{name}.json"))),
    );
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&out, serde_json::to_string_pretty(&report)?)
        .with_context(|| format!("writing {}", out.display()))?;
    println!("\nJSON report: {}", out.display());
    Ok(())
}

fn ratio(r: &Ratio) -> String {
    format!(
        "**{:.2}×** (rounds {:.2}–{:.2})",
        r.median, r.range.0, r.range.1
    )
}

fn comparison(c: &Comparison) -> String {
    format!(
        "{:.0} / {:.0} orders/s = **{:.2}×** (rounds {:.2}–{:.2})",
        c.typed_median_per_sec,
        c.passthrough_median_per_sec,
        c.ratio,
        c.ratio_range.0,
        c.ratio_range.1
    )
}

fn print(report: &Report) {
    let p = &report.producer;
    let s = &p.summary;
    let ms = |v: Option<i64>| v.map_or_else(|| "n/a".to_owned(), |v| format!("{v} ms"));
    if report.quick {
        println!(
            "\n--quick: one small round{}; the figures show the bench runs, they are not measurements",
            if cfg!(debug_assertions) {
                " of an unoptimized build"
            } else {
                ""
            }
        );
    }
    println!("\nbroker: {}", report.broker);
    println!("command: {}", report.command);
    println!(
        "machine: {} CPUs, {} (kernel {})",
        report.machine.cpus, report.machine.cpu_model, report.machine.kernel
    );
    println!("\n| measure ({}) | figure | target |", report.broker);
    println!("|---|---|---|");
    println!(
        "| producer msgs/s ({} rounds × {} msgs, {} B): typed / anchor / raw | {:.0} / {:.0} / {:.0} | |",
        p.rounds,
        p.messages,
        p.payload_bytes,
        s.typed_median_per_sec,
        s.anchor_median_per_sec,
        s.raw_median_per_sec
    );
    println!(
        "| producer: typed / raw rdkafka bytes | {} | ≥ {:.1}× |",
        ratio(&s.typed_vs_raw),
        s.target
    );
    println!(
        "| producer: typed / anchor (rdkafka + schema_registry_converter) | {} | |",
        ratio(&s.typed_vs_anchor)
    );
    println!(
        "| producer: anchor / raw rdkafka bytes | {} | |",
        ratio(&s.anchor_vs_raw)
    );
    let l = &report.pipeline;
    let [pick_list, received, created] = l.output_bytes;
    for m in &l.modes {
        println!(
            "| saturation, {} ({} orders backlog): fulfillment-service / pass-through writing the same records ({pick_list} + {received} + {created} B per order) | {} | ≥ {PIPELINE_TARGET}× |",
            m.mode.label(),
            l.backlog,
            comparison(&m.saturation)
        );
        let orders = m.end_to_end.runs.first().map_or(0, |r| r.orders);
        println!(
            "| end to end, {} ({orders} orders, sent → read by the same key counter): fulfillment-service / pass-through | {} | ≥ {PIPELINE_TARGET}× |",
            m.mode.label(),
            comparison(&m.end_to_end_same_reader)
        );
        println!(
            "| end to end, {} ({orders} orders, sent → shown): fulfillment-service + picklist-consumer / pass-through + key counter | {} | |",
            m.mode.label(),
            comparison(&m.end_to_end)
        );
        println!(
            "| end to end, {} ({orders} orders): shown by picklist-consumer / read by the key counter, both after fulfillment-service | {} | |",
            m.mode.label(),
            comparison(&m.display_over_key_counter)
        );
    }
    for l in &report.pipeline.latency {
        println!(
            "| order → display, {}, {} orders/s ({} orders) | p50 {} · p99 {} · p999 {} | p99 ≤ 20 ms at 1,000/s |",
            l.profile,
            l.rate,
            l.orders,
            ms(l.p50_ms),
            ms(l.p99_ms),
            ms(l.p999_ms)
        );
    }
    let r = &report.pipeline.peak_rss;
    println!(
        "| peak RSS: order-producer / fulfillment-service / picklist-consumer | {:.1} / {:.1} / {:.1} MiB | < 64 MiB each |",
        r.order_producer_mib, r.fulfillment_service_mib, r.picklist_consumer_mib
    );
}
