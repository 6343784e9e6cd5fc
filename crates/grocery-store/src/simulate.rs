//! Simulated customers placing grocery orders, reproducibly.
//!
//! [`OrderSimulator`] draws everything — customer ids, order ids, items, quantities — from one
//! ChaCha8 generator seeded by the caller, so the same seed and catalog always give the same
//! sequence of orders. Times are passed in by the caller, never read from a clock.
//!
//! What makes the orders look real:
//! - a fixed pool of customers (250 by default), each with a handful of "usual" items that
//!   make up about 40% of their lines, so customers reorder the same things;
//! - item popularity by category (fruit, vegetables, milk and eggs far more often than pet
//!   food or pharmacy), and within that, cheaper items more often than dear ones;
//! - 1–15 distinct lines per order, most often 6–10 (a triangular distribution);
//! - quantities 1–6, skewed small: about half the lines are 1 unit, 3% are 6.
//!
//! Out-of-stock items can still be ordered (customers do not see stock), which is what gives
//! the pick lists their SHORT and OUT_OF_STOCK lines.
//!
//! The fields of version 2 of the order schema come from a second stream of the same seed, so
//! adding them left the orders of every seed as they were (same ids, lines and quantities):
//! - each customer has a standing substitution preference (none stated 20%, no substitutes
//!   20%, same brand 35%, any brand 25%);
//! - three orders in four choose a delivery window: a one- or two-hour slot starting on a full
//!   hour, one to four hours after the hour the order was placed in.

use grocery_events::{DeliveryWindow, Order, OrderLine, SubstitutionPreference};
use rand::distr::Distribution;
use rand::distr::weighted::WeightedIndex;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use uuid::Uuid;

use crate::catalog::{Catalog, CatalogItem};

/// Number of simulated customers unless [`OrderSimulator::with_customers`] says otherwise.
pub const DEFAULT_CUSTOMER_POOL: usize = 250;
/// Most lines a simulated order has (fewer when the catalog is smaller).
pub const MAX_SIMULATED_LINES: usize = 15;
/// Most units of one item on a simulated line.
pub const MAX_SIMULATED_QUANTITY: i32 = 6;
/// Relative weights of quantities 1, 2, ..., 6.
const QUANTITY_WEIGHTS: [u32; 6] = [50, 24, 12, 7, 4, 3];
/// Percentage of lines drawn from the customer's usual items.
const USUAL_ITEM_PERCENT: u32 = 40;
/// Percentage of orders that choose a delivery window.
const DELIVERY_WINDOW_PERCENT: u32 = 75;
/// One hour in milliseconds.
const HOUR_MILLIS: i64 = 3_600_000;
/// The stream of the seeded generator the version-2 fields are drawn from (stream 0 draws
/// everything else).
const PREFERENCES_STREAM: u64 = 1;

/// A simulated customer: an id and the items they usually buy (indices into the catalog).
#[derive(Debug, Clone)]
struct Customer {
    id: Uuid,
    usual_items: Vec<usize>,
    substitution: Option<SubstitutionPreference>,
}

/// Produces realistic [`Order`]s from a catalog, deterministically from a seed.
#[derive(Debug, Clone)]
pub struct OrderSimulator<'a> {
    catalog: &'a Catalog,
    rng: ChaCha8Rng,
    /// Draws the version-2 fields, apart from `rng` so they leave its sequence alone.
    preferences: ChaCha8Rng,
    customers: Vec<Customer>,
    popularity: WeightedIndex<u32>,
    quantities: WeightedIndex<u32>,
}

impl<'a> OrderSimulator<'a> {
    /// A simulator with [`DEFAULT_CUSTOMER_POOL`] customers.
    pub fn new(seed: u64, catalog: &'a Catalog) -> Self {
        Self::with_customers(seed, catalog, DEFAULT_CUSTOMER_POOL)
    }

    /// A simulator with `pool_size` customers (at least 1).
    ///
    /// # Panics
    /// If the catalog is empty (a loaded [`Catalog`] never is).
    pub fn with_customers(seed: u64, catalog: &'a Catalog, pool_size: usize) -> Self {
        assert!(
            !catalog.is_empty(),
            "cannot simulate orders from an empty catalog"
        );
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut preferences = ChaCha8Rng::seed_from_u64(seed);
        preferences.set_stream(PREFERENCES_STREAM);
        let weights: Vec<u32> = catalog.items().iter().map(popularity).collect();
        let popularity = WeightedIndex::new(weights).expect("popularity weights are positive");
        let quantities = WeightedIndex::new(QUANTITY_WEIGHTS).expect("constant weights");
        let customers = (0..pool_size.max(1))
            .map(|_| {
                let id = random_uuid(&mut rng);
                let count = rng.random_range(4..=12);
                let usual_items = (0..count).map(|_| popularity.sample(&mut rng)).collect();
                let substitution = substitution_preference(&mut preferences);
                Customer {
                    id,
                    usual_items,
                    substitution,
                }
            })
            .collect();
        OrderSimulator {
            catalog,
            rng,
            preferences,
            customers,
            popularity,
            quantities,
        }
    }

    /// The ids of the simulated customers, in pool order.
    pub fn customer_ids(&self) -> impl Iterator<Item = Uuid> + '_ {
        self.customers.iter().map(|c| c.id)
    }

    /// The next simulated order, placed at `order_time_millis` (milliseconds since the epoch).
    pub fn next_order(&mut self, order_time_millis: i64) -> Order {
        let customer = self.rng.random_range(0..self.customers.len());
        let order_id = random_uuid(&mut self.rng);
        let max_lines = MAX_SIMULATED_LINES.min(self.catalog.len());
        // Sum of two uniform draws: triangular over 1..=15, peaking at 8.
        let wanted = self.rng.random_range(1..=8) + self.rng.random_range(0..=7);
        let line_count = wanted.min(max_lines);

        let mut chosen: Vec<usize> = Vec::with_capacity(line_count);
        while chosen.len() < line_count {
            let index = self.pick_item(customer, &chosen);
            chosen.push(index);
        }
        let items: Vec<OrderLine> = chosen
            .into_iter()
            .map(|index| {
                let item = &self.catalog.items()[index];
                let quantity = self.quantities.sample(&mut self.rng) as i32 + 1;
                OrderLine {
                    sku: item.sku.clone(),
                    name: item.name.clone(),
                    quantity,
                    unit_price_cents: item.unit_price_cents,
                }
            })
            .collect();
        Order {
            order_id,
            customer_id: self.customers[customer].id,
            order_total_cents: order_total_cents(&items),
            items,
            currency: "USD".to_owned(),
            order_time: order_time_millis,
            substitution: self.customers[customer].substitution,
            delivery_window: self.delivery_window(order_time_millis),
        }
    }

    /// A delivery window for an order placed at `order_time_millis`, or none (see the module
    /// docs).
    fn delivery_window(&mut self, order_time_millis: i64) -> Option<DeliveryWindow> {
        if self.preferences.random_range(0..100) >= DELIVERY_WINDOW_PERCENT {
            return None;
        }
        let hours_ahead: i64 = self.preferences.random_range(1..=4);
        let length_hours: i64 = self.preferences.random_range(1..=2);
        let start_time = order_time_millis
            .div_euclid(HOUR_MILLIS)
            .saturating_add(hours_ahead)
            .saturating_mul(HOUR_MILLIS);
        Some(DeliveryWindow {
            start_time,
            end_time: start_time.saturating_add(length_hours * HOUR_MILLIS),
        })
    }

    /// `count` orders, the first at `start_millis` and each `interval_millis` after the last.
    pub fn take_orders(
        &mut self,
        count: usize,
        start_millis: i64,
        interval_millis: i64,
    ) -> Vec<Order> {
        (0..count)
            .map(|i| self.next_order(start_millis + interval_millis * i as i64))
            .collect()
    }

    /// A catalog index not yet in `chosen`: one of the customer's usual items or a popular one.
    fn pick_item(&mut self, customer: usize, chosen: &[usize]) -> usize {
        for _ in 0..32 {
            let index = if self.rng.random_range(0..100) < USUAL_ITEM_PERCENT {
                let usual = &self.customers[customer].usual_items;
                usual[self.rng.random_range(0..usual.len())]
            } else {
                self.popularity.sample(&mut self.rng)
            };
            if !chosen.contains(&index) {
                return index;
            }
        }
        // Unlucky streak (or a tiny catalog): take the first unused item from a random start.
        let len = self.catalog.len();
        let start = self.rng.random_range(0..len);
        (0..len)
            .map(|offset| (start + offset) % len)
            .find(|index| !chosen.contains(index))
            .expect("fewer lines than catalog items")
    }
}

/// Sum of quantity × unit price over the lines, in cents.
///
/// # Panics
/// On overflow of `i64`, which needs totals beyond 92 quadrillion dollars.
pub fn order_total_cents(lines: &[OrderLine]) -> i64 {
    lines
        .iter()
        .map(|l| i64::from(l.quantity).checked_mul(l.unit_price_cents))
        .try_fold(0i64, |total, line| total.checked_add(line?))
        .expect("order total overflows i64 cents")
}

/// A customer's standing substitution preference (see the module docs).
fn substitution_preference(rng: &mut ChaCha8Rng) -> Option<SubstitutionPreference> {
    match rng.random_range(0..100) {
        0..20 => None,
        20..40 => Some(SubstitutionPreference::NoSubstitutes),
        40..75 => Some(SubstitutionPreference::SameBrand),
        _ => Some(SubstitutionPreference::AnyBrand),
    }
}

/// A version-4-shaped UUID whose random bits come from the seeded generator.
fn random_uuid(rng: &mut ChaCha8Rng) -> Uuid {
    uuid::Builder::from_random_bytes(rng.random()).into_uuid()
}

/// How often an item is bought relative to others: a category factor times a price factor.
fn popularity(item: &CatalogItem) -> u32 {
    let category: u32 = match item.category.as_str() {
        "Fruit" | "Vegetables" => 12,
        "Milk & Cream" | "Eggs & Butter" => 10,
        "Bakery" | "Cheese" | "Yogurt & Cultured" | "Meat" => 7,
        "Deli" | "Cereal" | "Snacks & Nuts" | "Chips" | "Water & Soda" | "Refrigerated" => 5,
        "Pharmacy" | "Baby" | "Pet" | "Personal Care" | "Laundry & Cleaning" => 1,
        _ => 3,
    };
    // Cheaper items sell in greater numbers: $1 items about 3x as often as $10 ones.
    let price: u32 = match item.unit_price_cents {
        ..=199 => 6,
        200..=499 => 4,
        500..=999 => 3,
        _ => 2,
    };
    category * price
}
