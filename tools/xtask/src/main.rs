//! `cargo xtask`: the project's developer commands.
//!
//! - `cargo xtask demo [--orders N] [--broker mock|kafka] [--auth none|oauth|plain]`: the whole
//!   flow on the local stack (mock cluster or a real Apache Kafka broker), with a summary.
//! - `cargo xtask control [--listen ADDR] [--broker mock|kafka]` (or `cargo xtask demo --ui`):
//!   the control room, one page on 127.0.0.1 that starts and stops the services, sets the
//!   order rate, injects a malformed record and shows the flow live (see `control/`).
//! - `cargo xtask bench [--broker mock|kafka]`: producer comparison (typed, the
//!   rdkafka + schema_registry_converter anchor, raw bytes), the pipeline beside a pass-through
//!   copy, latency and memory figures (table and JSON); `--quick`: one small round, as CI runs
//!   it.
//! - `cargo xtask producer-profile --side typed|raw [--messages N]`: one side of the producer
//!   comparison alone on the mock cluster, for `scripts/callgrind-producer.sh`.
//! - `cargo xtask stack [--broker mock|kafka] [--brokers N] [--auth none|oauth|plain]
//!   [--properties-out PATH]`: runs the local stack (the mock cluster or a real Apache Kafka
//!   broker — with `--brokers 3` a KRaft cluster of three, replication factor 3 — and the
//!   Schema Registry) until Ctrl-C or SIGTERM, which remove the properties files it wrote.
//! - `cargo xtask load [--url URL] [--rate N] [--seconds S] [--connections C]`: HTTP load on
//!   the Order API (`POST /orders`, a fresh `Idempotency-Key` each) at a fixed rate, progress
//!   and latency printed (`scripts/soak-rss.sh` drives it).
//! - `cargo xtask restart-bench [--records N] [--broker kafka|mock] [--debug]`: the Order
//!   API's and picklist-consumer's time from start to a complete view, reading every status
//!   and reading the latest-state topic (figures printed; see `restart.rs`).
//! - `cargo xtask schemas check [--base REV] [--level LEVEL] [--registry-config FILE]`: checks
//!   `schemas/*.avsc` against their previous versions (the `schema-check` tool, which CI runs
//!   as `cargo run -p schema-check -- check`).

mod bench;
mod broker;
mod control;
mod demo;
mod load;
mod restart;
mod stack;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "grocery-events developer commands")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Measure: typed producer vs raw rdkafka, fulfillment throughput, latency, memory.
    Bench(bench::BenchArgs),
    /// One side of the producer comparison alone on the mock cluster (for callgrind:
    /// `scripts/callgrind-producer.sh`).
    ProducerProfile(bench::profile::ProfileArgs),
    /// Run the three services on the local stack, send orders, show the pick lists.
    Demo(demo::DemoArgs),
    /// The control room: a page that starts and stops the services and shows them live.
    Control(control::ControlArgs),
    /// HTTP load on the Order API at a fixed rate (POST /orders, a fresh Idempotency-Key each).
    Load(load::LoadArgs),
    /// Time the views' restarts: every status vs the latest-state topic.
    RestartBench(restart::RestartArgs),
    /// Run the local stack (mock or real Kafka broker, Schema Registry) until Ctrl-C or SIGTERM.
    Stack(stack::StackArgs),
    /// Schema tools: `schemas check` compares schemas/ with git history or a registry.
    Schemas(schema_check::SchemasArgs),
}

fn main() -> anyhow::Result<()> {
    let runtime = schema_check::cli_runtime()?;
    match Cli::parse().command {
        Command::Bench(args) => runtime.block_on(bench::run(args)),
        Command::ProducerProfile(args) => runtime.block_on(bench::profile::run(args)),
        Command::Demo(args) => runtime.block_on(demo::run(args)),
        Command::Control(args) => runtime.block_on(control::run(args)),
        Command::RestartBench(args) => runtime.block_on(restart::run(args)),
        Command::Load(args) => runtime.block_on(load::run(args)),
        Command::Stack(args) => runtime.block_on(stack::run(args)),
        Command::Schemas(args) => runtime.block_on(schema_check::run(args)),
    }
}
