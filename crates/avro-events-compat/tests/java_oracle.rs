//! The oracle: this crate's verdicts against Java Avro's `SchemaCompatibility`, the library
//! Confluent's Schema Registry decides with, over a generated corpus of schema pairs.
//!
//! The corpus is generated here (field-type pairs of primitives, logical types, fixed, unions,
//! arrays, maps and enums; enum evolution with and without reader defaults; record evolution with
//! field defaults and field aliases; renamed named types with and without aliases; named types
//! used more than once and recursive types; the project's evolved contracts, each kept version
//! against today's schema). Every pair is written to a file, one JVM
//! (`oracle/Oracle.java`, run in source-file mode on the jars of `oracle/pom.xml`) answers all of
//! them, and every answer must agree with [`avro_events_compat::can_read`], unless the pair is
//! listed in [`KNOWN_DISAGREEMENTS`] with the reason.
//!
//! Needs Java 17 and Maven (the jars are resolved once and the classpath cached in the target
//! directory): `cargo test -p avro-events-compat --features java-oracle --test java_oracle`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use apache_avro::Schema;
use avro_events_compat::can_read;

/// Pairs on which this crate knowingly answers differently from Java Avro, by case-name prefix,
/// each with the reason. Empty: every disagreement the oracle found was fixed in the crate.
const KNOWN_DISAGREEMENTS: &[(&str, &str)] = &[];

/// One generated pair.
#[derive(Debug, Clone)]
struct Pair {
    /// Unique, names the category first (`types/…`, `enum/…`, `record/…`, `names/…`, `reuse/…`).
    case: String,
    writer: String,
    reader: String,
}

#[derive(Default)]
struct Corpus {
    pairs: Vec<Pair>,
}

impl Corpus {
    fn add(&mut self, case: String, writer: &str, reader: &str) {
        self.pairs.push(Pair {
            case,
            writer: one_line(writer),
            reader: one_line(reader),
        });
    }

    /// Every ordered pair of `versions` (a version against itself too).
    fn all_pairs(&mut self, category: &str, versions: &[(&str, String)]) {
        for (w_name, writer) in versions {
            for (r_name, reader) in versions {
                self.add(format!("{category}/{w_name}->{r_name}"), writer, reader);
            }
        }
    }
}

/// Normalises a schema to one line (the oracle reads two lines per pair).
fn one_line(schema: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(schema)
        .unwrap_or_else(|e| panic!("generated schema is not JSON ({e}): {schema}"));
    value.to_string()
}

/// A record `io.test.R` with one field `f` of type `ty`.
fn holder(ty: &str) -> String {
    format!(
        r#"{{"type":"record","name":"R","namespace":"io.test","fields":[{{"name":"f","type":{ty}}}]}}"#
    )
}

/// Field types: primitives, logical types, fixed, unions, arrays, maps and an enum.
fn field_types() -> Vec<(&'static str, &'static str)> {
    vec![
        ("null", r#""null""#),
        ("boolean", r#""boolean""#),
        ("int", r#""int""#),
        ("long", r#""long""#),
        ("float", r#""float""#),
        ("double", r#""double""#),
        ("bytes", r#""bytes""#),
        ("string", r#""string""#),
        ("date", r#"{"type":"int","logicalType":"date"}"#),
        (
            "time-millis",
            r#"{"type":"int","logicalType":"time-millis"}"#,
        ),
        (
            "timestamp-millis",
            r#"{"type":"long","logicalType":"timestamp-millis"}"#,
        ),
        (
            "timestamp-micros",
            r#"{"type":"long","logicalType":"timestamp-micros"}"#,
        ),
        (
            "local-timestamp-millis",
            r#"{"type":"long","logicalType":"local-timestamp-millis"}"#,
        ),
        ("uuid", r#"{"type":"string","logicalType":"uuid"}"#),
        (
            "decimal-10-2",
            r#"{"type":"bytes","logicalType":"decimal","precision":10,"scale":2}"#,
        ),
        (
            "decimal-12-4",
            r#"{"type":"bytes","logicalType":"decimal","precision":12,"scale":4}"#,
        ),
        ("fixed16", r#"{"type":"fixed","name":"F","size":16}"#),
        ("fixed8", r#"{"type":"fixed","name":"F","size":8}"#),
        (
            "fixed16-other-name",
            r#"{"type":"fixed","name":"G","size":16}"#,
        ),
        (
            "fixed16-decimal",
            r#"{"type":"fixed","name":"F","size":16,"logicalType":"decimal","precision":20,"scale":2}"#,
        ),
        (
            "fixed16-uuid",
            r#"{"type":"fixed","name":"F","size":16,"logicalType":"uuid"}"#,
        ),
        ("null|string", r#"["null","string"]"#),
        ("string|null", r#"["string","null"]"#),
        ("null|int", r#"["null","int"]"#),
        ("null|long", r#"["null","long"]"#),
        ("int|long", r#"["int","long"]"#),
        ("null|int|string", r#"["null","int","string"]"#),
        (
            "null|uuid",
            r#"["null",{"type":"string","logicalType":"uuid"}]"#,
        ),
        (
            "null|timestamp-millis",
            r#"["null",{"type":"long","logicalType":"timestamp-millis"}]"#,
        ),
        ("array<int>", r#"{"type":"array","items":"int"}"#),
        ("array<long>", r#"{"type":"array","items":"long"}"#),
        ("array<string>", r#"{"type":"array","items":"string"}"#),
        ("map<string>", r#"{"type":"map","values":"string"}"#),
        ("map<bytes>", r#"{"type":"map","values":"bytes"}"#),
        ("map<null|int>", r#"{"type":"map","values":["null","int"]}"#),
        (
            "enum-AB",
            r#"{"type":"enum","name":"E","symbols":["A","B"]}"#,
        ),
        (
            "null|enum-AB",
            r#"["null",{"type":"enum","name":"E","symbols":["A","B"]}]"#,
        ),
    ]
}

fn enum_cases(corpus: &mut Corpus) {
    let symbol_sets: &[&[&str]] = &[
        &["A", "B"],
        &["A", "B", "C"],
        &["A"],
        &["B", "C"],
        &["C", "B", "A"],
    ];
    let mut versions = Vec::new();
    for symbols in symbol_sets {
        let list = symbols
            .iter()
            .map(|s| format!("\"{s}\""))
            .collect::<Vec<_>>()
            .join(",");
        let name = symbols.join("");
        versions.push((name.clone(), None, list.clone()));
        for default in ["A", "C"] {
            if symbols.contains(&default) {
                versions.push((
                    format!("{name}-default-{default}"),
                    Some(default),
                    list.clone(),
                ));
            }
        }
    }
    let enum_schema = |default: Option<&str>, list: &str| match default {
        Some(d) => format!(
            r#"{{"type":"enum","name":"E","namespace":"io.test","symbols":[{list}],"default":"{d}"}}"#
        ),
        None => format!(r#"{{"type":"enum","name":"E","namespace":"io.test","symbols":[{list}]}}"#),
    };
    for (w_name, w_default, w_list) in &versions {
        for (r_name, r_default, r_list) in &versions {
            let writer = enum_schema(*w_default, w_list);
            let reader = enum_schema(*r_default, r_list);
            corpus.add(format!("enum/top/{w_name}->{r_name}"), &writer, &reader);
            corpus.add(
                format!("enum/field/{w_name}->{r_name}"),
                &holder(&writer),
                &holder(&reader),
            );
            corpus.add(
                format!("enum/in-union/{w_name}->{r_name}"),
                &holder(&format!(r#"["null",{writer}]"#)),
                &holder(&format!(r#"["null",{reader}]"#)),
            );
        }
    }
    // A field of enum type added with a field default, with and without an enum default.
    let base = r#"{"type":"record","name":"R","namespace":"io.test","fields":[{"name":"id","type":"string"}]}"#;
    for (name, field) in [
        (
            "field-default",
            r#"{"name":"e","type":{"type":"enum","name":"E","symbols":["A","B"]},"default":"A"}"#,
        ),
        (
            "enum-default-only",
            r#"{"name":"e","type":{"type":"enum","name":"E","symbols":["A","B"],"default":"A"}}"#,
        ),
        (
            "no-default",
            r#"{"name":"e","type":{"type":"enum","name":"E","symbols":["A","B"]}}"#,
        ),
    ] {
        let added = format!(
            r#"{{"type":"record","name":"R","namespace":"io.test","fields":[{{"name":"id","type":"string"}},{field}]}}"#
        );
        corpus.add(format!("enum/added-{name}/backward"), base, &added);
        corpus.add(format!("enum/added-{name}/forward"), &added, base);
    }
}

fn record_cases(corpus: &mut Corpus) {
    let record = |fields: &[&str]| {
        format!(
            r#"{{"type":"record","name":"Order","namespace":"io.test","fields":[{}]}}"#,
            fields.join(",")
        )
    };
    let id = r#"{"name":"id","type":"string"}"#;
    let qty = r#"{"name":"qty","type":"int"}"#;
    let versions = vec![
        ("base", record(&[id, qty])),
        ("reordered", record(&[qty, id])),
        ("qty-long", record(&[id, r#"{"name":"qty","type":"long"}"#])),
        (
            "qty-default",
            record(&[id, r#"{"name":"qty","type":"int","default":1}"#]),
        ),
        ("no-qty", record(&[id])),
        (
            "note-default-null",
            record(&[
                id,
                qty,
                r#"{"name":"note","type":["null","string"],"default":null}"#,
            ]),
        ),
        (
            "note-no-default",
            record(&[id, qty, r#"{"name":"note","type":["null","string"]}"#]),
        ),
        (
            "note-string-default",
            record(&[id, qty, r#"{"name":"note","type":"string","default":""}"#]),
        ),
        (
            "qty-renamed-alias",
            record(&[id, r#"{"name":"quantity","type":"int","aliases":["qty"]}"#]),
        ),
        (
            "qty-renamed",
            record(&[id, r#"{"name":"quantity","type":"int"}"#]),
        ),
        (
            "qty-optional",
            record(&[id, r#"{"name":"qty","type":["null","int"],"default":null}"#]),
        ),
        (
            "qty-int-or-string",
            record(&[id, r#"{"name":"qty","type":["int","string"],"default":0}"#]),
        ),
        (
            "lines-array",
            record(&[
                id,
                qty,
                r#"{"name":"lines","type":{"type":"array","items":{"type":"record","name":"Line","fields":[{"name":"sku","type":"string"}]}},"default":[]}"#,
            ]),
        ),
        (
            "lines-array-price",
            record(&[
                id,
                qty,
                r#"{"name":"lines","type":{"type":"array","items":{"type":"record","name":"Line","fields":[{"name":"sku","type":"string"},{"name":"price","type":"double","default":0.0}]}},"default":[]}"#,
            ]),
        ),
        (
            "lines-array-price-no-default",
            record(&[
                id,
                qty,
                r#"{"name":"lines","type":{"type":"array","items":{"type":"record","name":"Line","fields":[{"name":"sku","type":"string"},{"name":"price","type":"double"}]}},"default":[]}"#,
            ]),
        ),
        (
            "nested-map",
            record(&[
                id,
                qty,
                r#"{"name":"attrs","type":{"type":"map","values":"string"},"default":{}}"#,
            ]),
        ),
    ];
    let versions: Vec<(&str, String)> = versions;
    corpus.all_pairs("record", &versions);
}

fn name_cases(corpus: &mut Corpus) {
    let rec = |name: &str, namespace: Option<&str>, aliases: &[&str]| {
        let ns = namespace
            .map(|n| format!(r#","namespace":"{n}""#))
            .unwrap_or_default();
        let aliases = if aliases.is_empty() {
            String::new()
        } else {
            format!(
                r#","aliases":[{}]"#,
                aliases
                    .iter()
                    .map(|a| format!("\"{a}\""))
                    .collect::<Vec<_>>()
                    .join(",")
            )
        };
        format!(
            r#"{{"type":"record","name":"{name}"{ns}{aliases},"fields":[{{"name":"a","type":"int"}}]}}"#
        )
    };
    let versions = vec![
        ("a.R", rec("R", Some("a"), &[])),
        ("b.R", rec("R", Some("b"), &[])),
        ("R", rec("R", None, &[])),
        ("a.S", rec("S", Some("a"), &[])),
        ("a.S-alias-R", rec("S", Some("a"), &["R"])),
        ("a.S-alias-a.R", rec("S", Some("a"), &["a.R"])),
        ("b.S-alias-a.R", rec("S", Some("b"), &["a.R"])),
        ("b.S-alias-R", rec("S", Some("b"), &["R"])),
        ("a.R-full-name", rec("a.R", None, &[])),
    ];
    corpus.all_pairs("names/record", &versions);

    let named = |kind: &str, name: &str, aliases: &str| match kind {
        "enum" => format!(
            r#"{{"type":"enum","name":"{name}","namespace":"io.test"{aliases},"symbols":["A","B"]}}"#
        ),
        _ => {
            format!(r#"{{"type":"fixed","name":"{name}","namespace":"io.test"{aliases},"size":4}}"#)
        }
    };
    for kind in ["enum", "fixed"] {
        let versions = vec![
            ("X", holder(&named(kind, "X", ""))),
            ("Y", holder(&named(kind, "Y", ""))),
            (
                "Y-alias-X",
                holder(&named(kind, "Y", r#","aliases":["X"]"#)),
            ),
            (
                "Y-alias-io.test.X",
                holder(&named(kind, "Y", r#","aliases":["io.test.X"]"#)),
            ),
            (
                "Y-alias-other.X",
                holder(&named(kind, "Y", r#","aliases":["other.X"]"#)),
            ),
        ];
        corpus.all_pairs(&format!("names/{kind}"), &versions);
    }
}

fn reuse_cases(corpus: &mut Corpus) {
    let address = |extra: &str| {
        format!(
            r#"{{"type":"record","name":"Address","fields":[{{"name":"street","type":"string"}}{extra}]}}"#
        )
    };
    let twice = |def: &str| {
        format!(
            r#"{{"type":"record","name":"Customer","namespace":"io.test","fields":[
                {{"name":"billing","type":{def}}},{{"name":"shipping","type":"Address"}}]}}"#
        )
    };
    let in_union_and_array = |def: &str| {
        format!(
            r#"{{"type":"record","name":"Customer","namespace":"io.test","fields":[
                {{"name":"billing","type":["null",{def}],"default":null}},
                {{"name":"others","type":{{"type":"array","items":"Address"}}}}]}}"#
        )
    };
    let zip_default = r#",{"name":"zip","type":"string","default":""}"#;
    let zip_required = r#",{"name":"zip","type":"string"}"#;
    let zip_int = r#",{"name":"zip","type":"int","default":0}"#;
    let mut versions = Vec::new();
    for (name, extra) in [
        ("plain", ""),
        ("zip-default", zip_default),
        ("zip-required", zip_required),
        ("zip-int", zip_int),
    ] {
        versions.push((format!("twice-{name}"), twice(&address(extra))));
        versions.push((
            format!("union-array-{name}"),
            in_union_and_array(&address(extra)),
        ));
    }
    // A second use renamed through an alias.
    versions.push((
        "twice-renamed-alias".to_owned(),
        twice(r#"{"type":"record","name":"Place","aliases":["Address"],"fields":[{"name":"street","type":"string"}]}"#)
            .replace(r#""type":"Address""#, r#""type":"Place""#),
    ));
    let versions: Vec<(&str, String)> = versions
        .iter()
        .map(|(n, s)| (n.as_str(), s.clone()))
        .collect();
    corpus.all_pairs("reuse", &versions);

    // Recursive types: a linked list evolving.
    let node = |extra: &str| {
        format!(
            r#"{{"type":"record","name":"Node","namespace":"io.test","fields":[
                {{"name":"value","type":"int"}}{extra},{{"name":"next","type":["null","Node"],"default":null}}]}}"#
        )
    };
    let versions = vec![
        ("plain", node("")),
        (
            "label-default",
            node(r#",{"name":"label","type":"string","default":""}"#),
        ),
        (
            "label-required",
            node(r#",{"name":"label","type":"string"}"#),
        ),
        (
            "value-long",
            node("").replace(
                r#""name":"value","type":"int""#,
                r#""name":"value","type":"long""#,
            ),
        ),
    ];
    corpus.all_pairs("reuse/recursive", &versions);
}

/// The project's evolved contracts (read from the workspace at run time): each version kept as a
/// fixture against today's schema, both directions. The pick list's subject is FULL, so both of
/// its directions must be compatible (checked in [`compat_agrees_with_java_avro`]).
fn grocery_cases(corpus: &mut Corpus) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let read = |rel: &str| {
        std::fs::read_to_string(root.join(rel))
            .unwrap_or_else(|e| panic!("cannot read {rel} from the workspace: {e}"))
    };
    for (name, old, new) in [
        (
            "picklist",
            "crates/grocery-events/tests/fixtures/picklist-v1/schema.avsc",
            "schemas/grocery.picklist.v1.avsc",
        ),
        (
            "orders",
            "crates/grocery-events/tests/fixtures/orders-v1/schema.avsc",
            "schemas/grocery.orders.v1.avsc",
        ),
    ] {
        let versions = vec![("v1", read(old)), ("v2", read(new))];
        corpus.all_pairs(&format!("grocery/{name}"), &versions);
    }
    // The latest-state contract has one version so far: Java Avro parses it and reads it as
    // itself; its next version joins here as a fixture, like the two above.
    let state = read("schemas/grocery.order-state.v1.avsc");
    corpus.all_pairs(
        "grocery/order-state",
        &[("v1", state.clone()), ("v1-again", state)],
    );
}

fn corpus() -> Vec<Pair> {
    let mut corpus = Corpus::default();
    let types = field_types();
    for (w_name, writer) in &types {
        for (r_name, reader) in &types {
            corpus.add(
                format!("types/{w_name}->{r_name}"),
                &holder(writer),
                &holder(reader),
            );
        }
    }
    enum_cases(&mut corpus);
    record_cases(&mut corpus);
    name_cases(&mut corpus);
    reuse_cases(&mut corpus);
    grocery_cases(&mut corpus);
    corpus.pairs
}

// ---------------------------------------------------------------------------------------------
// The JVM.

fn oracle_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("oracle")
}

fn run(command: &mut Command, what: &str) -> Output {
    command.stdin(Stdio::null()).output().unwrap_or_else(|e| {
        panic!("{what}: cannot start it (Java 17 and Maven must be on PATH): {e}")
    })
}

fn tail(output: &Output) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// The jars of `oracle/pom.xml`, resolved by Maven once (offline first) and cached.
fn classpath() -> String {
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("avro-oracle-jars");
    test_support::maven::classpath(&oracle_dir().join("pom.xml"), &cache)
        .unwrap_or_else(|e| panic!("the Java Avro oracle: {e:#}"))
}

/// Java Avro's answers, one per pair: `Ok(())` compatible, `Err(messages)` incompatible.
fn java_verdicts(pairs: &[Pair]) -> Vec<Result<(), String>> {
    let input = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("avro-oracle-pairs.{}.txt", std::process::id()));
    let mut text = String::new();
    for pair in pairs {
        text.push_str(&pair.writer);
        text.push('\n');
        text.push_str(&pair.reader);
        text.push('\n');
    }
    std::fs::write(&input, text).expect("write the pairs");
    let output = run(
        Command::new("java")
            .arg("-cp")
            .arg(classpath())
            .arg(oracle_dir().join("Oracle.java"))
            .arg(&input),
        "java Oracle.java",
    );
    std::fs::remove_file(&input).expect("remove the pairs file");
    assert!(
        output.status.success(),
        "the Java oracle failed ({}):\n{}",
        output.status,
        tail(&output)
    );
    let stdout = String::from_utf8(output.stdout).expect("the oracle prints UTF-8");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines.len(),
        pairs.len(),
        "the oracle answered {} pairs of {}",
        lines.len(),
        pairs.len()
    );
    lines
        .iter()
        .zip(pairs)
        .map(|(line, pair)| match line.split_once('\t') {
            None if *line == "COMPATIBLE" => Ok(()),
            Some(("INCOMPATIBLE", why)) => Err(why.to_owned()),
            Some(("ERROR", why)) => panic!(
                "Java Avro refused generated pair {}: {why}\nwriter: {}\nreader: {}",
                pair.case, pair.writer, pair.reader
            ),
            _ => panic!("unexpected oracle line for {}: {line}", pair.case),
        })
        .collect()
}

#[test]
fn compat_agrees_with_java_avro() {
    let pairs = corpus();
    let mut per_category: BTreeMap<&str, usize> = BTreeMap::new();
    for pair in &pairs {
        let category = pair.case.split('/').next().unwrap_or_default();
        *per_category.entry(category).or_default() += 1;
    }
    println!("{} pairs: {per_category:?}", pairs.len());
    assert!(pairs.len() >= 500, "only {} pairs", pairs.len());
    let mut names: Vec<&str> = pairs.iter().map(|p| p.case.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), pairs.len(), "case names must be unique");

    let java = java_verdicts(&pairs);
    let mut disagreements = Vec::new();
    let mut compatible = 0;
    for (pair, java) in pairs.iter().zip(&java) {
        let parse = |text: &str| {
            Schema::parse_str(text).unwrap_or_else(|e| {
                panic!(
                    "apache-avro refused generated pair {}: {e}\n{text}",
                    pair.case
                )
            })
        };
        let ours = can_read(&parse(&pair.writer), &parse(&pair.reader));
        compatible += usize::from(java.is_ok());
        if ours != java.is_ok() {
            disagreements.push((pair, ours, java));
        }
    }
    println!(
        "Java Avro: {compatible} compatible, {} incompatible",
        pairs.len() - compatible
    );
    // Pick list version 2 (the delivery window) under FULL: Java Avro reads each version's data
    // with the other's schema.
    for direction in ["grocery/picklist/v1->v2", "grocery/picklist/v2->v1"] {
        let verdict = pairs
            .iter()
            .zip(&java)
            .find(|(pair, _)| pair.case == direction)
            .map(|(_, java)| java.clone())
            .unwrap_or_else(|| panic!("{direction} is not in the corpus"));
        assert_eq!(verdict, Ok(()), "{direction}: Java Avro says incompatible");
    }
    let known = |case: &str| {
        KNOWN_DISAGREEMENTS
            .iter()
            .find(|(prefix, _)| case.starts_with(prefix))
    };
    let unexplained: Vec<String> = disagreements
        .iter()
        .filter(|(pair, ..)| known(&pair.case).is_none())
        .map(|(pair, ours, java)| {
            format!(
                "{}: compat says {}, Java Avro says {}\n  writer: {}\n  reader: {}",
                pair.case,
                if *ours { "compatible" } else { "incompatible" },
                match java {
                    Ok(()) => "compatible".to_owned(),
                    Err(why) => format!("incompatible ({why})"),
                },
                pair.writer,
                pair.reader
            )
        })
        .collect();
    for (pair, ..) in &disagreements {
        if let Some((_, why)) = known(&pair.case) {
            println!("known disagreement {}: {why}", pair.case);
        }
    }
    assert!(
        unexplained.is_empty(),
        "{} of {} pairs disagree with Java Avro:\n{}",
        unexplained.len(),
        pairs.len(),
        unexplained.join("\n")
    );
    // Every listed disagreement still happens (no stale excuses).
    for (prefix, _) in KNOWN_DISAGREEMENTS {
        assert!(
            disagreements
                .iter()
                .any(|(pair, ..)| pair.case.starts_with(prefix)),
            "KNOWN_DISAGREEMENTS lists {prefix}, which now agrees: remove it"
        );
    }
}
