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
    use opentelemetry::{
        KeyValue,
        global::{BoxedSpan, BoxedTracer},
        trace::{Span as _, Status, Tracer as _},
    };

    use super::{SpanKind, TraceContext};

    /// The library's OpenTelemetry tracer, taken from the global provider when a client is
    /// created (a no-op one unless the application installed a provider before).
    pub(crate) struct Spans(BoxedTracer);

    impl Spans {
        pub(crate) fn new() -> Self {
            Self(opentelemetry::global::tracer("avro-events"))
        }
    }

    /// An OpenTelemetry span; ended when dropped if not before.
    pub(crate) struct Span(BoxedSpan);

    impl Span {
        pub(crate) fn is_recording(&self) -> bool {
            self.0.is_recording()
        }

        pub(crate) fn delivered(&mut self, partition: i32, offset: i64) {
            self.0.set_attributes([
                KeyValue::new("messaging.destination.partition.id", partition.to_string()),
                KeyValue::new("messaging.kafka.offset", offset),
            ]);
        }

        pub(crate) fn failed(&mut self, error: &dyn std::fmt::Display) {
            self.0.set_status(Status::error(error.to_string()));
        }

        pub(crate) fn end(mut self) {
            self.0.end();
        }
    }

    pub(crate) fn start(
        spans: &Spans,
        name: &'static str,
        kind: SpanKind,
        topic: &str,
        parent: Option<&TraceContext>,
    ) -> (TraceContext, Span) {
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
            .0
            .span_builder(name)
            .with_kind(kind)
            .start_with_context(&spans.0, &parent_cx);
        let parent_id = parent.as_ref().map(TraceContext::span_id);
        // A no-op tracer hands back the parent's context (or an invalid one): then the ids
        // are drawn here.
        let context = match TraceContext::from_span_context(span.span_context().clone()) {
            Some(made) if Some(made.span_id()) != parent_id => TraceContext {
                parent: parent_id,
                ..made
            },
            _ => parent.map_or_else(TraceContext::new_root, |p| p.child()),
        };
        if span.is_recording() && !topic.is_empty() {
            span.set_attributes([
                KeyValue::new("messaging.system", "kafka"),
                KeyValue::new("messaging.destination.name", topic.to_owned()),
            ]);
        }
        (context, Span(span))
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
        let state = self.state.parse::<TraceState>().unwrap_or_default();
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
