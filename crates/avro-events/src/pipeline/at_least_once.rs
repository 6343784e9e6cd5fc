//! The at-least-once loop (no `transactional.id`): outputs produced idempotently, each
//! input's offset stored once its outputs (or its dead-letter copy) are acknowledged, in input
//! order, with up to `max_in_flight` inputs waiting for their acknowledgements.

use std::{
    collections::VecDeque,
    pin::Pin,
    sync::atomic::Ordering,
    task::{Context, Poll, ready},
    time::Duration,
};

use backon::BackoffBuilder as _;
use tracing::{debug, error, warn};

use super::{
    Pipeline,
    failure::{dead_lettered_by_rule, may_pass},
};
use crate::{
    Error, Event, Format, IntoOutputs, Producer, Received, RecordMeta, Result,
    consumer::{Polled, dead_letter_failed},
    context::DeadLettered,
    outputs::{self, Output},
    producer::PendingDelivery,
    trace::TraceContext,
};

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

/// A poison input's dead-letter copy in flight: its delivery, its topic and why the input is
/// dead-lettered (which a failed delivery names, [`Error::DeadLetterFailed`]).
struct DeadLetterWrite {
    delivery: PendingDelivery,
    topic: String,
    cause: Error,
}

/// Waits for the acknowledgements of an input's outputs (each with its topic) or of its
/// dead-letter copy: an input in the in-flight queue. A named future, [`Unpin`] (its
/// deliveries are), so the queue holds the inputs in a `VecDeque` without a task or a box per
/// input; only the oldest is polled, as offsets are stored in input order (the deliveries of
/// later inputs are reported meanwhile, and read when their turn comes).
struct Settle {
    /// The input; taken when it is finished.
    meta: Option<RecordMeta>,
    deliveries: Vec<(PendingDelivery, &'static str)>,
    /// How many of `deliveries` are acknowledged.
    acknowledged: usize,
    /// The rare dead-letter copy, boxed.
    dead_letter: Option<Box<DeadLetterWrite>>,
}

impl Settle {
    fn new(
        meta: RecordMeta,
        deliveries: Vec<(PendingDelivery, &'static str)>,
        dead_letter: Option<Box<DeadLetterWrite>>,
    ) -> Self {
        Self {
            meta: Some(meta),
            deliveries,
            acknowledged: 0,
            dead_letter,
        }
    }
}

impl Future for Settle {
    type Output = Result<Finished>;

    /// The outputs' acknowledgements in order (the first failure is the input's), then the
    /// dead-letter copy's. Not polled again once it is ready.
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        while let Some((delivery, _)) = this.deliveries.get_mut(this.acknowledged) {
            if let Err(error) = ready!(Pin::new(delivery).poll(cx)) {
                return Poll::Ready(Err(error));
            }
            this.acknowledged += 1;
        }
        let dead_lettered = this.dead_letter.is_some();
        if let Some(write) = this.dead_letter.as_mut() {
            let delivered = ready!(Pin::new(&mut write.delivery).poll(cx));
            let DeadLetterWrite { topic, cause, .. } =
                *this.dead_letter.take().expect("polled above");
            // Not written: the input is not acknowledged and the pipeline stops with both
            // causes.
            if let Err(source) = delivered {
                return Poll::Ready(Err(dead_letter_failed(cause, topic, source)));
            }
        }
        Poll::Ready(Ok(Finished {
            meta: this
                .meta
                .take()
                .expect("a Settle is not polled after it is ready"),
            // Collected in place: the deliveries' allocation holds the topics.
            topics: std::mem::take(&mut this.deliveries)
                .into_iter()
                .map(|(_, topic)| topic)
                .collect(),
            dead_lettered,
        }))
    }
}

/// The oldest input in flight once it is finished (or failed), taken off the queue; `None`
/// when nothing is in flight.
fn poll_oldest(
    in_flight: &mut VecDeque<Settle>,
    cx: &mut Context<'_>,
) -> Poll<Option<Result<Finished>>> {
    let Some(oldest) = in_flight.front_mut() else {
        return Poll::Ready(None);
    };
    let finished = ready!(Pin::new(oldest).poll(cx));
    in_flight.pop_front();
    Poll::Ready(Some(finished))
}

impl<In: Event, F: Format> Pipeline<In, F> {
    pub(super) async fn run_pipelined<O, T, S>(&self, mut transform: T, shutdown: S) -> Result<()>
    where
        O: IntoOutputs<F>,
        T: FnMut(&Received<In>) -> O,
        S: Future<Output = ()>,
    {
        tokio::pin!(shutdown);
        // Every input, whatever its fate (outputs, dead-letter copy, tombstone), goes through
        // this queue, so that offsets are stored in input order.
        let mut in_flight = VecDeque::new();
        let mut stopping = false;
        loop {
            let can_read = !stopping && in_flight.len() < self.options.max_in_flight;
            let step = tokio::select! {
                () = &mut shutdown, if !stopping => Step::Stop,
                polled = self.consumer.poll(), if can_read => Step::Polled(polled?),
                Some(done) = std::future::poll_fn(|cx| poll_oldest(&mut in_flight, cx)) => Step::Done(done),
                else => break,
            };
            match step {
                Step::Stop => stopping = true,
                Step::Done(done) => {
                    let finished: Finished = done.inspect_err(|error| {
                        if matches!(error, Error::DeadLetterFailed { .. }) {
                            error!(%error, "an input's dead letter was not written; stopping without acknowledging it");
                        } else {
                            error!(%error, "an output was not delivered; stopping without acknowledging its input");
                        }
                    })?;
                    self.stats.count_produced(&finished.topics);
                    if finished.dead_lettered {
                        self.consumer.count_dead_lettered();
                    }
                    self.consumer.ack(&finished.meta)?;
                }
                Step::Polled(Polled::Event(received)) => {
                    self.stats.consumed.fetch_add(1, Ordering::Relaxed);
                    // Looked up once per input: the process span and the outputs.
                    let producer = self.producer();
                    let (parent, outputs) =
                        self.transform_traced(&producer, &received, &mut transform);
                    let records = outputs.into_records();
                    let queued = tokio::select! {
                        queued = self.enqueue_waiting(&producer, &records, parent.as_ref()) => Some(queued?),
                        () = &mut shutdown, if !stopping => None,
                    };
                    let Some(deliveries) = queued else {
                        // Shutdown during an outage: the input stays unacknowledged and is
                        // read again after a restart.
                        stopping = true;
                        continue;
                    };
                    in_flight.push_back(Settle::new(received.meta, deliveries, None));
                }
                Step::Polled(Polled::Tombstone(tombstone)) => {
                    debug!(topic = %tombstone.meta.topic, partition = tombstone.meta.partition, offset = tombstone.meta.offset, "tombstone passed over");
                    self.consumer.count_tombstone_passed();
                    in_flight.push_back(Settle::new(tombstone.meta, Vec::new(), None));
                }
                Step::Polled(Polled::Poison {
                    message,
                    meta,
                    error,
                }) => {
                    let dlq_topic = self.consumer.dead_letter_topic(&meta.topic);
                    let queued = self
                        .producer()
                        .enqueue_dead_letter(&dlq_topic, &message, &meta.location(), &error)
                        .await;
                    let delivery = match queued {
                        Ok(delivery) => delivery,
                        Err(source) => {
                            let error = dead_letter_failed(error, dlq_topic, source);
                            error!(%error, "an input's dead letter was not written; stopping without acknowledging it");
                            return Err(error);
                        }
                    };
                    self.consumer
                        .context()
                        .hooks()
                        .dead_lettered(&DeadLettered {
                            meta: &meta,
                            dlq_topic: &dlq_topic,
                            error: &error,
                            transactional: false,
                        });
                    let write = DeadLetterWrite {
                        delivery,
                        topic: dlq_topic,
                        cause: error,
                    };
                    in_flight.push_back(Settle::new(meta, Vec::new(), Some(Box::new(write))));
                }
            }
            if stopping && in_flight.is_empty() {
                break;
            }
        }
        self.producer().flush(Duration::from_secs(30)).await?;
        self.consumer.close().await
    }

    /// Encodes and queues `records` in `producer` as the next spans of `parent`'s trace
    /// (at-least-once mode),
    /// waiting out, with backoff, errors that may pass: the input is held, unacknowledged,
    /// until its outputs can be encoded.
    async fn enqueue_waiting(
        &self,
        producer: &Producer<F>,
        records: &[Box<dyn Output<F>>],
        parent: Option<&TraceContext>,
    ) -> Result<Vec<(PendingDelivery, &'static str)>> {
        let mut deliveries = Vec::with_capacity(records.len());
        for out in records {
            let out = out.as_ref();
            // The backoff is made at the first error only: an output that is queued at once
            // (the usual case) costs no retry machinery.
            let mut backoff = None;
            let pending = loop {
                match outputs::enqueue(out, producer, parent).await {
                    // Its dead letter is acknowledged: the output is done.
                    Err(error) if dead_lettered_by_rule(&error) => {
                        warn!(%error, topic = out.topic(), "an output refused by its contract is dead-lettered");
                        self.stats
                            .outputs_dead_lettered
                            .fetch_add(1, Ordering::Relaxed);
                        break None;
                    }
                    Err(error) if may_pass(&error) => {
                        let next = backoff
                            .get_or_insert_with(|| self.output_backoff().build())
                            .next();
                        let Some(wait) = next else {
                            return Err(error);
                        };
                        warn!(%error, topic = out.topic(), backoff_ms = wait.as_millis() as u64, "cannot encode an output yet; its input waits");
                        self.set_stall(Some(format!("cannot write to {}: {error}", out.topic())));
                        tokio::time::sleep(wait).await;
                    }
                    queued => break Some(queued?),
                }
            };
            if let Some(pending) = pending {
                deliveries.push((pending, out.topic()));
            }
        }
        self.set_stall(None);
        Ok(deliveries)
    }
}
