//! `cargo xtask control` (also `cargo xtask demo --ui`): the control room. Starts the local
//! stack and serves one page on 127.0.0.1 that starts and stops the three services (as the
//! processes they are), sets the simulated order rate, injects a malformed record into the
//! orders topic, and shows live what Kafka holds: the flow of services and topics with the
//! rates on its arrows (`flow`), charts of the last five minutes (orders/s and pick lists/s,
//! lag per partition, p50/p99 latency: `charts`), orders/s, pick lists/s, the fulfillment
//! group's lag per partition, the dead-lettered records, order → pick-list latency, the
//! latest pick lists and the order status funnel (orders by latest state, read from
//! `grocery.order-status.v1`; picklist-consumer runs with simulated store staff, so orders
//! move on to READY), and the tail of each service's log, filtered by level on the page. The
//! page polls `GET /api/state` and `GET /api/logs/{service}` once a second; the flow and the
//! charts are SVG drawn by the server; no page reloads, no CDN, no script but the page's own.
//!
//! No other web site can drive it (`service_kit::web_guard`): every request's `Host` must be
//! a loopback address, `localhost` or a name or address in `--allowed-hosts` (so a page using
//! DNS rebinding, `0.0.0.0` or a LAN address cannot read `/api/state`), and the `POST`s need
//! `Content-Type: application/json` and, when they carry an `Origin`, the page's own; refusals are `403` problem JSON, as every error of its API
//! (`service_kit::problem`: `type`, `title`, `status`, `detail`, `code`).
//!
//! On SIGINT or SIGTERM the running services are stopped, every run's exit status is printed
//! (`<service> run ended: stopped, exit status 0`), and the command fails if any run ended
//! other than with status 0.

mod charts;
mod flow;
mod observe;
mod supervisor;

use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::{Arc, Mutex},
};

use anyhow::Context as _;
use axum::{
    Json, Router,
    extract::{Path, State, rejection::JsonRejection},
    http::StatusCode,
    response::{Html, IntoResponse, Response},
    routing::{get, post},
};
use grocery_events::Config;
use local_stack::KafkaAuth;
use serde::Deserialize;
use serde_json::{Value, json};
use service_kit::web_guard::{WebGuard, WebGuardArgs};
use tokio::signal::unix::{SignalKind, signal};
use xtask::services::{self, Binaries};

use crate::broker::{BrokerArg, start_stack};
use observe::Observer;
use supervisor::Supervisor;

const PAGE: &str = include_str!("page.html");

/// Arguments of `cargo xtask control`.
#[derive(clap::Args)]
pub(crate) struct ControlArgs {
    /// Address of the page; loopback only (the page starts processes).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub(crate) listen: SocketAddr,
    /// Simulated orders per second the order producer starts with.
    #[arg(long, default_value_t = 20.0)]
    pub(crate) rate: f64,
    /// Seed of the simulated customers (each producer run adds its run number).
    #[arg(long, default_value_t = 42)]
    pub(crate) seed: u64,
    /// Where the run's files go (client.properties, services.log).
    #[arg(long, default_value = "target/control")]
    pub(crate) dir: PathBuf,
    /// The broker: the mock cluster or a real Apache Kafka broker (Java 17, Maven).
    #[arg(long, value_enum, default_value = "mock")]
    pub(crate) broker: BrokerArg,
    /// With `--broker kafka`: how the services authenticate (none or plain).
    #[arg(long, default_value = "none")]
    pub(crate) auth: KafkaAuth,
    #[command(flatten)]
    pub(crate) web: WebGuardArgs,
}

struct AppState {
    broker: String,
    supervisor: Supervisor,
    observer: Observer,
    /// Where the injected malformed records went: (partition, offset).
    injected: Mutex<Vec<(i32, i64)>>,
}

type Shared = Arc<AppState>;

pub(crate) async fn run(args: ControlArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.listen.ip().is_loopback(),
        "--listen {}: the control room serves on loopback only (its page starts processes)",
        args.listen
    );
    anyhow::ensure!(
        args.rate.is_finite() && args.rate > 0.0,
        "--rate must be a number of orders per second above 0, got {}",
        args.rate
    );
    let guard = WebGuard::from_args(&args.web)?;
    let mut terminate = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
    // Caught from the start: a signal during the build or the stack's start stops the page
    // as soon as it serves.
    let stopped = async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
    };
    eprintln!("building the services…");
    let bins = tokio::task::spawn_blocking(Binaries::build).await??;
    let dir = services::workspace_dir().join(&args.dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let broker = args.broker.label(args.auth);
    let stack = start_stack(args.broker, args.auth).await?;
    let config_path = dir.join("client.properties");
    std::fs::write(&config_path, stack.client_properties())?;
    let log = dir.join("services.log");
    std::fs::write(&log, "")?;
    let served = async {
        let config = Config::from_file(&config_path)?;
        let state = Arc::new(AppState {
            broker: format!("{broker} at {}", stack.bootstrap_servers()),
            supervisor: Supervisor::new(bins, config_path.clone(), log, args.seed, args.rate),
            observer: Observer::start(&config)?,
            injected: Mutex::default(),
        });
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let addr = listener.local_addr()?;
        eprintln!(
            "control room: {broker} {} · Schema Registry {} · services log {}",
            stack.bootstrap_servers(),
            stack.registry_url(),
            dir.join("services.log").display()
        );
        eprintln!("control room listening on http://{addr}/ (Ctrl-C stops it)");
        axum::serve(listener, guard.protect(router(state.clone())))
            .with_graceful_shutdown(stopped)
            .await?;
        state.observer.stop().await;
        Ok::<_, anyhow::Error>(state.supervisor.stop_all().await)
    }
    .await;
    stack.shutdown().await;
    let ended = served?;
    let mut failed = 0;
    for (name, stopped, status) in &ended {
        let how = if *stopped {
            "stopped"
        } else {
            "exited by itself"
        };
        println!(
            "{name} run ended: {how}, exit {}",
            supervisor::describe(*status)
        );
        failed += usize::from(!status.success());
    }
    anyhow::ensure!(
        failed == 0,
        "{failed} service run(s) ended with a failure; see the services log"
    );
    Ok(())
}

fn router(state: Shared) -> Router {
    Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route("/api/state", get(current))
        .route("/api/logs/{name}", get(logs))
        .route("/api/services/{name}/{action}", post(service))
        .route("/api/rate", post(set_rate))
        .route("/api/inject", post(inject))
        .with_state(state)
}

/// Problem JSON (`service_kit::problem`, as the services answer) with `code` and the error
/// chain as `detail`.
fn failure(status: StatusCode, code: &str, error: &anyhow::Error) -> Response {
    service_kit::problem::problem(status, code, format!("{error:#}"))
}

async fn current(State(state): State<Shared>) -> Json<Value> {
    let (kafka, latency, latest, funnel) = state.observer.figures();
    let injected = state
        .injected
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let services = state.supervisor.states();
    let states: Vec<(&str, &str)> = services.iter().map(|s| (s.name, s.state)).collect();
    let flow = flow::svg(
        &flow::Rates {
            orders_per_s: kafka.orders_per_s,
            picklists_per_s: kafka.picklists_per_s,
            statuses_per_s: kafka.statuses_per_s,
            dead_letters_per_s: kafka.dead_letters_per_s,
            dead_lettered: kafka.dead_lettered,
            lag_total: kafka.lag_total,
        },
        &states,
    );
    Json(json!({
        "broker": state.broker,
        "rate": state.supervisor.rate(),
        "services": services,
        "flow": flow,
        "charts": state.observer.charts(),
        "kafka": kafka,
        "latency": latency,
        "latest": latest,
        "injected": injected,
        "funnel": funnel,
    }))
}

/// The tail of service `name`'s log: `{"service", "kept", "lines": [{"level", "text"}, …]}`.
async fn logs(State(state): State<Shared>, Path(name): Path<String>) -> Response {
    match state.supervisor.log_tail(&name) {
        Ok((lines, kept)) => {
            Json(json!({ "service": name, "kept": kept, "lines": lines })).into_response()
        }
        Err(error) => failure(StatusCode::NOT_FOUND, "unknown_service", &error),
    }
}

async fn service(
    State(state): State<Shared>,
    Path((name, action)): Path<(String, String)>,
) -> Response {
    let result = match action.as_str() {
        "start" => state.supervisor.start(&name).await,
        "stop" => state.supervisor.stop(&name).await,
        other => Err(anyhow::anyhow!("unknown action {other:?}: start or stop")),
    };
    match result {
        Ok(()) => Json(json!({ "ok": true })).into_response(),
        Err(error) => failure(StatusCode::BAD_REQUEST, "service_action_failed", &error),
    }
}

#[derive(Deserialize)]
struct RateRequest {
    rate: f64,
}

async fn set_rate(
    State(state): State<Shared>,
    request: Result<Json<RateRequest>, JsonRejection>,
) -> Response {
    let rate = match request {
        Ok(Json(RateRequest { rate })) => rate,
        Err(rejection) => {
            return service_kit::problem::problem(
                StatusCode::BAD_REQUEST,
                "malformed_body",
                rejection.body_text(),
            );
        }
    };
    match state.supervisor.set_rate(rate).await {
        Ok(()) => Json(json!({ "rate": rate })).into_response(),
        Err(error) => failure(StatusCode::BAD_REQUEST, "rate_not_set", &error),
    }
}

async fn inject(State(state): State<Shared>) -> Response {
    match state.observer.inject_malformed().await {
        Ok((partition, offset)) => {
            state
                .injected
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((partition, offset));
            Json(json!({ "partition": partition, "offset": offset })).into_response()
        }
        Err(error) => failure(StatusCode::BAD_GATEWAY, "inject_failed", &error),
    }
}
