//! `Client::replay`: a topic read whole from the beginning of every partition, whatever the
//! group has committed, caught up at the end offsets of its start, then followed; never
//! committing into the group it names, never dead-lettering.

mod utils;

use std::time::Duration;

use avro_events::{Client, Event as _, Record};
use local_stack::{Stack, verify};
use rdkafka::{Offset, producer::FutureRecord};
use utils::events::{PARTITIONS, Reading, config, reading, stack};

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_reads_everything_catches_up_and_follows() {
    let stack = stack().await;
    let client = Client::from_config(config(&stack)).unwrap();
    let producer = client.producer().await.unwrap();
    for n in 0..10 {
        producer.send(&reading(n)).await.unwrap();
    }
    // The group has read and committed everything: a replay in its name still starts over.
    let group = "replay-view";
    let consumer = client.consumer::<Reading>(group).await.unwrap();
    for _ in 0..10 {
        let received = consumer.recv().await.unwrap();
        consumer.ack(&received.meta).unwrap();
    }
    consumer.commit().await.unwrap();
    consumer.close().await.unwrap();
    // An undecodable record last: the replay catches up past it once it is passed over.
    producer
        .rdkafka()
        .send(
            FutureRecord::to(Reading::TOPIC)
                .key("poison")
                .payload(b"not avro".as_slice()),
            Duration::from_secs(10),
        )
        .await
        .map_err(|(error, _)| error)
        .unwrap();

    let mut replay = client
        .replay::<Reading>(group, Duration::from_secs(10))
        .await
        .unwrap();
    assert!(!replay.is_caught_up());
    assert_eq!(replay.remaining(), 11);
    let mut seen = Vec::new();
    // The end is seen even though the last record (the poison one) is never handed out.
    while let Some(record) = replay.recv_until_caught_up().await.unwrap() {
        if let Record::Event(received) = record {
            seen.push(received.event.id);
        }
    }
    assert!(replay.is_caught_up());
    seen.sort();
    let expected: Vec<_> = (0..10).map(|n| reading(n).id).collect();
    assert_eq!(seen, expected);
    assert_eq!(replay.consumer().undecodable_passed(), 1);
    assert_eq!(replay.consumer().dead_lettered(), 0);
    assert_eq!(replay.remaining(), 0);

    // Then it follows the topic.
    producer.send(&reading(10)).await.unwrap();
    let next = tokio::time::timeout(Duration::from_secs(30), replay.recv_record())
        .await
        .unwrap()
        .unwrap();
    match next {
        Record::Event(received) => {
            assert_eq!(received.event.id, reading(10).id);
        }
        Record::Tombstone(t) => panic!("{t:?}"),
    }
    assert!(replay.is_caught_up());
}

/// The offsets `group` has committed on every partition of the readings topic, as a second client
/// reads them from the broker.
fn committed(stack: &Stack, group: &str) -> Vec<(i32, Offset)> {
    verify::committed_offsets(stack.bootstrap_servers(), group, Reading::TOPIC, PARTITIONS)
}

/// Records on the readings topic's dead-letter topic (every partition, from the watermarks).
fn dead_letters(stack: &Stack) -> i64 {
    verify::records_on(
        stack.bootstrap_servers(),
        &avro_events::dlq::dead_letter_topic(Reading::TOPIC),
        PARTITIONS,
    )
}

/// A replay is not a member of the group it names (picklist-consumer's restore replays under
/// its live group's id): it never commits, even when its records are acknowledged, so the
/// group's committed offsets stay as its live consumer left them; and it never dead-letters,
/// so a second (and every later) start adds nothing to the dead-letter topic. An undecodable
/// record is passed over and counted, the replay still reaches its end past it, and the live
/// consumer, the one that dead-letters, then finds it where it left off. Replays used to store
/// the poison record's offset with its dead-letter copy and commit it into the live group
/// (moving it past records it had not read) and dead-letter it again at every start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_never_commits_into_its_group_nor_dead_letters() {
    let stack = stack().await;
    let client = Client::from_config(config(&stack)).unwrap();
    let producer = client.producer().await.unwrap();
    for n in 0..10 {
        producer.send(&reading(n)).await.unwrap();
    }
    let group = "picklist-live";
    let live = client.consumer::<Reading>(group).await.unwrap();
    for _ in 0..10 {
        let received = live.recv().await.unwrap();
        live.ack(&received.meta).unwrap();
    }
    live.commit().await.unwrap();
    live.close().await.unwrap();
    drop(live);
    let before = committed(&stack, group);
    assert_eq!(
        before
            .iter()
            .map(|(_, offset)| offset.to_raw().unwrap_or(0).max(0))
            .sum::<i64>(),
        10,
        "the live group committed its ten readings: {before:?}"
    );
    // Then an undecodable record and five more readings, which the live group has not read.
    producer
        .rdkafka()
        .send(
            FutureRecord::to(Reading::TOPIC)
                .key("poison")
                .payload(b"not avro".as_slice()),
            WAIT,
        )
        .await
        .map_err(|(error, _)| error)
        .unwrap();
    for n in 10..15 {
        producer.send(&reading(n)).await.unwrap();
    }

    for start in 1..=2 {
        let mut replay = client.replay::<Reading>(group, WAIT).await.unwrap();
        let mut seen = 0;
        while let Some(record) = tokio::time::timeout(WAIT, replay.recv_until_caught_up())
            .await
            .unwrap_or_else(|_| panic!("replay {start} never reached its end"))
            .unwrap()
        {
            // Acknowledging what a replay hands out commits nothing either.
            replay.consumer().ack(record.meta()).unwrap();
            seen += 1;
        }
        replay.consumer().commit().await.unwrap();
        assert_eq!(seen, 15, "replay {start}");
        assert_eq!(replay.consumer().undecodable_passed(), 1, "replay {start}");
        assert_eq!(replay.consumer().dead_lettered(), 0, "replay {start}");
        drop(replay);
        assert_eq!(
            dead_letters(&stack),
            0,
            "replay {start} wrote to the dead-letter topic"
        );
        assert_eq!(
            committed(&stack, group),
            before,
            "replay {start} changed the live group's committed offsets"
        );
    }

    // The live consumer goes on where it left off: the five new readings, and the poison record
    // dead-lettered once, by it.
    let live = client.consumer::<Reading>(group).await.unwrap();
    let mut orders = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while orders.len() < 5 || live.dead_lettered() < 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "live consumer: {} readings, {} dead-lettered",
            orders.len(),
            live.dead_lettered()
        );
        if let Ok(received) = tokio::time::timeout(Duration::from_millis(500), live.recv()).await {
            let received = received.unwrap();
            live.ack(&received.meta).unwrap();
            orders.push(received.event.id);
        }
    }
    orders.sort();
    let expected: Vec<_> = (10..15).map(|n| reading(n).id).collect();
    assert_eq!(orders, expected);
    assert_eq!(live.dead_lettered(), 1);
    assert_eq!(dead_letters(&stack), 1);
    live.close().await.unwrap();
}
