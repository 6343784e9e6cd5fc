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
mod client;
pub mod codec;
pub mod config;
pub mod consumer;
pub mod context;
pub mod dlq;
mod error;
mod event;
pub mod pipeline;
pub mod producer;
mod redact;
pub mod registry;
mod retry;
pub mod wire;

/// Avro schema compatibility with Confluent's answers: the [`avro-events-compat`] crate.
///
/// [`avro-events-compat`]: avro_events_compat
pub use avro_events_compat as compat;
pub use client::{Client, ClientBuilder};
pub use codec::{Codec, CodecOptions};
pub use config::Config;
pub use consumer::{Consumer, ConsumerOptions, Received, RecordMeta};
pub use context::{DefaultHooks, Hooks};
pub use error::{Error, KafkaOperation, RecordLocation, Result};
pub use event::{Event, SubjectNameStrategy};
pub use pipeline::{Pipeline, PipelineOptions, PipelineStats};
pub use producer::{Delivered, Producer};
