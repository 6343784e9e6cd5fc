//! Confluent Schema Registry wire format: a magic byte `0`, the writer schema's id as a
//! 4-byte big-endian integer, then the Avro binary body.

use crate::Error;

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
}
