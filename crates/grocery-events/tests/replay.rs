//! `Client::replay`: a topic read whole from the beginning of every partition, whatever the
//! group has committed, caught up at the end offsets of its start, then followed.

mod common;

use std::time::Duration;

use common::{bananas_order, config};
use grocery_events::{Client, Order, Record, topics};
use local_stack::Stack;
use rdkafka::producer::FutureRecord;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_reads_everything_catches_up_and_follows() {
    let stack = Stack::start().await.unwrap();
    let client = Client::from_config(config(&stack)).unwrap();
    let producer = client.producer().await.unwrap();
    for n in 0..10 {
        producer.send(&bananas_order(n, 1)).await.unwrap();
    }
    // The group has read and committed everything: a replay in its name still starts over.
    let group = "replay-view";
    let consumer = client.consumer::<Order>(group).await.unwrap();
    for _ in 0..10 {
        let received = consumer.recv().await.unwrap();
        consumer.ack(&received.meta).unwrap();
    }
    consumer.commit().await.unwrap();
    consumer.close().await.unwrap();
    // An undecodable record last: the replay catches up past it once it is dead-lettered.
    producer
        .rdkafka()
        .send(
            FutureRecord::to(topics::ORDERS)
                .key("poison")
                .payload(b"not avro".as_slice()),
            Duration::from_secs(10),
        )
        .await
        .map_err(|(error, _)| error)
        .unwrap();

    let mut replay = client
        .replay::<Order>(group, Duration::from_secs(10))
        .await
        .unwrap();
    assert!(!replay.is_caught_up());
    assert_eq!(replay.remaining(), 11);
    let mut seen = Vec::new();
    // The end is seen even though the last record (the poison one) is never handed out.
    while let Some(record) = replay.recv_until_caught_up().await.unwrap() {
        if let Record::Event(received) = record {
            seen.push(received.event.order_id);
        }
    }
    assert!(replay.is_caught_up());
    seen.sort();
    let expected: Vec<_> = (0..10).map(|n| bananas_order(n, 1).order_id).collect();
    assert_eq!(seen, expected);
    assert_eq!(replay.consumer().dead_lettered(), 1);
    assert_eq!(replay.remaining(), 0);

    // Then it follows the topic.
    producer.send(&bananas_order(10, 1)).await.unwrap();
    let next = tokio::time::timeout(Duration::from_secs(30), replay.recv_record())
        .await
        .unwrap()
        .unwrap();
    match next {
        Record::Event(received) => {
            assert_eq!(received.event.order_id, bananas_order(10, 1).order_id);
        }
        Record::Tombstone(t) => panic!("{t:?}"),
    }
    assert!(replay.is_caught_up());
}
