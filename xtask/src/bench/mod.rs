//! Performance comparisons run against the local stack (`cargo xtask bench ...`). The codec's
//! micro-benchmarks are criterion benches in `grocery-events/benches/`.
//!
//! [`producer::producer_bench`] compares the typed producer with raw rdkafka and returns a
//! serializable [`producer::ProducerReport`].

pub(crate) mod producer;
