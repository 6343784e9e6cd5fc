//! The registry's data: schemas by global id, subjects with their versions, compatibility
//! configuration. Pure and synchronous; the routes lock it and persist it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use avro_events_compat::{self as compat, CompatibilityLevel, Previous};
use serde::{Deserialize, Serialize};

use super::candidate::{Candidate, Stored};
use super::contract::Contract;
use super::error::ApiError;
use super::references;

mod views;

pub(crate) use views::{Registered, Request, VersionView};

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
    fn visible(&self, deleted: bool) -> impl DoubleEndedIterator<Item = &Version> {
        self.versions.iter().filter(move |v| deleted || !v.deleted)
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

/// The whole registry state, as persisted.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Store {
    next_id: u32,
    /// Schema text by global id.
    schemas: BTreeMap<u32, String>,
    /// References, metadata and rule set by global id (for the schemas that have any).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    contracts: BTreeMap<u32, Contract>,
    subjects: BTreeMap<String, Subject>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    global: Option<CompatibilityLevel>,
    /// The parsed form of each schema, shared between the copies a write makes (a write
    /// clones the store; a parsed schema is never changed once made).
    #[serde(skip)]
    cache: HashMap<u32, Arc<Stored>>,
}

impl Default for Store {
    fn default() -> Self {
        Self {
            next_id: 1,
            schemas: BTreeMap::new(),
            contracts: BTreeMap::new(),
            subjects: BTreeMap::new(),
            global: None,
            cache: HashMap::new(),
        }
    }
}

impl Store {
    /// Rebuilds the parsed forms after loading from disk.
    pub(crate) fn rebuild(&mut self) -> Result<(), String> {
        let mut cache = HashMap::new();
        for (id, text) in &self.schemas {
            let contract = self.contracts.get(id).cloned().unwrap_or_default();
            let candidate = self
                .candidate(text, false, contract, true)
                .map_err(|e| format!("schema {id} in the store: {}", e.message))?;
            cache.insert(*id, Arc::new(candidate.into_stored()));
        }
        self.cache = cache;
        Ok(())
    }

    /// Parses `text` with its references resolved (soft-deleted versions too, with
    /// `include_deleted`); a `-1` reference version becomes the number it named.
    pub(crate) fn candidate(
        &self,
        text: &str,
        normalize: bool,
        mut contract: Contract,
        include_deleted: bool,
    ) -> Result<Candidate, ApiError> {
        let (pinned, texts) = references::resolve(self, &contract.references, include_deleted)?;
        contract.references = pinned;
        let referenced = references::referenced(&texts)?;
        Candidate::parse(text, normalize, contract, &referenced)
    }

    /// The contract of the latest live version of `subject`, for a registration or lookup
    /// without metadata and rule set (Confluent's registry gives it those of the latest).
    fn inherited(&self, subject: &str, contract: Contract) -> Contract {
        if !contract.inherits() {
            return contract;
        }
        let latest = self
            .subjects
            .get(subject)
            .and_then(|s| s.visible(false).last())
            .and_then(|v| self.cache.get(&v.id));
        match latest {
            Some(stored) => Contract {
                metadata: stored.contract.metadata.clone(),
                rule_set: stored.contract.rule_set.clone(),
                ..contract
            },
            None => contract,
        }
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

    /// `POST /subjects/{s}`: the version of `subject` holding this schema. A request without
    /// metadata and rule set that matches no version is tried again with those of the latest
    /// version, as Confluent's registry does.
    pub(crate) fn lookup(
        &self,
        subject: &str,
        request: Request,
        deleted: bool,
    ) -> Result<VersionView, ApiError> {
        let s = self.subject(subject, deleted)?;
        let find = |candidate: &Candidate| {
            s.visible(deleted)
                .find(|v| {
                    self.cache
                        .get(&v.id)
                        .is_some_and(|stored| candidate.matches(stored, request.normalize))
                })
                .map(|v| self.view(subject, v))
        };
        let candidate = self.candidate(
            &request.text,
            request.normalize,
            request.contract.clone(),
            true,
        )?;
        if let Some(view) = find(&candidate) {
            return Ok(view);
        }
        let inherited = self.inherited(subject, request.contract.clone());
        if inherited != request.contract {
            let candidate = self.candidate(&request.text, request.normalize, inherited, true)?;
            if let Some(view) = find(&candidate) {
                return Ok(view);
            }
        }
        Err(ApiError::schema_not_found("for this subject"))
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

    /// `POST /subjects/{s}/versions`. A schema registered without metadata and rule set gets
    /// those of the subject's latest version, as with Confluent's registry; references are
    /// resolved among live versions only.
    pub(crate) fn register(
        &mut self,
        subject: &str,
        request: Request,
    ) -> Result<Registered, ApiError> {
        let normalize = request.normalize;
        let contract = self.inherited(subject, request.contract);
        let candidate = self.candidate(&request.text, normalize, contract, false)?;
        // The same schema under this subject: same id, no new version.
        if let Some(s) = self.subjects.get(subject)
            && let Some(v) = s.visible(false).find(|v| {
                self.cache
                    .get(&v.id)
                    .is_some_and(|stored| candidate.matches(stored, normalize))
            })
        {
            return Ok(Registered {
                view: self.view(subject, v),
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
            .filter(|(_, stored)| candidate.same_schema(stored))
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
                if candidate.contract != Contract::default() {
                    self.contracts.insert(id, candidate.contract.clone());
                }
                self.cache.insert(id, Arc::new(candidate.into_stored()));
                id
            }
        };
        let s = self.subjects.entry(subject.to_owned()).or_default();
        // Soft-deleted versions keep their numbers: a new version always counts on.
        let version = s.versions.last().map_or(1, |v| v.version + 1);
        // As Confluent does, a soft-deleted version of the same schema in this subject is
        // removed for good when the schema is registered again (it gets the new version).
        s.versions.retain(|v| !(v.deleted && v.id == id));
        let registered = Version {
            version,
            id,
            deleted: false,
        };
        s.versions.push(registered.clone());
        Ok(Registered {
            view: self.view(subject, &registered),
            created: true,
        })
    }

    /// `DELETE /subjects/{s}`: soft, then (with `permanent`) hard. Returns the versions deleted.
    pub(crate) fn delete_subject(
        &mut self,
        subject: &str,
        permanent: bool,
    ) -> Result<Vec<u32>, ApiError> {
        let versions: Vec<u32> = self
            .subjects
            .get(subject)
            .filter(|s| !s.versions.is_empty())
            .ok_or_else(|| ApiError::subject_not_found(subject))?
            .visible(permanent)
            .map(|v| v.version)
            .collect();
        // Refused while another subject refers to one of them (live referrers for a soft
        // delete, any for a permanent one), as Confluent refuses it.
        for version in versions {
            let others = self
                .referenced_by(subject, version, permanent)
                .into_iter()
                .flat_map(|id| self.subject_versions_of(id, permanent))
                .any(|(referrer, _)| referrer != subject);
            if others {
                return Err(ApiError::reference_exists(subject, version));
            }
        }
        let s = self
            .subjects
            .get_mut(subject)
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
        if !permanent
            && self
                .find(subject, VersionRef::Number(number), true)
                .is_ok_and(|v| v.deleted)
        {
            return Err(ApiError::version_soft_deleted(subject, number));
        }
        if !self.referenced_by(subject, number, permanent).is_empty() {
            return Err(ApiError::reference_exists(subject, number));
        }
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
        self.contracts.retain(|id, _| used.contains(id));
        self.cache.retain(|id, _| used.contains(id));
    }
}
