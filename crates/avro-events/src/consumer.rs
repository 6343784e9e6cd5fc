use std::{
    marker::PhantomData,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use backon::{BackoffBuilder as _, Retryable as _};
use futures::FutureExt as _;
use rdkafka::{
    Message,
    consumer::{CommitMode, Consumer as _, StreamConsumer},
    error::KafkaError,
    message::OwnedMessage,
    types::RDKafkaErrorCode,
};
use tracing::{Instrument, debug, debug_span, info, warn};

use crate::{
    Codec, Error, Event, Format, Headers, Producer, Received, Record, RecordMeta, Result,
    SchemaUnavailable, Tombstone,
    closing::ClosingConsumer,
    context::{DeadLettered, KafkaContext},
    error::KafkaOperation,
    producer::PendingDelivery,
    shared::{AuthGuard, Shared},
};

/// Options of a [`Consumer`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConsumerOptions {
    /// Consumer group id (`group.id`); the configuration's value wins when set there.
    pub group_id: String,
    /// Dead-letter topic for records that cannot be decoded; `None` for `<topic>.dlq`.
    pub dead_letter_topic: Option<String>,
    /// How often an error that may pass (the registry unreachable, failing, or refusing a token
    /// about to be refreshed) is retried before the consumer gives up; by default it never
    /// does, so a record is never skipped or dead-lettered for the registry's trouble.
    pub max_retries: u32,
    /// First backoff between retries; doubled each time, up to 10 s, each wait drawn between
    /// half of that and all of it (jitter).
    pub initial_backoff: Duration,
    /// What to do with a record whose writer schema cannot be fetched or used (see
    /// [`SchemaUnavailable`]); `None` (the default) takes `schema.unavailable.action` from the
    /// configuration, itself `wait` by default.
    pub schema_unavailable: Option<SchemaUnavailable>,
}

impl ConsumerOptions {
    /// Options for group `group_id`, with defaults for the rest.
    pub fn new(group_id: impl Into<String>) -> Self {
        Self {
            group_id: group_id.into(),
            dead_letter_topic: None,
            max_retries: u32::MAX,
            initial_backoff: Duration::from_millis(200),
            schema_unavailable: None,
        }
    }

    /// Sets [`ConsumerOptions::schema_unavailable`].
    pub fn with_schema_unavailable(mut self, action: SchemaUnavailable) -> Self {
        self.schema_unavailable = Some(action);
        self
    }

    /// Sets [`ConsumerOptions::initial_backoff`].
    pub fn with_initial_backoff(mut self, backoff: Duration) -> Self {
        self.initial_backoff = backoff;
        self
    }
}

impl From<&str> for ConsumerOptions {
    fn from(group_id: &str) -> Self {
        Self::new(group_id)
    }
}

impl From<String> for ConsumerOptions {
    fn from(group_id: String) -> Self {
        Self::new(group_id)
    }
}

/// Longest wait between two attempts to decode a record whose trouble may pass.
const MAX_DECODE_BACKOFF: Duration = Duration::from_secs(10);

/// How a consumer's records are finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Offsets are stored by [`Consumer::ack`] and committed by librdkafka in the background
    /// and at [`Consumer::close`]; undecodable records go to the dead-letter topic through the
    /// consumer's own producer.
    AtLeastOnce,
    /// At-least-once under a [`Pipeline`](crate::Pipeline): offsets as in
    /// [`Mode::AtLeastOnce`], but the pipeline writes the dead-letter copies, through its own
    /// producer and in input order ([`Consumer::poll`] hands undecodable records to it), so
    /// the consumer has no producer of its own.
    Pipelined,
    /// Offsets are committed only inside the owner's Kafka transactions
    /// (`send_offsets_to_transaction`): no automatic commit, no stored offsets, and dead-letter
    /// records are written by the owner's transactional producer.
    Transactional,
    /// A [`Replay`](crate::Replay): not a member of any group, so it never commits (no
    /// automatic commit, no stored offsets, nothing at close) and never dead-letters (the
    /// topic's live consumer does): an undecodable record is passed over with a warning and
    /// counted ([`Consumer::undecodable_passed`]).
    Replay,
}

impl Mode {
    /// Whether [`Consumer::ack`] stores offsets and librdkafka commits them.
    fn commits(self) -> bool {
        matches!(self, Mode::AtLeastOnce | Mode::Pipelined)
    }
}

/// A record taken from librdkafka and not yet handed out (see [`Consumer::recv`]).
struct Parked {
    message: OwnedMessage,
    /// The assignment of its partition when it was fetched.
    assignment: Option<u64>,
    /// Its dead-letter copy, handed to the producer and not yet acknowledged, and why it is
    /// dead-lettered.
    dead_letter: Option<(PendingDelivery, Error)>,
}

/// The ids of `topic`'s partitions as the brokers describe them (metadata within `timeout`;
/// blocks). A topic the brokers do not know, or describe with an error or no partition, is
/// [`Error::Kafka`] ([`KafkaOperation::Assign`], naming the topic).
pub(crate) fn partitions_of<C: rdkafka::consumer::ConsumerContext>(
    native: &impl rdkafka::consumer::Consumer<C>,
    topic: &str,
    timeout: Duration,
) -> Result<Vec<i32>> {
    let fail = |source| Error::Kafka {
        operation: KafkaOperation::Assign,
        topic: Some(topic.to_owned()),
        source,
    };
    let unknown = || {
        fail(KafkaError::MetadataFetch(
            rdkafka::types::RDKafkaErrorCode::UnknownTopicOrPartition,
        ))
    };
    let metadata = native.fetch_metadata(Some(topic), timeout).map_err(fail)?;
    let described = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .ok_or_else(unknown)?;
    if let Some(error) = described.error() {
        return Err(fail(KafkaError::MetadataFetch(error.into())));
    }
    if described.partitions().is_empty() {
        return Err(unknown());
    }
    Ok(described.partitions().iter().map(|p| p.id()).collect())
}

/// The error of a poison record (`cause`) whose dead letter to `topic` failed (`source`):
/// the record stays where it is, unacknowledged.
pub(crate) fn dead_letter_failed(cause: Error, topic: String, source: Error) -> Error {
    Error::DeadLetterFailed {
        cause: Box::new(cause),
        topic,
        source: Box::new(source),
    }
}

/// The next record, decoded or not.
pub(crate) enum Polled<E> {
    /// A record that decoded.
    Event(Received<E>),
    /// A record with a null value.
    Tombstone(Tombstone),
    /// A record that can never be decoded: it belongs in the dead-letter topic.
    Poison {
        /// The record as read.
        message: OwnedMessage,
        /// Where it came from.
        meta: RecordMeta,
        /// Why it does not decode.
        error: Error,
    },
}

/// A typed consumer of `E` events, decoding with a [`Format`]: Avro's [`Codec`] unless said
/// otherwise.
///
/// # Consumer in detail
///
/// The typed consumer: decoded events with their metadata, at-least-once delivery, and a
/// dead-letter topic for records that cannot be decoded.
///
/// Offsets are stored only when the application says a record is done
/// ([`Consumer::ack`], or automatically by [`Consumer::run`] after the handler succeeds), and
/// committed by librdkafka in the background and once more at [`Consumer::close`]. A record
/// that can never be decoded (not Confluent framing, an Avro body that does not decode with its
/// writer schema: [`Error::is_poison`]) is copied with its original bytes to the dead-letter
/// topic, with headers naming the error and where it came from, and then acknowledged. Errors
/// that may pass (the registry unreachable) are retried with backoff; nothing is skipped
/// silently.
///
/// A record whose writer schema cannot be fetched (the registry has no schema under its id: not
/// registered yet, or `schema.registry.url` names the wrong registry) or used (a schema with
/// references) is not poison: it is never dead-lettered nor committed past. By default the
/// consumer waits for the schema, trying the record again with backoff and saying why in
/// [`Consumer::waiting_on`] (for a health check); with `schema.unavailable.action=fail` it
/// returns the error instead ([`SchemaUnavailable`]).
///
/// A record with a null value is a *tombstone* (on a compacted topic it deletes its key): it is
/// not an error and never dead-lettered. [`Consumer::recv_record`] hands it out as
/// [`Record::Tombstone`]; [`Consumer::recv`], for callers that only want events, passes over
/// it (counted in [`Consumer::tombstones_passed`]). A tombstone passed over is not acknowledged
/// on its own, which could commit past records still being handled: the next acknowledged
/// record of its partition covers it, and one read again after a restart is passed over again.
pub struct Consumer<E, Fmt = Codec> {
    /// Closed within [`CLOSE_WAIT`](crate::closing::CLOSE_WAIT) when dropped.
    inner: ClosingConsumer,
    codec: Arc<Fmt>,
    /// Writes dead-letter records ([`Mode::AtLeastOnce`] only: a pipeline writes its own).
    dlq: Option<Producer<Fmt>>,
    /// Names default dead-letter topics (`dlq.topic.suffix`).
    dlq_suffix: String,
    options: ConsumerOptions,
    /// [`ConsumerOptions::schema_unavailable`], or the configuration's.
    schema_unavailable: SchemaUnavailable,
    mode: Mode,
    topics: String,
    /// Records sent to the dead-letter topic so far.
    dead_lettered: AtomicU64,
    /// Acknowledgements that arrived after their partition was revoked.
    late_acks: AtomicU64,
    /// Tombstones [`Consumer::recv`] passed over.
    tombstones_passed: AtomicU64,
    /// Undecodable records a replay passed over.
    undecodable_passed: AtomicU64,
    /// The record being decoded or dead-lettered; a `tokio` mutex held across the awaits, so
    /// a cancelled call leaves the record (and its pending dead-letter delivery) here.
    parked: tokio::sync::Mutex<Option<Parked>>,
    _auth: AuthGuard,
    _event: PhantomData<fn() -> E>,
}

impl<E, Fmt> std::fmt::Debug for Consumer<E, Fmt> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("options", &self.options)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl<E: Event> Consumer<E> {
    /// Creates a consumer of `E` subscribed to `topics`
    /// ([`Client::consumer`](crate::Client::consumer)); in
    /// [`Mode::AtLeastOnce`] with its own producer for dead-letter records.
    pub(crate) async fn create(
        shared: &Shared,
        options: ConsumerOptions,
        topics: &[&str],
        mode: Mode,
    ) -> Result<Self> {
        Self::create_with(shared, shared.codec.clone(), options, topics, mode).await
    }
}

impl<E: Event, Fmt: Format> Consumer<E, Fmt> {
    /// [`Consumer::create`] decoding with `format`.
    pub(crate) async fn create_with(
        shared: &Shared,
        format: Arc<Fmt>,
        options: ConsumerOptions,
        topics: &[&str],
        mode: Mode,
    ) -> Result<Self> {
        let settings = &shared.settings;
        let schema_unavailable = options
            .schema_unavailable
            .unwrap_or(settings.schema_unavailable);
        let rd = settings.kafka.consumer(&options.group_id, mode.commits());
        let dlq = match mode {
            Mode::AtLeastOnce => Some(Producer::create_with(shared, format.clone(), false).await?),
            Mode::Pipelined | Mode::Transactional | Mode::Replay => None,
        };
        let (inner, auth, _): (Arc<StreamConsumer<KafkaContext>>, _, _) = shared
            .create_native(&rd, "consumer", KafkaOperation::CreateConsumer)
            .await?;
        // No topics: the caller assigns partitions itself ([`crate::replay`]).
        if !topics.is_empty() {
            inner.subscribe(topics).map_err(|source| Error::Kafka {
                operation: KafkaOperation::Subscribe,
                topic: Some(topics.join(",")),
                source,
            })?;
            info!(group = %options.group_id, ?topics, ?mode, "consumer subscribed");
        }
        Ok(Self {
            inner: ClosingConsumer::new(inner),
            codec: format,
            dlq,
            dlq_suffix: settings.dlq_suffix.clone(),
            options,
            schema_unavailable,
            mode,
            topics: topics.join(","),
            dead_lettered: AtomicU64::new(0),
            late_acks: AtomicU64::new(0),
            tombstones_passed: AtomicU64::new(0),
            undecodable_passed: AtomicU64::new(0),
            parked: tokio::sync::Mutex::new(None),
            _auth: auth,
            _event: PhantomData,
        })
    }

    /// How many records this consumer has sent to the dead-letter topic.
    pub fn dead_lettered(&self) -> u64 {
        self.dead_lettered.load(Ordering::Relaxed)
    }

    /// Counts a record dead-lettered by the owner of a transactional consumer.
    pub(crate) fn count_dead_lettered(&self) {
        self.dead_lettered.fetch_add(1, Ordering::Relaxed);
    }

    /// How many acknowledgements arrived after their partition had been revoked (their records
    /// are read again by the partition's new owner).
    pub fn late_acks(&self) -> u64 {
        self.late_acks.load(Ordering::Relaxed)
    }

    /// How many tombstones (records with a null value) [`Consumer::recv`] passed over.
    pub fn tombstones_passed(&self) -> u64 {
        self.tombstones_passed.load(Ordering::Relaxed)
    }

    /// How many undecodable records a [`Replay`](crate::Replay) passed over (a replay never
    /// dead-letters: the topic's live consumer does). Always 0 for other consumers, which
    /// dead-letter them ([`Consumer::dead_lettered`]).
    pub fn undecodable_passed(&self) -> u64 {
        self.undecodable_passed.load(Ordering::Relaxed)
    }

    /// Counts a tombstone passed over by the owner of the consumer (the pipeline).
    pub(crate) fn count_tombstone_passed(&self) {
        self.tombstones_passed.fetch_add(1, Ordering::Relaxed);
    }

    /// Decodes a record key written with `E`'s key schema ([`Event::KEY_SCHEMA`]), e.g.
    /// [`Received::raw_key`], into `K`.
    ///
    /// # Errors
    /// As [`Codec::decode_key`].
    pub async fn decode_key<K: serde::de::DeserializeOwned + Send>(
        &self,
        raw_key: &[u8],
    ) -> Result<K> {
        self.codec.decode_key::<E, K>(raw_key).await
    }

    /// [`Consumer::decode_key`] for a key whose schema id may be in the record's
    /// `__key_schema_id` header ([`Received::headers`]), read first as Confluent's dual
    /// deserializer reads it.
    ///
    /// # Errors
    /// As [`Format::decode_record_key`].
    pub async fn decode_key_with_headers<K: serde::de::DeserializeOwned + Send>(
        &self,
        raw_key: &[u8],
        headers: &Headers,
    ) -> Result<K> {
        self.codec
            .decode_record_key::<E, K>(raw_key, headers.get(crate::wire::KEY_SCHEMA_ID_HEADER))
            .await
    }

    /// The underlying rdkafka consumer (for group metadata, positions and lag).
    pub fn rdkafka(&self) -> &StreamConsumer<KafkaContext> {
        self.inner.as_ref()
    }

    /// Whether no record is parked (taken from librdkafka but not yet handed out or
    /// dead-lettered): the consumer's position then covers only finished records.
    pub(crate) fn is_idle(&self) -> bool {
        self.parked.try_lock().is_ok_and(|slot| slot.is_none())
    }

    /// The underlying rdkafka consumer, shared (for blocking calls on another thread).
    pub(crate) fn rdkafka_arc(&self) -> Arc<StreamConsumer<KafkaContext>> {
        self.inner.clone()
    }

    /// How many partitions `topic` has, as the brokers describe it now (asked through this
    /// consumer's connection, within `timeout`).
    ///
    /// # Errors
    /// [`Error::Kafka`] ([`KafkaOperation::Assign`], naming the topic) when the metadata cannot
    /// be read within `timeout`, or the brokers do not know the topic or describe it with an
    /// error or no partition.
    pub async fn partition_count(&self, topic: &str, timeout: Duration) -> Result<usize> {
        let native = self.rdkafka_arc();
        let name = topic.to_owned();
        tokio::task::spawn_blocking(move || {
            partitions_of(native.as_ref(), &name, timeout).map(|ids| ids.len())
        })
        .await
        .map_err(|_| Error::Kafka {
            operation: KafkaOperation::Assign,
            topic: Some(topic.to_owned()),
            source: KafkaError::Canceled,
        })?
    }

    /// The client context: owned partitions, broker reachability, refusals.
    pub fn context(&self) -> &KafkaContext {
        self.inner.context()
    }

    /// Why the consumer is waiting instead of handing out its next record, or `None`: the
    /// record's writer schema cannot be fetched or used ([`SchemaUnavailable::Wait`]), or the
    /// Schema Registry cannot be reached, and the record is tried again with backoff. Names
    /// the record and the schema id. For a health check (as [`KafkaContext::waiting_on`], which
    /// a clone of [`Consumer::context`] also answers).
    pub fn waiting_on(&self) -> Option<String> {
        self.context().waiting_on()
    }

    /// Asks the brokers for metadata (for at most `timeout`): true when they answer. Clears
    /// the context's brokers-down mark when they do, so a health check of an idle consumer
    /// sees the end of an outage.
    pub async fn probe_brokers(&self, timeout: Duration) -> bool {
        let consumer = self.inner.clone();
        let answered =
            tokio::task::spawn_blocking(move || consumer.fetch_metadata(None, timeout).is_ok())
                .await
                .unwrap_or(false);
        if answered {
            self.inner.context().brokers_reachable();
        }
        answered
    }

    /// The dead-letter topic for records read from `source_topic`.
    pub(crate) fn dead_letter_topic(&self, source_topic: &str) -> String {
        crate::dlq::topic_for(
            self.options.dead_letter_topic.as_deref(),
            source_topic,
            &self.dlq_suffix,
        )
    }

    /// Waits for the next event that decodes. Records that can never be decoded go to the
    /// dead-letter topic on the way (and are acknowledged); their count is logged.
    ///
    /// The returned event is not acknowledged: call [`Consumer::ack`] once it is handled.
    ///
    /// Transient trouble is waited out: brokers unreachable (librdkafka reconnects), the Schema
    /// Registry unreachable or refusing a token about to be refreshed (retried with backoff,
    /// [`ConsumerOptions::max_retries`] times).
    ///
    /// Cancel-safe: if the future is dropped before it completes (e.g. in `tokio::select!`),
    /// no record is lost and none is dead-lettered twice; the next call goes on with it.
    ///
    /// # Errors
    /// [`Error::Authentication`] when a broker refuses the credentials, [`Error::Kafka`] for an
    /// authorization failure (naming the topic), [`Error::DeadLetterFailed`] when a record's
    /// dead-letter copy cannot be written (naming why the record was dead-lettered and why the
    /// write failed; the record is then not acknowledged, and the next call writes it again),
    /// [`Error::Fatal`], or a transient error that outlasted the retries.
    pub async fn recv(&self) -> Result<Received<E>> {
        match self.next_record(false).await? {
            Record::Event(received) => Ok(received),
            Record::Tombstone(_) => unreachable!("recv passes over tombstones"),
        }
    }

    /// As [`Consumer::recv`], but tombstones (records with a null value) are handed out too,
    /// as [`Record::Tombstone`]; acknowledge each record with [`Consumer::ack`].
    ///
    /// ```no_run
    /// # async fn run<E: avro_events::Event + std::fmt::Debug>(consumer: avro_events::Consumer<E>) -> avro_events::Result<()> {
    /// use avro_events::Record;
    ///
    /// loop {
    ///     let record = consumer.recv_record().await?;
    ///     match &record {
    ///         Record::Event(received) => println!("upsert {:?}", received.event),
    ///         Record::Tombstone(tombstone) => println!("delete {:?}", tombstone.meta.key),
    ///     }
    ///     consumer.ack(record.meta())?;
    /// }
    /// # }
    /// ```
    ///
    /// # Errors
    /// As [`Consumer::recv`].
    pub async fn recv_record(&self) -> Result<Record<E>> {
        self.next_record(true).await
    }

    async fn next_record(&self, tombstones: bool) -> Result<Record<E>> {
        let mut slot = self.parked.lock().await;
        loop {
            let parked = self.fill(&mut slot).await?;
            let meta = meta_of::<E>(&parked.message);
            // Per-record spans are at DEBUG: at INFO a subscriber formats their fields for every
            // record (about a fifth of a fulfillment instance's instructions, callgrind).
            let span = receive_span(&parked.message, &meta);
            if parked.message.payload().is_none() {
                let tombstone = tombstone_of(&parked.message, meta);
                *slot = None;
                if tombstones {
                    return Ok(Record::Tombstone(tombstone));
                }
                debug!(parent: &span, key = ?tombstone.meta.key, "tombstone passed over");
                self.tombstones_passed.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if parked.dead_letter.is_none() {
                let error = match self
                    .decode(&parked.message, &meta)
                    .instrument(span.clone())
                    .await
                {
                    Ok(event) => {
                        let received = received_of(&parked.message, event, meta);
                        *slot = None;
                        return Ok(Record::Event(received));
                    }
                    Err(error) => error,
                };
                if self.mode == Mode::Replay && error.is_poison() {
                    self.undecodable_passed.fetch_add(1, Ordering::Relaxed);
                    warn!(
                        parent: &span,
                        topic = %meta.topic,
                        partition = meta.partition,
                        offset = meta.offset,
                        error_kind = error.kind(),
                        %error,
                        "undecodable record passed over by a replay (the topic's live consumer \
                         dead-letters it)"
                    );
                    *slot = None;
                    continue;
                }
                let Some(dlq) = self.dlq.as_ref().filter(|_| error.is_poison()) else {
                    return Err(error);
                };
                let dlq_topic = self.dead_letter_topic(&meta.topic);
                let pending = match dlq
                    .enqueue_dead_letter(&dlq_topic, &parked.message, &meta.location(), &error)
                    .instrument(span.clone())
                    .await
                {
                    Ok(pending) => pending,
                    Err(source) => return Err(dead_letter_failed(error, dlq_topic, source)),
                };
                span.in_scope(|| {
                    self.context().hooks().dead_lettered(&DeadLettered {
                        meta: &meta,
                        dlq_topic: &dlq_topic,
                        error: &error,
                        transactional: false,
                    });
                });
                parked.dead_letter = Some((pending, error));
            }
            let (pending, _) = parked.dead_letter.as_mut().expect("set above");
            match pending.await {
                Ok(delivered) => {
                    *slot = None;
                    self.dead_lettered.fetch_add(1, Ordering::Relaxed);
                    debug!(parent: &span, dlq_partition = delivered.partition, dlq_offset = delivered.offset, "dead-letter record acknowledged");
                    self.ack(&meta)?;
                }
                Err(source) => {
                    // The next call writes the dead-letter copy again.
                    let (_, cause) = parked.dead_letter.take().expect("set above");
                    let dlq_topic = self.dead_letter_topic(&meta.topic);
                    return Err(dead_letter_failed(cause, dlq_topic, source));
                }
            }
        }
    }

    /// The next record, decoded or found undecodable; nothing is written or acknowledged.
    /// Cancel-safe as [`Consumer::recv`].
    pub(crate) async fn poll(&self) -> Result<Polled<E>> {
        let mut slot = self.parked.lock().await;
        let parked = self.fill(&mut slot).await?;
        let meta = meta_of::<E>(&parked.message);
        if parked.message.payload().is_none() {
            let tombstone = tombstone_of(&parked.message, meta);
            *slot = None;
            return Ok(Polled::Tombstone(tombstone));
        }
        let span = receive_span(&parked.message, &meta);
        match self.decode(&parked.message, &meta).instrument(span).await {
            Ok(event) => {
                let received = received_of(&parked.message, event, meta);
                *slot = None;
                Ok(Polled::Event(received))
            }
            Err(error) if error.is_poison() => {
                let Some(Parked { message, .. }) = slot.take() else {
                    unreachable!("a record was parked above")
                };
                Ok(Polled::Poison {
                    message,
                    meta,
                    error,
                })
            }
            Err(error) => Err(error),
        }
    }

    /// Moves the position of each partition of `to` back to its offset (after an aborted
    /// transaction), and forgets a record parked from one of them, while the partition is
    /// still owned through the given assignment. Partitions revoked since, or revoked and
    /// assigned again, are left alone: they are read from the committed position.
    ///
    /// # Errors
    /// [`Error::Kafka`] when librdkafka refuses to seek a partition this consumer still owns.
    pub(crate) async fn rewind(&self, to: Vec<((String, i32), i64, u64)>) -> Result<()> {
        let consumer = self.inner.clone();
        let sought = tokio::task::spawn_blocking(move || {
            for ((topic, partition), offset, assignment) in &to {
                if consumer.context().assignment_of(topic, *partition) != Some(*assignment) {
                    continue;
                }
                let result = consumer.seek(
                    topic,
                    *partition,
                    rdkafka::Offset::Offset(*offset),
                    Duration::from_secs(10),
                );
                if let Err(source) = result {
                    if consumer.context().assignment_of(topic, *partition) != Some(*assignment) {
                        continue;
                    }
                    return Err(Error::Kafka {
                        operation: KafkaOperation::Seek,
                        topic: Some(topic.clone()),
                        source,
                    });
                }
                debug!(
                    topic,
                    partition, offset, "rewound after an aborted transaction"
                );
            }
            Ok(to)
        })
        .await
        .map_err(|_| Error::Kafka {
            operation: KafkaOperation::Seek,
            topic: None,
            source: KafkaError::Canceled,
        })??;
        let mut slot = self.parked.lock().await;
        if slot.as_ref().is_some_and(|parked| {
            sought.iter().any(|((topic, partition), _, _)| {
                parked.message.topic() == topic && parked.message.partition() == *partition
            })
        }) {
            *slot = None;
        }
        Ok(())
    }

    /// Makes sure a record is parked, fetching one when needed. A parked record whose partition
    /// was revoked (or revoked and assigned again) since it was fetched is dropped: its
    /// partition is read again from the committed position, by this consumer or its new owner.
    /// One that is being dead-lettered is finished first.
    async fn fill<'a>(&self, slot: &'a mut Option<Parked>) -> Result<&'a mut Parked> {
        let context = self.inner.context();
        if let Some(parked) = slot.as_ref()
            && parked.dead_letter.is_none()
            && context.assignment_of(parked.message.topic(), parked.message.partition())
                != parked.assignment
        {
            debug!(
                topic = parked.message.topic(),
                partition = parked.message.partition(),
                offset = parked.message.offset(),
                "partition revoked since the record was fetched; dropping it"
            );
            *slot = None;
        }
        if slot.is_none() {
            let message = self.next_message().await?;
            let assignment = context.assignment_of(message.topic(), message.partition());
            *slot = Some(Parked {
                message,
                assignment,
                dead_letter: None,
            });
        }
        match slot.as_mut() {
            Some(parked) => Ok(parked),
            None => unreachable!("a record was parked above"),
        }
    }

    /// The next record from librdkafka. Errors librdkafka recovers from by itself (brokers
    /// down, connections failing) are logged and waited out; refusals and fatal errors end it.
    async fn next_message(&self) -> Result<OwnedMessage> {
        let context = self.inner.context();
        loop {
            // A refusal first, then a record librdkafka already holds: neither waits, so the
            // wait for a refusal (a watch subscription and its waiter) is made only when no
            // record is there yet. The same order as the biased `select!` below.
            if let Some(refusal) = context.refusal() {
                return Err(context.refusal_error(refusal, KafkaOperation::Consume));
            }
            let result = match self.inner.recv().now_or_never() {
                Some(result) => result,
                None => tokio::select! {
                    biased;
                    refusal = context.refused() => return Err(context.refusal_error(refusal, KafkaOperation::Consume)),
                    result = self.inner.recv() => result,
                },
            };
            match result {
                Ok(message) => {
                    context.brokers_reachable();
                    return Ok(message.detach());
                }
                Err(KafkaError::PartitionEOF(_)) => {}
                Err(KafkaError::MessageConsumptionFatal(code)) => {
                    return Err(Error::Fatal {
                        operation: KafkaOperation::Consume,
                        reason: code.to_string(),
                    });
                }
                Err(source @ KafkaError::MessageConsumption(code)) if is_refusal(code) => {
                    if let Some(refusal) = context.refusal() {
                        return Err(context.refusal_error(refusal, KafkaOperation::Consume));
                    }
                    if code == RDKafkaErrorCode::Authentication {
                        // No broker refused anything: the client has no OAUTHBEARER token yet
                        // (the identity provider is unreachable), which the library keeps
                        // fetching with backoff. A refusal that arrives later is picked up by
                        // `context.refused()` above.
                        debug!(error = %source, "no token yet; waiting for the token refresh");
                        continue;
                    }
                    return Err(Error::Kafka {
                        operation: KafkaOperation::Consume,
                        topic: Some(self.topics.clone()),
                        source,
                    });
                }
                Err(error) => {
                    debug!(%error, "consumer error; librdkafka recovers by itself");
                }
            }
        }
    }

    /// The events as an async [`Stream`](futures::Stream): each item is what
    /// [`Consumer::recv`] returns. Acknowledge each event with [`Consumer::ack`] once handled.
    ///
    /// ```no_run
    /// # async fn run<E: avro_events::Event + std::fmt::Debug>(consumer: avro_events::Consumer<E>) -> avro_events::Result<()> {
    /// use futures::StreamExt as _;
    ///
    /// let mut events = std::pin::pin!(consumer.stream());
    /// while let Some(received) = events.next().await {
    ///     let received = received?;
    ///     println!("{:?} from partition {}", received.event, received.meta.partition);
    ///     consumer.ack(&received.meta)?;
    /// }
    /// # Ok(()) }
    /// ```
    pub fn stream(&self) -> impl futures::Stream<Item = Result<Received<E>>> + '_ {
        futures::stream::unfold(self, |consumer| async move {
            Some((consumer.recv().await, consumer))
        })
    }

    /// Decodes a record, retrying errors that may pass with backoff: the registry unreachable,
    /// answering with a server error, or refusing a token (which the next refresh may mend),
    /// and with [`SchemaUnavailable::Wait`] a writer schema that cannot be fetched or used.
    /// While it waits, [`Consumer::waiting_on`] says why.
    async fn decode(&self, message: &OwnedMessage, meta: &RecordMeta) -> Result<E> {
        let payload = message.payload().unwrap_or_default();
        let retries = (self.options.max_retries != u32::MAX)
            .then(|| usize::try_from(self.options.max_retries).unwrap_or(usize::MAX));
        let wait_for_schema = self.schema_unavailable == SchemaUnavailable::Wait;
        let context = self.context();
        let mut attempt = 0_u32;
        // As Confluent's dual deserializer: the schema id header first, then the prefix.
        let schema_id_header = schema_id_header(message, crate::wire::VALUE_SCHEMA_ID_HEADER);
        // The backoff is made at the first error only: a record that decodes at once (the
        // usual case) costs no retry machinery.
        let mut backoff = None;
        let result = loop {
            let error = match self
                .codec
                .decode_record::<E>(payload, schema_id_header)
                .await
            {
                Err(error)
                    if may_pass(&error) || (wait_for_schema && error.is_schema_unavailable()) =>
                {
                    error
                }
                decoded => break decoded,
            };
            let next = backoff
                .get_or_insert_with(|| {
                    crate::retry::exponential(
                        self.options.initial_backoff,
                        MAX_DECODE_BACKOFF,
                        retries,
                    )
                    .build()
                })
                .next();
            let Some(wait) = next else {
                break Err(error);
            };
            attempt += 1;
            let backoff_ms = wait.as_millis() as u64;
            context.set_waiting(Some(format!(
                "record {} cannot be decoded yet ({error}); attempt {attempt} failed, the \
                 next in {backoff_ms} ms",
                meta.location()
            )));
            warn!(
                topic = %meta.topic,
                partition = meta.partition,
                offset = meta.offset,
                error_kind = error.kind(),
                %error,
                attempt,
                backoff_ms,
                "decode failed for a reason that may pass; waiting, then trying the record again"
            );
            tokio::time::sleep(wait).await;
        };
        // Also after a wait that an earlier, cancelled call began on the same record.
        context.set_waiting(None);
        result.map_err(|error| error.at(meta.location()))
    }

    /// Marks the record as done: its offset is committed with the next commit. An
    /// acknowledgement that comes after the record's partition was revoked is dropped (and
    /// counted, [`Consumer::late_acks`]): the partition's new owner reads the record again.
    /// In transactional mode offsets go through transactions only, and a
    /// [`Replay`](crate::Replay) never commits: then this does nothing.
    ///
    /// # Errors
    /// [`Error::Kafka`] when librdkafka refuses the offset for another reason.
    pub fn ack(&self, meta: &RecordMeta) -> Result<()> {
        if !self.mode.commits() {
            return Ok(());
        }
        match self
            .inner
            .store_offset(&meta.topic, meta.partition, meta.offset)
        {
            Ok(()) => Ok(()),
            Err(KafkaError::StoreOffset(RDKafkaErrorCode::State)) => {
                self.late_acks.fetch_add(1, Ordering::Relaxed);
                debug!(
                    topic = %meta.topic,
                    partition = meta.partition,
                    offset = meta.offset,
                    "acknowledged after its partition was revoked; the new owner reads it again"
                );
                Ok(())
            }
            Err(source) => Err(Error::Kafka {
                operation: KafkaOperation::StoreOffset,
                topic: Some(meta.topic.clone()),
                source,
            }),
        }
    }

    /// Commits the acknowledged offsets now and waits for the broker. A commit refused because
    /// the group is rebalancing (another member joining or leaving at the same moment) is
    /// retried a few times. Does nothing in transactional mode and in a
    /// [`Replay`](crate::Replay).
    ///
    /// # Errors
    /// [`Error::Kafka`] when the commit fails.
    pub async fn commit(&self) -> Result<()> {
        if !self.mode.commits() {
            return Ok(());
        }
        let commit = || async {
            let consumer = self.inner.clone();
            match tokio::task::spawn_blocking(move || {
                consumer.commit_consumer_state(CommitMode::Sync)
            })
            .await
            .unwrap_or(Err(KafkaError::Canceled))
            {
                Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => Ok(()),
                other => other,
            }
        };
        // About two seconds in all: long enough for a rebalance to settle, short enough that a
        // member leaving at shutdown is not held past its session timeout (it would then be
        // fenced, and closing the consumer waits on a group it no longer belongs to).
        commit
            .retry(crate::retry::exponential(
                Duration::from_millis(100),
                Duration::from_millis(400),
                Some(8),
            ))
            .when(|error| {
                matches!(
                    error,
                    KafkaError::ConsumerCommit(
                        RDKafkaErrorCode::RebalanceInProgress
                            | RDKafkaErrorCode::IllegalGeneration
                            | RDKafkaErrorCode::UnknownMemberId
                            | RDKafkaErrorCode::StaleMemberEpoch,
                    )
                )
            })
            .notify(|error, _| debug!(%error, "commit refused during a rebalance; retrying"))
            .await
            .map_err(|source| Error::Kafka {
                operation: KafkaOperation::Commit,
                topic: None,
                source,
            })
    }

    /// Handles events with `handler` until `shutdown` resolves: each event is acknowledged
    /// after the handler returns `Ok`. A handler error stops the loop (the event stays
    /// unacknowledged, so it is delivered again after a restart).
    ///
    /// # Errors
    /// The first consumer or handler error.
    pub async fn run<F, Fut, S>(&self, mut handler: F, shutdown: S) -> Result<()>
    where
        F: FnMut(Received<E>) -> Fut,
        Fut: Future<Output = Result<()>>,
        S: Future<Output = ()>,
    {
        tokio::pin!(shutdown);
        loop {
            let received = tokio::select! {
                () = &mut shutdown => break,
                received = self.recv() => received?,
            };
            let meta = received.meta.clone();
            handler(received).await?;
            self.ack(&meta)?;
        }
        self.close().await
    }

    /// Commits what was acknowledged, before shutdown (the group is left when the consumer is
    /// dropped: the drop waits for librdkafka's close at most 10 s, so a consumer dropped after
    /// its brokers went away does not hold the thread for the group's session timeout).
    ///
    /// # Errors
    /// [`Error::Kafka`] when the final commit fails.
    pub async fn close(&self) -> Result<()> {
        let result = self.commit().await;
        debug!("consumer closed");
        result
    }
}

/// Consumer errors that retrying cannot mend: the broker refused the credentials or the rights.
fn is_refusal(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::TopicAuthorizationFailed
            | RDKafkaErrorCode::GroupAuthorizationFailed
            | RDKafkaErrorCode::ClusterAuthorizationFailed
            | RDKafkaErrorCode::SaslAuthenticationFailed
            | RDKafkaErrorCode::Authentication
    )
}

/// Decode errors that may pass when retried.
fn may_pass(error: &Error) -> bool {
    error.is_transient() || matches!(error, Error::RegistryUnauthorized { .. })
}

/// The per-record `receive` span (DEBUG), with the record's `trace_id` when it has one. The
/// headers are read for it only when the span is enabled.
fn receive_span(message: &OwnedMessage, meta: &RecordMeta) -> tracing::Span {
    let span = debug_span!(
        "receive",
        topic = %meta.topic,
        partition = meta.partition,
        offset = meta.offset,
        trace_id = tracing::field::Empty
    );
    if !span.is_disabled()
        && let Some(trace) = Headers::from_rdkafka(message.headers()).trace()
    {
        span.record("trace_id", tracing::field::display(trace.trace_id()));
    }
    span
}

fn received_of<E>(message: &OwnedMessage, event: E, meta: RecordMeta) -> Received<E> {
    Received {
        event,
        meta,
        headers: Headers::from_rdkafka(message.headers()),
        raw_key: message.key().map(<[u8]>::to_vec),
    }
}

fn tombstone_of(message: &OwnedMessage, meta: RecordMeta) -> Tombstone {
    Tombstone {
        meta,
        headers: Headers::from_rdkafka(message.headers()),
        raw_key: message.key().map(<[u8]>::to_vec),
    }
}

fn meta_of<E: Event>(message: &OwnedMessage) -> RecordMeta {
    RecordMeta {
        topic: message.topic().to_owned(),
        partition: message.partition(),
        offset: message.offset(),
        key: message
            .key()
            .filter(|_| E::KEY_SCHEMA.is_none())
            .and_then(|k| std::str::from_utf8(k).ok())
            .map(str::to_owned),
        timestamp_ms: message.timestamp().to_millis(),
    }
}

/// The value of the record's header `name` (the last one of that name), if any.
fn schema_id_header<'m>(message: &'m OwnedMessage, name: &str) -> Option<&'m [u8]> {
    use rdkafka::message::Headers as _;
    message
        .headers()?
        .iter()
        .filter(|h| h.key == name)
        .last()
        .and_then(|h| h.value)
}

#[cfg(test)]
mod tests {
    use crate::{Client, Config, Event, PipelineOptions};

    #[derive(serde::Serialize, serde::Deserialize)]
    struct Probe {
        n: i32,
    }

    impl Event for Probe {
        const TOPIC: &'static str = "probe";
        const SCHEMA: &'static str =
            r#"{"type": "record", "name": "Probe", "fields": [{"name": "n", "type": "int"}]}"#;
        const FULL_NAME: &'static str = "Probe";
        fn key(&self) -> String {
            self.n.to_string()
        }
    }

    /// An at-least-once pipeline writes dead-letter copies through its own producer, in input
    /// order: its consumer has no producer of its own (it used to create one, an idle
    /// librdkafka client with its threads and connections, per pipeline). A plain consumer,
    /// which dead-letters by itself, keeps one. No broker is needed to create the clients.
    #[tokio::test]
    async fn an_at_least_once_pipeline_consumer_has_no_dead_letter_producer() {
        let config = Config::from_properties_str(
            "bootstrap.servers=127.0.0.1:9\nschema.registry.url=http://127.0.0.1:9\n",
        )
        .unwrap();
        let client = Client::from_config(config).unwrap();
        let pipeline = client
            .pipeline::<Probe>(PipelineOptions::new("probe-pipeline"))
            .await
            .unwrap();
        assert!(pipeline.consumer().dlq.is_none());
        let consumer = client.consumer::<Probe>("probe-consumer").await.unwrap();
        assert!(consumer.dlq.is_some());
    }
}
