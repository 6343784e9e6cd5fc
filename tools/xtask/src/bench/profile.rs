//! `cargo xtask producer-profile`: one side of the producer comparison alone, for a profiler.
//!
//! The mock cluster and the local registry start in this process, one producer (the typed
//! [`grocery_events::Producer`] or rdkafka's `FutureProducer` with bytes encoded beforehand)
//! is warmed with 1,000 orders and then sends `--messages` orders, all in flight, awaiting
//! every acknowledgement, as [`super::producer`] does. Under `valgrind --tool=callgrind` with
//! its counts zeroed at `counting_starts` (after the orders are built and, for the raw side,
//! encoded) the difference between two runs with different counts is the instructions per
//! message of that side's send alone (the process's own shutdown cancels out);
//! `scripts/callgrind-producer.sh` does that for both sides.

use anyhow::Context as _;
use grocery_events::{Client, Config, Event as _};
use rdkafka::producer::FutureProducer;

use super::producer::{Side, order, send_raw, send_typed};
use crate::broker::{BrokerArg, start_stack};

/// Arguments of `cargo xtask producer-profile`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ProfileArgs {
    /// Which producer (the anchor is not profiled).
    #[arg(long, value_enum)]
    side: ProfiledSide,
    /// Messages sent after the warm-up.
    #[arg(long, default_value_t = 10_000)]
    messages: usize,
    /// Order lines per order.
    #[arg(long, default_value_t = 10)]
    lines: usize,
}

/// The sides `producer-profile` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ProfiledSide {
    /// The typed `Producer`, encoding as it sends.
    Typed,
    /// rdkafka's `FutureProducer` with bytes encoded beforehand.
    Raw,
}

/// Called once, between the preparation (the orders built, the raw side's orders encoded, the
/// warm-up sent) and the messages counted: `scripts/callgrind-producer.sh` has callgrind zero
/// its counts when it is entered (`--zero-before`), so that building and encoding the orders
/// beforehand, which are not part of a send, are not counted per message. The orders are
/// leaked after the send for the same reason (freeing them would be counted).
#[inline(never)]
fn counting_starts() {
    std::hint::black_box(());
}

/// Runs one side once on the mock cluster and prints its rate.
///
/// # Errors
/// When the stack or the producer cannot start, or a record is not acknowledged.
pub(crate) async fn run(args: ProfileArgs) -> anyhow::Result<()> {
    let side = match args.side {
        ProfiledSide::Typed => Side::Typed,
        ProfiledSide::Raw => Side::Raw,
    };
    let stack = start_stack(BrokerArg::Mock, local_stack::KafkaAuth::None).await?;
    let result = async {
        let topic = stack
            .create_unique_topic("profile-orders", grocery_events::topics::PARTITIONS)
            .await?;
        let config = Config::from_properties_str(&stack.client_properties())?
            .set("linger.ms", "5")
            .set("enable.idempotence", "true");
        let client = Client::from_config(config.clone())?;
        let warm: Vec<_> = (0..1_000).map(|i| order(i, args.lines)).collect();
        let orders: Vec<_> = (0..args.messages)
            .map(|i| order(1_000 + i, args.lines))
            .collect();
        let elapsed = match side {
            Side::Typed => {
                let producer = client
                    .producer()
                    .await
                    .context("creating the typed producer")?;
                send_typed(&producer, &topic, &warm).await?;
                counting_starts();
                send_typed(&producer, &topic, &orders).await?
            }
            _ => {
                let codec = client.codec().clone();
                let mut encoded = Vec::with_capacity(orders.len());
                for order in warm.iter().chain(&orders) {
                    encoded.push((order.key(), codec.encode_for(&topic, order).await?));
                }
                let producer: FutureProducer = config
                    .rdkafka_config_for(avro_events::config::ClientRole::Producer)
                    .create()
                    .context("creating the raw producer")?;
                let (warm, timed) = encoded.split_at(warm.len());
                send_raw(&producer, &topic, warm).await?;
                counting_starts();
                let elapsed = send_raw(&producer, &topic, timed).await?;
                // Not freed per message while counted: the process ends next.
                std::mem::forget(encoded);
                elapsed
            }
        };
        std::mem::forget(orders);
        println!(
            "{side:?}: {} messages in {:.3} s, {:.0} msgs/s",
            args.messages,
            elapsed.as_secs_f64(),
            args.messages as f64 / elapsed.as_secs_f64()
        );
        anyhow::Ok(())
    }
    .await;
    stack.shutdown().await;
    result
}
