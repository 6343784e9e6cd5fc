//! Fixtures shared by the client's end-to-end tests against the local stack.
#![allow(dead_code, unreachable_pub)]

use grocery_events::{Config, ConsumerOptions, Event, Order, OrderLine};
use local_stack::Stack;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Order `n`: `quantity` bananas of SKU `PRD-<n>`, with ids and time derived from `n`.
pub fn bananas_order(n: u32, quantity: i32) -> Order {
    Order {
        order_id: Uuid::from_u128(u128::from(n) + 1),
        customer_id: Uuid::from_u128(7),
        items: vec![OrderLine {
            sku: format!("PRD-{n:05}"),
            name: "Bananas".into(),
            quantity,
            unit_price_cents: 59,
        }],
        order_total_cents: 59,
        currency: "USD".into(),
        order_time: 1_763_769_600_000 + i64::from(n),
        substitution: None,
        delivery_window: None,
    }
}

/// The stack's `client.properties` as a [`Config`].
pub fn config(stack: &Stack) -> Config {
    Config::from_properties_str(&stack.client_properties()).unwrap()
}

/// Options for a consumer group of its own (a unique id after `name`), reading from the start.
pub fn group(name: &str) -> ConsumerOptions {
    ConsumerOptions::new(format!("{name}-{}", Uuid::new_v4().simple()))
}

/// A made-up next version of the order schema (`fixtures/grocery.orders.v2.avsc`): adds
/// `channel` with a default, for the codec's resolution tests and benchmarks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderV2 {
    pub order_id: Uuid,
    pub customer_id: Uuid,
    pub items: Vec<OrderLine>,
    pub order_total_cents: i64,
    pub currency: String,
    pub order_time: i64,
    pub channel: String,
}

impl Event for OrderV2 {
    const TOPIC: &'static str = Order::TOPIC;
    const SCHEMA: &'static str = include_str!("../fixtures/grocery.orders.v2.avsc");
    const FULL_NAME: &'static str = Order::FULL_NAME;
    fn key(&self) -> String {
        self.order_id.to_string()
    }
}
