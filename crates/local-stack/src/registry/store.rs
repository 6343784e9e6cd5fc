//! The registry's data: schemas by global id, subjects with their versions, compatibility
//! configuration. Pure and synchronous; the routes lock it and persist it.

use std::collections::{BTreeMap, HashMap};

use apache_avro::Schema;
use avro_events_compat::{self as compat, CompatibilityLevel, Previous};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{canonical, error::ApiError};

/// One version of a subject.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Version {
    pub(crate) version: u32,
    pub(crate) id: u32,
    #[serde(default)]
    pub(crate) deleted: bool,
}

/// A subject: its versions (ascending) and its own compatibility level, if set.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Subject {
    pub(crate) versions: Vec<Version>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) compatibility: Option<CompatibilityLevel>,
}

impl Subject {
    fn visible(&self, deleted: bool) -> impl Iterator<Item = &Version> {
        self.versions.iter().filter(move |v| deleted || !v.deleted)
    }
}

/// A registered schema, parsed, with the forms used to recognise it again.
#[derive(Debug, Clone)]
pub(crate) struct Stored {
    parsed: Schema,
    /// The schema's identity: its canonical text ([`canonical`](super::canonical)), as
    /// Confluent's registry compares it.
    key: String,
    /// Key of the normalized form (`normalize=true`).
    normalized_key: String,
}

/// A schema parsed from a request.
pub(crate) struct Candidate {
    text: String,
    parsed: Schema,
    key: String,
    normalized_key: String,
}

impl Candidate {
    /// Parses an Avro schema. What gets stored (and served) is its canonical text, as with
    /// Confluent's registry; with `normalize`, the normalized form.
    pub(crate) fn parse(text: &str, normalize: bool) -> Result<Self, ApiError> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| ApiError::invalid_schema(format!("not JSON: {e}")))?;
        let parsed = Schema::parse(&value).map_err(ApiError::invalid_schema)?;
        let normalized = serde_json::to_value(&parsed).map_err(ApiError::invalid_schema)?;
        let normalized_key = sorted_json(&normalized);
        let (text, key) = if normalize {
            (normalized.to_string(), normalized_key.clone())
        } else {
            let canonical = canonical::canonical_text(text).unwrap_or_else(|reason| {
                // A schema apache-avro takes but the canonical writer cannot follow: identified
                // by its JSON, as before.
                tracing::debug!(%reason, "no canonical form; the schema is identified by its JSON");
                sorted_json(&value)
            });
            (canonical.clone(), canonical)
        };
        Ok(Self {
            text,
            parsed,
            key,
            normalized_key,
        })
    }

    fn matches(&self, stored: &Stored, normalize: bool) -> bool {
        self.key == stored.key || (normalize && self.normalized_key == stored.normalized_key)
    }

    pub(crate) fn schema(&self) -> &Schema {
        &self.parsed
    }
}

/// JSON text with object keys sorted at every level: equal for equal JSON values.
fn sorted_json(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let inner: Vec<String> = entries
                .into_iter()
                .map(|(k, v)| format!("{}:{}", Value::String(k.clone()), sorted_json(v)))
                .collect();
            format!("{{{}}}", inner.join(","))
        }
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(sorted_json).collect();
            format!("[{}]", inner.join(","))
        }
        other => other.to_string(),
    }
}

/// A version selector from a URL: a number, or `latest` / `-1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VersionRef {
    Latest,
    Number(u32),
}

impl VersionRef {
    pub(crate) fn parse(text: &str) -> Result<Self, ApiError> {
        match text {
            "latest" | "-1" => Ok(Self::Latest),
            _ => match text.parse::<u32>() {
                Ok(n) if n >= 1 && n <= i32::MAX as u32 => Ok(Self::Number(n)),
                _ => Err(ApiError::invalid_version(text)),
            },
        }
    }
}

/// What a subject version looks like to clients.
#[derive(Debug, Clone)]
pub(crate) struct VersionView {
    pub(crate) subject: String,
    pub(crate) version: u32,
    pub(crate) id: u32,
    pub(crate) schema: String,
}

/// What a registration did.
pub(crate) struct Registered {
    pub(crate) id: u32,
    pub(crate) version: u32,
    pub(crate) created: bool,
}

/// The whole registry state, as persisted.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Store {
    next_id: u32,
    /// Schema text by global id.
    schemas: BTreeMap<u32, String>,
    subjects: BTreeMap<String, Subject>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    global: Option<CompatibilityLevel>,
    #[serde(skip)]
    cache: HashMap<u32, Stored>,
}

impl Default for Store {
    fn default() -> Self {
        Self {
            next_id: 1,
            schemas: BTreeMap::new(),
            subjects: BTreeMap::new(),
            global: None,
            cache: HashMap::new(),
        }
    }
}

impl Store {
    /// Rebuilds the parsed forms after loading from disk.
    pub(crate) fn rebuild(&mut self) -> Result<(), String> {
        self.cache.clear();
        for (id, text) in &self.schemas {
            let candidate = Candidate::parse(text, false)
                .map_err(|e| format!("schema {id} in the store: {}", e.message))?;
            self.cache.insert(*id, stored(candidate));
        }
        Ok(())
    }

    pub(crate) fn global_level(&self) -> CompatibilityLevel {
        self.global.unwrap_or_default()
    }

    pub(crate) fn set_global(&mut self, level: Option<CompatibilityLevel>) {
        self.global = level;
    }

    fn level_for(&self, subject: &str) -> CompatibilityLevel {
        self.subjects
            .get(subject)
            .and_then(|s| s.compatibility)
            .unwrap_or_else(|| self.global_level())
    }

    pub(crate) fn subject_level(&self, subject: &str) -> Option<CompatibilityLevel> {
        self.subjects.get(subject).and_then(|s| s.compatibility)
    }

    pub(crate) fn set_subject_level(&mut self, subject: &str, level: Option<CompatibilityLevel>) {
        match level {
            Some(level) => {
                self.subjects
                    .entry(subject.to_owned())
                    .or_default()
                    .compatibility = Some(level);
            }
            None => {
                if let Some(s) = self.subjects.get_mut(subject) {
                    s.compatibility = None;
                }
                self.forget_if_empty(subject);
            }
        }
    }

    fn forget_if_empty(&mut self, subject: &str) {
        if self
            .subjects
            .get(subject)
            .is_some_and(|s| s.versions.is_empty() && s.compatibility.is_none())
        {
            self.subjects.remove(subject);
        }
    }

    /// A subject with at least one visible version.
    fn subject(&self, name: &str, deleted: bool) -> Result<&Subject, ApiError> {
        self.subjects
            .get(name)
            .filter(|s| s.visible(deleted).next().is_some())
            .ok_or_else(|| ApiError::subject_not_found(name))
    }

    fn find(&self, subject: &str, at: VersionRef, deleted: bool) -> Result<&Version, ApiError> {
        let s = self.subject(subject, deleted)?;
        let found = match at {
            VersionRef::Latest => s.visible(deleted).last(),
            VersionRef::Number(n) => s.visible(deleted).find(|v| v.version == n),
        };
        found.ok_or_else(|| {
            let shown = match at {
                VersionRef::Latest => "latest".to_owned(),
                VersionRef::Number(n) => n.to_string(),
            };
            ApiError::version_not_found(subject, &shown)
        })
    }

    fn view(&self, subject: &str, v: &Version) -> VersionView {
        VersionView {
            subject: subject.to_owned(),
            version: v.version,
            id: v.id,
            schema: self.schemas.get(&v.id).cloned().unwrap_or_default(),
        }
    }

    pub(crate) fn subjects(&self, deleted: bool) -> Vec<String> {
        self.subjects
            .iter()
            .filter(|(_, s)| s.visible(deleted).next().is_some())
            .map(|(name, _)| name.clone())
            .collect()
    }

    pub(crate) fn versions(&self, subject: &str, deleted: bool) -> Result<Vec<u32>, ApiError> {
        Ok(self
            .subject(subject, deleted)?
            .visible(deleted)
            .map(|v| v.version)
            .collect())
    }

    pub(crate) fn version(
        &self,
        subject: &str,
        at: VersionRef,
        deleted: bool,
    ) -> Result<VersionView, ApiError> {
        let v = self.find(subject, at, deleted)?;
        Ok(self.view(subject, v))
    }

    pub(crate) fn schema_by_id(&self, id: u32) -> Result<&str, ApiError> {
        self.schemas
            .get(&id)
            .map(String::as_str)
            .ok_or_else(|| ApiError::schema_not_found(id))
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

    /// `POST /subjects/{s}`: the version of `subject` holding this schema.
    pub(crate) fn lookup(
        &self,
        subject: &str,
        candidate: &Candidate,
        normalize: bool,
        deleted: bool,
    ) -> Result<VersionView, ApiError> {
        let s = self.subject(subject, deleted)?;
        s.visible(deleted)
            .find(|v| {
                self.cache
                    .get(&v.id)
                    .is_some_and(|stored| candidate.matches(stored, normalize))
            })
            .map(|v| self.view(subject, v))
            .ok_or_else(|| ApiError::schema_not_found("for this subject"))
    }

    /// The schemas a new one is checked against: the visible versions, oldest first.
    fn history(&self, subject: &str) -> Vec<Previous<'_>> {
        self.subjects
            .get(subject)
            .map(|s| {
                s.visible(false)
                    .filter_map(|v| {
                        self.cache.get(&v.id).map(|stored| Previous {
                            version: v.version,
                            schema: &stored.parsed,
                        })
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Compatibility of `candidate` with one version, or with the subject's history (`None`).
    pub(crate) fn compatibility(
        &self,
        subject: &str,
        at: Option<VersionRef>,
        candidate: &Candidate,
    ) -> Result<compat::CompatibilityReport, ApiError> {
        let level = self.level_for(subject);
        let history = match at {
            None => self.history(subject),
            Some(at) => {
                let v = self.find(subject, at, false)?;
                let stored = self
                    .cache
                    .get(&v.id)
                    .ok_or_else(|| ApiError::store(format!("schema {} is missing", v.id)))?;
                vec![Previous {
                    version: v.version,
                    schema: &stored.parsed,
                }]
            }
        };
        Ok(compat::check_versions(level, candidate.schema(), &history))
    }

    /// `POST /subjects/{s}/versions`.
    pub(crate) fn register(
        &mut self,
        subject: &str,
        candidate: Candidate,
        normalize: bool,
    ) -> Result<Registered, ApiError> {
        // The same schema under this subject: same id, no new version.
        if let Some(s) = self.subjects.get(subject)
            && let Some(v) = s.visible(false).find(|v| {
                self.cache
                    .get(&v.id)
                    .is_some_and(|stored| candidate.matches(stored, normalize))
            })
        {
            return Ok(Registered {
                id: v.id,
                version: v.version,
                created: false,
            });
        }
        let report = self.compatibility(subject, None, &candidate)?;
        if !report.is_compatible() {
            let level = self.level_for(subject);
            return Err(ApiError::incompatible(
                subject,
                level.as_str(),
                &report.messages(),
            ));
        }
        // Ids are global: the same schema anywhere (even soft-deleted) keeps its id. (The
        // oldest one, should a store written before schemas were identified by their canonical
        // text hold two spellings of one schema.)
        let id = match self
            .cache
            .iter()
            .filter(|(_, stored)| stored.key == candidate.key)
            .map(|(id, _)| *id)
            .min()
        {
            Some(id) => id,
            None => {
                let id = self.next_id;
                self.next_id = id
                    .checked_add(1)
                    .ok_or_else(|| ApiError::store("schema ids exhausted"))?;
                self.schemas.insert(id, candidate.text.clone());
                self.cache.insert(id, stored(candidate));
                id
            }
        };
        let s = self.subjects.entry(subject.to_owned()).or_default();
        // Soft-deleted versions keep their numbers: a new version always counts on.
        let version = s.versions.last().map_or(1, |v| v.version + 1);
        // As Confluent does, a soft-deleted version of the same schema in this subject is
        // removed for good when the schema is registered again (it gets the new version).
        s.versions.retain(|v| !(v.deleted && v.id == id));
        s.versions.push(Version {
            version,
            id,
            deleted: false,
        });
        Ok(Registered {
            id,
            version,
            created: true,
        })
    }

    /// `DELETE /subjects/{s}`: soft, then (with `permanent`) hard. Returns the versions deleted.
    pub(crate) fn delete_subject(
        &mut self,
        subject: &str,
        permanent: bool,
    ) -> Result<Vec<u32>, ApiError> {
        let s = self
            .subjects
            .get_mut(subject)
            .filter(|s| !s.versions.is_empty())
            .ok_or_else(|| ApiError::subject_not_found(subject))?;
        let deleted = if permanent {
            if s.versions.iter().any(|v| !v.deleted) {
                return Err(ApiError::subject_not_soft_deleted(subject));
            }
            let gone: Vec<u32> = s.versions.drain(..).map(|v| v.version).collect();
            self.forget_if_empty(subject);
            self.drop_unused_schemas();
            gone
        } else {
            if s.versions.iter().all(|v| v.deleted) {
                return Err(ApiError::subject_soft_deleted(subject));
            }
            let mut gone = Vec::new();
            for v in s.versions.iter_mut().filter(|v| !v.deleted) {
                v.deleted = true;
                gone.push(v.version);
            }
            gone
        };
        Ok(deleted)
    }

    /// `DELETE /subjects/{s}/versions/{v}`: soft, then (with `permanent`) hard.
    pub(crate) fn delete_version(
        &mut self,
        subject: &str,
        at: VersionRef,
        permanent: bool,
    ) -> Result<u32, ApiError> {
        // A numbered version is found even when soft-deleted (to answer 40406 or delete it for
        // good); `latest` means the latest live version, or for a permanent delete the latest.
        let include_deleted = permanent || matches!(at, VersionRef::Number(_));
        let number = self.find(subject, at, include_deleted)?.version;
        let s = self
            .subjects
            .get_mut(subject)
            .ok_or_else(|| ApiError::subject_not_found(subject))?;
        let index = s
            .versions
            .iter()
            .position(|v| v.version == number)
            .ok_or_else(|| ApiError::version_not_found(subject, &number.to_string()))?;
        if permanent {
            if !s.versions[index].deleted {
                return Err(ApiError::version_not_soft_deleted(subject, number));
            }
            s.versions.remove(index);
            self.forget_if_empty(subject);
            self.drop_unused_schemas();
        } else {
            if s.versions[index].deleted {
                return Err(ApiError::version_soft_deleted(subject, number));
            }
            s.versions[index].deleted = true;
        }
        Ok(number)
    }

    fn drop_unused_schemas(&mut self) {
        let used: std::collections::HashSet<u32> = self
            .subjects
            .values()
            .flat_map(|s| s.versions.iter().map(|v| v.id))
            .collect();
        self.schemas.retain(|id, _| used.contains(id));
        self.cache.retain(|id, _| used.contains(id));
    }
}

fn stored(c: Candidate) -> Stored {
    Stored {
        parsed: c.parsed,
        key: c.key,
        normalized_key: c.normalized_key,
    }
}
