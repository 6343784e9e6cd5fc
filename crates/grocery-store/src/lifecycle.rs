//! The order lifecycle: the [`OrderStatus`] records of `grocery.order-status.v1`.
//!
//! An order goes RECEIVED → PICKLIST_CREATED (written by the fulfillment service with its pick
//! list, [`fulfillment_statuses`](crate::picking::fulfillment_statuses)) → PICKING_STARTED →
//! PICKED → READY (written by store staff from the pick-list page, [`StaffStep`]). Each change
//! has the id [`status_id`], a UUIDv5 of the order id and the state, so a change written
//! twice (a replay, a retried click) carries the same id and readers drop the repeat.

use grocery_events::{OrderState, OrderStatus, PickList, StatusLine};
use serde::Deserialize;
use uuid::Uuid;

/// Namespace of status ids: fixed for this project, never change it (every status id already
/// published would change with it).
pub const STATUS_NAMESPACE: Uuid = uuid::uuid!("0e46577f-7d07-4a5d-9816-83f01c53025c");

/// The actor of the states the fulfillment service writes.
pub const FULFILLMENT_ACTOR: &str = "fulfillment-service";

/// Every state, in the order an order reaches them.
pub const STATES: [OrderState; 5] = [
    OrderState::Received,
    OrderState::PicklistCreated,
    OrderState::PickingStarted,
    OrderState::Picked,
    OrderState::Ready,
];

/// The state's Avro symbol (`RECEIVED`, `PICKLIST_CREATED`, ...).
pub fn state_name(state: OrderState) -> &'static str {
    match state {
        OrderState::Received => "RECEIVED",
        OrderState::PicklistCreated => "PICKLIST_CREATED",
        OrderState::PickingStarted => "PICKING_STARTED",
        OrderState::Picked => "PICKED",
        OrderState::Ready => "READY",
    }
}

/// The id of `order_id`'s change into `state`: UUIDv5 in [`STATUS_NAMESPACE`] of the order
/// id's 16 bytes followed by the state's Avro symbol.
pub fn status_id(order_id: Uuid, state: OrderState) -> Uuid {
    // The name built on the stack: the longest symbol, PICKLIST_CREATED, has 16 bytes.
    let symbol = state_name(state).as_bytes();
    let mut name = [0u8; 32];
    name[..16].copy_from_slice(order_id.as_bytes());
    name[16..16 + symbol.len()].copy_from_slice(symbol);
    uuid_v5(&STATUS_NAMESPACE, &name[..16 + symbol.len()])
}

/// [`Uuid::new_v5`], the same id, with the `sha1` crate's SHA-1 (its block function is about
/// a third cheaper than the one `uuid` uses, and uses the CPU's SHA instructions where it has
/// them): fulfillment derives three ids per order this way.
pub(crate) fn uuid_v5(namespace: &Uuid, name: &[u8]) -> Uuid {
    use sha1::Digest as _;
    let digest = sha1::Sha1::new()
        .chain_update(namespace.as_bytes())
        .chain_update(name)
        .finalize();
    let mut bytes = [0; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_sha1_bytes(bytes).into_uuid()
}

/// The actor of a change made by store employee `picker`: `staff:<picker>`.
pub fn staff_actor(picker: &str) -> String {
    format!("staff:{picker}")
}

/// A status record with no lines and no note.
pub fn status(order_id: Uuid, state: OrderState, time_ms: i64, actor: &str) -> OrderStatus {
    OrderStatus {
        status_id: status_id(order_id, state),
        order_id,
        state,
        time: time_ms,
        actor: actor.to_owned(),
        picklist_id: None,
        lines: Vec::new(),
        note: None,
    }
}

/// A step store staff take on a pick list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StaffStep {
    /// "Start picking": PICKLIST_CREATED → PICKING_STARTED.
    StartPicking,
    /// "Picked", with the picked quantities: PICKING_STARTED → PICKED.
    Picked,
    /// "Ready": PICKED → READY.
    Ready,
}

impl StaffStep {
    /// The state the step enters.
    pub fn target(self) -> OrderState {
        match self {
            Self::StartPicking => OrderState::PickingStarted,
            Self::Picked => OrderState::Picked,
            Self::Ready => OrderState::Ready,
        }
    }

    /// The state the order must be in for the step.
    pub fn requires(self) -> OrderState {
        match self {
            Self::StartPicking => OrderState::PicklistCreated,
            Self::Picked => OrderState::PickingStarted,
            Self::Ready => OrderState::Picked,
        }
    }

    /// Checks that an order in `current` may take this step.
    ///
    /// # Errors
    /// [`LifecycleError::OutOfOrder`] naming both states, e.g. READY before PICKED.
    pub fn check(self, current: OrderState) -> Result<(), LifecycleError> {
        if current == self.requires() {
            Ok(())
        } else {
            Err(LifecycleError::OutOfOrder {
                current,
                wanted: self.target(),
                requires: self.requires(),
            })
        }
    }
}

/// One line of a "Picked" report: how many units of the pick list's line were picked.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PickedLine {
    /// The line's SKU (checked against the pick list's line at the same position).
    pub sku: String,
    /// Units picked, 0 to the quantity ordered.
    pub quantity_picked: i32,
}

/// Why a staff step cannot be taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LifecycleError {
    /// The order is not in the state the step needs.
    #[error(
        "cannot mark the order {wanted}: it is {current}, and {wanted} can only follow {requires}",
        wanted = state_name(*.wanted), current = state_name(*.current), requires = state_name(*.requires)
    )]
    OutOfOrder {
        /// The order's state now.
        current: OrderState,
        /// The state asked for.
        wanted: OrderState,
        /// The state it must follow.
        requires: OrderState,
    },
    /// The picked lines do not match the pick list's lines.
    #[error("{0}")]
    BadLines(String),
}

/// The PICKED record for `pick_list`: `picked` has one entry per pick-list line, in walking
/// order (`None`: every line picked as the stock check planned, `quantity_to_pick`).
///
/// # Errors
/// [`LifecycleError::BadLines`] when a count or SKU does not match the pick list, or a
/// quantity is below 0 or above the quantity ordered.
pub fn picked_status(
    pick_list: &PickList,
    picked: Option<&[PickedLine]>,
    time_ms: i64,
) -> Result<OrderStatus, LifecycleError> {
    let items = &pick_list.items_to_pick;
    if let Some(picked) = picked
        && picked.len() != items.len()
    {
        return Err(LifecycleError::BadLines(format!(
            "the pick list has {} lines, the report {}: give one picked quantity per line, in walking order",
            items.len(),
            picked.len()
        )));
    }
    let mut lines = Vec::with_capacity(items.len());
    let mut shorts = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let quantity_picked = match picked.map(|p| &p[index]) {
            None => item.quantity_to_pick.max(0),
            Some(line) if line.sku != item.sku => {
                return Err(LifecycleError::BadLines(format!(
                    "line {}: the pick list has SKU {}, the report {}",
                    index + 1,
                    item.sku,
                    line.sku
                )));
            }
            Some(line) if line.quantity_picked < 0 || line.quantity_picked > item.quantity => {
                return Err(LifecycleError::BadLines(format!(
                    "line {} ({}): picked {} is outside 0 to {} (the quantity ordered)",
                    index + 1,
                    item.sku,
                    line.quantity_picked,
                    item.quantity
                )));
            }
            Some(line) => line.quantity_picked,
        };
        let quantity_short = (item.quantity - quantity_picked).max(0);
        if quantity_short > 0 {
            shorts.push(format!("{} short {quantity_short}", item.sku));
        }
        lines.push(StatusLine {
            sku: item.sku.clone(),
            quantity: item.quantity,
            quantity_picked,
            quantity_short,
        });
    }
    let mut status = status(
        pick_list.order_id,
        OrderState::Picked,
        time_ms,
        &staff_actor(&pick_list.assigned_picker),
    );
    status.picklist_id = Some(pick_list.picklist_id);
    status.lines = lines;
    status.note = (!shorts.is_empty()).then(|| shorts.join("; "));
    Ok(status)
}

/// The record of staff step `step` on `pick_list` (PICKED with every line picked as planned;
/// use [`picked_status`] for other quantities).
pub fn staff_status(pick_list: &PickList, step: StaffStep, time_ms: i64) -> OrderStatus {
    if step == StaffStep::Picked
        && let Ok(status) = picked_status(pick_list, None, time_ms)
    {
        return status;
    }
    let mut status = status(
        pick_list.order_id,
        step.target(),
        time_ms,
        &staff_actor(&pick_list.assigned_picker),
    );
    status.picklist_id = Some(pick_list.picklist_id);
    status
}

#[cfg(test)]
mod tests {
    use super::*;
    use grocery_events::{PickLine, StockStatus};

    fn pick_list() -> PickList {
        let line = |sku: &str, quantity, quantity_to_pick| PickLine {
            sku: sku.into(),
            name: sku.into(),
            quantity,
            quantity_to_pick,
            aisle: "A1".into(),
            walk_sequence: 1,
            stock_status: StockStatus::InStock,
            note: None,
        };
        PickList {
            picklist_id: Uuid::from_u128(2),
            order_id: Uuid::from_u128(1),
            items_to_pick: vec![line("A", 3, 3), line("B", 2, 1)],
            assigned_picker: "Ana".into(),
            created_time: 5,
            delivery_window: None,
        }
    }

    #[test]
    fn uuid_v5_is_uuids_own() {
        let namespaces = [STATUS_NAMESPACE, crate::PICKLIST_NAMESPACE, Uuid::nil()];
        // Names of one SHA-1 block and over (55 bytes and more take a second block).
        let names: Vec<Vec<u8>> = [0, 1, 16, 31, 32, 40, 47, 48, 55, 56, 64, 100, 200]
            .iter()
            .map(|len| (0..*len).map(|i: usize| (i * 7 + len) as u8).collect())
            .collect();
        for namespace in &namespaces {
            for name in &names {
                assert_eq!(
                    uuid_v5(namespace, name),
                    Uuid::new_v5(namespace, name),
                    "{} bytes",
                    name.len()
                );
            }
        }
    }

    #[test]
    fn status_ids_differ_per_state_and_order_and_are_stable() {
        let order = Uuid::from_u128(1);
        let ids: std::collections::HashSet<_> =
            STATES.iter().map(|s| status_id(order, *s)).collect();
        assert_eq!(ids.len(), 5);
        assert_eq!(
            status_id(order, OrderState::Ready),
            status_id(order, OrderState::Ready)
        );
        assert_ne!(
            status_id(order, OrderState::Ready),
            status_id(Uuid::from_u128(2), OrderState::Ready)
        );
        // The ids records already carry: the order id's bytes, then the symbol.
        let order = Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
        for state in STATES {
            let mut name = order.as_bytes().to_vec();
            name.extend_from_slice(state_name(state).as_bytes());
            assert_eq!(
                status_id(order, state),
                Uuid::new_v5(&STATUS_NAMESPACE, &name),
                "{state:?}"
            );
        }
    }

    #[test]
    fn steps_follow_each_other_and_say_why_not() {
        assert!(
            StaffStep::StartPicking
                .check(OrderState::PicklistCreated)
                .is_ok()
        );
        let error = StaffStep::Ready
            .check(OrderState::PickingStarted)
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "cannot mark the order READY: it is PICKING_STARTED, and READY can only follow PICKED"
        );
        assert!(StaffStep::Picked.check(OrderState::Picked).is_err());
    }

    #[test]
    fn picked_defaults_to_the_plan_and_validates_reports() {
        let default = picked_status(&pick_list(), None, 9).unwrap();
        assert_eq!(default.actor, "staff:Ana");
        assert_eq!(default.lines[1].quantity_picked, 1);
        assert_eq!(default.lines[1].quantity_short, 1);
        assert_eq!(default.note.as_deref(), Some("B short 1"));
        let report = |a, b| {
            vec![
                PickedLine {
                    sku: "A".into(),
                    quantity_picked: a,
                },
                PickedLine {
                    sku: "B".into(),
                    quantity_picked: b,
                },
            ]
        };
        let full = picked_status(&pick_list(), Some(&report(3, 2)), 9).unwrap();
        assert_eq!(full.note, None);
        assert!(full.lines.iter().all(|l| l.quantity_short == 0));
        for bad in [report(4, 0), report(-1, 0)] {
            let error = picked_status(&pick_list(), Some(&bad), 9).unwrap_err();
            assert!(error.to_string().contains("outside 0 to 3"), "{error}");
        }
        let error = picked_status(&pick_list(), Some(&report(1, 1)[..1]), 9).unwrap_err();
        assert!(error.to_string().contains("2 lines"), "{error}");
    }
}
