//! The seam between the typed clients and a serialization format.
//!
//! A [`Format`] is the schema type the registry knows a format by ([`SchemaType`], sent as
//! `schemaType` when a schema is registered or looked up), how a schema text is parsed, and
//! how an [`Event`] becomes the bytes of a record and back. Avro is the library's format:
//! [`Codec`] implements [`Format`] (Confluent's wire format, schemas from the registry,
//! resolution of writer into reader schemas). [`Producer`](crate::Producer) and
//! [`Consumer`](crate::Consumer) encode and decode only through this trait, with the codec as
//! their default; [`Client::producer_with_format`](crate::Client::producer_with_format) and
//! [`Client::consumer_with_format`](crate::Client::consumer_with_format) give them another
//! implementation (JSON Schema, Protobuf) without a change to either. Pipelines and replays use
//! the client's Avro codec.
//!
//! ```
//! use avro_events::{Codec, Format, registry::{RegistryConfig, SchemaType}};
//!
//! let codec = Codec::new(&RegistryConfig::new("http://127.0.0.1:8081"), Default::default())?;
//! assert_eq!(codec.schema_type(), SchemaType::Avro);
//! codec.parse_schema(r#"{"type": "record", "name": "R", "fields": []}"#)?;
//! assert!(codec.parse_schema(r#"{"type": "recrod"}"#).is_err());
//! # Ok::<(), avro_events::Error>(())
//! ```

use std::future::Future;

use serde::{Serialize, de::DeserializeOwned};

use crate::{Codec, Error, Event, Result, registry::SchemaType};

/// A serialization format: what the typed clients encode events with and decode them from.
pub trait Format: Send + Sync + std::fmt::Debug + 'static {
    /// The registry's name for this format's schemas (`schemaType`).
    fn schema_type(&self) -> SchemaType;

    /// Checks that `schema` is a schema of this format.
    ///
    /// # Errors
    /// [`Error::InvalidSchema`] saying why it is not.
    fn parse_schema(&self, schema: &str) -> Result<()>;

    /// The record value of `event` on `topic` (the topic decides the subject).
    ///
    /// # Errors
    /// [`Error::Encode`] when the value does not fit its schema; registry errors.
    fn encode_for<E: Event>(
        &self,
        topic: &str,
        event: &E,
    ) -> impl Future<Output = Result<Vec<u8>>> + Send;

    /// The record key of `event` on `topic`.
    ///
    /// # Errors
    /// As [`Format::encode_for`], for the key.
    fn encode_event_key<E: Event>(
        &self,
        topic: &str,
        event: &E,
    ) -> impl Future<Output = Result<Vec<u8>>> + Send;

    /// The record key `key` of an `E` on `topic` (a tombstone's).
    ///
    /// # Errors
    /// As [`Format::encode_for`], for the key.
    fn encode_key<E: Event>(
        &self,
        topic: &str,
        key: &(impl Serialize + Sync + ?Sized),
    ) -> impl Future<Output = Result<Vec<u8>>> + Send;

    /// Decodes a record value into an `E`.
    ///
    /// # Errors
    /// [`Error::Decode`] for bytes that do not decode; the schema errors
    /// ([`Error::UnknownSchemaId`], [`Error::UnusableSchema`]) and registry errors.
    fn decode<E: Event>(&self, payload: &[u8]) -> impl Future<Output = Result<E>> + Send;

    /// Decodes a record key of an `E` into `K`.
    ///
    /// # Errors
    /// As [`Format::decode`].
    fn decode_key<E: Event, K: DeserializeOwned + Send>(
        &self,
        key: &[u8],
    ) -> impl Future<Output = Result<K>> + Send;
}

/// Avro: Confluent's wire format, through the [`Codec`]'s public methods.
impl Format for Codec {
    fn schema_type(&self) -> SchemaType {
        SchemaType::Avro
    }

    fn parse_schema(&self, schema: &str) -> Result<()> {
        apache_avro::Schema::parse_str(schema)
            .map(drop)
            .map_err(|e| Error::InvalidSchema {
                origin: "an Avro schema".into(),
                reason: e.to_string(),
            })
    }

    fn encode_for<E: Event>(
        &self,
        topic: &str,
        event: &E,
    ) -> impl Future<Output = Result<Vec<u8>>> + Send {
        Codec::encode_for(self, topic, event)
    }

    fn encode_event_key<E: Event>(
        &self,
        topic: &str,
        event: &E,
    ) -> impl Future<Output = Result<Vec<u8>>> + Send {
        Codec::encode_event_key(self, topic, event)
    }

    fn encode_key<E: Event>(
        &self,
        topic: &str,
        key: &(impl Serialize + Sync + ?Sized),
    ) -> impl Future<Output = Result<Vec<u8>>> + Send {
        Codec::encode_key::<E>(self, topic, key)
    }

    fn decode<E: Event>(&self, payload: &[u8]) -> impl Future<Output = Result<E>> + Send {
        Codec::decode::<E>(self, payload)
    }

    fn decode_key<E: Event, K: DeserializeOwned + Send>(
        &self,
        key: &[u8],
    ) -> impl Future<Output = Result<K>> + Send {
        Codec::decode_key::<E, K>(self, key)
    }
}
