//! The grocery-events contracts: Rust types generated at build time from the Avro schemas in
//! `schemas/` ([`Order`], [`PickList`], …, in [`io::groceryevents`]), each bound to its topic
//! ([`topics`]) through [`Event`].
//!
//! The client itself (codec, Schema Registry, OAuth, producers, consumers, pipelines) is the
//! generic [`avro_events`] crate, re-exported here whole, so `grocery_events::Producer` is
//! `avro_events::Producer`.
//!
//! # Example
//!
//! ```no_run
//! use grocery_events::{Client, Config, Order, PickList};
//!
//! # async fn run(order: Order) -> Result<(), grocery_events::Error> {
//! let config = Config::from_file("client.properties")?.with_env_overrides();
//! let client = Client::from_config(config)?; // validates: names the missing or bad key
//!
//! let producer = client.producer().await?;
//! let delivered = producer.send(&order).await?;
//! println!("order stored at {}[{}]@{}", delivered.topic, delivered.partition, delivered.offset);
//!
//! let consumer = client.consumer::<PickList>("staff").await?;
//! loop {
//!     let received = consumer.recv().await?;
//!     println!("pick list {} for {}", received.event.picklist_id, received.event.assigned_picker);
//!     consumer.ack(&received.meta)?;
//! }
//! # }
//! ```

pub use avro_events::*;

mod events;
pub mod topics;

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
