//! The staff board: the pick lists a store screen shows and the state staff have moved each to,
//! in the order a picker takes them, within a fixed memory bound.
//!
//! [`StaffBoard`] is the state machine behind picklist-consumer's page, free of Kafka and I/O:
//! the service adds each pick list it shows, records each staff step once it is acknowledged,
//! and asks for the open lists in pick order.
//!
//! - **Pick order** ([`StaffBoard::open_in_pick_order`]): the earliest delivery window start
//!   first (version 2 of the pick-list schema carries the order's window), then arrival on the
//!   board; lists without a window (orders that chose none, pick lists written before version
//!   2) come after every list with one, by arrival.
//! - **Open lists are capped** at [`BoardLimits::open`] ([`DEFAULT_OPEN_LISTS`] by default: more
//!   than a store's staff can work through in a shift). Past the cap the list that **arrived
//!   first** is dropped from the board (and so from the screen), whatever its window:
//!   [`Inserted::Added`] names it so the service can log it and count it. The pick list is
//!   still on `grocery.picklist.v1` (the topic keeps it) and its order's statuses on
//!   `grocery.order-status.v1`; a step on it answers "not shown here".
//! - **READY lists leave the open set** and are kept only among the last
//!   [`BoardLimits::closed`] finished ones, so a repeated "Ready" click is still answered with
//!   the status recorded then; older finished lists are forgotten.
//!
//! - **Steps** ([`StaffBoard::begin_step`]): a step is taken only in lifecycle order, one at a
//!   time per list (the list is `busy` until the service has the broker's answer and calls
//!   [`StaffBoard::advance`] or [`StaffBoard::set_busy`]); repeating the step last taken with
//!   the same quantities is answered with the status recorded then, so a client may retry a
//!   step whose answer it did not get without a second record.
//!
//! Memory is therefore bounded by `open + closed` entries whatever the traffic.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use grocery_events::{OrderState, OrderStatus, PickList};
use uuid::Uuid;

use crate::lifecycle::{LifecycleError, PickedLine, StaffStep, picked_status, staff_status};

/// Open (not yet READY) pick lists a board holds by default.
pub const DEFAULT_OPEN_LISTS: usize = 10_000;

/// Finished (READY) pick lists a board keeps by default, to answer a repeated last step.
pub const DEFAULT_CLOSED_LISTS: usize = 1_000;

/// How many lists a [`StaffBoard`] holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BoardLimits {
    /// Open lists (states before READY); at least 1.
    pub open: usize,
    /// Finished lists kept for repeated steps; may be 0.
    pub closed: usize,
}

impl Default for BoardLimits {
    fn default() -> Self {
        BoardLimits {
            open: DEFAULT_OPEN_LISTS,
            closed: DEFAULT_CLOSED_LISTS,
        }
    }
}

/// One pick list on the board, with what the service attached to it (`T`: e.g. the trace of
/// its record).
#[derive(Debug, Clone)]
pub struct BoardEntry<T> {
    /// The pick list as shown.
    pub pick_list: PickList,
    /// The furthest state recorded for its order.
    pub state: OrderState,
    /// A step is being written now (others are refused until it is done).
    pub busy: bool,
    /// The last staff status recorded, answered again when its step is repeated.
    pub last: Option<OrderStatus>,
    /// The service's data for the list.
    pub attachment: T,
    arrival: u64,
}

impl<T> BoardEntry<T> {
    /// Its position in arrival order on the board (0 for the first list ever added).
    pub fn arrival(&self) -> u64 {
        self.arrival
    }
}

/// What [`StaffBoard::insert`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inserted {
    /// The list is new on the board; `dropped` are the open lists (order ids) pushed off past
    /// the cap to make room, oldest arrival first.
    Added {
        /// Arrival position of the new list.
        arrival: u64,
        /// Order ids of the open lists dropped from the board.
        dropped: Vec<Uuid>,
    },
    /// A list for the order was on the board already: nothing changed.
    Known,
}

/// What [`StaffBoard::begin_step`] decided for a step it accepted.
#[derive(Debug, Clone, PartialEq)]
pub enum StepStart {
    /// The step was the last one taken, with the same quantities: the status recorded then;
    /// nothing is to be written and the list is not busy.
    Repeated(OrderStatus),
    /// The status to write; the list is busy until the service records the outcome.
    Write(OrderStatus),
}

/// Why [`StaffBoard::begin_step`] refused a step.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StepRefused {
    /// No list for the order is on the board.
    #[error("no pick list for order {0} is shown here")]
    NotFound(Uuid),
    /// Another step of the list is being written.
    #[error("another change of order {0} is being recorded; reload and try again")]
    Busy(Uuid),
    /// The step does not follow the list's state, or repeats PICKED with other quantities.
    #[error("{0}")]
    Conflict(String),
    /// The picked quantities do not fit the pick list.
    #[error("{0}")]
    BadLines(String),
}

/// Sort key of an open list: window start (`i64::MAX` without a window), then arrival.
type PickKey = (i64, u64);

fn pick_key(pick_list: &PickList, arrival: u64) -> PickKey {
    let start = pick_list
        .delivery_window
        .as_ref()
        .map_or(i64::MAX, |window| window.start_time);
    (start, arrival)
}

/// The pick lists a store screen shows, by order id (see the module docs).
#[derive(Debug)]
pub struct StaffBoard<T> {
    limits: BoardLimits,
    entries: HashMap<Uuid, BoardEntry<T>>,
    /// Open lists in pick order.
    pick_order: BTreeMap<PickKey, Uuid>,
    /// Open lists by arrival, the oldest first (the one dropped past the cap).
    arrivals: BTreeSet<u64>,
    by_arrival: HashMap<u64, Uuid>,
    /// Finished lists, the oldest first.
    closed: VecDeque<Uuid>,
    next_arrival: u64,
    dropped: u64,
}

impl<T> Default for StaffBoard<T> {
    fn default() -> Self {
        Self::new(BoardLimits::default())
    }
}

impl<T> StaffBoard<T> {
    /// An empty board holding at most `limits.open` open and `limits.closed` finished lists.
    pub fn new(limits: BoardLimits) -> Self {
        StaffBoard {
            limits: BoardLimits {
                open: limits.open.max(1),
                closed: limits.closed,
            },
            entries: HashMap::new(),
            pick_order: BTreeMap::new(),
            arrivals: BTreeSet::new(),
            by_arrival: HashMap::new(),
            closed: VecDeque::new(),
            next_arrival: 0,
            dropped: 0,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> BoardLimits {
        self.limits
    }

    /// Puts `pick_list` on the board in `state` with `last` (the last staff status recorded
    /// for it, if any) and `attachment`. A list already on the board is left as it is
    /// ([`Inserted::Known`]). A list inserted READY goes straight to the finished ones.
    pub fn insert(
        &mut self,
        pick_list: &PickList,
        state: OrderState,
        last: Option<OrderStatus>,
        attachment: T,
    ) -> Inserted {
        let order_id = pick_list.order_id;
        if self.entries.contains_key(&order_id) {
            return Inserted::Known;
        }
        let arrival = self.next_arrival;
        self.next_arrival += 1;
        self.entries.insert(
            order_id,
            BoardEntry {
                pick_list: pick_list.clone(),
                state,
                busy: false,
                last,
                attachment,
                arrival,
            },
        );
        let mut dropped = Vec::new();
        if state == OrderState::Ready {
            self.close(order_id);
        } else {
            self.pick_order
                .insert(pick_key(pick_list, arrival), order_id);
            self.arrivals.insert(arrival);
            self.by_arrival.insert(arrival, order_id);
            while self.arrivals.len() > self.limits.open {
                let Some(oldest) = self.arrivals.pop_first() else {
                    break;
                };
                if let Some(id) = self.by_arrival.remove(&oldest) {
                    if let Some(entry) = self.entries.remove(&id) {
                        self.pick_order
                            .remove(&pick_key(&entry.pick_list, entry.arrival));
                    }
                    self.dropped += 1;
                    dropped.push(id);
                }
            }
        }
        Inserted::Added { arrival, dropped }
    }

    /// The list of `order_id`, when it is on the board.
    pub fn get(&self, order_id: Uuid) -> Option<&BoardEntry<T>> {
        self.entries.get(&order_id)
    }

    /// Marks the list of `order_id` busy (a step is being written) or not; `false` when it is
    /// not on the board.
    pub fn set_busy(&mut self, order_id: Uuid, busy: bool) -> bool {
        match self.entries.get_mut(&order_id) {
            Some(entry) => {
                entry.busy = busy;
                true
            }
            None => false,
        }
    }

    /// Starts `step` on the list of `order_id` at `now_ms` (for [`StaffStep::Picked`], `picked`
    /// gives the quantities; `None`: as planned): the status to write, the list then `busy`;
    /// or, for a repeat of the step last taken with the same quantities, the status recorded
    /// then (see the module docs).
    ///
    /// # Errors
    /// [`StepRefused`]: the list is not on the board, busy, not in the state the step follows,
    /// already PICKED with other quantities, or the quantities do not fit it.
    pub fn begin_step(
        &mut self,
        order_id: Uuid,
        step: StaffStep,
        picked: Option<&[PickedLine]>,
        now_ms: i64,
    ) -> Result<StepStart, StepRefused> {
        let entry = self
            .entries
            .get_mut(&order_id)
            .ok_or(StepRefused::NotFound(order_id))?;
        if entry.busy {
            return Err(StepRefused::Busy(order_id));
        }
        if let Some(last) = entry.last.as_ref().filter(|l| l.state == step.target()) {
            if step == StaffStep::Picked {
                let asked = picked_status(&entry.pick_list, picked, last.time)
                    .map_err(|e| StepRefused::BadLines(e.to_string()))?;
                if asked.lines != last.lines {
                    return Err(StepRefused::Conflict(format!(
                        "order {order_id} is already PICKED with other quantities; \
                         a recorded change cannot be altered"
                    )));
                }
            }
            return Ok(StepStart::Repeated(last.clone()));
        }
        step.check(entry.state)
            .map_err(|e| StepRefused::Conflict(e.to_string()))?;
        let status = match step {
            StaffStep::Picked => {
                picked_status(&entry.pick_list, picked, now_ms).map_err(|e| match e {
                    LifecycleError::BadLines(message) => StepRefused::BadLines(message),
                    other => StepRefused::Conflict(other.to_string()),
                })?
            }
            _ => staff_status(&entry.pick_list, step, now_ms),
        };
        entry.busy = true;
        Ok(StepStart::Write(status))
    }

    /// Moves the list of `order_id` on to `state` with `last` as its last recorded status (a
    /// state before the current one is ignored); at READY it leaves the open lists for the
    /// finished ones. `false` when the list is not on the board.
    pub fn advance(
        &mut self,
        order_id: Uuid,
        state: OrderState,
        last: Option<OrderStatus>,
    ) -> bool {
        let Some(entry) = self.entries.get_mut(&order_id) else {
            return false;
        };
        if state < entry.state {
            return true;
        }
        let was_open = entry.state != OrderState::Ready;
        entry.state = state;
        entry.last = last;
        if was_open && state == OrderState::Ready {
            let key = pick_key(&entry.pick_list, entry.arrival);
            let arrival = entry.arrival;
            self.pick_order.remove(&key);
            self.arrivals.remove(&arrival);
            self.by_arrival.remove(&arrival);
            self.close(order_id);
        }
        true
    }

    /// Adds `order_id` to the finished lists, forgetting the oldest past the limit.
    fn close(&mut self, order_id: Uuid) {
        self.closed.push_back(order_id);
        while self.closed.len() > self.limits.closed {
            if let Some(oldest) = self.closed.pop_front() {
                self.entries.remove(&oldest);
            }
        }
    }

    /// The open lists, earliest delivery window first, then by arrival (see the module docs).
    pub fn open_in_pick_order(&self) -> impl Iterator<Item = &BoardEntry<T>> {
        self.pick_order
            .values()
            .filter_map(|order_id| self.entries.get(order_id))
    }

    /// The finished (READY) lists still kept, the most recently finished first.
    pub fn finished(&self) -> impl Iterator<Item = &BoardEntry<T>> {
        self.closed
            .iter()
            .rev()
            .filter_map(|order_id| self.entries.get(order_id))
    }

    /// Open lists on the board.
    pub fn open_len(&self) -> usize {
        self.arrivals.len()
    }

    /// Lists on the board, open and finished.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the board holds no list.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Open lists dropped past the cap since the board was made.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}
