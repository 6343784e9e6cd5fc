//! rdkafka client contexts: librdkafka's logs and errors go to `tracing`, rebalances and
//! commits are logged with structured fields.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use rdkafka::{
    ClientContext, TopicPartitionList,
    config::RDKafkaLogLevel,
    consumer::{BaseConsumer, ConsumerContext, Rebalance},
    error::KafkaResult,
};
use tracing::{debug, error, info, warn};

/// The context of every client the library creates.
#[derive(Debug, Clone, Default)]
pub struct LoggingContext {
    client: &'static str,
    rebalances: Arc<AtomicU64>,
}

impl LoggingContext {
    /// A context whose log lines carry `client` (e.g. `producer`, `consumer`).
    pub fn new(client: &'static str) -> Self {
        Self {
            client,
            rebalances: Arc::default(),
        }
    }

    /// How many assignments and revocations this consumer has seen. A record fetched before
    /// the count changed may be fetched again from the committed position.
    pub fn rebalances(&self) -> u64 {
        self.rebalances.load(Ordering::SeqCst)
    }
}

impl ClientContext for LoggingContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        let client = self.client;
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => error!(client, facility = fac, "librdkafka: {message}"),
            RDKafkaLogLevel::Warning => warn!(client, facility = fac, "librdkafka: {message}"),
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                info!(client, facility = fac, "librdkafka: {message}")
            }
            RDKafkaLogLevel::Debug => debug!(client, facility = fac, "librdkafka: {message}"),
        }
    }

    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        warn!(client = self.client, %error, reason, "Kafka client error");
    }
}

impl ConsumerContext for LoggingContext {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        self.rebalances.fetch_add(1, Ordering::SeqCst);
        match rebalance {
            Rebalance::Assign(tpl) => info!(partitions = %describe(tpl), "partitions assigned"),
            Rebalance::Revoke(tpl) => info!(partitions = %describe(tpl), "partitions revoked"),
            Rebalance::Error(e) => warn!(error = %e, "rebalance error"),
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        match result {
            Ok(()) => debug!(offsets = %describe(offsets), "offsets committed"),
            Err(e) => warn!(error = %e, offsets = %describe(offsets), "offset commit failed"),
        }
    }
}

/// `topic[partition]@offset, …` for log lines.
fn describe(tpl: &TopicPartitionList) -> String {
    tpl.elements()
        .iter()
        .map(|e| match e.offset().to_raw() {
            Some(offset) if offset >= 0 => format!("{}[{}]@{offset}", e.topic(), e.partition()),
            _ => format!("{}[{}]", e.topic(), e.partition()),
        })
        .collect::<Vec<_>>()
        .join(", ")
}
