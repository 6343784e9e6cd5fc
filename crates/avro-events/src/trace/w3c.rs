//! W3C trace context text: `traceparent` written and read, `tracestate` checked, as
//! OpenTelemetry's `TraceContextPropagator` does.

use super::{SpanId, TraceId};

/// Version 00 of the format.
const VERSION: &str = "00";
/// The most list members a `tracestate` may hold.
const MAX_MEMBERS: usize = 32;

/// The length of a version 00 `traceparent`: `00-` 32 hex digits `-` 16 hex digits `-01`.
pub(super) const TRACEPARENT_LEN: usize = 55;

pub(super) fn traceparent(trace_id: TraceId, span_id: SpanId, sampled: bool) -> String {
    let bytes = traceparent_bytes(trace_id, span_id, sampled);
    // Hex digits and dashes only.
    bytes.iter().map(|b| char::from(*b)).collect()
}

/// [`traceparent`]'s text as bytes, written without formatting machinery or an allocation:
/// every record a producer sends carries one.
pub(super) fn traceparent_bytes(
    trace_id: TraceId,
    span_id: SpanId,
    sampled: bool,
) -> [u8; TRACEPARENT_LEN] {
    let mut out = [b'-'; TRACEPARENT_LEN];
    out[..2].copy_from_slice(VERSION.as_bytes());
    write_hex(&mut out[3..35], &trace_id.to_bytes());
    write_hex(&mut out[36..52], &span_id.to_bytes());
    out[53] = b'0';
    out[54] = if sampled { b'1' } else { b'0' };
    out
}

/// Writes `bytes` into `out` as lowercase hex digits, two per byte.
fn write_hex(out: &mut [u8], bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (pair, byte) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = HEX[usize::from(byte >> 4)];
        pair[1] = HEX[usize::from(byte & 0xf)];
    }
}

/// The trace id, span id and sampled flag of `text`; `None` when it is not a valid
/// `traceparent`: a version other than two lowercase hex digits (or `ff`), a version 00
/// with more than four fields, ids of the wrong length, not lowercase hex or all zero.
/// Versions above 00 are read as 00 (their extra fields ignored), as the standard asks.
pub(super) fn parse_traceparent(text: &str) -> Option<(TraceId, SpanId, bool)> {
    // Read at fixed positions (every record a pipeline reads has one): the version's two
    // digits, then `-` and the trace id, `-` and the span id, `-` and the flags' two digits.
    let text = text.trim();
    let field = |range: std::ops::Range<usize>| text.get(range);
    let dash = |at: usize| text.as_bytes().get(at) == Some(&b'-');
    let (version, trace_id, span_id, flags) =
        (field(0..2)?, field(3..35)?, field(36..52)?, field(53..55)?);
    if !(dash(2) && dash(35) && dash(52)) {
        return None;
    }
    if !hex_of_len(version, 2) || version == "ff" {
        return None;
    }
    // After the flags: nothing in version 00; a later version's further fields, each after
    // a `-`.
    let rest = &text[TRACEPARENT_LEN..];
    if (version == VERSION && !rest.is_empty()) || !(rest.is_empty() || dash(TRACEPARENT_LEN)) {
        return None;
    }
    if !hex_of_len(flags, 2) {
        return None;
    }
    let trace_id = TraceId::from_lower_hex(trace_id)?;
    let span_id = SpanId::from_lower_hex(span_id)?;
    let flags = u8::from_str_radix(flags, 16).ok()?;
    Some((trace_id, span_id, flags & 1 == 1))
}

fn hex_of_len(text: &str, len: usize) -> bool {
    text.len() == len && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// `text` as a `tracestate` header (members joined by `,`, blank members dropped), or `None`
/// when it is not valid W3C trace state: a member that is not `key=value`, a key or value
/// not as the standard defines them, a key twice, or more than 32 members.
pub(super) fn normalize_tracestate(text: &str) -> Option<String> {
    let mut keys = Vec::new();
    for member in text.split(',').map(|m| m.trim_matches([' ', '\t'])) {
        if member.is_empty() {
            continue;
        }
        let (key, value) = member.split_once('=')?;
        if !valid_key(key) || !valid_value(value) || keys.contains(&key) {
            return None;
        }
        keys.push(key);
    }
    if keys.len() > MAX_MEMBERS {
        return None;
    }
    let members: Vec<&str> = text
        .split(',')
        .map(|m| m.trim_matches([' ', '\t']))
        .filter(|m| !m.is_empty())
        .collect();
    Some(members.join(","))
}

/// `simple-key` (a lowercase letter or digit, then up to 255 of `a-z0-9_-*/`) or
/// `tenant@system` (a tenant id of up to 241, a system id of up to 14, the system's first a
/// lowercase letter).
fn valid_key(key: &str) -> bool {
    fn rest(c: u8) -> bool {
        matches!(c, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'*' | b'/')
    }
    fn part(text: &str, max: usize, first: fn(u8) -> bool) -> bool {
        match text.as_bytes().split_first() {
            Some((&head, tail)) => {
                text.len() <= max && first(head) && tail.iter().all(|&c| rest(c))
            }
            None => false,
        }
    }
    let letter_or_digit = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    match key.split_once('@') {
        None => part(key, 256, letter_or_digit),
        Some((tenant, system)) => {
            part(tenant, 241, letter_or_digit) && part(system, 14, |c| c.is_ascii_lowercase())
        }
    }
}

/// Up to 256 printable ASCII characters but `,` and `=`, not ending in a space.
fn valid_value(value: &str) -> bool {
    value.len() <= 256
        && !value.ends_with(' ')
        && value
            .bytes()
            .all(|c| (0x20..=0x7e).contains(&c) && c != b',' && c != b'=')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_bytes_are_the_formatted_text() {
        for sampled in [true, false] {
            for _ in 0..64 {
                let (trace_id, span_id) = (TraceId::random(), SpanId::random());
                let formatted = format!("{VERSION}-{trace_id}-{span_id}-{:02x}", u8::from(sampled));
                let bytes = traceparent_bytes(trace_id, span_id, sampled);
                assert_eq!(std::str::from_utf8(&bytes).unwrap(), formatted);
                assert_eq!(traceparent(trace_id, span_id, sampled), formatted);
                assert_eq!(
                    parse_traceparent(&formatted),
                    Some((trace_id, span_id, sampled))
                );
            }
        }
    }

    #[test]
    fn tracestate_is_checked_as_w3c_defines_it() {
        assert_eq!(
            normalize_tracestate("vendor=abc, other=1,,").as_deref(),
            Some("vendor=abc,other=1")
        );
        assert_eq!(
            normalize_tracestate("tenant@sys=x,3vendor=a b").as_deref(),
            Some("tenant@sys=x,3vendor=a b")
        );
        assert_eq!(normalize_tracestate("").as_deref(), Some(""));
        let too_many = (0..33)
            .map(|i| format!("k{i}=v"))
            .collect::<Vec<_>>()
            .join(",");
        for bad in [
            "no equals sign",
            "Upper=1",
            "a=1,a=2",
            "a=x=y",
            "a=tab\tinside",
            "@sys=1",
            "t@Sys=1",
            "a=caf\u{e9}",
            &too_many,
        ] {
            assert_eq!(normalize_tracestate(bad), None, "{bad}");
        }
    }
}
