//! Generates the order contract as it was at version 1 of subject `grocery.orders.v1-value`:
//! from the fixture that keeps that schema byte for byte (the file `schemas/` held before
//! version 2), not from today's `schemas/`.

fn main() {
    avro_events_build::configure()
        .schema("../../crates/grocery-events/tests/fixtures/orders-v1/schema.avsc")
        .event("io.groceryevents.Order", "grocery.orders.v1", "order_id")
        .file_name("orders_v1.rs")
        .compile()
        .expect("generating the version-1 order types from the fixture");
}
