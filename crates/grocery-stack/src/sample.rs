//! Sample grocery records for the tests and demos: small, valid, deterministic.

use grocery_events::{Order, OrderLine, PickLine, PickList, StockStatus};
use uuid::Uuid;

/// The sample product: one carton of milk, 3.49 USD.
const MILK_SKU: &str = "PRD-00001";
const MILK_PRICE_CENTS: i64 = 349;

/// An order of `quantity` cartons of milk, placed at time 0.
pub fn milk_order(order_id: Uuid, customer_id: Uuid, quantity: i32) -> Order {
    Order {
        order_id,
        customer_id,
        items: vec![OrderLine {
            sku: MILK_SKU.into(),
            name: "Milk".into(),
            quantity,
            unit_price_cents: MILK_PRICE_CENTS,
        }],
        order_total_cents: i64::from(quantity) * MILK_PRICE_CENTS,
        currency: "USD".into(),
        order_time: 0,
        substitution: None,
        delivery_window: None,
    }
}

/// The pick list of `order`: every line in stock in aisle C01, for picker Ana; its id is
/// derived from the order id (UUID v5), so the same order always gives the same pick list.
pub fn pick_list_for(order: &Order) -> PickList {
    PickList {
        picklist_id: Uuid::new_v5(&Uuid::NAMESPACE_OID, order.order_id.as_bytes()),
        order_id: order.order_id,
        items_to_pick: order
            .items
            .iter()
            .zip(1..)
            .map(|(line, walk_sequence)| PickLine {
                sku: line.sku.clone(),
                name: line.name.clone(),
                quantity: line.quantity,
                quantity_to_pick: line.quantity,
                aisle: "C01 Dairy".into(),
                walk_sequence,
                stock_status: StockStatus::InStock,
                note: None,
            })
            .collect(),
        assigned_picker: "Ana".into(),
        created_time: 0,
        delivery_window: None,
    }
}
