//! The schema pairs of `schemas.json`, parsed once. Shared by the fuzz targets and the stable
//! corpus replay test (crates/avro-events/tests/fuzz_corpus.rs), which includes this file.

use std::{path::Path, sync::OnceLock};

use avro_events::dynamic::DynamicSchema;

/// `avro.max.allocation.bytes` of the checks: 1 MiB.
pub(crate) const LIMIT: usize = 1024 * 1024;

/// The (writer, reader) pairs.
pub(crate) fn pairs() -> &'static [(DynamicSchema, DynamicSchema)] {
    static PAIRS: OnceLock<Vec<(DynamicSchema, DynamicSchema)>> = OnceLock::new();
    PAIRS.get_or_init(|| {
        // The repository root: the first ancestor of the including crate holding this table.
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .ancestors()
            .find(|dir| dir.join("fuzz/schemas.json").is_file())
            .expect("fuzz/schemas.json above the crate");
        let table: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(root.join("fuzz/schemas.json")).unwrap())
                .unwrap();
        let schema = |value: &serde_json::Value| {
            let text = match value.as_str() {
                Some(file) => std::fs::read_to_string(root.join(file.trim_start_matches('@')))
                    .unwrap_or_else(|e| panic!("{file}: {e}")),
                None => value.to_string(),
            };
            DynamicSchema::parse(&text).unwrap_or_else(|e| panic!("{text}: {e}"))
        };
        table["pairs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|pair| (schema(&pair["writer"]), schema(&pair["reader"])))
            .collect()
    })
}
