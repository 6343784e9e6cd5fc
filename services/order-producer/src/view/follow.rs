//! Rebuilding the view and following the status topic ([`follow`]): opening its sources as
//! [`Start`] says (the state writer, the state topic, the statuses after it, or every status),
//! retried while the brokers cannot be reached, then folding each status in, handing the
//! state records to the writer, noting when the view is ready, and finding partitions added to
//! the status topic while it runs.

use std::{sync::atomic::Ordering, time::Duration};

use grocery_events::{Client, ConsumerOptions, OrderStatus, Record};
use service_kit::{
    Shutdown,
    order_state::{self, StateRead, StateWriter},
};

use super::{GROUP, View};

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
            _ = partitions.tick() => match order_state::follow_new_partitions(&replay, ASSIGN_TIMEOUT).await {
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
