//! Local development stack: librdkafka's mock cluster and a Confluent-compatible Schema
//! Registry, started in-process on ephemeral ports of 127.0.0.1 for the demo and the tests.

pub mod kafka;
