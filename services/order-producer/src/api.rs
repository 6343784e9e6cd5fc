//! The HTTP Order API: `POST /orders` validates an order request against the catalog, sends
//! the order and answers once the broker has acknowledged it; `GET /health`; `GET /metrics`
//! (orders acknowledged and failed, and the client metrics of librdkafka's statistics,
//! Prometheus text).
//!
//! Each order is sent in a W3C trace: the request's own when it carries a valid `traceparent`
//! header (and `tracestate`), else a new one. The answer names it (`trace_id`), and so does
//! the log line of the order.
//!
//! When the broker does not acknowledge the order within the deadline (`--deadline-ms`), or
//! the send fails, the answer is `503 Service Unavailable` with a fixed message and a
//! `Retry-After` header; the cause is logged, never sent to the caller.

use std::{
    net::SocketAddr,
    process::ExitCode,
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use axum::{
    Json, Router,
    extract::{State, rejection::JsonRejection},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use grocery_events::{Producer, TraceContext};
use grocery_store::{Catalog, OrderRequest, validate_order_request};
use serde_json::json;
use uuid::Uuid;

use crate::{
    control::{Counters, render},
    startup::{Shutdown, now_ms},
};

/// Seconds a caller is asked to wait before retrying after a 503.
const RETRY_AFTER_SECONDS: u64 = 5;

#[derive(Clone)]
struct AppState {
    producer: Arc<Producer>,
    catalog: Arc<Catalog>,
    deadline: Duration,
    counters: Arc<Counters>,
}

/// Serves the API on `listen` until SIGINT or SIGTERM; an order not acknowledged within
/// `deadline` is answered with 503.
pub(crate) async fn serve(
    listen: SocketAddr,
    producer: Producer,
    catalog: Catalog,
    deadline: Duration,
    shutdown: Shutdown,
) -> anyhow::Result<ExitCode> {
    let state = AppState {
        producer: Arc::new(producer),
        catalog: Arc::new(catalog),
        deadline,
        counters: Arc::default(),
    };
    let app = router(state.clone());
    let listener = service_kit::listen(listen).await?;
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.requested())
        .await?;
    state
        .producer
        .flush(std::time::Duration::from_secs(30))
        .await?;
    tracing::info!("Order API stopped");
    Ok(ExitCode::SUCCESS)
}

fn router(state: AppState) -> Router {
    Router::new()
        .route("/orders", post(place_order))
        .route("/health", get(|| async { "ok" }))
        .route(
            "/metrics",
            get(|State(state): State<AppState>| async move {
                (
                    [(
                        header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    {
                        let mut text = render(&state.counters, None);
                        service_kit::stats::render(
                            &mut text,
                            &[("producer", state.producer.context())],
                            false,
                        );
                        text
                    },
                )
            }),
        )
        .with_state(state)
}

fn problem(status: StatusCode, code: &str, message: impl std::fmt::Display) -> Response {
    let body = json!({ "error": code, "message": message.to_string() });
    (status, Json(body)).into_response()
}

/// The request's trace (`traceparent`, `tracestate` headers) when valid, else a new one.
fn request_trace(headers: &HeaderMap) -> TraceContext {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    text("traceparent")
        .and_then(|parent| TraceContext::from_traceparent(parent, text("tracestate")))
        .unwrap_or_else(TraceContext::new_root)
}

async fn place_order(
    State(state): State<AppState>,
    headers: HeaderMap,
    request: Result<Json<OrderRequest>, JsonRejection>,
) -> Response {
    let trace = request_trace(&headers);
    let Json(request) = match request {
        Ok(request) => request,
        Err(rejection) => {
            let code = match rejection {
                JsonRejection::MissingJsonContentType(_) => "unsupported_content_type",
                _ => "malformed_json",
            };
            return problem(StatusCode::BAD_REQUEST, code, rejection.body_text());
        }
    };
    let order_id = Uuid::new_v4();
    let order = match validate_order_request(&request, &state.catalog, order_id, now_ms()) {
        Ok(order) => order,
        Err(rejection) => {
            tracing::info!(%rejection, "order rejected");
            return problem(StatusCode::BAD_REQUEST, rejection.code(), rejection);
        }
    };
    let trace_id = trace.trace_id();
    let sent = state.producer.send_traced(&order, &trace);
    match tokio::time::timeout(state.deadline, sent).await {
        Ok(Ok(delivered)) => {
            state.counters.acked.fetch_add(1, Ordering::Relaxed);
            tracing::info!(%order_id, %trace_id, partition = delivered.partition, offset = delivered.offset, "order accepted");
            let body = json!({
                "order_id": order_id,
                "partition": delivered.partition,
                "offset": delivered.offset,
                "trace_id": trace_id.to_string(),
            });
            (StatusCode::ACCEPTED, Json(body)).into_response()
        }
        Ok(Err(error)) => {
            state.counters.failed.fetch_add(1, Ordering::Relaxed);
            tracing::error!(%order_id, %trace_id, %error, "order not acknowledged");
            unavailable()
        }
        Err(_elapsed) => {
            state.counters.failed.fetch_add(1, Ordering::Relaxed);
            tracing::error!(
                %order_id,
                %trace_id,
                deadline_ms = state.deadline.as_millis() as u64,
                "order not acknowledged within the deadline"
            );
            unavailable()
        }
    }
}

/// 503 with a fixed message and `Retry-After`: the cause stays in the server's log.
fn unavailable() -> Response {
    let mut response = problem(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "the order could not be stored right now; retry later",
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
    response
}
