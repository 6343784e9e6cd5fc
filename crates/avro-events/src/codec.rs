//! Encoding and decoding of [`Event`]s in Confluent's wire format, with the writer schema
//! fetched by id and resolved into the reader's schema.
//!
//! Decoding takes one of two paths. When the writer schema has the same Parsing Canonical Form
//! as the reader's (the common case: both sides run the same schema version) the Avro body is
//! deserialized straight into the Rust type by `serde_avro_fast`. Otherwise apache-avro decodes
//! the body with the writer schema and resolves it into the reader schema (defaults for added
//! fields, dropped removed fields, promotions), and the resolved value becomes the Rust type.
//!
//! Writer schemas come from the registry, so decoding bounds what a record can make it
//! allocate: apache-avro's allocation bound is set to [`CodecOptions::max_allocation_bytes`]
//! (`avro.max.allocation.bytes`, default 16 MiB, instead of apache-avro's 512 MiB), and a writer
//! schema with an array whose items encode to zero bytes (`{"type":"array","items":"null"}`,
//! an empty record), with which a few bytes could claim millions of items, is refused as
//! [`Error::InvalidSchema`].

use std::{
    any::TypeId,
    collections::HashMap,
    sync::{Arc, RwLock},
};

use apache_avro::{
    Schema, reader::datum::GenericDatumReader, types::Value, writer::datum::GenericDatumWriter,
};
use tracing::{debug, instrument};

use crate::{
    Error, Event, Result, SubjectNameStrategy,
    registry::{RegistryClient, RegistryConfig},
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
    /// schema, which must be able to read it.
    pub use_latest_version: bool,
    /// How subjects are named.
    pub subject_strategy: SubjectNameStrategy,
    /// The most bytes one decoded value may make apache-avro allocate for a string, bytes or
    /// the items of an array or map (`avro.max.allocation.bytes`, default
    /// [`DEFAULT_MAX_ALLOCATION_BYTES`]). apache-avro keeps this bound process-wide and takes
    /// only the first value set: the first [`Codec`] created sets it, and a later codec asking
    /// for another value logs a warning.
    pub max_allocation_bytes: usize,
}

/// Default of [`CodecOptions::max_allocation_bytes`]: 16 MiB, far above any grocery event.
pub const DEFAULT_MAX_ALLOCATION_BYTES: usize = 16 * 1024 * 1024;

impl Default for CodecOptions {
    fn default() -> Self {
        Self {
            auto_register: true,
            use_latest_version: false,
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
struct ReaderSchema {
    avro: Schema,
    fast: serde_avro_fast::Schema,
    canonical: String,
}

/// A schema fetched from the registry by id.
#[derive(Debug)]
struct WriterSchema {
    avro: Schema,
    canonical: String,
}

/// What encoding writes for one (type, topic).
#[derive(Debug)]
enum WriteTarget {
    /// The type's own schema, registered under this id.
    Own(u32),
    /// A different latest version (`use_latest_version`): values are resolved into it.
    Latest(u32, Arc<Schema>),
}

/// Encodes and decodes [`Event`]s in Confluent's wire format. Create one per application and
/// share it (it is `Send + Sync`, and cheap to share in an `Arc`): it caches schema ids and
/// schemas, so once warm it keeps working while the registry is down.
#[derive(Debug)]
pub struct Codec {
    registry: RegistryClient,
    options: CodecOptions,
    readers: RwLock<HashMap<TypeId, Arc<ReaderSchema>>>,
    writers: RwLock<HashMap<u32, Arc<WriterSchema>>>,
    /// By type, then by topic (looked up with the borrowed topic: no allocation per encode).
    targets: RwLock<HashMap<TypeId, HashMap<String, Arc<WriteTarget>>>>,
}

impl Codec {
    /// A codec talking to the registry described by `config`.
    ///
    /// # Errors
    /// [`Error::Config`] when the registry configuration is unusable.
    pub fn new(config: &RegistryConfig, options: CodecOptions) -> Result<Self> {
        Ok(Self::with_client(RegistryClient::new(config)?, options))
    }

    /// A codec configured from `schema.registry.url`, `basic.auth.*`/`bearer.auth.*`,
    /// `auto.register.schemas`, `use.latest.version` and `value.subject.name.strategy`.
    ///
    /// # Errors
    /// [`Error::Config`] naming the missing or bad key.
    pub fn from_config(config: &crate::Config) -> Result<Self> {
        Self::new(&config.registry_config()?, config.codec_options()?)
    }

    /// A codec over an existing registry client.
    pub fn with_client(registry: RegistryClient, options: CodecOptions) -> Self {
        // `uuid` logical types are strings on the wire: serde must see human-readable UUIDs.
        apache_avro::util::set_serde_human_readable(true);
        let bound = apache_avro::util::max_allocation_bytes(options.max_allocation_bytes);
        if bound != options.max_allocation_bytes {
            tracing::warn!(
                requested = options.max_allocation_bytes,
                in_effect = bound,
                "apache-avro's allocation bound is process-wide and was already set; keeping it"
            );
        }
        Self {
            registry,
            options,
            readers: RwLock::default(),
            writers: RwLock::default(),
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
        let target = self.write_target::<E>(topic).await?;
        let reader = self.reader::<E>()?;
        let encode_err = |reason: String| Error::Encode {
            reader: E::FULL_NAME.into(),
            subject: self.subject::<E>(topic),
            reason,
        };
        match &*target {
            WriteTarget::Own(id) => {
                let mut buf = Vec::with_capacity(128);
                wire::write_header(&mut buf, *id);
                let mut config = serde_avro_fast::ser::SerializerConfig::new(&reader.fast);
                serde_avro_fast::to_datum(event, buf, &mut config)
                    .map_err(|e| encode_err(e.to_string()))
            }
            WriteTarget::Latest(id, latest) => {
                let value = apache_avro::to_value(event)
                    .and_then(|v| v.resolve(&reader.avro))
                    .and_then(|v| v.resolve(latest))
                    .map_err(|e| encode_err(e.to_string()))?;
                let mut buf = Vec::with_capacity(128);
                wire::write_header(&mut buf, *id);
                GenericDatumWriter::builder(latest)
                    .build()
                    .and_then(|writer| writer.write_value(&mut buf, value))
                    .map_err(|e| encode_err(e.to_string()))?;
                Ok(buf)
            }
        }
    }

    /// Decodes a Confluent-framed payload into `E`, resolving the writer's schema version into
    /// `E`'s.
    ///
    /// # Errors
    /// [`Error::EmptyPayload`], [`Error::BadMagicByte`], [`Error::TruncatedHeader`] for bytes
    /// that are not Confluent-framed; [`Error::UnknownSchemaId`] for an id the registry does not
    /// know; [`Error::Decode`] for a body that does not decode or resolve; registry errors when
    /// the writer schema is not cached and cannot be fetched.
    pub async fn decode<E: Event>(&self, payload: &[u8]) -> Result<E> {
        let (schema_id, body) = wire::split(payload)?;
        let writer = self.writer(schema_id).await?;
        let reader = self.reader::<E>()?;
        let decode_err = |reason: String| Error::Decode {
            schema_id,
            reader: E::FULL_NAME.into(),
            location: None,
            reason,
        };
        if writer.canonical == reader.canonical {
            return serde_avro_fast::from_datum_slice::<E>(body, &reader.fast)
                .map_err(|e| decode_err(e.to_string()));
        }
        let mut cursor = body;
        let value = GenericDatumReader::builder(&writer.avro)
            .reader_schema(&reader.avro)
            .build()
            .and_then(|datum_reader| datum_reader.read_value(&mut cursor))
            .map_err(|e| decode_err(e.to_string()))?;
        from_resolved_value::<E>(&value).map_err(decode_err)
    }

    /// The compiled schema of `E`.
    fn reader<E: Event>(&self) -> Result<Arc<ReaderSchema>> {
        let key = TypeId::of::<E>();
        if let Some(found) = read_lock(&self.readers).get(&key) {
            return Ok(found.clone());
        }
        let invalid = |reason: String| Error::InvalidSchema {
            origin: format!("type {}", E::FULL_NAME),
            reason,
        };
        let avro = Schema::parse_str(E::SCHEMA).map_err(|e| invalid(e.to_string()))?;
        let fast = E::SCHEMA
            .parse::<serde_avro_fast::Schema>()
            .map_err(|e| invalid(e.to_string()))?;
        let canonical = avro.canonical_form();
        let compiled = Arc::new(ReaderSchema {
            avro,
            fast,
            canonical,
        });
        write_lock(&self.readers).insert(key, compiled.clone());
        Ok(compiled)
    }

    /// The writer schema with global id `id`, from the cache or the registry.
    async fn writer(&self, id: u32) -> Result<Arc<WriterSchema>> {
        if let Some(found) = read_lock(&self.writers).get(&id) {
            return Ok(found.clone());
        }
        let fetched = self.registry.schema_by_id(id).await?;
        let invalid = |reason: String| Error::InvalidSchema {
            origin: format!("schema id {id} from {}", self.registry.url()),
            reason,
        };
        let avro = Schema::parse_str(&fetched.schema).map_err(|e| invalid(e.to_string()))?;
        check_array_items(&avro).map_err(invalid)?;
        debug!(schema_id = id, "fetched writer schema");
        let canonical = avro.canonical_form();
        let writer = Arc::new(WriterSchema { avro, canonical });
        write_lock(&self.writers).insert(id, writer.clone());
        Ok(writer)
    }

    /// The schema id (and schema) encoding `E` for `topic` writes with.
    #[instrument(level = "debug", skip(self), fields(event = E::FULL_NAME))]
    async fn write_target<E: Event>(&self, topic: &str) -> Result<Arc<WriteTarget>> {
        let key = TypeId::of::<E>();
        if let Some(found) = read_lock(&self.targets)
            .get(&key)
            .and_then(|by_topic| by_topic.get(topic))
        {
            return Ok(found.clone());
        }
        let subject = self.subject::<E>(topic);
        let reader = self.reader::<E>()?;
        let target = if self.options.use_latest_version {
            let latest = self.registry.latest(&subject).await?;
            let schema = Schema::parse_str(&latest.schema).map_err(|e| Error::InvalidSchema {
                origin: format!("latest version of subject '{subject}'"),
                reason: e.to_string(),
            })?;
            if schema.canonical_form() == reader.canonical {
                WriteTarget::Own(latest.id)
            } else {
                let readable = apache_avro::schema_compatibility::SchemaCompatibility::can_read(
                    &reader.avro,
                    &schema,
                );
                if !matches!(
                    readable,
                    Ok(apache_avro::schema_compatibility::Compatibility::Full)
                ) {
                    return Err(Error::IncompatibleSchema {
                        subject,
                        messages: vec![format!(
                            "the latest version (id {}) cannot read {}: {readable:?}",
                            latest.id,
                            E::FULL_NAME
                        )],
                    });
                }
                WriteTarget::Latest(latest.id, Arc::new(schema))
            }
        } else if self.options.auto_register {
            WriteTarget::Own(self.registry.register(&subject, E::SCHEMA).await?)
        } else {
            WriteTarget::Own(self.registry.lookup(&subject, E::SCHEMA).await?)
        };
        debug!(%subject, ?target, "resolved write schema");
        let target = Arc::new(target);
        write_lock(&self.targets)
            .entry(key)
            .or_default()
            .insert(topic.to_owned(), target.clone());
        Ok(target)
    }
}

/// Refuses a writer schema with an array whose items encode to zero bytes: a record of a few
/// bytes could then claim any number of items.
fn check_array_items(schema: &Schema) -> std::result::Result<(), String> {
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

/// Turns a value resolved into the reader schema into the Rust type.
fn from_resolved_value<E: Event>(value: &Value) -> std::result::Result<E, String> {
    apache_avro::from_value::<E>(value).map_err(|e| e.to_string())
}

fn read_lock<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write_lock<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
