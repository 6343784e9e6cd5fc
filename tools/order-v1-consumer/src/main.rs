//! `order-v1-consumer`: reads `--count` orders from `grocery.orders.v1` with the order type of
//! version 1 of its schema, prints each as one JSON line on stdout, commits and exits 0.
//!
//! Configuration: `--config client.properties` (the services' format); `--group` is its own
//! consumer group, so it reads the topic from the start (`auto.offset.reset=earliest`, the
//! library's default). Errors print one `error: …` line on stderr and exit with status 1.

use std::{path::PathBuf, process::ExitCode};

use anyhow::Context as _;
use avro_events::{Client, Config, ConsumerOptions};
use clap::Parser;
use order_v1_consumer::Order;

/// Reads orders with the version-1 order type and prints them as JSON lines.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Confluent client.properties file (Kafka, Schema Registry, credentials).
    #[arg(long, env = "GROCERY_CONFIG")]
    config: PathBuf,
    /// Consumer group of this reader.
    #[arg(long, default_value = "order-v1-consumer")]
    group: String,
    /// Orders to read before exiting.
    #[arg(long)]
    count: usize,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::from_file(&cli.config)
        .with_context(|| format!("reading {}", cli.config.display()))?
        .with_env_overrides("GROCERY_");
    let client = Client::from_config(config)?;
    let consumer = client
        .consumer::<Order>(ConsumerOptions::new(cli.group))
        .await?;
    for _ in 0..cli.count {
        let received = consumer.recv().await?;
        println!("{}", serde_json::to_string(&received.event)?);
        consumer.ack(&received.meta)?;
    }
    consumer.commit().await?;
    consumer.close().await?;
    Ok(())
}
