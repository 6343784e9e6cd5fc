//! Schema references and schema ids in record headers against Confluent's own Python
//! serializer and deserializer (confluent-kafka, pinned in `scripts/interop/requirements.txt`),
//! both ways, through the local Schema Registry: `scripts/interop/references_headers.py`.
//!
//! The types are made up (a `shop.Order` using `shop.Product` and `shop.Unit` from schemas
//! registered under their own subjects, a record key `shop.OrderKey`, and a key
//! `shop.ShelfKey` whose schema references `shop.Unit`), written by hand as a user of the
//! library would.

use std::path::Path;

use avro_events::dlq::headers as dlq_headers;
use avro_events::registry::{RegistryClient, RegistryConfig};
use avro_events::wire::{self, SchemaId, SchemaIdPlacement};
use avro_events::{Client, Codec, CodecOptions, Config, Error, Event, EventReference};
use local_stack::Stack;
use local_stack::python::{interop_venv, workspace_dir};
use local_stack::registry::{RegistryHandle, SchemaRegistry};
use rdkafka::{
    ClientConfig, Message as _,
    consumer::{BaseConsumer, Consumer as _},
    message::Headers as _,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

const SCRIPT: &str = "scripts/interop/references_headers.py";
const TOPIC: &str = "shop.orders";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
enum Unit {
    Each,
    Kg,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Product {
    sku: String,
    unit: Unit,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Order {
    id: String,
    main: Product,
    extra: Option<Product>,
    lines: Vec<Product>,
    unit: Unit,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct OrderKey {
    id: String,
}

const UNIT: EventReference = EventReference {
    name: "shop.Unit",
    subject: "shop.Unit",
    version: 1,
    schema: r#"{"type": "enum", "name": "Unit", "namespace": "shop", "symbols": ["EACH", "KG"]}"#,
    references: &[],
};

const PRODUCT: EventReference = EventReference {
    name: "shop.Product",
    subject: "shop.Product",
    version: 1,
    schema: r#"{"type": "record", "name": "Product", "namespace": "shop", "fields": [
        {"name": "sku", "type": "string"}, {"name": "unit", "type": "Unit"}]}"#,
    references: &[UNIT],
};

impl Event for Order {
    const TOPIC: &'static str = TOPIC;
    // The same text Python registers (json.dumps of the same object): one schema, one id.
    const SCHEMA: &'static str = r#"{"type": "record", "name": "Order", "namespace": "shop", "fields": [{"name": "id", "type": "string"}, {"name": "main", "type": "Product"}, {"name": "extra", "type": ["null", "shop.Product"], "default": null}, {"name": "lines", "type": {"type": "array", "items": "Product"}}, {"name": "unit", "type": "Unit"}]}"#;
    const FULL_NAME: &'static str = "shop.Order";
    const KEY_SCHEMA: Option<&'static str> = Some(
        r#"{"type": "record", "name": "OrderKey", "namespace": "shop", "fields": [{"name": "id", "type": "string"}]}"#,
    );
    const REFERENCES: &'static [EventReference] = &[PRODUCT, UNIT];

    /// One key for every order of these tests (one partition, so records stay in order; and
    /// long enough for Python's deserializer, which wants at least 6 bytes).
    fn key(&self) -> String {
        "order-0001".into()
    }

    fn serialize_key<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        OrderKey { id: self.key() }.serialize(serializer)
    }
}

/// A newer version of the order: a field added with a default, the referenced types as they
/// are. Reading Python's records resolves the writer schema (with its references) into it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct OrderWithNote {
    id: String,
    main: Product,
    extra: Option<Product>,
    lines: Vec<Product>,
    unit: Unit,
    note: String,
}

impl Event for OrderWithNote {
    const TOPIC: &'static str = TOPIC;
    const SCHEMA: &'static str = r#"{"type": "record", "name": "Order", "namespace": "shop", "fields": [{"name": "id", "type": "string"}, {"name": "main", "type": "Product"}, {"name": "extra", "type": ["null", "shop.Product"], "default": null}, {"name": "lines", "type": {"type": "array", "items": "Product"}}, {"name": "unit", "type": "Unit"}, {"name": "note", "type": "string", "default": "none"}]}"#;
    const FULL_NAME: &'static str = "shop.Order";
    const REFERENCES: &'static [EventReference] = &[PRODUCT, UNIT];

    fn key(&self) -> String {
        self.id.clone()
    }
}

async fn registry() -> RegistryHandle {
    SchemaRegistry::start(([127, 0, 0, 1], 0).into(), None)
        .await
        .expect("local registry starts")
}

async fn python(mode: &str, url: &str, dir: &Path) -> String {
    python_with(mode, url, dir, &[]).await
}

async fn python_with(mode: &str, url: &str, dir: &Path, extra: &[&str]) -> String {
    let python = tokio::task::spawn_blocking(interop_venv)
        .await
        .expect("venv task")
        .expect("the interop virtual environment (python3 -m venv + pip install)");
    let output = tokio::process::Command::new(&python)
        .arg(workspace_dir().join(SCRIPT))
        .args([mode, url])
        .arg(dir)
        .args(extra)
        .output()
        .await
        .expect("run references_headers.py");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "references_headers.py {mode} failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(stdout.contains("references_headers: OK"), "{stdout}");
    stdout
}

fn read_hex(path: &Path) -> Vec<u8> {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let text = text.trim();
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex digit"))
        .collect()
}

fn write_hex(path: &Path, bytes: &[u8]) {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    std::fs::write(path, hex + "\n").expect("write hex");
}

fn optional_hex(path: &Path) -> Option<Vec<u8>> {
    path.exists().then(|| read_hex(path))
}

fn codec(url: &str, placement: SchemaIdPlacement) -> Codec {
    Codec::new(
        &RegistryConfig::new(url),
        CodecOptions::default().with_schema_id_serializers(placement, placement),
    )
    .expect("codec")
}

fn sample() -> Order {
    Order {
        id: "order-0001".into(),
        main: Product {
            sku: "apple".into(),
            unit: Unit::Kg,
        },
        extra: Some(Product {
            sku: "pear".into(),
            unit: Unit::Each,
        }),
        lines: vec![
            Product {
                sku: "fig".into(),
                unit: Unit::Each,
            },
            Product {
                sku: "crème fraîche 🥛".into(),
                unit: Unit::Kg,
            },
        ],
        unit: Unit::Each,
    }
}

fn zero() -> Order {
    Order {
        id: String::new(),
        main: Product {
            sku: String::new(),
            unit: Unit::Each,
        },
        extra: None,
        lines: vec![],
        unit: Unit::Kg,
    }
}

/// Python registers the references and writes: the codec reads every record, by id from the
/// prefix and by GUID from the header (values and keys), including a bare body that starts
/// with 0x00.
#[tokio::test(flavor = "multi_thread")]
async fn python_records_with_references_and_header_guids_decode_with_the_codec() {
    let registry = registry().await;
    let dir = tempfile::Builder::new()
        .prefix("py-to-rust")
        .tempdir()
        .expect("temp dir");
    python("write", &registry.url(), dir.path()).await;
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("expected.json")).unwrap())
            .unwrap();
    let codec = codec(&registry.url(), SchemaIdPlacement::Prefix);

    for name in ["prefix_value", "header_value", "zero_value"] {
        let payload = read_hex(&dir.path().join(format!("{name}.hex")));
        let header = optional_hex(&dir.path().join(format!("{name}.header.hex")));
        let order: Order = codec
            .decode_record(&payload, header.as_deref())
            .await
            .unwrap_or_else(|e| panic!("decode Python's {name}: {e}"));
        assert_eq!(
            serde_json::to_value(&order).unwrap(),
            expected[name],
            "{name}"
        );
    }
    assert_eq!(
        codec
            .decode_record::<Order>(&read_hex(&dir.path().join("prefix_value.hex")), None)
            .await
            .unwrap(),
        sample()
    );
    // Resolved into a newer reader: the added field takes its default.
    for name in ["prefix_value", "header_value"] {
        let newer: OrderWithNote = codec
            .decode_record(
                &read_hex(&dir.path().join(format!("{name}.hex"))),
                optional_hex(&dir.path().join(format!("{name}.header.hex"))).as_deref(),
            )
            .await
            .unwrap_or_else(|e| panic!("{name} into the newer order: {e}"));
        assert_eq!(
            (newer.id.as_str(), newer.note.as_str()),
            ("order-0001", "none")
        );
        assert_eq!(newer.lines, sample().lines);
    }
    // The bare body starting with 0x00, read without its header, is misread as a prefix: the
    // header is what tells them apart.
    let zero_body = read_hex(&dir.path().join("zero_value.hex"));
    assert_eq!(zero_body[0], 0);
    assert!(codec.decode::<Order>(&zero_body).await.is_err());

    let key: OrderKey = codec
        .decode_record_key::<Order, OrderKey>(
            &read_hex(&dir.path().join("header_key.hex")),
            Some(&read_hex(&dir.path().join("header_key.header.hex"))),
        )
        .await
        .expect("decode Python's key");
    assert_eq!(serde_json::to_value(&key).unwrap(), expected["header_key"]);

    // The references are registered where Python put them, and the order refers to them.
    let client = RegistryClient::new(&RegistryConfig::new(registry.url())).unwrap();
    let order = client
        .lookup_with_references(
            &format!("{TOPIC}-value"),
            Order::SCHEMA,
            &Order::REFERENCES
                .iter()
                .map(EventReference::to_registry)
                .collect::<Vec<_>>(),
            false,
        )
        .await
        .expect("Python registered the order with its references");
    assert_eq!(
        client.referenced_by("shop.Product", 1).await.unwrap(),
        [order.id]
    );
    let header = read_hex(&dir.path().join("header_value.header.hex"));
    assert_eq!(
        wire::parse_header(&header).unwrap(),
        SchemaId::Guid(order.guid.expect("a GUID"))
    );
    // Writing with the latest version (fetched with its references) or with the schema looked
    // up with its references (no registration) gives Python's id.
    for options in [
        CodecOptions::default().with_use_latest_version(true),
        CodecOptions::default().with_auto_register(false),
    ] {
        let codec = Codec::new(&RegistryConfig::new(registry.url()), options).unwrap();
        let bytes = codec.encode_for(TOPIC, &sample()).await.unwrap();
        assert_eq!(wire::split(&bytes).unwrap().0, order.id, "{options:?}");
        assert_eq!(
            bytes,
            read_hex(&dir.path().join("prefix_value.hex")),
            "{options:?}"
        );
    }
    registry.shutdown().await.expect("shutdown");
}

/// The codec registers the references first (as Confluent's Maven plugin does) and writes, with
/// the id in the prefix and with the GUID in the header (values and keys): Python reads every
/// record back.
#[tokio::test(flavor = "multi_thread")]
async fn codec_records_with_references_and_header_guids_decode_with_python() {
    let registry = registry().await;
    let dir = tempfile::Builder::new()
        .prefix("rust-to-py")
        .tempdir()
        .expect("temp dir");
    let prefixed = codec(&registry.url(), SchemaIdPlacement::Prefix);
    let by_header = codec(&registry.url(), SchemaIdPlacement::Header);

    let framed = prefixed.encode_record(TOPIC, &sample()).await.unwrap();
    assert!(framed.schema_id_header.is_none());
    write_hex(&dir.path().join("prefix_value.hex"), &framed.payload);
    for (name, order) in [("header_value", sample()), ("zero_value", zero())] {
        let framed = by_header.encode_record(TOPIC, &order).await.unwrap();
        let (header, value) = framed.schema_id_header.expect("a schema id header");
        assert_eq!(header, wire::VALUE_SCHEMA_ID_HEADER);
        write_hex(&dir.path().join(format!("{name}.hex")), &framed.payload);
        write_hex(&dir.path().join(format!("{name}.header.hex")), &value);
        // And the codec reads its own.
        let back: Order = by_header
            .decode_record(&framed.payload, Some(&value))
            .await
            .unwrap();
        assert_eq!(back, order);
    }
    let key = by_header.encode_record_key(TOPIC, &sample()).await.unwrap();
    let (header, value) = key.schema_id_header.expect("a key schema id header");
    assert_eq!(header, wire::KEY_SCHEMA_ID_HEADER);
    write_hex(&dir.path().join("header_key.hex"), &key.payload);
    write_hex(&dir.path().join("header_key.header.hex"), &value);
    let expected = serde_json::json!({
        "prefix_value": sample(),
        "header_value": sample(),
        "zero_value": zero(),
        "header_key": OrderKey { id: "order-0001".into() },
    });
    std::fs::write(dir.path().join("expected.json"), expected.to_string()).unwrap();

    let stdout = python("read", &registry.url(), dir.path()).await;
    println!("{stdout}");

    // The references went first, under their own subjects, at the versions declared.
    let client = RegistryClient::new(&RegistryConfig::new(registry.url())).unwrap();
    assert_eq!(client.versions("shop.Unit").await.unwrap(), [1]);
    assert_eq!(client.versions("shop.Product").await.unwrap(), [1]);
    let by_id = client
        .schema_by_id(wire::split(&framed.payload).unwrap().0)
        .await
        .unwrap();
    assert_eq!(
        by_id.references,
        Order::REFERENCES
            .iter()
            .map(EventReference::to_registry)
            .collect::<Vec<_>>()
    );
    registry.shutdown().await.expect("shutdown");
}

/// A GUID the registry does not know is a typed error, not poison; a malformed header is
/// poison (its record goes to the dead-letter topic).
#[tokio::test(flavor = "multi_thread")]
async fn unknown_guids_and_bad_headers_are_typed_errors() {
    let registry = registry().await;
    let codec = codec(&registry.url(), SchemaIdPlacement::Prefix);
    let guid = uuid::Uuid::from_u128(7);
    let err = codec
        .decode_record::<Order>(b"\x02", Some(&wire::header_value(SchemaId::Guid(guid))))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::UnknownSchemaGuid { guid: g, .. } if g == guid),
        "{err:?}"
    );
    assert!(err.is_schema_unavailable() && !err.is_poison(), "{err:?}");
    let err = codec
        .decode_record::<Order>(b"\x02", Some(&[1, 2, 3]))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::BadSchemaIdHeader { .. }) && err.is_poison(),
        "{err:?}"
    );
    println!("{err}");
    registry.shutdown().await.expect("shutdown");
}

const WAIT: std::time::Duration = std::time::Duration::from_secs(30);

fn stack_config(stack: &Stack) -> Config {
    Config::from_properties_str(&stack.client_properties()).expect("client.properties")
}

/// Through Kafka: Confluent's Python producer writes records with references, with the schema
/// GUID in the value and key headers and with prefixes; the library's consumer reads them (keys
/// from their headers too) and dead-letters the record whose header is malformed.
#[tokio::test(flavor = "multi_thread")]
async fn python_producer_records_reach_the_consumer() {
    let stack = Stack::start().await.unwrap();
    let topic = stack.unique_topic("refs-from-python", 1).unwrap();
    let dir = tempfile::Builder::new()
        .prefix("py-produce")
        .tempdir()
        .expect("temp dir");
    python_with(
        "produce",
        &stack.registry_url(),
        dir.path(),
        &[stack.bootstrap_servers(), &topic],
    )
    .await;
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("expected.json")).unwrap())
            .unwrap();
    let dlq = format!("{topic}.dlq");
    stack.kafka().create_topic(&dlq, 1).unwrap();
    let client = Client::from_config(stack_config(&stack)).unwrap();
    let consumer = client
        .consumer_subscribed_to::<Order>(
            grocery_events::ConsumerOptions::new(format!("refs-{}", uuid::Uuid::new_v4())),
            &[&topic],
        )
        .await
        .unwrap();
    for (i, want) in expected.as_array().unwrap().iter().enumerate() {
        let received = tokio::time::timeout(WAIT, consumer.recv())
            .await
            .unwrap_or_else(|_| panic!("record {i} within {WAIT:?}"))
            .unwrap_or_else(|e| panic!("record {i}: {e}"));
        assert_eq!(&serde_json::to_value(&received.event).unwrap(), want, "{i}");
        let key: OrderKey = consumer
            .decode_key_with_headers(received.raw_key.as_deref().unwrap(), &received.headers)
            .await
            .unwrap_or_else(|e| panic!("key {i}: {e}"));
        assert_eq!(key.id, "order-0001");
        consumer.ack(&received.meta).unwrap();
    }
    // The record between the third and the last has a malformed header: dead-lettered, with
    // the reason, its bytes and headers as they were.
    assert_eq!(consumer.dead_lettered(), 1);
    let reader: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", stack.bootstrap_servers())
        .set("group.id", format!("dlq-reader-{}", uuid::Uuid::new_v4()))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    reader.subscribe(&[&dlq]).unwrap();
    // Read on a blocking thread: poll waits for the record (at most 30 s).
    let headers: Vec<(String, Vec<u8>)> = tokio::task::spawn_blocking(move || {
        let deadline = std::time::Instant::now() + WAIT;
        let dead = loop {
            if let Some(message) = reader.poll(std::time::Duration::from_millis(200)) {
                break message.unwrap();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no dead letter within {WAIT:?}"
            );
        };
        dead.headers()
            .map(|h| {
                h.iter()
                    .map(|h| (h.key.to_owned(), h.value.unwrap_or_default().to_vec()))
                    .collect()
            })
            .unwrap_or_default()
    })
    .await
    .unwrap();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no header {name}: {headers:?}"))
    };
    assert_eq!(header(dlq_headers::ERROR_KIND), b"bad_schema_id_header");
    let message = String::from_utf8(header(dlq_headers::ERROR_MESSAGE)).unwrap();
    assert!(message.contains("magic byte 0x07"), "{message}");
    assert_eq!(header(wire::VALUE_SCHEMA_ID_HEADER)[0], 7);
    consumer.close().await.unwrap();
    stack.shutdown().await;
}

/// Through Kafka the other way: the library's producer, with
/// `value.schema.id.serializer` / `key.schema.id.serializer` set to Confluent's
/// `HeaderSchemaIdSerializer`, registers the references first and writes GUID headers;
/// Confluent's Python consumer and deserializer read every value and key.
#[tokio::test(flavor = "multi_thread")]
async fn producer_records_with_header_guids_reach_the_python_consumer() {
    let stack = Stack::start().await.unwrap();
    let topic = stack.unique_topic("refs-to-python", 1).unwrap();
    let header = "io.confluent.kafka.serializers.schema.id.HeaderSchemaIdSerializer";
    let config = stack_config(&stack)
        .set("value.schema.id.serializer", header)
        .set("key.schema.id.serializer", header);
    let client = Client::from_config(config).unwrap();
    let producer = client.producer().await.unwrap();
    for order in [sample(), zero()] {
        producer.send_to(&topic, &order).await.unwrap();
    }
    let dir = tempfile::Builder::new()
        .prefix("py-consume")
        .tempdir()
        .expect("temp dir");
    std::fs::write(
        dir.path().join("expected.json"),
        serde_json::json!([sample(), zero()]).to_string(),
    )
    .unwrap();
    let stdout = python_with(
        "consume",
        &stack.registry_url(),
        dir.path(),
        &[stack.bootstrap_servers(), &topic],
    )
    .await;
    println!("{stdout}");
    stack.shutdown().await;
}

/// A key whose schema uses a type registered under another subject (`shop.ShelfKey`'s `unit`
/// is `shop.Unit`): declared with [`Event::KEY_REFERENCES`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct ShelfKey {
    unit: Unit,
    id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Shelved {
    sku: String,
    shelf: String,
}

impl Event for Shelved {
    const TOPIC: &'static str = "shop.shelved";
    const SCHEMA: &'static str = r#"{"type": "record", "name": "Shelved", "namespace": "shop", "fields": [{"name": "sku", "type": "string"}, {"name": "shelf", "type": "string"}]}"#;
    const FULL_NAME: &'static str = "shop.Shelved";
    // The same text Python registers under shop.shelved-key.
    const KEY_SCHEMA: Option<&'static str> = Some(
        r#"{"type": "record", "name": "ShelfKey", "namespace": "shop", "fields": [{"name": "unit", "type": "Unit"}, {"name": "id", "type": "string"}]}"#,
    );
    const KEY_REFERENCES: &'static [EventReference] = &[UNIT];

    fn key(&self) -> String {
        self.shelf.clone()
    }

    fn serialize_key<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        ShelfKey {
            unit: Unit::Kg,
            id: self.shelf.clone(),
        }
        .serialize(serializer)
    }
}

/// Key schemas with references, both ways: Python's key (written with the registered key
/// schema, which references `shop.Unit`) decodes; the codec's key, its key schema registered
/// with the reference, is read by Python's deserializer; on an empty registry the codec
/// registers the referenced schema first, then the key schema with its reference.
#[tokio::test(flavor = "multi_thread")]
async fn a_key_schema_with_references_both_ways() {
    let first = registry().await;
    let url = first.url();
    let dir = tempfile::Builder::new()
        .prefix("key-refs")
        .tempdir()
        .expect("temp dir");
    python("key-refs-write", &url, dir.path()).await;
    let codec = Codec::new(&RegistryConfig::new(&url), CodecOptions::default()).unwrap();
    let expected = ShelfKey {
        unit: Unit::Kg,
        id: "shelf-0001".into(),
    };
    let key: ShelfKey = codec
        .decode_key::<Shelved, ShelfKey>(&read_hex(&dir.path().join("key_refs.hex")))
        .await
        .expect("decode Python's key");
    assert_eq!(key, expected);

    let shelved = Shelved {
        sku: "apple".into(),
        shelf: "shelf-0001".into(),
    };
    let framed = codec
        .encode_record_key(Shelved::TOPIC, &shelved)
        .await
        .expect("encode the key");
    write_hex(&dir.path().join("rust_key_refs.hex"), &framed.payload);
    let out = python("key-refs-read", &url, dir.path()).await;
    assert!(
        out.contains(r#"{"unit": "KG", "id": "shelf-0001"}"#),
        "{out}"
    );

    let fresh = registry().await;
    let codec = Codec::new(&RegistryConfig::new(fresh.url()), CodecOptions::default()).unwrap();
    let framed = codec
        .encode_record_key(Shelved::TOPIC, &shelved)
        .await
        .expect("encode the key, registering");
    let key_subject = codec.registry().latest("shop.shelved-key").await.unwrap();
    let references: Vec<_> = key_subject
        .references
        .iter()
        .map(|r| (r.name.as_str(), r.subject.as_str(), r.version))
        .collect();
    assert_eq!(references, [("shop.Unit", "shop.Unit", 1)]);
    assert_eq!(
        codec
            .decode_key::<Shelved, ShelfKey>(&framed.payload)
            .await
            .unwrap(),
        expected
    );
}
