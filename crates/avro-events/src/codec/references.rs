//! The codec's side of schema references: a registered schema made whole with the schemas its
//! references name (fetched by the registry client), and the referenced schemas of an
//! [`Event`] registered before the event's own.

use apache_avro::Schema;
use tracing::debug;

use super::Codec;
use crate::{Error, Event, EventReference, Result, registry::SchemaReference};

impl Codec {
    /// `text` with the types of its `references` (fetched recursively) written out.
    pub(super) async fn whole_schema(
        &self,
        text: &str,
        references: &[SchemaReference],
    ) -> std::result::Result<Schema, Whole> {
        if references.is_empty() {
            return Schema::parse_str(text).map_err(|e| Whole::Unparsable(e.to_string()));
        }
        let referenced = match self.registry.referenced_schemas(references).await {
            Ok(found) => found,
            Err(
                e @ (Error::SubjectNotFound { .. }
                | Error::VersionNotFound { .. }
                | Error::Registry { .. }),
            ) => {
                return Err(Whole::MissingReference(format!(
                    "a reference cannot be had: {e}"
                )));
            }
            Err(e) => return Err(Whole::Registry(e)),
        };
        crate::referenced::self_contained(text, referenced.iter().map(|r| r.schema.as_str()))
            .map_err(Whole::Unparsable)
    }

    /// Registers the schemas `references` name (theirs first, each once), as Confluent's Maven
    /// plugin registers referenced subjects before the schema using them, and checks that each
    /// is the version `E` declares.
    pub(super) async fn register_references<E: Event>(
        &self,
        references: &[EventReference],
    ) -> Result<()> {
        // Post-order without recursion: (reference, its own references registered yet).
        let mut stack: Vec<(&EventReference, bool)> =
            references.iter().rev().map(|r| (r, false)).collect();
        let mut done = std::collections::HashSet::new();
        while let Some((reference, inner_done)) = stack.pop() {
            if done.contains(reference.name) {
                continue;
            }
            if !inner_done {
                stack.push((reference, true));
                stack.extend(reference.references.iter().rev().map(|r| (r, false)));
                continue;
            }
            let inner: Vec<SchemaReference> = reference
                .references
                .iter()
                .map(EventReference::to_registry)
                .collect();
            let normalize = self.options.normalize_schemas;
            self.registry
                .register_with_references(reference.subject, reference.schema, &inner, normalize)
                .await?;
            let found = self
                .registry
                .lookup_with_references(reference.subject, reference.schema, &inner, normalize)
                .await?;
            if found.version != reference.version {
                return Err(Error::InvalidSchema {
                    origin: format!("type {}", E::FULL_NAME),
                    reason: format!(
                        "its reference '{}' is version {} of subject '{}', but the registry \
                         holds that schema as version {}",
                        reference.name, reference.version, reference.subject, found.version
                    ),
                });
            }
            debug!(
                reference = reference.name,
                subject = reference.subject,
                version = found.version,
                "registered referenced schema"
            );
            done.insert(reference.name);
        }
        Ok(())
    }

    /// A registered schema `text` with the types of its `references` written out.
    pub(super) async fn registered_schema(
        &self,
        text: &str,
        references: &[SchemaReference],
        origin: &str,
    ) -> Result<Schema> {
        self.whole_schema(text, references)
            .await
            .map_err(|e| match e {
                Whole::Registry(e) => e,
                Whole::Unparsable(reason) | Whole::MissingReference(reason) => {
                    Error::InvalidSchema {
                        origin: origin.to_owned(),
                        reason,
                    }
                }
            })
    }
}

/// Why a schema with references could not be made whole.
pub(super) enum Whole {
    /// The registry could not be asked (as is).
    Registry(Error),
    /// A reference names a subject or version the registry does not have, or too many.
    MissingReference(String),
    /// The schema does not parse with its references.
    Unparsable(String),
}
