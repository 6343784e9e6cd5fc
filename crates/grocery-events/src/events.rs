//! The [`Event`] bindings of the generated types: topic, schema text, full name and key.

use avro_events::Event;

use crate::{Order, PickList, topics};

impl Event for Order {
    const TOPIC: &'static str = topics::ORDERS;
    const SCHEMA: &'static str = include_str!("../schemas/grocery.orders.v1.avsc");
    const FULL_NAME: &'static str = "io.groceryevents.Order";

    fn key(&self) -> String {
        self.order_id.to_string()
    }
}

impl Event for PickList {
    const TOPIC: &'static str = topics::PICKLISTS;
    const SCHEMA: &'static str = include_str!("../schemas/grocery.picklist.v1.avsc");
    const FULL_NAME: &'static str = "io.groceryevents.PickList";

    /// Keyed by the order id, so a pick list lands on the same partition as its order.
    fn key(&self) -> String {
        self.order_id.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_names_match_the_schema_files() {
        for (schema, full_name) in [
            (Order::SCHEMA, Order::FULL_NAME),
            (PickList::SCHEMA, PickList::FULL_NAME),
        ] {
            let parsed = apache_avro::Schema::parse_str(schema).unwrap();
            let name = match parsed {
                apache_avro::Schema::Record(record) => record.name.fullname(None),
                other => panic!("not a record: {other:?}"),
            };
            assert_eq!(name, full_name);
        }
    }
}
