//! Consume-transform-produce against the local stack, with and without transactions.
//!
//! The mock cluster accepts transactions without enforcing them, so the transactional test
//! checks the call sequence (init, begin, produce, send offsets, commit) completes and every
//! output arrives; `tests/real_kafka.rs` checks the guarantees on a real cluster. One input may
//! become events of several types ([`Outputs`]): all are written, counted per topic.

use std::{collections::BTreeSet, sync::Arc, sync::atomic::Ordering, time::Duration};

use grocery_events::{
    Client, Config, ConsumerOptions, Event as _, Order, OrderState, OrderStatus, Outputs, PickList,
    PipelineOptions,
};
use uuid::Uuid;

fn order(n: u32) -> Order {
    grocery_stack::sample::milk_order(Uuid::from_u128(u128::from(n) + 1000), Uuid::from_u128(1), 2)
}

fn pick_list(order: &Order) -> PickList {
    grocery_stack::sample::pick_list_for(order)
}

async fn run_pipeline(
    config: Config,
    count: u32,
) -> (Arc<avro_events::PipelineStats>, BTreeSet<Uuid>) {
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
    let stack = grocery_stack::start().await.unwrap();
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
    let stack = grocery_stack::start().await.unwrap();
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

/// The status record `state` of `order` (a fixed id per order and state, as a replay would
/// give).
fn status(order: &Order, state: OrderState) -> OrderStatus {
    OrderStatus {
        status_id: Uuid::new_v5(&order.order_id, format!("{state:?}").as_bytes()),
        order_id: order.order_id,
        state,
        time: order.order_time,
        actor: "pipeline-test".into(),
        picklist_id: None,
        lines: Vec::new(),
        note: None,
    }
}

/// Runs a pipeline writing, for order n, its pick list and one status (two for even n): events
/// of two types per input, read back from both topics.
async fn run_two_types(config: Config, count: u32) -> Arc<avro_events::PipelineStats> {
    let client = Client::from_config(config).unwrap();
    let producer = client.producer().await.unwrap();
    for n in 0..count {
        producer.send(&order(n)).await.unwrap();
    }
    let pipeline = client
        .pipeline::<Order>(PipelineOptions::new(format!(
            "fulfillment-{}",
            Uuid::new_v4().simple()
        )))
        .await
        .unwrap();
    let stats = pipeline.stats();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(async move {
        pipeline
            .run(
                |received| {
                    let order = &received.event;
                    let mut outputs = Outputs::new();
                    outputs.push(status(order, OrderState::Received));
                    if (order.order_id.as_u128() - 1000) % 2 == 0 {
                        outputs.push(status(order, OrderState::PicklistCreated));
                    }
                    outputs.push(pick_list(order));
                    outputs
                },
                async {
                    let _ = stop_rx.await;
                },
            )
            .await
    });

    let group = || ConsumerOptions::new(format!("reader-{}", Uuid::new_v4().simple()));
    let pick_lists = client.consumer::<PickList>(group()).await.unwrap();
    let statuses = client.consumer::<OrderStatus>(group()).await.unwrap();
    let mut seen_pick_lists = BTreeSet::new();
    let mut seen_statuses = BTreeSet::new();
    let wanted_statuses = (count + count.div_ceil(2)) as usize;
    tokio::time::timeout(Duration::from_secs(60), async {
        while seen_pick_lists.len() < count as usize {
            let received = pick_lists.recv().await.unwrap();
            assert_eq!(received.event, pick_list(&order_of(&received.event)));
            seen_pick_lists.insert(received.event.order_id);
        }
        while seen_statuses.len() < wanted_statuses {
            let received = statuses.recv().await.unwrap().event;
            let order = order(u32::try_from(received.order_id.as_u128() - 1000).unwrap());
            assert_eq!(received, status(&order, received.state));
            seen_statuses.insert((received.order_id, received.state));
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "{} of {count} pick lists, {} of {wanted_statuses} statuses",
            seen_pick_lists.len(),
            seen_statuses.len()
        )
    });
    stop_tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(30), running)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(stats.consumed.load(Ordering::Relaxed), u64::from(count));
    assert_eq!(stats.produced_to(PickList::TOPIC), u64::from(count));
    assert_eq!(
        stats.produced_to(OrderStatus::TOPIC),
        wanted_statuses as u64
    );
    assert_eq!(
        stats.produced.load(Ordering::Relaxed),
        u64::from(count) + wanted_statuses as u64,
        "produced counts every record"
    );
    stats
}

#[tokio::test(flavor = "multi_thread")]
async fn an_order_becomes_events_of_two_types_acked_together() {
    let stack = grocery_stack::start().await.unwrap();
    let config = Config::from_properties_str(&stack.client_properties()).unwrap();
    let stats = run_two_types(config, 100).await;
    assert_eq!(stats.transactions.load(Ordering::Relaxed), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn events_of_two_types_are_committed_in_the_same_transactions() {
    let stack = grocery_stack::start().await.unwrap();
    let config = Config::from_properties_str(&stack.client_properties())
        .unwrap()
        .set(
            "transactional.id",
            format!("two-types-{}", Uuid::new_v4().simple()),
        );
    let stats = run_two_types(config, 100).await;
    assert!(stats.transactions.load(Ordering::Relaxed) >= 1);
    assert_eq!(stats.aborted.load(Ordering::Relaxed), 0);
}
