//! Topic names and layout shared by the library, the local stack, the services and Terraform.

use avro_events::Event;

/// Topic that carries [`Order`](crate::Order) events (declared in `schemas/events.toml`).
pub const ORDERS: &str = <crate::Order as Event>::TOPIC;
/// Topic that carries [`PickList`](crate::PickList) events (declared in `schemas/events.toml`).
pub const PICKLISTS: &str = <crate::PickList as Event>::TOPIC;
/// Topic that carries [`OrderStatus`](crate::OrderStatus) events, each order's state changes
/// (declared in `schemas/events.toml`).
pub const ORDER_STATUS: &str = <crate::OrderStatus as Event>::TOPIC;
/// Compacted topic of each order's latest state and history
/// ([`OrderLatestState`](crate::OrderLatestState), declared in `schemas/events.toml`), from which
/// the views start instead of reading all of [`ORDER_STATUS`].
pub const ORDER_STATE: &str = <crate::OrderLatestState as Event>::TOPIC;
/// Partition count of [`ORDERS`], [`PICKLISTS`], [`ORDER_STATUS`] and [`ORDER_STATE`] (and of
/// the dead-letter topics). [`ORDER_STATE`] must have as many as [`ORDER_STATUS`]: an order's
/// state record then lands on the partition number of its statuses.
pub const PARTITIONS: i32 = 3;
pub use avro_events::dlq::DLQ_SUFFIX;
/// Every topic the application uses, dead-letter topics included.
pub const ALL: [&str; 7] = [
    ORDERS,
    PICKLISTS,
    ORDER_STATUS,
    "grocery.orders.v1.dlq",
    "grocery.picklist.v1.dlq",
    "grocery.order-status.v1.dlq",
    ORDER_STATE,
];

/// The dead-letter topic of `topic`: `<topic>.dlq`.
pub fn dead_letter(topic: &str) -> String {
    avro_events::dlq::dead_letter_topic(topic)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_the_dead_letter_topics_of_every_topic() {
        assert_eq!(ALL[3], dead_letter(ORDERS));
        assert_eq!(ALL[4], dead_letter(PICKLISTS));
        assert_eq!(ALL[5], dead_letter(ORDER_STATUS));
    }
}
