//! Confluent Schema Registry wire format: a magic byte `0`, the writer schema's id as a
//! 4-byte big-endian integer, then the Avro binary body (the payload prefix); or, as
//! Confluent's serializers write with `value.schema.id.serializer` /
//! `key.schema.id.serializer` set to `HeaderSchemaIdSerializer`, a bare Avro body with the
//! schema id in the record header `__value_schema_id` / `__key_schema_id`: magic byte `1` and
//! the schema's 16-byte GUID (or magic byte `0` and the 4-byte id).
//!
//! [`locate`] reads the id as Confluent's `DualSchemaIdDeserializer` does: from the header when
//! the record has one (the whole payload is then the body, so a body that begins with `0x00`
//! is not taken for a prefix), else from the payload prefix.
//!
//! ```
//! use avro_events::wire::{self, SchemaId};
//!
//! let guid = uuid::Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
//! let header = wire::header_value(SchemaId::Guid(guid));
//! assert_eq!(header[0], 1);
//! // A bare body that starts with 0x00, read with its header: all of it is the body.
//! assert_eq!(wire::locate(&[0, 2, 4], Some(&header))?, (SchemaId::Guid(guid), &[0, 2, 4][..]));
//! // Without a header, the prefix.
//! assert_eq!(wire::locate(&[0, 0, 0, 0, 7, 2], None)?, (SchemaId::Id(7), &[2][..]));
//! # Ok::<(), avro_events::Error>(())
//! ```

use crate::Error;

/// The header a record value's schema id travels in with header framing.
pub const VALUE_SCHEMA_ID_HEADER: &str = "__value_schema_id";
/// The header a record key's schema id travels in with header framing.
pub const KEY_SCHEMA_ID_HEADER: &str = "__key_schema_id";
/// The magic byte in front of a 16-byte schema GUID.
pub const MAGIC_BYTE_GUID: u8 = 1;

/// How a record names its writer schema: by global id, or by GUID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SchemaId {
    /// The registry's global id (magic byte 0).
    Id(u32),
    /// The schema's GUID (magic byte 1).
    Guid(uuid::Uuid),
}

impl std::fmt::Display for SchemaId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Id(id) => write!(f, "schema id {id}"),
            Self::Guid(guid) => write!(f, "schema GUID {guid}"),
        }
    }
}

/// Where an encoder puts the writer schema's id (Confluent's `value.schema.id.serializer` and
/// `key.schema.id.serializer`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SchemaIdPlacement {
    /// In front of the body: magic byte 0 and the 4-byte id (`PrefixSchemaIdSerializer`, the
    /// default).
    #[default]
    Prefix,
    /// In the `__value_schema_id` / `__key_schema_id` header: magic byte 1 and the schema's
    /// GUID; the payload is the bare body (`HeaderSchemaIdSerializer`).
    Header,
}

impl std::str::FromStr for SchemaIdPlacement {
    type Err = String;

    /// `prefix` or `header`, or Confluent's class names
    /// (`io.confluent.kafka.serializers.schema.id.PrefixSchemaIdSerializer`,
    /// `…HeaderSchemaIdSerializer`, with or without the package).
    fn from_str(text: &str) -> Result<Self, String> {
        let name = text.trim();
        let simple = name.rsplit('.').next().unwrap_or(name);
        if name.eq_ignore_ascii_case("prefix") || simple == "PrefixSchemaIdSerializer" {
            Ok(Self::Prefix)
        } else if name.eq_ignore_ascii_case("header") || simple == "HeaderSchemaIdSerializer" {
            Ok(Self::Header)
        } else {
            Err(format!(
                "'{name}' is neither prefix (PrefixSchemaIdSerializer) nor header \
                 (HeaderSchemaIdSerializer)"
            ))
        }
    }
}

/// The value of a schema id header: magic byte 1 and the GUID, or magic byte 0 and the id.
pub fn header_value(id: SchemaId) -> Vec<u8> {
    match id {
        SchemaId::Guid(guid) => {
            let mut out = Vec::with_capacity(17);
            out.push(MAGIC_BYTE_GUID);
            out.extend_from_slice(guid.as_bytes());
            out
        }
        SchemaId::Id(id) => {
            let mut out = Vec::with_capacity(HEADER_LEN);
            write_header(&mut out, id);
            out
        }
    }
}

/// Reads a schema id header's value (see [`header_value`]).
///
/// # Errors
/// [`Error::BadSchemaIdHeader`] for another magic byte or length.
pub fn parse_header(value: &[u8]) -> Result<SchemaId, Error> {
    let bad = |reason: String| Error::BadSchemaIdHeader { reason };
    match value {
        [MAGIC_BYTE, a, b, c, d] => Ok(SchemaId::Id(u32::from_be_bytes([*a, *b, *c, *d]))),
        [MAGIC_BYTE_GUID, guid @ ..] if guid.len() == 16 => {
            let mut bytes = [0u8; 16];
            bytes.copy_from_slice(guid);
            Ok(SchemaId::Guid(uuid::Uuid::from_bytes(bytes)))
        }
        [] => Err(bad("empty".into())),
        [MAGIC_BYTE, ..] => Err(bad(format!(
            "magic byte 0 takes a 4-byte id, {} bytes follow",
            value.len() - 1
        ))),
        [MAGIC_BYTE_GUID, ..] => Err(bad(format!(
            "magic byte 1 takes a 16-byte GUID, {} bytes follow",
            value.len() - 1
        ))),
        [other, ..] => Err(bad(format!(
            "magic byte {other:#04x}, expected 0x00 (id) or 0x01 (GUID)"
        ))),
    }
}

/// The writer schema's id and the Avro body of a record: from `header` (the value of its
/// `__value_schema_id` or `__key_schema_id` header) when present, the whole `payload` being
/// the body; else from the payload prefix ([`split`]).
///
/// # Errors
/// [`Error::BadSchemaIdHeader`] for a header that is not a schema id; [`split`]'s errors.
pub fn locate<'p>(payload: &'p [u8], header: Option<&[u8]>) -> Result<(SchemaId, &'p [u8]), Error> {
    match header {
        Some(value) => Ok((parse_header(value)?, payload)),
        None => split(payload).map(|(id, body)| (SchemaId::Id(id), body)),
    }
}

/// The first byte of every Confluent-framed payload.
pub const MAGIC_BYTE: u8 = 0;
/// Length of the header in front of the Avro body: magic byte plus schema id.
pub const HEADER_LEN: usize = 5;

/// Appends the 5-byte Confluent header for `schema_id` to `buf`.
pub fn write_header(buf: &mut Vec<u8>, schema_id: u32) {
    buf.push(MAGIC_BYTE);
    buf.extend_from_slice(&schema_id.to_be_bytes());
}

/// Splits a Confluent-framed payload into the writer schema id and the Avro body.
///
/// # Errors
/// [`Error::EmptyPayload`] for no bytes at all, [`Error::BadMagicByte`] when the first byte is
/// not `0`, and [`Error::TruncatedHeader`] when fewer than 5 bytes are present.
pub fn split(payload: &[u8]) -> Result<(u32, &[u8]), Error> {
    match payload {
        [] => Err(Error::EmptyPayload),
        [first, ..] if *first != MAGIC_BYTE => Err(Error::BadMagicByte { found: *first }),
        [_, a, b, c, d, body @ ..] => Ok((u32::from_be_bytes([*a, *b, *c, *d]), body)),
        _ => Err(Error::TruncatedHeader { len: payload.len() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips() {
        let mut buf = Vec::new();
        write_header(&mut buf, 0x0102_0304);
        buf.extend_from_slice(b"body");
        assert_eq!(buf[..5], [0, 1, 2, 3, 4]);
        assert_eq!(split(&buf).unwrap(), (0x0102_0304, &b"body"[..]));
    }

    #[test]
    fn each_malformed_header_has_its_own_error() {
        assert!(matches!(split(&[]), Err(Error::EmptyPayload)));
        assert!(matches!(
            split(&[7, 0, 0, 0, 1]),
            Err(Error::BadMagicByte { found: 7 })
        ));
        assert!(matches!(
            split(&[0, 0, 1]),
            Err(Error::TruncatedHeader { len: 3 })
        ));
        assert_eq!(split(&[0, 0, 0, 0, 9]).unwrap(), (9, &[][..]));
    }

    #[test]
    fn a_header_id_wins_over_a_body_that_looks_framed() {
        let guid = uuid::Uuid::from_u128(42);
        let header = header_value(SchemaId::Guid(guid));
        assert_eq!(header.len(), 17);
        let body = [0u8, 0, 0, 0, 5, 8];
        assert_eq!(
            locate(&body, Some(&header)).unwrap(),
            (SchemaId::Guid(guid), &body[..])
        );
        assert_eq!(
            locate(&body, Some(&header_value(SchemaId::Id(9)))).unwrap(),
            (SchemaId::Id(9), &body[..])
        );
        assert_eq!(locate(&body, None).unwrap(), (SchemaId::Id(5), &[8][..]));
        for bad in [&[][..], &[1, 2, 3][..], &[0, 1][..], &[2; 17][..]] {
            assert!(
                matches!(
                    locate(&body, Some(bad)),
                    Err(Error::BadSchemaIdHeader { .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn placement_takes_confluent_names() {
        for (text, placement) in [
            ("header", SchemaIdPlacement::Header),
            (
                "io.confluent.kafka.serializers.schema.id.HeaderSchemaIdSerializer",
                SchemaIdPlacement::Header,
            ),
            ("PrefixSchemaIdSerializer", SchemaIdPlacement::Prefix),
            ("prefix", SchemaIdPlacement::Prefix),
        ] {
            assert_eq!(text.parse::<SchemaIdPlacement>().unwrap(), placement);
        }
        assert!(
            "DualSchemaIdDeserializer"
                .parse::<SchemaIdPlacement>()
                .is_err()
        );
    }
}
