//! The HTTP Order API.
//!
//! - `POST /orders` validates an order request against the catalog, sends the order in a
//!   Kafka transaction ([`crate::sender`]) and answers `202` once that transaction has
//!   committed. With an `Idempotency-Key` header (scoped by the `Client-Id` header, see
//!   [`crate::idempotency`]) a retry gets the first answer again (`200`, header
//!   `Idempotent-Replayed: true`) instead of a second order, also after a restart; the same
//!   key with another body is `422`, a retry while the first request is still in flight waits
//!   for it up to the deadline, then `409`. A keyed request that comes while the keys of
//!   earlier runs are still being read back waits for them up to the deadline, then gets
//!   `503 keys_loading`.
//! - `GET /orders/{id}`: the order's status history from the view rebuilt from
//!   `grocery.order-status.v1` ([`crate::view`]); `PLACED` for an order this process placed
//!   that fulfillment has not received yet; `404` for an unknown id, `400` for a malformed
//!   one, `503` with `Retry-After` while the view is being rebuilt.
//! - `GET /health`: `ok`, or `503` with what is being rebuilt; `GET /metrics`: OpenMetrics
//!   text (`service_kit::metrics`, with the client metrics of librdkafka's statistics).
//!
//! Every request passes the web guard first (`service_kit::web_guard`): its `Host` must be a
//! loopback address, `localhost` or a name or address in `--allowed-hosts` (env
//! `GROCERY_ALLOWED_HOSTS`), its
//! `Origin` (when it has one) this server's own or an allowed name's, and a `POST` needs
//! `Content-Type: application/json`; otherwise `403` with the `code` `host_not_allowed`,
//! `origin_not_allowed` or `json_required`.
//!
//! Every error is problem JSON (RFC 9457, `application/problem+json`, see
//! `service_kit::problem`): `{"type", "title", "status", "detail", "code"}`, `code` being the
//! stable name of the problem (`unknown_sku`, `malformed_json`, `unknown_order`, …).
//!
//! Each order is sent in a W3C trace: the request's own when it carries a valid `traceparent`
//! header (and `tracestate`), else a new one. The answer names it (`trace_id`), and so does
//! the log line of the order.
//!
//! When the broker does not acknowledge the order within the deadline (`--deadline-ms`), or
//! the send fails, the answer is `503 Service Unavailable` with a fixed message and a
//! `Retry-After` header; the cause is logged, never sent to the caller. A record still queued
//! at the deadline may be delivered later: a retry with the same `Idempotency-Key` then gets
//! that order. When the broker refuses the order itself, the answer names it, and the order
//! was not stored ([`crate::sender`]):
//! - `413 order_too_large`: its record is larger than the broker accepts on the orders topic
//!   (`max.message.bytes`); the API goes on with the other orders;
//! - `503 transactional_id_refused` (`503 orders_topic_refused`): the broker does not
//!   authorize the API's transactional id (its writes on the orders topic); every request is
//!   then answered so, and the API stops with exit status 3 (a restart once the grant is back
//!   sends the retries).
//!
//! A client that leaves before its answer (the connection closed while its order is in its
//! transaction) is logged (`client gone before the answer`, with the order id): the order is
//! committed all the same, and a retry with the same `Idempotency-Key` gets it (`200`).

use std::{net::SocketAddr, process::ExitCode, sync::Arc, time::Duration};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use grocery_events::{Client, Headers, Producer, TraceContext};
use grocery_store::{Catalog, OrderRequest, validate_order_request};
use serde::Deserialize as _;
use serde_json::Value;
use service_kit::{Shutdown, metrics::Metrics, now_ms, problem::problem, web_guard::WebGuard};
use uuid::Uuid;

use crate::{
    control::Counters,
    failpoint,
    failure::Failure,
    idempotency::{self, Accepted, Claim, Keys, Outcome},
    restore,
    sender::{self, Sender},
    view::{self, Lookup, Placed, View},
};

/// Seconds a caller is asked to wait before retrying after a 503.
const RETRY_AFTER_SECONDS: u64 = 5;

/// Seconds a caller is asked to wait before retrying a request still in flight (409).
const IN_FLIGHT_RETRY_AFTER_SECONDS: u64 = 1;

/// The header a caller sets to make `POST /orders` idempotent.
pub(crate) const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

/// The header naming the client whose key it is (keys are scoped per client).
pub(crate) const CLIENT_ID: HeaderName = HeaderName::from_static("client-id");

/// The header on an answer repeated for a retried key.
pub(crate) const REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

#[derive(Clone)]
struct AppState {
    producer: Arc<Producer>,
    sender: Sender,
    catalog: Arc<Catalog>,
    deadline: Duration,
    counters: Arc<Counters>,
    view: Arc<View>,
    keys: Arc<Keys>,
}

/// What `serve` needs besides its clients.
pub(crate) struct Options {
    /// Where to listen.
    pub(crate) listen: SocketAddr,
    /// How long an order may wait for its transaction before the answer is 503.
    pub(crate) deadline: Duration,
    /// How far back the keys of earlier instances are read on start.
    pub(crate) key_window: Duration,
    /// The most orders the history view holds.
    pub(crate) view_orders: usize,
    /// Where the history view starts from.
    pub(crate) view_from: view::Start,
    /// The `Host`/`Origin` checks.
    pub(crate) guard: WebGuard,
}

/// Serves the API until SIGINT or SIGTERM; an order whose transaction has not committed within
/// the deadline is answered with 503. `producer` is transactional, not initialised yet: once
/// listening, the API initialises its transactions (aborting what a previous run of this
/// instance left open), then reads back the keys of the orders accepted within the key window
/// from the orders topic, then sends the orders queued meanwhile. The history view is rebuilt
/// from `client` meanwhile (from the latest-state topic or every status: `view_from`).
pub(crate) async fn serve(
    options: Options,
    client: Client,
    producer: Producer,
    catalog: Catalog,
    shutdown: Shutdown,
) -> anyhow::Result<ExitCode> {
    let Options {
        listen,
        deadline,
        key_window,
        view_orders,
        view_from,
        guard,
    } = options;
    let producer = Arc::new(producer);
    let (sender, queue) = sender::channel();
    let state = AppState {
        producer,
        sender,
        catalog: Arc::new(catalog),
        deadline,
        counters: Arc::default(),
        view: Arc::new(View::new(view_orders)),
        keys: Arc::default(),
    };
    let sending = tokio::spawn({
        let producer = state.producer.clone();
        let keys = state.keys.clone();
        let client = client.clone();
        let shutdown = shutdown.clone();
        async move {
            let result = async {
                match sender::init(&producer, &shutdown).await {
                    Ok(true) => {}
                    Ok(false) => return Ok(()),
                    Err(error) => {
                        queue.refuse(&error);
                        return Err(error.into());
                    }
                }
                tracing::info!("transactions initialised");
                restore::restore(&client, &keys, key_window, &shutdown).await?;
                sender::run(&producer, queue, &shutdown).await
            }
            .await;
            if let Err(error) = &result {
                tracing::error!(error = %service_kit::describe(error), "the order sender stopped");
                shutdown.trigger();
            }
            result
        }
    });
    let follower = tokio::spawn({
        let view = state.view.clone();
        let shutdown = shutdown.clone();
        async move {
            let result = view::follow(client, view, view_from, shutdown.clone()).await;
            if let Err(error) = &result {
                tracing::error!(error = %service_kit::describe(error), "the order history view stopped");
                shutdown.trigger();
            }
            result
        }
    });
    let mut metrics = Metrics::new();
    state.counters.register(&mut metrics, true);
    state.view.register(&mut metrics);
    metrics.clients([("producer", state.producer.context().clone())]);
    let app = guard.protect(router(state.clone(), Arc::new(metrics)));
    let listener = service_kit::listen(listen).await?;
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.requested())
        .await?;
    shutdown.trigger();
    sending.await??;
    state
        .producer
        .flush(std::time::Duration::from_secs(30))
        .await?;
    follower.await??;
    tracing::info!("Order API stopped");
    Ok(ExitCode::SUCCESS)
}

fn router(state: AppState, metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/orders", post(place_order))
        .route("/orders/{id}", get(order_history))
        .route("/health", get(health))
        .route("/metrics", Metrics::route(metrics))
        .with_state(state)
}

async fn health(State(state): State<AppState>) -> Response {
    if state.view.is_ready() {
        "ok".into_response()
    } else {
        with_retry_after(
            (StatusCode::SERVICE_UNAVAILABLE, state.view.rebuilding()).into_response(),
            RETRY_AFTER_SECONDS,
        )
    }
}

/// The request's trace (`traceparent`, `tracestate` headers) when valid, else a new one.
fn request_trace(headers: &HeaderMap) -> TraceContext {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    text("traceparent")
        .and_then(|parent| TraceContext::from_traceparent(parent, text("tracestate")))
        .unwrap_or_else(TraceContext::new_root)
}

fn with_retry_after(mut response: Response, seconds: u64) -> Response {
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    response
}

async fn order_history(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let Ok(order_id) = Uuid::try_parse(&id) else {
        return problem(
            StatusCode::BAD_REQUEST,
            "malformed_order_id",
            "an order id is a UUID, e.g. 5f0c6a52-8a7e-4c1e-9d7b-2b1f0c9e4a11",
        );
    };
    match state.view.lookup(order_id) {
        Lookup::Found(history) => (StatusCode::OK, Json(history)).into_response(),
        Lookup::Unknown => problem(
            StatusCode::NOT_FOUND,
            "unknown_order",
            state.view.unknown(order_id),
        ),
        Lookup::NotReady => with_retry_after(
            problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "history_loading",
                "the order history is being rebuilt; retry later",
            ),
            RETRY_AFTER_SECONDS,
        ),
    }
}

/// The request body as JSON and as an order request, or the code and message of the 400
/// that says why not.
fn parse_body(
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<(Value, OrderRequest), (&'static str, String)> {
    let json_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            let v = v.trim();
            v.eq_ignore_ascii_case("application/json")
                || (v.starts_with("application/") && v.ends_with("+json"))
        });
    if !json_type {
        return Err((
            "unsupported_content_type",
            "expected request with `Content-Type: application/json`".to_owned(),
        ));
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|error| ("malformed_json", format!("the body is not JSON: {error}")))?;
    let request = OrderRequest::deserialize(&value).map_err(|error| {
        (
            "malformed_json",
            format!("the body is not an order request: {error}"),
        )
    })?;
    Ok((value, request))
}

async fn place_order(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(refused) = state.sender.refused() {
        return not_accepted(refused.failure);
    }
    let key = match headers.get(IDEMPOTENCY_KEY).map(idempotency::parse_key) {
        None => None,
        Some(Ok(key)) => Some(key),
        Some(Err(reason)) => {
            return problem(StatusCode::BAD_REQUEST, "bad_idempotency_key", reason);
        }
    };
    let client = match headers.get(CLIENT_ID).map(idempotency::parse_client) {
        None => None,
        Some(Ok(client)) => Some(client),
        Some(Err(reason)) => {
            return problem(StatusCode::BAD_REQUEST, "bad_client_id", reason);
        }
    };
    let trace = request_trace(&headers);
    let (value, request) = match parse_body(&headers, &body) {
        Ok(parsed) => parsed,
        Err((code, message)) => return problem(StatusCode::BAD_REQUEST, code, message),
    };
    let order_id = key.as_deref().map_or_else(Uuid::new_v4, |key| {
        idempotency::order_id_for(client.as_deref(), key)
    });
    let order = match validate_order_request(&request, &state.catalog, order_id, now_ms()) {
        Ok(order) => order,
        Err(rejection) => {
            tracing::info!(%rejection, "order rejected");
            return problem(StatusCode::BAD_REQUEST, rejection.code(), rejection);
        }
    };
    if key.is_none() {
        let (sender, outcome) = tokio::sync::watch::channel(None);
        spawn_send(&state, order, trace, Headers::new(), move |outcome| {
            sender.send_replace(Some(outcome));
        });
        return answer(
            &state,
            order_id,
            outcome,
            false,
            tokio::time::Instant::now(),
        )
        .await;
    }
    // A key this process has not seen may be a retry of a request an earlier run accepted:
    // the keys of earlier runs are read back first.
    let arrived = tokio::time::Instant::now();
    tracing::debug!(%order_id, "keyed request: the keys of earlier runs first");
    let restored = tokio::select! {
        restored = state.keys.wait_restored(state.deadline) => restored,
        refused = state.sender.wait_refused() => return not_accepted(refused.failure),
    };
    if !restored {
        return with_retry_after(
            problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "keys_loading",
                "the idempotency keys of earlier requests are being read back; retry later",
            ),
            RETRY_AFTER_SECONDS,
        );
    }
    match state.keys.claim(order_id, &value) {
        Claim::Conflict => problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            "this Idempotency-Key was used with a different request body",
        ),
        // The deadline counts from the request's arrival, the wait for the keys included.
        Claim::Replay(outcome) => answer(&state, order_id, outcome, true, arrived).await,
        Claim::Send(outcome) => {
            failpoint::hit("before-send");
            let keys = state.keys.clone();
            let digest = idempotency::digest_hex(&idempotency::body_digest(&value));
            let headers = Headers::new().with(idempotency::BODY_DIGEST, digest);
            spawn_send(&state, order, trace, headers, move |outcome| {
                keys.finish(order_id, outcome)
            });
            answer(&state, order_id, outcome, false, arrived).await
        }
    }
}

/// Sends `order` (with `headers`) on a task of its own, so that an order still in its
/// transaction when the caller's deadline passes is committed all the same, and hands the
/// outcome to `done`.
fn spawn_send(
    state: &AppState,
    order: grocery_events::Order,
    trace: TraceContext,
    headers: Headers,
    done: impl FnOnce(Outcome) + Send + 'static,
) {
    let sender = state.sender.clone();
    let counters = state.counters.clone();
    let view = state.view.clone();
    tokio::spawn(async move {
        let order_id = order.order_id;
        let trace_id = trace.trace_id();
        let time = order.order_time;
        match sender.send(order, trace, headers).await {
            Ok(delivered) => {
                counters.acked.inc();
                view.placed(order_id, Placed { time });
                tracing::info!(%order_id, %trace_id, partition = delivered.partition, offset = delivered.offset, "order accepted");
                done(Outcome::Accepted(Accepted {
                    order_id,
                    partition: delivered.partition,
                    offset: delivered.offset,
                    trace_id: u128::from_be_bytes(trace_id.to_bytes()),
                }));
            }
            Err(not_sent) => {
                tracing::error!(%order_id, %trace_id, failure = ?not_sent.failure, cause = %not_sent.cause, "order not acknowledged");
                done(Outcome::Failed(not_sent.failure));
            }
        }
    });
}

/// Waits for `outcome` until the deadline after `arrived` and answers: 202 (or 200 with
/// `Idempotent-Replayed` for a retry), 503 when the send failed or is late, 409 when a retry
/// found the first request still in flight.
async fn answer(
    state: &AppState,
    order_id: Uuid,
    mut outcome: tokio::sync::watch::Receiver<Option<Outcome>>,
    replay: bool,
    arrived: tokio::time::Instant,
) -> Response {
    // Logs a client that leaves (this future dropped) before the outcome.
    let mut waiting = ClientWaiting {
        order_id,
        answered: false,
    };
    let waited =
        tokio::time::timeout_at(arrived + state.deadline, outcome.wait_for(Option::is_some)).await;
    waiting.answered = true;
    let finished = match waited {
        Ok(Ok(finished)) => finished.clone(),
        // The sender is gone only if the send task ended without an outcome (it panicked).
        Ok(Err(_)) => Some(Outcome::Failed(Failure::Unavailable)),
        Err(_elapsed) => None,
    };
    match finished {
        Some(Outcome::Accepted(accepted)) if replay => {
            state.counters.replayed.inc();
            replayed(accepted.body())
        }
        Some(Outcome::Accepted(accepted)) => {
            (StatusCode::ACCEPTED, Json(accepted.body())).into_response()
        }
        Some(Outcome::Failed(failure)) => {
            state.counters.failed.inc();
            not_accepted(failure)
        }
        None if replay => with_retry_after(
            problem(
                StatusCode::CONFLICT,
                "request_in_flight",
                "a request with this Idempotency-Key is still being processed; retry later",
            ),
            IN_FLIGHT_RETRY_AFTER_SECONDS,
        ),
        None => {
            state.counters.failed.inc();
            tracing::error!(
                %order_id,
                deadline_ms = state.deadline.as_millis() as u64,
                "order not acknowledged within the deadline"
            );
            unavailable()
        }
    }
}

/// While a request waits for its order's outcome: dropped unanswered (the client closed the
/// connection), it logs that the client left; the order's send goes on (`spawn_send`).
struct ClientWaiting {
    order_id: Uuid,
    answered: bool,
}

impl Drop for ClientWaiting {
    fn drop(&mut self) {
        if !self.answered {
            tracing::warn!(
                order_id = %self.order_id,
                "client gone before the answer; the order's send goes on (a retry with the same Idempotency-Key gets its outcome)"
            );
        }
    }
}

/// The answer to an order not accepted, naming why.
fn not_accepted(failure: Failure) -> Response {
    match failure {
        Failure::Unavailable => unavailable(),
        Failure::TooLarge => problem(
            StatusCode::PAYLOAD_TOO_LARGE,
            "order_too_large",
            format!(
                "the order is larger than the broker accepts on {} (max.message.bytes); it was \
                 not stored: send it in smaller orders",
                grocery_events::topics::ORDERS
            ),
        ),
        Failure::RefusedByContract => problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "order_refused_by_contract",
            format!(
                "the order breaks a rule of the order contract registered for {}; it was not \
                 stored (nor dead-lettered): correct it before sending it again",
                grocery_events::topics::ORDERS
            ),
        ),
        Failure::TransactionalIdRefused => with_retry_after(
            problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "transactional_id_refused",
                "the Kafka broker does not authorize this Order API's transactional id: the \
                 order was not stored, and none is until it is granted",
            ),
            RETRY_AFTER_SECONDS,
        ),
        Failure::TopicRefused => with_retry_after(
            problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "orders_topic_refused",
                format!(
                    "the Kafka broker does not authorize this Order API to write {}: the order \
                     was not stored, and none is until it is granted",
                    grocery_events::topics::ORDERS
                ),
            ),
            RETRY_AFTER_SECONDS,
        ),
    }
}

/// 200 with the first answer's body and `Idempotent-Replayed: true`.
fn replayed(body: Value) -> Response {
    let mut response = (StatusCode::OK, Json(body)).into_response();
    response
        .headers_mut()
        .insert(REPLAYED, HeaderValue::from_static("true"));
    response
}

/// 503 with a fixed message and `Retry-After`: the cause stays in the server's log.
fn unavailable() -> Response {
    with_retry_after(
        problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the order could not be stored right now; retry later",
        ),
        RETRY_AFTER_SECONDS,
    )
}
