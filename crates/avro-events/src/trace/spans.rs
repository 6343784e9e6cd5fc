//! The library's own spans: with the `opentelemetry` feature, OpenTelemetry spans through the
//! global tracer provider (recorded only when the application installed one); without it,
//! nothing is recorded and a span is only the next [`TraceContext`] of its trace.

use std::fmt;

use super::TraceContext;

/// What a span stands for (OpenTelemetry's span kinds the library uses).
#[derive(Debug, Clone, Copy)]
pub(crate) enum SpanKind {
    /// Sending a record.
    Producer,
    /// Handling a record read.
    Consumer,
    /// A step that is not a record.
    Internal,
}

#[cfg(not(feature = "opentelemetry"))]
mod imp {
    use super::{SpanKind, TraceContext};

    /// Nothing to hold without OpenTelemetry.
    pub(crate) struct Spans;

    impl Spans {
        pub(crate) fn new() -> Self {
            Self
        }
    }

    /// A span never recorded.
    pub(crate) struct Span;

    impl Span {
        pub(crate) fn is_recording(&self) -> bool {
            false
        }

        pub(crate) fn delivered(&mut self, _partition: i32, _offset: i64) {}

        pub(crate) fn failed(&mut self, _error: &dyn std::fmt::Display) {}

        pub(crate) fn end(self) {}
    }

    pub(crate) fn start(
        _spans: &Spans,
        _name: &'static str,
        _kind: SpanKind,
        _topic: &str,
        parent: Option<&TraceContext>,
    ) -> (TraceContext, Span) {
        (
            parent.map_or_else(TraceContext::new_root, TraceContext::child),
            Span,
        )
    }
}

#[cfg(feature = "opentelemetry")]
mod imp {
    use std::sync::atomic::{AtomicBool, Ordering};

    use opentelemetry::{
        KeyValue,
        global::{BoxedSpan, BoxedTracer},
        trace::{Span as _, Status, Tracer as _},
    };

    use super::{SpanKind, TraceContext};

    /// The library's OpenTelemetry tracer, taken from the global provider when a client is
    /// created (a no-op one unless the application installed a provider before).
    pub(crate) struct Spans {
        tracer: BoxedTracer,
        /// Set once the tracer handed back a span without ids of its own: OpenTelemetry's
        /// no-op tracer (no provider was installed when it was taken) or a provider shut
        /// down. Neither ever records again, so later spans skip OpenTelemetry altogether
        /// and only draw their ids (the trace propagates all the same).
        inert: AtomicBool,
    }

    impl Spans {
        pub(crate) fn new() -> Self {
            Self {
                tracer: opentelemetry::global::tracer("avro-events"),
                inert: AtomicBool::new(false),
            }
        }

        /// Whether spans skip OpenTelemetry now (see the `inert` field).
        #[cfg(test)]
        pub(crate) fn is_inert(&self) -> bool {
            self.inert.load(Ordering::Relaxed)
        }
    }

    /// An OpenTelemetry span (none when the tracer records nothing); ended when dropped if
    /// not before.
    pub(crate) struct Span(Option<BoxedSpan>);

    impl Span {
        pub(crate) fn is_recording(&self) -> bool {
            self.0.as_ref().is_some_and(|span| span.is_recording())
        }

        pub(crate) fn delivered(&mut self, partition: i32, offset: i64) {
            if let Some(span) = &mut self.0 {
                span.set_attributes([
                    KeyValue::new("messaging.destination.partition.id", partition.to_string()),
                    KeyValue::new("messaging.kafka.offset", offset),
                ]);
            }
        }

        pub(crate) fn failed(&mut self, error: &dyn std::fmt::Display) {
            if let Some(span) = &mut self.0 {
                span.set_status(Status::error(error.to_string()));
            }
        }

        pub(crate) fn end(self) {
            if let Some(mut span) = self.0 {
                span.end();
            }
        }
    }

    pub(crate) fn start(
        spans: &Spans,
        name: &'static str,
        kind: SpanKind,
        topic: &str,
        parent: Option<&TraceContext>,
    ) -> (TraceContext, Span) {
        if spans.inert.load(Ordering::Relaxed) {
            let context = match parent {
                Some(parent) => parent.child(),
                None => TraceContext::current().map_or_else(TraceContext::new_root, |p| p.child()),
            };
            return (context, Span(None));
        }
        let parent = match parent {
            Some(parent) => Some(parent.clone()),
            None => TraceContext::current(),
        };
        let parent_cx = parent
            .as_ref()
            .map_or_else(opentelemetry::Context::new, TraceContext::to_context);
        let kind = match kind {
            SpanKind::Producer => opentelemetry::trace::SpanKind::Producer,
            SpanKind::Consumer => opentelemetry::trace::SpanKind::Consumer,
            SpanKind::Internal => opentelemetry::trace::SpanKind::Internal,
        };
        let mut span = spans
            .tracer
            .span_builder(name)
            .with_kind(kind)
            .start_with_context(&spans.tracer, &parent_cx);
        let parent_id = parent.as_ref().map(TraceContext::span_id);
        // A no-op tracer hands back the parent's context (or an invalid one): then the ids
        // are drawn here, and so from now on without asking the tracer (a tracer that gives
        // no span ids of its own never will: it is the no-op one or its provider is shut down).
        let context = match TraceContext::from_span_context(span.span_context().clone()) {
            Some(made) if Some(made.span_id()) != parent_id => TraceContext {
                parent: parent_id,
                ..made
            },
            _ => {
                spans.inert.store(true, Ordering::Relaxed);
                parent.map_or_else(TraceContext::new_root, |p| p.child())
            }
        };
        if span.is_recording() && !topic.is_empty() {
            span.set_attributes([
                KeyValue::new("messaging.system", "kafka"),
                KeyValue::new("messaging.destination.name", topic.to_owned()),
            ]);
        }
        (context, Span(Some(span)))
    }
}

pub(crate) use imp::{Span, Spans};

impl fmt::Debug for Spans {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Spans")
    }
}

/// Starts a span of `kind` named `name` on `topic` (none: empty): a child of `parent`, else
/// (with the `opentelemetry` feature) of OpenTelemetry's current span, else a new trace.
/// Returns its context (the one for the record's headers) and the span, recorded only with
/// the `opentelemetry` feature and a tracer provider installed.
pub(crate) fn start_span(
    spans: &Spans,
    name: &'static str,
    kind: SpanKind,
    topic: &str,
    parent: Option<&TraceContext>,
) -> (TraceContext, Span) {
    imp::start(spans, name, kind, topic, parent)
}

/// OpenTelemetry's types for a [`TraceContext`], and its current span.
#[cfg(feature = "opentelemetry")]
impl TraceContext {
    /// The span active in OpenTelemetry's current context, if any (with an SDK tracer or
    /// `tracing-opentelemetry` installed and a span entered).
    #[cfg_attr(docsrs, doc(cfg(feature = "opentelemetry")))]
    pub fn current() -> Option<Self> {
        use opentelemetry::trace::TraceContextExt as _;
        Self::from_span_context(
            opentelemetry::Context::current()
                .span()
                .span_context()
                .clone(),
        )
    }

    /// The context of an OpenTelemetry span (e.g. `span.span_context()` of a span of your
    /// own); `None` when it is not valid.
    #[cfg_attr(docsrs, doc(cfg(feature = "opentelemetry")))]
    pub fn from_span_context(span: opentelemetry::trace::SpanContext) -> Option<Self> {
        if !span.is_valid() {
            return None;
        }
        Some(Self {
            trace_id: super::TraceId::from_bytes(span.trace_id().to_bytes())?,
            span_id: super::SpanId::from_bytes(span.span_id().to_bytes())?,
            sampled: span.is_sampled(),
            state: span.trace_state().header(),
            parent: None,
        })
    }

    /// The OpenTelemetry span context of this span (remote: read from or meant for a record).
    #[cfg_attr(docsrs, doc(cfg(feature = "opentelemetry")))]
    pub fn span_context(&self) -> opentelemetry::trace::SpanContext {
        use opentelemetry::trace::{SpanContext, TraceFlags, TraceState};
        let flags = if self.sampled {
            TraceFlags::SAMPLED
        } else {
            TraceFlags::default()
        };
        // The state was checked as W3C defines it when it was read.
        let state = if self.state.is_empty() {
            TraceState::default()
        } else {
            self.state.parse::<TraceState>().unwrap_or_default()
        };
        SpanContext::new(
            opentelemetry::trace::TraceId::from_bytes(self.trace_id.to_bytes()),
            opentelemetry::trace::SpanId::from_bytes(self.span_id.to_bytes()),
            flags,
            true,
            state,
        )
    }

    /// An OpenTelemetry [`Context`](opentelemetry::Context) with this span as its remote
    /// parent, to start spans of your own under it.
    #[cfg_attr(docsrs, doc(cfg(feature = "opentelemetry")))]
    pub fn to_context(&self) -> opentelemetry::Context {
        use opentelemetry::trace::TraceContextExt as _;
        opentelemetry::Context::new().with_remote_span_context(self.span_context())
    }
}

#[cfg(all(test, feature = "opentelemetry"))]
mod tests {
    use super::*;

    /// No tracer provider is installed in this test binary: the global tracer is
    /// OpenTelemetry's no-op one.
    #[test]
    fn without_a_tracer_provider_spans_skip_opentelemetry_and_still_continue_the_trace() {
        let spans = Spans::new();
        let order = TraceContext::from_traceparent(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            Some("vendor=abc"),
        )
        .unwrap();
        assert!(!spans.is_inert());
        for round in 0..2 {
            let (context, span) = start_span(&spans, "send", SpanKind::Producer, "t", Some(&order));
            assert!(!span.is_recording(), "round {round}");
            assert_eq!(context.trace_id(), order.trace_id(), "round {round}");
            assert_ne!(context.span_id(), order.span_id(), "round {round}");
            assert_eq!(
                context.parent_span_id(),
                Some(order.span_id()),
                "round {round}"
            );
            assert_eq!(context.state(), "vendor=abc", "round {round}");
            assert!(context.is_sampled(), "round {round}");
            span.end();
            // The first span showed the tracer draws no ids of its own.
            assert!(spans.is_inert(), "round {round}");
        }
        // No parent and no current span: a new trace each time.
        let (a, _) = start_span(&spans, "send", SpanKind::Producer, "t", None);
        let (b, _) = start_span(&spans, "send", SpanKind::Producer, "t", None);
        assert_ne!(a.trace_id(), b.trace_id());
        assert_eq!(a.parent_span_id(), None);
    }
}
