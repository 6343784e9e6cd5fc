use std::{fmt, pin::Pin};

use crate::{Event, Headers, Producer, Result, TraceContext, producer::PendingDelivery};

/// The events one input turns into, in the order they are written. Events of different types
/// go to their own [`Event::TOPIC`]s.
///
/// # Outputs in detail
///
/// What a [`Pipeline`](crate::Pipeline) writes for one input: [`Outputs`], events of any
/// [`Event`] types, each to its own topic.
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
#[derive(Default)]
pub struct Outputs {
    records: Vec<Box<dyn Output>>,
}

impl Outputs {
    /// No outputs.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `event`, written to [`Event::TOPIC`].
    pub fn push<E: Event>(&mut self, event: E) -> &mut Self {
        self.records.push(Box::new(Typed {
            event,
            headers: None,
        }));
        self
    }

    /// Adds `event` with record `headers`.
    pub fn push_with<E: Event>(&mut self, event: E, headers: Headers) -> &mut Self {
        self.records.push(Box::new(Typed {
            event,
            headers: Some(headers),
        }));
        self
    }

    /// [`Outputs::push`] by value, for chaining.
    #[must_use]
    pub fn with<E: Event>(mut self, event: E) -> Self {
        self.push(event);
        self
    }

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

    pub(crate) fn into_records(self) -> Vec<Box<dyn Output>> {
        self.records
    }
}

impl fmt::Debug for Outputs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.topics()).finish()
    }
}

impl<E: Event> Extend<E> for Outputs {
    fn extend<I: IntoIterator<Item = E>>(&mut self, events: I) {
        for event in events {
            self.push(event);
        }
    }
}

/// What a pipeline's transform may return: converts into [`Outputs`].
pub trait IntoOutputs {
    /// The outputs.
    fn into_outputs(self) -> Outputs;
}

impl IntoOutputs for Outputs {
    fn into_outputs(self) -> Outputs {
        self
    }
}

impl<E: Event> IntoOutputs for Vec<E> {
    fn into_outputs(self) -> Outputs {
        let mut outputs = Outputs {
            records: Vec::with_capacity(self.len()),
        };
        outputs.extend(self);
        outputs
    }
}

impl<E: Event> IntoOutputs for Option<E> {
    fn into_outputs(self) -> Outputs {
        let mut outputs = Outputs::new();
        outputs.extend(self);
        outputs
    }
}

/// A future queuing one output.
pub(crate) type Enqueue<'a> = Pin<Box<dyn Future<Output = Result<PendingDelivery>> + Send + 'a>>;

/// One output with its type erased: its topic and how to encode and queue it.
pub(crate) trait Output: Send + Sync {
    /// The topic it is written to.
    fn topic(&self) -> &'static str;
    /// Encodes it and hands it to `producer`, continuing `parent`'s trace (see
    /// [`Producer::enqueue_traced`]); may be called again after a transient error.
    fn enqueue<'a>(
        &'a self,
        producer: &'a Producer,
        parent: Option<&'a TraceContext>,
    ) -> Enqueue<'a>;
}

struct Typed<E> {
    event: E,
    headers: Option<Headers>,
}

impl<E: Event> Output for Typed<E> {
    fn topic(&self) -> &'static str {
        E::TOPIC
    }

    fn enqueue<'a>(
        &'a self,
        producer: &'a Producer,
        parent: Option<&'a TraceContext>,
    ) -> Enqueue<'a> {
        Box::pin(producer.enqueue_traced(E::TOPIC, &self.event, self.headers.as_ref(), parent))
    }
}
