//! The codec against Confluent's own Python serializer (confluent-kafka's `AvroSerializer` and
//! `AvroDeserializer`, with fastavro), both ways, through the local Schema Registry; and the
//! checked-in bytes that serializer made (`tests/fixtures/python/`).
//!
//! The Python side is `scripts/interop/codec_fixtures.py`, run with the interpreter of
//! `local_stack::python::interop_venv()`. `GROCERY_REGENERATE_PYTHON_FIXTURES=1` makes the
//! first test also rewrite the checked-in fixtures with what Python just produced.

use std::path::{Path, PathBuf};

use avro_events::{Codec, CodecOptions};
use avro_events::{registry::RegistryClient, registry::RegistryConfig};
use grocery_events::{
    DeliveryWindow, Event, Order, OrderLine, PickLine, PickList, PickListDeliveryWindow,
    StockStatus, SubstitutionPreference,
};
use local_stack::python::{interop_venv, workspace_dir};
use local_stack::registry::{RegistryHandle, SchemaRegistry};
use serde_json::Value;
use uuid::Uuid;

const SCRIPT: &str = "scripts/interop/codec_fixtures.py";

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/python")
}

async fn registry() -> RegistryHandle {
    SchemaRegistry::start(([127, 0, 0, 1], 0).into(), None)
        .await
        .expect("local registry starts")
}

/// Runs the interop script with Confluent's Python client; returns its stdout.
async fn python(mode: &str, url: &str, dir: &Path) -> String {
    let python = tokio::task::spawn_blocking(interop_venv)
        .await
        .expect("venv task")
        .expect("the interop virtual environment (python3 -m venv + pip install)");
    let output = tokio::process::Command::new(&python)
        .arg(workspace_dir().join(SCRIPT))
        .args([mode, url])
        .arg(dir)
        .output()
        .await
        .expect("run codec_fixtures.py");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "codec_fixtures.py {mode} failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    stdout
}

fn read_hex(path: &Path) -> Vec<u8> {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let text = text.trim();
    assert!(
        text.len().is_multiple_of(2),
        "{}: odd hex length",
        path.display()
    );
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex digit"))
        .collect()
}

fn write_hex(path: &Path, bytes: &[u8]) {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    std::fs::write(path, hex + "\n").expect("write hex");
}

fn read_json(path: &Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).expect("valid JSON")
}

/// The schema id in a Confluent header, after checking the magic byte.
fn header_id(bytes: &[u8]) -> u32 {
    assert!(bytes.len() > 5, "payload too short: {bytes:?}");
    assert_eq!(bytes[0], 0, "magic byte");
    u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]])
}

/// Compares two JSON values field by field, naming the first path that differs.
fn assert_same_fields(what: &str, actual: &Value, expected: &Value) {
    fn walk(path: &str, actual: &Value, expected: &Value, diffs: &mut Vec<String>) {
        match (actual, expected) {
            (Value::Object(a), Value::Object(e)) => {
                for key in e.keys().chain(a.keys().filter(|k| !e.contains_key(*k))) {
                    let here = format!("{path}.{key}");
                    match (a.get(key), e.get(key)) {
                        (Some(a), Some(e)) => walk(&here, a, e, diffs),
                        (None, Some(e)) => diffs.push(format!("{here}: missing, expected {e}")),
                        (Some(a), None) => diffs.push(format!("{here}: unexpected {a}")),
                        (None, None) => {}
                    }
                }
            }
            (Value::Array(a), Value::Array(e)) if a.len() == e.len() => {
                for (i, (a, e)) in a.iter().zip(e).enumerate() {
                    walk(&format!("{path}[{i}]"), a, e, diffs);
                }
            }
            _ if actual == expected => {}
            _ => diffs.push(format!("{path}: got {actual}, expected {expected}")),
        }
    }
    let mut diffs = Vec::new();
    walk(what, actual, expected, &mut diffs);
    assert!(diffs.is_empty(), "{what} differs:\n{}", diffs.join("\n"));
}

fn codec(url: &str) -> Codec {
    Codec::new(&RegistryConfig::new(url), CodecOptions::default()).expect("codec")
}

/// Decodes Python's bytes with the codec and compares them, field by field, with
/// `dir/expected.json` (the values Python serialized).
async fn decode_and_compare(codec: &Codec, dir: &Path, order_bytes: &[u8], pick_bytes: &[u8]) {
    let expected = read_json(&dir.join("expected.json"));
    decode_and_compare_with(codec, &expected, order_bytes, pick_bytes).await;
}

/// [`decode_and_compare`] with the expected values given.
async fn decode_and_compare_with(
    codec: &Codec,
    expected: &Value,
    order_bytes: &[u8],
    pick_bytes: &[u8],
) {
    let order: Order = codec
        .decode(order_bytes)
        .await
        .expect("decode Python's Order");
    assert_same_fields(
        "order",
        &serde_json::to_value(&order).expect("order as JSON"),
        &expected["order"],
    );
    // A few fields by hand, in case both JSON sides were wrong in the same way.
    assert_eq!(
        order.order_id,
        Uuid::parse_str("7d3f2c1a-9b8e-4f6d-a5c4-3b2a1f0e9d8c").unwrap()
    );
    assert_eq!(order.items[1].name, "Crème fraîche — 200 g 🥛");
    assert_eq!(order.items[1].unit_price_cents, 5_000_000_000);
    assert_eq!(order.items[2].quantity, -1);
    assert_eq!(order.order_total_cents, 5_000_000_793);
    assert_eq!(order.currency, "EUR");
    assert_eq!(order.order_time, 1_763_769_600_123);

    let pick: PickList = codec
        .decode(pick_bytes)
        .await
        .expect("decode Python's PickList");
    assert_same_fields(
        "picklist",
        &serde_json::to_value(&pick).expect("pick list as JSON"),
        &expected["picklist"],
    );
    let statuses: Vec<StockStatus> = pick.items_to_pick.iter().map(|l| l.stock_status).collect();
    assert_eq!(
        statuses,
        [
            StockStatus::InStock,
            StockStatus::Short,
            StockStatus::OutOfStock,
            StockStatus::UnknownSku
        ]
    );
    let notes: Vec<Option<&str>> = pick
        .items_to_pick
        .iter()
        .map(|l| l.note.as_deref())
        .collect();
    assert_eq!(
        notes,
        [
            None,
            Some("only 1 left"),
            Some("none on the shelf"),
            Some("")
        ]
    );
    assert_eq!(pick.assigned_picker, "Zoë");
    assert_eq!(pick.order_id, order.order_id);
}

#[tokio::test(flavor = "multi_thread")]
async fn python_serializer_bytes_decode_with_the_codec() {
    let registry = registry().await;
    let dir = tempfile::Builder::new()
        .prefix("py-to-rust")
        .tempdir()
        .expect("temp dir");
    let stdout = python("serialize", &registry.url(), dir.path()).await;
    assert!(stdout.contains("codec_fixtures: OK"), "{stdout}");

    let order_bytes = read_hex(&dir.path().join("order.hex"));
    let pick_bytes = read_hex(&dir.path().join("picklist.hex"));

    // The header carries the id the registry assigned to the subject's schema.
    let client = RegistryClient::new(&RegistryConfig::new(registry.url())).expect("client");
    let order_id = client
        .lookup(&format!("{}-value", Order::TOPIC), Order::SCHEMA)
        .await
        .expect("Python registered the order schema");
    let pick_id = client
        .lookup(&format!("{}-value", PickList::TOPIC), PickList::SCHEMA)
        .await
        .expect("Python registered the pick list schema");
    assert_eq!(header_id(&order_bytes), order_id, "order schema id");
    assert_eq!(header_id(&pick_bytes), pick_id, "pick list schema id");
    let expected = read_json(&dir.path().join("expected.json"));
    assert_eq!(expected["schema_ids"]["order"], order_id);
    assert_eq!(expected["schema_ids"]["picklist"], pick_id);

    decode_and_compare(
        &codec(&registry.url()),
        dir.path(),
        &order_bytes,
        &pick_bytes,
    )
    .await;

    if std::env::var_os("GROCERY_REGENERATE_PYTHON_FIXTURES").is_some() {
        let fixtures = fixtures_dir();
        std::fs::create_dir_all(&fixtures).expect("fixtures dir");
        for name in ["order.hex", "picklist.hex", "expected.json"] {
            std::fs::copy(dir.path().join(name), fixtures.join(name)).expect("copy fixture");
        }
        eprintln!("rewrote {}", fixtures.display());
    }
    registry.shutdown().await.expect("shutdown");
}

fn rust_order() -> Order {
    Order {
        order_id: Uuid::parse_str("3e1b6a0c-5d2f-4c8e-9f7a-1b2c3d4e5f60").unwrap(),
        customer_id: Uuid::nil(),
        items: vec![
            OrderLine {
                sku: "PRD-00100".into(),
                name: "Äpfel Boskoop 1 kg".into(),
                quantity: 3,
                unit_price_cents: 299,
            },
            OrderLine {
                sku: "PRD-00101".into(),
                name: "Gift card".into(),
                quantity: i32::MAX,
                unit_price_cents: i64::MIN,
            },
        ],
        order_total_cents: i64::MAX,
        currency: "USD".into(),
        order_time: -1,
        substitution: Some(SubstitutionPreference::AnyBrand),
        delivery_window: Some(DeliveryWindow {
            start_time: 1_763_784_000_000,
            end_time: 1_763_791_200_000,
        }),
    }
}

fn rust_pick_list() -> PickList {
    PickList {
        picklist_id: Uuid::new_v5(&Uuid::NAMESPACE_OID, b"3e1b6a0c"),
        order_id: rust_order().order_id,
        items_to_pick: vec![
            PickLine {
                sku: "PRD-00100".into(),
                name: "Äpfel Boskoop 1 kg".into(),
                quantity: 3,
                quantity_to_pick: 3,
                aisle: "F1 Produce".into(),
                walk_sequence: 1,
                stock_status: StockStatus::InStock,
                note: None,
            },
            PickLine {
                sku: "PRD-00101".into(),
                name: "Gift card".into(),
                quantity: 1,
                quantity_to_pick: 0,
                aisle: "".into(),
                walk_sequence: 2,
                stock_status: StockStatus::UnknownSku,
                note: Some("ask at the till — 🎁".into()),
            },
        ],
        assigned_picker: "Łukasz".into(),
        created_time: 0,
        // Version 2 of the pick-list schema.
        delivery_window: Some(PickListDeliveryWindow {
            start_time: 1_763_784_000_000,
            end_time: 1_763_791_200_000,
        }),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn codec_bytes_decode_with_the_python_deserializer() {
    let registry = registry().await;
    let codec = codec(&registry.url());
    let order = rust_order();
    let pick = rust_pick_list();
    let order_bytes = codec.encode(&order).await.expect("encode order");
    let pick_bytes = codec.encode(&pick).await.expect("encode pick list");
    let dir = tempfile::Builder::new()
        .prefix("rust-to-py")
        .tempdir()
        .expect("temp dir");
    write_hex(&dir.path().join("order.hex"), &order_bytes);
    write_hex(&dir.path().join("picklist.hex"), &pick_bytes);

    let stdout = python("deserialize", &registry.url(), dir.path()).await;
    let decoded: Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("Python printed no JSON ({e}): {stdout}"));

    assert_same_fields(
        "order",
        &decoded["order"],
        &serde_json::to_value(&order).expect("order as JSON"),
    );
    assert_same_fields(
        "picklist",
        &decoded["picklist"],
        &serde_json::to_value(&pick).expect("pick list as JSON"),
    );
    // By hand too: the uuid and enum shapes Python sees.
    assert_eq!(
        decoded["order"]["order_id"],
        "3e1b6a0c-5d2f-4c8e-9f7a-1b2c3d4e5f60"
    );
    assert_eq!(decoded["order"]["items"][1]["unit_price_cents"], i64::MIN);
    assert_eq!(
        decoded["picklist"]["items_to_pick"][1]["stock_status"],
        "UNKNOWN_SKU"
    );
    assert_eq!(decoded["picklist"]["items_to_pick"][0]["note"], Value::Null);

    // Python read the ids the registry assigned.
    let client = RegistryClient::new(&RegistryConfig::new(registry.url())).expect("client");
    let order_id = client
        .lookup(&format!("{}-value", Order::TOPIC), Order::SCHEMA)
        .await
        .expect("order schema registered");
    let pick_id = client
        .lookup(&format!("{}-value", PickList::TOPIC), PickList::SCHEMA)
        .await
        .expect("pick list schema registered");
    assert_eq!(decoded["schema_ids"]["order"], order_id);
    assert_eq!(decoded["schema_ids"]["picklist"], pick_id);
    registry.shutdown().await.expect("shutdown");
}

/// The checked-in bytes of Python's serializer decode without Python. The registry is fresh and
/// gets the order schema first, then the pick list schema, as when the fixtures were made (ids
/// 1 and 2). Should it assign other ids, the fixture header is rewritten to the assigned id
/// before decoding: the body, not the id, is what the fixture pins.
#[tokio::test(flavor = "multi_thread")]
async fn checked_in_python_fixtures_decode_with_the_codec() {
    let fixtures = fixtures_dir();
    let expected = read_json(&fixtures.join("expected.json"));
    let mut order_bytes = read_hex(&fixtures.join("order.hex"));
    let mut pick_bytes = read_hex(&fixtures.join("picklist.hex"));
    assert_eq!(expected["schema_ids"]["order"], header_id(&order_bytes));
    assert_eq!(expected["schema_ids"]["picklist"], header_id(&pick_bytes));

    let registry = registry().await;
    let client = RegistryClient::new(&RegistryConfig::new(registry.url())).expect("client");
    // The order bytes are an old record: Python wrote them with version 1 of the order schema
    // (kept as a fixture), so that is the writer schema registered for them; today's codec
    // resolves them into version 2, the fields version 1 did not have read as null.
    let order_id = client
        .register(
            &format!("{}-value", Order::TOPIC),
            include_str!("fixtures/orders-v1/schema.avsc"),
        )
        .await
        .expect("register order schema version 1");
    // The pick-list bytes are an old record too: version 1 of the pick-list schema (kept as a
    // fixture), resolved into version 2 with the delivery window null.
    let pick_id = client
        .register(
            &format!("{}-value", PickList::TOPIC),
            include_str!("fixtures/picklist-v1/schema.avsc"),
        )
        .await
        .expect("register pick list schema version 1");
    for (bytes, id) in [(&mut order_bytes, order_id), (&mut pick_bytes, pick_id)] {
        if header_id(bytes) != id {
            bytes[1..5].copy_from_slice(&id.to_be_bytes());
        }
    }
    let mut expected = expected;
    expected["order"]["substitution"] = Value::Null;
    expected["order"]["delivery_window"] = Value::Null;
    expected["picklist"]["delivery_window"] = Value::Null;
    decode_and_compare_with(
        &codec(&registry.url()),
        &expected,
        &order_bytes,
        &pick_bytes,
    )
    .await;
    registry.shutdown().await.expect("shutdown");
}
