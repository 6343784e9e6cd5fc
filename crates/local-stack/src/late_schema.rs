//! Records written with a schema the registry does not have yet, for the tests of what a
//! consumer does with an unknown schema id (it waits, or stops; it never dead-letters).
//!
//! The stack's registry gives ids in sequence, so the id the next new schema will get is known
//! ahead ([`next_schema_id`]): a record framed with it ([`late_record`]) names no schema until
//! the schema of [`with_late_note`] is registered, and then decodes.

use avro_events::Error;
use avro_events::registry::RegistryClient;

/// `schema` (a record schema's JSON) with one more field at its end, `late_note`, a nullable
/// string null by default: a schema the registry does not have yet, whose records the
/// original type reads.
///
/// # Panics
/// When `schema` is not a record schema's JSON.
pub fn with_late_note(schema: &str) -> String {
    let mut schema: serde_json::Value =
        serde_json::from_str(schema).expect("a record schema's JSON");
    schema["fields"]
        .as_array_mut()
        .expect("a record schema has fields")
        .push(serde_json::json!(
            {"name": "late_note", "type": ["null", "string"], "default": null}
        ));
    schema.to_string()
}

/// The record `encoded` (Confluent framing: magic byte, schema id, Avro body) as written with
/// [`with_late_note`]'s schema under `id`: the same body followed by a null `late_note`
/// (union branch 0).
///
/// # Panics
/// When `encoded` is shorter than the framing.
pub fn late_record(encoded: &[u8], id: u32) -> Vec<u8> {
    let body = encoded.get(5..).expect("a Confluent-framed record");
    let mut payload = Vec::with_capacity(encoded.len() + 1);
    payload.push(0);
    payload.extend_from_slice(&id.to_be_bytes());
    payload.extend_from_slice(body);
    payload.push(0);
    payload
}

/// The id the stack's registry will give the next new schema: one past the id of a probe
/// schema registered now (under `schema-id-probe-value`). Register every other schema the
/// test needs first, so that none of them takes it.
///
/// # Panics
/// When the registry cannot be reached, or already has a schema under that id.
pub async fn next_schema_id(registry: &RegistryClient) -> u32 {
    let probe = registry
        .register(
            "schema-id-probe-value",
            r#"{"type":"record","name":"Probe","fields":[{"name":"n","type":"long"}]}"#,
        )
        .await
        .expect("the registry takes the probe schema");
    let next = probe + 1;
    let unknown = registry.schema_by_id(next).await;
    assert!(
        matches!(unknown, Err(Error::UnknownSchemaId { id, .. }) if id == next),
        "the registry already has schema id {next}: {unknown:?}"
    );
    next
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_late_record_is_the_body_under_the_new_id_with_a_null_note() {
        let encoded = [0, 0, 0, 0, 7, 2, 4, 6];
        assert_eq!(
            late_record(&encoded, 0x0102_0304),
            vec![0, 1, 2, 3, 4, 2, 4, 6, 0]
        );
        let late = with_late_note(r#"{"type":"record","name":"R","fields":[]}"#);
        assert!(late.contains(r#""name":"late_note""#), "{late}");
    }
}
