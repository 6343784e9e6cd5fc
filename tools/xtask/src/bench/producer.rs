//! The typed [`grocery_events::Producer`] beside what a Rust user writes today and beside raw
//! bytes, all through rdkafka's `FutureProducer`:
//!
//! - typed: `Producer::enqueue_to`, encoding each order as it sends it;
//! - anchor: `FutureProducer` + schema_registry_converter's `AvroEncoder::encode_struct` with
//!   `SubjectNameStrategy::TopicNameStrategy` (the schema id looked up in the local registry
//!   once, then cached by the encoder), encoding each order as it sends it;
//! - raw: `FutureProducer` sending bytes encoded once beforehand by the library's codec, keys
//!   computed beforehand too.
//!
//! All three get the same librdkafka configuration (the stack's `client.properties`, plus
//! `enable.idempotence=true` and the same `linger.ms`) and send the same pre-built orders to
//! the same topic, keeping every record of a run in flight and then awaiting all the
//! acknowledgements. The order of the sides rotates from round to round so that drift on a
//! noisy machine hits all of them, and each headline ratio is the median of the per-round
//! ratios.

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use grocery_events::{
    Client, Config, DeliveryWindow, Event, Order, OrderLine, Producer, SubstitutionPreference,
};
use local_stack::Stack;
use rdkafka::{
    error::{KafkaError, RDKafkaErrorCode},
    producer::{DeliveryFuture, FutureProducer, FutureRecord},
};
use schema_registry_converter::{
    async_impl::{avro::AvroEncoder, schema_registry::SrSettings},
    schema_registry_common::SubjectNameStrategy,
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

impl ProducerBenchArgs {
    /// The counts of `cargo xtask bench --quick`: one round of 200 messages.
    pub(crate) fn quick(&mut self) {
        self.messages = 200;
        self.rounds = 1;
    }
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
    /// rdkafka's `FutureProducer` + schema_registry_converter's `AvroEncoder`.
    Anchor,
    /// rdkafka's `FutureProducer` with pre-encoded bytes.
    Raw,
}

/// The sides in the order of round 0; later rounds rotate it.
const SIDES: [Side; 3] = [Side::Typed, Side::Anchor, Side::Raw];

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

/// One ratio between two sides: the median of its per-round values and their range.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Ratio {
    /// Median over the rounds of numerator/denominator within the round.
    pub(crate) median: f64,
    /// Smallest and largest per-round ratio.
    pub(crate) range: (f64, f64),
}

/// Medians over the rounds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Summary {
    /// Median messages/s of the typed producer.
    pub(crate) typed_median_per_sec: f64,
    /// Median messages/s of the anchor (rdkafka + schema_registry_converter).
    pub(crate) anchor_median_per_sec: f64,
    /// Median messages/s of the raw producer.
    pub(crate) raw_median_per_sec: f64,
    /// typed / raw (the headline figure).
    pub(crate) typed_vs_raw: Ratio,
    /// anchor / raw.
    pub(crate) anchor_vs_raw: Ratio,
    /// typed / anchor.
    pub(crate) typed_vs_anchor: Ratio,
    /// [`TARGET_RATIO`] (for typed / raw).
    pub(crate) target: f64,
    /// `typed_vs_raw.median >= target`.
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

/// The median and range of the per-round ratios `num / den` (rounds missing either side left
/// out); `None` without a complete round.
pub(crate) fn ratio(runs: &[Run], num: Side, den: Side) -> Option<Ratio> {
    let ratios: Vec<f64> = runs
        .iter()
        .filter(|run| run.side == num)
        .filter_map(|n| {
            runs.iter()
                .find(|d| d.side == den && d.round == n.round)
                .map(|d| n.messages_per_sec / d.messages_per_sec)
        })
        .collect();
    Some(Ratio {
        median: median(&ratios)?,
        range: (
            ratios.iter().copied().fold(f64::INFINITY, f64::min),
            ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        ),
    })
}

/// Summarizes runs: medians per side and the per-round ratios. `None` without a complete
/// round.
pub(crate) fn summarize(runs: &[Run], target: f64) -> Option<Summary> {
    let per_side = |side: Side| -> Option<f64> {
        let values: Vec<f64> = runs
            .iter()
            .filter(|run| run.side == side)
            .map(|run| run.messages_per_sec)
            .collect();
        median(&values)
    };
    let typed_vs_raw = ratio(runs, Side::Typed, Side::Raw)?;
    Some(Summary {
        typed_median_per_sec: per_side(Side::Typed)?,
        anchor_median_per_sec: per_side(Side::Anchor)?,
        raw_median_per_sec: per_side(Side::Raw)?,
        meets_target: typed_vs_raw.median >= target,
        typed_vs_raw,
        anchor_vs_raw: ratio(runs, Side::Anchor, Side::Raw)?,
        typed_vs_anchor: ratio(runs, Side::Typed, Side::Anchor)?,
        target,
    })
}

/// Runs the comparison on `stack` unless `args.config` names a cluster.
///
/// # Errors
/// When the codec or a producer cannot start, or a record is not acknowledged.
pub(crate) async fn producer_bench(
    args: ProducerBenchArgs,
    stack: &Stack,
) -> anyhow::Result<ProducerReport> {
    if args.messages == 0 || args.rounds == 0 {
        bail!("--messages and --rounds must be at least 1");
    }
    let (properties, topic, cluster) = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let topic = args
                .topic
                .clone()
                .context("--topic is needed with --config")?;
            (text, topic, path.display().to_string())
        }
        None => {
            let topic = stack
                .create_unique_topic(
                    args.topic.as_deref().unwrap_or("bench-orders"),
                    grocery_events::topics::PARTITIONS,
                )
                .await?;
            (stack.client_properties(), topic, "local stack".to_owned())
        }
    };
    let config = Config::from_properties_str(&properties)?
        .set("linger.ms", args.linger_ms.to_string())
        .set("enable.idempotence", "true");
    let client = Client::from_config(config.clone())?;
    let codec = client.codec().clone();
    let typed = client
        .producer()
        .await
        .context("creating the typed producer")?;
    let rdkafka_config = config.rdkafka_config_for(avro_events::config::ClientRole::Producer);
    let raw: FutureProducer = rdkafka_config
        .create()
        .context("creating the raw producer")?;
    let anchor_producer: FutureProducer = rdkafka_config
        .create()
        .context("creating the anchor's producer")?;
    let registry_url = config
        .get("schema.registry.url")
        .context("no schema.registry.url")?
        .split(',')
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned();
    let anchor = Anchor {
        producer: anchor_producer,
        encoder: AvroEncoder::new(SrSettings::new(registry_url)),
        strategy: SubjectNameStrategy::TopicNameStrategy(topic.clone(), false),
    };
    anchor_reads_uuids_as_strings()?;

    let orders: Vec<Order> = (0..args.messages).map(|i| order(i, args.lines)).collect();
    let mut encoded = Vec::with_capacity(orders.len());
    for order in &orders {
        encoded.push((order.key(), codec.encode_for(&topic, order).await?));
    }
    let payload_bytes = encoded[0].1.len();
    // The anchor writes the same bytes: same schema id, same Avro encoding, for an order with
    // every optional field set and for the benchmark's orders (none set).
    for order in [&full_order(), &orders[0]] {
        let ours = codec.encode_for(&topic, order).await?;
        let anchor_bytes = anchor
            .encoder
            .encode_struct(order, &anchor.strategy)
            .await
            .with_context(|| {
                format!(
                    "the anchor (schema_registry_converter's AvroEncoder::encode_struct) cannot \
                     encode an order of the current schema, subject {topic}-value"
                )
            })?;
        anyhow::ensure!(
            anchor_bytes == ours,
            "schema_registry_converter and the codec encode the same order differently \
             ({} and {} bytes)",
            anchor_bytes.len(),
            ours.len()
        );
    }

    // Warm all three (connections, metadata, producer ids, schema ids) outside the timing.
    let warm = args.messages.min(1_000);
    send_typed(&typed, &topic, &orders[..warm]).await?;
    send_anchor(&anchor, &topic, &orders[..warm]).await?;
    send_raw(&raw, &topic, &encoded[..warm]).await?;

    let mut runs = Vec::with_capacity(SIDES.len() * args.rounds);
    for round in 0..args.rounds {
        let mut sides = SIDES;
        sides.rotate_left(round % SIDES.len());
        for side in sides {
            let seconds = match side {
                Side::Typed => send_typed(&typed, &topic, &orders).await?,
                Side::Anchor => send_anchor(&anchor, &topic, &orders).await?,
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

/// Makes the anchor's Avro serializer (apache-avro, through schema_registry_converter) tell
/// serde it writes a human-readable format, as a user of the anchor must for the order schema:
/// its ids are `{"type": "string", "logicalType": "uuid"}`, and `uuid::Uuid` serializes as
/// its text only to a human-readable format; apache-avro's default (0.22) is not, so each id
/// arrives as 16 bytes and the encode fails (`Failed to serialize value of type bytes`).
///
/// # Errors
/// When the setting was already fixed the other way in this process (apache-avro takes it
/// once); the anchor cannot encode the orders then.
fn anchor_reads_uuids_as_strings() -> anyhow::Result<()> {
    anyhow::ensure!(
        apache_avro::util::set_serde_human_readable(true),
        "apache-avro's serde human-readable setting was already fixed to false in this \
         process: the anchor would write each uuid as 16 bytes, which the order schema's \
         string uuids refuse"
    );
    Ok(())
}

/// The anchor: what a Rust user writes today without this library.
struct Anchor {
    producer: FutureProducer,
    encoder: AvroEncoder,
    strategy: SubjectNameStrategy,
}

/// The `i`th benchmark order, with `lines` lines.
pub(crate) fn order(i: usize, lines: usize) -> Order {
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
        substitution: None,
        delivery_window: None,
    }
}

/// An order with every optional field of the current schema set (the anchor must encode
/// these too).
fn full_order() -> Order {
    Order {
        substitution: Some(SubstitutionPreference::SameBrand),
        delivery_window: Some(DeliveryWindow {
            start_time: 1_763_776_800_000,
            end_time: 1_763_780_400_000,
        }),
        ..order(0, 2)
    }
}

/// Sends every order with the typed producer, all in flight, and waits for every
/// acknowledgement.
pub(crate) async fn send_typed(
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

/// Sends every order through the anchor, encoding each with schema_registry_converter as it
/// goes, all in flight, and waits for every acknowledgement.
async fn send_anchor(anchor: &Anchor, topic: &str, orders: &[Order]) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let mut pending = Vec::with_capacity(orders.len());
    for order in orders {
        let payload = anchor
            .encoder
            .encode_struct(order, &anchor.strategy)
            .await
            .context("schema_registry_converter encoding an order")?;
        let key = order.key();
        pending.push(queue(&anchor.producer, topic, &key, &payload).await?);
    }
    await_all(pending).await?;
    Ok(start.elapsed())
}

/// Sends every pre-encoded record with the raw producer, all in flight, and waits for every
/// acknowledgement.
pub(crate) async fn send_raw(
    producer: &FutureProducer,
    topic: &str,
    records: &[(String, Vec<u8>)],
) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let mut pending = Vec::with_capacity(records.len());
    for (key, payload) in records {
        pending.push(queue(producer, topic, key, payload).await?);
    }
    await_all(pending).await?;
    Ok(start.elapsed())
}

/// Queues one record; a full queue is waited out as the typed producer does.
async fn queue(
    producer: &FutureProducer,
    topic: &str,
    key: &str,
    payload: &[u8],
) -> anyhow::Result<DeliveryFuture> {
    loop {
        let record = FutureRecord::to(topic).key(key).payload(payload);
        match producer.send_result(record) {
            Ok(delivery) => return Ok(delivery),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Err((error, _)) => return Err(error).context("queueing a record"),
        }
    }
}

async fn await_all(pending: Vec<DeliveryFuture>) -> anyhow::Result<()> {
    for delivery in pending {
        match delivery.await {
            Ok(Ok(_)) => {}
            Ok(Err((error, _))) => return Err(error).context("record not acknowledged"),
            Err(_) => bail!("delivery canceled"),
        }
    }
    Ok(())
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
        // No anchor runs: no summary, but the typed/raw ratio stands on its own.
        assert_eq!(summarize(&runs, 0.9), None);
        let typed_vs_raw = ratio(&runs, Side::Typed, Side::Raw).unwrap();
        // Per-round ratios 0.9, 0.95, 0.4: the outlier round does not move the median.
        assert_eq!(typed_vs_raw.median, 0.9);
        assert_eq!(typed_vs_raw.range, (0.4, 0.95));
        let mut all = runs.to_vec();
        all.extend([
            run(0, Side::Anchor, 50.0),
            run(1, Side::Anchor, 100.0),
            run(2, Side::Anchor, 40.0),
        ]);
        let summary = summarize(&all, 0.9).unwrap();
        assert_eq!(summary.typed_median_per_sec, 90.0);
        assert_eq!(summary.anchor_median_per_sec, 50.0);
        assert_eq!(summary.raw_median_per_sec, 100.0);
        assert_eq!(summary.typed_vs_anchor.median, 1.8);
        assert_eq!(summary.anchor_vs_raw.median, 0.5);
        assert!(summary.meets_target);
        assert!(!summarize(&all, 0.91).unwrap().meets_target);
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
