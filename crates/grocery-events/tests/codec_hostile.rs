//! Hostile writer schemas and records: a registered writer schema whose array items encode to
//! zero bytes, or a ~10-byte record claiming millions of array items, makes the decode fail
//! quickly with a poison error, and the peak heap stays small (measured with a counting
//! allocator). Its own test binary: apache-avro's allocation bound is process-wide.

mod counting;

use avro_events::{
    Codec, CodecOptions,
    registry::{RegistryClient, RegistryConfig},
};
use counting::peak_growth_async;

const DEFAULT_MAX_ALLOCATION_BYTES: usize = CodecOptions::DEFAULT_MAX_ALLOCATION_BYTES;
use grocery_events::{Error, Order};
use local_stack::registry::SchemaRegistry;

fn zigzag_varint(n: i64) -> Vec<u8> {
    let mut z = ((n << 1) ^ (n >> 63)) as u64;
    let mut out = Vec::new();
    loop {
        let byte = (z & 0x7f) as u8;
        z >>= 7;
        if z == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

fn framed(id: u32, body: &[u8]) -> Vec<u8> {
    let mut payload = vec![0];
    payload.extend_from_slice(&id.to_be_bytes());
    payload.extend_from_slice(body);
    payload
}

fn record_with_array(items: &str) -> String {
    format!(
        r#"{{"type":"record","name":"Order","namespace":"io.groceryevents","fields":[{{"name":"items","type":{{"type":"array","items":{items}}}}}]}}"#
    )
}

#[tokio::test(flavor = "current_thread")]
async fn hostile_array_counts_fail_fast_with_small_peak_memory() {
    let registry = SchemaRegistry::start(([127, 0, 0, 1], 0).into(), None)
        .await
        .expect("local registry starts");
    let config = RegistryConfig::new(registry.url());
    let codec = Codec::new(&config, CodecOptions::default()).unwrap();
    let admin = RegistryClient::new(&config).unwrap();
    let value_size = std::mem::size_of::<apache_avro::types::Value>();
    // Under apache-avro's 512 MiB default, far over the codec's 16 MiB bound.
    let claimed = (400 * 1024 * 1024 / value_size) as i64;
    assert!(claimed as usize * value_size > 4 * DEFAULT_MAX_ALLOCATION_BYTES);

    // Zero-byte items: refused as soon as the writer schema is fetched.
    for (n, items) in [
        r#""null""#,
        r#"{"type":"record","name":"Nothing","fields":[]}"#,
        r#"{"type":"record","name":"Nothing2","fields":[{"name":"n","type":"null"}]}"#,
    ]
    .into_iter()
    .enumerate()
    {
        let id = admin
            .register(
                &format!("hostile-zero-{n}-value"),
                &record_with_array(items),
            )
            .await
            .unwrap();
        let mut body = zigzag_varint(claimed);
        body.push(0);
        let payload = framed(id, &body);
        assert!(payload.len() <= 11, "{} bytes", payload.len());
        let (result, peak) = peak_growth_async(codec.decode::<Order>(&payload)).await;
        let err = result.unwrap_err();
        println!("zero-size items {items}: {err}; peak heap growth {peak} bytes");
        assert!(matches!(err, Error::UnusableSchema { .. }), "{err:?}");
        assert!(err.is_schema_unavailable() && !err.is_poison());
        assert!(err.to_string().contains("zero bytes"), "{err}");
        assert!(peak < 4 * 1024 * 1024, "peak heap growth {peak} bytes");
    }

    // One-byte items with a huge block count: the bound refuses the reservation.
    let id = admin
        .register("hostile-ints-value", &record_with_array(r#""int""#))
        .await
        .unwrap();
    let payload = framed(id, &zigzag_varint(claimed));
    let (result, peak) = peak_growth_async(codec.decode::<Order>(&payload)).await;
    let err = result.unwrap_err();
    println!(
        "{} byte record claiming {claimed} ints: {err}; peak heap growth {peak} bytes",
        payload.len()
    );
    assert!(matches!(err, Error::Decode { .. }), "{err:?}");
    assert!(err.is_poison());
    assert!(
        peak < 2 * DEFAULT_MAX_ALLOCATION_BYTES,
        "peak heap growth {peak} bytes"
    );

    // A normal order still decodes through the same path (the bound is far above it).
    let order = Order {
        order_id: uuid::Uuid::nil(),
        customer_id: uuid::Uuid::nil(),
        items: Vec::new(),
        order_total_cents: 0,
        currency: "USD".into(),
        order_time: 0,
        substitution: None,
        delivery_window: None,
    };
    let good = codec.encode(&order).await.unwrap();
    assert_eq!(codec.decode::<Order>(&good).await.unwrap().currency, "USD");
}
