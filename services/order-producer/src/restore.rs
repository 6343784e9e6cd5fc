//! Reading back, on start, the idempotency keys of the orders accepted within the key window:
//! `grocery.orders.v1` read_committed from the first offset at or after *now − window*
//! (`Client::replay_since`), each keyed order's body digest (its
//! [`BODY_DIGEST`] header) and first answer remembered in
//! [`Keys`]. See [`crate::idempotency`] for why this is exact.

use std::time::Duration;

use grocery_events::{Client, ConsumerOptions, Order, Record};
use service_kit::Shutdown;

use crate::idempotency::{Accepted, BODY_DIGEST, Keys, parse_digest_hex};

/// The consumer group named by the key restore (no offsets are committed or read).
const GROUP: &str = "order-api";

/// How long one attempt to read the orders topic's partitions and offsets may take.
const ASSIGN_TIMEOUT: Duration = Duration::from_secs(10);

/// First and longest wait between attempts to read the orders topic.
const RETRY_FIRST: Duration = Duration::from_millis(500);
const RETRY_MAX: Duration = Duration::from_secs(10);

/// Reads back the keys of the orders accepted within `window` before now from
/// `grocery.orders.v1` (read_committed: a transaction aborted by this instance's start is not
/// there) into `keys`, then marks them restored. Reading the topic is retried while the
/// brokers cannot be reached; stops early (unmarked) at `shutdown`.
///
/// # Errors
/// When the consumer fails for good (credentials or authorization refused, a fatal error).
pub(crate) async fn restore(
    client: &Client,
    keys: &Keys,
    window: Duration,
    shutdown: &Shutdown,
) -> anyhow::Result<()> {
    let stop = shutdown.requested();
    tokio::pin!(stop);
    let started = std::time::Instant::now();
    let since = service_kit::now_ms() - i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
    let mut backoff = RETRY_FIRST;
    let mut replay = loop {
        let attempt =
            client.replay_since::<Order>(ConsumerOptions::new(GROUP), ASSIGN_TIMEOUT, since);
        tokio::select! {
            () = &mut stop => return Ok(()),
            replay = attempt => match replay {
                Ok(replay) => break replay,
                Err(error) if error.is_refused() => return Err(error.into()),
                Err(error) => {
                    tracing::warn!(%error, retry_in_ms = backoff.as_millis() as u64, "cannot read the orders topic yet");
                }
            },
        }
        tokio::select! {
            () = &mut stop => return Ok(()),
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(RETRY_MAX);
    };
    let (mut records, mut remembered) = (0u64, 0u64);
    loop {
        let record = tokio::select! {
            () = &mut stop => return Ok(()),
            record = replay.recv_until_caught_up() => record?,
        };
        let Some(record) = record else { break };
        let Record::Event(received) = record else {
            continue;
        };
        records += 1;
        // Older than the window (a partition read from its beginning): not honoured.
        if received.meta.timestamp_ms.is_some_and(|time| time < since) {
            continue;
        }
        // Only keyed orders carry the digest of their body.
        let Some(digest) = received.headers.get(BODY_DIGEST) else {
            continue;
        };
        let trace_id = received
            .trace()
            .map_or(0, |trace| u128::from_be_bytes(trace.trace_id().to_bytes()));
        let accepted = Accepted {
            order_id: received.event.order_id,
            partition: received.meta.partition,
            offset: received.meta.offset,
            trace_id,
        };
        if keys.remember(parse_digest_hex(digest), accepted) {
            remembered += 1;
        }
    }
    keys.mark_restored();
    tracing::info!(
        records,
        keys = remembered,
        window_hours = window.as_secs() / 3600,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "idempotency keys restored from grocery.orders.v1"
    );
    Ok(())
}
