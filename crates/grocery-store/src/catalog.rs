//! The store catalog: what the store sells, where it is shelved and how much is in stock.
//!
//! A catalog is a CSV file with the header
//! `sku,name,category,unit_price_cents,aisle,walk_rank,location,stock`, one item a row.
//! [`Catalog::builtin`] is the catalog compiled into the crate (`data/catalog.csv` at the
//! repository root, written by `scripts/gen_catalog.py`); [`Catalog::load`] reads another one.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rustc_hash::FxHashMap;

use serde::{Deserialize, Serialize};

/// The built-in catalog's CSV text.
pub const BUILTIN_CATALOG_CSV: &str = include_str!("../../../data/catalog.csv");

/// The columns a catalog file must have (in any order; extra columns are ignored).
pub const COLUMNS: [&str; 8] = [
    "sku",
    "name",
    "category",
    "unit_price_cents",
    "aisle",
    "walk_rank",
    "location",
    "stock",
];

/// Name the built-in catalog goes by in error messages.
const BUILTIN_SOURCE: &str = "<builtin>/data/catalog.csv";

/// One item the store sells.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogItem {
    /// Stock-keeping unit, unique within the catalog, e.g. `PRD-01001`.
    pub sku: String,
    /// Display name as printed on the shelf label, e.g. `Whole Milk 1 gal`.
    pub name: String,
    /// Product category, e.g. `Fruit` or `Cheese`.
    pub category: String,
    /// Price of one unit, in US cents; always positive.
    pub unit_price_cents: i64,
    /// Aisle or zone label as staff see it, e.g. `A03 Canned Goods & Soup`.
    pub aisle: String,
    /// Position of the aisle in the store's walking order (1 = visited first); every item of
    /// an aisle has the same rank.
    pub walk_rank: u32,
    /// Shelf location within the aisle, e.g. `A03-B02-S4` (bay 2, shelf 4); locations sort
    /// in walking order within an aisle.
    pub location: String,
    /// Units on hand at the time of the snapshot.
    pub stock: u32,
}

/// Why a catalog could not be loaded. Every variant names the file (`source`) it came from,
/// and the row-level ones the line number (1 = the header line) and the offending field.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The file could not be read.
    #[error("cannot read catalog {}: {source}", path.display())]
    Io {
        /// The path that was read.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// A row is not valid CSV or a field does not parse as its type.
    #[error("{file}:{line}: field `{field}`: {message}")]
    Parse {
        /// The catalog file.
        file: String,
        /// Line of the bad row.
        line: u64,
        /// Column name, or `?` when the CSV reader could not tell.
        field: String,
        /// What was wrong.
        message: String,
    },
    /// A row parses but breaks a catalog rule (empty name, non-positive price, ...).
    #[error("{file}:{line}: field `{field}`: {message}")]
    Invalid {
        /// The catalog file.
        file: String,
        /// Line of the bad row.
        line: u64,
        /// Column name.
        field: &'static str,
        /// What was wrong.
        message: String,
    },
    /// The catalog has no items.
    #[error("{file}: catalog has no items")]
    Empty {
        /// The catalog file.
        file: String,
    },
}

/// The store catalog, indexed by SKU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalog {
    items: Vec<CatalogItem>,
    /// Index of each SKU's item. Fx hashing (rustc-hash): the SKUs come from the store's own
    /// catalog file, not from the outside, and a lookup per order line is on fulfillment's hot
    /// path, where SipHash cost more than the rest of the lookup.
    by_sku: FxHashMap<String, usize>,
}

impl Catalog {
    /// The catalog compiled into this crate (383 items in 19 aisles/zones).
    ///
    /// # Panics
    /// Never in practice: the embedded file is parsed by this crate's tests.
    pub fn builtin() -> Catalog {
        Catalog::from_csv_str(BUILTIN_CATALOG_CSV, BUILTIN_SOURCE)
            .expect("the built-in catalog is valid (checked by tests)")
    }

    /// Reads and parses the catalog CSV file at `path`.
    pub fn load(path: impl AsRef<Path>) -> Result<Catalog, CatalogError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| CatalogError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Catalog::from_csv_str(&text, &path.display().to_string())
    }

    /// Parses catalog CSV text; `file` names it in error messages.
    pub fn from_csv_str(text: &str, file: &str) -> Result<Catalog, CatalogError> {
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .from_reader(text.as_bytes());
        let headers = reader
            .headers()
            .cloned()
            .map_err(|e| csv_error(file, &e, None, 1))?;
        if let Some(missing) = COLUMNS.iter().find(|c| !headers.iter().any(|h| h == **c)) {
            return Err(CatalogError::Parse {
                file: file.to_owned(),
                line: 1,
                field: (*missing).to_owned(),
                message: "column missing from the header".to_owned(),
            });
        }
        let mut items = Vec::new();
        let mut lines = Vec::new();
        for record in reader.records() {
            let record = record.map_err(|e| csv_error(file, &e, None, 0))?;
            let line = record.position().map_or(0, csv::Position::line);
            let item = record
                .deserialize::<CatalogItem>(Some(&headers))
                .map_err(|e| csv_error(file, &e, Some(&headers), line))?;
            lines.push(line);
            items.push(item);
        }
        Catalog::build(items, file, &lines)
    }

    /// Builds a catalog from items already in memory (handy in tests), applying the same rules
    /// as the CSV loader; lines in errors count items from 2, as if there were a header.
    pub fn from_items(items: Vec<CatalogItem>) -> Result<Catalog, CatalogError> {
        let lines: Vec<u64> = (2..).take(items.len()).collect();
        Catalog::build(items, "<items>", &lines)
    }

    fn build(items: Vec<CatalogItem>, file: &str, lines: &[u64]) -> Result<Catalog, CatalogError> {
        if items.is_empty() {
            return Err(CatalogError::Empty {
                file: file.to_owned(),
            });
        }
        let invalid = |line: u64, field: &'static str, message: String| CatalogError::Invalid {
            file: file.to_owned(),
            line,
            field,
            message,
        };
        let mut by_sku = FxHashMap::with_capacity_and_hasher(items.len(), Default::default());
        let mut aisle_ranks: HashMap<&str, (u32, u64)> = HashMap::new();
        for (index, (item, &line)) in items.iter().zip(lines).enumerate() {
            for (field, value) in [
                ("sku", &item.sku),
                ("name", &item.name),
                ("aisle", &item.aisle),
                ("location", &item.location),
            ] {
                if value.is_empty() {
                    return Err(invalid(line, field, "must not be empty".into()));
                }
            }
            if item.unit_price_cents <= 0 {
                let message = format!("price must be positive, got {}", item.unit_price_cents);
                return Err(invalid(line, "unit_price_cents", message));
            }
            if let Some(&first) = by_sku.get(&item.sku) {
                let message = format!(
                    "duplicate SKU {} (first on line {})",
                    item.sku, lines[first]
                );
                return Err(invalid(line, "sku", message));
            }
            match aisle_ranks.get(item.aisle.as_str()) {
                Some(&(rank, first_line)) if rank != item.walk_rank => {
                    let message = format!(
                        "aisle {:?} has walk_rank {rank} on line {first_line}, {} here",
                        item.aisle, item.walk_rank
                    );
                    return Err(invalid(line, "walk_rank", message));
                }
                Some(_) => {}
                None => {
                    aisle_ranks.insert(&item.aisle, (item.walk_rank, line));
                }
            }
            by_sku.insert(item.sku.clone(), index);
        }
        Ok(Catalog { items, by_sku })
    }

    /// The item with this SKU, if the store sells it.
    pub fn get(&self, sku: &str) -> Option<&CatalogItem> {
        self.by_sku.get(sku).map(|&i| &self.items[i])
    }

    /// All items, in file order.
    pub fn items(&self) -> &[CatalogItem] {
        &self.items
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether the catalog has no items (never true for a loaded catalog).
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The distinct aisles/zones with their walk rank, in walking order.
    pub fn aisles(&self) -> Vec<(&str, u32)> {
        let mut aisles: Vec<(&str, u32)> = self
            .items
            .iter()
            .map(|i| (i.aisle.as_str(), i.walk_rank))
            .collect();
        aisles.sort_by(|a, b| (a.1, a.0).cmp(&(b.1, b.0)));
        aisles.dedup();
        aisles
    }

    /// Replaces the stock level of `sku` (e.g. from a fresh inventory snapshot); returns
    /// `false`, changing nothing, when the SKU is not in the catalog.
    pub fn set_stock(&mut self, sku: &str, stock: u32) -> bool {
        match self.by_sku.get(sku) {
            Some(&i) => {
                self.items[i].stock = stock;
                true
            }
            None => false,
        }
    }
}

/// Turns a CSV error into a [`CatalogError::Parse`] naming the line and column.
/// `line` is used when the error itself carries no position.
fn csv_error(
    file: &str,
    err: &csv::Error,
    headers: Option<&csv::StringRecord>,
    line: u64,
) -> CatalogError {
    let line = err.position().map_or(line, csv::Position::line);
    let (field, message) = match err.kind() {
        csv::ErrorKind::Deserialize { err: de, .. } => {
            let field = de
                .field()
                .and_then(|i| headers.and_then(|h| h.get(i as usize)))
                .unwrap_or("?");
            (field.to_owned(), de.kind().to_string())
        }
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => (
            "?".to_owned(),
            format!("row has {len} fields, expected {expected_len}"),
        ),
        _ => ("?".to_owned(), err.to_string()),
    };
    CatalogError::Parse {
        file: file.to_owned(),
        line,
        field,
        message,
    }
}
