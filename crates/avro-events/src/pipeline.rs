use std::{
    collections::{BTreeMap, btree_map},
    sync::{
        Arc, Mutex, RwLock,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use backon::{BackoffBuilder as _, Retryable as _};
use futures::{StreamExt, stream::FuturesOrdered};
use rdkafka::{
    Offset, TopicPartitionList, consumer::Consumer as _, error::KafkaError, producer::Producer as _,
};
use tracing::{debug, debug_span, error, info, warn};

mod replace;
mod watchdog;

use crate::{
    Codec, Consumer, ConsumerOptions, Error, Event, Format, IntoOutputs, Outputs, Producer,
    Received, RecordMeta, Result,
    consumer::{Mode, Polled},
    context::{DeadLettered, KafkaContext},
    error::KafkaOperation,
    outputs::{self, Output},
    producer::PendingDelivery,
    shared::Shared,
    trace::{self, SpanKind, TraceContext},
};

/// Counters of a running pipeline.
#[derive(Debug, Default)]
pub struct PipelineStats {
    /// Inputs read and transformed.
    pub consumed: AtomicU64,
    /// Outputs acknowledged by the broker (in transactional mode: committed), of every type;
    /// per topic: [`PipelineStats::produced_to`].
    pub produced: AtomicU64,
    /// Transactions committed (transactional mode only).
    pub transactions: AtomicU64,
    /// Transactions aborted (transactional mode only); their inputs were read again.
    pub aborted: AtomicU64,
    /// Transactional producers replaced because a transaction call did not return (see
    /// [`Pipeline`]); their transactions' inputs were read again.
    pub producers_replaced: AtomicU64,
    /// Outputs counted in `produced`, per topic.
    per_topic: Mutex<BTreeMap<&'static str, u64>>,
}

impl PipelineStats {
    /// Outputs written to `topic` and acknowledged (in transactional mode: committed).
    pub fn produced_to(&self, topic: &str) -> u64 {
        let per_topic = self.per_topic.lock().unwrap_or_else(|p| p.into_inner());
        per_topic.get(topic).copied().unwrap_or(0)
    }

    /// Counts `topics` (one entry per output) as produced.
    fn count_produced(&self, topics: &[&'static str]) {
        if topics.is_empty() {
            return;
        }
        let mut per_topic = self.per_topic.lock().unwrap_or_else(|p| p.into_inner());
        for topic in topics {
            *per_topic.entry(topic).or_default() += 1;
        }
        self.produced
            .fetch_add(topics.len() as u64, Ordering::Relaxed);
    }
}

/// Tuning of a [`Pipeline`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PipelineOptions {
    /// The consumer's options (group id, dead-letter topic, retries).
    pub consumer: ConsumerOptions,
    /// At most this many inputs wait for their outputs' acknowledgements at once.
    pub max_in_flight: usize,
    /// Transactional mode: at most this many inputs per transaction.
    pub batch_size: usize,
    /// Transactional mode: a transaction is committed at the latest this long after it began.
    pub batch_linger: Duration,
}

impl PipelineOptions {
    /// Options for consumer group `group_id`.
    pub fn new(group_id: impl Into<String>) -> Self {
        Self {
            consumer: ConsumerOptions::new(group_id),
            max_in_flight: 1000,
            batch_size: 500,
            batch_linger: Duration::from_millis(100),
        }
    }
}

impl From<&str> for PipelineOptions {
    fn from(group_id: &str) -> Self {
        Self::new(group_id)
    }
}

impl From<String> for PipelineOptions {
    fn from(group_id: String) -> Self {
        Self::new(group_id)
    }
}

/// A consume-transform-produce loop from `In` events to [`Outputs`], decoded and encoded with
/// the [`Format`] `F` (Avro's [`Codec`] unless made with
/// [`Client::pipeline_with_format`](crate::Client::pipeline_with_format)).
///
/// # Pipeline in detail
///
/// Consume-transform-produce: read `In` events, turn each into output events ([`Outputs`]:
/// one or more, of one or several types), write them, and only then mark the input done.
/// Inputs, outputs and their keys go through the format only: whatever follows (transactions,
/// dead letters, traces, backoff while an output cannot be encoded yet) is the same for every
/// format.
///
/// Without `transactional.id` the pipeline is at-least-once: outputs are produced
/// idempotently and an input's offset is stored only after all its outputs are acknowledged,
/// in input order, with many records in flight. A record that can never be decoded is
/// dead-lettered in the same order: its offset is stored only after its dead-letter copy and
/// the outputs of every earlier input are acknowledged. An acknowledgement that arrives after
/// its partition was revoked is dropped (the partition's new owner reads the input again), so
/// a rebalance or a crash replays inputs: derive output ids from the input (as
/// `fulfillment-service` does) so that replays are recognisable. A delivery the broker fails
/// (a record larger than the topic takes, no right to write the topic) ends [`Pipeline::run`]
/// with that error; nothing from the failed input on is acknowledged.
///
/// With `transactional.id` the pipeline is exactly-once for `read_committed` readers: outputs,
/// dead-letter records and input offsets are committed together in Kafka transactions, batch
/// by batch; the consumer commits nothing by itself. A failed batch is aborted and its inputs
/// are read again; errors are handled as Kafka classifies them: retriable calls are retried,
/// abortable ones abort the batch and rewind, fatal ones (a newer instance with the same
/// `transactional.id` fenced this one) end [`Pipeline::run`]. A batch during which one of its
/// partitions was revoked is aborted too, so the partition's new owner and this instance never
/// both commit outputs for the same input. Give each instance its own, stable
/// `transactional.id` (the same one across its restarts, so a restart fences its predecessor).
/// After an abort each partition of the batch is rewound to the first input the batch read
/// under its current assignment; a partition revoked since (and maybe assigned again, after
/// another member committed past it) is not rewound: it is read from its committed offset.
/// An output the broker refuses for good (a record larger than the topic or the client takes,
/// no right to write the topic) ends [`Pipeline::run`] with that error after the abort:
/// nothing is committed past the input, which is read again once the limit or the right is
/// changed and the pipeline restarted.
///
/// ### A transaction call that never returns
///
/// Each blocking transaction call gets a 30 s timeout, but librdkafka does not always honour
/// it: `send_offsets_to_transaction` can wait for good for a group coordinator whose broker
/// was killed (librdkafka 2.12, confluentinc/librdkafka#5456 and #5511). A watchdog stops
/// waiting 10 s past the timeout: the stuck producer is given up and replaced by a new one with
/// the same `transactional.id`, whose initialisation fences the old one (the coordinator ends
/// its transaction; anything it sends later is refused), and the consumer is rewound to the
/// committed offsets of the batch's partitions, read once the old transaction is settled. One
/// `WARN` line says which call was stuck; [`Pipeline::stalled`] says so from the moment the
/// call is late until the next commit, and [`PipelineStats::producers_replaced`] counts the
/// replacements. The abandoned call keeps a thread and its producer's resources until it
/// returns (usually once the lost broker is back); with more than two still stuck the
/// pipeline stops with [`Error::Fatal`] instead of abandoning more.
///
/// ### Outages of the outputs' registry
///
/// An output that cannot be encoded for a reason that may pass (its subject not registered yet
/// with `auto.register.schemas=false`, the Schema Registry unreachable, answering 5xx, or
/// refusing the credentials with 401/403) is never dropped and never skipped: in transactional
/// mode the batch is aborted and rewound and, after a backoff, read again in a new transaction
/// (no transaction stays open through the wait, so `transaction.timeout.ms` is never reached);
/// in at-least-once mode the input waits, unacknowledged, and its outputs are encoded again
/// after the backoff. Other batch failures (an abortable Kafka error, an output that does not
/// fit its schema) are retried the same way. The backoff is exponential with jitter, from
/// [`ConsumerOptions::initial_backoff`] up to 10 s, one `WARN` line per step; while it lasts
/// [`Pipeline::stalled`] says why (a service answers its health check with it), and the first
/// input that gets through clears it. Shutdown is honoured during the wait.
///
/// Every output continues its input's W3C trace ([`TraceContext`](crate::TraceContext)): the same trace id, a new
/// span id, the input's span as parent; the transform runs inside a `process` span (DEBUG)
/// carrying the input's `trace_id`.
#[derive(Debug)]
pub struct Pipeline<In: Event, F: Format = Codec> {
    shared: Arc<Shared>,
    /// What the inputs are decoded and the outputs encoded with.
    format: Arc<F>,
    consumer: Consumer<In, F>,
    /// The producer the outputs go through; in transactional mode replaced when a transaction
    /// call is stuck.
    producer: RwLock<Arc<Producer<F>>>,
    /// Bounds the blocking transaction calls.
    watchdog: watchdog::Watchdog,
    options: PipelineOptions,
    transactional: bool,
    stats: Arc<PipelineStats>,
    /// Why no input gets through now (see [`Pipeline::stalled`]).
    stall: Mutex<Option<String>>,
}

/// What the at-least-once loop does next.
enum Step<P> {
    /// Shutdown was asked for.
    Stop,
    /// The next input.
    Polled(P),
    /// The oldest input in flight is finished (or failed).
    Done(Result<Finished>),
}

/// An input whose outputs (or dead-letter copy) are all acknowledged.
struct Finished {
    meta: RecordMeta,
    /// The topic of each output.
    topics: Vec<&'static str>,
    /// Whether it was written to the dead-letter topic.
    dead_lettered: bool,
}

/// Waits for the acknowledgements of an input's outputs (each with its topic) or of its
/// dead-letter copy: an input in the ordered in-flight queue. One future type for every input,
/// so the queue holds them unboxed.
async fn settle(
    meta: RecordMeta,
    mut deliveries: Vec<(PendingDelivery, &'static str)>,
    dead_letter: Option<PendingDelivery>,
) -> Result<Finished> {
    for (delivery, _) in &mut deliveries {
        delivery.await?;
    }
    let dead_lettered = dead_letter.is_some();
    if let Some(delivery) = dead_letter {
        delivery.await?;
    }
    Ok(Finished {
        meta,
        // Collected in place: the deliveries' allocation holds the topics.
        topics: deliveries.into_iter().map(|(_, topic)| topic).collect(),
        dead_lettered,
    })
}

/// Longest wait between two attempts at inputs whose outputs cannot be written yet.
const MAX_OUTPUT_BACKOFF: Duration = Duration::from_secs(10);

/// What a transaction call's failure calls for, as Kafka classifies it.
enum Failure {
    /// Try the same call again.
    Retry(Error),
    /// Abort the transaction and process its inputs again.
    Abort(Error),
    /// The producer cannot go on.
    Fatal(Error),
    /// The call did not return within the watchdog's bound: replace the producer.
    Stuck(watchdog::Stuck),
}

impl Failure {
    fn into_error(self) -> Error {
        match self {
            Self::Retry(e) | Self::Abort(e) | Self::Fatal(e) => e,
            Self::Stuck(stuck) => stuck.into_error(),
        }
    }
}

impl watchdog::Stuck {
    /// The error of a stuck call the pipeline cannot recover from.
    fn into_error(self) -> Error {
        Error::Fatal {
            operation: self.operation,
            reason: format!(
                "did not return within {} s; {} abandoned transaction calls still running \
                 (at most {} are allowed): restart the process",
                self.waited.as_secs(),
                self.stuck,
                watchdog::MAX_STUCK
            ),
        }
    }
}

/// The inputs and outputs of one transaction.
#[derive(Default)]
struct Batch {
    /// Per partition: the first input read under the partition's latest assignment, and that
    /// assignment: where an abort rewinds it to, while the assignment lasts.
    first: BTreeMap<(String, i32), (i64, Option<u64>)>,
    /// A partition was revoked and assigned again while the batch was filled: the batch must
    /// not commit (another member may have committed the same inputs meanwhile).
    reassigned: bool,
    /// Per partition: the offset to commit (last input + 1).
    next: BTreeMap<(String, i32), i64>,
    /// The topic of each output queued in the transaction.
    produced: Vec<&'static str>,
    dead_lettered: u64,
}

impl Batch {
    /// Enters the input at `offset` of `partition`, read under `assignment`, before anything
    /// is written for it: whatever happens next, an abort rewinds its partition.
    fn enter(&mut self, partition: (String, i32), offset: i64, assignment: Option<u64>) {
        match self.first.entry(partition.clone()) {
            btree_map::Entry::Vacant(entry) => {
                entry.insert((offset, assignment));
            }
            btree_map::Entry::Occupied(mut entry) => {
                if entry.get().1 != assignment {
                    self.reassigned = true;
                    entry.insert((offset, assignment));
                }
            }
        }
        self.next.insert(partition, offset + 1);
    }

    /// Whether the batch may commit: each partition still has the assignment its inputs were
    /// read under, and none was reassigned in between.
    fn still_owned(
        &self,
        assignment_of: impl Fn(&str, i32) -> Option<u64>,
    ) -> Option<&(String, i32)> {
        if self.reassigned {
            return self.first.keys().next();
        }
        self.first.iter().find_map(|(tp, (_, assignment))| {
            (assignment_of(&tp.0, tp.1) != *assignment).then_some(tp)
        })
    }

    /// The partitions an abort rewinds, with their offsets and assignments: those whose
    /// assignment is still the one the batch read them under. A partition revoked since, or
    /// revoked and assigned again, starts from its committed offset instead (another member
    /// may have committed past the batch's first input meanwhile).
    fn rewind_targets(
        &self,
        assignment_of: impl Fn(&str, i32) -> Option<u64>,
    ) -> Vec<((String, i32), i64, u64)> {
        self.first
            .iter()
            .filter_map(|(tp, (offset, assignment))| {
                let assignment = (*assignment)?;
                (assignment_of(&tp.0, tp.1) == Some(assignment))
                    .then(|| (tp.clone(), *offset, assignment))
            })
            .collect()
    }
}

/// Whether an output's encoding failed for a reason that may pass: the registry unreachable
/// or failing, refusing the credentials (401/403: a token refresh or a new role binding mends
/// it), or the output's subject (or version) not registered yet.
fn may_pass(error: &Error) -> bool {
    error.is_transient()
        || matches!(
            error,
            Error::RegistryUnauthorized { .. }
                | Error::SchemaNotRegistered { .. }
                | Error::SubjectNotFound { .. }
                | Error::VersionNotFound { .. }
        )
}

/// Whether the broker refused an output for good: the record is larger than the client
/// (`message.max.bytes`) or the topic (`max.message.bytes`) takes, or the client may not write
/// the topic. Trying again cannot help until someone changes the limit or the right.
fn refused_for_good(error: &Error) -> bool {
    use rdkafka::types::RDKafkaErrorCode as Code;
    error.is_refused()
        || matches!(error, Error::Kafka { operation: KafkaOperation::Produce, source, .. }
            if matches!(source.rdkafka_error_code(), Some(Code::MessageSizeTooLarge | Code::InvalidRecord)))
}

impl<In: Event> Pipeline<In> {
    /// Creates the consumer and the producer from `shared`
    /// ([`Client::pipeline`](crate::Client::pipeline)), with the client's Avro codec.
    pub(crate) async fn create(shared: &Arc<Shared>, options: PipelineOptions) -> Result<Self> {
        Self::create_with(shared, shared.codec.clone(), options).await
    }
}

impl<In: Event, F: Format> Pipeline<In, F> {
    /// Creates the consumer and the producer from `shared`, decoding the inputs and encoding
    /// the outputs with `format` ([`Client::pipeline_with_format`](crate::Client::pipeline_with_format)).
    /// Transactions are used when the configuration has a `transactional.id`.
    pub(crate) async fn create_with(
        shared: &Arc<Shared>,
        format: Arc<F>,
        options: PipelineOptions,
    ) -> Result<Self> {
        let transactional = shared.settings.kafka.transactional();
        let mode = if transactional {
            Mode::Transactional
        } else {
            Mode::Pipelined
        };
        let producer = Producer::create_with(shared, format.clone(), transactional).await?;
        let consumer = Consumer::<In, F>::create_with(
            shared,
            format.clone(),
            options.consumer.clone(),
            &[In::TOPIC],
            mode,
        )
        .await?;
        info!(transactional, format = %format.schema_type(), "pipeline ready");
        Ok(Self {
            shared: shared.clone(),
            format,
            consumer,
            producer: RwLock::new(Arc::new(producer)),
            watchdog: watchdog::Watchdog::default(),
            options,
            transactional,
            stats: Arc::default(),
            stall: Mutex::new(None),
        })
    }

    /// The pipeline's counters, shareable with a metrics endpoint.
    pub fn stats(&self) -> Arc<PipelineStats> {
        self.stats.clone()
    }

    /// Why no input gets through now, while it lasts: its outputs cannot be encoded (their
    /// subject not registered, the registry unreachable or refusing the credentials) and the
    /// pipeline is backing off before it tries again. `None` while inputs flow. A service's
    /// health check answers 503 with it.
    ///
    /// The consumer's own reasons (an input that cannot be decoded yet) are the consumer's
    /// to report; a health check asks both.
    pub fn stalled(&self) -> Option<String> {
        self.stall.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Records (or, with `None`, clears) why no input gets through.
    fn set_stall(&self, reason: Option<String>) {
        let mut stall = self.stall.lock().unwrap_or_else(|p| p.into_inner());
        if stall.is_some() && reason.is_none() {
            info!("outputs are written again");
        }
        *stall = reason;
    }

    /// The backoff between attempts at inputs whose outputs cannot be written yet.
    fn output_backoff(&self) -> backon::ExponentialBuilder {
        crate::retry::exponential(
            self.options.consumer.initial_backoff,
            MAX_OUTPUT_BACKOFF,
            None,
        )
    }

    /// The consumer (for lag, owned partitions and dead-letter counts).
    pub fn consumer(&self) -> &Consumer<In, F> {
        &self.consumer
    }

    /// Whether the pipeline's clients last found the brokers reachable (see
    /// [`KafkaContext::brokers_down`]).
    pub fn brokers_reachable(&self) -> bool {
        !self.consumer.context().brokers_down() && !self.producer_context().brokers_down()
    }

    /// The producer the outputs go through now (e.g. to count the records still in flight).
    /// In transactional mode a producer whose transaction call is stuck is replaced by a new
    /// one (see [`Pipeline`]): ask again rather than keep the answer.
    pub fn producer(&self) -> Arc<Producer<F>> {
        self.producer
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The client context of the producer the outputs go through now (statistics, broker
    /// reachability).
    pub fn producer_context(&self) -> KafkaContext {
        self.producer().context().clone()
    }

    /// Whether the brokers can be reached now: true at once when no outage was reported,
    /// otherwise after the brokers answer a metadata request within `timeout` (which ends the
    /// reported outage).
    pub async fn check_brokers(&self, timeout: Duration) -> bool {
        if self.brokers_reachable() {
            return true;
        }
        let answered = self.consumer.probe_brokers(timeout).await;
        if answered {
            self.producer_context().brokers_reachable();
        }
        answered
    }

    /// Runs until `shutdown` resolves, turning each input into the outputs `transform`
    /// returns (written to each output's [`Event::TOPIC`]): a `Vec` of one event type, or
    /// [`Outputs`] of several types. An input's outputs are committed in one transaction, or
    /// (at-least-once) all acknowledged before the input is.
    ///
    /// Outputs that cannot be encoded yet (subject not registered, registry unreachable or
    /// refusing the credentials) are waited out with backoff, never skipped (see the module
    /// docs); [`Pipeline::stalled`] says why meanwhile.
    ///
    /// # Errors
    /// A refusal by the broker (credentials, rights, e.g. on an output topic), an output larger
    /// than the topic or `message.max.bytes` takes, a fatal producer error (fenced), a failed
    /// delivery in at-least-once mode, or a transient error that outlasted the consumer's
    /// retries. Nothing is committed past the input concerned: inputs not yet committed are
    /// read again after a restart.
    pub async fn run<O, T, S>(&self, transform: T, shutdown: S) -> Result<()>
    where
        O: IntoOutputs<F>,
        T: FnMut(&Received<In>) -> O,
        S: Future<Output = ()>,
    {
        if self.transactional {
            self.run_transactional(transform, shutdown).await
        } else {
            self.run_pipelined(transform, shutdown).await
        }
    }

    async fn run_pipelined<O, T, S>(&self, mut transform: T, shutdown: S) -> Result<()>
    where
        O: IntoOutputs<F>,
        T: FnMut(&Received<In>) -> O,
        S: Future<Output = ()>,
    {
        tokio::pin!(shutdown);
        // Every input, whatever its fate (outputs, dead-letter copy, tombstone), goes through
        // this queue, so that offsets are stored in input order.
        let mut in_flight = FuturesOrdered::new();
        let mut stopping = false;
        loop {
            let can_read = !stopping && in_flight.len() < self.options.max_in_flight;
            let step = tokio::select! {
                () = &mut shutdown, if !stopping => Step::Stop,
                polled = self.consumer.poll(), if can_read => Step::Polled(polled?),
                Some(done) = in_flight.next() => Step::Done(done),
                else => break,
            };
            match step {
                Step::Stop => stopping = true,
                Step::Done(done) => {
                    let finished: Finished = done.inspect_err(|error| {
                        error!(%error, "an output was not delivered; stopping without acknowledging its input");
                    })?;
                    self.stats.count_produced(&finished.topics);
                    if finished.dead_lettered {
                        self.consumer.count_dead_lettered();
                    }
                    self.consumer.ack(&finished.meta)?;
                }
                Step::Polled(Polled::Event(received)) => {
                    self.stats.consumed.fetch_add(1, Ordering::Relaxed);
                    let (parent, outputs) = self.transform_traced(&received, &mut transform);
                    let records = outputs.into_records();
                    let queued = tokio::select! {
                        queued = self.enqueue_waiting(&records, parent.as_ref()) => Some(queued?),
                        () = &mut shutdown, if !stopping => None,
                    };
                    let Some(deliveries) = queued else {
                        // Shutdown during an outage: the input stays unacknowledged and is
                        // read again after a restart.
                        stopping = true;
                        continue;
                    };
                    in_flight.push_back(settle(received.meta, deliveries, None));
                }
                Step::Polled(Polled::Tombstone(tombstone)) => {
                    debug!(topic = %tombstone.meta.topic, partition = tombstone.meta.partition, offset = tombstone.meta.offset, "tombstone passed over");
                    self.consumer.count_tombstone_passed();
                    in_flight.push_back(settle(tombstone.meta, Vec::new(), None));
                }
                Step::Polled(Polled::Poison {
                    message,
                    meta,
                    error,
                }) => {
                    let dlq_topic = self.consumer.dead_letter_topic(&meta.topic);
                    let pending = self
                        .producer()
                        .enqueue_dead_letter(&dlq_topic, &message, &meta.location(), &error)
                        .await?;
                    self.consumer
                        .context()
                        .hooks()
                        .dead_lettered(&DeadLettered {
                            meta: &meta,
                            dlq_topic: &dlq_topic,
                            error: &error,
                            transactional: false,
                        });
                    in_flight.push_back(settle(meta, Vec::new(), Some(pending)));
                }
            }
            if stopping && in_flight.is_empty() {
                break;
            }
        }
        self.producer().flush(Duration::from_secs(30)).await?;
        self.consumer.close().await
    }

    /// Runs `transform` on `received` inside its `process` span (with the input's `trace_id`);
    /// returns the input's trace context, which the outputs continue, and the outputs.
    fn transform_traced<O, T>(
        &self,
        received: &Received<In>,
        transform: &mut T,
    ) -> (Option<TraceContext>, Outputs<F>)
    where
        O: IntoOutputs<F>,
        T: FnMut(&Received<In>) -> O,
    {
        let parent = received.trace();
        let meta = &received.meta;
        let span = debug_span!("process", topic = %meta.topic, partition = meta.partition, offset = meta.offset, trace_id = tracing::field::Empty);
        if let Some(parent) = parent.as_ref().filter(|_| !span.is_disabled()) {
            span.record("trace_id", tracing::field::display(parent.trace_id()));
        }
        let (_, otel) = trace::start_span(
            self.producer().spans(),
            "process",
            SpanKind::Consumer,
            &meta.topic,
            parent.as_ref(),
        );
        let outputs = span.in_scope(|| transform(received).into_outputs());
        otel.end();
        (parent, outputs)
    }

    /// Encodes and queues `records` as the next spans of `parent`'s trace (at-least-once mode),
    /// waiting out, with backoff, errors that may pass: the input is held, unacknowledged,
    /// until its outputs can be encoded.
    async fn enqueue_waiting(
        &self,
        records: &[Box<dyn Output<F>>],
        parent: Option<&TraceContext>,
    ) -> Result<Vec<(PendingDelivery, &'static str)>> {
        let mut deliveries = Vec::with_capacity(records.len());
        let producer = self.producer();
        for out in records {
            let out = out.as_ref();
            let pending = (|| outputs::enqueue(out, &producer, parent))
                .retry(self.output_backoff())
                .when(may_pass)
                .notify(|error, wait| {
                    warn!(%error, topic = out.topic(), backoff_ms = wait.as_millis() as u64, "cannot encode an output yet; its input waits");
                    self.set_stall(Some(format!("cannot write to {}: {error}", out.topic())));
                })
                .await?;
            deliveries.push((pending, out.topic()));
        }
        self.set_stall(None);
        Ok(deliveries)
    }

    async fn run_transactional<O, T, S>(&self, mut transform: T, shutdown: S) -> Result<()>
    where
        O: IntoOutputs<F>,
        T: FnMut(&Received<In>) -> O,
        S: Future<Output = ()>,
    {
        tokio::pin!(shutdown);
        let mut backoff = self.output_backoff().build();
        loop {
            // Wait for the first record of a batch (or shutdown) before opening a transaction.
            let first = tokio::select! {
                () = &mut shutdown => break,
                polled = self.consumer.poll() => polled?,
            };
            // One producer per batch: a replacement takes effect with the next one.
            let producer = self.producer();
            let mut batch = Batch::default();
            let begun = self
                .txn(&producer, KafkaOperation::BeginTransaction, |p| {
                    p.begin_transaction()
                })
                .await;
            let outcome = match begun {
                Err(Failure::Stuck(stuck)) => {
                    let meta = polled_meta(&first);
                    batch.enter(
                        (meta.topic.clone(), meta.partition),
                        meta.offset,
                        self.consumer
                            .context()
                            .assignment_of(&meta.topic, meta.partition),
                    );
                    Err(Failure::Stuck(stuck))
                }
                Err(failure) => return Err(failure.into_error()),
                Ok(()) => {
                    let filled = self
                        .fill_batch(&producer, first, &mut transform, &mut batch)
                        .await;
                    match filled {
                        Ok(()) => self.commit_batch(&producer, &batch).await,
                        // An input whose schema cannot be fetched or used, with
                        // `schema.unavailable.action=fail`, ends the pipeline as it ends a
                        // consumer.
                        Err(error)
                            if refused_for_good(&error)
                                || error.is_schema_unavailable()
                                || matches!(error, Error::Fatal { .. }) =>
                        {
                            Err(Failure::Fatal(error))
                        }
                        Err(error) => Err(Failure::Abort(error)),
                    }
                }
            };
            match outcome {
                Ok(()) => {
                    self.stats.count_produced(&batch.produced);
                    self.stats.transactions.fetch_add(1, Ordering::Relaxed);
                    for _ in 0..batch.dead_lettered {
                        self.consumer.count_dead_lettered();
                    }
                    self.set_stall(None);
                    backoff = self.output_backoff().build();
                    debug!(
                        partitions = batch.next.len(),
                        produced = batch.produced.len(),
                        "transaction committed"
                    );
                }
                Err(Failure::Abort(error) | Failure::Retry(error)) => {
                    // Abort and rewind first: no transaction stays open through the wait.
                    let aborted = tokio::select! {
                        aborted = self.abort(&producer, &batch) => aborted,
                        () = &mut shutdown => break,
                    };
                    aborted?;
                    let wait = backoff.next().unwrap_or(MAX_OUTPUT_BACKOFF);
                    warn!(%error, backoff_ms = wait.as_millis() as u64, "transaction aborted; its inputs are read again after the backoff");
                    if may_pass(&error) {
                        self.set_stall(Some(format!("outputs cannot be written: {error}")));
                    }
                    tokio::select! {
                        () = &mut shutdown => break,
                        () = tokio::time::sleep(wait) => {}
                    }
                }
                Err(Failure::Stuck(stuck)) => {
                    // Shutdown meanwhile: nothing was committed past the batch's inputs.
                    let replaced = tokio::select! {
                        replaced = self.replace_producer(stuck, &batch) => replaced,
                        () = &mut shutdown => break,
                    };
                    replaced?;
                }
                Err(Failure::Fatal(error)) => {
                    error!(%error, "stopping: the transaction is aborted and nothing is committed past its inputs");
                    let _ = self.abort(&producer, &batch).await;
                    return Err(error);
                }
            }
        }
        self.consumer.close().await
    }

    /// Reads up to `batch_size` inputs (or for `batch_linger`) into `batch`, queues their
    /// outputs and dead-letter records in `producer`'s open transaction, and waits for the
    /// acknowledgements. Each input's partition is entered in `batch` before anything is
    /// written for it, so that an abort after any error rewinds it.
    async fn fill_batch<O, T>(
        &self,
        producer: &Producer<F>,
        first: Polled<In>,
        transform: &mut T,
        batch: &mut Batch,
    ) -> Result<()>
    where
        O: IntoOutputs<F>,
        T: FnMut(&Received<In>) -> O,
    {
        let deadline = tokio::time::Instant::now() + self.options.batch_linger;
        let context = self.consumer.context();
        let mut next = Some(first);
        let mut count = 0;
        let mut deliveries = Vec::new();
        while let Some(polled) = next.take() {
            count += 1;
            let meta = polled_meta(&polled);
            batch.enter(
                (meta.topic.clone(), meta.partition),
                meta.offset,
                context.assignment_of(&meta.topic, meta.partition),
            );
            match polled {
                Polled::Event(received) => {
                    self.stats.consumed.fetch_add(1, Ordering::Relaxed);
                    let (parent, outputs) = self.transform_traced(&received, transform);
                    for out in outputs.into_records() {
                        // No waiting inside the transaction: an error that may pass aborts the
                        // batch, which is read again after a backoff.
                        deliveries
                            .push(outputs::enqueue(out.as_ref(), producer, parent.as_ref()).await?);
                        batch.produced.push(out.topic());
                    }
                }
                Polled::Tombstone(tombstone) => {
                    // Nothing to transform: its offset goes with the transaction.
                    debug!(topic = %tombstone.meta.topic, partition = tombstone.meta.partition, offset = tombstone.meta.offset, "tombstone passed over");
                }
                Polled::Poison {
                    message,
                    meta,
                    error,
                } => {
                    let dlq_topic = self.consumer.dead_letter_topic(&meta.topic);
                    context.hooks().dead_lettered(&DeadLettered {
                        meta: &meta,
                        dlq_topic: &dlq_topic,
                        error: &error,
                        transactional: true,
                    });
                    deliveries.push(
                        producer
                            .enqueue_dead_letter(&dlq_topic, &message, &meta.location(), &error)
                            .await?,
                    );
                    batch.dead_lettered += 1;
                }
            }
            if count < self.options.batch_size {
                next = tokio::select! {
                    () = tokio::time::sleep_until(deadline) => None,
                    polled = self.consumer.poll() => Some(polled?),
                };
            }
        }
        // Every delivery settles (an abortable transaction fails the rest); the error reported
        // is the one that decides what happens next: a refusal for good before any other.
        let mut failed: Option<Error> = None;
        for delivery in deliveries {
            if let Err(error) = delivery.await {
                match &failed {
                    Some(first) if refused_for_good(first) || !refused_for_good(&error) => {}
                    _ => failed = Some(error),
                }
            }
        }
        failed.map_or(Ok(()), Err)
    }

    /// Sends the batch's offsets to the transaction and commits it; aborts instead when one of
    /// its partitions was revoked (or revoked and assigned again) while it was filled.
    async fn commit_batch(&self, producer: &Producer<F>, batch: &Batch) -> Result<(), Failure> {
        let context = self.consumer.context();
        if let Some((topic, partition)) =
            batch.still_owned(|topic, partition| context.assignment_of(topic, partition))
        {
            return Err(Failure::Abort(Error::Kafka {
                operation: KafkaOperation::CommitTransaction,
                topic: Some(format!("{topic}[{partition}]")),
                source: KafkaError::Rebalance(
                    rdkafka::types::RDKafkaErrorCode::RebalanceInProgress,
                ),
            }));
        }
        let metadata = self.consumer.rdkafka().group_metadata().ok_or_else(|| {
            Failure::Fatal(Error::Kafka {
                operation: KafkaOperation::SendOffsetsToTransaction,
                topic: None,
                source: KafkaError::Canceled,
            })
        })?;
        let tpl = offsets_tpl(&batch.next).map_err(Failure::Fatal)?;
        let metadata = Arc::new(metadata);
        self.retrying(
            producer,
            KafkaOperation::SendOffsetsToTransaction,
            move |p| p.send_offsets_to_transaction(&tpl, &metadata, watchdog::CALL_TIMEOUT),
        )
        .await?;
        self.retrying(producer, KafkaOperation::CommitTransaction, |p| {
            p.commit_transaction(watchdog::CALL_TIMEOUT)
        })
        .await
    }

    /// Aborts the open transaction and rewinds the consumer to the batch's first inputs, in the
    /// partitions whose assignment is still the one the batch read them under. An abort that
    /// does not return in time replaces the producer instead.
    async fn abort(&self, producer: &Producer<F>, batch: &Batch) -> Result<()> {
        let aborted = self
            .retrying(producer, KafkaOperation::AbortTransaction, |p| {
                p.abort_transaction(watchdog::CALL_TIMEOUT)
            })
            .await;
        match aborted {
            Ok(()) => {}
            Err(Failure::Stuck(stuck)) => {
                return self.replace_producer(stuck, batch).await;
            }
            Err(failure) => return Err(failure.into_error()),
        }
        self.stats.aborted.fetch_add(1, Ordering::Relaxed);
        let context = self.consumer.context();
        let to = batch.rewind_targets(|topic, partition| context.assignment_of(topic, partition));
        self.consumer.rewind(to).await
    }

    /// Runs a transaction call, retrying it while Kafka calls its failure retriable.
    async fn retrying<C>(
        &self,
        producer: &Producer<F>,
        operation: KafkaOperation,
        call: C,
    ) -> Result<(), Failure>
    where
        C: Fn(&TxnProducer) -> rdkafka::error::KafkaResult<()> + Send + Sync + 'static,
    {
        let call = Arc::new(call);
        (|| {
            let call = call.clone();
            self.txn(producer, operation, move |p| call(p))
        })
        .retry(crate::retry::exponential(
            Duration::from_millis(100),
            Duration::from_secs(5),
            None,
        ))
        .when(|failure| matches!(failure, Failure::Retry(_)))
        .notify(|failure, _| {
            if let Failure::Retry(error) = failure {
                warn!(%error, %operation, "transaction call failed; retrying");
            }
        })
        .await
    }

    /// Runs a blocking transaction call of `producer` on the blocking pool, under the
    /// watchdog, and classifies its failure.
    async fn txn<T, C>(
        &self,
        producer: &Producer<F>,
        operation: KafkaOperation,
        call: C,
    ) -> Result<T, Failure>
    where
        T: Send + 'static,
        C: FnOnce(&TxnProducer) -> rdkafka::error::KafkaResult<T> + Send + 'static,
    {
        let native = producer.rdkafka().clone();
        let late = || {
            let reason = format!(
                "the transaction call '{operation}' has not returned for {} s; the producer is \
                 replaced if it has not after {} s",
                watchdog::CALL_TIMEOUT.as_secs(),
                self.watchdog.bound().as_secs()
            );
            warn!(%operation, timeout_s = watchdog::CALL_TIMEOUT.as_secs(), "a transaction call is late");
            self.set_stall(Some(reason));
        };
        let result = self
            .watchdog
            .run(
                operation,
                move || call(&native),
                watchdog::CALL_TIMEOUT,
                late,
            )
            .await
            .map_err(Failure::Stuck)?
            .ok_or_else(|| {
                Failure::Fatal(Error::Kafka {
                    operation,
                    topic: None,
                    source: KafkaError::Canceled,
                })
            })?;
        result.map_err(|source| {
            let (fatal, abort, retry) = match &source {
                KafkaError::Transaction(e) => {
                    (e.is_fatal(), e.txn_requires_abort(), e.is_retriable())
                }
                _ => (true, false, false),
            };
            let context = producer.context();
            if fatal && let Some(refusal) = context.refusal() {
                return Failure::Fatal(context.refusal_error(refusal, operation));
            }
            let error = Error::Kafka {
                operation,
                topic: None,
                source,
            };
            if fatal {
                Failure::Fatal(error)
            } else if abort {
                Failure::Abort(error)
            } else if retry {
                Failure::Retry(error)
            } else {
                Failure::Fatal(error)
            }
        })
    }
}

/// Where `polled` was read.
fn polled_meta<In>(polled: &Polled<In>) -> &RecordMeta {
    match polled {
        Polled::Event(received) => &received.meta,
        Polled::Tombstone(tombstone) => &tombstone.meta,
        Polled::Poison { meta, .. } => meta,
    }
}

type TxnProducer = rdkafka::producer::FutureProducer<KafkaContext>;

fn offsets_tpl(offsets: &BTreeMap<(String, i32), i64>) -> Result<TopicPartitionList> {
    let mut tpl = TopicPartitionList::new();
    for ((topic, partition), offset) in offsets {
        tpl.add_partition_offset(topic, *partition, Offset::Offset(*offset))
            .map_err(|source| Error::Kafka {
                operation: KafkaOperation::SendOffsetsToTransaction,
                topic: Some(topic.clone()),
                source,
            })?;
    }
    Ok(tpl)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(partition: i32) -> (String, i32) {
        ("orders".to_owned(), partition)
    }

    /// The assignment of each partition now, as `KafkaContext::assignment_of` answers.
    fn owned(now: &[(i32, u64)]) -> impl Fn(&str, i32) -> Option<u64> + '_ {
        move |_, partition| {
            now.iter()
                .find(|(p, _)| *p == partition)
                .map(|(_, assignment)| *assignment)
        }
    }

    #[test]
    fn an_abort_rewinds_only_partitions_still_under_the_batch_assignment() {
        let mut batch = Batch::default();
        batch.enter(tp(0), 10, Some(1));
        batch.enter(tp(0), 11, Some(1));
        batch.enter(tp(1), 20, Some(2));
        batch.enter(tp(2), 30, Some(3));
        // Partition 0 still owned through assignment 1; 1 revoked; 2 revoked and given back
        // (assignment 7), after which another member may have committed past offset 30.
        let now = [(0, 1), (2, 7)];
        assert_eq!(batch.rewind_targets(owned(&now)), vec![(tp(0), 10, 1)]);
        assert!(batch.still_owned(owned(&now)).is_some(), "must not commit");
        assert_eq!(batch.still_owned(owned(&[(0, 1), (1, 2), (2, 3)])), None);
    }

    #[test]
    fn a_partition_read_again_under_a_new_assignment_is_rewound_to_its_new_first_input() {
        let mut batch = Batch::default();
        batch.enter(tp(0), 10, Some(1));
        // Revoked and given back within the batch: read on from the committed offset, 14.
        batch.enter(tp(0), 14, Some(5));
        batch.enter(tp(0), 15, Some(5));
        assert!(batch.reassigned);
        assert_eq!(batch.next[&tp(0)], 16);
        // The inputs of the aborted batch read under assignment 5 are read again; offset 10
        // (before the other member's commit) is not.
        assert_eq!(batch.rewind_targets(owned(&[(0, 5)])), vec![(tp(0), 14, 5)]);
        // The batch never commits, although the assignment now matches its last entry.
        assert_eq!(batch.still_owned(owned(&[(0, 5)])), Some(&tp(0)));
    }

    #[test]
    fn the_missing_subject_and_registry_outages_may_pass_and_oversized_records_do_not() {
        let registry = "http://registry".to_owned();
        assert!(may_pass(&Error::SchemaNotRegistered {
            subject: "grocery.picklist.v1-value".into(),
            registry: registry.clone(),
            reason: "Subject not found".into(),
        }));
        assert!(may_pass(&Error::RegistryUnreachable {
            registry: registry.clone(),
            reason: "connection refused".into(),
        }));
        assert!(may_pass(&Error::RegistryUnauthorized {
            registry,
            status: 403,
            reason: "forbidden".into(),
        }));
        let too_large = Error::Kafka {
            operation: KafkaOperation::Produce,
            topic: Some("grocery.picklist.v1".into()),
            source: KafkaError::MessageProduction(
                rdkafka::types::RDKafkaErrorCode::MessageSizeTooLarge,
            ),
        };
        assert!(!may_pass(&too_large));
        assert!(refused_for_good(&too_large));
        assert!(!refused_for_good(&Error::Encode {
            reader: "PickList".into(),
            subject: "grocery.picklist.v1-value".into(),
            reason: "bad".into(),
        }));
    }
}
