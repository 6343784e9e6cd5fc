//! The live web page: `/` (self-contained HTML and JavaScript), `/events` (server-sent events,
//! one `picklist` event per pick list shown, starting with the most recent ones, and a
//! `status` event `{"order_id", "state"}` each time staff move one on), `/health`, `/metrics`
//! (Prometheus text: pick lists shown, duplicates suppressed, client metrics).
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
//! out of order (READY before PICKED) or other quantities for a list already picked, 400
//! `malformed_order_id`, `malformed_body` or `bad_lines` for a bad order id or body, 403 for a
//! request the guard refused (`host_not_allowed`, `origin_not_allowed`, `json_required`), 503
//! `not_acknowledged` when Kafka did not acknowledge the status.

use std::{
    collections::VecDeque,
    convert::Infallible,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, State},
    http::{StatusCode, header},
    response::{
        Html, IntoResponse, Response,
        sse::{Event, KeepAlive, Sse},
    },
    routing::{get, post},
};
use grocery_events::OrderState;
use grocery_store::{PickedLine, StaffStep};
use serde::Deserialize;
use uuid::Uuid;

use crate::staff::{Board, StepError, Stepped};
use futures::{Stream, StreamExt};
use grocery_events::context::KafkaContext;
use service_kit::web_guard::WebGuard;
use tokio::sync::{broadcast, watch};

/// Pick lists a newly opened page receives first.
const RECENT: usize = 50;

const PAGE: &str = include_str!("page.html");

/// One server-sent event: its name and JSON data.
type Update = (&'static str, String);

/// The most recent pick lists (order id, JSON) and the latest state of each, if staff moved
/// it on.
#[derive(Default)]
struct Recent {
    lists: VecDeque<(Uuid, String)>,
    states: std::collections::HashMap<Uuid, String>,
}

/// The pick lists shown so far, for the live page: a broadcast of new ones and of state
/// changes, and the most recent few.
#[derive(Clone)]
pub(crate) struct Live {
    tx: broadcast::Sender<Update>,
    recent: Arc<Mutex<Recent>>,
    /// Pick lists shown and duplicates suppressed so far, for `/metrics`.
    counts: Arc<[AtomicU64; 2]>,
}

impl Live {
    pub(crate) fn new() -> Self {
        Self {
            tx: broadcast::channel(1024).0,
            recent: Arc::default(),
            counts: Arc::default(),
        }
    }

    /// Updates the counts `/metrics` shows.
    pub(crate) fn count(&self, shown: u64, duplicates_suppressed: u64) {
        self.counts[0].store(shown, Ordering::Relaxed);
        self.counts[1].store(duplicates_suppressed, Ordering::Relaxed);
    }

    fn metrics(&self) -> String {
        format!(
            "# HELP picklist_consumer_shown_total Pick lists shown\n\
             # TYPE picklist_consumer_shown_total counter\n\
             picklist_consumer_shown_total {}\n\
             # HELP picklist_consumer_duplicates_suppressed_total Pick lists delivered again and not shown\n\
             # TYPE picklist_consumer_duplicates_suppressed_total counter\n\
             picklist_consumer_duplicates_suppressed_total {}\n",
            self.counts[0].load(Ordering::Relaxed),
            self.counts[1].load(Ordering::Relaxed)
        )
    }

    /// Publishes the pick list of `order_id` (as JSON) to the open pages.
    pub(crate) fn publish(&self, order_id: Uuid, json: String) {
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        if recent.lists.len() == RECENT
            && let Some((oldest, _)) = recent.lists.pop_front()
        {
            recent.states.remove(&oldest);
        }
        recent.lists.push_back((order_id, json.clone()));
        // No page open is fine.
        let _ = self.tx.send(("picklist", json));
    }

    /// Tells the open pages that `order_id` entered `state`.
    pub(crate) fn publish_status(&self, order_id: Uuid, state: OrderState) {
        let json = serde_json::json!({
            "order_id": order_id,
            "state": grocery_store::state_name(state),
        })
        .to_string();
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        if recent.lists.iter().any(|(id, _)| *id == order_id) {
            recent.states.insert(order_id, json.clone());
        }
        let _ = self.tx.send(("status", json));
    }

    /// The recent pick lists and their states, then the new ones as they come.
    fn subscribe(&self) -> impl Stream<Item = Update> + use<> {
        let rx = self.tx.subscribe();
        let recent: Vec<Update> = {
            let recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
            let lists = recent
                .lists
                .iter()
                .map(|(_, json)| ("picklist", json.clone()));
            let states = recent.states.values().map(|json| ("status", json.clone()));
            lists.chain(states).collect()
        };
        let new = futures::stream::unfold(rx, |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(update) => return Some((update, rx)),
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "live page fell behind");
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        });
        // The page drops repeats of a picklist_id (a list published between subscribing and
        // taking the snapshot comes twice).
        futures::stream::iter(recent).chain(new)
    }
}

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
    let routes = Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route("/events", get(events))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
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

async fn metrics(State(state): State<AppState>) -> impl axum::response::IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        {
            let mut text = state.live.metrics();
            service_kit::stats::render(&mut text, &[("consumer", &state.client)], false);
            text
        },
    )
}

async fn events(
    State(state): State<AppState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let stream = state
        .live
        .subscribe()
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
