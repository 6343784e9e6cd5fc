//! Encoding and decoding of [`Event`]s in Confluent's wire format, with the writer schema
//! fetched by id and resolved into the reader's schema.
//!
//! Every value goes through `serde_avro_fast`, straight between the Rust type and Avro bytes;
//! apache-avro only parses schemas. Decoding takes one of two paths. When the writer schema
//! has the same Parsing Canonical Form as the reader's (the common case: both sides run the
//! same schema version) the Avro body is deserialized straight into the Rust type. Otherwise
//! the body is first rewritten into the reader schema's encoding by a resolution plan
//! (defaults for added fields, dropped removed fields, promotions, renumbered enum symbols and
//! union branches) compiled once per (writer schema id, reader type) and cached. Encoding with
//! `use.latest.version` runs the same kind of plan from the type's schema to the latest one.
//!
//! Because no value passes through apache-avro's serde support, the codec does not depend on
//! apache-avro's process-wide switches: `apache_avro::util::set_serde_human_readable` (first
//! call wins) may be set either way by anyone, before or after a codec is created, and the
//! codec's output is the same (tested).
//!
//! Writer schemas come from the registry, so decoding bounds what a record can make it
//! allocate: the rewritten body of a resolving decode may be at most
//! [`CodecOptions::max_allocation_bytes`] long (`avro.max.allocation.bytes`, default 16 MiB),
//! a bound of this codec alone, and a writer schema with an array whose items encode to zero
//! bytes (`{"type":"array","items":"null"}`, an empty record), with which a few bytes could
//! claim millions of items, is refused as [`Error::UnusableSchema`].
//!
//! Both paths are driven with hostile input: generated writer and reader schemas with valid,
//! truncated and mutated bodies behind a registered id (`grocery-events`'
//! `tests/codec_generated.rs`, through [`Codec::check_decode`]), and the
//! libFuzzer targets of `fuzz/` (through [`check_body`](crate::dynamic::check_body)), whose
//! corpus the stable suite replays.
//!
//! Keys are plain UTF-8 strings ([`Event::key`]) unless the event declares
//! [`Event::KEY_SCHEMA`]: then they are Avro in the wire format too, registered under
//! `<topic>-key` ([`Codec::encode_key`], [`Codec::decode_key`]).

use std::{
    any::TypeId,
    collections::HashMap,
    sync::{Arc, RwLock},
};

use apache_avro::Schema;
use serde::{Serialize, de::DeserializeOwned};
use tracing::{debug, instrument};

use crate::{
    Error, Event, Result, SubjectNameStrategy,
    event::KeyOf,
    registry::{RegistryClient, RegistryConfig},
    resolve::Plan,
    wire,
};

/// How the [`Codec`] picks the schema id it writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CodecOptions {
    /// Register the type's schema under its subject when encoding (Confluent's
    /// `auto.register.schemas`, default `true`). Off in production, where schemas are
    /// registered by Terraform or CI: the codec then looks the schema up.
    pub auto_register: bool,
    /// Write with the latest version registered under the subject rather than the type's own
    /// schema (Confluent's `use.latest.version`). The type's value is resolved into the latest
    /// schema, which must be able to read it. The latest version is asked again once the
    /// registry client's [`latest_cache_ttl`](crate::registry::RegistryConfig::latest_cache_ttl)
    /// has passed, so a newly registered version is picked up.
    pub use_latest_version: bool,
    /// Write with the schema registered under this global id (Confluent's `use.schema.id`);
    /// takes precedence over [`use_latest_version`](Self::use_latest_version). The type's
    /// value is resolved into that schema, which must be able to read it.
    pub use_schema_id: Option<u32>,
    /// Ask the registry to normalize the schema when registering or looking it up (Confluent's
    /// `normalize.schemas`, sent as `?normalize=true`), so schemas that differ only in form
    /// share an id.
    pub normalize_schemas: bool,
    /// How subjects are named.
    pub subject_strategy: SubjectNameStrategy,
    /// The most bytes a record may make the codec allocate for the rewritten body of a
    /// resolving decode, and for a resolved `use.latest.version` encoding
    /// (`avro.max.allocation.bytes`, default [`DEFAULT_MAX_ALLOCATION_BYTES`]). A record that
    /// would need more fails with [`Error::Decode`]. The bound is this codec's own: codecs with
    /// different bounds coexist in one process.
    pub max_allocation_bytes: usize,
}

/// Default of [`CodecOptions::max_allocation_bytes`]: 16 MiB, far above any grocery event.
pub const DEFAULT_MAX_ALLOCATION_BYTES: usize = 16 * 1024 * 1024;

impl Default for CodecOptions {
    fn default() -> Self {
        Self {
            auto_register: true,
            use_latest_version: false,
            use_schema_id: None,
            normalize_schemas: false,
            subject_strategy: SubjectNameStrategy::TopicName,
            max_allocation_bytes: DEFAULT_MAX_ALLOCATION_BYTES,
        }
    }
}

impl CodecOptions {
    /// Sets [`CodecOptions::auto_register`].
    pub fn with_auto_register(mut self, on: bool) -> Self {
        self.auto_register = on;
        self
    }

    /// Sets [`CodecOptions::use_latest_version`].
    pub fn with_use_latest_version(mut self, on: bool) -> Self {
        self.use_latest_version = on;
        self
    }

    /// Sets [`CodecOptions::use_schema_id`].
    pub fn with_use_schema_id(mut self, id: Option<u32>) -> Self {
        self.use_schema_id = id;
        self
    }

    /// Sets [`CodecOptions::normalize_schemas`].
    pub fn with_normalize_schemas(mut self, on: bool) -> Self {
        self.normalize_schemas = on;
        self
    }

    /// Sets [`CodecOptions::subject_strategy`].
    pub fn with_subject_strategy(mut self, strategy: SubjectNameStrategy) -> Self {
        self.subject_strategy = strategy;
        self
    }

    /// Sets [`CodecOptions::max_allocation_bytes`].
    pub fn with_max_allocation_bytes(mut self, bytes: usize) -> Self {
        self.max_allocation_bytes = bytes;
        self
    }
}

/// The schema a Rust type is compiled against.
#[derive(Debug)]
pub(crate) struct ReaderSchema {
    pub(crate) avro: Schema,
    pub(crate) fast: serde_avro_fast::Schema,
    pub(crate) canonical: String,
}

impl ReaderSchema {
    /// Parses `text` for both apache-avro (resolution) and the fast decoder.
    ///
    /// # Errors
    /// [`Error::InvalidSchema`] naming `origin` when either refuses it.
    pub(crate) fn parse(text: &str, origin: &str) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidSchema {
            origin: origin.to_owned(),
            reason,
        };
        let avro = Schema::parse_str(text).map_err(|e| invalid(e.to_string()))?;
        let fast = text
            .parse::<serde_avro_fast::Schema>()
            .map_err(|e| invalid(e.to_string()))?;
        let canonical = avro.canonical_form();
        Ok(Self {
            avro,
            fast,
            canonical,
        })
    }
}

/// A schema fetched from the registry by id.
#[derive(Debug)]
pub(crate) struct WriterSchema {
    pub(crate) avro: Schema,
    pub(crate) canonical: String,
}

/// What encoding writes for one (type, topic).
#[derive(Debug)]
enum WriteTarget {
    /// The type's own schema, registered under this id.
    Own(u32),
    /// Another registered schema (`use.latest.version`, `use.schema.id`): values are resolved
    /// into it.
    Resolved(u32, Plan),
}

/// A cached [`WriteTarget`]; one found through `use.latest.version` is asked again after
/// `expires`.
#[derive(Debug)]
struct CachedTarget {
    target: Arc<WriteTarget>,
    expires: Option<std::time::Instant>,
}

/// Whether a schema is a type's value schema or its key schema ([`Event::KEY_SCHEMA`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Part {
    Value,
    Key,
}

/// A compiled resolution from a writer schema id into a reader type (or why there is none).
pub(crate) type CachedPlan = Arc<std::result::Result<Plan, String>>;

/// Encodes and decodes [`Event`]s in Confluent's wire format. Create one per application and
/// share it (it is `Send + Sync`, and cheap to share in an `Arc`): it caches schema ids and
/// schemas, so once warm it keeps working while the registry is down.
#[derive(Debug)]
pub struct Codec {
    registry: RegistryClient,
    options: CodecOptions,
    readers: RwLock<HashMap<(TypeId, Part), Arc<ReaderSchema>>>,
    writers: RwLock<HashMap<u32, Arc<WriterSchema>>>,
    /// Resolution plans by (writer schema id, reader type, value or key).
    plans: RwLock<HashMap<(u32, TypeId, Part), CachedPlan>>,
    /// By type (and part), then by topic (looked up with the borrowed topic: no allocation per
    /// encode).
    targets: RwLock<HashMap<(TypeId, Part), TargetsByTopic>>,
}

/// The write targets of one type (or its key), by topic.
type TargetsByTopic = HashMap<String, CachedTarget>;

impl Codec {
    /// A codec talking to the registry described by `config`.
    ///
    /// # Errors
    /// [`Error::Config`] when the registry configuration is unusable.
    pub fn new(config: &RegistryConfig, options: CodecOptions) -> Result<Self> {
        Ok(Self::with_client(RegistryClient::new(config)?, options))
    }

    /// A codec over an existing registry client.
    pub fn with_client(registry: RegistryClient, options: CodecOptions) -> Self {
        Self {
            registry,
            options,
            readers: RwLock::default(),
            writers: RwLock::default(),
            plans: RwLock::default(),
            targets: RwLock::default(),
        }
    }

    /// The registry client.
    pub fn registry(&self) -> &RegistryClient {
        &self.registry
    }

    /// The options this codec was built with.
    pub fn options(&self) -> CodecOptions {
        self.options
    }

    /// The subject `E` is written under on `topic`.
    pub fn subject<E: Event>(&self, topic: &str) -> String {
        self.options.subject_strategy.subject(topic, E::FULL_NAME)
    }

    /// The subject `E`'s key schema ([`Event::KEY_SCHEMA`]) is written under on `topic`:
    /// `<topic>-key`, as Confluent's `TopicNameStrategy` names key subjects.
    pub fn key_subject(&self, topic: &str) -> String {
        format!("{topic}-key")
    }

    fn subject_of<E: Event>(&self, topic: &str, part: Part) -> String {
        match part {
            Part::Value => self.subject::<E>(topic),
            Part::Key => self.key_subject(topic),
        }
    }

    /// Encodes `event` for its default topic [`Event::TOPIC`].
    ///
    /// # Errors
    /// Registry errors while finding the schema id (only on the first call per type), or
    /// [`Error::Encode`] when the value does not fit the schema.
    pub async fn encode<E: Event>(&self, event: &E) -> Result<Vec<u8>> {
        self.encode_for(E::TOPIC, event).await
    }

    /// Encodes `event` for `topic` (the topic decides the subject).
    ///
    /// # Errors
    /// As [`Codec::encode`].
    pub async fn encode_for<E: Event>(&self, topic: &str, event: &E) -> Result<Vec<u8>> {
        self.encode_part::<E>(topic, Part::Value, event).await
    }

    /// The record key of `event` on `topic`: [`Event::key`]'s UTF-8 bytes, or with an
    /// [`Event::KEY_SCHEMA`] the key ([`Event::serialize_key`]) Avro-encoded in the wire format
    /// under the subject `<topic>-key`.
    ///
    /// # Errors
    /// As [`Codec::encode`], for the key schema.
    pub async fn encode_event_key<E: Event>(&self, topic: &str, event: &E) -> Result<Vec<u8>> {
        if E::KEY_SCHEMA.is_none() {
            return Ok(event.key().into_bytes());
        }
        self.encode_part::<E>(topic, Part::Key, &KeyOf(event)).await
    }

    /// The record key `key` of an `E` on `topic`, e.g. for a tombstone: with an
    /// [`Event::KEY_SCHEMA`], `key` Avro-encoded in the wire format under `<topic>-key`;
    /// without one, `key` must serialize as a string, whose UTF-8 bytes are the key.
    ///
    /// # Errors
    /// [`Error::Encode`] when `key` does not fit the key schema (or is not a string without
    /// one); registry errors as [`Codec::encode`].
    pub async fn encode_key<E: Event>(
        &self,
        topic: &str,
        key: &(impl Serialize + ?Sized),
    ) -> Result<Vec<u8>> {
        if E::KEY_SCHEMA.is_none() {
            return match serde_json::to_value(key) {
                Ok(serde_json::Value::String(text)) => Ok(text.into_bytes()),
                other => Err(Error::Encode {
                    reader: E::FULL_NAME.into(),
                    subject: self.key_subject(topic),
                    reason: format!(
                        "{} declares no key schema, so its key must be a string, not {}",
                        E::FULL_NAME,
                        other.map_or_else(|e| e.to_string(), |v| v.to_string())
                    ),
                }),
            };
        }
        self.encode_part::<E>(topic, Part::Key, key).await
    }

    async fn encode_part<E: Event>(
        &self,
        topic: &str,
        part: Part,
        value: &(impl Serialize + ?Sized),
    ) -> Result<Vec<u8>> {
        let target = self.write_target::<E>(topic, part).await?;
        let reader = self.reader::<E>(part)?;
        let encode_err = |reason: String| Error::Encode {
            reader: E::FULL_NAME.into(),
            subject: self.subject_of::<E>(topic, part),
            reason,
        };
        let mut buf = Vec::with_capacity(128);
        match &*target {
            WriteTarget::Own(id) => {
                wire::write_header(&mut buf, *id);
                let mut config = serde_avro_fast::ser::SerializerConfig::new(&reader.fast);
                serde_avro_fast::to_datum(value, buf, &mut config)
                    .map_err(|e| encode_err(e.to_string()))
            }
            WriteTarget::Resolved(id, plan) => {
                let mut config = serde_avro_fast::ser::SerializerConfig::new(&reader.fast);
                let own = serde_avro_fast::to_datum_vec(value, &mut config)
                    .map_err(|e| encode_err(e.to_string()))?;
                wire::write_header(&mut buf, *id);
                plan.run(&own, buf, self.options.max_allocation_bytes)
                    .map_err(encode_err)
            }
        }
    }

    /// Decodes a Confluent-framed payload into `E`, resolving the writer's schema version into
    /// `E`'s.
    ///
    /// # Errors
    /// [`Error::EmptyPayload`], [`Error::BadMagicByte`], [`Error::TruncatedHeader`] for bytes
    /// that are not Confluent-framed; [`Error::UnknownSchemaId`] for an id the registry does not
    /// know; [`Error::UnusableSchema`] for a writer schema this codec cannot use (references,
    /// not Avro, arrays of zero-byte items); [`Error::Decode`] for a body that does not decode
    /// or resolve; registry errors when the writer schema is not cached and cannot be fetched.
    pub async fn decode<E: Event>(&self, payload: &[u8]) -> Result<E> {
        self.decode_part::<E, E>(payload, Part::Value).await
    }

    /// Decodes a record key written with a key schema (see [`Event::KEY_SCHEMA`]) into `K`,
    /// resolving the writer's key schema into `E`'s.
    ///
    /// # Errors
    /// As [`Codec::decode`]; [`Error::InvalidSchema`] when `E` declares no key schema.
    pub async fn decode_key<E: Event, K: DeserializeOwned>(&self, key: &[u8]) -> Result<K> {
        self.decode_part::<E, K>(key, Part::Key).await
    }

    async fn decode_part<E: Event, T: DeserializeOwned>(
        &self,
        payload: &[u8],
        part: Part,
    ) -> Result<T> {
        let (schema_id, body) = wire::split(payload)?;
        let writer = self.writer(schema_id).await?;
        let reader = self.reader::<E>(part)?;
        let decode_err = |reason: String| Error::Decode {
            schema_id,
            reader: E::FULL_NAME.into(),
            location: None,
            reason,
        };
        decode_body(
            body,
            &writer,
            &reader,
            || self.plan::<E>(schema_id, part, &writer, &reader),
            self.options.max_allocation_bytes,
        )
        .map_err(decode_err)
    }

    /// The resolution plan from writer schema `schema_id` into `E` (or its key), compiled on
    /// first use.
    fn plan<E: Event>(
        &self,
        schema_id: u32,
        part: Part,
        writer: &WriterSchema,
        reader: &ReaderSchema,
    ) -> CachedPlan {
        let key = (schema_id, TypeId::of::<E>(), part);
        if let Some(found) = read_lock(&self.plans).get(&key) {
            return found.clone();
        }
        let plan = Arc::new(Plan::compile(&writer.avro, &reader.avro));
        debug!(
            schema_id,
            reader = E::FULL_NAME,
            ok = plan.is_ok(),
            "compiled resolution plan"
        );
        write_lock(&self.plans).insert(key, plan.clone());
        plan
    }

    /// The compiled schema of `E`, or of its key.
    fn reader<E: Event>(&self, part: Part) -> Result<Arc<ReaderSchema>> {
        let key = (TypeId::of::<E>(), part);
        if let Some(found) = read_lock(&self.readers).get(&key) {
            return Ok(found.clone());
        }
        let (text, origin) = match part {
            Part::Value => (E::SCHEMA, format!("type {}", E::FULL_NAME)),
            Part::Key => (
                E::KEY_SCHEMA.ok_or_else(|| Error::InvalidSchema {
                    origin: format!("key of type {}", E::FULL_NAME),
                    reason: "the type declares no key schema (Event::KEY_SCHEMA)".into(),
                })?,
                format!("key schema of type {}", E::FULL_NAME),
            ),
        };
        let compiled = Arc::new(ReaderSchema::parse(text, &origin)?);
        write_lock(&self.readers).insert(key, compiled.clone());
        Ok(compiled)
    }

    /// The writer schema with global id `id`, from the cache or the registry.
    pub(crate) async fn writer(&self, id: u32) -> Result<Arc<WriterSchema>> {
        if let Some(found) = read_lock(&self.writers).get(&id) {
            return Ok(found.clone());
        }
        let fetched = self.registry.schema_by_id(id).await?;
        let invalid = |reason: String| Error::UnusableSchema {
            id,
            registry: self.registry.url().to_owned(),
            reason,
        };
        let avro = Schema::parse_str(&fetched.schema).map_err(|e| {
            invalid(format!(
                "not an Avro schema this codec can parse (a schema with references, or not \
                 Avro): {e}"
            ))
        })?;
        check_array_items(&avro).map_err(invalid)?;
        debug!(schema_id = id, "fetched writer schema");
        let canonical = avro.canonical_form();
        let writer = Arc::new(WriterSchema { avro, canonical });
        write_lock(&self.writers).insert(id, writer.clone());
        Ok(writer)
    }

    /// The schema id (and schema) encoding `E` (or its key) for `topic` writes with.
    #[instrument(level = "debug", skip(self), fields(event = E::FULL_NAME))]
    async fn write_target<E: Event>(&self, topic: &str, part: Part) -> Result<Arc<WriteTarget>> {
        let key = (TypeId::of::<E>(), part);
        if let Some(found) = read_lock(&self.targets)
            .get(&key)
            .and_then(|by_topic| by_topic.get(topic))
            .filter(|cached| {
                cached
                    .expires
                    .is_none_or(|at| std::time::Instant::now() < at)
            })
        {
            return Ok(found.target.clone());
        }
        let subject = self.subject_of::<E>(topic, part);
        let text = match part {
            Part::Value => E::SCHEMA,
            Part::Key => E::KEY_SCHEMA.unwrap_or_default(),
        };
        let normalize = self.options.normalize_schemas;
        let mut expires = None;
        // Keys are always written with their own schema (Confluent's `use.schema.id` and
        // `use.latest.version` concern values).
        let target = if let (Some(id), Part::Value) = (self.options.use_schema_id, part) {
            let fetched = self.registry.schema_by_id(id).await?;
            self.resolved_target::<E>(&subject, id, &fetched.schema, &format!("schema id {id}"))?
        } else if self.options.use_latest_version && part == Part::Value {
            let ttl = self.registry.latest_cache_ttl();
            // A TTL too long to add (Confluent's -1) never expires.
            expires = std::time::Instant::now().checked_add(ttl);
            let latest = self.registry.latest(&subject).await?;
            let origin = format!(
                "the latest version (id {}) of subject '{subject}'",
                latest.id
            );
            self.resolved_target::<E>(&subject, latest.id, &latest.schema, &origin)?
        } else if self.options.auto_register {
            WriteTarget::Own(
                self.registry
                    .register_with(&subject, text, normalize)
                    .await?,
            )
        } else {
            WriteTarget::Own(self.registry.lookup_with(&subject, text, normalize).await?)
        };
        debug!(%subject, ?target, "resolved write schema");
        let target = Arc::new(target);
        write_lock(&self.targets).entry(key).or_default().insert(
            topic.to_owned(),
            CachedTarget {
                target: target.clone(),
                expires,
            },
        );
        Ok(target)
    }

    /// Writing `E` with the registered schema `text` (global id `id`): as `E`'s own schema when
    /// it is the same, else resolved into it, which must be able to read `E`.
    fn resolved_target<E: Event>(
        &self,
        subject: &str,
        id: u32,
        text: &str,
        origin: &str,
    ) -> Result<WriteTarget> {
        let reader = self.reader::<E>(Part::Value)?;
        let schema = Schema::parse_str(text).map_err(|e| Error::InvalidSchema {
            origin: origin.to_owned(),
            reason: e.to_string(),
        })?;
        if schema.canonical_form() == reader.canonical {
            return Ok(WriteTarget::Own(id));
        }
        // The registered schema reads what `E` writes: Confluent's (Java Avro's) rules, as the
        // registry decides them, logical types compared by their physical type.
        let report = crate::compat::check(
            crate::compat::CompatibilityLevel::Forward,
            &reader.avro,
            std::slice::from_ref(&schema),
        );
        if !report.is_compatible() {
            return Err(Error::IncompatibleSchema {
                subject: subject.to_owned(),
                messages: report
                    .incompatibilities
                    .iter()
                    .map(|problem| {
                        format!(
                            "{origin} cannot read {}: {} at '{}': {}",
                            E::FULL_NAME,
                            problem.kind,
                            problem.path,
                            problem.description
                        )
                    })
                    .collect(),
            });
        }
        let plan =
            Plan::compile(&reader.avro, &schema).map_err(|reason| Error::IncompatibleSchema {
                subject: subject.to_owned(),
                messages: vec![format!("{origin} cannot read {}: {reason}", E::FULL_NAME)],
            })?;
        Ok(WriteTarget::Resolved(id, plan))
    }
}

/// Decodes `body`, written with `writer`, into `T` as `reader` reads it: straight when the two
/// schemas have the same Parsing Canonical Form, else rewritten by the resolution `plan` (at
/// most `limit` bytes) first. The one decoding path of [`Codec::decode`] and
/// [`Codec::check_decode`](crate::codec::Codec::check_decode).
pub(crate) fn decode_body<T: DeserializeOwned>(
    body: &[u8],
    writer: &WriterSchema,
    reader: &ReaderSchema,
    plan: impl FnOnce() -> CachedPlan,
    limit: usize,
) -> std::result::Result<T, String> {
    if writer.canonical == reader.canonical {
        return serde_avro_fast::from_datum_slice::<T>(body, &reader.fast)
            .map_err(|e| e.to_string());
    }
    let plan = plan();
    let plan = plan.as_ref().as_ref().map_err(Clone::clone)?;
    let resolved = plan.run(body, Vec::with_capacity(body.len().min(limit) + 32), limit)?;
    serde_avro_fast::from_datum_slice::<T>(&resolved, &reader.fast).map_err(|e| e.to_string())
}

/// Refuses a writer schema with an array whose items encode to zero bytes: a record of a few
/// bytes could then claim any number of items.
pub(crate) fn check_array_items(schema: &Schema) -> std::result::Result<(), String> {
    let resolved =
        apache_avro::schema::ResolvedSchema::try_from(schema).map_err(|e| e.to_string())?;
    let names = resolved.get_names();
    let mut visited = Vec::new();
    walk_arrays(schema, names, &mut visited)
}

fn walk_arrays<'s>(
    schema: &'s Schema,
    names: &apache_avro::schema::NamesRef<'s>,
    visited: &mut Vec<&'s apache_avro::schema::Name>,
) -> std::result::Result<(), String> {
    match schema {
        Schema::Array(array) => {
            if encodes_to_nothing(&array.items, names, &mut Vec::new()) {
                return Err(format!(
                    "an array's items ({}) encode to zero bytes, so a few bytes could claim \
                     millions of items; such writer schemas are refused",
                    array.items.canonical_form()
                ));
            }
            walk_arrays(&array.items, names, visited)
        }
        Schema::Map(map) => walk_arrays(&map.types, names, visited),
        Schema::Union(union) => union
            .variants()
            .iter()
            .try_for_each(|v| walk_arrays(v, names, visited)),
        Schema::Record(record) => {
            if visited.contains(&&record.name) {
                return Ok(());
            }
            visited.push(&record.name);
            record
                .fields
                .iter()
                .try_for_each(|f| walk_arrays(&f.schema, names, visited))
        }
        Schema::Ref { name } => match names.get(name) {
            Some(target) if !visited.contains(&name) => walk_arrays(target, names, visited),
            _ => Ok(()),
        },
        _ => Ok(()),
    }
}

/// Whether every value of `schema` encodes to zero bytes (`null`, an empty record, a record of
/// such fields, a zero-size fixed).
fn encodes_to_nothing<'s>(
    schema: &'s Schema,
    names: &apache_avro::schema::NamesRef<'s>,
    in_progress: &mut Vec<&'s apache_avro::schema::Name>,
) -> bool {
    match schema {
        Schema::Null => true,
        Schema::Fixed(fixed) => fixed.size == 0,
        Schema::Record(record) => {
            if in_progress.contains(&&record.name) {
                return false;
            }
            in_progress.push(&record.name);
            let nothing = record
                .fields
                .iter()
                .all(|f| encodes_to_nothing(&f.schema, names, in_progress));
            in_progress.pop();
            nothing
        }
        Schema::Ref { name } => names
            .get(name)
            .is_some_and(|target| encodes_to_nothing(target, names, in_progress)),
        _ => false,
    }
}

fn read_lock<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write_lock<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
