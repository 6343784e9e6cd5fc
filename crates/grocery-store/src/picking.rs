//! Turning an order into its pick list.
//!
//! [`PickListBuilder::build`] is a pure function of the order, the catalog snapshot, the roster
//! and the creation time, so the fulfillment service can process an order twice (after a crash,
//! a rebalance, a redelivery) and publish the very same pick list:
//! - the pick list id is [`picklist_id`], a UUIDv5 of the order id;
//! - the picker comes from [`PickerRoster::assign`], a hash of the order id;
//! - the stock check reads the catalog's stock levels as a **snapshot and never decrements
//!   them** across orders. Decrementing would make the result depend on which orders were
//!   processed before, so a reprocessed order could come out SHORT the second time because it
//!   had "used up" its own stock the first time. Reserving stock belongs to an inventory
//!   service with its own transactional state, not to this function. Within one order, lines
//!   repeating a SKU do share that SKU's stock, in walking order.
//!
//! The pick list carries the order's delivery window (version 2 of the pick-list schema), so
//! the store screen can put the lists whose slot starts first at the top; orders without one
//! (every order written before version 2 of the order schema) give a pick list without one.
//!
//! A SHORT or OUT_OF_STOCK line's note ends with the customer's substitution preference
//! ([`substitution_advice`]), so the picker knows on the spot whether to take a substitute;
//! orders that state none (every order written before version 2 of the order schema) get the
//! note as before.
//!
//! Every order line appears on the pick list, sorted in walking order: aisle walk rank, then
//! shelf location, then SKU, then the line's position in the order. Lines whose SKU is not in
//! the catalog come last with status UNKNOWN_SKU, aisle [`UNKNOWN_AISLE`] and nothing to pick.

use grocery_events::{
    Order, OrderState, OrderStatus, PickLine, PickList, PickListDeliveryWindow, StatusLine,
    StockStatus, SubstitutionPreference,
};
use uuid::Uuid;

use crate::catalog::{Catalog, CatalogItem};
use crate::roster::PickerRoster;

/// Namespace of pick list ids: fixed for this project, never change it (every pick list id
/// already published would change with it).
pub const PICKLIST_NAMESPACE: Uuid = uuid::uuid!("b7c1d2e4-5f60-4a8b-9c0d-1e2f3a4b5c6d");

/// Aisle shown for lines whose SKU the catalog does not know.
pub const UNKNOWN_AISLE: &str = "?? Not in catalog";

/// The id of the pick list for `order_id`: UUIDv5 of the order id's 16 bytes in
/// [`PICKLIST_NAMESPACE`].
pub fn picklist_id(order_id: Uuid) -> Uuid {
    crate::lifecycle::uuid_v5(&PICKLIST_NAMESPACE, order_id.as_bytes())
}

/// Outcome of checking one line against the stock on hand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockCheck {
    /// The line's status.
    pub status: StockStatus,
    /// Units the picker should take, 0 to `quantity`.
    pub quantity_to_pick: i32,
    /// Why the line cannot be picked in full; `None` when it can.
    pub note: Option<String>,
}

/// Checks a request for `quantity` units against `available` units on hand (`None` when the
/// SKU is unknown).
///
/// A quantity below 1 (which valid orders never have) is picked as 0 units, IN_STOCK, with a
/// note, so the line stays visible to staff rather than failing the whole pick list.
pub fn check_stock(available: Option<u32>, quantity: i32) -> StockCheck {
    let Some(available) = available else {
        return StockCheck {
            status: StockStatus::UnknownSku,
            quantity_to_pick: 0,
            note: Some("SKU not in the store catalog; ask the service desk".to_owned()),
        };
    };
    if quantity < 1 {
        return StockCheck {
            status: StockStatus::InStock,
            quantity_to_pick: 0,
            note: Some(format!(
                "ordered quantity {quantity} is not positive; nothing to pick"
            )),
        };
    }
    let available_i32 = i32::try_from(available).unwrap_or(i32::MAX);
    if available_i32 >= quantity {
        StockCheck {
            status: StockStatus::InStock,
            quantity_to_pick: quantity,
            note: None,
        }
    } else if available == 0 {
        StockCheck {
            status: StockStatus::OutOfStock,
            quantity_to_pick: 0,
            note: Some(format!("none in stock; 0 of {quantity} can be picked")),
        }
    } else {
        StockCheck {
            status: StockStatus::Short,
            quantity_to_pick: available_i32,
            note: Some(format!("only {available} in stock of {quantity} ordered")),
        }
    }
}

/// What a picker may do about a short line, as the note of the line says it.
pub fn substitution_advice(preference: SubstitutionPreference) -> &'static str {
    match preference {
        SubstitutionPreference::NoSubstitutes => "no substitutes",
        SubstitutionPreference::SameBrand => "substitute: same brand ok",
        SubstitutionPreference::AnyBrand => "substitute: any brand ok",
    }
}

/// `check`'s note with the customer's substitution preference appended when the line is short
/// or out of stock and the order states one.
fn with_substitution(
    mut check: StockCheck,
    preference: Option<SubstitutionPreference>,
) -> StockCheck {
    if let (StockStatus::Short | StockStatus::OutOfStock, Some(preference), Some(note)) =
        (check.status, preference, check.note.as_mut())
    {
        note.push_str("; ");
        note.push_str(substitution_advice(preference));
    }
    check
}

/// An order line as the walk sorts it: walk rank, shelf location, SKU, position in the order,
/// and its catalog item (`None`: not in the catalog).
type SortedLine<'a> = (u32, &'a str, &'a str, usize, Option<&'a CatalogItem>);

/// Builds pick lists from orders against one catalog snapshot and picker roster.
#[derive(Debug, Clone)]
pub struct PickListBuilder<'a> {
    catalog: &'a Catalog,
    roster: PickerRoster,
}

impl<'a> PickListBuilder<'a> {
    /// A builder checking stock against `catalog` and assigning pickers from `roster`.
    pub fn new(catalog: &'a Catalog, roster: PickerRoster) -> Self {
        PickListBuilder { catalog, roster }
    }

    /// The roster pickers are assigned from.
    pub fn roster(&self) -> &PickerRoster {
        &self.roster
    }

    /// The one pick list for `order`, created at `created_time_millis`.
    pub fn build(&self, order: &Order, created_time_millis: i64) -> PickList {
        // Sort keys: (walk rank, location, sku, original position), each line's catalog item
        // looked up once; unknown SKUs last.
        let mut lines: Vec<SortedLine<'_>> = order
            .items
            .iter()
            .enumerate()
            .map(|(position, line)| {
                let item = self.catalog.get(&line.sku);
                let (rank, location) =
                    item.map_or((u32::MAX, ""), |i| (i.walk_rank, i.location.as_str()));
                (rank, location, line.sku.as_str(), position, item)
            })
            .collect();
        lines.sort_unstable_by(|a, b| (a.0, a.1, a.2, a.3).cmp(&(b.0, b.1, b.2, b.3)));

        // Stock left of the SKU being walked, within this order only (see the module docs):
        // the lines of one SKU are adjacent once sorted (same item, so same rank and location).
        let mut left: Option<(&str, u32)> = None;
        let items_to_pick = lines
            .into_iter()
            .enumerate()
            .map(|(index, (_, _, sku, position, item))| {
                let line = &order.items[position];
                let available = item.map(|i| match left {
                    Some((walked, stock)) if walked == sku => stock,
                    _ => i.stock,
                });
                let check =
                    with_substitution(check_stock(available, line.quantity), order.substitution);
                if let Some(available) = available {
                    let picked = u32::try_from(check.quantity_to_pick).unwrap_or(0);
                    left = Some((sku, available.saturating_sub(picked)));
                }
                PickLine {
                    sku: line.sku.clone(),
                    name: item.map_or_else(|| line.name.clone(), |i| i.name.clone()),
                    quantity: line.quantity,
                    quantity_to_pick: check.quantity_to_pick,
                    aisle: item.map_or_else(|| UNKNOWN_AISLE.to_owned(), |i| i.aisle.clone()),
                    walk_sequence: i32::try_from(index + 1).unwrap_or(i32::MAX),
                    stock_status: check.status,
                    note: check.note,
                }
            })
            .collect();

        PickList {
            picklist_id: picklist_id(order.order_id),
            order_id: order.order_id,
            items_to_pick,
            assigned_picker: self.roster.assign(order.order_id).to_owned(),
            created_time: created_time_millis,
            delivery_window: order
                .delivery_window
                .as_ref()
                .map(|window| PickListDeliveryWindow {
                    start_time: window.start_time,
                    end_time: window.end_time,
                }),
        }
    }
}

/// The two states the fulfillment service writes with `pick_list`, the pick list of `order`:
/// RECEIVED at `received_time_millis`, and PICKLIST_CREATED at the pick list's creation time
/// with its id and, per line in walking order, the stock check's plan (`quantity_picked` =
/// `quantity_to_pick`, `quantity_short` = the rest) and a note naming the lines that are
/// short. Actor: [`FULFILLMENT_ACTOR`](crate::lifecycle::FULFILLMENT_ACTOR). Their ids are
/// [`status_id`](crate::lifecycle::status_id)s, so processing an order again yields the same
/// ids.
pub fn fulfillment_statuses(
    order: &Order,
    pick_list: &PickList,
    received_time_millis: i64,
) -> [OrderStatus; 2] {
    use crate::lifecycle::{FULFILLMENT_ACTOR, status};
    let received = status(
        order.order_id,
        OrderState::Received,
        received_time_millis,
        FULFILLMENT_ACTOR,
    );
    let mut created = status(
        order.order_id,
        OrderState::PicklistCreated,
        pick_list.created_time,
        FULFILLMENT_ACTOR,
    );
    created.picklist_id = Some(pick_list.picklist_id);
    let mut notes = Vec::new();
    created.lines = pick_list
        .items_to_pick
        .iter()
        .map(|line| {
            let quantity_short = (line.quantity - line.quantity_to_pick).max(0);
            if quantity_short > 0 {
                let why = line.note.as_deref().unwrap_or("short");
                notes.push(format!("{}: {why}", line.sku));
            }
            StatusLine {
                sku: line.sku.clone(),
                quantity: line.quantity,
                quantity_picked: line.quantity_to_pick,
                quantity_short,
            }
        })
        .collect();
    created.note = (!notes.is_empty()).then(|| notes.join("; "));
    [received, created]
}
