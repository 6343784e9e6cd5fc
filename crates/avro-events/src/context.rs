use std::{
    collections::HashMap,
    fmt,
    sync::{
        Arc, Mutex, MutexGuard, OnceLock,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

/// librdkafka's statistics (rdkafka's parsed form of its JSON), as kept by
/// [`KafkaContext::statistics`].
pub use rdkafka::statistics::Statistics;
use rdkafka::{
    ClientContext, TopicPartitionList,
    config::RDKafkaLogLevel,
    consumer::{BaseConsumer, Consumer as _, ConsumerContext, Rebalance},
    error::{KafkaError, KafkaResult},
    types::RDKafkaErrorCode,
};
use rustc_hash::FxHashMap;
use tokio::sync::watch;
use tracing::{debug, error, info, warn};

use crate::error::KafkaOperation;

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
    /// The latest statistics librdkafka emitted (`statistics.interval.ms`).
    statistics: Mutex<Option<Arc<Statistics>>>,
    /// Why the consumer is waiting instead of handing out its next record, if it is.
    waiting: Mutex<Option<String>>,
    /// Whether `waiting` is set (read per record without taking the lock).
    is_waiting: AtomicBool,
    /// Brokers whose connection failed, by address (`host:port`), since the statistics last
    /// showed them connected. One entry per broker of the cluster at most.
    lost: Mutex<HashMap<String, Lost>>,
    /// The topic of the last partition a transaction coordinator refused to add to this
    /// producer's transaction (librdkafka's `ADDPARTS` error line), with the reason.
    refused_partition: Mutex<Option<(String, String)>>,
}

/// A broker connection that failed, as kept in [`Shared::lost`].
#[derive(Debug, Clone)]
struct Lost {
    /// librdkafka's name of the broker (`host:port/id`), or `host:port (TxnCoordinator)` while
    /// only its connection as a coordinator failed.
    name: String,
    reason: String,
    since: Instant,
    last: Instant,
}

/// A broker this client lost its connection to, as [`KafkaContext::lost_brokers`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LostBroker {
    /// librdkafka's name of the broker: `host:port/node-id` (`host:port/bootstrap` for a
    /// bootstrap address), or `host:port (TxnCoordinator)` (`GroupCoordinator`) while only the
    /// connection librdkafka keeps to it as a coordinator was reported failed.
    pub name: String,
    /// librdkafka's latest description of the failure (e.g. `Disconnected (after 5012ms in
    /// state UP)`, `Connect to ipv4#127.0.0.1:9092 failed: Connection refused`).
    pub reason: String,
    /// How long ago the first failure since the broker was last seen connected was reported.
    pub since: Duration,
}

/// How long a lost broker stays listed once librdkafka no longer lists it at all (the
/// cluster's metadata dropped it, as KRaft does with a broker that stopped heartbeating).
const LOST_BROKER_FORGOTTEN_AFTER: Duration = Duration::from_secs(60);

#[derive(Debug, Default)]
struct Owned {
    next: u64,
    /// Topic → partition → assignment; keyed by topic first so that the per-record lookup
    /// borrows the topic instead of allocating a key. Looked up for every record, so with
    /// rustc-hash's Fx hasher rather than SipHash: the keys are the group's assignment.
    partitions: FxHashMap<String, FxHashMap<i32, u64>>,
}

/// How a client's credentials failed, as told to [`Hooks::auth_failed`].
#[derive(Debug)]
#[non_exhaustive]
pub enum AuthFailure<'a> {
    /// A broker refused the client's SASL credentials; the client stops (the typed clients
    /// return [`Error::Authentication`](crate::Error::Authentication)).
    BrokerRefused {
        /// The client (`producer`, `consumer`, …).
        client: &'a str,
        /// What the broker said.
        refusal: &'a Refusal,
    },
    /// The OAuth token endpoint did not issue a token (unreachable, refused the client
    /// credentials, or answered with something that is not a token). Kafka clients keep
    /// asking with backoff; a registry request fails with this error.
    TokenEndpoint {
        /// The error, naming the endpoint (never the secret).
        error: &'a crate::Error,
    },
}

/// A record copied to its dead-letter topic, as told to [`Hooks::dead_lettered`].
#[derive(Debug)]
#[non_exhaustive]
pub struct DeadLettered<'a> {
    /// Where the record was read.
    pub meta: &'a crate::record::RecordMeta,
    /// The dead-letter topic it was written to.
    pub dlq_topic: &'a str,
    /// Why it cannot be decoded.
    pub error: &'a crate::Error,
    /// Whether it was written inside a Kafka transaction (and is visible only once that
    /// commits).
    pub transactional: bool,
}

/// What a [`Client`](crate::Client)'s Kafka clients tell the application. Every method has a
/// default that logs to `tracing` as [`DefaultHooks`] does; override the ones you need. Hooks
/// are called on librdkafka's threads or the runtime's: keep them short and never block.
///
/// ```
/// use avro_events::{DeadLettered, Hooks};
/// use std::sync::atomic::{AtomicU64, Ordering};
///
/// #[derive(Default)]
/// struct CountDeadLetters(AtomicU64);
///
/// impl Hooks for CountDeadLetters {
///     fn dead_lettered(&self, record: &DeadLettered<'_>) {
///         self.0.fetch_add(1, Ordering::Relaxed);
///     }
/// }
/// ```
///
/// # Hooks and the client context
///
/// Client contexts and hooks.
///
/// [`Hooks`] is what an application implements to be told what its clients go through (as
/// rdkafka's `ClientContext` and `ConsumerContext`, with defaults): librdkafka's log lines and
/// errors, assignments and revocations, commits, dead-lettered records, authentication
/// failures. Every method has a default, and [`DefaultHooks`] keeps them all: log lines to
/// `tracing` with structured fields. Hand your own to
/// [`ClientBuilder::hooks`](crate::ClientBuilder::hooks).
///
/// [`KafkaContext`] is the rdkafka context of every client the library creates. Besides calling
/// the hooks, it keeps the state the typed clients act on, whatever the hooks do: which
/// partitions a consumer owns (and since which assignment), whether the brokers are reachable,
/// whether a broker refused the client's credentials, which brokers it lost the connection to
/// ([`KafkaContext::lost_brokers`]), and the latest librdkafka statistics.
///
/// **Statistics.** With `statistics.interval.ms` set (Confluent's property name, in
/// `client.properties` or `GROCERY_STATISTICS_INTERVAL_MS`; librdkafka's default, 0, turns
/// them off) librdkafka emits its statistics every interval: [`KafkaContext::statistics`] is
/// the latest snapshot ([`Statistics`]: messages and bytes sent and received, queue depths,
/// per-broker round-trip times, per-partition consumer lag), and [`Hooks::statistics`] is
/// told each one.
pub trait Hooks: Send + Sync + 'static {
    /// A librdkafka log line.
    fn log(&self, client: &str, level: RDKafkaLogLevel, facility: &str, message: &str) {
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => error!(client, facility, "librdkafka: {message}"),
            RDKafkaLogLevel::Warning => warn!(client, facility, "librdkafka: {message}"),
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                info!(client, facility, "librdkafka: {message}")
            }
            RDKafkaLogLevel::Debug => debug!(client, facility, "librdkafka: {message}"),
        }
    }

    /// A client error librdkafka recovers from by itself (a connection failed, a request
    /// timed out). Refusals, fatal errors and outages have hooks of their own.
    fn error(&self, client: &str, error: &KafkaError, reason: &str) {
        warn!(client, %error, reason, "Kafka client error");
    }

    /// librdkafka reports every broker unreachable; the client keeps retrying. Called once
    /// per outage.
    fn brokers_down(&self, client: &str, error: &KafkaError, reason: &str) {
        warn!(client, %error, reason, "all brokers are down; the client keeps retrying");
    }

    /// The brokers answered again after [`Hooks::brokers_down`].
    fn brokers_reachable(&self, client: &str) {
        info!(client, "brokers reachable again");
    }

    /// Credentials failed: a broker refused them, or no OAuth token could be obtained.
    fn auth_failed(&self, failure: &AuthFailure<'_>) {
        match failure {
            AuthFailure::BrokerRefused { client, refusal } => error!(
                client,
                code = ?refusal.code,
                reason = %refusal.reason,
                "the broker refused this client's credentials"
            ),
            // The caller logs or returns the error itself.
            AuthFailure::TokenEndpoint { error } => {
                debug!(%error, "no OAuth token from the token endpoint")
            }
        }
    }

    /// librdkafka raised a fatal error: the client cannot go on (e.g. a transactional
    /// producer fenced by a newer instance).
    fn fatal(&self, client: &str, refusal: &Refusal) {
        error!(client, code = ?refusal.code, reason = %refusal.reason, "fatal client error");
    }

    /// Partitions were assigned to this consumer.
    fn assigned(&self, client: &str, partitions: &TopicPartitionList) {
        info!(client, partitions = %describe(partitions), "partitions assigned");
    }

    /// Partitions were taken from this consumer.
    fn revoked(&self, client: &str, partitions: &TopicPartitionList) {
        info!(client, partitions = %describe(partitions), "partitions revoked");
    }

    /// A rebalance failed.
    fn rebalance_error(&self, client: &str, error: &KafkaError) {
        warn!(client, %error, "rebalance error");
    }

    /// Offsets were committed, or the commit failed.
    fn committed(&self, result: Result<(), &KafkaError>, offsets: &TopicPartitionList) {
        match result {
            Ok(()) => debug!(offsets = %describe(offsets), "offsets committed"),
            Err(error) => {
                warn!(%error, offsets = %describe(offsets), "offset commit failed")
            }
        }
    }

    /// librdkafka emitted its statistics (every `statistics.interval.ms`; never when that is
    /// 0, librdkafka's default). The latest are also kept in [`KafkaContext::statistics`].
    fn statistics(&self, client: &str, statistics: &Statistics) {
        let _ = (client, statistics);
    }

    /// A record that can never be decoded was handed to its dead-letter topic.
    fn dead_lettered(&self, record: &DeadLettered<'_>) {
        let DeadLettered {
            meta,
            dlq_topic,
            error,
            transactional,
        } = record;
        warn!(
            topic = %meta.topic,
            partition = meta.partition,
            offset = meta.offset,
            error_kind = error.kind(),
            %error,
            dlq_topic,
            transactional,
            "record sent to dead-letter topic"
        );
    }
}

/// The hooks a [`Client`](crate::Client) uses unless given others: every default of
/// [`Hooks`], i.e. structured log lines through `tracing`.
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultHooks;

impl Hooks for DefaultHooks {}

/// The rdkafka context of every client the library creates: calls the [`Hooks`] and keeps
/// the state the typed clients act on (owned partitions, broker reachability, refusals).
#[derive(Clone)]
pub struct KafkaContext {
    client: &'static str,
    shared: Arc<Shared>,
    hooks: Arc<dyn Hooks>,
}

impl fmt::Debug for KafkaContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaContext")
            .field("client", &self.client)
            .field("shared", &self.shared)
            .finish_non_exhaustive()
    }
}

impl Default for KafkaContext {
    fn default() -> Self {
        Self::new("client")
    }
}

impl KafkaContext {
    /// A context with [`DefaultHooks`] whose log lines carry `client` (e.g. `producer`).
    pub fn new(client: &'static str) -> Self {
        Self::with_hooks(client, Arc::new(DefaultHooks))
    }

    /// A context calling `hooks`, which are told `client` (e.g. `producer`, `consumer`).
    pub fn with_hooks(client: &'static str, hooks: Arc<dyn Hooks>) -> Self {
        Self {
            client,
            shared: Arc::new(Shared {
                mechanism: OnceLock::new(),
                rebalances: AtomicU64::new(0),
                owned: Mutex::default(),
                brokers_down: AtomicBool::new(false),
                refused: watch::Sender::new(None),
                statistics: Mutex::new(None),
                waiting: Mutex::new(None),
                is_waiting: AtomicBool::new(false),
                lost: Mutex::default(),
                refused_partition: Mutex::new(None),
            }),
            hooks,
        }
    }

    /// The hooks this context calls.
    pub fn hooks(&self) -> &dyn Hooks {
        self.hooks.as_ref()
    }

    /// Names the SASL mechanism (`sasl.mechanisms`) in the errors of refused credentials.
    pub(crate) fn set_sasl_mechanism(&self, mechanism: &str) {
        let _ = self.shared.mechanism.set(mechanism.to_owned());
    }

    /// The error a typed client returns for `refusal`, met while doing `operation`.
    pub(crate) fn refusal_error(
        &self,
        refusal: Refusal,
        operation: KafkaOperation,
    ) -> crate::Error {
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
    pub(crate) fn assignment_of(&self, topic: &str, partition: i32) -> Option<u64> {
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
    pub(crate) fn brokers_reachable(&self) {
        if self.shared.brokers_down.swap(false, Ordering::Relaxed) {
            self.hooks.brokers_reachable(self.client);
        }
    }

    /// A refusal the client cannot recover from by retrying: a broker refused the credentials
    /// (SASL), or librdkafka raised a fatal error.
    pub fn refusal(&self) -> Option<Refusal> {
        self.shared.refused.borrow().clone()
    }

    /// Resolves with the first refusal (see [`KafkaContext::refusal`]).
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

    /// The latest statistics librdkafka emitted for this client (see [`Hooks`]); `None` before the first, or when `statistics.interval.ms` is 0.
    pub fn statistics(&self) -> Option<Arc<Statistics>> {
        lock(&self.shared.statistics).clone()
    }

    /// The brokers this client lost its connection to (librdkafka's error callback reported a
    /// transport failure naming them, or naming the coordinator connection to them:
    /// disconnected, connection refused), oldest first. A broker leaves the list when a later
    /// statistics sample shows it connected (`UP`) or not needed by this client (`INIT`), or a
    /// minute after the failure once the samples no longer list it (the cluster's metadata
    /// dropped it). The failure is seen within milliseconds, so
    /// a health check reports a broker lost for a moment between two statistics samples;
    /// without `statistics.interval.ms` entries leave only through a new context.
    pub fn lost_brokers(&self) -> Vec<LostBroker> {
        let now = Instant::now();
        let mut lost: Vec<LostBroker> = lock(&self.shared.lost)
            .values()
            .map(|lost| LostBroker {
                name: lost.name.clone(),
                reason: lost.reason.clone(),
                since: now.saturating_duration_since(lost.since),
            })
            .collect();
        lost.sort_by(|a, b| b.since.cmp(&a.since).then_with(|| a.name.cmp(&b.name)));
        lost
    }

    /// Records a transport failure of the broker `reason` names: `host:port/id: …` for a
    /// broker, `TxnCoordinator: host:port: …` (or `GroupCoordinator`) for the connection
    /// librdkafka keeps to a coordinator.
    fn broker_failed(&self, reason: &str) {
        let Some((first, rest)) = reason.split_once(": ") else {
            return;
        };
        let (name, address, what) = match first.rsplit_once('/') {
            Some((address, _)) if address.contains(':') => (first.to_owned(), address, rest),
            Some(_) => return,
            None => match rest.split_once(": ") {
                Some((address, what)) if !first.contains(':') && address.contains(':') => {
                    (format!("{address} ({first})"), address, what)
                }
                _ => return,
            },
        };
        let now = Instant::now();
        let mut lost = lock(&self.shared.lost);
        lost.entry(address.to_owned())
            .and_modify(|entry| {
                what.clone_into(&mut entry.reason);
                entry.last = now;
                // A broker's own name (`host:port/id`) rather than a coordinator's.
                if name.contains('/') {
                    entry.name.clone_from(&name);
                }
            })
            .or_insert_with(|| Lost {
                name,
                reason: what.to_owned(),
                since: now,
                last: now,
            });
    }

    /// Forgets the lost brokers a statistics sample shows connected (`UP`) or not needed
    /// (`INIT`), and those it no longer lists a while after their last failure.
    fn brokers_seen(&self, statistics: &Statistics) {
        let mut lost = lock(&self.shared.lost);
        if lost.is_empty() {
            return;
        }
        let now = Instant::now();
        lost.retain(|address, entry| {
            let mut states = statistics.brokers.values().filter_map(|broker| {
                let (at, id) = broker.name.rsplit_once('/')?;
                (at == address && id.parse::<i32>().is_ok()).then_some(broker.state.as_str())
            });
            match states.next() {
                None => now.saturating_duration_since(entry.last) < LOST_BROKER_FORGOTTEN_AFTER,
                Some(state) => {
                    let mut states = std::iter::once(state).chain(states);
                    !states.any(|state| state == "UP" || state == "INIT")
                }
            }
        });
    }

    /// Why the consumer of this context is waiting instead of handing out its next record:
    /// the record's writer schema cannot be fetched or used
    /// ([`Error::is_schema_unavailable`](crate::Error::is_schema_unavailable)) or the Schema
    /// Registry cannot be reached, and the record is retried with backoff. `None` while records
    /// decode (and for clients that are not consumers). A service's health check reports it
    /// (HTTP 503).
    pub fn waiting_on(&self) -> Option<String> {
        lock(&self.shared.waiting).clone()
    }

    /// Sets or clears [`KafkaContext::waiting_on`].
    pub(crate) fn set_waiting(&self, reason: Option<String>) {
        let waiting = reason.is_some();
        if waiting || self.shared.is_waiting.load(Ordering::Relaxed) {
            *lock(&self.shared.waiting) = reason;
            self.shared.is_waiting.store(waiting, Ordering::Relaxed);
        }
    }

    /// Takes the topic (and librdkafka's reason) of the last partition the transaction
    /// coordinator refused to add to this producer's transaction since the last call: the
    /// partition an abortable transaction error (`Failed to add partition(s) to transaction`)
    /// does not name. librdkafka says it only in an `ERROR` log line (`ADDPARTS`).
    pub(crate) fn take_refused_partition(&self) -> Option<(String, String)> {
        lock(&self.shared.refused_partition).take()
    }

    /// Records the first refusal; returns this one.
    fn refuse(&self, code: RDKafkaErrorCode, reason: &str) -> Refusal {
        let refusal = Refusal {
            code,
            reason: reason.to_owned(),
        };
        self.shared.refused.send_if_modified(|current| {
            if current.is_some() {
                return false;
            }
            *current = Some(refusal.clone());
            true
        });
        refusal
    }
}

/// The topic and reason of librdkafka's `ADDPARTS` line `[thrd:…]: <broker>: Failed to add
/// partition "<topic>" [<partition>] to transaction: <reason>`, unless the partition was only not attempted
/// because another one failed.
fn refused_partition(message: &str) -> Option<(String, String)> {
    // After librdkafka's `[thrd:…]: <broker>: ` prefix.
    let (_, rest) = message.split_once("Failed to add partition \"")?;
    let (topic, rest) = rest.split_once('"')?;
    let (_, reason) = rest.split_once("to transaction: ")?;
    (!reason.contains("not attempted")).then(|| (topic.to_owned(), reason.to_owned()))
}

/// Whether librdkafka's error text says a broker refused the SASL credentials (as opposed to
/// the client failing to obtain a token, which the library retries).
fn broker_refused_credentials(code: RDKafkaErrorCode, reason: &str) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::Authentication | RDKafkaErrorCode::SaslAuthenticationFailed
    ) && reason.contains("SASL authentication error")
}

impl ClientContext for KafkaContext {
    fn stats(&self, statistics: Statistics) {
        self.hooks.statistics(self.client, &statistics);
        self.brokers_seen(&statistics);
        *lock(&self.shared.statistics) = Some(Arc::new(statistics));
    }

    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        if fac == "ADDPARTS"
            && let Some(refused) = refused_partition(message)
        {
            *lock(&self.shared.refused_partition) = Some(refused);
        }
        self.hooks.log(self.client, level, fac, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        let code = error.rdkafka_error_code();
        match code {
            Some(RDKafkaErrorCode::AllBrokersDown) => {
                if !self.shared.brokers_down.swap(true, Ordering::Relaxed) {
                    self.hooks.brokers_down(self.client, &error, reason);
                }
            }
            Some(code) if broker_refused_credentials(code, reason) => {
                let refusal = self.refuse(code, reason);
                self.hooks.auth_failed(&AuthFailure::BrokerRefused {
                    client: self.client,
                    refusal: &refusal,
                });
            }
            Some(code) if matches!(error, KafkaError::Global(RDKafkaErrorCode::Fatal)) => {
                let refusal = self.refuse(code, reason);
                self.hooks.fatal(self.client, &refusal);
            }
            Some(RDKafkaErrorCode::BrokerTransportFailure) => {
                self.broker_failed(reason);
                self.hooks.error(self.client, &error, reason);
            }
            _ => self.hooks.error(self.client, &error, reason),
        }
    }
}

impl ConsumerContext for KafkaContext {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        self.shared.rebalances.fetch_add(1, Ordering::SeqCst);
        match rebalance {
            Rebalance::Assign(tpl) => {
                {
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
                }
                self.hooks.assigned(self.client, tpl);
            }
            Rebalance::Revoke(tpl) => {
                {
                    let mut owned = lock(&self.shared.owned);
                    for element in tpl.elements() {
                        if let Some(partitions) = owned.partitions.get_mut(element.topic()) {
                            partitions.remove(&element.partition());
                            if partitions.is_empty() {
                                owned.partitions.remove(element.topic());
                            }
                        }
                    }
                }
                self.hooks.revoked(self.client, tpl);
            }
            Rebalance::Error(e) => self.hooks.rebalance_error(self.client, e),
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Error(_) = rebalance {
            // librdkafka has just given up the assignment (all of it with the eager protocol,
            // the failed part with the cooperative one): keep only what it still assigns, so
            // that nothing acts on a partition this consumer no longer owns (a rewind seeking
            // it, a parked record handed out). When the assignment cannot be read, nothing is
            // kept.
            let assigned = consumer.assignment().ok();
            let mut owned = lock(&self.shared.owned);
            let before = owned.partitions.values().map(FxHashMap::len).sum::<usize>();
            owned.partitions.retain(|topic, partitions| {
                partitions.retain(|partition, _| {
                    assigned
                        .as_ref()
                        .is_some_and(|tpl| tpl.find_partition(topic, *partition).is_some())
                });
                !partitions.is_empty()
            });
            let after = owned.partitions.values().map(FxHashMap::len).sum::<usize>();
            if before != after {
                warn!(
                    client = self.client,
                    dropped = before - after,
                    kept = after,
                    "rebalance error: partitions no longer assigned are no longer owned"
                );
            }
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        self.hooks.committed(result.as_ref().map(|_| ()), offsets);
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

#[cfg(test)]
mod tests {
    use rdkafka::{ClientConfig, Offset, types::RDKafkaRespErr};

    use super::*;

    #[test]
    fn the_partition_a_transaction_refused_is_read_from_librdkafkas_line() {
        let context = KafkaContext::new("producer");
        context.log(
            RDKafkaLogLevel::Error,
            "ADDPARTS",
            "Failed to add partition \"grocery.order-status.v1\" [0] to transaction: \
             Broker: Operation not attempted",
        );
        assert_eq!(
            context.take_refused_partition(),
            None,
            "not attempted: not the refused one"
        );
        context.log(
            RDKafkaLogLevel::Error,
            "ADDPARTS",
            "[thrd:TxnCoordinator]: TxnCoordinator/1: Failed to add partition \
             \"grocery.picklist.v1\" [2] to transaction: Broker: Topic authorization failed",
        );
        assert_eq!(
            context.take_refused_partition(),
            Some((
                "grocery.picklist.v1".to_owned(),
                "Broker: Topic authorization failed".to_owned()
            ))
        );
        assert_eq!(context.take_refused_partition(), None, "taken");
    }

    /// A failed rebalance makes rdkafka unassign (everything, with the eager protocol): the
    /// context's owned partitions must follow, or a later rewind seeks partitions this consumer
    /// no longer owns and a parked record of one is handed out. No broker can be made to fail a
    /// rebalance on cue, so this drives rdkafka's own rebalance callback (which calls librdkafka's
    /// `rd_kafka_assign`) on a consumer that needs no broker for it.
    #[test]
    fn a_rebalance_error_forgets_the_partitions_librdkafka_unassigned() {
        let context = KafkaContext::new("consumer");
        let consumer: BaseConsumer<KafkaContext> = ClientConfig::new()
            .set("group.id", "rebalance-error-test")
            .set("bootstrap.servers", "127.0.0.1:1")
            .create_with_context(context.clone())
            .unwrap();
        let mut assigned = TopicPartitionList::new();
        for partition in 0..3 {
            assigned
                .add_partition_offset("orders", partition, Offset::Beginning)
                .unwrap();
        }
        context.rebalance(
            &consumer,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS,
            &mut assigned,
        );
        assert_eq!(consumer.assignment().unwrap().count(), 3);
        assert_eq!(context.owned_partitions().len(), 3);
        assert!(context.assignment_of("orders", 1).is_some());

        let mut failed = TopicPartitionList::new();
        context.rebalance(
            &consumer,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION,
            &mut failed,
        );
        assert_eq!(
            consumer.assignment().unwrap().count(),
            0,
            "rdkafka unassigned"
        );
        assert_eq!(context.owned_partitions(), Vec::<(String, i32)>::new());
        assert_eq!(context.assignment_of("orders", 1), None);

        // Assigned again: a new assignment, distinct from the one before the error.
        let before = context.rebalances();
        context.rebalance(
            &consumer,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS,
            &mut assigned,
        );
        assert_eq!(context.rebalances(), before + 1);
        assert_eq!(context.owned_partitions().len(), 3);
    }

    /// A broker connection that fails is listed at once, named as librdkafka names it, and
    /// the latest reason kept; errors that name no broker are not.
    #[test]
    fn a_failed_broker_connection_is_listed_by_the_error_callback() {
        let context = KafkaContext::new("consumer");
        assert!(context.lost_brokers().is_empty());
        let transport = KafkaError::Global(RDKafkaErrorCode::BrokerTransportFailure);
        context.error(
            transport.clone(),
            "127.0.0.1:39001/2: Disconnected: connection closed by peer (after 40845ms in state UP)",
        );
        context.error(
            transport.clone(),
            "127.0.0.1:39001/2: Connect to ipv4#127.0.0.1:39001 failed: Connection refused (after 0ms in state CONNECT)",
        );
        context.error(transport.clone(), "Disconnected without a broker name");
        context.error(transport, "GroupCoordinator: Disconnected: no address");
        context.error(
            KafkaError::Global(RDKafkaErrorCode::MessageTimedOut),
            "127.0.0.1:39002/3: not a transport failure",
        );
        // The coordinator connection to another broker, named by its address.
        context.error(
            KafkaError::Global(RDKafkaErrorCode::BrokerTransportFailure),
            "TxnCoordinator: 127.0.0.1:39003: Connect to ipv4#127.0.0.1:39003 failed: Connection refused (after 0ms in state CONNECT)",
        );
        let lost = context.lost_brokers();
        assert_eq!(lost.len(), 2, "{lost:?}");
        assert_eq!(lost[0].name, "127.0.0.1:39001/2");
        assert_eq!(lost[1].name, "127.0.0.1:39003 (TxnCoordinator)");
        assert!(
            lost[0]
                .reason
                .starts_with("Connect to ipv4#127.0.0.1:39001 failed"),
            "{lost:?}"
        );
    }
}
