//! Order histories: the [`OrderStatus`] changes of each order folded into one view (the Order
//! API's `GET /orders/{id}`).
//!
//! [`HistoryView::apply`] takes the records of `grocery.order-status.v1` in any order, any
//! number of times: a change already seen (same `status_id`) is dropped, and each history is
//! kept in the order of the states (RECEIVED, PICKLIST_CREATED, PICKING_STARTED, PICKED,
//! READY), changes of one state by time.
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

use std::collections::HashMap;

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

/// The histories of all orders seen, by order id.
#[derive(Debug, Clone, Default)]
pub struct HistoryView {
    orders: HashMap<Uuid, OrderHistory>,
    changes: u64,
}

impl HistoryView {
    /// Folds one change into its order's history; false when it was already there (same
    /// `status_id`).
    pub fn apply(&mut self, change: OrderStatus) -> bool {
        let order_id = change.order_id;
        let history = self.orders.entry(order_id).or_insert_with(|| OrderHistory {
            order_id,
            changes: Vec::new(),
        });
        let added = history.add(change);
        if added {
            self.changes += 1;
        }
        added
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
}
