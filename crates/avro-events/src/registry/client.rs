//! [`RegistryClient`]: the calls, their answers and their typed errors.

use std::{
    collections::HashMap,
    fmt,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use backon::ExponentialBuilder;
use reqwest::{Method, StatusCode, Url, header::HeaderMap};
use secrecy::ExposeSecret as _;

#[cfg(feature = "kafka")]
use super::BearerTokenSource;
use super::{
    RegistryAuth, RegistryConfig,
    http::{Credentials, Failure, Request, Transport, header_pair},
    references::{SchemaReference, guid_of},
};
use crate::{
    Error, Result,
    auth::{IDENTITY_POOL_ID, TARGET_SR_CLUSTER},
    compat::CompatibilityLevel,
    redact::{redact_url, split_userinfo},
    rules::{Metadata, RuleSet},
};

/// The format of a schema, as the registry names it (`schemaType`). Confluent's registry omits
/// it for Avro, so an answer without it is [`SchemaType::Avro`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum SchemaType {
    /// `AVRO` (or no `schemaType`).
    #[default]
    Avro,
    /// `JSON`: JSON Schema.
    Json,
    /// `PROTOBUF`.
    Protobuf,
    /// Another name a registry answered with.
    Other(String),
}

impl SchemaType {
    /// The registry's name: `AVRO`, `JSON`, `PROTOBUF`.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Avro => "AVRO",
            Self::Json => "JSON",
            Self::Protobuf => "PROTOBUF",
            Self::Other(name) => name,
        }
    }

    /// The type named by a registry answer's `schemaType` (`None`: absent, so Avro).
    pub fn from_registry(name: Option<&str>) -> Self {
        match name.map(str::trim) {
            None | Some("") => Self::Avro,
            Some(name) if name.eq_ignore_ascii_case("AVRO") => Self::Avro,
            Some(name) if name.eq_ignore_ascii_case("JSON") => Self::Json,
            Some(name) if name.eq_ignore_ascii_case("PROTOBUF") => Self::Protobuf,
            Some(other) => Self::Other(other.to_owned()),
        }
    }
}

impl std::fmt::Display for SchemaType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A registered schema as the registry returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RegisteredSchema {
    /// Global id of the schema.
    pub id: u32,
    /// The schema text.
    pub schema: String,
    /// Its format (`schemaType`; Avro when the registry leaves it out).
    pub schema_type: SchemaType,
    /// The schemas whose named types it uses (`references`), empty when none.
    pub references: Vec<SchemaReference>,
    /// Its GUID (`guid`), when the registry sends one.
    pub guid: Option<uuid::Uuid>,
    /// Its metadata (`metadata`), when it has any.
    pub metadata: Option<Metadata>,
    /// Its rule set (`ruleSet`), when it has one.
    pub rule_set: Option<RuleSet>,
}

/// One version of a subject.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SubjectVersion {
    /// The subject.
    pub subject: String,
    /// The version number in the subject (from 1).
    pub version: u32,
    /// Global id of the schema.
    pub id: u32,
    /// The schema text.
    pub schema: String,
    /// Its format (`schemaType`; Avro when the registry leaves it out).
    pub schema_type: SchemaType,
    /// The schemas whose named types it uses (`references`), empty when none.
    pub references: Vec<SchemaReference>,
    /// Its GUID (`guid`), when the registry sends one.
    pub guid: Option<uuid::Uuid>,
    /// Its metadata (`metadata`), when it has any.
    pub metadata: Option<Metadata>,
    /// Its rule set (`ruleSet`), when it has one.
    pub rule_set: Option<RuleSet>,
}

/// Which registered versions a compatibility test compares with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestAgainst {
    /// Every version the subject's level asks for (`…/versions`): all of them for a transitive
    /// level, the latest otherwise.
    Level,
    /// The latest version only (`…/versions/latest`).
    Latest,
    /// This version only.
    Version(u32),
}

/// The registry's answer to a compatibility test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompatibilityAnswer {
    /// Whether the schema may be registered.
    pub is_compatible: bool,
    /// Why not (the registry's verbose messages), empty when compatible.
    pub messages: Vec<String>,
}

/// A client of a Confluent-compatible Schema Registry. Cheap to clone (clones share the HTTP
/// connections and the latest-version cache).
#[derive(Clone)]
pub struct RegistryClient {
    inner: Arc<Inner>,
}

struct Inner {
    transport: Transport,
    /// The URL(s) as messages show them (without credentials).
    shown: String,
    latest_ttl: Duration,
    latest: Mutex<HashMap<String, (Instant, SubjectVersion)>>,
    /// Referenced subject versions ([`RegistryClient::referenced_schemas`]).
    versions: super::references::VersionCache,
}

impl fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryClient")
            .field("url", &self.inner.shown)
            .finish_non_exhaustive()
    }
}

/// What a failed call was about, for the error it becomes.
#[derive(Clone, Copy)]
pub(super) enum About<'a> {
    Registry,
    SchemaId(u32),
    SchemaGuid(uuid::Uuid),
    Subject(&'a str),
    Version(&'a str, &'a str),
}

impl RegistryClient {
    /// Builds the HTTP client. No request is sent until a call is made. With `https://` URLs
    /// the platform's trust roots verify the registry; with `http://` URLs only they are not
    /// loaded (no TLS connection is made; a redirect to `https://` is refused as untrusted).
    ///
    /// # Errors
    /// [`Error::Config`] when a URL is missing or not http(s), credentials would be sent over
    /// `http://` to a host that is not loopback, a header cannot be sent, or the HTTP client
    /// cannot be built.
    pub fn new(config: &RegistryConfig) -> Result<Self> {
        let config_err = |reason: String| Error::Config {
            key: "schema.registry.url".into(),
            reason,
        };
        let mut urls = Vec::with_capacity(config.urls.len());
        let mut url_credentials = None;
        for url in &config.urls {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(config_err(format!(
                    "'{}' is not an http:// or https:// URL",
                    redact_url(url)
                )));
            }
            let (bare, credentials) = split_userinfo(url);
            url_credentials = url_credentials.or(credentials);
            let bare = bare.trim_end_matches('/');
            urls.push(
                Url::parse(bare)
                    .map_err(|e| config_err(format!("'{}' is not a URL: {e}", redact_url(bare))))?,
            );
        }
        if urls.is_empty() {
            return Err(config_err("no Schema Registry URL given".into()));
        }
        super::check_clear_text(&config.urls, &config.auth)?;
        let shown = urls
            .iter()
            .map(|u| u.as_str().trim_end_matches('/').to_owned())
            .collect::<Vec<_>>()
            .join(",");
        let mut headers = HeaderMap::new();
        for (name, value) in &config.headers {
            let (name, value) = header_pair("schema.registry.url", name, value)?;
            headers.insert(name, value);
        }
        let basic = |user: &str, password: &str| {
            let encoded = base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                format!("{user}:{password}"),
            );
            sensitive(&format!("Basic {encoded}"), "basic.auth.user.info")
        };
        let mut cloud_headers = |cluster: Option<&str>, pool: Option<&str>| -> Result<()> {
            if let Some(cluster) = cluster {
                let (name, value) =
                    header_pair("bearer.auth.logical.cluster", TARGET_SR_CLUSTER, cluster)?;
                headers.insert(name, value);
            }
            if let Some(pool) = pool.filter(|p| !p.is_empty()) {
                let (name, value) =
                    header_pair("bearer.auth.identity.pool.id", IDENTITY_POOL_ID, pool)?;
                headers.insert(name, value);
            }
            Ok(())
        };
        let credentials = match &config.auth {
            // Confluent's clients take `https://KEY:SECRET@host` as basic auth.
            RegistryAuth::None => Credentials::Fixed(
                url_credentials
                    .map(|(user, password)| basic(&user, &password))
                    .transpose()?,
            ),
            RegistryAuth::Basic { username, password } => {
                Credentials::Fixed(Some(basic(username, password.expose_secret())?))
            }
            RegistryAuth::StaticToken(token) => Credentials::Fixed(Some(sensitive(
                &format!("Bearer {}", token.expose_secret()),
                "bearer.auth.token",
            )?)),
            #[cfg(feature = "kafka")]
            RegistryAuth::OAuth {
                provider,
                logical_cluster,
                identity_pool_id,
            } => {
                cloud_headers(Some(logical_cluster), identity_pool_id.as_deref())?;
                Credentials::Bearer(provider.clone() as Arc<dyn BearerTokenSource>)
            }
            RegistryAuth::Bearer {
                source,
                logical_cluster,
                identity_pool_id,
            } => {
                cloud_headers(logical_cluster.as_deref(), identity_pool_id.as_deref())?;
                Credentials::Bearer(source.clone())
            }
        };
        // Without an `https://` URL the platform's trust roots are not loaded (no TLS
        // connection is made; a redirect to `https://` is refused as untrusted).
        let http = crate::http::build(
            reqwest::Client::builder().timeout(config.timeout),
            urls.iter(),
        )
        .map_err(config_err)?;
        let backoff = ExponentialBuilder::default()
            .with_min_delay(config.retry_wait)
            .with_max_delay(config.retry_max_wait)
            .with_max_times(config.max_retries)
            .with_jitter();
        Ok(Self {
            inner: Arc::new(Inner {
                transport: Transport {
                    http,
                    urls,
                    credentials,
                    headers,
                    backoff,
                    retry_max_wait: config.retry_max_wait,
                },
                shown,
                latest_ttl: config.latest_cache_ttl,
                latest: Mutex::default(),
                versions: Mutex::default(),
            }),
        })
    }

    /// The registry URL(s), for messages (without credentials).
    pub fn url(&self) -> &str {
        &self.inner.shown
    }

    /// How long [`latest`](Self::latest) answers are cached.
    pub fn latest_cache_ttl(&self) -> Duration {
        self.inner.latest_ttl
    }

    pub(super) async fn call(
        &self,
        method: Method,
        path: &[&str],
        query: &[(&str, String)],
        body: Option<serde_json::Value>,
    ) -> Result<serde_json::Value, Failure> {
        let request = Request {
            method,
            path,
            query,
            body,
        };
        self.inner.transport.send(&request).await
    }

    /// Fetches the schema with global id `id`.
    ///
    /// # Errors
    /// [`Error::UnknownSchemaId`] when the registry has no such id; otherwise the error
    /// describing why the registry could not answer.
    pub async fn schema_by_id(&self, id: u32) -> Result<RegisteredSchema> {
        let id_text = id.to_string();
        let answer = self
            .call(Method::GET, &["schemas", "ids", &id_text], &[], None)
            .await
            .map_err(|f| self.error(f, About::SchemaId(id)))?;
        Ok(RegisteredSchema {
            id,
            schema: self.text_field(&answer, "schema")?,
            schema_type: schema_type_of(&answer),
            references: self.references_of(&answer)?,
            guid: guid_of(&answer),
            metadata: self.contract_field(&answer, "metadata")?,
            rule_set: self.contract_field(&answer, "ruleSet")?,
        })
    }

    /// The subjects and versions schema id `id` is registered under
    /// (`GET /schemas/ids/{id}/versions`), e.g. to show which version a record was written with.
    ///
    /// # Errors
    /// [`Error::UnknownSchemaId`] when the registry has no such id; registry errors.
    pub async fn schema_versions(&self, id: u32) -> Result<Vec<(String, u32)>> {
        let id_text = id.to_string();
        let answer = self
            .call(
                Method::GET,
                &["schemas", "ids", &id_text, "versions"],
                &[],
                None,
            )
            .await
            .map_err(|f| self.error(f, About::SchemaId(id)))?;
        answer
            .as_array()
            .and_then(|items| {
                items
                    .iter()
                    .map(|item| {
                        Some((
                            item.get("subject")?.as_str()?.to_owned(),
                            u32::try_from(item.get("version")?.as_u64()?).ok()?,
                        ))
                    })
                    .collect::<Option<Vec<_>>>()
            })
            .ok_or_else(|| self.unexpected("the subject-version pairs of a schema id", &answer))
    }

    /// Registers `schema` under `subject` (or finds it registered already) and returns its id.
    ///
    /// # Errors
    /// [`Error::IncompatibleSchema`] when the subject's compatibility level rejects it;
    /// [`Error::RegistryRejected`] when the registry finds the schema invalid.
    pub async fn register(&self, subject: &str, schema: &str) -> Result<u32> {
        self.register_with(subject, schema, false).await
    }

    /// [`register`](Self::register), asking the registry to normalize the schema first when
    /// `normalize` is set (Confluent's `normalize.schemas`, `?normalize=true`).
    ///
    /// # Errors
    /// As [`register`](Self::register).
    pub async fn register_with(&self, subject: &str, schema: &str, normalize: bool) -> Result<u32> {
        self.register_typed(subject, schema, &SchemaType::Avro, normalize)
            .await
    }

    /// [`register_with`](Self::register_with) for a schema of type `schema_type`, sent as
    /// `schemaType`.
    ///
    /// # Errors
    /// As [`register`](Self::register).
    pub async fn register_typed(
        &self,
        subject: &str,
        schema: &str,
        schema_type: &SchemaType,
        normalize: bool,
    ) -> Result<u32> {
        let answer = self
            .call(
                Method::POST,
                &["subjects", subject, "versions"],
                &normalize_query(normalize),
                Some(schema_body(schema, schema_type)),
            )
            .await
            .map_err(|f| self.error(f, About::Subject(subject)))?;
        self.id_field(&answer, subject)
    }

    /// Looks up the id under which `schema` is registered in `subject`, without registering.
    ///
    /// # Errors
    /// [`Error::SchemaNotRegistered`] when the subject or the schema is not registered.
    pub async fn lookup(&self, subject: &str, schema: &str) -> Result<u32> {
        self.lookup_with(subject, schema, false).await
    }

    /// [`lookup`](Self::lookup), normalizing the schema first when `normalize` is set.
    ///
    /// # Errors
    /// As [`lookup`](Self::lookup).
    pub async fn lookup_with(&self, subject: &str, schema: &str, normalize: bool) -> Result<u32> {
        self.lookup_typed(subject, schema, &SchemaType::Avro, normalize)
            .await
    }

    /// [`lookup_with`](Self::lookup_with) for a schema of type `schema_type`, sent as
    /// `schemaType`.
    ///
    /// # Errors
    /// As [`lookup`](Self::lookup).
    pub async fn lookup_typed(
        &self,
        subject: &str,
        schema: &str,
        schema_type: &SchemaType,
        normalize: bool,
    ) -> Result<u32> {
        let answer = self
            .call(
                Method::POST,
                &["subjects", subject],
                &normalize_query(normalize),
                Some(schema_body(schema, schema_type)),
            )
            .await;
        match answer {
            Ok(answer) => self.id_field(&answer, subject),
            Err(Failure::Status {
                status: StatusCode::NOT_FOUND,
                code: Some(code @ (40401 | 40403)),
                message,
                ..
            }) => Err(Error::SchemaNotRegistered {
                subject: subject.to_owned(),
                registry: self.inner.shown.clone(),
                reason: format!("{message} (error code {code})"),
            }),
            Err(f) => Err(self.error(f, About::Subject(subject))),
        }
    }

    /// The latest version registered under `subject`, from the cache while it is younger than
    /// [`RegistryConfig::latest_cache_ttl`].
    ///
    /// # Errors
    /// [`Error::SubjectNotFound`] when the subject does not exist.
    pub async fn latest(&self, subject: &str) -> Result<RegisteredSchema> {
        let latest = self.latest_version(subject).await?;
        Ok(RegisteredSchema {
            id: latest.id,
            schema: latest.schema,
            schema_type: latest.schema_type,
            references: latest.references,
            guid: latest.guid,
            metadata: latest.metadata,
            rule_set: latest.rule_set,
        })
    }

    /// Like [`latest`](Self::latest), with the version number.
    ///
    /// # Errors
    /// As [`latest`](Self::latest).
    pub async fn latest_version(&self, subject: &str) -> Result<SubjectVersion> {
        let ttl = self.inner.latest_ttl;
        if !ttl.is_zero()
            && let Some((at, cached)) = self.latest_cache().get(subject)
            && at.elapsed() < ttl
        {
            return Ok(cached.clone());
        }
        let fetched = self.version_at(subject, "latest").await?;
        if !ttl.is_zero() {
            self.latest_cache()
                .insert(subject.to_owned(), (Instant::now(), fetched.clone()));
        }
        Ok(fetched)
    }

    /// Version `version` of `subject`.
    ///
    /// # Errors
    /// [`Error::SubjectNotFound`], [`Error::VersionNotFound`].
    pub async fn version(&self, subject: &str, version: u32) -> Result<SubjectVersion> {
        self.version_at(subject, &version.to_string()).await
    }

    async fn version_at(&self, subject: &str, version: &str) -> Result<SubjectVersion> {
        let answer = self
            .call(
                Method::GET,
                &["subjects", subject, "versions", version],
                &[],
                None,
            )
            .await
            .map_err(|f| self.error(f, About::Version(subject, version)))?;
        self.subject_version(subject, &answer)
    }

    /// A `…/versions/{v}` or `…/metadata` answer.
    fn subject_version(&self, subject: &str, answer: &serde_json::Value) -> Result<SubjectVersion> {
        Ok(SubjectVersion {
            subject: subject.to_owned(),
            version: self.number(answer, "version")?,
            id: self.id_field(answer, subject)?,
            schema: self.text_field(answer, "schema")?,
            schema_type: schema_type_of(answer),
            references: self.references_of(answer)?,
            guid: guid_of(answer),
            metadata: self.contract_field(answer, "metadata")?,
            rule_set: self.contract_field(answer, "ruleSet")?,
        })
    }

    /// Registers `schema` under `subject` with its data contract: `metadata` and `rule_set`
    /// (sent as `metadata` and `ruleSet`; `None` leaves them out, and Confluent's registry
    /// then keeps those of the subject's latest version). Returns the schema's id: other
    /// metadata or rules make another schema, with another id.
    ///
    /// # Errors
    /// As [`register`](Self::register); [`Error::RegistryRejected`] (42210) for a rule set the
    /// registry finds invalid.
    pub async fn register_contract(
        &self,
        subject: &str,
        schema: &str,
        metadata: Option<&Metadata>,
        rule_set: Option<&RuleSet>,
        normalize: bool,
    ) -> Result<u32> {
        let mut body = schema_body(schema, &SchemaType::Avro);
        if let Some(metadata) = metadata {
            body["metadata"] = serde_json::to_value(metadata).unwrap_or_default();
        }
        if let Some(rule_set) = rule_set {
            body["ruleSet"] = serde_json::to_value(rule_set).unwrap_or_default();
        }
        let answer = self
            .call(
                Method::POST,
                &["subjects", subject, "versions"],
                &normalize_query(normalize),
                Some(body),
            )
            .await
            .map_err(|f| self.error(f, About::Subject(subject)))?;
        self.id_field(&answer, subject)
    }

    /// The latest version of `subject` whose metadata properties include every pair of
    /// `properties` (`GET /subjects/{s}/metadata?key=k&value=v…`, Confluent's
    /// `use.latest.with.metadata`). Not cached here: the codec caches what it writes with.
    ///
    /// # Errors
    /// [`Error::SubjectNotFound`]; [`Error::VersionNotFound`] when no version has them.
    pub async fn latest_with_metadata(
        &self,
        subject: &str,
        properties: &std::collections::BTreeMap<String, String>,
    ) -> Result<SubjectVersion> {
        let query: Vec<(&str, String)> = properties
            .iter()
            .flat_map(|(k, v)| [("key", k.clone()), ("value", v.clone())])
            .collect();
        let answer = self
            .call(
                Method::GET,
                &["subjects", subject, "metadata"],
                &query,
                None,
            )
            .await
            .map_err(|f| self.error(f, About::Version(subject, "latest with metadata")))?;
        self.subject_version(subject, &answer)
    }

    /// The optional `metadata` or `ruleSet` member of an answer (absent or `null`: `None`).
    pub(super) fn contract_field<T: serde::de::DeserializeOwned>(
        &self,
        answer: &serde_json::Value,
        field: &str,
    ) -> Result<Option<T>> {
        match answer.get(field) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(value) => serde_json::from_value(value.clone())
                .map(Some)
                .map_err(|e| self.unexpected(&format!("{field} ({e})"), answer)),
        }
    }

    /// The subjects (`GET /subjects`); soft-deleted ones too when `deleted` is set.
    ///
    /// # Errors
    /// Registry errors.
    pub async fn subjects(&self, deleted: bool) -> Result<Vec<String>> {
        let query = if deleted {
            vec![("deleted", "true".to_owned())]
        } else {
            Vec::new()
        };
        let answer = self
            .call(Method::GET, &["subjects"], &query, None)
            .await
            .map_err(|f| self.error(f, About::Registry))?;
        answer
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })
            .ok_or_else(|| self.unexpected("the subjects", &answer))
    }

    /// The version numbers of `subject`, ascending.
    ///
    /// # Errors
    /// [`Error::SubjectNotFound`] when the subject does not exist.
    pub async fn versions(&self, subject: &str) -> Result<Vec<u32>> {
        let answer = self
            .call(Method::GET, &["subjects", subject, "versions"], &[], None)
            .await
            .map_err(|f| self.error(f, About::Subject(subject)))?;
        self.numbers(&answer, "the versions")
    }

    /// The compatibility level of `subject` (its own, else the global one), or the global
    /// level when `subject` is `None`.
    ///
    /// # Errors
    /// Registry errors, or [`Error::Registry`] for a level this library does not know.
    pub async fn compatibility(&self, subject: Option<&str>) -> Result<CompatibilityLevel> {
        let (path, query, about) = match subject {
            Some(subject) => (
                vec!["config", subject],
                vec![("defaultToGlobal", "true".to_owned())],
                About::Subject(subject),
            ),
            None => (vec!["config"], Vec::new(), About::Registry),
        };
        let answer = self
            .call(Method::GET, &path, &query, None)
            .await
            .map_err(|f| self.error(f, about))?;
        self.level(&answer, "compatibilityLevel")
    }

    /// Sets the compatibility level of `subject`, or the global level when `subject` is
    /// `None`; returns the level set.
    ///
    /// # Errors
    /// Registry errors ([`Error::RegistryRejected`] for a level the registry refuses).
    pub async fn set_compatibility(
        &self,
        subject: Option<&str>,
        level: CompatibilityLevel,
    ) -> Result<CompatibilityLevel> {
        let (path, about) = match subject {
            Some(subject) => (vec!["config", subject], About::Subject(subject)),
            None => (vec!["config"], About::Registry),
        };
        let body = serde_json::json!({ "compatibility": level.as_str() });
        let answer = self
            .call(Method::PUT, &path, &[], Some(body))
            .await
            .map_err(|f| self.error(f, about))?;
        self.level(&answer, "compatibility")
    }

    /// Removes the subject's own level (it then follows the global one); returns the level it
    /// had.
    ///
    /// # Errors
    /// Registry errors.
    pub async fn delete_compatibility(&self, subject: &str) -> Result<CompatibilityLevel> {
        let answer = self
            .call(Method::DELETE, &["config", subject], &[], None)
            .await
            .map_err(|f| self.error(f, About::Subject(subject)))?;
        self.level(&answer, "compatibilityLevel")
    }

    /// Asks the registry whether `schema` may be registered under `subject`, against the
    /// versions `against` names, with its verbose messages.
    ///
    /// # Errors
    /// [`Error::SubjectNotFound`] when the subject does not exist (a new subject: any schema is
    /// compatible), [`Error::VersionNotFound`], [`Error::RegistryRejected`] for an invalid
    /// schema.
    pub async fn test_compatibility(
        &self,
        subject: &str,
        schema: &str,
        against: TestAgainst,
    ) -> Result<CompatibilityAnswer> {
        self.test_compatibility_with_references(subject, schema, &[], against)
            .await
    }

    /// [`test_compatibility`](Self::test_compatibility) for a schema that uses the named types
    /// of `references` (sent as `references`).
    ///
    /// # Errors
    /// As [`test_compatibility`](Self::test_compatibility).
    pub async fn test_compatibility_with_references(
        &self,
        subject: &str,
        schema: &str,
        references: &[SchemaReference],
        against: TestAgainst,
    ) -> Result<CompatibilityAnswer> {
        let number;
        let mut path = vec!["compatibility", "subjects", subject, "versions"];
        let version = match against {
            TestAgainst::Level => "",
            TestAgainst::Latest => "latest",
            TestAgainst::Version(v) => {
                number = v.to_string();
                &number
            }
        };
        if !version.is_empty() {
            path.push(version);
        }
        let about = if version.is_empty() {
            About::Subject(subject)
        } else {
            About::Version(subject, version)
        };
        let answer = self
            .call(
                Method::POST,
                &path,
                &[("verbose", "true".to_owned())],
                Some(super::references::body(
                    schema,
                    references,
                    &SchemaType::Avro,
                )),
            )
            .await
            .map_err(|f| self.error(f, about))?;
        let is_compatible = answer
            .get("is_compatible")
            .and_then(serde_json::Value::as_bool)
            .ok_or_else(|| self.unexpected("is_compatible", &answer))?;
        let messages = answer
            .get("messages")
            .and_then(serde_json::Value::as_array)
            .map(|m| {
                m.iter()
                    .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        Ok(CompatibilityAnswer {
            is_compatible,
            messages,
        })
    }

    /// Deletes `subject` and returns the versions deleted. A soft delete (`permanent` unset)
    /// hides them; a permanent delete, allowed only after a soft one, removes them for good.
    ///
    /// # Errors
    /// [`Error::SubjectNotFound`]; the registry refuses a permanent delete of a subject that
    /// was not soft-deleted first.
    pub async fn delete_subject(&self, subject: &str, permanent: bool) -> Result<Vec<u32>> {
        let answer = self
            .call(
                Method::DELETE,
                &["subjects", subject],
                &permanent_query(permanent),
                None,
            )
            .await
            .map_err(|f| self.error(f, About::Subject(subject)))?;
        self.forget_latest(subject);
        self.numbers(&answer, "the deleted versions")
    }

    /// Deletes one version of `subject` (soft, or permanent after a soft delete) and returns
    /// its number.
    ///
    /// # Errors
    /// [`Error::SubjectNotFound`], [`Error::VersionNotFound`].
    pub async fn delete_version(
        &self,
        subject: &str,
        version: u32,
        permanent: bool,
    ) -> Result<u32> {
        let number = version.to_string();
        let answer = self
            .call(
                Method::DELETE,
                &["subjects", subject, "versions", &number],
                &permanent_query(permanent),
                None,
            )
            .await
            .map_err(|f| self.error(f, About::Version(subject, &number)))?;
        self.forget_latest(subject);
        answer
            .as_u64()
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| self.unexpected("the deleted version", &answer))
    }

    fn latest_cache(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, SubjectVersion)>> {
        self.inner
            .latest
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(super) fn version_cache(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<(String, u32), Arc<SubjectVersion>>> {
        self.inner
            .versions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(super) fn forget_latest(&self, subject: &str) {
        self.latest_cache().remove(subject);
    }

    // -----------------------------------------------------------------------------------------
    // Answers.

    pub(super) fn unexpected(&self, what: &str, answer: &serde_json::Value) -> Error {
        let mut shown = answer.to_string();
        if shown.len() > 300 {
            shown.truncate(shown.floor_char_boundary(300));
            shown.push('…');
        }
        Error::Registry {
            registry: self.inner.shown.clone(),
            reason: format!("unexpected answer without {what}: {shown}"),
        }
    }

    pub(super) fn text_field(&self, answer: &serde_json::Value, field: &str) -> Result<String> {
        answer
            .get(field)
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| self.unexpected(field, answer))
    }

    pub(super) fn number(&self, answer: &serde_json::Value, field: &str) -> Result<u32> {
        answer
            .get(field)
            .and_then(serde_json::Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| self.unexpected(field, answer))
    }

    pub(super) fn id_field(&self, answer: &serde_json::Value, subject: &str) -> Result<u32> {
        self.number(answer, "id").map_err(|_| Error::Registry {
            registry: self.inner.shown.clone(),
            reason: format!("answer for subject '{subject}' has no schema id"),
        })
    }

    pub(super) fn numbers(&self, answer: &serde_json::Value, what: &str) -> Result<Vec<u32>> {
        answer
            .as_array()
            .and_then(|items| {
                items
                    .iter()
                    .map(|v| v.as_u64().and_then(|n| u32::try_from(n).ok()))
                    .collect::<Option<Vec<u32>>>()
            })
            .ok_or_else(|| self.unexpected(what, answer))
    }

    fn level(&self, answer: &serde_json::Value, field: &str) -> Result<CompatibilityLevel> {
        let text = self.text_field(answer, field)?;
        text.parse().map_err(|e| Error::Registry {
            registry: self.inner.shown.clone(),
            reason: format!("{e}"),
        })
    }

    /// Maps a failed call onto the library's error.
    pub(super) fn error(&self, failure: Failure, about: About<'_>) -> Error {
        let registry = self.inner.shown.clone();
        let (status, code, message, retries) = match failure {
            Failure::Transport(reason) => return Error::RegistryUnreachable { registry, reason },
            Failure::Credentials(e) => return e,
            Failure::Status {
                status,
                code,
                message,
                retries,
                ..
            } => (status, code, message, retries),
        };
        let reason = match code {
            Some(code) => format!("{message} (error code {code})"),
            None => message,
        };
        let subject = |about: About<'_>| match about {
            About::Subject(s) | About::Version(s, _) => Some(s.to_owned()),
            _ => None,
        };
        match (status.as_u16(), code, about) {
            (401 | 403, _, _) => Error::RegistryUnauthorized {
                registry,
                status: status.as_u16(),
                reason,
            },
            (404, Some(40401), About::Subject(s) | About::Version(s, _)) => {
                Error::SubjectNotFound {
                    subject: s.to_owned(),
                    registry,
                }
            }
            (404, Some(40402), About::Version(s, v)) => Error::VersionNotFound {
                subject: s.to_owned(),
                version: v.to_owned(),
                registry,
            },
            (404, Some(40403), About::SchemaId(id)) => Error::UnknownSchemaId { id, registry },
            (404, Some(40403), About::SchemaGuid(guid)) => {
                Error::UnknownSchemaGuid { guid, registry }
            }
            (409, _, _) => Error::IncompatibleSchema {
                subject: subject(about).unwrap_or_default(),
                messages: vec![reason],
            },
            (422, _, _) => Error::RegistryRejected {
                registry,
                error_code: code,
                reason,
            },
            (429 | 500..=599, _, _) => Error::RegistryUnreachable {
                registry,
                reason: format!(
                    "HTTP {status} after {retries} {}: {reason}",
                    if retries == 1 { "retry" } else { "retries" }
                ),
            },
            _ => Error::Registry {
                registry,
                reason: format!("HTTP {status}: {reason}"),
            },
        }
    }
}

fn sensitive(value: &str, key: &str) -> Result<reqwest::header::HeaderValue> {
    let mut value = reqwest::header::HeaderValue::from_str(value).map_err(|_| Error::Config {
        key: key.into(),
        reason: "the credentials cannot be sent in an HTTP header".into(),
    })?;
    value.set_sensitive(true);
    Ok(value)
}

/// The body of a registration or lookup: the schema text and its `schemaType`.
pub(super) fn schema_body(schema: &str, schema_type: &SchemaType) -> serde_json::Value {
    serde_json::json!({ "schema": schema, "schemaType": schema_type.as_str() })
}

/// The `schemaType` of a registry answer (Avro when absent, as Confluent's registry answers
/// for Avro schemas).
pub(super) fn schema_type_of(answer: &serde_json::Value) -> SchemaType {
    SchemaType::from_registry(answer.get("schemaType").and_then(serde_json::Value::as_str))
}

pub(super) fn normalize_query(normalize: bool) -> Vec<(&'static str, String)> {
    if normalize {
        vec![("normalize", "true".to_owned())]
    } else {
        Vec::new()
    }
}

fn permanent_query(permanent: bool) -> Vec<(&'static str, String)> {
    if permanent {
        vec![("permanent", "true".to_owned())]
    } else {
        Vec::new()
    }
}
