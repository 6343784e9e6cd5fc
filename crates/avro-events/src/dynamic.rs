//! Reader schemas known only at run time ([`DynamicSchema`]): checking that a payload decodes
//! and resolves without a Rust type for it, through the codec's resolution plan (what checks
//! and rewrites a body before the codec decodes it, unless a generated decoder reads a body of
//! its own schema straight), bounded by
//! [`CodecOptions::max_allocation_bytes`](crate::CodecOptions::max_allocation_bytes); and
//! rewriting a body from one schema's encoding into another's ([`Resolution`]).
//!
//! For tools that inspect records of any schema, and for the hostile-input tests and fuzz
//! targets of the decoder ([`Codec::check_decode`] with a registered writer schema,
//! [`check_body`] with the writer schema at hand). The value is walked and dropped, never
//! kept.

use crate::{
    Codec, Error, Result,
    binary::{AvroDatum, Resolving},
    codec::{ReaderSchema, WriterSchema, check_array_items, resolve_body},
    resolve::Plan,
    wire,
};

/// A parsed Avro schema given as text at run time, to read with (or, for [`check_body`], to
/// have written with).
#[derive(Debug)]
pub struct DynamicSchema {
    reader: ReaderSchema,
    /// The same schema as a writer's (for [`check_body`]).
    writer: WriterSchema,
    /// Why a writer with this schema is refused (array items of zero bytes), if it is.
    unfit_writer: Option<String>,
}

impl DynamicSchema {
    /// Parses `text` (Avro schema JSON).
    ///
    /// # Errors
    /// [`Error::InvalidSchema`] when `text` is not a schema both apache-avro and the
    /// codec's decoder accept.
    pub fn parse(text: &str) -> Result<Self> {
        let reader = ReaderSchema::parse(text, "a schema given at run time")?;
        let unfit_writer = check_array_items(&reader.avro).err();
        Ok(Self {
            writer: WriterSchema {
                avro: reader.avro.clone(),
                canonical: reader.canonical.clone(),
                contract: None,
            },
            reader,
            unfit_writer,
        })
    }

    /// The schema's Parsing Canonical Form.
    pub fn canonical_form(&self) -> &str {
        &self.reader.canonical
    }

    /// The compiled resolution of bodies written with `writer` into this schema's encoding.
    ///
    /// # Errors
    /// [`Error::InvalidSchema`] when this schema cannot read what `writer` writes, or `writer`
    /// is refused as a writer schema (arrays of zero-byte items).
    pub fn resolution_from(&self, writer: &DynamicSchema) -> Result<Resolution> {
        let invalid = |reason: String| Error::InvalidSchema {
            origin: format!("{} read as {}", writer.name(), self.name()),
            reason,
        };
        if let Some(reason) = &writer.unfit_writer {
            return Err(invalid(reason.clone()));
        }
        Ok(Resolution {
            plan: std::sync::Arc::new(Ok(Plan::compile_checked(
                &writer.writer.avro,
                &self.reader.avro,
            )
            .map_err(invalid)?)),
            reader: self.name(),
        })
    }

    fn name(&self) -> String {
        self.reader
            .avro
            .name()
            .map_or_else(|| "a schema given at run time".into(), |n| n.fullname(None))
    }
}

impl Codec {
    /// Checks that a Confluent-framed `payload` decodes, as [`Codec::decode`] would decode it
    /// into a type whose schema is `reader`: the writer schema is fetched by id (and cached),
    /// resolved into `reader` when their canonical forms differ (the plan is compiled for
    /// this call, not cached), and the value is walked, not kept.
    ///
    /// # Errors
    /// As [`Codec::decode`]: framing errors, [`Error::UnknownSchemaId`], registry errors,
    /// [`Error::UnusableSchema`] for a fetched writer schema the codec refuses, and [`Error::Decode`]
    /// for a body that does not decode or resolve, or needs more than
    /// [`CodecOptions::max_allocation_bytes`](crate::CodecOptions::max_allocation_bytes).
    pub async fn check_decode(&self, payload: &[u8], reader: &DynamicSchema) -> Result<()> {
        let (schema_id, body) = wire::split(payload)?;
        let writer = self.writer(schema_id).await?;
        let limit = self.options().max_allocation_bytes;
        resolve_body(
            body,
            || std::sync::Arc::new(Plan::compile_checked(&writer.avro, &reader.reader.avro)),
            limit,
        )
        .map(drop)
        .map_err(|reason| Error::Decode {
            schema_id,
            reader: reader.name(),
            location: None,
            reason,
        })
    }
}

/// Checks that `body`, an Avro body written with `writer`, decodes as the codec decodes it
/// into `reader` (the same path as [`Codec::check_decode`], with the writer schema at hand
/// instead of fetched; schema id 0 in errors). At most `max_allocation_bytes` for a resolved
/// body.
///
/// # Errors
/// [`Error::InvalidSchema`] for a writer schema the codec refuses (the refusal a fetched schema
/// gets as [`Error::UnusableSchema`]), and [`Error::Decode`] for a body that does not decode or
/// resolve.
pub fn check_body(
    writer: &DynamicSchema,
    reader: &DynamicSchema,
    body: &[u8],
    max_allocation_bytes: usize,
) -> Result<()> {
    if let Some(reason) = &writer.unfit_writer {
        return Err(Error::InvalidSchema {
            origin: "a writer schema given at run time".into(),
            reason: reason.clone(),
        });
    }
    resolve_body(
        body,
        || {
            std::sync::Arc::new(Plan::compile_checked(
                &writer.writer.avro,
                &reader.reader.avro,
            ))
        },
        max_allocation_bytes,
    )
    .map(drop)
    .map_err(|reason| Error::Decode {
        schema_id: 0,
        reader: reader.name(),
        location: None,
        reason,
    })
}

/// A compiled resolution between two [`DynamicSchema`]s
/// ([`DynamicSchema::resolution_from`]): rewrites bodies written with the writer schema into the
/// reader schema's encoding, as the codec does before decoding a record written with another
/// version of a type's schema.
#[derive(Debug)]
pub struct Resolution {
    plan: crate::codec::CachedPlan,
    reader: String,
}

impl Resolution {
    /// `body` in the reader schema's encoding, at most `max_allocation_bytes` long.
    ///
    /// # Errors
    /// [`Error::Decode`] (schema id 0) for a body that does not decode with the writer schema,
    /// a value the reader cannot take, or a result beyond `max_allocation_bytes`.
    pub fn run(&self, body: &[u8], max_allocation_bytes: usize) -> Result<Vec<u8>> {
        resolve_body(body, || self.plan.clone(), max_allocation_bytes).map_err(|reason| {
            Error::Decode {
                schema_id: 0,
                reader: self.reader.clone(),
                location: None,
                reason,
            }
        })
    }

    /// Decodes `body` into `T`, a generated type whose schema is this resolution's reader
    /// schema, as the codec decodes a record written with another schema: `T`'s generated
    /// decoder reads the writer's bytes field by field ([`AvroDatum::decode_resolving`]); a
    /// body that is not a record's (a writer union around the record) is rewritten by the
    /// plan first and decoded. Rewritten parts are at most `max_allocation_bytes`.
    ///
    /// # Errors
    /// [`Error::Decode`] (schema id 0) for a body that does not decode with the writer
    /// schema, a value the reader cannot take, or a rewritten part beyond
    /// `max_allocation_bytes`.
    pub fn decode<T: AvroDatum>(&self, body: &[u8], max_allocation_bytes: usize) -> Result<T> {
        let decode_err = |reason: String| Error::Decode {
            schema_id: 0,
            reader: self.reader.clone(),
            location: None,
            reason,
        };
        let plan = self
            .plan
            .as_ref()
            .as_ref()
            .map_err(|e| decode_err(e.clone()))?;
        let resolving = Resolving::root(plan, max_allocation_bytes);
        let decoded = if resolving.is_record() {
            T::decode_resolving(&mut &body[..], &resolving)
        } else {
            resolving
                .rewrite(&mut &body[..])
                .and_then(|resolved| T::decode(&mut &resolved[..]))
        };
        decoded.map_err(|e| decode_err(e.to_string()))
    }
}
