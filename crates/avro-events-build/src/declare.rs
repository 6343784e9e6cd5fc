//! Event declarations: which record travels on which topic, keyed by which field, and which
//! declared events share a topic as one family. They come from builder calls
//! ([`Builder::event`](crate::Builder::event), [`Builder::family`](crate::Builder::family)) or
//! from a TOML file next to the schemas:
//!
//! ```toml
//! [events."io.example.Reading"]
//! topic = "sensor.readings.v1"
//! key = "sensor_id"
//!
//! # A type an event uses from another file, registered under its own subject (optional:
//! # subject defaults to the full name, version to 1).
//! [references."io.example.Site"]
//! subject = "io.example.Site"
//! version = 2
//!
//! [families.SensorEvents]
//! topic = "sensor.events.v1"
//! members = ["io.example.Reading", "io.example.Calibrated"]
//! ```

use std::{collections::BTreeMap, fs, path::Path};

use serde::Deserialize;

use crate::Error;

/// One record declared as an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Declaration {
    /// Full name of the record (`namespace.Name`).
    pub(crate) record: String,
    /// The topic it is produced to by default.
    pub(crate) topic: String,
    /// The Avro name of the field whose value is the Kafka key.
    pub(crate) key: String,
    /// Where it was declared, for error messages: `build.rs` or the declarations file.
    pub(crate) declared_in: String,
}

/// Where a type that events use from another file is registered (Confluent's schema
/// references: subject and version).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReferenceDeclaration {
    /// Full name of the type (the top-level type of its file).
    pub(crate) name: String,
    /// Its subject.
    pub(crate) subject: String,
    /// Its version in the subject.
    pub(crate) version: u32,
}

/// Several declared events read from one topic into one generated enum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Family {
    /// The Rust name of the enum.
    pub(crate) name: String,
    /// The topic it is read from and produced to by default.
    pub(crate) topic: String,
    /// The full names of its records, each a declared event, in variant order.
    pub(crate) members: Vec<String>,
    /// Where it was declared, for error messages.
    pub(crate) declared_in: String,
}

/// What a declarations file declares.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Declared {
    pub(crate) events: Vec<Declaration>,
    pub(crate) families: Vec<Family>,
    pub(crate) references: Vec<ReferenceDeclaration>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    events: BTreeMap<String, Entry>,
    #[serde(default)]
    references: BTreeMap<String, ReferenceEntry>,
    #[serde(default)]
    families: BTreeMap<String, FamilyEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReferenceEntry {
    subject: Option<String>,
    version: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FamilyEntry {
    topic: String,
    members: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    topic: String,
    key: String,
}

/// Reads the declarations in the TOML file at `path`.
pub(crate) fn read_file(path: &Path) -> Result<Declared, Error> {
    let text = fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })?;
    Ok(from_file(parse_file(&text, path)?, path))
}

/// The declarations of a parsed file.
fn from_file(file: File, path: &Path) -> Declared {
    let references = file
        .references
        .into_iter()
        .map(|(name, entry)| ReferenceDeclaration {
            subject: entry.subject.unwrap_or_else(|| name.clone()),
            version: entry.version.unwrap_or(1),
            name,
        })
        .collect();
    let families = file
        .families
        .into_iter()
        .map(|(name, entry)| Family {
            name,
            topic: entry.topic,
            members: entry.members,
            declared_in: path.display().to_string(),
        })
        .collect();
    Declared {
        events: events(file.events, path),
        families,
        references,
    }
}

/// Checks that each family has a Rust name, a valid topic and at least one member, every
/// member a declared event, none twice.
pub(crate) fn check_families(
    families: &[Family],
    declarations: &[Declaration],
) -> Result<(), Error> {
    for (i, family) in families.iter().enumerate() {
        let invalid = |problem: String| Error::InvalidFamily {
            family: family.name.clone(),
            declared_in: family.declared_in.clone(),
            problem,
        };
        let is_ident = family
            .name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_uppercase())
            && family
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !is_ident {
            return Err(invalid(
                "its name must be a Rust type name (an upper-case ASCII letter, then letters, \
                 digits or '_')"
                    .into(),
            ));
        }
        if families[..i].iter().any(|f| f.name == family.name) {
            return Err(invalid("it is declared twice".into()));
        }
        if !is_valid_topic(&family.topic) {
            return Err(invalid(format!(
                "'{}' is not a valid topic name",
                family.topic
            )));
        }
        if family.members.is_empty() {
            return Err(invalid("it has no members".into()));
        }
        for (j, member) in family.members.iter().enumerate() {
            if family.members[..j].contains(member) {
                return Err(invalid(format!("member {member} is listed twice")));
            }
            if !declarations.iter().any(|d| d.record == *member) {
                return Err(invalid(format!(
                    "member {member} is not a declared event (declare it under \
                     [events.\"{member}\"])"
                )));
            }
        }
    }
    Ok(())
}

fn parse_file(text: &str, path: &Path) -> Result<File, Error> {
    toml::from_str(text).map_err(|e| Error::InvalidDeclarations {
        path: path.to_owned(),
        message: e.to_string().trim_end().to_owned(),
    })
}

#[cfg(test)]
fn parse(text: &str, path: &Path) -> Result<Vec<Declaration>, Error> {
    Ok(events(parse_file(text, path)?.events, path))
}

fn events(entries: BTreeMap<String, Entry>, path: &Path) -> Vec<Declaration> {
    entries
        .into_iter()
        .map(|(record, entry)| Declaration {
            record,
            topic: entry.topic,
            key: entry.key,
            declared_in: path.display().to_string(),
        })
        .collect()
}

/// Checks that no record is declared twice and that every topic is a valid Kafka topic name.
pub(crate) fn check(declarations: &[Declaration]) -> Result<(), Error> {
    for (i, declaration) in declarations.iter().enumerate() {
        if let Some(first) = declarations[..i]
            .iter()
            .find(|d| d.record == declaration.record)
        {
            return Err(Error::DuplicateDeclaration {
                record: declaration.record.clone(),
                first: first.declared_in.clone(),
                second: declaration.declared_in.clone(),
            });
        }
        if !is_valid_topic(&declaration.topic) {
            return Err(Error::InvalidTopic {
                record: declaration.record.clone(),
                topic: declaration.topic.clone(),
                declared_in: declaration.declared_in.clone(),
            });
        }
    }
    Ok(())
}

/// Kafka's rule for topic names.
fn is_valid_topic(topic: &str) -> bool {
    !topic.is_empty()
        && topic.len() <= 249
        && topic != "."
        && topic != ".."
        && topic
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn declared(record: &str, topic: &str) -> Declaration {
        Declaration {
            record: record.into(),
            topic: topic.into(),
            key: "id".into(),
            declared_in: "build.rs".into(),
        }
    }

    #[test]
    fn a_file_declares_topic_and_key_per_record() {
        let text = r#"
            [events."io.example.Reading"]
            topic = "sensor.readings.v1"
            key = "sensor_id"
        "#;
        let parsed = parse(text, Path::new("events.toml")).unwrap();
        assert_eq!(
            parsed,
            [Declaration {
                record: "io.example.Reading".into(),
                topic: "sensor.readings.v1".into(),
                key: "sensor_id".into(),
                declared_in: "events.toml".into(),
            }]
        );
    }

    fn family(name: &str, members: &[&str]) -> Family {
        Family {
            name: name.into(),
            topic: "t".into(),
            members: members.iter().map(|m| (*m).to_owned()).collect(),
            declared_in: "events.toml".into(),
        }
    }

    #[test]
    fn a_file_declares_families_of_declared_events() {
        let text = r#"
            [events."a.B"]
            topic = "t"
            key = "id"

            [families.Things]
            topic = "things.v1"
            members = ["a.B"]
        "#;
        let declared = read_text(text);
        assert_eq!(declared.families[0].name, "Things");
        assert_eq!(declared.families[0].members, ["a.B"]);
        check_families(&declared.families, &declared.events).unwrap();
    }

    fn read_text(text: &str) -> Declared {
        let path = Path::new("events.toml");
        from_file(parse_file(text, path).unwrap(), path)
    }

    #[test]
    fn bad_families_are_refused_with_the_reason() {
        let events = [declared("a.B", "t"), declared("a.C", "t")];
        for (families, reason) in [
            (vec![family("things", &["a.B"])], "must be a Rust type name"),
            (vec![family("Things", &[])], "has no members"),
            (vec![family("Things", &["a.B", "a.B"])], "listed twice"),
            (
                vec![family("Things", &["a.D"])],
                "a.D is not a declared event",
            ),
            (
                vec![family("Things", &["a.B"]), family("Things", &["a.C"])],
                "declared twice",
            ),
        ] {
            let err = check_families(&families, &events).unwrap_err();
            assert!(err.to_string().contains(reason), "{reason}: {err}");
            assert!(err.to_string().contains("events.toml"), "{err}");
        }
    }

    #[test]
    fn unknown_keys_and_missing_fields_name_the_file() {
        for text in [
            "[events.\"a.B\"]\ntopic = \"t\"\n",
            "[events.\"a.B\"]\ntopic = \"t\"\nkey = \"k\"\npartitions = 3\n",
            "[event.\"a.B\"]\ntopic = \"t\"\nkey = \"k\"\n",
            "not toml",
        ] {
            let err = parse(text, Path::new("schemas/events.toml")).unwrap_err();
            assert!(
                matches!(err, Error::InvalidDeclarations { .. }),
                "{text}: {err:?}"
            );
            assert!(err.to_string().contains("schemas/events.toml"), "{err}");
        }
    }

    #[test]
    fn duplicate_records_and_bad_topics_are_refused() {
        let mut again = declared("a.B", "t2");
        again.declared_in = "events.toml".into();
        let err = check(&[declared("a.B", "t"), again]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "event a.B is declared twice (in build.rs and in events.toml)"
        );
        for topic in ["", ".", "..", "has space", "ünï", &"x".repeat(250)] {
            let err = check(&[declared("a.B", topic)]).unwrap_err();
            assert!(matches!(err, Error::InvalidTopic { .. }), "{topic}: {err}");
        }
        check(&[declared("a.B", "grocery.orders-v1_x"), declared("a.C", "t")]).unwrap();
    }
}
