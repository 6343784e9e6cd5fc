//! apache-avro keeps two process-wide switches whose first setting wins: serde's
//! human-readable mode (`set_serde_human_readable`) and the allocation bound
//! (`max_allocation_bytes`). The codec must not depend on either: here another part of the
//! process sets both first, to the values that would break a codec going through apache-avro's
//! serde support (UUIDs as 16 raw bytes; a tiny bound), and every codec path still works.
//! Its own test binary, with one test, so that it really is the first to set them.

mod common;

use avro_events::{Codec, CodecOptions, registry::RegistryConfig};
use common::OrderV2;
use grocery_events::{Order, OrderLine};
use local_stack::registry::SchemaRegistry;
use uuid::Uuid;

fn order() -> Order {
    Order {
        order_id: Uuid::parse_str("5f0c8a52-7d4e-4b1a-9c31-1d2e3f4a5b6c").unwrap(),
        customer_id: Uuid::parse_str("0b6f4d1e-2a3c-4e5f-8a9b-0c1d2e3f4a5b").unwrap(),
        items: (0..3)
            .map(|i| OrderLine {
                sku: format!("PRD-{i:05}"),
                name: format!("Item {i}"),
                quantity: i + 1,
                unit_price_cents: 199,
            })
            .collect(),
        order_total_cents: 597,
        currency: "USD".into(),
        order_time: 1_763_769_600_000,
        substitution: None,
        delivery_window: None,
    }
}

#[tokio::test]
async fn the_codec_ignores_apache_avros_process_wide_switches() {
    // Someone else in the process got there first.
    assert!(
        !apache_avro::util::set_serde_human_readable(false),
        "this test is the first to set the switch"
    );
    assert_eq!(apache_avro::util::max_allocation_bytes(64), 64);

    let registry = SchemaRegistry::start(([127, 0, 0, 1], 0).into(), None)
        .await
        .expect("local registry starts");
    let config = RegistryConfig::new(registry.url());
    let codec = Codec::new(&config, CodecOptions::default()).unwrap();

    // Same schema: UUIDs are written as 36-character strings, as the schema says.
    let bytes = codec.encode(&order()).await.unwrap();
    let text = order().order_id.to_string();
    assert!(
        bytes.windows(text.len()).any(|w| w == text.as_bytes()),
        "the uuid is on the wire as text"
    );
    assert_eq!(codec.decode::<Order>(&bytes).await.unwrap(), order());

    // Resolving decodes, both ways, well over 64 bytes each.
    let v2 = codec.decode::<OrderV2>(&bytes).await.unwrap();
    assert_eq!(v2.channel, "web");
    assert_eq!(v2.order_id, order().order_id);
    let v2_bytes = codec
        .encode(&OrderV2 {
            channel: "app".into(),
            ..v2
        })
        .await
        .unwrap();
    assert!(v2_bytes.len() > 64);
    assert_eq!(codec.decode::<Order>(&v2_bytes).await.unwrap(), order());

    // Writing with the latest version (v2) resolves the v1 value into it.
    let latest = Codec::new(
        &config,
        CodecOptions::default()
            .with_use_latest_version(true)
            .with_auto_register(false),
    )
    .unwrap();
    let written = latest.encode(&order()).await.unwrap();
    assert_eq!(written[1..5], v2_bytes[1..5], "written with v2's id");
    let read = codec.decode::<OrderV2>(&written).await.unwrap();
    assert_eq!(read.channel, "web");
    assert_eq!(read.customer_id, order().customer_id);

    // The codec's own bound is its own: a codec with a small one refuses a resolving decode
    // that would exceed it, while the default codec above was unaffected.
    let small = Codec::new(
        &config,
        CodecOptions::default().with_max_allocation_bytes(32),
    )
    .unwrap();
    let error = small.decode::<OrderV2>(&bytes).await.unwrap_err();
    assert!(error.is_poison(), "{error:?}");
    assert!(error.to_string().contains("exceed 32 bytes"), "{error}");
}
