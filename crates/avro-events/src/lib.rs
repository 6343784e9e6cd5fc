#![doc = include_str!("../README.md")]
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
//!   configure the codec. Environment variables under a prefix the application chooses
//!   override keys ([`Config::with_env_overrides`]). Every setting is parsed once, when the
//!   client is built. `Debug` redacts secrets.
//! - [`Codec`]: encode to and decode from the wire format. The writer schema is fetched by id
//!   (and cached) and resolved into the reader type, so v1 data reads into a v2 type and back.
//!   [`Codec`] is the Avro implementation of [`Format`], the seam producers, consumers,
//!   pipelines and replays encode and decode through (the registry's `schemaType`, schema
//!   parsing, encode, decode).
//!   [`dynamic`]: the same decoding with a reader schema known only at run time (tools, the
//!   hostile-input tests and the `fuzz/` targets).
//! - [`Producer`] and [`Consumer`] ([`Client::producer`], [`Client::consumer`]): typed, idempotent, at-least-once; undecodable records go to
//!   a dead-letter topic with headers that say why ([`dlq`]). A record whose writer schema
//!   cannot be fetched or used (an unknown schema id, a schema with references) is not
//!   undecodable: the consumer waits for the schema, saying why ([`Consumer::waiting_on`]), or
//!   stops with the error, as `schema.unavailable.action` ([`SchemaUnavailable`]) says; it never
//!   dead-letters or commits past such a record. [`Pipeline`] is
//!   consume-transform-produce, with Kafka transactions when `transactional.id` is set; one
//!   input may become events of several types ([`Outputs`]), written together.
//!   [`Replay`] ([`Client::replay`]) reads a topic whole from the beginning of every partition
//!   and says when it has caught up, to rebuild a view (the Order API's order histories); it
//!   never commits and never dead-letters (the topic's live consumer does).
//! - [`GenericRecord`]: a record of whatever schema the writer used, read and
//!   written by any consumer, pipeline or producer, in and out of Avro's JSON encoding (what
//!   `tools/avro-console` tails and produces). Several event types on one topic are a family
//!   ([`Written`]): an enum generated from `[families.<Name>]` in `events.toml`, decoded by the
//!   writer schema's record name or union branch; other types are
//!   [`Error::UnknownEventType`], dead-lettered.
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
//! - Traces across services ([`TraceContext`]): every record produced carries W3C trace
//!   context (`traceparent`, `tracestate`), a new trace or one continued with
//!   [`Producer::send_traced`]; [`Received::trace`] reads it back and a [`Pipeline`]
//!   continues each input's trace on its outputs. This needs no OpenTelemetry crate; with the
//!   `opentelemetry` feature, records also continue OpenTelemetry's current span and the
//!   library records its spans through the tracer provider the application installs.
//! - Client metrics: with `statistics.interval.ms` set, librdkafka's statistics are kept by each
//!   client's [`KafkaContext`](KafkaContext::statistics) and told to
//!   [`Hooks::statistics`].
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
//! - `opentelemetry`: OpenTelemetry's API crate (`opentelemetry` 0.33, never an SDK). Records
//!   continue the current OpenTelemetry span, and the library records a `send` span per record
//!   produced and a `process` span per record a pipeline handles, through the tracer provider
//!   the application installs. Without it (the default), trace context travels just the same
//!   in every record's W3C headers; no span is recorded.
//!
//! # Modules
//!
//! The types above are at the crate root. The modules left public group what has no place
//! there: [`config`] (the settings, their keys and roles), [`registry`] (the Schema Registry
//! client), [`auth`] (OAuth), [`dlq`] (dead-letter topic names and headers), [`wire`] (the
//! wire format's framing), [`binary`] (the Avro binary primitives generated codecs call),
//! [`dynamic`] (decoding with a reader schema known only at run time) and [`rules`] (schema
//! metadata and data-contract rule sets).
//!
//! # The typed boundary
//!
//! Types generated by `avro-events-build` come with their [`Event`] impl; a hand-written one
//! looks like this (and runs):
//!
//! ```
//! use avro_events::{Event, SubjectNameStrategy, wire};
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
//! let reading = Reading { sensor: "fridge-1".into(), celsius: 3.5 };
//! assert_eq!(reading.key(), "fridge-1");
//! // Confluent's default subject naming: the value schema of topic T is subject "T-value".
//! assert_eq!(
//!     SubjectNameStrategy::TopicName.subject(Reading::TOPIC, Reading::FULL_NAME),
//!     "sensor.readings.v1-value"
//! );
//! // Every payload starts with the magic byte and the writer schema's registry id.
//! let mut payload = Vec::new();
//! wire::write_header(&mut payload, 42);
//! payload.extend_from_slice(b"<avro body>");
//! assert_eq!(wire::split(&payload)?, (42, &b"<avro body>"[..]));
//! # Ok::<(), avro_events::Error>(())
//! ```
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
//! let config = Config::from_file("client.properties")?.with_env_overrides("MYAPP_");
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
pub mod binary;
#[cfg(feature = "kafka")]
mod client;
#[cfg(feature = "kafka")]
mod closing;
mod codec;
#[cfg(feature = "kafka")]
pub mod config;
#[cfg(feature = "kafka")]
mod consumer;
#[cfg(feature = "kafka")]
mod context;
#[cfg(feature = "kafka")]
mod delivery;
pub mod dlq;
pub mod dynamic;
mod error;
mod event;
mod family;
mod format;
mod generic;
mod headers;
mod http;
mod json;
#[cfg(feature = "kafka")]
mod outputs;
#[cfg(feature = "kafka")]
mod pipeline;
#[cfg(feature = "kafka")]
mod producer;
#[cfg(feature = "kafka")]
mod record;
mod redact;
mod referenced;
pub mod registry;
#[cfg(feature = "kafka")]
mod replay;
mod resolve;
#[cfg(feature = "kafka")]
mod retry;
pub mod rules;
#[cfg(feature = "kafka")]
mod shared;
#[cfg(feature = "kafka")]
mod trace;
mod value;
pub mod wire;

/// Avro schema compatibility with Confluent's answers: the [`avro-events-compat`] crate.
///
/// [`avro-events-compat`]: avro_events_compat
pub use avro_events_compat as compat;
#[cfg(feature = "kafka")]
pub use client::{Client, ClientBuilder};
pub use codec::{Codec, CodecOptions};
#[cfg(feature = "kafka")]
pub use config::{Config, SchemaUnavailable};
#[cfg(feature = "kafka")]
pub use consumer::{Consumer, ConsumerOptions};
#[cfg(feature = "kafka")]
pub use context::{
    AuthFailure, DeadLettered, DefaultHooks, Hooks, KafkaContext, LostBroker, Refusal, Statistics,
};
#[cfg(feature = "kafka")]
pub use error::KafkaOperation;
pub use error::{Error, RecordLocation, Result};
pub use event::{
    CodecRef, DecodeFn, Dispatch, EncodeFn, Event, EventReference, SubjectNameStrategy,
};
pub use family::Written;
pub use format::Format;
pub use generic::{GenericRecord, GenericSchema};
pub use headers::{Header, Headers};
#[cfg(feature = "kafka")]
pub use outputs::{IntoOutputs, Outputs};
#[cfg(feature = "kafka")]
pub use pipeline::{Pipeline, PipelineOptions, PipelineStats};
#[cfg(feature = "kafka")]
pub use producer::{Delivered, PendingDelivery, Producer};
#[cfg(feature = "kafka")]
pub use record::{Received, Record, RecordMeta, Tombstone};
#[cfg(feature = "kafka")]
pub use replay::Replay;
#[cfg(feature = "kafka")]
pub use trace::{SpanId, TraceContext, TraceId};

/// What code generated by `avro-events-build` names: not a public API, may change in any
/// release.
#[doc(hidden)]
pub mod __private {
    pub use apache_avro;
    pub use serde;
}
