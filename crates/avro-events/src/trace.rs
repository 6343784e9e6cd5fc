//! W3C trace context through Kafka: every record the library produces carries a `traceparent`
//! header (and `tracestate` when there is one), so one order can be followed across services.
//!
//! - **Producing.** [`Producer::send`](crate::Producer::send) and its siblings start a new
//!   trace for each record, unless OpenTelemetry's current context
//!   ([`opentelemetry::Context::current`]) holds a span, which the record then continues.
//!   [`Producer::send_traced`](crate::Producer::send_traced) and
//!   [`Producer::enqueue_traced`](crate::Producer::enqueue_traced) continue a trace given
//!   explicitly: the record gets the same trace id, a new span id, and the given span as its
//!   parent. A `traceparent` the caller put in the record's own [`Headers`] is sent as it is.
//! - **Consuming.** [`Received::trace`](crate::Received::trace) (and
//!   [`Tombstone::trace`](crate::Tombstone::trace), [`Record::trace`](crate::Record::trace))
//!   read the record's context back; the consumer's per-record `receive` span carries its
//!   `trace_id` field (at DEBUG level).
//! - **Pipelines** continue the input's trace on every output: same trace id, new span id,
//!   the input's span as parent. The transform runs inside a `process` span (DEBUG) with the
//!   input's `trace_id`, so what it logs carries the trace id.
//! - **Later.** A service that produces long after it consumed (a button pressed on a page
//!   showing a pick list) keeps the [`TraceContext`] (it is `Clone + Send + Sync`), or its
//!   [`TraceContext::traceparent`] text and reads it back with
//!   [`TraceContext::from_traceparent`], and sends with
//!   [`Producer::send_traced`](crate::Producer::send_traced).
//!
//! The library depends on OpenTelemetry's API only, never on an SDK (that is the application's
//! choice, in the version it wants): without a tracer provider it draws span ids itself (from
//! the operating system's random source) and writes and reads `traceparent` as W3C trace
//! context defines it. When an application installs a tracer provider
//! ([`opentelemetry::global::set_tracer_provider`]) *before* creating its producers and
//! consumers, the library records a `send` span (kind producer) per record produced, whose
//! span id is the one in the record's `traceparent`, and a `process` span (kind consumer) per
//! record a pipeline handles, so an exporter sees the whole trace.
//!
//! ```
//! use avro_events::{Headers, trace::TraceContext};
//!
//! let received = TraceContext::from_traceparent(
//!     "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
//!     None,
//! )
//! .unwrap();
//! let next = received.child();
//! assert_eq!(next.trace_id(), received.trace_id());
//! assert_ne!(next.span_id(), received.span_id());
//! assert_eq!(next.parent_span_id(), Some(received.span_id()));
//!
//! let mut headers = Headers::new().with("source", "checkout");
//! next.inject(&mut headers);
//! assert_eq!(TraceContext::from_headers(&headers).unwrap().span_id(), next.span_id());
//! assert_eq!(headers.get_str("source"), Some("checkout"));
//! ```

use std::{fmt, str::FromStr as _};

use opentelemetry::{
    Context,
    trace::{SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState},
};

use crate::Headers;

/// The header carrying the W3C trace parent (`00-<trace id>-<span id>-<flags>`).
pub const TRACEPARENT: &str = "traceparent";
/// The header carrying the W3C trace state (vendor entries), when there are any.
pub const TRACESTATE: &str = "tracestate";

/// The W3C trace context of one span: a trace id, a span id, flags and trace state, and
/// (when this process made the span) the id of its parent.
///
/// A record's context names the span that produced it; [`TraceContext::child`] is the next
/// span of the same trace.
#[derive(Clone, PartialEq)]
pub struct TraceContext {
    span: SpanContext,
    parent: Option<SpanId>,
}

impl fmt::Debug for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TraceContext")
            .field("traceparent", &self.traceparent())
            .field("parent_span_id", &self.parent.map(|p| p.to_string()))
            .finish()
    }
}

/// `traceparent` text.
impl fmt::Display for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.traceparent())
    }
}

impl TraceContext {
    /// A new trace: a random trace id and span id, sampled, no parent.
    pub fn new_root() -> Self {
        Self {
            span: SpanContext::new(
                TraceId::from_bytes(ids::random()),
                SpanId::from_bytes(ids::random()),
                TraceFlags::SAMPLED,
                false,
                Default::default(),
            ),
            parent: None,
        }
    }

    /// The next span of this trace: the same trace id, flags and state, a new span id, this
    /// span as parent.
    pub fn child(&self) -> Self {
        Self {
            span: SpanContext::new(
                self.span.trace_id(),
                SpanId::from_bytes(ids::random()),
                self.span.trace_flags(),
                false,
                self.span.trace_state().clone(),
            ),
            parent: Some(self.span.span_id()),
        }
    }

    /// The context in `headers` (`traceparent`, and `tracestate` when present); `None` when
    /// there is no valid `traceparent`.
    pub fn from_headers(headers: &Headers) -> Option<Self> {
        Self::from_traceparent(headers.get_str(TRACEPARENT)?, headers.get_str(TRACESTATE))
    }

    /// The context of a `traceparent` text (and `tracestate`, if any), as received in HTTP
    /// headers or kept from a record; `None` when `traceparent` is not valid W3C trace
    /// context.
    pub fn from_traceparent(traceparent: &str, tracestate: Option<&str>) -> Option<Self> {
        let (trace_id, span_id, flags) = w3c::parse_traceparent(traceparent)?;
        // A `tracestate` that is not valid is dropped, the `traceparent` kept (W3C).
        let state = tracestate
            .and_then(|state| TraceState::from_str(state).ok())
            .unwrap_or_default();
        Self::from_span_context(SpanContext::new(trace_id, span_id, flags, true, state))
    }

    /// The context of an OpenTelemetry span (e.g. `span.span_context()` of a span of your
    /// own); `None` when it is not valid.
    pub fn from_span_context(span: SpanContext) -> Option<Self> {
        span.is_valid().then_some(Self { span, parent: None })
    }

    /// The span active in OpenTelemetry's current context, if any (with an SDK tracer or
    /// `tracing-opentelemetry` installed and a span entered).
    pub fn current() -> Option<Self> {
        Self::of(&Context::current())
    }

    fn of(cx: &Context) -> Option<Self> {
        Self::from_span_context(cx.span().span_context().clone())
    }

    /// The trace id (32 lowercase hex digits when displayed).
    pub fn trace_id(&self) -> TraceId {
        self.span.trace_id()
    }

    /// This span's id (16 lowercase hex digits when displayed).
    pub fn span_id(&self) -> SpanId {
        self.span.span_id()
    }

    /// The parent span's id, when this context was made here as a child
    /// ([`TraceContext::child`], or by a producer continuing a trace); `None` for a root or
    /// a context read from headers (W3C trace context does not carry the parent's parent).
    pub fn parent_span_id(&self) -> Option<SpanId> {
        self.parent
    }

    /// Whether the trace is sampled (the `01` flag).
    pub fn is_sampled(&self) -> bool {
        self.span.is_sampled()
    }

    /// The OpenTelemetry span context.
    pub fn span_context(&self) -> &SpanContext {
        &self.span
    }

    /// An OpenTelemetry [`Context`] with this span as its remote parent, to start spans of
    /// your own under it.
    pub fn to_context(&self) -> Context {
        Context::new().with_remote_span_context(self.span.clone())
    }

    /// The header fields: `traceparent`, and `tracestate` when the state is not empty.
    pub fn fields(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::with_capacity(2);
        out.push((TRACEPARENT, self.traceparent()));
        if let Some(state) = self.tracestate() {
            out.push((TRACESTATE, state));
        }
        out
    }

    /// The `traceparent` text (`00-<trace id>-<span id>-<flags>`).
    pub fn traceparent(&self) -> String {
        w3c::traceparent(&self.span)
    }

    /// The `tracestate` text, `None` when the state is empty.
    pub fn tracestate(&self) -> Option<String> {
        let state = self.span.trace_state().header();
        (!state.is_empty()).then_some(state)
    }

    /// Records a step of this trace that is not a record (showing a pick list, handling a
    /// request): an OpenTelemetry span named `name`, a child of this span, started and ended
    /// now through the global tracer provider (nothing is recorded without one). Returns the
    /// step's context.
    pub fn record_child(&self, name: &'static str) -> Self {
        let (context, mut span) = start_span(
            &Spans::new(),
            name,
            opentelemetry::trace::SpanKind::Internal,
            "",
            Some(self),
        );
        opentelemetry::trace::Span::end(&mut span);
        context
    }

    /// Puts this context in `headers`, replacing any `traceparent` and `tracestate` there;
    /// other headers are kept.
    pub fn inject(&self, headers: &mut Headers) {
        headers.retain(|h| h.key != TRACEPARENT && h.key != TRACESTATE);
        for (key, value) in self.fields() {
            headers.push(key, Some(value.into_bytes()));
        }
    }
}

/// W3C `traceparent` text, as OpenTelemetry's `TraceContextPropagator` writes and reads it.
mod w3c {
    use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId};

    /// Version 00 of the format.
    const VERSION: &str = "00";

    pub(super) fn traceparent(span: &SpanContext) -> String {
        format!(
            "{VERSION}-{}-{}-{:02x}",
            span.trace_id(),
            span.span_id(),
            span.trace_flags() & TraceFlags::SAMPLED
        )
    }

    /// The trace id, span id and flags of `text`; `None` when it is not a valid
    /// `traceparent`: a version other than two lowercase hex digits (or `ff`), a version 00
    /// with more than four fields, ids of the wrong length, not lowercase hex or all zero.
    /// Versions above 00 are read as 00 (their extra fields ignored), as the standard asks.
    pub(super) fn parse_traceparent(text: &str) -> Option<(TraceId, SpanId, TraceFlags)> {
        let mut parts = text.trim().split('-');
        let version = parts.next()?;
        let (trace_id, span_id, flags) = (parts.next()?, parts.next()?, parts.next()?);
        if !hex_of_len(version, 2)
            || version == "ff"
            || (version == VERSION && parts.next().is_some())
        {
            return None;
        }
        if !hex_of_len(trace_id, 32) || !hex_of_len(span_id, 16) || !hex_of_len(flags, 2) {
            return None;
        }
        let trace_id = TraceId::from_hex(trace_id).ok()?;
        let span_id = SpanId::from_hex(span_id).ok()?;
        let flags = u8::from_str_radix(flags, 16).ok()?;
        if trace_id == TraceId::INVALID || span_id == SpanId::INVALID {
            return None;
        }
        Some((
            trace_id,
            span_id,
            TraceFlags::new(flags) & TraceFlags::SAMPLED,
        ))
    }

    fn hex_of_len(text: &str, len: usize) -> bool {
        text.len() == len && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    }
}

/// Random trace and span ids.
mod ids {
    use std::{
        collections::hash_map::RandomState,
        hash::{BuildHasher as _, Hasher as _},
        sync::atomic::{AtomicU64, Ordering},
    };

    /// `N` random bytes, never all zero (an all-zero id is invalid): from the operating
    /// system's source, or, should it fail, from std's randomly keyed SipHash over a counter.
    pub(super) fn random<const N: usize>() -> [u8; N] {
        let mut bytes = [0; N];
        while bytes.iter().all(|b| *b == 0) {
            if getrandom::fill(&mut bytes).is_err() {
                fallback(&mut bytes);
            }
        }
        bytes
    }

    fn fallback(bytes: &mut [u8]) {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        for chunk in bytes.chunks_mut(8) {
            let mut hasher = RandomState::new().build_hasher();
            hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
            chunk.copy_from_slice(&hasher.finish().to_le_bytes()[..chunk.len()]);
        }
    }
}

pub(crate) use spans::{Spans, start_span};

mod spans {
    use opentelemetry::{
        KeyValue,
        global::{BoxedSpan, BoxedTracer},
        trace::{Span as _, SpanKind, Tracer as _},
    };

    use super::TraceContext;

    /// The library's OpenTelemetry tracer, taken from the global provider when a client is
    /// created (a no-op one unless the application installed a provider before).
    pub(crate) struct Spans(BoxedTracer);

    impl Spans {
        pub(crate) fn new() -> Self {
            Self(opentelemetry::global::tracer("avro-events"))
        }
    }

    /// Starts a span of `kind` named `name` on `topic` (none: empty): a child of `parent`, else of
    /// OpenTelemetry's current span, else a new trace. Returns its context (the one for the
    /// record's headers) and the span, recorded only when a tracer provider is installed.
    pub(crate) fn start_span(
        spans: &Spans,
        name: &'static str,
        kind: SpanKind,
        topic: &str,
        parent: Option<&TraceContext>,
    ) -> (TraceContext, BoxedSpan) {
        let parent = match parent {
            Some(parent) => Some(parent.clone()),
            None => TraceContext::current(),
        };
        let parent_cx = parent
            .as_ref()
            .map_or_else(opentelemetry::Context::new, TraceContext::to_context);
        let mut span = spans
            .0
            .span_builder(name)
            .with_kind(kind)
            .start_with_context(&spans.0, &parent_cx);
        let made = span.span_context().clone();
        let parent_id = parent.as_ref().map(TraceContext::span_id);
        // A no-op tracer hands back the parent's context (or an invalid one): then the ids
        // are drawn here.
        let context = if made.is_valid() && Some(made.span_id()) != parent_id {
            TraceContext {
                span: made,
                parent: parent_id,
            }
        } else {
            parent.map_or_else(TraceContext::new_root, |p| p.child())
        };
        if span.is_recording() && !topic.is_empty() {
            span.set_attributes([
                KeyValue::new("messaging.system", "kafka"),
                KeyValue::new("messaging.destination.name", topic.to_owned()),
            ]);
        }
        (context, span)
    }
}

impl Headers {
    /// The W3C trace context in these headers (`traceparent`, `tracestate`), if valid.
    pub fn trace(&self) -> Option<TraceContext> {
        TraceContext::from_headers(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_round_trips_with_state() {
        let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let ctx = TraceContext::from_traceparent(parent, Some("vendor=abc,other=1")).unwrap();
        assert_eq!(ctx.traceparent(), parent);
        assert_eq!(ctx.tracestate().as_deref(), Some("vendor=abc,other=1"));
        assert_eq!(
            ctx.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert!(ctx.is_sampled());
        let child = ctx.child();
        assert_eq!(child.tracestate().as_deref(), Some("vendor=abc,other=1"));
        assert_eq!(child.parent_span_id(), Some(ctx.span_id()));
    }

    #[test]
    fn invalid_traceparents_are_refused() {
        for bad in [
            "",
            "garbage",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert!(TraceContext::from_traceparent(bad, None).is_none(), "{bad}");
        }
    }

    #[test]
    fn traceparent_is_read_as_w3c_defines_it() {
        let ids = "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7";
        // Flags other than "sampled" are not kept; a later version's extra fields are ignored.
        let ctx = TraceContext::from_traceparent(&format!("00-{ids}-03"), None).unwrap();
        assert_eq!(ctx.traceparent(), format!("00-{ids}-01"));
        let unsampled = TraceContext::from_traceparent(&format!("00-{ids}-00"), None).unwrap();
        assert!(!unsampled.is_sampled());
        let later = TraceContext::from_traceparent(&format!("cc-{ids}-01-future"), None).unwrap();
        assert_eq!(later.traceparent(), format!("00-{ids}-01"));
        for bad in [
            format!("00-{ids}-01-extra"),
            format!("00-{}-01", ids.to_uppercase()),
            format!("0-{ids}-01"),
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01".to_owned(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-01".to_owned(),
            format!("00-{ids}-1"),
            format!("00-{ids}"),
        ] {
            assert!(
                TraceContext::from_traceparent(&bad, None).is_none(),
                "{bad}"
            );
        }
        // A tracestate that is not valid is dropped; the traceparent stands.
        let ctx = TraceContext::from_traceparent(&format!("00-{ids}-01"), Some("no equals sign"))
            .unwrap();
        assert_eq!(ctx.tracestate(), None);
    }

    #[test]
    fn roots_are_distinct_and_inject_replaces_only_trace_headers() {
        let (a, b) = (TraceContext::new_root(), TraceContext::new_root());
        assert_ne!(a.trace_id(), b.trace_id());
        assert_eq!(a.parent_span_id(), None);
        let mut headers = Headers::new()
            .with(TRACEPARENT, b.traceparent())
            .with("source", "checkout");
        a.inject(&mut headers);
        assert_eq!(headers.len(), 2);
        assert_eq!(headers.get_str(TRACEPARENT), Some(a.traceparent().as_str()));
        assert_eq!(headers.get_str("source"), Some("checkout"));
        assert_eq!(
            TraceContext::from_headers(&headers).unwrap().span_id(),
            a.span_id()
        );
    }
}
