//! What the typed producer allocates per record beyond a raw send of the same bytes, on the
//! mock stack: the heap allocations made by the thread that queues the records and awaits
//! their deliveries, counted by the global allocator (`counting`), for the typed
//! `Producer::enqueue_to` and for rdkafka's `send_result` of bytes encoded beforehand through
//! the same librdkafka producer. librdkafka's own allocations (its header list, its copy of the
//! record) are C `malloc`s and not counted; on both sides rdkafka allocates a oneshot channel,
//! its sender's box and the topic's `CString` per record.

mod counting;

use std::time::Duration;

use grocery_events::{Client, Config, Event as _, Order};
use rdkafka::producer::FutureRecord;
use uuid::Uuid;

/// Records counted per side.
const RECORDS: usize = 200;

fn order(n: usize) -> Order {
    grocery_stack::sample::milk_order(Uuid::from_u128(n as u128 + 1), Uuid::from_u128(7), 2)
}

/// The typed producer allocates, per record, the value's buffer, the key's text and the
/// topic of the [`grocery_events::Delivered`] it resolves to, and nothing else: no boxed future
/// per record (`PendingDelivery` is a named future), no trace header texts.
#[tokio::test(flavor = "multi_thread")]
async fn a_typed_send_allocates_only_its_value_key_and_topic_beyond_a_raw_send() {
    let stack = grocery_stack::start().await.unwrap();
    let config = Config::from_properties_str(&stack.client_properties()).unwrap();
    let client = Client::from_config(config).unwrap();
    let producer = client.producer().await.unwrap();
    let topic = Order::TOPIC;
    let orders: Vec<Order> = (0..RECORDS).map(order).collect();
    let mut encoded = Vec::with_capacity(RECORDS);
    for order in &orders {
        let payload = client.codec().encode_for(topic, order).await.unwrap();
        encoded.push((order.key(), payload));
    }
    // Warm: the write target cached, both paths run once.
    producer.send(&order(RECORDS)).await.unwrap();
    let warm = producer
        .rdkafka()
        .send_result(
            FutureRecord::to(topic)
                .key(&encoded[0].0)
                .payload(&encoded[0].1),
        )
        .map_err(|(e, _)| e)
        .unwrap();
    warm.await.unwrap().unwrap();

    let mut pending = Vec::with_capacity(RECORDS);
    let ((), typed_queue) = counting::allocations_async(async {
        for order in &orders {
            pending.push(producer.enqueue_to(topic, order).await.unwrap());
        }
    })
    .await;
    // Every delivery reported before they are awaited: each resolves at its first poll.
    producer.flush(Duration::from_secs(30)).await.unwrap();
    let ((), typed_await) = counting::allocations_async(async {
        for delivery in pending {
            delivery.await.unwrap();
        }
    })
    .await;

    let mut raw = Vec::with_capacity(RECORDS);
    let ((), raw_queue) = counting::allocations_async(async {
        for (key, payload) in &encoded {
            let record = FutureRecord::to(topic).key(key).payload(payload);
            raw.push(
                producer
                    .rdkafka()
                    .send_result(record)
                    .map_err(|(e, _)| e)
                    .unwrap(),
            );
        }
    })
    .await;
    producer.flush(Duration::from_secs(30)).await.unwrap();
    let ((), raw_await) = counting::allocations_async(async {
        for delivery in raw {
            delivery.await.unwrap().unwrap();
        }
    })
    .await;
    stack.shutdown().await;

    let typed = (typed_queue + typed_await) as f64 / RECORDS as f64;
    let raw = (raw_queue + raw_await) as f64 / RECORDS as f64;
    assert!(
        raw >= 3.0,
        "rdkafka's own allocations per raw send were counted: {raw:.2}"
    );
    assert!(
        typed - raw <= 3.0,
        "typed sends allocate {:.2} more per record than raw ones ({typed:.2} against {raw:.2}; \
         queueing {typed_queue}, awaiting {typed_await} for {RECORDS} records): only the value, \
         the key's text and the delivered topic are expected",
        typed - raw
    );
}
