//! Event declarations: which record travels on which topic, keyed by which field. They come from
//! builder calls ([`Builder::event`](crate::Builder::event)) or from a TOML file next to the
//! schemas:
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    events: BTreeMap<String, Entry>,
    #[serde(default)]
    references: BTreeMap<String, ReferenceEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReferenceEntry {
    subject: Option<String>,
    version: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    topic: String,
    key: String,
}

/// Reads the declarations in the TOML file at `path`: events and references.
pub(crate) fn read_file(
    path: &Path,
) -> Result<(Vec<Declaration>, Vec<ReferenceDeclaration>), Error> {
    let text = fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })?;
    let file = parse_file(&text, path)?;
    let references = file
        .references
        .into_iter()
        .map(|(name, entry)| ReferenceDeclaration {
            subject: entry.subject.unwrap_or_else(|| name.clone()),
            version: entry.version.unwrap_or(1),
            name,
        })
        .collect();
    Ok((events(file.events, path), references))
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
