//! `cargo xtask bench`: runs the producer comparison and the pipeline bench, prints a table and
//! writes the figures as JSON.

use std::path::PathBuf;

use anyhow::Context as _;
use serde::Serialize;

use super::{
    pipeline::{PipelineBenchArgs, PipelineReport, pipeline_bench},
    producer::{ProducerBenchArgs, ProducerReport, producer_bench},
};

/// Arguments of `cargo xtask bench`.
#[derive(clap::Args, Debug)]
pub(crate) struct BenchArgs {
    #[command(flatten)]
    producer: ProducerBenchArgs,
    #[command(flatten)]
    pipeline: PipelineBenchArgs,
    /// Where the JSON report goes.
    #[arg(long, default_value = "target/bench/report.json")]
    out: PathBuf,
}

#[derive(Serialize)]
struct Report {
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

pub(crate) async fn run(args: BenchArgs) -> anyhow::Result<()> {
    // `cargo xtask` builds xtask unoptimized; the producer comparison runs in this process, so
    // it re-runs itself from a release build.
    if cfg!(debug_assertions) {
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
    let dir = xtask::services::workspace_dir().join("target/bench");
    eprintln!("producer: typed vs raw rdkafka…");
    let producer = producer_bench(args.producer).await?;
    let pipeline = pipeline_bench(args.pipeline, &dir).await?;
    let report = Report {
        machine: machine(),
        producer,
        pipeline,
    };
    print(&report);
    let out = xtask::services::workspace_dir().join(&args.out);
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&out, serde_json::to_string_pretty(&report)?)
        .with_context(|| format!("writing {}", out.display()))?;
    println!("\nJSON report: {}", out.display());
    Ok(())
}

fn print(report: &Report) {
    let p = &report.producer.summary;
    let ms = |v: Option<i64>| v.map_or_else(|| "n/a".to_owned(), |v| format!("{v} ms"));
    println!(
        "\nmachine: {} CPUs, {} (kernel {})",
        report.machine.cpus, report.machine.cpu_model, report.machine.kernel
    );
    println!("\n| measure | figure | target |");
    println!("|---|---|---|");
    println!(
        "| producer: typed / raw rdkafka ({} × {} msgs, {} B) | {:.0} / {:.0} msg/s = **{:.2}×** (rounds {:.2}–{:.2}) | ≥ {:.1}× |",
        report.producer.rounds,
        report.producer.messages,
        report.producer.payload_bytes,
        p.typed_median_per_sec,
        p.raw_median_per_sec,
        p.ratio,
        p.ratio_range.0,
        p.ratio_range.1,
        p.target
    );
    let s = &report.pipeline.saturation;
    println!(
        "| fulfillment at saturation ({} orders backlog, {} timed) | {:.0} orders/s | |",
        s.orders, s.timed_orders, s.orders_per_sec
    );
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
