//! Tests of the catalog: the built-in data file and the loader's errors.

mod common;

use std::collections::HashSet;

use grocery_store::catalog::COLUMNS;
use grocery_store::{Catalog, CatalogError};

const HEADER: &str = "sku,name,category,unit_price_cents,aisle,walk_rank,location,stock";

fn parse(rows: &str) -> Result<Catalog, CatalogError> {
    Catalog::from_csv_str(&format!("{HEADER}\n{rows}"), "test.csv")
}

#[test]
fn builtin_catalog_is_a_realistic_supermarket() {
    let catalog = Catalog::builtin();
    assert!(
        (300..=400).contains(&catalog.len()),
        "{} items",
        catalog.len()
    );
    let aisles = catalog.aisles();
    assert!(aisles.len() >= 15, "{aisles:?}");
    assert_eq!(aisles.first().map(|a| a.0), Some("P01 Produce"));
    assert_eq!(aisles.last().map(|a| a.0), Some("F01 Frozen"));
    for name in [
        "Bananas (per lb)",
        "Whole Milk 1 gal",
        "Large White Eggs 12 ct",
    ] {
        assert!(
            catalog.items().iter().any(|i| i.name == name),
            "{name} missing"
        );
    }
}

#[test]
fn builtin_catalog_rows_are_well_formed() {
    let catalog = Catalog::builtin();
    let mut skus = HashSet::new();
    let mut locations = HashSet::new();
    for item in catalog.items() {
        let digits = item.sku.strip_prefix("PRD-").expect("PRD- prefix");
        assert!(
            digits.len() == 5 && digits.bytes().all(|b| b.is_ascii_digit()),
            "{}",
            item.sku
        );
        assert!(skus.insert(item.sku.as_str()), "duplicate {}", item.sku);
        assert!(
            locations.insert(item.location.as_str()),
            "shared shelf {}",
            item.location
        );
        assert!(item.location.starts_with(&item.aisle[..3]), "{item:?}");
        assert!(
            item.unit_price_cents >= 39 && item.unit_price_cents < 5_000,
            "{item:?}"
        );
        assert!(!item.name.is_empty() && !item.category.is_empty());
        assert!(item.name.is_ascii(), "{}", item.name);
    }
}

#[test]
fn builtin_catalog_has_short_and_empty_shelves() {
    let catalog = Catalog::builtin();
    let out = catalog.items().iter().filter(|i| i.stock == 0).count();
    let low = catalog
        .items()
        .iter()
        .filter(|i| (1..=3).contains(&i.stock))
        .count();
    assert!((5..=20).contains(&out), "{out} out of stock");
    assert!((5..=20).contains(&low), "{low} low");
    assert_eq!(
        catalog.get("PRD-17008").map(|i| i.stock),
        Some(0),
        "ribeye pinned empty"
    );
}

#[test]
fn builtin_is_the_embedded_file() {
    assert_eq!(Catalog::builtin(), Catalog::builtin());
    assert_eq!(
        Catalog::builtin(),
        Catalog::from_csv_str(grocery_store::catalog::BUILTIN_CATALOG_CSV, "x").unwrap()
    );
}

#[test]
fn get_finds_by_sku() {
    let catalog = Catalog::builtin();
    let bananas = catalog.get("PRD-01001").expect("bananas");
    assert_eq!(bananas.name, "Bananas (per lb)");
    assert_eq!(bananas.aisle, "P01 Produce");
    assert_eq!(bananas.walk_rank, 1);
    assert!(catalog.get("PRD-99999").is_none());
}

#[test]
fn quoted_fields_with_commas_parse() {
    let catalog =
        parse("X-1,\"Pasta, Rice\",Pasta,149,\"A04 Pasta, Rice & Sauces\",7,A04-B01-S1,3\n")
            .unwrap();
    let item = catalog.get("X-1").unwrap();
    assert_eq!(item.name, "Pasta, Rice");
    assert_eq!(item.aisle, "A04 Pasta, Rice & Sauces");
}

#[test]
fn load_reads_a_file_and_names_it_in_errors() {
    let dir = std::env::temp_dir().join(format!("grocery-store-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.csv");
    std::fs::write(
        &good,
        format!("{HEADER}\nA-1,Apple,Fruit,99,P01 Produce,1,P01-B01-S1,4\n"),
    )
    .unwrap();
    assert_eq!(Catalog::load(&good).unwrap().len(), 1);

    let bad = dir.join("bad.csv");
    std::fs::write(
        &bad,
        format!("{HEADER}\nA-1,Apple,Fruit,cheap,P01 Produce,1,P01-B01-S1,4\n"),
    )
    .unwrap();
    let message = Catalog::load(&bad).unwrap_err().to_string();
    assert!(message.contains("bad.csv:2"), "{message}");
    assert!(message.contains("unit_price_cents"), "{message}");

    let missing = dir.join("missing.csv");
    let err = Catalog::load(&missing).unwrap_err();
    assert!(matches!(err, CatalogError::Io { .. }));
    assert!(err.to_string().contains("missing.csv"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_number_names_line_and_field() {
    let err = parse(
        "A-1,Apple,Fruit,99,P01 Produce,1,P01-B01-S1,4\n\
         A-2,Pear,Fruit,99,P01 Produce,1,P01-B01-S2,lots\n",
    )
    .unwrap_err();
    match &err {
        CatalogError::Parse {
            file, line, field, ..
        } => {
            assert_eq!(
                (file.as_str(), *line, field.as_str()),
                ("test.csv", 3, "stock")
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(
        err.to_string().starts_with("test.csv:3: field `stock`"),
        "{err}"
    );
}

#[test]
fn negative_stock_is_a_parse_error() {
    let err = parse("A-1,Apple,Fruit,99,P01 Produce,1,P01-B01-S1,-2\n").unwrap_err();
    assert!(
        matches!(err, CatalogError::Parse { line: 2, ref field, .. } if field == "stock"),
        "{err:?}"
    );
}

#[test]
fn non_positive_price_is_invalid() {
    let err = parse("A-1,Apple,Fruit,0,P01 Produce,1,P01-B01-S1,2\n").unwrap_err();
    assert!(
        matches!(
            err,
            CatalogError::Invalid {
                line: 2,
                field: "unit_price_cents",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn empty_name_is_invalid() {
    let err = parse("A-1,  ,Fruit,10,P01 Produce,1,P01-B01-S1,2\n").unwrap_err();
    assert!(
        matches!(
            err,
            CatalogError::Invalid {
                line: 2,
                field: "name",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn duplicate_sku_names_both_lines() {
    let err = parse(
        "A-1,Apple,Fruit,99,P01 Produce,1,P01-B01-S1,4\n\
         A-2,Pear,Fruit,99,P01 Produce,1,P01-B01-S2,4\n\
         A-1,Plum,Fruit,99,P01 Produce,1,P01-B01-S3,4\n",
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            CatalogError::Invalid {
                line: 4,
                field: "sku",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("first on line 2"), "{err}");
}

#[test]
fn an_aisle_has_one_walk_rank() {
    let err = parse(
        "A-1,Apple,Fruit,99,P01 Produce,1,P01-B01-S1,4\n\
         A-2,Pear,Fruit,99,P01 Produce,2,P01-B01-S2,4\n",
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            CatalogError::Invalid {
                line: 3,
                field: "walk_rank",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn missing_column_is_reported_on_the_header_line() {
    let err = Catalog::from_csv_str("sku,name,category\nA-1,Apple,Fruit\n", "t.csv").unwrap_err();
    assert!(
        matches!(err, CatalogError::Parse { line: 1, ref field, .. } if field == "unit_price_cents"),
        "{err:?}"
    );
}

#[test]
fn short_row_is_a_parse_error() {
    let err = parse("A-1,Apple,Fruit,99\n").unwrap_err();
    assert!(
        matches!(err, CatalogError::Parse { line: 2, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("fields"), "{err}");
}

#[test]
fn header_only_is_empty() {
    assert!(matches!(parse(""), Err(CatalogError::Empty { .. })));
}

#[test]
fn columns_may_come_in_any_order() {
    let text = "stock,sku,location,walk_rank,aisle,unit_price_cents,category,name\n\
                3,A-1,P01-B01-S1,1,P01 Produce,99,Fruit,Apple\n";
    let catalog = Catalog::from_csv_str(text, "t.csv").unwrap();
    assert_eq!(catalog.get("A-1").unwrap().stock, 3);
    assert_eq!(COLUMNS.len(), 8);
}

#[test]
fn set_stock_replaces_the_snapshot() {
    let mut catalog = common::small_catalog();
    assert!(catalog.set_stock("PRO-1", 0));
    assert_eq!(catalog.get("PRO-1").unwrap().stock, 0);
    assert!(!catalog.set_stock("NOPE", 3));
}

#[test]
fn aisles_are_in_walking_order() {
    let catalog = common::small_catalog();
    assert_eq!(
        catalog.aisles(),
        vec![("P01 Produce", 1), ("A01 Dry Goods", 2), ("F01 Frozen", 3)]
    );
}
