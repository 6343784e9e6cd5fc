//! The live web page: `/` (self-contained HTML and JavaScript), `/events` (server-sent events,
//! one `picklist` event per pick list shown, starting with the open lists on the staff board in
//! pick order and the last lists made READY, and a `status` event `{"order_id", "state"}` each time staff move one on),
//! `/health`, `/metrics` (OpenMetrics text from `service_kit::metrics`: pick lists shown, duplicates suppressed, the staff
//! board's open lists and lists dropped past its cap, client metrics). The page orders the
//! lists as a picker takes them: earliest delivery window first, then arrival.
//!
//! Store staff's steps, each writing an `OrderStatus` and answering once it is acknowledged
//! (200 with the status as JSON):
//! - `POST /picklists/{order_id}/picking-started`
//! - `POST /picklists/{order_id}/picked` with `{"lines": [{"sku": …, "quantity_picked": …}, …]}`,
//!   one entry per pick-list line in walking order, 0 ≤ `quantity_picked` ≤ quantity ordered
//! - `POST /picklists/{order_id}/ready`
//!
//! Each step needs `Content-Type: application/json` (or an `X-Requested-With` header) and, when
//! the request has an `Origin`, this server's own; every request's `Host` must name this server
//! (`service_kit::web_guard`): other web sites cannot take steps or read the page's data.
//!
//! Repeating the step last taken (same quantities) answers the status recorded then with
//! `Idempotent-Replayed: true` and writes nothing. Errors are problem JSON (RFC 9457,
//! `service_kit::problem`: `type`, `title`, `status`, `detail` and a stable `code`): 404
//! `unknown_picklist` for an order with no pick list here, 409 `step_out_of_order` for a step
//! out of order (READY before PICKED) or other quantities for a list already picked, 409
//! `step_in_progress` while another request's step for the list is still being written, 400
//! `malformed_order_id`, `malformed_body` or `bad_lines` for a bad order id or body, 403 for a
//! request the guard refused (`host_not_allowed`, `origin_not_allowed`, `json_required`), 503
//! `not_acknowledged` when Kafka did not acknowledge the status.

use std::{net::SocketAddr, sync::Arc};

use avro_events::KafkaContext;
use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, State},
    http::StatusCode,
    response::{Html, IntoResponse, Response},
    routing::{get, post},
};
use grocery_store::{PickedLine, StaffStep, StepRefused};
use serde::Deserialize;
use service_kit::{http::Server, metrics::Metrics, problem::problem as error, web_guard::WebGuard};
use tokio::sync::watch;
use uuid::Uuid;

use crate::live::Live;
use crate::staff::{Board, StepError, Stepped};

/// Open pick lists a newly opened page receives first, in pick order (the page shows as many).
const SNAPSHOT_OPEN: usize = 200;

/// Lists made READY most recently that a newly opened page receives after the open ones.
const SNAPSHOT_FINISHED: usize = 20;

const PAGE: &str = include_str!("page.html");

#[derive(Clone)]
struct AppState {
    live: Live,
    board: Board,
    client: KafkaContext,
    shutdown: watch::Receiver<bool>,
}

/// `200 ok`, or `503` while a pick list cannot be decoded yet (its schema cannot be fetched
/// from the registry; the body says which record and why).
async fn health(State(state): State<AppState>) -> (StatusCode, String) {
    match state.client.waiting_on() {
        Some(reason) => (StatusCode::SERVICE_UNAVAILABLE, reason),
        None => (StatusCode::OK, "ok".to_owned()),
    }
}

/// Binds `addr` and serves the page until `shutdown` turns true.
pub(crate) async fn spawn(
    addr: SocketAddr,
    live: Live,
    client: KafkaContext,
    board: Board,
    guard: WebGuard,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<Server> {
    let mut metrics = Metrics::new();
    live.register(&mut metrics);
    metrics.clients([("consumer", client.clone())]);
    let routes = Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route("/events", get(events))
        .route("/health", get(health))
        .route("/metrics", Metrics::route(Arc::new(metrics)))
        .route(
            "/picklists/{order_id}/picking-started",
            post(picking_started),
        )
        .route("/picklists/{order_id}/picked", post(picked))
        .route("/picklists/{order_id}/ready", post(ready))
        .with_state(AppState {
            live,
            board,
            client,
            shutdown: shutdown.clone(),
        });
    service_kit::http::spawn(addr, guard.protect(routes), shutdown).await
}

async fn events(State(state): State<AppState>) -> impl IntoResponse {
    // The snapshot is taken after subscribing: a list shown in between comes twice, and the
    // page drops repeats of a picklist_id.
    let board = state.board.clone();
    let snapshot = move || board.snapshot(SNAPSHOT_OPEN, SNAPSHOT_FINISHED);
    state.live.hub().events(snapshot, state.shutdown)
}

async fn take_step(
    state: &AppState,
    raw_order_id: &str,
    step: StaffStep,
    lines: Option<&[PickedLine]>,
) -> Response {
    let Ok(order_id) = raw_order_id.parse::<Uuid>() else {
        return error(
            StatusCode::BAD_REQUEST,
            "malformed_order_id",
            format!("{raw_order_id:?} is not an order id (a UUID)"),
        );
    };
    match state.board.step(order_id, step, lines).await {
        Ok(Stepped::Recorded(status)) => Json(status).into_response(),
        Ok(Stepped::Repeated(status)) => {
            ([("idempotent-replayed", "true")], Json(status)).into_response()
        }
        Err(StepError::Refused(refused)) => {
            let (status, code) = match &refused {
                StepRefused::NotFound(_) => (StatusCode::NOT_FOUND, "unknown_picklist"),
                StepRefused::Busy(_) => (StatusCode::CONFLICT, "step_in_progress"),
                StepRefused::BadLines(_) => (StatusCode::BAD_REQUEST, "bad_lines"),
                _ => (StatusCode::CONFLICT, "step_out_of_order"),
            };
            error(status, code, refused)
        }
        Err(e @ StepError::Unavailable) => {
            error(StatusCode::SERVICE_UNAVAILABLE, "not_acknowledged", e)
        }
    }
}

async fn picking_started(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    take_step(&state, &id, StaffStep::StartPicking, None).await
}

async fn ready(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    take_step(&state, &id, StaffStep::Ready, None).await
}

/// The body of `POST /picklists/{order_id}/picked`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PickedBody {
    lines: Vec<PickedLine>,
}

async fn picked(State(state): State<AppState>, Path(id): Path<String>, body: Bytes) -> Response {
    let body: PickedBody = match serde_json::from_slice(&body) {
        Ok(body) => body,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "malformed_body",
                format!(
                    "the body must be {{\"lines\": [{{\"sku\": …, \"quantity_picked\": …}}, …]}}: {e}"
                ),
            );
        }
    };
    take_step(&state, &id, StaffStep::Picked, Some(&body.lines)).await
}
