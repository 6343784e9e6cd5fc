//! `avro-console tail`: any topic as JSON lines, undecodable records included.

use std::collections::HashMap;

use anyhow::Context as _;
use avro_events::{
    Client, Codec, ConsumerOptions, Dispatch, Error, Event, GenericRecord, Headers, Record,
    RecordMeta,
};
use futures::FutureExt as _;
use serde_json::{Map, Value, json};

/// Arguments of `tail`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The topic to read (a dead-letter topic too).
    #[arg(long)]
    topic: String,
    /// Stop after this many records (tombstones and undecodable ones count); follow the topic
    /// until Ctrl-C without it.
    #[arg(long)]
    max: Option<u64>,
}

/// A record as `tail` sees it: decoded with its writer schema, or why it is not.
#[derive(Debug)]
enum Inspected {
    Decoded(GenericRecord),
    Undecodable {
        kind: &'static str,
        message: String,
        payload: Vec<u8>,
    },
}

/// Never serialized or deserialized: the codec reads it through [`Event::DISPATCH`].
impl serde::Serialize for Inspected {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom(
            "an inspected record is only printed",
        ))
    }
}

impl<'de> serde::Deserialize<'de> for Inspected {
    fn deserialize<D: serde::Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        Err(serde::de::Error::custom(
            "an inspected record is only read by the codec",
        ))
    }
}

impl Event for Inspected {
    const TOPIC: &'static str = "";
    const SCHEMA: &'static str = "\"null\"";
    const FULL_NAME: &'static str = "avro_console.Inspected";
    // A record that can never decode is shown, not dead-lettered; a writer schema that cannot
    // be fetched yet is waited for, as by any consumer.
    const DISPATCH: Option<Dispatch<Self>> = Some(Dispatch {
        decode: |codec, payload| {
            async move {
                match codec.codec().decode_generic(payload).await {
                    Ok(record) => Ok(Self::Decoded(record)),
                    Err(error) if error.is_poison() => Ok(Self::Undecodable {
                        kind: error.kind(),
                        message: error.to_string(),
                        payload: payload.to_vec(),
                    }),
                    Err(error) => Err(error),
                }
            }
            .boxed()
        },
        encode: |_, topic, _| {
            let topic = topic.to_owned();
            async move {
                Err(Error::Encode {
                    reader: Self::FULL_NAME.into(),
                    subject: topic,
                    reason: "avro-console only reads inspected records".into(),
                })
            }
            .boxed()
        },
    });

    fn key(&self) -> String {
        String::new()
    }
}

pub(crate) async fn run(client: &Client, args: Args) -> anyhow::Result<()> {
    // A group of its own, which acknowledges nothing: reads from the beginning
    // (`auto.offset.reset=earliest`, the library's default) and commits nothing.
    let group = format!("avro-console-tail-{}", uuid::Uuid::new_v4().simple());
    let consumer = client
        .consumer_subscribed_to::<Inspected>(ConsumerOptions::new(group), &[args.topic.as_str()])
        .await
        .with_context(|| format!("subscribing to {}", args.topic))?;
    let mut registered: HashMap<u32, Value> = HashMap::new();
    let mut printed = 0_u64;
    while args.max.is_none_or(|max| printed < max) {
        let record = tokio::select! {
            record = consumer.recv_record() => record?,
            _ = tokio::signal::ctrl_c() => break,
        };
        let line = match record {
            Record::Tombstone(tombstone) => {
                let mut line = located(&tombstone.meta, &tombstone.headers);
                line.insert("value".into(), Value::Null);
                line
            }
            Record::Event(received) => {
                let mut line = located(&received.meta, &received.headers);
                match received.event {
                    Inspected::Decoded(record) => {
                        let id = record.schema_id();
                        let schema = match registered.get(&id) {
                            Some(schema) => schema.clone(),
                            None => {
                                let schema = schema_of(client.codec(), id, &args.topic).await?;
                                registered.insert(id, schema.clone());
                                schema
                            }
                        };
                        line.insert("schema".into(), schema);
                        line.insert("value".into(), record.to_json()?);
                    }
                    Inspected::Undecodable {
                        kind,
                        message,
                        payload,
                    } => {
                        line.insert("error".into(), json!({"kind": kind, "message": message}));
                        line.insert("payload_hex".into(), hex(&payload).into());
                    }
                }
                line
            }
        };
        println!("{}", Value::Object(line));
        printed += 1;
    }
    consumer.close().await?;
    Ok(())
}

/// Where a record is, its key and headers (UTF-8 values as text, others in hex).
fn located(meta: &RecordMeta, headers: &Headers) -> Map<String, Value> {
    let headers: Map<String, Value> = headers
        .iter()
        .map(|h| {
            let value = match h.value.as_deref() {
                None => Value::Null,
                Some(bytes) => std::str::from_utf8(bytes)
                    .map_or_else(|_| json!({"hex": hex(bytes)}), |text| text.into()),
            };
            (h.key.clone(), value)
        })
        .collect();
    let mut line = Map::new();
    line.insert("topic".into(), meta.topic.clone().into());
    line.insert("partition".into(), meta.partition.into());
    line.insert("offset".into(), meta.offset.into());
    line.insert("timestamp_ms".into(), meta.timestamp_ms.into());
    line.insert("key".into(), meta.key.clone().into());
    line.insert("headers".into(), headers.into());
    line
}

/// The schema id and where it is registered: the subject of `topic` when it is one of them
/// (`<topic>-value`, `<topic>-<record>`), else the first.
async fn schema_of(codec: &Codec, id: u32, topic: &str) -> anyhow::Result<Value> {
    let mut versions = codec.registry().schema_versions(id).await?;
    versions.sort();
    let chosen = versions
        .iter()
        .find(|(subject, _)| subject.starts_with(&format!("{topic}-")))
        .or(versions.first());
    Ok(match chosen {
        Some((subject, version)) => json!({"id": id, "subject": subject, "version": version}),
        None => json!({"id": id}),
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
