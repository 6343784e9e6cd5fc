//! Compatibility rules, checked against what Confluent's Schema Registry answers.

use apache_avro::Schema;
use avro_events_compat::{
    CompatibilityLevel, Direction, IncompatibilityKind, Previous, can_read, check, check_versions,
};

fn s(text: &str) -> Schema {
    Schema::parse_str(text).unwrap_or_else(|e| panic!("bad test schema {text}: {e}"))
}

/// A record `R` with the given fields JSON.
fn rec(fields: &str) -> Schema {
    s(&format!(
        r#"{{"type":"record","name":"R","namespace":"io.test","fields":[{fields}]}}"#
    ))
}

fn field(name: &str, ty: &str) -> String {
    format!(r#"{{"name":"{name}","type":{ty}}}"#)
}

fn field_d(name: &str, ty: &str, default: &str) -> String {
    format!(r#"{{"name":"{name}","type":{ty},"default":{default}}}"#)
}

const ID: &str = r#"{"name":"id","type":"string"}"#;

#[test]
fn level_names_round_trip() {
    for level in CompatibilityLevel::ALL {
        let text = level.to_string();
        assert_eq!(text.parse::<CompatibilityLevel>().unwrap(), level);
        assert_eq!(
            text.to_lowercase().parse::<CompatibilityLevel>().unwrap(),
            level
        );
        let json = serde_json::to_string(&level).unwrap();
        assert_eq!(json, format!("\"{text}\""));
        assert_eq!(
            serde_json::from_str::<CompatibilityLevel>(&json).unwrap(),
            level
        );
    }
    assert_eq!(
        "BACKWARD_TRANSITIVE".parse::<CompatibilityLevel>().unwrap(),
        CompatibilityLevel::BackwardTransitive
    );
    assert!("SIDEWAYS".parse::<CompatibilityLevel>().is_err());
    assert!(serde_json::from_str::<CompatibilityLevel>("\"SIDEWAYS\"").is_err());
    assert_eq!(CompatibilityLevel::default(), CompatibilityLevel::Backward);
}

#[test]
fn no_previous_is_always_compatible() {
    for level in CompatibilityLevel::ALL {
        assert!(check::<Schema>(level, &rec(ID), &[]).is_compatible());
    }
}

#[test]
fn backward_added_field_needs_default() {
    let v1 = rec(ID);
    let no_default = rec(&format!("{ID},{}", field("currency", "\"string\"")));
    let with_default = rec(&format!(
        "{ID},{}",
        field_d("currency", "\"string\"", "\"EUR\"")
    ));

    let report = check(CompatibilityLevel::Backward, &no_default, &[&v1]);
    assert!(!report.is_compatible());
    let inc = &report.incompatibilities[0];
    assert_eq!(
        inc.kind,
        IncompatibilityKind::ReaderFieldMissingDefaultValue
    );
    assert_eq!(inc.path, "/currency");
    assert_eq!(inc.direction, Direction::Backward);
    assert_eq!(inc.version, 1);
    let message = inc.to_string();
    assert!(message.contains("'currency'"), "{message}");
    assert!(message.contains("BACKWARD against version 1"), "{message}");

    assert!(check(CompatibilityLevel::Backward, &with_default, &[v1]).is_compatible());
}

#[test]
fn backward_removed_field_is_fine_forward_needs_default() {
    let with_qty = rec(&format!("{ID},{}", field("qty", "\"int\"")));
    let with_qty_default = rec(&format!("{ID},{}", field_d("qty", "\"int\"", "1")));
    let without = rec(ID);
    // New schema drops a field: the new reader ignores it (BACKWARD ok) ...
    assert!(check(CompatibilityLevel::Backward, &without, &[&with_qty]).is_compatible());
    // ... but the old reader needs it (FORWARD fails unless it had a default).
    let report = check(CompatibilityLevel::Forward, &without, &[&with_qty]);
    assert!(!report.is_compatible());
    assert_eq!(report.incompatibilities[0].direction, Direction::Forward);
    assert_eq!(report.incompatibilities[0].path, "/qty");
    assert!(check(CompatibilityLevel::Forward, &without, &[&with_qty_default]).is_compatible());
    assert!(check(CompatibilityLevel::Full, &without, &[with_qty_default]).is_compatible());
    assert!(!check(CompatibilityLevel::Full, &without, &[with_qty]).is_compatible());
}

#[test]
fn forward_added_field_without_default_is_fine() {
    let v1 = rec(ID);
    let v2 = rec(&format!("{ID},{}", field("qty", "\"int\"")));
    assert!(check(CompatibilityLevel::Forward, &v2, &[&v1]).is_compatible());
    assert!(!check(CompatibilityLevel::Full, &v2, &[&v1]).is_compatible());
    assert!(check(CompatibilityLevel::None, &v2, &[v1]).is_compatible());
}

#[test]
fn type_changes() {
    let int = rec(&field("n", "\"int\""));
    let long = rec(&field("n", "\"long\""));
    let string = rec(&field("n", "\"string\""));
    // int -> long is a promotion: the long reader reads int data.
    assert!(check(CompatibilityLevel::Backward, &long, &[&int]).is_compatible());
    let report = check(CompatibilityLevel::Forward, &long, &[&int]);
    assert!(!report.is_compatible());
    assert_eq!(
        report.incompatibilities[0].kind,
        IncompatibilityKind::TypeMismatch
    );
    assert_eq!(report.incompatibilities[0].path, "/n");
    assert!(!check(CompatibilityLevel::Backward, &string, &[int]).is_compatible());
}

#[test]
fn transitive_levels_check_every_version() {
    // v1 has no `b`; v2 adds `b` with a default; v3 removes the default.
    let v1 = rec(ID);
    let v2 = rec(&format!("{ID},{}", field_d("b", "\"int\"", "0")));
    let v3 = rec(&format!("{ID},{}", field("b", "\"int\"")));
    let history = [v1, v2];
    // Against v2 only, v3 reads `b` from the data: fine.
    assert!(check(CompatibilityLevel::Backward, &v3, &history).is_compatible());
    // Against v1 too, `b` is missing and has no default.
    let report = check(CompatibilityLevel::BackwardTransitive, &v3, &history);
    assert!(!report.is_compatible());
    assert_eq!(report.incompatibilities.len(), 1);
    assert_eq!(report.incompatibilities[0].version, 1);

    // FORWARD: old readers must read new data. v1' has a required field `c`; v2' gives it a
    // default ... then v3' drops it: v2' can read v3' data, v1' can not.
    let f1 = rec(&format!("{ID},{}", field("c", "\"int\"")));
    let f2 = rec(&format!("{ID},{}", field_d("c", "\"int\"", "0")));
    let f3 = rec(ID);
    let history = [f1, f2];
    assert!(check(CompatibilityLevel::Forward, &f3, &history).is_compatible());
    let report = check(CompatibilityLevel::ForwardTransitive, &f3, &history);
    assert!(!report.is_compatible());
    assert_eq!(report.incompatibilities[0].version, 1);
    assert_eq!(report.incompatibilities[0].direction, Direction::Forward);

    // FULL vs FULL_TRANSITIVE on the same history.
    assert!(check(CompatibilityLevel::Full, &f3, &history).is_compatible());
    assert!(!check(CompatibilityLevel::FullTransitive, &f3, &history).is_compatible());
    // A change compatible with every version passes FULL_TRANSITIVE.
    let f4 = rec(&format!("{ID},{}", field_d("d", "\"int\"", "0")));
    assert!(check(CompatibilityLevel::FullTransitive, &f4, &[&f3]).is_compatible());
}

#[test]
fn version_numbers_from_the_subject_appear_in_messages() {
    let old = rec(ID);
    let new = rec(&format!("{ID},{}", field("currency", "\"string\"")));
    let report = check_versions(
        CompatibilityLevel::Backward,
        &new,
        &[Previous {
            version: 7,
            schema: &old,
        }],
    );
    assert_eq!(report.incompatibilities[0].version, 7);
    assert!(report.messages()[0].contains("version 7"));
}

// --- logical types: Confluent (Java Avro) compares the physical type only -------------------

#[test]
fn timestamp_millis_and_long_are_interchangeable() {
    let long = rec(&field("at", "\"long\""));
    let ts = rec(&field(
        "at",
        r#"{"type":"long","logicalType":"timestamp-millis"}"#,
    ));
    let micros = rec(&field(
        "at",
        r#"{"type":"long","logicalType":"timestamp-micros"}"#,
    ));
    for level in [CompatibilityLevel::Full, CompatibilityLevel::FullTransitive] {
        assert!(check(level, &ts, &[&long]).is_compatible());
        assert!(check(level, &long, &[&ts]).is_compatible());
        assert!(check(level, &micros, &[&ts]).is_compatible());
    }
    // A logical type over a different physical type still breaks.
    let date = rec(&field("at", r#"{"type":"int","logicalType":"date"}"#));
    assert!(check(CompatibilityLevel::Backward, &ts, &[&date]).is_compatible());
    assert!(!check(CompatibilityLevel::Forward, &ts, &[date]).is_compatible());
}

#[test]
fn decimal_precision_and_scale_changes_are_compatible_as_in_confluent() {
    // apache-avro says DecimalMismatch; Java Avro (Confluent) ignores logical types.
    let d = |p: u32, sc: u32| {
        rec(&field(
            "price",
            &format!(r#"{{"type":"bytes","logicalType":"decimal","precision":{p},"scale":{sc}}}"#),
        ))
    };
    assert!(check(CompatibilityLevel::Full, &d(12, 4), &[d(10, 2)]).is_compatible());
    assert!(check(CompatibilityLevel::Full, &d(10, 2), &[d(10, 2)]).is_compatible());
    let bytes = rec(&field("price", "\"bytes\""));
    assert!(check(CompatibilityLevel::Full, &d(10, 2), &[bytes]).is_compatible());
    // bytes-decimal against fixed-decimal is a physical type change.
    let fixed = rec(&field(
        "price",
        r#"{"type":"fixed","name":"Money","size":8,"logicalType":"decimal","precision":10,"scale":2}"#,
    ));
    assert!(!check(CompatibilityLevel::Backward, &fixed, &[d(10, 2)]).is_compatible());
}

#[test]
fn uuid_on_string() {
    let string = rec(&field("id", "\"string\""));
    let uuid = rec(&field("id", r#"{"type":"string","logicalType":"uuid"}"#));
    assert!(check(CompatibilityLevel::Full, &uuid, &[&string]).is_compatible());
    assert!(check(CompatibilityLevel::Full, &string, &[&uuid]).is_compatible());
    // apache-avro calls any two uuids compatible; a fixed(16) uuid is not a string in Java.
    let uuid_fixed = rec(&field(
        "id",
        r#"{"type":"fixed","name":"U","size":16,"logicalType":"uuid"}"#,
    ));
    assert!(!check(CompatibilityLevel::Backward, &uuid_fixed, &[uuid]).is_compatible());
}

// --- named types ----------------------------------------------------------------------------

const ADDRESS: &str =
    r#"{"type":"record","name":"Address","fields":[{"name":"street","type":"string"}]}"#;
const ADDRESS_ZIP: &str = r#"{"type":"record","name":"Address","fields":[{"name":"street","type":"string"},{"name":"zip","type":"string","default":""}]}"#;

#[test]
fn named_type_used_twice() {
    // The second use is a reference by name.
    let v1 = rec(&format!(
        "{},{}",
        field("home", ADDRESS),
        field("work", "\"Address\"")
    ));
    // Same schema with the definition moved to the other field: apache-avro alone reports a
    // type mismatch (reference against record); Confluent accepts.
    let moved = rec(&format!(
        "{},{}",
        field("work", ADDRESS),
        field("home", "\"Address\"")
    ));
    for level in CompatibilityLevel::ALL {
        assert!(check(level, &moved, &[&v1]).is_compatible(), "{level}");
        assert!(check(level, &v1, &[&moved]).is_compatible(), "{level}");
    }
    // Changing the shared type applies to both uses.
    let v2 = rec(&format!(
        "{},{}",
        field("home", ADDRESS_ZIP),
        field("work", "\"Address\"")
    ));
    assert!(check(CompatibilityLevel::Full, &v2, &[&v1]).is_compatible());
    let strict = ADDRESS_ZIP.replace(r#","default":"""#, "");
    let v3 = rec(&format!(
        "{},{}",
        field("home", &strict),
        field("work", "\"Address\"")
    ));
    let report = check(CompatibilityLevel::Backward, &v3, &[v1]);
    assert!(!report.is_compatible());
    let paths: Vec<&str> = report
        .incompatibilities
        .iter()
        .map(|i| i.path.as_str())
        .collect();
    assert!(paths.contains(&"/home/zip"), "{paths:?}");
}

#[test]
fn recursive_type_is_checked() {
    let list = |extra: &str| {
        s(&format!(
            r#"{{"type":"record","name":"Node","fields":[{{"name":"v","type":"int"}},{{"name":"next","type":["null","Node"],"default":null}}{extra}]}}"#
        ))
    };
    let v1 = list("");
    let v2 = list(r#",{"name":"w","type":"int","default":0}"#);
    let v3 = list(r#",{"name":"w","type":"int"}"#);
    assert!(check(CompatibilityLevel::Full, &v2, &[&v1]).is_compatible());
    assert!(!check(CompatibilityLevel::Backward, &v3, &[v1]).is_compatible());
}

#[test]
fn renamed_record_is_incompatible_unless_aliased() {
    let v1 = s(
        r#"{"type":"record","name":"Order","namespace":"io.a","fields":[{"name":"id","type":"string"}]}"#,
    );
    let renamed = s(
        r#"{"type":"record","name":"Purchase","namespace":"io.a","fields":[{"name":"id","type":"string"}]}"#,
    );
    let report = check(CompatibilityLevel::Backward, &renamed, &[&v1]);
    assert!(!report.is_compatible());
    assert_eq!(
        report.incompatibilities[0].kind,
        IncompatibilityKind::NameMismatch
    );
    assert!(report.messages()[0].contains("io.a.Order"));

    // The new reader lists the old full name as an alias: BACKWARD passes, as in Confluent.
    let aliased = s(
        r#"{"type":"record","name":"Purchase","namespace":"io.a","aliases":["io.a.Order"],"fields":[{"name":"id","type":"string"}]}"#,
    );
    assert!(check(CompatibilityLevel::Backward, &aliased, &[&v1]).is_compatible());
    // An alias relative to the namespace works too.
    let relative = s(
        r#"{"type":"record","name":"Purchase","namespace":"io.a","aliases":["Order"],"fields":[{"name":"id","type":"string"}]}"#,
    );
    assert!(check(CompatibilityLevel::Backward, &relative, &[&v1]).is_compatible());
    // The old reader has no alias for the new name: FORWARD fails.
    assert!(!check(CompatibilityLevel::Forward, &aliased, &[&v1]).is_compatible());
    // Only the namespace changed: Java compares unqualified names, so this is compatible.
    let moved = s(
        r#"{"type":"record","name":"Order","namespace":"io.b","fields":[{"name":"id","type":"string"}]}"#,
    );
    assert!(check(CompatibilityLevel::Full, &moved, &[v1]).is_compatible());
}

#[test]
fn renamed_field_with_alias() {
    let v1 = rec(&field("qty", "\"int\""));
    let renamed = rec(r#"{"name":"quantity","type":"int"}"#);
    let aliased = rec(r#"{"name":"quantity","type":"int","aliases":["qty"]}"#);
    assert!(!check(CompatibilityLevel::Backward, &renamed, &[&v1]).is_compatible());
    assert!(check(CompatibilityLevel::Backward, &aliased, &[v1]).is_compatible());
}

// --- enums ------------------------------------------------------------------------------------

fn status(symbols: &str, default: Option<&str>) -> Schema {
    let default = default
        .map(|d| format!(r#","default":"{d}""#))
        .unwrap_or_default();
    rec(&field(
        "status",
        &format!(r#"{{"type":"enum","name":"Status","symbols":[{symbols}]{default}}}"#),
    ))
}

#[test]
fn enum_symbol_added() {
    let v1 = status(r#""A","B""#, None);
    let added = status(r#""A","B","C""#, None);
    // The new reader knows every old symbol.
    assert!(check(CompatibilityLevel::Backward, &added, &[&v1]).is_compatible());
    // The old reader can't read `C` (apache-avro: Partial, which counts as incompatible).
    let report = check(CompatibilityLevel::Forward, &added, &[v1]);
    assert!(!report.is_compatible());
    assert_eq!(
        report.incompatibilities[0].kind,
        IncompatibilityKind::MissingEnumSymbols
    );
    assert!(
        report.messages()[0].contains('C'),
        "{:?}",
        report.messages()
    );

    // With an enum default in the old reader, unknown symbols map to it.
    let v1d = status(r#""A","B""#, Some("A"));
    let added_d = status(r#""A","B","C""#, Some("A"));
    assert!(check(CompatibilityLevel::Full, &added_d, &[v1d]).is_compatible());
}

#[test]
fn enum_symbol_removed() {
    let v1 = status(r#""A","B","C""#, None);
    let removed = status(r#""A","B""#, None);
    assert!(check(CompatibilityLevel::Forward, &removed, &[&v1]).is_compatible());
    assert!(!check(CompatibilityLevel::Backward, &removed, &[v1]).is_compatible());
    let v1d = status(r#""A","B","C""#, Some("A"));
    let removed_d = status(r#""A","B""#, Some("A"));
    assert!(check(CompatibilityLevel::Backward, &removed_d, &[v1d]).is_compatible());
}

// --- unions -----------------------------------------------------------------------------------

#[test]
fn narrowing_a_union_is_incompatible() {
    let wide = rec(&field("v", r#"["null","string","int"]"#));
    let narrow = rec(&field("v", r#"["null","string"]"#));
    // Old data may hold an int the new reader can't read (apache-avro: Partial).
    let report = check(CompatibilityLevel::Backward, &narrow, &[&wide]);
    assert!(!report.is_compatible());
    assert!(
        report.messages()[0].contains("/v"),
        "{:?}",
        report.messages()
    );
    assert!(check(CompatibilityLevel::Forward, &narrow, &[wide]).is_compatible());

    // Making a field optional: BACKWARD ok, FORWARD not (old reader can't read null).
    let required = rec(&field("v", "\"string\""));
    let optional = rec(&field_d("v", r#"["null","string"]"#, "null"));
    assert!(check(CompatibilityLevel::Backward, &optional, &[&required]).is_compatible());
    assert!(!check(CompatibilityLevel::Forward, &optional, &[required]).is_compatible());
}

#[test]
fn arrays_and_maps_report_nested_paths() {
    let v1 = rec(&field(
        "lines",
        r#"{"type":"array","items":{"type":"record","name":"Line","fields":[{"name":"sku","type":"string"}]}}"#,
    ));
    let v2 = rec(&field(
        "lines",
        r#"{"type":"array","items":{"type":"record","name":"Line","fields":[{"name":"sku","type":"string"},{"name":"qty","type":"int"}]}}"#,
    ));
    let report = check(CompatibilityLevel::Backward, &v2, &[v1]);
    assert_eq!(report.incompatibilities[0].path, "/lines/items/qty");

    let m1 = rec(&field("tags", r#"{"type":"map","values":"long"}"#));
    let m2 = rec(&field("tags", r#"{"type":"map","values":"int"}"#));
    let report = check(CompatibilityLevel::Backward, &m2, &[&m1]);
    assert_eq!(report.incompatibilities[0].path, "/tags/values");
    assert!(can_read(&m2, &m1));
}

/// The cases where the rules on top of apache-avro matter: apache-avro alone answers
/// differently from Confluent, and `check` answers as Confluent does.
#[test]
fn apache_avro_alone_differs_from_confluent_here() {
    use apache_avro::schema_compatibility::{Compatibility, SchemaCompatibility};
    let raw_full = |writer: &Schema, reader: &Schema| {
        SchemaCompatibility::can_read(writer, reader) == Ok(Compatibility::Full)
    };
    let pairs = [
        // decimal precision change (Confluent: compatible)
        (
            rec(&field(
                "p",
                r#"{"type":"bytes","logicalType":"decimal","precision":10,"scale":2}"#,
            )),
            rec(&field(
                "p",
                r#"{"type":"bytes","logicalType":"decimal","precision":12,"scale":4}"#,
            )),
            true,
        ),
        // named type defined in the other field (Confluent: compatible)
        (
            rec(&format!(
                "{},{}",
                field("home", ADDRESS),
                field("work", "\"Address\"")
            )),
            rec(&format!(
                "{},{}",
                field("work", ADDRESS),
                field("home", "\"Address\"")
            )),
            true,
        ),
        // renamed record with an alias for the old name (Confluent: compatible)
        (
            s(r#"{"type":"record","name":"Order","fields":[]}"#),
            s(r#"{"type":"record","name":"Purchase","aliases":["Order"],"fields":[]}"#),
            true,
        ),
        // uuid on string vs uuid on fixed (Confluent: incompatible)
        (
            rec(&field("u", r#"{"type":"string","logicalType":"uuid"}"#)),
            rec(&field(
                "u",
                r#"{"type":"fixed","name":"U","size":16,"logicalType":"uuid"}"#,
            )),
            false,
        ),
    ];
    for (writer, reader, confluent) in pairs {
        assert_ne!(
            raw_full(&writer, &reader),
            confluent,
            "apache-avro agrees already"
        );
        assert_eq!(can_read(&writer, &reader), confluent);
    }
}
