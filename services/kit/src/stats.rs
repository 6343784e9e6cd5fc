//! Client metrics from librdkafka's statistics callback (`statistics.interval.ms`, 5 s by
//! default in the services), rendered in Prometheus text for the services' `/metrics`.
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

use std::fmt::Write as _;

use grocery_events::context::{KafkaContext, Statistics};

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

/// A counter family: name (without `_total`), help, and its value in the statistics.
type Counter = (&'static str, &'static str, fn(&Statistics) -> i64);

/// Appends the client metrics of `clients` (label, context) to `out`. With `openmetrics` the
/// counters' `# TYPE` lines name the family without `_total` (OpenMetrics), else with it
/// (Prometheus text 0.0.4). A client with no statistics yet adds nothing.
pub fn render(out: &mut String, clients: &[(&str, &KafkaContext)], openmetrics: bool) {
    let snapshots: Vec<_> = clients
        .iter()
        .filter_map(|(label, context)| Some((*label, context.statistics()?)))
        .collect();
    if snapshots.is_empty() {
        return;
    }
    let counters: [Counter; 4] = [
        (
            "kafka_client_tx_messages",
            "Messages sent to brokers",
            |s| s.txmsgs,
        ),
        (
            "kafka_client_tx_message_bytes",
            "Message bytes sent to brokers",
            |s| s.txmsg_bytes,
        ),
        (
            "kafka_client_rx_messages",
            "Messages received from brokers",
            |s| s.rxmsgs,
        ),
        (
            "kafka_client_rx_message_bytes",
            "Message bytes received from brokers",
            |s| s.rxmsg_bytes,
        ),
    ];
    for (family, help, value) in counters {
        let total = format!("{family}_total");
        let typed = if openmetrics { family } else { total.as_str() };
        let _ = writeln!(out, "# HELP {typed} {help} (librdkafka statistics)");
        let _ = writeln!(out, "# TYPE {typed} counter");
        for (label, s) in &snapshots {
            let _ = writeln!(out, "{total}{{client=\"{label}\"}} {}", value(s).max(0));
        }
    }
    let _ = writeln!(
        out,
        "# HELP kafka_client_queued_messages Messages waiting in the client's queues"
    );
    let _ = writeln!(out, "# TYPE kafka_client_queued_messages gauge");
    for (label, s) in &snapshots {
        let _ = writeln!(
            out,
            "kafka_client_queued_messages{{client=\"{label}\"}} {}",
            s.msg_cnt
        );
    }
    for (family, help, pick) in [
        (
            "kafka_client_broker_rtt_avg_seconds",
            "Average broker round-trip time",
            0,
        ),
        (
            "kafka_client_broker_rtt_p99_seconds",
            "99th percentile broker round-trip time",
            1,
        ),
    ] {
        let _ = writeln!(
            out,
            "# HELP {family} {help} over the last statistics interval"
        );
        let _ = writeln!(out, "# TYPE {family} gauge");
        for (label, s) in &snapshots {
            let mut brokers: Vec<_> = s
                .brokers
                .values()
                .filter(|b| b.nodeid >= 0)
                .filter_map(|b| Some((b, b.rtt.as_ref()?)))
                .collect();
            brokers.sort_by(|a, b| a.0.name.cmp(&b.0.name));
            for (broker, rtt) in brokers {
                let micros = if pick == 0 { rtt.avg } else { rtt.p99 };
                let _ = writeln!(
                    out,
                    "{family}{{client=\"{label}\",broker=\"{}\"}} {}",
                    escape(&broker.name),
                    micros as f64 / 1e6
                );
            }
        }
    }
    let _ = writeln!(
        out,
        "# HELP kafka_consumer_lag Records not yet read, per assigned partition (end offset minus position)"
    );
    let _ = writeln!(out, "# TYPE kafka_consumer_lag gauge");
    for (label, s) in &snapshots {
        let mut lags: Vec<_> = assigned_lags(s).collect();
        lags.sort();
        for (topic, partition, lag) in lags {
            let _ = writeln!(
                out,
                "kafka_consumer_lag{{client=\"{label}\",topic=\"{}\",partition=\"{partition}\"}} {lag}",
                escape(topic)
            );
        }
    }
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
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
