//! `Client::replay` on the real broker under a live group's id (as picklist-consumer's restore
//! replays under its own group id), with undecodable records in the topic: the group's
//! committed offsets, read by a second client before and after, do not move, and nothing is
//! written to the dead-letter topic. Checked twice: with the group empty (the service
//! restarting) and with a member in it (another instance running, KIP-848). Then the live
//! consumer goes on where its group left off and dead-letters the undecodable records, once.
//!
//! Before replays stopped committing and dead-lettering, the first replay moved the empty
//! group's offsets to the end of every partition (past orders the group had not read) and each
//! replay copied the undecodable records to the dead-letter topic again; beside a member the
//! broker refused the replay's commit (`UnknownMemberId`), so only the copies showed there.
//!
//! Built only with the `real-broker` feature:
//! `cargo test -p local-stack --features real-broker --test broker_replay`.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use grocery_events::{Client, Config, Order, topics};
use local_stack::{BrokerKind, KafkaAuth, Stack, StackOptions, verify};
use rdkafka::{
    ClientConfig, Offset,
    consumer::{BaseConsumer, Consumer as _},
    producer::FutureRecord,
};
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(60);
/// Orders the live group has read and committed before the replays.
const COMMITTED: u32 = 12;
/// Orders after the undecodable records, which the live group has not read yet.
const LATER: u32 = 6;

fn order(run: Uuid, n: u32) -> Order {
    grocery_stack::sample::milk_order(Uuid::new_v5(&run, &n.to_be_bytes()), run, 1)
}

/// The offsets `group` has committed on the orders topic, as a client not in the group reads
/// them.
fn committed(bootstrap: &str, group: &str) -> Vec<(i32, Offset)> {
    verify::committed_offsets(bootstrap, group, topics::ORDERS, topics::PARTITIONS)
}

/// Records on the orders topic's dead-letter topic.
fn dead_letters(bootstrap: &str) -> i64 {
    verify::records_on(
        bootstrap,
        &topics::dead_letter(topics::ORDERS),
        topics::PARTITIONS,
    )
}

/// A member of the group that holds its partitions and commits nothing (another instance of
/// the service, idle), polled on its own thread until dropped.
struct IdleMember {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl IdleMember {
    fn join(bootstrap: &str, group: &str) -> Self {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("group.id", group)
            .set("group.protocol", "consumer")
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .create()
            .unwrap();
        consumer.subscribe(&[topics::ORDERS]).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let (assigned, joined) = std::sync::mpsc::channel();
        let thread = std::thread::spawn({
            let stop = stop.clone();
            move || {
                let mut told = false;
                while !stop.load(Ordering::Relaxed) {
                    let _ = consumer.poll(Duration::from_millis(100));
                    if !told && consumer.assignment().is_ok_and(|a| a.count() > 0) {
                        told = true;
                        let _ = assigned.send(());
                    }
                }
                consumer.unsubscribe();
            }
        });
        joined
            .recv_timeout(WAIT)
            .expect("the idle member is assigned partitions");
        Self {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for IdleMember {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread
                .join()
                .expect("the idle member's thread did not panic");
        }
    }
}

/// What one replay did to the group and the dead-letter topic.
#[derive(Debug)]
struct ReplayOutcome {
    seen: u32,
    undecodable_passed: u64,
    dead_lettered: u64,
    /// What `commit` answered (a replay commits nothing, so it has nothing to be refused).
    commit: Result<(), String>,
    offsets_before: Vec<(i32, Offset)>,
    offsets_after: Vec<(i32, Offset)>,
    dead_letters_added: i64,
}

/// Replays the orders topic whole under `group`, acknowledging and committing what it hands
/// out (which must commit nothing).
async fn replay_under(stack: &Stack, client: &Client, group: &str) -> ReplayOutcome {
    let bootstrap = stack.bootstrap_servers();
    let offsets_before = committed(bootstrap, group);
    let dead_letters_before = dead_letters(bootstrap);
    let mut replay = client.replay::<Order>(group, WAIT).await.unwrap();
    let mut seen = 0;
    while let Some(record) = tokio::time::timeout(WAIT, replay.recv_until_caught_up())
        .await
        .expect("the replay reaches its end")
        .unwrap()
    {
        replay.consumer().ack(record.meta()).unwrap();
        seen += 1;
    }
    let commit = replay.consumer().commit().await.map_err(|e| e.to_string());
    let undecodable_passed = replay.consumer().undecodable_passed();
    let dead_lettered = replay.consumer().dead_lettered();
    drop(replay);
    ReplayOutcome {
        seen,
        undecodable_passed,
        dead_lettered,
        commit,
        offsets_before,
        offsets_after: committed(bootstrap, group),
        dead_letters_added: dead_letters(bootstrap) - dead_letters_before,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replay_under_a_live_group_id_moves_no_offset_and_dead_letters_nothing() {
    let stack = Stack::start_with(StackOptions {
        broker: BrokerKind::Kafka {
            auth: KafkaAuth::None,
        },
        ..grocery_stack::options()
    })
    .await
    .unwrap();
    let bootstrap = stack.bootstrap_servers().to_owned();
    let run = Uuid::new_v4();
    let config = Config::from_properties_str(&stack.client_properties())
        .unwrap()
        .set("group.protocol", "consumer");
    let client = Client::from_config(config).unwrap();
    let producer = client.producer().await.unwrap();
    let group = format!("picklist-consumer-{}", run.simple());

    // The live group reads and commits the first orders, then its instance stops.
    for n in 0..COMMITTED {
        producer.send(&order(run, n)).await.unwrap();
    }
    let live = client.consumer::<Order>(group.as_str()).await.unwrap();
    for _ in 0..COMMITTED {
        let received = tokio::time::timeout(WAIT, live.recv())
            .await
            .expect("the live consumer reads the first orders")
            .unwrap();
        live.ack(&received.meta).unwrap();
    }
    live.commit().await.unwrap();
    live.close().await.unwrap();
    drop(live);
    let left_at = committed(&bootstrap, &group);
    let sum = |offsets: &[(i32, Offset)]| {
        offsets
            .iter()
            .map(|(_, offset)| offset.to_raw().unwrap_or(0).max(0))
            .sum::<i64>()
    };
    assert_eq!(
        sum(&left_at),
        i64::from(COMMITTED),
        "the live group committed its orders: {left_at:?}"
    );

    // Then an undecodable record in every partition and more orders the group has not read.
    for partition in 0..topics::PARTITIONS {
        producer
            .rdkafka()
            .send(
                FutureRecord::to(topics::ORDERS)
                    .partition(partition)
                    .key("poison")
                    .payload(b"not avro".as_slice()),
                WAIT,
            )
            .await
            .map_err(|(error, _)| error)
            .unwrap();
    }
    for n in COMMITTED..COMMITTED + LATER {
        producer.send(&order(run, n)).await.unwrap();
    }

    // The service restarting: its restore replays under the group's id while the group is
    // empty (a commit from outside the group would be accepted).
    let restarting = replay_under(&stack, &client, &group).await;
    // Another instance running: the group has a member, which commits nothing meanwhile.
    let member = IdleMember::join(&bootstrap, &group);
    let beside_member = replay_under(&stack, &client, &group).await;
    drop(member);
    eprintln!("replay while the group is empty: {restarting:?}");
    eprintln!("replay beside a live member: {beside_member:?}");
    let orders = COMMITTED + LATER;
    let undecodable = u64::try_from(topics::PARTITIONS).unwrap();
    for (when, outcome) in [
        ("while the group is empty", &restarting),
        ("beside a live member", &beside_member),
    ] {
        assert_eq!(
            outcome.offsets_after, outcome.offsets_before,
            "a replay {when} changed the group's committed offsets"
        );
        assert_eq!(outcome.offsets_before, left_at, "{when}");
        assert_eq!(
            outcome.dead_letters_added, 0,
            "a replay {when} wrote to the dead-letter topic"
        );
        assert_eq!(
            (
                outcome.seen,
                outcome.undecodable_passed,
                outcome.dead_lettered
            ),
            (orders, undecodable, 0),
            "a replay {when} hands out every order and passes the undecodable records over"
        );
        assert_eq!(outcome.commit, Ok(()), "a replay {when}");
    }

    // The live consumer goes on where its group left off: the later orders, and the
    // undecodable records dead-lettered once, by it.
    let live = client.consumer::<Order>(group.as_str()).await.unwrap();
    let mut later = Vec::new();
    let deadline = Instant::now() + WAIT;
    while later.len() < LATER as usize || live.dead_lettered() < undecodable {
        assert!(
            Instant::now() < deadline,
            "live consumer: {} orders, {} dead-lettered",
            later.len(),
            live.dead_lettered()
        );
        if let Ok(received) = tokio::time::timeout(Duration::from_millis(500), live.recv()).await {
            let received = received.unwrap();
            live.ack(&received.meta).unwrap();
            later.push(received.event.order_id);
        }
    }
    live.commit().await.unwrap();
    live.close().await.unwrap();
    drop(live);
    later.sort();
    let mut expected: Vec<_> = (COMMITTED..COMMITTED + LATER)
        .map(|n| order(run, n).order_id)
        .collect();
    expected.sort();
    assert_eq!(
        later, expected,
        "the live consumer reads what it had not read"
    );
    assert_eq!(
        dead_letters(&bootstrap),
        undecodable as i64,
        "each undecodable record dead-lettered once, by the live consumer"
    );
    drop(producer);
    drop(client);
    stack.shutdown().await;
}
