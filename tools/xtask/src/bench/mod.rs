//! Performance comparisons run against the local stack (`cargo xtask bench ...`). The codec's
//! micro-benchmarks are criterion benches in `grocery-events/benches/`.
//!
//! [`producer::producer_bench`] compares the typed producer with raw rdkafka and returns a
//! serializable [`producer::ProducerReport`]; [`pipeline::pipeline_bench`] runs the three
//! services under load. [`run`] does both and prints the table.

pub(crate) mod passthrough;
pub(crate) mod pipeline;
pub(crate) mod producer;
mod report;

pub(crate) use report::{BenchArgs, run};
