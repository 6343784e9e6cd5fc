//! Consume-transform-produce: read `In` events, turn each into output events ([`Outputs`]:
//! one or more, of one or several types), write them, and only then mark the input done.
//!
//! Without `transactional.id` the pipeline is at-least-once: outputs are produced
//! idempotently and an input's offset is stored only after all its outputs are acknowledged,
//! in input order, with many records in flight. An acknowledgement that arrives after its
//! partition was revoked is dropped (the partition's new owner reads the input again), so a
//! rebalance or a crash replays inputs: derive output ids from the input (as
//! `fulfillment-service` does) so that replays are recognisable.
//!
//! With `transactional.id` the pipeline is exactly-once for `read_committed` readers: outputs,
//! dead-letter records and input offsets are committed together in Kafka transactions, batch
//! by batch; the consumer commits nothing by itself. A failed batch is aborted and its inputs
//! are read again; errors are handled as Kafka classifies them: retriable calls are retried,
//! abortable ones abort the batch and rewind, fatal ones (a newer instance with the same
//! `transactional.id` fenced this one) end [`Pipeline::run`]. A batch during which one of its
//! partitions was revoked is aborted too, so the partition's new owner and this instance never
//! both commit outputs for the same input. Give each instance its own, stable
//! `transactional.id` (the same one across its restarts, so a restart fences its predecessor).
//!
//! Every output continues its input's W3C trace ([`crate::trace`]): the same trace id, a new
//! span id, the input's span as parent; the transform runs inside a `process` span (DEBUG)
//! carrying the input's `trace_id`.

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use backon::Retryable as _;
use futures::{StreamExt, stream::FuturesOrdered};
use opentelemetry::trace::{Span as _, SpanKind};
use rdkafka::{
    Offset, TopicPartitionList, consumer::Consumer as _, error::KafkaError, producer::Producer as _,
};
use tracing::{debug, debug_span, info, warn};

use crate::{
    Client, Consumer, ConsumerOptions, Error, Event, IntoOutputs, Outputs, Producer, Received,
    RecordMeta, Result,
    consumer::{Mode, Polled},
    context::{DeadLettered, KafkaContext},
    error::KafkaOperation,
    outputs::Output,
    producer::PendingDelivery,
    trace::{self, TraceContext},
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

/// A consume-transform-produce loop from `In` to `Out` events.
#[derive(Debug)]
pub struct Pipeline<In: Event> {
    consumer: Consumer<In>,
    producer: Producer,
    options: PipelineOptions,
    transactional: bool,
    stats: Arc<PipelineStats>,
}

/// What a transaction call's failure calls for, as Kafka classifies it.
enum Failure {
    /// Try the same call again.
    Retry(Error),
    /// Abort the transaction and process its inputs again.
    Abort(Error),
    /// The producer cannot go on.
    Fatal(Error),
}

impl Failure {
    fn into_error(self) -> Error {
        match self {
            Self::Retry(e) | Self::Abort(e) | Self::Fatal(e) => e,
        }
    }
}

/// The inputs and outputs of one transaction.
#[derive(Default)]
struct Batch {
    /// Per partition: the first input's offset and the assignment it was read under.
    first: BTreeMap<(String, i32), (i64, Option<u64>)>,
    /// Per partition: the offset to commit (last input + 1).
    next: BTreeMap<(String, i32), i64>,
    /// The topic of each output queued in the transaction.
    produced: Vec<&'static str>,
    dead_lettered: u64,
}

impl<In: Event> Pipeline<In> {
    /// Creates the consumer and the producer of `client` ([`Client::pipeline`]). Transactions
    /// are used when the configuration has a `transactional.id`.
    pub(crate) async fn create(client: &Client, options: PipelineOptions) -> Result<Self> {
        let transactional = client.config().transactional_id().is_some();
        let mode = if transactional {
            Mode::Transactional
        } else {
            Mode::AtLeastOnce
        };
        let producer = Producer::create(client, transactional).await?;
        let consumer =
            Consumer::<In>::create(client, options.consumer.clone(), &[In::TOPIC], mode).await?;
        info!(transactional, "pipeline ready");
        Ok(Self {
            consumer,
            producer,
            options,
            transactional,
            stats: Arc::default(),
        })
    }

    /// The pipeline's counters, shareable with a metrics endpoint.
    pub fn stats(&self) -> Arc<PipelineStats> {
        self.stats.clone()
    }

    /// The consumer (for lag, owned partitions and dead-letter counts).
    pub fn consumer(&self) -> &Consumer<In> {
        &self.consumer
    }

    /// Whether the pipeline's clients last found the brokers reachable (see
    /// [`KafkaContext::brokers_down`]).
    pub fn brokers_reachable(&self) -> bool {
        !self.consumer.context().brokers_down() && !self.producer_context().brokers_down()
    }

    /// The producer the outputs go through (e.g. to count the records still in flight).
    pub fn producer(&self) -> &Producer {
        &self.producer
    }

    /// The producer's client context (statistics, broker reachability).
    pub fn producer_context(&self) -> &KafkaContext {
        self.producer.context()
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
    /// # Errors
    /// A refusal by the broker (credentials, rights), a fatal producer error (fenced), a
    /// failed delivery in at-least-once mode, or a transient error that outlasted the consumer's
    /// retries. Inputs not yet committed are read again after a restart.
    pub async fn run<O, F, S>(&self, transform: F, shutdown: S) -> Result<()>
    where
        O: IntoOutputs,
        F: FnMut(&Received<In>) -> O,
        S: Future<Output = ()>,
    {
        if self.transactional {
            self.run_transactional(transform, shutdown).await
        } else {
            self.run_pipelined(transform, shutdown).await
        }
    }

    async fn run_pipelined<O, F, S>(&self, mut transform: F, shutdown: S) -> Result<()>
    where
        O: IntoOutputs,
        F: FnMut(&Received<In>) -> O,
        S: Future<Output = ()>,
    {
        tokio::pin!(shutdown);
        let mut in_flight = FuturesOrdered::new();
        let mut stopping = false;
        loop {
            let can_read = !stopping && in_flight.len() < self.options.max_in_flight;
            tokio::select! {
                () = &mut shutdown, if !stopping => stopping = true,
                received = self.consumer.recv(), if can_read => {
                    let received = received?;
                    self.stats.consumed.fetch_add(1, Ordering::Relaxed);
                    let (parent, outputs) = self.transform_traced(&received, &mut transform);
                    let mut deliveries = Vec::new();
                    let mut topics = Vec::new();
                    for out in outputs.into_records() {
                        deliveries.push(self.enqueue(out.as_ref(), parent.as_ref()).await?);
                        topics.push(out.topic());
                    }
                    let meta = received.meta;
                    in_flight.push_back(async move {
                        for delivery in deliveries {
                            delivery.await?;
                        }
                        Ok::<_, Error>((meta, topics))
                    });
                }
                Some(done) = in_flight.next() => {
                    let (meta, topics): (RecordMeta, Vec<&'static str>) = done?;
                    self.stats.count_produced(&topics);
                    self.consumer.ack(&meta)?;
                }
                else => break,
            }
            if stopping && in_flight.is_empty() {
                break;
            }
        }
        self.producer.flush(Duration::from_secs(30)).await?;
        self.consumer.close().await
    }

    /// Runs `transform` on `received` inside its `process` span (with the input's `trace_id`);
    /// returns the input's trace context, which the outputs continue, and the outputs.
    fn transform_traced<O, F>(
        &self,
        received: &Received<In>,
        transform: &mut F,
    ) -> (Option<TraceContext>, Outputs)
    where
        O: IntoOutputs,
        F: FnMut(&Received<In>) -> O,
    {
        let parent = received.trace();
        let meta = &received.meta;
        let span = debug_span!("process", topic = %meta.topic, partition = meta.partition, offset = meta.offset, trace_id = tracing::field::Empty);
        if let Some(parent) = parent.as_ref().filter(|_| !span.is_disabled()) {
            span.record("trace_id", tracing::field::display(parent.trace_id()));
        }
        let (_, mut otel) = trace::start_span(
            self.producer.spans(),
            "process",
            SpanKind::Consumer,
            &meta.topic,
            parent.as_ref(),
        );
        let outputs = span.in_scope(|| transform(received).into_outputs());
        otel.end();
        (parent, outputs)
    }

    /// Encodes and queues `out` as the next span of `parent`'s trace, waiting out errors that
    /// may pass (the registry unreachable when the output schema is first looked up).
    async fn enqueue(
        &self,
        out: &dyn Output,
        parent: Option<&TraceContext>,
    ) -> Result<PendingDelivery> {
        (|| out.enqueue(&self.producer, parent))
            .retry(crate::retry::exponential(
                self.options.consumer.initial_backoff,
                Duration::from_secs(10),
                None,
            ))
            .when(Error::is_transient)
            .notify(|error, wait| warn!(%error, backoff_ms = wait.as_millis() as u64, "cannot encode an output yet; retrying"))
            .await
    }

    async fn run_transactional<O, F, S>(&self, mut transform: F, shutdown: S) -> Result<()>
    where
        O: IntoOutputs,
        F: FnMut(&Received<In>) -> O,
        S: Future<Output = ()>,
    {
        tokio::pin!(shutdown);
        loop {
            // Wait for the first record of a batch (or shutdown) before opening a transaction.
            let first = tokio::select! {
                () = &mut shutdown => break,
                polled = self.consumer.poll() => polled?,
            };
            self.txn(KafkaOperation::BeginTransaction, |p| p.begin_transaction())
                .await
                .map_err(Failure::into_error)?;
            let mut batch = Batch::default();
            let filled = self.fill_batch(first, &mut transform, &mut batch).await;
            let outcome = match filled {
                Ok(()) => self.commit_batch(&batch).await,
                // An input whose schema cannot be fetched or used, with
                // `schema.unavailable.action=fail`, ends the pipeline as it ends a consumer.
                Err(error)
                    if error.is_refused()
                        || error.is_schema_unavailable()
                        || matches!(error, Error::Fatal { .. }) =>
                {
                    Err(Failure::Fatal(error))
                }
                Err(error) => Err(Failure::Abort(error)),
            };
            match outcome {
                Ok(()) => {
                    self.stats.count_produced(&batch.produced);
                    self.stats.transactions.fetch_add(1, Ordering::Relaxed);
                    for _ in 0..batch.dead_lettered {
                        self.consumer.count_dead_lettered();
                    }
                    debug!(
                        partitions = batch.next.len(),
                        produced = batch.produced.len(),
                        "transaction committed"
                    );
                }
                Err(Failure::Abort(error) | Failure::Retry(error)) => {
                    warn!(%error, "aborting the transaction; its inputs are read again");
                    self.abort(&batch).await?;
                }
                Err(Failure::Fatal(error)) => {
                    let _ = self.abort(&batch).await;
                    return Err(error);
                }
            }
        }
        self.consumer.close().await
    }

    /// Reads up to `batch_size` inputs (or for `batch_linger`) into `batch`, queues their
    /// outputs and dead-letter records in the open transaction, and waits for the
    /// acknowledgements.
    async fn fill_batch<O, F>(
        &self,
        first: Polled<In>,
        transform: &mut F,
        batch: &mut Batch,
    ) -> Result<()>
    where
        O: IntoOutputs,
        F: FnMut(&Received<In>) -> O,
    {
        let deadline = tokio::time::Instant::now() + self.options.batch_linger;
        let context = self.consumer.context();
        let mut next = Some(first);
        let mut count = 0;
        let mut deliveries = Vec::new();
        while let Some(polled) = next.take() {
            count += 1;
            let meta = match polled {
                Polled::Event(received) => {
                    self.stats.consumed.fetch_add(1, Ordering::Relaxed);
                    let (parent, outputs) = self.transform_traced(&received, transform);
                    for out in outputs.into_records() {
                        deliveries.push(self.enqueue(out.as_ref(), parent.as_ref()).await?);
                        batch.produced.push(out.topic());
                    }
                    received.meta
                }
                Polled::Tombstone(tombstone) => {
                    // Nothing to transform: its offset goes with the transaction.
                    debug!(topic = %tombstone.meta.topic, partition = tombstone.meta.partition, offset = tombstone.meta.offset, "tombstone passed over");
                    tombstone.meta
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
                        crate::dlq::enqueue(&self.producer, &dlq_topic, &message, &meta, &error)
                            .await?,
                    );
                    batch.dead_lettered += 1;
                    meta
                }
            };
            let partition = (meta.topic, meta.partition);
            batch.first.entry(partition.clone()).or_insert_with(|| {
                (
                    meta.offset,
                    context.assignment_of(&partition.0, partition.1),
                )
            });
            batch.next.insert(partition, meta.offset + 1);
            if count < self.options.batch_size {
                next = tokio::select! {
                    () = tokio::time::sleep_until(deadline) => None,
                    polled = self.consumer.poll() => Some(polled?),
                };
            }
        }
        for delivery in deliveries {
            delivery.await?;
        }
        Ok(())
    }

    /// Sends the batch's offsets to the transaction and commits it; aborts instead when one of
    /// its partitions was revoked while it was filled.
    async fn commit_batch(&self, batch: &Batch) -> Result<(), Failure> {
        let context = self.consumer.context();
        if let Some((topic, partition)) = batch.first.iter().find_map(|(tp, (_, assignment))| {
            (context.assignment_of(&tp.0, tp.1) != *assignment).then_some(tp)
        }) {
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
        self.retrying(KafkaOperation::SendOffsetsToTransaction, move |p| {
            p.send_offsets_to_transaction(&tpl, &metadata, Duration::from_secs(30))
        })
        .await?;
        self.retrying(KafkaOperation::CommitTransaction, |p| {
            p.commit_transaction(Duration::from_secs(30))
        })
        .await
    }

    /// Aborts the open transaction and rewinds the consumer to the batch's first inputs.
    async fn abort(&self, batch: &Batch) -> Result<()> {
        self.retrying(KafkaOperation::AbortTransaction, |p| {
            p.abort_transaction(Duration::from_secs(30))
        })
        .await
        .map_err(Failure::into_error)?;
        self.stats.aborted.fetch_add(1, Ordering::Relaxed);
        let to = batch
            .first
            .iter()
            .map(|(tp, (offset, _))| (tp.clone(), *offset))
            .collect();
        self.consumer.rewind(to).await
    }

    /// Runs a transaction call, retrying it while Kafka calls its failure retriable.
    async fn retrying<F>(&self, operation: KafkaOperation, call: F) -> Result<(), Failure>
    where
        F: Fn(&TxnProducer) -> rdkafka::error::KafkaResult<()> + Send + Sync + 'static,
    {
        let call = Arc::new(call);
        (|| {
            let call = call.clone();
            self.txn(operation, move |p| call(p))
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

    /// Runs a blocking transaction call of the producer on the blocking pool and classifies
    /// its failure.
    async fn txn<T, F>(&self, operation: KafkaOperation, call: F) -> Result<T, Failure>
    where
        T: Send + 'static,
        F: FnOnce(&TxnProducer) -> rdkafka::error::KafkaResult<T> + Send + 'static,
    {
        let producer = self.producer.rdkafka().clone();
        let result = tokio::task::spawn_blocking(move || call(&producer))
            .await
            .map_err(|_| {
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
            let context = self.producer.context();
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
