//! Codec benchmarks: the typed path (`Codec::encode`/`decode`, serde_avro_fast straight
//! to and from the Rust type) against apache-avro's generic `Value` path for the same record,
//! decoding with schema resolution, and the registry cache.
//!
//! ```text
//! cargo bench -p grocery-events --bench codec -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! A local Schema Registry runs in-process for the whole run; every codec is warmed before it
//! is measured, so the measured loops never touch the registry (except `registry_cache/miss`,
//! which measures exactly that).
//!
//! Each group benches the same record on several paths so criterion prints them together:
//!
//! - `typed_codec`: the public API, `Codec::encode`/`decode`. They are `async`; criterion's
//!   tokio support drives the loop inside one `block_on` per sample, so the per-call async
//!   cost is one poll of an already-ready future (the warm codec never waits).
//! - `serde_avro_fast`: the same serialization without the codec (no schema-id lookup, no
//!   framing), to show what the codec's own bookkeeping costs.
//! - `apache_avro_value`: what a user of apache-avro does to go between a typed value and
//!   bytes through `Value`: `to_value` + `resolve` + `GenericDatumWriter::write_value`, and
//!   `GenericDatumReader::read_value` + `from_value`. The writer and reader are built once,
//!   outside the loop (the cheapest way to use them).
//! - `apache_avro_serde`: apache-avro 0.22's schema-aware serde path (`write_ser` /
//!   `read_deser`), which skips `Value`; for reference.
//! - `decode_resolving/*`: a writer schema other than the reader's, both ways (v2 read as v1
//!   drops a field; v1 read as v2 fills a default): the codec's cached resolution plan against
//!   apache-avro's reader with a reader schema, built once and reused.

#[path = "../tests/common/mod.rs"]
mod common;

use std::{hint::black_box, sync::Arc};

use apache_avro::{
    Schema, reader::datum::GenericDatumReader, types::Value, writer::datum::GenericDatumWriter,
};
use common::OrderV2;
use criterion::{BatchSize, Criterion};
use grocery_events::{
    Codec, CodecOptions, Event, Order, OrderLine, PickLine, PickList, StockStatus,
    registry::RegistryConfig,
};
use local_stack::registry::{RegistryHandle, SchemaRegistry};
use tokio::runtime::Runtime;
use uuid::Uuid;

/// Lines per record.
const LINES: i32 = 10;

fn order() -> Order {
    Order {
        order_id: Uuid::parse_str("5f0c8a52-7d4e-4b1a-9c31-1d2e3f4a5b6c").unwrap(),
        customer_id: Uuid::parse_str("0b6f4d1e-2a3c-4e5f-8a9b-0c1d2e3f4a5b").unwrap(),
        items: (0..LINES)
            .map(|i| OrderLine {
                sku: format!("PRD-{i:05}"),
                name: format!("Item number {i}"),
                quantity: i % 4 + 1,
                unit_price_cents: 199 + i64::from(i) * 50,
            })
            .collect(),
        order_total_cents: 12_345,
        currency: "USD".into(),
        order_time: 1_763_769_600_000,
        substitution: None,
        delivery_window: None,
    }
}

fn pick_list() -> PickList {
    let statuses = [
        StockStatus::InStock,
        StockStatus::Short,
        StockStatus::OutOfStock,
        StockStatus::UnknownSku,
    ];
    PickList {
        picklist_id: Uuid::new_v5(&Uuid::NAMESPACE_OID, b"bench"),
        order_id: order().order_id,
        items_to_pick: (0..LINES)
            .map(|i| PickLine {
                sku: format!("PRD-{i:05}"),
                name: format!("Item number {i}"),
                quantity: i % 4 + 1,
                quantity_to_pick: i % 4,
                aisle: format!("A{:02} Dairy", i + 1),
                walk_sequence: i + 1,
                stock_status: statuses[(i % 4) as usize],
                note: (i % 2 == 1).then(|| "only some in stock".to_owned()),
            })
            .collect(),
        assigned_picker: "Dana".into(),
        created_time: 1_763_769_601_000,
        delivery_window: None,
    }
}

fn order_v2() -> OrderV2 {
    let v1 = order();
    OrderV2 {
        order_id: v1.order_id,
        customer_id: v1.customer_id,
        items: v1.items,
        order_total_cents: v1.order_total_cents,
        currency: v1.currency,
        order_time: v1.order_time,
        channel: "app".into(),
    }
}

/// The in-process registry and a warm codec, shared by every bench.
struct Env {
    runtime: Runtime,
    _registry: RegistryHandle,
    url: String,
    codec: Arc<Codec>,
}

impl Env {
    fn start() -> Self {
        // One thread: the registry's server and the benches share it, which keeps the
        // measurements off the second core of a small machine.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let registry = runtime
            .block_on(SchemaRegistry::start(([127, 0, 0, 1], 0).into(), None))
            .expect("local registry starts");
        let url = registry.url();
        let codec = Arc::new(new_codec(&url));
        // `uuid` logical types are strings on the wire: apache-avro's serde paths measured
        // here must see human-readable UUIDs (the codec does not use them).
        apache_avro::util::set_serde_human_readable(true);
        Self {
            runtime,
            _registry: registry,
            url,
            codec,
        }
    }

    /// Encodes with the warm codec; the first call registers the schema.
    fn encode<E: Event>(&self, event: &E) -> Vec<u8> {
        self.runtime.block_on(self.codec.encode(event)).unwrap()
    }
}

fn new_codec(url: &str) -> Codec {
    Codec::new(&RegistryConfig::new(url), CodecOptions::default()).unwrap()
}

fn schema_of<E: Event>() -> Schema {
    Schema::parse_str(E::SCHEMA).unwrap()
}

/// The Confluent framing a payload starts with: magic byte and schema id.
fn header(payload: &[u8]) -> [u8; 5] {
    payload[..5].try_into().unwrap()
}

/// apache-avro's generic path, encode: typed value → `Value` → resolved → bytes.
fn value_encode<E: Event>(
    writer: &GenericDatumWriter<'_>,
    schema: &Schema,
    head: [u8; 5],
    event: &E,
) -> Vec<u8> {
    let value = apache_avro::to_value(event)
        .and_then(|v| v.resolve(schema))
        .unwrap();
    let mut buf = Vec::with_capacity(128);
    buf.extend_from_slice(&head);
    writer.write_value(&mut buf, value).unwrap();
    buf
}

/// apache-avro's generic path, decode: bytes → `Value` → typed value.
fn value_decode<E: Event>(reader: &GenericDatumReader<'_>, payload: &[u8]) -> E {
    let mut body = &payload[5..];
    let value: Value = reader.read_value(&mut body).unwrap();
    apache_avro::from_value::<E>(&value).unwrap()
}

/// Encode and decode of one record type on every path.
fn round_trip<E: Event + Clone + PartialEq + std::fmt::Debug>(
    c: &mut Criterion,
    env: &Env,
    label: &str,
    event: &E,
) {
    let payload = env.encode(event);
    let head = header(&payload);
    let schema = schema_of::<E>();
    let fast: serde_avro_fast::Schema = E::SCHEMA.parse().unwrap();
    let writer = GenericDatumWriter::builder(&schema).build().unwrap();
    let reader = GenericDatumReader::builder(&schema).build().unwrap();

    // Every path writes and reads the same bytes.
    assert_eq!(value_encode(&writer, &schema, head, event), payload);
    assert_eq!(&value_decode::<E>(&reader, &payload), event);
    let mut serde_bytes = head.to_vec();
    writer.write_ser(&mut serde_bytes, event).unwrap();
    assert_eq!(serde_bytes, payload);
    assert_eq!(&reader.read_deser::<E>(&mut &payload[5..]).unwrap(), event);
    assert_eq!(
        &env.runtime
            .block_on(env.codec.decode::<E>(&payload))
            .unwrap(),
        event
    );

    let mut group = c.benchmark_group(format!("encode/{label}"));
    group.bench_function("typed_codec", |b| {
        b.to_async(&env.runtime)
            .iter(|| env.codec.encode(black_box(event)));
    });
    group.bench_function("serde_avro_fast", |b| {
        b.iter(|| {
            let mut buf = Vec::with_capacity(128);
            buf.extend_from_slice(&head);
            let mut config = serde_avro_fast::ser::SerializerConfig::new(&fast);
            serde_avro_fast::to_datum(black_box(event), buf, &mut config).unwrap()
        });
    });
    group.bench_function("apache_avro_value", |b| {
        b.iter(|| value_encode(&writer, &schema, head, black_box(event)));
    });
    group.bench_function("apache_avro_serde", |b| {
        b.iter(|| {
            let mut buf = Vec::with_capacity(128);
            buf.extend_from_slice(&head);
            writer.write_ser(&mut buf, black_box(event)).unwrap();
            buf
        });
    });
    group.finish();

    let mut group = c.benchmark_group(format!("decode/{label}"));
    group.bench_function("typed_codec", |b| {
        b.to_async(&env.runtime)
            .iter(|| env.codec.decode::<E>(black_box(&payload)));
    });
    group.bench_function("serde_avro_fast", |b| {
        b.iter(|| serde_avro_fast::from_datum_slice::<E>(black_box(&payload[5..]), &fast).unwrap());
    });
    group.bench_function("apache_avro_value", |b| {
        b.iter(|| value_decode::<E>(&reader, black_box(&payload)));
    });
    group.bench_function("apache_avro_serde", |b| {
        b.iter(|| {
            reader
                .read_deser::<E>(&mut black_box(&payload[5..]))
                .unwrap()
        });
    });
    group.finish();
}

/// Resolving decodes, both ways between v1 and v2 of the order schema: the codec's cached
/// resolution plan (compiled once per writer id and reader type, then `serde_avro_fast`)
/// against apache-avro's `GenericDatumReader` with a reader schema, built once and reused
/// (`read_value` + `from_value`), side by side.
fn resolution(c: &mut Criterion, env: &Env) {
    let v1_payload = env.encode(&order());
    let v2_payload = env.encode(&order_v2());
    let v1 = schema_of::<Order>();
    let v2 = schema_of::<OrderV2>();
    let v2_as_v1 = GenericDatumReader::builder(&v2)
        .reader_schema(&v1)
        .build()
        .unwrap();
    let v1_as_v2 = GenericDatumReader::builder(&v1)
        .reader_schema(&v2)
        .build()
        .unwrap();
    let v1_read_as_v2 = OrderV2 {
        channel: "web".into(),
        ..order_v2()
    };
    // Both paths read the same values.
    assert_eq!(value_decode::<Order>(&v2_as_v1, &v2_payload), order());
    assert_eq!(
        env.runtime
            .block_on(env.codec.decode::<Order>(&v2_payload))
            .unwrap(),
        order()
    );
    assert_eq!(
        value_decode::<OrderV2>(&v1_as_v2, &v1_payload),
        v1_read_as_v2
    );
    assert_eq!(
        env.runtime
            .block_on(env.codec.decode::<OrderV2>(&v1_payload))
            .unwrap(),
        v1_read_as_v2
    );

    let mut group = c.benchmark_group("decode_resolving/Order_v2_as_v1");
    group.bench_function("typed_codec", |b| {
        b.to_async(&env.runtime)
            .iter(|| env.codec.decode::<Order>(black_box(&v2_payload)));
    });
    group.bench_function("apache_avro_value_reused_reader", |b| {
        b.iter(|| value_decode::<Order>(&v2_as_v1, black_box(&v2_payload)));
    });
    group.finish();

    let mut group = c.benchmark_group("decode_resolving/Order_v1_as_v2");
    group.bench_function("typed_codec", |b| {
        b.to_async(&env.runtime)
            .iter(|| env.codec.decode::<OrderV2>(black_box(&v1_payload)));
    });
    group.bench_function("apache_avro_value_reused_reader", |b| {
        b.iter(|| value_decode::<OrderV2>(&v1_as_v2, black_box(&v1_payload)));
    });
    group.finish();
}

/// Decoding an id the codec has seen against one it must fetch from the registry.
fn registry_cache(c: &mut Criterion, env: &Env) {
    let payload = env.encode(&order());
    let mut group = c.benchmark_group("registry_cache/decode_Order");
    group.bench_function("hit", |b| {
        b.to_async(&env.runtime)
            .iter(|| env.codec.decode::<Order>(black_box(&payload)));
    });
    group.bench_function("miss_first_time", |b| {
        // A new codec per iteration (built outside the timing): the decode fetches the
        // writer schema over HTTP (a new connection) and parses it.
        b.to_async(&env.runtime).iter_batched(
            || new_codec(&env.url),
            |cold| {
                let payload = &payload;
                async move {
                    cold.decode::<Order>(payload).await.unwrap();
                    cold
                }
            },
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

fn benches(c: &mut Criterion) {
    let env = Env::start();
    round_trip(c, &env, "Order_10_lines", &order());
    round_trip(c, &env, "PickList_10_lines", &pick_list());
    resolution(c, &env);
    registry_cache(c, &env);
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    benches(&mut criterion);
    criterion.final_summary();
}
