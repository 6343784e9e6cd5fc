//! Schema references and GUIDs: registering and looking up a schema that uses named types of
//! schemas registered under other subjects, which versions refer to a version
//! (`referencedby`), a schema by its GUID, and the schemas a schema's references name,
//! fetched recursively (each reference name once, dependencies first, as Confluent's clients
//! resolve them), cached and bounded.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
};

use reqwest::Method;
use serde::{Deserialize, Serialize};

use super::client::{About, RegistryClient, SchemaType, SubjectVersion, schema_type_of};
use crate::{Error, Result};

/// At most this many schemas in the transitive closure of one schema's references; a schema
/// with more is refused with [`Error::Registry`] rather than fetched without end.
pub const MAX_REFERENCED_SCHEMAS: usize = 256;

/// At most this many referenced subject versions are cached per client; the cache is emptied
/// when full (versions are immutable, so a cached one is never stale, only evicted).
const CACHED_VERSIONS: usize = 1_024;

/// A reference from a schema to a version of another subject whose named type it uses
/// (Confluent's `references: [{name, subject, version}]`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SchemaReference {
    /// The full name of the type the referenced schema defines (for Avro, e.g.
    /// `shop.Product`).
    pub name: String,
    /// The subject it is registered under.
    pub subject: String,
    /// Its version in that subject.
    pub version: u32,
}

impl SchemaReference {
    /// A reference to version `version` of `subject`, which defines the type `name`.
    pub fn new(name: impl Into<String>, subject: impl Into<String>, version: u32) -> Self {
        Self {
            name: name.into(),
            subject: subject.into(),
            version,
        }
    }
}

/// A schema as `GET /schemas/guids/{guid}` answers it (Confluent's answer carries no id).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SchemaByGuid {
    /// The GUID asked for.
    pub guid: uuid::Uuid,
    /// The schema text.
    pub schema: String,
    /// Its format.
    pub schema_type: SchemaType,
    /// The schemas whose named types it uses.
    pub references: Vec<SchemaReference>,
    /// Its metadata (`metadata`), when it has any.
    pub metadata: Option<crate::rules::Metadata>,
    /// Its rule set (`ruleSet`), when it has one.
    pub rule_set: Option<crate::rules::RuleSet>,
}

/// What a registration answered: the schema's global id and, when the registry sends one, its
/// GUID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Registered {
    /// The global id.
    pub id: u32,
    /// The GUID (`guid`), which header framing writes.
    pub guid: Option<uuid::Uuid>,
}

/// One schema of a reference closure: the reference that named it and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReferencedSchema {
    /// The reference (as found in the schema naming it).
    pub reference: SchemaReference,
    /// The referenced version's schema text.
    pub schema: String,
}

/// Cached referenced versions, by (subject, version).
pub(super) type VersionCache = Mutex<HashMap<(String, u32), Arc<SubjectVersion>>>;

/// The `references` of a request body (left out when empty, as Confluent's clients send them).
fn references_json(references: &[SchemaReference]) -> Option<serde_json::Value> {
    (!references.is_empty()).then(|| serde_json::json!(references))
}

/// A request body: the schema, its `schemaType` and its `references` (when any).
pub(super) fn body(
    schema: &str,
    references: &[SchemaReference],
    schema_type: &SchemaType,
) -> serde_json::Value {
    let mut body = super::client::schema_body(schema, schema_type);
    if let (Some(refs), Some(map)) = (references_json(references), body.as_object_mut()) {
        map.insert("references".into(), refs);
    }
    body
}

/// The GUID of a registry answer, when it has one.
pub(super) fn guid_of(answer: &serde_json::Value) -> Option<uuid::Uuid> {
    answer
        .get("guid")
        .and_then(serde_json::Value::as_str)
        .and_then(|g| uuid::Uuid::parse_str(g).ok())
}

impl RegistryClient {
    /// The `references` of a registry answer (none when absent).
    pub(super) fn references_of(&self, answer: &serde_json::Value) -> Result<Vec<SchemaReference>> {
        match answer.get("references") {
            None | Some(serde_json::Value::Null) => Ok(Vec::new()),
            Some(refs) => serde_json::from_value(refs.clone())
                .map_err(|_| self.unexpected("well-formed references", answer)),
        }
    }

    /// Registers `schema` under `subject` with the `references` it uses (each already
    /// registered: register them first) and returns its id and GUID.
    ///
    /// # Errors
    /// As [`register`](Self::register); [`Error::RegistryRejected`] with error code 42201 when
    /// a reference names a subject or version the registry does not have.
    pub async fn register_with_references(
        &self,
        subject: &str,
        schema: &str,
        references: &[SchemaReference],
        normalize: bool,
    ) -> Result<Registered> {
        let answer = self
            .call(
                Method::POST,
                &["subjects", subject, "versions"],
                &super::client::normalize_query(normalize),
                Some(body(schema, references, &SchemaType::Avro)),
            )
            .await
            .map_err(|f| self.error(f, About::Subject(subject)))?;
        Ok(Registered {
            id: self.id_field(&answer, subject)?,
            guid: guid_of(&answer),
        })
    }

    /// Looks up the version of `subject` holding `schema` with these `references`, without
    /// registering (`POST /subjects/{subject}`).
    ///
    /// # Errors
    /// [`Error::SchemaNotRegistered`] when the subject or the schema is not registered.
    pub async fn lookup_with_references(
        &self,
        subject: &str,
        schema: &str,
        references: &[SchemaReference],
        normalize: bool,
    ) -> Result<SubjectVersion> {
        let answer = self
            .call(
                Method::POST,
                &["subjects", subject],
                &super::client::normalize_query(normalize),
                Some(body(schema, references, &SchemaType::Avro)),
            )
            .await;
        match answer {
            Ok(answer) => Ok(SubjectVersion {
                subject: subject.to_owned(),
                version: self.number(&answer, "version")?,
                id: self.id_field(&answer, subject)?,
                schema: self.text_field(&answer, "schema")?,
                schema_type: schema_type_of(&answer),
                references: self.references_of(&answer)?,
                guid: guid_of(&answer),
                metadata: self.contract_field(&answer, "metadata")?,
                rule_set: self.contract_field(&answer, "ruleSet")?,
            }),
            Err(super::http::Failure::Status {
                status: reqwest::StatusCode::NOT_FOUND,
                code: Some(code @ (40401 | 40403)),
                message,
                ..
            }) => Err(Error::SchemaNotRegistered {
                subject: subject.to_owned(),
                registry: self.url().to_owned(),
                reason: format!("{message} (error code {code})"),
            }),
            Err(f) => Err(self.error(f, About::Subject(subject))),
        }
    }

    /// The ids of the schemas that refer to version `version` of `subject`
    /// (`GET /subjects/{subject}/versions/{version}/referencedby`).
    ///
    /// # Errors
    /// [`Error::SubjectNotFound`], [`Error::VersionNotFound`].
    pub async fn referenced_by(&self, subject: &str, version: u32) -> Result<Vec<u32>> {
        let number = version.to_string();
        let answer = self
            .call(
                Method::GET,
                &["subjects", subject, "versions", &number, "referencedby"],
                &[],
                None,
            )
            .await
            .map_err(|f| self.error(f, About::Version(subject, &number)))?;
        self.numbers(&answer, "the referring ids")
    }

    /// The schema with GUID `guid` (`GET /schemas/guids/{guid}`).
    ///
    /// # Errors
    /// [`Error::UnknownSchemaGuid`] when the registry has no such schema.
    pub async fn schema_by_guid(&self, guid: uuid::Uuid) -> Result<SchemaByGuid> {
        let text = guid.to_string();
        let answer = self
            .call(Method::GET, &["schemas", "guids", &text], &[], None)
            .await
            .map_err(|f| self.error(f, About::SchemaGuid(guid)))?;
        Ok(SchemaByGuid {
            guid,
            schema: self.text_field(&answer, "schema")?,
            schema_type: schema_type_of(&answer),
            references: self.references_of(&answer)?,
            metadata: self.contract_field(&answer, "metadata")?,
            rule_set: self.contract_field(&answer, "ruleSet")?,
        })
    }

    /// Every schema `references` name, recursively: each reference name once, the schemas a
    /// schema refers to before it (the order Confluent's clients parse them in). Versions are
    /// fetched once per client and cached (at most 1,024 of them).
    ///
    /// # Errors
    /// [`Error::SubjectNotFound`] or [`Error::VersionNotFound`] for a reference the registry
    /// does not have; [`Error::Registry`] when the closure holds more than
    /// [`MAX_REFERENCED_SCHEMAS`] schemas; other registry errors.
    pub async fn referenced_schemas(
        &self,
        references: &[SchemaReference],
    ) -> Result<Vec<ReferencedSchema>> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        // Depth-first, post-order, without recursion: (reference, its references pushed yet).
        let mut stack: Vec<(SchemaReference, Option<Arc<SubjectVersion>>)> =
            references.iter().rev().map(|r| (r.clone(), None)).collect();
        while let Some((reference, fetched)) = stack.pop() {
            match fetched {
                Some(version) => out.push(ReferencedSchema {
                    reference,
                    schema: version.schema.clone(),
                }),
                None => {
                    if !seen.insert(reference.name.clone()) {
                        continue;
                    }
                    if seen.len() > MAX_REFERENCED_SCHEMAS {
                        return Err(Error::Registry {
                            registry: self.url().to_owned(),
                            reason: format!(
                                "a schema's references name more than {MAX_REFERENCED_SCHEMAS} \
                                 schemas (recursively); refused"
                            ),
                        });
                    }
                    let version = self
                        .referenced_version(&reference.subject, reference.version)
                        .await?;
                    let inner: Vec<SchemaReference> = version
                        .references
                        .iter()
                        .rev()
                        .filter(|r| !seen.contains(&r.name))
                        .cloned()
                        .collect();
                    stack.push((reference, Some(version)));
                    stack.extend(inner.into_iter().map(|r| (r, None)));
                }
            }
        }
        Ok(out)
    }

    async fn referenced_version(&self, subject: &str, version: u32) -> Result<Arc<SubjectVersion>> {
        let key = (subject.to_owned(), version);
        if let Some(found) = self.version_cache().get(&key) {
            return Ok(found.clone());
        }
        let fetched = Arc::new(self.version(subject, version).await?);
        let mut cache = self.version_cache();
        if cache.len() >= CACHED_VERSIONS {
            cache.clear();
        }
        cache.insert(key, fetched.clone());
        Ok(fetched)
    }
}
