//! The codec against the local Schema Registry: round trips, schema evolution both ways,
//! malformed input, and the registry going away.

mod common;

use std::sync::Arc;

use avro_events::{Codec, CodecOptions, registry::RegistryConfig};
use common::OrderV2;
use grocery_events::{
    Error, Event, Order, OrderLine, PickLine, PickList, PickListDeliveryWindow, StockStatus,
};
use local_stack::registry::SchemaRegistry;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

fn order() -> Order {
    Order {
        order_id: Uuid::parse_str("5f0c8a52-7d4e-4b1a-9c31-1d2e3f4a5b6c").unwrap(),
        customer_id: Uuid::parse_str("0b6f4d1e-2a3c-4e5f-8a9b-0c1d2e3f4a5b").unwrap(),
        items: (0..10)
            .map(|i| OrderLine {
                sku: format!("PRD-{i:05}"),
                name: format!("Item {i}"),
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
    PickList {
        picklist_id: Uuid::new_v5(&Uuid::NAMESPACE_OID, b"x"),
        order_id: order().order_id,
        items_to_pick: vec![PickLine {
            sku: "PRD-00001".into(),
            name: "Whole Milk 1 gal".into(),
            quantity: 2,
            quantity_to_pick: 1,
            aisle: "A12 Dairy".into(),
            walk_sequence: 1,
            stock_status: StockStatus::Short,
            note: Some("only 1 in stock".into()),
        }],
        assigned_picker: "Dana".into(),
        created_time: 1_763_769_601_000,
        delivery_window: None,
    }
}

async fn registry() -> local_stack::registry::RegistryHandle {
    SchemaRegistry::start(([127, 0, 0, 1], 0).into(), None)
        .await
        .expect("local registry starts")
}

fn new_codec(url: &str) -> Codec {
    Codec::new(&RegistryConfig::new(url), CodecOptions::default()).unwrap()
}

#[tokio::test]
async fn both_types_round_trip_in_confluent_wire_format() {
    let registry = registry().await;
    let codec = new_codec(&registry.url());
    let bytes = codec.encode(&order()).await.unwrap();
    assert_eq!(bytes[0], 0, "magic byte");
    let id = u32::from_be_bytes(bytes[1..5].try_into().unwrap());
    assert!(id > 0);
    assert_eq!(codec.decode::<Order>(&bytes).await.unwrap(), order());

    let bytes = codec.encode(&pick_list()).await.unwrap();
    let pick_list_id = u32::from_be_bytes(bytes[1..5].try_into().unwrap());
    assert_ne!(pick_list_id, id, "each schema has its own id");
    assert_eq!(codec.decode::<PickList>(&bytes).await.unwrap(), pick_list());

    // A second codec (another process, in effect) reads what the first wrote.
    let other = new_codec(&registry.url());
    assert_eq!(other.decode::<PickList>(&bytes).await.unwrap(), pick_list());
}

#[tokio::test]
async fn v1_data_reads_into_v2_with_the_default_and_v2_data_into_v1() {
    let registry = registry().await;
    let codec = new_codec(&registry.url());
    let v1_bytes = codec.encode(&order()).await.unwrap();
    let v2 = codec.decode::<OrderV2>(&v1_bytes).await.unwrap();
    assert_eq!(v2.channel, "web", "default from the v2 schema");
    assert_eq!(v2.items, order().items);

    let v2_order = OrderV2 {
        channel: "app".into(),
        ..v2
    };
    let v2_bytes = codec.encode(&v2_order).await.unwrap();
    assert_ne!(v1_bytes[1..5], v2_bytes[1..5], "v2 is a new schema id");
    assert_eq!(codec.decode::<Order>(&v2_bytes).await.unwrap(), order());
    assert_eq!(codec.decode::<OrderV2>(&v2_bytes).await.unwrap(), v2_order);
}

/// A pick list as version 1 of `grocery.picklist.v1-value` shaped it (the fixture
/// `fixtures/picklist-v1/schema.avsc`, kept byte for byte): no `delivery_window`. Stands for a
/// store screen built before version 2.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct PickListV1 {
    picklist_id: Uuid,
    order_id: Uuid,
    items_to_pick: Vec<PickLine>,
    assigned_picker: String,
    created_time: i64,
}

impl Event for PickListV1 {
    const TOPIC: &'static str = PickList::TOPIC;
    const SCHEMA: &'static str = include_str!("fixtures/picklist-v1/schema.avsc");
    const FULL_NAME: &'static str = PickList::FULL_NAME;
    fn key(&self) -> String {
        self.order_id.to_string()
    }
}

/// Version 2 of the pick list (the delivery window) under the subject's level FULL, in both
/// directions: the registry takes version 2 after version 1, a version-1 reader reads version-2
/// data (the window dropped) and a version-2 reader reads version-1 data (the window `None`).
#[tokio::test]
async fn pick_list_v1_and_v2_read_each_other_under_full() {
    let registry = registry().await;
    let subject = "grocery.picklist.v1-value";
    let answer = reqwest::Client::new()
        .put(format!("{}/config/{subject}", registry.url()))
        .header("content-type", "application/vnd.schemaregistry.v1+json")
        .body(r#"{"compatibility":"FULL"}"#)
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success(), "{}", answer.status());
    let codec = new_codec(&registry.url());

    let old = PickListV1 {
        picklist_id: pick_list().picklist_id,
        order_id: pick_list().order_id,
        items_to_pick: pick_list().items_to_pick,
        assigned_picker: pick_list().assigned_picker,
        created_time: pick_list().created_time,
    };
    let old_bytes = codec.encode(&old).await.unwrap();
    let new = PickList {
        delivery_window: Some(PickListDeliveryWindow {
            start_time: 1_763_784_000_000,
            end_time: 1_763_791_200_000,
        }),
        ..pick_list()
    };
    let new_bytes = codec.encode(&new).await.unwrap();
    assert_ne!(
        old_bytes[1..5],
        new_bytes[1..5],
        "version 2 is a new schema id"
    );

    // A version-2 reader: old data with no window, new data as written.
    assert_eq!(
        codec.decode::<PickList>(&old_bytes).await.unwrap(),
        pick_list()
    );
    assert_eq!(codec.decode::<PickList>(&new_bytes).await.unwrap(), new);
    // A version-1 reader (a second process: nothing cached): both, the window dropped.
    let old_reader = new_codec(&registry.url());
    assert_eq!(
        old_reader.decode::<PickListV1>(&new_bytes).await.unwrap(),
        old
    );
    assert_eq!(
        old_reader.decode::<PickListV1>(&old_bytes).await.unwrap(),
        old
    );
}

#[tokio::test]
async fn each_malformed_class_has_its_own_error() {
    let registry = registry().await;
    let codec = new_codec(&registry.url());
    let good = codec.encode(&order()).await.unwrap();

    assert!(matches!(
        codec.decode::<Order>(&[]).await,
        Err(Error::EmptyPayload)
    ));
    let mut wrong_magic = good.clone();
    wrong_magic[0] = 1;
    assert!(matches!(
        codec.decode::<Order>(&wrong_magic).await,
        Err(Error::BadMagicByte { found: 1 })
    ));
    assert!(matches!(
        codec.decode::<Order>(&good[..3]).await,
        Err(Error::TruncatedHeader { len: 3 })
    ));
    let mut unknown = good.clone();
    unknown[1..5].copy_from_slice(&999_999u32.to_be_bytes());
    assert!(matches!(
        codec.decode::<Order>(&unknown).await,
        Err(Error::UnknownSchemaId { id: 999_999, .. })
    ));
    let mut garbage = good[..5].to_vec();
    garbage.extend_from_slice(&[0xff; 7]);
    let err = codec.decode::<Order>(&garbage).await.unwrap_err();
    assert!(matches!(err, Error::Decode { .. }), "{err:?}");
    assert!(err.to_string().contains("schema id"), "{err}");
    let truncated_body = &good[..good.len() - 3];
    assert!(matches!(
        codec.decode::<Order>(truncated_body).await,
        Err(Error::Decode { .. })
    ));
}

#[tokio::test]
async fn a_warm_codec_keeps_working_when_the_registry_goes_down() {
    let registry = registry().await;
    let url = registry.url();
    let codec = new_codec(&url);
    let bytes = codec.encode(&order()).await.unwrap();
    codec.decode::<Order>(&bytes).await.unwrap();
    registry.shutdown().await.unwrap();

    assert_eq!(codec.encode(&order()).await.unwrap(), bytes);
    assert_eq!(codec.decode::<Order>(&bytes).await.unwrap(), order());

    // A cold codec gets a clear, transient error naming the registry.
    let cold = new_codec(&url);
    let err = cold.decode::<Order>(&bytes).await.unwrap_err();
    assert!(matches!(err, Error::RegistryUnreachable { .. }), "{err:?}");
    assert!(err.is_transient());
    assert!(err.to_string().contains(&url), "{err}");
    let err = cold.encode(&order()).await.unwrap_err();
    assert!(matches!(err, Error::RegistryUnreachable { .. }), "{err:?}");
}

#[tokio::test]
async fn without_auto_registration_an_unregistered_schema_is_a_clear_error() {
    let registry = registry().await;
    let options = CodecOptions::default().with_auto_register(false);
    let strict = Codec::new(&RegistryConfig::new(registry.url()), options).unwrap();
    let err = strict.encode(&order()).await.unwrap_err();
    assert!(
        matches!(err, Error::SchemaNotRegistered { ref subject, .. } if subject == "grocery.orders.v1-value"),
        "{err:?}"
    );

    // Registered by someone else (Terraform, CI): the strict codec looks it up.
    let bytes = new_codec(&registry.url()).encode(&order()).await.unwrap();
    assert_eq!(strict.encode(&order()).await.unwrap(), bytes);
}

#[tokio::test]
async fn use_latest_version_writes_with_the_newest_schema() {
    let registry = registry().await;
    let writer = new_codec(&registry.url());
    writer.encode(&order()).await.unwrap();
    let v2_bytes = writer
        .encode(&OrderV2 {
            order_id: order().order_id,
            customer_id: order().customer_id,
            items: vec![],
            order_total_cents: 0,
            currency: "USD".into(),
            order_time: 0,
            channel: "app".into(),
        })
        .await
        .unwrap();
    let options = CodecOptions::default()
        .with_use_latest_version(true)
        .with_auto_register(false);
    let latest = Codec::new(&RegistryConfig::new(registry.url()), options).unwrap();
    let bytes = latest.encode(&order()).await.unwrap();
    assert_eq!(bytes[1..5], v2_bytes[1..5], "written with v2's id");
    let read = writer.decode::<OrderV2>(&bytes).await.unwrap();
    assert_eq!(read.channel, "web", "v2 default filled in");
    assert_eq!(read.items, order().items);
}

#[tokio::test]
async fn an_incompatible_schema_is_rejected_by_the_registry() {
    #[derive(Debug, Serialize, Deserialize)]
    struct Broken {
        order_id: String,
    }
    impl Event for Broken {
        const TOPIC: &'static str = Order::TOPIC;
        const SCHEMA: &'static str = r#"{"type":"record","name":"Order","namespace":"io.groceryevents","fields":[{"name":"order_id","type":"string"},{"name":"must_have","type":"long"}]}"#;
        const FULL_NAME: &'static str = Order::FULL_NAME;
        fn key(&self) -> String {
            self.order_id.clone()
        }
    }
    let registry = registry().await;
    let codec = Arc::new(new_codec(&registry.url()));
    codec.encode(&order()).await.unwrap();
    let err = codec
        .encode(&Broken {
            order_id: "x".into(),
        })
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::IncompatibleSchema { ref subject, .. } if subject == "grocery.orders.v1-value"),
        "{err:?}"
    );
}
