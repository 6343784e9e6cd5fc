//! What the registry answers with: a subject version, a schema by id or GUID, and the
//! look-ups behind them (by GUID, by metadata, who refers to a version).

use serde_json::{Value, json};

use super::{Store, Version, VersionRef};
use crate::registry::contract::Contract;
use crate::registry::error::ApiError;
use crate::registry::references::{Found, Versions};

/// What a subject version looks like to clients.
#[derive(Debug, Clone)]
pub(crate) struct VersionView {
    pub(crate) subject: String,
    pub(crate) version: u32,
    pub(crate) id: u32,
    pub(crate) schema: String,
    pub(crate) contract: Contract,
    pub(crate) guid: String,
}

impl VersionView {
    /// Confluent's `Schema` body: subject, version, id, guid, schema, then references,
    /// metadata and rule set when present.
    pub(crate) fn body(&self) -> Value {
        let mut body = serde_json::Map::new();
        body.insert("subject".into(), json!(self.subject));
        body.insert("version".into(), json!(self.version));
        body.insert("id".into(), json!(self.id));
        body.insert("guid".into(), json!(self.guid));
        body.insert("schema".into(), json!(self.schema));
        self.contract.add_to(&mut body);
        Value::Object(body)
    }
}

/// A schema by id or GUID: its text, contract and GUID (Confluent's `SchemaString`).
pub(crate) struct SchemaView {
    pub(crate) id: u32,
    pub(crate) schema: String,
    pub(crate) contract: Contract,
    pub(crate) guid: String,
}

impl SchemaView {
    pub(crate) fn body(&self) -> Value {
        let mut body = serde_json::Map::new();
        body.insert("schema".into(), json!(self.schema));
        self.contract.add_to(&mut body);
        body.insert("guid".into(), json!(self.guid));
        Value::Object(body)
    }
}

/// What a registration did: the version registered (or found), and whether it is new.
pub(crate) struct Registered {
    pub(crate) view: VersionView,
    pub(crate) created: bool,
}

/// A registration or lookup request: the schema text and what comes with it.
pub(crate) struct Request {
    pub(crate) text: String,
    pub(crate) contract: Contract,
    pub(crate) normalize: bool,
}

impl Store {
    pub(super) fn view(&self, subject: &str, v: &Version) -> VersionView {
        let schema = self.schema_view(v.id);
        VersionView {
            subject: subject.to_owned(),
            version: v.version,
            id: v.id,
            schema: schema.schema,
            contract: schema.contract,
            guid: schema.guid,
        }
    }

    fn schema_view(&self, id: u32) -> SchemaView {
        let stored = self.cache.get(&id);
        SchemaView {
            id,
            schema: self.schemas.get(&id).cloned().unwrap_or_default(),
            contract: stored.map(|s| s.contract.clone()).unwrap_or_default(),
            guid: stored.map(|s| s.guid.to_string()).unwrap_or_default(),
        }
    }

    pub(crate) fn schema_by_id(&self, id: u32) -> Result<SchemaView, ApiError> {
        if !self.schemas.contains_key(&id) {
            return Err(ApiError::schema_not_found(id));
        }
        Ok(self.schema_view(id))
    }

    /// `GET /schemas/guids/{guid}` (a UUID, or its 32 hex digits as Confluent also takes).
    pub(crate) fn schema_by_guid(&self, guid: &str) -> Result<SchemaView, ApiError> {
        let wanted = uuid::Uuid::try_parse(guid).map_err(|_| ApiError::schema_not_found(guid))?;
        self.cache
            .iter()
            .filter(|(_, stored)| stored.guid == wanted)
            .map(|(id, _)| *id)
            .min()
            .map(|id| self.schema_view(id))
            .ok_or_else(|| ApiError::schema_not_found(guid))
    }

    /// `GET /subjects/{s}/metadata`: the latest version whose metadata has every property.
    pub(crate) fn latest_with_metadata(
        &self,
        subject: &str,
        wanted: &[(String, String)],
        deleted: bool,
    ) -> Result<VersionView, ApiError> {
        let s = self.subject(subject, deleted)?;
        s.visible(deleted)
            .rev()
            .find(|v| {
                self.cache
                    .get(&v.id)
                    .and_then(|stored| stored.contract.metadata.as_ref())
                    .is_some_and(|m| m.has_properties(wanted))
            })
            .map(|v| self.view(subject, v))
            .ok_or_else(ApiError::no_matching_schema)
    }

    /// `GET /subjects/{s}/versions/{v}/referencedby`: the ids of the schemas referring to that
    /// version (ascending); only those still registered somewhere unless `deleted`.
    pub(crate) fn referenced_by(&self, subject: &str, version: u32, deleted: bool) -> Vec<u32> {
        let version = i32::try_from(version).unwrap_or(i32::MAX);
        self.contracts
            .iter()
            .filter(|(_, c)| {
                c.references
                    .iter()
                    .any(|r| r.subject == subject && r.version == version)
            })
            .map(|(id, _)| *id)
            .filter(|id| deleted || !self.subject_versions_of(*id, false).is_empty())
            .collect()
    }

    pub(crate) fn subject_versions_of(&self, id: u32, deleted: bool) -> Vec<(String, u32)> {
        self.subjects
            .iter()
            .flat_map(|(name, s)| {
                s.visible(deleted)
                    .filter(move |v| v.id == id)
                    .map(move |v| (name.clone(), v.version))
            })
            .collect()
    }
}

impl Versions for Store {
    fn found(&self, subject: &str, version: i32, include_deleted: bool) -> Option<Found> {
        let at = if version == -1 {
            VersionRef::Latest
        } else {
            VersionRef::Number(u32::try_from(version).ok().filter(|n| *n >= 1)?)
        };
        let v = self.find(subject, at, include_deleted).ok()?;
        Some(Found {
            version: v.version,
            text: self.schemas.get(&v.id)?.clone(),
            references: self
                .contracts
                .get(&v.id)
                .map(|c| c.references.clone())
                .unwrap_or_default(),
        })
    }
}
