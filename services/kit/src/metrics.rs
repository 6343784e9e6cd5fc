//! The one way the services keep and serve their metrics: a `prometheus-client`
//! [`Registry`] each service registers its own metrics in (`<service>_<what>_total` counters,
//! gauges, units in the names), its Kafka clients' metrics ([`Metrics::clients`], from
//! librdkafka's statistics: [`crate::stats`]), and one handler ([`Metrics::route`]) serving
//! them on `GET /metrics` as OpenMetrics text ([`CONTENT_TYPE`], ending in `# EOF`).
//!
//! ```
//! use prometheus_client::metrics::counter::Counter;
//!
//! let mut metrics = service_kit::metrics::Metrics::new();
//! let shown = Counter::<u64>::default();
//! // Counter families are registered without `_total`; the encoder adds it.
//! metrics.registry().register("example_shown", "Things shown", shown.clone());
//! shown.inc();
//! assert!(metrics.encode().contains("\nexample_shown_total 1\n"));
//! ```

use std::sync::Arc;

use axum::{http::header, response::IntoResponse, routing::MethodRouter};
use grocery_events::context::KafkaContext;
use prometheus_client::{metrics::counter::Counter, registry::Registry};

use crate::stats::ClientMetrics;

/// The content type of `GET /metrics`: OpenMetrics text 1.0.0 (Prometheus reads it).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Work run before each scrape (bringing counters or gauges kept elsewhere up to date).
type Refresh = Box<dyn Fn() + Send + Sync>;

/// A service's metrics: its registry and what brings it up to date at each scrape.
#[derive(Default)]
pub struct Metrics {
    registry: Registry,
    refresh: Vec<Refresh>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("registry", &self.registry)
            .field("refresh", &self.refresh.len())
            .finish()
    }
}

impl Metrics {
    /// No metrics yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The registry to register the service's metrics in.
    pub fn registry(&mut self) -> &mut Registry {
        &mut self.registry
    }

    /// Registers the client metrics of `clients` (`client` label, context), read from their
    /// latest librdkafka statistics at each scrape ([`ClientMetrics`]).
    pub fn clients(&mut self, clients: impl IntoIterator<Item = (&'static str, KafkaContext)>) {
        self.client_metrics(ClientMetrics::new(clients));
    }

    /// Registers `clients` (clients that can be replaced: [`ClientMetrics::with_current`]).
    /// Register one [`ClientMetrics`] per service: each encodes the client families.
    pub fn client_metrics(&mut self, clients: ClientMetrics) {
        self.registry.register_collector(Box::new(clients));
    }

    /// Runs `refresh` before each scrape: for values the service keeps elsewhere (a pipeline's
    /// counts, a view's size), set on the registered metrics with [`raise_to`] or a gauge's
    /// `set`.
    pub fn on_scrape(&mut self, refresh: impl Fn() + Send + Sync + 'static) {
        self.refresh.push(Box::new(refresh));
    }

    /// The metrics now, as OpenMetrics text.
    pub fn encode(&self) -> String {
        for refresh in &self.refresh {
            refresh();
        }
        let mut text = String::new();
        if let Err(error) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::error!(%error, "cannot encode metrics");
        }
        text
    }

    /// The `GET /metrics` route serving `metrics` ([`CONTENT_TYPE`]).
    pub fn route<S: Clone + Send + Sync + 'static>(metrics: Arc<Self>) -> MethodRouter<S> {
        axum::routing::get(move || async move {
            ([(header::CONTENT_TYPE, CONTENT_TYPE)], metrics.encode()).into_response()
        })
    }
}

/// Raises `counter` to `value` when it is below (a count kept elsewhere, read at a scrape);
/// never lowers it. Safe against concurrent scrapes.
pub fn raise_to(counter: &Counter, value: u64) {
    counter
        .inner()
        .fetch_max(value, std::sync::atomic::Ordering::Relaxed);
}
