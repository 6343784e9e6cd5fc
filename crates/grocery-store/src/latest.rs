//! The latest state of each order, folded from `grocery.order-status.v1`: what picklist-consumer
//! needs to put its pick lists back on the staff board after a restart.
//!
//! [`LatestStatus::apply`] keeps, per order, the change to the furthest state (changes arrive
//! in any order, any number of times). [`LatestStatus::board_state`] says how a pick list goes
//! back on the board: in which state, with which staff status to answer a repeated step, or not
//! at all once READY.
//!
//! It holds one entry per order folded in, so it is as large as the topic it is folded from
//! has orders: picklist-consumer builds it once at start and drops it when its pick lists are
//! back on the board. Reading a compacted latest-state topic instead of the whole history is
//! what would bound that start. An entry is the order's furthest state (about 40 bytes with
//! the map's own), plus the change itself only once staff took a step (the status a repeated
//! step is answered with); fulfillment's changes, most of a history, are not kept whole.

use std::collections::HashMap;

use grocery_events::{OrderState, OrderStatus};
use uuid::Uuid;

/// Each order's change to the furthest state seen.
#[derive(Debug, Clone, Default)]
pub struct LatestStatus {
    by_order: HashMap<Uuid, Latest>,
}

/// An order's furthest state, and the change to it when staff made it (PICKING_STARTED or
/// later: what [`LatestStatus::board_state`] answers a repeated step with).
#[derive(Debug, Clone)]
struct Latest {
    state: OrderState,
    staff: Option<Box<OrderStatus>>,
}

impl LatestStatus {
    /// Folds one change in; `true` when it is now the order's latest (a state further than the
    /// one known, or the first for the order).
    pub fn apply(&mut self, status: OrderStatus) -> bool {
        let further = self
            .by_order
            .get(&status.order_id)
            .is_none_or(|known| known.state < status.state);
        if further {
            let (order_id, state) = (status.order_id, status.state);
            let staff = (state >= OrderState::PickingStarted).then(|| Box::new(status));
            self.by_order.insert(order_id, Latest { state, staff });
        }
        further
    }

    /// The furthest state of `order_id`, when a change was seen.
    pub fn state(&self, order_id: Uuid) -> Option<OrderState> {
        self.by_order.get(&order_id).map(|latest| latest.state)
    }

    /// Orders with a change.
    pub fn len(&self) -> usize {
        self.by_order.len()
    }

    /// Whether no change was seen.
    pub fn is_empty(&self) -> bool {
        self.by_order.is_empty()
    }

    /// How the pick list of `order_id` goes back on the staff board: its state (at least
    /// PICKLIST_CREATED: the pick list exists) and the last staff status (PICKING_STARTED or
    /// later) to answer a repeated step with; `None` when the order is READY (off the board).
    pub fn board_state(&self, order_id: Uuid) -> Option<(OrderState, Option<OrderStatus>)> {
        let latest = self.by_order.get(&order_id);
        let state = latest
            .map_or(OrderState::PicklistCreated, |latest| latest.state)
            .max(OrderState::PicklistCreated);
        if state == OrderState::Ready {
            return None;
        }
        let last = latest.and_then(|latest| latest.staff.as_deref().cloned());
        Some((state, last))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::status;

    #[test]
    fn the_furthest_state_wins_in_any_order_and_decides_the_board_state() {
        let order = Uuid::from_u128(1);
        let mut latest = LatestStatus::default();
        // Not seen: a pick list goes on the board as created.
        assert_eq!(
            latest.board_state(order),
            Some((OrderState::PicklistCreated, None))
        );
        assert!(latest.apply(status(order, OrderState::Picked, 3, "staff:Ana")));
        assert!(!latest.apply(status(order, OrderState::Received, 1, "fulfillment")));
        assert!(!latest.apply(status(order, OrderState::PickingStarted, 2, "staff:Ana")));
        assert_eq!(latest.state(order), Some(OrderState::Picked));
        let (state, last) = latest.board_state(order).unwrap();
        assert_eq!(state, OrderState::Picked);
        assert_eq!(last.map(|s| s.time), Some(3));
        // Only fulfillment's states: created, no staff status to repeat.
        let other = Uuid::from_u128(2);
        latest.apply(status(other, OrderState::Received, 1, "fulfillment"));
        assert_eq!(
            latest.board_state(other),
            Some((OrderState::PicklistCreated, None))
        );
        // READY: off the board.
        assert!(latest.apply(status(order, OrderState::Ready, 4, "staff:Ana")));
        assert_eq!(latest.board_state(order), None);
        assert_eq!(latest.len(), 2);
    }
}
