//! What the control room reads from Kafka itself, independent of the services: topic
//! watermarks (orders/s, pick lists/s, status changes/s, dead letters/s and totals), the
//! fulfillment group's committed offsets (lag per partition), the orders and pick lists
//! (latency, the latest pick lists) and the order status changes (the funnel: orders by latest
//! state). Each sample also goes into the charts' bounded history (`charts`). Also the
//! injection of a malformed record.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    sync::{Arc, Mutex, mpsc},
    thread,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use avro_events::{Codec, config::ClientRole};
use grocery_events::{Config, Order, OrderState, OrderStatus, PickList, StockStatus, topics};
use rdkafka::{
    Message as _, Offset, TopicPartitionList,
    consumer::{BaseConsumer, Consumer as _, StreamConsumer},
    producer::{FutureProducer, FutureRecord},
};
use serde::Serialize;
use tokio::sync::watch;

use super::charts::{History, Point};

/// The consumer group of fulfillment-service (its `--group` default, which the control room
/// does not change).
pub(crate) const FULFILLMENT_GROUP: &str = "fulfillment-service";
/// How often watermarks and committed offsets are read.
const SAMPLE_EVERY: Duration = Duration::from_secs(1);
/// Rates are averaged over this window.
const RATE_WINDOW: Duration = Duration::from_secs(5);
/// Latency percentiles cover this window.
const LATENCY_WINDOW: Duration = Duration::from_secs(60);
/// Pick lists listed on the page.
const LATEST: usize = 8;
/// Order times remembered to match pick lists with (the oldest go first).
const ORDER_TIMES: usize = 200_000;
/// Timeout of each broker query.
const QUERY_TIMEOUT: Duration = Duration::from_secs(5);

/// Lag of one partition of the orders topic for the fulfillment group.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct PartitionLag {
    partition: i32,
    /// The group's committed offset; `None` before its first commit.
    committed: Option<i64>,
    high_watermark: i64,
    lag: i64,
}

/// The figures read from the brokers, once a second.
#[derive(Clone, Debug, Default, Serialize)]
pub(crate) struct Sampled {
    pub(crate) orders_per_s: f64,
    pub(crate) picklists_per_s: f64,
    pub(crate) statuses_per_s: f64,
    pub(crate) dead_letters_per_s: f64,
    orders_on_topic: i64,
    picklists_on_topic: i64,
    statuses_on_topic: i64,
    lag: Vec<PartitionLag>,
    pub(crate) lag_total: Option<i64>,
    pub(crate) dead_lettered: i64,
    /// The last sampling error, if the last sample failed.
    error: Option<String>,
}

/// One pick list as the page lists it.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct PickListRow {
    order_id: String,
    picker: String,
    lines: usize,
    flagged: usize,
    created_ms: i64,
    latency_ms: Option<i64>,
}

/// Latency figures over the last minute.
#[derive(Clone, Debug, Default, Serialize)]
pub(crate) struct Latency {
    p50_ms: Option<i64>,
    p99_ms: Option<i64>,
    samples: usize,
}

/// Orders in one state of the funnel.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct FunnelStep {
    state: &'static str,
    orders: usize,
}

/// The order status funnel: orders by the latest state they reached.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Funnel {
    /// One entry per state, in lifecycle order.
    states: Vec<FunnelStep>,
    /// Orders with at least one status change.
    orders: usize,
    /// Distinct status changes read (repeats of a `status_id` dropped).
    changes: usize,
}

/// The status changes read: distinct ids, and each order's latest state.
#[derive(Default)]
struct Statuses {
    ids: HashSet<uuid::Uuid>,
    latest: HashMap<uuid::Uuid, OrderState>,
}

impl Statuses {
    fn record(&mut self, status: &OrderStatus) {
        if !self.ids.insert(status.status_id) {
            return;
        }
        // States only move forward; the furthest one reached is the order's state.
        let latest = self.latest.entry(status.order_id).or_insert(status.state);
        *latest = (*latest).max(status.state);
    }

    fn funnel(&self) -> Funnel {
        let states = grocery_store::lifecycle::STATES
            .iter()
            .map(|state| FunnelStep {
                state: grocery_store::state_name(*state),
                orders: self.latest.values().filter(|s| *s == state).count(),
            })
            .collect();
        Funnel {
            states,
            orders: self.latest.len(),
            changes: self.ids.len(),
        }
    }
}

/// What the readers saw: order times, latencies, the latest pick lists, status changes.
#[derive(Default)]
struct Seen {
    statuses: Statuses,
    order_times: HashMap<String, i64>,
    order_queue: VecDeque<String>,
    /// Pick lists read before their order: order id → (created time, row index unknown).
    waiting: HashMap<String, i64>,
    latencies: VecDeque<(Instant, i64)>,
    latest: VecDeque<PickListRow>,
}

impl Seen {
    fn order(&mut self, order_id: String, order_time: i64) {
        if let Some(created) = self.waiting.remove(&order_id) {
            self.latency(&order_id, created - order_time);
        }
        if self.order_queue.len() == ORDER_TIMES
            && let Some(old) = self.order_queue.pop_front()
        {
            self.order_times.remove(&old);
        }
        self.order_queue.push_back(order_id.clone());
        self.order_times.insert(order_id, order_time);
    }

    fn pick_list(&mut self, pick_list: &PickList) {
        let order_id = pick_list.order_id.to_string();
        let latency = self
            .order_times
            .get(&order_id)
            .map(|time| pick_list.created_time - time);
        let flagged = pick_list
            .items_to_pick
            .iter()
            .filter(|l| l.stock_status != StockStatus::InStock)
            .count();
        if self.latest.len() == LATEST {
            self.latest.pop_back();
        }
        self.latest.push_front(PickListRow {
            order_id: order_id.clone(),
            picker: pick_list.assigned_picker.clone(),
            lines: pick_list.items_to_pick.len(),
            flagged,
            created_ms: pick_list.created_time,
            latency_ms: latency,
        });
        match latency {
            Some(ms) => self.latency(&order_id, ms),
            None if self.waiting.len() < ORDER_TIMES => {
                self.waiting.insert(order_id, pick_list.created_time);
            }
            None => {}
        }
    }

    fn latency(&mut self, order_id: &str, ms: i64) {
        self.latencies.push_back((Instant::now(), ms));
        if let Some(row) = self.latest.iter_mut().find(|r| r.order_id == order_id) {
            row.latency_ms = Some(ms);
        }
    }

    fn latency_figures(&mut self) -> Latency {
        while self
            .latencies
            .front()
            .is_some_and(|(at, _)| at.elapsed() > LATENCY_WINDOW)
        {
            self.latencies.pop_front();
        }
        let mut values: Vec<i64> = self.latencies.iter().map(|(_, ms)| *ms).collect();
        values.sort_unstable();
        Latency {
            p50_ms: xtask::services::percentile(&values, 50.0),
            p99_ms: xtask::services::percentile(&values, 99.0),
            samples: values.len(),
        }
    }
}

/// Reads the stack's Kafka for the page until [`Observer::stop`].
pub(crate) struct Observer {
    sampled: Arc<Mutex<Sampled>>,
    seen: Arc<Mutex<Seen>>,
    history: Arc<Mutex<History>>,
    injector: FutureProducer,
    /// The sampler thread and what stops it (dropping the sender).
    sampler: Mutex<Option<(mpsc::Sender<()>, thread::JoinHandle<()>)>>,
    stop_reader: watch::Sender<bool>,
    reader: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Observer {
    /// Starts the sampler thread and the reader task against the stack in `config`.
    ///
    /// # Errors
    /// When a client cannot be created or the topics not assigned.
    pub(crate) fn start(config: &Config) -> anyhow::Result<Self> {
        anyhow::ensure!(
            config.kafka_oauth()?.is_none(),
            "the control room reads Kafka with plain rdkafka clients: use --auth none or plain"
        );
        let sampled = Arc::new(Mutex::new(Sampled::default()));
        let seen = Arc::new(Mutex::new(Seen::default()));
        let history = Arc::new(Mutex::new(History::default()));
        let (stop_sampler, stopped) = mpsc::channel();
        let mut rd = config.rdkafka_config_for(ClientRole::Consumer);
        rd.set("group.id", FULFILLMENT_GROUP)
            .set("enable.auto.commit", "false");
        let admin: BaseConsumer = rd.create().context("creating the lag reader")?;
        let sampler_thread = thread::Builder::new()
            .name("control-sampler".into())
            .spawn({
                let (sampled, seen, history) = (sampled.clone(), seen.clone(), history.clone());
                move || sampler(&admin, &sampled, &seen, &history, &stopped)
            })?;

        let mut rd = config.rdkafka_config_for(ClientRole::Consumer);
        rd.set("group.id", "xtask-control-room")
            .set("enable.auto.commit", "false");
        let reader: StreamConsumer = rd.create().context("creating the topic reader")?;
        let mut assignment = TopicPartitionList::new();
        for topic in [topics::ORDERS, topics::PICKLISTS, topics::ORDER_STATUS] {
            for partition in 0..topics::PARTITIONS {
                assignment.add_partition_offset(topic, partition, Offset::Beginning)?;
            }
        }
        reader.assign(&assignment)?;
        let codec = Arc::new(Codec::from_config(config)?);
        let (stop_reader, stop) = watch::channel(false);
        let reader = tokio::spawn(read(reader, codec, seen.clone(), stop));

        let injector: FutureProducer = config
            .rdkafka_config_for(ClientRole::Producer)
            .create()
            .context("creating the injector")?;
        Ok(Self {
            sampled,
            seen,
            history,
            injector,
            sampler: Mutex::new(Some((stop_sampler, sampler_thread))),
            stop_reader,
            reader: Mutex::new(Some(reader)),
        })
    }

    /// Stops the sampler and the reader and waits until their clients are gone (before the
    /// stack stops, so they do not log its brokers going away).
    pub(crate) async fn stop(&self) {
        self.stop_reader.send_replace(true);
        let reader = self.reader.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(reader) = reader {
            let _ = reader.await;
        }
        let sampler = self
            .sampler
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some((stop, thread)) = sampler {
            drop(stop);
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }

    /// The latest figures.
    pub(crate) fn figures(&self) -> (Sampled, Latency, Vec<PickListRow>, Funnel) {
        let sampled = self
            .sampled
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let latency = seen.latency_figures();
        let funnel = seen.statuses.funnel();
        (
            sampled,
            latency,
            seen.latest.iter().cloned().collect(),
            funnel,
        )
    }

    /// The charts of the last minutes.
    pub(crate) fn charts(&self) -> super::charts::Charts {
        self.history
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .charts()
    }

    /// Writes one record that is not Confluent-framed Avro to the orders topic; returns its
    /// partition and offset.
    ///
    /// # Errors
    /// When the broker does not acknowledge it.
    pub(crate) async fn inject_malformed(&self) -> anyhow::Result<(i32, i64)> {
        let key = format!("malformed-{}", uuid::Uuid::new_v4());
        let payload = b"{\"not\": \"a Confluent-framed Avro record\"}";
        let record = FutureRecord::to(topics::ORDERS)
            .key(&key)
            .payload(&payload[..]);
        let delivered = self
            .injector
            .send(record, QUERY_TIMEOUT)
            .await
            .map_err(|(error, _)| error)
            .context("writing the malformed record")?;
        Ok((delivered.partition, delivered.offset))
    }
}

/// Samples every [`SAMPLE_EVERY`] until `stop`'s sender is dropped; each sample also goes into
/// `history` with the latency figures of `seen` at that moment.
fn sampler(
    client: &BaseConsumer,
    sampled: &Mutex<Sampled>,
    seen: &Mutex<Seen>,
    history: &Mutex<History>,
    stop: &mpsc::Receiver<()>,
) {
    // (when, records on: orders, pick lists, statuses, dead letters) over RATE_WINDOW.
    let mut counts: VecDeque<(Instant, [i64; 4])> = VecDeque::new();
    loop {
        let at = Instant::now();
        let result = sample(client);
        let mut out = sampled.lock().unwrap_or_else(|p| p.into_inner());
        match result {
            Ok(mut next) => {
                counts.push_back((
                    at,
                    [
                        next.orders_on_topic,
                        next.picklists_on_topic,
                        next.statuses_on_topic,
                        next.dead_lettered,
                    ],
                ));
                while counts.len() > 2
                    && counts
                        .front()
                        .is_some_and(|(t, _)| at.duration_since(*t) > RATE_WINDOW)
                {
                    counts.pop_front();
                }
                if let (Some(first), Some(last)) = (counts.front(), counts.back()) {
                    let seconds = last.0.duration_since(first.0).as_secs_f64();
                    if seconds > 0.0 {
                        let per_s = |i: usize| (last.1[i] - first.1[i]) as f64 / seconds;
                        next.orders_per_s = per_s(0);
                        next.picklists_per_s = per_s(1);
                        next.statuses_per_s = per_s(2);
                        next.dead_letters_per_s = per_s(3);
                    }
                }
                let latency = lock(seen).latency_figures();
                history
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(Point {
                        at_ms: service_kit::now_ms(),
                        orders_per_s: next.orders_per_s,
                        picklists_per_s: next.picklists_per_s,
                        lag: next.lag.iter().map(|l| l.lag).collect(),
                        p50_ms: latency.p50_ms,
                        p99_ms: latency.p99_ms,
                    });
                *out = next;
            }
            Err(error) => out.error = Some(format!("{error:#}")),
        }
        drop(out);
        match stop.recv_timeout(SAMPLE_EVERY.saturating_sub(at.elapsed())) {
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            _ => return,
        }
    }
}

/// Records on `topic` (high minus low watermark, summed) and the high watermarks.
fn watermarks(client: &BaseConsumer, topic: &str) -> anyhow::Result<(i64, Vec<i64>)> {
    let mut records = 0;
    let mut highs = Vec::new();
    for partition in 0..topics::PARTITIONS {
        let (low, high) = client
            .fetch_watermarks(topic, partition, QUERY_TIMEOUT)
            .with_context(|| format!("watermarks of {topic}/{partition}"))?;
        records += high - low;
        highs.push(high);
    }
    Ok((records, highs))
}

fn sample(client: &BaseConsumer) -> anyhow::Result<Sampled> {
    let (_, order_highs) = watermarks(client, topics::ORDERS)?;
    let (_, picklist_highs) = watermarks(client, topics::PICKLISTS)?;
    let (_, status_highs) = watermarks(client, topics::ORDER_STATUS)?;
    let (dead_lettered, _) = watermarks(client, &topics::dead_letter(topics::ORDERS))?;
    let mut partitions = TopicPartitionList::new();
    for partition in 0..topics::PARTITIONS {
        partitions.add_partition(topics::ORDERS, partition);
    }
    let committed = client
        .committed_offsets(partitions, QUERY_TIMEOUT)
        .context("committed offsets of the fulfillment group")?;
    let lag: Vec<PartitionLag> = order_highs
        .iter()
        .zip(0..)
        .map(|(&high, partition)| {
            let committed = committed
                .find_partition(topics::ORDERS, partition)
                .and_then(|e| match e.offset() {
                    Offset::Offset(n) => Some(n),
                    _ => None,
                });
            PartitionLag {
                partition,
                committed,
                high_watermark: high,
                lag: (high - committed.unwrap_or(0)).max(0),
            }
        })
        .collect();
    Ok(Sampled {
        orders_on_topic: order_highs.iter().sum(),
        picklists_on_topic: picklist_highs.iter().sum(),
        statuses_on_topic: status_highs.iter().sum(),
        lag_total: Some(lag.iter().map(|l| l.lag).sum()),
        lag,
        dead_lettered,
        ..Sampled::default()
    })
}

/// Reads orders (their times), pick lists (latency, the latest) and status changes (the
/// funnel) until `stop`.
async fn read(
    reader: StreamConsumer,
    codec: Arc<Codec>,
    seen: Arc<Mutex<Seen>>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let message = tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            message = reader.recv() => message,
        };
        let message = match message {
            Ok(message) => message,
            Err(error) => {
                tracing::debug!(%error, "control room reader");
                continue;
            }
        };
        let Some(payload) = message.payload() else {
            continue;
        };
        // Records that do not decode (the injected malformed ones) are the services' concern.
        match message.topic() {
            topics::ORDERS => {
                if let Ok(order) = codec.decode::<Order>(payload).await {
                    lock(&seen).order(order.order_id.to_string(), order.order_time);
                }
            }
            topics::ORDER_STATUS => {
                if let Ok(status) = codec.decode::<OrderStatus>(payload).await {
                    lock(&seen).statuses.record(&status);
                }
            }
            _ => {
                if let Ok(pick_list) = codec.decode::<PickList>(payload).await {
                    lock(&seen).pick_list(&pick_list);
                }
            }
        }
    }
}

fn lock(seen: &Mutex<Seen>) -> std::sync::MutexGuard<'_, Seen> {
    seen.lock().unwrap_or_else(|p| p.into_inner())
}
