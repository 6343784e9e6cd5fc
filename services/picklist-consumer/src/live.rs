//! What the open pages are told: pick lists shown and staff's state changes (server-sent
//! events through a `service_kit::sse::Hub`), the page's JSON for a pick list, and the counts
//! `/metrics` shows.
//!
//! A page that opens gets the open lists from the board first (`staff::Board::snapshot`),
//! then the hub's updates; the hub holds at most [`CHANNEL`] updates per slow page, so
//! nothing here grows with traffic.

use std::sync::Arc;

use grocery_events::{OrderState, PickList, TraceContext};
use prometheus_client::metrics::{counter::Counter, gauge::Gauge};
use serde::Serialize;
use service_kit::{
    metrics::{Metrics, raise_to},
    sse::Hub,
};
use uuid::Uuid;

/// Updates buffered for a page that reads slowly; past it the page misses updates (logged).
const CHANNEL: usize = 1024;

/// The counts `/metrics` shows.
#[derive(Default)]
struct Counts {
    shown: Counter,
    duplicates_suppressed: Counter,
    board_open: Gauge,
    board_dropped: Counter,
}

/// The broadcast to the open pages and the counts for `/metrics`.
#[derive(Clone)]
pub(crate) struct Live {
    hub: Hub,
    counts: Arc<Counts>,
}

impl Live {
    pub(crate) fn new() -> Self {
        Self {
            hub: Hub::new(CHANNEL),
            counts: Arc::default(),
        }
    }

    /// Updates the counts of pick lists shown and duplicates suppressed.
    pub(crate) fn count(&self, shown: u64, duplicates_suppressed: u64) {
        raise_to(&self.counts.shown, shown);
        raise_to(&self.counts.duplicates_suppressed, duplicates_suppressed);
    }

    /// Updates the board's figures: open lists on it, lists dropped past its cap so far.
    pub(crate) fn count_board(&self, open: usize, dropped: u64) {
        self.counts
            .board_open
            .set(i64::try_from(open).unwrap_or(i64::MAX));
        raise_to(&self.counts.board_dropped, dropped);
    }

    /// Registers the service's own metrics with `metrics` (counter names get their `_total`
    /// suffix from the encoder).
    pub(crate) fn register(&self, metrics: &mut Metrics) {
        let c = &self.counts;
        let registry = metrics.registry();
        registry.register(
            "picklist_consumer_shown",
            "Pick lists shown",
            c.shown.clone(),
        );
        registry.register(
            "picklist_consumer_duplicates_suppressed",
            "Pick lists delivered again and not shown",
            c.duplicates_suppressed.clone(),
        );
        registry.register(
            "picklist_consumer_board_open_lists",
            "Open pick lists on the staff board",
            c.board_open.clone(),
        );
        registry.register(
            "picklist_consumer_board_dropped",
            "Open pick lists dropped from the staff board past its cap (still on the topic)",
            c.board_dropped.clone(),
        );
    }

    /// Publishes a pick list (its page JSON) to the open pages.
    pub(crate) fn publish(&self, json: String) {
        self.hub.publish("picklist", json);
    }

    /// Tells the open pages that `order_id` entered `state`.
    pub(crate) fn publish_status(&self, order_id: Uuid, state: OrderState) {
        self.hub.publish("status", status_json(order_id, state));
    }

    /// The hub the page's event stream reads (`web`).
    pub(crate) fn hub(&self) -> &Hub {
        &self.hub
    }
}

/// The `status` event's JSON: `{"order_id", "state"}`.
pub(crate) fn status_json(order_id: Uuid, state: OrderState) -> String {
    serde_json::json!({
        "order_id": order_id,
        "state": grocery_store::state_name(state),
    })
    .to_string()
}

/// A pick list as the JSON lines and the live page show it: its fields (the delivery window
/// among them), `displayed_at_ms`, `arrival` (its place in arrival order on the board, which
/// the page sorts by after the window; absent when it is not on the board) and its record's
/// trace as `trace_id` and `traceparent`: one JSON object, serialized once here (the JSON line
/// and the page's event are the same text).
pub(crate) fn page_json(
    pick_list: &PickList,
    trace: Option<&TraceContext>,
    displayed_at_ms: i64,
    arrival: Option<u64>,
) -> String {
    let page = Page {
        pick_list,
        displayed_at_ms,
        arrival,
        trace_id: trace.map(|trace| trace.trace_id().to_string()),
        traceparent: trace.map(TraceContext::traceparent),
    };
    // Only strings, numbers and maps with string keys: serializing to JSON cannot fail.
    serde_json::to_string(&page).expect("a page's pick list always serializes to JSON")
}

/// [`page_json`]'s object: the pick list's own fields, then what the page adds.
#[derive(Serialize)]
struct Page<'a> {
    #[serde(flatten)]
    pick_list: &'a PickList,
    displayed_at_ms: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    arrival: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trace_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    traceparent: Option<String>,
}
