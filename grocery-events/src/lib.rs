//! grocery-events: a schema-first client for Confluent Cloud.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod auth;
mod client;
pub mod codec;
pub mod compat;
pub mod config;
pub mod consumer;
pub mod context;
mod error;
mod event;
pub mod pipeline;
pub mod producer;
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
