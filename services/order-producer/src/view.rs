//! The Order API's view of order histories: rebuilt on start from `grocery.order-status.v1`
//! (every partition from the beginning, [`grocery_events::Replay`]), then kept up to date by
//! following the topic. Kafka is the source of truth; nothing of the view is stored locally.
//!
//! Until the records that were on the topic at start have all been read, the view is not
//! *ready*: `GET /orders/{id}` and `/health` answer 503 rather than a partial history.
//! Undecodable records are passed over with a warning and counted: a replay never writes to
//! the dead-letter topic (that would copy the same records again at every start of every
//! instance) nor commits offsets.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, RwLock,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use grocery_events::{Client, ConsumerOptions, OrderStatus, Record};
use grocery_store::HistoryView;
use uuid::Uuid;

use prometheus_client::metrics::{counter::Counter, gauge::Gauge};
use service_kit::{
    Shutdown,
    metrics::{Metrics, raise_to},
};

/// The consumer group named in the view's consumer configuration (Terraform grants the Order
/// API's principal this group); no offsets are committed or read from it.
pub(crate) const GROUP: &str = "order-api";

/// How long one attempt to read the topic's partitions and end offsets may take.
const ASSIGN_TIMEOUT: Duration = Duration::from_secs(10);

/// First and longest wait between attempts to read the topic's partitions.
const RETRY_FIRST: Duration = Duration::from_millis(500);
const RETRY_MAX: Duration = Duration::from_secs(10);

/// How often the view checks whether it has caught up when no record arrives (a record
/// passed over last moves only the consumer's position).
const CATCH_UP_CHECK: Duration = Duration::from_millis(250);

/// An order this process placed (acknowledged by the broker), shown as `PLACED` until its
/// first status change arrives.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Placed {
    /// When the order was placed (ms since the Unix epoch).
    pub(crate) time: i64,
}

/// The histories and what is known about rebuilding them.
#[derive(Debug, Default)]
pub(crate) struct View {
    histories: RwLock<HistoryView>,
    placed: Mutex<HashMap<Uuid, Placed>>,
    ready: AtomicBool,
    /// Records still to read before the view is ready (an upper bound); `u64::MAX` before
    /// the topic's end offsets are known.
    remaining: AtomicU64,
    records: AtomicU64,
    repeats: AtomicU64,
    undecodable: AtomicU64,
}

/// What `GET /orders/{id}` finds.
pub(crate) enum Lookup {
    /// The view is still being rebuilt.
    NotReady,
    /// The order's history as JSON.
    Found(serde_json::Value),
    /// Neither the topic nor this process knows the order.
    Unknown,
}

impl View {
    pub(crate) fn new() -> Self {
        Self {
            remaining: AtomicU64::new(u64::MAX),
            ..Self::default()
        }
    }

    /// Whether the view holds everything the topic held at start.
    pub(crate) fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// The `/health` text while rebuilding.
    pub(crate) fn rebuilding(&self) -> String {
        match self.remaining.load(Ordering::Relaxed) {
            u64::MAX => {
                "rebuilding the order history: reading grocery.order-status.v1's partitions"
                    .to_owned()
            }
            remaining => format!(
                "rebuilding the order history: {} records read, at most {remaining} to go",
                self.records.load(Ordering::Relaxed)
            ),
        }
    }

    /// Whether the view (topic) knows the order.
    pub(crate) fn knows(&self, order_id: Uuid) -> bool {
        self.histories
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(order_id)
            .is_some()
    }

    /// Notes an order this process placed.
    pub(crate) fn placed(&self, order_id: Uuid, placed: Placed) {
        if !self.knows(order_id) {
            self.placed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(order_id, placed);
        }
    }

    pub(crate) fn lookup(&self, order_id: Uuid) -> Lookup {
        if !self.is_ready() {
            return Lookup::NotReady;
        }
        if let Some(history) = self
            .histories
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(order_id)
        {
            return Lookup::Found(history.to_json());
        }
        match self
            .placed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&order_id)
        {
            Some(placed) => Lookup::Found(serde_json::json!({
                "order_id": order_id,
                "state": "PLACED",
                "history": [{
                    "state": "PLACED",
                    "time": placed.time,
                    "actor": "order-api",
                    "picklist_id": null,
                    "lines": [],
                    "note": null,
                }],
            })),
            None => Lookup::Unknown,
        }
    }

    fn apply(&self, change: OrderStatus) {
        let order_id = change.order_id;
        self.records.fetch_add(1, Ordering::Relaxed);
        let added = self
            .histories
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .apply(change);
        if !added {
            self.repeats.fetch_add(1, Ordering::Relaxed);
        }
        self.placed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&order_id);
    }

    /// Registers the view's metrics with `metrics`, brought up to date at each scrape (counter
    /// names get their `_total` suffix from the encoder).
    pub(crate) fn register(self: &Arc<Self>, metrics: &mut Metrics) {
        let registry = metrics.registry();
        let records = Counter::default();
        let repeats = Counter::default();
        let undecodable = Counter::default();
        let orders: Gauge = Gauge::default();
        let changes: Gauge = Gauge::default();
        let ready: Gauge = Gauge::default();
        for (name, help, counter) in [
            (
                "order_api_status_records",
                "Order status records read from grocery.order-status.v1",
                &records,
            ),
            (
                "order_api_status_repeats",
                "Order status records dropped as repeats (same status_id)",
                &repeats,
            ),
            (
                "order_api_status_undecodable",
                "Order status records that could not be decoded, passed over (logged; a replay does not dead-letter)",
                &undecodable,
            ),
        ] {
            registry.register(name, help, counter.clone());
        }
        for (name, help, gauge) in [
            (
                "order_api_view_orders",
                "Orders with a status history in the view",
                &orders,
            ),
            (
                "order_api_view_changes",
                "Distinct status changes in the view",
                &changes,
            ),
            (
                "order_api_view_ready",
                "1 once the view holds everything the topic held at start",
                &ready,
            ),
        ] {
            registry.register(name, help, gauge.clone());
        }
        let view = self.clone();
        metrics.on_scrape(move || {
            raise_to(&records, view.records.load(Ordering::Relaxed));
            raise_to(&repeats, view.repeats.load(Ordering::Relaxed));
            raise_to(&undecodable, view.undecodable.load(Ordering::Relaxed));
            let (count, changed) = {
                let histories = view.histories.read().unwrap_or_else(|e| e.into_inner());
                (histories.orders(), histories.changes())
            };
            orders.set(i64::try_from(count).unwrap_or(i64::MAX));
            changes.set(i64::try_from(changed).unwrap_or(i64::MAX));
            ready.set(i64::from(view.is_ready()));
        });
    }
}

/// Rebuilds the view from the beginning of the topic, then follows it until `shutdown`.
/// Reading the partitions is retried while the brokers cannot be reached.
///
/// # Errors
/// When the consumer fails for good (credentials or authorization refused, a fatal error).
pub(crate) async fn follow(
    client: Client,
    view: std::sync::Arc<View>,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let stop = shutdown.requested();
    tokio::pin!(stop);
    let started = std::time::Instant::now();
    // A topic not created yet fails at once: each attempt waits longer before the next.
    let replay = service_kit::retry::until_shutdown(
        "cannot read the order status topic yet",
        service_kit::retry::backoff(RETRY_FIRST, RETRY_MAX),
        grocery_events::Error::is_refused,
        &mut stop,
        || client.replay::<OrderStatus>(ConsumerOptions::new(GROUP), ASSIGN_TIMEOUT),
    )
    .await?;
    let Some(mut replay) = replay else {
        return Ok(());
    };
    let mut check = tokio::time::interval(CATCH_UP_CHECK);
    loop {
        tokio::select! {
            () = &mut stop => return Ok(()),
            record = replay.recv_record() => match record? {
                Record::Event(received) => view.apply(received.event),
                Record::Tombstone(_) => {}
            },
            _ = check.tick() => {}
        }
        view.undecodable
            .store(replay.consumer().undecodable_passed(), Ordering::Relaxed);
        if !view.is_ready() {
            if replay.is_caught_up() {
                view.remaining.store(0, Ordering::Relaxed);
                view.ready.store(true, Ordering::Release);
                tracing::info!(
                    records = view.records.load(Ordering::Relaxed),
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "order history rebuilt from grocery.order-status.v1"
                );
            } else {
                view.remaining.store(replay.remaining(), Ordering::Relaxed);
            }
        }
    }
}
