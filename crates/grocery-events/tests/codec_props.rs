//! Property tests of the codec against the local Schema Registry: generated values round-trip,
//! and no input bytes make the decoder panic; and of the generated codecs against apache-avro:
//! the same bytes for every value of every generated type, both ways.

use std::sync::LazyLock;

use apache_avro::{reader::datum::GenericDatumReader, writer::datum::GenericDatumWriter};
use avro_events::{Codec, CodecOptions, registry::RegistryConfig};
use grocery_events::{
    DeliveryWindow, Error, Event, Order, OrderLine, OrderState, OrderStatus, PickLine, PickList,
    StatusLine, StockStatus, SubstitutionPreference,
};
use local_stack::registry::{RegistryHandle, SchemaRegistry};
use proptest::prelude::*;
use tokio::runtime::Runtime;
use uuid::Uuid;

/// One runtime, registry and warm codec shared by every case.
struct Fixture {
    runtime: Runtime,
    codec: Codec,
    order_id: u32,
    _registry: RegistryHandle,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (registry, codec, order_id) = runtime.block_on(async {
        let registry = SchemaRegistry::start(([127, 0, 0, 1], 0).into(), None)
            .await
            .unwrap();
        let codec = Codec::new(
            &RegistryConfig::new(registry.url()),
            CodecOptions::default(),
        )
        .unwrap();
        let sample = codec.encode(&sample_order()).await.unwrap();
        let id = u32::from_be_bytes(sample[1..5].try_into().unwrap());
        (registry, codec, id)
    });
    Fixture {
        runtime,
        codec,
        order_id,
        _registry: registry,
    }
});

fn sample_order() -> Order {
    Order {
        order_id: Uuid::nil(),
        customer_id: Uuid::nil(),
        items: vec![],
        order_total_cents: 0,
        currency: "USD".into(),
        order_time: 0,
        substitution: None,
        delivery_window: None,
    }
}

fn uuid() -> impl Strategy<Value = Uuid> {
    any::<u128>().prop_map(Uuid::from_u128)
}

fn order() -> impl Strategy<Value = Order> {
    let line = (".{0,20}", ".{0,40}", any::<i32>(), any::<i64>()).prop_map(
        |(sku, name, quantity, unit_price_cents)| OrderLine {
            sku,
            name,
            quantity,
            unit_price_cents,
        },
    );
    (
        uuid(),
        uuid(),
        prop::collection::vec(line, 0..20),
        any::<i64>(),
        "[A-Z]{3}",
        any::<i64>(),
        proptest::option::of(prop_oneof![
            Just(SubstitutionPreference::NoSubstitutes),
            Just(SubstitutionPreference::SameBrand),
            Just(SubstitutionPreference::AnyBrand),
        ]),
        proptest::option::of((any::<i64>(), any::<i64>())),
    )
        .prop_map(
            |(
                order_id,
                customer_id,
                items,
                order_total_cents,
                currency,
                order_time,
                substitution,
                window,
            )| Order {
                order_id,
                customer_id,
                items,
                order_total_cents,
                currency,
                order_time,
                substitution,
                delivery_window: window.map(|(start_time, end_time)| DeliveryWindow {
                    start_time,
                    end_time,
                }),
            },
        )
}

fn order_status() -> impl Strategy<Value = OrderStatus> {
    let state = prop_oneof![
        Just(OrderState::Received),
        Just(OrderState::PicklistCreated),
        Just(OrderState::PickingStarted),
        Just(OrderState::Picked),
        Just(OrderState::Ready),
    ];
    let line = (".{0,20}", any::<i32>(), any::<i32>(), any::<i32>()).prop_map(
        |(sku, quantity, quantity_picked, quantity_short)| StatusLine {
            sku,
            quantity,
            quantity_picked,
            quantity_short,
        },
    );
    (
        (uuid(), uuid(), state, any::<i64>()),
        ".{0,30}",
        proptest::option::of(uuid()),
        prop::collection::vec(line, 0..12),
        proptest::option::of(".{0,40}"),
    )
        .prop_map(
            |((status_id, order_id, state, time), actor, picklist_id, lines, note)| OrderStatus {
                status_id,
                order_id,
                state,
                time,
                actor,
                picklist_id,
                lines,
                note,
            },
        )
}

/// The generated codec of `E` writes exactly apache-avro's bytes for `event` (its schema-aware
/// serializer, UUIDs as strings), and reads apache-avro's bytes back into `event`.
fn same_bytes_as_apache_avro<E: Event + PartialEq + std::fmt::Debug>(
    event: &E,
) -> Result<(), TestCaseError> {
    let schema = apache_avro::Schema::parse_str(E::SCHEMA).unwrap();
    let theirs = GenericDatumWriter::builder(&schema)
        .human_readable(true)
        .build()
        .unwrap()
        .write_ser_to_vec(event)
        .unwrap();
    let datum = E::AVRO_DATUM.expect("a generated type has a generated codec");
    let mut ours = Vec::new();
    (datum.encode)(event, &mut ours);
    prop_assert_eq!(&ours, &theirs);
    let mut input = &theirs[..];
    prop_assert_eq!(&(datum.decode)(&mut input).unwrap(), event);
    prop_assert!(
        input.is_empty(),
        "the generated decoder reads the whole body"
    );
    // And apache-avro reads what the generated encoder writes.
    let value = GenericDatumReader::builder(&schema)
        .build()
        .unwrap()
        .read_value(&mut &ours[..])
        .unwrap();
    prop_assert!(value.validate(&schema));
    Ok(())
}

fn pick_list() -> impl Strategy<Value = PickList> {
    let status = prop_oneof![
        Just(StockStatus::InStock),
        Just(StockStatus::Short),
        Just(StockStatus::OutOfStock),
        Just(StockStatus::UnknownSku),
    ];
    let line = (
        ".{0,20}",
        ".{0,40}",
        any::<i32>(),
        any::<i32>(),
        ".{0,10}",
        any::<i32>(),
        status,
        proptest::option::of(".{0,30}"),
    )
        .prop_map(
            |(sku, name, quantity, quantity_to_pick, aisle, walk_sequence, stock_status, note)| {
                PickLine {
                    sku,
                    name,
                    quantity,
                    quantity_to_pick,
                    aisle,
                    walk_sequence,
                    stock_status,
                    note,
                }
            },
        );
    (
        uuid(),
        uuid(),
        prop::collection::vec(line, 0..20),
        ".{0,20}",
        any::<i64>(),
    )
        .prop_map(
            |(picklist_id, order_id, items_to_pick, assigned_picker, created_time)| PickList {
                picklist_id,
                order_id,
                items_to_pick,
                assigned_picker,
                created_time,
                delivery_window: None,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn orders_round_trip(order in order()) {
        let f = &*FIXTURE;
        let decoded = f.runtime.block_on(async {
            let bytes = f.codec.encode(&order).await.unwrap();
            f.codec.decode::<Order>(&bytes).await
        });
        prop_assert_eq!(decoded.unwrap(), order);
    }

    #[test]
    fn pick_lists_round_trip(pick_list in pick_list()) {
        let f = &*FIXTURE;
        let decoded = f.runtime.block_on(async {
            let bytes = f.codec.encode(&pick_list).await.unwrap();
            f.codec.decode::<PickList>(&bytes).await
        });
        prop_assert_eq!(decoded.unwrap(), pick_list);
    }

    #[test]
    fn generated_orders_are_apache_avros_bytes(order in order()) {
        same_bytes_as_apache_avro(&order)?;
    }

    #[test]
    fn generated_pick_lists_are_apache_avros_bytes(pick_list in pick_list()) {
        same_bytes_as_apache_avro(&pick_list)?;
    }

    #[test]
    fn generated_order_statuses_are_apache_avros_bytes(status in order_status()) {
        same_bytes_as_apache_avro(&status)?;
    }

    #[test]
    fn order_statuses_round_trip(status in order_status()) {
        let f = &*FIXTURE;
        let decoded = f.runtime.block_on(async {
            let bytes = f.codec.encode(&status).await.unwrap();
            f.codec.decode::<OrderStatus>(&bytes).await
        });
        prop_assert_eq!(decoded.unwrap(), status);
    }

    /// Any bytes at all: an error or a value, never a panic.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let f = &*FIXTURE;
        let _ = f.runtime.block_on(f.codec.decode::<Order>(&bytes));
    }

    /// A valid header in front of arbitrary bytes reaches the Avro decoder, which must answer
    /// with a decode error (or, rarely, a value), never a panic or a huge allocation.
    #[test]
    fn arbitrary_bodies_never_panic(body in prop::collection::vec(any::<u8>(), 0..256)) {
        let f = &*FIXTURE;
        let mut bytes = vec![0];
        bytes.extend_from_slice(&f.order_id.to_be_bytes());
        bytes.extend_from_slice(&body);
        match f.runtime.block_on(f.codec.decode::<Order>(&bytes)) {
            Ok(_) | Err(Error::Decode { .. }) => {}
            Err(other) => prop_assert!(false, "unexpected error {other:?}"),
        }
    }
}
