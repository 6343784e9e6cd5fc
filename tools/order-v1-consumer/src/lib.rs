//! An old consumer build of the order contract: the Rust types `avro-events-build` generates
//! from **version 1** of the schema of subject `grocery.orders.v1-value`, kept byte for byte as
//! the fixture `crates/grocery-events/tests/fixtures/orders-v1/schema.avsc` (the text
//! `schemas/grocery.orders.v1.avsc` held before version 2 added `substitution` and
//! `delivery_window`).
//!
//! It stands for a service that was built against version 1 and has not been rebuilt: its
//! binary (`order-v1-consumer`) reads `grocery.orders.v1` with the core [`Client`] and prints
//! each order as a JSON line. Records written with version 2 reach it through schema
//! resolution (writer schema from the registry, reader schema = version 1): the fields it does
//! not know are dropped. The evolution test (`tests/evolution.rs`) also writes the old fixture
//! records with these types, so they go through the registry under version 1 of the subject.
//!
//! [`Client`]: avro_events::Client

/// The version-1 types, in a module named for their Avro namespace (`io.groceryevents`).
pub mod io {
    /// The `io.groceryevents` Avro namespace, as of version 1 of the order schema.
    #[allow(missing_docs)]
    pub mod groceryevents {
        avro_events::include_events!("orders_v1.rs");
    }
}

pub use io::groceryevents::{Order, OrderLine};

/// The version-1 writer schema, as registered (the fixture's text).
pub const SCHEMA_V1: &str = <Order as avro_events::Event>::SCHEMA;

#[cfg(test)]
mod tests {
    use avro_events::Event;

    use super::*;

    #[test]
    fn the_types_are_those_of_the_version_1_fixture() {
        assert_eq!(
            SCHEMA_V1,
            include_str!("../../../crates/grocery-events/tests/fixtures/orders-v1/schema.avsc")
        );
        assert_eq!(Order::TOPIC, "grocery.orders.v1");
        assert_eq!(Order::FULL_NAME, "io.groceryevents.Order");
        assert!(!SCHEMA_V1.contains("substitution"));
    }
}
