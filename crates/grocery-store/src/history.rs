//! Order histories: the [`OrderStatus`] changes of each order folded into one view (the Order
//! API's `GET /orders/{id}`).
//!
//! [`HistoryView::apply`] takes the records of `grocery.order-status.v1` in any order, any
//! number of times: a change already seen (same `status_id`) is dropped, and each history is
//! kept in the order of the states (RECEIVED, PICKLIST_CREATED, PICKING_STARTED, PICKED,
//! READY), changes of one state by time.
//!
//! **Bounded.** A view made with [`HistoryView::with_limit`] holds at most that many orders
//! (the Order API: [`DEFAULT_VIEW_ORDERS`]). Past it, the order that finished (READY) **longest
//! ago** is forgotten first; only when no finished order is left does the **oldest open** order
//! go (first seen first), which [`HistoryView::evicted_open`] counts: open orders are what the
//! view is for, so losing one means the cap is too small for the store's backlog. A forgotten
//! order is unknown to the view afterwards (its statuses stay on `grocery.order-status.v1` and
//! its latest state on `grocery.order-state.v1`); a late repeat of one of its changes starts a
//! new, partial history, dropped again like any other.
//!
//! ```
//! use grocery_events::{OrderState, OrderStatus};
//! use grocery_store::HistoryView;
//! use uuid::Uuid;
//!
//! let order_id = Uuid::from_u128(1);
//! let change = |state, time| OrderStatus {
//!     status_id: grocery_store::status_id(order_id, state),
//!     order_id,
//!     state,
//!     time,
//!     actor: "fulfillment-service".into(),
//!     picklist_id: None,
//!     lines: vec![],
//!     note: None,
//! };
//! let mut view = HistoryView::default();
//! assert!(view.apply(change(OrderState::PicklistCreated, 2)));
//! assert!(view.apply(change(OrderState::Received, 1)));
//! assert!(!view.apply(change(OrderState::Received, 1))); // a repeat
//! let history = view.get(order_id).unwrap();
//! assert_eq!(history.current(), OrderState::PicklistCreated);
//! assert_eq!(history.to_json()["history"][0]["state"], "RECEIVED");
//! ```

use std::collections::{HashMap, VecDeque};

use grocery_events::{OrderState, OrderStatus};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::lifecycle::state_name;

/// The changes of state of one order, in the order of the states.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderHistory {
    order_id: Uuid,
    changes: Vec<OrderStatus>,
}

impl OrderHistory {
    /// The order's id.
    pub fn order_id(&self) -> Uuid {
        self.order_id
    }

    /// A history of `order_id` made of `changes` (any order, repeats dropped); `None` when
    /// `changes` is empty or one of them is of another order.
    pub fn from_changes(order_id: Uuid, changes: Vec<OrderStatus>) -> Option<Self> {
        if changes.is_empty() || changes.iter().any(|c| c.order_id != order_id) {
            return None;
        }
        let mut history = OrderHistory {
            order_id,
            changes: Vec::with_capacity(changes.len()),
        };
        for change in changes {
            history.add(change);
        }
        Some(history)
    }

    /// The changes, in the order of the states (never empty).
    pub fn changes(&self) -> &[OrderStatus] {
        &self.changes
    }

    /// The furthest state the order has reached.
    pub fn current(&self) -> OrderState {
        self.changes
            .iter()
            .map(|change| change.state)
            .max()
            .unwrap_or(OrderState::Received)
    }

    /// Whether the history has a change to `state`.
    pub fn has(&self, state: OrderState) -> bool {
        self.changes.iter().any(|change| change.state == state)
    }

    /// The history as JSON: `order_id`, `state` (the current one) and `history`, one entry per
    /// change with `state`, `time` (milliseconds since the Unix epoch), `actor`,
    /// `picklist_id` and `note` (or null), and `lines` (`sku`, `quantity`, `picked`, `short`).
    pub fn to_json(&self) -> Value {
        let history: Vec<Value> = self.changes.iter().map(change_json).collect();
        json!({
            "order_id": self.order_id,
            "state": state_name(self.current()),
            "history": history,
        })
    }

    /// Adds `change` unless one with its `status_id` is there; true when added.
    fn add(&mut self, change: OrderStatus) -> bool {
        if self.changes.iter().any(|c| c.status_id == change.status_id) {
            return false;
        }
        let at = self
            .changes
            .partition_point(|c| (c.state, c.time) <= (change.state, change.time));
        self.changes.insert(at, change);
        true
    }
}

fn change_json(change: &OrderStatus) -> Value {
    let lines: Vec<Value> = change
        .lines
        .iter()
        .map(|line| {
            json!({
                "sku": line.sku,
                "quantity": line.quantity,
                "picked": line.quantity_picked,
                "short": line.quantity_short,
            })
        })
        .collect();
    json!({
        "state": state_name(change.state),
        "time": change.time,
        "actor": change.actor,
        "picklist_id": change.picklist_id,
        "lines": lines,
        "note": change.note,
    })
}

/// Orders the Order API's view holds by default (in the 10-minute soak the whole Order API ran
/// at 37 MiB with its view full and no idempotency keys).
pub const DEFAULT_VIEW_ORDERS: usize = 10_000;

/// The histories of the orders seen, by order id; at most [`HistoryView::limit`] of them.
#[derive(Debug, Clone, Default)]
pub struct HistoryView {
    orders: HashMap<Uuid, OrderHistory>,
    changes: u64,
    limit: Option<usize>,
    /// Order ids in the order they were first seen (open ones; ids that finished or were
    /// forgotten since are skipped when popped, and swept out when they are most of it).
    open: VecDeque<Uuid>,
    /// READY order ids in the order they finished.
    finished: VecDeque<Uuid>,
    evicted: u64,
    evicted_open: u64,
}

impl HistoryView {
    /// An empty view without a limit (every order seen is kept).
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty view holding at most `limit` orders (`limit` ≥ 1), forgetting the order that
    /// finished longest ago first, the oldest open one when none has finished.
    pub fn with_limit(limit: usize) -> Self {
        HistoryView {
            limit: Some(limit.max(1)),
            ..Self::default()
        }
    }

    /// The most orders the view holds (`None`: no limit).
    pub fn limit(&self) -> Option<usize> {
        self.limit
    }

    /// Folds one change into its order's history; false when it was already there (same
    /// `status_id`).
    pub fn apply(&mut self, change: OrderStatus) -> bool {
        let order_id = change.order_id;
        let before = self.orders.get(&order_id).map(OrderHistory::current);
        let history = self.orders.entry(order_id).or_insert_with(|| OrderHistory {
            order_id,
            changes: Vec::new(),
        });
        let added = history.add(change);
        let now = history.current();
        if added {
            self.changes += 1;
        }
        if self.limit.is_some() {
            if before.is_none() {
                self.open.push_back(order_id);
            }
            if now == OrderState::Ready && before != Some(OrderState::Ready) {
                self.finished.push_back(order_id);
            }
            self.shrink(order_id);
        }
        added
    }

    /// Puts back a whole history (e.g. read from the latest-state topic), merged with what the
    /// view held for the order: a change either holds is kept, once (by `status_id`). So two
    /// state records of one order (on two partitions of a state topic whose partition count
    /// changed) give the same history whichever is read first, never the older one alone.
    /// Counts as the order's arrival for the limit.
    pub fn insert(&mut self, mut history: OrderHistory) {
        let order_id = history.order_id;
        if let Some(held) = self.orders.get(&order_id) {
            for change in &held.changes {
                history.add(change.clone());
            }
        }
        let finished = history.current() == OrderState::Ready;
        let previous = self.orders.insert(order_id, history.clone());
        self.changes = self.changes + history.changes.len() as u64
            - previous.as_ref().map_or(0, |p| p.changes.len() as u64);
        if self.limit.is_some() {
            if previous.is_none() {
                self.open.push_back(order_id);
            }
            let was_finished = previous.is_some_and(|p| p.current() == OrderState::Ready);
            if finished && !was_finished {
                self.finished.push_back(order_id);
            }
            self.shrink(order_id);
        }
    }

    /// Forgets orders past the limit, never `keep` (the order just changed).
    fn shrink(&mut self, keep: Uuid) {
        let Some(limit) = self.limit else { return };
        while self.orders.len() > limit {
            let finished = loop {
                match self.finished.pop_front() {
                    Some(id) if id != keep && self.orders.contains_key(&id) => break Some(id),
                    Some(_) => {}
                    None => break None,
                }
            };
            let victim = finished.or_else(|| {
                while let Some(id) = self.open.pop_front() {
                    let open = self
                        .orders
                        .get(&id)
                        .is_some_and(|h| h.current() != OrderState::Ready);
                    if id != keep && open {
                        return Some(id);
                    }
                }
                None
            });
            let Some(victim) = victim else { break };
            if let Some(gone) = self.orders.remove(&victim) {
                self.changes -= gone.changes.len() as u64;
                self.evicted += 1;
                if finished.is_none() {
                    self.evicted_open += 1;
                }
            }
        }
        // Ids of orders that finished or were forgotten stay in `open` until popped: sweep
        // them out once they are most of it, so the queue stays within twice the limit.
        if self.open.len() > 2 * limit.max(16) {
            let orders = &self.orders;
            self.open.retain(|id| {
                orders
                    .get(id)
                    .is_some_and(|h| h.current() != OrderState::Ready)
            });
        }
        if self.finished.len() > 2 * limit.max(16) {
            let orders = &self.orders;
            self.finished.retain(|id| orders.contains_key(id));
        }
    }

    /// Orders forgotten past the limit so far.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// Open (not READY) orders among [`HistoryView::evicted`]: the limit is too small for
    /// the orders in progress.
    pub fn evicted_open(&self) -> u64 {
        self.evicted_open
    }

    /// The history of `order_id`, when any change of it has been seen.
    pub fn get(&self, order_id: Uuid) -> Option<&OrderHistory> {
        self.orders.get(&order_id)
    }

    /// Number of orders with a history.
    pub fn orders(&self) -> usize {
        self.orders.len()
    }

    /// Number of distinct changes folded in.
    pub fn changes(&self) -> u64 {
        self.changes
    }
}

#[cfg(test)]
mod tests {
    use grocery_events::StatusLine;

    use super::*;
    use crate::lifecycle::{STATES, status_id};

    fn change(order_id: Uuid, state: OrderState, time: i64) -> OrderStatus {
        OrderStatus {
            status_id: status_id(order_id, state),
            order_id,
            state,
            time,
            actor: "staff:Ana".into(),
            picklist_id: None,
            lines: vec![StatusLine {
                sku: "PRD-00001".into(),
                quantity: 3,
                quantity_picked: 1,
                quantity_short: 2,
            }],
            note: None,
        }
    }

    #[test]
    fn any_arrival_order_and_repeats_give_one_history_in_state_order() {
        let order_id = Uuid::from_u128(9);
        let mut view = HistoryView::default();
        for state in STATES.iter().rev().chain(STATES.iter()) {
            view.apply(change(order_id, *state, 10));
        }
        assert_eq!((view.orders(), view.changes()), (1, 5));
        let history = view.get(order_id).unwrap();
        let states: Vec<OrderState> = history.changes().iter().map(|c| c.state).collect();
        assert_eq!(states, STATES);
        assert_eq!(history.current(), OrderState::Ready);
        let json = history.to_json();
        assert_eq!(json["state"], "READY");
        assert_eq!(
            json["history"][3]["lines"],
            json!([{ "sku": "PRD-00001", "quantity": 3, "picked": 1, "short": 2 }])
        );
        assert!(view.get(Uuid::from_u128(10)).is_none());
    }

    #[test]
    fn changes_of_one_state_with_other_ids_are_kept_by_time() {
        let order_id = Uuid::from_u128(9);
        let mut view = HistoryView::default();
        let mut late = change(order_id, OrderState::Picked, 20);
        late.status_id = Uuid::from_u128(1);
        view.apply(late);
        view.apply(change(order_id, OrderState::Picked, 10));
        let times: Vec<i64> = view
            .get(order_id)
            .unwrap()
            .changes()
            .iter()
            .map(|c| c.time)
            .collect();
        assert_eq!(times, [10, 20]);
    }

    /// The view holds at most its limit: finished orders go first (longest finished first),
    /// open ones only when no finished one is left, and the counts say which.
    #[test]
    fn past_its_limit_the_view_forgets_finished_orders_first_then_the_oldest_open() {
        let mut view = HistoryView::with_limit(3);
        let order = Uuid::from_u128;
        for id in 1..=3 {
            view.apply(change(order(id), OrderState::Received, 1));
        }
        // Order 2 finishes, then a fourth order arrives: 2 is forgotten, 1 and 3 stay open.
        view.apply(change(order(2), OrderState::Ready, 2));
        view.apply(change(order(4), OrderState::Received, 3));
        assert_eq!(view.orders(), 3);
        assert!(view.get(order(2)).is_none());
        assert!(view.get(order(1)).is_some() && view.get(order(3)).is_some());
        assert_eq!((view.evicted(), view.evicted_open()), (1, 0));
        // No finished order left: the oldest open one (1) goes.
        view.apply(change(order(5), OrderState::Received, 4));
        assert!(view.get(order(1)).is_none());
        assert_eq!((view.evicted(), view.evicted_open()), (2, 1));
        assert_eq!(view.changes(), 3);
        // Traffic far past the limit: the view, and its bookkeeping, stay within bounds.
        for id in 10..10_000u128 {
            view.apply(change(order(id), OrderState::Received, 5));
            if id % 2 == 0 {
                view.apply(change(order(id), OrderState::Ready, 6));
            }
        }
        assert_eq!(view.orders(), 3);
        assert!(view.open.len() <= 2 * 16 + 1 && view.finished.len() <= 2 * 16 + 1);
        // The order just changed is never the one forgotten.
        assert!(view.get(order(9_999)).is_some());
    }

    #[test]
    fn an_older_history_put_back_after_a_newer_one_loses_nothing() {
        let order_id = Uuid::from_u128(8);
        let older = OrderHistory::from_changes(
            order_id,
            vec![
                change(order_id, OrderState::Received, 1),
                change(order_id, OrderState::PicklistCreated, 2),
            ],
        )
        .unwrap();
        let mut newer = older.clone();
        newer.add(change(order_id, OrderState::PickingStarted, 3));
        let mut view = HistoryView::with_limit(4);
        view.insert(newer.clone());
        view.insert(older.clone());
        assert_eq!(view.get(order_id), Some(&newer));
        assert_eq!(
            view.get(order_id).unwrap().current(),
            OrderState::PickingStarted
        );
        assert_eq!(view.changes(), 3);
        assert_eq!(view.orders(), 1);
    }

    #[test]
    fn a_whole_history_put_back_holds_every_change() {
        let order_id = Uuid::from_u128(7);
        let mut view = HistoryView::with_limit(2);
        view.apply(change(order_id, OrderState::Received, 1));
        let whole = OrderHistory::from_changes(
            order_id,
            vec![
                change(order_id, OrderState::PicklistCreated, 2),
                change(order_id, OrderState::Received, 1),
            ],
        )
        .unwrap();
        view.insert(whole.clone());
        assert_eq!(view.get(order_id), Some(&whole));
        assert_eq!(view.changes(), 2);
        assert!(OrderHistory::from_changes(order_id, vec![]).is_none());
        assert!(
            OrderHistory::from_changes(order_id, vec![change(Uuid::nil(), OrderState::Ready, 1)])
                .is_none()
        );
    }
}
