//! A schema-first Kafka client for Confluent Cloud and any Kafka with a Confluent-compatible
//! Schema Registry.
//!
//! Avro schemas are the contract. Types generated from them (with `avro-events-build`, at build
//! time) implement [`Event`]: each knows its topic, its Schema Registry subject and the very
//! schema text it was generated from. Every byte on a topic is in Confluent's wire format (magic
//! byte, schema id, Avro body), so Confluent's Java, Python and Go clients read what this library
//! writes and the other way round, across schema versions.
//!
//! # A tour
//!
//! - [`Client`]: the root. Built once from a [`Config`] (validated once), it owns the codec,
//!   the [`Hooks`] and one OAuth token source per identity, and hands out producers,
//!   consumers and pipelines.
//! - [`Config`]: a `client.properties` in Confluent's property names; Kafka keys pass through to
//!   librdkafka, Schema Registry keys (`schema.registry.url`, `basic.auth.*`, `bearer.auth.*`)
//!   configure the codec. `Debug` redacts secrets.
//! - [`Codec`]: encode to and decode from the wire format. The writer schema is fetched by id
//!   (and cached) and resolved into the reader type, so v1 data reads into a v2 type and back.
//! - [`Producer`] and [`Consumer`] ([`Client::producer`], [`Client::consumer`]): typed, idempotent, at-least-once; undecodable records go to
//!   a dead-letter topic with headers that say why ([`dlq`]). [`Pipeline`] is
//!   consume-transform-produce, with Kafka transactions when `transactional.id` is set.
//! - [`auth`]: OAuth client credentials for Kafka (SASL/OAUTHBEARER with Confluent's
//!   `logicalCluster` and `identityPoolId` extensions) and for the Schema Registry.
//! - [`compat`]: the seven compatibility levels, as Confluent's registry decides them.
//! - [`Error`]: one error type whose variants say what failed and carry the context (schema id,
//!   subject, topic/partition/offset, configuration key), never a secret.
//!
//! - Records beyond the value: [`Headers`] on produce ([`Producer::send_with`]) and on
//!   [`Received`]; tombstones (null values) as [`Record::Tombstone`] from
//!   [`Consumer::recv_record`], produced with [`Producer::send_tombstone`]; Avro keys with their
//!   own schema ([`Event::KEY_SCHEMA`], subject `<topic>-key`).
//!
//! # Cargo features
//!
//! - `kafka` (default): producers, consumers, pipelines, OAuth and `client.properties`, over
//!   rdkafka. Without it the crate is the codec, the wire format, the Schema Registry client
//!   (no auth, basic auth or a static token), [`Event`] and [`compat`]: no librdkafka, no OAuth
//!   client, for crates that only need the types.
//! - `ssl-vendored` (default): TLS with OpenSSL (and zlib) built from source, linked statically.
//! - `ssl-system`: TLS with the system's OpenSSL and zlib (pkg-config); use it with
//!   `default-features = false, features = ["kafka", "ssl-system", "zstd"]`.
//! - `zstd` (default): `compression.type=zstd`. `lz4`, `gzip` and `snappy` are built into
//!   librdkafka and need no feature.
//!
//! # Example
//!
//! ```no_run
//! use avro_events::{Client, Config, Event};
//!
//! #[derive(Debug, serde::Serialize, serde::Deserialize)]
//! struct Reading {
//!     sensor: String,
//!     celsius: f64,
//! }
//!
//! impl Event for Reading {
//!     const TOPIC: &'static str = "sensor.readings.v1";
//!     const SCHEMA: &'static str = r#"{"type": "record", "name": "Reading", "namespace": "io.example",
//!         "fields": [{"name": "sensor", "type": "string"}, {"name": "celsius", "type": "double"}]}"#;
//!     const FULL_NAME: &'static str = "io.example.Reading";
//!     fn key(&self) -> String {
//!         self.sensor.clone()
//!     }
//! }
//!
//! # async fn run() -> Result<(), avro_events::Error> {
//! let config = Config::from_file("client.properties")?.with_env_overrides();
//! let client = Client::from_config(config)?; // validates; names the missing or bad key
//!
//! let producer = client.producer().await?;
//! let reading = Reading { sensor: "fridge-1".into(), celsius: 3.5 };
//! let delivered = producer.send(&reading).await?;
//! println!("stored at {}[{}]@{}", delivered.topic, delivered.partition, delivered.offset);
//!
//! let consumer = client.consumer::<Reading>("dashboard").await?;
//! loop {
//!     let received = consumer.recv().await?;
//!     println!("{:?}", received.event);
//!     consumer.ack(&received.meta)?;
//! }
//! # }
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod auth;
#[cfg(feature = "kafka")]
mod client;
pub mod codec;
#[cfg(feature = "kafka")]
pub mod config;
#[cfg(feature = "kafka")]
pub mod consumer;
#[cfg(feature = "kafka")]
pub mod context;
pub mod dlq;
mod error;
mod event;
pub mod headers;
#[cfg(feature = "kafka")]
pub mod pipeline;
#[cfg(feature = "kafka")]
pub mod producer;
mod redact;
pub mod registry;
mod resolve;
#[cfg(feature = "kafka")]
mod retry;
pub mod wire;

/// Avro schema compatibility with Confluent's answers: the [`avro-events-compat`] crate.
///
/// [`avro-events-compat`]: avro_events_compat
pub use avro_events_compat as compat;
#[cfg(feature = "kafka")]
pub use client::{Client, ClientBuilder};
pub use codec::{Codec, CodecOptions};
#[cfg(feature = "kafka")]
pub use config::Config;
#[cfg(feature = "kafka")]
pub use consumer::{Consumer, ConsumerOptions, Received, Record, RecordMeta, Tombstone};
#[cfg(feature = "kafka")]
pub use context::{DefaultHooks, Hooks};
#[cfg(feature = "kafka")]
pub use error::KafkaOperation;
pub use error::{Error, RecordLocation, Result};
pub use event::{Event, SubjectNameStrategy};
pub use headers::Headers;
#[cfg(feature = "kafka")]
pub use pipeline::{Pipeline, PipelineOptions, PipelineStats};
#[cfg(feature = "kafka")]
pub use producer::{Delivered, Producer};
