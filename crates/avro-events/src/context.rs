//! rdkafka client contexts: librdkafka's logs and errors go to `tracing`, rebalances and
//! commits are logged with structured fields, and the state the typed clients act on is kept:
//! which partitions this consumer owns (and since which assignment), whether the brokers are
//! reachable, and whether a broker refused this client's credentials.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, MutexGuard, OnceLock,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
};

use rdkafka::{
    ClientContext, TopicPartitionList,
    config::RDKafkaLogLevel,
    consumer::{BaseConsumer, ConsumerContext, Rebalance},
    error::{KafkaError, KafkaResult},
    types::RDKafkaErrorCode,
};
use tokio::sync::watch;
use tracing::{debug, error, info, warn};

/// A refusal by the broker that retrying with the same credentials cannot mend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// librdkafka's error code.
    pub code: RDKafkaErrorCode,
    /// librdkafka's description (the broker's message), never a credential.
    pub reason: String,
}

/// What the client contexts share with the typed clients.
#[derive(Debug)]
struct Shared {
    /// The SASL mechanism, for error messages.
    mechanism: OnceLock<String>,
    /// Assignments and revocations seen.
    rebalances: AtomicU64,
    /// Partitions owned now, each with the assignment it came with.
    owned: Mutex<Owned>,
    /// librdkafka reported that no broker is reachable, and nothing since showed otherwise.
    brokers_down: AtomicBool,
    /// Set once when a broker refuses the credentials (SASL) or librdkafka raises a fatal error.
    refused: watch::Sender<Option<Refusal>>,
}

#[derive(Debug, Default)]
struct Owned {
    next: u64,
    /// Topic → partition → assignment; keyed by topic first so that the per-record lookup
    /// borrows the topic instead of allocating a key.
    partitions: HashMap<String, HashMap<i32, u64>>,
}

/// The context of every client the library creates.
#[derive(Debug, Clone)]
pub struct LoggingContext {
    client: &'static str,
    shared: Arc<Shared>,
}

impl Default for LoggingContext {
    fn default() -> Self {
        Self::new("client")
    }
}

impl LoggingContext {
    /// A context whose log lines carry `client` (e.g. `producer`, `consumer`).
    pub fn new(client: &'static str) -> Self {
        Self {
            client,
            shared: Arc::new(Shared {
                mechanism: OnceLock::new(),
                rebalances: AtomicU64::new(0),
                owned: Mutex::default(),
                brokers_down: AtomicBool::new(false),
                refused: watch::Sender::new(None),
            }),
        }
    }

    /// Names the SASL mechanism (`sasl.mechanisms`) in the errors of refused credentials.
    pub fn set_sasl_mechanism(&self, mechanism: &str) {
        let _ = self.shared.mechanism.set(mechanism.to_owned());
    }

    /// The error a typed client returns for `refusal`, met while doing `operation`.
    pub(crate) fn refusal_error(&self, refusal: Refusal, operation: &'static str) -> crate::Error {
        if matches!(
            refusal.code,
            RDKafkaErrorCode::Authentication | RDKafkaErrorCode::SaslAuthenticationFailed
        ) {
            crate::Error::Authentication {
                mechanism: self
                    .shared
                    .mechanism
                    .get()
                    .map_or("GSSAPI", String::as_str)
                    .to_owned(),
                reason: refusal.reason,
            }
        } else {
            crate::Error::Fatal {
                operation,
                reason: refusal.reason,
            }
        }
    }

    /// How many assignments and revocations this consumer has seen.
    pub fn rebalances(&self) -> u64 {
        self.shared.rebalances.load(Ordering::SeqCst)
    }

    /// The assignment through which this consumer owns `topic[partition]`, or `None` when it
    /// does not own it. The value changes each time the partition is assigned anew, so a record
    /// fetched under one value and handled under another may already be another member's.
    pub fn assignment_of(&self, topic: &str, partition: i32) -> Option<u64> {
        lock(&self.shared.owned)
            .partitions
            .get(topic)?
            .get(&partition)
            .copied()
    }

    /// The partitions this consumer owns now, as `topic[partition]` strings.
    pub fn owned_partitions(&self) -> Vec<(String, i32)> {
        let mut owned: Vec<_> = lock(&self.shared.owned)
            .partitions
            .iter()
            .flat_map(|(topic, partitions)| partitions.keys().map(|p| (topic.clone(), *p)))
            .collect();
        owned.sort();
        owned
    }

    /// Whether librdkafka last reported every broker unreachable (`AllBrokersDown`) and no
    /// record or metadata has arrived since.
    pub fn brokers_down(&self) -> bool {
        self.shared.brokers_down.load(Ordering::Relaxed)
    }

    /// Marks the brokers reachable again (a record or a metadata answer arrived).
    pub fn brokers_reachable(&self) {
        if self.shared.brokers_down.swap(false, Ordering::Relaxed) {
            info!(client = self.client, "brokers reachable again");
        }
    }

    /// A refusal the client cannot recover from by retrying: a broker refused the credentials
    /// (SASL), or librdkafka raised a fatal error.
    pub fn refusal(&self) -> Option<Refusal> {
        self.shared.refused.borrow().clone()
    }

    /// Resolves with the first refusal (see [`LoggingContext::refusal`]).
    pub async fn refused(&self) -> Refusal {
        let mut receiver = self.shared.refused.subscribe();
        loop {
            if let Some(refusal) = receiver.borrow_and_update().clone() {
                return refusal;
            }
            if receiver.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    fn refuse(&self, code: RDKafkaErrorCode, reason: &str) {
        let refusal = Refusal {
            code,
            reason: reason.to_owned(),
        };
        self.shared.refused.send_if_modified(|current| {
            if current.is_some() {
                return false;
            }
            *current = Some(refusal);
            true
        });
    }
}

/// Whether librdkafka's error text says a broker refused the SASL credentials (as opposed to
/// the client failing to obtain a token, which the library retries).
fn broker_refused_credentials(code: RDKafkaErrorCode, reason: &str) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::Authentication | RDKafkaErrorCode::SaslAuthenticationFailed
    ) && reason.contains("SASL authentication error")
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

    fn error(&self, error: KafkaError, reason: &str) {
        let code = error.rdkafka_error_code();
        match code {
            Some(RDKafkaErrorCode::AllBrokersDown) => {
                if !self.shared.brokers_down.swap(true, Ordering::Relaxed) {
                    warn!(client = self.client, %error, reason, "all brokers are down; the client keeps retrying");
                }
                return;
            }
            Some(code) if broker_refused_credentials(code, reason) => {
                error!(client = self.client, %error, reason, "the broker refused this client's credentials");
                self.refuse(code, reason);
                return;
            }
            Some(code) if matches!(error, KafkaError::Global(RDKafkaErrorCode::Fatal)) => {
                error!(client = self.client, %error, reason, "fatal client error");
                self.refuse(code, reason);
                return;
            }
            _ => {}
        }
        warn!(client = self.client, %error, reason, "Kafka client error");
    }
}

impl ConsumerContext for LoggingContext {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        self.shared.rebalances.fetch_add(1, Ordering::SeqCst);
        match rebalance {
            Rebalance::Assign(tpl) => {
                let mut owned = lock(&self.shared.owned);
                for element in tpl.elements() {
                    owned.next += 1;
                    let assignment = owned.next;
                    owned
                        .partitions
                        .entry(element.topic().to_owned())
                        .or_default()
                        .insert(element.partition(), assignment);
                }
                info!(client = self.client, partitions = %describe(tpl), "partitions assigned");
            }
            Rebalance::Revoke(tpl) => {
                let mut owned = lock(&self.shared.owned);
                for element in tpl.elements() {
                    if let Some(partitions) = owned.partitions.get_mut(element.topic()) {
                        partitions.remove(&element.partition());
                        if partitions.is_empty() {
                            owned.partitions.remove(element.topic());
                        }
                    }
                }
                info!(client = self.client, partitions = %describe(tpl), "partitions revoked");
            }
            Rebalance::Error(e) => warn!(client = self.client, error = %e, "rebalance error"),
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        match result {
            Ok(()) => debug!(offsets = %describe(offsets), "offsets committed"),
            Err(e) => warn!(error = %e, offsets = %describe(offsets), "offset commit failed"),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `topic[partition]@offset, …` for log lines.
pub(crate) fn describe(tpl: &TopicPartitionList) -> String {
    tpl.elements()
        .iter()
        .map(|e| match e.offset().to_raw() {
            Some(offset) if offset >= 0 => format!("{}[{}]@{offset}", e.topic(), e.partition()),
            _ => format!("{}[{}]", e.topic(), e.partition()),
        })
        .collect::<Vec<_>>()
        .join(", ")
}
