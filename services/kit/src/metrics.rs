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

use avro_events::KafkaContext;
use axum::{http::header, response::IntoResponse, routing::MethodRouter};
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

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    #[test]
    fn raise_to_never_lowers_a_counter() {
        let counter = Counter::<u64>::default();
        raise_to(&counter, 5);
        raise_to(&counter, 3);
        assert_eq!(counter.get(), 5);
        raise_to(&counter, 9);
        assert_eq!(counter.get(), 9);
    }

    #[tokio::test]
    async fn the_route_serves_openmetrics_text_brought_up_to_date_at_each_scrape() {
        let mut metrics = Metrics::new();
        let shown = Counter::<u64>::default();
        metrics
            .registry()
            .register("example_shown", "Things shown", shown.clone());
        let kept_elsewhere = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let source = kept_elsewhere.clone();
        metrics
            .on_scrape(move || raise_to(&shown, source.load(std::sync::atomic::Ordering::Relaxed)));
        // A client with no statistics yet adds no sample.
        metrics.clients([("producer", KafkaContext::default())]);
        let app = axum::Router::new().route("/metrics", Metrics::route(Arc::new(metrics)));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        let scrape = || async move {
            let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            stream
                .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                .await
                .unwrap();
            let mut answer = String::new();
            stream.read_to_string(&mut answer).await.unwrap();
            answer
        };
        kept_elsewhere.store(4, std::sync::atomic::Ordering::Relaxed);
        let answer = scrape().await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(
            answer
                .to_ascii_lowercase()
                .contains(&format!("content-type: {CONTENT_TYPE}")),
            "{answer}"
        );
        assert!(
            answer.contains("# TYPE example_shown counter\n"),
            "{answer}"
        );
        assert!(answer.contains("\nexample_shown_total 4\n"), "{answer}");
        assert!(!answer.contains("kafka_client"), "{answer}");
        assert!(answer.ends_with("# EOF\n"), "{answer}");
        kept_elsewhere.store(7, std::sync::atomic::Ordering::Relaxed);
        assert!(scrape().await.contains("\nexample_shown_total 7\n"));
        server.abort();
    }
}
