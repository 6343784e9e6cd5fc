//! Tests of the staff views and the dedup set.

mod common;

use common::{order, small_catalog};
use grocery_events::{PickList, PickListDeliveryWindow};
use grocery_store::view::{format_millis_utc, status_symbol};
use grocery_store::{
    Dedup, PickListBuilder, PickerRoster, picklist_id, render_text, render_text_with_shelves,
    to_json,
};
use uuid::Uuid;

fn sample() -> PickList {
    let catalog = small_catalog();
    let order = order(
        1,
        &[("FRZ-1", 2), ("GONE-9", 1), ("DRY-2", 5), ("PRO-1", 1)],
    );
    PickListBuilder::new(&catalog, PickerRoster::new(["Dana Brooks"]).unwrap())
        .build(&order, 1_735_732_800_000)
}

#[test]
fn text_shows_header_and_lines_in_walking_order() {
    let pick_list = sample();
    let text = render_text(&pick_list);
    let rows: Vec<&str> = text.lines().collect();
    assert!(
        rows[0].contains(&pick_list.picklist_id.to_string()),
        "{text}"
    );
    assert!(rows[0].contains(&pick_list.order_id.to_string()), "{text}");
    assert_eq!(
        rows[1],
        "Picker: Dana Brooks   Created: 2025-01-01 12:00:00 UTC"
    );
    assert_eq!(rows[2], "4 lines, 5 units to pick; 2 lines need attention");
    assert!(rows[3].contains("AISLE") && rows[3].contains("QTY") && rows[3].contains("ITEM"));
    assert_eq!(rows.len(), 8, "{text}");
    let items = &rows[4..];
    assert!(
        items[0].starts_with("  1  P01 Produce") && items[0].ends_with("ok"),
        "{text}"
    );
    assert!(
        items[1].contains("A01 Dry Goods") && items[1].contains("Item DRY-2"),
        "{text}"
    );
    assert!(
        items[1].contains("SHORT (only 2 in stock of 5 ordered)"),
        "{text}"
    );
    assert!(items[2].contains("F01 Frozen"), "{text}");
    assert!(
        items[3].contains("UNKNOWN_SKU") && items[3].contains("Ordered GONE-9"),
        "{text}"
    );
}

/// A pick list with a delivery window (schema version 2) names the slot in its header, and its
/// JSON carries it; one without keeps the header as before (checked above).
#[test]
fn text_and_json_show_the_delivery_window() {
    let mut pick_list = sample();
    pick_list.delivery_window = Some(PickListDeliveryWindow {
        start_time: 1_735_740_000_000,
        end_time: 1_735_747_200_000,
    });
    let text = render_text(&pick_list);
    assert_eq!(
        text.lines().nth(1),
        Some(
            "Picker: Dana Brooks   Created: 2025-01-01 12:00:00 UTC   \
             Deliver: 2025-01-01 14:00:00 UTC to 2025-01-01 16:00:00 UTC"
        ),
        "{text}"
    );
    let json = to_json(&pick_list);
    assert_eq!(json["delivery_window"]["start_time"], 1_735_740_000_000i64);
    assert_eq!(json["delivery_window"]["end_time"], 1_735_747_200_000i64);
    assert_eq!(
        to_json(&sample())["delivery_window"],
        serde_json::Value::Null
    );
}

#[test]
fn text_columns_line_up() {
    let text = render_text(&sample());
    let item_column: Vec<usize> = text
        .lines()
        .skip(3)
        .map(|r| {
            r.find("Item")
                .or(r.find("ITEM"))
                .or(r.find("Ordered"))
                .unwrap()
        })
        .collect();
    assert!(item_column.windows(2).all(|w| w[0] == w[1]), "{text}");
}

#[test]
fn text_with_shelves_adds_locations() {
    let text = render_text_with_shelves(&sample(), &small_catalog());
    assert!(text.contains("SHELF"), "{text}");
    assert!(text.contains("P01-B01-S3"), "{text}");
    let unknown = text.lines().last().unwrap();
    assert!(unknown.contains(" -  "), "{unknown}");
}

#[test]
fn long_names_are_cut() {
    let mut pick_list = sample();
    pick_list.items_to_pick[0].name = "X".repeat(80);
    let text = render_text(&pick_list);
    assert!(text.contains(&format!("{}~", "X".repeat(39))), "{text}");
    assert!(!text.contains(&"X".repeat(41)));
}

#[test]
fn json_has_every_field() {
    let pick_list = sample();
    let json = to_json(&pick_list);
    assert_eq!(json["picklist_id"], pick_list.picklist_id.to_string());
    assert_eq!(json["order_id"], pick_list.order_id.to_string());
    assert_eq!(json["assigned_picker"], "Dana Brooks");
    assert_eq!(json["created_time"], 1_735_732_800_000i64);
    let lines = json["items_to_pick"].as_array().unwrap();
    assert_eq!(lines.len(), 4);
    let short = &lines[1];
    for key in [
        "sku",
        "name",
        "quantity",
        "quantity_to_pick",
        "aisle",
        "walk_sequence",
        "stock_status",
        "note",
    ] {
        assert!(short.get(key).is_some(), "{key} missing from {short}");
    }
    assert_eq!(short["stock_status"], "SHORT");
    assert_eq!(short["quantity_to_pick"], 2);
    assert_eq!(lines[0]["note"], serde_json::Value::Null);
    assert_eq!(lines[3]["stock_status"], "UNKNOWN_SKU");
    let back: PickList = serde_json::from_value(json).unwrap();
    assert_eq!(back, pick_list);
}

#[test]
fn status_symbols_match_the_json_encoding() {
    for line in sample().items_to_pick {
        assert_eq!(
            serde_json::to_value(line.stock_status).unwrap(),
            status_symbol(line.stock_status)
        );
    }
}

#[test]
fn utc_formatting() {
    assert_eq!(format_millis_utc(0), "1970-01-01 00:00:00 UTC");
    assert_eq!(
        format_millis_utc(951_782_400_000),
        "2000-02-29 00:00:00 UTC"
    );
    assert_eq!(
        format_millis_utc(1_709_251_199_999),
        "2024-02-29 23:59:59 UTC"
    );
    assert_eq!(format_millis_utc(-1), "1969-12-31 23:59:59 UTC");
    assert_eq!(
        format_millis_utc(4_102_444_800_000),
        "2100-01-01 00:00:00 UTC"
    );
}

#[test]
fn dedup_reports_new_pick_lists_once() {
    let pick_list = sample();
    let mut dedup = Dedup::new();
    assert!(dedup.is_empty());
    assert!(dedup.observe(&pick_list));
    assert!(!dedup.observe(&pick_list));
    assert!(!dedup.observe(&pick_list.clone()));
    assert!(dedup.contains(pick_list.picklist_id));
    let other = picklist_id(Uuid::from_u128(99));
    assert!(!dedup.contains(other));
    assert!(dedup.insert(other));
    assert_eq!(dedup.len(), 2);
}

#[test]
fn bounded_dedup_forgets_the_oldest() {
    let mut dedup = Dedup::with_limit(3);
    let ids: Vec<Uuid> = (0..5).map(Uuid::from_u128).collect();
    for id in &ids[..3] {
        assert!(dedup.insert(*id));
    }
    assert!(
        !dedup.insert(ids[0]),
        "a repeat does not count as new or refresh the limit"
    );
    assert!(dedup.insert(ids[3]));
    assert_eq!(dedup.len(), 3);
    assert!(!dedup.contains(ids[0]), "oldest forgotten");
    assert!(dedup.contains(ids[1]) && dedup.contains(ids[3]));
    assert!(dedup.insert(ids[0]), "a forgotten id is new again");
}
