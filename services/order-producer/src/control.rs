//! The simulation's HTTP endpoints (`--listen`): `GET /health`, `GET /metrics` (OpenMetrics
//! text from `service_kit::metrics`, with the client metrics of librdkafka's statistics), and `PUT /rate` with
//! `{"rate": N}` to change the order rate while it runs (answered `{"rate": N}`; `GET /rate`
//! reads it; a rate that is not a number ≥ 0 is `400` problem JSON with `code` `bad_rate`),
//! behind the web guard (`service_kit::web_guard`: `Host` and `Origin` checked, a JSON body
//! required). The counters serve the Order API's `/metrics` too.

use std::{net::SocketAddr, sync::Arc};

use avro_events::KafkaContext;
use axum::{
    Json, Router,
    extract::{State, rejection::JsonRejection},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, put},
};
use prometheus_client::metrics::{counter::Counter, gauge::Gauge};
use serde::Deserialize;
use serde_json::json;
use service_kit::{metrics::Metrics, problem::problem};
use tokio::sync::watch;

/// Counts of the simulation and of the Order API, shown on `/metrics`.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Orders the broker acknowledged.
    pub(crate) acked: Counter,
    /// Orders that could not be sent or were not acknowledged.
    pub(crate) failed: Counter,
    /// Order API requests answered with an earlier answer (same `Idempotency-Key`).
    pub(crate) replayed: Counter,
    /// Simulated orders the order contract refused, sent to the orders' dead-letter topic.
    pub(crate) dead_lettered: Counter,
    /// Simulated orders the order contract refused whose dead letter was not written (also
    /// counted in `failed`): on neither topic.
    pub(crate) dead_letter_failed: Counter,
}

impl Counters {
    /// Registers the counters with `metrics` (counter names get their `_total` suffix from the
    /// encoder); `order_producer_orders_replayed_total` only for the Order API (`api`).
    pub(crate) fn register(&self, metrics: &mut Metrics, api: bool) {
        let registry = metrics.registry();
        registry.register(
            "order_producer_orders_acked",
            "Orders the broker acknowledged",
            self.acked.clone(),
        );
        registry.register(
            "order_producer_orders_failed",
            "Orders not sent or not acknowledged",
            self.failed.clone(),
        );
        if !api {
            registry.register(
                "order_producer_orders_dead_lettered",
                "Simulated orders the order contract (order_has_lines) refused, sent to the orders' dead-letter topic",
                self.dead_lettered.clone(),
            );
            registry.register(
                "order_producer_orders_dead_letter_failed",
                "Simulated orders the order contract refused whose dead letter was not written (refused, too large, timed out): on neither topic, also counted as failed",
                self.dead_letter_failed.clone(),
            );
        }
        if api {
            registry.register(
                "order_producer_orders_replayed",
                "Order API requests answered again for a retried Idempotency-Key",
                self.replayed.clone(),
            );
        }
    }
}

/// The simulation's metrics: `counters`, the rate asked for and the producer's client metrics.
fn simulation_metrics(
    counters: &Counters,
    rate: &Arc<watch::Sender<f64>>,
    client: KafkaContext,
) -> Metrics {
    let mut metrics = Metrics::new();
    counters.register(&mut metrics, false);
    let gauge = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
    metrics.registry().register(
        "order_producer_rate",
        "Simulated orders per second asked for (0: as fast as possible)",
        gauge.clone(),
    );
    let rate = rate.clone();
    metrics.on_scrape(move || {
        gauge.set(*rate.borrow());
    });
    metrics.clients([("producer", client)]);
    metrics
}

/// Whether `rate` is an order rate the simulation accepts (`0` = as fast as possible).
pub(crate) fn valid_rate(rate: f64) -> bool {
    rate.is_finite() && rate >= 0.0
}

#[derive(Clone)]
struct AppState {
    rate: Arc<watch::Sender<f64>>,
}

#[derive(Deserialize)]
struct RateRequest {
    rate: f64,
}

/// Binds `addr` and serves the endpoints on a task of their own (aborted by the caller when
/// the simulation ends).
pub(crate) async fn spawn(
    addr: SocketAddr,
    counters: Arc<Counters>,
    rate: Arc<watch::Sender<f64>>,
    client: KafkaContext,
    guard: service_kit::web_guard::WebGuard,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let listener = service_kit::listen(addr).await?;
    let metrics = Arc::new(simulation_metrics(&counters, &rate, client));
    let routes = Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/metrics", Metrics::route(metrics))
        .route("/rate", put(set_rate).get(get_rate))
        .with_state(AppState { rate });
    let app = guard.protect(routes);
    Ok(tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::error!(%error, "HTTP server failed");
        }
    }))
}

async fn get_rate(State(state): State<AppState>) -> Response {
    Json(json!({ "rate": *state.rate.borrow() })).into_response()
}

async fn set_rate(
    State(state): State<AppState>,
    request: Result<Json<RateRequest>, JsonRejection>,
) -> Response {
    let rate = match request {
        Ok(Json(RateRequest { rate })) if valid_rate(rate) => rate,
        Ok(_) => {
            return problem(
                StatusCode::BAD_REQUEST,
                "bad_rate",
                "rate must be a number of orders per second >= 0",
            );
        }
        Err(rejection) => {
            return problem(
                StatusCode::BAD_REQUEST,
                "malformed_body",
                rejection.body_text(),
            );
        }
    };
    state.rate.send_replace(rate);
    tracing::info!(rate, "order rate changed");
    Json(json!({ "rate": rate })).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_metrics() {
        assert!(valid_rate(0.0) && valid_rate(12.5));
        assert!(!valid_rate(-1.0) && !valid_rate(f64::NAN) && !valid_rate(f64::INFINITY));
        let counters = Counters::default();
        counters.acked.inc_by(7);
        let mut api = Metrics::new();
        counters.register(&mut api, true);
        let text = api.encode();
        assert!(!text.contains("rate"), "{text}");
        assert_eq!(
            test_support::metric(&text, "order_producer_orders_replayed_total"),
            Some(0.0)
        );
        let (rate, _) = watch::channel(20.0);
        let simulation = Counters::default();
        simulation.acked.inc_by(7);
        let client = avro_events::KafkaContext::default();
        let text = simulation_metrics(&simulation, &Arc::new(rate), client).encode();
        let value = |series| test_support::metric(&text, series);
        assert_eq!(
            value("order_producer_orders_acked_total"),
            Some(7.0),
            "{text}"
        );
        assert_eq!(
            value("order_producer_orders_failed_total"),
            Some(0.0),
            "{text}"
        );
        assert_eq!(value("order_producer_rate"), Some(20.0), "{text}");
        assert_eq!(
            value("order_producer_orders_replayed_total"),
            None,
            "{text}"
        );
    }
}
