//! A schema-first client for Confluent Cloud.
//!
//! The Avro schemas in `schemas/` are the contract. At build time they become Rust types
//! ([`Order`], [`PickList`], …, in [`io::groceryevents`]); each type knows its topic, its
//! Schema Registry subject and the very schema text it was generated from ([`Event`]).
//! Every byte on a topic is in Confluent's wire format (magic byte, schema id, Avro body), so
//! Confluent's Java, Python and Go clients read what this library writes and the other way
//! round, across schema versions.
//!
//! # A tour
//!
//! - [`Config`]: a `client.properties` in Confluent's property names; Kafka keys pass through to
//!   librdkafka, Schema Registry keys (`schema.registry.url`, `basic.auth.*`, `bearer.auth.*`)
//!   configure the codec. `Debug` redacts secrets.
//! - [`Codec`]: encode to and decode from the wire format. The writer schema is fetched by id
//!   (and cached) and resolved into the reader type, so v1 data reads into a v2 type and back.
//! - [`Producer`] and [`Consumer`]: typed, idempotent, at-least-once; undecodable records go to
//!   a dead-letter topic with headers that say why. [`Pipeline`] is consume-transform-produce,
//!   with Kafka transactions when `transactional.id` is set.
//! - [`auth`]: OAuth client credentials for Kafka (SASL/OAUTHBEARER with Confluent's
//!   `logicalCluster` and `identityPoolId` extensions) and for the Schema Registry.
//! - [`compat`]: the seven compatibility levels, as Confluent's registry decides them; used by
//!   the local registry and `cargo xtask schemas check`.
//! - [`Error`]: one error type whose variants say what failed and carry the context (schema id,
//!   subject, topic/partition/offset, configuration key), never a secret.
//!
//! # Example
//!
//! ```no_run
//! use std::sync::Arc;
//!
//! use grocery_events::{Codec, Config, Consumer, ConsumerOptions, Order, PickList, Producer};
//!
//! # async fn run(order: Order) -> Result<(), grocery_events::Error> {
//! let config = Config::from_file("client.properties")?.with_env_overrides();
//! config.validate()?; // names the missing or bad key
//! let codec = Arc::new(Codec::from_config(&config)?);
//!
//! let producer = Producer::new(&config, codec.clone()).await?;
//! let delivered = producer.send(&order).await?;
//! println!("order stored at {}[{}]@{}", delivered.topic, delivered.partition, delivered.offset);
//!
//! let consumer = Consumer::<PickList>::new(&config, codec, ConsumerOptions::new("staff")).await?;
//! loop {
//!     let received = consumer.recv().await?;
//!     println!("pick list {} for {}", received.event.picklist_id, received.event.assigned_picker);
//!     consumer.ack(&received.meta)?;
//! }
//! # }
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod auth;
mod client;
pub mod codec;
pub mod compat;
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
pub mod topics;
pub mod wire;

pub use codec::{Codec, CodecOptions};
pub use config::Config;
pub use consumer::{Consumer, ConsumerOptions, Received, RecordMeta};
pub use error::{Error, RecordLocation, Result};
pub use event::{Event, SubjectNameStrategy};
pub use pipeline::{Pipeline, PipelineOptions, PipelineStats};
pub use producer::{Delivered, Producer};

/// Types generated at build time from the Avro schemas in `schemas/`, in a module named for
/// their Avro namespace (`io.groceryevents`).
pub mod io {
    /// The `io.groceryevents` Avro namespace.
    #[allow(missing_docs)]
    pub mod groceryevents {
        include!(concat!(env!("OUT_DIR"), "/schemas.rs"));
    }
}

pub use io::groceryevents::{Order, OrderLine, PickLine, PickList, StockStatus};
