//! Local development stack: librdkafka's mock cluster and a Confluent-compatible Schema
//! Registry, started in-process on ephemeral ports of 127.0.0.1 for the demo and the tests.

pub mod broker;
pub mod idp;
pub mod kafka;
/// Python virtual environment with Confluent's Python client, for interoperability tests.
pub mod python;
/// A Confluent-compatible Schema Registry (REST API, compatibility checks, optional persistence).
pub mod registry;
pub mod stack;

pub use stack::{Stack, StackError, StackOptions};
