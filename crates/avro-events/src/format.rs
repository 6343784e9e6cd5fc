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
//! implementation (JSON Schema, Protobuf) without a change to either. A [`Pipeline`](crate::Pipeline)
//! decodes its inputs and encodes its outputs ([`Outputs<F>`](crate::Outputs)) through one
//! too ([`Client::pipeline_with_format`](crate::Client::pipeline_with_format)), and a
//! [`Replay`](crate::Replay) decodes through one
//! ([`Client::replay_with_format`](crate::Client::replay_with_format)).
//!
//! An encode that needs nothing the format has not cached should complete at its first poll
//! and have no effect outside the format's caches: a pipeline polls it once in place and, when
//! it would wait (a registry round trip), drops it and makes it again as a boxed future.
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

use crate::{Codec, Error, Event, Result, codec::Framed, registry::SchemaType};

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

    /// The record value of `event` on `topic` and, when this format puts the schema id in a
    /// header (Confluent's `value.schema.id.serializer`), that header. The default: the
    /// value of [`Format::encode_for`], no header.
    ///
    /// # Errors
    /// As [`Format::encode_for`].
    fn encode_record<E: Event>(
        &self,
        topic: &str,
        event: &E,
    ) -> impl Future<Output = Result<Framed>> + Send {
        async move { self.encode_for(topic, event).await.map(Framed::prefixed) }
    }

    /// The record key of `event` on `topic` and its schema id header, if any (see
    /// [`Format::encode_record`]). The default: [`Format::encode_event_key`], no header.
    ///
    /// # Errors
    /// As [`Format::encode_event_key`].
    fn encode_record_key<E: Event>(
        &self,
        topic: &str,
        event: &E,
    ) -> impl Future<Output = Result<Framed>> + Send {
        async move {
            self.encode_event_key(topic, event)
                .await
                .map(Framed::prefixed)
        }
    }

    /// Decodes a record key of an `E` into `K`, its schema id possibly in the record's
    /// `__key_schema_id` header (`schema_id_header`), as [`Format::decode_record`] does values.
    ///
    /// # Errors
    /// As [`Format::decode`].
    fn decode_record_key<E: Event, K: DeserializeOwned + Send>(
        &self,
        key: &[u8],
        schema_id_header: Option<&[u8]>,
    ) -> impl Future<Output = Result<K>> + Send {
        async move {
            match schema_id_header {
                None => self.decode_key::<E, K>(key).await,
                Some(_) => Err(Error::BadSchemaIdHeader {
                    reason: format!(
                        "the {} format does not read schema ids from headers",
                        self.schema_type()
                    ),
                }),
            }
        }
    }

    /// Decodes a record value whose schema id may be in a header: `schema_id_header` is the
    /// value of the record's `__value_schema_id` header, when it has one. The default decodes
    /// with [`Format::decode`] when there is none and refuses the record
    /// ([`Error::BadSchemaIdHeader`], so it is dead-lettered) when there is one.
    ///
    /// # Errors
    /// As [`Format::decode`].
    fn decode_record<E: Event>(
        &self,
        payload: &[u8],
        schema_id_header: Option<&[u8]>,
    ) -> impl Future<Output = Result<E>> + Send {
        async move {
            match schema_id_header {
                None => self.decode(payload).await,
                Some(_) => Err(Error::BadSchemaIdHeader {
                    reason: format!(
                        "the {} format does not read schema ids from headers",
                        self.schema_type()
                    ),
                }),
            }
        }
    }
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

    fn encode_record<E: Event>(
        &self,
        topic: &str,
        event: &E,
    ) -> impl Future<Output = Result<Framed>> + Send {
        Codec::encode_record(self, topic, event)
    }

    fn encode_record_key<E: Event>(
        &self,
        topic: &str,
        event: &E,
    ) -> impl Future<Output = Result<Framed>> + Send {
        Codec::encode_record_key(self, topic, event)
    }

    fn decode_record<E: Event>(
        &self,
        payload: &[u8],
        schema_id_header: Option<&[u8]>,
    ) -> impl Future<Output = Result<E>> + Send {
        Codec::decode_record::<E>(self, payload, schema_id_header)
    }

    fn decode_record_key<E: Event, K: DeserializeOwned + Send>(
        &self,
        key: &[u8],
        schema_id_header: Option<&[u8]>,
    ) -> impl Future<Output = Result<K>> + Send {
        Codec::decode_record_key::<E, K>(self, key, schema_id_header)
    }
}
