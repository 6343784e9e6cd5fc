//! The typed consumer: decoded events with their metadata, at-least-once delivery, and a
//! dead-letter topic for records that cannot be decoded.
//!
//! Offsets are stored only when the application says a record is done
//! ([`Consumer::ack`], or automatically by [`Consumer::run`] after the handler succeeds), and
//! committed by librdkafka in the background and once more at [`Consumer::close`]. A record
//! that can never be decoded (not Confluent framing, unknown schema id, an Avro body that does
//! not decode) is copied with its original bytes to the dead-letter topic, with headers naming
//! the error and where it came from, and then acknowledged. Errors that may pass (the registry
//! unreachable) are retried with backoff; nothing is skipped silently.

use std::{
    marker::PhantomData,
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use rdkafka::{
    Message,
    consumer::{CommitMode, Consumer as _, StreamConsumer},
    error::KafkaError,
    message::{Header, Headers, OwnedHeaders, OwnedMessage},
    types::RDKafkaErrorCode,
};
use tracing::{Instrument, debug, info, info_span, warn};

use crate::{
    Codec, Config, Error, Event, Producer, RecordLocation, Result, client, config::ClientRole,
    context::LoggingContext, topics,
};

/// Headers a dead-letter record carries, besides the original record's own headers.
pub mod dlq_headers {
    /// Stable name of the error ([`Error::kind`](crate::Error::kind)).
    pub const ERROR_KIND: &str = "dlq.error.kind";
    /// The error's message.
    pub const ERROR_MESSAGE: &str = "dlq.error.message";
    /// Topic the record was read from.
    pub const SOURCE_TOPIC: &str = "dlq.source.topic";
    /// Partition the record was read from.
    pub const SOURCE_PARTITION: &str = "dlq.source.partition";
    /// Offset of the record.
    pub const SOURCE_OFFSET: &str = "dlq.source.offset";
}

/// Where a received record came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMeta {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset in the partition.
    pub offset: i64,
    /// The record key, when it is UTF-8.
    pub key: Option<String>,
    /// The record timestamp in milliseconds since the epoch, when known.
    pub timestamp_ms: Option<i64>,
}

impl RecordMeta {
    /// The location of the record, for errors.
    pub fn location(&self) -> RecordLocation {
        RecordLocation {
            topic: self.topic.clone(),
            partition: self.partition,
            offset: self.offset,
        }
    }
}

/// A decoded event with its metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct Received<E> {
    /// The event.
    pub event: E,
    /// Where it came from.
    pub meta: RecordMeta,
}

/// Options of a [`Consumer`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConsumerOptions {
    /// Consumer group id (`group.id`); the configuration's value wins when set there.
    pub group_id: String,
    /// Dead-letter topic for records that cannot be decoded; `None` for `<topic>.dlq`.
    pub dead_letter_topic: Option<String>,
    /// How often a transient error (registry unreachable) is retried before giving up.
    pub max_retries: u32,
    /// First backoff between retries; doubled each time, up to 10 s.
    pub initial_backoff: Duration,
}

impl ConsumerOptions {
    /// Options for group `group_id`, with defaults for the rest.
    pub fn new(group_id: impl Into<String>) -> Self {
        Self {
            group_id: group_id.into(),
            dead_letter_topic: None,
            max_retries: 10,
            initial_backoff: Duration::from_millis(200),
        }
    }
}

/// A typed consumer of `E` events.
pub struct Consumer<E> {
    inner: Arc<StreamConsumer<LoggingContext>>,
    codec: Arc<Codec>,
    dlq: Producer,
    options: ConsumerOptions,
    /// Records sent to the dead-letter topic so far.
    dead_lettered: AtomicU64,
    /// The record being decoded or dead-lettered (see [`Consumer::recv`]).
    parked: Mutex<Option<(u64, Arc<OwnedMessage>)>>,
    _auth: client::AuthGuard,
    _event: PhantomData<fn() -> E>,
}

impl<E> std::fmt::Debug for Consumer<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl<E: Event> Consumer<E> {
    /// Creates a consumer of `E` and subscribes it to [`Event::TOPIC`].
    ///
    /// # Errors
    /// [`Error::Config`] or [`Error::Kafka`] when the client cannot be created.
    pub async fn new(config: &Config, codec: Arc<Codec>, options: ConsumerOptions) -> Result<Self> {
        Self::subscribed_to(config, codec, options, &[E::TOPIC]).await
    }

    /// Creates a consumer of `E` subscribed to `topics`.
    ///
    /// # Errors
    /// As [`Consumer::new`].
    pub async fn subscribed_to(
        config: &Config,
        codec: Arc<Codec>,
        options: ConsumerOptions,
        topics: &[&str],
    ) -> Result<Self> {
        let mut rd = config.rdkafka_config_for(ClientRole::Consumer);
        if config.get("group.id").is_none() {
            rd.set("group.id", &options.group_id);
        }
        // At-least-once: only offsets of finished records are stored, and those are committed.
        rd.set("enable.auto.offset.store", "false");
        for (key, default) in [
            ("enable.auto.commit", "true"),
            ("auto.offset.reset", "earliest"),
            ("isolation.level", "read_committed"),
        ] {
            if config.get(key).is_none() {
                rd.set(key, default);
            }
        }
        // The dead-letter producer carries no transactional id of its own.
        let dlq_config = config.clone().set("transactional.id", "");
        let dlq = Producer::new(&dlq_config, codec.clone()).await?;
        let (inner, auth): (Arc<StreamConsumer<LoggingContext>>, _) = client::create(
            config,
            rd,
            LoggingContext::new("consumer"),
            "create consumer",
        )
        .await?;
        inner.subscribe(topics).map_err(|source| Error::Kafka {
            operation: "subscribe",
            topic: Some(topics.join(",")),
            source,
        })?;
        info!(group = %options.group_id, ?topics, "consumer subscribed");
        Ok(Self {
            inner,
            codec,
            dlq,
            options,
            dead_lettered: AtomicU64::new(0),
            parked: Mutex::new(None),
            _auth: auth,
            _event: PhantomData,
        })
    }

    /// How many records this consumer has sent to the dead-letter topic.
    pub fn dead_lettered(&self) -> u64 {
        self.dead_lettered.load(Ordering::Relaxed)
    }

    /// The underlying rdkafka consumer (for group metadata, positions and lag).
    pub fn rdkafka(&self) -> &StreamConsumer<LoggingContext> {
        &self.inner
    }

    /// Waits for the next event that decodes. Records that can never be decoded go to the
    /// dead-letter topic on the way (and are acknowledged); their count is logged.
    ///
    /// The returned event is not acknowledged: call [`Consumer::ack`] once it is handled.
    ///
    /// Cancel-safe: if the future is dropped before it completes (e.g. in `tokio::select!`),
    /// no record is lost; the next call returns it.
    ///
    /// # Errors
    /// [`Error::Kafka`] when consuming fails, a transient error that outlasted the retries, or
    /// a failure to write a dead-letter record (the record is then not acknowledged).
    pub async fn recv(&self) -> Result<Received<E>> {
        loop {
            // A record taken from librdkafka is parked until it is decoded or dead-lettered, so
            // that a `recv` cancelled at an await point (e.g. in `select!`) loses nothing: the
            // next call picks the same record up again.
            // A parked record from before a rebalance is dropped: its partition is read again
            // from the committed position, by this consumer or its new owner.
            let epoch = self.inner.context().rebalances();
            let parked = lock(&self.parked)
                .take()
                .filter(|(parked_epoch, _)| *parked_epoch == epoch);
            let message = match parked {
                Some((_, message)) => {
                    *lock(&self.parked) = Some((epoch, message.clone()));
                    message
                }
                None => {
                    let message = self.inner.recv().await.map_err(|source| Error::Kafka {
                        operation: "consume",
                        topic: None,
                        source,
                    })?;
                    let message = Arc::new(message.detach());
                    // Received after any rebalance the poll just served.
                    let epoch = self.inner.context().rebalances();
                    *lock(&self.parked) = Some((epoch, message.clone()));
                    message
                }
            };
            let meta = meta_of(&message);
            let span = info_span!("receive", topic = %meta.topic, partition = meta.partition, offset = meta.offset);
            match self.decode(&message, &meta).instrument(span.clone()).await {
                Ok(event) => {
                    *lock(&self.parked) = None;
                    return Ok(Received { event, meta });
                }
                Err(error) if error.is_poison() => {
                    self.dead_letter(&message, &meta, &error)
                        .instrument(span)
                        .await?;
                    *lock(&self.parked) = None;
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// The events as an async [`Stream`](futures::Stream): each item is what
    /// [`Consumer::recv`] returns. Acknowledge each event with [`Consumer::ack`] once handled.
    ///
    /// ```no_run
    /// # async fn run(consumer: grocery_events::Consumer<grocery_events::Order>) -> grocery_events::Result<()> {
    /// use futures::StreamExt as _;
    ///
    /// let mut events = std::pin::pin!(consumer.stream());
    /// while let Some(received) = events.next().await {
    ///     let received = received?;
    ///     println!("order {} from partition {}", received.event.order_id, received.meta.partition);
    ///     consumer.ack(&received.meta)?;
    /// }
    /// # Ok(()) }
    /// ```
    pub fn stream(&self) -> impl futures::Stream<Item = Result<Received<E>>> + '_ {
        futures::stream::unfold(self, |consumer| async move {
            Some((consumer.recv().await, consumer))
        })
    }

    /// Decodes a record, retrying transient errors with backoff.
    async fn decode(&self, message: &OwnedMessage, meta: &RecordMeta) -> Result<E> {
        let payload = message.payload().unwrap_or_default();
        let mut backoff = self.options.initial_backoff;
        let mut attempt = 0;
        loop {
            match self.codec.decode::<E>(payload).await {
                Ok(event) => return Ok(event),
                Err(error) if error.is_transient() && attempt < self.options.max_retries => {
                    attempt += 1;
                    warn!(%error, attempt, backoff_ms = backoff.as_millis() as u64, "transient decode error; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
                Err(error) => return Err(error.at(meta.location())),
            }
        }
    }

    /// Copies a record that cannot be decoded to the dead-letter topic, then acknowledges it.
    async fn dead_letter(
        &self,
        message: &OwnedMessage,
        meta: &RecordMeta,
        error: &Error,
    ) -> Result<()> {
        let dlq_topic = self
            .options
            .dead_letter_topic
            .clone()
            .unwrap_or_else(|| topics::dead_letter(&meta.topic));
        let mut headers = OwnedHeaders::new();
        if let Some(original) = message.headers() {
            for header in original.iter() {
                headers = headers.insert(Header {
                    key: header.key,
                    value: header.value,
                });
            }
        }
        let message_text = error.to_string();
        let partition = meta.partition.to_string();
        let offset = meta.offset.to_string();
        for (key, value) in [
            (dlq_headers::ERROR_KIND, error.kind()),
            (dlq_headers::ERROR_MESSAGE, message_text.as_str()),
            (dlq_headers::SOURCE_TOPIC, meta.topic.as_str()),
            (dlq_headers::SOURCE_PARTITION, partition.as_str()),
            (dlq_headers::SOURCE_OFFSET, offset.as_str()),
        ] {
            headers = headers.insert(Header {
                key,
                value: Some(value),
            });
        }
        let delivered = self
            .dlq
            .enqueue_raw(
                &dlq_topic,
                message.key(),
                message.payload().unwrap_or_default(),
                Some(headers),
            )
            .await?
            .await?;
        self.dead_lettered.fetch_add(1, Ordering::Relaxed);
        warn!(
            error_kind = error.kind(),
            %error,
            dlq_topic,
            dlq_partition = delivered.partition,
            dlq_offset = delivered.offset,
            "record sent to dead-letter topic"
        );
        self.ack(meta)
    }

    /// Marks the record as done: its offset is committed with the next commit.
    ///
    /// # Errors
    /// [`Error::Kafka`] when the partition is no longer assigned to this consumer.
    pub fn ack(&self, meta: &RecordMeta) -> Result<()> {
        self.inner
            .store_offset(&meta.topic, meta.partition, meta.offset)
            .map_err(|source| Error::Kafka {
                operation: "store offset",
                topic: Some(meta.topic.clone()),
                source,
            })
    }

    /// Commits the acknowledged offsets now and waits for the broker. A commit refused because
    /// the group is rebalancing (another member joining or leaving at the same moment) is
    /// retried a few times.
    ///
    /// # Errors
    /// [`Error::Kafka`] when the commit fails.
    pub async fn commit(&self) -> Result<()> {
        let mut attempt = 0;
        loop {
            let consumer = self.inner.clone();
            let result = tokio::task::spawn_blocking(move || {
                consumer.commit_consumer_state(CommitMode::Sync)
            })
            .await
            .unwrap_or(Err(KafkaError::Canceled));
            match result {
                Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {
                    return Ok(());
                }
                Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::RebalanceInProgress))
                    if attempt < 10 =>
                {
                    attempt += 1;
                    debug!(attempt, "commit refused during a rebalance; retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(source) => {
                    return Err(Error::Kafka {
                        operation: "commit",
                        topic: None,
                        source,
                    });
                }
            }
        }
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
    /// dropped).
    ///
    /// # Errors
    /// [`Error::Kafka`] when the final commit fails.
    pub async fn close(&self) -> Result<()> {
        let result = self.commit().await;
        debug!("consumer closed");
        result
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn meta_of(message: &OwnedMessage) -> RecordMeta {
    RecordMeta {
        topic: message.topic().to_owned(),
        partition: message.partition(),
        offset: message.offset(),
        key: message
            .key()
            .and_then(|k| std::str::from_utf8(k).ok())
            .map(str::to_owned),
        timestamp_ms: message.timestamp().to_millis(),
    }
}
