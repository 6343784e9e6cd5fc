//! The typed boundary between domain types and the wire: [`Event`] ties a Rust type to its
//! topic, its Schema Registry subject and the Avro schema it was generated from.

use futures::future::BoxFuture;
use serde::{Serialize, de::DeserializeOwned};

/// A type that travels on a Kafka topic, Avro-encoded in Confluent's wire format.
///
/// Types generated from `.avsc` files implement it; implement it for your own serde types
/// (for example a newer or older version of a schema) to use them with the
/// [`Codec`](crate::Codec), producers and consumers.
pub trait Event: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The topic the event is produced to by default.
    const TOPIC: &'static str;
    /// The Avro schema, as JSON text. For the generated types this is the very `.avsc` file.
    /// It may use named types that [`Event::REFERENCES`] define, by name, as a schema
    /// registered with references does.
    const SCHEMA: &'static str;
    /// The record's full name (`namespace.name`), used by the record-name subject strategies.
    const FULL_NAME: &'static str;

    /// The Avro schema of the record key, as JSON text, when keys are Avro-encoded in
    /// Confluent's wire format (as Confluent's `KafkaAvroSerializer` writes keys). `None`, the
    /// default, keeps keys plain UTF-8 strings ([`Event::key`]).
    ///
    /// With a key schema the key is registered under the subject `<topic>-key`, and
    /// [`Event::serialize_key`] says what is encoded with it.
    const KEY_SCHEMA: Option<&'static str> = None;

    /// The type's generated Avro binary codec ([`AvroDatum`](crate::binary::AvroDatum)), which
    /// the [`Codec`](crate::Codec) then uses to encode and decode values, with no serde.
    /// `avro-events-build` sets it for the types it generates
    /// (`Some(DatumCodec::of())`); `None`, the default, goes through serde and apache-avro, for
    /// hand-written types (see [`Codec`](crate::Codec)).
    const AVRO_DATUM: Option<crate::binary::DatumCodec<Self>> = None;

    /// The schemas registered under other subjects whose named types [`Event::SCHEMA`] uses
    /// (Confluent's schema references); none by default. The codec reads `SCHEMA` with their
    /// types written out, registers them (their own references first) before `SCHEMA` when it
    /// registers, and registers or looks up `SCHEMA` with these references.
    ///
    /// ```
    /// # use serde::{Serialize, Deserialize};
    /// use avro_events::EventReference;
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct Product { sku: String }
    /// #[derive(Serialize, Deserialize)]
    /// struct Shelved { product: Product, shelf: i32 }
    ///
    /// impl avro_events::Event for Shelved {
    ///     const TOPIC: &'static str = "shelved";
    ///     const SCHEMA: &'static str = r#"{"type": "record", "name": "Shelved",
    ///         "namespace": "shop", "fields": [{"name": "product", "type": "Product"},
    ///         {"name": "shelf", "type": "int"}]}"#;
    ///     const FULL_NAME: &'static str = "shop.Shelved";
    ///     const REFERENCES: &'static [EventReference] = &[EventReference {
    ///         name: "shop.Product",
    ///         subject: "shop.Product",
    ///         version: 1,
    ///         schema: r#"{"type": "record", "name": "Product", "namespace": "shop",
    ///             "fields": [{"name": "sku", "type": "string"}]}"#,
    ///         references: &[],
    ///     }];
    ///     fn key(&self) -> String { self.product.sku.clone() }
    /// }
    /// ```
    const REFERENCES: &'static [EventReference] = &[];

    /// The schemas registered under other subjects whose named types [`Event::KEY_SCHEMA`]
    /// uses, as [`Event::REFERENCES`] are for [`Event::SCHEMA`]; none by default. The codec
    /// reads the key schema with their types written out, registers them before it, and
    /// registers or looks up the key schema with these references.
    const KEY_REFERENCES: &'static [EventReference] = &[];

    /// How the [`Codec`](crate::Codec) decodes and encodes the type when it is not one record
    /// schema: a family of event types on one topic (generated from `[families.<Name>]` in
    /// `events.toml`) or [`GenericRecord`](crate::GenericRecord). `None`, the default, for
    /// every type with a schema of its own. See [`Written`](crate::Written).
    const DISPATCH: Option<Dispatch<Self>> = None;

    /// The Kafka record key of this event. With a [`Event::KEY_SCHEMA`] it is also what the
    /// default [`Event::serialize_key`] encodes (as an Avro `string`).
    fn key(&self) -> String;

    /// Serializes the key that is Avro-encoded with [`Event::KEY_SCHEMA`]; unused without one.
    /// The default serializes [`Event::key`] as a string, for a key schema `"string"`;
    /// override it for a record key, e.g. by serializing a key struct:
    ///
    /// ```
    /// # use serde::{Serialize, Deserialize};
    /// #[derive(Serialize, Deserialize)]
    /// struct ReadingKey { site: String, sensor: i32 }
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct Reading { site: String, sensor: i32, celsius: f64 }
    ///
    /// impl avro_events::Event for Reading {
    ///     const TOPIC: &'static str = "readings";
    ///     const SCHEMA: &'static str = r#"{"type": "record", "name": "Reading", "fields": [
    ///         {"name": "site", "type": "string"}, {"name": "sensor", "type": "int"},
    ///         {"name": "celsius", "type": "double"}]}"#;
    ///     const FULL_NAME: &'static str = "Reading";
    ///     const KEY_SCHEMA: Option<&'static str> = Some(r#"{"type": "record", "name": "ReadingKey",
    ///         "fields": [{"name": "site", "type": "string"}, {"name": "sensor", "type": "int"}]}"#);
    ///     fn key(&self) -> String {
    ///         format!("{}/{}", self.site, self.sensor)
    ///     }
    ///     fn serialize_key<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
    ///         ReadingKey { site: self.site.clone(), sensor: self.sensor }.serialize(serializer)
    ///     }
    /// }
    /// ```
    ///
    /// # Errors
    /// Whatever `serializer` reports.
    fn serialize_key<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.key())
    }
}

/// A schema that an [`Event`]'s schema refers to: a named type registered under its own
/// subject ([`Event::REFERENCES`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventReference {
    /// The full name of the type it defines (`namespace.name`), as the referring schema names it.
    pub name: &'static str,
    /// The subject it is registered under (Confluent's Maven plugin and
    /// `RecordNameStrategy` use the full name).
    pub subject: &'static str,
    /// Its version in that subject: registering it must give this version.
    pub version: u32,
    /// Its schema text.
    pub schema: &'static str,
    /// The schemas it refers to in turn.
    pub references: &'static [EventReference],
}

impl EventReference {
    /// This reference as the registry takes it.
    pub fn to_registry(&self) -> crate::registry::SchemaReference {
        crate::registry::SchemaReference::new(self.name, self.subject, self.version)
    }

    /// Every schema text of `references`, recursively (each name once), for parsing a schema
    /// that uses their types.
    pub(crate) fn texts(references: &[Self]) -> Vec<&'static str> {
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        let mut stack: Vec<&Self> = references.iter().collect();
        while let Some(r) = stack.pop() {
            if seen.insert(r.name) {
                out.push(r.schema);
                stack.extend(r.references.iter());
            }
        }
        out
    }
}

/// The codec a [`Dispatch`] decodes and encodes with ([`CodecRef::codec`]; the family
/// helpers [`CodecRef::written`] and [`CodecRef::encode_member`]). Made by the codec alone.
#[derive(Clone, Copy)]
pub struct CodecRef<'a> {
    pub(crate) any: &'a (dyn std::any::Any + Send + Sync),
}

impl<'a> CodecRef<'a> {
    /// Made by the codec, with itself (the `Any` keeps the trait free of the codec's type).
    pub(crate) fn new(any: &'a (dyn std::any::Any + Send + Sync)) -> Self {
        Self { any }
    }
}

impl std::fmt::Debug for CodecRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CodecRef")
    }
}

/// Decodes a payload of an `E` with the codec ([`Dispatch::decode`]).
pub type DecodeFn<E> = for<'a> fn(CodecRef<'a>, &'a [u8]) -> BoxFuture<'a, crate::Result<E>>;

/// Encodes an `E` for a topic with the codec ([`Dispatch::encode`]).
pub type EncodeFn<E> =
    for<'a> fn(CodecRef<'a>, &'a str, &'a E) -> BoxFuture<'a, crate::Result<Vec<u8>>>;

/// How the [`Codec`](crate::Codec) decodes and encodes a type that is not one record schema
/// ([`Event::DISPATCH`]).
pub struct Dispatch<E: 'static> {
    /// Decodes a record value (the whole payload, Confluent-framed).
    pub decode: DecodeFn<E>,
    /// Encodes a value for a topic (the whole payload, Confluent-framed).
    pub encode: EncodeFn<E>,
}

impl<E> Clone for Dispatch<E> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<E> Copy for Dispatch<E> {}

impl<E> std::fmt::Debug for Dispatch<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatch").finish_non_exhaustive()
    }
}

/// The key of `E`, serializable (see [`Event::serialize_key`]).
pub(crate) struct KeyOf<'e, E>(pub(crate) &'e E);

impl<E: Event> Serialize for KeyOf<'_, E> {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        self.0.serialize_key(serializer)
    }
}

/// Includes the code `avro-events-build` generated into `OUT_DIR`: the types and their [`Event`]
/// impls. With no argument, the default file (`avro_events.rs`); with one, the file name given to
/// `avro_events_build::Builder::file_name`. Use it inside a module of its own:
///
/// ```text
/// /// Types generated from `schemas/*.avsc`.
/// #[allow(missing_docs)]
/// pub mod schemas {
///     avro_events::include_events!();
/// }
/// ```
#[macro_export]
macro_rules! include_events {
    () => {
        include!(concat!(env!("OUT_DIR"), "/avro_events.rs"));
    };
    ($file:literal) => {
        include!(concat!(env!("OUT_DIR"), "/", $file));
    };
}

/// How the Schema Registry subject of an event is named, as in Confluent's serializers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SubjectNameStrategy {
    /// `<topic>-value` (Confluent's default).
    #[default]
    TopicName,
    /// `<record full name>`.
    RecordName,
    /// `<topic>-<record full name>`.
    TopicRecordName,
}

impl SubjectNameStrategy {
    /// The value subject of a record named `full_name` on `topic`.
    pub fn subject(self, topic: &str, full_name: &str) -> String {
        match self {
            Self::TopicName => format!("{topic}-value"),
            Self::RecordName => full_name.to_owned(),
            Self::TopicRecordName => format!("{topic}-{full_name}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_strategies_follow_confluent_naming() {
        let t = "grocery.orders.v1";
        let n = "io.groceryevents.Order";
        assert_eq!(
            SubjectNameStrategy::TopicName.subject(t, n),
            "grocery.orders.v1-value"
        );
        assert_eq!(SubjectNameStrategy::RecordName.subject(t, n), n);
        assert_eq!(
            SubjectNameStrategy::TopicRecordName.subject(t, n),
            "grocery.orders.v1-io.groceryevents.Order"
        );
    }
}
