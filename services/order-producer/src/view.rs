//! The Order API's view of order histories. On start it reads the compacted latest-state topic
//! `grocery.order-state.v1` to its end (one record per order: its whole history), then follows
//! `grocery.order-status.v1` from where the state left off ([`service_kit::order_state`] says
//! why that hand-over neither misses a status nor folds one twice). Each status that adds a
//! change is followed by the order's new state record, written by this instance's
//! [`StateWriter`] (one writer at a time: the instance started last fences the others). A
//! writer fenced, refused or failed stops for good (`order_api_state_writer_stopped` 1, an
//! ERROR line saying why); the view goes on following the statuses either way, and a state
//! `transactional.id` refused at start leaves the instance up, writing no state. With
//! `--view-from history`, or when the state and status topics' partition counts differ
//! (`order_api_view_from_history` 1), it reads the status topic from the beginning instead and
//! writes no state (how every start worked before the state topic; kept for the restart bench
//! and as a way back). Partitions are assigned by hand ([`grocery_events::Replay`]): those
//! added to the status topic while the view runs are found within [`PARTITION_CHECK`] and read
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
    time::Duration,
};

use grocery_events::{Client, ConsumerOptions, OrderLatestState, OrderStatus, Record};
use grocery_store::{HistoryView, OrderHistory, state::to_state};
use service_kit::order_state::{self, StateRead, StateWriter};
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

/// How often the view looks for partitions added to the status topic while it runs.
const PARTITION_CHECK: Duration = Duration::from_secs(10);

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

/// Where the view starts from.
#[derive(Debug, Clone)]
pub(crate) enum Start {
    /// The latest-state topic, then the statuses after it; the state is written with this
    /// `transactional.id`.
    State { transactional_id: String },
    /// Every status from the beginning; no state written.
    History,
}

/// What a start opened: the statuses to follow and, from the state, the writer.
struct Opened {
    statuses: grocery_events::Replay<OrderStatus>,
    writer: Option<(StateWriter, tokio::task::JoinHandle<()>)>,
}

/// Opens the view's sources as `start` says: for [`Start::State`] the writer first (fencing an
/// earlier writer), then the state topic read into `view`, then the statuses after it. A
/// writer whose `transactional.id` the brokers refuse is not started (logged, counted): the
/// view still starts from the state. When the state and status topics' partition counts
/// differ, the state is not used: the view reads every status and the writer is dropped.
async fn open(client: &Client, view: &View, start: &Start) -> grocery_events::Result<Opened> {
    let history = || async {
        client
            .replay::<OrderStatus>(ConsumerOptions::new(GROUP), ASSIGN_TIMEOUT)
            .await
    };
    match start {
        Start::History => {
            view.from_history.store(true, Ordering::Relaxed);
            Ok(Opened {
                statuses: history().await?,
                writer: None,
            })
        }
        Start::State { transactional_id } => {
            let writer = match StateWriter::start(client, transactional_id).await {
                Ok(writer) => Some(writer),
                Err(error) if error.is_refused() => {
                    tracing::error!(
                        error = %error,
                        transactional_id,
                        "the order state writer cannot start: the brokers refuse its \
                         transactional.id (the Order API's principal needs WRITE and DESCRIBE on \
                         it); the view starts from grocery.order-state.v1 but this instance \
                         writes no state"
                    );
                    view.writer_stopped.store(true, Ordering::Relaxed);
                    None
                }
                Err(error) => return Err(error),
            };
            let read = order_state::read_state(client, GROUP, ASSIGN_TIMEOUT, |history| {
                view.restore(history)
            })
            .await?;
            match read {
                StateRead::Read { resume, records } => {
                    tracing::info!(records, resume = ?resume.next_offsets(), "order states read from grocery.order-state.v1");
                    let statuses =
                        order_state::statuses_after(client, GROUP, ASSIGN_TIMEOUT, &resume).await?;
                    Ok(Opened { statuses, writer })
                }
                StateRead::Mismatch(_) => {
                    // read_state logged both counts. A state written now would be as unusable.
                    if writer.is_some() {
                        tracing::warn!(
                            "the order state writer is not used: grocery.order-state.v1's \
                             partitions do not match grocery.order-status.v1's"
                        );
                    }
                    view.writer_stopped.store(true, Ordering::Relaxed);
                    view.from_history.store(true, Ordering::Relaxed);
                    Ok(Opened {
                        statuses: history().await?,
                        writer: None,
                    })
                }
            }
        }
    }
}

/// Rebuilds the view as `start` says, then follows the status topic until `shutdown`.
/// Opening is retried while the brokers cannot be reached.
///
/// # Errors
/// When the consumer fails for good (credentials or authorization refused, a fatal error).
pub(crate) async fn follow(
    client: Client,
    view: std::sync::Arc<View>,
    start: Start,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let stop = shutdown.requested();
    tokio::pin!(stop);
    let started = std::time::Instant::now();
    // A topic not created yet fails at once: each attempt waits longer before the next.
    let opened = service_kit::retry::until_shutdown(
        "cannot read the order state and status topics yet",
        service_kit::retry::backoff(RETRY_FIRST, RETRY_MAX),
        grocery_events::Error::is_refused,
        &mut stop,
        || open(&client, &view, &start),
    )
    .await?;
    let Some(Opened {
        statuses: mut replay,
        writer,
    }) = opened
    else {
        return Ok(());
    };
    let (mut writer, writer_task) = writer.unzip();
    let mut check = tokio::time::interval(CATCH_UP_CHECK);
    let mut partitions = tokio::time::interval_at(
        tokio::time::Instant::now() + PARTITION_CHECK,
        PARTITION_CHECK,
    );
    let followed = loop {
        tokio::select! {
            () = &mut stop => break Ok(()),
            record = replay.recv_record() => match record {
                Ok(Record::Event(received)) => {
                    let source = writer.as_ref().map(|_| (received.meta.partition, received.meta.offset));
                    if let (Some(state), Some(writer)) = (view.apply(received.event, source), &writer) {
                        writer.push(state).await;
                    }
                }
                Ok(Record::Tombstone(_)) => {}
                Err(error) => break Err(error),
            },
            _ = check.tick() => {}
            _ = partitions.tick() => match order_state::follow_new_partitions(&replay, ASSIGN_TIMEOUT) {
                Ok(Some((before, after))) => {
                    tracing::warn!(
                        before,
                        after,
                        "grocery.order-status.v1 now has {after} partitions ({before} read so far): \
                         the view reads the new ones from their beginning"
                    );
                    // The state of the new partitions' statuses would not land on their
                    // partition numbers: no more state from this instance (the queued records
                    // are committed; the next start sees the counts differ).
                    if writer.take().is_some() {
                        tracing::warn!(
                            "the order state writer stopped: grocery.order-status.v1 was \
                             repartitioned while this instance ran"
                        );
                        view.writer_stopped.store(true, Ordering::Relaxed);
                    }
                }
                Ok(None) => {}
                Err(error) => tracing::warn!(%error, "cannot check grocery.order-status.v1's partitions"),
            },
        }
        if let Some(writer) = &writer {
            let stats = writer.stats();
            view.state_written
                .store(stats.written.load(Ordering::Relaxed), Ordering::Relaxed);
            if stats.stopped.load(Ordering::Relaxed) {
                view.writer_stopped.store(true, Ordering::Relaxed);
            }
        }
        view.undecodable
            .store(replay.consumer().undecodable_passed(), Ordering::Relaxed);
        if !view.is_ready() {
            if replay.is_caught_up() {
                view.remaining.store(0, Ordering::Relaxed);
                view.ready.store(true, Ordering::Release);
                tracing::info!(
                    state_records = view.state_records.load(Ordering::Relaxed),
                    status_records = view.records.load(Ordering::Relaxed),
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    from = match start {
                        Start::State { .. } => "state",
                        Start::History => "history",
                    },
                    "order history rebuilt"
                );
            } else {
                view.remaining.store(replay.remaining(), Ordering::Relaxed);
            }
        }
    };
    // The records queued are committed before the writer ends.
    drop(writer);
    if let Some(task) = writer_task {
        let _ = task.await;
    }
    followed?;
    Ok(())
}
