//! Performance comparisons run against the local stack (`cargo xtask bench ...`). The codec's
//! micro-benchmarks are criterion benches in `grocery-events/benches/`.
//!
//! [`producer::producer_bench`] compares the typed producer with raw rdkafka and returns a
//! serializable [`producer::ProducerReport`]; [`pipeline::pipeline_bench`] runs the three
//! services under load. [`run`] does both and prints the table. `--quick` runs one small round
//! of each in the current build, the form CI runs (`tests/bench_process.rs`,
//! `tests/bench_kafka_process.rs`) so that a bench that no longer runs fails the build.

pub(crate) mod passthrough;
pub(crate) mod pipeline;
pub(crate) mod producer;
pub(crate) mod profile;
mod report;

pub(crate) use report::{BenchArgs, run};
