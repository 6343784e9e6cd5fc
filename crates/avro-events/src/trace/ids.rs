//! Trace and span ids: their bytes, their lowercase hex text, and random new ones.

use std::fmt;

/// The 16-byte id of a trace, shown as 32 lowercase hex digits (as in `traceparent`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TraceId([u8; 16]);

/// The 8-byte id of a span, shown as 16 lowercase hex digits (as in `traceparent`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpanId([u8; 8]);

macro_rules! id {
    ($name:ident, $len:literal) => {
        impl $name {
            /// The id of these bytes; `None` when they are all zero (an invalid id in W3C
            /// trace context).
            pub fn from_bytes(bytes: [u8; $len]) -> Option<Self> {
                (bytes != [0; $len]).then_some(Self(bytes))
            }

            /// The id's bytes.
            pub fn to_bytes(self) -> [u8; $len] {
                self.0
            }

            /// A random id, never all zero.
            pub(crate) fn random() -> Self {
                Self(random())
            }

            /// The id of `$len * 2` lowercase hex digits, not all zero.
            pub(super) fn from_lower_hex(text: &str) -> Option<Self> {
                if text.len() != $len * 2 {
                    return None;
                }
                let mut bytes = [0; $len];
                for (byte, pair) in bytes.iter_mut().zip(text.as_bytes().chunks_exact(2)) {
                    *byte = (lower_hex_digit(pair[0])? << 4) | lower_hex_digit(pair[1])?;
                }
                Self::from_bytes(bytes)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                for byte in self.0 {
                    write!(f, "{byte:02x}")?;
                }
                Ok(())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({self})", stringify!($name))
            }
        }
    };
}

id!(TraceId, 16);
id!(SpanId, 8);

fn lower_hex_digit(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        _ => None,
    }
}

/// `N` random bytes, never all zero (an all-zero id is invalid), from rand's thread-local
/// generator (ChaCha12, seeded from the operating system's source and reseeded by rand): one
/// system call per thread rather than one per id, which a record's trace context needs two of.
fn random<const N: usize>() -> [u8; N] {
    use rand::Rng as _;
    let mut bytes = [0; N];
    let mut rng = rand::rng();
    while bytes.iter().all(|b| *b == 0) {
        rng.fill_bytes(&mut bytes);
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_show_and_read_as_lowercase_hex() {
        let id = TraceId::from_lower_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap();
        assert_eq!(id.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(
            format!("{id:?}"),
            "TraceId(4bf92f3577b34da6a3ce929d0e0e4736)"
        );
        assert_eq!(TraceId::from_bytes(id.to_bytes()), Some(id));
        let span = SpanId::from_lower_hex("00f067aa0ba902b7").unwrap();
        assert_eq!(
            span.to_bytes(),
            [0, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7]
        );
        assert_eq!(SpanId::from_lower_hex("00F067AA0BA902B7"), None);
        assert_eq!(SpanId::from_lower_hex("0000000000000000"), None);
        assert_eq!(SpanId::from_bytes([0; 8]), None);
        assert_ne!(SpanId::random(), SpanId::random());
    }
}
