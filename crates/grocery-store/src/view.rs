//! Showing pick lists to store staff, and noticing ones already shown.
//!
//! [`render_text`] lays a pick list out for a terminal or a printer; [`to_json`] gives every
//! field of it as one JSON object (for `--json` output), with ids as hyphenated strings and
//! stock statuses as their Avro symbols (`IN_STOCK`, `SHORT`, ...). [`Dedup`] remembers pick
//! list ids, since Kafka may deliver the same pick list more than once.

use std::collections::{HashSet, VecDeque};
use std::fmt::Write as _;

use grocery_events::{PickList, StockStatus};
use uuid::Uuid;

use crate::catalog::Catalog;

/// Widest item name shown in the text view before it is cut with `~`.
const NAME_WIDTH: usize = 40;

/// The pick list as a text block: header, then one row per line in walking order.
///
/// ```text
/// PICK LIST 36e44a95-c9cc-5deb-859c-054b12767be8  for order c1ecc73d-72bb-4b05-9cef-f602d9f13583
/// Picker: Aisha Patel   Created: 2025-01-01 12:01:01 UTC
/// 2 lines, 1 unit to pick; 1 line needs attention
///   #  AISLE             QTY PICK  ITEM                                      STATUS
///   1  P01 Produce         1    1  Navel Oranges (per lb)                    ok
///   2  P01 Produce         1    0  Russet Potatoes 5 lb Bag                  OUT_OF_STOCK (none in stock; 0 of 1 can be picked)
/// ```
pub fn render_text(pick_list: &PickList) -> String {
    render(pick_list, None)
}

/// Like [`render_text`], with a SHELF column giving each item's shelf location from `catalog`
/// (pick lines carry the aisle only); `-` for SKUs the catalog does not know.
pub fn render_text_with_shelves(pick_list: &PickList, catalog: &Catalog) -> String {
    render(pick_list, Some(catalog))
}

fn render(pick_list: &PickList, catalog: Option<&Catalog>) -> String {
    let lines = &pick_list.items_to_pick;
    let to_pick: i64 = lines.iter().map(|l| i64::from(l.quantity_to_pick)).sum();
    let attention = lines
        .iter()
        .filter(|l| l.stock_status != StockStatus::InStock)
        .count();
    let aisle_width = lines
        .iter()
        .map(|l| l.aisle.chars().count())
        .max()
        .unwrap_or(0)
        .max(5);
    let shelf = |sku: &str| -> Option<String> {
        catalog.map(|c| {
            c.get(sku)
                .map_or_else(|| "-".to_owned(), |i| i.location.clone())
        })
    };
    let shelf_width = lines
        .iter()
        .filter_map(|l| shelf(&l.sku))
        .map(|s| s.chars().count())
        .max()
        .unwrap_or(0)
        .max(5);
    let shelf_cell = |text: &str| match catalog {
        Some(_) => format!("{text:<shelf_width$}  "),
        None => String::new(),
    };

    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(
        out,
        "PICK LIST {}  for order {}",
        pick_list.picklist_id, pick_list.order_id
    );
    let _ = write!(
        out,
        "Picker: {}   Created: {}",
        pick_list.assigned_picker,
        format_millis_utc(pick_list.created_time)
    );
    match &pick_list.delivery_window {
        Some(window) => {
            let _ = writeln!(
                out,
                "   Deliver: {} to {}",
                format_millis_utc(window.start_time),
                format_millis_utc(window.end_time)
            );
        }
        None => out.push('\n'),
    }
    let _ = writeln!(
        out,
        "{} {}, {to_pick} {} to pick; {}",
        lines.len(),
        plural(lines.len(), "line", "lines"),
        plural(to_pick as usize, "unit", "units"),
        match attention {
            0 => "all in stock".to_owned(),
            1 => "1 line needs attention".to_owned(),
            n => format!("{n} lines need attention"),
        }
    );
    let _ = writeln!(
        out,
        "{:>3}  {:<aisle_width$}  {}{:>4} {:>4}  {:<NAME_WIDTH$}  STATUS",
        "#",
        "AISLE",
        shelf_cell("SHELF"),
        "QTY",
        "PICK",
        "ITEM"
    );
    for line in lines {
        let status = match (&line.stock_status, &line.note) {
            (StockStatus::InStock, None) => "ok".to_owned(),
            (status, None) => status_symbol(*status).to_owned(),
            (status, Some(note)) => format!("{} ({note})", status_symbol(*status)),
        };
        let row = format!(
            "{:>3}  {:<aisle_width$}  {}{:>4} {:>4}  {:<NAME_WIDTH$}  {status}",
            line.walk_sequence,
            line.aisle,
            shelf_cell(&shelf(&line.sku).unwrap_or_default()),
            line.quantity,
            line.quantity_to_pick,
            truncate(&line.name, NAME_WIDTH),
        );
        let _ = writeln!(out, "{}", row.trim_end());
    }
    out
}

/// Every field of the pick list as a JSON object, plus nothing else.
pub fn to_json(pick_list: &PickList) -> serde_json::Value {
    serde_json::to_value(pick_list).expect("a pick list always serializes to JSON")
}

/// The Avro symbol of a stock status, e.g. `OUT_OF_STOCK`.
pub fn status_symbol(status: StockStatus) -> &'static str {
    match status {
        StockStatus::InStock => "IN_STOCK",
        StockStatus::Short => "SHORT",
        StockStatus::OutOfStock => "OUT_OF_STOCK",
        StockStatus::UnknownSku => "UNKNOWN_SKU",
    }
}

/// Milliseconds since the Unix epoch as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn format_millis_utc(millis: i64) -> String {
    let secs = millis.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The proleptic Gregorian date `days` after 1970-01-01 (the usual era-based conversion).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn plural(n: usize, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 { one } else { many }
}

/// `text` cut to at most `width` characters, ending in `~` when cut.
fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_owned()
    } else {
        let mut cut: String = text.chars().take(width - 1).collect();
        cut.push('~');
        cut
    }
}

/// Remembers which pick list ids have been seen, to show each pick list once.
///
/// Unbounded by default; [`Dedup::with_limit`] keeps only the most recent ids (first in,
/// first out) so a long-running consumer's memory stays flat. Redeliveries arrive close
/// together, so a few hundred thousand ids is plenty.
#[derive(Debug, Clone, Default)]
pub struct Dedup {
    seen: HashSet<Uuid>,
    order: VecDeque<Uuid>,
    limit: Option<usize>,
}

impl Dedup {
    /// An empty set without a size limit.
    pub fn new() -> Self {
        Dedup::default()
    }

    /// An empty set that forgets the oldest id once it holds `limit` ids (`limit` ≥ 1).
    pub fn with_limit(limit: usize) -> Self {
        Dedup {
            limit: Some(limit.max(1)),
            ..Dedup::default()
        }
    }

    /// Records `id`; returns `true` when it had not been seen (or had been forgotten).
    pub fn insert(&mut self, id: Uuid) -> bool {
        if !self.seen.insert(id) {
            return false;
        }
        if let Some(limit) = self.limit {
            self.order.push_back(id);
            while self.order.len() > limit {
                if let Some(oldest) = self.order.pop_front() {
                    self.seen.remove(&oldest);
                }
            }
        }
        true
    }

    /// Records the pick list's id; returns `true` when the pick list is new.
    pub fn observe(&mut self, pick_list: &PickList) -> bool {
        self.insert(pick_list.picklist_id)
    }

    /// Whether `id` has been seen (and not forgotten).
    pub fn contains(&self, id: Uuid) -> bool {
        self.seen.contains(&id)
    }

    /// Number of ids remembered.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether no id is remembered.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}
