//! Families of event types on one topic and generic records: [`Written`] and the codec
//! helpers the generated code calls (documented on [`Written`], the public face of this module).

use std::sync::Arc;

use apache_avro::Schema;

use crate::{
    Codec, CodecRef, Error, Event, Result, SubjectNameStrategy,
    codec::{Part, WriterSchema, decode_body},
    wire::{self, SchemaId, SchemaIdPlacement},
};

/// A record value whose writer schema has been fetched, to be decoded into one of several
/// types ([`Codec::written`]).
///
/// Types that are not one record schema: a family of event types on one topic (an enum of
/// generated types, chosen by the writer schema's record name) and
/// [`GenericRecord`](crate::GenericRecord)s. Their [`Event::DISPATCH`] tells the
/// [`Codec`] how to decode and encode them, so [`Consumer`](crate::Consumer),
/// [`Pipeline`](crate::Pipeline) inputs, [`Replay`](crate::Replay) and
/// [`Producer`](crate::Producer) take them as they take any event.
///
/// A topic carries several event types in one of two ways, as with Confluent's serializers:
///
/// - **Record-name strategies** (`TopicRecordNameStrategy`, `RecordNameStrategy`,
///   [`SubjectNameStrategy`]): each type has its own subject and
///   writes its own schema id. A family member is encoded as the member type is.
/// - **A top-level union** under the topic's subject (`TopicNameStrategy`): the writer schema
///   is a union of the records; the body starts with the branch index. A family member is
///   encoded with the family's [`Event::SCHEMA`] (the union of its members, registered under
///   `<topic>-value`) and its branch index. The union may be a union of references
///   (Confluent's documented form: each branch names a record registered under another
///   subject); a branch that uses types defined in another branch is read with them written
///   out.
///
/// Either way decoding reads the writer schema's record name (a union's: the branch the body
/// names) and decodes into the member declared for it; a name the family does not know is
/// [`Error::UnknownEventType`], which a consumer dead-letters.
///
/// `avro-events-build` generates families from `[families.<Name>]` in `events.toml`; the
/// generated code calls [`CodecRef::written`], [`Written::record_name`], [`Written::decode`],
/// [`Written::unknown`] and [`CodecRef::encode_member`]. ([`Dispatch`](crate::Dispatch) and
/// [`CodecRef`] live beside [`Event`]: the trait names no codec type, so `event` does not
/// depend on `codec`, which depends on it.)
#[derive(Debug)]
pub struct Written<'a> {
    codec: &'a Codec,
    schema_id: u32,
    writer: Arc<WriterSchema>,
    body: &'a [u8],
}

impl<'a> CodecRef<'a> {
    /// The codec.
    pub fn codec(self) -> &'a Codec {
        match self.any.downcast_ref::<Codec>() {
            Some(codec) => codec,
            // `CodecRef::new` is called by the codec alone, with itself.
            None => unreachable!("a CodecRef holds the Codec that made it"),
        }
    }

    /// [`Codec::written`].
    ///
    /// # Errors
    /// As [`Codec::written`].
    pub async fn written(self, payload: &'a [u8]) -> Result<Written<'a>> {
        self.codec().written(payload).await
    }

    /// [`Codec::encode_member`].
    ///
    /// # Errors
    /// As [`Codec::encode_member`].
    pub async fn encode_member<F: Event, V: Event>(
        self,
        topic: &'a str,
        index: usize,
        member: &'a V,
    ) -> Result<Vec<u8>> {
        self.codec()
            .encode_member::<F, V>(topic, index, member)
            .await
    }
}

impl Codec {
    /// Splits `payload` and fetches its writer schema (cached), for a family's decoder.
    ///
    /// # Errors
    /// As [`Codec::decode`]: framing errors, [`Error::UnknownSchemaId`],
    /// [`Error::UnusableSchema`], registry errors.
    pub async fn written<'a>(&'a self, payload: &'a [u8]) -> Result<Written<'a>> {
        let (schema_id, body) = wire::split(payload)?;
        let writer = self.writer(schema_id).await?;
        Ok(Written {
            codec: self,
            schema_id,
            writer,
            body,
        })
    }

    /// Encodes `member`, branch `index` of family `F`, for `topic`: with a record-name subject
    /// strategy as `V` alone (its own subject and schema id); with `TopicNameStrategy` as a
    /// value of `F`'s union schema ([`Event::SCHEMA`], registered under `<topic>-value`, or
    /// the schema `use.latest.version` / `use.schema.id` names): the branch index, then `V`'s
    /// body.
    ///
    /// # Errors
    /// As [`Codec::encode_for`].
    pub async fn encode_member<F: Event, V: Event>(
        &self,
        topic: &str,
        index: usize,
        member: &V,
    ) -> Result<Vec<u8>> {
        if self.options().subject_strategy != SubjectNameStrategy::TopicName {
            return self.encode_for(topic, member).await;
        }
        let reader = self.reader::<V>(Part::Value)?;
        self.encode_part::<F>(topic, Part::Value, SchemaIdPlacement::Prefix, |out, _| {
            crate::binary::put_long(out, i64::try_from(index).map_err(|e| e.to_string())?);
            match V::AVRO_DATUM {
                Some(datum) => {
                    (datum.encode)(member, out);
                    Ok(())
                }
                None => crate::codec::serde_encode(member, &reader.avro, out),
            }
        })
        .await
        .map(|framed| framed.payload)
    }
}

impl Written<'_> {
    /// The writer schema's global id.
    pub fn schema_id(&self) -> u32 {
        self.schema_id
    }

    /// The writer schema.
    pub fn schema(&self) -> &Schema {
        &self.writer.avro
    }

    /// The full name of the record written: the writer schema's, or for a top-level union the
    /// branch the body names.
    ///
    /// # Errors
    /// [`Error::Decode`] (read as `family`) when the writer schema is neither a record nor a
    /// union of records, or the body names no branch of the union.
    pub fn record_name(&self, family: &str) -> Result<String> {
        let (branch, _) = self.member(family)?;
        named(&branch.avro).ok_or_else(|| {
            self.error(
                family,
                format!(
                    "the writer schema is not a record or a union of records: {}",
                    branch.avro.canonical_form()
                ),
            )
        })
    }

    /// Decodes the record as a `V` (writer schema resolved into `V`'s, as [`Codec::decode`]
    /// does), `family` naming the family in errors.
    ///
    /// # Errors
    /// As [`Codec::decode`].
    pub fn decode<V: Event>(&self, family: &str) -> Result<V> {
        let (writer, body) = self.member(family)?;
        let reader = self.codec.reader::<V>(Part::Value)?;
        decode_body(
            body,
            &writer,
            &reader,
            || {
                self.codec
                    .plan::<V>(SchemaId::Id(self.schema_id), Part::Value, &writer, &reader)
            },
            self.codec.options().max_allocation_bytes,
            V::AVRO_DATUM,
        )
        .map_err(|reason| Error::Decode {
            schema_id: self.schema_id,
            reader: V::FULL_NAME.into(),
            location: None,
            reason,
        })
    }

    /// The error for a record named `record` that family `family` has no type for; `known`
    /// are the names it has. A consumer dead-letters such a record.
    pub fn unknown(&self, family: &str, record: &str, known: &[&str]) -> Error {
        Error::UnknownEventType {
            schema_id: self.schema_id,
            family: family.to_owned(),
            record: record.to_owned(),
            known: known.join(", "),
            location: None,
        }
    }

    fn error(&self, family: &str, reason: String) -> Error {
        Error::Decode {
            schema_id: self.schema_id,
            reader: family.to_owned(),
            location: None,
            reason,
        }
    }

    /// The writer schema of the record itself and its body: for a top-level union, the branch
    /// the body names (after the branch index).
    fn member(&self, family: &str) -> Result<(Arc<WriterSchema>, &[u8])> {
        let Schema::Union(union) = &self.writer.avro else {
            return Ok((self.writer.clone(), self.body));
        };
        let mut body = self.body;
        let index = crate::binary::get_index(&mut body, "union", union.variants().len())
            .map_err(|e| self.error(family, e.to_string()))?;
        let branch = self
            .codec
            .union_branch(self.schema_id, index, &self.writer.avro)
            .map_err(|reason| self.error(family, reason))?;
        Ok((branch, body))
    }
}

/// The full name of a record schema (or of a named reference).
fn named(schema: &Schema) -> Option<String> {
    match schema {
        Schema::Record(record) => Some(record.name.fullname(None)),
        Schema::Ref { name } => Some(name.fullname(None)),
        _ => None,
    }
}
