//! Generates the Rust types of `schemas/*.avsc` and their `Event` impls (topics and keys from
//! `schemas/events.toml`) into `OUT_DIR/grocery.rs`.
//!
//! In the repository (not in the packaged crate) it also generates version 1 of the order
//! schema, `tests/fixtures/orders-v1/schema.avsc`, into `OUT_DIR/bench_order_v1.rs`, which only
//! the codec bench includes: resolving decodes between two generated types.

fn main() {
    avro_events_build::configure()
        .schema_dir("schemas")
        .declarations("schemas/events.toml")
        .file_name("grocery.rs")
        .compile()
        .expect("generating the grocery types from schemas/");

    let order_v1 = std::path::Path::new("tests/fixtures/orders-v1/schema.avsc");
    if order_v1.exists() {
        avro_events_build::configure()
            .schema(order_v1)
            .event("io.groceryevents.Order", "grocery.orders.v1", "order_id")
            .file_name("bench_order_v1.rs")
            .compile()
            .expect("generating the bench's order v1 from tests/fixtures/");
    }
}
