//! The typed [`grocery_events::Producer`] against a raw rdkafka `FutureProducer` sending the
//! same bytes.
//!
//! Both producers get the same configuration (the stack's `client.properties`, plus
//! `enable.idempotence=true` and the same `linger.ms`) and send the same pre-built orders to
//! the same topic, keeping every record of a run in flight and then awaiting all the
//! acknowledgements. The typed producer encodes each order as it sends it (`enqueue_to`); the
//! raw one sends bytes encoded once beforehand by the same codec, with keys computed
//! beforehand too: the difference is what the typed API costs. Runs alternate (typed then raw
//! in even rounds, raw then typed in odd ones) so that drift on a noisy machine hits both, and
//! the headline ratio is the median of the per-round ratios.

use std::{
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use grocery_events::{Codec, Config, Event, Order, OrderLine, Producer};
use local_stack::Stack;
use rdkafka::{
    error::{KafkaError, RDKafkaErrorCode},
    producer::{FutureProducer, FutureRecord},
};
use serde::Serialize;

/// The throughput the typed producer should reach, as a fraction of the raw one.
pub(crate) const TARGET_RATIO: f64 = 0.9;

/// Arguments of the producer comparison.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ProducerBenchArgs {
    /// Messages per run.
    #[arg(long, default_value_t = 20_000)]
    pub(crate) messages: usize,
    /// Rounds; each round runs the typed and the raw producer once.
    #[arg(long, default_value_t = 5)]
    pub(crate) rounds: usize,
    /// `linger.ms` for both producers.
    #[arg(long, default_value_t = 5)]
    pub(crate) linger_ms: u32,
    /// Order lines per order.
    #[arg(long, default_value_t = 10)]
    pub(crate) lines: usize,
    /// Run against the cluster and registry of this client.properties instead of a local
    /// stack started for the run (the topic must exist there).
    #[arg(long, requires = "topic")]
    pub(crate) config: Option<PathBuf>,
    /// Topic to produce to with `--config` (default: a fresh topic on the local stack).
    #[arg(long)]
    pub(crate) topic: Option<String>,
}

impl Default for ProducerBenchArgs {
    fn default() -> Self {
        Self {
            messages: 20_000,
            rounds: 5,
            linger_ms: 5,
            lines: 10,
            config: None,
            topic: None,
        }
    }
}

/// Which producer a run used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Side {
    /// `grocery_events::Producer::enqueue_to`, encoding as it goes.
    Typed,
    /// rdkafka's `FutureProducer` with pre-encoded bytes.
    Raw,
}

/// One timed run.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Run {
    /// The round it belongs to (from 0).
    pub(crate) round: usize,
    /// Which producer.
    pub(crate) side: Side,
    /// Messages sent and acknowledged.
    pub(crate) messages: usize,
    /// From the first send to the last acknowledgement.
    pub(crate) seconds: f64,
    /// `messages / seconds`.
    pub(crate) messages_per_sec: f64,
}

/// Medians over the rounds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Summary {
    /// Median messages/s of the typed producer.
    pub(crate) typed_median_per_sec: f64,
    /// Median messages/s of the raw producer.
    pub(crate) raw_median_per_sec: f64,
    /// Median over the rounds of typed/raw within the round (the headline figure).
    pub(crate) ratio: f64,
    /// `typed_median_per_sec / raw_median_per_sec`.
    pub(crate) ratio_of_medians: f64,
    /// Smallest and largest per-round ratio.
    pub(crate) ratio_range: (f64, f64),
    /// [`TARGET_RATIO`].
    pub(crate) target: f64,
    /// `ratio >= target`.
    pub(crate) meets_target: bool,
}

/// What `producer_bench` measured.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ProducerReport {
    /// Messages per run.
    pub(crate) messages: usize,
    /// Rounds.
    pub(crate) rounds: usize,
    /// `linger.ms` of both producers.
    pub(crate) linger_ms: u32,
    /// Order lines per order.
    pub(crate) lines: usize,
    /// Size of one encoded order, framing included.
    pub(crate) payload_bytes: usize,
    /// Where the records went: "local stack" or the config file.
    pub(crate) cluster: String,
    /// The topic.
    pub(crate) topic: String,
    /// Every run, in the order they ran.
    pub(crate) runs: Vec<Run>,
    /// Medians and the ratio.
    pub(crate) summary: Summary,
}

/// The median of `values` (the mean of the middle two for an even count); `None` when empty
/// or when a value is NaN.
pub(crate) fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() || values.iter().any(|v| v.is_nan()) {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    Some(if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    })
}

/// Summarizes runs: medians per side, and the median of the per-round typed/raw ratios
/// (rounds missing either side are left out of the ratios). `None` without a complete round.
pub(crate) fn summarize(runs: &[Run], target: f64) -> Option<Summary> {
    let per_side = |side: Side| -> Vec<f64> {
        runs.iter()
            .filter(|run| run.side == side)
            .map(|run| run.messages_per_sec)
            .collect()
    };
    let typed_median_per_sec = median(&per_side(Side::Typed))?;
    let raw_median_per_sec = median(&per_side(Side::Raw))?;
    let ratios: Vec<f64> = runs
        .iter()
        .filter(|run| run.side == Side::Typed)
        .filter_map(|typed| {
            runs.iter()
                .find(|raw| raw.side == Side::Raw && raw.round == typed.round)
                .map(|raw| typed.messages_per_sec / raw.messages_per_sec)
        })
        .collect();
    let ratio = median(&ratios)?;
    let lowest = ratios.iter().copied().fold(f64::INFINITY, f64::min);
    let highest = ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    Some(Summary {
        typed_median_per_sec,
        raw_median_per_sec,
        ratio,
        ratio_of_medians: typed_median_per_sec / raw_median_per_sec,
        ratio_range: (lowest, highest),
        target,
        meets_target: ratio >= target,
    })
}

/// Runs the comparison. Starts a local stack unless `args.config` names a cluster.
///
/// # Errors
/// When the stack, the codec or a producer cannot start, or a record is not acknowledged.
pub(crate) async fn producer_bench(args: ProducerBenchArgs) -> anyhow::Result<ProducerReport> {
    if args.messages == 0 || args.rounds == 0 {
        bail!("--messages and --rounds must be at least 1");
    }
    let (_stack, properties, topic, cluster) = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let topic = args
                .topic
                .clone()
                .context("--topic is needed with --config")?;
            (None, text, topic, path.display().to_string())
        }
        None => {
            let stack = Stack::start().await.context("starting the local stack")?;
            let topic = match &args.topic {
                Some(topic) => {
                    stack
                        .kafka()
                        .create_topic(topic, grocery_events::topics::PARTITIONS)?;
                    topic.clone()
                }
                None => stack.unique_topic("bench-orders", grocery_events::topics::PARTITIONS)?,
            };
            let properties = stack.client_properties();
            (Some(stack), properties, topic, "local stack".to_owned())
        }
    };
    let config = Config::from_properties_str(&properties)?
        .set("linger.ms", args.linger_ms.to_string())
        .set("enable.idempotence", "true");
    let codec = Arc::new(Codec::from_config(&config)?);
    let typed = Producer::new(&config, codec.clone())
        .await
        .context("creating the typed producer")?;
    let raw: FutureProducer = config
        .rdkafka_config_for(grocery_events::config::ClientRole::Producer)
        .create()
        .context("creating the raw producer")?;

    let orders: Vec<Order> = (0..args.messages).map(|i| order(i, args.lines)).collect();
    let mut encoded = Vec::with_capacity(orders.len());
    for order in &orders {
        encoded.push((order.key(), codec.encode_for(&topic, order).await?));
    }
    let payload_bytes = encoded[0].1.len();

    // Warm both (connections, metadata, producer ids) outside the timing.
    let warm = args.messages.min(1_000);
    send_typed(&typed, &topic, &orders[..warm]).await?;
    send_raw(&raw, &topic, &encoded[..warm]).await?;

    let mut runs = Vec::with_capacity(2 * args.rounds);
    for round in 0..args.rounds {
        let order_of_sides = if round % 2 == 0 {
            [Side::Typed, Side::Raw]
        } else {
            [Side::Raw, Side::Typed]
        };
        for side in order_of_sides {
            let seconds = match side {
                Side::Typed => send_typed(&typed, &topic, &orders).await?,
                Side::Raw => send_raw(&raw, &topic, &encoded).await?,
            }
            .as_secs_f64();
            let run = Run {
                round,
                side,
                messages: args.messages,
                seconds,
                messages_per_sec: args.messages as f64 / seconds,
            };
            tracing::info!(round, ?side, per_sec = run.messages_per_sec, "run done");
            runs.push(run);
        }
    }
    let summary = summarize(&runs, TARGET_RATIO).context("no complete round")?;
    Ok(ProducerReport {
        messages: args.messages,
        rounds: args.rounds,
        linger_ms: args.linger_ms,
        lines: args.lines,
        payload_bytes,
        cluster,
        topic,
        runs,
        summary,
    })
}

/// The `i`th benchmark order, with `lines` lines.
fn order(i: usize, lines: usize) -> Order {
    let n = i as u128;
    Order {
        order_id: uuid::Uuid::from_u128(0x5f0c_8a52_7d4e_4b1a_9c31_0000_0000_0000 | n),
        customer_id: uuid::Uuid::from_u128(0x0b6f_4d1e_2a3c_4e5f_8a9b_0000_0000_0000 | (n % 977)),
        items: (0..lines)
            .map(|line| OrderLine {
                sku: format!("PRD-{line:05}"),
                name: format!("Item number {line}"),
                quantity: (line % 4 + 1) as i32,
                unit_price_cents: 199 + line as i64 * 50,
            })
            .collect(),
        order_total_cents: 12_345,
        currency: "USD".into(),
        order_time: 1_763_769_600_000 + i as i64,
    }
}

/// Sends every order with the typed producer, all in flight, and waits for every
/// acknowledgement.
async fn send_typed(
    producer: &Producer,
    topic: &str,
    orders: &[Order],
) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let mut pending = Vec::with_capacity(orders.len());
    for order in orders {
        pending.push(producer.enqueue_to(topic, order).await?);
    }
    for delivery in pending {
        delivery.await?;
    }
    Ok(start.elapsed())
}

/// Sends every pre-encoded record with the raw producer, all in flight, and waits for every
/// acknowledgement. A full queue is waited out as the typed producer does.
async fn send_raw(
    producer: &FutureProducer,
    topic: &str,
    records: &[(String, Vec<u8>)],
) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let mut pending = Vec::with_capacity(records.len());
    for (key, payload) in records {
        loop {
            let record = FutureRecord::to(topic)
                .key(key.as_str())
                .payload(payload.as_slice());
            match producer.send_result(record) {
                Ok(delivery) => {
                    pending.push(delivery);
                    break;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err((error, _)) => return Err(error).context("queueing a raw record"),
            }
        }
    }
    for delivery in pending {
        match delivery.await {
            Ok(Ok(_)) => {}
            Ok(Err((error, _))) => return Err(error).context("raw record not acknowledged"),
            Err(_) => bail!("raw delivery canceled"),
        }
    }
    Ok(start.elapsed())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(round: usize, side: Side, per_sec: f64) -> Run {
        Run {
            round,
            side,
            messages: 100,
            seconds: 100.0 / per_sec,
            messages_per_sec: per_sec,
        }
    }

    #[test]
    fn median_of_odd_even_and_empty() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[7.0]), Some(7.0));
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[1.0, f64::NAN]), None);
    }

    #[test]
    fn summary_pairs_runs_by_round() {
        let runs = [
            run(0, Side::Typed, 90.0),
            run(0, Side::Raw, 100.0),
            run(1, Side::Raw, 200.0),
            run(1, Side::Typed, 190.0),
            run(2, Side::Typed, 40.0),
            run(2, Side::Raw, 100.0),
        ];
        let summary = summarize(&runs, 0.9).unwrap();
        assert_eq!(summary.typed_median_per_sec, 90.0);
        assert_eq!(summary.raw_median_per_sec, 100.0);
        // Per-round ratios 0.9, 0.95, 0.4: the outlier round does not move the median.
        assert_eq!(summary.ratio, 0.9);
        assert_eq!(summary.ratio_of_medians, 0.9);
        assert_eq!(summary.ratio_range, (0.4, 0.95));
        assert!(summary.meets_target);
        assert!(!summarize(&runs, 0.91).unwrap().meets_target);
    }

    #[test]
    fn summary_needs_a_complete_round() {
        assert_eq!(summarize(&[], 0.9), None);
        assert_eq!(summarize(&[run(0, Side::Typed, 1.0)], 0.9), None);
        assert_eq!(
            summarize(&[run(0, Side::Typed, 1.0), run(1, Side::Raw, 1.0)], 0.9),
            None
        );
    }

    #[test]
    fn orders_have_distinct_keys_and_the_lines_asked_for() {
        let (a, b) = (order(0, 10), order(1, 10));
        assert_ne!(a.key(), b.key());
        assert_eq!(a.items.len(), 10);
        assert_eq!(order(5, 3).items.len(), 3);
    }
}
