use std::{
    sync::{
        Arc, Mutex, RwLock,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use tracing::{debug_span, info};

mod at_least_once;
mod failure;
mod replace;
mod transactional;
mod watchdog;

use crate::{
    Codec, Consumer, ConsumerOptions, Event, Format, IntoOutputs, Outputs, Producer, Received,
    Result,
    consumer::Mode,
    context::KafkaContext,
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
    /// Outputs a data-contract rule refused with the `DLQ` action and whose dead letter is
    /// written to the rule's `dlq.topic` instead (acknowledged; in transactional mode:
    /// committed). Not counted in `produced`.
    pub outputs_dead_lettered: AtomicU64,
    /// Outputs counted in `produced`, per topic: one entry per output topic (the outputs'
    /// [`Event::TOPIC`]s, so bounded by the output types), counted without a lock held for
    /// writing once the topic has its entry.
    per_topic: RwLock<Vec<(&'static str, AtomicU64)>>,
}

impl PipelineStats {
    /// Outputs written to `topic` and acknowledged (in transactional mode: committed).
    pub fn produced_to(&self, topic: &str) -> u64 {
        let per_topic = self.per_topic.read().unwrap_or_else(|p| p.into_inner());
        per_topic
            .iter()
            .find(|(counted, _)| *counted == topic)
            .map_or(0, |(_, count)| count.load(Ordering::Relaxed))
    }

    /// Counts `topics` (one entry per output) as produced.
    fn count_produced(&self, topics: &[&'static str]) {
        if topics.is_empty() {
            return;
        }
        let mut new = Vec::new();
        {
            let per_topic = self.per_topic.read().unwrap_or_else(|p| p.into_inner());
            for topic in topics {
                match per_topic.iter().find(|(counted, _)| counted == topic) {
                    Some((_, count)) => {
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                    None => new.push(*topic),
                }
            }
        }
        if !new.is_empty() {
            let mut per_topic = self.per_topic.write().unwrap_or_else(|p| p.into_inner());
            for topic in new {
                match per_topic.iter().find(|(counted, _)| *counted == topic) {
                    Some((_, count)) => {
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                    None => per_topic.push((topic, AtomicU64::new(1))),
                }
            }
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
/// changed and the pipeline restarted. A topic the identity may describe but not write shows
/// in a transaction only as records purged ([`Error::is_purged`](crate::Error::is_purged): the broker refused the
/// topic's partition to the transaction, which became abortable): the pipeline then asks the
/// transaction why (sending it the batch's offsets, which go nowhere since it is aborted) and
/// puts the transaction's error, a refusal, on the refused topic. The transaction's error does
/// not name the partition it refused: the topic is read from librdkafka's `ERROR` log line
/// (`Failed to add partition "<topic>" [<partition>] to transaction: …`, which the client's
/// context sees whatever the [`Hooks`](crate::Hooks) do with it); without that line (another
/// librdkafka's wording) it is the purged record's topic, which in a batch with outputs to
/// several topics may be another output's.
///
/// ### A dead letter that cannot be written
///
/// An input that can never be decoded goes to the consumer's dead-letter topic. When that
/// write is refused for good (no right to write the dead-letter topic, a record larger than it
/// takes), both modes stop [`Pipeline::run`] with [`Error::DeadLetterFailed`](crate::Error::DeadLetterFailed), naming why the
/// input was dead-lettered and why the write failed: at-least-once, the input is not
/// acknowledged (nor any after it); transactional, the batch is aborted (the dead letter is
/// acknowledged before the batch reads on: a dead-letter topic the identity may describe but
/// not write makes the transaction abortable, and the transaction names the refusal). Nothing
/// is committed past the input and nothing of its batch is visible to `read_committed`
/// readers; once the right (or the limit) is changed, a restarted pipeline of the same group
/// writes its dead letter once and goes on. A dead-letter write that fails otherwise (timed
/// out) is handled like any other delivery: it ends an at-least-once run with
/// [`Error::DeadLetterFailed`](crate::Error::DeadLetterFailed), and aborts a transactional batch, which is read again after the
/// backoff.
///
/// An output that can never be encoded (it does not fit its schema: [`Error::Encode`](crate::Error::Encode); a
/// data-contract rule without the `DLQ` action refuses it: [`Error::RuleFailed`](crate::Error::RuleFailed)) ends
/// [`Pipeline::run`] with that error in both modes, nothing committed past its input: the same
/// input would make the same output, so reading it again cannot help (a fixed transform or
/// contract, then a restart, does).
///
/// An output failing a data-contract rule whose action is `DLQ` (a `WRITE` rule of the
/// output's registered contract, with `use.latest.version`) goes to the rule's `dlq.topic`
/// through the output's producer, as [`Producer`]'s sends do: in transactional mode inside the
/// batch's transaction, committed with the input's offset. Once that dead letter is
/// acknowledged the output is done: the input's other outputs are written and the input goes
/// on; [`PipelineStats::outputs_dead_lettered`] counts them. When the dead letter cannot be
/// written the output's error is [`Error::DeadLetterFailed`](crate::Error::DeadLetterFailed) (naming the rule's failure and
/// the refused write), handled as an output's refusal above: a refusal for good ends the run,
/// nothing committed past the input, in both modes.
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
/// pipeline stops with [`Error::Fatal`](crate::Error::Fatal) instead of abandoning more.
///
/// ### Outages of the outputs' registry
///
/// An output that cannot be encoded for a reason that may pass (its subject not registered yet
/// with `auto.register.schemas=false`, the Schema Registry unreachable, answering 5xx, or
/// refusing the credentials with 401/403) is never dropped and never skipped: in transactional
/// mode the batch is aborted and rewound and, after a backoff, read again in a new transaction
/// (no transaction stays open through the wait, so `transaction.timeout.ms` is never reached);
/// in at-least-once mode the input waits, unacknowledged, and its outputs are encoded again
/// after the backoff. Other batch failures (an abortable Kafka error, an output topic that does
/// not exist yet) are retried the same way, and
/// [`Pipeline::stalled`] says so too while they last (`transaction aborted, its inputs are read
/// again …` with the error), until the next commit. The backoff is exponential with jitter, from
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

/// Longest wait between two attempts at inputs whose outputs cannot be written yet.
const MAX_OUTPUT_BACKOFF: Duration = Duration::from_secs(10);

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
    /// pipeline is backing off before it tries again; in transactional mode also any other
    /// reason a batch was aborted and is read again after a backoff (an abortable Kafka error,
    /// a delivery that failed), or a transaction call that is late. Cleared by the next
    /// input that gets through (the next commit). A partition revoked during a batch aborts it
    /// without a reason here (its new owner reads the inputs). `None` while inputs flow. A
    /// service's health check answers 503 with it.
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
    /// than the topic or `message.max.bytes` takes, [`Error::DeadLetterFailed`](crate::Error::DeadLetterFailed) when an input's
    /// dead letter is refused (or, at-least-once, not delivered) or an output's is not written, a fatal
    /// producer error (fenced), a failed delivery in at-least-once mode, or a transient error
    /// that outlasted the consumer's retries. Nothing is committed past the input concerned:
    /// inputs not yet committed are read again after a restart.
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

    /// Runs `transform` on `received` inside its `process` span (with the input's `trace_id`),
    /// recorded with the spans of `producer` (the one its outputs go through); returns the
    /// input's trace context, which the outputs continue, and the outputs.
    fn transform_traced<O, T>(
        &self,
        producer: &Producer<F>,
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
            producer.spans(),
            "process",
            SpanKind::Consumer,
            &meta.topic,
            parent.as_ref(),
        );
        let outputs = span.in_scope(|| transform(received).into_outputs());
        otel.end();
        (parent, outputs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_are_counted_per_topic() {
        let stats = PipelineStats::default();
        stats.count_produced(&[]);
        // A topic's first outputs, twice in one input, then the next inputs.
        stats.count_produced(&["statuses", "statuses", "pick-lists"]);
        stats.count_produced(&["statuses", "pick-lists"]);
        stats.count_produced(&["dead-letters"]);
        assert_eq!(stats.produced_to("statuses"), 3);
        assert_eq!(stats.produced_to("pick-lists"), 2);
        assert_eq!(stats.produced_to("dead-letters"), 1);
        assert_eq!(stats.produced_to("elsewhere"), 0);
        assert_eq!(stats.produced.load(Ordering::Relaxed), 6);
    }
}
