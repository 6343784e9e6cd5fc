//! Store staff's steps on the pick lists shown: start picking, picked (with the quantities
//! picked), ready. Each step writes an [`OrderStatus`] to `grocery.order-status.v1` with the
//! core producer and counts only once the broker acknowledged it. [`Board`] remembers each
//! shown pick list and its state, refuses steps out of order, and with `--simulate-staff`
//! walks every new pick list through all three steps by itself. Each status continues the
//! pick list's W3C trace ([`Producer::send_traced`]).

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
    time::Duration,
};

use grocery_events::{
    Client, OrderState, OrderStatus, PickList, Producer, Record, Replay, TraceContext,
};
use grocery_store::{LifecycleError, PickedLine, StaffStep, picked_status, staff_status};
use tokio::sync::{mpsc, watch};
use uuid::Uuid;

use crate::{show::page_json, startup::now_ms, web::Live};

/// Pick lists remembered for staff steps; the oldest are forgotten first.
const REMEMBERED: usize = 100_000;

/// Why a step was not taken.
#[derive(Debug)]
pub(crate) enum StepError {
    /// No pick list for the order was shown here.
    NotFound(Uuid),
    /// The order is not in the state the step follows, or another step is being recorded.
    Conflict(String),
    /// The picked quantities do not fit the pick list.
    BadRequest(String),
    /// The status could not be written.
    Unavailable,
}

impl std::fmt::Display for StepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotFound(order_id) => {
                write!(f, "no pick list for order {order_id} is shown here")
            }
            Self::Conflict(message) | Self::BadRequest(message) => f.write_str(message),
            Self::Unavailable => f.write_str(
                "the change could not be recorded (Kafka did not acknowledge it); try again",
            ),
        }
    }
}

struct Entry {
    pick_list: PickList,
    state: OrderState,
    /// A step is being written now.
    busy: bool,
    /// The pick list record's trace, which its statuses continue.
    trace: Option<TraceContext>,
    /// The last status recorded here, answered again when its step is repeated.
    last: Option<OrderStatus>,
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

#[derive(Default)]
struct Lists {
    by_order: HashMap<Uuid, Entry>,
    arrival: VecDeque<Uuid>,
}

/// The pick lists shown, their states, and the producer of staff steps.
#[derive(Clone)]
pub(crate) struct Board {
    lists: Arc<Mutex<Lists>>,
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
        simulate_pace: Option<Duration>,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        let mut board = Self {
            lists: Arc::default(),
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
    /// record; a pick list already known keeps its state.
    pub(crate) fn add(&self, pick_list: &PickList, trace: Option<TraceContext>) {
        self.insert(pick_list, OrderState::PicklistCreated, None, trace);
    }

    /// Puts back a pick list shown before a restart, in the `state` its statuses on the topic
    /// say, with `last`, the last staff status recorded for it. A list already on the board
    /// (delivered again since the start) moves on to `state` if that is further and no step
    /// is being recorded; `false` then.
    pub(crate) fn restore(
        &self,
        pick_list: &PickList,
        state: OrderState,
        last: Option<OrderStatus>,
        trace: Option<TraceContext>,
    ) -> bool {
        {
            let mut lists = self.lists.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(entry) = lists.by_order.get_mut(&pick_list.order_id) {
                if !entry.busy && entry.state < state {
                    entry.state = state;
                    entry.last = last;
                    drop(lists);
                    self.live.publish_status(pick_list.order_id, state);
                }
                return false;
            }
        }
        self.insert(pick_list, state, last, trace)
    }

    /// The state of `order_id`'s pick list, when it is on the board.
    pub(crate) fn state(&self, order_id: Uuid) -> Option<OrderState> {
        let lists = self.lists.lock().unwrap_or_else(|p| p.into_inner());
        lists.by_order.get(&order_id).map(|entry| entry.state)
    }

    fn insert(
        &self,
        pick_list: &PickList,
        state: OrderState,
        last: Option<OrderStatus>,
        trace: Option<TraceContext>,
    ) -> bool {
        {
            let mut lists = self.lists.lock().unwrap_or_else(|p| p.into_inner());
            if lists.by_order.contains_key(&pick_list.order_id) {
                return false;
            }
            if lists.arrival.len() == REMEMBERED
                && let Some(oldest) = lists.arrival.pop_front()
            {
                lists.by_order.remove(&oldest);
            }
            lists.arrival.push_back(pick_list.order_id);
            lists.by_order.insert(
                pick_list.order_id,
                Entry {
                    pick_list: pick_list.clone(),
                    state,
                    busy: false,
                    trace,
                    last,
                },
            );
        }
        if let Some(simulate) = &self.simulate {
            // The simulation ends only at shutdown.
            let _ = simulate.send(pick_list.order_id);
        }
        true
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
            let entry = lists
                .by_order
                .get_mut(&order_id)
                .ok_or(StepError::NotFound(order_id))?;
            if entry.busy {
                return Err(StepError::Conflict(format!(
                    "another change of order {order_id} is being recorded; reload and try again"
                )));
            }
            if let Some(last) = entry.last.as_ref().filter(|l| l.state == step.target()) {
                if step == StaffStep::Picked {
                    let asked = picked_status(&entry.pick_list, picked, last.time)
                        .map_err(|e| StepError::BadRequest(e.to_string()))?;
                    if asked.lines != last.lines {
                        return Err(StepError::Conflict(format!(
                            "order {order_id} is already PICKED with other quantities; \
                             a recorded change cannot be altered"
                        )));
                    }
                }
                return Ok(Stepped::Repeated(last.clone()));
            }
            step.check(entry.state)
                .map_err(|e| StepError::Conflict(e.to_string()))?;
            let now = now_ms();
            let status = match step {
                StaffStep::Picked => {
                    picked_status(&entry.pick_list, picked, now).map_err(|e| match e {
                        LifecycleError::BadLines(message) => StepError::BadRequest(message),
                        other => StepError::Conflict(other.to_string()),
                    })?
                }
                _ => staff_status(&entry.pick_list, step, now),
            };
            entry.busy = true;
            (status, entry.trace.clone())
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
        let entry = lists.by_order.get_mut(&order_id);
        match written {
            Ok(delivered) => {
                if let Some(entry) = entry {
                    entry.busy = false;
                    entry.state = status.state;
                    entry.last = Some(status.clone());
                }
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
                if let Some(entry) = entry {
                    entry.busy = false;
                }
                drop(lists);
                tracing::error!(%error, order_id = %order_id, "cannot record an order status");
                Err(StepError::Unavailable)
            }
        }
    }

    /// Marks `order_id`'s list as no longer busy.
    fn release(&self, order_id: Uuid) {
        let mut lists = self.lists.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(entry) = lists.by_order.get_mut(&order_id) {
            entry.busy = false;
        }
    }
}

/// Simulated store staff: each pick list named on `rx` goes through start picking, picked (as
/// planned) and ready, `pace` before each step; many lists at once.
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
                    for step in [StaffStep::StartPicking, StaffStep::Picked, StaffStep::Ready] {
                        // A list put back after a restart may be past some steps already.
                        if board.state(order_id).is_some_and(|state| state >= step.target()) {
                            continue;
                        }
                        if !pace.is_zero() {
                            tokio::time::sleep(pace).await;
                        }
                        if let Err(error) = board.step(order_id, step, None).await {
                            tracing::warn!(%order_id, %error, "simulated staff stopped on this pick list");
                            return;
                        }
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
/// `grocery.picklist.v1` and `grocery.order-status.v1` hold them: the topics are read whole
/// ([`Client::replay`], group `group`: nothing committed to it, nothing dead-lettered, an
/// undecodable record passed over with a warning), so a restarted screen shows the lists its
/// group had already read, in their states, and staff take them on where they were; the live
/// consumer's committed offsets are left as they were. Returns how many lists were put back.
///
/// # Errors
/// When a topic cannot be read (brokers unreachable for `timeout`, no right to read it).
pub(crate) async fn restore(
    client: &Client,
    board: &Board,
    live: &Live,
    group: &str,
    timeout: Duration,
) -> anyhow::Result<usize> {
    // Each order's latest change (the furthest state; staff's steps are the last three).
    let mut latest: HashMap<Uuid, OrderStatus> = HashMap::new();
    let mut statuses = client.replay::<OrderStatus>(group, timeout).await?;
    replay_all(&mut statuses, |received| {
        let status = received.event;
        if latest
            .get(&status.order_id)
            .is_none_or(|known| known.state < status.state)
        {
            latest.insert(status.order_id, status);
        }
    })
    .await?;
    drop(statuses);

    let mut restored = 0;
    let mut pick_lists = client.replay::<PickList>(group, timeout).await?;
    replay_all(&mut pick_lists, |received| {
        let order_id = received.event.order_id;
        let last = latest.get(&order_id).cloned();
        let state = last
            .as_ref()
            .map_or(OrderState::PicklistCreated, |status| status.state)
            .max(OrderState::PicklistCreated);
        if state == OrderState::Ready {
            return;
        }
        // The last step staff took, answered again if they repeat it.
        let last = last.filter(|status| status.state >= OrderState::PickingStarted);
        let trace = received.trace();
        if board.restore(&received.event, state, last, trace.clone()) {
            live.publish(
                order_id,
                page_json(&received.event, trace.as_ref()).to_string(),
            );
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

/// [`restore`], retried (backing off up to 30 s) until it succeeds or `shutdown` turns true.
pub(crate) async fn restore_until_done(
    client: Client,
    board: Board,
    live: Live,
    group: String,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(500);
    loop {
        let attempt = restore(&client, &board, &live, &group, Duration::from_secs(10));
        let outcome = tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => return,
            outcome = attempt => outcome,
        };
        match outcome {
            Ok(restored) => {
                tracing::info!(restored, "pick lists not yet ready put back on the board");
                return;
            }
            Err(error) => {
                tracing::warn!(error = %format!("{error:#}"), retry_in = ?backoff, "cannot put back the pick lists shown before the start yet");
            }
        }
        tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}
