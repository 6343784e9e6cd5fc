//! The Order API's view of order histories. On start it reads the compacted latest-state topic
//! `grocery.order-state.v1` to its end (one record per order: its whole history), then follows
//! `grocery.order-status.v1` from where the state left off ([`service_kit::order_state`] says
//! why that hand-over neither misses a status nor folds one twice). Each status that adds a
//! change is followed by the order's new state record, written by this instance's
//! [`StateWriter`](service_kit::order_state::StateWriter) (one writer at a time: the instance
//! started last fences the others). A writer fenced, refused or failed stops for good
//! (`order_api_state_writer_stopped` 1, an ERROR line saying why); the view goes on following the statuses either way, and a state
//! `transactional.id` refused at start leaves the instance up, writing no state. With
//! `--view-from history`, or when the state and status topics' partition counts differ
//! (`order_api_view_from_history` 1), it reads the status topic from the beginning instead and
//! writes no state (how every start worked before the state topic; kept for the restart bench
//! and as a way back). Partitions are assigned by hand ([`grocery_events::Replay`]): those
//! added to the status topic while the view runs are found within 10 s ([`follow()`]) and read
//! from their beginning (the writer then stops). Nothing of the view is stored locally.
//!
//! The view is bounded: at most `--view-orders` orders ([`grocery_store::DEFAULT_VIEW_ORDERS`]
//! by default), finished ones forgotten first ([`grocery_store::HistoryView`] says how), and at
//! most as many orders placed here and not yet seen on the status topic. An order the view no
//! longer holds is answered 404 `unknown_order`, whose detail names the bound. An open order
//! forgotten past the bound that changes later gets a state record holding only the changes
//! seen since: keep the bound above the store's backlog of open orders
//! (`order_api_view_evicted_open_total` says when it is not).
//!
//! Until the records that were on the topics at start have all been read, the view is not
//! *ready*: `GET /orders/{id}` and `/health` answer 503 rather than a partial history.
//! Undecodable records are passed over with a warning and counted: a replay never writes to
//! the dead-letter topic (that would copy the same records again at every start of every
//! instance) nor commits offsets.

use std::{
    collections::{HashMap, VecDeque},
    sync::{
        Arc, Mutex, RwLock,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
};

use grocery_events::{OrderLatestState, OrderStatus};
use grocery_store::{HistoryView, OrderHistory, state::to_state};
use uuid::Uuid;

use prometheus_client::metrics::{counter::Counter, gauge::Gauge};
use service_kit::metrics::{Metrics, raise_to};

mod follow;

pub(crate) use follow::{Start, follow};

/// The consumer group named in the view's consumer configuration (Terraform grants the Order
/// API's principal this group); no offsets are committed or read from it.
pub(crate) const GROUP: &str = "order-api";

/// An order this process placed (acknowledged by the broker), shown as `PLACED` until its
/// first status change arrives.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Placed {
    /// When the order was placed (ms since the Unix epoch).
    pub(crate) time: i64,
}

/// Orders placed here and not yet seen on the status topic, oldest first, at most `limit`.
#[derive(Debug, Default)]
struct PlacedOrders {
    by_id: HashMap<Uuid, Placed>,
    order: VecDeque<Uuid>,
    limit: usize,
}

impl PlacedOrders {
    fn insert(&mut self, order_id: Uuid, placed: Placed) {
        if self.by_id.insert(order_id, placed).is_none() {
            self.order.push_back(order_id);
        }
        while self.by_id.len() > self.limit {
            match self.order.pop_front() {
                Some(oldest) => {
                    self.by_id.remove(&oldest);
                }
                None => break,
            }
        }
        // Ids removed since (their first status arrived) are swept out once they are most of
        // the queue.
        if self.order.len() > 2 * self.limit.max(16) {
            let by_id = &self.by_id;
            self.order.retain(|id| by_id.contains_key(id));
        }
    }

    fn remove(&mut self, order_id: &Uuid) {
        self.by_id.remove(order_id);
    }
}

/// The histories and what is known about rebuilding them.
#[derive(Debug, Default)]
pub(crate) struct View {
    histories: RwLock<HistoryView>,
    placed: Mutex<PlacedOrders>,
    ready: AtomicBool,
    /// Records still to read before the view is ready (an upper bound); `u64::MAX` before
    /// the topic's end offsets are known.
    remaining: AtomicU64,
    records: AtomicU64,
    state_records: AtomicU64,
    state_written: AtomicU64,
    /// The state writer stopped or could not start: this instance writes no more state.
    writer_stopped: AtomicBool,
    /// The view read every status (asked for, or the state could not be used).
    from_history: AtomicBool,
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
    /// An empty view holding at most `limit` orders.
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            histories: RwLock::new(HistoryView::with_limit(limit)),
            placed: Mutex::new(PlacedOrders {
                limit: limit.max(1),
                ..PlacedOrders::default()
            }),
            remaining: AtomicU64::new(u64::MAX),
            ..Self::default()
        }
    }

    /// The detail of the 404 for an order the view does not hold.
    pub(crate) fn unknown(&self, order_id: Uuid) -> String {
        let limit = self
            .histories
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .limit()
            .unwrap_or(usize::MAX);
        format!(
            "no order {order_id} is known: this view holds the {limit} most recent orders \
             (open ones first, then the most recently finished); an older order's statuses \
             are on grocery.order-status.v1"
        )
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
            .by_id
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

    /// Folds a status in; when it added a change and `source` (its partition and offset) is
    /// given, returns the order's new state record.
    fn apply(&self, change: OrderStatus, source: Option<(i32, i64)>) -> Option<OrderLatestState> {
        let order_id = change.order_id;
        self.records.fetch_add(1, Ordering::Relaxed);
        let state = {
            let mut histories = self.histories.write().unwrap_or_else(|e| e.into_inner());
            if histories.apply(change) {
                source.and_then(|(partition, offset)| {
                    histories
                        .get(order_id)
                        .map(|history| to_state(history, partition, offset))
                })
            } else {
                self.repeats.fetch_add(1, Ordering::Relaxed);
                None
            }
        };
        self.placed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&order_id);
        state
    }

    /// Puts back a history read from the state topic.
    fn restore(&self, history: OrderHistory) {
        let order_id = history.order_id();
        self.state_records.fetch_add(1, Ordering::Relaxed);
        self.histories
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(history);
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
        let evicted = Counter::default();
        let evicted_open = Counter::default();
        let state_records = Counter::default();
        let state_written = Counter::default();
        let orders: Gauge = Gauge::default();
        let changes: Gauge = Gauge::default();
        let ready: Gauge = Gauge::default();
        let writer_stopped: Gauge = Gauge::default();
        let from_history: Gauge = Gauge::default();
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
            (
                "order_api_state_records",
                "Latest-state records read from grocery.order-state.v1 at start",
                &state_records,
            ),
            (
                "order_api_state_written",
                "Latest-state records this instance wrote to grocery.order-state.v1 (committed)",
                &state_written,
            ),
            (
                "order_api_view_evicted",
                "Orders forgotten by the view past its bound (--view-orders)",
                &evicted,
            ),
            (
                "order_api_view_evicted_open",
                "Open (not READY) orders forgotten past the bound: raise --view-orders",
                &evicted_open,
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
            (
                "order_api_state_writer_stopped",
                "1 once this instance writes no more grocery.order-state.v1 records: its writer was fenced by a newer instance, its transactional.id refused, failed, or the state could not be used (logged at ERROR or WARN)",
                &writer_stopped,
            ),
            (
                "order_api_view_from_history",
                "1 when the view was rebuilt from every status (--view-from history, or the state and status topics' partition counts differ)",
                &from_history,
            ),
        ] {
            registry.register(name, help, gauge.clone());
        }
        let view = self.clone();
        metrics.on_scrape(move || {
            raise_to(&records, view.records.load(Ordering::Relaxed));
            raise_to(&repeats, view.repeats.load(Ordering::Relaxed));
            raise_to(&undecodable, view.undecodable.load(Ordering::Relaxed));
            raise_to(&state_records, view.state_records.load(Ordering::Relaxed));
            raise_to(&state_written, view.state_written.load(Ordering::Relaxed));
            let (count, changed) = {
                let histories = view.histories.read().unwrap_or_else(|e| e.into_inner());
                raise_to(&evicted, histories.evicted());
                raise_to(&evicted_open, histories.evicted_open());
                (histories.orders(), histories.changes())
            };
            orders.set(i64::try_from(count).unwrap_or(i64::MAX));
            changes.set(i64::try_from(changed).unwrap_or(i64::MAX));
            ready.set(i64::from(view.is_ready()));
            writer_stopped.set(i64::from(view.writer_stopped.load(Ordering::Relaxed)));
            from_history.set(i64::from(view.from_history.load(Ordering::Relaxed)));
        });
    }
}
