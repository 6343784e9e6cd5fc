//! Prometheus metrics of the service and the HTTP endpoints (`/metrics`, `/health`). The
//! consumer lag and the client metrics come from librdkafka's statistics
//! ([`service_kit::stats`]), not from polling watermarks.

use std::{
    net::SocketAddr,
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use service_kit::{
    metrics::{Metrics as Registry, raise_to},
    stats::{self, ClientMetrics},
};

use axum::{Router, extract::State, response::IntoResponse, routing::get};
use grocery_events::{Event as _, Order, OrderStatus, PickList, Pipeline};
use prometheus_client::metrics::{
    counter::Counter,
    gauge::Gauge,
    histogram::{Histogram, exponential_buckets},
};
use tokio::sync::watch;

/// How long `/health` waits for the brokers to answer during a reported outage.
const HEALTH_PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The service's metrics, registered with [`service_kit::metrics`]; the pipeline's counts are
/// brought up to date at each scrape.
pub(crate) struct Metrics {
    registry: Arc<Registry>,
    /// Seconds from `order_time` to the pick list being built.
    pub(crate) latency: Histogram,
}

impl Metrics {
    pub(crate) fn new(pipeline: &Arc<Pipeline<Order>>) -> Self {
        let mut metrics = Registry::new();
        let registry = metrics.registry();
        let consumed = Counter::default();
        let produced = Counter::default();
        let statuses = Counter::default();
        let dead_lettered = Counter::default();
        // 1 ms to about 65 s.
        let latency = Histogram::new(exponential_buckets(0.001, 2.0, 17));
        let lag: Gauge = Gauge::default();
        // Counter names get their `_total` suffix from the encoder.
        registry.register(
            "fulfillment_orders_consumed",
            "Orders read and turned into pick lists",
            consumed.clone(),
        );
        registry.register(
            "fulfillment_picklists_produced",
            "Pick lists acknowledged by the broker",
            produced.clone(),
        );
        registry.register(
            "fulfillment_statuses_produced",
            "Order status changes (RECEIVED, PICKLIST_CREATED) acknowledged by the broker",
            statuses.clone(),
        );
        registry.register(
            "fulfillment_dead_lettered",
            "Order records that could not be decoded, sent to the dead-letter topic",
            dead_lettered.clone(),
        );
        registry.register(
            "fulfillment_processing_latency_seconds",
            "Time from the order being placed to its pick list being built",
            latency.clone(),
        );
        registry.register(
            "fulfillment_consumer_lag",
            "Records not yet read, summed over the partitions assigned to this instance (librdkafka statistics)",
            lag.clone(),
        );
        let producers_replaced = Counter::default();
        registry.register(
            "fulfillment_transactional_producers_replaced",
            "Transactional producers replaced because a transaction call did not return (the library's watchdog)",
            producers_replaced.clone(),
        );
        let assigned: Gauge = Gauge::default();
        registry.register(
            "fulfillment_assigned_partitions",
            "Partitions of the orders topic this instance owns now",
            assigned.clone(),
        );
        // The producer is read at each scrape: the watchdog can replace it.
        let producer = pipeline.clone();
        metrics.client_metrics(
            ClientMetrics::new([("consumer", pipeline.consumer().context().clone())])
                .with_current("producer", move || producer.producer_context()),
        );
        let pipeline = pipeline.clone();
        metrics.on_scrape(move || {
            let stats = pipeline.stats();
            raise_to(&consumed, stats.consumed.load(Ordering::Relaxed));
            raise_to(&produced, stats.produced_to(PickList::TOPIC));
            raise_to(&statuses, stats.produced_to(OrderStatus::TOPIC));
            raise_to(&dead_lettered, pipeline.consumer().dead_lettered());
            raise_to(
                &producers_replaced,
                stats.producers_replaced.load(Ordering::Relaxed),
            );
            let consumer = pipeline.consumer().context();
            let owned = consumer.owned_partitions().len();
            assigned.set(i64::try_from(owned).unwrap_or(i64::MAX));
            if let Some(value) = stats::consumer_lag(consumer) {
                lag.set(value);
            }
        });
        Self {
            registry: Arc::new(metrics),
            latency,
        }
    }
}

#[derive(Clone)]
struct AppState {
    pipeline: Arc<Pipeline<Order>>,
}

/// Binds `addr` and serves `/metrics` and `/health` until `shutdown` turns true.
pub(crate) async fn serve(
    addr: SocketAddr,
    metrics: &Metrics,
    pipeline: Arc<Pipeline<Order>>,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<service_kit::http::Server> {
    let app = Router::new()
        .route("/metrics", Registry::route(metrics.registry.clone()))
        .route("/health", get(health))
        .with_state(AppState { pipeline });
    service_kit::http::spawn(addr, app, shutdown).await
}

/// `200 ok`, or `503` with the reason while the brokers cannot be reached, the pipeline's
/// outputs cannot be written (an output subject not registered, the Schema Registry unreachable
/// or refusing the credentials) or an order cannot be decoded yet (its schema cannot be fetched
/// from the registry; the body says which record and why): the service keeps running and
/// resumes when it passes. With some brokers reachable and others not (one broker of a
/// replicated cluster lost: its partitions and coordinators move to the others), `200` with
/// `ok; degraded: …` naming the brokers the clients lost (from the clients' error callback, as
/// soon as a connection fails) or are not connected to (librdkafka's latest statistics).
async fn health(State(state): State<AppState>) -> axum::response::Response {
    use axum::http::StatusCode;
    if !state.pipeline.check_brokers(HEALTH_PROBE_TIMEOUT).await {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "brokers unreachable; retrying",
        )
            .into_response();
    }
    if let Some(reason) = state.pipeline.stalled() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{reason}; retrying"),
        )
            .into_response();
    }
    if let Some(reason) = state.pipeline.consumer().waiting_on() {
        return (StatusCode::SERVICE_UNAVAILABLE, reason).into_response();
    }
    let down = brokers_not_up(&state.pipeline);
    if down.is_empty() {
        (StatusCode::OK, "ok".to_owned()).into_response()
    } else {
        (
            StatusCode::OK,
            format!("ok; degraded: not connected to {}", down.join(", ")),
        )
            .into_response()
    }
}

/// The brokers the pipeline's consumer or producer lost: those whose connection failed
/// (`host:port/id: <librdkafka's reason>`, from the clients' error callback, at once: see
/// `KafkaContext::lost_brokers`), and those the latest statistics show
/// known from the cluster's metadata but not connected (`host:port/id STATE`). Brokers a client
/// never needed (`INIT`) and the bootstrap entries (no node id yet) are left out.
fn brokers_not_up(pipeline: &Pipeline<Order>) -> Vec<String> {
    let mut down = std::collections::BTreeMap::new();
    let producer = pipeline.producer_context();
    for context in [pipeline.consumer().context(), &producer] {
        for lost in context.lost_brokers() {
            if !lost.name.ends_with("/bootstrap") {
                down.insert(
                    lost.name,
                    format!("lost {:.0}s ago: {}", lost.since.as_secs_f64(), lost.reason),
                );
            }
        }
    }
    for context in [pipeline.consumer().context(), &producer] {
        let Some(statistics) = context.statistics() else {
            continue;
        };
        for broker in statistics.brokers.values() {
            if broker.nodeid >= 0 && broker.state != "UP" && broker.state != "INIT" {
                down.entry(broker.name.clone())
                    .or_insert_with(|| broker.state.clone());
            }
        }
    }
    down.into_iter()
        .map(|(name, state)| format!("{name} {state}"))
        .collect()
}

/// Seconds from `order_time_ms` to `now_ms`, never negative. Saturating: an order's time is
/// producer input, and a hostile one (`i64::MIN`, far future) must not overflow.
pub(crate) fn latency_seconds(now_ms: i64, order_time_ms: i64) -> f64 {
    now_ms.saturating_sub(order_time_ms).max(0) as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::latency_seconds;

    #[test]
    fn latency_of_hostile_order_times_does_not_overflow() {
        let now = 1_800_000_000_000;
        assert_eq!(latency_seconds(now, now - 1_500), 1.5);
        assert_eq!(latency_seconds(now, i64::MAX), 0.0);
        assert_eq!(latency_seconds(now, now + 10), 0.0);
        assert_eq!(latency_seconds(now, i64::MIN), i64::MAX as f64 / 1000.0);
        assert_eq!(latency_seconds(i64::MIN, i64::MAX), 0.0);
        assert_eq!(latency_seconds(-1, i64::MAX), 0.0);
    }
}
