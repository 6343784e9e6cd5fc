//! Property tests: invariants that hold for any order, request or seed.

use std::collections::BTreeMap;

use grocery_events::{Order, OrderLine, StockStatus};
use grocery_store::{
    Catalog, OrderRequest, OrderRequestItem, OrderSimulator, PickListBuilder, PickerRoster,
    order_total_cents, picklist_id, validate_order_request,
};
use proptest::prelude::*;
use uuid::Uuid;

fn catalog() -> &'static Catalog {
    static CATALOG: std::sync::OnceLock<Catalog> = std::sync::OnceLock::new();
    CATALOG.get_or_init(Catalog::builtin)
}

/// A SKU: usually from the built-in catalog, sometimes one the store does not sell.
fn sku() -> impl Strategy<Value = String> {
    prop_oneof![
        9 => (0..catalog().len()).prop_map(|i| catalog().items()[i].sku.clone()),
        1 => "[A-Z]{3}-[0-9]{2}".prop_map(|s| s),
    ]
}

/// Any order, including repeated SKUs and unknown ones.
fn any_order() -> impl Strategy<Value = Order> {
    (
        any::<u128>(),
        prop::collection::vec((sku(), 1..=1_000i32), 0..30),
    )
        .prop_map(|(id, lines)| {
            let items: Vec<OrderLine> = lines
                .into_iter()
                .map(|(sku, quantity)| OrderLine {
                    name: format!("ordered {sku}"),
                    sku,
                    quantity,
                    unit_price_cents: 100,
                })
                .collect();
            Order {
                order_id: Uuid::from_u128(id),
                customer_id: Uuid::nil(),
                order_total_cents: order_total_cents(&items),
                items,
                currency: "USD".into(),
                order_time: 0,
                substitution: None,
                delivery_window: None,
            }
        })
}

/// (sku, quantity) counts of a list of lines, as a multiset.
fn multiset<'a>(lines: impl Iterator<Item = (&'a str, i32)>) -> BTreeMap<(&'a str, i32), usize> {
    let mut counts = BTreeMap::new();
    for line in lines {
        *counts.entry(line).or_default() += 1;
    }
    counts
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn pick_list_has_exactly_the_orders_lines(order in any_order()) {
        let pick_list = PickListBuilder::new(catalog(), PickerRoster::default()).build(&order, 5);
        let ordered = multiset(order.items.iter().map(|l| (l.sku.as_str(), l.quantity)));
        let picked = multiset(pick_list.items_to_pick.iter().map(|l| (l.sku.as_str(), l.quantity)));
        prop_assert_eq!(ordered, picked);
        prop_assert_eq!(pick_list.picklist_id, picklist_id(order.order_id));
        prop_assert_eq!(pick_list.order_id, order.order_id);
    }

    #[test]
    fn pick_lines_are_walk_sorted_and_consistent(order in any_order()) {
        let pick_list = PickListBuilder::new(catalog(), PickerRoster::default()).build(&order, 5);
        let keys: Vec<(u32, String, String)> = pick_list
            .items_to_pick
            .iter()
            .map(|l| match catalog().get(&l.sku) {
                Some(i) => (i.walk_rank, i.location.clone(), l.sku.clone()),
                None => (u32::MAX, String::new(), l.sku.clone()),
            })
            .collect();
        prop_assert!(keys.windows(2).all(|w| w[0] <= w[1]), "not in walking order: {:?}", keys);
        for (i, line) in pick_list.items_to_pick.iter().enumerate() {
            prop_assert_eq!(line.walk_sequence as usize, i + 1);
            prop_assert!((0..=line.quantity).contains(&line.quantity_to_pick));
            match line.stock_status {
                StockStatus::InStock => {
                    prop_assert_eq!(line.quantity_to_pick, line.quantity);
                    prop_assert!(line.note.is_none());
                }
                StockStatus::Short => prop_assert!(line.quantity_to_pick > 0 && line.quantity_to_pick < line.quantity),
                StockStatus::OutOfStock | StockStatus::UnknownSku => prop_assert_eq!(line.quantity_to_pick, 0),
            }
            prop_assert_eq!(line.stock_status == StockStatus::UnknownSku, catalog().get(&line.sku).is_none());
        }
        // Never pick more of a SKU than the shelf holds, even over repeated lines.
        let mut picked: BTreeMap<&str, i64> = BTreeMap::new();
        for line in &pick_list.items_to_pick {
            *picked.entry(line.sku.as_str()).or_default() += i64::from(line.quantity_to_pick);
        }
        for (sku, total) in picked {
            if let Some(item) = catalog().get(sku) {
                prop_assert!(total <= i64::from(item.stock), "{} picked {} of {}", sku, total, item.stock);
            }
        }
    }

    #[test]
    fn result_ignores_line_order_and_time_except_created(order in any_order(), time in any::<i64>()) {
        let builder = PickListBuilder::new(catalog(), PickerRoster::default());
        let mut shuffled = order.clone();
        shuffled.items.reverse();
        let a = builder.build(&order, 1);
        let b = builder.build(&shuffled, time);
        prop_assert_eq!(&a.assigned_picker, &b.assigned_picker);
        prop_assert_eq!(b.created_time, time);
        // Same walk; repeated SKUs may swap which line gets the short stock.
        let skus = |p: &grocery_events::PickList| p.items_to_pick.iter().map(|l| l.sku.clone()).collect::<Vec<_>>();
        prop_assert_eq!(skus(&a), skus(&b));
    }

    #[test]
    fn valid_requests_merge_and_total_exactly(
        lines in prop::collection::vec((0..40usize, 1..=50i64), 1..25),
        customer in any::<Option<u128>>(),
    ) {
        let request = OrderRequest {
            customer_id: customer.map(Uuid::from_u128),
            items: lines
                .iter()
                .map(|&(i, quantity)| OrderRequestItem { sku: catalog().items()[i].sku.clone(), quantity })
                .collect(),
            substitution: None,
            delivery_window: None,
        };
        let order = validate_order_request(&request, catalog(), Uuid::from_u128(1), 2).unwrap();
        let mut wanted: BTreeMap<&str, i64> = BTreeMap::new();
        for item in &request.items {
            *wanted.entry(item.sku.as_str()).or_default() += item.quantity;
        }
        let got: BTreeMap<&str, i64> =
            order.items.iter().map(|l| (l.sku.as_str(), i64::from(l.quantity))).collect();
        prop_assert_eq!(got.len(), order.items.len(), "one line per SKU");
        prop_assert_eq!(&got, &wanted);
        let total: i64 = order
            .items
            .iter()
            .map(|l| i64::from(l.quantity) * catalog().get(&l.sku).unwrap().unit_price_cents)
            .sum();
        prop_assert_eq!(order.order_total_cents, total);
    }

    #[test]
    fn any_bad_line_is_rejected_naming_its_line(
        good in 0..10usize,
        bad_quantity in prop_oneof![i64::MIN..=0, 1_001..=i64::MAX],
    ) {
        let mut items: Vec<OrderRequestItem> = (0..good)
            .map(|i| OrderRequestItem { sku: catalog().items()[i].sku.clone(), quantity: 1 })
            .collect();
        items.push(OrderRequestItem { sku: "PRD-01001".into(), quantity: bad_quantity });
        let request = OrderRequest { customer_id: None, items, substitution: None, delivery_window: None };
        let err = validate_order_request(&request, catalog(), Uuid::nil(), 0).unwrap_err();
        let line_label = format!("line {}", good + 1);
        prop_assert!(err.to_string().starts_with(&line_label), "{}", err);
    }

    #[test]
    fn simulated_orders_hold_their_invariants(seed in any::<u64>()) {
        let orders = OrderSimulator::new(seed, catalog()).take_orders(20, 1_000, 10);
        prop_assert_eq!(&orders, &OrderSimulator::new(seed, catalog()).take_orders(20, 1_000, 10));
        for order in &orders {
            prop_assert!((1..=15).contains(&order.items.len()));
            prop_assert!(order.items.iter().all(|l| (1..=6).contains(&l.quantity)));
            prop_assert_eq!(order.order_total_cents, order_total_cents(&order.items));
        }
    }
}
