use std::{fmt, marker::PhantomData, pin::Pin};

use futures::FutureExt as _;
use tracing::{Instrument as _, debug_span};

use crate::{
    Codec, Event, Format, Headers, Producer, Result, TraceContext, codec::Framed,
    producer::PendingDelivery,
};

/// The events one input turns into, in the order they are written. Events of different types
/// go to their own [`Event::TOPIC`]s.
///
/// # Outputs in detail
///
/// What a [`Pipeline`](crate::Pipeline) writes for one input: [`Outputs`], events of any
/// [`Event`] types, each to its own topic, encoded with the pipeline's [`Format`] (`F`, Avro's
/// [`Codec`] unless the pipeline was made with
/// [`Client::pipeline_with_format`](crate::Client::pipeline_with_format)).
///
/// A transform returns anything [`IntoOutputs`]: a `Vec<E>` of one event type (the common
/// case), an `Option<E>`, or [`Outputs`] when one input turns into events of several types:
///
/// ```no_run
/// # use avro_events::{Event, Outputs};
/// # fn transform<A: Event, B: Event>(pick_list: A, received: B, created: B) -> Outputs {
/// let mut outputs = Outputs::new();
/// outputs.push(pick_list).push(received).push(created);
/// outputs
/// # }
/// ```
///
/// All of an input's outputs go into the same transaction (transactional mode), or are all
/// acknowledged before the input is marked done (at-least-once mode).
pub struct Outputs<F = Codec> {
    records: Vec<Box<dyn Output<F>>>,
}

impl<F> Default for Outputs<F> {
    fn default() -> Self {
        Self {
            records: Vec::new(),
        }
    }
}

impl<F: Format> Outputs<F> {
    /// No outputs.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `event`, written to [`Event::TOPIC`].
    pub fn push<E: Event>(&mut self, event: E) -> &mut Self {
        self.records.push(Box::new(Typed::<E, F> {
            event,
            headers: None,
            format: PhantomData,
        }));
        self
    }

    /// Adds `event` with record `headers`.
    pub fn push_with<E: Event>(&mut self, event: E, headers: Headers) -> &mut Self {
        self.records.push(Box::new(Typed::<E, F> {
            event,
            headers: Some(headers),
            format: PhantomData,
        }));
        self
    }

    /// [`Outputs::push`] by value, for chaining.
    #[must_use]
    pub fn with<E: Event>(mut self, event: E) -> Self {
        self.push(event);
        self
    }
}

impl<F> Outputs<F> {
    /// How many outputs there are.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The topic of each output, in order.
    pub fn topics(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.records.iter().map(|r| r.topic())
    }

    pub(crate) fn into_records(self) -> Vec<Box<dyn Output<F>>> {
        self.records
    }
}

impl<F> fmt::Debug for Outputs<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.topics()).finish()
    }
}

impl<E: Event, F: Format> Extend<E> for Outputs<F> {
    fn extend<I: IntoIterator<Item = E>>(&mut self, events: I) {
        for event in events {
            self.push(event);
        }
    }
}

/// What a pipeline's transform may return: converts into [`Outputs`] encoded with the
/// pipeline's [`Format`] `F` (Avro's [`Codec`] unless said otherwise).
pub trait IntoOutputs<F = Codec> {
    /// The outputs.
    fn into_outputs(self) -> Outputs<F>;
}

impl<F> IntoOutputs<F> for Outputs<F> {
    fn into_outputs(self) -> Outputs<F> {
        self
    }
}

impl<E: Event, F: Format> IntoOutputs<F> for Vec<E> {
    fn into_outputs(self) -> Outputs<F> {
        let mut outputs = Outputs {
            records: Vec::with_capacity(self.len()),
        };
        outputs.extend(self);
        outputs
    }
}

impl<E: Event, F: Format> IntoOutputs<F> for Option<E> {
    fn into_outputs(self) -> Outputs<F> {
        let mut outputs = Outputs::new();
        outputs.extend(self);
        outputs
    }
}

/// An output's record key and, when the key encoded, its value (or why the value did not:
/// a data-contract rule's dead letter is keyed by the key).
pub(crate) type Encoded = Result<(Framed, Result<Framed>)>;

/// An output being encoded: done at once when the format had everything it needs (the usual
/// case once its schemas are cached), or a future when it has to wait (the registry).
pub(crate) enum Encoding<'a> {
    /// Encoded without waiting: nothing was boxed.
    Ready(Encoded),
    /// Waits, e.g. for the registry to register or serve a schema (once per type and topic).
    Waiting(Pin<Box<dyn Future<Output = Encoded> + Send + 'a>>),
}

/// One output with its type erased: its topic, its headers and how the pipeline's format `F`
/// encodes it.
pub(crate) trait Output<F>: Send + Sync {
    /// The topic it is written to.
    fn topic(&self) -> &'static str;
    /// The event's type ([`Event::FULL_NAME`]).
    fn event_name(&self) -> &'static str;
    /// The record headers it was pushed with.
    fn headers(&self) -> Option<&Headers>;
    /// Encodes its key and value with `format`; may be called again after a transient error.
    fn encode<'a>(&'a self, format: &'a F) -> Encoding<'a>;
}

struct Typed<E, F> {
    event: E,
    headers: Option<Headers>,
    format: PhantomData<fn(&F)>,
}

impl<E: Event, F: Format> Output<F> for Typed<E, F> {
    fn topic(&self) -> &'static str {
        E::TOPIC
    }

    fn event_name(&self) -> &'static str {
        E::FULL_NAME
    }

    fn headers(&self) -> Option<&Headers> {
        self.headers.as_ref()
    }

    fn encode<'a>(&'a self, format: &'a F) -> Encoding<'a> {
        // A format's encode has no effect outside its caches (registering a schema is
        // idempotent), so a first attempt that would wait is dropped and made again as a
        // future of its own: only that rare attempt is boxed.
        match encode_typed(format, &self.event).now_or_never() {
            Some(encoded) => Encoding::Ready(encoded),
            None => Encoding::Waiting(Box::pin(encode_typed(format, &self.event))),
        }
    }
}

async fn encode_typed<E: Event, F: Format>(format: &F, event: &E) -> Encoded {
    let key = format.encode_record_key(E::TOPIC, event).await?;
    let value = format.encode_record(E::TOPIC, event).await;
    Ok((key, value))
}

/// Encodes `out` with `producer`'s format and queues it in `producer` as the next span of
/// `parent`'s trace (see [`Producer::enqueue_traced`], whose behaviour this is: headers, schema
/// id headers, a data-contract rule's dead letter). Awaited in place by the pipeline: no boxed
/// future per output once the format's schemas are cached, and the `send` span (DEBUG) is
/// entered around the encode and the queueing only when it is enabled.
pub(crate) async fn enqueue<F: Format>(
    out: &dyn Output<F>,
    producer: &Producer<F>,
    parent: Option<&TraceContext>,
) -> Result<PendingDelivery> {
    let topic = out.topic();
    let span = debug_span!("send", topic, event = out.event_name());
    let encoded = match span.in_scope(|| out.encode(producer.codec())) {
        Encoding::Ready(encoded) => encoded,
        Encoding::Waiting(waiting) => waiting.instrument(span.clone()).await,
    };
    let (key, value) = encoded?;
    let queued = producer.enqueue_encoded(topic, &key, value, out.headers(), parent);
    if span.is_disabled() {
        queued.await
    } else {
        queued.instrument(span).await
    }
}
