//! Validating orders placed through the HTTP Order API.
//!
//! A client sends an [`OrderRequest`] (JSON: `{"customer_id": "...", "items": [{"sku":
//! "PRD-01001", "quantity": 2}]}`, optionally with `"substitution": "SAME_BRAND"` (or
//! `"NO_SUBSTITUTES"`, `"ANY_BRAND"`) and `"delivery_window": {"start_time": <ms>, "end_time":
//! <ms>}`, the optional fields of version 2 of the order schema, passed on as they are);
//! [`validate_order_request`] checks it against the catalog
//! and either builds the [`Order`] to publish or says exactly what is wrong with an
//! [`OrderRejection`]. Names and prices always come from the catalog, never from the request.
//!
//! Rules, checked in this order (the first failure is reported):
//! 1. at least one line ([`OrderRejection::NoItems`]), at most [`MAX_LINES`];
//! 2. for each line, in request order: the SKU is not blank, the quantity is at least 1 and at
//!    most [`MAX_QUANTITY`], the SKU is in the catalog;
//! 3. **duplicate SKUs are merged**: lines naming the same SKU become one order line at the
//!    position of the first, with the quantities added up (clients that send "add one more
//!    banana" as a new line get what they meant). The merged quantity must still be at most
//!    [`MAX_QUANTITY`] ([`OrderRejection::MergedQuantityTooLarge`]);
//! 4. a delivery window, when given, ends after it starts
//!    ([`OrderRejection::EmptyDeliveryWindow`]).
//!
//! Line numbers in rejections count from 1 in the order the request lists them. SKUs are
//! matched exactly after trimming surrounding whitespace.

use grocery_events::{DeliveryWindow, Order, OrderLine, SubstitutionPreference};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::catalog::Catalog;
use crate::simulate::order_total_cents;

/// Most units of one SKU an order may ask for.
pub const MAX_QUANTITY: i64 = 1000;
/// Most lines an order request may have.
pub const MAX_LINES: usize = 200;

/// Namespace for [`guest_customer_id`]: fixed for this project, never change it.
pub const GUEST_CUSTOMER_NAMESPACE: Uuid = uuid::uuid!("3f0e6c2a-51d4-4c8b-a7e9-0b6d9f4e2c17");

/// An order as a client submits it to the Order API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRequest {
    /// The ordering customer; absent for guest checkout (see [`guest_customer_id`]).
    #[serde(default)]
    pub customer_id: Option<Uuid>,
    /// The requested lines.
    pub items: Vec<OrderRequestItem>,
    /// What the customer accepts in place of a short item; absent when not stated.
    #[serde(default)]
    pub substitution: Option<SubstitutionPreference>,
    /// The delivery or pickup slot the customer chose; absent when none.
    #[serde(default)]
    pub delivery_window: Option<DeliveryWindow>,
}

/// One requested line: a SKU and how many units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRequestItem {
    /// SKU of the catalog item.
    pub sku: String,
    /// Units wanted. Signed and wide so that `0`, `-3` or `5000` reach validation and get a
    /// precise rejection instead of a generic JSON error.
    pub quantity: i64,
}

/// Why an order request was refused. `line` fields count from 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderRejection {
    /// The request has no lines.
    #[error("the order has no items")]
    NoItems,
    /// The request has more lines than [`MAX_LINES`].
    #[error("the order has {count} lines; at most {max} are allowed")]
    TooManyLines {
        /// Lines in the request.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A line has an empty SKU.
    #[error("line {line}: the SKU is empty")]
    EmptySku {
        /// The line.
        line: usize,
    },
    /// A line's SKU is not in the catalog.
    #[error("line {line}: unknown SKU {sku:?}")]
    UnknownSku {
        /// The line.
        line: usize,
        /// The SKU as requested.
        sku: String,
    },
    /// A line asks for zero or fewer units.
    #[error("line {line} ({sku}): quantity must be at least 1, got {quantity}")]
    NonPositiveQuantity {
        /// The line.
        line: usize,
        /// The line's SKU.
        sku: String,
        /// The requested quantity.
        quantity: i64,
    },
    /// A line asks for more than [`MAX_QUANTITY`] units.
    #[error("line {line} ({sku}): quantity {quantity} is more than the maximum of {max}")]
    QuantityTooLarge {
        /// The line.
        line: usize,
        /// The line's SKU.
        sku: String,
        /// The requested quantity.
        quantity: i64,
        /// The limit.
        max: i64,
    },
    /// Several lines name the same SKU and together ask for more than [`MAX_QUANTITY`].
    #[error(
        "lines {first_line} and {line} ({sku}): together they ask for {total} units, more than the maximum of {max}"
    )]
    MergedQuantityTooLarge {
        /// The first line naming the SKU.
        first_line: usize,
        /// The line that took the total over the limit.
        line: usize,
        /// The SKU.
        sku: String,
        /// The merged quantity up to and including `line`.
        total: i64,
        /// The limit.
        max: i64,
    },
    /// The delivery window does not end after it starts.
    #[error("the delivery window ends ({end_time}) no later than it starts ({start_time})")]
    EmptyDeliveryWindow {
        /// Start of the window, ms since the epoch.
        start_time: i64,
        /// End of the window, ms since the epoch.
        end_time: i64,
    },
}

impl OrderRejection {
    /// A stable machine-readable code for API responses, e.g. `unknown_sku`.
    pub fn code(&self) -> &'static str {
        match self {
            OrderRejection::NoItems => "no_items",
            OrderRejection::TooManyLines { .. } => "too_many_lines",
            OrderRejection::EmptySku { .. } => "empty_sku",
            OrderRejection::UnknownSku { .. } => "unknown_sku",
            OrderRejection::NonPositiveQuantity { .. } => "non_positive_quantity",
            OrderRejection::QuantityTooLarge { .. } => "quantity_too_large",
            OrderRejection::MergedQuantityTooLarge { .. } => "merged_quantity_too_large",
            OrderRejection::EmptyDeliveryWindow { .. } => "empty_delivery_window",
        }
    }
}

/// The customer id of a guest order: UUIDv5 of the order id in [`GUEST_CUSTOMER_NAMESPACE`], so
/// each guest order has its own stable id that no registered customer can have.
pub fn guest_customer_id(order_id: Uuid) -> Uuid {
    Uuid::new_v5(&GUEST_CUSTOMER_NAMESPACE, order_id.as_bytes())
}

/// Checks `request` against `catalog` and builds the order to publish with the given id and
/// time (both chosen by the caller, so retries can reuse them). See the module docs for rules.
pub fn validate_order_request(
    request: &OrderRequest,
    catalog: &Catalog,
    order_id: Uuid,
    order_time_millis: i64,
) -> Result<Order, OrderRejection> {
    if request.items.is_empty() {
        return Err(OrderRejection::NoItems);
    }
    if request.items.len() > MAX_LINES {
        return Err(OrderRejection::TooManyLines {
            count: request.items.len(),
            max: MAX_LINES,
        });
    }
    // (first line number, merged quantity, order line) per distinct SKU, in first-seen order.
    let mut merged: Vec<(usize, i64, OrderLine)> = Vec::with_capacity(request.items.len());
    for (index, item) in request.items.iter().enumerate() {
        let line = index + 1;
        let sku = item.sku.trim();
        if sku.is_empty() {
            return Err(OrderRejection::EmptySku { line });
        }
        if item.quantity < 1 {
            return Err(OrderRejection::NonPositiveQuantity {
                line,
                sku: sku.to_owned(),
                quantity: item.quantity,
            });
        }
        if item.quantity > MAX_QUANTITY {
            return Err(OrderRejection::QuantityTooLarge {
                line,
                sku: sku.to_owned(),
                quantity: item.quantity,
                max: MAX_QUANTITY,
            });
        }
        let Some(product) = catalog.get(sku) else {
            return Err(OrderRejection::UnknownSku {
                line,
                sku: sku.to_owned(),
            });
        };
        if let Some((first_line, total, _)) = merged.iter_mut().find(|(_, _, l)| l.sku == sku) {
            *total += item.quantity;
            if *total > MAX_QUANTITY {
                return Err(OrderRejection::MergedQuantityTooLarge {
                    first_line: *first_line,
                    line,
                    sku: sku.to_owned(),
                    total: *total,
                    max: MAX_QUANTITY,
                });
            }
            continue;
        }
        let order_line = OrderLine {
            sku: product.sku.clone(),
            name: product.name.clone(),
            quantity: 0, // set from the merged total below
            unit_price_cents: product.unit_price_cents,
        };
        merged.push((line, item.quantity, order_line));
    }
    if let Some(window) = &request.delivery_window
        && window.end_time <= window.start_time
    {
        return Err(OrderRejection::EmptyDeliveryWindow {
            start_time: window.start_time,
            end_time: window.end_time,
        });
    }
    let items: Vec<OrderLine> = merged
        .into_iter()
        .map(|(_, total, mut line)| {
            line.quantity = i32::try_from(total).expect("at most MAX_QUANTITY");
            line
        })
        .collect();
    Ok(Order {
        order_id,
        customer_id: request
            .customer_id
            .unwrap_or_else(|| guest_customer_id(order_id)),
        order_total_cents: order_total_cents(&items),
        items,
        currency: "USD".to_owned(),
        order_time: order_time_millis,
        substitution: request.substitution,
        delivery_window: request.delivery_window.clone(),
    })
}
