//! Domain logic of the grocery example services, free of Kafka and I/O (apart from reading a
//! catalog file).
//!
//! - [`catalog`]: what the store sells, where it is shelved, how much is in stock
//!   ([`Catalog::builtin`] is compiled in).
//! - [`simulate`]: reproducible simulated customers placing [`Order`](grocery_events::Order)s
//!   (the order producer).
//! - [`request`]: validating orders placed through the HTTP Order API.
//! - [`picking`] and [`roster`]: turning each order into exactly one
//!   [`PickList`](grocery_events::PickList), deterministically (the fulfillment service),
//!   with the order's first two states ([`fulfillment_statuses`]).
//! - [`lifecycle`]: the order's states (`grocery.order-status.v1`), their ids, and the steps
//!   store staff take (start picking, picked, ready).
//! - [`history`]: order histories folded from status changes (the Order API's view).
//! - [`state`]: an order's latest state and history as `grocery.order-state.v1` carries it,
//!   and where a reader follows `grocery.order-status.v1` from after reading it.
//! - [`latest`]: each order's latest state, and how its pick list goes back on the staff board.
//! - [`keys`]: the Order API's idempotency keys, their bodies' digests and states, compact and
//!   bounded.
//! - [`board`]: the staff board, the pick lists a store screen shows and their states, in pick
//!   order (earliest delivery window first) and within a fixed bound (the pick-list consumer).
//! - [`view`]: showing pick lists to staff as text or JSON, once each (the pick-list consumer).

pub mod board;
pub mod catalog;
pub mod history;
pub mod keys;
pub mod latest;
pub mod lifecycle;
pub mod picking;
pub mod request;
pub mod roster;
pub mod simulate;
pub mod state;
pub mod view;

pub use board::{
    BoardEntry, BoardLimits, DEFAULT_CLOSED_LISTS, DEFAULT_OPEN_LISTS, Inserted, StaffBoard,
    StepRefused, StepStart,
};
pub use catalog::{Catalog, CatalogError, CatalogItem};
pub use history::{DEFAULT_VIEW_ORDERS, HistoryView, OrderHistory};
pub use keys::{BodyDigest, DEFAULT_MAX_KEYS, KEPT_DIGEST_BYTES, KeyClaim, KeyState, KeyStore};
pub use latest::LatestStatus;
pub use lifecycle::{
    LifecycleError, PickedLine, StaffStep, picked_status, staff_status, state_name, status_id,
};
pub use picking::{
    PICKLIST_NAMESPACE, PickListBuilder, StockCheck, check_stock, fulfillment_statuses,
    picklist_id, substitution_advice,
};
pub use request::{
    OrderRejection, OrderRequest, OrderRequestItem, guest_customer_id, validate_order_request,
};
pub use roster::{PickerRoster, RosterError};
pub use simulate::{OrderSimulator, order_total_cents};
pub use view::{Dedup, render_text, render_text_with_shelves, to_json};
