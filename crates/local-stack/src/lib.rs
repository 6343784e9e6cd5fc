//! Local development stack: a Kafka broker — librdkafka's mock cluster, or a real Apache Kafka
//! broker the project starts itself ([`broker`]) with a test identity provider ([`idp`]) — and a
//! Confluent-compatible Schema Registry, on ephemeral ports of 127.0.0.1 for the demo and the
//! tests. It knows no application: the topics to create, the identities and their ACLs are
//! [`StackOptions`], which the application fills in.

pub mod broker;
pub mod client_properties;
pub mod idp;
pub mod kafka;
pub mod late_schema;
/// Python virtual environment with Confluent's Python client, for interoperability tests.
pub mod python;
pub mod real_broker;
/// A Confluent-compatible Schema Registry (REST API, compatibility checks, optional persistence).
pub mod registry;
pub mod stack;
pub mod verify;

pub use real_broker::KafkaAuth;
pub use stack::{BrokerKind, Stack, StackError, StackOptions, StackSchema};
