//! The simulation's HTTP endpoints (`--listen`): `GET /health`, `GET /metrics` (Prometheus
//! text, with the client metrics of librdkafka's statistics), and `PUT /rate` with
//! `{"rate": N}` to change the order rate while it runs (answered `{"rate": N}`; `GET /rate`
//! reads it; a rate that is not a number ≥ 0 is `400` problem JSON with `code` `bad_rate`),
//! behind the web guard (`service_kit::web_guard`: `Host` and `Origin` checked, a JSON body
//! required). The counters and their rendering serve the Order API's `/metrics` too.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use axum::{
    Json, Router,
    extract::{State, rejection::JsonRejection},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, put},
};
use grocery_events::context::KafkaContext;
use serde::Deserialize;
use serde_json::json;
use service_kit::problem::problem;
use tokio::sync::watch;

/// Counts of the simulation, shared with the HTTP endpoints.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Orders the broker acknowledged.
    pub(crate) acked: AtomicU64,
    /// Orders that could not be sent or were not acknowledged.
    pub(crate) failed: AtomicU64,
    /// Order API requests answered with an earlier answer (same `Idempotency-Key`).
    pub(crate) replayed: AtomicU64,
}

/// Whether `rate` is an order rate the simulation accepts (`0` = as fast as possible).
pub(crate) fn valid_rate(rate: f64) -> bool {
    rate.is_finite() && rate >= 0.0
}

#[derive(Clone)]
struct AppState {
    counters: Arc<Counters>,
    rate: Arc<watch::Sender<f64>>,
    client: KafkaContext,
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
    let routes = Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/metrics", get(metrics))
        .route("/rate", put(set_rate).get(get_rate))
        .with_state(AppState {
            counters,
            rate,
            client,
        });
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

async fn metrics(State(state): State<AppState>) -> Response {
    let mut text = render(&state.counters, Some(*state.rate.borrow()));
    service_kit::stats::render(&mut text, &[("producer", &state.client)], false);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// The counters (and the simulation's rate) in Prometheus text format.
pub(crate) fn render(counters: &Counters, rate: Option<f64>) -> String {
    let mut text = format!(
        "# HELP order_producer_orders_acked_total Orders the broker acknowledged\n\
         # TYPE order_producer_orders_acked_total counter\n\
         order_producer_orders_acked_total {}\n\
         # HELP order_producer_orders_failed_total Orders not sent or not acknowledged\n\
         # TYPE order_producer_orders_failed_total counter\n\
         order_producer_orders_failed_total {}\n",
        counters.acked.load(Ordering::Relaxed),
        counters.failed.load(Ordering::Relaxed),
    );
    let replayed = counters.replayed.load(Ordering::Relaxed);
    if rate.is_none() {
        text.push_str(&format!(
            "# HELP order_producer_orders_replayed_total Order API requests answered again for a retried Idempotency-Key\n\
             # TYPE order_producer_orders_replayed_total counter\n\
             order_producer_orders_replayed_total {replayed}\n"
        ));
    }
    if let Some(rate) = rate {
        text.push_str(&format!(
            "# HELP order_producer_rate Simulated orders per second asked for (0: as fast as possible)\n\
             # TYPE order_producer_rate gauge\n\
             order_producer_rate {rate}\n"
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_metrics() {
        assert!(valid_rate(0.0) && valid_rate(12.5));
        assert!(!valid_rate(-1.0) && !valid_rate(f64::NAN) && !valid_rate(f64::INFINITY));
        let counters = Counters::default();
        counters.acked.store(7, Ordering::Relaxed);
        assert!(!render(&counters, None).contains("rate"));
        let text = render(&counters, Some(20.0));
        assert!(
            text.contains("\norder_producer_orders_acked_total 7\n"),
            "{text}"
        );
        assert!(
            text.contains("\norder_producer_orders_failed_total 0\n"),
            "{text}"
        );
        assert!(text.ends_with("\norder_producer_rate 20\n"), "{text}");
    }
}
