//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

use grocery_events::{Order, OrderLine};
use grocery_store::{Catalog, CatalogItem, order_total_cents};
use uuid::Uuid;

/// A catalog item with the given placement and stock.
pub fn item(sku: &str, aisle: &str, walk_rank: u32, location: &str, stock: u32) -> CatalogItem {
    CatalogItem {
        sku: sku.to_owned(),
        name: format!("Item {sku}"),
        category: "Test".to_owned(),
        unit_price_cents: 250,
        aisle: aisle.to_owned(),
        walk_rank,
        location: location.to_owned(),
        stock,
    }
}

/// A small store: three aisles, listed out of walking order on purpose.
pub fn small_catalog() -> Catalog {
    Catalog::from_items(vec![
        item("FRZ-1", "F01 Frozen", 3, "F01-B01-S1", 10),
        item("PRO-2", "P01 Produce", 1, "P01-B02-S1", 10),
        item("PRO-1", "P01 Produce", 1, "P01-B01-S3", 10),
        item("DRY-1", "A01 Dry Goods", 2, "A01-B01-S1", 5),
        item("DRY-2", "A01 Dry Goods", 2, "A01-B01-S1", 2),
        item("DRY-3", "A01 Dry Goods", 2, "A01-B03-S2", 0),
    ])
    .expect("valid test catalog")
}

/// An order of `(sku, quantity)` lines with a fixed id derived from `n`.
pub fn order(n: u128, lines: &[(&str, i32)]) -> Order {
    let items: Vec<OrderLine> = lines
        .iter()
        .map(|&(sku, quantity)| OrderLine {
            sku: sku.to_owned(),
            name: format!("Ordered {sku}"),
            quantity,
            unit_price_cents: 250,
        })
        .collect();
    Order {
        order_id: Uuid::from_u128(0x5eed_0000_0000_4000_8000_0000_0000_0000 | n),
        customer_id: Uuid::from_u128(7),
        order_total_cents: order_total_cents(&items),
        items,
        currency: "USD".to_owned(),
        order_time: 1_700_000_000_000,
        substitution: None,
        delivery_window: None,
    }
}
