//! `avro-console produce`: JSON lines from stdin, as Avro under a subject.

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use avro_events::{Client, GenericSchema};
use serde_json::Value;
use std::io::BufRead as _;

/// Arguments of `produce`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The topic to produce to.
    #[arg(long)]
    topic: String,
    /// The subject whose schema the values are written with (default `<topic>-value`).
    #[arg(long)]
    subject: Option<String>,
    /// The subject's version to write with (default: the latest).
    #[arg(long, conflicts_with = "schema_file")]
    version: Option<u32>,
    /// An Avro schema (`.avsc`) to register under the subject first, and write with.
    #[arg(long)]
    schema_file: Option<PathBuf>,
    /// A top-level field of each value whose string or number is the record's key (default:
    /// an empty key).
    #[arg(long)]
    key_field: Option<String>,
}

pub(crate) async fn run(client: &Client, args: Args) -> anyhow::Result<()> {
    let subject = args
        .subject
        .clone()
        .unwrap_or_else(|| format!("{}-value", args.topic));
    let codec = client.codec();
    let schema: GenericSchema = match &args.schema_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let id = codec.registry().register(&subject, &text).await?;
            codec.generic_schema(id).await?
        }
        None => codec.generic_schema_of(&subject, args.version).await?,
    };
    let producer = client.producer().await?;
    let mut number = 0_u64;
    let mut produced = 0_u64;
    // Read in between sends, each awaited to its delivery: nothing is in flight while the
    // read blocks.
    for line in std::io::stdin().lock().lines() {
        let line = line.context("reading stdin")?;
        number += 1;
        if line.trim().is_empty() {
            continue;
        }
        let json: Value =
            serde_json::from_str(&line).with_context(|| format!("line {number}: not JSON"))?;
        let key = match &args.key_field {
            None => String::new(),
            Some(field) => match json.get(field) {
                Some(Value::String(text)) => text.clone(),
                Some(Value::Number(number)) => number.to_string(),
                other => bail!(
                    "line {number}: the key field '{field}' is {}, not a string or a number",
                    other.map_or_else(|| "missing".to_owned(), Value::to_string)
                ),
            },
        };
        let record = schema
            .record_from_json(&json)
            .with_context(|| format!("line {number}"))?
            .with_key(key);
        producer
            .send_to(&args.topic, &record)
            .await
            .with_context(|| format!("line {number}: producing to {}", args.topic))?;
        produced += 1;
    }
    producer.flush(std::time::Duration::from_secs(30)).await?;
    println!(
        "produced {produced} records to {} (subject {subject}, schema id {})",
        args.topic,
        schema.id()
    );
    Ok(())
}
