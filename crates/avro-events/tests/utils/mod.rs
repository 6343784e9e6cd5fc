//! What the library's integration tests share: made-up event types and the local stack with
//! their topics ([`events`]), and local servers for the OAuth tests: a token endpoint, a fake
//! Kafka broker (SASL only) and a fake Schema Registry. Everything listens on 127.0.0.1.
#![allow(dead_code, unreachable_pub, missing_docs)]

pub mod events;
pub mod fake_kafka;
pub mod fake_registry;
pub mod token_server;
