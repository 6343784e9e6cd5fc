//! What a queued record resolves to: [`PendingDelivery`], a named future (no allocation per
//! record), and [`Delivered`], where the broker stored it.

use std::{
    fmt,
    pin::Pin,
    task::{Context, Poll},
};

use rdkafka::{error::KafkaError, producer::DeliveryFuture};
use tracing::debug;

use crate::{
    Error, Result,
    context::{KafkaContext, Refusal},
    error::KafkaOperation,
};

/// Where the broker stored a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The offset in the partition.
    pub offset: i64,
}

/// A boxed future of a client's first refusal.
type Refused = Pin<Box<dyn Future<Output = Refusal> + Send>>;

/// A record handed to librdkafka, acknowledged when awaited: resolves to where the broker
/// stored it ([`Delivered`]), or to the error that kept it from being stored. It fails at once,
/// rather than at `message.timeout.ms`, when a broker refuses the client's credentials or
/// librdkafka raises a fatal error ([`Error::Authentication`], [`Error::Fatal`]).
///
/// A named type that is [`Unpin`]: keep many in a `Vec` and await them (or `&mut` them) in
/// turn. Queuing a record allocates no future for it; only a delivery still unreported when
/// it is first polled allocates the wait for a refusal, and only a record whose OpenTelemetry
/// span is recorded is boxed. Polling it again once it has resolved panics, as an `async`
/// block does.
#[must_use = "a record's delivery is known only when its PendingDelivery is awaited"]
pub struct PendingDelivery(State);

enum State {
    /// Queued in librdkafka.
    Queued(Queued),
    /// Queued, with work to do when it resolves (the OpenTelemetry span to end).
    Boxed(Pin<Box<dyn Future<Output = Result<Delivered>> + Send>>),
    /// Resolved.
    Done,
}

/// A record queued in librdkafka: its delivery report, and the client's refusal.
struct Queued {
    delivery: DeliveryFuture,
    topic: String,
    context: KafkaContext,
    /// Made at the first poll that finds the delivery unreported.
    refused: Option<Refused>,
}

impl PendingDelivery {
    /// The delivery of a record queued on `topic` by the client of `context`.
    pub(crate) fn queued(delivery: DeliveryFuture, topic: &str, context: &KafkaContext) -> Self {
        Self(State::Queued(Queued {
            delivery,
            topic: topic.to_owned(),
            context: context.clone(),
            refused: None,
        }))
    }

    /// A delivery that `future` resolves (e.g. ending a span first).
    pub(crate) fn boxed(future: impl Future<Output = Result<Delivered>> + Send + 'static) -> Self {
        Self(State::Boxed(Box::pin(future)))
    }
}

impl fmt::Debug for PendingDelivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.0 {
            State::Queued(queued) => queued.topic.as_str(),
            State::Boxed(_) => "queued, traced",
            State::Done => "resolved",
        };
        f.debug_tuple("PendingDelivery").field(&state).finish()
    }
}

impl Future for PendingDelivery {
    type Output = Result<Delivered>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let output = match &mut self.0 {
            State::Queued(queued) => match queued.poll(cx) {
                Poll::Ready(output) => output,
                Poll::Pending => return Poll::Pending,
            },
            State::Boxed(future) => match future.as_mut().poll(cx) {
                Poll::Ready(output) => output,
                Poll::Pending => return Poll::Pending,
            },
            State::Done => panic!("PendingDelivery polled after it resolved"),
        };
        self.0 = State::Done;
        Poll::Ready(output)
    }
}

impl Queued {
    /// The delivery report first, then the refusal (as a biased `select!` would).
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Result<Delivered>> {
        if let Poll::Ready(delivered) = Pin::new(&mut self.delivery).poll(cx) {
            return Poll::Ready(self.reported(delivered));
        }
        let refused = self.refused.get_or_insert_with(|| {
            let context = self.context.clone();
            Box::pin(async move { context.refused().await })
        });
        match refused.as_mut().poll(cx) {
            Poll::Ready(refusal) => Poll::Ready(Err(self
                .context
                .refusal_error(refusal, KafkaOperation::Produce))),
            Poll::Pending => Poll::Pending,
        }
    }

    /// What librdkafka reported.
    fn reported(&mut self, delivered: <DeliveryFuture as Future>::Output) -> Result<Delivered> {
        let topic = std::mem::take(&mut self.topic);
        match delivered {
            Ok(Ok(d)) => {
                debug!(
                    topic,
                    partition = d.partition,
                    offset = d.offset,
                    "delivered"
                );
                Ok(Delivered {
                    topic,
                    partition: d.partition,
                    offset: d.offset,
                })
            }
            Ok(Err((source, _))) => Err(Error::Kafka {
                operation: KafkaOperation::Produce,
                topic: Some(topic),
                source,
            }),
            Err(_) => Err(Error::Kafka {
                operation: KafkaOperation::Produce,
                topic: Some(topic),
                source: KafkaError::Canceled,
            }),
        }
    }
}
