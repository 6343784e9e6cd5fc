//! `avro-console`: what Confluent's `kafka-avro-console-consumer` and
//! `kafka-avro-console-producer` do, over avro-events, for any topic and any schema.
//!
//! - `avro-console tail --topic T` prints every record of `T` as one JSON line: where it is
//!   (partition, offset, timestamp, key, headers), the writer schema (global id, and the
//!   subject and version it is registered under) and the value in Avro's JSON encoding. A
//!   record that does not decode (on a dead-letter topic, typically) is printed with the
//!   error's kind and message and its bytes in hex instead, never skipped; a tombstone with
//!   `"value": null`. It reads from the beginning, in a consumer group of its own that commits
//!   nothing, and follows the topic until `--max` records or Ctrl-C.
//! - `avro-console produce --topic T` reads JSON lines (Avro's JSON encoding) from stdin and
//!   produces each as Avro under `--subject` (default `T-value`): its latest version, the
//!   `--version` given, or the schema of `--schema-file` registered there first, and prints a
//!   summary line. A line that does not fit the schema stops it with the line number and the
//!   path of the value at fault (the lines before it are produced).
//!
//! Configuration: `--config client.properties` (Confluent's format: Kafka, Schema Registry,
//! credentials, as the library reads it). Errors print one `error: …` line on stderr and exit
//! with status 1.

mod produce;
mod tail;

use std::{path::PathBuf, process::ExitCode};

use anyhow::Context as _;
use avro_events::{Client, Config};
use clap::{Parser, Subcommand};

/// Tails any topic as JSON lines, and produces JSON lines as Avro.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Confluent client.properties file (Kafka, Schema Registry, credentials).
    #[arg(long, env = "AVRO_CONSOLE_CONFIG")]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Prints the records of a topic as JSON lines, with their writer schema.
    Tail(tail::Args),
    /// Produces JSON lines from stdin as Avro records under a subject.
    Produce(produce::Args),
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
        .with_context(|| format!("reading {}", cli.config.display()))?;
    let client = Client::from_config(config)?;
    match cli.command {
        Command::Tail(args) => tail::run(&client, args).await,
        Command::Produce(args) => produce::run(&client, args).await,
    }
}
