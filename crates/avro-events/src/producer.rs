use std::{sync::Arc, time::Duration};

use rdkafka::{
    error::{KafkaError, RDKafkaErrorCode},
    message::OwnedHeaders,
    producer::{FutureProducer, FutureRecord, Producer as _},
    util::Timeout,
};
use tracing::{Instrument, debug, debug_span};

pub use crate::delivery::{Delivered, PendingDelivery};
use crate::{
    Codec, Error, Event, Format, Headers, RecordLocation, Result,
    codec::Framed,
    context::KafkaContext,
    error::KafkaOperation,
    shared::{AuthGuard, Shared},
    trace::{self, SpanKind, Spans, TraceContext},
};

/// A typed, idempotent Kafka producer.
///
/// Idempotence (`enable.idempotence=true`, so `acks=all`) is on unless the configuration sets
/// it.
///
/// # Dropping
/// Dropping the producer never blocks the async runtime. Records still queued are flushed for
/// up to 30 s on tokio's blocking pool (a runtime being dropped waits for that), or on the
/// dropping thread when it is not in a runtime or the runtime is already shutting down; what
/// is still undelivered then is logged as an error with its count, and lost. To know that
/// every record was delivered, await the deliveries or [`Producer::flush`] (with the grace
/// period of your choice) before dropping the producer: that is the only way to get the
/// failure as an error.
///
/// Generic over the [`Format`] it encodes with: Avro's [`Codec`] unless said otherwise.
///
/// # Producer in detail
///
/// The typed producer: `send(&event)` encodes with the [`Codec`], keys the record with
/// [`Event::key`] (or its Avro key, [`Event::KEY_SCHEMA`]) and resolves to where the broker
/// stored it. [`Producer::send_with`] adds headers; [`Producer::send_tombstone`] deletes a key
/// from a compacted topic. Every record carries W3C trace context (`traceparent`, see
/// [`TraceContext`](crate::TraceContext)): a new trace, or the one [`Producer::send_traced`] is given.
pub struct Producer<F = Codec> {
    inner: Arc<FutureProducer<KafkaContext>>,
    context: KafkaContext,
    codec: Arc<F>,
    spans: Spans,
    _auth: AuthGuard,
}

impl<F> std::fmt::Debug for Producer<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer").finish_non_exhaustive()
    }
}

impl Producer {
    /// Creates a producer from `shared` ([`Client::producer`](crate::Client::producer)), or with
    /// `transactional` the transactional producer of a pipeline: with the configuration's
    /// `transactional.id`, its transactions initialised (fencing any earlier producer with the same
    /// id). A plain producer leaves `transactional.id` out, so one `client.properties` serves the
    /// pipeline and plain producers alike.
    ///
    /// # Errors
    /// [`Error::Config`] for a transactional producer without `transactional.id`;
    /// [`Error::Kafka`] when librdkafka refuses the configuration or the transactions cannot
    /// be initialised (broker unreachable, not authorized for the transactional id).
    pub(crate) async fn create(shared: &Shared, transactional: bool) -> Result<Self> {
        Self::create_with(shared, shared.codec.clone(), transactional).await
    }

    /// A transactional producer with the configuration's `transactional.id` whose transactions
    /// are not initialised yet ([`Client::transactional_producer`](crate::Client::transactional_producer)).
    ///
    /// # Errors
    /// As [`Producer::create`], initialisation left out.
    pub(crate) async fn create_transactional(shared: &Shared) -> Result<Self> {
        Self::create_native_only(shared, shared.codec.clone(), true).await
    }
}

impl<F: Format> Producer<F> {
    /// [`Producer::create`] encoding with `format`.
    pub(crate) async fn create_with(
        shared: &Shared,
        format: Arc<F>,
        transactional: bool,
    ) -> Result<Self> {
        let producer = Self::create_native_only(shared, format, transactional).await?;
        if transactional {
            producer.init_transactions(Duration::from_secs(60)).await?;
        }
        Ok(producer)
    }

    /// Initialises the transactions of a transactional producer: fences any earlier producer
    /// with the same `transactional.id` and aborts the transaction it left open. Waits up to
    /// `timeout` for the transaction coordinator; may be called again after a timeout.
    ///
    /// # Errors
    /// [`Error::Kafka`] ([`KafkaOperation::InitTransactions`]) when the coordinator cannot be
    /// reached in time (retriable), the client is not authorized for the transactional id, or
    /// the producer is not transactional.
    pub async fn init_transactions(&self, timeout: Duration) -> Result<()> {
        let native = FutureProducer::clone(&self.inner);
        tokio::task::spawn_blocking(move || native.init_transactions(timeout))
            .await
            .map_err(|e| {
                kafka_err(
                    KafkaOperation::InitTransactions,
                    None,
                    KafkaError::Canceled,
                    e,
                )
            })?
            .map_err(|source| Error::Kafka {
                operation: KafkaOperation::InitTransactions,
                topic: None,
                source,
            })
    }

    async fn create_native_only(
        shared: &Shared,
        format: Arc<F>,
        transactional: bool,
    ) -> Result<Self> {
        let rd = shared.settings.kafka.producer(transactional)?;
        let name = if transactional {
            "transactional producer"
        } else {
            if shared.settings.kafka.transactional() {
                debug!("plain producer: transactional.id left to the pipeline");
            }
            "producer"
        };
        let (inner, auth, context): (Arc<FutureProducer<KafkaContext>>, _, _) = shared
            .create_native(&rd, name, KafkaOperation::CreateProducer)
            .await?;
        Ok(Self {
            inner,
            context,
            codec: format,
            spans: Spans::new(),
            _auth: auth,
        })
    }

    /// The codec (the [`Format`]) this producer encodes with.
    pub fn codec(&self) -> &Arc<F> {
        &self.codec
    }

    /// The client context: broker reachability, refusals.
    pub fn context(&self) -> &KafkaContext {
        &self.context
    }

    /// The library's OpenTelemetry tracer for this producer's spans.
    pub(crate) fn spans(&self) -> &Spans {
        &self.spans
    }

    /// The underlying rdkafka producer (for transactions and metrics).
    pub fn rdkafka(&self) -> &FutureProducer<KafkaContext> {
        &self.inner
    }

    /// Sends `event` to its topic [`Event::TOPIC`] and waits for the acknowledgement.
    ///
    /// # Errors
    /// Encoding errors, or [`Error::Kafka`] when the broker did not acknowledge the record.
    pub async fn send<E: Event>(&self, event: &E) -> Result<Delivered> {
        self.send_to(E::TOPIC, event).await
    }

    /// Sends `event` to `topic` and waits for the acknowledgement.
    ///
    /// # Errors
    /// As [`Producer::send`].
    pub async fn send_to<E: Event>(&self, topic: &str, event: &E) -> Result<Delivered> {
        self.enqueue_to(topic, event).await?.await
    }

    /// Sends `event` to its topic with `headers` and waits for the acknowledgement.
    ///
    /// ```no_run
    /// # async fn run<E: avro_events::Event>(producer: avro_events::Producer, event: E) -> avro_events::Result<()> {
    /// use avro_events::Headers;
    ///
    /// let headers = Headers::new().with("trace-id", "4bf92f3577b34da6");
    /// producer.send_with(&event, &headers).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`Producer::send`].
    pub async fn send_with<E: Event>(&self, event: &E, headers: &Headers) -> Result<Delivered> {
        self.enqueue_with(E::TOPIC, event, Some(headers))
            .await?
            .await
    }

    /// Sends `event` to its topic as the next span of `parent`'s trace (same trace id, a new
    /// span id, `parent` as parent span) and waits for the acknowledgement. `parent` is
    /// typically [`Received::trace`](crate::Received::trace) of the record this one follows
    /// from, kept for as long as needed (see [`TraceContext`](crate::TraceContext)).
    ///
    /// ```no_run
    /// # async fn run<E: avro_events::Event>(producer: avro_events::Producer, received: avro_events::Received<E>, next: E) -> avro_events::Result<()> {
    /// // Later, e.g. when store staff press a button on the page that showed `received`:
    /// let parent = received.trace().unwrap_or_else(avro_events::TraceContext::new_root);
    /// producer.send_traced(&next, &parent).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`Producer::send`].
    pub async fn send_traced<E: Event>(
        &self,
        event: &E,
        parent: &TraceContext,
    ) -> Result<Delivered> {
        self.enqueue_traced(E::TOPIC, event, None, Some(parent))
            .await?
            .await
    }

    /// Encodes `event` and hands it to librdkafka without waiting for the acknowledgement,
    /// which the returned future yields. Lets a caller keep many records in flight.
    ///
    /// # Errors
    /// Encoding errors, or [`Error::Kafka`] when the record cannot be queued.
    pub async fn enqueue_to<E: Event>(&self, topic: &str, event: &E) -> Result<PendingDelivery> {
        self.enqueue_with(topic, event, None).await
    }

    /// [`Producer::enqueue_to`] with headers (`None`: no headers).
    ///
    /// # Errors
    /// As [`Producer::enqueue_to`].
    pub async fn enqueue_with<E: Event>(
        &self,
        topic: &str,
        event: &E,
        headers: Option<&Headers>,
    ) -> Result<PendingDelivery> {
        self.enqueue_traced(topic, event, headers, None).await
    }

    /// [`Producer::enqueue_with`] continuing `parent`'s trace: the record's `traceparent`
    /// names a new span of that trace whose parent is `parent`. With `parent` `None` the
    /// record continues OpenTelemetry's current span, if any, else starts a new trace. A
    /// `traceparent` already in `headers` (with no `parent`) is sent as it is; every other
    /// header is kept.
    ///
    /// # Errors
    /// As [`Producer::enqueue_to`].
    pub async fn enqueue_traced<E: Event>(
        &self,
        topic: &str,
        event: &E,
        headers: Option<&Headers>,
        parent: Option<&TraceContext>,
    ) -> Result<PendingDelivery> {
        async {
            let key = self.codec.encode_record_key(topic, event).await?;
            let value = self.codec.encode_record(topic, event).await;
            self.enqueue_encoded(topic, &key, value, headers, parent)
                .await
        }
        .instrument(debug_span!("send", topic, event = E::FULL_NAME))
        .await
    }

    /// Queues a record whose key and value the format encoded (see
    /// [`Producer::enqueue_traced`], whose second half this is): a value that failed a
    /// data-contract rule whose action is `DLQ` goes to the rule's dead-letter topic
    /// ([`Producer::rule_dead_letter`]) and the rule's error is returned; otherwise the record
    /// is queued with `headers` as the next span of `parent`'s trace.
    pub(crate) async fn enqueue_encoded(
        &self,
        topic: &str,
        key: &Framed,
        value: Result<Framed>,
        headers: Option<&Headers>,
        parent: Option<&TraceContext>,
    ) -> Result<PendingDelivery> {
        let value = match value {
            Ok(value) => value,
            // Boxed, as the rare path it is: the send's future stays small.
            Err(error) => return Err(Box::pin(self.rule_dead_letter(&key.payload, error)).await),
        };
        self.enqueue_framed(topic, key, &value, headers, parent)
            .await
    }

    /// Queues an encoded record (see [`Producer::enqueue_traced`]): with header framing its
    /// schema id headers join `headers`, replacing any of the same name.
    async fn enqueue_framed(
        &self,
        topic: &str,
        key: &Framed,
        value: &Framed,
        headers: Option<&Headers>,
        parent: Option<&TraceContext>,
    ) -> Result<PendingDelivery> {
        // With header framing (`value.schema.id.serializer`, `key.schema.id.serializer`), the
        // schema ids travel in headers of their own, replacing any of the same name.
        let ids: Vec<&(&str, Vec<u8>)> = [&key.schema_id_header, &value.schema_id_header]
            .into_iter()
            .flatten()
            .collect();
        let with_ids;
        let headers = if ids.is_empty() {
            headers
        } else {
            let mut all = headers.cloned().unwrap_or_default();
            all.retain(|h| !ids.iter().any(|(name, _)| h.key == *name));
            for (name, id) in ids {
                all.push(*name, Some(id.clone()));
            }
            with_ids = all;
            Some(&with_ids)
        };
        self.enqueue_in_trace(
            topic,
            Some(&key.payload),
            Some(&value.payload),
            headers,
            parent,
        )
        .await
    }

    /// When `error` is a failed data-contract rule whose action is `DLQ`
    /// ([`Error::RuleFailed`] with a dead letter), sends the dead letter (the value as JSON,
    /// keyed by `key`, with the `__rule.*` headers) to the rule's `dlq.topic` and waits for
    /// the broker, as Confluent's serializers do; then returns the error as it is, or, when the
    /// dead letter could not be written, [`Error::DeadLetterFailed`] naming both failures (the
    /// record is then on neither topic).
    pub(crate) async fn rule_dead_letter(&self, key: &[u8], error: Error) -> Error {
        let Error::RuleFailed {
            dead_letter: Some(letter),
            ..
        } = &error
        else {
            return error;
        };
        let mut headers = OwnedHeaders::new_with_capacity(letter.headers.len());
        for (name, value) in &letter.headers {
            headers = headers.insert(rdkafka::message::Header {
                key: name,
                value: Some(value.as_bytes()),
            });
        }
        let sent = match self
            .enqueue_raw(&letter.topic, Some(key), Some(&letter.value), Some(headers))
            .await
        {
            Ok(pending) => pending.await.map(drop),
            Err(e) => Err(e),
        };
        match sent {
            Ok(()) => {
                debug!(topic = %letter.topic, %error, "rule failure sent to its dead-letter topic");
                error
            }
            Err(send_error) => {
                debug!(topic = %letter.topic, %error, %send_error, "rule failure not written to its dead-letter topic");
                Error::DeadLetterFailed {
                    topic: letter.topic.clone(),
                    cause: Box::new(error),
                    source: Box::new(send_error),
                }
            }
        }
    }

    /// Queues a record with its trace context (see [`Producer::enqueue_traced`]); the
    /// OpenTelemetry `send` span, when recorded, ends with the delivery.
    async fn enqueue_in_trace(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        payload: Option<&[u8]>,
        headers: Option<&Headers>,
        parent: Option<&TraceContext>,
    ) -> Result<PendingDelivery> {
        if parent.is_none() && headers.is_some_and(|h| h.get(trace::TRACEPARENT).is_some()) {
            let headers = headers.map(Headers::to_rdkafka);
            return self.enqueue_raw(topic, key, payload, headers).await;
        }
        let (context, mut otel) =
            trace::start_span(&self.spans, "send", SpanKind::Producer, topic, parent);
        // The trace headers written straight from the context (the `traceparent` text built
        // on the stack), no list of fields or header texts allocated per record.
        let user = headers.map_or(0, Headers::len);
        let mut rd = OwnedHeaders::new_with_capacity(user + 2);
        for h in headers.into_iter().flatten() {
            if h.key != trace::TRACEPARENT && h.key != trace::TRACESTATE {
                rd = rd.insert(rdkafka::message::Header {
                    key: &h.key,
                    value: h.value.as_deref(),
                });
            }
        }
        let traceparent = context.traceparent_bytes();
        rd = rd.insert(rdkafka::message::Header {
            key: trace::TRACEPARENT,
            value: Some(&traceparent[..]),
        });
        if !context.state().is_empty() {
            rd = rd.insert(rdkafka::message::Header {
                key: trace::TRACESTATE,
                value: Some(context.state().as_bytes()),
            });
        }
        let pending = match self.enqueue_raw(topic, key, payload, Some(rd)).await {
            Ok(pending) => pending,
            Err(error) => {
                otel.failed(&error);
                return Err(error);
            }
        };
        if !otel.is_recording() {
            return Ok(pending);
        }
        Ok(PendingDelivery::boxed(async move {
            let delivered = pending.await;
            match &delivered {
                Ok(d) => otel.delivered(d.partition, d.offset),
                Err(error) => otel.failed(error),
            }
            otel.end();
            delivered
        }))
    }

    /// Sends a tombstone (a record with a null value) for `key` to `E`'s topic and waits for
    /// the acknowledgement: on a compacted topic it deletes the key. `key` is encoded as
    /// [`Codec::encode_key`] says: with `E`'s key schema when it has one, else as a string.
    ///
    /// ```no_run
    /// # async fn run<E: avro_events::Event>(producer: avro_events::Producer) -> avro_events::Result<()> {
    /// producer.send_tombstone::<E>("order-42").await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// Key encoding errors, or [`Error::Kafka`] when the broker did not acknowledge it.
    pub async fn send_tombstone<E: Event>(
        &self,
        key: &(impl serde::Serialize + Sync + ?Sized),
    ) -> Result<Delivered> {
        self.enqueue_tombstone::<E>(E::TOPIC, key, None)
            .await?
            .await
    }

    /// Queues a tombstone for `key` on `topic` with `headers`, without waiting for the
    /// acknowledgement (see [`Producer::send_tombstone`]).
    ///
    /// # Errors
    /// As [`Producer::enqueue_to`].
    pub async fn enqueue_tombstone<E: Event>(
        &self,
        topic: &str,
        key: &(impl serde::Serialize + Sync + ?Sized),
        headers: Option<&Headers>,
    ) -> Result<PendingDelivery> {
        let key = self.codec.encode_key::<E>(topic, key).await?;
        self.enqueue_in_trace(topic, Some(&key), None, headers, None)
            .await
    }

    /// Hands the dead-letter copy of `message`, read at `location`, to this producer (inside
    /// its open transaction, when it is transactional): its original key, value and headers
    /// plus the headers naming `error` and the location ([`crate::dlq::headers`]).
    ///
    /// # Errors
    /// [`Error::Kafka`] when the record cannot be queued.
    pub(crate) async fn enqueue_dead_letter(
        &self,
        dlq_topic: &str,
        message: &rdkafka::message::OwnedMessage,
        location: &RecordLocation,
        error: &Error,
    ) -> Result<PendingDelivery> {
        use rdkafka::Message as _;
        self.enqueue_raw(
            dlq_topic,
            message.key(),
            message.payload(),
            Some(crate::dlq::headers_for(message, location, error)),
        )
        .await
    }

    /// Queues already-encoded bytes (`None`: a tombstone). Used for dead-letter records, which
    /// keep their original bytes.
    ///
    /// The returned delivery fails at once, rather than at `message.timeout.ms`, when a broker
    /// refuses the client's credentials or librdkafka raises a fatal error.
    pub(crate) async fn enqueue_raw(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        payload: Option<&[u8]>,
        headers: Option<OwnedHeaders>,
    ) -> Result<PendingDelivery> {
        let mut headers = headers;
        loop {
            match self.try_enqueue_raw(topic, key, payload, headers)? {
                Ok(pending) => return Ok(pending),
                Err(back) => headers = back,
            }
            // librdkafka's queue is full. Boxed, as the rare wait it is: the future of every
            // send stays small (it is moved into each caller's).
            Box::pin(tokio::time::sleep(Duration::from_millis(5))).await;
        }
    }

    /// One attempt at [`Producer::enqueue_raw`]: the delivery, or (`Err` inside) the headers
    /// back when librdkafka's queue is full.
    fn try_enqueue_raw(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        payload: Option<&[u8]>,
        headers: Option<OwnedHeaders>,
    ) -> Result<std::result::Result<PendingDelivery, Option<OwnedHeaders>>> {
        if let Some(refusal) = self.context.refusal() {
            return Err(self.context.refusal_error(refusal, KafkaOperation::Produce));
        }
        let mut record = FutureRecord::<[u8], [u8]>::to(topic);
        if let Some(payload) = payload {
            record = record.payload(payload);
        }
        if let Some(key) = key {
            record = record.key(key);
        }
        if let Some(h) = headers {
            record = record.headers(h);
        }
        match self.inner.send_result(record) {
            Ok(delivery) => Ok(Ok(PendingDelivery::queued(delivery, topic, &self.context))),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), record)) => {
                Ok(Err(record.headers))
            }
            Err((source, _)) => Err(Error::Kafka {
                operation: KafkaOperation::Produce,
                topic: Some(topic.to_owned()),
                source,
            }),
        }
    }

    /// Waits until every queued record is acknowledged, or `timeout` passes.
    ///
    /// # Errors
    /// [`Error::Kafka`] when records are still unacknowledged at the timeout.
    pub async fn flush(&self, timeout: Duration) -> Result<()> {
        let inner = FutureProducer::clone(&self.inner);
        tokio::task::spawn_blocking(move || inner.flush(Timeout::After(timeout)))
            .await
            .map_err(|e| kafka_err(KafkaOperation::Flush, None, KafkaError::Canceled, e))?
            .map_err(|source| Error::Kafka {
                operation: KafkaOperation::Flush,
                topic: None,
                source,
            })
    }
}

/// How long a dropped producer's records are given to be delivered.
const DROP_FLUSH_TIMEOUT: Duration = Duration::from_secs(30);

impl<F> Drop for Producer<F> {
    fn drop(&mut self) {
        let queued = self.inner.in_flight_count();
        if queued == 0 {
            return;
        }
        if let Some(refusal) = self.context.refusal() {
            tracing::error!(unsent = queued, reason = %refusal.reason, "records left unsent: the broker refused the client");
            return;
        }
        let flush = DropFlush(Some(FutureProducer::clone(&self.inner)));
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                debug!(
                    queued,
                    "producer dropped with records queued: flushing them on the blocking pool"
                );
                // A runtime that is shutting down drops the task unrun: `DropFlush`'s own
                // `Drop` flushes then, on the thread shutting the runtime down.
                drop(runtime.spawn_blocking(move || flush.run()));
            }
            Err(_) => flush.run(),
        }
    }
}

/// The flush of a dropped producer's queued records; done when run, or when dropped unrun.
struct DropFlush(Option<FutureProducer<KafkaContext>>);

impl DropFlush {
    fn run(mut self) {
        if let Some(native) = self.0.take() {
            flush_dropped(&native);
        }
    }
}

impl Drop for DropFlush {
    fn drop(&mut self) {
        if let Some(native) = self.0.take() {
            flush_dropped(&native);
        }
    }
}

fn flush_dropped(native: &FutureProducer<KafkaContext>) {
    if let Err(error) = native.flush(Timeout::After(DROP_FLUSH_TIMEOUT)) {
        tracing::error!(
            %error,
            undelivered = native.in_flight_count(),
            "records left undelivered: the producer was dropped and they were not delivered within 30 s"
        );
    }
}

fn kafka_err(
    operation: KafkaOperation,
    topic: Option<String>,
    source: KafkaError,
    join: tokio::task::JoinError,
) -> Error {
    tracing::error!(%join, %operation, "blocking Kafka call did not finish");
    Error::Kafka {
        operation,
        topic,
        source,
    }
}
