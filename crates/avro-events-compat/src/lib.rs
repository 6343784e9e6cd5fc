//! Avro schema compatibility, with the answers Confluent's Schema Registry gives.
//!
//! The verdict comes from [`apache_avro::schema_compatibility::SchemaCompatibility`]; only a
//! [`Compatibility::Full`] answer counts as compatible (a `Partial` one, such as a narrowed union
//! or an enum that lost a symbol, is an incompatibility). Both schemas are first brought into the
//! shape in which Confluent's checker (Java Avro's `SchemaCompatibility`) sees them:
//!
//! * **logical types are compared by their physical type.** Java Avro ignores logical types when
//!   checking compatibility, so `long` ↔ `timestamp-millis`, `string` ↔ `uuid` and a changed
//!   decimal precision or scale are all compatible in Confluent. apache-avro rejects a changed
//!   decimal precision or scale and accepts `uuid` on `string` against `uuid` on `fixed`; both
//!   differ from Confluent.
//! * **named types used twice are inlined**, so that the second use of a record (a reference by
//!   name) is compared by its content. apache-avro reports a type mismatch when one schema
//!   defines the type where the other one refers to it.
//! * **reader aliases rename the writer's named types** (Java's `schemaNameEquals` accepts a
//!   writer whose full name is one of the reader's aliases; apache-avro compares names only).
//!   A renamed record without an alias stays incompatible, as in Confluent.
//!
//! This crate knows nothing of HTTP or Kafka: the codec of `avro-events` (which re-exports it as
//! `avro_events::compat`), the local Schema Registry and the schema checker (`schema-check`)
//! all call [`check`], [`check_versions`] or [`can_read`]. Its answers are compared with Java
//! Avro's `SchemaCompatibility` over a generated corpus of schema pairs (`tests/java_oracle.rs`).
//!
//! ```
//! use apache_avro::Schema;
//! use avro_events_compat::{check, CompatibilityLevel};
//!
//! let v1 = Schema::parse_str(r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"}]}"#)?;
//! let v2 = Schema::parse_str(
//!     r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"},{"name":"b","type":"string"}]}"#,
//! )?;
//! let report = check(CompatibilityLevel::Backward, &v2, &[v1]);
//! assert!(!report.is_compatible());
//! assert!(report.incompatibilities[0].to_string().contains("'b'"));
//! # Ok::<(), apache_avro::Error>(())
//! ```

mod rewrite;

use std::borrow::Borrow;
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use apache_avro::Schema;
use apache_avro::schema_compatibility::{Compatibility, SchemaCompatibility};

use rewrite::{physical, reader_aliases};

/// A subject's compatibility level, named as Confluent names it (`BACKWARD`, `FULL_TRANSITIVE`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CompatibilityLevel {
    /// The new schema can read data written with the latest previous schema (Confluent's default).
    #[default]
    Backward,
    /// The new schema can read data written with every previous schema.
    BackwardTransitive,
    /// The latest previous schema can read data written with the new schema.
    Forward,
    /// Every previous schema can read data written with the new schema.
    ForwardTransitive,
    /// Both [`Backward`](Self::Backward) and [`Forward`](Self::Forward).
    Full,
    /// Both [`BackwardTransitive`](Self::BackwardTransitive) and
    /// [`ForwardTransitive`](Self::ForwardTransitive).
    FullTransitive,
    /// No check at all.
    None,
}

impl CompatibilityLevel {
    /// Every level, in Confluent's documentation order.
    pub const ALL: [CompatibilityLevel; 7] = [
        Self::Backward,
        Self::BackwardTransitive,
        Self::Forward,
        Self::ForwardTransitive,
        Self::Full,
        Self::FullTransitive,
        Self::None,
    ];

    /// Confluent's name for the level, e.g. `"BACKWARD_TRANSITIVE"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Backward => "BACKWARD",
            Self::BackwardTransitive => "BACKWARD_TRANSITIVE",
            Self::Forward => "FORWARD",
            Self::ForwardTransitive => "FORWARD_TRANSITIVE",
            Self::Full => "FULL",
            Self::FullTransitive => "FULL_TRANSITIVE",
            Self::None => "NONE",
        }
    }

    /// Whether the new schema is checked against every previous schema (not only the latest).
    pub fn is_transitive(self) -> bool {
        matches!(
            self,
            Self::BackwardTransitive | Self::ForwardTransitive | Self::FullTransitive
        )
    }

    fn checks_backward(self) -> bool {
        matches!(
            self,
            Self::Backward | Self::BackwardTransitive | Self::Full | Self::FullTransitive
        )
    }

    fn checks_forward(self) -> bool {
        matches!(
            self,
            Self::Forward | Self::ForwardTransitive | Self::Full | Self::FullTransitive
        )
    }
}

impl fmt::Display for CompatibilityLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text was not one of Confluent's compatibility level names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid compatibility level '{0}'; valid values are none, backward, forward, full, \
     backward_transitive, forward_transitive and full_transitive"
)]
pub struct InvalidCompatibilityLevel(pub String);

impl FromStr for CompatibilityLevel {
    type Err = InvalidCompatibilityLevel;

    /// Parses Confluent's names, ignoring ASCII case (the registry accepts `"backward"` too).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|level| level.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| InvalidCompatibilityLevel(s.to_owned()))
    }
}

impl serde::Serialize for CompatibilityLevel {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for CompatibilityLevel {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Which way data flows in a failed check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// The new schema (reader) could not read data written with a previous schema (writer).
    Backward,
    /// A previous schema (reader) could not read data written with the new schema (writer).
    Forward,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Backward => "BACKWARD",
            Self::Forward => "FORWARD",
        })
    }
}

/// The rule a schema pair broke, named as Java Avro (and so Confluent) names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IncompatibilityKind {
    /// A named type's name differs and no reader alias allows it.
    NameMismatch,
    /// Two `fixed` types differ in size.
    FixedSizeMismatch,
    /// The reader enum lacks writer symbols and has no default symbol.
    MissingEnumSymbols,
    /// A reader field is missing from the writer and has no default value.
    ReaderFieldMissingDefaultValue,
    /// The types cannot be promoted into each other.
    TypeMismatch,
    /// A writer type (or union branch) has no matching branch in the reader union.
    MissingUnionBranch,
}

impl fmt::Display for IncompatibilityKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NameMismatch => "NAME_MISMATCH",
            Self::FixedSizeMismatch => "FIXED_SIZE_MISMATCH",
            Self::MissingEnumSymbols => "MISSING_ENUM_SYMBOLS",
            Self::ReaderFieldMissingDefaultValue => "READER_FIELD_MISSING_DEFAULT_VALUE",
            Self::TypeMismatch => "TYPE_MISMATCH",
            Self::MissingUnionBranch => "MISSING_UNION_BRANCH",
        })
    }
}

/// One broken rule: where, which rule, and against which previous version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incompatibility {
    /// The rule that was broken.
    pub kind: IncompatibilityKind,
    /// Where in the reader schema, as a path of field names (`/lines/items/qty`; `/` is the root).
    pub path: String,
    /// What is wrong, in words, naming the field or type.
    pub description: String,
    /// Which reading direction failed.
    pub direction: Direction,
    /// The version of the previous schema the new one was checked against.
    pub version: u32,
}

impl fmt::Display for Incompatibility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at '{}': {} ({} against version {})",
            self.kind, self.path, self.description, self.direction, self.version
        )
    }
}

/// The outcome of a [`check`]: compatible when there are no incompatibilities.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CompatibilityReport {
    /// Every broken rule found, in the order the previous versions were checked.
    pub incompatibilities: Vec<Incompatibility>,
}

impl CompatibilityReport {
    /// Whether the new schema may be registered.
    pub fn is_compatible(&self) -> bool {
        self.incompatibilities.is_empty()
    }

    /// The incompatibilities as display strings (for the registry's `messages`).
    pub fn messages(&self) -> Vec<String> {
        self.incompatibilities
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    /// `Ok(())` when compatible, else the incompatibilities.
    pub fn into_result(self) -> Result<(), Vec<Incompatibility>> {
        if self.incompatibilities.is_empty() {
            Ok(())
        } else {
            Err(self.incompatibilities)
        }
    }
}

/// A previous schema together with its version number in the subject.
#[derive(Debug, Clone, Copy)]
pub struct Previous<'a> {
    /// The version number (used in messages only).
    pub version: u32,
    /// The schema registered as that version.
    pub schema: &'a Schema,
}

/// Checks `new` against `previous` (oldest first; versions numbered from 1) at `level`.
///
/// `previous` may hold schemas or references to them (`&[v1, v2]` or `&[&v1, &v2]`).
///
/// Non-transitive levels check only against the last element of `previous`; transitive levels
/// against all of them. An empty `previous` is always compatible.
pub fn check<S: Borrow<Schema>>(
    level: CompatibilityLevel,
    new: &Schema,
    previous: &[S],
) -> CompatibilityReport {
    let numbered: Vec<Previous<'_>> = previous
        .iter()
        .enumerate()
        .map(|(i, schema)| Previous {
            version: u32::try_from(i + 1).unwrap_or(u32::MAX),
            schema: schema.borrow(),
        })
        .collect();
    check_versions(level, new, &numbered)
}

/// Like [`check`], with the subject's own version numbers (oldest first).
pub fn check_versions(
    level: CompatibilityLevel,
    new: &Schema,
    previous: &[Previous<'_>],
) -> CompatibilityReport {
    let against: &[Previous<'_>] = if level.is_transitive() {
        previous
    } else {
        previous.last().map(std::slice::from_ref).unwrap_or(&[])
    };
    let mut report = CompatibilityReport::default();
    // Newest first, as Confluent reports transitive failures.
    for old in against.iter().rev() {
        if level.checks_backward() {
            for (kind, path, description) in reader_writer(old.schema, new) {
                report.incompatibilities.push(Incompatibility {
                    kind,
                    path,
                    description,
                    direction: Direction::Backward,
                    version: old.version,
                });
            }
        }
        if level.checks_forward() {
            for (kind, path, description) in reader_writer(new, old.schema) {
                report.incompatibilities.push(Incompatibility {
                    kind,
                    path,
                    description,
                    direction: Direction::Forward,
                    version: old.version,
                });
            }
        }
    }
    report
}

/// Whether `reader` can read everything written with `writer`, with Confluent's rules.
pub fn can_read(writer: &Schema, reader: &Schema) -> bool {
    reader_writer(writer, reader).is_empty()
}

type Finding = (IncompatibilityKind, String, String);

/// The incompatibilities of reading data written with `writer` using `reader`.
fn reader_writer(writer: &Schema, reader: &Schema) -> Vec<Finding> {
    let reader = physical(reader, &HashMap::new());
    let writer = physical(writer, &reader_aliases(&reader));
    if matches!(
        SchemaCompatibility::can_read(&writer, &reader),
        Ok(Compatibility::Full)
    ) {
        return Vec::new();
    }
    let mut findings = Vec::new();
    explain(&writer, &reader, "", &mut findings);
    if findings.is_empty() {
        // apache-avro refused but the walk found no rule to name: report its own words.
        let detail = match SchemaCompatibility::can_read(&writer, &reader) {
            Err(e) => e.to_string(),
            Ok(_) => "only partially compatible".to_owned(),
        };
        findings.push((IncompatibilityKind::TypeMismatch, "/".to_owned(), detail));
    }
    findings
}

fn full(writer: &Schema, reader: &Schema) -> bool {
    matches!(
        SchemaCompatibility::can_read(writer, reader),
        Ok(Compatibility::Full)
    )
}

/// Walks a pair that apache-avro did not find fully compatible and names every broken rule.
fn explain(writer: &Schema, reader: &Schema, path: &str, out: &mut Vec<Finding>) {
    if full(writer, reader) {
        return;
    }
    let here = if path.is_empty() { "/" } else { path };
    if let (Some(w), Some(r)) = (writer.name(), reader.name())
        && w.name() != r.name()
    {
        out.push((
            IncompatibilityKind::NameMismatch,
            here.to_owned(),
            format!(
                "reader type '{}' does not match writer type '{}' and has no alias for it",
                r.fullname(None),
                w.fullname(None)
            ),
        ));
        return;
    }
    match (writer, reader) {
        (Schema::Record(w), Schema::Record(r)) => {
            for r_field in &r.fields {
                let w_field = std::iter::once(&r_field.name)
                    .chain(r_field.aliases.iter())
                    .find_map(|name| w.fields.iter().find(|f| &f.name == name));
                let field_path = format!("{path}/{}", r_field.name);
                match w_field {
                    Some(w_field) => explain(&w_field.schema, &r_field.schema, &field_path, out),
                    None if r_field.default.is_none() => out.push((
                        IncompatibilityKind::ReaderFieldMissingDefaultValue,
                        field_path,
                        format!(
                            "reader field '{}' has no default and is missing from the writer",
                            r_field.name
                        ),
                    )),
                    None => {}
                }
            }
        }
        (Schema::Array(w), Schema::Array(r)) => {
            explain(&w.items, &r.items, &format!("{path}/items"), out);
        }
        (Schema::Map(w), Schema::Map(r)) => {
            explain(&w.types, &r.types, &format!("{path}/values"), out);
        }
        (Schema::Enum(w), Schema::Enum(r)) => {
            let missing: Vec<&str> = w
                .symbols
                .iter()
                .filter(|s| !r.symbols.contains(s))
                .map(String::as_str)
                .collect();
            out.push((
                IncompatibilityKind::MissingEnumSymbols,
                here.to_owned(),
                format!(
                    "reader enum '{}' has no default and lacks writer symbols [{}]",
                    r.name.fullname(None),
                    missing.join(", ")
                ),
            ));
        }
        (Schema::Fixed(w), Schema::Fixed(r)) => out.push((
            IncompatibilityKind::FixedSizeMismatch,
            here.to_owned(),
            format!(
                "reader fixed '{}' has size {}, writer has size {}",
                r.name.fullname(None),
                r.size,
                w.size
            ),
        )),
        (Schema::Union(w), _) => {
            for (i, branch) in w.variants().iter().enumerate() {
                if !full(branch, reader) {
                    let before = out.len();
                    explain(branch, reader, path, out);
                    if out.len() == before {
                        out.push((
                            IncompatibilityKind::MissingUnionBranch,
                            here.to_owned(),
                            format!(
                                "writer union branch {i} ({}) cannot be read by reader type {}",
                                kind_name(branch),
                                kind_name(reader)
                            ),
                        ));
                    }
                }
            }
        }
        (_, Schema::Union(r)) => {
            // A single non-union reader branch of the same kind explains it best.
            let same_kind: Vec<&Schema> = r
                .variants()
                .iter()
                .filter(|b| kind_name(b) == kind_name(writer))
                .collect();
            if let [only] = same_kind.as_slice() {
                explain(writer, only, path, out);
            } else {
                out.push((
                    IncompatibilityKind::MissingUnionBranch,
                    here.to_owned(),
                    format!("reader union lacks writer type {}", kind_name(writer)),
                ));
            }
        }
        _ => out.push((
            IncompatibilityKind::TypeMismatch,
            here.to_owned(),
            format!(
                "reader type {} is not compatible with writer type {}",
                kind_name(reader),
                kind_name(writer)
            ),
        )),
    }
}

fn kind_name(schema: &Schema) -> String {
    match schema {
        Schema::Record(r) => format!("record {}", r.name.fullname(None)),
        Schema::Enum(e) => format!("enum {}", e.name.fullname(None)),
        Schema::Fixed(f) => format!("fixed {}", f.name.fullname(None)),
        Schema::Ref { name } => format!("reference {}", name.fullname(None)),
        Schema::Union(_) => "union".to_owned(),
        other => format!("{:?}", apache_avro::schema::SchemaKind::from(other)).to_lowercase(),
    }
}

/// The crate's README, whose examples are compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
