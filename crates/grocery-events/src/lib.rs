#![doc = include_str!("../README.md")]
//!
//! The types are in [`io::groceryevents`] ([`Order`], [`PickList`], [`OrderStatus`], …), their
//! topics in [`topics`]; `build.rs` runs `avro-events-build` over `schemas/*.avsc` with the
//! bindings declared in `schemas/events.toml`. The client itself (codec, Schema Registry, OAuth,
//! producers, consumers, pipelines) is the generic [`avro_events`] crate: what an application
//! needs to produce and consume grocery events is re-exported here ([`Event`], [`Error`],
//! [`Result`]; with the `kafka` feature [`Client`], [`Config`], [`Producer`], [`Consumer`],
//! [`Pipeline`], [`Replay`] and the records they hand out). Everything else (the codec, the
//! registry client, hooks, OAuth) is used from `avro_events` itself.
//!
//! # Example: the contracts
//!
//! ```
//! use avro_events::SubjectNameStrategy;
//! use grocery_events::{
//!     DeliveryWindow, Event, Order, OrderLine, PickList, SubstitutionPreference, topics,
//! };
//! use uuid::Uuid;
//!
//! let order = Order {
//!     order_id: Uuid::from_u128(1),
//!     customer_id: Uuid::from_u128(7),
//!     items: vec![OrderLine {
//!         sku: "PRD-00001".into(),
//!         name: "Bananas".into(),
//!         quantity: 2,
//!         unit_price_cents: 59,
//!     }],
//!     order_total_cents: 118,
//!     currency: "USD".into(),
//!     order_time: 1_763_769_600_000,
//!     // Optional since version 2 of the order schema: `None` in every order written before.
//!     substitution: Some(SubstitutionPreference::SameBrand),
//!     delivery_window: Some(DeliveryWindow {
//!         start_time: 1_763_784_000_000,
//!         end_time: 1_763_791_200_000,
//!     }),
//! };
//! // Each generated type knows its topic, its key, and the schema it was generated from.
//! assert_eq!(Order::TOPIC, topics::ORDERS);
//! assert_eq!(order.key(), "00000000-0000-0000-0000-000000000001");
//! assert_eq!(Order::FULL_NAME, "io.groceryevents.Order");
//! assert!(Order::SCHEMA.contains(r#""name": "Order""#));
//! assert_eq!(
//!     SubjectNameStrategy::TopicName.subject(PickList::TOPIC, PickList::FULL_NAME),
//!     "grocery.picklist.v1-value"
//! );
//! ```
//!
//! # Example: producing and consuming
//!
//! ```no_run
//! use grocery_events::{Client, Config, Order, PickList};
//!
//! # async fn run(order: Order) -> Result<(), grocery_events::Error> {
//! let config = Config::from_file("client.properties")?.with_env_overrides(grocery_events::ENV_PREFIX);
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

#[cfg(feature = "kafka")]
pub use avro_events::{
    Client, Config, Consumer, ConsumerOptions, Delivered, Headers, Outputs, Pipeline,
    PipelineOptions, Producer, Received, Record, RecordMeta, Replay, TraceContext,
};
pub use avro_events::{Error, Event, Result};

/// The prefix of the environment variables that override `client.properties` keys in the
/// grocery services and tools (`GROCERY_BOOTSTRAP_SERVERS` sets `bootstrap.servers`); pass it
/// to [`Config::with_env_overrides`].
pub const ENV_PREFIX: &str = "GROCERY_";

pub mod contracts;
pub mod topics;

/// Types generated at build time from the Avro schemas in `schemas/`, in a module named for
/// their Avro namespace (`io.groceryevents`).
pub mod io {
    /// The `io.groceryevents` Avro namespace.
    #[allow(missing_docs)]
    pub mod groceryevents {
        avro_events::include_events!("grocery.rs");
    }
}

pub use io::groceryevents::{
    DeliveryWindow, Order, OrderLatestState, OrderLine, OrderStage, OrderState, OrderStateChange,
    OrderStatus, PickLine, PickList, PickListDeliveryWindow, StateLine, StatusLine, StockStatus,
    SubstitutionPreference,
};

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    /// The generated bindings are those of `schemas/events.toml` and the schema files.
    #[test]
    fn generated_bindings_match_topics_full_names_schemas_and_keys() {
        assert_eq!(Order::TOPIC, "grocery.orders.v1");
        assert_eq!(PickList::TOPIC, "grocery.picklist.v1");
        assert_eq!(OrderStatus::TOPIC, "grocery.order-status.v1");
        assert_eq!(OrderLatestState::TOPIC, "grocery.order-state.v1");
        assert_eq!(
            OrderLatestState::SCHEMA,
            include_str!("../schemas/grocery.order-state.v1.avsc")
        );
        assert_eq!(Order::FULL_NAME, "io.groceryevents.Order");
        assert_eq!(PickList::FULL_NAME, "io.groceryevents.PickList");
        assert_eq!(
            Order::SCHEMA,
            include_str!("../schemas/grocery.orders.v1.avsc")
        );
        assert_eq!(
            PickList::SCHEMA,
            include_str!("../schemas/grocery.picklist.v1.avsc")
        );
        assert_eq!(
            OrderStatus::SCHEMA,
            include_str!("../schemas/grocery.order-status.v1.avsc")
        );
        for (schema, full_name) in [
            (Order::SCHEMA, Order::FULL_NAME),
            (PickList::SCHEMA, PickList::FULL_NAME),
            (OrderStatus::SCHEMA, OrderStatus::FULL_NAME),
        ] {
            let name = match apache_avro::Schema::parse_str(schema).unwrap() {
                apache_avro::Schema::Record(record) => record.name.fullname(None),
                other => panic!("not a record: {other:?}"),
            };
            assert_eq!(name, full_name);
        }

        let order_id = Uuid::from_u128(0x1234);
        let order = Order {
            order_id,
            customer_id: Uuid::from_u128(7),
            items: Vec::new(),
            order_total_cents: 0,
            currency: "USD".into(),
            order_time: 0,
            substitution: None,
            delivery_window: None,
        };
        assert_eq!(order.key(), order_id.to_string());
        // A pick list is keyed by its order's id, so it lands on its order's partition.
        let picklist = PickList {
            picklist_id: Uuid::from_u128(99),
            order_id,
            items_to_pick: Vec::new(),
            assigned_picker: "Sam".into(),
            created_time: 0,
            delivery_window: None,
        };
        assert_eq!(picklist.key(), order.key());
    }
}
