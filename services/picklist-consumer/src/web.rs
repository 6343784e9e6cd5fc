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

use std::{convert::Infallible, net::SocketAddr, sync::Arc, time::Duration};

use avro_events::KafkaContext;
use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, State},
    http::StatusCode,
    response::{
        Html, IntoResponse, Response,
        sse::{Event, KeepAlive, Sse},
    },
    routing::{get, post},
};
use futures::{Stream, StreamExt};
use grocery_store::{PickedLine, StaffStep};
use serde::Deserialize;
use service_kit::{metrics::Metrics, web_guard::WebGuard};
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

/// The running web server.
pub(crate) struct Server {
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    /// Waits (a few seconds at most) for the server to finish after shutdown.
    pub(crate) async fn stop(self) {
        match tokio::time::timeout(Duration::from_secs(5), self.task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(error))) => tracing::error!(%error, "web server failed"),
            Ok(Err(error)) => tracing::error!(%error, "web server task failed"),
            Err(_) => tracing::warn!("web server did not stop in time"),
        }
    }
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
    let listener = service_kit::listen(addr).await?;
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
    let app = guard.protect(routes);
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(stopped(shutdown))
            .await
    });
    Ok(Server { task })
}

async fn events(
    State(state): State<AppState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    // Subscribed before the snapshot is taken: a list shown in between comes twice, and the
    // page drops repeats of a picklist_id.
    let new = state.live.subscribe();
    let snapshot = futures::stream::iter(state.board.snapshot(SNAPSHOT_OPEN, SNAPSHOT_FINISHED));
    let stream = snapshot
        .chain(new)
        .map(|(name, json)| Ok(Event::default().event(name).data(json)))
        .take_until(stopped(state.shutdown));
    Sse::new(stream).keep_alive(KeepAlive::default())
}

async fn stopped(mut shutdown: watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// An error answer: problem JSON (`service_kit::problem`) with `code` and `detail`.
fn error(status: StatusCode, code: &str, detail: impl std::fmt::Display) -> Response {
    service_kit::problem::problem(status, code, detail)
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
        Err(e @ StepError::NotFound(_)) => error(StatusCode::NOT_FOUND, "unknown_picklist", e),
        Err(e @ StepError::Conflict(_)) => error(StatusCode::CONFLICT, "step_out_of_order", e),
        Err(e @ StepError::Busy(_)) => error(StatusCode::CONFLICT, "step_in_progress", e),
        Err(e @ StepError::BadRequest(_)) => error(StatusCode::BAD_REQUEST, "bad_lines", e),
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
