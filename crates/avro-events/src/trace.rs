use std::fmt;

use crate::Headers;

mod ids;
mod spans;
mod w3c;

pub use ids::{SpanId, TraceId};
pub(crate) use spans::{SpanKind, Spans, start_span};

/// The header carrying the W3C trace parent (`00-<trace id>-<span id>-<flags>`).
pub(crate) const TRACEPARENT: &str = "traceparent";
/// The header carrying the W3C trace state (vendor entries), when there are any.
pub(crate) const TRACESTATE: &str = "tracestate";

/// The W3C trace context of one span: a trace id, a span id, flags and trace state, and
/// (when this process made the span) the id of its parent.
///
/// A record's context names the span that produced it; [`TraceContext::child`] is the next
/// span of the same trace.
///
/// # Trace propagation
///
/// W3C trace context through Kafka: every record the library produces carries a `traceparent`
/// header (and `tracestate` when there is one), so one order can be followed across services.
///
/// - **Producing.** [`Producer::send`](crate::Producer::send) and its siblings start a new
///   trace for each record (with the `opentelemetry` feature: unless OpenTelemetry's current
///   context holds a span, which the record then continues).
///   [`Producer::send_traced`](crate::Producer::send_traced) and
///   [`Producer::enqueue_traced`](crate::Producer::enqueue_traced) continue a trace given
///   explicitly: the record gets the same trace id, a new span id, and the given span as its
///   parent. A `traceparent` the caller put in the record's own [`Headers`] is sent as it is.
/// - **Consuming.** [`Received::trace`](crate::Received::trace) (and
///   [`Tombstone::trace`](crate::Tombstone::trace), [`Record::trace`](crate::Record::trace))
///   read the record's context back; the consumer's per-record `receive` span carries its
///   `trace_id` field (at DEBUG level).
/// - **Pipelines** continue the input's trace on every output: same trace id, new span id,
///   the input's span as parent. The transform runs inside a `process` span (DEBUG) with the
///   input's `trace_id`, so what it logs carries the trace id.
/// - **Later.** A service that produces long after it consumed (a button pressed on a page
///   showing a pick list) keeps the [`TraceContext`] (it is `Clone + Send + Sync`), or its
///   [`TraceContext::traceparent`] text and reads it back with
///   [`TraceContext::from_traceparent`], and sends with
///   [`Producer::send_traced`](crate::Producer::send_traced).
///
/// Trace propagation needs no OpenTelemetry crate: the library writes and reads `traceparent`
/// and `tracestate` as W3C trace context defines them and draws span ids itself (from a
/// thread-local generator seeded from the operating system's random source). That is the
/// default build: records carry and continue traces, pipelines continue each input's trace,
/// and no span is recorded anywhere.
///
/// With the `opentelemetry` feature (off by default), the library also speaks OpenTelemetry's
/// API crate (`opentelemetry`, never an SDK: that is the application's choice, in the version
/// it wants). A record then continues OpenTelemetry's current span when there is one
/// (`TraceContext::current`), and when the application installs a tracer provider
/// (`opentelemetry::global::set_tracer_provider`) *before* creating its producers and
/// consumers, the library records a `send` span (kind producer) per record produced, whose
/// span id is the one in the record's `traceparent`, and a `process` span (kind consumer) per
/// record a pipeline handles, so an exporter sees the whole trace. The application's
/// `opentelemetry` must be the version this crate's feature uses (0.33), or the two do not
/// share a global provider. Without a provider (OpenTelemetry's no-op tracer), the library
/// stops asking the tracer after its first span and only draws span ids: a record costs no
/// OpenTelemetry call.
///
/// ```
/// use avro_events::{Headers, TraceContext};
///
/// let received = TraceContext::from_traceparent(
///     "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
///     None,
/// )
/// .unwrap();
/// let next = received.child();
/// assert_eq!(next.trace_id(), received.trace_id());
/// assert_ne!(next.span_id(), received.span_id());
/// assert_eq!(next.parent_span_id(), Some(received.span_id()));
///
/// let mut headers = Headers::new().with("source", "checkout");
/// next.inject(&mut headers);
/// assert_eq!(TraceContext::from_headers(&headers).unwrap().span_id(), next.span_id());
/// assert_eq!(headers.get_str("source"), Some("checkout"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct TraceContext {
    trace_id: TraceId,
    span_id: SpanId,
    sampled: bool,
    /// Valid W3C `tracestate` text, or empty.
    state: String,
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
            trace_id: TraceId::random(),
            span_id: SpanId::random(),
            sampled: true,
            state: String::new(),
            parent: None,
        }
    }

    /// The next span of this trace: the same trace id, flags and state, a new span id, this
    /// span as parent.
    pub fn child(&self) -> Self {
        Self {
            trace_id: self.trace_id,
            span_id: SpanId::random(),
            sampled: self.sampled,
            state: self.state.clone(),
            parent: Some(self.span_id),
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
        let (trace_id, span_id, sampled) = w3c::parse_traceparent(traceparent)?;
        // A `tracestate` that is not valid is dropped, the `traceparent` kept (W3C).
        let state = tracestate
            .and_then(w3c::normalize_tracestate)
            .unwrap_or_default();
        Some(Self {
            trace_id,
            span_id,
            sampled,
            state,
            parent: None,
        })
    }

    /// The trace id (32 lowercase hex digits when displayed).
    pub fn trace_id(&self) -> TraceId {
        self.trace_id
    }

    /// This span's id (16 lowercase hex digits when displayed).
    pub fn span_id(&self) -> SpanId {
        self.span_id
    }

    /// The parent span's id, when this context was made here as a child
    /// ([`TraceContext::child`], or by a producer continuing a trace); `None` for a root or
    /// a context read from headers (W3C trace context does not carry the parent's parent).
    pub fn parent_span_id(&self) -> Option<SpanId> {
        self.parent
    }

    /// Whether the trace is sampled (the `01` flag).
    pub fn is_sampled(&self) -> bool {
        self.sampled
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
        w3c::traceparent(self.trace_id, self.span_id, self.sampled)
    }

    /// The `tracestate` text, `None` when the state is empty.
    pub fn tracestate(&self) -> Option<String> {
        (!self.state.is_empty()).then(|| self.state.clone())
    }

    /// [`TraceContext::traceparent`] as the header's bytes, built on the stack: what a
    /// producer puts in each record without allocating the text.
    pub(crate) fn traceparent_bytes(&self) -> [u8; w3c::TRACEPARENT_LEN] {
        w3c::traceparent_bytes(self.trace_id, self.span_id, self.sampled)
    }

    /// The `tracestate` text, borrowed; empty when there is none.
    pub(crate) fn state(&self) -> &str {
        &self.state
    }

    /// Records a step of this trace that is not a record (showing a pick list, handling a
    /// request) and returns the step's context, a child of this one. With the
    /// `opentelemetry` feature, the step is an OpenTelemetry span named `name`, started and
    /// ended now through the global tracer provider (nothing is recorded without one);
    /// without it, nothing is recorded and `name` is unused.
    pub fn record_child(&self, name: &'static str) -> Self {
        let (context, span) = start_span(&Spans::new(), name, SpanKind::Internal, "", Some(self));
        span.end();
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
            format!("cc-{ids}-01x"),
            format!("00-{ids}-0é"),
            format!("00é{ids}-01"),
            format!("00-{ids}_01"),
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
