//! Generic records against Confluent's Python serializer: records of schemas with every Avro
//! type (logical types, unions of named types, fixed, maps, a top-level map, a recursive
//! record) written by confluent-kafka's `AvroSerializer` decode into [`GenericRecord`]s whose
//! Avro JSON encoding is fastavro's, and records the codec encodes from that JSON decode with
//! `AvroDeserializer` into the same values.
//!
//! The Python side is `scripts/interop/generic_and_families.py` (`generic-write`,
//! `generic-read`), run with `local_stack::python::interop_venv()`.

mod interop;

use avro_events::{Codec, CodecOptions, Event, GenericRecord, registry::RegistryConfig};
use serde_json::{Value, json};

use interop::{from_hex, python, registry};

/// The lines of `generic.jsonl`: topic, payload, value in Avro's JSON encoding.
fn written(dir: &std::path::Path) -> Vec<(String, Vec<u8>, Value)> {
    std::fs::read_to_string(dir.join("generic.jsonl"))
        .unwrap()
        .lines()
        .map(|line| {
            let item: Value = serde_json::from_str(line).unwrap();
            (
                item["topic"].as_str().unwrap().to_owned(),
                from_hex(item["payload"].as_str().unwrap()),
                item["json"].clone(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn generic_records_read_what_python_writes_with_any_schema() {
    let registry = registry().await;
    let url = registry.url();
    let dir = tempfile::Builder::new()
        .prefix("generic-write")
        .tempdir()
        .expect("temp dir");
    python("generic-write", &url, dir.path()).await;
    let codec = Codec::new(&RegistryConfig::new(&url), CodecOptions::default()).unwrap();

    let written = written(dir.path());
    assert_eq!(written.len(), 8, "every value of the script");
    for (topic, payload, json) in &written {
        let record = codec.decode_generic(payload).await.unwrap();
        assert_eq!(record.to_json().unwrap(), *json, "{topic}");
        // The same through the Event seam, as a consumer decodes it.
        assert_eq!(
            codec.decode::<GenericRecord>(payload).await.unwrap(),
            record
        );
        let id = u32::from_be_bytes(payload[1..5].try_into().unwrap());
        assert_eq!(record.schema_id(), id);
        assert_eq!(
            codec.registry().schema_versions(id).await.unwrap(),
            [(format!("{topic}-value"), 1)]
        );
    }
    // Logical types come as apache-avro's logical values.
    let everything = codec.decode_generic(&written[0].1).await.unwrap();
    let apache_avro::types::Value::Record(fields) = everything.value() else {
        panic!("a record: {everything:?}");
    };
    let field = |name: &str| &fields.iter().find(|(n, _)| n == name).unwrap().1;
    assert!(matches!(field("id"), apache_avro::types::Value::Uuid(_)));
    assert!(matches!(
        field("price"),
        apache_avro::types::Value::Decimal(_)
    ));
    assert!(matches!(
        field("day"),
        apache_avro::types::Value::Date(19_782)
    ));
    assert!(matches!(
        field("at_ms"),
        apache_avro::types::Value::TimestampMillis(1_763_769_600_123)
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn python_reads_the_generic_records_the_codec_writes_from_json() {
    let registry = registry().await;
    let url = registry.url();
    let dir = tempfile::Builder::new()
        .prefix("generic-read")
        .tempdir()
        .expect("temp dir");
    // Python registers the schemas (and writes its own payloads, unused here).
    python("generic-write", &url, dir.path()).await;
    let codec = Codec::new(&RegistryConfig::new(&url), CodecOptions::default()).unwrap();

    let mut lines = String::new();
    let mut sent = Vec::new();
    for (topic, _, json) in written(dir.path()) {
        let schema = codec
            .generic_schema_of(&format!("{topic}-value"), None)
            .await
            .unwrap();
        let record = schema.record_from_json(&json).unwrap().with_key("k");
        assert_eq!(record.key(), "k");
        let payload = codec.encode_for(&topic, &record).await.unwrap();
        assert_eq!(payload, codec.encode_generic(&record).unwrap());
        let line = json!({"payload": hex(&payload), "json": json});
        lines.push_str(&line.to_string());
        lines.push('\n');
        sent.push(json);
    }
    std::fs::write(dir.path().join("rust_generic.jsonl"), lines).unwrap();
    let out = python("generic-read", &url, dir.path()).await;
    let read: Vec<Value> = out
        .lines()
        .filter(|l| !l.starts_with("generic_and_families"))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(read, sent, "Python reads the values the JSON gave");
}

#[tokio::test(flavor = "multi_thread")]
async fn json_that_does_not_fit_the_schema_is_refused_with_its_path() {
    let registry = registry().await;
    let url = registry.url();
    let dir = tempfile::Builder::new()
        .prefix("generic-refused")
        .tempdir()
        .expect("temp dir");
    python("generic-write", &url, dir.path()).await;
    let codec = Codec::new(&RegistryConfig::new(&url), CodecOptions::default()).unwrap();
    let (topic, _, mut json) = written(dir.path()).remove(0);
    let schema = codec
        .generic_schema_of(&format!("{topic}-value"), Some(1))
        .await
        .unwrap();
    json["lines"][1]["qty"] = json!("three");
    let err = schema.record_from_json(&json).unwrap_err();
    assert_eq!(err.kind(), "encode");
    assert!(
        err.to_string()
            .contains("$.lines[1].qty: expected an int, found \"three\""),
        "{err}"
    );
    // A generic record has no schema-less serde form.
    assert!(serde_json::from_value::<GenericRecord>(json).is_err());
    assert_eq!(GenericRecord::TOPIC, "", "no default topic");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
