//! Store staff's steps on the pick lists shown: start picking, picked (with the quantities
//! picked), ready. Each step writes an [`OrderStatus`] to `grocery.order-status.v1` with the
//! core producer and counts only once the broker acknowledged it. [`Board`] holds the lists
//! shown in a [`StaffBoard`] (the state machine, its pick order and its bound live in
//! `grocery-store`), refuses steps out of order, and with `--simulate-staff` walks every new
//! pick list through all three steps by itself, retrying a step that meets an error with
//! backoff. Each status continues the pick list's W3C trace ([`Producer::send_traced`]).

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use backon::{ExponentialBuilder, Retryable as _};
use grocery_events::{
    Client, OrderState, OrderStatus, PickList, Producer, Record, Replay, TraceContext,
};
use grocery_store::{
    BoardLimits, Inserted, LatestStatus, PickedLine, StaffBoard, StaffStep, StepRefused, StepStart,
};
use tokio::sync::{mpsc, watch};
use uuid::Uuid;

use crate::live::{Live, page_json, status_json};
use service_kit::{now_ms, order_state, sse::Update};

/// Why a step was not taken.
#[derive(Debug)]
pub(crate) enum StepError {
    /// The board refused it (not shown here, busy, out of order, bad quantities).
    Refused(StepRefused),
    /// The status could not be written.
    Unavailable,
}

impl From<StepRefused> for StepError {
    fn from(refused: StepRefused) -> Self {
        Self::Refused(refused)
    }
}

impl std::fmt::Display for StepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Refused(refused) => refused.fmt(f),
            Self::Unavailable => f.write_str(
                "the change could not be recorded (Kafka did not acknowledge it); try again",
            ),
        }
    }
}

/// What the service keeps with each list on the board.
struct Shown {
    /// The pick list record's trace, which its statuses continue.
    trace: Option<TraceContext>,
    /// When it was shown (or put back after a restart).
    displayed_at_ms: i64,
}

/// What a step did.
#[derive(Debug)]
pub(crate) enum Stepped {
    /// The status was written and acknowledged.
    Recorded(OrderStatus),
    /// The step had already been taken (a retried click or request): the status recorded
    /// then, nothing written again.
    Repeated(OrderStatus),
}

/// The pick lists shown, their states, and the producer of staff steps.
#[derive(Clone)]
pub(crate) struct Board {
    lists: Arc<Mutex<StaffBoard<Shown>>>,
    producer: Arc<Producer>,
    live: Live,
    simulate: Option<mpsc::UnboundedSender<Uuid>>,
}

impl Board {
    /// A board writing with `producer` and telling `live` pages of each change. With
    /// `simulate_pace`, simulated staff walk each new pick list through its steps, waiting
    /// that long before each step, until `shutdown` turns true.
    pub(crate) fn new(
        producer: Producer,
        live: Live,
        limits: BoardLimits,
        simulate_pace: Option<Duration>,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        let mut board = Self {
            lists: Arc::new(Mutex::new(StaffBoard::new(limits))),
            producer: Arc::new(producer),
            live,
            simulate: None,
        };
        if let Some(pace) = simulate_pace {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(simulate(board.clone(), rx, pace, shutdown));
            board.simulate = Some(tx);
        }
        board
    }

    /// Remembers a pick list just shown (state PICKLIST_CREATED), with the trace of its
    /// record, and returns its page JSON (with its arrival on the board); `None` when the list
    /// is on the board already (it keeps its state).
    pub(crate) fn add(&self, pick_list: &PickList, trace: Option<TraceContext>) -> Option<String> {
        self.insert(pick_list, OrderState::PicklistCreated, None, trace)
    }

    /// Puts back a pick list shown before a restart, in the `state` its statuses on the topic
    /// say, with `last`, the last staff status recorded for it, and returns its page JSON. A
    /// list already on the board (delivered again since the start) moves on to `state` if
    /// that is further and no step is being recorded; `None` then.
    pub(crate) fn restore(
        &self,
        pick_list: &PickList,
        state: OrderState,
        last: Option<OrderStatus>,
        trace: Option<TraceContext>,
    ) -> Option<String> {
        {
            let mut lists = self.lists.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(entry) = lists.get(pick_list.order_id) {
                if !entry.busy && entry.state < state {
                    lists.advance(pick_list.order_id, state, last);
                    self.count(&lists);
                    drop(lists);
                    self.live.publish_status(pick_list.order_id, state);
                }
                return None;
            }
        }
        self.insert(pick_list, state, last, trace)
    }

    /// The state of `order_id`'s pick list, when it is on the board.
    pub(crate) fn state(&self, order_id: Uuid) -> Option<OrderState> {
        let lists = self.lists.lock().unwrap_or_else(|p| p.into_inner());
        lists.get(order_id).map(|entry| entry.state)
    }

    /// What a page that opens is sent first: the open lists in pick order (earliest delivery
    /// window first, then arrival), at most `open`, then the last `finished` lists made READY,
    /// each followed by its state when staff moved it on.
    pub(crate) fn snapshot(&self, open: usize, finished: usize) -> Vec<Update> {
        let lists = self.lists.lock().unwrap_or_else(|p| p.into_inner());
        let mut updates = Vec::new();
        let shown = lists
            .open_in_pick_order()
            .take(open)
            .chain(lists.finished().take(finished));
        for entry in shown {
            let json = page_json(
                &entry.pick_list,
                entry.attachment.trace.as_ref(),
                entry.attachment.displayed_at_ms,
                Some(entry.arrival()),
            );
            updates.push(("picklist", json));
            if entry.state != OrderState::PicklistCreated {
                updates.push(("status", status_json(entry.pick_list.order_id, entry.state)));
            }
        }
        updates
    }

    /// Tells `live` the board's figures (`/metrics`).
    fn count(&self, lists: &StaffBoard<Shown>) {
        self.live.count_board(lists.open_len(), lists.dropped());
    }

    fn insert(
        &self,
        pick_list: &PickList,
        state: OrderState,
        last: Option<OrderStatus>,
        trace: Option<TraceContext>,
    ) -> Option<String> {
        let displayed_at_ms = now_ms();
        let json;
        {
            let mut lists = self.lists.lock().unwrap_or_else(|p| p.into_inner());
            let shown = Shown {
                trace: trace.clone(),
                displayed_at_ms,
            };
            let Inserted::Added { arrival, dropped } = lists.insert(pick_list, state, last, shown)
            else {
                return None;
            };
            json = page_json(pick_list, trace.as_ref(), displayed_at_ms, Some(arrival));
            self.count(&lists);
            if !dropped.is_empty() {
                let total = lists.dropped();
                // One line per 1,000 lists dropped (and the first), not one per list.
                if total.div_ceil(1000) != (total - dropped.len() as u64).div_ceil(1000)
                    || total == dropped.len() as u64
                {
                    tracing::warn!(
                        cap = lists.limits().open,
                        dropped_total = total,
                        oldest_dropped = %dropped[0],
                        "staff board full: the oldest open pick lists were dropped from the \
                         screen (still on the topic); raise --board-open-lists or add staff"
                    );
                }
            }
        }
        if let Some(simulate) = &self.simulate
            && state < OrderState::Ready
        {
            // The simulation ends only at shutdown.
            let _ = simulate.send(pick_list.order_id);
        }
        Some(json)
    }

    /// Takes `step` on `order_id`'s pick list (for [`StaffStep::Picked`], `picked` gives the
    /// quantities; `None`: as planned) and returns the status written, once acknowledged.
    /// Repeating the step last taken (with the same quantities) writes nothing and answers
    /// the status recorded then, so a client may retry a step whose answer it did not get.
    pub(crate) async fn step(
        &self,
        order_id: Uuid,
        step: StaffStep,
        picked: Option<&[PickedLine]>,
    ) -> Result<Stepped, StepError> {
        let (status, trace) = {
            let mut lists = self.lists.lock().unwrap_or_else(|p| p.into_inner());
            match lists.begin_step(order_id, step, picked, now_ms())? {
                StepStart::Repeated(status) => return Ok(Stepped::Repeated(status)),
                StepStart::Write(status) => {
                    let trace = lists
                        .get(order_id)
                        .and_then(|entry| entry.attachment.trace.clone());
                    (status, trace)
                }
            }
        };
        // The write and its bookkeeping run on a task of their own: a caller that goes away
        // mid-step (a client disconnecting drops the request's future) must not leave the
        // list `busy`, and a status it queued is recorded here once acknowledged, so a retry
        // is answered as a repeat instead of writing a second record.
        let board = self.clone();
        let recorded = tokio::spawn(async move { board.record(order_id, status, trace).await });
        match recorded.await {
            Ok(stepped) => stepped,
            Err(error) => {
                // The task panicked: the step is not known to have been written.
                self.release(order_id);
                tracing::error!(%error, order_id = %order_id, "recording an order status failed");
                Err(StepError::Unavailable)
            }
        }
    }

    /// Writes `status` (a step [`Board::step`] marked `busy`) and records it once
    /// acknowledged; the list is no longer busy afterwards, whatever the outcome.
    async fn record(
        &self,
        order_id: Uuid,
        status: OrderStatus,
        trace: Option<TraceContext>,
    ) -> Result<Stepped, StepError> {
        let written = match &trace {
            Some(trace) => self.producer.send_traced(&status, trace).await,
            None => self.producer.send(&status).await,
        };
        let mut lists = self.lists.lock().unwrap_or_else(|p| p.into_inner());
        // The list may have been dropped past the board's cap meanwhile: then only the log and
        // the pages hear of the status.
        lists.set_busy(order_id, false);
        match written {
            Ok(delivered) => {
                lists.advance(order_id, status.state, Some(status.clone()));
                self.count(&lists);
                drop(lists);
                tracing::info!(
                    order_id = %order_id,
                    state = grocery_store::state_name(status.state),
                    actor = %status.actor,
                    partition = delivered.partition,
                    offset = delivered.offset,
                    "order status recorded"
                );
                self.live.publish_status(order_id, status.state);
                Ok(Stepped::Recorded(status))
            }
            Err(error) => {
                drop(lists);
                tracing::error!(%error, order_id = %order_id, "cannot record an order status");
                Err(StepError::Unavailable)
            }
        }
    }

    /// Marks `order_id`'s list as no longer busy.
    fn release(&self, order_id: Uuid) {
        let mut lists = self.lists.lock().unwrap_or_else(|p| p.into_inner());
        lists.set_busy(order_id, false);
    }
}

/// How a simulated walk retries a step that met an error it may recover from (Kafka did not
/// acknowledge the status, another step of the list was being recorded): exponential backoff
/// from 200 ms up to 10 s, with jitter, at most 8 retries (about a minute) before the walk
/// gives up on the list with a warning.
fn step_retry() -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_factor(2.0)
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(Duration::from_secs(10))
        .with_jitter()
        .with_max_times(8)
}

/// Whether a simulated walk retries after `error`: not for a list no longer on the board (it
/// was dropped past the cap) nor for a step the board refuses as out of order or malformed.
fn retryable(error: &StepError) -> bool {
    matches!(
        error,
        StepError::Unavailable | StepError::Refused(StepRefused::Busy(_))
    )
}

/// One simulated walk: start picking, picked (as planned), ready, `pace` before each step,
/// each step retried with [`step_retry`] while the error is [`retryable`]. `take` takes a step;
/// `state` is the list's state on the board (a list put back after a restart may be past some
/// steps already).
async fn walk<F, Fut>(
    order_id: Uuid,
    pace: Duration,
    state: impl Fn() -> Option<OrderState>,
    take: F,
) -> Result<(), StepError>
where
    F: Fn(StaffStep) -> Fut,
    Fut: Future<Output = Result<Stepped, StepError>>,
{
    for step in [StaffStep::StartPicking, StaffStep::Picked, StaffStep::Ready] {
        if state().is_some_and(|state| state >= step.target()) {
            continue;
        }
        if !pace.is_zero() {
            tokio::time::sleep(pace).await;
        }
        (|| take(step))
            .retry(step_retry())
            .when(retryable)
            .notify(|error, wait| {
                tracing::warn!(%order_id, %error, retry_in = ?wait, "simulated staff will try the step again");
            })
            .await?;
    }
    Ok(())
}

/// Simulated store staff: each pick list named on `rx` goes through its [`walk`]; many lists at
/// once.
async fn simulate(
    board: Board,
    mut rx: mpsc::UnboundedReceiver<Uuid>,
    pace: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut walks = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => break,
            Some(order_id) = rx.recv() => {
                let board = board.clone();
                walks.spawn(async move {
                    let walked = walk(
                        order_id,
                        pace,
                        || board.state(order_id),
                        |step| board.step(order_id, step, None),
                    )
                    .await;
                    if let Err(error) = walked {
                        tracing::warn!(%order_id, %error, "simulated staff stopped on this pick list");
                    }
                });
            }
            Some(_) = walks.join_next(), if !walks.is_empty() => {}
            else => break,
        }
    }
    // Dropping the set stops the walks still under way.
}

/// Puts back on `board` (and on the live page) the pick lists not yet READY, as
/// `grocery.picklist.v1` and the order states hold them: each order's latest state comes from
/// the compacted `grocery.order-state.v1` and the statuses written after it
/// ([`service_kit::order_state`]; with `from_state` false, from every record of
/// `grocery.order-status.v1`), the pick lists from their topic read whole ([`Client::replay`],
/// group `group`: nothing committed to it, nothing dead-lettered, an undecodable record passed
/// over with a warning), so a restarted screen shows the lists its group had already read, in
/// their states, and staff take them on where they were; the live consumer's committed offsets
/// are left as they were. Returns how many lists were put back.
///
/// # Errors
/// When a topic cannot be read (brokers unreachable for `timeout`, no right to read it).
pub(crate) async fn restore(
    client: &Client,
    board: &Board,
    live: &Live,
    group: &str,
    from_state: bool,
    timeout: Duration,
) -> anyhow::Result<usize> {
    // Each order's latest change (the furthest state; staff's steps are the last three).
    let mut latest = LatestStatus::default();
    // Where the statuses are read from: after the state, or (nothing resumed) every status.
    let mut resume = grocery_store::state::Resume::default();
    if from_state {
        let read = order_state::read_state(client, group, timeout, |history| {
            // A history is in the order of the states: its last change is the furthest.
            if let Some(furthest) = history.changes().last() {
                latest.apply(furthest.clone());
            }
        })
        .await?;
        match read {
            order_state::StateRead::Read {
                resume: after,
                records,
            } => {
                tracing::info!(records, resume = ?after.next_offsets(), "order states read from grocery.order-state.v1");
                resume = after;
            }
            // The state's partitions do not match the statuses' (read_state logged both
            // counts and read no state record): every status, as with `--restore-from history`.
            order_state::StateRead::Mismatch(_) => {}
        }
    }
    let mut statuses = order_state::statuses_after(client, group, timeout, &resume).await?;
    replay_all(&mut statuses, |received| {
        latest.apply(received.event);
    })
    .await?;
    drop(statuses);

    let mut restored = 0;
    let mut pick_lists = client.replay::<PickList>(group, timeout).await?;
    replay_all(&mut pick_lists, |received| {
        let order_id = received.event.order_id;
        // READY lists stay off the board; the others go back in their state, with the last
        // step staff took, answered again if they repeat it.
        let Some((state, last)) = latest.board_state(order_id) else {
            return;
        };
        let trace = received.trace();
        if let Some(json) = board.restore(&received.event, state, last, trace) {
            live.publish(json);
            if state != OrderState::PicklistCreated {
                live.publish_status(order_id, state);
            }
            restored += 1;
        }
    })
    .await?;
    Ok(restored)
}

/// Reads `replay` until it has caught up, handing each event to `apply`.
async fn replay_all<E: grocery_events::Event>(
    replay: &mut Replay<E>,
    mut apply: impl FnMut(grocery_events::Received<E>),
) -> anyhow::Result<()> {
    while let Some(record) = replay.recv_until_caught_up().await? {
        if let Record::Event(received) = record {
            apply(received);
        }
    }
    Ok(())
}

/// [`restore`], retried with backoff (500 ms doubling up to 30 s, jittered:
/// `service_kit::retry`) until it succeeds or `shutdown` turns true.
pub(crate) async fn restore_until_done(
    client: Client,
    board: Board,
    live: Live,
    group: String,
    from_state: bool,
    shutdown: watch::Receiver<bool>,
) {
    let started = std::time::Instant::now();
    let restored = service_kit::retry::until_shutdown(
        "cannot put back the pick lists shown before the start yet",
        service_kit::retry::backoff(Duration::from_millis(500), Duration::from_secs(30)),
        |_| false,
        service_kit::http::stopped(shutdown),
        || async {
            restore(
                &client,
                &board,
                &live,
                &group,
                from_state,
                Duration::from_secs(10),
            )
            .await
            .map_err(|error| format!("{error:#}"))
        },
    )
    .await;
    if let Ok(Some(restored)) = restored {
        tracing::info!(
            restored,
            elapsed_ms = started.elapsed().as_millis() as u64,
            from = if from_state { "state" } else { "history" },
            "pick lists not yet ready put back on the board"
        );
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn recorded(order_id: Uuid, step: StaffStep) -> Stepped {
        Stepped::Recorded(grocery_store::lifecycle::status(
            order_id,
            step.target(),
            0,
            "staff:test",
        ))
    }

    /// A step Kafka did not acknowledge (twice) is taken again after a backoff, and the walk
    /// goes on to the end; before, the walk stopped for good at the first error.
    #[tokio::test]
    async fn a_walk_retries_a_step_that_met_an_error_and_finishes() {
        let order_id = Uuid::from_u128(1);
        let failures = AtomicUsize::new(0);
        let taken = Mutex::new(Vec::new());
        let walked = walk(
            order_id,
            Duration::ZERO,
            || None,
            |step| {
                let failed = failures.fetch_add(1, Ordering::SeqCst);
                let result = if step == StaffStep::Picked && failed < 3 {
                    Err(if failed.is_multiple_of(2) {
                        StepError::Unavailable
                    } else {
                        StepError::Refused(StepRefused::Busy(order_id))
                    })
                } else {
                    taken.lock().unwrap().push(step);
                    Ok(recorded(order_id, step))
                };
                async move { result }
            },
        )
        .await;
        assert!(walked.is_ok(), "{walked:?}");
        assert_eq!(
            *taken.lock().unwrap(),
            [StaffStep::StartPicking, StaffStep::Picked, StaffStep::Ready]
        );
        // StartPicking once, Picked failing twice (Unavailable, Busy) then taken, Ready once.
        assert_eq!(failures.load(Ordering::SeqCst), 5);
    }

    /// A list no longer on the board (dropped past the cap) or a step refused as out of order
    /// is not retried.
    #[tokio::test]
    async fn a_walk_does_not_retry_what_cannot_succeed() {
        let order_id = Uuid::from_u128(2);
        for error in [
            || StepError::Refused(StepRefused::NotFound(Uuid::from_u128(2))),
            || StepError::Refused(StepRefused::Conflict("out of order".to_owned())),
        ] {
            let attempts = AtomicUsize::new(0);
            let walked = walk(
                order_id,
                Duration::ZERO,
                || None,
                |_| {
                    attempts.fetch_add(1, Ordering::SeqCst);
                    async move { Err::<Stepped, _>(error()) }
                },
            )
            .await;
            assert!(walked.is_err());
            assert_eq!(attempts.load(Ordering::SeqCst), 1);
        }
    }

    /// Steps the list is already past (put back after a restart) are skipped.
    #[tokio::test]
    async fn a_walk_skips_steps_already_taken() {
        let order_id = Uuid::from_u128(3);
        let taken = Mutex::new(Vec::new());
        walk(
            order_id,
            Duration::ZERO,
            || Some(OrderState::PickingStarted),
            |step| {
                taken.lock().unwrap().push(step);
                async move { Ok(recorded(order_id, step)) }
            },
        )
        .await
        .unwrap();
        assert_eq!(
            *taken.lock().unwrap(),
            [StaffStep::Picked, StaffStep::Ready]
        );
    }
}
