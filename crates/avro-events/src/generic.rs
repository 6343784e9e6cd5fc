//! Generic records ([`GenericRecord`], documented there) and their schemas.

use std::sync::Arc;

use apache_avro::{Schema, types::Value};
use futures::FutureExt as _;

use crate::{
    Codec, Dispatch, Error, Event, Result,
    codec::{Part, ReaderSchema, WriterSchema, check_array_items, resolve_body},
    wire,
};

/// A registered Avro schema and its global id, to read and build [`GenericRecord`]s with
/// ([`Codec::generic_schema`], [`Codec::generic_schema_of`]). Cheap to clone.
#[derive(Debug, Clone)]
pub struct GenericSchema {
    id: u32,
    schema: Arc<WriterSchema>,
}

impl GenericSchema {
    /// The schema `text`, registered under global id `id` (known some other way than from
    /// the codec).
    ///
    /// # Errors
    /// [`Error::InvalidSchema`] when `text` is not an Avro schema the codec can use.
    pub fn parse(id: u32, text: &str) -> Result<Self> {
        let origin = format!("schema id {id}");
        let parsed = ReaderSchema::parse(text, &origin)?;
        check_array_items(&parsed.avro)
            .map_err(|reason| Error::InvalidSchema { origin, reason })?;
        Ok(Self {
            id,
            schema: Arc::new(WriterSchema {
                avro: parsed.avro,
                canonical: parsed.canonical,
                contract: None,
            }),
        })
    }

    /// The schema's global id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The schema.
    pub fn schema(&self) -> &Schema {
        &self.schema.avro
    }

    /// The schema's Parsing Canonical Form.
    pub fn canonical_form(&self) -> &str {
        &self.schema.canonical
    }

    /// A record of this schema from `json`, in Avro's JSON encoding (see
    /// [`GenericRecord`]); missing fields take their defaults.
    ///
    /// # Errors
    /// [`Error::Encode`] naming the path of the first value that does not fit the schema.
    pub fn record_from_json(&self, json: &serde_json::Value) -> Result<GenericRecord> {
        let value = crate::json::from_json(json, self.schema())
            .map_err(|reason| self.encode_error(reason))?;
        Ok(GenericRecord {
            schema: self.clone(),
            value,
            key: String::new(),
        })
    }

    /// A record of this schema with `value`, checked against the schema.
    ///
    /// # Errors
    /// [`Error::Encode`] when `value` does not fit the schema.
    pub fn record(&self, value: Value) -> Result<GenericRecord> {
        if !value.validate(self.schema()) {
            return Err(self.encode_error("the value does not fit the schema".into()));
        }
        Ok(GenericRecord {
            schema: self.clone(),
            value,
            key: String::new(),
        })
    }

    fn name(&self) -> String {
        self.schema()
            .name()
            .map_or_else(|| format!("schema id {}", self.id), |n| n.fullname(None))
    }

    fn encode_error(&self, reason: String) -> Error {
        Error::Encode {
            reader: self.name(),
            subject: format!("schema id {}", self.id),
            reason,
        }
    }
}

/// Generic records: values of whatever schema the writer used, with no Rust type for it, as
/// Confluent's `GenericRecord` (Java) or a deserialized `dict` (Python).
///
/// A [`GenericRecord`] is apache-avro's [`Value`] (records, unions, enums, arrays, maps,
/// fixed, and logical types as apache-avro's logical values: `Value::Date`,
/// `Value::TimestampMillis`, `Value::Decimal`, `Value::Uuid`, …) with the registered schema it
/// was written with ([`GenericSchema`]). It implements [`Event`], so a
/// [`Consumer`](crate::Consumer), [`Pipeline`](crate::Pipeline) input or
/// [`Producer`](crate::Producer) takes it like any event: decoding reads the record with its
/// writer schema (no resolution into another schema), encoding writes the value with the
/// schema id it carries. It has no default topic ([`Event::TOPIC`] is empty): subscribe with
/// [`Client::consumer_subscribed_to`](crate::Client::consumer_subscribed_to) and produce with
/// [`Producer::send_to`](crate::Producer::send_to).
///
/// [`GenericRecord::to_json`] and [`GenericSchema::record_from_json`] convert to and from
/// Avro's JSON encoding (what `kafka-avro-console-consumer` prints and
/// `kafka-avro-console-producer` reads: unions as `{"branch": value}`, bytes as strings of
/// code points U+0000–U+00FF).
///
/// ```
/// use avro_events::{GenericSchema, registry::{RegistryConfig}};
///
/// let schema = GenericSchema::parse(7, r#"{"type": "record", "name": "Reading", "fields": [
///     {"name": "sensor", "type": "string"}, {"name": "celsius", "type": ["null", "double"]}]}"#)?;
/// let record = schema.record_from_json(&serde_json::json!(
///     {"sensor": "fridge-1", "celsius": {"double": 3.5}}))?;
/// assert_eq!(record.schema_id(), 7);
/// assert_eq!(record.to_json()?["celsius"], serde_json::json!({"double": 3.5}));
/// # Ok::<(), avro_events::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct GenericRecord {
    schema: GenericSchema,
    value: Value,
    key: String,
}

impl PartialEq for GenericRecord {
    fn eq(&self, other: &Self) -> bool {
        self.schema.id == other.schema.id && self.value == other.value && self.key == other.key
    }
}

impl GenericRecord {
    /// The writer schema's global id.
    pub fn schema_id(&self) -> u32 {
        self.schema.id
    }

    /// The writer schema.
    pub fn schema(&self) -> &GenericSchema {
        &self.schema
    }

    /// The value.
    pub fn value(&self) -> &Value {
        &self.value
    }

    /// The value, taken.
    pub fn into_value(self) -> Value {
        self.value
    }

    /// The Kafka key it is produced with ([`Event::key`]); empty unless set.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Sets the Kafka key it is produced with.
    pub fn with_key(mut self, key: impl Into<String>) -> Self {
        self.key = key.into();
        self
    }

    /// The value in Avro's JSON encoding.
    ///
    /// # Errors
    /// [`Error::Encode`] for a float JSON cannot hold (NaN, infinities).
    pub fn to_json(&self) -> Result<serde_json::Value> {
        crate::json::to_json(&self.value, self.schema.schema())
            .map_err(|reason| self.schema.encode_error(reason))
    }
}

/// Serializes the value in Avro's JSON encoding ([`GenericRecord::to_json`]).
impl serde::Serialize for GenericRecord {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        self.to_json()
            .map_err(serde::ser::Error::custom)?
            .serialize(serializer)
    }
}

/// Refused: a generic record needs its schema, so it is only decoded by the codec
/// ([`Codec::decode_generic`]) or built from a [`GenericSchema`]. (`Event` asks for
/// `Deserialize`; the codec never uses it for a generic record.)
impl<'de> serde::Deserialize<'de> for GenericRecord {
    fn deserialize<D: serde::Deserializer<'de>>(_: D) -> std::result::Result<Self, D::Error> {
        Err(serde::de::Error::custom(
            "a GenericRecord is decoded by the codec with its writer schema, or built from a \
             GenericSchema; it has no schema-less serde form",
        ))
    }
}

impl Event for GenericRecord {
    const TOPIC: &'static str = "";
    /// Unused: the codec reads and writes a generic record through [`Event::DISPATCH`].
    const SCHEMA: &'static str = "\"null\"";
    const FULL_NAME: &'static str = "avro_events.GenericRecord";
    const DISPATCH: Option<Dispatch<Self>> = Some(Dispatch {
        decode: |codec, payload| codec.codec().decode_generic(payload).boxed(),
        encode: |codec, _topic, record| async move { codec.codec().encode_generic(record) }.boxed(),
    });

    fn key(&self) -> String {
        self.key.clone()
    }
}

impl Codec {
    /// The registered schema with global id `id` (fetched once, then cached).
    ///
    /// # Errors
    /// [`Error::UnknownSchemaId`], [`Error::UnusableSchema`], registry errors.
    pub async fn generic_schema(&self, id: u32) -> Result<GenericSchema> {
        Ok(GenericSchema {
            id,
            schema: self.writer(id).await?,
        })
    }

    /// Version `version` of `subject` (the latest when `None`), to produce
    /// [`GenericRecord`]s under it.
    ///
    /// # Errors
    /// [`Error::SubjectNotFound`], [`Error::VersionNotFound`], and as
    /// [`Codec::generic_schema`].
    pub async fn generic_schema_of(
        &self,
        subject: &str,
        version: Option<u32>,
    ) -> Result<GenericSchema> {
        let id = match version {
            Some(version) => self.registry().version(subject, version).await?.id,
            None => self.registry().latest_version(subject).await?.id,
        };
        self.generic_schema(id).await
    }

    /// Decodes a Confluent-framed payload with its writer schema into a [`GenericRecord`]
    /// (what [`Codec::decode`] does for `GenericRecord`). The body is checked by the same
    /// resolution plan as any decode (bounded by
    /// [`CodecOptions::max_allocation_bytes`](crate::CodecOptions::max_allocation_bytes)).
    ///
    /// # Errors
    /// As [`Codec::decode`].
    pub async fn decode_generic(&self, payload: &[u8]) -> Result<GenericRecord> {
        let (schema_id, body) = wire::split(payload)?;
        let schema = self.generic_schema(schema_id).await?;
        let writer = &schema.schema;
        let decode_err = |reason: String| Error::Decode {
            schema_id,
            reader: GenericRecord::FULL_NAME.into(),
            location: None,
            reason,
        };
        let checked = resolve_body(
            body,
            || {
                self.cached_plan::<GenericRecord>(
                    crate::wire::SchemaId::Id(schema_id),
                    Part::Value,
                    &writer.avro,
                    &writer.avro,
                )
            },
            self.options().max_allocation_bytes,
        )
        .map_err(decode_err)?;
        let value = crate::value::read_logical(&checked, &writer.avro).map_err(decode_err)?;
        Ok(GenericRecord {
            schema,
            value,
            key: String::new(),
        })
    }

    /// The Confluent-framed payload of `record`: its value written with the schema id it
    /// carries (nothing is registered).
    ///
    /// # Errors
    /// [`Error::Encode`] when the value does not fit its schema.
    pub fn encode_generic(&self, record: &GenericRecord) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(64);
        wire::write_header(&mut out, record.schema_id());
        apache_avro::writer::datum::GenericDatumWriter::builder(record.schema.schema())
            .build()
            .and_then(|writer| writer.write_value_ref(&mut out, &record.value))
            .map_err(|e| record.schema.encode_error(e.to_string()))?;
        Ok(out)
    }
}
