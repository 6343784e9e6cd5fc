//! Client metrics from librdkafka's statistics callback (`statistics.interval.ms`, 5 s by
//! default in the services), served on the services' `/metrics` by `prometheus-client` ([`ClientMetrics`]).
//!
//! | metric | type | labels | from librdkafka |
//! |---|---|---|---|
//! | `kafka_client_tx_messages_total` | counter | `client` | `txmsgs` |
//! | `kafka_client_tx_message_bytes_total` | counter | `client` | `txmsg_bytes` |
//! | `kafka_client_rx_messages_total` | counter | `client` | `rxmsgs` |
//! | `kafka_client_rx_message_bytes_total` | counter | `client` | `rxmsg_bytes` |
//! | `kafka_client_queued_messages` | gauge | `client` | `msg_cnt` |
//! | `kafka_client_broker_rtt_avg_seconds` | gauge | `client`, `broker` | `brokers[].rtt.avg` |
//! | `kafka_client_broker_rtt_p99_seconds` | gauge | `client`, `broker` | `brokers[].rtt.p99` |
//! | `kafka_consumer_lag` | gauge | `client`, `topic`, `partition` | per assigned partition: `ls_offset` (else `hi_offset`) − `app_offset` (else `committed_offset`, else `lo_offset`) |
//!
//! The counters stay monotonic when a client is replaced ([`ClientMetrics::with_current`], as
//! a pipeline's watchdog replaces a stuck transactional producer): librdkafka's counts start
//! from zero in the new client (known by its statistics' `name`), so the last counts scraped
//! from the clients before it are added to its own. What an old client sent after its last
//! statistics sample was scraped is not counted.

use std::sync::{Mutex, PoisonError};

use avro_events::{KafkaContext, Statistics};
use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric as _},
    metrics::{MetricType, counter::ConstCounter, gauge::ConstGauge},
};

/// The default `statistics.interval.ms` of the services, unless the configuration sets one.
pub const DEFAULT_STATISTICS_INTERVAL_MS: &str = "5000";

/// The summed consumer lag of the partitions `context`'s consumer is assigned, from its
/// latest statistics; `None` before the first statistics arrive.
pub fn consumer_lag(context: &KafkaContext) -> Option<i64> {
    let statistics = context.statistics()?;
    Some(
        assigned_lags(&statistics)
            .map(|(_, _, lag)| lag)
            .sum::<i64>(),
    )
}

/// The inputs `context`'s consumer read past its last committed offset, summed over its
/// partitions, from its latest statistics (position `app_offset` minus `committed_offset`, or
/// the log start when nothing was committed yet); `None` before the first statistics. A
/// transactional consumer commits through its producer, so its own committed offset lags:
/// there the count is an upper bound.
pub fn uncommitted(context: &KafkaContext) -> Option<i64> {
    let statistics = context.statistics()?;
    Some(
        statistics
            .topics
            .values()
            .flat_map(|topic| topic.partitions.values())
            .filter(|p| p.partition >= 0 && p.app_offset >= 0)
            .filter_map(|p| {
                [p.committed_offset, p.lo_offset]
                    .into_iter()
                    .find(|offset| *offset >= 0)
                    .map(|from| (p.app_offset - from).max(0))
            })
            .sum(),
    )
}

/// (topic, partition, lag) of each assigned partition with a known lag: the partition's end
/// (last stable offset, else high watermark) minus the application's position (`app_offset`,
/// the next record it is handed), or before it read any the committed offset, or the log
/// start (`lo_offset`). The
/// position, not librdkafka's `consumer_lag` (end minus committed), because a transactional
/// consumer commits through its producer and its own committed offset goes stale.
fn assigned_lags(statistics: &Statistics) -> impl Iterator<Item = (&str, i32, i64)> {
    statistics.topics.values().flat_map(|topic| {
        topic.partitions.values().filter_map(|p| {
            let offsets = Offsets {
                last_stable: p.ls_offset,
                high: p.hi_offset,
                position: p.app_offset,
                committed: p.committed_offset,
                low: p.lo_offset,
            };
            (p.partition >= 0 && p.fetch_state == "active")
                .then(|| offsets.lag())
                .flatten()
                .map(|lag| (topic.topic.as_str(), p.partition, lag))
        })
    })
}

/// A partition's offsets in librdkafka's statistics (negative: unknown).
#[derive(Debug, Clone, Copy)]
struct Offsets {
    last_stable: i64,
    high: i64,
    position: i64,
    committed: i64,
    low: i64,
}

impl Offsets {
    /// End minus position (see [`assigned_lags`]); `None` when either is unknown.
    fn lag(self) -> Option<i64> {
        let end = [self.last_stable, self.high]
            .into_iter()
            .find(|offset| *offset >= 0)?;
        let from = [self.position, self.committed, self.low]
            .into_iter()
            .find(|offset| *offset >= 0)?;
        Some((end - from).max(0))
    }
}

/// A counter family: name (without `_total`, which the encoder adds), help, and its value in
/// the statistics.
type CounterFamily = (&'static str, &'static str, fn(&Statistics) -> i64);

const COUNTERS: [CounterFamily; 4] = [
    (
        "kafka_client_tx_messages",
        "Messages sent to brokers (librdkafka statistics)",
        |s| s.txmsgs,
    ),
    (
        "kafka_client_tx_message_bytes",
        "Message bytes sent to brokers (librdkafka statistics)",
        |s| s.txmsg_bytes,
    ),
    (
        "kafka_client_rx_messages",
        "Messages received from brokers (librdkafka statistics)",
        |s| s.rxmsgs,
    ),
    (
        "kafka_client_rx_message_bytes",
        "Message bytes received from brokers (librdkafka statistics)",
        |s| s.rxmsg_bytes,
    ),
];

/// Where a client's context comes from at a scrape.
type Source = Box<dyn Fn() -> KafkaContext + Send + Sync>;

/// A labelled client's counters across replacements: the librdkafka client last scraped (its
/// statistics' `name`), its counts then, and the counts of the clients before it.
#[derive(Debug, Default)]
struct Tally {
    client: Option<String>,
    last: [u64; COUNTERS.len()],
    before: [u64; COUNTERS.len()],
}

impl Tally {
    /// The monotonic counts with `statistics` the labelled client's latest.
    fn counts(&mut self, statistics: &Statistics) -> [u64; COUNTERS.len()] {
        if self.client.as_deref() != Some(statistics.name.as_str()) {
            if self.client.is_some() {
                for (before, last) in self.before.iter_mut().zip(self.last) {
                    *before = before.saturating_add(last);
                }
            }
            self.client = Some(statistics.name.clone());
            self.last = [0; COUNTERS.len()];
        }
        let mut counts = [0; COUNTERS.len()];
        for (i, (_, _, value)) in COUNTERS.iter().enumerate() {
            // A client's own counts never go down; keep the highest seen.
            self.last[i] = self.last[i].max(u64::try_from(value(statistics)).unwrap_or(0));
            counts[i] = self.before[i].saturating_add(self.last[i]);
        }
        counts
    }
}

/// A client of [`ClientMetrics`]: its label, where its context comes from, its counters.
struct Labelled {
    label: &'static str,
    current: Source,
    tally: Mutex<Tally>,
}

/// The client metrics of a service's Kafka clients (see the table above), as a
/// `prometheus-client` [`Collector`]: register it with
/// [`Metrics::clients`](crate::metrics::Metrics::clients). Each scrape reads every client's
/// latest statistics; a client with no statistics yet adds no sample.
#[derive(Default)]
pub struct ClientMetrics {
    clients: Vec<Labelled>,
}

impl std::fmt::Debug for ClientMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let labels: Vec<_> = self.clients.iter().map(|c| c.label).collect();
        f.debug_struct("ClientMetrics")
            .field("clients", &labels)
            .finish()
    }
}

impl ClientMetrics {
    /// The metrics of `clients`, each `(label, context)`: the label is the `client` label's
    /// value (`producer`, `consumer`).
    pub fn new(clients: impl IntoIterator<Item = (&'static str, KafkaContext)>) -> Self {
        clients
            .into_iter()
            .fold(Self::default(), |metrics, (label, context)| {
                metrics.with_current(label, move || context.clone())
            })
    }

    /// Adds the client labelled `label` whose context is `current()` at each scrape (a
    /// client that can be replaced, as a pipeline's transactional producer). Its counters
    /// go on from the replaced client's last scraped counts, never back to zero.
    pub fn with_current(
        mut self,
        label: &'static str,
        current: impl Fn() -> KafkaContext + Send + Sync + 'static,
    ) -> Self {
        self.clients.push(Labelled {
            label,
            current: Box::new(current),
            tally: Mutex::default(),
        });
        self
    }
}

impl Collector for ClientMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let snapshots: Vec<_> = self
            .clients
            .iter()
            .filter_map(|client| {
                let statistics = (client.current)().statistics()?;
                let counts = client
                    .tally
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .counts(&statistics);
                Some((client.label, statistics, counts))
            })
            .collect();
        if snapshots.is_empty() {
            return Ok(());
        }
        for (i, (family, help, _)) in COUNTERS.iter().enumerate() {
            let mut metric = encoder.encode_descriptor(family, help, None, MetricType::Counter)?;
            for (label, _, counts) in &snapshots {
                let sample = ConstCounter::new(counts[i]);
                sample.encode(metric.encode_family(&[("client", *label)])?)?;
            }
        }
        let mut metric = encoder.encode_descriptor(
            "kafka_client_queued_messages",
            "Messages waiting in the client's queues",
            None,
            MetricType::Gauge,
        )?;
        for (label, s, _) in &snapshots {
            ConstGauge::new(s.msg_cnt).encode(metric.encode_family(&[("client", *label)])?)?;
        }
        for (family, help, pick) in [
            (
                "kafka_client_broker_rtt_avg_seconds",
                "Average broker round-trip time over the last statistics interval",
                0,
            ),
            (
                "kafka_client_broker_rtt_p99_seconds",
                "99th percentile broker round-trip time over the last statistics interval",
                1,
            ),
        ] {
            let mut metric = encoder.encode_descriptor(family, help, None, MetricType::Gauge)?;
            for (label, s, _) in &snapshots {
                let mut brokers: Vec<_> = s
                    .brokers
                    .values()
                    .filter(|b| b.nodeid >= 0)
                    .filter_map(|b| Some((b, b.rtt.as_ref()?)))
                    .collect();
                brokers.sort_by(|a, b| a.0.name.cmp(&b.0.name));
                for (broker, rtt) in brokers {
                    let micros = if pick == 0 { rtt.avg } else { rtt.p99 };
                    let labels = [("client", *label), ("broker", broker.name.as_str())];
                    ConstGauge::new(micros as f64 / 1e6).encode(metric.encode_family(&labels)?)?;
                }
            }
        }
        let mut metric = encoder.encode_descriptor(
            "kafka_consumer_lag",
            "Records not yet read, per assigned partition (end offset minus position)",
            None,
            MetricType::Gauge,
        )?;
        for (label, s, _) in &snapshots {
            let mut lags: Vec<_> = assigned_lags(s).collect();
            lags.sort();
            for (topic, partition, lag) in lags {
                let partition = partition.to_string();
                let labels = [
                    ("client", *label),
                    ("topic", topic),
                    ("partition", partition.as_str()),
                ];
                ConstGauge::new(lag).encode(metric.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::Offsets;

    fn lag(last_stable: i64, high: i64, position: i64, committed: i64, low: i64) -> Option<i64> {
        Offsets {
            last_stable,
            high,
            position,
            committed,
            low,
        }
        .lag()
    }

    #[test]
    fn lag_is_end_minus_position_or_committed_or_low() {
        const UNKNOWN: i64 = -1001;
        assert_eq!(lag(15, 15, 10, 4, 0), Some(5), "position first");
        assert_eq!(lag(12, 15, 10, 4, 0), Some(2), "last stable offset first");
        assert_eq!(lag(UNKNOWN, 15, 10, 4, 0), Some(5), "high watermark else");
        assert_eq!(
            lag(15, 15, UNKNOWN, 4, 0),
            Some(11),
            "committed before a read"
        );
        assert_eq!(lag(15, 15, UNKNOWN, UNKNOWN, 3), Some(12), "log start else");
        assert_eq!(
            lag(0, 0, UNKNOWN, UNKNOWN, 0),
            Some(0),
            "an empty partition"
        );
        assert_eq!(lag(UNKNOWN, UNKNOWN, 10, 4, 0), None, "end unknown");
        assert_eq!(
            lag(15, 15, UNKNOWN, UNKNOWN, UNKNOWN),
            None,
            "start unknown"
        );
        assert_eq!(lag(5, 5, 7, 4, 0), Some(0), "never negative");
    }
}
