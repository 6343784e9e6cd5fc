//! Each order's latest state as `grocery.order-state.v1` carries it
//! ([`OrderLatestState`]): the order's whole history (a handful of changes), its furthest
//! state, and where in `grocery.order-status.v1` the last change folded in came from.
//!
//! [`to_state`] turns an [`OrderHistory`] into the record, [`from_state`] back; the two are
//! inverse, so a view rebuilt from the state topic holds what a view folded from every status
//! holds. [`Resume`] notes, per status partition, the last status offset the state records read
//! so far cover: a reader follows `grocery.order-status.v1` from the next one.
//!
//! ```
//! use grocery_events::OrderState;
//! use grocery_store::{HistoryView, lifecycle::status, state};
//! use uuid::Uuid;
//!
//! let order_id = Uuid::from_u128(1);
//! let mut view = HistoryView::new();
//! view.apply(status(order_id, OrderState::Received, 1, "fulfillment-service"));
//! let history = view.get(order_id).unwrap();
//! let record = state::to_state(history, 2, 41);
//! assert_eq!((record.status_partition, record.status_offset), (2, 41));
//! assert_eq!(state::from_state(&record).as_ref(), Some(history));
//! ```

use std::collections::BTreeMap;

use grocery_events::{
    OrderLatestState, OrderStage, OrderState, OrderStateChange, OrderStatus, StateLine, StatusLine,
};

use crate::history::OrderHistory;

/// The state topic's symbol for `state`.
pub fn stage(state: OrderState) -> OrderStage {
    match state {
        OrderState::Received => OrderStage::Received,
        OrderState::PicklistCreated => OrderStage::PicklistCreated,
        OrderState::PickingStarted => OrderStage::PickingStarted,
        OrderState::Picked => OrderStage::Picked,
        OrderState::Ready => OrderStage::Ready,
    }
}

/// The status topic's symbol for `stage`.
pub fn order_state(stage: OrderStage) -> OrderState {
    match stage {
        OrderStage::Received => OrderState::Received,
        OrderStage::PicklistCreated => OrderState::PicklistCreated,
        OrderStage::PickingStarted => OrderState::PickingStarted,
        OrderStage::Picked => OrderState::Picked,
        OrderStage::Ready => OrderState::Ready,
    }
}

fn change(status: &OrderStatus) -> OrderStateChange {
    OrderStateChange {
        status_id: status.status_id,
        state: stage(status.state),
        time: status.time,
        actor: status.actor.clone(),
        picklist_id: status.picklist_id,
        lines: status
            .lines
            .iter()
            .map(|line| StateLine {
                sku: line.sku.clone(),
                quantity: line.quantity,
                quantity_picked: line.quantity_picked,
                quantity_short: line.quantity_short,
            })
            .collect(),
        note: status.note.clone(),
    }
}

fn status(order_id: uuid::Uuid, change: &OrderStateChange) -> OrderStatus {
    OrderStatus {
        status_id: change.status_id,
        order_id,
        state: order_state(change.state),
        time: change.time,
        actor: change.actor.clone(),
        picklist_id: change.picklist_id,
        lines: change
            .lines
            .iter()
            .map(|line| StatusLine {
                sku: line.sku.clone(),
                quantity: line.quantity,
                quantity_picked: line.quantity_picked,
                quantity_short: line.quantity_short,
            })
            .collect(),
        note: change.note.clone(),
    }
}

/// The state record of `history`, whose last change folded in was the status at
/// `status_offset` of partition `status_partition`.
pub fn to_state(
    history: &OrderHistory,
    status_partition: i32,
    status_offset: i64,
) -> OrderLatestState {
    OrderLatestState {
        order_id: history.order_id(),
        state: stage(history.current()),
        history: history.changes().iter().map(change).collect(),
        status_partition,
        status_offset,
    }
}

/// The history a state record carries; `None` when it carries no change (a record no writer of
/// this project makes).
pub fn from_state(record: &OrderLatestState) -> Option<OrderHistory> {
    let changes = record
        .history
        .iter()
        .map(|change| status(record.order_id, change))
        .collect();
    OrderHistory::from_changes(record.order_id, changes)
}

/// Where to follow `grocery.order-status.v1` from after reading the state topic: per status
/// partition, the highest `status_offset` of the records read.
///
/// Why that is exact (no status missed, none folded twice): one writer folds each status
/// partition in offset order and writes the order's state record, keyed like the status, to
/// the same partition number of the state topic, where records keep their order. So the
/// records of state partition `p` up to the one naming offset `o` hold every change of status
/// partition `p` up to `o`; a record compaction removed was replaced by a later record of the
/// same order, also read. The statuses after `o` are not in any record read (their records
/// come later), and are read from the status topic. A status the writer passed over as a
/// repeat is a repeat again there (dropped by `status_id`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resume {
    last: BTreeMap<i32, i64>,
    misplaced: u64,
}

impl Resume {
    /// Notes a state record read from partition `partition` of the state topic.
    pub fn note(&mut self, partition: i32, record: &OrderLatestState) {
        if partition != record.status_partition {
            self.misplaced += 1;
        }
        let last = self.last.entry(record.status_partition).or_insert(-1);
        *last = (*last).max(record.status_offset);
    }

    /// The first status offset not covered by the records read, for `partition` (`None`: no
    /// record names it, read the partition from its beginning).
    pub fn next_offset(&self, partition: i32) -> Option<i64> {
        self.last.get(&partition).map(|last| last + 1)
    }

    /// Records found on another partition number than their statuses' (the state topic was
    /// created with another partition count, or a writer partitions keys differently): the
    /// hand-over is exact only when this is 0.
    pub fn misplaced(&self) -> u64 {
        self.misplaced
    }

    /// The next offsets, by status partition.
    pub fn next_offsets(&self) -> BTreeMap<i32, i64> {
        self.last.iter().map(|(p, last)| (*p, last + 1)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{HistoryView, lifecycle::STATES, lifecycle::status as change_to};
    use uuid::Uuid;

    #[test]
    fn a_history_survives_the_state_record_whole() {
        let order_id = Uuid::from_u128(3);
        let mut view = HistoryView::new();
        for (time, state) in STATES.iter().enumerate() {
            let mut status = change_to(order_id, *state, time as i64, "staff:Ana");
            status.lines = vec![StatusLine {
                sku: "PRD-00001".into(),
                quantity: 2,
                quantity_picked: 1,
                quantity_short: 1,
            }];
            status.note = Some("one short".into());
            view.apply(status);
        }
        let history = view.get(order_id).unwrap();
        let record = to_state(history, 1, 7);
        assert_eq!(record.state, OrderStage::Ready);
        assert_eq!(record.history.len(), 5);
        assert_eq!(from_state(&record).as_ref(), Some(history));
        let empty = OrderLatestState {
            history: vec![],
            ..record
        };
        assert!(from_state(&empty).is_none());
    }

    #[test]
    fn resume_takes_the_last_offset_of_each_status_partition() {
        let order_id = Uuid::from_u128(4);
        let mut view = HistoryView::new();
        view.apply(change_to(order_id, OrderState::Received, 1, "f"));
        let history = view.get(order_id).unwrap();
        let mut resume = Resume::default();
        assert_eq!(resume.next_offset(0), None);
        resume.note(0, &to_state(history, 0, 10));
        resume.note(0, &to_state(history, 0, 4));
        resume.note(2, &to_state(history, 2, 0));
        assert_eq!(
            (resume.next_offset(0), resume.next_offset(2)),
            (Some(11), Some(1))
        );
        assert_eq!(resume.misplaced(), 0);
        resume.note(1, &to_state(history, 2, 3));
        assert_eq!((resume.next_offset(2), resume.misplaced()), (Some(4), 1));
    }
}
