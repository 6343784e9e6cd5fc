//! Tests of Order API request validation.

use grocery_events::{DeliveryWindow, SubstitutionPreference};
use grocery_store::request::{MAX_LINES, MAX_QUANTITY};
use grocery_store::{
    Catalog, OrderRejection, OrderRequest, OrderRequestItem, guest_customer_id,
    validate_order_request,
};
use uuid::Uuid;

const ORDER_ID: Uuid = Uuid::from_u128(0x1111_2222_3333_4444_8555_6666_7777_8888);
const CUSTOMER: Uuid = Uuid::from_u128(0xc0ffee);
const T: i64 = 1_735_732_800_000;

fn request(items: &[(&str, i64)]) -> OrderRequest {
    OrderRequest {
        customer_id: Some(CUSTOMER),
        items: items
            .iter()
            .map(|&(sku, quantity)| OrderRequestItem {
                sku: sku.to_owned(),
                quantity,
            })
            .collect(),
        substitution: None,
        delivery_window: None,
    }
}

fn validate(items: &[(&str, i64)]) -> Result<grocery_events::Order, OrderRejection> {
    validate_order_request(&request(items), &Catalog::builtin(), ORDER_ID, T)
}

#[test]
fn valid_request_becomes_an_order_priced_from_the_catalog() {
    let order = validate(&[("PRD-01001", 3), ("PRD-18001", 2)]).unwrap();
    assert_eq!(order.order_id, ORDER_ID);
    assert_eq!(order.customer_id, CUSTOMER);
    assert_eq!(order.order_time, T);
    assert_eq!(order.currency, "USD");
    assert_eq!(order.items.len(), 2);
    assert_eq!(order.items[0].name, "Bananas (per lb)");
    assert_eq!(order.items[0].unit_price_cents, 59);
    assert_eq!(order.items[1].name, "Whole Milk 1 gal");
    assert_eq!(order.items[1].unit_price_cents, 399);
    assert_eq!(order.order_total_cents, 3 * 59 + 2 * 399);
}

#[test]
fn out_of_stock_items_can_still_be_ordered() {
    // Stock is the fulfillment side's business; the API takes the order.
    assert!(validate(&[("PRD-17008", 1)]).is_ok());
}

#[test]
fn json_request_deserializes() {
    let json = r#"{"customer_id":"00000000-0000-0000-0000-000000c0ffee",
                   "items":[{"sku":"PRD-01001","quantity":2}]}"#;
    let req: OrderRequest = serde_json::from_str(json).unwrap();
    assert_eq!(req, request(&[("PRD-01001", 2)]));
    let guest: OrderRequest = serde_json::from_str(r#"{"items":[]}"#).unwrap();
    assert_eq!(guest.customer_id, None);
}

#[test]
fn no_items_is_rejected() {
    let err = validate(&[]).unwrap_err();
    assert_eq!(err, OrderRejection::NoItems);
    assert_eq!(err.code(), "no_items");
    assert_eq!(err.to_string(), "the order has no items");
}

#[test]
fn too_many_lines_is_rejected() {
    let lines: Vec<(&str, i64)> = vec![("PRD-01001", 1); MAX_LINES + 1];
    let err = validate(&lines).unwrap_err();
    assert_eq!(
        err,
        OrderRejection::TooManyLines {
            count: MAX_LINES + 1,
            max: MAX_LINES
        }
    );
}

#[test]
fn unknown_sku_is_named() {
    let err = validate(&[("PRD-01001", 1), ("PRD-99999", 2)]).unwrap_err();
    assert_eq!(
        err,
        OrderRejection::UnknownSku {
            line: 2,
            sku: "PRD-99999".into()
        }
    );
    assert_eq!(err.code(), "unknown_sku");
    assert_eq!(err.to_string(), "line 2: unknown SKU \"PRD-99999\"");
}

#[test]
fn blank_sku_is_rejected() {
    let err = validate(&[("   ", 1)]).unwrap_err();
    assert_eq!(err, OrderRejection::EmptySku { line: 1 });
}

#[test]
fn surrounding_whitespace_is_ignored() {
    let order = validate(&[(" PRD-01001 ", 1)]).unwrap();
    assert_eq!(order.items[0].sku, "PRD-01001");
}

#[test]
fn zero_and_negative_quantities_name_the_line() {
    for quantity in [0, -1, i64::MIN] {
        let err =
            validate(&[("PRD-01001", 1), ("PRD-01002", 1), ("PRD-01003", quantity)]).unwrap_err();
        assert_eq!(
            err,
            OrderRejection::NonPositiveQuantity {
                line: 3,
                sku: "PRD-01003".into(),
                quantity
            }
        );
        assert!(
            err.to_string()
                .starts_with("line 3 (PRD-01003): quantity must be at least 1")
        );
    }
}

#[test]
fn huge_quantity_is_rejected() {
    assert!(validate(&[("PRD-01001", MAX_QUANTITY)]).is_ok());
    let err = validate(&[("PRD-01001", MAX_QUANTITY + 1)]).unwrap_err();
    assert_eq!(
        err,
        OrderRejection::QuantityTooLarge {
            line: 1,
            sku: "PRD-01001".into(),
            quantity: 1001,
            max: 1000
        }
    );
    assert_eq!(err.code(), "quantity_too_large");
    assert!(
        err.to_string()
            .contains("1001 is more than the maximum of 1000"),
        "{err}"
    );
}

#[test]
fn quantity_is_checked_before_the_sku_is_looked_up() {
    let err = validate(&[("NOPE", 0)]).unwrap_err();
    assert_eq!(err.code(), "non_positive_quantity");
}

#[test]
fn duplicate_skus_are_merged_at_the_first_position() {
    let order = validate(&[("PRD-01001", 2), ("PRD-18001", 1), ("PRD-01001", 3)]).unwrap();
    let lines: Vec<(&str, i32)> = order
        .items
        .iter()
        .map(|l| (l.sku.as_str(), l.quantity))
        .collect();
    assert_eq!(lines, [("PRD-01001", 5), ("PRD-18001", 1)]);
    assert_eq!(order.order_total_cents, 5 * 59 + 399);
}

#[test]
fn merged_quantity_over_the_limit_names_both_lines() {
    let err = validate(&[("PRD-01001", 600), ("PRD-18001", 1), ("PRD-01001", 500)]).unwrap_err();
    assert_eq!(
        err,
        OrderRejection::MergedQuantityTooLarge {
            first_line: 1,
            line: 3,
            sku: "PRD-01001".into(),
            total: 1100,
            max: 1000
        }
    );
    assert!(
        err.to_string().starts_with("lines 1 and 3 (PRD-01001)"),
        "{err}"
    );
}

#[test]
fn guest_orders_get_a_stable_unique_customer_id() {
    let mut req = request(&[("PRD-01001", 1)]);
    req.customer_id = None;
    let catalog = Catalog::builtin();
    let a = validate_order_request(&req, &catalog, ORDER_ID, T).unwrap();
    let b = validate_order_request(&req, &catalog, ORDER_ID, T).unwrap();
    let other = validate_order_request(&req, &catalog, Uuid::from_u128(9), T).unwrap();
    assert_eq!(a.customer_id, guest_customer_id(ORDER_ID));
    assert_eq!(a.customer_id, b.customer_id);
    assert_ne!(a.customer_id, other.customer_id);
    assert_eq!(a.customer_id.get_version_num(), 5);
}

#[test]
fn every_rejection_has_a_distinct_code() {
    let rejections = [
        OrderRejection::NoItems,
        OrderRejection::TooManyLines { count: 0, max: 0 },
        OrderRejection::EmptySku { line: 1 },
        OrderRejection::UnknownSku {
            line: 1,
            sku: String::new(),
        },
        OrderRejection::NonPositiveQuantity {
            line: 1,
            sku: String::new(),
            quantity: 0,
        },
        OrderRejection::QuantityTooLarge {
            line: 1,
            sku: String::new(),
            quantity: 0,
            max: 0,
        },
        OrderRejection::MergedQuantityTooLarge {
            first_line: 1,
            line: 2,
            sku: String::new(),
            total: 0,
            max: 0,
        },
        OrderRejection::EmptyDeliveryWindow {
            start_time: 0,
            end_time: 0,
        },
    ];
    let codes: std::collections::HashSet<_> = rejections.iter().map(OrderRejection::code).collect();
    assert_eq!(codes.len(), rejections.len());
}

/// The optional fields of version 2 of the order schema come from the JSON as they are, and
/// a request without them (as every client wrote before version 2) still validates.
#[test]
fn substitution_and_delivery_window_pass_through_and_are_optional() {
    let with: OrderRequest = serde_json::from_str(
        r#"{"items": [{"sku": "PRD-01001", "quantity": 1}], "substitution": "SAME_BRAND",
            "delivery_window": {"start_time": 1735736400000, "end_time": 1735740000000}}"#,
    )
    .unwrap();
    let order = validate_order_request(&with, &Catalog::builtin(), ORDER_ID, T).unwrap();
    assert_eq!(order.substitution, Some(SubstitutionPreference::SameBrand));
    assert_eq!(
        order.delivery_window,
        Some(DeliveryWindow {
            start_time: 1_735_736_400_000,
            end_time: 1_735_740_000_000
        })
    );

    let without: OrderRequest =
        serde_json::from_str(r#"{"items": [{"sku": "PRD-01001", "quantity": 1}]}"#).unwrap();
    let order = validate_order_request(&without, &Catalog::builtin(), ORDER_ID, T).unwrap();
    assert_eq!(order.substitution, None);
    assert_eq!(order.delivery_window, None);

    let unknown = serde_json::from_str::<OrderRequest>(
        r#"{"items": [{"sku": "PRD-01001", "quantity": 1}], "substitution": "MAYBE"}"#,
    )
    .unwrap_err();
    assert!(unknown.to_string().contains("MAYBE"), "{unknown}");
}

#[test]
fn a_delivery_window_must_end_after_it_starts() {
    let mut empty = request(&[("PRD-01001", 1)]);
    empty.delivery_window = Some(DeliveryWindow {
        start_time: T,
        end_time: T,
    });
    let err = validate_order_request(&empty, &Catalog::builtin(), ORDER_ID, T).unwrap_err();
    assert_eq!(
        err,
        OrderRejection::EmptyDeliveryWindow {
            start_time: T,
            end_time: T
        }
    );
    assert_eq!(err.code(), "empty_delivery_window");
}
