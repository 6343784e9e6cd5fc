//! Consume-transform-produce against the local stack, with and without transactions.
//!
//! The mock cluster accepts transactions without enforcing them, so the transactional test
//! checks the call sequence (init, begin, produce, send offsets, commit) completes and every
//! output arrives; `tests/real_kafka.rs` checks the guarantees on a real cluster.

use std::{collections::BTreeSet, sync::Arc, sync::atomic::Ordering, time::Duration};

use grocery_events::{Client, Config, ConsumerOptions, Order, PickList, PipelineOptions};
use local_stack::Stack;
use uuid::Uuid;

fn order(n: u32) -> Order {
    local_stack::sample::milk_order(Uuid::from_u128(u128::from(n) + 1000), Uuid::from_u128(1), 2)
}

fn pick_list(order: &Order) -> PickList {
    local_stack::sample::pick_list_for(order)
}

async fn run_pipeline(
    config: Config,
    count: u32,
) -> (Arc<grocery_events::PipelineStats>, BTreeSet<Uuid>) {
    // One client: its producers leave `transactional.id` to the pipeline.
    let client = Client::from_config(config).unwrap();
    let producer = client.producer().await.unwrap();
    for n in 0..count {
        producer.send(&order(n)).await.unwrap();
        if n == count / 2 {
            // A tombstone among the orders: passed over, never dead-lettered.
            producer
                .send_tombstone::<Order>(&order(n).order_id.to_string())
                .await
                .unwrap();
        }
    }
    let group = format!("fulfillment-{}", Uuid::new_v4().simple());
    let pipeline = client
        .pipeline::<Order>(PipelineOptions::new(group))
        .await
        .unwrap();
    let stats = pipeline.stats();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(async move {
        let result = pipeline
            .run(|received| vec![pick_list(&received.event)], async {
                let _ = stop_rx.await;
            })
            .await;
        result.map(|()| pipeline.consumer().dead_lettered())
    });

    let reader = client
        .consumer::<PickList>(ConsumerOptions::new(format!(
            "reader-{}",
            Uuid::new_v4().simple()
        )))
        .await
        .unwrap();
    let mut seen = BTreeSet::new();
    while seen.len() < count as usize {
        let received = tokio::time::timeout(Duration::from_secs(30), reader.recv())
            .await
            .unwrap_or_else(|_| panic!("only {} of {count} pick lists", seen.len()))
            .unwrap();
        assert_eq!(received.event, pick_list(&order_of(&received.event)));
        seen.insert(received.event.order_id);
        reader.ack(&received.meta).unwrap();
    }
    stop_tx.send(()).unwrap();
    let dead_lettered = tokio::time::timeout(Duration::from_secs(30), running)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(dead_lettered, 0, "the tombstone was not dead-lettered");
    reader.close().await.unwrap();
    (stats, seen)
}

fn order_of(pick_list: &PickList) -> Order {
    let n = pick_list.order_id.as_u128() - 1000;
    order(n as u32)
}

#[tokio::test(flavor = "multi_thread")]
async fn each_order_becomes_one_pick_list_with_acks_in_order() {
    let stack = Stack::start().await.unwrap();
    let config = Config::from_properties_str(&stack.client_properties()).unwrap();
    let (stats, seen) = run_pipeline(config, 200).await;
    assert_eq!(seen.len(), 200);
    assert_eq!(stats.consumed.load(Ordering::Relaxed), 200);
    assert_eq!(stats.produced.load(Ordering::Relaxed), 200);
    assert_eq!(
        stats.transactions.load(Ordering::Relaxed),
        0,
        "no transactions configured"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn with_a_transactional_id_outputs_are_committed_in_transactions() {
    let stack = Stack::start().await.unwrap();
    let config = Config::from_properties_str(&stack.client_properties())
        .unwrap()
        .set(
            "transactional.id",
            format!("fulfillment-test-{}", Uuid::new_v4().simple()),
        );
    let (stats, seen) = run_pipeline(config, 200).await;
    assert_eq!(seen.len(), 200);
    assert_eq!(stats.consumed.load(Ordering::Relaxed), 200);
    assert_eq!(stats.produced.load(Ordering::Relaxed), 200);
    let transactions = stats.transactions.load(Ordering::Relaxed);
    assert!(
        transactions >= 1,
        "pick lists were committed in transactions: {transactions}"
    );
}
